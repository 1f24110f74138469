#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libxlutil.h>

#include "agent/conf.h"
#include "lib/log.h"


/* Keys of hagent.conf.  Keys of later features (cluster, migration, fencing)
 * are accepted now so one configuration serves every version. */
struct conf_key {
	const char *name;
	size_t off;   /* offset of a char[] in struct conf, or 0 when ignored */
	size_t size;
};

#define CK(n, f) { n, offsetof(struct conf, f), sizeof(((struct conf *)0)->f) }
static const struct conf_key conf_keys[] = {
	CK("node_name", node_name),
	CK("run_dir", run_dir),
	CK("state_dir", state_dir),
	CK("guest_dir", guest_dir),
	CK("dump_dir", dump_dir),
	CK("qemu", qemu),
	CK("accel", accel),
	CK("socket_group", socket_group),
	CK("cluster", cluster),
	{ "migration_address", 0, 0 },
	{ "migration_port", 0, 0 },
	{ "authkey", 0, 0 },
	CK("fence_agent", fence_agent),
	CK("fence_args", fence_args),
	{ "watchdog", 0, 0 },
};

void conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", CONF_DEFAULT_PATH);
	if (gethostname(c->node_name, sizeof(c->node_name) - 1) < 0)
		snprintf(c->node_name, sizeof(c->node_name), "localhost");
	snprintf(c->run_dir, sizeof(c->run_dir), "/run/hagent"); /* DESIGN.md §5 */
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/hagent");
	snprintf(c->qemu, sizeof(c->qemu), "%s", QEMU_DEFAULT);
	snprintf(c->accel, sizeof(c->accel), "auto");
	snprintf(c->cluster, sizeof(c->cluster), "auto");
}

static void conf_error(const char *path, const char *key, const char *msg)
{
	fprintf(stderr, "%s: key '%s': %s\n", path, key, msg);
	log_err("%s: key '%s': %s", path, key, msg);
}

int conf_load(struct conf *c, const char *path, bool explicit_path)
{
	XLU_Config *x = NULL;
	FILE *report = NULL;
	int rc = -1, errors = 0;
	size_t i;

	conf_defaults(c);
	if (path)
		snprintf(c->path, sizeof(c->path), "%s", path);
	if (access(c->path, F_OK) < 0 && errno == ENOENT && !explicit_path)
		return 0;
	report = fopen("/dev/null", "w");
	x = xlu_cfg_init(report ? report : stderr, c->path);
	if (!x)
		goto out;
	if (xlu_cfg_readfile(x, c->path)) {
		fprintf(stderr, "%s: cannot parse: %s (syntax error or unreadable)\n", c->path,
			strerror(errno ? errno : EINVAL));
		log_err("%s: cannot parse", c->path);
		goto out;
	}
	for (i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++) {
		const struct conf_key *k = &conf_keys[i];
		const char *v;
		long l;
		int r = xlu_cfg_get_string(x, k->name, &v, 1);

		if (r == ESRCH)
			continue;
		if (r == EINVAL && xlu_cfg_get_long(x, k->name, &l, 1) == 0)
			continue; /* a number, e.g. migration_port = 7800 */
		if (r) {
			conf_error(c->path, k->name, "expected a string");
			errors++;
			continue;
		}
		if (!k->off)
			continue;
		if (strlen(v) >= k->size) {
			conf_error(c->path, k->name, "value too long");
			errors++;
			continue;
		}
		memcpy((char *)c + k->off, v, strlen(v) + 1);
	}
	if (strcmp(c->accel, "auto") && strcmp(c->accel, "kvm") && strcmp(c->accel, "tcg")) {
		conf_error(c->path, "accel", "expected one of auto, kvm, tcg");
		errors++;
	}
	if (strcmp(c->cluster, "auto") && strcmp(c->cluster, "corosync") &&
	    strcmp(c->cluster, "none")) {
		conf_error(c->path, "cluster", "expected one of auto, corosync, none");
		errors++;
	}
	if (c->run_dir[0] != '/' || c->state_dir[0] != '/') {
		conf_error(c->path, c->run_dir[0] != '/' ? "run_dir" : "state_dir",
			   "expected an absolute path");
		errors++;
	}
	rc = errors ? -1 : 0;
out:
	if (x)
		xlu_cfg_destroy(x);
	if (report)
		fclose(report);
	return rc;
}

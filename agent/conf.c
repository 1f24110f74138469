#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libxlutil.h>

#include "agent/conf.h"
#include "agent/timeouts.h"
#include "lib/log.h"


/* Keys of hagent.conf.  Keys of later features (cluster, migration, fencing)
 * are accepted now so one configuration serves every version. */
struct conf_key {
	const char *name;
	size_t off;   /* offset in struct conf, or 0 when ignored */
	size_t size;  /* of a char[]; 0 for a long */
	long min, max;
};

#define CK(n, f) { n, offsetof(struct conf, f), sizeof(((struct conf *)0)->f), 0, 0 }
#define CKL(n, f, lo, hi) { n, offsetof(struct conf, f), 0, lo, hi }
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
	CK("migration_address", migration_address),
	CKL("migration_port", migration_port, 1, 65535),
	CK("migration_transport", migration_transport),
	CK("authkey", authkey),
	CKL("qmp_observer", qmp_observer, 0, 1),
	CK("fence_agent", fence_agent),
	CK("fence_args", fence_args),
	CKL("fence_timeout", fence_timeout_s, 1, 3600),
	CKL("storage_refresh", storage_refresh_s, 1, 3600),
	CK("watchdog", watchdog),
	CKL("watchdog_timeout", watchdog_timeout_s, 2, 600),
	CKL("guest_memory", guest_memory_mb, 1, 1L << 30),
};

/* What guests may use of this host's RAM by default: all of it but a
 * quarter, at most 1 GiB, for the host itself. */
static long host_guest_memory(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long kb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	kb /= 1024;
	return kb - (kb / 4 < 1024 ? kb / 4 : 1024);
}

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
	c->fence_timeout_s = TO_FENCE_S;
	c->storage_refresh_s = TO_STORAGE_REFRESH_S;
	c->watchdog_timeout_s = TO_WATCHDOG_DEFAULT_S;
	c->guest_memory_mb = host_guest_memory();
	c->migration_port = 7800;
	snprintf(c->migration_transport, sizeof(c->migration_transport), "tls");
	snprintf(c->authkey, sizeof(c->authkey), "%s/hagent/authkey", SYSCONFDIR);
}

static void conf_error(const char *path, const char *key, const char *msg)
{
	fprintf(stderr, "%s: key '%s': %s\n", path, key, msg);
	log_err("%s: key '%s': %s", path, key, msg);
}

/* A fence agent by absolute path, or by name from the fence-agents package
 * (installed in /usr/sbin); it must exist and be executable. */
static int check_fence_agent(struct conf *c, const char *key, char *agent, size_t size)
{
	char path[PATH_MAX], msg[PATH_MAX + 64];

	if (!agent[0])
		return 0;
	if (agent[0] != '/') {
		if (strchr(agent, '/') || snprintf(path, sizeof(path), "/usr/sbin/%s", agent) >=
						  (int)size) {
			conf_error(c->path, key, "expected an absolute path or an agent's name");
			return 1;
		}
		memcpy(agent, path, strlen(path) + 1);
	}
	if (access(agent, X_OK) < 0) {
		snprintf(msg, sizeof(msg), "fence agent %s: %s", agent, strerror(errno));
		conf_error(c->path, key, msg);
		return 1;
	}
	return 0;
}

/* fence_nodes = [ "NODE AGENT [name=value,...]", ... ]: a node's own fence
 * device; nodes without an entry use fence_agent and fence_args. */
static int load_fence_nodes(struct conf *c, XLU_Config *x)
{
	XLU_ConfigList *list;
	const char *item;
	int i, n, errors = 0;

	if (xlu_cfg_get_list(x, "fence_nodes", &list, &n, 1))
		return 0;
	for (i = 0; (item = xlu_cfg_get_listitem(list, i)) != NULL; i++) {
		struct conf_fence *f = &c->fence_nodes[c->n_fence_nodes];
		char node[64], agent[PATH_MAX], args[512];
		int j, fields;

		args[0] = '\0';
		fields = sscanf(item, "%63s %4095s %511s", node, agent, args);
		if (fields < 2) {
			conf_error(c->path, "fence_nodes", "expected \"NODE AGENT [name=value,...]\"");
			errors++;
			continue;
		}
		for (j = 0; j < c->n_fence_nodes; j++)
			if (!strcmp(c->fence_nodes[j].node, node))
				break;
		if (j < c->n_fence_nodes) {
			char msg[128];
			snprintf(msg, sizeof(msg), "node %s is listed twice", node);
			conf_error(c->path, "fence_nodes", msg);
			errors++;
			continue;
		}
		if (c->n_fence_nodes == CONF_FENCE_NODES_MAX) {
			conf_error(c->path, "fence_nodes", "too many nodes");
			errors++;
			break;
		}
		snprintf(f->node, sizeof(f->node), "%s", node);
		snprintf(f->agent, sizeof(f->agent), "%s", agent);
		snprintf(f->args, sizeof(f->args), "%s", args);
		if (check_fence_agent(c, "fence_nodes", f->agent, sizeof(f->agent))) {
			errors++;
			continue;
		}
		c->n_fence_nodes++;
	}
	return errors;
}

bool conf_fence_for(const struct conf *c, const char *node, const char **agent,
		    const char **args)
{
	int i;

	for (i = 0; i < c->n_fence_nodes; i++)
		if (!strcmp(c->fence_nodes[i].node, node)) {
			*agent = c->fence_nodes[i].agent;
			*args = c->fence_nodes[i].args;
			return true;
		}
	*agent = c->fence_agent;
	*args = c->fence_args;
	return c->fence_agent[0] != '\0';
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
		int r;

		if (k->off && !k->size) {
			r = xlu_cfg_get_long(x, k->name, &l, 1);
			if (r == ESRCH)
				continue;
			if (r || l < k->min || l > k->max) {
				char msg[96];
				snprintf(msg, sizeof(msg), "expected a number from %ld to %ld", k->min,
					 k->max);
				conf_error(c->path, k->name, msg);
				errors++;
				continue;
			}
			*(long *)(void *)((char *)c + k->off) = l;
			continue;
		}
		r = xlu_cfg_get_string(x, k->name, &v, 1);
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
	if (strcmp(c->migration_transport, "tls") && strcmp(c->migration_transport, "plaintext") &&
	    strcmp(c->migration_transport, "qemu-tls")) {
		conf_error(c->path, "migration_transport", "expected tls, qemu-tls or plaintext");
		errors++;
	}
	if (c->run_dir[0] != '/' || c->state_dir[0] != '/') {
		conf_error(c->path, c->run_dir[0] != '/' ? "run_dir" : "state_dir",
			   "expected an absolute path");
		errors++;
	}
	errors += load_fence_nodes(c, x);
	errors += check_fence_agent(c, "fence_agent", c->fence_agent, sizeof(c->fence_agent));
	rc = errors ? -1 : 0;
out:
	if (x)
		xlu_cfg_destroy(x);
	if (report)
		fclose(report);
	return rc;
}

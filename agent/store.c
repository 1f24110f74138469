#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/guests.h"
#include "agent/store.h"
#include "lib/fsutil.h"
#include "lib/log.h"

static int guest_path(const struct hagentd *d, const char *name, const char *ext, char *buf,
		      size_t len)
{
	return fs_path(buf, len, "%s/guests/%s.%s", d->conf.state_dir, name, ext);
}

int store_init(struct hagentd *d)
{
	char dir[PATH_MAX];

	if (fs_path(dir, sizeof(dir), "%s/guests", d->conf.state_dir) < 0)
		return -1;
	return fs_mkdir_p(dir, 0700);
}

int store_save_def(struct hagentd *d, const struct guest *g)
{
	char path[PATH_MAX];

	if (guest_path(d, g->cfg.name, "cfg", path, sizeof(path)) < 0)
		return -1;
	return fs_write_atomic(path, g->text, g->text_len, 0600);
}

int store_save_state(struct hagentd *d, const struct guest *g)
{
	char path[PATH_MAX], buf[PATH_MAX + 512];
	int n;

	if (guest_path(d, g->cfg.name, "state", path, sizeof(path)) < 0)
		return -1;
	n = snprintf(buf, sizeof(buf),
		     "desired=%s\nmaxmem=%ld\nfailed=%s\nowner=%s\ngen=%llu\nsource=%s\n",
		     g->desired == DESIRED_RUNNING ? "running" : "stopped", g->maxmem_mib,
		     g->state == GS_FAILED ? "1" : "0", g->owner, (unsigned long long)g->gen,
		     g->cfg.source);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return fs_write_atomic(path, buf, (size_t)n, 0600);
}

int store_remove(struct hagentd *d, const char *name)
{
	char path[PATH_MAX];
	int rc = 0;

	if (guest_path(d, name, "state", path, sizeof(path)) == 0 && unlink(path) < 0 &&
	    errno != ENOENT)
		rc = -1;
	if (guest_path(d, name, "cfg", path, sizeof(path)) == 0 && unlink(path) < 0 &&
	    errno != ENOENT)
		rc = -1;
	return rc;
}

struct stored_state {
	enum desired desired;
	long maxmem_mib;  /* 0 = as in the file */
	bool failed;
	char owner[64];
	uint64_t gen;
	char source[PATH_MAX];
};

/* NAME.state is ours: key=value lines.  A missing one means defined and
 * stopped (a crash between the two writes of an add). */
static void load_state(struct hagentd *d, const char *name, struct stored_state *st)
{
	char path[PATH_MAX], *text = NULL, *line, *save = NULL;

	memset(st, 0, sizeof(*st));
	if (guest_path(d, name, "state", path, sizeof(path)) < 0 ||
	    fs_read_file(path, 8192, &text) < 0)
		return;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq++ = '\0';
		if (!strcmp(line, "desired"))
			st->desired = strcmp(eq, "running") ? DESIRED_STOPPED : DESIRED_RUNNING;
		else if (!strcmp(line, "maxmem"))
			st->maxmem_mib = strtol(eq, NULL, 10) > 0 ? strtol(eq, NULL, 10) : 0;
		else if (!strcmp(line, "failed"))
			st->failed = !strcmp(eq, "1");
		else if (!strcmp(line, "source"))
			snprintf(st->source, sizeof(st->source), "%s", eq);
		else if (!strcmp(line, "owner"))
			snprintf(st->owner, sizeof(st->owner), "%s", eq);
		else if (!strcmp(line, "gen"))
			st->gen = strtoull(eq, NULL, 10);
	}
	free(text);
}

/* Call each(NAME, PATH) for every STATE_DIR/guests/NAME.ext whose NAME fits
 * a guest name. */
typedef void (*stored_fn)(struct hagentd *d, const char *name, const char *path, void *arg);

static int scan(struct hagentd *d, const char *ext, stored_fn each, void *arg)
{
	char dir[PATH_MAX];
	size_t elen = strlen(ext);
	struct dirent *de;
	DIR *dh;

	if (fs_path(dir, sizeof(dir), "%s/guests", d->conf.state_dir) < 0)
		return -1;
	dh = opendir(dir);
	if (!dh)
		return -1;
	while ((de = readdir(dh))) {
		char path[PATH_MAX], name[GUEST_NAME_MAX];
		size_t nlen = strlen(de->d_name);

		if (nlen <= elen || strcmp(de->d_name + nlen - elen, ext) ||
		    nlen - elen >= sizeof(name))
			continue;
		memcpy(name, de->d_name, nlen - elen);
		name[nlen - elen] = '\0';
		if (fs_path(path, sizeof(path), "%s/%s", dir, de->d_name) < 0)
			continue;
		each(d, name, path, arg);
	}
	closedir(dh);
	return 0;
}

static void load_one(struct hagentd *d, const char *name, const char *path, void *arg)
{
	struct guestcfg_diags diags = { .n = 0 };
	struct stored_state st;
	struct guest *g;
	char *text = NULL;
	ssize_t len;

	len = fs_read_file(path, GUEST_FILE_MAX, &text);
	if (len < 0) {
		log_err("stored guest %s: cannot read %s: %s (left in place)", name, path,
			strerror(errno));
		return;
	}
	/* Parse as from its original file: relative paths in it are
	 * relative to where the user kept it. */
	load_state(d, name, &st);
	g = guests_new(d, text, (size_t)len, st.source[0] ? st.source : path, &diags);
	free(text);
	if (!g) {
		char msg[512];
		int i;
		for (i = 0; i < diags.n; i++) {
			if (diags.d[i].level != DIAG_ERROR)
				continue;
			guestcfg_diag_format(&diags.d[i], path, msg, sizeof(msg));
			log_err("stored guest %s skipped (left in place): %s", name, msg);
		}
		return;
	}
	if (strcmp(g->cfg.name, name)) {
		log_err("stored guest file %s names guest '%s': skipped (left in place)", path,
			g->cfg.name);
		guests_free(g);
		return;
	}
	g->desired = st.desired;
	if (st.maxmem_mib)
		g->maxmem_mib = st.maxmem_mib;
	if (st.failed)
		g->state = GS_FAILED;
	snprintf(g->owner, sizeof(g->owner), "%s", st.owner);
	g->gen = st.gen;
	guests_insert(d, g);
}

int store_load_all(struct hagentd *d)
{
	return scan(d, ".cfg", load_one, NULL);
}

/* Tombstones: NAME.removed holds the generation of an undefine, so a host
 * that was away cannot bring the guest back from its own copy. */
int store_save_tomb(struct hagentd *d, const char *name, uint64_t gen)
{
	char path[PATH_MAX], buf[64];
	int n = snprintf(buf, sizeof(buf), "gen=%llu\n", (unsigned long long)gen);

	if (guest_path(d, name, "removed", path, sizeof(path)) < 0)
		return -1;
	return fs_write_atomic(path, buf, (size_t)n, 0600);
}

int store_remove_tomb(struct hagentd *d, const char *name)
{
	char path[PATH_MAX];

	if (guest_path(d, name, "removed", path, sizeof(path)) < 0)
		return -1;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

struct tomb_scan {
	store_tomb_fn fn;
	void *arg;
};

static void tomb_one(struct hagentd *d, const char *name, const char *path, void *arg)
{
	struct tomb_scan *t = arg;
	unsigned long long gen;
	char *text = NULL;

	if (fs_read_file(path, 256, &text) < 0)
		return;
	if (sscanf(text, "gen=%llu", &gen) == 1)
		t->fn(t->arg, name, (uint64_t)gen);
	else
		log_err("tombstone %s: unreadable (left in place)", path);
	free(text);
}

int store_load_tombs(struct hagentd *d, store_tomb_fn fn, void *arg)
{
	struct tomb_scan t = { .fn = fn, .arg = arg };

	return scan(d, ".removed", tomb_one, &t);
}

/* STATE_DIR/standby: this host is in standby (hactl node standby) across
 * restarts; absent when online. */
int store_save_standby(struct hagentd *d)
{
	char path[PATH_MAX];

	if (fs_path(path, sizeof(path), "%s/standby", d->conf.state_dir) < 0)
		return -1;
	if (!d->standby)
		return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
	return fs_write_atomic(path, "standby\n", 8, 0600);
}

void store_load_standby(struct hagentd *d)
{
	char path[PATH_MAX];

	d->standby = fs_path(path, sizeof(path), "%s/standby", d->conf.state_dir) == 0 &&
		     access(path, F_OK) == 0;
}

/* A host's storage through its tools: see storage_host.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "storage_host.h"

/* snprintf that may cut: every message here is bounded on purpose */
__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void trim(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	while (*s == ' ' || *s == '\t') {
		memmove(s, s + 1, n);
		n--;
	}
}

int stor_run(char *const argv[], int timeout_s, char *out, size_t outlen)
{
	int p[2], status = 0, rc;
	size_t used = 0;
	long long end = mono_ms() + (long long)timeout_s * 1000;
	bool timed_out = false;
	pid_t pid;

	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) < 0) {
		say(out, outlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		say(out, outlen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		setpgid(0, 0);
		if (null >= 0)
			dup2(null, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		/* the tools' messages in one language, lvm's without its fd warnings */
		setenv("LC_ALL", "C", 1);
		setenv("LVM_SUPPRESS_FD_WARNINGS", "1", 1);
		execvp(argv[0], argv);
		dprintf(2, "%s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		long long left = end - mono_ms();
		char buf[512];
		ssize_t n;

		if (left <= 0) {
			timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			break;
		}
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;
		n = read(p[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (used + 1 < outlen) {
			size_t k = (size_t)n < outlen - 1 - used ? (size_t)n : outlen - 1 - used;
			memcpy(out + used, buf, k);
			used += k;
			out[used] = '\0';
		}
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	trim(out);
	if (timed_out) {
		say(out, outlen, "%s did not finish within %d s", argv[0], timeout_s);
		return 124;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == 127 && !strncmp(out, argv[0], strlen(argv[0])) ? -1
											  : WEXITSTATUS(status);
	say(out, outlen, "%s killed by signal %d", argv[0], WTERMSIG(status));
	return -1;
}

/* a migration's destination waits this long for the source's window */
#define DRBD_PEER_WAIT_MS 15000
/* a promotion tries again within this (see stor_activate) */
#define DRBD_PROMOTE_RETRY_MS 3000

#define RUN(out, ...) stor_run((char *const[]){ __VA_ARGS__, NULL }, STOR_TOOL_TIMEOUT_S, out, sizeof(out))

/* the first line of a tool's message, for an error */
static const char *first_line(char *s)
{
	char *nl = strchr(s, '\n');

	if (nl)
		*nl = '\0';
	return s;
}

/* ---- LVM ----------------------------------------------------------- */

static void lv_name(const struct stor_ref *r, char *buf, size_t len)
{
	say(buf, len, "%s/%s", r->vg, r->lv);
}

/* /dev/mapper/VG-LV with '-' doubled, which device-mapper makes itself
 * even without udev (the /dev/VG/LV link needs udev or lvm's own nodes). */
static void lv_dev(const struct stor_ref *r, const char *target, char *dev, size_t len)
{
	char m[300];
	size_t o = 0;
	const char *parts[2] = { r->vg, r->lv };
	int i;

	if (access(target, F_OK) == 0) {
		say(dev, len, "%s", target);
		return;
	}
	for (i = 0; i < 2; i++) {
		const char *s;
		if (i)
			m[o++] = '-';
		for (s = parts[i]; *s && o + 3 < sizeof(m); s++) {
			m[o++] = *s;
			if (*s == '-')
				m[o++] = '-';
		}
	}
	m[o] = '\0';
	say(dev, len, "/dev/mapper/%s", m);
}

static void probe_lvm(const struct stor_ref *r, const char *target, struct stor_status *st)
{
	char name[260], out[512];
	int rc;

	lv_name(r, name, sizeof(name));
	rc = RUN(out, "lvs", "--noheadings", "-o", "lv_attr", name);
	if (rc != 0) {
		char vout[512];
		if (rc < 0 || rc == 124) {
			say(st->detail, sizeof(st->detail), "LVM: %s", first_line(out));
			return;
		}
		if (RUN(vout, "vgs", "--noheadings", "-o", "vg_name", (char *)r->vg) != 0)
			say(st->detail, sizeof(st->detail), "volume group %s not found", r->vg);
		else
			say(st->detail, sizeof(st->detail), "logical volume %s not found in VG %s",
				 r->lv, r->vg);
		return;
	}
	/* lv_attr: (type)(perm)(alloc)(fixed)(state)(open)(target)(zero)(health) */
	if (strlen(out) >= 9 && out[8] == 'p') {
		say(st->detail, sizeof(st->detail), "LV %s is partial (a PV of VG %s is missing)",
			 name, r->vg);
		return;
	}
	st->usable = true;
	st->active = strlen(out) >= 5 && out[4] == 'a';
	if (st->active)
		lv_dev(r, target, st->dev, sizeof(st->dev));
	say(st->detail, sizeof(st->detail), "LV %s %s", name, st->active ? "active" : "inactive");
}

/* ---- iSCSI --------------------------------------------------------- */

static int read_line(const char *path, char *buf, size_t len)
{
	char *s = NULL;
	ssize_t n = fs_read_file(path, len, &s);

	if (n < 0)
		return -1;
	say(buf, len, "%s", s);
	free(s);
	trim(buf);
	return 0;
}

/* The session of the target (sysfs: iscsi_session/sessionN/targetname),
 * its state, and the block device of the LUN (lun < 0: the lowest LUN
 * that has a disk). */
static bool iscsi_session(const struct stor_ref *r, char *state, size_t slen, char *dev, size_t dlen)
{
	DIR *dh = opendir("/sys/class/iscsi_session");
	struct dirent *de;
	bool found = false;

	dev[0] = '\0';
	if (!dh)
		return false;
	while (!found && (de = readdir(dh))) {
		char path[PATH_MAX], tn[256], ddir[PATH_MAX];
		DIR *t;
		struct dirent *te;
		int best = -1;

		if (strncmp(de->d_name, "session", 7))
			continue;
		say(path, sizeof(path), "/sys/class/iscsi_session/%s/targetname", de->d_name);
		if (read_line(path, tn, sizeof(tn)) < 0 || strcmp(tn, r->iqn))
			continue;
		found = true;
		say(path, sizeof(path), "/sys/class/iscsi_session/%s/state", de->d_name);
		if (read_line(path, state, slen) < 0)
			say(state, slen, "unknown");
		/* sessionN/device/targetH:C:T/H:C:T:L/block/sdX */
		say(ddir, sizeof(ddir), "/sys/class/iscsi_session/%s/device", de->d_name);
		if (!(t = opendir(ddir)))
			continue;
		while ((te = readdir(t))) {
			char tdir[PATH_MAX];
			DIR *l;
			struct dirent *le;

			if (strncmp(te->d_name, "target", 6))
				continue;
			say(tdir, sizeof(tdir), "%s/%s", ddir, te->d_name);
			if (!(l = opendir(tdir)))
				continue;
			while ((le = readdir(l))) {
				const char *c = strrchr(le->d_name, ':');
				char bdir[PATH_MAX];
				DIR *b;
				struct dirent *be;
				int lun;

				if (!c || le->d_name[0] < '0' || le->d_name[0] > '9')
					continue;
				lun = atoi(c + 1);
				if ((r->lun >= 0 && lun != r->lun) || (best >= 0 && lun >= best))
					continue;
				say(bdir, sizeof(bdir), "%s/%s/block", tdir, le->d_name);
				if (!(b = opendir(bdir)))
					continue;
				while ((be = readdir(b))) {
					if (be->d_name[0] == '.')
						continue;
					say(dev, dlen, "/dev/%s", be->d_name);
					best = lun;
					break;
				}
				closedir(b);
			}
			closedir(l);
		}
		closedir(t);
	}
	closedir(dh);
	return found;
}

static void probe_iscsi(const struct stor_ref *r, struct stor_status *st)
{
	char state[64], dev[PATH_MAX];

	if (!iscsi_session(r, state, sizeof(state), dev, sizeof(dev))) {
		st->usable = true; /* a start logs in */
		say(st->detail, sizeof(st->detail), "iSCSI %s: not logged in (portal %s)", r->iqn,
			 r->portal);
		return;
	}
	if (strcmp(state, "LOGGED_IN")) {
		say(st->detail, sizeof(st->detail), "iSCSI %s: session %s", r->iqn, state);
		return;
	}
	if (!dev[0]) {
		say(st->detail, sizeof(st->detail), "iSCSI %s: logged in, but no disk LUN%s", r->iqn,
			 r->lun >= 0 ? " of that number" : "");
		return;
	}
	st->usable = st->active = true;
	say(st->dev, sizeof(st->dev), "%s", dev);
	say(st->detail, sizeof(st->detail), "iSCSI %s: logged in, %s", r->iqn, dev);
}

/* ---- DRBD ---------------------------------------------------------- */

/* The resource a disk names: drbd:RES, by-res, or the one whose minor it is. */
static int drbd_res(const struct stor_ref *r, char *res, size_t len, char *err, size_t errlen)
{
	char out[2048], *save = NULL, *name;

	if (r->res[0]) {
		say(res, len, "%s", r->res);
		return 0;
	}
	if (RUN(out, "drbdadm", "sh-resources") != 0) {
		say(err, errlen, "drbdadm sh-resources: %s", first_line(out));
		return -1;
	}
	for (name = strtok_r(out, " \n", &save); name; name = strtok_r(NULL, " \n", &save)) {
		char m[256], *ms = NULL, *tok;
		if (RUN(m, "drbdadm", "sh-minor", name) != 0)
			continue;
		for (tok = strtok_r(m, " \n", &ms); tok; tok = strtok_r(NULL, " \n", &ms))
			if (atoi(tok) == r->minor) {
				say(res, len, "%s", name);
				return 0;
			}
	}
	say(err, errlen, "no DRBD resource of this host has minor %d", r->minor);
	return -1;
}

static void drbd_dev(const struct stor_ref *r, const char *res, char *dev, size_t len)
{
	char out[512], *save = NULL, *tok;
	int i = 0;

	if (r->minor >= 0) {
		say(dev, len, "/dev/drbd%d", r->minor);
		return;
	}
	dev[0] = '\0';
	if (RUN(out, "drbdadm", "sh-minor", (char *)res) != 0)
		return;
	for (tok = strtok_r(out, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save), i++)
		if (i == r->volume) {
			say(dev, len, "/dev/drbd%d", atoi(tok));
			return;
		}
}

/* "Primary/Secondary" → mine "Primary", peer "Secondary" */
static int drbd_get(const char *what, const char *res, char *mine, size_t mlen, char *peer, size_t plen,
		    char *err, size_t errlen)
{
	char out[512], *slash;
	int rc = RUN(out, "drbdadm", (char *)what, (char *)res);

	if (rc != 0) {
		say(err, errlen, "%s", first_line(out));
		return -1;
	}
	first_line(out);
	slash = strchr(out, '/');
	if (slash)
		*slash = '\0';
	say(mine, mlen, "%s", out);
	if (peer)
		say(peer, plen, "%s", slash ? slash + 1 : "");
	return 0;
}

static void probe_drbd(const struct stor_ref *r, struct stor_status *st)
{
	char res[64], role[32], prole[32], disk[32], pdisk[32], conn[32], err[256];

	if (drbd_res(r, res, sizeof(res), err, sizeof(err)) < 0) {
		say(st->detail, sizeof(st->detail), "%s", err);
		return;
	}
	if (drbd_get("role", res, role, sizeof(role), prole, sizeof(prole), err, sizeof(err)) < 0 ||
	    drbd_get("dstate", res, disk, sizeof(disk), pdisk, sizeof(pdisk), err, sizeof(err)) < 0 ||
	    drbd_get("cstate", res, conn, sizeof(conn), NULL, 0, err, sizeof(err)) < 0) {
		say(st->detail, sizeof(st->detail), "DRBD %s: %s", res, err);
		return;
	}
	say(st->detail, sizeof(st->detail), "DRBD %s: %s/%s %s/%s %s", res, role, prole, disk,
		 pdisk, conn);
	st->active = !strcmp(role, "Primary");
	if (st->active)
		drbd_dev(r, res, st->dev, sizeof(st->dev));
	if (strcmp(disk, "UpToDate"))
		return; /* Outdated, Inconsistent, Diskless...: not this host's to run */
	if (!strcmp(conn, "StandAlone") && !st->active) {
		/* split brain, or an admin's disconnect: which side is good is a person's call */
		say(st->detail + strlen(st->detail), sizeof(st->detail) - strlen(st->detail),
			 " (split brain or disconnected: not promoted here until reconnected)");
		return;
	}
	st->usable = true;
}

/* ---- all kinds ----------------------------------------------------- */

void stor_probe(const struct stor_ref *r, const char *target, struct stor_status *st)
{
	struct stat sb;

	memset(st, 0, sizeof(*st));
	switch (r->kind) {
	case STOR_NONE:
		st->usable = true;
		say(st->detail, sizeof(st->detail), "empty drive");
		break;
	case STOR_FILE:
	case STOR_BLOCK:
		if (stat(target, &sb) < 0) {
			say(st->detail, sizeof(st->detail), "%s: %s", target, strerror(errno));
		} else {
			st->usable = st->active = true;
			say(st->dev, sizeof(st->dev), "%s", target);
			say(st->detail, sizeof(st->detail), "%s present", target);
		}
		break;
	case STOR_LVM:
		probe_lvm(r, target, st);
		break;
	case STOR_ISCSI:
		probe_iscsi(r, st);
		break;
	case STOR_DRBD:
		probe_drbd(r, st);
		break;
	}
}

static int iscsi_login(const struct stor_ref *r, char *dev, size_t devlen, char *err, size_t errlen)
{
	char out[1024], state[64];
	long long end;
	int rc;

	if (iscsi_session(r, state, sizeof(state), dev, devlen) && dev[0] && !strcmp(state, "LOGGED_IN"))
		return 0;
	/* the node record (discovery), then the login */
	rc = RUN(out, "iscsiadm", "-m", "discovery", "-t", "sendtargets", "-p", (char *)r->portal);
	if (rc != 0) {
		say(err, errlen, "iSCSI discovery at %s failed: %s", r->portal, first_line(out));
		return -1;
	}
	rc = RUN(out, "iscsiadm", "-m", "node", "-T", (char *)r->iqn, "-p", (char *)r->portal, "--login");
	if (rc != 0 && rc != 15) { /* 15: already logged in */
		say(err, errlen, "iSCSI login to %s at %s failed: %s", r->iqn, r->portal,
			 first_line(out));
		return -1;
	}
	/* the LUN's disk appears once the SCSI scan is done */
	end = mono_ms() + STOR_TOOL_TIMEOUT_S * 1000LL;
	while (mono_ms() < end) {
		if (iscsi_session(r, state, sizeof(state), dev, devlen) && dev[0] &&
		    access(dev, F_OK) == 0)
			return 0;
		poll(NULL, 0, 100);
	}
	say(err, errlen, "iSCSI %s: logged in, but no disk LUN appeared within %d s", r->iqn,
		 STOR_TOOL_TIMEOUT_S);
	return -1;
}

int stor_activate(const struct stor_ref *r, const char *target, bool shared, char *dev,
		  size_t devlen, char *err, size_t errlen)
{
	char out[1024], name[260], res[64];
	struct stor_status st;
	int rc;

	err[0] = '\0';
	dev[0] = '\0';
	switch (r->kind) {
	case STOR_NONE:
		return 0;
	case STOR_FILE:
	case STOR_BLOCK:
		stor_probe(r, target, &st);
		if (!st.usable) {
			say(err, errlen, "%s", st.detail);
			return -1;
		}
		say(dev, devlen, "%s", target);
		return 0;
	case STOR_LVM:
		lv_name(r, name, sizeof(name));
		/* exclusive for a start; a migration's destination shares it */
		rc = RUN(out, "lvchange", shared ? "-ay" : "-aey", name);
		if (rc != 0) {
			say(err, errlen, "lvchange %s %s failed: %s", shared ? "-ay" : "-aey", name,
				 first_line(out));
			return -1;
		}
		lv_dev(r, target, dev, devlen);
		if (access(dev, F_OK) < 0) {
			say(err, errlen, "LV %s is active but %s does not exist", name, dev);
			RUN(out, "lvchange", "-an", name);
			return -1;
		}
		return 0;
	case STOR_ISCSI:
		return iscsi_login(r, dev, devlen, err, errlen);
	case STOR_DRBD:
		if (drbd_res(r, res, sizeof(res), err, errlen) < 0)
			return -1;
		stor_probe(r, target, &st);
		if (!st.usable) {
			say(err, errlen, "%s", st.detail);
			return -1;
		}
		if (!st.active) {
			/* a migration's destination: the second primary of the
			 * window, which the source opens at the same time.  A
			 * start after the peer's loss: the first attempt may be
			 * refused while DRBD only then notices the peer gone and
			 * runs its fence-peer handler, which marks the peer
			 * Outdated; the next succeeds (measured, 8.4.11). */
			long long end = mono_ms() + (shared ? DRBD_PEER_WAIT_MS : DRBD_PROMOTE_RETRY_MS);
			if (shared && stor_window(r, true, err, errlen) < 0)
				return -1;
			while ((rc = RUN(out, "drbdadm", "primary", res)) != 0 && mono_ms() < end)
				poll(NULL, 0, shared ? 500 : 1000);
			if (rc != 0) {
				say(err, errlen, "drbdadm primary %s failed: %s", res, first_line(out));
				if (shared)
					RUN(out, "drbdadm", "net-options", "--allow-two-primaries=no", res);
				return -1;
			}
		}
		drbd_dev(r, res, dev, devlen);
		if (!dev[0] || access(dev, F_OK) < 0) {
			say(err, errlen, "DRBD %s is Primary but its device %s does not exist", res,
				 dev[0] ? dev : "(none)");
			RUN(out, "drbdadm", "secondary", res);
			return -1;
		}
		(void)shared; /* a second primary needs the window open (stor_window) */
		return 0;
	}
	return 0;
}

int stor_release(const struct stor_ref *r, const char *target, char *err, size_t errlen)
{
	char out[1024], name[260], res[64];
	int rc;

	(void)target;
	err[0] = '\0';
	switch (r->kind) {
	case STOR_LVM:
		lv_name(r, name, sizeof(name));
		rc = RUN(out, "lvchange", "-an", name);
		if (rc != 0) {
			say(err, errlen, "lvchange -an %s failed: %s", name, first_line(out));
			return -1;
		}
		return 0;
	case STOR_DRBD:
		if (drbd_res(r, res, sizeof(res), err, errlen) < 0)
			return -1;
		rc = RUN(out, "drbdadm", "secondary", res);
		if (rc != 0) {
			say(err, errlen, "drbdadm secondary %s failed: %s", res, first_line(out));
			return -1;
		}
		/* a migration's window, if one was open, ends with this host's
		 * primary role; the other end closes it too */
		RUN(out, "drbdadm", "net-options", "--allow-two-primaries=no", res);
		return 0;
	default:
		return 0;
	}
}

int stor_window(const struct stor_ref *r, bool open, char *err, size_t errlen)
{
	char out[1024], res[64];
	int rc;

	err[0] = '\0';
	if (r->kind != STOR_DRBD)
		return 0;
	if (drbd_res(r, res, sizeof(res), err, errlen) < 0)
		return -1;
	rc = RUN(out, "drbdadm", "net-options",
		 open ? "--allow-two-primaries=yes" : "--allow-two-primaries=no", res);
	if (rc != 0) {
		say(err, errlen, "drbdadm net-options --allow-two-primaries=%s %s failed: %s",
			 open ? "yes" : "no", res, first_line(out));
		return -1;
	}
	return 0;
}

void stor_check_cfg(const struct guest_cfg *cfg, struct guestcfg_diags *diags)
{
	int i;

	for (i = 0; i < cfg->n_disks && i < GUEST_MAX_DISKS; i++) {
		const struct guest_disk *d = &cfg->disks[i];
		struct stor_status st;
		char what[300];

		if (d->stor.kind == STOR_FILE) {
			char fs[32];
			int shared = stor_file_shared(d->target, fs, sizeof(fs));
			if (shared > 0)
				guestcfg_diag_add(diags, DIAG_NOTE, 0, "disk", "%s image file %s: on a shared %s mount",
						  d->vdev, d->target, fs);
			else if (shared == 0)
				guestcfg_diag_add(diags, DIAG_NOTE, 0, "disk",
						  "%s image file %s: on a local %s filesystem: only hosts "
						  "that have this file can run the guest", d->vdev, d->target, fs);
			continue; /* missing: guestcfg_check_host says so */
		}
		if (!stor_activated(d->stor.kind))
			continue; /* plain devices: guestcfg_check_host */
		stor_describe(&d->stor, d->target, what, sizeof(what));
		stor_probe(&d->stor, d->target, &st);
		guestcfg_diag_add(diags, st.usable ? DIAG_NOTE : DIAG_ERROR, 0, "disk", "%s %s: %s%s",
				  d->vdev, what, st.detail,
				  st.usable ? "" : " (this host cannot run the guest)");
	}
}

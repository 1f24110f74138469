/* This host's view of its guests' storage, published through the registry
 * (RegOp STORAGE) so that placement keeps guests off hosts where their
 * storage is not usable, and `hactl status` shows it.
 *
 * A refresh runs in a child (the probes run lvs, drbdadm, read sysfs) and
 * reports two texts: one line per storage item ("LVM volume vg/web1: LV
 * vg/web1 inactive"), and "GUEST\tREASON" per guest this host cannot run.
 * What triggers one, never a busy poll:
 *   - a kernel uevent (NETLINK_KOBJECT_UEVENT): block devices appearing and
 *     going (an LV activated, an iSCSI LUN logged in or lost), SCSI and
 *     iSCSI session changes;
 *   - a line from `drbdsetup events2 all` (role, disk, connection changes),
 *     started while some guest is on DRBD and restarted if it ends;
 *   - a guest defined or undefined, a storage job's end;
 *   - a backstop every storage_refresh seconds (hagent.conf; 60).
 * Triggers within TO_STORAGE_DEBOUNCE_MS make one refresh; one runs at a
 * time, and one more follows if something happened meanwhile. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/guests.h"
#include "agent/registry.h"
#include "agent/storage.h"
#include "agent/timeouts.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/storage_host.h"

#define INFO_MAX 2048
#define BAD_MAX 4096

struct stormon {
	struct hagentd *d;
	bool on;
	/* the refresh */
	pid_t pid;
	int fd;
	char out[8192];
	size_t used;
	bool again;               /* a trigger came while one ran */
	qb_loop_timer_handle debounce, backstop;
	bool debounce_on, backstop_on;
	uint64_t started_ms;
	/* what it found, and what the cluster last heard */
	char info[INFO_MAX], bad[BAD_MAX];
	char sent_info[INFO_MAX], sent_bad[BAD_MAX];
	bool sent_once;
	/* triggers */
	int uevent_fd;
	pid_t ev_pid;             /* drbdsetup events2 */
	int ev_fd;
	char ev_line[512];
	size_t ev_used;
	qb_loop_timer_handle ev_restart;
	bool ev_restart_on;
};

static struct stormon mon = { .fd = -1, .uevent_fd = -1, .ev_fd = -1 };

void storage_published(struct hagentd *d, const char **info, const char **bad)
{
	(void)d;
	*info = mon.info;
	*bad = mon.bad;
}

static void publish(void)
{
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	struct hagentd *d = mon.d;

	if (!registry_active(d))
		return; /* the SYNC at the join carries it */
	if (mon.sent_once && !strcmp(mon.info, mon.sent_info) && !strcmp(mon.bad, mon.sent_bad))
		return;
	op.kind = HAGENT__REG_OP__KIND__STORAGE;
	op.node = d->conf.node_name;
	op.storage = mon.info;
	op.unusable = mon.bad;
	if (registry_mcast(d, &op) < 0) {
		log_warn("storage: cannot publish this host's storage (%s); trying again",
			 strerror(errno));
		storage_kick(d, NULL);
		return;
	}
	snprintf(mon.sent_info, sizeof(mon.sent_info), "%s", mon.info);
	snprintf(mon.sent_bad, sizeof(mon.sent_bad), "%s", mon.bad);
	mon.sent_once = true;
}

/* ---- the refresh child -------------------------------------------- */

static void emit(int fd, const char *kind, const char *text)
{
	char line[700];
	int n = snprintf(line, sizeof(line), "%s %.600s\n", kind, text);

	if (n > 0)
		(void)fs_write_all(fd, line, (size_t)n);
}

#define SEEN_MAX 64

static int refresh_child(struct hagentd *d, int fd)
{
	static char seen[SEEN_MAX][300];
	int n_seen = 0;
	struct guest *g;

	guests_for_each(g, d) {
		struct guest_cfg *cfg;
		char bad[600] = "";
		int i;

		if (g->orphan || !(cfg = guests_load_cfg(g)))
			continue;
		for (i = 0; i < cfg->n_disks; i++) {
			const struct guest_disk *dk = &cfg->disks[i];
			enum stor_kind k = dk->stor.kind;
			struct stor_status st;
			char what[300], line[600];
			int s;

			if (k == STOR_NONE)
				continue;
			stor_describe(&dk->stor, dk->target, what, sizeof(what));
			stor_probe(&dk->stor, dk->target, &st);
			if (!st.usable && !bad[0])
				snprintf(bad, sizeof(bad), "%s\t%s %.200s: %.250s", g->cfg.name, dk->vdev,
					 what, st.detail);
			if (!stor_activated(k))
				continue; /* files: only when missing, as above */
			for (s = 0; s < n_seen && strcmp(seen[s], what); s++)
				;
			if (s < n_seen)
				continue;
			if (n_seen < SEEN_MAX)
				snprintf(seen[n_seen++], sizeof(seen[0]), "%s", what);
			snprintf(line, sizeof(line), "%.280s: %.300s", what, st.detail);
			emit(fd, "info", line);
		}
		if (bad[0])
			emit(fd, "bad", bad);
		free(cfg);
	}
	(void)fs_write_all(fd, "end\n", 4);
	return 0;
}

static void refresh_start(void);

static void refresh_ended(void)
{
	char *line, *save = NULL;
	size_t ni = 0, nb = 0;
	bool complete = false;
	int status = 0;

	qb_loop_poll_del(mon.d->loop, mon.fd);
	close(mon.fd);
	mon.fd = -1;
	while (waitpid(mon.pid, &status, 0) < 0 && errno == EINTR)
		;
	mon.pid = 0;
	mon.out[mon.used] = '\0';
	mon.info[0] = mon.bad[0] = '\0';
	for (line = strtok_r(mon.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "info ", 5) && ni + strlen(line + 5) + 2 < sizeof(mon.info))
			ni += (size_t)snprintf(mon.info + ni, sizeof(mon.info) - ni, "%s\n", line + 5);
		else if (!strncmp(line, "bad ", 4) && nb + strlen(line + 4) + 2 < sizeof(mon.bad))
			nb += (size_t)snprintf(mon.bad + nb, sizeof(mon.bad) - nb, "%s\n", line + 4);
		else if (!strcmp(line, "end"))
			complete = true;
	}
	mon.used = 0;
	if (!complete) {
		log_warn("storage: the probe ended early (status 0x%x): keeping the last report",
			 (unsigned)status);
		snprintf(mon.info, sizeof(mon.info), "%s", mon.sent_info);
		snprintf(mon.bad, sizeof(mon.bad), "%s", mon.sent_bad);
	} else {
		log_debug("storage: probed in %llu ms", (unsigned long long)(now_ms() - mon.started_ms));
		publish();
	}
	if (mon.again) {
		mon.again = false;
		refresh_start();
	}
}

static int refresh_readable(int fd, int revents, void *arg)
{
	char buf[1024];
	ssize_t n = read(fd, buf, sizeof(buf));

	(void)arg;
	(void)revents;
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n > 0) {
		size_t k = (size_t)n;
		if (k > sizeof(mon.out) - 1 - mon.used)
			k = sizeof(mon.out) - 1 - mon.used;
		memcpy(mon.out + mon.used, buf, k);
		mon.used += k;
		return 0;
	}
	refresh_ended();
	return 0;
}

static void refresh_start(void)
{
	int p[2];

	if (mon.pid) {
		mon.again = true;
		return;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_err("storage: pipe: %s", strerror(errno));
		return;
	}
	mon.pid = fork();
	if (mon.pid < 0) {
		log_err("storage: fork: %s", strerror(errno));
		mon.pid = 0;
		close(p[0]);
		close(p[1]);
		return;
	}
	if (mon.pid == 0) {
		close(p[0]);
		signal(SIGPIPE, SIG_IGN);
		_exit(refresh_child(mon.d, p[1]));
	}
	close(p[1]);
	mon.fd = p[0];
	mon.used = 0;
	mon.started_ms = now_ms();
	fcntl(mon.fd, F_SETFL, O_NONBLOCK);
	if (qb_loop_poll_add(mon.d->loop, QB_LOOP_LOW, mon.fd, POLLIN, NULL, refresh_readable) < 0) {
		log_err("storage: cannot watch the probe");
		kill(mon.pid, SIGKILL);
		waitpid(mon.pid, NULL, 0);
		mon.pid = 0;
		close(mon.fd);
		mon.fd = -1;
	}
}

static void debounce_fired(void *arg)
{
	(void)arg;
	mon.debounce_on = false;
	refresh_start();
}

void storage_kick(struct hagentd *d, const char *why)
{
	(void)d;
	if (!mon.on || mon.debounce_on)
		return;
	if (why)
		log_debug("storage: refresh (%s)", why);
	mon.debounce_on = qb_loop_timer_add(mon.d->loop, QB_LOOP_LOW,
					    TO_STORAGE_DEBOUNCE_MS * 1000000ULL, NULL, debounce_fired,
					    &mon.debounce) == 0;
}

static void backstop_fired(void *arg)
{
	(void)arg;
	mon.backstop_on = qb_loop_timer_add(mon.d->loop, QB_LOOP_LOW,
					    (uint64_t)mon.d->conf.storage_refresh_s * 1000000000ULL,
					    NULL, backstop_fired, &mon.backstop) == 0;
	storage_kick(mon.d, "backstop");
}

/* ---- triggers ----------------------------------------------------- */

static int uevent_readable(int fd, int revents, void *arg)
{
	char buf[4096];
	ssize_t n;
	bool relevant = false;

	(void)arg;
	(void)revents;
	while ((n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[n] = '\0';
		/* "ACTION@DEVPATH\0KEY=VALUE\0...": block devices, SCSI, iSCSI */
		if (strstr(buf, "/block/") || strstr(buf, "iscsi") || strstr(buf, "/drbd"))
			relevant = true;
	}
	if (relevant)
		storage_kick(mon.d, "uevent");
	return 0;
}

static void uevent_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			NETLINK_KOBJECT_UEVENT);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    qb_loop_poll_add(mon.d->loop, QB_LOOP_LOW, fd, POLLIN, NULL, uevent_readable) < 0) {
		log_info("storage: no kernel uevents (%s): refreshes come from jobs and every %ld s",
			 strerror(errno), mon.d->conf.storage_refresh_s);
		if (fd >= 0)
			close(fd);
		return;
	}
	mon.uevent_fd = fd;
}

static void events_start(void);

static void events_restart_fired(void *arg)
{
	(void)arg;
	mon.ev_restart_on = false;
	events_start();
}

static int events_readable(int fd, int revents, void *arg)
{
	char buf[1024];
	ssize_t n = read(fd, buf, sizeof(buf));
	ssize_t i;

	(void)arg;
	(void)revents;
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n > 0) {
		for (i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (mon.ev_used + 1 < sizeof(mon.ev_line))
					mon.ev_line[mon.ev_used++] = buf[i];
				continue;
			}
			mon.ev_line[mon.ev_used] = '\0';
			mon.ev_used = 0;
			/* "exists -" closes the initial dump; every other line is a change */
			if (strncmp(mon.ev_line, "exists", 6))
				storage_kick(mon.d, "drbd event");
		}
		return 0;
	}
	qb_loop_poll_del(mon.d->loop, fd);
	close(fd);
	mon.ev_fd = -1;
	waitpid(mon.ev_pid, NULL, 0);
	mon.ev_pid = 0;
	if (!mon.on)
		return 0;
	log_info("storage: drbdsetup events2 ended; again in %d s", TO_STORAGE_EVENTS_RETRY_S);
	mon.ev_restart_on = qb_loop_timer_add(mon.d->loop, QB_LOOP_LOW,
					      TO_STORAGE_EVENTS_RETRY_S * 1000000000ULL, NULL,
					      events_restart_fired, &mon.ev_restart) == 0;
	storage_kick(mon.d, "drbd events ended");
	return 0;
}

static bool any_drbd(struct hagentd *d)
{
	struct guest *g;
	bool yes = false;

	guests_for_each(g, d) {
		struct guest_cfg *cfg = g->orphan ? NULL : guests_load_cfg(g);
		int i;
		for (i = 0; cfg && i < cfg->n_disks && !yes; i++)
			yes = cfg->disks[i].stor.kind == STOR_DRBD;
		free(cfg);
		if (yes)
			break;
	}
	return yes;
}

static void events_start(void)
{
	int p[2];

	if (mon.ev_pid || mon.ev_restart_on || !any_drbd(mon.d))
		return;
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	mon.ev_pid = fork();
	if (mon.ev_pid == 0) {
		int null = open("/dev/null", O_RDWR);
		setpgid(0, 0);
		dup2(null, 0);
		dup2(p[1], 1);
		dup2(null, 2);
		execlp("drbdsetup", "drbdsetup", "events2", "all", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (mon.ev_pid < 0) {
		mon.ev_pid = 0;
		close(p[0]);
		return;
	}
	mon.ev_fd = p[0];
	mon.ev_used = 0;
	fcntl(mon.ev_fd, F_SETFL, O_NONBLOCK);
	if (qb_loop_poll_add(mon.d->loop, QB_LOOP_LOW, mon.ev_fd, POLLIN, NULL, events_readable) < 0) {
		kill(mon.ev_pid, SIGKILL);
		waitpid(mon.ev_pid, NULL, 0);
		mon.ev_pid = 0;
		close(mon.ev_fd);
		mon.ev_fd = -1;
	}
}

void storage_guests_changed(struct hagentd *d)
{
	if (!mon.on)
		return;
	events_start();
	storage_kick(d, "guests changed");
}

void storage_monitor_start(struct hagentd *d)
{
	mon.d = d;
	mon.on = true;
	uevent_open();
	events_start();
	backstop_fired(NULL); /* arms the backstop and kicks the first refresh */
}

void storage_monitor_stop(struct hagentd *d)
{
	(void)d;
	if (!mon.on)
		return;
	mon.on = false;
	if (mon.debounce_on)
		qb_loop_timer_del(d->loop, mon.debounce);
	if (mon.backstop_on)
		qb_loop_timer_del(d->loop, mon.backstop);
	if (mon.ev_restart_on)
		qb_loop_timer_del(d->loop, mon.ev_restart);
	mon.debounce_on = mon.backstop_on = mon.ev_restart_on = false;
	if (mon.uevent_fd >= 0) {
		qb_loop_poll_del(d->loop, mon.uevent_fd);
		close(mon.uevent_fd);
		mon.uevent_fd = -1;
	}
	if (mon.ev_pid) {
		qb_loop_poll_del(d->loop, mon.ev_fd);
		close(mon.ev_fd);
		kill(-mon.ev_pid, SIGTERM);
		waitpid(mon.ev_pid, NULL, 0);
		mon.ev_pid = 0;
		mon.ev_fd = -1;
	}
	if (mon.pid) {
		qb_loop_poll_del(d->loop, mon.fd);
		close(mon.fd);
		kill(mon.pid, SIGKILL);
		waitpid(mon.pid, NULL, 0);
		mon.pid = 0;
		mon.fd = -1;
	}
}

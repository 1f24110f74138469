/* The QEMU driver: one QEMU process per guest, watched through a pidfd and
 * driven through QMP, all from hagentd's qb_loop.
 *
 * Files under run_dir (see qemu_argv.h): NAME.qmp and NAME.serial are unix
 * sockets hagentd binds and listens on, then hands to QEMU as inherited
 * descriptors (QEMU 7.2 accepts fd= for a listening socket chardev; checked).
 * So the sockets exist before QEMU runs, hagentd's QMP connect succeeds at
 * once (queued on the listening socket) and nothing polls for a socket to
 * appear.  NAME.pid is QEMU's -pidfile, NAME.console.log everything the guest
 * writes on its serial port, NAME.qemu.log QEMU's stderr.
 *
 * QEMU is started so that it never decides a guest's fate itself: poweroff,
 * panic, watchdog and (unless on_reboot = restart) reboot leave it paused
 * and hagentd's supervisor applies the on_* policy (qemu_argv.c). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/timeouts.h"
#include "drivers/driver.h"
#include "drivers/qemu_argv.h"
#include "drivers/qmp.h"
#include "drivers/qemu_priv.h"
#include "lib/fsutil.h"
#include "lib/log.h"

#ifndef P_PIDFD
#define P_PIDFD 3 /* linux/wait.h; glibc's sys/wait.h may lack it */
#endif

/* Timers of the driver (quit grace, handshake, reset collapsing) live in
 * agent/timeouts.h with every other timer of hagentd. */
/* Where the child finds its two inherited listening sockets. */
#define QEMU_CHILD_QMP_FD 3
#define QEMU_CHILD_SERIAL_FD 4
/* How much of NAME.qemu.log an EXIT detail quotes. */
#define QEMU_LOG_TAIL 400
#define QEMU_CMDLINE_MAX (256 * 1024)
#define QEMU_DETAIL_MAX 512



/* ---- small helpers ------------------------------------------------------ */

static int sys_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static bool pidfd_exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

static void guest_hold(struct drv_guest *g)
{
	g->busy++;
}

static void guest_unhold(struct drv_guest *g)
{
	if (--g->busy == 0 && g->gone)
		free(g);
}

static void emit(struct drv_guest *g, enum drv_event ev, const char *detail,
		 const struct drv_exit *ex)
{
	if (g->gone)
		return;
	log_info("guest %s: %s%s%s", g->name, drv_event_name(ev), detail ? ": " : "",
		 detail ? detail : "");
	guest_hold(g);
	g->host->event(g->owner, ev, detail, ex);
	guest_unhold(g);
}

static const char *qmp_error_desc(json_t *error)
{
	const char *d = json_string_value(json_object_get(error, "desc"));

	return d ? d : "unknown QMP error";
}

/* PATH lookup for a binary named without a '/'. */
void qemu_guest_hold(struct drv_guest *g)
{
	guest_hold(g);
}

void qemu_guest_unhold(struct drv_guest *g)
{
	guest_unhold(g);
}

void qemu_emit(struct drv_guest *g, enum drv_event ev, const char *detail,
	       const struct drv_exit *ex)
{
	emit(g, ev, detail, ex);
}

const char *qemu_error_desc(json_t *error)
{
	return qmp_error_desc(error);
}

static int find_binary(const char *bin, char *out, size_t len)
{
	const char *path, *p;

	if (!bin || !*bin) {
		errno = ENOENT;
		return -1;
	}
	if (strchr(bin, '/')) {
		if (access(bin, X_OK) < 0)
			return -1;
		return fs_path(out, len, "%s", bin);
	}
	path = getenv("PATH");
	if (!path)
		path = "/usr/bin:/bin";
	for (p = path; *p;) {
		size_t n = strcspn(p, ":");

		if (n > 0 && fs_path(out, len, "%.*s/%s", (int)n, p, bin) == 0 &&
		    access(out, X_OK) == 0)
			return 0;
		p += n;
		if (*p == ':')
			p++;
	}
	errno = ENOENT;
	return -1;
}

/* ---- accelerator -------------------------------------------------------- */

/* The KVM probe result is shared by every guest of the process: whether the
 * host can run KVM does not change while hagentd runs, and a probe creates
 * a VM.  A driver-level singleton on purpose. -1 not probed, 0 no, 1 yes. */
static int kvm_usable = -1;

static int kvm_probe(char *why, size_t len)
{
	int kvm, vm = -1, vcpu = -1, rc = -1;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		snprintf(why, len, "/dev/kvm: %s", strerror(errno));
		return -1;
	}
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		snprintf(why, len, "unexpected KVM API version");
		goto out;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		snprintf(why, len, "KVM_CREATE_VM: %s", strerror(errno));
		goto out;
	}
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		snprintf(why, len, "KVM_CREATE_VCPU: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	close(kvm);
	return rc;
}

/* "auto" | "kvm" | "tcg" → "kvm" | "tcg"; NULL for anything else. */
static const char *qemu_accel(const char *want)
{
	char why[128];

	if (!want || strcmp(want, "auto") == 0) {
		if (kvm_usable < 0) {
			kvm_usable = kvm_probe(why, sizeof(why)) == 0;
			if (kvm_usable)
				log_info("qemu: KVM usable");
			else
				log_notice("KVM unavailable (%s), using TCG", why);
		}
		return kvm_usable ? "kvm" : "tcg";
	}
	if (strcmp(want, "kvm") == 0 || strcmp(want, "tcg") == 0)
		return want;
	return NULL;
}

/* ---- process ------------------------------------------------------------ */

/* Is a QEMU for this guest alive?  Reads NAME.pid and checks that the pid
 * runs "-name NAME": a pid file can outlive its process (SIGKILL) and the
 * pid be reused.  0 with *pidfd (when asked) on a match; -1 ESRCH otherwise,
 * after removing a stale pid file. */
int qemu_find_running(const char *pid_path, const char *name, pid_t *pid_out, int *pidfd_out)
{
	char proc[64], *text = NULL, *end;
	ssize_t n;
	long pid;
	int pidfd = -1;
	bool match, bad;

	n = fs_read_file(pid_path, 64, &text);
	if (n < 0)
		goto none;
	errno = 0;
	pid = strtol(text, &end, 10);
	bad = errno || end == text || pid <= 1 || pid > INT32_MAX || (*end && *end != '\n');
	free(text);
	text = NULL;
	if (bad)
		goto stale;
	/* Open the pidfd first, then check what runs: the pidfd pins the
	 * process, so a match afterwards cannot be a reused pid. */
	pidfd = sys_pidfd_open((pid_t)pid);
	if (pidfd < 0)
		goto stale;
	snprintf(proc, sizeof(proc), "/proc/%ld/cmdline", pid);
	n = fs_read_file(proc, QEMU_CMDLINE_MAX, &text);
	match = n > 0 && qemu_cmdline_matches(text, (size_t)n, name);
	free(text);
	if (!match || pidfd_exited(pidfd))
		goto stale;
	*pid_out = (pid_t)pid;
	if (pidfd_out)
		*pidfd_out = pidfd;
	else
		close(pidfd);
	return 0;
stale:
	if (pidfd >= 0)
		close(pidfd);
	if (unlink(pid_path) == 0)
		log_info("guest %s: removed stale pid file %s", name, pid_path);
none:
	errno = ESRCH;
	return -1;
}

static int qemu_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, saved;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (unlink(path) < 0 && errno != ENOENT)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 4) < 0) {
		saved = errno;
		close(fd);
		unlink(path);
		errno = saved;
		return -1;
	}
	return fd;
}

/* The forked child: a session of its own (it outlives hagentd), a clean
 * signal state (hagentd's mask and handlers must not leak into QEMU),
 * stdin from /dev/null, stdout/stderr to NAME.qemu.log, the two sockets at
 * fixed numbers, nothing else open. */
static void __attribute__((noreturn))
qemu_child(int devnull, int logfd, int qmpfd, int serfd, char *const argv[])
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	int src[4] = { devnull, logfd, qmpfd, serfd }, hi[4];
	sigset_t none;
	int i;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (i = 1; i < NSIG; i++)
		sigaction(i, &sa, NULL);
	setsid();
	/* Move everything above the target numbers first, so no dup2 below
	 * overwrites a source. */
	for (i = 0; i < 4; i++) {
		hi[i] = fcntl(src[i], F_DUPFD, 10);
		if (hi[i] < 0)
			_exit(126);
	}
	if (dup2(hi[0], 0) < 0 || dup2(hi[1], 1) < 0 || dup2(hi[1], 2) < 0 ||
	    dup2(hi[2], QEMU_CHILD_QMP_FD) < 0 || dup2(hi[3], QEMU_CHILD_SERIAL_FD) < 0)
		_exit(126);
	if (syscall(SYS_close_range, QEMU_CHILD_SERIAL_FD + 1, ~0U, 0) < 0) {
		long max = sysconf(_SC_OPEN_MAX);

		for (i = QEMU_CHILD_SERIAL_FD + 1; i < (max > 0 ? max : 65536); i++)
			close(i);
	}
	execv(argv[0], argv);
	dprintf(2, "hagent: cannot execute %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* The last line(s) QEMU wrote to NAME.qemu.log during this run, made
 * printable and joined with " | ". */
void qemu_log_tail(struct drv_guest *g, char *out, size_t len)
{
	char buf[QEMU_LOG_TAIL + 1];
	struct stat st;
	off_t from;
	ssize_t n;
	size_t i, o = 0, start;
	int fd;

	out[0] = '\0';
	fd = open(g->log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size <= g->log_off) {
		close(fd);
		return;
	}
	from = st.st_size - QEMU_LOG_TAIL;
	if (from < g->log_off)
		from = g->log_off;
	n = pread(fd, buf, QEMU_LOG_TAIL, from);
	close(fd);
	if (n <= 0)
		return;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	/* Keep at most the last two lines. */
	start = 0;
	{
		int lines = 0;

		for (i = (size_t)n; i > 0; i--) {
			if (buf[i - 1] == '\n' && ++lines == 2) {
				start = i;
				break;
			}
		}
	}
	for (i = start; i < (size_t)n && o + 4 < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\n') {
			out[o++] = ' ';
			out[o++] = '|';
			out[o++] = ' ';
		} else {
			out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
		}
	}
	out[o] = '\0';
}

/* Forget the process: loop registrations, timers, QMP.  Touches no file
 * and no process. */
static void guest_disconnect(struct drv_guest *g)
{
	if (g->kill_timer_on) {
		qb_loop_timer_del(g->host->loop, g->kill_timer);
		g->kill_timer_on = false;
	}
	if (g->hs_timer_on) {
		qb_loop_timer_del(g->host->loop, g->hs_timer);
		g->hs_timer_on = false;
	}
	if (g->settle_timer_on) {
		qb_loop_timer_del(g->host->loop, g->settle_timer);
		g->settle_timer_on = false;
	}
	if (g->pidfd_polled) {
		qb_loop_poll_del(g->host->loop, g->pidfd);
		g->pidfd_polled = false;
	}
	if (g->pidfd >= 0) {
		close(g->pidfd);
		g->pidfd = -1;
	}
	if (g->qmp) {
		qmp_close(g->qmp);
		g->qmp = NULL;
	}
}

static int guest_kill_now(struct drv_guest *g)
{
	if (g->exited || g->pidfd < 0 || pidfd_exited(g->pidfd))
		return 0; /* EXIT is on its way */
	log_info("guest %s: SIGKILL to QEMU process group %d", g->name, (int)g->pid);
	/* The process group: QEMU is a session leader (setsid) and may have
	 * helpers.  An attached QEMU we did not start may not lead a group:
	 * then the pidfd. */
	if (kill(-g->pid, SIGKILL) == 0)
		return 0;
	if (sys_pidfd_signal(g->pidfd, SIGKILL) == 0 || errno == ESRCH)
		return 0;
	log_err("guest %s: cannot kill QEMU %d: %s", g->name, (int)g->pid, strerror(errno));
	return -1;
}

static void kill_timer_cb(void *data)
{
	struct drv_guest *g = data;

	g->kill_timer_on = false;
	guest_hold(g);
	log_warn("guest %s: QEMU still there %llu s after quit", g->name,
		 QEMU_QUIT_GRACE_NS / 1000000000ULL);
	guest_kill_now(g);
	guest_unhold(g);
}

/* The process is gone (pidfd readable). */
static void guest_process_gone(struct drv_guest *g)
{
	char tail[QEMU_LOG_TAIL + 16], detail[QEMU_DETAIL_MAX];
	struct drv_exit ex = { .requested = g->requested };
	siginfo_t si;

	if (g->exited)
		return;
	/* Its last events are still in the socket buffer: read them first so
	 * they come before EXIT (e.g. SHUTDOWN guest-panic). */
	if (g->qmp)
		qmp_drain(g->qmp);
	if (g->gone || g->exited)
		return;
	/* Reap if it is our child; a re-attached QEMU has another parent. */
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, (id_t)g->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid != 0) {
		ex.known = true;
		ex.signaled = si.si_code != CLD_EXITED;
		ex.code = si.si_status;
	}
	qemu_log_tail(g, tail, sizeof(tail));
	if (!ex.known)
		snprintf(detail, sizeof(detail), "QEMU %d exited (status unknown: not our child)",
			 (int)g->pid);
	else if (ex.signaled)
		snprintf(detail, sizeof(detail), "QEMU %d killed by signal %d", (int)g->pid, ex.code);
	else
		snprintf(detail, sizeof(detail), "QEMU %d exited with code %d", (int)g->pid, ex.code);
	if (g->why_killed[0])
		snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), " (%s)",
			 g->why_killed);
	else if (g->requested)
		snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), " (destroyed)");
	if (!g->requested && tail[0])
		snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), ": %s", tail);

	guest_disconnect(g);
	/* Sockets and a pid file left by a killed QEMU would only mislead the
	 * next start or attach. */
	unlink(g->qmp_path);
	unlink(g->serial_path);
	unlink(g->pid_path);
	if (g->incoming) {
		/* an incoming copy that never became the guest: all of its files
		 * but its QEMU log (kept until the next incoming copy) */
		char base[QEMU_INCOMING_NAME_MAX];

		qemu_incoming_name(base, sizeof(base), g->name);
		qemu_files_unlink(g->host, base);
	}
	g->exited = true;
	emit(g, DRV_EV_EXIT, detail, &ex);
}

static int32_t pidfd_cb(int32_t fd, int32_t revents, void *data)
{
	struct drv_guest *g = data;

	(void)fd;
	(void)revents;
	guest_hold(g);
	guest_process_gone(g);
	guest_unhold(g);
	return 0;
}

/* ---- QMP ---------------------------------------------------------------- */

/* The guest stopped for a reason the supervisor acts on.  QEMU may repeat
 * the reason (several BLOCK_IO_ERRORs for requests in flight, SHUTDOWN
 * guest-panic after GUEST_PANICKED, several SHUTDOWN guest-reset from one
 * reboot): one report per stop, until RESUME. */
static void stop_cause(struct drv_guest *g, enum drv_event ev, const char *detail)
{
	if (g->halted) {
		log_info("guest %s: %s (%s) while already stopped: not reported again", g->name,
			 drv_event_name(ev), detail);
		return;
	}
	g->halted = true;
	emit(g, ev, detail, NULL);
}

static void ev_shutdown(struct drv_guest *g, json_t *data, int64_t ts)
{
	const char *reason = json_string_value(json_object_get(data, "reason"));

	(void)ts;
	if (!reason)
		reason = "unknown";
	if (strcmp(reason, "host-qmp-quit") == 0 || strcmp(reason, "host-signal") == 0) {
		/* QEMU exits after these; EXIT reports it. */
		log_info("guest %s: QEMU shutting down (%s)", g->name, reason);
		g->quitting = true;
		return;
	}
	if (strcmp(reason, "host-qmp-system-reset") == 0) {
		/* reboot=shutdown caught our own reset (see QEMU_RESET_SETTLE_NS) */
		log_warn("guest %s: system_reset became a shutdown; guest not reset", g->name);
		return;
	}
	if (strcmp(reason, "guest-reset") == 0)
		stop_cause(g, DRV_EV_REBOOT, "guest-reset");
	else if (strcmp(reason, "guest-panic") == 0)
		stop_cause(g, DRV_EV_CRASH, "guest-panic");
	else
		stop_cause(g, DRV_EV_POWEROFF, reason);
}

static void settle_timer_arm(struct drv_guest *g);

static void ev_reset(struct drv_guest *g, json_t *data, int64_t ts)
{
	const char *reason = json_string_value(json_object_get(data, "reason"));
	bool collapse;

	collapse = ts >= 0 && g->last_reset_us >= 0 && ts - g->last_reset_us < QEMU_RESET_COLLAPSE_US;
	g->last_reset_us = ts;
	if (g->stopped)
		g->reset_while_stopped = true;
	if (g->reboot_action_reset && !g->stopped)
		settle_timer_arm(g); /* not settled yet */
	if (!reason || strcmp(reason, "guest-reset") != 0) {
		log_info("guest %s: reset (%s)", g->name, reason ? reason : "unknown");
		return;
	}
	if (collapse || g->reboot_action_reset) {
		log_info("guest %s: reset (guest-reset): part of the previous reset", g->name);
		return;
	}
	emit(g, DRV_EV_REBOOT, "in-place", NULL);
}

static void ev_panicked(struct drv_guest *g, json_t *data, int64_t ts)
{
	const char *action = json_string_value(json_object_get(data, "action"));
	char detail[64];

	(void)ts;
	snprintf(detail, sizeof(detail), "guest panic (action %s)", action ? action : "?");
	stop_cause(g, DRV_EV_CRASH, detail);
}

static void ev_watchdog(struct drv_guest *g, json_t *data, int64_t ts)
{
	const char *action = json_string_value(json_object_get(data, "action"));
	char detail[64];

	(void)ts;
	snprintf(detail, sizeof(detail), "watchdog fired (action %s)", action ? action : "?");
	stop_cause(g, DRV_EV_WATCHDOG, detail);
}

static void ev_io_error(struct drv_guest *g, json_t *data, int64_t ts)
{
	const char *dev = json_string_value(json_object_get(data, "device"));
	const char *node = json_string_value(json_object_get(data, "node-name"));
	const char *op = json_string_value(json_object_get(data, "operation"));
	const char *action = json_string_value(json_object_get(data, "action"));
	const char *reason = json_string_value(json_object_get(data, "reason"));
	char detail[256];

	(void)ts;
	if (!dev || !*dev)
		dev = node ? node : "?";
	snprintf(detail, sizeof(detail), "%s %s error%s%s", dev, op ? op : "?", reason ? ": " : "",
		 reason ? reason : "");
	if (!action || strcmp(action, "stop") != 0) {
		log_warn("guest %s: I/O error, action %s: %s", g->name, action ? action : "?", detail);
		return;
	}
	stop_cause(g, DRV_EV_IO_ERROR, detail);
}

static void ev_stop(struct drv_guest *g, json_t *data, int64_t ts)
{
	(void)data;
	(void)ts;
	g->stopped = true;
	if (g->dumping) {
		log_debug("guest %s: STOP for the dump", g->name);
		return;
	}
	if (g->halted) {
		log_debug("guest %s: STOP (reason already reported)", g->name);
		return;
	}
	emit(g, DRV_EV_PAUSED, "stopped", NULL);
}

static void ev_resume(struct drv_guest *g, json_t *data, int64_t ts)
{
	(void)data;
	g->stopped = false;
	if (g->reset_while_stopped) {
		/* the firmware's follow-up reset comes once the guest runs */
		g->last_reset_us = ts;
		g->reset_while_stopped = false;
	}
	if (g->reboot_action_reset)
		settle_timer_arm(g);
	if (g->dumping) {
		log_debug("guest %s: RESUME after the dump", g->name);
		return;
	}
	g->halted = false;
	emit(g, DRV_EV_RESUMED, NULL, NULL);
}

static void ev_migration(struct drv_guest *g, json_t *data, int64_t ts)
{
	(void)ts;
	qemu_mig_event(g, data);
}

/* QMP events hagentd cares about; the rest is logged at debug level. */
static const struct {
	const char *name;
	void (*fn)(struct drv_guest *g, json_t *data, int64_t ts);
} qemu_events[] = {
	{ "SHUTDOWN", ev_shutdown },	     { "RESET", ev_reset },
	{ "GUEST_PANICKED", ev_panicked },   { "WATCHDOG", ev_watchdog },
	{ "BLOCK_IO_ERROR", ev_io_error },   { "STOP", ev_stop },
	{ "RESUME", ev_resume },		     { "MIGRATION", ev_migration },
};

static void on_qmp_event(struct qmp *q, void *arg, const char *name, json_t *data, int64_t ts)
{
	struct drv_guest *g = arg;
	size_t i;

	(void)q;
	guest_hold(g);
	for (i = 0; i < sizeof(qemu_events) / sizeof(qemu_events[0]); i++) {
		if (strcmp(qemu_events[i].name, name) == 0) {
			qemu_events[i].fn(g, data, ts);
			break;
		}
	}
	if (i == sizeof(qemu_events) / sizeof(qemu_events[0]))
		log_debug("guest %s: QMP event %s", g->name, name);
	guest_unhold(g);
}

static void hs_timer_cancel(struct drv_guest *g)
{
	if (g->hs_timer_on) {
		qb_loop_timer_del(g->host->loop, g->hs_timer);
		g->hs_timer_on = false;
	}
}

static void report_running(struct drv_guest *g)
{
	char detail[96];

	g->ready = true;
	snprintf(detail, sizeof(detail), "QEMU pid %d%s", (int)g->pid,
		 g->attached ? ", re-attached" : "");
	emit(g, DRV_EV_RUNNING, detail, NULL);
}

static void on_initial_balloon(struct qmp *q, void *arg, json_t *ret, json_t *error)
{
	struct drv_guest *g = arg;

	(void)q;
	(void)ret;
	guest_hold(g);
	if (error)
		log_warn("guest %s: balloon to %ld MiB failed: %s", g->name, g->memory_mib,
			 qmp_error_desc(error));
	else
		log_info("guest %s: balloon target %ld MiB (of %ld)", g->name, g->memory_mib,
			 g->maxmem_mib);
	if (!g->exited && !qmp_is_dead(g->qmp))
		report_running(g);
	guest_unhold(g);
}

/* A run state (query-status) → the event describing it. */
static void report_status(struct drv_guest *g, const char *status)
{
	static const struct {
		const char *status;
		enum drv_event ev;
		bool halted;
	} map[] = {
		{ "running", DRV_EV_RUNNING, false },
		{ "shutdown", DRV_EV_POWEROFF, true },
		{ "guest-panicked", DRV_EV_CRASH, true },
		{ "watchdog", DRV_EV_WATCHDOG, true },
		{ "io-error", DRV_EV_IO_ERROR, true },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].status, status) == 0)
			break;
	if (i == sizeof(map) / sizeof(map[0])) {
		char detail[64];

		g->ready = true;
		g->stopped = true;
		snprintf(detail, sizeof(detail), "status %s", status);
		emit(g, DRV_EV_PAUSED, detail, NULL);
		return;
	}
	if (map[i].ev == DRV_EV_RUNNING) {
		report_running(g);
		return;
	}
	g->stopped = true;
	g->ready = true;
	g->halted = map[i].halted;
	emit(g, map[i].ev,
	     map[i].ev == DRV_EV_POWEROFF
		     ? "stopped after a guest poweroff or reboot (cannot tell which after re-attach)"
		     : status,
	     NULL);
}

static void on_query_status(struct qmp *q, void *arg, json_t *ret, json_t *error)
{
	struct drv_guest *g = arg;
	const char *status;

	guest_hold(g);
	if (error) {
		/* Disconnected: on_qmp_closed and the pidfd tell the rest. */
		log_warn("guest %s: query-status failed: %s", g->name, qmp_error_desc(error));
		goto out;
	}
	hs_timer_cancel(g);
	status = json_string_value(json_object_get(ret, "status"));
	if (!status)
		status = "unknown";
	log_info("guest %s: QEMU %d status %s", g->name, (int)g->pid, status);
	if (strcmp(status, "running") == 0 && !g->attached && g->maxmem_mib > g->memory_mib) {
		if (qmp_command(q, json_pack("{s:I}", "value", (json_int_t)g->memory_mib << 20),
				"balloon", on_initial_balloon, g) == 0)
			goto out;
		log_warn("guest %s: cannot send balloon: %s", g->name, strerror(errno));
	}
	report_status(g, status);
out:
	guest_unhold(g);
}

static void on_qmp_ready(struct qmp *q, void *arg, json_t *greeting)
{
	struct drv_guest *g = arg;
	json_t *v = json_object_get(json_object_get(greeting, "version"), "qemu");

	guest_hold(g);
	log_info("guest %s: QMP connected (QEMU %lld.%lld.%lld, pid %d)", g->name,
		 (long long)json_integer_value(json_object_get(v, "major")),
		 (long long)json_integer_value(json_object_get(v, "minor")),
		 (long long)json_integer_value(json_object_get(v, "micro")), (int)g->pid);
	if (qmp_command(q, NULL, "query-status", on_query_status, g) < 0)
		log_warn("guest %s: cannot send query-status: %s", g->name, strerror(errno));
	guest_unhold(g);
}

static void on_qmp_closed(struct qmp *q, void *arg, int err)
{
	struct drv_guest *g = arg;

	guest_hold(g);
	qmp_close(q);
	g->qmp = NULL;
	/* QMP's end alone is not the guest's end: the pidfd decides. */
	if (g->exited || g->pidfd < 0 || pidfd_exited(g->pidfd))
		;
	else if (g->requested || g->quitting)
		log_info("guest %s: QMP closed, QEMU %d on its way out", g->name, (int)g->pid);
	else
		log_warn("guest %s: QMP connection lost%s%s while QEMU %d runs", g->name,
			 err ? ": " : "", err ? strerror(err) : "", (int)g->pid);
	guest_unhold(g);
}

static const struct qmp_callbacks guest_qmp_cb = {
	.ready = on_qmp_ready,
	.event = on_qmp_event,
	.closed = on_qmp_closed,
};

static void hs_timer_cb(void *data)
{
	struct drv_guest *g = data;

	g->hs_timer_on = false;
	guest_hold(g);
	if (g->ready || g->exited)
		goto out;
	if (!g->attached) {
		log_err("guest %s: QMP did not answer within %llu s: killing QEMU %d", g->name,
			QEMU_HANDSHAKE_NS / 1000000000ULL, (int)g->pid);
		snprintf(g->why_killed, sizeof(g->why_killed), "QMP did not answer within %llu s",
			 QEMU_HANDSHAKE_NS / 1000000000ULL);
		guest_kill_now(g);
	} else {
		emit(g, DRV_EV_PAUSED, g->qmp ? "QMP does not answer (monitor busy?)"
					      : "QMP socket unreachable", NULL);
	}
out:
	guest_unhold(g);
}

/* ---- ops ---------------------------------------------------------------- */

static int qemu_available(struct drv_host *host, char *why, size_t len)
{
	const char *bin = host->qemu_binary ? host->qemu_binary : QEMU_DEFAULT;
	char path[PATH_MAX];

	if (find_binary(bin, path, sizeof(path)) < 0) {
		snprintf(why, len, "QEMU binary %s not found", bin);
		return -1;
	}
	if (!qemu_accel(host->accel)) {
		snprintf(why, len, "accel '%s' is not auto, kvm or tcg", host->accel);
		return -1;
	}
	return 0;
}

static int qemu_check(const struct guest_cfg *cfg, struct guestcfg_diags *diags)
{
	/* The argv builder is the one place that knows what the driver can
	 * express; placeholder paths only serve the length checks. */
	struct qemu_argv_opts o = {
		.run_dir = RUNSTATEDIR "/hagent",
		.binary = "qemu-system-x86_64",
		.accel = "tcg",
		.qmp_fd = QEMU_CHILD_QMP_FD,
		.serial_fd = QEMU_CHILD_SERIAL_FD,
	};
	struct qemu_argv a;

	if (qemu_argv_build(cfg, &o, &a, diags) < 0)
		return -1;
	qemu_argv_free(&a);
	return 0;
}

static struct drv_guest *guest_new(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
				   const char *tag)
{
	struct drv_guest *g = calloc(1, sizeof(*g));
	char base[QEMU_INCOMING_NAME_MAX];

	if (!g)
		return NULL;
	g->host = host;
	g->owner = owner;
	g->pidfd = -1;
	g->last_reset_us = -1;
	g->memory_mib = cfg->memory_mib;
	g->reboot_shutdown = cfg->on_reboot != GA_RESTART; /* as qemu_argv.c */
	g->maxmem_mib = cfg->maxmem_mib > cfg->memory_mib ? cfg->maxmem_mib : cfg->memory_mib;
	if (!guest_name_valid(cfg->name) || fs_path(g->name, sizeof(g->name), "%s", cfg->name) < 0) {
		free(g);
		errno = EINVAL;
		return NULL;
	}
	snprintf(base, sizeof(base), "%s%s", g->name, tag ? tag : "");
	if (qemu_path(g->qmp_path, sizeof(g->qmp_path), host->run_dir, base, QEMU_SUFFIX_QMP) < 0 ||
	    qemu_path(g->serial_path, sizeof(g->serial_path), host->run_dir, base,
		      QEMU_SUFFIX_SERIAL) < 0 ||
	    qemu_path(g->pid_path, sizeof(g->pid_path), host->run_dir, base, QEMU_SUFFIX_PID) < 0 ||
	    qemu_path(g->log_path, sizeof(g->log_path), host->run_dir, base, QEMU_SUFFIX_LOG) < 0) {
		free(g);
		errno = ENAMETOOLONG;
		return NULL;
	}
	return g;
}

/* Register the pidfd and the handshake deadline. */
static int guest_watch(struct drv_guest *g, uint64_t hs_ns)
{
	int rc;

	rc = qb_loop_poll_add(g->host->loop, QB_LOOP_MED, g->pidfd, POLLIN, g, pidfd_cb);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	g->pidfd_polled = true;
	rc = qb_loop_timer_add(g->host->loop, QB_LOOP_MED, hs_ns, g, hs_timer_cb, &g->hs_timer);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	g->hs_timer_on = true;
	return 0;
}

static int start_common(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
			struct drv_guest **out, char *err, size_t errlen, bool incoming)
{
	const char *bin = host->qemu_binary ? host->qemu_binary : QEMU_DEFAULT;
	struct guestcfg_diags *diags = NULL;
	struct qemu_argv_opts o = { 0 };
	struct qemu_argv a = { 0 };
	struct drv_guest *g;
	char path[PATH_MAX];
	int qmp_l = -1, ser_l = -1, logfd = -1, devnull = -1, saved, i;
	pid_t pid = -1, other;

	*out = NULL;
	err[0] = '\0';
	g = guest_new(host, cfg, owner, incoming ? QEMU_INCOMING_TAG : NULL);
	if (!g) {
		snprintf(err, errlen, "guest name '%s' or run_dir unusable: %s", cfg->name,
			 strerror(errno));
		return -1;
	}
	if (find_binary(bin, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "QEMU binary %s not found", bin);
		errno = ENOENT;
		goto fail;
	}
	o.accel = qemu_accel(host->accel);
	if (!o.accel) {
		snprintf(err, errlen, "accel '%s' is not auto, kvm or tcg", host->accel);
		errno = EINVAL;
		goto fail;
	}
	if (qemu_find_running(g->pid_path, g->name, &other, NULL) == 0) {
		snprintf(err, errlen, "a QEMU for guest %s already runs (pid %d)", g->name, (int)other);
		errno = EBUSY;
		goto fail;
	}
	diags = calloc(1, sizeof(*diags));
	if (!diags) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	o.run_dir = host->run_dir;
	o.binary = path;
	o.qmp_fd = QEMU_CHILD_QMP_FD;
	o.serial_fd = QEMU_CHILD_SERIAL_FD;
	o.observer = host->qmp_observer;
	o.incoming = incoming;
	o.file_tag = incoming ? QEMU_INCOMING_TAG : NULL;
	g->incoming = incoming;
	if (qemu_argv_build(cfg, &o, &a, diags) < 0) {
		for (i = 0; i < diags->n; i++) {
			if (diags->d[i].level == DIAG_ERROR) {
				guestcfg_diag_format(&diags->d[i], cfg->source, err, errlen);
				break;
			}
		}
		errno = EINVAL;
		goto fail;
	}
	qmp_l = qemu_listen(g->qmp_path);
	ser_l = qmp_l < 0 ? -1 : qemu_listen(g->serial_path);
	if (qmp_l < 0 || ser_l < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", qmp_l < 0 ? g->qmp_path : g->serial_path,
			 strerror(errno));
		goto fail;
	}
	logfd = open(g->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (logfd < 0 || devnull < 0) {
		snprintf(err, errlen, "cannot open %s: %s", logfd < 0 ? g->log_path : "/dev/null",
			 strerror(errno));
		goto fail;
	}
	g->log_off = lseek(logfd, 0, SEEK_END);
	if (g->log_off < 0)
		g->log_off = 0;
	/* Connect before QEMU runs: the connection waits in the listening
	 * socket's backlog and QEMU greets it as soon as it is up. */
	g->qmp = qmp_connect(host->loop, g->qmp_path, &guest_qmp_cb, g, g->name);
	if (!g->qmp) {
		snprintf(err, errlen, "cannot connect to %s: %s", g->qmp_path, strerror(errno));
		goto fail;
	}
	log_info("guest %s: starting %s (accel %s, %ld MiB, %d vcpus)", g->name, path, o.accel,
		 g->memory_mib, cfg->vcpus);
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		qemu_child(devnull, logfd, qmp_l, ser_l, a.argv);
	g->pid = pid;
	/* The child holds the listening sockets now; if it dies, our pending
	 * QMP connection sees the end instead of waiting forever. */
	close(qmp_l);
	close(ser_l);
	close(logfd);
	close(devnull);
	qmp_l = ser_l = logfd = devnull = -1;
	g->pidfd = sys_pidfd_open(pid);
	if (g->pidfd < 0 || guest_watch(g, QEMU_HANDSHAKE_NS) < 0) {
		snprintf(err, errlen, "cannot watch QEMU %d: %s", (int)pid, strerror(errno));
		goto fail;
	}
	log_info("guest %s: QEMU pid %d", g->name, (int)pid);
	qemu_argv_free(&a);
	free(diags);
	*out = g;
	return 0;

fail:
	saved = errno;
	if (pid > 0) {
		/* Leave nothing behind: it has not done anything yet. */
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	guest_disconnect(g);
	if (qmp_l >= 0) {
		close(qmp_l);
		unlink(g->qmp_path);
	}
	if (ser_l >= 0) {
		close(ser_l);
		unlink(g->serial_path);
	}
	if (pid > 0) {
		unlink(g->qmp_path);
		unlink(g->serial_path);
		unlink(g->pid_path);
	}
	if (logfd >= 0)
		close(logfd);
	if (devnull >= 0)
		close(devnull);
	qemu_argv_free(&a);
	free(diags);
	free(g);
	if (!err[0])
		snprintf(err, errlen, "%s", strerror(saved));
	log_err("guest %s: start failed: %s", cfg->name, err);
	errno = saved;
	return -1;
}

static int qemu_start(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
		      struct drv_guest **out, char *err, size_t errlen)
{
	return start_common(host, cfg, owner, out, err, errlen, false);
}

/* The destination of a migration: paused (-S), waiting for migrate-incoming. */
static int qemu_start_incoming(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
			       struct drv_guest **out, char *err, size_t errlen)
{
	char base[QEMU_INCOMING_NAME_MAX], path[PATH_MAX];
	pid_t other;

	/* the logs are appended to: a new copy starts them afresh, so that on
	 * commit the guest's logs hold its own lines only (unless an earlier
	 * copy still runs: start_common refuses then) */
	qemu_incoming_name(base, sizeof(base), cfg->name);
	if (qemu_path(path, sizeof(path), host->run_dir, base, QEMU_SUFFIX_PID) == 0 &&
	    qemu_find_running(path, cfg->name, &other, NULL) < 0) {
		qemu_files_unlink(host, base);
		if (qemu_path(path, sizeof(path), host->run_dir, base, QEMU_SUFFIX_LOG) == 0)
			unlink(path);
	}
	return start_common(host, cfg, owner, out, err, errlen, true);
}

static int attach_common(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
			 bool incoming, struct drv_guest **out)
{
	struct drv_guest *g;
	struct stat st;
	int saved;

	*out = NULL;
	g = guest_new(host, cfg, owner, incoming ? QEMU_INCOMING_TAG : NULL);
	if (!g)
		return -1;
	g->attached = true;
	g->incoming = incoming;
	if (qemu_find_running(g->pid_path, g->name, &g->pid, &g->pidfd) < 0) {
		log_info("guest %s: no %sQEMU to re-attach to", g->name, incoming ? "incoming " : "");
		free(g);
		errno = ESRCH;
		return -1;
	}
	g->log_off = stat(g->log_path, &st) == 0 ? st.st_size : 0;
	g->qmp = qmp_connect(host->loop, g->qmp_path, &guest_qmp_cb, g, g->name);
	if (!g->qmp)
		log_warn("guest %s: cannot connect to %s: %s", g->name, g->qmp_path, strerror(errno));
	/* Without QMP the state is reported from the loop at once. */
	if (guest_watch(g, g->qmp ? QEMU_HANDSHAKE_NS : 0) < 0) {
		saved = errno;
		guest_disconnect(g);
		free(g);
		errno = saved;
		return -1;
	}
	log_info("guest %s: re-attached to QEMU pid %d", g->name, (int)g->pid);
	*out = g;
	return 0;
}

static int qemu_attach(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
		       struct drv_guest **out)
{
	return attach_common(host, cfg, owner, false, out);
}

static int qemu_attach_incoming(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
				struct drv_guest **out)
{
	return attach_common(host, cfg, owner, true, out);
}

static void on_cmd_reply(struct qmp *q, void *arg, json_t *ret, json_t *error)
{
	struct drv_guest *g = arg;

	(void)q;
	(void)ret;
	if (error)
		log_warn("guest %s: QMP command failed: %s", g->name, qmp_error_desc(error));
}

static int guest_cmd(struct drv_guest *g, const char *what, json_t *args, const char *execute)
{
	if (g->exited || !qmp_is_ready(g->qmp)) {
		json_decref(args);
		log_warn("guest %s: %s refused: QMP not connected", g->name, what);
		errno = ENOTCONN;
		return -1;
	}
	log_info("guest %s: %s", g->name, what);
	return qmp_command(g->qmp, args, execute, on_cmd_reply, g);
}

static int qemu_shutdown(struct drv_guest *g)
{
	return guest_cmd(g, "power button (system_powerdown)", NULL, "system_powerdown");
}

static int qemu_destroy(struct drv_guest *g)
{
	int rc;

	if (g->exited)
		return 0;
	g->requested = true;
	if (g->kill_timer_on)
		return 0; /* already on its way */
	if (qmp_is_ready(g->qmp) && qmp_command(g->qmp, NULL, "quit", NULL, NULL) == 0) {
		log_info("guest %s: destroy: quit, SIGKILL in %llu s", g->name,
			 QEMU_QUIT_GRACE_NS / 1000000000ULL);
		rc = qb_loop_timer_add(g->host->loop, QB_LOOP_MED, QEMU_QUIT_GRACE_NS, g,
				       kill_timer_cb, &g->kill_timer);
		if (rc == 0) {
			g->kill_timer_on = true;
			return 0;
		}
	}
	log_info("guest %s: destroy: no QMP", g->name);
	return guest_kill_now(g);
}

static void settle_timer_cb(void *data)
{
	struct drv_guest *g = data;

	g->settle_timer_on = false;
	guest_hold(g);
	if (g->reboot_action_reset && !g->exited &&
	    guest_cmd(g, "reboot action back to shutdown", json_pack("{s:s}", "reboot", "shutdown"),
		      "set-action") == 0)
		g->reboot_action_reset = false;
	guest_unhold(g);
}

static void settle_timer_arm(struct drv_guest *g)
{
	if (g->settle_timer_on)
		qb_loop_timer_del(g->host->loop, g->settle_timer);
	g->settle_timer_on = qb_loop_timer_add(g->host->loop, QB_LOOP_MED, QEMU_RESET_SETTLE_NS, g,
					       settle_timer_cb, &g->settle_timer) == 0;
}

static int qemu_reset(struct drv_guest *g)
{
	int rc;

	if (g->reboot_shutdown && !g->reboot_action_reset) {
		if (guest_cmd(g, "reboot action reset (for our reset)",
			      json_pack("{s:s}", "reboot", "reset"), "set-action") < 0)
			return -1;
		g->reboot_action_reset = true;
	}
	rc = guest_cmd(g, "reset (system_reset)", NULL, "system_reset");
	if (rc == 0 && g->reboot_action_reset && !g->stopped)
		settle_timer_arm(g);
	return rc;
}

static int qemu_resume(struct drv_guest *g)
{
	return guest_cmd(g, "resume (cont)", NULL, "cont");
}

static int qemu_mem_set(struct drv_guest *g, long mib)
{
	char what[64];

	if (mib <= 0 || mib > g->maxmem_mib) {
		log_warn("guest %s: mem-set %ld MiB refused (maxmem %ld MiB)", g->name, mib,
			 g->maxmem_mib);
		errno = EINVAL;
		return -1;
	}
	snprintf(what, sizeof(what), "balloon target %ld MiB", mib);
	return guest_cmd(g, what, json_pack("{s:I}", "value", (json_int_t)mib << 20), "balloon");
}

static void on_dump_reply(struct qmp *q, void *arg, json_t *ret, json_t *error)
{
	struct drv_guest *g = arg;

	(void)q;
	(void)ret;
	guest_hold(g);
	g->dumping = false;
	emit(g, DRV_EV_DUMP_DONE, error ? qmp_error_desc(error) : "ok", NULL);
	guest_unhold(g);
}

static int qemu_coredump(struct drv_guest *g, const char *path)
{
	char proto[PATH_MAX + 8], what[PATH_MAX + 16];

	if (g->dumping) {
		errno = EBUSY;
		return -1;
	}
	if (fs_path(proto, sizeof(proto), "file:%s", path) < 0)
		return -1;
	if (g->exited || !qmp_is_ready(g->qmp)) {
		log_warn("guest %s: coredump refused: QMP not connected", g->name);
		errno = ENOTCONN;
		return -1;
	}
	snprintf(what, sizeof(what), "dump guest memory to %s", path);
	log_info("guest %s: %s", g->name, what);
	/* Synchronous on QEMU's side: the reply comes when the file is
	 * complete, and the monitor answers nothing else meanwhile. */
	if (qmp_command(g->qmp, json_pack("{s:b, s:s}", "paging", 0, "protocol", proto),
			"dump-guest-memory", on_dump_reply, g) < 0)
		return -1;
	g->dumping = true;
	return 0;
}

static pid_t qemu_pid(struct drv_guest *g)
{
	return g->pid;
}

static const char *qemu_console_path(struct drv_guest *g)
{
	return g->serial_path;
}

static void guest_free(struct drv_guest *g)
{
	guest_disconnect(g);
	qemu_mig_free(g);
	g->gone = true;
	if (g->busy == 0)
		free(g);
}

/* Ends the handle (frees it): do not call release() afterwards. */
static void qemu_detach(struct drv_guest *g)
{
	if (!g)
		return;
	log_info("guest %s: detached; QEMU %d keeps running", g->name, (int)g->pid);
	guest_free(g);
}

static void qemu_release(struct drv_guest *g)
{
	if (!g)
		return;
	if (!g->exited)
		log_warn("guest %s: handle released before QEMU %d exited", g->name, (int)g->pid);
	guest_free(g);
}

const struct driver_ops qemu_driver_ops = {
	.name = "qemu",
	.available = qemu_available,
	.check = qemu_check,
	.start = qemu_start,
	.start_incoming = qemu_start_incoming,
	.migrate_recv = qemu_migrate_recv,
	.migrate_send = qemu_migrate_send,
	.migrate_query = qemu_migrate_query,
	.probe = qemu_probe,
	.migrate_cancel = qemu_migrate_cancel,
	.rebind = qemu_rebind,
	.rename_files = qemu_files_rename,
	.discard_incoming = qemu_discard_incoming,
	.incoming_alive = qemu_incoming_alive,
	.attach_incoming = qemu_attach_incoming,
	.attach = qemu_attach,
	.shutdown = qemu_shutdown,
	.destroy = qemu_destroy,
	.reset = qemu_reset,
	.resume = qemu_resume,
	.mem_set = qemu_mem_set,
	.coredump = qemu_coredump,
	.pid = qemu_pid,
	.console_path = qemu_console_path,
	.detach = qemu_detach,
	.release = qemu_release,
};

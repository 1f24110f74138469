/* The QEMU driver against a real QEMU (TCG unless HAGENT_ACCEL says
 * otherwise) running the test guest: start → RUNNING, heartbeats in the
 * console log, panic → CRASH, destroy → EXIT(requested), detach + attach →
 * RUNNING with the same pid, reboot in place, watchdog, reset + resume,
 * coredump, poweroff → POWEROFF, kill -9 → EXIT(signaled), reboot with
 * on_reboot != restart, and QEMU's own error when it cannot start.
 *
 * The guest comes from $TESTGUEST, else ./tests/guest/testguest.elf (the
 * build directory during make check); missing → SKIP (77).  Every wait is the
 * qb_loop running with a deadline timer; nothing sleeps. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "drivers/driver.h"
#include "lib/fsutil.h"
#include "lib/log.h"

#define MAX_EVENTS 128
#define MAX_PIDS 16
#define WAIT_MS 15000 /* generous: TCG on a loaded 2-core machine */

struct seen_event {
	enum drv_event ev;
	char detail[256];
	struct drv_exit exit;
	bool has_exit;
};

struct test {
	qb_loop_t *loop;
	struct drv_host host;
	const struct driver_ops *ops;
	struct guest_cfg cfg;
	char run_dir[64];
	struct seen_event ev[MAX_EVENTS];
	int n_ev;
	int cursor;      /* events before this were consumed */
	int want;        /* event a wait runs for, -1 none */
	bool (*pred)(struct test *t);
	qb_loop_timer_handle tick;
	bool tick_on;
	bool timed_out;
	int serial_fd;
	int checks, fails;
};

static struct test T;
static pid_t started[MAX_PIDS];
static int n_started;

/* Whatever happens, no QEMU outlives the test (they are session leaders,
 * not killed with us). */
static void kill_started(void)
{
	int i;

	for (i = 0; i < n_started; i++)
		if (started[i] > 0 && kill(started[i], 0) == 0) {
			kill(started[i], SIGKILL);
			waitpid(started[i], NULL, 0);
		}
}

static void on_alarm(int sig)
{
	(void)sig;
	kill_started();
	_exit(99);
}

static void remember_pid(pid_t pid)
{
	if (n_started < MAX_PIDS)
		started[n_started++] = pid;
}

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	T.checks++;
	if (!ok)
		T.fails++;
	printf("%s - ", ok ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void on_event(void *owner, enum drv_event ev, const char *detail, const struct drv_exit *ex)
{
	struct test *t = owner;
	struct seen_event *s;

	printf("# event %s: %s\n", drv_event_name(ev), detail ? detail : "");
	if (ex)
		printf("#   exit known=%d signaled=%d code=%d requested=%d\n", ex->known, ex->signaled,
		       ex->code, ex->requested);
	fflush(stdout);
	if (t->n_ev >= MAX_EVENTS)
		return;
	s = &t->ev[t->n_ev++];
	s->ev = ev;
	snprintf(s->detail, sizeof(s->detail), "%s", detail ? detail : "");
	if (ex) {
		s->exit = *ex;
		s->has_exit = true;
	}
	if ((int)ev == t->want)
		qb_loop_stop(t->loop);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void deadline_cb(void *data)
{
	struct test *t = data;

	t->timed_out = true;
	qb_loop_stop(t->loop);
}

/* Run the loop for ms, or until a callback stops it. */
static void run_for(struct test *t, uint64_t ms)
{
	qb_loop_timer_handle h;

	t->timed_out = false;
	qb_loop_timer_add(t->loop, QB_LOOP_LOW, ms * 1000000, t, deadline_cb, &h);
	qb_loop_run(t->loop);
	if (!t->timed_out)
		qb_loop_timer_del(t->loop, h);
}

/* The next event ev after the cursor, waiting up to ms: its record, or
 * NULL.  Events passed over stay visible to count_from(). */
static struct seen_event *wait_event(struct test *t, enum drv_event ev, unsigned ms)
{
	uint64_t end = now_ms() + ms, now;
	int i;

	for (;;) {
		for (i = t->cursor; i < t->n_ev; i++) {
			if (t->ev[i].ev == ev) {
				t->cursor = i + 1;
				return &t->ev[i];
			}
		}
		now = now_ms();
		if (now >= end)
			return NULL;
		t->want = (int)ev;
		run_for(t, end - now);
		t->want = -1;
	}
}

static int count_from(struct test *t, int from, enum drv_event ev)
{
	int i, n = 0;

	for (i = from; i < t->n_ev; i++)
		n += t->ev[i].ev == ev;
	return n;
}

static void pred_tick(void *data)
{
	struct test *t = data;

	t->tick_on = false;
	if (t->pred(t)) {
		qb_loop_stop(t->loop);
		return;
	}
	if (qb_loop_timer_add(t->loop, QB_LOOP_LOW, 50 * 1000000ULL, t, pred_tick, &t->tick) == 0)
		t->tick_on = true;
}

/* Check a condition every 50 ms from the loop, up to ms. */
static bool wait_until(struct test *t, bool (*pred)(struct test *t), unsigned ms)
{
	uint64_t end = now_ms() + ms, now;

	t->pred = pred;
	while (!pred(t)) {
		now = now_ms();
		if (now >= end)
			return false;
		if (!t->tick_on &&
		    qb_loop_timer_add(t->loop, QB_LOOP_LOW, 50 * 1000000ULL, t, pred_tick, &t->tick) == 0)
			t->tick_on = true;
		run_for(t, end - now);
	}
	if (t->tick_on) {
		qb_loop_timer_del(t->loop, t->tick);
		t->tick_on = false;
	}
	return true;
}

static off_t console_size(struct test *t)
{
	char path[PATH_MAX];
	struct stat st;

	fs_path(path, sizeof(path), "%s/%s.console.log", t->run_dir, t->cfg.name);
	return stat(path, &st) == 0 ? st.st_size : 0;
}

static int count_hb(struct test *t)
{
	char path[PATH_MAX], *text = NULL, *p;
	int n = 0;

	fs_path(path, sizeof(path), "%s/%s.console.log", t->run_dir, t->cfg.name);
	if (fs_read_file(path, 16 * 1024 * 1024, &text) < 0)
		return 0;
	for (p = text; (p = strstr(p, "HB ")); p++)
		n++;
	free(text);
	return n;
}

static int hb_target;

static bool pred_hb(struct test *t)
{
	return count_hb(t) >= hb_target;
}

/* Type one command on the guest's serial port.  The connection stays open
 * until the next command (closing at once could drop the byte). */
static void serial_send(struct test *t, struct drv_guest *g, char c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (t->serial_fd < 0) {
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->ops->console_path(g));
		t->serial_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(t->serial_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			check(false, "connect to the serial socket %s: %s", sa.sun_path, strerror(errno));
			return;
		}
	}
	check(write(t->serial_fd, &c, 1) == 1, "typed '%c' on the serial port", c);
}

static void serial_close(struct test *t)
{
	if (t->serial_fd >= 0)
		close(t->serial_fd);
	t->serial_fd = -1;
}

static void base_cfg(struct guest_cfg *c, const char *kernel)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "qdtest");
	snprintf(c->driver, sizeof(c->driver), "qemu");
	snprintf(c->kernel, sizeof(c->kernel), "%s", kernel);
	c->type = GT_PVH;
	c->memory_mib = 32;
	c->maxmem_mib = 48; /* exercises the balloon at start */
	c->vcpus = 1;
	c->vncdisplay = -1;
	c->vncunused = true;
	snprintf(c->serial, sizeof(c->serial), "pty");
	c->acpi = true;
	c->on_poweroff = GA_DESTROY;
	c->on_reboot = GA_RESTART;
	c->on_crash = GA_DESTROY;
	c->on_watchdog = GA_RESTART;
	c->on_watchdog_set = true;
}

static struct drv_guest *start_guest(struct test *t)
{
	struct drv_guest *g = NULL;
	char err[512];
	int rc;

	rc = t->ops->start(&t->host, &t->cfg, t, &g, err, sizeof(err));
	check(rc == 0, "start %s%s%s", t->cfg.name, rc ? ": " : "", rc ? err : "");
	if (rc == 0)
		remember_pid(t->ops->pid(g));
	return rc == 0 ? g : NULL;
}

static void phase_crash_destroy(struct test *t)
{
	struct seen_event *e;
	struct drv_guest *g;
	int from;
	off_t size;

	g = start_guest(t);
	if (!g)
		return;
	e = wait_event(t, DRV_EV_RUNNING, WAIT_MS);
	check(e != NULL, "RUNNING after start (%s)", e ? e->detail : "timeout");
	check(t->ops->pid(g) > 1, "pid %d", (int)t->ops->pid(g));
	size = console_size(t);
	hb_target = count_hb(t) + 3;
	check(wait_until(t, pred_hb, WAIT_MS), "console log grows: 3 more heartbeats (from %lld bytes)",
	      (long long)size);

	from = t->n_ev;
	serial_send(t, g, 'p');
	e = wait_event(t, DRV_EV_CRASH, WAIT_MS);
	check(e != NULL, "'p' → CRASH (%s)", e ? e->detail : "timeout");
	serial_close(t);
	check(count_from(t, from, DRV_EV_PAUSED) == 0, "the STOP after a panic is not PAUSED");

	check(t->ops->destroy(g) == 0, "destroy");
	e = wait_event(t, DRV_EV_EXIT, WAIT_MS);
	check(e && e->has_exit && e->exit.requested, "EXIT with requested=true (%s)",
	      e ? e->detail : "timeout");
	check(e && e->exit.known && !e->exit.signaled && e->exit.code == 0,
	      "QEMU left by quit with code 0");
	t->ops->release(g);
}

static void phase_attach(struct test *t)
{
	struct seen_event *e;
	struct drv_guest *g, *g2 = NULL, *g3 = NULL;
	char dump[PATH_MAX], err[256];
	struct stat st;
	pid_t pid;
	int from;

	g = start_guest(t);
	if (!g)
		return;
	e = wait_event(t, DRV_EV_RUNNING, WAIT_MS);
	check(e != NULL, "RUNNING after the second start");
	pid = t->ops->pid(g);

	/* a second start of the same guest is refused */
	check(t->ops->start(&t->host, &t->cfg, t, &g3, err, sizeof(err)) == -1 && errno == EBUSY,
	      "second start refused: %s", err);

	t->ops->detach(g);
	check(t->ops->attach(&t->host, &t->cfg, t, &g2) == 0, "attach with a new handle");
	if (!g2)
		return;
	e = wait_event(t, DRV_EV_RUNNING, WAIT_MS);
	check(e != NULL, "RUNNING after attach (%s)", e ? e->detail : "timeout");
	check(t->ops->pid(g2) == pid, "same pid %d after attach", (int)pid);

	check(t->ops->mem_set(g2, 1000) == -1 && errno == EINVAL, "mem-set above maxmem refused");
	check(t->ops->mem_set(g2, 40) == 0, "mem-set 40 MiB");

	/* reboot in place (on_reboot = restart): one REBOOT for the whole
	 * reboot, however many RESETs QEMU sends */
	hb_target = count_hb(t) + 2;
	wait_until(t, pred_hb, WAIT_MS);
	from = t->n_ev;
	serial_send(t, g2, 'r');
	e = wait_event(t, DRV_EV_REBOOT, WAIT_MS);
	check(e && strcmp(e->detail, "in-place") == 0, "'r' → REBOOT in-place (%s)",
	      e ? e->detail : "timeout");
	hb_target = count_hb(t) + 3;
	check(wait_until(t, pred_hb, WAIT_MS), "heartbeats after the reboot");
	check(count_from(t, from, DRV_EV_REBOOT) == 1, "one REBOOT per reboot (%d)",
	      count_from(t, from, DRV_EV_REBOOT));

	/* coredump of a running guest: its STOP/RESUME are not reported */
	from = t->n_ev;
	fs_path(dump, sizeof(dump), "%s/qdtest.core", t->run_dir);
	check(t->ops->coredump(g2, dump) == 0, "coredump requested");
	e = wait_event(t, DRV_EV_DUMP_DONE, WAIT_MS);
	check(e && strcmp(e->detail, "ok") == 0, "DUMP_DONE ok (%s)", e ? e->detail : "timeout");
	if (stat(dump, &st) < 0)
		st.st_size = -1;
	check(st.st_size > 32 * 1024 * 1024, "dump file holds the guest memory (%lld bytes)",
	      (long long)st.st_size);
	check(count_from(t, from, DRV_EV_PAUSED) == 0 && count_from(t, from, DRV_EV_RESUMED) == 0,
	      "no PAUSED/RESUMED for the dump");
	unlink(dump);

	/* watchdog: pause, then reset + resume brings the guest back */
	from = t->n_ev;
	serial_send(t, g2, 'w');
	e = wait_event(t, DRV_EV_WATCHDOG, WAIT_MS);
	check(e != NULL, "'w' → WATCHDOG (%s)", e ? e->detail : "timeout");
	check(count_from(t, from, DRV_EV_PAUSED) == 0, "the watchdog's STOP is not PAUSED");
	check(t->ops->reset(g2) == 0 && t->ops->resume(g2) == 0, "reset + resume");
	e = wait_event(t, DRV_EV_RESUMED, WAIT_MS);
	check(e != NULL, "RESUMED");
	hb_target = count_hb(t) + 3;
	check(wait_until(t, pred_hb, WAIT_MS), "heartbeats after reset + resume");
	check(count_from(t, from, DRV_EV_REBOOT) == 0, "a host reset is no guest REBOOT");

	serial_send(t, g2, 'o');
	e = wait_event(t, DRV_EV_POWEROFF, WAIT_MS);
	check(e != NULL, "'o' → POWEROFF (%s)", e ? e->detail : "timeout");
	serial_close(t);

	check(kill(pid, SIGKILL) == 0, "kill -9 %d", (int)pid);
	e = wait_event(t, DRV_EV_EXIT, WAIT_MS);
	check(e && e->has_exit && !e->exit.requested, "EXIT, not requested (%s)",
	      e ? e->detail : "timeout");
	/* the test process is QEMU's parent, so even the attached handle reaps */
	check(e && (!e->exit.known || (e->exit.signaled && e->exit.code == SIGKILL)),
	      "EXIT signaled=true code=9");
	t->ops->release(g2);

	g3 = NULL;
	errno = 0;
	check(t->ops->attach(&t->host, &t->cfg, t, &g3) == -1 && errno == ESRCH,
	      "attach with nothing running: ESRCH");
}

static void phase_reboot_shutdown(struct test *t)
{
	struct seen_event *e;
	struct drv_guest *g;
	int from;

	t->cfg.on_reboot = GA_DESTROY; /* → -action reboot=shutdown */
	t->cfg.on_watchdog_set = false;
	g = start_guest(t);
	if (!g)
		return;
	e = wait_event(t, DRV_EV_RUNNING, WAIT_MS);
	check(e != NULL, "RUNNING (on_reboot=destroy)");
	hb_target = count_hb(t) + 2;
	wait_until(t, pred_hb, WAIT_MS);
	serial_send(t, g, 'r');
	e = wait_event(t, DRV_EV_REBOOT, WAIT_MS);
	check(e && strcmp(e->detail, "guest-reset") == 0, "'r' → REBOOT guest-reset, QEMU paused (%s)",
	      e ? e->detail : "timeout");

	/* Restart in place under reboot=shutdown: our reset and the firmware's
	 * follow-up reset must not come back as REBOOT, and afterwards a guest
	 * reboot is caught again. */
	from = t->n_ev;
	check(t->ops->reset(g) == 0 && t->ops->resume(g) == 0, "reset + resume");
	e = wait_event(t, DRV_EV_RESUMED, WAIT_MS);
	check(e != NULL, "RESUMED");
	hb_target = count_hb(t) + 10; /* 2 s: the reboot action is restored by then */
	check(wait_until(t, pred_hb, WAIT_MS), "heartbeats after reset + resume");
	check(count_from(t, from, DRV_EV_REBOOT) == 0 && count_from(t, from, DRV_EV_POWEROFF) == 0 &&
		      count_from(t, from, DRV_EV_PAUSED) == 0,
	      "no REBOOT/POWEROFF/PAUSED from our own reset");
	serial_send(t, g, 'r');
	e = wait_event(t, DRV_EV_REBOOT, WAIT_MS);
	check(e && strcmp(e->detail, "guest-reset") == 0, "the next 'r' → REBOOT guest-reset again");
	serial_close(t);
	check(t->ops->destroy(g) == 0, "destroy");
	e = wait_event(t, DRV_EV_EXIT, WAIT_MS);
	check(e && e->exit.requested, "EXIT requested");
	t->ops->release(g);
}

static void phase_bad_start(struct test *t)
{
	struct seen_event *e;
	struct drv_guest *g;

	snprintf(t->cfg.kernel, sizeof(t->cfg.kernel), "%s/no-such-kernel", t->run_dir);
	g = start_guest(t);
	if (!g)
		return;
	e = wait_event(t, DRV_EV_EXIT, WAIT_MS);
	check(e && e->exit.known && !e->exit.signaled && e->exit.code != 0,
	      "QEMU that cannot start → EXIT with its exit code");
	check(e && strstr(e->detail, "no-such-kernel") != NULL, "... and QEMU's own error: %s",
	      e ? e->detail : "timeout");
	check(count_from(t, 0, DRV_EV_RUNNING) == 4, "no RUNNING for it");
	t->ops->release(g);
}

/* ---- a scripted QEMU ---------------------------------------------------- */

/* The same binary, exec'd by the driver with HAGENT_FAKE_QEMU set, plays a
 * QEMU whose QMP follows a script: events a real guest cannot easily
 * produce (disk errors, repeated causes) in a known order.  It serves the
 * inherited listening socket on fd 3, like QEMU. */
static void fake_send(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fake_send(FILE *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputs("\r\n", f);
	fflush(f);
}

#define FAKE_EV(f, body) fake_send(f, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 0}, " body "}")

static int fake_qemu(void)
{
	char line[4096];
	FILE *f;
	int c;

	c = accept(3, NULL, NULL);
	if (c < 0)
		return 1;
	f = fdopen(c, "r+");
	if (!f)
		return 1;
	fake_send(f, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 0}}, "
		     "\"capabilities\": []}}");
	while (fgets(line, sizeof(line), f)) {
		json_t *cmd = json_loads(line, 0, NULL);
		const char *ex = json_string_value(json_object_get(cmd, "execute"));
		long long id = (long long)json_integer_value(json_object_get(cmd, "id"));

		if (!ex)
			return 2;
		if (strcmp(ex, "query-status") == 0)
			fake_send(f, "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": %lld}",
				  id);
		else
			fake_send(f, "{\"return\": {}, \"id\": %lld}", id);
		if (strcmp(ex, "balloon") == 0) {
			/* two requests in flight fail, then the stop */
			FAKE_EV(f, "\"event\": \"BLOCK_IO_ERROR\", \"data\": {\"device\": \"xvda\", "
				   "\"node-name\": \"#block1\", \"operation\": \"write\", \"action\": \"stop\", "
				   "\"nospace\": true, \"reason\": \"No space left on device\"}");
			FAKE_EV(f, "\"event\": \"BLOCK_IO_ERROR\", \"data\": {\"device\": \"xvda\", "
				   "\"operation\": \"write\", \"action\": \"stop\", \"nospace\": true, "
				   "\"reason\": \"No space left on device\"}");
			FAKE_EV(f, "\"event\": \"STOP\"");
		} else if (strcmp(ex, "cont") == 0) {
			FAKE_EV(f, "\"event\": \"RESUME\"");
			/* a report-only error is no stop; then a panic told twice */
			FAKE_EV(f, "\"event\": \"BLOCK_IO_ERROR\", \"data\": {\"device\": \"hda\", "
				   "\"operation\": \"read\", \"action\": \"report\", \"nospace\": false}");
			FAKE_EV(f, "\"event\": \"GUEST_PANICKED\", \"data\": {\"action\": \"pause\"}");
			FAKE_EV(f, "\"event\": \"STOP\"");
			FAKE_EV(f, "\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": "
				   "\"guest-panic\"}");
		} else if (strcmp(ex, "stop") == 0) {
			FAKE_EV(f, "\"event\": \"STOP\"");
		} else if (strcmp(ex, "quit") == 0 && strcmp(getenv("HAGENT_FAKE_QEMU"), "stubborn") == 0) {
			/* a wedged QEMU: answers, never leaves */
			for (;;)
				pause();
		} else if (strcmp(ex, "quit") == 0) {
			FAKE_EV(f, "\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, \"reason\": "
				   "\"host-qmp-quit\"}");
			json_decref(cmd);
			return 0;
		}
		json_decref(cmd);
	}
	return 3;
}

/* Disk errors (one IO_ERROR per stop), a report-only error ignored, a
 * panic told twice (one CRASH), all in a known order. */
static void phase_scripted(struct test *t, const char *self, bool stubborn)
{
	const char *real = t->host.qemu_binary;
	struct seen_event *e;
	struct drv_guest *g;
	int from = t->n_ev;

	t->cfg.on_reboot = GA_RESTART;
	t->cfg.maxmem_mib = 48; /* the balloon at start triggers the script */
	t->host.qemu_binary = self;
	setenv("HAGENT_FAKE_QEMU", stubborn ? "stubborn" : "1", 1);
	g = start_guest(t);
	unsetenv("HAGENT_FAKE_QEMU");
	t->host.qemu_binary = real;
	if (!g)
		return;
	e = wait_event(t, DRV_EV_RUNNING, WAIT_MS);
	check(e != NULL, "scripted QEMU: RUNNING");
	e = wait_event(t, DRV_EV_IO_ERROR, WAIT_MS);
	check(e && strcmp(e->detail, "xvda write error: No space left on device") == 0,
	      "BLOCK_IO_ERROR action stop → IO_ERROR (%s)", e ? e->detail : "timeout");
	check(t->ops->resume(g) == 0, "resume");
	e = wait_event(t, DRV_EV_CRASH, WAIT_MS);
	check(e != NULL, "GUEST_PANICKED → CRASH");
	check(t->ops->destroy(g) == 0, "destroy");
	e = wait_event(t, DRV_EV_EXIT, WAIT_MS);
	if (stubborn)
		check(e && e->exit.requested && e->exit.signaled && e->exit.code == SIGKILL,
		      "a QEMU ignoring quit is SIGKILLed after the grace time (%s)",
		      e ? e->detail : "timeout");
	else
		check(e && e->exit.requested && e->exit.known && e->exit.code == 0, "EXIT requested");
	check(count_from(t, from, DRV_EV_IO_ERROR) == 1, "one IO_ERROR for two failed requests");
	check(count_from(t, from, DRV_EV_CRASH) == 1, "one CRASH for GUEST_PANICKED + SHUTDOWN guest-panic");
	check(count_from(t, from, DRV_EV_PAUSED) == 0, "no PAUSED for explained STOPs");
	check(count_from(t, from, DRV_EV_RESUMED) == 1, "RESUMED once");
	t->ops->release(g);
}

int main(void)
{
	const char *guest = getenv("TESTGUEST");
	const char *accel = getenv("HAGENT_ACCEL");
	const char *qemu = getenv("QEMU");
	struct guestcfg_diags diags = { 0 };
	char why[256], guest_abs[PATH_MAX], self[PATH_MAX];
	ssize_t n;

	if (getenv("HAGENT_FAKE_QEMU"))
		return fake_qemu();
	if (!guest || !*guest)
		guest = "./tests/guest/testguest.elf";
	if (access(guest, R_OK) < 0) {
		printf("SKIP: no test guest at %s (set TESTGUEST)\n", guest);
		return 77;
	}
	if (!realpath(guest, guest_abs))
		return 1;
	if (geteuid() != 0) {
		printf("SKIP: needs root\n");
		return 77;
	}
	log_setup("test-qemu-driver", 1, getenv("V") != NULL);
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
	alarm(180);

	memset(&T, 0, sizeof(T));
	T.want = -1;
	T.serial_fd = -1;
	snprintf(T.run_dir, sizeof(T.run_dir), "/tmp/hagent-qd.XXXXXX");
	if (!mkdtemp(T.run_dir))
		return 1;
	T.loop = qb_loop_create();
	T.host.loop = T.loop;
	T.host.run_dir = T.run_dir;
	T.host.qemu_binary = qemu && *qemu ? qemu : QEMU_DEFAULT;
	T.host.accel = accel && *accel ? accel : "tcg";
	T.host.dump_dir = T.run_dir;
	T.host.event = on_event;
	T.ops = driver_lookup("qemu");
	check(T.ops != NULL, "driver_lookup(qemu)");
	if (!T.ops)
		return 1;
	if (T.ops->available(&T.host, why, sizeof(why)) < 0) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	base_cfg(&T.cfg, guest_abs);
	check(T.ops->check(&T.cfg, &diags) == 0, "driver check accepts the guest");
	printf("# run_dir %s, guest %s, accel %s\n", T.run_dir, guest_abs, T.host.accel);

	phase_crash_destroy(&T);
	phase_attach(&T);
	phase_reboot_shutdown(&T);
	phase_bad_start(&T);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		phase_scripted(&T, self, false);
		phase_scripted(&T, self, true);
	}

	kill_started();
	qb_loop_destroy(T.loop);
	log_teardown();
	printf("# %d checks, %d failed\n", T.checks, T.fails);
	if (T.fails == 0) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.run_dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", T.run_dir);
	} else {
		printf("# logs kept in %s\n", T.run_dir);
	}
	return T.fails ? 1 : 0;
}

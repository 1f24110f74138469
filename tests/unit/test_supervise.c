/* agent/supervise.c's state table, driven by hand: requests through
 * supervise_start/stop/destroy, driver events through supervise_drv_event,
 * and timers (back-off, stop deadline) through a real qb_loop.
 *
 * The guest runs on a TEST DOUBLE driver (fake_ops below) that only records
 * which operations the supervisor called and returns configurable results;
 * nothing is started.  The real QEMU driver, and the supervisor on top of it,
 * are covered by the integration tests (tests/integ/test-qemu-driver.c,
 * tests/integ/test-policy.sh, test-budget.sh, test-daemon-restart.sh). */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/guests.h"
#include "agent/hagentd.h"
#include "agent/store.h"
#include "agent/supervise.h"
#include "lib/fsutil.h"

/* ---- the test double driver ------------------------------------------------ */

struct drv_guest {
	int serial; /* which start/attach made it */
};

static struct fake {
	qb_loop_t *loop;
	/* calls */
	int n_start, n_attach, n_shutdown, n_destroy, n_coredump, n_detach, n_release, n_pid;
	char coredump_path[PATH_MAX];
	char renamed[160];
	long start_maxmem;
	/* results */
	int start_rc;
	char start_err[128];
	int attach_rc, attach_errno;
	int shutdown_rc, destroy_rc, coredump_rc;
	/* stop the loop when start or destroy is called (a timer fired) */
	bool stop_loop;
	int live; /* handles made and not yet released or detached */
} F;

static struct drv_guest *fake_handle(struct drv_guest **out)
{
	struct drv_guest *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	h->serial = F.n_start + F.n_attach;
	F.live++;
	*out = h;
	return h;
}

static int fake_start(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
		      struct drv_guest **out, char *err, size_t errlen)
{
	F.n_start++;
	F.start_maxmem = cfg->maxmem_mib;
	if (F.stop_loop)
		qb_loop_stop(F.loop);
	if (F.start_rc < 0) {
		snprintf(err, errlen, "%s", F.start_err);
		return -1;
	}
	fake_handle(out);
	return 0;
}

static int fake_attach(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
		       struct drv_guest **out)
{
	F.n_attach++;
	if (F.attach_rc < 0) {
		errno = F.attach_errno;
		return -1;
	}
	fake_handle(out);
	return 0;
}

static int fake_shutdown(struct drv_guest *h)
{
	assert_non_null(h);
	F.n_shutdown++;
	if (F.shutdown_rc < 0)
		errno = EIO;
	return F.shutdown_rc;
}

static int fake_destroy(struct drv_guest *h)
{
	assert_non_null(h);
	F.n_destroy++;
	if (F.stop_loop)
		qb_loop_stop(F.loop);
	if (F.destroy_rc < 0)
		errno = EIO;
	return F.destroy_rc;
}

static int fake_coredump(struct drv_guest *h, const char *path)
{
	assert_non_null(h);
	F.n_coredump++;
	snprintf(F.coredump_path, sizeof(F.coredump_path), "%s", path);
	if (F.coredump_rc < 0)
		errno = EIO;
	return F.coredump_rc;
}

static pid_t fake_pid(struct drv_guest *h)
{
	F.n_pid++;
	return 4242; /* never signalled: no test destroys an orphan */
}

static void fake_rename_files(struct drv_host *host, const char *from, const char *to)
{
	assert_non_null(host);
	snprintf(F.renamed, sizeof(F.renamed), "%s -> %s", from, to);
}

static void fake_detach(struct drv_guest *h)
{
	assert_non_null(h);
	F.n_detach++;
	F.live--;
	free(h);
}

static void fake_release(struct drv_guest *h)
{
	assert_non_null(h);
	F.n_release++;
	F.live--;
	free(h);
}

static const struct driver_ops fake_ops = {
	.name = "fake",
	.start = fake_start,
	.attach = fake_attach,
	.shutdown = fake_shutdown,
	.destroy = fake_destroy,
	.coredump = fake_coredump,
	.pid = fake_pid,
	.detach = fake_detach,
	.rename_files = fake_rename_files,
	.release = fake_release,
};

/* ---- fixture -------------------------------------------------------------- */

struct env {
	struct hagentd d;
	char dir[64];
	bool deadline_hit;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	memset(&F, 0, sizeof(F));
	snprintf(e->dir, sizeof(e->dir), "/tmp/hagent-test-supervise.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	e->d.loop = qb_loop_create();
	assert_non_null(e->d.loop);
	F.loop = e->d.loop;
	qb_list_init(&e->d.guests);
	snprintf(e->d.conf.node_name, sizeof(e->d.conf.node_name), "testhost");
	snprintf(e->d.conf.state_dir, sizeof(e->d.conf.state_dir), "%s/state", e->dir);
	snprintf(e->d.conf.run_dir, sizeof(e->d.conf.run_dir), "%s/run", e->dir);
	snprintf(e->d.conf.dump_dir, sizeof(e->d.conf.dump_dir), "%s/dump", e->dir);
	e->d.drv.loop = e->d.loop;
	e->d.drv.run_dir = e->d.conf.run_dir;
	e->d.drv.dump_dir = e->d.conf.dump_dir;
	e->d.drv.event = supervise_drv_event;
	e->d.ctl = NULL; /* no control socket: events_publish returns early */
	assert_int_equal(store_init(&e->d), 0);
	*state = e;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct env *e = *state;
	struct guest *g, *tmp;

	qb_list_for_each_entry_safe(g, tmp, &e->d.guests, list) {
		supervise_detach(g);
		guests_unlink(&e->d, g);
		guests_free(g);
	}
	assert_int_equal(e->d.n_guests, 0);
	assert_int_equal(F.live, 0); /* every handle released or detached */
	qb_loop_destroy(e->d.loop);
	assert_int_equal(nftw(e->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(e);
	return 0;
}

/* A guest named NAME with extra xl.cfg lines, in the table, on fake_ops. */
static struct guest *add_guest(struct env *e, const char *name, const char *extra)
{
	struct guestcfg_diags *diags = calloc(1, sizeof(*diags));
	struct guest *g;
	char text[1024];
	int n;

	assert_non_null(diags);
	n = snprintf(text, sizeof(text),
		     "name = \"%s\"\ntype = \"pvh\"\nkernel = \"/nonexistent/testguest.elf\"\n"
		     "memory = 32\nvcpus = 1\n%s",
		     name, extra);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	g = guests_new(&e->d, text, (size_t)n, "/etc/xen/test.cfg", diags);
	assert_non_null(g);
	free(diags);
	g->ops = &fake_ops; /* the test double replaces the qemu driver */
	qb_list_init(&g->list);
	guests_insert(&e->d, g);
	return g;
}

static void deadline(void *arg)
{
	struct env *e = arg;

	e->deadline_hit = true;
	qb_loop_stop(e->d.loop);
}

/* Run the loop until the fake driver's start or destroy is called (from a
 * supervisor timer), failing after ms. */
static void run_until_driver_call(struct env *e, unsigned ms)
{
	qb_loop_timer_handle h;

	e->deadline_hit = false;
	F.stop_loop = true;
	assert_int_equal(qb_loop_timer_add(e->d.loop, QB_LOOP_LOW, (uint64_t)ms * 1000000ULL, e,
					   deadline, &h),
			 0);
	qb_loop_run(e->d.loop);
	F.stop_loop = false;
	assert_false(e->deadline_hit);
	qb_loop_timer_del(e->d.loop, h);
}

static void ev(struct guest *g, enum drv_event what, const char *detail)
{
	supervise_drv_event(g, what, detail, NULL);
}

static void ev_exit(struct guest *g, bool signaled, int code, bool requested)
{
	struct drv_exit x = { .known = true, .signaled = signaled, .code = code,
			      .requested = requested };

	supervise_drv_event(g, DRV_EV_EXIT, NULL, &x);
}

/* The stored NAME.state, in buf. */
static void read_state_file(struct env *e, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX], *text = NULL;

	assert_int_equal(fs_path(path, sizeof(path), "%s/guests/%s.state", e->d.conf.state_dir,
				 name),
			 0);
	assert_true(fs_read_file(path, 4096, &text) >= 0);
	snprintf(buf, len, "%s", text);
	free(text);
}

static void start_running(struct guest *g)
{
	char err[256] = "";

	assert_int_equal(supervise_start(g, err, sizeof(err)), 0);
	assert_int_equal(g->state, GS_STARTING);
	ev(g, DRV_EV_RUNNING, NULL);
	assert_int_equal(g->state, GS_RUNNING);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_start_running(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "maxmem = 64\n");
	char err[256] = "", st[512];

	assert_int_equal(g->state, GS_STOPPED);
	assert_int_equal(supervise_start(g, err, sizeof(err)), 0);
	assert_int_equal(g->state, GS_STARTING);
	assert_int_equal(g->desired, DESIRED_RUNNING);
	assert_int_equal(F.n_start, 1);
	assert_int_equal(F.start_maxmem, 64);
	assert_non_null(g->h);
	read_state_file(e, "vm1", st, sizeof(st));
	assert_non_null(strstr(st, "desired=running\n"));
	assert_non_null(strstr(st, "failed=0\n"));

	ev(g, DRV_EV_RUNNING, NULL);
	assert_int_equal(g->state, GS_RUNNING);
	assert_true(g->started_at > 0);

	/* start of a running guest is idempotent */
	assert_int_equal(supervise_start(g, err, sizeof(err)), 0);
	assert_int_equal(g->state, GS_RUNNING);
	assert_int_equal(F.n_start, 1);
	assert_int_equal(F.n_destroy + F.n_shutdown + F.n_coredump, 0);
}

static void test_crash_restart_backoff(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"restart\"\n");
	uint64_t left, t0;

	start_running(g);

	/* first crash: destroy the paused QEMU, restart at once on EXIT */
	ev(g, DRV_EV_CRASH, "pvpanic");
	assert_int_equal(g->state, GS_DESTROYING);
	assert_int_equal(F.n_destroy, 1);
	assert_int_equal(F.n_start, 1);
	assert_non_null(strstr(g->reason, "guest crashed: pvpanic"));
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(F.n_release, 1);
	assert_int_equal(F.n_start, 2);
	assert_int_equal(g->state, GS_STARTING);
	assert_int_equal(g->desired, DESIRED_RUNNING);
	assert_false(g->timer_armed);
	ev(g, DRV_EV_RUNNING, NULL);
	assert_int_equal(g->state, GS_RUNNING);

	/* second crash within the window: back off */
	ev(g, DRV_EV_CRASH, NULL);
	assert_int_equal(F.n_destroy, 2);
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_BACKOFF);
	assert_int_equal(F.n_start, 2);
	assert_null(g->h);
	assert_true(g->timer_armed);
	assert_true(qb_loop_timer_is_running(e->d.loop, g->timer));
	left = qb_loop_timer_expire_time_remaining(e->d.loop, g->timer);
	assert_true(left > 0 && left <= 500ULL * 1000000ULL); /* TO_BACKOFF_BASE_MS */

	/* events for a guest that has no process are ignored meanwhile */
	ev(g, DRV_EV_RUNNING, NULL);
	assert_int_equal(g->state, GS_BACKOFF);

	t0 = now_ms();
	run_until_driver_call(e, 3000);
	assert_true(now_ms() - t0 >= 400);
	assert_int_equal(F.n_start, 3);
	assert_int_equal(g->state, GS_STARTING);
	assert_false(g->timer_armed);
	assert_int_equal(g->n_restarts, 2);
}

static void test_budget_exhausted(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"restart\"\nha_restart_max = 2\n");
	char err[256] = "", st[512];

	start_running(g);
	ev(g, DRV_EV_CRASH, NULL);
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_STARTING); /* restart 1: now */
	assert_int_equal(F.n_start, 2);
	ev(g, DRV_EV_RUNNING, NULL);
	ev(g, DRV_EV_CRASH, NULL);
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_BACKOFF); /* restart 2: later */
	assert_int_equal(F.n_start, 2);

	/* a start request during back-off starts now */
	assert_int_equal(supervise_start(g, err, sizeof(err)), 0);
	assert_int_equal(g->state, GS_STARTING);
	assert_false(g->timer_armed);
	assert_int_equal(F.n_start, 3);
	ev(g, DRV_EV_RUNNING, NULL);

	/* third crash: the budget of 2 is spent */
	ev(g, DRV_EV_CRASH, "again");
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_FAILED);
	assert_int_equal(F.n_start, 3);
	assert_null(g->h);
	assert_false(g->timer_armed);
	assert_non_null(strstr(g->reason, "restart budget exhausted"));
	assert_non_null(strstr(g->reason, "guest crashed: again"));
	read_state_file(e, "vm1", st, sizeof(st));
	assert_non_null(strstr(st, "failed=1\n"));

	/* start of a failed guest without a process: a fresh budget */
	assert_int_equal(supervise_start(g, err, sizeof(err)), 0);
	assert_int_equal(g->state, GS_STARTING);
	assert_int_equal(g->n_restarts, 0);
	assert_int_equal(F.n_start, 4);
	/* leaving failed clears the durable mark, so a restart of hagentd does
	 * not load a running guest as failed */
	read_state_file(e, "vm1", st, sizeof(st));
	assert_non_null(strstr(st, "failed=0\n"));
}

/* A guest of Pacemaker's: no policy restart, no back-off, no budget; it is
 * left failed for the agent's monitor, and Pacemaker's start starts it. */
static void test_pacemaker_no_restart(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"restart\"\n"
					      "ha_managed_by = \"pacemaker\"\n");
	char err[256] = "";

	start_running(g);
	ev(g, DRV_EV_CRASH, "pvpanic");
	assert_int_equal(g->state, GS_DESTROYING); /* the paused QEMU goes */
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_FAILED);
	assert_int_equal(F.n_start, 1);
	assert_false(g->timer_armed);
	assert_false(g->budget_spent); /* nothing for the cluster to move */
	assert_int_equal(g->desired, DESIRED_RUNNING);
	assert_non_null(strstr(g->reason, "guest crashed: pvpanic"));
	assert_non_null(strstr(g->reason, "not restarted: Pacemaker manages it"));

	/* Pacemaker's recovery: stop (nothing to do), then start */
	assert_int_equal(supervise_start(g, err, sizeof(err)), 0);
	assert_int_equal(F.n_start, 2);
	ev(g, DRV_EV_RUNNING, NULL);
	assert_int_equal(g->state, GS_RUNNING);

	/* QEMU killed outright: the same */
	ev_exit(g, true, SIGKILL, false);
	assert_int_equal(g->state, GS_FAILED);
	assert_int_equal(F.n_start, 2);
	assert_false(g->timer_armed);
}

static void test_watchdog_destroy(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"restart\"\n");

	start_running(g);
	ev(g, DRV_EV_WATCHDOG, NULL); /* on_watchdog defaults to destroy */
	assert_int_equal(g->state, GS_DESTROYING);
	assert_int_equal(g->desired, DESIRED_STOPPED);
	assert_non_null(strstr(g->reason, "watchdog"));
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_STOPPED);
	assert_int_equal(F.n_start, 1);
}

static void test_poweroff_destroy(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_poweroff = \"destroy\"\n");
	char st[512];

	start_running(g);
	ev(g, DRV_EV_POWEROFF, NULL);
	assert_int_equal(g->desired, DESIRED_STOPPED);
	assert_int_equal(g->state, GS_DESTROYING);
	assert_int_equal(F.n_destroy, 1);
	read_state_file(e, "vm1", st, sizeof(st));
	assert_non_null(strstr(st, "desired=stopped\n"));

	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_STOPPED);
	assert_int_equal(g->desired, DESIRED_STOPPED);
	assert_null(g->h);
	assert_int_equal(F.n_release, 1);
	assert_int_equal(F.n_start, 1);
}

static void test_reboot(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_reboot = \"restart\"\n");

	start_running(g);
	/* QEMU reset the guest itself: nothing to do */
	ev(g, DRV_EV_REBOOT, "in-place");
	assert_int_equal(g->state, GS_RUNNING);
	assert_int_equal(F.n_destroy, 0);
	/* a reboot QEMU stopped for: on_reboot=restart */
	ev(g, DRV_EV_REBOOT, NULL);
	assert_int_equal(g->state, GS_DESTROYING);
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_STARTING);
	assert_int_equal(F.n_start, 2);
}

static void test_preserve(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"preserve\"\n");
	char err[256] = "";

	start_running(g);
	ev(g, DRV_EV_CRASH, NULL);
	assert_int_equal(g->state, GS_PRESERVED);
	assert_int_equal(F.n_destroy, 0);
	assert_non_null(g->h);
	assert_int_equal(g->desired, DESIRED_RUNNING);

	/* the user is done inspecting it */
	assert_int_equal(supervise_destroy(g, err, sizeof(err)), 0);
	assert_int_equal(F.n_destroy, 1);
	assert_int_equal(g->state, GS_DESTROYING);
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_STOPPED);
	assert_int_equal(g->desired, DESIRED_STOPPED);
}

static void test_rename_restart(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"rename-restart\"\n");
	struct guest *o;

	start_running(g);
	ev(g, DRV_EV_CRASH, NULL);
	o = guests_find(&e->d, "vm1-1");
	assert_non_null(o);
	assert_true(o->orphan);
	assert_int_equal(o->state, GS_PRESERVED);
	assert_int_equal(o->orphan_pid, 4242);
	assert_null(o->h);
	assert_null(o->text);
	assert_int_equal(F.n_detach, 1); /* the crashed QEMU is let go, not killed */
	assert_string_equal(F.renamed, "vm1 -> vm1-1"); /* its files go with it */
	assert_int_equal(F.n_destroy, 0);
	assert_int_equal(g->state, GS_STARTING);
	assert_int_equal(F.n_start, 2);
	assert_int_equal(e->d.n_guests, 2);
}

static void test_coredump_destroy(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"coredump-destroy\"\n");
	char prefix[PATH_MAX];
	size_t n;

	start_running(g);
	ev(g, DRV_EV_CRASH, NULL);
	assert_int_equal(g->state, GS_DUMPING);
	assert_int_equal(F.n_coredump, 1);
	assert_int_equal(F.n_destroy, 0);
	assert_int_equal(fs_path(prefix, sizeof(prefix), "%s/vm1-", e->d.conf.dump_dir), 0);
	assert_int_equal(strncmp(F.coredump_path, prefix, strlen(prefix)), 0);
	n = strlen(F.coredump_path);
	assert_true(n > 5 && !strcmp(F.coredump_path + n - 5, ".core"));

	ev(g, DRV_EV_DUMP_DONE, "completed");
	assert_int_equal(g->state, GS_DESTROYING);
	assert_int_equal(F.n_destroy, 1);
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_STOPPED);
	assert_int_equal(g->desired, DESIRED_STOPPED);
	assert_int_equal(F.n_start, 1);
}

static void test_coredump_restart_dump_fails(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"coredump-restart\"\n");

	start_running(g);
	F.coredump_rc = -1; /* no dump: destroy and restart anyway */
	ev(g, DRV_EV_CRASH, NULL);
	assert_int_equal(F.n_coredump, 1);
	assert_int_equal(g->state, GS_DESTROYING);
	assert_int_equal(F.n_destroy, 1);
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_STARTING);
	assert_int_equal(F.n_start, 2);
}

static void test_io_error(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"restart\"\n");
	char st[512];

	start_running(g);
	ev(g, DRV_EV_IO_ERROR, "disk xvda");
	assert_int_equal(g->state, GS_FAILED);
	assert_non_null(strstr(g->reason, "io-error"));
	assert_non_null(strstr(g->reason, "disk xvda"));
	assert_int_equal(F.n_destroy, 0); /* kept paused for inspection */
	assert_int_equal(F.n_start, 1);
	assert_non_null(g->h);
	read_state_file(e, "vm1", st, sizeof(st));
	assert_non_null(strstr(st, "failed=1\n"));
	assert_non_null(strstr(st, "desired=running\n"));

	/* the failed guest's QEMU dies: the handle goes, the guest stays failed */
	ev_exit(g, true, SIGKILL, false);
	assert_int_equal(g->state, GS_FAILED);
	assert_null(g->h);
	assert_int_equal(F.n_release, 1);
	assert_int_equal(F.n_start, 1);
}

static void test_start_failed_with_handle_refused(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "");
	char err[256] = "";

	start_running(g);
	ev(g, DRV_EV_IO_ERROR, NULL);
	assert_int_equal(g->state, GS_FAILED);
	assert_non_null(g->h);

	assert_int_equal(supervise_start(g, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "vm1"));
	assert_non_null(strstr(err, "destroy it first"));
	/* a refused request has no side effect: the reason stays */
	assert_non_null(strstr(err, "io-error"));
	assert_non_null(strstr(g->reason, "io-error"));
	assert_int_equal(g->state, GS_FAILED);
	assert_non_null(g->h);
	assert_int_equal(F.n_start, 1);
	assert_int_equal(F.n_destroy, 0);

	/* destroy clears it */
	assert_int_equal(supervise_destroy(g, err, sizeof(err)), 0);
	assert_int_equal(g->state, GS_DESTROYING);
	assert_int_equal(F.n_destroy, 1);
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_STOPPED);
	assert_null(g->h);
}

static void test_unexpected_exit_is_crash(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"restart\"\non_poweroff = \"destroy\"\n");

	start_running(g);
	ev_exit(g, true, SIGSEGV, false);
	assert_int_equal(F.n_release, 1);
	assert_int_equal(F.n_destroy, 0); /* nothing left to destroy */
	assert_non_null(strstr(g->reason, "signal"));
	/* on_crash=restart: the first restart is immediate */
	assert_int_equal(F.n_start, 2);
	assert_int_equal(g->state, GS_STARTING);
	assert_int_equal(g->desired, DESIRED_RUNNING);
	assert_non_null(g->h);
}

static void test_unexpected_nonzero_exit_is_crash(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"destroy\"\non_poweroff = \"restart\"\n");

	start_running(g);
	ev_exit(g, false, 1, false);
	assert_int_equal(F.n_start, 1);
	assert_int_equal(g->state, GS_STOPPED);
	assert_int_equal(g->desired, DESIRED_STOPPED);
	assert_null(g->h);
}

static void test_clean_exit_is_poweroff(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"destroy\"\non_poweroff = \"restart\"\n");
	struct guest *h = add_guest(e, "vm2", "on_crash = \"restart\"\n");

	start_running(g);
	ev_exit(g, false, 0, false);
	assert_int_equal(F.n_release, 1);
	assert_int_equal(F.n_destroy, 0);
	assert_int_equal(F.n_start, 2); /* on_poweroff=restart */
	assert_int_equal(g->state, GS_STARTING);

	/* and with the default on_poweroff=destroy: stopped for good */
	start_running(h);
	ev_exit(h, false, 0, false);
	assert_int_equal(h->state, GS_STOPPED);
	assert_int_equal(h->desired, DESIRED_STOPPED);
	assert_int_equal(F.n_start, 3);
}

static void test_stop_timeout(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "");
	char err[256] = "", st[512];
	uint64_t left;

	start_running(g);
	assert_int_equal(supervise_stop(g, 1, err, sizeof(err)), 0);
	assert_int_equal(F.n_shutdown, 1);
	assert_int_equal(F.n_destroy, 0);
	assert_int_equal(g->state, GS_STOPPING);
	assert_int_equal(g->desired, DESIRED_STOPPED);
	read_state_file(e, "vm1", st, sizeof(st));
	assert_non_null(strstr(st, "desired=stopped\n"));
	assert_true(g->timer_armed);
	left = qb_loop_timer_expire_time_remaining(e->d.loop, g->timer);
	assert_true(left > 0 && left <= 1000ULL * 1000000ULL);

	/* a second stop while stopping changes nothing */
	assert_int_equal(supervise_stop(g, 1, err, sizeof(err)), 0);
	assert_int_equal(F.n_shutdown, 1);

	/* the guest ignores the power button: destroyed at the deadline */
	run_until_driver_call(e, 3000);
	assert_int_equal(F.n_destroy, 1);
	assert_int_equal(g->state, GS_DESTROYING);
	assert_false(g->timer_armed);
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_STOPPED);
	assert_null(g->h);
}

static void test_stop_guest_powers_off(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_poweroff = \"restart\"\n");
	char err[256] = "";

	start_running(g);
	assert_int_equal(supervise_stop(g, 30, err, sizeof(err)), 0);
	assert_int_equal(g->state, GS_STOPPING);
	/* the guest obeys; on_poweroff does not apply to a requested stop */
	ev(g, DRV_EV_POWEROFF, NULL);
	assert_int_equal(g->state, GS_DESTROYING);
	assert_false(g->timer_armed);
	assert_int_equal(F.n_destroy, 1);
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_STOPPED);
	assert_int_equal(F.n_start, 1);
}

static void test_stop_power_button_fails(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "");
	char err[256] = "";

	start_running(g);
	F.shutdown_rc = -1;
	assert_int_equal(supervise_stop(g, 30, err, sizeof(err)), 0);
	assert_int_equal(F.n_shutdown, 1);
	assert_int_equal(F.n_destroy, 1);
	assert_int_equal(g->state, GS_DESTROYING);
	assert_false(g->timer_armed);
	ev_exit(g, true, SIGKILL, true);
	assert_int_equal(g->state, GS_STOPPED);
}

static void test_start_fails(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "");
	char err[256] = "", st[512];

	F.start_rc = -1;
	snprintf(F.start_err, sizeof(F.start_err), "qemu-system-x86_64: cannot open kernel");
	/* the request was carried out: its outcome is the failed state, which
	 * the client's wait reports (agent/requests.c), with err filled in */
	assert_int_equal(supervise_start(g, err, sizeof(err)), 0);
	assert_int_equal(F.n_start, 1);
	assert_int_equal(g->state, GS_FAILED);
	assert_null(g->h);
	assert_non_null(strstr(err, "vm1"));
	assert_non_null(strstr(err, "qemu-system-x86_64: cannot open kernel"));
	assert_non_null(strstr(g->reason, "start failed: qemu-system-x86_64: cannot open kernel"));
	read_state_file(e, "vm1", st, sizeof(st));
	assert_non_null(strstr(st, "failed=1\n"));
}

static void test_start_exit_early(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"restart\"\n");
	char err[256] = "";

	assert_int_equal(supervise_start(g, err, sizeof(err)), 0);
	/* QEMU dies before it is up: failed, not restarted */
	supervise_drv_event(g, DRV_EV_EXIT, "bad disk", NULL);
	assert_int_equal(g->state, GS_FAILED);
	assert_int_equal(F.n_start, 1);
	assert_int_equal(F.n_release, 1);
	assert_non_null(strstr(g->reason, "QEMU failed to start: bad disk"));
}

static void test_events_without_rule_ignored(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "");
	struct drv_exit x = { .known = true, .code = 0 };
	int i;

	/* stopped: no process, every driver event is stale */
	for (i = 0; i < DRV_EV__COUNT; i++) {
		supervise_drv_event(g, (enum drv_event)i, NULL, &x);
		assert_int_equal(g->state, GS_STOPPED);
	}
	supervise_drv_event(g, DRV_EV__COUNT, NULL, NULL);
	assert_int_equal(g->state, GS_STOPPED);
	assert_int_equal(F.n_start + F.n_destroy + F.n_shutdown + F.n_coredump + F.n_release, 0);

	start_running(g);
	ev(g, DRV_EV_RESUMED, NULL);
	assert_int_equal(g->state, GS_RUNNING);
	ev(g, DRV_EV_DUMP_DONE, NULL);
	assert_int_equal(g->state, GS_RUNNING);
	ev(g, DRV_EV_RUNNING, NULL);
	assert_int_equal(g->state, GS_RUNNING);

	ev(g, DRV_EV_PAUSED, NULL);
	assert_int_equal(g->state, GS_PAUSED);
	ev(g, DRV_EV_REBOOT, NULL); /* no (paused, reboot) row */
	assert_int_equal(g->state, GS_PAUSED);
	ev(g, DRV_EV_RUNNING, NULL);
	assert_int_equal(g->state, GS_PAUSED);
	ev(g, DRV_EV_RESUMED, NULL);
	assert_int_equal(g->state, GS_RUNNING);
	assert_int_equal(F.n_start, 1);
	assert_int_equal(F.n_destroy + F.n_shutdown + F.n_coredump + F.n_release, 0);
}

static void test_resume_attach_fails_restart(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "on_crash = \"restart\"\n");

	/* as store_load_all leaves it: stopped, meant to run */
	g->desired = DESIRED_RUNNING;
	F.attach_rc = -1;
	F.attach_errno = ESRCH;
	supervise_resume(g);
	assert_int_equal(F.n_attach, 1);
	assert_int_equal(F.n_start, 1);
	assert_int_equal(g->state, GS_STARTING);
	assert_non_null(g->h);
	assert_non_null(strstr(g->reason, "QEMU gone while hagentd was down"));
	ev(g, DRV_EV_RUNNING, NULL);
	assert_int_equal(g->state, GS_RUNNING);
}

static void test_resume_attach_fails_destroy(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", ""); /* on_crash defaults to destroy */
	struct guest *h = add_guest(e, "vm2", "on_crash = \"restart\"\n");
	char st[512];

	g->desired = DESIRED_RUNNING;
	F.attach_rc = -1;
	F.attach_errno = ESRCH;
	supervise_resume(g);
	assert_int_equal(g->state, GS_STOPPED);
	assert_int_equal(g->desired, DESIRED_STOPPED);
	read_state_file(e, "vm1", st, sizeof(st));
	assert_non_null(strstr(st, "desired=stopped\n"));

	/* meant to be stopped: nothing to do */
	supervise_resume(h);
	assert_int_equal(h->state, GS_STOPPED);
	assert_int_equal(F.n_attach, 2);
	assert_int_equal(F.n_start, 0);
}

static void test_resume_attach_ok(void **state)
{
	struct env *e = *state;
	struct guest *g = add_guest(e, "vm1", "");
	struct guest *h = add_guest(e, "vm2", "");

	g->desired = DESIRED_RUNNING;
	supervise_resume(g);
	assert_int_equal(F.n_attach, 1);
	assert_int_equal(F.n_start, 0);
	assert_int_equal(g->state, GS_STARTING);
	assert_non_null(g->h);
	ev(g, DRV_EV_RUNNING, NULL);
	assert_int_equal(g->state, GS_RUNNING);

	/* a failed (io-error) guest stays failed, with its handle */
	h->desired = DESIRED_RUNNING;
	h->state = GS_FAILED;
	supervise_resume(h);
	assert_int_equal(h->state, GS_FAILED);
	assert_non_null(h->h);
	assert_int_equal(F.n_start, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_restart_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pacemaker_no_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poweroff_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reboot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preserve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coredump_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coredump_restart_dump_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_failed_with_handle_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unexpected_exit_is_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unexpected_nonzero_exit_is_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_exit_is_poweroff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_guest_powers_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_power_button_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_exit_early, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_without_rule_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_attach_fails_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_attach_fails_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_attach_ok, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

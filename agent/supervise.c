#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>

#include "agent/cluster.h"
#include "agent/control.h"
#include "agent/guests.h"
#include "agent/storage.h"
#include "agent/store.h"
#include "agent/registry.h"
#include "agent/supervise.h"
#include "agent/timeouts.h"
#include "agent/watchdog.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "migrate/job.h"

/* What an event brings along. */
struct sv_input {
	enum sv_event ev;
	const char *detail;
	const struct drv_exit *exit;
	unsigned timeout_s;
	char *err;
	size_t errlen;
};

#define NEXT_DYN GS__COUNT /* the action decides the next state */

typedef enum gstate (*sv_action)(struct guest *g, struct sv_input *in);

struct sv_rule {
	enum gstate from;
	enum sv_event ev;
	sv_action act;
	enum gstate next;
};

/* What the exit we are waiting for (GS_DESTROYING) leads to. */
enum after_exit {
	AE_STOPPED = 0, /* stopped, desired stopped */
	AE_RESTART,     /* a policy restart */
	AE_FAILED,
	AE_HOLD,        /* stopped, desired kept (quorum lost) */
};

static const char *const gstate_names[GS__COUNT] = {
	[GS_STOPPED] = "stopped",     [GS_STARTING] = "starting",
	[GS_RUNNING] = "running",     [GS_PAUSED] = "paused",
	[GS_STOPPING] = "stopping",   [GS_DESTROYING] = "destroying",
	[GS_DUMPING] = "dumping",     [GS_BACKOFF] = "restarting",
	[GS_PRESERVED] = "preserved", [GS_FAILED] = "failed",
	[GS_PREPARING] = "preparing",
};

static const char *const sv_event_names[SV__COUNT] = {
	[SV_START] = "start",       [SV_STOP] = "stop",         [SV_DESTROY] = "destroy",
	[SV_RUNNING] = "running",   [SV_POWEROFF] = "poweroff", [SV_REBOOT] = "reboot",
	[SV_CRASH] = "crash",       [SV_WATCHDOG] = "watchdog", [SV_IO_ERROR] = "io-error",
	[SV_PAUSED] = "paused",     [SV_RESUMED] = "resumed",   [SV_EXIT] = "exit",
	[SV_DUMP_DONE] = "dump-done", [SV_TIMER] = "timer",
	[SV_STORAGE_OK] = "storage-ready", [SV_STORAGE_FAILED] = "storage-failed",
};

const char *gstate_name(enum gstate s)
{
	return s < GS__COUNT ? gstate_names[s] : "?";
}

const char *sv_event_name(enum sv_event ev)
{
	return ev < SV__COUNT ? sv_event_names[ev] : "?";
}

static void set_reason(struct guest *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(struct guest *g, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g->reason, sizeof(g->reason), fmt, ap);
	va_end(ap);
}

static void persist(struct guest *g)
{
	if (store_save_state(g->d, g) < 0)
		log_err("%s: cannot record state in %s: %s (will retry on next change)", g->cfg.name,
			g->d->conf.state_dir, strerror(errno));
}

/* --- timer ------------------------------------------------------------- */

static void dispatch(struct guest *g, struct sv_input *in);

static void timer_fired(void *arg)
{
	struct guest *g = arg;
	struct sv_input in = { .ev = SV_TIMER };

	g->timer_armed = false;
	dispatch(g, &in);
}

static void timer_cancel(struct guest *g)
{
	if (g->timer_armed)
		qb_loop_timer_del(g->d->loop, g->timer);
	g->timer_armed = false;
}

static void timer_arm(struct guest *g, uint64_t ms)
{
	timer_cancel(g);
	if (qb_loop_timer_add(g->d->loop, QB_LOOP_HIGH, ms * 1000000ULL, g, timer_fired,
			      &g->timer) == 0)
		g->timer_armed = true;
	else
		log_err("%s: cannot arm timer", g->cfg.name);
}

/* --- actions ------------------------------------------------------------- */

static enum gstate fail(struct guest *g)
{
	g->state = GS_FAILED; /* persist() writes the failed mark */
	persist(g);
	return GS_FAILED;
}

struct guest_cfg *supervise_launch_cfg(struct guest *g, char *err, size_t errlen)
{
	struct guest_cfg *cfg = guests_load_cfg(g);

	if (!cfg) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* With a watchdog, self-fencing must be promised before a guest runs. */
	if (watchdog_arm(g->d, err, errlen) < 0) {
		free(cfg);
		return NULL;
	}
	cfg->maxmem_mib = g->maxmem_mib > cfg->memory_mib ? g->maxmem_mib : cfg->memory_mib;
	return cfg;
}

static void dispatch(struct guest *g, struct sv_input *in);

/* Activated, with a device for every disk that needs one? */
static bool storage_ready(const struct guest *g, const struct guest_cfg *cfg)
{
	int i;

	if (!g->stor_active || storage_busy(g))
		return false;
	for (i = 0; i < cfg->n_disks; i++) {
		if (stor_activated(cfg->disks[i].stor.kind) && !g->stor_dev[i][0])
			return false;
	}
	return true;
}

/* A storage job ended: an activation for a start goes on (or fails the
 * start); one whose start was cancelled meanwhile is undone; a guest that
 * no longer runs here lets go of what it holds. */
static void storage_done(struct guest *g, enum storage_op op, bool ok, const char *why)
{
	if (op == STORAGE_PREPARE && g->state == GS_PREPARING) {
		struct sv_input in = { .ev = ok ? SV_STORAGE_OK : SV_STORAGE_FAILED, .detail = why };
		dispatch(g, &in);
		return;
	}
	supervise_storage_settle(g);
}

void supervise_storage_settle(struct guest *g)
{
	char err[256];
	/* no process here, and none to come: stopped or failed, or another
	 * host's (its state then is what the owner reports); a migration
	 * in flight keeps both ends' storage until it ends */
	bool idle = !g->h && g->state != GS_PREPARING && !g->mig.job[0] &&
		    (g->state == GS_STOPPED || g->state == GS_FAILED || !guest_is_local(g));

	if (!g->stor_active || storage_busy(g) || !idle)
		return;
	if (storage_run(g, STORAGE_RELEASE, storage_done, err, sizeof(err)) < 0)
		log_warn("%s: %s", g->cfg.name, err);
}

static enum gstate act_storage_failed(struct guest *g, struct sv_input *in)
{
	set_reason(g, "start failed: storage: %s", in->detail ? in->detail : "?");
	log_warn("%s: %s", g->cfg.name, g->reason);
	g->budget_spent = true; /* this host cannot run it: the cluster may place it elsewhere */
	return fail(g);
}

static enum gstate act_spawn(struct guest *g, struct sv_input *in)
{
	struct guest_cfg *cfg = NULL;
	char err[256] = "out of memory";
	int rc = -1;

	timer_cancel(g);
	if (!guest_is_local(g)) {
		/* The registry gave it to another host: never a second copy here. */
		set_reason(g, "not started here: owned by %s", g->owner);
		return GS_STOPPED;
	}
	if (!cluster_may_start(g->d)) {
		/* desired state kept: quorum regained starts it */
		set_reason(g, "not started: this partition has no quorum");
		return GS_STOPPED;
	}
	cfg = supervise_launch_cfg(g, err, sizeof(err));
	if (cfg && storage_needed(cfg) && !storage_ready(g, cfg)) {
		/* LV, iSCSI session, DRBD primary first; the start follows */
		free(cfg);
		if (storage_run(g, STORAGE_PREPARE, storage_done, err, sizeof(err)) == 0)
			return GS_PREPARING;
		set_reason(g, "start failed: %s", err);
		if (in->err)
			snprintf(in->err, in->errlen, "%s: %s", g->cfg.name, g->reason);
		return fail(g);
	}
	if (cfg) {
		g->budget_spent = false;
		storage_apply(g, cfg);
		rc = g->ops->start(&g->d->drv, cfg, g, &g->h, err, sizeof(err));
	}
	if (rc < 0) {
		free(cfg);
		g->h = NULL;
		set_reason(g, "start failed: %s", err);
		if (in->err)
			snprintf(in->err, in->errlen, "%s: %s", g->cfg.name, g->reason);
		return fail(g);
	}
	g->boot_mem_mib = cfg->maxmem_mib;
	g->mem_target_mib = cfg->memory_mib;
	free(cfg);
	g->started_at = time(NULL);
	return GS_STARTING;
}

static enum gstate act_running(struct guest *g, struct sv_input *in)
{
	if (!g->started_at)
		g->started_at = time(NULL);
	return GS_RUNNING;
}

static enum gstate do_destroy(struct guest *g, int after)
{
	g->after_exit = after;
	if (g->ops->destroy(g->h) < 0)
		log_err("%s: destroy failed: %s", g->cfg.name, strerror(errno));
	return GS_DESTROYING;
}

static enum gstate act_destroy(struct guest *g, struct sv_input *in)
{
	timer_cancel(g);
	return do_destroy(g, AE_STOPPED);
}

static enum gstate act_powerdown(struct guest *g, struct sv_input *in)
{
	unsigned s = in->timeout_s ? in->timeout_s : TO_STOP_DEFAULT_S;

	if (g->ops->shutdown(g->h) < 0) {
		log_warn("%s: power button failed (%s), destroying", g->cfg.name, strerror(errno));
		return do_destroy(g, AE_STOPPED);
	}
	timer_arm(g, (uint64_t)s * 1000);
	return GS_STOPPING;
}

static enum gstate act_cancel(struct guest *g, struct sv_input *in)
{
	timer_cancel(g);
	return GS_STOPPED;
}

/* Count policy restarts inside the window, then restart now, later, or give
 * up: the restart budget. */
static enum gstate restart_or_fail(struct guest *g, struct sv_input *in)
{
	uint64_t now = now_ms(), window = (uint64_t)g->cfg.ha_restart_window_s * 1000;
	uint64_t delay;
	int i, n = 0;

	if (g->cfg.managed_by_pacemaker) {
		/* Pacemaker's monitor sees it failed; its fail-count decides. */
		char last[sizeof(g->reason)];

		snprintf(last, sizeof(last), "%s", g->reason);
		set_reason(g, "%.*s; not restarted: Pacemaker manages it", (int)sizeof(last) - 40,
			   last);
		log_notice("%s: %s", g->cfg.name, g->reason);
		return fail(g);
	}
	for (i = 0; i < g->n_restarts; i++)
		if (now - g->restarts[i] < window)
			g->restarts[n++] = g->restarts[i];
	g->n_restarts = n;
	if (n >= g->cfg.ha_restart_max) {
		char last[sizeof(g->reason)];

		snprintf(last, sizeof(last), "%s", g->reason);
		set_reason(g, "restart budget exhausted: %d restarts within %d s; last: %s", n,
			   g->cfg.ha_restart_window_s, last);
		g->budget_spent = true; /* in a cluster it may move to another host */
		return fail(g);
	}
	if (n == RESTART_HISTORY) {
		memmove(g->restarts, g->restarts + 1, sizeof(g->restarts[0]) * (RESTART_HISTORY - 1));
		n--;
	}
	g->restarts[n] = now;
	g->n_restarts = n + 1;
	if (n == 0)
		return act_spawn(g, in);
	delay = (uint64_t)TO_BACKOFF_BASE_MS << (n - 1 < 16 ? n - 1 : 16);
	if (delay > TO_BACKOFF_MAX_MS)
		delay = TO_BACKOFF_MAX_MS;
	log_info("%s: restart %d within window, backing off %llu ms", g->cfg.name, n + 1,
		 (unsigned long long)delay);
	timer_arm(g, delay);
	return GS_BACKOFF;
}

static void release_handle(struct guest *g)
{
	if (g->h)
		g->ops->release(g->h);
	g->h = NULL;
	g->started_at = 0;
}

/* What runs the guest, in reasons: its QEMU, or its Xen domain. */
static const char *runner(const struct guest *g)
{
	return g->ops && !strcmp(g->ops->name, "xen") ? "Xen domain" : "QEMU";
}

static enum gstate stop_for_good(struct guest *g)
{
	if (guest_is_local(g)) /* a guest owned elsewhere keeps the cluster's desire */
		g->desired = DESIRED_STOPPED;
	g->state = GS_STOPPED;
	persist(g);
	return GS_STOPPED;
}

/* The renamed instance keeps its run_dir files (pid file locked by QEMU,
 * sockets still bound) under its new name, so the fresh instance can start
 * and the old one's console log stays readable. */
/* rename-restart: the crashed instance stays (paused) under a new name, for
 * inspection with `hactl destroy NAME-N` when done; a fresh one starts. */
static void keep_renamed(struct guest *g)
{
	struct guest *o = calloc(1, sizeof(*o));
	unsigned i;

	if (!o) {
		g->ops->destroy(g->h);
		return;
	}
	*o = *g;
	o->text = NULL;
	o->text_len = 0;
	o->h = NULL;
	/* the fresh instance keeps the storage: the kept one never releases it */
	o->stor_active = false;
	o->stor_job = NULL;
	o->timer_armed = false;
	o->orphan_pid = g->ops->pid(g->h);
	o->orphan = true;
	o->state = GS_PRESERVED;
	for (i = 1; i < 1000; i++) {
		/* 55 + "-" + 3 digits fits GUEST_NAME_MAX */
		snprintf(o->cfg.name, sizeof(o->cfg.name), "%.55s-%u", g->cfg.name, i);
		if (!guests_find(g->d, o->cfg.name))
			break;
	}
	qb_list_init(&o->list);
	guests_insert(g->d, o);
	if (g->ops->rename_files)
		g->ops->rename_files(&g->d->drv, g->cfg.name, o->cfg.name);
	g->ops->detach(g->h);
	g->h = NULL;
	set_reason(o, "renamed from %s after %s", g->cfg.name, g->reason);
	log_notice("%s: crashed instance (pid %d) kept as %s", g->cfg.name, (int)o->orphan_pid,
		   o->cfg.name);
	events_publish(g->d, o, GS_STOPPED, GS_PRESERVED, o->reason);
}

/* Apply an on_* policy; the process is alive (paused) when alive is true. */
static enum gstate apply_policy(struct guest *g, struct sv_input *in, enum guest_action a,
				bool alive)
{
	char path[PATH_MAX];

	log_info("%s: %s -> policy %s", g->cfg.name, sv_event_name(in->ev), guest_action_name(a));
	switch (a) {
	case GA_DESTROY:
		g->desired = DESIRED_STOPPED;
		persist(g);
		return alive ? do_destroy(g, AE_STOPPED) : stop_for_good(g);
	case GA_RESTART:
		return alive ? do_destroy(g, AE_RESTART) : restart_or_fail(g, in);
	case GA_RENAME_RESTART:
		if (alive)
			keep_renamed(g);
		return restart_or_fail(g, in);
	case GA_PRESERVE:
		if (alive)
			return GS_PRESERVED;
		char last[sizeof(g->reason)];

		snprintf(last, sizeof(last), "%s", g->reason);
		set_reason(g, "%s; nothing left to preserve", last);
		return stop_for_good(g);
	case GA_COREDUMP_DESTROY:
	case GA_COREDUMP_RESTART:
		g->after_dump = a == GA_COREDUMP_DESTROY ? GA_DESTROY : GA_RESTART;
		if (!alive)
			return g->after_dump == GA_RESTART ? restart_or_fail(g, in) : stop_for_good(g);
		if (fs_path(path, sizeof(path), "%s/%s-%ld.core", g->d->conf.dump_dir, g->cfg.name,
			    (long)time(NULL)) == 0 &&
		    g->ops->coredump(g->h, path) == 0) {
			log_notice("%s: dumping core to %s", g->cfg.name, path);
			return GS_DUMPING;
		}
		log_err("%s: coredump failed: %s", g->cfg.name, strerror(errno));
		return do_destroy(g, g->after_dump == GA_RESTART ? AE_RESTART : AE_STOPPED);
	case GA_SOFT_RESET:
	default:
		/* The qemu driver refuses soft-reset at check time. */
		return alive ? do_destroy(g, AE_STOPPED) : stop_for_good(g);
	}
}

static enum gstate act_policy(struct guest *g, struct sv_input *in)
{
	enum guest_action a;

	switch (in->ev) {
	case SV_POWEROFF:
		a = g->cfg.on_poweroff;
		set_reason(g, "guest powered off");
		break;
	case SV_REBOOT:
		if (in->detail && !strcmp(in->detail, "in-place"))
			return g->state; /* QEMU reset the guest itself (on_reboot=restart) */
		a = g->cfg.on_reboot;
		set_reason(g, "guest rebooted");
		break;
	case SV_WATCHDOG:
		a = g->cfg.on_watchdog;
		set_reason(g, "watchdog fired");
		break;
	case SV_CRASH:
	default:
		a = g->cfg.on_crash;
		set_reason(g, "guest crashed%s%s", in->detail ? ": " : "", in->detail ? in->detail : "");
		break;
	}
	return apply_policy(g, in, a, true);
}

static enum gstate act_io_error(struct guest *g, struct sv_input *in)
{
	set_reason(g, "io-error%s%s; guest kept paused", in->detail ? ": " : "",
		   in->detail ? in->detail : "");
	return fail(g);
}

static enum gstate act_paused(struct guest *g, struct sv_input *in)
{
	if (g->state == GS_STARTING && g->resume_when_ready) {
		g->resume_when_ready = false;
		if (g->ops->resume(g->h) < 0)
			log_err("%s: cannot resume its migrated copy: %s", g->cfg.name,
				strerror(errno));
		return GS_PAUSED; /* RESUMED follows */
	}
	/* A QEMU re-attached after hagentd died while it migrated the guest
	 * away: its migration completed, so it is paused for good unless the
	 * job never committed.  Only the cluster knows (start_owned in registry.c
	 * resumes it if the sync leaves it here; a commit's higher generation
	 * destroys it instead). */
	if (g->state == GS_STARTING && in->detail &&
	    (!strcmp(in->detail, "status postmigrate") ||
	     !strcmp(in->detail, "status finish-migrate"))) {
		if (registry_active(g->d) && registry_synced(g->d)) {
			/* synced already: the guest is local (or this would have
			 * been destroyed by the merge) */
			if (!g->mig.job[0] && g->ops->resume(g->h) == 0) {
				set_reason(g, "re-attached paused after a migration that never "
					      "committed: resumed");
				log_notice("%s: %s", g->cfg.name, g->reason);
			}
			return GS_PAUSED; /* RESUMED follows */
		}
		g->resume_after_sync = true;
		set_reason(g, "re-attached paused after a migration; waiting for the cluster to "
			      "confirm it still runs here");
		log_notice("%s: %s", g->cfg.name, g->reason);
	}
	return GS_PAUSED;
}

/* The process went away without being asked to. */
static enum gstate act_unexpected_exit(struct guest *g, struct sv_input *in)
{
	const struct drv_exit *x = in->exit;
	bool clean = x && x->known && !x->signaled && x->code == 0;

	release_handle(g);
	if (x && x->known)
		set_reason(g, "%s exited (%s %d)%s%s", runner(g), x->signaled ? "signal" : "status", x->code,
			   in->detail ? ": " : "", in->detail ? in->detail : "");
	else
		set_reason(g, "%s exited%s%s", runner(g), in->detail ? ": " : "",
			   in->detail ? in->detail : "");
	in->ev = clean ? SV_POWEROFF : SV_CRASH;
	return apply_policy(g, in, clean ? g->cfg.on_poweroff : g->cfg.on_crash, false);
}

static enum gstate act_start_exit(struct guest *g, struct sv_input *in)
{
	release_handle(g);
	set_reason(g, "%s failed to start%s%s", runner(g), in->detail ? ": " : "",
		   in->detail ? in->detail : "");
	return fail(g);
}

static enum gstate act_exited(struct guest *g, struct sv_input *in)
{
	int after = g->after_exit;

	release_handle(g);
	g->after_exit = AE_STOPPED;
	if (after == AE_RESTART)
		return restart_or_fail(g, in);
	if (after == AE_FAILED)
		return fail(g);
	if (after == AE_HOLD) {
		/* handed off (migrated, or the cluster moved it): show what its
		 * owner reports */
		if (g->owner[0] && !guest_is_local(g)) {
			snprintf(g->reason, sizeof(g->reason), "%s", g->owner_reason);
			return g->owner_state;
		}
		return GS_STOPPED;
	}
	return stop_for_good(g);
}

static enum gstate act_stopping_event(struct guest *g, struct sv_input *in)
{
	timer_cancel(g);
	return do_destroy(g, AE_STOPPED);
}

static enum gstate act_dump_done(struct guest *g, struct sv_input *in)
{
	log_notice("%s: coredump %s", g->cfg.name, in->detail ? in->detail : "done");
	return do_destroy(g, g->after_dump == GA_RESTART ? AE_RESTART : AE_STOPPED);
}

static enum gstate act_failed_exit(struct guest *g, struct sv_input *in)
{
	release_handle(g);
	return GS_FAILED;
}

static enum gstate act_preserved_exit(struct guest *g, struct sv_input *in)
{
	release_handle(g);
	return stop_for_good(g);
}

static enum gstate act_failed_clear(struct guest *g, struct sv_input *in)
{
	if (g->h)
		return do_destroy(g, AE_STOPPED);
	return stop_for_good(g);
}


/* The table.  A (state, event) pair without a row is ignored (logged at
 * debug level) for driver events and refused for requests. */
static const struct sv_rule rules[] = {
	{ GS_STOPPED, SV_START, act_spawn, NEXT_DYN },
	{ GS_FAILED, SV_START, act_spawn, NEXT_DYN }, /* refused while its QEMU is kept */
	{ GS_BACKOFF, SV_START, act_spawn, NEXT_DYN },
	{ GS_BACKOFF, SV_TIMER, act_spawn, NEXT_DYN },
	{ GS_BACKOFF, SV_STOP, act_cancel, GS_STOPPED },
	{ GS_BACKOFF, SV_DESTROY, act_cancel, GS_STOPPED },

	{ GS_PREPARING, SV_STORAGE_OK, act_spawn, NEXT_DYN },
	{ GS_PREPARING, SV_STORAGE_FAILED, act_storage_failed, NEXT_DYN },
	{ GS_PREPARING, SV_STOP, act_cancel, GS_STOPPED },    /* the job's end releases */
	{ GS_PREPARING, SV_DESTROY, act_cancel, GS_STOPPED },

	{ GS_STARTING, SV_RUNNING, act_running, GS_RUNNING },
	{ GS_STARTING, SV_EXIT, act_start_exit, NEXT_DYN },
	{ GS_STARTING, SV_STOP, act_destroy, GS_DESTROYING },
	{ GS_STARTING, SV_DESTROY, act_destroy, GS_DESTROYING },
	/* a re-attached guest reports what happened while nobody watched */
	{ GS_STARTING, SV_POWEROFF, act_policy, NEXT_DYN },
	{ GS_STARTING, SV_REBOOT, act_policy, NEXT_DYN },
	{ GS_STARTING, SV_CRASH, act_policy, NEXT_DYN },
	{ GS_STARTING, SV_WATCHDOG, act_policy, NEXT_DYN },
	{ GS_STARTING, SV_IO_ERROR, act_io_error, NEXT_DYN },
	{ GS_STARTING, SV_PAUSED, act_paused, GS_PAUSED },

	{ GS_RUNNING, SV_POWEROFF, act_policy, NEXT_DYN },
	{ GS_RUNNING, SV_REBOOT, act_policy, NEXT_DYN },
	{ GS_RUNNING, SV_CRASH, act_policy, NEXT_DYN },
	{ GS_RUNNING, SV_WATCHDOG, act_policy, NEXT_DYN },
	{ GS_RUNNING, SV_IO_ERROR, act_io_error, NEXT_DYN },
	{ GS_RUNNING, SV_PAUSED, act_paused, GS_PAUSED },
	{ GS_RUNNING, SV_EXIT, act_unexpected_exit, NEXT_DYN },
	{ GS_RUNNING, SV_STOP, act_powerdown, NEXT_DYN },
	{ GS_RUNNING, SV_DESTROY, act_destroy, GS_DESTROYING },

	{ GS_PAUSED, SV_RESUMED, act_running, GS_RUNNING },
	{ GS_PAUSED, SV_POWEROFF, act_policy, NEXT_DYN },
	{ GS_PAUSED, SV_CRASH, act_policy, NEXT_DYN },
	{ GS_PAUSED, SV_WATCHDOG, act_policy, NEXT_DYN },
	{ GS_PAUSED, SV_IO_ERROR, act_io_error, NEXT_DYN },
	{ GS_PAUSED, SV_EXIT, act_unexpected_exit, NEXT_DYN },
	{ GS_PAUSED, SV_STOP, act_destroy, GS_DESTROYING },
	{ GS_PAUSED, SV_DESTROY, act_destroy, GS_DESTROYING },

	{ GS_STOPPING, SV_POWEROFF, act_stopping_event, GS_DESTROYING },
	{ GS_STOPPING, SV_REBOOT, act_stopping_event, GS_DESTROYING },
	{ GS_STOPPING, SV_CRASH, act_stopping_event, GS_DESTROYING },
	{ GS_STOPPING, SV_WATCHDOG, act_stopping_event, GS_DESTROYING },
	{ GS_STOPPING, SV_TIMER, act_stopping_event, GS_DESTROYING },
	{ GS_STOPPING, SV_DESTROY, act_stopping_event, GS_DESTROYING },
	{ GS_STOPPING, SV_EXIT, act_exited, NEXT_DYN },

	{ GS_DESTROYING, SV_EXIT, act_exited, NEXT_DYN },

	{ GS_DUMPING, SV_DUMP_DONE, act_dump_done, GS_DESTROYING },
	{ GS_DUMPING, SV_EXIT, act_unexpected_exit, NEXT_DYN },
	{ GS_DUMPING, SV_DESTROY, act_destroy, GS_DESTROYING },

	{ GS_PRESERVED, SV_DESTROY, act_destroy, GS_DESTROYING },
	{ GS_PRESERVED, SV_STOP, act_destroy, GS_DESTROYING },
	{ GS_PRESERVED, SV_EXIT, act_preserved_exit, NEXT_DYN },

	{ GS_FAILED, SV_DESTROY, act_failed_clear, NEXT_DYN },
	{ GS_FAILED, SV_STOP, act_failed_clear, NEXT_DYN },
	{ GS_FAILED, SV_EXIT, act_failed_exit, GS_FAILED },
};

static const struct sv_rule *rule_find(enum gstate s, enum sv_event ev)
{
	size_t i;

	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].from == s && rules[i].ev == ev)
			return &rules[i];
	return NULL;
}

/* Returns 0 when a rule ran, -1 when the pair has no rule or was refused. */
static int dispatch_rc(struct guest *g, struct sv_input *in)
{
	const struct sv_rule *r = rule_find(g->state, in->ev);
	enum gstate from = g->state, to;

	if (!r) {
		log_debug("%s: %s ignored in state %s", g->cfg.name, sv_event_name(in->ev),
			  gstate_name(from));
		if (in->err)
			snprintf(in->err, in->errlen, "%s: cannot %s a guest that is %s", g->cfg.name,
				 sv_event_name(in->ev), gstate_name(from));
		return -1;
	}
	to = r->act(g, in);
	if (r->next != NEXT_DYN)
		to = r->next;
	g->state = to;
	/* The failed mark is durable: set when entering, cleared when leaving. */
	if ((from == GS_FAILED) != (to == GS_FAILED))
		persist(g);
	if (from != to || in->ev == SV_START) {
		/* Guest-side events and failures carry the reason the action
		 * recorded; requests and plain progress carry the event's name. */
		bool guest_side = in->ev >= SV_POWEROFF && in->ev != SV_PAUSED &&
				  in->ev != SV_RESUMED;
		const char *cause = (guest_side || to == GS_FAILED) && g->reason[0]
					    ? g->reason : sv_event_name(in->ev);
		log_info("guest %s: %s -> %s (%s)", g->cfg.name, gstate_name(from), gstate_name(to),
			 cause);
		events_publish(g->d, g, from, to, cause);
	}
	if (from != to)
		supervise_storage_settle(g);
	return 0;
}

static void dispatch(struct guest *g, struct sv_input *in)
{
	(void)dispatch_rc(g, in);
}

/* --- requests ------------------------------------------------------------ */

static int request(struct guest *g, enum sv_event ev, enum desired want, unsigned timeout_s,
		   char *err, size_t len)
{
	struct sv_input in = { .ev = ev, .timeout_s = timeout_s, .err = err, .errlen = len };
	enum desired old = g->desired;

	/* Refuse before any side effect (desired state, reason). */
	if (!rule_find(g->state, ev)) {
		snprintf(err, len, "%s: cannot %s a guest that is %s", g->cfg.name,
			 sv_event_name(ev), gstate_name(g->state));
		return -1;
	}
	if (ev == SV_START && g->state == GS_FAILED && g->h) {
		snprintf(err, len,
			 "%s: failed (%s) and its QEMU is kept for inspection; destroy it first",
			 g->cfg.name, g->reason);
		return -1;
	}
	if (ev == SV_START && (g->state == GS_STOPPED || g->state == GS_FAILED))
		g->n_restarts = 0; /* starting anew opens a fresh restart budget */
	g->desired = want;
	if (want != old && store_save_state(g->d, g) < 0) {
		/* Acting without a durable record could undo itself after a restart. */
		snprintf(err, len, "%s: cannot record desired state in %s: %s", g->cfg.name,
			 g->d->conf.state_dir, strerror(errno));
		g->desired = old;
		return -1;
	}
	g->reason[0] = '\0';
	return dispatch_rc(g, &in);
}

int supervise_start(struct guest *g, char *err, size_t len)
{
	if (g->orphan) {
		snprintf(err, len, "%s: a preserved crashed instance cannot be started; destroy it",
			 g->cfg.name);
		return -1;
	}
	if (g->state == GS_RUNNING || g->state == GS_STARTING || g->state == GS_PAUSED ||
	    g->state == GS_PREPARING) {
		g->desired = DESIRED_RUNNING;
		return 0; /* idempotent */
	}
	return request(g, SV_START, DESIRED_RUNNING, 0, err, len);
}

int supervise_stop(struct guest *g, unsigned timeout_s, char *err, size_t len)
{
	if (g->orphan)
		return supervise_destroy(g, err, len);
	if (g->state == GS_STOPPED) {
		g->desired = DESIRED_STOPPED;
		return 0;
	}
	if (g->state == GS_STOPPING || g->state == GS_DESTROYING)
		return 0;
	return request(g, SV_STOP, DESIRED_STOPPED, timeout_s, err, len);
}

int supervise_destroy(struct guest *g, char *err, size_t len)
{
	if (g->orphan) {
		/* QEMU runs in its own session: its process group is its pid. */
		if (g->orphan_pid > 0 && kill(-g->orphan_pid, SIGKILL) < 0 && errno != ESRCH) {
			snprintf(err, len, "%s: kill %d: %s", g->cfg.name, (int)g->orphan_pid,
				 strerror(errno));
			return -1;
		}
		/* hagentd is its parent unless it restarted since: reap it (a
		 * SIGKILLed process is gone within milliseconds). */
		if (g->orphan_pid > 0)
			waitpid(g->orphan_pid, NULL, 0);
		events_publish(g->d, g, g->state, GS_STOPPED, "destroy");
		g->removing = true;
		return 0;
	}
	if (g->state == GS_STOPPED) {
		g->desired = DESIRED_STOPPED;
		return 0;
	}
	if (g->state == GS_DESTROYING)
		return 0;
	return request(g, SV_DESTROY, DESIRED_STOPPED, 0, err, len);
}

/* --- driver events --------------------------------------------------------- */

static const enum sv_event drv_to_sv[DRV_EV__COUNT] = {
	[DRV_EV_RUNNING] = SV_RUNNING,   [DRV_EV_POWEROFF] = SV_POWEROFF,
	[DRV_EV_REBOOT] = SV_REBOOT,     [DRV_EV_CRASH] = SV_CRASH,
	[DRV_EV_WATCHDOG] = SV_WATCHDOG, [DRV_EV_IO_ERROR] = SV_IO_ERROR,
	[DRV_EV_PAUSED] = SV_PAUSED,     [DRV_EV_RESUMED] = SV_RESUMED,
	[DRV_EV_EXIT] = SV_EXIT,         [DRV_EV_DUMP_DONE] = SV_DUMP_DONE,
};

void supervise_drv_event(void *owner, enum drv_event ev, const char *detail,
			 const struct drv_exit *exit_info)
{
	struct guest *g = owner;
	struct sv_input in = { .detail = detail, .exit = exit_info };

	if (ev >= DRV_EV__COUNT)
		return;
	/* A migration's own events, and the pause at its end, belong to the job:
	 * the guest is still running here until the registry says otherwise. */
	if (ev == DRV_EV_MIGRATION ||
	    ((ev == DRV_EV_PAUSED || ev == DRV_EV_RESUMED) && migrate_source_here(g))) {
		migrate_source_event(g, ev, detail);
		return;
	}
	if (ev == DRV_EV_EXIT && migrate_source_here(g))
		migrate_source_event(g, ev, detail); /* the job ends; the policy applies */
	in.ev = drv_to_sv[ev];
	log_debug("%s: driver event %s%s%s in %s", g->cfg.name, drv_event_name(ev),
		  detail ? ": " : "", detail ? detail : "", gstate_name(g->state));
	dispatch(g, &in);
}

void supervise_resume(struct guest *g)
{
	struct sv_input in = { .ev = SV_CRASH };
	bool failed = g->state == GS_FAILED;
	struct guest_cfg *cfg;
	int rc;

	if (g->orphan || !guest_is_local(g))
		return; /* another host runs it; the registry shows its state */
	cfg = guests_load_cfg(g);
	rc = cfg ? g->ops->attach(&g->d->drv, cfg, g, &g->h) : -1;
	free(cfg);
	if (rc == 0 && g->incoming_left) {
		/* it runs here in its own QEMU: the incoming copy is a leftover */
		g->incoming_left = false;
		g->ops->discard_incoming(&g->d->drv, g->cfg.name);
	}
	if (rc == 0) {
		g->stor_active = true; /* it runs on it: a stop releases it */
		g->state = failed ? GS_FAILED : GS_STARTING;
		set_reason(g, "re-attached after hagentd restart");
		log_notice("%s: re-attached to running QEMU (pid %d)", g->cfg.name,
			   (int)g->ops->pid(g->h));
		return; /* its state follows from the driver's first event (an io-error
			 * guest stays failed) */
	}
	g->h = NULL;
	if (failed || g->desired != DESIRED_RUNNING)
		return;
	if (g->incoming_left) {
		set_reason(g, "a migrated copy is paused here: the cluster's table decides");
		log_notice("%s: %s", g->cfg.name, g->reason);
		return;
	}
	/* It was meant to run but its process is gone: it died while hagentd was
	 * down.  Handle it as a crash, per on_crash. */
	g->state = GS_RUNNING;
	set_reason(g, "%s gone while hagentd was down", runner(g));
	log_warn("%s: %s; applying on_crash=%s", g->cfg.name, g->reason,
		 guest_action_name(g->cfg.on_crash));
	g->state = apply_policy(g, &in, g->cfg.on_crash, false);
	events_publish(g->d, g, GS_RUNNING, g->state, g->reason);
}

void supervise_quorum_lost(struct guest *g)
{
	enum gstate from = g->state;

	if (g->orphan)
		return;
	timer_cancel(g);
	set_reason(g, "quorum lost");
	if (g->h && g->state != GS_DESTROYING) {
		g->state = do_destroy(g, AE_HOLD);
	} else if (g->h) {
		g->after_exit = AE_HOLD;
	} else if (g->state == GS_BACKOFF || g->state == GS_PREPARING) {
		g->state = GS_STOPPED; /* a storage job's end then releases */
	}
	if (from != g->state) {
		log_info("guest %s: %s -> %s (%s)", g->cfg.name, gstate_name(from),
			 gstate_name(g->state), g->reason);
		events_publish(g->d, g, from, g->state, g->reason);
		supervise_storage_settle(g);
	}
}

void supervise_quorum_regained(struct guest *g)
{
	struct sv_input in = { .ev = SV_START };

	if (g->orphan || g->desired != DESIRED_RUNNING || g->state != GS_STOPPED ||
	    !guest_is_local(g))
		return;
	if (g->cfg.managed_by_pacemaker) { /* its monitor says stopped: Pacemaker decides */
		set_reason(g, "quorum lost; not restarted: Pacemaker manages it");
		return;
	}
	set_reason(g, "quorum regained");
	(void)dispatch_rc(g, &in);
}

void supervise_hand_off(struct guest *g, const char *why)
{
	enum gstate from = g->state;

	timer_cancel(g);
	snprintf(g->reason, sizeof(g->reason), "%s", why);
	if (g->h && g->state != GS_DESTROYING)
		g->state = do_destroy(g, AE_HOLD);
	else if (g->h)
		g->after_exit = AE_HOLD;
	else if (g->state == GS_PREPARING)
		g->state = GS_STOPPED;
	if (from != g->state) {
		log_info("guest %s: %s -> %s (%s)", g->cfg.name, gstate_name(from),
			 gstate_name(g->state), g->reason);
		events_publish(g->d, g, from, g->state, g->reason);
	}
	supervise_storage_settle(g);
}

void supervise_adopt(struct guest *g, struct drv_guest *h, long boot_mem_mib, long mem_mib)
{
	enum gstate from = g->state;

	timer_cancel(g);
	g->h = h;
	g->state = GS_PAUSED;
	g->boot_mem_mib = boot_mem_mib;
	g->mem_target_mib = mem_mib;
	g->started_at = time(NULL);
	g->n_restarts = 0;
	g->budget_spent = false;
	set_reason(g, "migrated here");
	log_info("guest %s: %s -> %s (%s)", g->cfg.name, gstate_name(from), gstate_name(g->state),
		 g->reason);
	events_publish(g->d, g, from, g->state, g->reason);
	if (g->ops->resume(g->h) < 0)
		log_err("%s: cannot resume after the migration: %s", g->cfg.name, strerror(errno));
}

int supervise_take_incoming(struct guest *g)
{
	char err[256];
	struct guest_cfg *cfg = supervise_launch_cfg(g, err, sizeof(err));
	struct drv_guest *h = NULL;
	enum gstate from = g->state;

	if (!cfg || g->ops->attach_incoming(&g->d->drv, cfg, g, &h) < 0) {
		log_err("%s: cannot take over the migrated copy: %s", g->cfg.name,
			cfg ? strerror(errno) : err);
		free(cfg);
		return -1;
	}
	g->ops->rebind(h, &g->d->drv, g);
	timer_cancel(g);
	g->h = h;
	g->state = GS_STARTING;
	g->boot_mem_mib = cfg->maxmem_mib;
	g->mem_target_mib = cfg->memory_mib;
	g->started_at = time(NULL);
	g->resume_when_ready = true;
	free(cfg);
	set_reason(g, "took over its migrated copy, left paused when hagentd went away");
	log_notice("%s: %s (QEMU %d)", g->cfg.name, g->reason, (int)g->ops->pid(h));
	events_publish(g->d, g, from, g->state, g->reason);
	return 0;
}

void supervise_detach(struct guest *g)
{
	timer_cancel(g);
	if (g->h)
		g->ops->detach(g->h);
	g->h = NULL;
}

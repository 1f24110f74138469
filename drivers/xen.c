/* The Xen driver: guests as Xen domains through libxenlight (libxl), with
 * libxl's events delivered in hagentd's own loop (xen_loop.c).
 *
 * A domain maps onto the supervisor's model as a QEMU process does: a guest
 * that powers off, reboots, crashes or trips its watchdog stays as a shut
 * down domain (reported as POWEROFF, REBOOT, CRASH, WATCHDOG) until the
 * supervisor destroys it; its death is DRV_EV_EXIT.  Xen domains have no
 * host process: pid() is 0.
 *
 * One libxl ctx serves every guest; it is made on first use, so a host
 * without Xen only learns "driver unavailable" when a xen guest asks.
 *
 * Live migration (the job machine in migrate/job.c drives it): the source
 * streams the domain with libxl_domain_suspend(LIVE) into the fd the
 * migration channel hands over; the destination restores it with
 * libxl_domain_create_restore as the paused domain NAME--incoming, renamed
 * to NAME when the commit makes it the guest (rebind), then unpaused.  An
 * abort before the commit resumes the source's suspended domain.
 *
 * Events the supervisor must see after the call that caused them returns
 * (RUNNING after attach, PAUSED for a waiting incoming domain, RESUMED after
 * an unpause) are posted as loop jobs that find their handle again by id. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <qb/qblist.h>

#include <libxl.h>
#include <libxl_utils.h>
#include <xentoollog.h>

#include "drivers/driver.h"
#include "drivers/xen_config.h"
#include "drivers/xen_loop.h"
#include "lib/log.h"

/* The incoming copy of a migration is this domain until the commit. */
#define INCOMING_SUFFIX "--incoming"

struct drv_guest {
	struct qb_list_head list;
	uint64_t id;               /* never reused: posted events find it by this */
	struct drv_host *host;
	void *owner;
	char name[GUEST_NAME_MAX];
	uint32_t domid;            /* 0 = none yet (dom0 is never a guest) */
	libxl_evgen_domain_death *death;
	bool creating;             /* libxl_domain_create_new/_restore under way */
	bool destroy_requested;
	bool dead;                 /* DEATH seen (EXIT sent) */
	bool detached;             /* handle forgotten while an op is in flight */
	int dump_rc;
	/* migration */
	bool incoming;             /* the domain is NAME--incoming */
	bool dc_ready;             /* dc holds the incoming domain's config */
	libxl_domain_config dc;
	int mig_fd;                /* our copy of the stream's fd, -1 = none */
	libxl_asyncop_how mig_how; /* the suspend under way (for libxl_ao_abort) */
	bool sending, sent;        /* source: suspend under way / completed */
	bool resuming;             /* libxl_domain_resume under way */
	int64_t mig_start_ms, suspended_ms, mig_end_ms;
	char mig_error[260];
	char console[64];          /* its console's pty, as last asked */
};

static struct {
	uint64_t next_id;
	libxl_ctx *ctx;
	struct xen_loop *loop;
	xentoollog_logger logger;  /* libxl's messages into hagentd's log */
	char last_error[200];      /* libxl's first error since the last one we
				    * reported: the reason we report */
	bool trace;                /* log libxl's debug messages too */
	struct qb_list_head guests;
	char why[256];             /* why there is no ctx ("" = not tried) */
} X;

static void emit(struct drv_guest *g, enum drv_event ev, const char *detail,
		 const struct drv_exit *x)
{
	if (!g->detached)
		g->host->event(g->owner, ev, detail, x);
}

static int xen_destroy(struct drv_guest *g);

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct drv_guest *by_id(uint64_t id)
{
	struct drv_guest *g;

	qb_list_for_each_entry(g, &X.guests, list)
		if (g->id == id)
			return g;
	return NULL;
}

/* An event delivered from the loop, after the call that caused it. */
struct posted {
	uint64_t id;
	enum drv_event ev;
	char detail[96];
};

static void posted_run(void *arg)
{
	struct posted *p = arg;
	struct drv_guest *g = by_id(p->id);

	if (g && !g->dead)
		emit(g, p->ev, p->detail[0] ? p->detail : NULL, NULL);
	free(p);
}

static void post(struct drv_guest *g, enum drv_event ev, const char *detail)
{
	struct posted *p = calloc(1, sizeof(*p));

	if (!p) {
		log_crit("xen: %s: out of memory: %s not delivered", g->name, drv_event_name(ev));
		return;
	}
	p->id = g->id;
	p->ev = ev;
	snprintf(p->detail, sizeof(p->detail), "%s", detail ? detail : "");
	if (qb_loop_job_add(g->host->loop, QB_LOOP_HIGH, p, posted_run) < 0) {
		log_crit("xen: %s: cannot queue %s", g->name, drv_event_name(ev));
		free(p);
	}
}

static struct drv_guest *by_domid(uint32_t domid)
{
	struct drv_guest *g;

	qb_list_for_each_entry(g, &X.guests, list)
		if (g->domid == domid && domid)
			return g;
	return NULL;
}

/* The migration stream for libxl: our own copy of the channel's fd (the
 * caller keeps its own), and the asyncop that uses it, so that it can be
 * aborted (libxl_ao_abort names an op by its how).  Closing our copy at the
 * end is what ends the stream for the relay. */
static int stream_take(struct drv_guest *g, int fd,
		       void (*cb)(libxl_ctx *ctx, int rc, void *for_callback))
{
	g->mig_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (g->mig_fd < 0)
		return -1;
	memset(&g->mig_how, 0, sizeof(g->mig_how));
	g->mig_how.callback = cb;
	g->mig_how.u.for_callback = (void *)(uintptr_t)g->id;
	return 0;
}

static void stream_close(struct drv_guest *g)
{
	if (g->mig_fd >= 0)
		close(g->mig_fd);
	g->mig_fd = -1;
}

static void guest_free(struct drv_guest *g)
{
	if (g->death && X.ctx)
		libxl_evdisable_domain_death(X.ctx, g->death);
	if (g->dc_ready)
		libxl_domain_config_dispose(&g->dc);
	stream_close(g);
	qb_list_del(&g->list);
	free(g);
}

/* libxl's events: shutdown reasons and death, in the loop. */
static void event_occurs(void *user, libxl_event *ev)
{
	static const enum drv_event by_reason[] = {
		[LIBXL_SHUTDOWN_REASON_POWEROFF] = DRV_EV_POWEROFF,
		[LIBXL_SHUTDOWN_REASON_REBOOT] = DRV_EV_REBOOT,
		[LIBXL_SHUTDOWN_REASON_SUSPEND] = DRV_EV_PAUSED,
		[LIBXL_SHUTDOWN_REASON_CRASH] = DRV_EV_CRASH,
		[LIBXL_SHUTDOWN_REASON_WATCHDOG] = DRV_EV_WATCHDOG,
		[LIBXL_SHUTDOWN_REASON_SOFT_RESET] = DRV_EV_REBOOT,
	};
	struct drv_guest *g = by_domid(ev->domid);
	unsigned reason;

	(void)user;
	if (!g)
		goto out;
	switch (ev->type) {
	case LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN:
		reason = ev->u.domain_shutdown.shutdown_reason;
		log_info("xen: %s (domain %u) shut down, reason %s", g->name, g->domid,
			 libxl_shutdown_reason_to_string(reason));
		if (reason == LIBXL_SHUTDOWN_REASON_SUSPEND && g->sending)
			g->suspended_ms = mono_ms(); /* the stop-and-copy begins */
		emit(g, reason < sizeof(by_reason) / sizeof(by_reason[0]) ? by_reason[reason]
									   : DRV_EV_CRASH,
		     libxl_shutdown_reason_to_string(reason), NULL);
		break;
	case LIBXL_EVENT_TYPE_DOMAIN_DEATH: {
		/* destroyed by someone else (xl destroy): no status to tell, as
		 * for a QEMU that hagentd is not the parent of */
		struct drv_exit x = { .known = g->destroy_requested,
				      .requested = g->destroy_requested };
		log_info("xen: %s (domain %u) is gone", g->name, g->domid);
		g->dead = true;
		emit(g, DRV_EV_EXIT, g->destroy_requested ? "destroyed" : "domain died", &x);
		break;
	}
	default:
		break;
	}
out:
	libxl_event_free(X.ctx, ev);
}

static void disaster(void *user, libxl_event_type type, const char *msg, int errnoval)
{
	(void)user;
	log_crit("xen: libxl event disaster (%s): %s: %s", libxl_event_type_to_string(type), msg,
		 strerror(errnoval));
}

static const libxl_event_hooks event_hooks = {
	.event_occurs_mask = ~0ULL,
	.event_occurs = event_occurs,
	.disaster = disaster,
};

/* libxl reaps only the children it forked (device model helpers, scripts);
 * hagentd keeps its own (QEMU, fence agents) through pidfds. */
static const libxl_childproc_hooks child_hooks = {
	.chldowner = libxl_sigchld_owner_libxl_always_selective_reap,
};

/* libxl's (and libxc's) messages, info and up, go to hagentd's log; the
 * first error is kept as the reason of the failure that follows it. */
static void xtl_vmessage(struct xentoollog_logger *logger, xentoollog_level level, int errnoval,
			 const char *context, const char *format, va_list al)
{
	char msg[400];
	int prio;

	(void)logger;
	/* libxl's debug trail is long: only when asked (HAGENT_XEN_TRACE=1) */
	if (level < XTL_INFO && !X.trace)
		return;
	vsnprintf(msg, sizeof(msg), format, al);
	prio = level >= XTL_ERROR ? LOG_ERR : level >= XTL_WARN ? LOG_WARNING : LOG_DEBUG;
	qb_log(prio, "xen: %s%s%s%s%s", context ? context : "", context ? ": " : "", msg,
	       errnoval > 0 ? ": " : "", errnoval > 0 ? strerror(errnoval) : "");
	/* the first error since the last failure was reported is its cause;
	 * what follows is libxl unwinding */
	if (level >= XTL_ERROR && !X.last_error[0])
		snprintf(X.last_error, sizeof(X.last_error), "%.150s%s%.40s", msg,
			 errnoval > 0 ? ": " : "", errnoval > 0 ? strerror(errnoval) : "");
}

static void xtl_destroy(struct xentoollog_logger *logger)
{
	(void)logger;
}

/* "(error N: libxl's latest message)" for a failure libxl just reported. */
static const char *libxl_reason(int rc, char *buf, size_t len)
{
	if (X.last_error[0])
		snprintf(buf, len, "error %d: %s", rc, X.last_error);
	else
		snprintf(buf, len, "error %d", rc);
	X.last_error[0] = '\0';
	return buf;
}

static int ctx_get(struct drv_host *host, char *why, size_t len)
{
	if (X.ctx)
		return 0;
	if (!X.guests.next)
		qb_list_init(&X.guests);
	X.trace = getenv("HAGENT_XEN_TRACE") != NULL;
	X.logger.vmessage = xtl_vmessage;
	X.logger.destroy = xtl_destroy;
	if (libxl_ctx_alloc(&X.ctx, LIBXL_VERSION, 0, &X.logger) != 0) {
		X.ctx = NULL;
		snprintf(X.why, sizeof(X.why),
			 "driver 'xen' is unavailable on host %s: no Xen hypervisor here (libxl "
			 "cannot open it)", host->node ? host->node : "?");
		goto fail;
	}
	X.loop = xen_loop_new(host->loop);
	if (!X.loop) {
		snprintf(X.why, sizeof(X.why), "out of memory");
		goto fail;
	}
	libxl_osevent_register_hooks(X.ctx, xen_loop_hooks(), X.loop);
	xen_loop_set_ctx(X.loop, X.ctx);
	libxl_childproc_setmode(X.ctx, &child_hooks, NULL);
	libxl_event_register_callbacks(X.ctx, &event_hooks, NULL);
	X.why[0] = '\0';
	return 0;
fail:
	libxl_ctx_free(X.ctx);
	X.ctx = NULL;
	xen_loop_free(X.loop);
	X.loop = NULL;
	snprintf(why, len, "%s", X.why);
	return -1;
}

static int xen_available(struct drv_host *host, char *why, size_t len)
{
	return ctx_get(host, why, len);
}

static int xen_check(const struct guest_cfg *cfg, struct guestcfg_diags *diags)
{
	return xen_config_check(cfg, diags);
}

static struct drv_guest *guest_new(struct drv_host *host, const char *name, void *owner)
{
	struct drv_guest *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->id = ++X.next_id;
	g->host = host;
	g->owner = owner;
	g->mig_fd = -1;
	snprintf(g->name, sizeof(g->name), "%s", name);
	qb_list_add_tail(&g->list, &X.guests);
	return g;
}

static int watch_death(struct drv_guest *g)
{
	return libxl_evenable_domain_death(X.ctx, g->domid, 0, &g->death) == 0 ? 0 : -1;
}

static void created(libxl_ctx *ctx, int rc, void *arg)
{
	struct drv_guest *g = by_id((uint64_t)(uintptr_t)arg);
	struct drv_exit x = { .known = true };

	(void)ctx;
	if (!g)
		return;
	g->creating = false;
	if (g->dc_ready)
		libxl_domain_config_dispose(&g->dc);
	g->dc_ready = false;
	if (g->detached && rc == 0) {
		guest_free(g); /* hagentd is going: the domain runs on */
		return;
	}
	if (rc != 0 || watch_death(g) < 0) {
		char detail[300], r[224];
		snprintf(detail, sizeof(detail), "libxl could not create the domain (%s)",
			 libxl_reason(rc, r, sizeof(r)));
		log_err("xen: %s: %s", g->name, detail);
		/* libxl destroys what it made of a failed create */
		g->dead = true;
		emit(g, DRV_EV_EXIT, detail, &x);
		return;
	}
	/* libxl leaves a new domain paused (xl create unpauses it too) */
	if (libxl_domain_unpause(X.ctx, g->domid, NULL) != 0) {
		char r[224];
		log_err("xen: %s (domain %u) cannot be unpaused (%s): destroying it", g->name,
			g->domid, libxl_reason(ERROR_FAIL, r, sizeof(r)));
		if (xen_destroy(g) < 0) {
			g->dead = true;
			emit(g, DRV_EV_EXIT, "libxl could not unpause the new domain", &x);
		}
		return;
	}
	log_info("xen: %s is domain %u", g->name, g->domid);
	emit(g, DRV_EV_RUNNING, NULL, NULL);
}

/* The domain's config as libxl's JSON, at debug level (what `xl create -n`
 * prints for a file). */
static void log_config(libxl_domain_config *dc)
{
	char *json = libxl_domain_config_to_json(X.ctx, dc);
	char *line, *save = NULL;

	for (line = json ? strtok_r(json, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save))
		log_debug("xen: %s config: %s", dc->c_info.name, line);
	free(json);
}

/* What this host lacks for the guest (an HVM guest's device model,
 * hvmloader, SeaBIOS), as the first error, before libxl makes anything. */
static int host_ready(struct drv_host *host, const struct guest_cfg *cfg, char *err,
		      size_t errlen)
{
	struct guestcfg_diags *diags = calloc(1, sizeof(*diags));
	int rc = 0;

	if (!diags) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (xen_config_check_host(cfg, NULL, diags) < 0 && diags->n > 0) {
		char line[400];
		guestcfg_diag_format(&diags->d[0], cfg->source, line, sizeof(line));
		snprintf(err, errlen, "cannot run here on %s: %s", host->node ? host->node : "?",
			 line);
		rc = -1;
	}
	free(diags);
	return rc;
}

static void incoming_name(char *out, size_t len, const char *name);

/* A handle with the guest's libxl config built (libxl reads it until its
 * create or restore completes: it lives in the handle), once no domain of
 * the guest exists here and the host has what it needs.  incoming: the
 * config is for the domain a migration restores, NAME--incoming. */
static struct drv_guest *prepare(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
				 bool incoming, char *err, size_t errlen)
{
	char iname[GUEST_NAME_MAX + sizeof(INCOMING_SUFFIX)];
	struct drv_guest *g;
	uint32_t existing;

	if (ctx_get(host, err, errlen) < 0 || host_ready(host, cfg, err, errlen) < 0)
		return NULL;
	incoming_name(iname, sizeof(iname), cfg->name);
	if (libxl_name_to_domid(X.ctx, cfg->name, &existing) == 0 ||
	    libxl_name_to_domid(X.ctx, iname, &existing) == 0) {
		snprintf(err, errlen, "a domain of %s already exists here (domain %u)", cfg->name,
			 existing);
		return NULL;
	}
	g = guest_new(host, cfg->name, owner);
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	libxl_domain_config_init(&g->dc);
	g->dc_ready = true;
	if (xen_config_build(cfg, &g->dc, err, errlen) < 0)
		goto fail;
	if (incoming) {
		free(g->dc.c_info.name);
		g->dc.c_info.name = strdup(iname);
		if (!g->dc.c_info.name) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		g->incoming = true;
	}
	log_config(&g->dc);
	return g;
fail:
	guest_free(g);
	return NULL;
}

static int xen_start(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
		     struct drv_guest **out, char *err, size_t errlen)
{
	libxl_asyncop_how how = { .callback = created };
	struct drv_guest *g = prepare(host, cfg, owner, false, err, errlen);
	int rc;

	if (!g)
		return -1;
	g->creating = true;
	how.u.for_callback = (void *)(uintptr_t)g->id;
	rc = libxl_domain_create_new(X.ctx, &g->dc, &g->domid, &how, NULL);
	if (rc != 0) {
		char r[224];
		snprintf(err, errlen, "libxl refused to create %s (%s)", cfg->name,
			 libxl_reason(rc, r, sizeof(r)));
		guest_free(g);
		return -1;
	}
	*out = g;
	return 0;
}

/* After an hagentd restart: the domain of that name, and its state now. */
static int xen_attach(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
		      struct drv_guest **out)
{
	libxl_dominfo info;
	struct drv_guest *g;
	uint32_t domid;
	char why[256];

	if (ctx_get(host, why, sizeof(why)) < 0 ||
	    libxl_name_to_domid(X.ctx, cfg->name, &domid) != 0) {
		errno = ESRCH;
		return -1;
	}
	g = guest_new(host, cfg->name, owner);
	if (!g)
		return -1;
	g->domid = domid;
	if (watch_death(g) < 0) {
		guest_free(g);
		errno = ESRCH;
		return -1;
	}
	*out = g;
	libxl_dominfo_init(&info);
	if (libxl_domain_info(X.ctx, &info, domid) == 0) {
		if (info.shutdown && info.shutdown_reason == LIBXL_SHUTDOWN_REASON_SUSPEND)
			/* suspended by a migration that completed before hagentd
			 * went away: only the cluster knows if it committed */
			post(g, DRV_EV_PAUSED, "status postmigrate");
		else if (!info.shutdown)
			post(g, info.paused ? DRV_EV_PAUSED : DRV_EV_RUNNING, "re-attached");
		/* else shut down: the death watch reports its shutdown at once */
	}
	libxl_dominfo_dispose(&info);
	return 0;
}

static void destroyed(libxl_ctx *ctx, int rc, void *arg)
{
	struct drv_guest *g = arg;

	(void)ctx;
	if (rc != 0)
		log_err("xen: destroying %s (domain %u) failed: error %d", g->name, g->domid, rc);
}

static int xen_destroy(struct drv_guest *g)
{
	libxl_asyncop_how how = { .callback = destroyed, .u.for_callback = g };

	if (g->creating && g->incoming) {
		/* a restore under way: abort it; restored() reports the EXIT */
		int rc = libxl_ao_abort(X.ctx, &g->mig_how);
		g->destroy_requested = true;
		return rc == 0 ? 0 : (errno = EIO, -1);
	}
	if (!g->domid || g->dead || g->creating) {
		errno = g->creating ? EBUSY : ESRCH;
		return -1;
	}
	g->destroy_requested = true;
	return libxl_domain_destroy(X.ctx, g->domid, &how) == 0 ? 0 : (errno = EIO, -1);
}

/* The guest's PV shutdown; without PV drivers, the ACPI power button. */
static int xen_shutdown(struct drv_guest *g)
{
	int rc = libxl_domain_shutdown(X.ctx, g->domid, NULL);

	if (rc == ERROR_NOPARAVIRT)
		rc = libxl_send_trigger(X.ctx, g->domid, LIBXL_TRIGGER_POWER, 0, NULL);
	return rc == 0 ? 0 : (errno = EIO, -1);
}

static int xen_reset(struct drv_guest *g)
{
	return libxl_send_trigger(X.ctx, g->domid, LIBXL_TRIGGER_RESET, 0, NULL) == 0 ? 0
										 : (errno = EIO, -1);
}

/* 1 when the domain is shut down with reason suspend (a migration's send
 * suspended it here), 0 when it is not, -1 when there is no such domain. */
static int suspend_state(struct drv_guest *g)
{
	libxl_dominfo info;
	int st = -1;

	libxl_dominfo_init(&info);
	if (g->domid && libxl_domain_info(X.ctx, &info, g->domid) == 0)
		st = info.shutdown && info.shutdown_reason == LIBXL_SHUTDOWN_REASON_SUSPEND;
	libxl_dominfo_dispose(&info);
	return st;
}

static bool is_suspended(struct drv_guest *g)
{
	return suspend_state(g) == 1;
}

static void resumed(libxl_ctx *ctx, int rc, void *arg)
{
	struct drv_guest *g = by_id((uint64_t)(uintptr_t)arg);

	(void)ctx;
	if (!g)
		return;
	g->resuming = false;
	if (rc != 0) {
		log_err("xen: %s (domain %u): libxl could not resume it (error %d)", g->name,
			g->domid, rc);
		return;
	}
	/* a new shutdown of this domain must be reported again */
	if (g->death)
		libxl_evdisable_domain_death(X.ctx, g->death);
	g->death = NULL;
	if (watch_death(g) < 0)
		log_err("xen: %s (domain %u): cannot watch it again", g->name, g->domid);
	log_info("xen: %s (domain %u) resumed", g->name, g->domid);
	post(g, DRV_EV_RESUMED, "resumed");
}

/* Continue the guest: unpause it, or resume a domain a migration suspended
 * (libxl_domain_resume, co-operative as xl does after a failed migration). */
static int xen_resume(struct drv_guest *g)
{
	libxl_asyncop_how how = { .callback = resumed };
	int st = suspend_state(g);

	if (st < 0) {
		errno = ESRCH;
		return -1;
	}
	if (g->resuming)
		return 0; /* resumed() follows */
	if (st == 1) {
		how.u.for_callback = (void *)(uintptr_t)g->id;
		g->sent = false;
		g->resuming = true;
		if (libxl_domain_resume(X.ctx, g->domid, 1, &how) == 0)
			return 0;
		g->resuming = false;
		errno = EIO;
		return -1;
	}
	if (libxl_domain_unpause(X.ctx, g->domid, NULL) != 0) {
		errno = EIO;
		return -1;
	}
	post(g, DRV_EV_RESUMED, "unpaused");
	return 0;
}

static int xen_mem_set(struct drv_guest *g, long mib)
{
	return libxl_set_memory_target(X.ctx, g->domid, (int64_t)mib * 1024, 0, 1) == 0
		       ? 0
		       : (errno = EIO, -1);
}

static int xen_mem_max(struct drv_guest *g, long mib)
{
	return libxl_domain_setmaxmem(X.ctx, g->domid, (uint64_t)mib * 1024) == 0
		       ? 0
		       : (errno = EIO, -1);
}

static void dump_done(void *arg)
{
	struct drv_guest *g = by_id((uint64_t)(uintptr_t)arg);

	if (!g) /* released meanwhile */
		return;
	emit(g, DRV_EV_DUMP_DONE, g->dump_rc == 0 ? "ok" : "failed: libxl could not dump it",
	     NULL);
}

/* libxl dumps synchronously; the supervisor hears of it from the loop, as
 * it does from QEMU's asynchronous dump. */
static int xen_coredump(struct drv_guest *g, const char *path)
{
	g->dump_rc = libxl_domain_core_dump(X.ctx, g->domid, path, NULL);
	if (qb_loop_job_add(g->host->loop, QB_LOOP_HIGH, (void *)(uintptr_t)g->id, dump_done) < 0)
		return -1;
	return 0;
}


/* --- live migration ---------------------------------------------------------- */

static void incoming_name(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s%s", name, INCOMING_SUFFIX);
}

/* Destination: the guest's config, kept until the stream arrives; no domain
 * exists yet (libxl makes it from the stream).  PAUSED says it is ready. */
static int xen_start_incoming(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
			      struct drv_guest **out, char *err, size_t errlen)
{
	struct drv_guest *g = prepare(host, cfg, owner, true, err, errlen);

	if (!g)
		return -1;
	*out = g;
	post(g, DRV_EV_PAUSED, "waiting for the migration stream");
	return 0;
}

static void restored(libxl_ctx *ctx, int rc, void *arg)
{
	struct drv_guest *g = by_id((uint64_t)(uintptr_t)arg);
	char detail[300], r[224];

	(void)ctx;
	if (!g)
		return;
	g->creating = false;
	stream_close(g);
	if (g->detached) {
		guest_free(g); /* hagentd is going: an incoming copy stays for the next */
		return;
	}
	if (rc != 0 || watch_death(g) < 0) {
		struct drv_exit x = { .known = true, .requested = g->destroy_requested };
		snprintf(detail, sizeof(detail), "failed: libxl could not restore the domain "
			 "(%s)", libxl_reason(rc, r, sizeof(r)));
		log_err("xen: %s: %s", g->name, detail);
		g->domid = 0; /* libxl destroyed what it had made */
		if (g->destroy_requested) {
			g->dead = true;
			emit(g, DRV_EV_EXIT, "restore aborted", &x);
		} else {
			emit(g, DRV_EV_MIGRATION, detail, NULL);
		}
		return;
	}
	if (g->destroy_requested) {
		/* aborted too late: the domain is whole, destroy it now */
		g->destroy_requested = false;
		if (xen_destroy(g) == 0)
			return;
	}
	log_info("xen: %s restored as domain %u (paused)", g->name, g->domid);
	emit(g, DRV_EV_MIGRATION, "completed", NULL);
}

/* Destination: restore the domain from the stream, paused. */
static int xen_migrate_recv(struct drv_guest *g, int fd, const struct drv_migrate_params *p)
{
	libxl_domain_restore_params params;
	int rc;

	(void)p;
	if (!g->dc_ready || g->creating || g->domid) {
		errno = EBUSY;
		return -1;
	}
	if (stream_take(g, fd, restored) < 0)
		return -1;
	libxl_domain_restore_params_init(&params);
	params.checkpointed_stream = LIBXL_CHECKPOINTED_STREAM_NONE;
	params.stream_version = 2; /* what libxl_domain_suspend writes */
	g->creating = true;
	rc = libxl_domain_create_restore(X.ctx, &g->dc, &g->domid, g->mig_fd, -1, &params,
					 &g->mig_how, NULL);
	libxl_domain_restore_params_dispose(&params);
	if (rc != 0) {
		g->creating = false;
		stream_close(g);
		log_err("xen: %s: libxl refused the restore (error %d)", g->name, rc);
		errno = EIO;
		return -1;
	}
	return 0;
}

static void suspended(libxl_ctx *ctx, int rc, void *arg)
{
	struct drv_guest *g = by_id((uint64_t)(uintptr_t)arg);

	(void)ctx;
	if (!g)
		return;
	g->sending = false;
	g->mig_end_ms = mono_ms();
	stream_close(g);
	if (rc != 0) {
		char r[224];
		snprintf(g->mig_error, sizeof(g->mig_error), "libxl could not send the domain (%s)",
			 rc == ERROR_ABORTED ? "aborted" : libxl_reason(rc, r, sizeof(r)));
		log_err("xen: %s (domain %u): %s", g->name, g->domid, g->mig_error);
		/* the guest stays here: never leave it suspended by a send that
		 * failed (or was aborted), whoever asked */
		if (is_suspended(g) && xen_resume(g) < 0)
			log_err("xen: %s (domain %u): cannot resume it after the failed send",
				g->name, g->domid);
		if (!g->detached) {
			char detail[280];
			snprintf(detail, sizeof(detail), "failed: %s", g->mig_error);
			emit(g, DRV_EV_MIGRATION, detail, NULL);
		}
		return;
	}
	g->sent = true;
	log_info("xen: %s (domain %u) sent in %lld ms; suspended here", g->name, g->domid,
		 (long long)(g->mig_end_ms - g->mig_start_ms));
	emit(g, DRV_EV_MIGRATION, "completed", NULL);
}

/* Source: stream the live domain into fd; it ends suspended here. */
static int xen_migrate_send(struct drv_guest *g, int fd, const struct drv_migrate_params *p)
{
	int rc;

	(void)p; /* libxl has no downtime or bandwidth limit to set */
	if (!g->domid || g->dead || g->sending || g->sent) {
		errno = EBUSY;
		return -1;
	}
	if (stream_take(g, fd, suspended) < 0)
		return -1;
	g->mig_error[0] = '\0';
	g->mig_start_ms = mono_ms();
	g->suspended_ms = g->mig_end_ms = 0;
	g->sending = true;
	rc = libxl_domain_suspend(X.ctx, g->domid, g->mig_fd, LIBXL_SUSPEND_LIVE, &g->mig_how);
	if (rc != 0) {
		g->sending = false;
		stream_close(g);
		log_err("xen: %s: libxl refused to send it (error %d)", g->name, rc);
		errno = EIO;
		return -1;
	}
	return 0;
}

/* libxl reports no progress: the figures are the times this side saw. */
static int xen_migrate_query(struct drv_guest *g, drv_migrate_query_fn cb, void *arg)
{
	struct drv_migrate_stats st;
	int64_t now = mono_ms();

	memset(&st, 0, sizeof(st));
	if (g->sending) {
		snprintf(st.status, sizeof(st.status), "active");
		st.total_time_ms = now - g->mig_start_ms;
	} else if (g->sent) {
		snprintf(st.status, sizeof(st.status), "completed");
		st.total_time_ms = g->mig_end_ms - g->mig_start_ms;
		/* from the suspend to the stream's end: the source's share of the
		 * downtime (the destination's unpause follows the commit) */
		if (g->suspended_ms)
			st.downtime_ms = g->mig_end_ms - g->suspended_ms;
	} else if (g->mig_error[0]) {
		snprintf(st.status, sizeof(st.status), "failed");
		snprintf(st.error, sizeof(st.error), "%.150s", g->mig_error);
	} else {
		snprintf(st.status, sizeof(st.status), "none");
	}
	cb(arg, &st);
	return 0;
}

/* Abort: stop a suspend under way, or resume a domain it suspended. */
static int xen_migrate_cancel(struct drv_guest *g)
{
	if (g->sending) {
		/* suspended() follows with ERROR_ABORTED; the supervisor resumes
		 * the domain if it ended suspended */
		int rc = libxl_ao_abort(X.ctx, &g->mig_how);
		return rc == 0 || rc == ERROR_NOTFOUND ? 0 : (errno = EIO, -1);
	}
	if (g->sent || is_suspended(g))
		return xen_resume(g);
	return 0;
}

/* The incoming copy an earlier hagentd left (NAME--incoming). */
static bool xen_incoming_alive(struct drv_host *host, const char *name)
{
	char iname[GUEST_NAME_MAX + sizeof(INCOMING_SUFFIX)], why[256];
	uint32_t domid;

	if (ctx_get(host, why, sizeof(why)) < 0)
		return false;
	incoming_name(iname, sizeof(iname), name);
	return libxl_name_to_domid(X.ctx, iname, &domid) == 0;
}

static void xen_discard_incoming(struct drv_host *host, const char *name)
{
	char iname[GUEST_NAME_MAX + sizeof(INCOMING_SUFFIX)], why[256];
	uint32_t domid;

	if (ctx_get(host, why, sizeof(why)) < 0)
		return;
	incoming_name(iname, sizeof(iname), name);
	if (libxl_name_to_domid(X.ctx, iname, &domid) != 0)
		return;
	log_notice("xen: destroying %s (domain %u): an incoming copy that never ran", iname,
		   domid);
	if (libxl_domain_destroy(X.ctx, domid, NULL) != 0)
		log_err("xen: cannot destroy %s (domain %u)", iname, domid);
}

static int xen_attach_incoming(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
			       struct drv_guest **out)
{
	char iname[GUEST_NAME_MAX + sizeof(INCOMING_SUFFIX)], why[256];
	struct drv_guest *g;
	uint32_t domid;

	incoming_name(iname, sizeof(iname), cfg->name);
	if (ctx_get(host, why, sizeof(why)) < 0 || libxl_name_to_domid(X.ctx, iname, &domid) != 0) {
		errno = ESRCH;
		return -1;
	}
	g = guest_new(host, cfg->name, owner);
	if (!g)
		return -1;
	g->domid = domid;
	g->incoming = true;
	if (watch_death(g) < 0) {
		guest_free(g);
		errno = ESRCH;
		return -1;
	}
	*out = g;
	post(g, DRV_EV_PAUSED, "incoming copy, restored");
	return 0;
}

/* rename-restart: the crashed domain keeps running (paused) as "to". */
static void xen_rename(struct drv_host *host, const char *from, const char *to)
{
	char why[256];
	uint32_t domid;

	if (ctx_get(host, why, sizeof(why)) < 0 || libxl_name_to_domid(X.ctx, from, &domid) != 0)
		return;
	if (libxl_domain_rename(X.ctx, domid, from, to) != 0)
		log_err("xen: cannot rename domain %u from %s to %s", domid, from, to);
}

static pid_t xen_pid(struct drv_guest *g)
{
	(void)g;
	return 0; /* a domain, not a host process */
}

/* The guest's primary console: xenconsoled's pty of its PV console (PV,
 * PVH) or the device model's serial pty (HVM), as `xl console` opens it. */
static const char *xen_console_path(struct drv_guest *g)
{
	char *path = NULL;

	if (!g->domid || g->dead || g->incoming)
		return NULL;
	if (libxl_primary_console_get_tty(X.ctx, g->domid, &path) != 0 || !path) {
		free(path);
		return NULL;
	}
	snprintf(g->console, sizeof(g->console), "%s", path);
	free(path);
	return g->console;
}

/* The owner changes when a migrated copy becomes the guest: from here on
 * the domain is NAME. */
static void xen_rebind(struct drv_guest *g, struct drv_host *host, void *owner)
{
	char iname[GUEST_NAME_MAX + sizeof(INCOMING_SUFFIX)];

	g->host = host;
	g->owner = owner;
	if (!g->incoming || !g->domid)
		return;
	incoming_name(iname, sizeof(iname), g->name);
	if (libxl_domain_rename(X.ctx, g->domid, iname, g->name) != 0)
		log_err("xen: cannot rename domain %u from %s to %s", g->domid, iname, g->name);
	else
		g->incoming = false;
}

static void xen_detach(struct drv_guest *g)
{
	if (g->creating) {
		g->detached = true; /* freed when libxl calls back */
		return;
	}
	guest_free(g);
}

static void xen_release(struct drv_guest *g)
{
	guest_free(g);
}

const struct driver_ops xen_driver_ops = {
	.name = "xen",
	.available = xen_available,
	.check = xen_check,
	.start = xen_start,
	.start_incoming = xen_start_incoming,
	.migrate_recv = xen_migrate_recv,
	.migrate_send = xen_migrate_send,
	.migrate_query = xen_migrate_query,
	.migrate_cancel = xen_migrate_cancel,
	.discard_incoming = xen_discard_incoming,
	.incoming_alive = xen_incoming_alive,
	.attach_incoming = xen_attach_incoming,
	.rename_files = xen_rename,
	.attach = xen_attach,
	.shutdown = xen_shutdown,
	.destroy = xen_destroy,
	.reset = xen_reset,
	.resume = xen_resume,
	.mem_set = xen_mem_set,
	.mem_max = xen_mem_max,
	.coredump = xen_coredump,
	.pid = xen_pid,
	.console_path = xen_console_path,
	.rebind = xen_rebind,
	.detach = xen_detach,
	.release = xen_release,
};

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
 * Status: written against libxl 4.17 and built, but not yet registered in
 * driver.c nor run against a hypervisor; the nested-Xen VM lab
 * (tests/vmlab) is where it will be proven.  Migration ops are not here yet. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qb/qblist.h>

#include <libxl.h>
#include <libxl_utils.h>
#include <xentoollog.h>

#include "drivers/driver.h"
#include "drivers/xen_config.h"
#include "drivers/xen_loop.h"
#include "lib/log.h"

struct drv_guest {
	struct qb_list_head list;
	struct drv_host *host;
	void *owner;
	char name[GUEST_NAME_MAX];
	uint32_t domid;            /* 0 = none yet (dom0 is never a guest) */
	libxl_evgen_domain_death *death;
	bool creating;             /* libxl_domain_create_new under way */
	bool destroy_requested;
	bool dead;                 /* DEATH seen (EXIT sent) */
	bool detached;             /* handle forgotten while an op is in flight */
	int dump_rc;
};

static struct {
	libxl_ctx *ctx;
	struct xen_loop *loop;
	xentoollog_logger_stdiostream *logger;
	struct qb_list_head guests;
	char why[256];             /* why there is no ctx ("" = not tried) */
} X;

static void emit(struct drv_guest *g, enum drv_event ev, const char *detail,
		 const struct drv_exit *x)
{
	if (!g->detached)
		g->host->event(g->owner, ev, detail, x);
}

static struct drv_guest *by_domid(uint32_t domid)
{
	struct drv_guest *g;

	qb_list_for_each_entry(g, &X.guests, list)
		if (g->domid == domid && domid)
			return g;
	return NULL;
}

static void guest_free(struct drv_guest *g)
{
	if (g->death && X.ctx)
		libxl_evdisable_domain_death(X.ctx, g->death);
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
		emit(g, reason < sizeof(by_reason) / sizeof(by_reason[0]) ? by_reason[reason]
									   : DRV_EV_CRASH,
		     libxl_shutdown_reason_to_string(reason), NULL);
		break;
	case LIBXL_EVENT_TYPE_DOMAIN_DEATH: {
		struct drv_exit x = { .known = true, .requested = g->destroy_requested };
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

static int ctx_get(struct drv_host *host, char *why, size_t len)
{
	if (X.ctx)
		return 0;
	if (!X.guests.next)
		qb_list_init(&X.guests);
	X.logger = xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
	if (libxl_ctx_alloc(&X.ctx, LIBXL_VERSION, 0, (xentoollog_logger *)X.logger) != 0) {
		X.ctx = NULL;
		snprintf(X.why, sizeof(X.why), "no Xen hypervisor here (libxl cannot open it)");
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
	if (X.logger)
		xtl_logger_destroy((xentoollog_logger *)X.logger);
	X.logger = NULL;
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
	g->host = host;
	g->owner = owner;
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
	struct drv_guest *g = arg;
	struct drv_exit x = { .known = true };

	(void)ctx;
	g->creating = false;
	if (g->detached && rc == 0) {
		guest_free(g); /* hagentd is going: the domain runs on */
		return;
	}
	if (rc != 0 || watch_death(g) < 0) {
		char detail[128];
		snprintf(detail, sizeof(detail), "libxl could not create the domain (error %d)", rc);
		log_err("xen: %s: %s", g->name, detail);
		/* libxl destroys what it made of a failed create */
		g->dead = true;
		emit(g, DRV_EV_EXIT, detail, &x);
		return;
	}
	log_info("xen: %s is domain %u", g->name, g->domid);
	emit(g, DRV_EV_RUNNING, NULL, NULL);
}

static int xen_start(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
		     struct drv_guest **out, char *err, size_t errlen)
{
	libxl_domain_config dc;
	libxl_asyncop_how how = { .callback = created };
	struct drv_guest *g;
	uint32_t existing;
	int rc;

	if (ctx_get(host, err, errlen) < 0)
		return -1;
	if (libxl_name_to_domid(X.ctx, cfg->name, &existing) == 0) {
		snprintf(err, errlen, "a domain named %s already exists (domain %u)", cfg->name,
			 existing);
		return -1;
	}
	libxl_domain_config_init(&dc);
	if (xen_config_build(cfg, &dc, err, errlen) < 0) {
		libxl_domain_config_dispose(&dc);
		return -1;
	}
	g = guest_new(host, cfg->name, owner);
	if (!g) {
		libxl_domain_config_dispose(&dc);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	g->creating = true;
	how.u.for_callback = g;
	rc = libxl_domain_create_new(X.ctx, &dc, &g->domid, &how, NULL);
	libxl_domain_config_dispose(&dc);
	if (rc != 0) {
		snprintf(err, errlen, "libxl refused to create %s (error %d)", cfg->name, rc);
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
	if (libxl_domain_info(X.ctx, &info, domid) == 0 && !info.shutdown)
		emit(g, info.paused ? DRV_EV_PAUSED : DRV_EV_RUNNING, "re-attached", NULL);
	/* a shut down domain: the death watch reports its shutdown at once */
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

	if (!g->domid || g->dead) {
		errno = ESRCH;
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

static int xen_resume(struct drv_guest *g)
{
	return libxl_domain_unpause(X.ctx, g->domid, NULL) == 0 ? 0 : (errno = EIO, -1);
}

static int xen_mem_set(struct drv_guest *g, long mib)
{
	return libxl_set_memory_target(X.ctx, g->domid, (int64_t)mib * 1024, 0, 1) == 0
		       ? 0
		       : (errno = EIO, -1);
}

static bool still_here(const struct drv_guest *g)
{
	struct drv_guest *h;

	qb_list_for_each_entry(h, &X.guests, list)
		if (h == g)
			return true;
	return false;
}

static void dump_done(void *arg)
{
	struct drv_guest *g = arg;

	if (!still_here(g)) /* released meanwhile */
		return;
	emit(g, DRV_EV_DUMP_DONE, g->dump_rc == 0 ? "ok" : "failed: libxl could not dump it",
	     NULL);
}

/* libxl dumps synchronously; the supervisor hears of it from the loop, as
 * it does from QEMU's asynchronous dump. */
static int xen_coredump(struct drv_guest *g, const char *path)
{
	g->dump_rc = libxl_domain_core_dump(X.ctx, g->domid, path, NULL);
	if (qb_loop_job_add(g->host->loop, QB_LOOP_HIGH, g, dump_done) < 0)
		return -1;
	return 0;
}

static pid_t xen_pid(struct drv_guest *g)
{
	(void)g;
	return 0; /* a domain, not a host process */
}

static const char *xen_console_path(struct drv_guest *g)
{
	(void)g;
	return NULL; /* xenconsoled's pty: `xl console` for now */
}

static void xen_rebind(struct drv_guest *g, struct drv_host *host, void *owner)
{
	g->host = host;
	g->owner = owner;
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
	.attach = xen_attach,
	.shutdown = xen_shutdown,
	.destroy = xen_destroy,
	.reset = xen_reset,
	.resume = xen_resume,
	.mem_set = xen_mem_set,
	.coredump = xen_coredump,
	.pid = xen_pid,
	.console_path = xen_console_path,
	.rebind = xen_rebind,
	.detach = xen_detach,
	.release = xen_release,
};

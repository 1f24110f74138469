/* Guest drivers behind one ops table.  A driver runs guests for hagentd's
 * supervisor: it starts and stops them, and reports what happens to them as
 * driver events, delivered from hagentd's single qb_loop (never by polling).
 * QEMU (drivers/qemu.c) and Xen (drivers/xen.c, through libxl) fill it. */
#ifndef HAGENT_DRIVER_H
#define HAGENT_DRIVER_H

#include <stdbool.h>
#include <sys/types.h>
#include <qb/qbloop.h>

#include "lib/guestcfg.h"

/* What a driver reports about a guest.  The supervisor's table maps each to
 * an on_* policy or a state. */
enum drv_event {
	DRV_EV_RUNNING = 0, /* guest is up and its control channel answers */
	DRV_EV_POWEROFF,    /* guest powered itself off (QEMU stays, paused) */
	DRV_EV_REBOOT,      /* guest asked for a reboot (QEMU stays, paused) */
	DRV_EV_CRASH,       /* guest panicked (pvpanic) (QEMU stays, paused) */
	DRV_EV_WATCHDOG,    /* guest watchdog fired (QEMU stays, paused) */
	DRV_EV_IO_ERROR,    /* a disk I/O error paused the guest */
	DRV_EV_PAUSED,      /* paused for another reason (STOP) */
	DRV_EV_RESUMED,     /* running again after a pause */
	DRV_EV_EXIT,        /* the guest process is gone; see drv_exit */
	DRV_EV_DUMP_DONE,   /* coredump finished (ok or not: see detail) */
	DRV_EV_MIGRATION,   /* migration status changed; detail = QEMU's status
			     * (active, completed, failed: why, cancelled, ...) */
	DRV_EV__COUNT
};

/* How a guest process ended (DRV_EV_EXIT). */
struct drv_exit {
	bool known;       /* false when hagentd is not its parent (re-attached) */
	bool signaled;
	int code;         /* exit status, or signal number when signaled */
	bool requested;   /* hagentd asked for it (destroy/quit) */
};

struct drv_guest; /* a driver's handle on one running guest */

typedef void (*drv_event_fn)(void *owner, enum drv_event ev, const char *detail,
			     const struct drv_exit *exit_info);

/* What the host gives every driver: the loop, paths, settings. */
struct drv_host {
	qb_loop_t *loop;
	const char *run_dir;      /* sockets, pid files, console logs live here */
	const char *node;         /* this host's node_name, for messages */
	const char *qemu_binary;  /* hagent.conf qemu = ... */
	const char *accel;        /* "auto" | "kvm" | "tcg" */
	const char *dump_dir;     /* coredump-* writes NAME-TIME.core here */
	drv_event_fn event;       /* called for every event of every guest */
	bool qmp_observer;        /* hagent.conf qmp_observer: a second QMP monitor */
};

/* Live migration (migrate/job.c drives it). */
struct drv_migrate_params {
	unsigned downtime_ms;      /* max downtime; 0 = QEMU's default */
	unsigned bandwidth_mib;    /* MiB/s; 0 = unlimited */
	bool auto_converge;        /* throttle a guest that dirties faster than the link */
	const char *tls_dir;       /* QEMU TLS-PSK: dir with keys.psk; NULL = none */
	const char *tls_hostname;  /* source: the destination's name */
};

struct drv_migrate_stats {
	char status[32];           /* QEMU's: setup, active, completed, failed, ... */
	char error[160];           /* when failed */
	uint64_t total_bytes, transferred_bytes, remaining_bytes;
	uint64_t rate_bps;         /* bytes/s */
	uint64_t dirty_rate;       /* pages/s */
	int64_t expected_downtime_ms, downtime_ms, total_time_ms;
};

typedef void (*drv_migrate_query_fn)(void *arg, const struct drv_migrate_stats *st);
/* A probe's answer: the run state the monitor gave ("running", "paused", ...),
 * or NULL when the handle went away unanswered (err says why). */
typedef void (*drv_probe_fn)(void *arg, const char *status, const char *err);

struct driver_ops {
	const char *name; /* "qemu", "xen" */
	/* 0 when the driver can run guests here; else -1 and a reason in why. */
	int (*available)(struct drv_host *host, char *why, size_t len);
	/* Driver-specific validation of a parsed guest (e.g. soft-reset refused
	 * by qemu).  Appends to diags, returns -1 on any error. */
	int (*check)(const struct guest_cfg *cfg, struct guestcfg_diags *diags);
	/* Start a guest.  On 0, *out is a live handle; DRV_EV_RUNNING (or
	 * DRV_EV_EXIT on early failure) follows through host->event(owner, ...).
	 * On -1 nothing is left behind and err holds a one-line reason. */
	int (*start)(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
		     struct drv_guest **out, char *err, size_t errlen);
	/* Start a guest as the destination of a live migration: paused, waiting
	 * for migrate_recv.  DRV_EV_PAUSED follows when it is ready. */
	int (*start_incoming)(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
			      struct drv_guest **out, char *err, size_t errlen);
	/* Hand a connected socket to the incoming guest (the caller keeps fd). */
	int (*migrate_recv)(struct drv_guest *g, int fd, const struct drv_migrate_params *p);
	/* Send the guest over fd (the caller keeps fd); DRV_EV_MIGRATION events
	 * follow, "completed" when the guest is paused here and whole there. */
	int (*migrate_send)(struct drv_guest *g, int fd, const struct drv_migrate_params *p);
	/* QEMU's figures; cb runs exactly once, with st NULL when the handle
	 * is freed before QEMU answered (so that arg can be freed). */
	int (*migrate_query)(struct drv_guest *g, drv_migrate_query_fn cb, void *arg);
	/* Ask the guest's monitor for its run state (is it responsive?); cb is
	 * called exactly once unless this returns -1. */
	int (*probe)(struct drv_guest *g, drv_probe_fn cb, void *arg);
	/* Stop an outgoing migration and keep (or make) the guest running here. */
	int (*migrate_cancel)(struct drv_guest *g);
	/* An incoming copy left by an earlier hagentd (it went away during a
	 * migration) that is not the guest (no cluster, or the table after the
	 * sync does not make this host the owner): it never ran; kill it. */
	void (*discard_incoming)(struct drv_host *host, const char *name);
	/* Is such a copy alive?  It may be the guest itself: a commit applied
	 * just before hagentd died made it so, and only the cluster's table
	 * tells (then attach_incoming, rebind and resume take it over). */
	bool (*incoming_alive)(struct drv_host *host, const char *name);
	int (*attach_incoming)(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
			       struct drv_guest **out);
	/* Move a guest's files on this host to another name (rename-restart
	 * keeps a crashed instance as NAME-N). */
	void (*rename_files)(struct drv_host *host, const char *from, const char *to);
	/* Deliver the handle's events to another owner from now on. */
	void (*rebind)(struct drv_guest *g, struct drv_host *host, void *owner);
	/* Re-attach to a guest that survived an hagentd restart.  Returns 0 and a
	 * handle when its process is alive (then an event reports its current
	 * state: RUNNING, or POWEROFF/CRASH/WATCHDOG/IO_ERROR/PAUSED if it stopped
	 * while nobody watched), -1 with errno ESRCH when nothing runs. */
	int (*attach)(struct drv_host *host, const struct guest_cfg *cfg, void *owner,
		      struct drv_guest **out);
	int (*shutdown)(struct drv_guest *g);          /* ACPI power button */
	int (*destroy)(struct drv_guest *g);           /* kill now; EXIT follows */
	int (*reset)(struct drv_guest *g);             /* hard reset, keep process */
	int (*resume)(struct drv_guest *g);            /* continue a paused guest */
	int (*mem_set)(struct drv_guest *g, long mib); /* balloon target */
	/* Optional: the running guest's maximum (Xen sets it live; QEMU's is
	 * fixed at its start). */
	int (*mem_max)(struct drv_guest *g, long mib);
	/* Dump guest memory to path; DRV_EV_DUMP_DONE follows. */
	int (*coredump)(struct drv_guest *g, const char *path);
	pid_t (*pid)(struct drv_guest *g);
	/* Serial console endpoint (a unix socket path). */
	const char *(*console_path)(struct drv_guest *g);
	/* Forget the handle without touching the guest (hagentd exits). */
	void (*detach)(struct drv_guest *g);
	/* Free the handle after DRV_EV_EXIT. */
	void (*release)(struct drv_guest *g);
};

extern const struct driver_ops qemu_driver_ops;
extern const struct driver_ops xen_driver_ops;

/* "xen" on a host that runs Xen (this is its control domain), else "qemu":
 * the driver of a guest file without ha_driver. */
const char *driver_host_default(void);

/* The driver named by cfg->driver, or NULL. */
const struct driver_ops *driver_lookup(const char *name);
const char *drv_event_name(enum drv_event ev);

#endif

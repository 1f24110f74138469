/* The QEMU driver's private parts, shared by qemu.c (processes, QMP
 * events) and qemu_migrate.c (live migration). */
#ifndef HAGENT_QEMU_PRIV_H
#define HAGENT_QEMU_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>
#include <jansson.h>

#include "drivers/driver.h"
#include "drivers/qmp.h"
#include "lib/guestcfg.h"

struct qemu_mig_chain;

struct drv_guest {
	struct drv_host *host;
	void *owner;
	char name[GUEST_NAME_MAX];
	char qmp_path[PATH_MAX];
	char serial_path[PATH_MAX];
	char pid_path[PATH_MAX];
	char log_path[PATH_MAX];
	long memory_mib;
	long maxmem_mib;
	pid_t pid;
	int pidfd;
	bool pidfd_polled;
	off_t log_off;       /* NAME.qemu.log size when this run began */
	bool attached;       /* not started by this handle */
	struct qmp *qmp;
	bool ready;          /* query-status answered once */
	bool requested;      /* destroy asked */
	bool quitting;       /* QEMU announced its exit (SHUTDOWN host-*) */
	bool exited;         /* EXIT reported */
	bool halted;         /* a stop cause was reported; cleared by RESUME */
	bool dumping;        /* dump-guest-memory in flight (its STOP/RESUME) */
	bool stopped;        /* STOP seen, no RESUME since */
	int64_t last_reset_us; /* QEMU time of the last reset (or of the run after it) */
	bool reset_while_stopped;
	bool reboot_shutdown; /* started with -action reboot=shutdown */
	bool reboot_action_reset; /* reboot action switched to reset (our reset) */
	qb_loop_timer_handle settle_timer;
	bool settle_timer_on;
	char why_killed[128]; /* the driver killed it on its own: why */
	qb_loop_timer_handle kill_timer;
	bool kill_timer_on;
	qb_loop_timer_handle hs_timer;
	bool hs_timer_on;
	/* Owner callbacks may release the handle: busy counts our frames on
	 * the stack, and freeing waits for the outermost. */
	int busy;
	bool gone; /* detached or released: no more events, free when idle */
	/* migration (qemu_migrate.c) */
	bool incoming;       /* started with -incoming defer, paused */
	bool tls_client;     /* the tls-creds-psk objects exist in this QEMU */
	bool tls_server;
	struct qemu_mig_chain *chain; /* commands of a migration being set up */
};

/* The QEMU of guest name whose pid file is pid_path, alive: 0 and its pid
 * (and a pidfd when asked); -1 ESRCH (a stale pid file is removed). */
int qemu_find_running(const char *pid_path, const char *name, pid_t *pid_out, int *pidfd_out);
void qemu_discard_incoming(struct drv_host *host, const char *name);
bool qemu_incoming_alive(struct drv_host *host, const char *name);
/* Every file of a guest's QEMU in run_dir: renamed from one name to another
 * (a missing one skipped, other failures logged), or removed (but its log). */
void qemu_files_rename(struct drv_host *host, const char *from, const char *to);
/* NAME.in: the name an incoming copy's files carry (QEMU_INCOMING_TAG). */
#define QEMU_INCOMING_NAME_MAX (GUEST_NAME_MAX + 8)
void qemu_incoming_name(char *buf, size_t len, const char *name);
void qemu_files_unlink(struct drv_host *host, const char *name);
void qemu_guest_hold(struct drv_guest *g);
/* The last line(s) QEMU wrote to its stderr log during this run, printable,
 * joined with " | " ("" when none). */
void qemu_log_tail(struct drv_guest *g, char *out, size_t len);
void qemu_guest_unhold(struct drv_guest *g);
void qemu_emit(struct drv_guest *g, enum drv_event ev, const char *detail,
	       const struct drv_exit *ex);
const char *qemu_error_desc(json_t *error);
/* qemu_migrate.c: a MIGRATION event; freeing a handle's migration state. */
void qemu_mig_event(struct drv_guest *g, json_t *data);
void qemu_mig_free(struct drv_guest *g);
int qemu_migrate_recv(struct drv_guest *g, int fd, const struct drv_migrate_params *p);
int qemu_migrate_send(struct drv_guest *g, int fd, const struct drv_migrate_params *p);
int qemu_migrate_query(struct drv_guest *g, drv_migrate_query_fn cb, void *arg);
int qemu_probe(struct drv_guest *g, drv_probe_fn cb, void *arg);
int qemu_migrate_cancel(struct drv_guest *g);
void qemu_rebind(struct drv_guest *g, struct drv_host *host, void *owner);

#endif

/* One state machine per guest, as a table (state x event -> action, next).
 * Driven by driver events (QMP events, process exit), user requests and
 * timers; never by polling.  Every transition is logged at info level with
 * guest, from, to and cause, and published to `hactl events`. */
#ifndef HAGENT_SUPERVISE_H
#define HAGENT_SUPERVISE_H

#include "agent/hagentd.h"

enum sv_event {
	SV_START = 0, SV_STOP, SV_DESTROY,       /* requests */
	SV_RUNNING, SV_POWEROFF, SV_REBOOT, SV_CRASH, SV_WATCHDOG, SV_IO_ERROR,
	SV_PAUSED, SV_RESUMED, SV_EXIT, SV_DUMP_DONE, /* from the driver */
	SV_TIMER,                                /* back-off or stop deadline */
	SV_STORAGE_OK, SV_STORAGE_FAILED,        /* agent/storage.c's activation */
	SV__COUNT
};

/* Requests: 0 when accepted (the outcome, e.g. running or failed, follows
 * as transitions), -1 with a one-line reason in err when refused. */
int supervise_start(struct guest *g, char *err, size_t len);
int supervise_stop(struct guest *g, unsigned timeout_s, char *err, size_t len);
int supervise_destroy(struct guest *g, char *err, size_t len);

/* The driver's event callback (drv_host.event). */
void supervise_drv_event(void *owner, enum drv_event ev, const char *detail,
			 const struct drv_exit *exit_info);
/* After hagentd (re)starts: re-attach to a surviving guest process, or
 * handle one that died meanwhile per its policy. */
void supervise_resume(struct guest *g);
/* Quorum lost: destroy the guest now, keeping its desired state, so the
 * quorate partition may recover it.  Quorum regained: start again what was
 * stopped for that. */
void supervise_quorum_lost(struct guest *g);
void supervise_quorum_regained(struct guest *g);
/* A guest now owned by another host (migrated away): destroy the local
 * copy, keeping the cluster's desired state. */
void supervise_hand_off(struct guest *g, const char *why);
/* The guest's file as QEMU starts it here (memory ceiling from mem-max),
 * with the watchdog armed first when there is one; NULL and err if not. */
struct guest_cfg *supervise_launch_cfg(struct guest *g, char *err, size_t errlen);
/* After the sync made this host the owner of a guest whose incoming copy
 * (NAME.in.*) outlived an hagentd: attach to it, make it the guest's QEMU
 * and resume it.  -1 if it cannot (then it is started afresh). */
int supervise_take_incoming(struct guest *g);
/* A migrated guest arrived: take the incoming handle (paused) and resume it. */
void supervise_adopt(struct guest *g, struct drv_guest *h, long boot_mem_mib, long mem_mib);
/* hagentd exits: let go of every guest without touching it. */
void supervise_detach(struct guest *g);

/* Releases the guest's storage when it holds some and no longer runs
 * here (stopped, failed without a process, or owned elsewhere). */
void supervise_storage_settle(struct guest *g);

const char *gstate_name(enum gstate s);
const char *sv_event_name(enum sv_event ev);

#endif

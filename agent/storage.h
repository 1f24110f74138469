/* A guest's storage on this host: activated before it starts here (or
 * before an incoming migration), released once it no longer runs here.
 * Each job runs in a child process with a deadline (the tools block: lvm,
 * iscsiadm, drbdadm; lib/storage_host.c) and reports through a pipe; a
 * failed activation undoes its own steps.  One job per guest at a time. */
#ifndef HAGENT_AGENT_STORAGE_H
#define HAGENT_AGENT_STORAGE_H

#include <stdbool.h>

#include "agent/hagentd.h"
#include "lib/guestcfg.h"

enum storage_op {
	STORAGE_PREPARE = 0,  /* exclusive activation, for a start */
	STORAGE_PREPARE_SHARED, /* a migration's destination: second DRBD primary, LV shared */
	STORAGE_RELEASE,      /* LV inactive, DRBD secondary */
	STORAGE_WINDOW_OPEN,  /* DRBD: allow two primaries for a migration */
	STORAGE_WINDOW_CLOSE,
};

/* g may be gone when the job ends: done then is not called.  why is "" on
 * success. */
typedef void (*storage_done_fn)(struct guest *g, enum storage_op op, bool ok, const char *why);

/* Has the guest any storage hagent activates (LVM, iSCSI, DRBD)? */
bool storage_needed(const struct guest_cfg *cfg);
/* Starts a job; -1 (err) when one is running or the child cannot start. */
int storage_run(struct guest *g, enum storage_op op, storage_done_fn done, char *err, size_t errlen);
bool storage_busy(const struct guest *g);
/* The devices the last activation returned replace the disks' targets
 * (drbd:r0 → /dev/drbd0, an iSCSI target → its LUN's /dev/sdX), with no
 * block script left for the driver to run. */
void storage_apply(const struct guest *g, struct guest_cfg *cfg);
const char *storage_op_name(enum storage_op op);
/* hagentd exits: jobs are left to finish on their own. */
void storage_shutdown(struct hagentd *d);

/* This host's view of its guests' storage (agent/storage_state.c): probed
 * in a child on kernel uevents, DRBD events, guest changes and job ends
 * (and a slow backstop), published as RegOp STORAGE when it changes. */
void storage_monitor_start(struct hagentd *d);
void storage_monitor_stop(struct hagentd *d);
/* Something may have changed: probe again soon (debounced).  why: for the log. */
void storage_kick(struct hagentd *d, const char *why);
/* A guest was defined or undefined. */
void storage_guests_changed(struct hagentd *d);
/* The last probe's texts: a line per storage item, "GUEST\tREASON\n" per
 * guest this host cannot run (for the SYNC). */
void storage_published(struct hagentd *d, const char **info, const char **bad);

#endif

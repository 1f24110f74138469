/* What this host has of a guest's storage, and the steps that activate
 * and release it, through the host's own tools (lvm, iscsiadm, drbdadm)
 * and sysfs.  Every function here blocks (each tool runs with a deadline):
 * hactl calls them directly, hagentd only in a child (agent/storage.c). */
#ifndef HAGENT_STORAGE_HOST_H
#define HAGENT_STORAGE_HOST_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "guestcfg.h"
#include "storage.h"

#define STOR_TOOL_TIMEOUT_S 20 /* one lvchange, iscsiadm or drbdadm */

struct stor_status {
	bool usable;            /* a guest may be started on it here (after activation) */
	bool active;            /* activated here now: LV active, session up, Primary */
	char dev[PATH_MAX];     /* the device a driver opens ("" when not active) */
	char detail[256];       /* one line for people: what is there, or what is missing */
};

/* Runs argv with a deadline; stdout+stderr (trimmed, last line first if it
 * does not fit) into out.  Returns the exit status, 124 on deadline, -1
 * when it could not run (out says why). */
int stor_run(char *const argv[], int timeout_s, char *out, size_t outlen);

/* Probes one disk (no change to anything). */
void stor_probe(const struct stor_ref *r, const char *target, struct stor_status *st);

/* Activation for a start (exclusive: shared = false) or the destination of
 * a migration (shared = true: DRBD's second primary, LVM shared), returning
 * the device in dev.  On failure every step it made is undone, and err
 * names the step and the tool's message. */
int stor_activate(const struct stor_ref *r, const char *target, bool shared, char *dev,
		  size_t devlen, char *err, size_t errlen);
/* Undoes an activation: LV deactivated, DRBD Secondary.  iSCSI sessions
 * stay logged in: other guests and the VG's view use them. */
int stor_release(const struct stor_ref *r, const char *target, char *err, size_t errlen);
/* DRBD: opens (allow-two-primaries) or closes a migration's window. */
int stor_window(const struct stor_ref *r, bool open, char *err, size_t errlen);

/* hactl check, hagentd -n: one note per LVM, iSCSI or DRBD disk saying
 * what this host has of it, an error when it cannot run the guest (VG,
 * LV, session or resource missing, DRBD not UpToDate or in split brain). */
void stor_check_cfg(const struct guest_cfg *cfg, struct guestcfg_diags *diags);

#endif

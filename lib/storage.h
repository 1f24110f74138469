/* What a guest's disk lives on: every disk spec of a guest file is
 * classified once, when the file is parsed, from its target and block
 * script alone (no I/O), so hactl, hagentd and the drivers agree on it.
 *
 *   file            a plain image file: a regular file on some mount
 *   block           a device hagent knows nothing more of (/dev/sdb, a loop)
 *   lvm             phy:/dev/VG/LV, phy:/dev/mapper/VG-LV
 *   iscsi           script=block-iscsi (xl: target=iqn=IQN,portal=ADDR[:PORT]
 *                   [,lun=N]; xm: iscsi:...), or a LUN's by-path name
 *                   /dev/disk/by-path/ip-ADDR:PORT-iscsi-IQN-lun-N
 *   drbd            drbd:RES (script=block-drbd), /dev/drbd/by-res/RES[/VOL],
 *                   /dev/drbdN (minor N: its resource is asked of drbdadm)
 *
 * What a host has of it (VG, LV, session, resource and its roles) is
 * agent/storage.c's; hactl check asks the host's tools (stor_check_host). */
#ifndef HAGENT_STORAGE_H
#define HAGENT_STORAGE_H

#include <stdbool.h>
#include <stddef.h>

enum stor_kind { STOR_NONE = 0, STOR_FILE, STOR_BLOCK, STOR_LVM, STOR_ISCSI, STOR_DRBD };

struct stor_ref {
	enum stor_kind kind;
	char vg[128], lv[128];          /* lvm */
	char res[64];                   /* drbd: resource ("" when named by minor) */
	int volume;                     /* drbd: volume of /dev/drbd/by-res/RES/VOL, else 0 */
	int minor;                      /* drbd: /dev/drbdN, else -1 */
	char iqn[224];                  /* iscsi */
	char portal[128];               /* iscsi: ADDR:PORT (3260 when not given) */
	int lun;                        /* iscsi: -1 = the target's first disk LUN */
};

/* Classifies one disk.  target: the spec's target (a path, or the block
 * script's argument); script: its block script ("" when none).  Returns 0, or -1 with a message in
 * err for a target its script cannot mean (drbd: with no resource, an iscsi
 * target without iqn= or portal=, a script hagent does not know). */
int stor_classify(const char *target, const char *script, struct stor_ref *r,
		  char *err, size_t errlen);

const char *stor_kind_name(enum stor_kind k);
/* Storage hagent activates before a start and releases after (LVM, iSCSI,
 * DRBD), as opposed to files and plain devices that are just there. */
bool stor_activated(enum stor_kind k);
/* "LVM volume vg/web1", "DRBD resource r0", "iSCSI target IQN at PORTAL (LUN 1)", ... */
void stor_describe(const struct stor_ref *r, const char *target, char *buf, size_t len);
/* Same storage (the same LV, resource, LUN, or path)? */
bool stor_same(const struct stor_ref *a, const char *ta, const struct stor_ref *b, const char *tb);

/* Is the file on a filesystem every host can mount (nfs, ocfs2, gfs2,
 * cifs, glusterfs, ceph, 9p, virtiofs, fuse)?  *fstype gets its name.
 * Returns -1 when the path cannot be examined. */
int stor_file_shared(const char *path, char *fstype, size_t len);

#endif

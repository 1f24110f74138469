/* Guest definitions: xl.cfg files parsed with Xen's libxlutil into one
 * plain struct that every driver reads.  Parsing never exits; problems are
 * collected as diagnostics naming file, line and key. */
#ifndef HAGENT_GUESTCFG_H
#define HAGENT_GUESTCFG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "storage.h"

#define GUEST_NAME_MAX 64   /* bytes incl. NUL; names match [A-Za-z0-9_.-]+ */
#define GUEST_MAX_DISKS 16
#define GUEST_MAX_VIFS 8
#define GUEST_MAX_NODES 16
#define GUEST_FILE_MAX (256 * 1024) /* larger guest files are refused */

/* xl's on_* values (xl.cfg(5)); the order is the on_* name table's. */
enum guest_action {
	GA_DESTROY = 0,
	GA_RESTART,
	GA_RENAME_RESTART,
	GA_PRESERVE,
	GA_COREDUMP_DESTROY,
	GA_COREDUMP_RESTART,
	GA_SOFT_RESET,
	GA__COUNT
};

enum guest_type { GT_HVM = 0, GT_PVH, GT_PV };

enum disk_backend { DISK_FILE = 0, DISK_PHY };

struct guest_disk {
	char target[PATH_MAX];  /* image file or device; "" for an empty cdrom */
	char format[16];        /* raw, qcow2, ... ("raw" default) */
	char vdev[16];          /* xvda, hda, sdb, ... */
	enum disk_backend backend;
	bool cdrom;
	bool readonly;
	char script[64];        /* block script (drbd:, iscsi:, script=), "" = none */
	struct stor_ref stor;   /* what the storage is (lib/storage.h) */
};

struct guest_vif {
	char mac[18];           /* "" = let the driver choose */
	char bridge[32];        /* "" = no bridge (user networking is not used) */
	char model[32];         /* "" = driver default (e1000 for qemu) */
	char ifname[16];        /* vifname=, "" = generated */
};

struct guest_cfg {
	char name[GUEST_NAME_MAX];
	char source[PATH_MAX];          /* file it was read from (for messages) */
	char driver[16];                /* "qemu" or "xen" (ha_driver) */
	enum guest_type type;           /* type= or builder= */
	char kernel[PATH_MAX];          /* "" when none (or hvmloader, ignored) */
	char ramdisk[PATH_MAX];
	char cmdline[1024];             /* cmdline=, or extra= (+ root=) */
	long memory_mib;                /* default 128 */
	long maxmem_mib;                /* default = memory */
	int vcpus;                      /* default 1 */
	struct guest_disk disks[GUEST_MAX_DISKS];
	int n_disks;
	struct guest_vif vifs[GUEST_MAX_VIFS];
	int n_vifs;
	bool vnc;
	char vnclisten[64];             /* default 127.0.0.1 */
	int vncdisplay;                 /* -1 = not set */
	bool vncunused;                 /* default true, as xl */
	char serial[64];                /* "pty" (default) or "none"; first port */
	char boot[8];                   /* hvm boot order, e.g. "cd"; "" = default */
	char usbdevice[32];             /* "tablet", "mouse", "" */
	bool localtime;
	bool acpi;                      /* default true */
	enum guest_action on_poweroff;  /* default destroy */
	enum guest_action on_reboot;    /* default restart */
	enum guest_action on_crash;     /* default destroy */
	enum guest_action on_watchdog;  /* default destroy */
	bool on_watchdog_set;           /* key present: driver adds a watchdog */
	/* hagent's own keys */
	char ha_nodes[GUEST_MAX_NODES][64];
	int n_ha_nodes;
	int ha_priority;                /* default 0 */
	int ha_restart_max;             /* default 3 */
	int ha_restart_window_s;        /* default 600 */
	int ha_migrate_downtime_ms;     /* default 300 */
	int ha_migrate_bandwidth_mib;   /* default 0 = unlimited */
	bool ha_migrate_auto_converge;  /* default 0 */
	char ha_managed_by[16];         /* "hagent" (default) | "pacemaker" */
};

enum diag_level { DIAG_NOTE = 0, DIAG_WARNING, DIAG_ERROR };

struct guestcfg_diag {
	enum diag_level level;
	int line;                        /* 1-based, 0 when unknown */
	char key[32];                    /* "" when not about one key */
	char msg[256];
};

#define GUESTCFG_MAX_DIAGS 64

struct guestcfg_diags {
	struct guestcfg_diag d[GUESTCFG_MAX_DIAGS];
	int n;
	int n_errors;
	int n_warnings;
};

/* Parse an xl.cfg held in memory.  `source` names it in diagnostics.
 * Fills *cfg (defaults first) and appends to *diags.  Returns 0 when there is
 * no error-level diagnostic, -1 otherwise (cfg is then not to be used). */
/* The driver of a file without ha_driver ("qemu" until set; hagentd sets
 * the host's: "xen" on a Xen control domain). */
void guestcfg_set_default_driver(const char *name);

int guestcfg_parse(const char *data, size_t len, const char *source,
		   struct guest_cfg *cfg, struct guestcfg_diags *diags);
/* Reads the file (refusing one above GUEST_FILE_MAX) and parses it. */
int guestcfg_parse_file(const char *path, struct guest_cfg *cfg, struct guestcfg_diags *diags);
/* Checks what only the running host can tell: disk images and kernels
 * exist (each missing path named), the name is valid.  Appends diagnostics;
 * returns -1 on any error. */
int guestcfg_check_host(const struct guest_cfg *cfg, struct guestcfg_diags *diags);

/* Formats one diagnostic as "SOURCE:LINE: error: key 'k': message". */
void guestcfg_diag_format(const struct guestcfg_diag *d, const char *source, char *buf, size_t len);
/* Appends a diagnostic (bounded; the last slot reports the overflow). */
void guestcfg_diag_add(struct guestcfg_diags *diags, enum diag_level level, int line,
		       const char *key, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

const char *guest_action_name(enum guest_action a);
/* -1 when the name is not one of xl's on_* values. */
int guest_action_parse(const char *s);
const char *guest_type_name(enum guest_type t);
bool guest_name_valid(const char *name);

#endif

/* hagentd's context: the one struct every part of the daemon is handed. */
#ifndef HAGENT_HAGENTD_H
#define HAGENT_HAGENTD_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <qb/qblist.h>
#include <qb/qbloop.h>

#include "drivers/driver.h"
#include "lib/guestcfg.h"

#define CONF_FENCE_NODES_MAX 32

struct conf {
	char path[PATH_MAX];
	char node_name[64];
	char run_dir[PATH_MAX];
	char state_dir[PATH_MAX];
	char guest_dir[PATH_MAX];   /* -n also checks every *.cfg here ("" = none) */
	char dump_dir[PATH_MAX];
	char qemu[PATH_MAX];
	char accel[16];
	char socket_group[64];      /* group allowed on the control socket ("" = root only) */
	char cluster[16];           /* "auto" | "corosync" | "none" */
	char fence_agent[PATH_MAX]; /* fence-agents stdin protocol; "" = none */
	char fence_args[512];       /* extra "key=value" lines, comma separated */
	long fence_timeout_s;       /* an agent's deadline */
	long storage_refresh_s;     /* the storage probe's backstop */
	struct conf_fence {         /* fence_nodes: one node's own agent and args */
		char node[64];
		char agent[PATH_MAX];
		char args[512];
	} fence_nodes[CONF_FENCE_NODES_MAX];
	int n_fence_nodes;
	char watchdog[PATH_MAX];    /* self-fence device ("" = none) */
	long watchdog_timeout_s;
	long guest_memory_mb;       /* what this host gives guests (0 = derived from RAM) */
	long qmp_observer;          /* 1: a second QMP monitor per QEMU, for test observers */
	char migration_address[256]; /* where peers reach this host's migration port ("" = ring0) */
	long migration_port;
	char migration_transport[16]; /* "tls" | "plaintext" */
	char authkey[PATH_MAX];     /* the cluster key file */
};

/* Supervisor states of one guest (agent/supervise.c has the table). */
enum gstate {
	GS_STOPPED = 0,
	GS_STARTING,
	GS_RUNNING,
	GS_PAUSED,
	GS_STOPPING,    /* power button pressed, waiting for the guest */
	GS_DESTROYING,  /* kill requested, waiting for the process to go */
	GS_DUMPING,     /* coredump-* in progress */
	GS_BACKOFF,     /* waiting to restart */
	GS_PRESERVED,   /* crashed/stopped guest kept as is (on_* = preserve) */
	GS_FAILED,
	GS_PREPARING,   /* its storage is being activated (agent/storage.c) */
	GS__COUNT
};

enum desired { DESIRED_STOPPED = 0, DESIRED_RUNNING };

#define RESTART_HISTORY 64

/* What the supervisor needs of a guest file at all times.  The full
 * struct guest_cfg (~80 KiB with its path buffers) is parsed again from the
 * stored text only when a driver needs it (start, attach): hagentd stays
 * small with many defined guests. */
struct guest_brief {
	char name[GUEST_NAME_MAX];
	char source[PATH_MAX];      /* the file it was added from */
	char driver[16];
	long memory_mib;
	long maxmem_mib;
	int vcpus;
	enum guest_action on_poweroff, on_reboot, on_crash, on_watchdog;
	int ha_restart_max;
	int ha_restart_window_s;
	int ha_priority;
	int migrate_downtime_ms;
	int migrate_bandwidth_mib;
	bool migrate_auto_converge;
	bool managed_by_pacemaker;
};

/* A live migration of one guest, as the registry knows it (migrate/job.c). */
enum mig_phase { MIG_NONE = 0, MIG_PREPARE, MIG_TRANSFER };

struct guest_mig {
	char job[64];               /* "" = none running */
	char src[64], dst[64];
	enum mig_phase phase;
	bool sent, loaded;          /* the source's QEMU completed / the destination's loaded */
	unsigned downtime_ms, bandwidth_mib, timeout_s;
	bool auto_converge;
	uint64_t began_ms;          /* monotonic, when this host applied it */
	struct drv_migrate_stats st; /* the source's last figures */
	char last[256];             /* outcome of the last one */
	struct migjob *local;       /* this host's side of it, or NULL */
};

struct guest {
	struct qb_list_head list;
	struct hagentd *d;
	struct guest_brief cfg;
	char *text;                 /* the guest file as added (stored verbatim) */
	size_t text_len;
	const struct driver_ops *ops;
	struct drv_guest *h;        /* live driver handle, NULL when none */
	enum gstate state;
	enum desired desired;
	char reason[192];           /* cause of the last transition */
	time_t started_at;
	long mem_target_mib;        /* balloon target of the running instance */
	long maxmem_mib;            /* mem-max (persisted) */
	long boot_mem_mib;          /* RAM the running instance was started with */
	/* restart budget: times (monotonic ms) of recent policy restarts */
	uint64_t restarts[RESTART_HISTORY];
	int n_restarts;
	qb_loop_timer_handle timer;
	bool timer_armed;
	enum guest_action after_dump;  /* what follows a coredump */
	int after_exit;                /* what the exit we wait for leads to */
	bool removing;                 /* drop from the table once settled */
	bool orphan;                   /* a renamed crashed instance (rename-restart) */
	/* cluster registry (agent/registry.c); owner "" on a single host */
	char owner[64];                /* node that runs it */
	uint64_t gen;                  /* generation of its registry record */
	bool budget_spent;             /* failed: its restart budget is spent here */
	bool reg_failed;               /* the owner reported it failed (applied in order) */
	bool incoming_left;            /* hagentd started: an incoming copy (NAME.in.*) is
					* alive; the cluster's table says if it is the guest */
	bool resume_when_ready;        /* that copy was taken over: cont once QMP is up */
	bool resume_after_sync;        /* re-attached paused by a migration's end: resume
					* once the cluster says it still runs here */
	char spent_on[256];            /* nodes where its budget was spent, "a,b," */
	pid_t orphan_pid;
	struct guest_mig mig;
	/* storage (agent/storage.c): active here since the last activation,
	 * the devices it returned, a job in flight */
	bool stor_active;
	bool stor_shared;              /* activated for an incoming migration */
	char stor_dev[GUEST_MAX_DISKS][128];
	struct storjob *stor_job;
	/* what its owner last reported (shown once a local process is gone) */
	enum gstate owner_state;
	char owner_reason[192];
};

struct control;
struct cluster;
struct registry;

struct hagentd {
	qb_loop_t *loop;
	struct conf conf;
	struct drv_host drv;
	struct qb_list_head guests;
	int n_guests;
	struct control *ctl;
	struct cluster *cluster;    /* NULL with cluster = "none" */
	struct registry *registry;  /* NULL until corosync is joined */
	struct watchdog *watchdog;  /* NULL without a watchdog device */
	struct migrate *migrate;    /* migration channel and key; NULL when off */
	bool standby;               /* hactl node standby: persisted in STATE_DIR/standby */
	char evacuation[256];       /* outcome of this host's last evacuation */
	bool debug;
	bool foreground;
	bool exiting;
};

uint64_t now_ms(void); /* CLOCK_MONOTONIC in ms */
/* Does this host run the guest (single host, or the registry says so)? */
bool guest_is_local(const struct guest *g);

#endif

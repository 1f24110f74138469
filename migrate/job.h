/* Live migration jobs (DESIGN.md §7).  A job's phases are registry changes,
 * applied in CPG order on every member, so every host knows which single
 * copy of a guest may run:
 *
 *   MIGRATE          prepare   the destination starts the incoming QEMU,
 *                              paused (-S -incoming defer)
 *   MIG_PHASE ready  transfer  the source connects to the destination's
 *                              migration port (migrate/channel.c) and QEMU
 *                              sends the guest over that socket
 *   MIG_PHASE sent             QEMU completed on the source (the guest is
 *                              paused there for good unless the job aborts)
 *   MIG_PHASE loaded           the destination's QEMU loaded the whole guest
 *   (commit)                   applied with the second of sent and loaded:
 *                              the owner becomes the destination, which
 *                              resumes its copy; the source destroys its own.
 *                              Waiting for both means a stream cut short
 *                              after the source's QEMU finished writing never
 *                              commits a copy that did not load.
 *   MIG_PHASE abort            before the commit, at any phase: the source's
 *                              copy stays (a completed-but-uncommitted one is
 *                              resumed), the destination's is destroyed
 *
 * The source copy runs until QEMU stops it for the final phase; the
 * destination's never runs before the commit is applied.  A job whose source
 * or destination hagentd leaves the group is aborted by every member at the
 * same point of the order. */
#ifndef HAGENT_MIGRATE_JOB_H
#define HAGENT_MIGRATE_JOB_H

#include "agent/hagentd.h"
#include "proto/hagent.pb-c.h"

struct conn;

/* The channel's listening socket and the cluster key (cluster mode only).
 * -1 when the key or the port is unusable: hagentd runs on, and migrations
 * are refused with the reason. */
int migrate_init(struct hagentd *d);
void migrate_fini(struct hagentd *d);

/* Registry changes MIGRATE and MIG_PHASE. */
void migrate_apply(struct hagentd *d, uint32_t from, const Hagent__RegOp *op);
/* The CPG membership changed: abort jobs whose source or destination left. */
void migrate_members_changed(struct hagentd *d);

/* Is g migrating away from this host (its driver events go to the job)? */
bool migrate_source_here(const struct guest *g);
void migrate_source_event(struct guest *g, enum drv_event ev, const char *detail);

/* Requests: migrate GUEST NODE, migrate-abort GUEST. */
void migrate_req(struct conn *c, const Hagent__Request *req);
void migrate_req_abort(struct conn *c, const Hagent__Request *req);

/* A joiner learns a job under way from a member's table (registry sync). */
void migrate_merge_job(struct hagentd *d, struct guest *g, const Hagent__MigInfo *mi);

/* For hactl list/status, and the registry's tables. */
void migrate_fill_info(struct hagentd *d, struct guest *g, Hagent__MigInfo *mi);

#endif

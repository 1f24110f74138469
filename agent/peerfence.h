/* DRBD's fence-peer handler, backed by the cluster (ra/hagent-fence-peer
 * calls `hactl fence-peer RESOURCE PEER`).  DRBD calls it when a resource
 * with `fencing resource-only` (or resource-and-stonith) loses its peer
 * and this side is or becomes Primary; it may go on only once the peer
 * cannot write or be promoted with stale data:
 *   - the peer's hagentd is in the group (only the replication link is
 *     gone): it is asked, through the registry, to `drbdadm outdate` its
 *     side; the answer is "outdated" (DRBD exit 4), or "refused" when it
 *     cannot (it is Primary itself: exit 6);
 *   - the peer is lost: it is fenced (its fence agent, as for recovery),
 *     and the answer waits for the cluster's FENCED record: "fenced" (7);
 *   - this partition has no quorum: refused, so that this side does not
 *     go on alone.
 * The answer is hactl's exit status 0 with the word on stdout. */
#ifndef HAGENT_PEERFENCE_H
#define HAGENT_PEERFENCE_H

#include "agent/hagentd.h"
#include "proto/hagent.pb-c.h"

struct conn;

void peerfence_req(struct conn *c, const Hagent__Request *req);
/* RegOp DRBD_OUTDATE (to the peer) and DRBD_OUTDATED (its answer). */
void peerfence_apply(struct hagentd *d, uint32_t from, const Hagent__RegOp *op);
/* The registry applied FENCED for node. */
void peerfence_fenced(struct hagentd *d, const char *node);
/* The membership changed: a peer asked to outdate itself may be lost now. */
void peerfence_members_changed(struct hagentd *d);
void peerfence_shutdown(struct hagentd *d);

#endif

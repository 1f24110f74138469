/* The registry: every host's copy of the cluster's guest table, kept equal
 * as a replicated state machine.  Every change is a RegOp multicast in the
 * CPG group with agreed order and applied, in delivery order, by the same
 * deterministic code on every member (registry_apply).  A membership change
 * with joiners makes every member multicast its whole table (SYNC); records
 * merge by generation, and a joiner queues other changes until it has every
 * member's SYNC.  On a single host (no corosync) the registry is inactive and
 * requests act on the local supervisor directly. */
#ifndef HAGENT_REGISTRY_H
#define HAGENT_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "agent/hagentd.h"
#include "proto/hagent.pb-c.h"

struct conn;

int registry_create(struct hagentd *d);
void registry_destroy(struct hagentd *d);
bool registry_active(struct hagentd *d);
/* Has this member got the cluster's table since it joined? */
bool registry_synced(struct hagentd *d);
/* hagentd processes in the CPG group (the table was merged among them). */
size_t registry_members(struct hagentd *d);

/* Members with our registry version, distinct, in CPG order. */
size_t registry_member_ids(struct hagentd *d, uint32_t *ids, size_t max);
/* What a member announced: memory for guests (0 = unknown), watchdog (s). */
uint64_t registry_node_capacity(struct hagentd *d, uint32_t id);
unsigned registry_node_watchdog(struct hagentd *d, const char *name);

/* Requests from the control socket: multicast a change; the answer to the
 * client follows when the change is delivered here (req_id ties them). */
int registry_submit(struct hagentd *d, Hagent__RegOp *op, struct conn *c);

/* The owner reports a local transition of one of its guests. */
void registry_report(struct hagentd *d, struct guest *g);

/* From the cluster layer. */
void registry_deliver(struct hagentd *d, uint32_t nodeid, const void *msg, size_t len);
void registry_confchg(struct hagentd *d, const uint32_t *members, size_t n_members,
		      const uint32_t *joined, size_t n_joined, bool local_joined);
/* Membership or quorum changed, or a change was applied: fence and recover
 * what the table says needs it (only the lowest-id quorate member fences). */
void registry_check_recovery(struct hagentd *d);
/* For migrate/job.c: multicast a change, answer the client waiting for one,
 * persist a record, show a remote guest's reported state, is NAME's hagentd
 * in the group, where does NAME's migration port listen. */
int registry_mcast(struct hagentd *d, Hagent__RegOp *op);
void registry_answer(struct hagentd *d, uint32_t from, const Hagent__RegOp *op, int status,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
struct conn *registry_waiter(struct hagentd *d, uint32_t from, const Hagent__RegOp *op);
void registry_save(struct hagentd *d, struct guest *g);
void registry_show(struct hagentd *d, struct guest *g, enum gstate to, const char *reason);
bool registry_member(struct hagentd *d, const char *name);
bool registry_node_endpoint(struct hagentd *d, const char *name, char *addr, size_t len,
			    uint16_t *port);

/* hactl node standby: a node in standby takes no guest (placement skips it). */
bool registry_node_standby(struct hagentd *d, const char *name);
/* "online", "evacuating" or "standby", and its last evacuation's outcome. */
const char *registry_node_mode(struct hagentd *d, const char *name, const char **evacuation);
/* Fence a lost node as recovery does (its agent, or its watchdog); FENCED
 * follows.  Nothing when it is a member. */
void registry_fence_lost(struct hagentd *d, const char *node);
/* Has node said its storage cannot run guest?  why gets its reason. */
bool registry_storage_unusable(struct hagentd *d, const char *node, const char *guest, char *why,
			       size_t len);
/* node's storage lines, and its unusable list ("GUEST\tREASON\n"...) */
const char *registry_node_storage(struct hagentd *d, const char *name, const char **unusable);

/* Why a lost node's guests wait, for `hactl status` ("" when none). */
const char *registry_recovery_note(struct hagentd *d);

#endif

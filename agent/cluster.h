/* Cluster membership and quorum from Corosync: the CPG group "hagent" (which
 * hagentd processes are with us), votequorum (are we quorate, with how many
 * votes) and cmap (node names).  Without a reachable corosync hagentd runs
 * as a single host (cluster = "auto" in hagent.conf) and retries. */
#ifndef HAGENT_CLUSTER_H
#define HAGENT_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/hagentd.h"

#define CLUSTER_MAX_NODES 64

struct cluster_node {
	uint32_t id;
	char name[64];
	char addr[64];     /* ring0_addr: where peers reach it by default */
	bool member;   /* in our corosync membership (quorum view) */
	bool hagentd;  /* its hagentd is in the CPG group */
	int64_t lost_at; /* unix seconds it left our membership (or we first saw it out) */
};

struct cluster_view {
	bool enabled;      /* corosync connected */
	bool quorate;
	char name[64];     /* totem.cluster_name */
	uint32_t local_id;
	unsigned votes, expected_votes, quorum;
	uint32_t token_ms, consensus_ms;  /* effective totem timers (timeouts.h) */
	struct cluster_node nodes[CLUSTER_MAX_NODES];
	int n_nodes;
};

int cluster_start(struct hagentd *d);
void cluster_stop(struct hagentd *d);
/* May guests be started here?  True for a single host; in a cluster only
 * while quorate. */
bool cluster_may_start(struct hagentd *d);
const struct cluster_view *cluster_view(struct hagentd *d);

/* For the registry. */
int cluster_mcast(struct hagentd *d, const void *buf, size_t len);
uint32_t cluster_local_id(struct hagentd *d);
const char *cluster_node_name(struct hagentd *d, uint32_t id);
bool cluster_node_id(struct hagentd *d, const char *name, uint32_t *id);
/* In our corosync membership (the quorum view)? */
bool cluster_is_member(struct hagentd *d, const char *name);
/* When name left our membership (unix seconds; 0 = a member or unknown). */
int64_t cluster_lost_at(struct hagentd *d, const char *name);
/* Quorate, and the lowest node id of the membership: the one that fences. */
bool cluster_is_fencer(struct hagentd *d);

#endif

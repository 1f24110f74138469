/* hactl node standby NODE: the node takes no new guest (placement skips it)
 * and its own hagentd migrates its running guests away, one at a time, the
 * highest ha_priority first, each to the host placement chooses.  A guest
 * that cannot move stays and running, and the outcome says why; nothing is
 * stopped.  The last step is a NODE_MODE "evacuated" change with the
 * outcome, which every host shows in hactl status. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/cluster.h"
#include "agent/guests.h"
#include "agent/placement.h"
#include "agent/registry.h"
#include "agent/requests.h"
#include "agent/supervise.h"
#include "lib/log.h"
#include "migrate/evacuate.h"

#define EVAC_MAX 256

struct evacuation {
	bool active;
	char current[GUEST_NAME_MAX];    /* the guest migrating now ("" = none) */
	char tried[EVAC_MAX][GUEST_NAME_MAX];
	int n_tried;
	int moved, stayed;
	char stays[512];                 /* "g1 (why); g2 (why)" */
};

static struct evacuation *evac_of(struct hagentd *d)
{
	static struct evacuation e; /* one per hagentd: one host, one evacuation */

	(void)d;
	return &e;
}

static bool tried(struct evacuation *e, const char *name)
{
	int i;

	for (i = 0; i < e->n_tried; i++)
		if (!strcmp(e->tried[i], name))
			return true;
	return false;
}

static void note_stay(struct evacuation *e, const char *name, const char *why)
{
	size_t n = strlen(e->stays);

	e->stayed++;
	snprintf(e->stays + n, sizeof(e->stays) - n, "%s%s (%.120s)", n ? "; " : "", name, why);
}

static void finish(struct hagentd *d, struct evacuation *e)
{
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	char summary[640];

	e->active = false;
	if (e->stayed)
		snprintf(summary, sizeof(summary), "%d moved, %d stayed: %s", e->moved, e->stayed,
			 e->stays);
	else
		snprintf(summary, sizeof(summary), "%d moved", e->moved);
	log_notice("evacuation of %s: %s", d->conf.node_name, summary);
	op.kind = HAGENT__REG_OP__KIND__NODE_MODE;
	op.node = d->conf.node_name;
	op.state = "evacuated";
	op.reason = summary;
	if (registry_mcast(d, &op) < 0)
		log_err("evacuation: cannot announce the outcome: %s", strerror(errno));
}

/* Next guest to move: owned here, meant to run and running, not tried yet,
 * the highest ha_priority first (then by name). */
static struct guest *next_guest(struct hagentd *d, struct evacuation *e)
{
	struct guest *g, *best = NULL;

	guests_for_each(g, d) {
		if (g->orphan || strcmp(g->owner, d->conf.node_name) ||
		    g->desired != DESIRED_RUNNING || tried(e, g->cfg.name))
			continue;
		if (!best || placement_order(&g, &best) < 0)
			best = g;
	}
	return best;
}

void evacuate_step(struct hagentd *d)
{
	struct evacuation *e = evac_of(d);
	struct guest *g;
	char why[512];
	const char *dst;

	while (e->active && !e->current[0]) {
		g = next_guest(d, e);
		if (!g) {
			finish(d, e);
			return;
		}
		if (e->n_tried < EVAC_MAX)
			snprintf(e->tried[e->n_tried++], GUEST_NAME_MAX, "%s", g->cfg.name);
		if (g->state != GS_RUNNING) {
			snprintf(why, sizeof(why), "it is %s here", gstate_name(g->state));
			note_stay(e, g->cfg.name, why);
			continue;
		}
		if (g->cfg.managed_by_pacemaker) {
			note_stay(e, g->cfg.name, "managed by Pacemaker");
			continue;
		}
		dst = placement_choose(d, g, d->conf.node_name, false, why, sizeof(why));
		if (!dst) {
			note_stay(e, g->cfg.name, why);
			continue;
		}
		log_notice("evacuation of %s: migrating %s to %s", d->conf.node_name, g->cfg.name,
			   dst);
		if (migrate_request_own(d, g, dst) < 0) {
			snprintf(why, sizeof(why), "cannot reach the cluster: %s", strerror(errno));
			note_stay(e, g->cfg.name, why);
			continue;
		}
		snprintf(e->current, sizeof(e->current), "%s", g->cfg.name);
	}
}

void evacuate_begin(struct hagentd *d)
{
	struct evacuation *e = evac_of(d);

	memset(e, 0, sizeof(*e));
	e->active = true;
	log_notice("evacuation of %s: begins", d->conf.node_name);
	evacuate_step(d);
}

void evacuate_cancel(struct hagentd *d)
{
	struct evacuation *e = evac_of(d);

	if (e->active)
		log_notice("evacuation of %s: cancelled (node online); running migrations finish",
			   d->conf.node_name);
	e->active = false;
	e->current[0] = '\0';
}

void evacuate_job_ended(struct hagentd *d, const char *guest, bool moved, const char *why)
{
	struct evacuation *e = evac_of(d);

	if (!e->active || strcmp(e->current, guest))
		return;
	e->current[0] = '\0';
	if (moved)
		e->moved++;
	else
		note_stay(e, guest, why);
	evacuate_step(d);
}

static void node_mode(struct conn *c, const char *node, const char *mode)
{
	struct hagentd *d = control_daemon(c);
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	uint32_t id;

	if (!registry_active(d)) {
		control_error(c, RC_ERROR, "node %s: this host is not in a cluster", mode);
		return;
	}
	if (!cluster_node_id(d, node, &id)) {
		control_error(c, RC_NOT_FOUND, "unknown node '%s'", node);
		return;
	}
	op.kind = HAGENT__REG_OP__KIND__NODE_MODE;
	op.node = (char *)node;
	op.state = (char *)mode;
	if (registry_submit(d, &op, c) < 0)
		control_error(c, RC_ERROR, "node %s: cannot reach the cluster: %s", mode,
			      strerror(errno));
}

void evacuate_req_standby(struct conn *c, const Hagent__Request *req)
{
	node_mode(c, req->args[0], "standby");
}

void evacuate_req_online(struct conn *c, const Hagent__Request *req)
{
	node_mode(c, req->args[0], "online");
}

#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cluster.h"
#include "agent/control.h"
#include "agent/fence.h"
#include "agent/guests.h"
#include "agent/registry.h"
#include "agent/requests.h"
#include "agent/store.h"
#include "agent/supervise.h"
#include "agent/timeouts.h"
#include "lib/log.h"
#include "proto/frame.h"

#define REG_MSG_MAX (1u << 20)   /* one SYNC of a large table fits */
#define REG_QUEUE_MAX 4096       /* changes a joiner holds until synced */
#define REG_MAX_SENDERS 64

struct queued {
	uint32_t nodeid;
	uint8_t *msg;
	size_t len;
};

struct registry {
	struct hagentd *d;
	uint64_t next_req;
	/* CPG membership as delivered (ordered with the messages) */
	uint32_t members[REG_MAX_SENDERS];
	size_t n_members;
	/* joiner state: whose SYNC we still wait for, and what came meanwhile */
	bool joined_seen;  /* our own join was delivered: the wait list is known */
	bool synced;
	uint32_t awaiting[REG_MAX_SENDERS];
	size_t n_awaiting;
	struct queued *queue;
	size_t n_queue;
	char note[256];
};

static struct registry *reg_of(struct hagentd *d)
{
	return d->registry;
}

bool registry_active(struct hagentd *d)
{
	return reg_of(d) != NULL;
}

bool registry_synced(struct hagentd *d)
{
	return !reg_of(d) || reg_of(d)->synced;
}

size_t registry_members(struct hagentd *d)
{
	struct registry *r = reg_of(d);
	size_t i, j, n = 0;

	if (!r)
		return 0;
	for (i = 0; i < r->n_members; i++) { /* distinct nodes */
		for (j = 0; j < i && r->members[j] != r->members[i]; j++)
			;
		n += j == i;
	}
	return n;
}

const char *registry_recovery_note(struct hagentd *d)
{
	return reg_of(d) ? reg_of(d)->note : "";
}

static int mcast(struct hagentd *d, Hagent__RegOp *op)
{
	uint8_t *buf;
	ssize_t n = frame_encode(FRAME_REGOP, &op->base, &buf);
	int rc;

	if (n < 0)
		return -1;
	if ((size_t)n > REG_MSG_MAX + FRAME_HDR) {
		free(buf);
		errno = EMSGSIZE;
		return -1;
	}
	rc = cluster_mcast(d, buf, (size_t)n);
	free(buf);
	return rc;
}

int registry_submit(struct hagentd *d, Hagent__RegOp *op, struct conn *c)
{
	struct registry *r = reg_of(d);

	op->req_id = c ? control_pending(c, ++r->next_req) : 0;
	if (mcast(d, op) < 0) {
		if (c)
			control_pending(c, 0);
		return -1;
	}
	return 0;
}

/* --- placement ----------------------------------------------------------- */

static bool in_members(struct registry *r, uint32_t id)
{
	size_t i;

	for (i = 0; i < r->n_members; i++)
		if (r->members[i] == id)
			return true;
	return false;
}

static int owned_running(struct hagentd *d, const char *node)
{
	struct guest *g;
	int n = 0;

	guests_for_each(g, d)
		if (!g->orphan && g->desired == DESIRED_RUNNING && !strcmp(g->owner, node))
			n++;
	return n;
}

/* Deterministic on every member: the same table and the same (ordered) CPG
 * membership give the same answer.  ha_nodes order first; otherwise the
 * member with the fewest running guests, the lowest node id on a tie.
 * `exclude` is a node being recovered from. */
static const char *place(struct hagentd *d, struct guest *g, const char *exclude)
{
	struct registry *r = reg_of(d);
	struct guest_cfg *cfg = guests_load_cfg(g);
	const char *best = NULL;
	int best_load = 0;
	uint32_t best_id = 0;
	size_t i;
	int k;

	if (cfg && cfg->n_ha_nodes > 0) {
		for (k = 0; k < cfg->n_ha_nodes && !best; k++) {
			uint32_t id;
			if (exclude && !strcmp(cfg->ha_nodes[k], exclude))
				continue;
			if (cluster_node_id(d, cfg->ha_nodes[k], &id) && in_members(r, id))
				best = cluster_node_name(d, id);
		}
		free(cfg);
		return best;
	}
	free(cfg);
	for (i = 0; i < r->n_members; i++) {
		const char *name = cluster_node_name(d, r->members[i]);
		int load;
		if (!name || (exclude && !strcmp(name, exclude)))
			continue;
		load = owned_running(d, name);
		if (!best || load < best_load || (load == best_load && r->members[i] < best_id)) {
			best = name;
			best_load = load;
			best_id = r->members[i];
		}
	}
	return best;
}

/* --- applying changes ---------------------------------------------------- */

static const char *state_str(struct guest *g)
{
	return gstate_name(g->state);
}

static enum gstate state_from(const char *s)
{
	enum gstate i;

	for (i = 0; i < GS__COUNT; i++)
		if (!strcmp(gstate_name(i), s))
			return i;
	return GS_STOPPED;
}

static void answer(struct hagentd *d, uint32_t from, const Hagent__RegOp *op, int status,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void answer(struct hagentd *d, uint32_t from, const Hagent__RegOp *op, int status,
		   const char *fmt, ...)
{
	struct conn *c;
	char msg[512] = "";
	va_list ap;

	if (!op->req_id || from != cluster_local_id(d))
		return;
	c = control_by_pending(d, op->req_id);
	if (!c)
		return;
	control_pending(c, 0);
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	if (status)
		control_error(c, status, "%s", msg);
	else
		control_ok(c);
}

static struct conn *waiter(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct conn *c;

	if (!op->req_id || from != cluster_local_id(d))
		return NULL;
	c = control_by_pending(d, op->req_id);
	if (c)
		control_pending(c, 0);
	return c;
}

static void save(struct hagentd *d, struct guest *g)
{
	if (store_save_state(d, g) < 0)
		log_err("registry: cannot record %s: %s", g->cfg.name, strerror(errno));
}

/* Show a remote guest's state here as its owner reported it. */
static void show_state(struct hagentd *d, struct guest *g, enum gstate to, const char *reason)
{
	enum gstate from = g->state;

	if (g->h)
		return; /* a local process: its supervisor alone sets the state */
	g->state = to;
	snprintf(g->reason, sizeof(g->reason), "%s", reason ? reason : "");
	if (from != to)
		events_publish(d, g, from, to, g->reason[0] ? g->reason : "reported");
}

static void become_owner_start(struct hagentd *d, struct guest *g)
{
	char err[300];

	if (supervise_start(g, err, sizeof(err)) < 0)
		log_err("registry: %s", err);
}

static void apply_define(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct guestcfg_diags *diags = calloc(1, sizeof(*diags));
	struct guest *g = guests_find(d, op->name);

	if (g) {
		answer(d, from, op, RC_EXISTS, "guest '%s' is already defined (from %s)", op->name,
		       g->cfg.source);
		goto out;
	}
	g = diags ? guests_new(d, (const char *)op->text.data, op->text.len, op->source, diags)
		  : NULL;
	if (!g || strcmp(g->cfg.name, op->name)) {
		/* validated by the sender; a host that cannot parse it says so */
		log_err("registry: guest %s cannot be defined on this host", op->name);
		guests_free(g);
		answer(d, from, op, RC_INVALID, "guest '%s' is invalid on %s", op->name,
		       d->conf.node_name);
		goto out;
	}
	g->gen = 1;
	if (store_save_def(d, g) < 0 || store_save_state(d, g) < 0)
		log_err("registry: cannot store %s: %s (kept in memory)", g->cfg.name,
			strerror(errno));
	guests_insert(d, g);
	log_info("registry: guest %s defined (from %s)", g->cfg.name, g->cfg.source);
	events_publish(d, g, GS_STOPPED, GS_STOPPED, "defined");
	answer(d, from, op, 0, NULL);
out:
	free(diags);
}

static void apply_undefine(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct guest *g = guests_find(d, op->name);

	if (!g) {
		answer(d, from, op, RC_NOT_FOUND, "unknown guest '%s'", op->name);
		return;
	}
	if (g->desired == DESIRED_RUNNING || g->h ||
	    (g->state != GS_STOPPED && g->state != GS_FAILED)) {
		answer(d, from, op, RC_ERROR, "guest '%s' is %s%s%s; stop or destroy it first",
		       g->cfg.name, state_str(g), g->owner[0] ? " on " : "", g->owner);
		return;
	}
	store_remove(d, g->cfg.name);
	log_info("registry: guest %s removed", g->cfg.name);
	events_publish(d, g, g->state, GS_STOPPED, "removed");
	guests_unlink(d, g);
	guests_free(g);
	answer(d, from, op, 0, NULL);
}

static void apply_start(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct guest *g = guests_find(d, op->name);
	const char *node;
	struct conn *c;

	if (!g) {
		answer(d, from, op, RC_NOT_FOUND, "unknown guest '%s'", op->name);
		return;
	}
	if (g->desired == DESIRED_RUNNING && g->owner[0] && g->state != GS_FAILED &&
	    g->state != GS_STOPPED) {
		if (op->node[0] && strcmp(op->node, g->owner)) {
			answer(d, from, op, RC_ERROR, "guest '%s' runs on %s; stop it first",
			       g->cfg.name, g->owner);
			return;
		}
		c = waiter(d, from, op); /* already running there: idempotent */
		if (c)
			control_wait(c, g, (1u << GS_RUNNING) | (1u << GS_FAILED) |
					   (1u << GS_STOPPED), TO_CLIENT_WAIT_S);
		return;
	}
	node = op->node[0] ? op->node : place(d, g, NULL);
	if (!node) {
		answer(d, from, op, RC_ERROR, "guest '%s': no host can run it now", g->cfg.name);
		return;
	}
	g->gen++;
	g->desired = DESIRED_RUNNING;
	snprintf(g->owner, sizeof(g->owner), "%s", node);
	save(d, g);
	log_info("registry: guest %s to run on %s (gen %" PRIu64 ")", g->cfg.name, g->owner,
		 g->gen);
	c = waiter(d, from, op);
	if (guest_is_local(g))
		become_owner_start(d, g);
	else
		show_state(d, g, GS_STARTING, "starting");
	if (c)
		control_wait(c, g, (1u << GS_RUNNING) | (1u << GS_FAILED) | (1u << GS_STOPPED) |
				   (1u << GS_PRESERVED), TO_CLIENT_WAIT_S);
}

static void apply_stop(struct hagentd *d, uint32_t from, const Hagent__RegOp *op, bool destroy)
{
	struct guest *g = guests_find(d, op->name);
	char err[300] = "";
	struct conn *c;
	unsigned t = op->timeout_s ? op->timeout_s : TO_STOP_DEFAULT_S;

	if (!g) {
		answer(d, from, op, RC_NOT_FOUND, "unknown guest '%s'", op->name);
		return;
	}
	g->gen++;
	g->desired = DESIRED_STOPPED;
	save(d, g);
	c = waiter(d, from, op);
	if (guest_is_local(g)) {
		int rc = destroy ? supervise_destroy(g, err, sizeof(err))
				 : supervise_stop(g, t, err, sizeof(err));
		if (rc < 0 && c) {
			control_error(c, RC_ERROR, "%s", err);
			return;
		}
	} /* else its owner acts on the same change; nothing runs here */
	if (c)
		control_wait(c, g, (1u << GS_STOPPED) | (1u << GS_FAILED) | (1u << GS_PRESERVED),
			     t + TO_DESTROY_KILL_MS / 1000 + 5);
}

static void apply_state(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct guest *g = guests_find(d, op->name);

	if (!g)
		return;
	if (strcmp(op->node, g->owner) || op->gen < g->gen) {
		log_info("registry: stale report on %s from %s (gen %" PRIu64 " < %" PRIu64
			 " or not its owner %s) refused",
			 op->name, op->node, op->gen, g->gen, g->owner);
		return;
	}
	if (!strcmp(op->node, d->conf.node_name))
		return; /* our own report: the supervisor holds the truth here */
	g->desired = op->desired_running ? DESIRED_RUNNING : DESIRED_STOPPED;
	show_state(d, g, state_from(op->state), op->reason);
	save(d, g);
}

/* A lost node was fenced: its guests may now run elsewhere. */
static void apply_fenced(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct guest *g;

	log_notice("registry: node %s fenced (by node %" PRIu32 "); recovering its guests",
		   op->node, from);
	events_publish_node(d, op->node, "lost", "fenced", "fence agent succeeded");
	guests_for_each(g, d) {
		const char *node;
		if (g->orphan || strcmp(g->owner, op->node))
			continue;
		g->gen++;
		if (g->desired != DESIRED_RUNNING) {
			g->owner[0] = '\0';
			show_state(d, g, GS_STOPPED, "its host was fenced");
			save(d, g);
			continue;
		}
		node = place(d, g, op->node);
		if (!node) {
			g->owner[0] = '\0';
			show_state(d, g, GS_STOPPED, "its host was fenced; no host can run it");
			save(d, g);
			continue;
		}
		snprintf(g->owner, sizeof(g->owner), "%s", node);
		save(d, g);
		log_notice("registry: guest %s recovered from %s to %s (gen %" PRIu64 ")",
			   g->cfg.name, op->node, node, g->gen);
		if (guest_is_local(g)) {
			g->state = GS_STOPPED;
			become_owner_start(d, g);
		} else {
			show_state(d, g, GS_STARTING, "recovering after fencing");
		}
	}
	fence_forget(d, op->node);
}

/* Merge one record of a member's table: the higher generation wins. */
static void merge_record(struct hagentd *d, const Hagent__RegRecord *rec, const char *sender)
{
	struct guestcfg_diags *diags;
	struct guest *g = guests_find(d, rec->name);
	bool was_local;

	if (g && g->orphan)
		return;
	if (!g) {
		diags = calloc(1, sizeof(*diags));
		g = diags ? guests_new(d, (const char *)rec->text.data, rec->text.len, rec->source,
				       diags)
			  : NULL;
		free(diags);
		if (!g || strcmp(g->cfg.name, rec->name)) {
			log_err("registry: synced guest %s cannot be defined here", rec->name);
			guests_free(g);
			return;
		}
		g->gen = 0;
		store_save_def(d, g);
		guests_insert(d, g);
		log_info("registry: guest %s learnt from a peer", g->cfg.name);
	}
	if (rec->gen < g->gen)
		return;
	if (rec->gen == g->gen) {
		/* same change seen; the owner's own table tells its current state */
		if (sender && g->owner[0] && !strcmp(sender, g->owner) && !guest_is_local(g))
			show_state(d, g, state_from(rec->state), rec->reason);
		return;
	}
	was_local = g->owner[0] && guest_is_local(g);
	g->gen = rec->gen;
	g->desired = rec->desired_running ? DESIRED_RUNNING : DESIRED_STOPPED;
	snprintf(g->owner, sizeof(g->owner), "%s", rec->owner);
	save(d, g);
	if (!guest_is_local(g) || !g->owner[0]) {
		if (was_local && g->h) {
			/* The cluster moved it while we were away: never two copies. */
			char err[300];
			log_warn("registry: %s is owned by %s now; destroying the local copy",
				 g->cfg.name, g->owner);
			if (supervise_destroy(g, err, sizeof(err)) < 0)
				log_err("registry: %s", err);
			g->desired = rec->desired_running ? DESIRED_RUNNING : DESIRED_STOPPED;
			save(d, g);
			return;
		}
		if (!g->h)
			show_state(d, g, state_from(rec->state), rec->reason);
	}
}

static void send_sync(struct hagentd *d)
{
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	Hagent__RegRecord *recs, **ptrs;
	struct guest *g;
	size_t i = 0;

	recs = calloc((size_t)d->n_guests + 1, sizeof(*recs));
	ptrs = calloc((size_t)d->n_guests + 1, sizeof(*ptrs));
	if (!recs || !ptrs)
		goto out;
	guests_for_each(g, d) {
		if (g->orphan)
			continue;
		hagent__reg_record__init(&recs[i]);
		recs[i].name = g->cfg.name;
		recs[i].text.data = (uint8_t *)g->text;
		recs[i].text.len = g->text_len;
		recs[i].source = g->cfg.source;
		recs[i].owner = g->owner;
		recs[i].gen = g->gen;
		recs[i].desired_running = g->desired == DESIRED_RUNNING;
		recs[i].state = (char *)state_str(g);
		recs[i].reason = g->reason;
		ptrs[i] = &recs[i];
		i++;
	}
	op.kind = HAGENT__REG_OP__KIND__SYNC;
	op.node = d->conf.node_name;
	op.records = ptrs;
	op.n_records = i;
	if (mcast(d, &op) < 0)
		log_err("registry: cannot send the table (%zu guests): %s", i, strerror(errno));
out:
	free(recs);
	free(ptrs);
}

/* After the sync: run what this host owns and should run. */
static void start_owned(struct hagentd *d)
{
	struct guest *g;

	guests_for_each(g, d)
		if (!g->orphan && g->owner[0] && guest_is_local(g) &&
		    g->desired == DESIRED_RUNNING && !g->h &&
		    (g->state == GS_STOPPED || g->state == GS_STARTING))
			supervise_quorum_regained(g);
}

static void apply(struct hagentd *d, uint32_t from, const uint8_t *msg, size_t len);

static void apply_sync(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct registry *r = reg_of(d);
	size_t i;

	for (i = 0; i < op->n_records; i++)
		merge_record(d, op->records[i], op->node);
	if (r->synced || !r->joined_seen)
		return;
	for (i = 0; i < r->n_awaiting; i++)
		if (r->awaiting[i] == from) {
			r->awaiting[i] = r->awaiting[--r->n_awaiting];
			break;
		}
	if (r->n_awaiting)
		return;
	r->synced = true;
	log_notice("registry: synced with the cluster (%d guests); applying %zu queued changes",
		   d->n_guests, r->n_queue);
	for (i = 0; i < r->n_queue; i++) {
		apply(d, r->queue[i].nodeid, r->queue[i].msg, r->queue[i].len);
		free(r->queue[i].msg);
	}
	free(r->queue);
	r->queue = NULL;
	r->n_queue = 0;
	start_owned(d);
	registry_check_recovery(d);
}

static void apply(struct hagentd *d, uint32_t from, const uint8_t *msg, size_t len)
{
	Hagent__RegOp *op = hagent__reg_op__unpack(NULL, len, msg);

	if (!op) {
		log_warn("registry: malformed change from node %" PRIu32 " (%zu bytes) ignored",
			 from, len);
		return;
	}
	if (op->kind != HAGENT__REG_OP__KIND__SYNC &&
	    (!op->name || !guest_name_valid(op->name)) &&
	    op->kind != HAGENT__REG_OP__KIND__FENCED) {
		log_warn("registry: change without a valid guest name from node %" PRIu32
			 " ignored", from);
		goto out;
	}
	switch (op->kind) {
	case HAGENT__REG_OP__KIND__DEFINE: apply_define(d, from, op); break;
	case HAGENT__REG_OP__KIND__UNDEFINE: apply_undefine(d, from, op); break;
	case HAGENT__REG_OP__KIND__START: apply_start(d, from, op); break;
	case HAGENT__REG_OP__KIND__STOP: apply_stop(d, from, op, false); break;
	case HAGENT__REG_OP__KIND__DESTROY: apply_stop(d, from, op, true); break;
	case HAGENT__REG_OP__KIND__STATE: apply_state(d, from, op); break;
	case HAGENT__REG_OP__KIND__SYNC: apply_sync(d, from, op); break;
	case HAGENT__REG_OP__KIND__FENCED: apply_fenced(d, from, op); break;
	default:
		log_warn("registry: unknown change kind %d from node %" PRIu32 " ignored",
			 op->kind, from);
	}
out:
	hagent__reg_op__free_unpacked(op, NULL);
}

void registry_deliver(struct hagentd *d, uint32_t nodeid, const void *msg, size_t len)
{
	struct registry *r = reg_of(d);
	struct frame_reader fr;
	const uint8_t *payload;
	size_t plen;
	uint8_t type;

	if (!r)
		return;
	frame_reader_init(&fr, REG_MSG_MAX);
	if (frame_reader_feed(&fr, msg, len) < 0 ||
	    frame_reader_next(&fr, &type, &payload, &plen) != 1 || type != FRAME_REGOP ||
	    FRAME_HDR + plen != len) {
		log_warn("registry: garbage from node %" PRIu32 " (%zu bytes) ignored", nodeid, len);
		frame_reader_free(&fr);
		return;
	}
	if (!r->synced) {
		/* SYNCs are merged now; everything else waits for the table */
		Hagent__RegOp *op = hagent__reg_op__unpack(NULL, plen, payload);
		bool is_sync = op && op->kind == HAGENT__REG_OP__KIND__SYNC;
		if (op)
			hagent__reg_op__free_unpacked(op, NULL);
		if (!is_sync) {
			struct queued *q;
			if (r->n_queue == REG_QUEUE_MAX) {
				log_err("registry: too many changes before sync; dropping one");
				frame_reader_free(&fr);
				return;
			}
			q = realloc(r->queue, (r->n_queue + 1) * sizeof(*q));
			if (q) {
				r->queue = q;
				q[r->n_queue].nodeid = nodeid;
				q[r->n_queue].msg = malloc(plen ? plen : 1);
				q[r->n_queue].len = plen;
				if (q[r->n_queue].msg) {
					memcpy(q[r->n_queue].msg, payload, plen);
					r->n_queue++;
				}
			}
			frame_reader_free(&fr);
			return;
		}
	}
	apply(d, nodeid, payload, plen);
	frame_reader_free(&fr);
	registry_check_recovery(d);
}

void registry_confchg(struct hagentd *d, const uint32_t *members, size_t n_members,
		      const uint32_t *joined, size_t n_joined, bool local_joined)
{
	struct registry *r = reg_of(d);
	size_t i, j;

	if (!r)
		return;
	r->n_members = n_members < REG_MAX_SENDERS ? n_members : REG_MAX_SENDERS;
	memcpy(r->members, members, r->n_members * sizeof(uint32_t));
	if (local_joined)
		r->joined_seen = true;
	if (n_joined && r->joined_seen) {
		/* Members joined (a host, or a whole partition healing): every
		 * member, old or new, merges every member's table before it acts
		 * again, so no side starts a guest from a table the others have
		 * moved on from. */
		r->synced = false;
		/* One table per node: hagentd is one process per host, and another
		 * process in the group (a tool, a confused peer) sends none. */
		r->n_awaiting = 0;
		for (i = 0; i < r->n_members; i++) {
			for (j = 0; j < r->n_awaiting && r->awaiting[j] != r->members[i]; j++)
				;
			if (j == r->n_awaiting)
				r->awaiting[r->n_awaiting++] = r->members[i];
		}
	} else if (!r->synced) {
		/* a member we waited for left: stop waiting for it */
		for (i = 0; i < r->n_awaiting;) {
			for (j = 0; j < r->n_members && r->members[j] != r->awaiting[i]; j++)
				;
			if (j == r->n_members)
				r->awaiting[i] = r->awaiting[--r->n_awaiting];
			else
				i++;
		}
	}
	if (n_joined)
		send_sync(d);
	if (!r->synced && r->joined_seen && r->n_awaiting == 0) {
		r->synced = true;
		start_owned(d);
	}
	registry_check_recovery(d);
}

void registry_report(struct hagentd *d, struct guest *g)
{
	Hagent__RegOp op = HAGENT__REG_OP__INIT;

	if (!reg_of(d) || g->orphan || !g->owner[0] || !guest_is_local(g))
		return;
	op.kind = HAGENT__REG_OP__KIND__STATE;
	op.name = g->cfg.name;
	op.node = d->conf.node_name;
	op.gen = g->gen;
	op.state = (char *)state_str(g);
	op.reason = g->reason;
	op.desired_running = g->desired == DESIRED_RUNNING;
	if (mcast(d, &op) < 0)
		log_warn("registry: cannot report %s: %s", g->cfg.name, strerror(errno));
}

/* --- recovery ------------------------------------------------------------ */

static void fenced_cb(struct hagentd *d, const char *node, bool ok, const char *why)
{
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	struct registry *r = reg_of(d);

	if (!r)
		return;
	if (!ok) {
		snprintf(r->note, sizeof(r->note), "fencing %s failed: %s; retrying", node, why);
		log_err("registry: %s", r->note);
		return;
	}
	op.kind = HAGENT__REG_OP__KIND__FENCED;
	op.node = (char *)node;
	if (mcast(d, &op) < 0)
		log_err("registry: cannot announce that %s is fenced: %s", node, strerror(errno));
	r->note[0] = '\0';
}

void registry_check_recovery(struct hagentd *d)
{
	struct registry *r = reg_of(d);
	struct guest *g;

	if (!r || !r->synced || !cluster_is_fencer(d))
		return;
	/* Owners of guests meant to run that are out of the membership: each is
	 * fenced once (fence.c keeps the ones in progress), then FENCED moves its
	 * guests.  Nothing of a lost node starts before that. */
	guests_for_each(g, d) {
		if (g->orphan || !g->owner[0] || g->desired != DESIRED_RUNNING ||
		    cluster_is_member(d, g->owner))
			continue;
		if (!d->conf.fence_agent[0]) {
			snprintf(r->note, sizeof(r->note),
				 "%s is lost and no fence_agent is configured: its guests wait",
				 g->owner);
			continue;
		}
		fence_node(d, g->owner, fenced_cb);
	}
}

int registry_create(struct hagentd *d)
{
	struct registry *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	r->d = d;
	d->registry = r;
	return 0;
}

void registry_destroy(struct hagentd *d)
{
	struct registry *r = reg_of(d);
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n_queue; i++)
		free(r->queue[i].msg);
	free(r->queue);
	free(r);
	d->registry = NULL;
}

#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cluster.h"
#include "agent/conf.h"
#include "agent/control.h"
#include "agent/fence.h"
#include "agent/guests.h"
#include "agent/peerfence.h"
#include "agent/placement.h"
#include "agent/registry.h"
#include "agent/storage.h"
#include "agent/requests.h"
#include "agent/store.h"
#include "agent/supervise.h"
#include "agent/timeouts.h"
#include "agent/watchdog.h"
#include "lib/log.h"
#include "migrate/evacuate.h"
#include "migrate/job.h"
#include "proto/frame.h"

#define REG_MSG_MAX (1u << 20)   /* one SYNC of a large table fits */
#define REG_QUEUE_MAX 4096       /* changes a joiner holds until synced */
#define REG_MAX_SENDERS 64
/* The registry's protocol: a member speaking another version is not merged
 * with (1: the first release, which sent no version; 2: node capacities,
 * watchdogs, tombstones, budget moves). */
#define REGISTRY_VERSION 2

struct queued {
	uint32_t nodeid;
	uint8_t *msg;
	size_t len;
};

struct registry {
	struct hagentd *d;
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
	/* our table could not be sent (corosync's flow control while the ring
	 * re-forms): every member waits for it, so it is sent again */
	qb_loop_timer_handle sync_retry;
	bool sync_retry_armed;
	/* what each member announced in its SYNC */
	struct reg_node {
		uint32_t id;
		uint64_t capacity_mb;
		uint32_t watchdog_s;
		uint32_t version;
		bool incompatible;
		char mig_addr[64];   /* its migration endpoint ("" = its ring0 address) */
		uint32_t mig_port;
		bool standby;        /* takes no guest; its own were migrated away */
		bool evacuating;
		char evacuation[256]; /* outcome of its last evacuation */
		char storage[2048];  /* its storage, a line per item (STORAGE) */
		char unusable[4096]; /* "GUEST\tREASON\n" per guest it cannot run */
	} nodes[REG_MAX_SENDERS];
	size_t n_nodes;
	/* undefined guests: a host that was away must not bring them back */
	struct tombstone {
		char name[GUEST_NAME_MAX];
		uint64_t gen;
	} *tombs;
	size_t n_tombs;
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

static struct reg_node *node_info(struct registry *r, uint32_t id, bool create)
{
	size_t i;

	for (i = 0; i < r->n_nodes; i++)
		if (r->nodes[i].id == id)
			return &r->nodes[i];
	if (!create || r->n_nodes == REG_MAX_SENDERS)
		return NULL;
	r->nodes[r->n_nodes] = (struct reg_node){ .id = id };
	return &r->nodes[r->n_nodes++];
}

static bool incompatible(struct registry *r, uint32_t id)
{
	struct reg_node *n = node_info(r, id, false);

	return n && n->incompatible;
}

size_t registry_member_ids(struct hagentd *d, uint32_t *ids, size_t max)
{
	struct registry *r = reg_of(d);
	size_t i, j, n = 0;

	if (!r)
		return 0;
	for (i = 0; i < r->n_members && n < max; i++) { /* distinct, compatible nodes */
		for (j = 0; j < n && ids[j] != r->members[i]; j++)
			;
		if (j == n && !incompatible(r, r->members[i]))
			ids[n++] = r->members[i];
	}
	return n;
}

size_t registry_members(struct hagentd *d)
{
	uint32_t ids[REG_MAX_SENDERS];

	return registry_member_ids(d, ids, REG_MAX_SENDERS);
}

uint64_t registry_node_capacity(struct hagentd *d, uint32_t id)
{
	struct reg_node *n = reg_of(d) ? node_info(reg_of(d), id, false) : NULL;

	return n ? n->capacity_mb : 0;
}

unsigned registry_node_watchdog(struct hagentd *d, const char *name)
{
	struct reg_node *n;
	uint32_t id;

	if (!reg_of(d) || !cluster_node_id(d, name, &id))
		return 0;
	n = node_info(reg_of(d), id, false);
	return n ? n->watchdog_s : 0;
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
	op->req_id = c ? control_pending_new(c) : 0;
	if (mcast(d, op) < 0) {
		if (c)
			control_pending(c, 0);
		return -1;
	}
	return 0;
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

void registry_answer(struct hagentd *d, uint32_t from, const Hagent__RegOp *op, int status,
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

struct conn *registry_waiter(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
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

	g->owner_state = to;
	snprintf(g->owner_reason, sizeof(g->owner_reason), "%s", reason ? reason : "");
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

/* --- tombstones ----------------------------------------------------------- */

static struct tombstone *tomb_find(struct registry *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n_tombs; i++)
		if (!strcmp(r->tombs[i].name, name))
			return &r->tombs[i];
	return NULL;
}

static void tomb_set(struct registry *r, const char *name, uint64_t gen, bool persist)
{
	struct tombstone *t = tomb_find(r, name);

	if (!t) {
		t = realloc(r->tombs, (r->n_tombs + 1) * sizeof(*t));
		if (!t) {
			log_err("registry: out of memory keeping the removal of %s", name);
			return;
		}
		r->tombs = t;
		t = &r->tombs[r->n_tombs++];
		snprintf(t->name, sizeof(t->name), "%s", name);
		t->gen = 0;
	}
	if (gen <= t->gen)
		return;
	t->gen = gen;
	if (persist && store_save_tomb(r->d, name, gen) < 0)
		log_err("registry: cannot record the removal of %s: %s", name, strerror(errno));
}

static void tomb_drop(struct registry *r, const char *name)
{
	struct tombstone *t = tomb_find(r, name);

	if (!t)
		return;
	*t = r->tombs[--r->n_tombs];
	store_remove_tomb(r->d, name);
}

static void tomb_loaded(void *arg, const char *name, uint64_t gen)
{
	tomb_set(arg, name, gen, false);
}

/* Drop a guest from this host's table and store (it is stopped here). */
static void forget_guest(struct hagentd *d, struct guest *g, const char *why)
{
	store_remove(d, g->cfg.name);
	log_info("registry: guest %s removed (%s)", g->cfg.name, why);
	events_publish(d, g, g->state, GS_STOPPED, "removed");
	guests_unlink(d, g);
	guests_free(g);
}

static void apply_define(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct tombstone *t;
	struct guestcfg_diags *diags = calloc(1, sizeof(*diags));
	struct guest *g = guests_find(d, op->name);

	if (g) {
		registry_answer(d, from, op, RC_EXISTS, "guest '%s' is already defined (from %s)", op->name,
		       g->cfg.source);
		goto out;
	}
	g = diags ? guests_new(d, (const char *)op->text.data, op->text.len, op->source, diags)
		  : NULL;
	if (!g || strcmp(g->cfg.name, op->name)) {
		/* validated by the sender; a host that cannot parse it says so */
		log_err("registry: guest %s cannot be defined on this host", op->name);
		guests_free(g);
		registry_answer(d, from, op, RC_INVALID, "guest '%s' is invalid on %s", op->name,
		       d->conf.node_name);
		goto out;
	}
	/* defined again after a remove: newer than the tombstone */
	t = tomb_find(reg_of(d), op->name);
	g->gen = t ? t->gen + 1 : 1;
	tomb_drop(reg_of(d), op->name);
	if (store_save_def(d, g) < 0 || store_save_state(d, g) < 0)
		log_err("registry: cannot store %s: %s (kept in memory)", g->cfg.name,
			strerror(errno));
	guests_insert(d, g);
	log_info("registry: guest %s defined (from %s)", g->cfg.name, g->cfg.source);
	events_publish(d, g, GS_STOPPED, GS_STOPPED, "defined");
	registry_answer(d, from, op, 0, NULL);
out:
	free(diags);
}

static void apply_undefine(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct guest *g = guests_find(d, op->name);

	if (!g) {
		registry_answer(d, from, op, RC_NOT_FOUND, "unknown guest '%s'", op->name);
		return;
	}
	if (g->desired == DESIRED_RUNNING || g->h ||
	    (g->state != GS_STOPPED && g->state != GS_FAILED)) {
		registry_answer(d, from, op, RC_ERROR, "guest '%s' is %s%s%s; stop or destroy it first",
		       g->cfg.name, state_str(g), g->owner[0] ? " on " : "", g->owner);
		return;
	}
	tomb_set(reg_of(d), g->cfg.name, g->gen + 1, true);
	forget_guest(d, g, "undefined");
	registry_answer(d, from, op, 0, NULL);
}

static void node_names(struct hagentd *d, char *out, size_t len)
{
	const struct cluster_view *v = cluster_view(d);
	size_t n = 0;
	int i;

	out[0] = '\0';
	for (i = 0; v && i < v->n_nodes && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ", " : "", v->nodes[i].name);
}

static void apply_start(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct guest *g = guests_find(d, op->name);
	const char *node;
	char why[512];
	struct conn *c;

	if (!g) {
		registry_answer(d, from, op, RC_NOT_FOUND, "unknown guest '%s'", op->name);
		return;
	}
	if (g->desired == DESIRED_RUNNING && g->owner[0] && g->state != GS_FAILED &&
	    g->state != GS_STOPPED) {
		if (!cluster_is_member(d, g->owner)) {
			/* never a second copy: only the fencing of its host frees it */
			registry_answer(d, from, op, RC_ERROR,
					"guest '%s' is on %s, which is lost: it can start elsewhere "
					"once %s is fenced", g->cfg.name, g->owner, g->owner);
			return;
		}
		if (op->node[0] && strcmp(op->node, g->owner)) {
			registry_answer(d, from, op, RC_ERROR, "guest '%s' runs on %s; stop it first",
			       g->cfg.name, g->owner);
			return;
		}
		c = registry_waiter(d, from, op); /* already running there: idempotent */
		if (c)
			control_wait(c, g, (1u << GS_RUNNING) | (1u << GS_FAILED) |
					   (1u << GS_STOPPED), TO_CLIENT_WAIT_S);
		return;
	}
	if (op->node[0]) {
		uint32_t id;
		if (!cluster_node_id(d, op->node, &id)) {
			char names[256];
			node_names(d, names, sizeof(names));
			registry_answer(d, from, op, RC_NOT_FOUND, "unknown node '%s' (the cluster's nodes: %s)",
			       op->node, names);
			return;
		}
		if (!placement_fits(d, g, op->node, why, sizeof(why))) {
			registry_answer(d, from, op, RC_ERROR, "cannot start '%s' on %s: %s", g->cfg.name,
			       op->node, why);
			return;
		}
		node = op->node;
	} else {
		node = placement_choose(d, g, NULL, false, why, sizeof(why));
	}
	if (!node) {
		registry_answer(d, from, op, RC_ERROR, "cannot start '%s': %s", g->cfg.name, why);
		return;
	}
	g->spent_on[0] = '\0'; /* a start by the user gives every host a fresh budget */
	g->reg_failed = false;
	g->gen++;
	g->desired = DESIRED_RUNNING;
	snprintf(g->owner, sizeof(g->owner), "%s", node);
	save(d, g);
	log_info("registry: guest %s to run on %s (gen %" PRIu64 ")", g->cfg.name, g->owner,
		 g->gen);
	c = registry_waiter(d, from, op);
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
		registry_answer(d, from, op, RC_NOT_FOUND, "unknown guest '%s'", op->name);
		return;
	}
	g->gen++;
	g->desired = DESIRED_STOPPED;
	save(d, g);
	c = registry_waiter(d, from, op);
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

/* Its restart budget is spent on its owner: the next allowed host that has
 * not spent one gets it (foundation behaviour on a single host: it stays
 * failed).  Applied in order everywhere, so everyone picks the same host. */
static void move_spent(struct hagentd *d, struct guest *g, const char *owner)
{
	char why[512];
	const char *node;

	placement_mark_spent(g, owner);
	node = placement_choose(d, g, NULL, true, why, sizeof(why));
	if (!node) {
		log_notice("registry: %s spent its restart budget on %s and stays failed: %s",
			   g->cfg.name, owner, why);
		return;
	}
	g->gen++;
	g->reg_failed = false;
	snprintf(g->owner, sizeof(g->owner), "%s", node);
	save(d, g);
	log_notice("registry: %s spent its restart budget on %s; moving it to %s (gen %" PRIu64
		   ")", g->cfg.name, owner, node, g->gen);
	if (guest_is_local(g)) {
		g->state = GS_STOPPED;
		become_owner_start(d, g);
	} else {
		char reason[160];
		snprintf(reason, sizeof(reason), "moving: restart budget spent on %s", owner);
		show_state(d, g, GS_STARTING, reason);
	}
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
	g->reg_failed = state_from(op->state) == GS_FAILED;
	if (strcmp(op->node, d->conf.node_name)) { /* ours: the supervisor holds the truth */
		g->desired = op->desired_running ? DESIRED_RUNNING : DESIRED_STOPPED;
		show_state(d, g, state_from(op->state), op->reason);
		save(d, g);
	}
	if (g->reg_failed && op->budget_spent && op->desired_running)
		move_spent(d, g, op->node);
}

/* A lost node was fenced: its guests may now run elsewhere, the highest
 * ha_priority first (they get the room when memory is short). */
static void apply_fenced(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct guest *g, **list = calloc((size_t)d->n_guests + 1, sizeof(*list));
	size_t n = 0, i;

	log_notice("registry: node %s fenced (by node %" PRIu32 ": %s); recovering its guests",
		   op->node, from, op->reason ? op->reason : "");
	peerfence_fenced(d, op->node); /* DRBD on a survivor may promote now */
	events_publish_node(d, op->node, "lost", "fenced",
			    op->reason && op->reason[0] ? op->reason : "fenced");
	if (!strcmp(op->node, d->conf.node_name)) {
		/* We are declared fenced while we still run: never a second copy. */
		guests_for_each(g, d) {
			char err[300];
			if (!g->h)
				continue;
			log_crit("registry: this host was declared fenced; destroying %s",
				 g->cfg.name);
			if (supervise_destroy(g, err, sizeof(err)) < 0)
				log_err("registry: %s", err);
		}
	}
	if (!list) {
		log_crit("registry: out of memory recovering the guests of %s", op->node);
		return;
	}
	guests_for_each(g, d)
		if (!g->orphan && !strcmp(g->owner, op->node))
			list[n++] = g;
	qsort(list, n, sizeof(*list), placement_order);
	for (i = 0; i < n; i++) {
		const char *node;
		char why[512];

		g = list[i];
		g->gen++;
		if (g->cfg.managed_by_pacemaker && g->desired == DESIRED_RUNNING) {
			/* Pacemaker fences too and then starts it through its agent. */
			log_notice("registry: guest %s of fenced %s is Pacemaker's: left for it to "
				   "place", g->cfg.name, op->node);
			g->owner[0] = '\0';
			g->desired = DESIRED_STOPPED;
			g->reg_failed = false;
			show_state(d, g, GS_STOPPED,
				   "its host was fenced; Pacemaker decides where it runs");
			save(d, g);
			continue;
		}
		if (g->desired != DESIRED_RUNNING) {
			g->owner[0] = '\0';
			show_state(d, g, GS_STOPPED, "its host was fenced");
			save(d, g);
			continue;
		}
		/* its owner's failure (and usage) went with the host */
		g->reg_failed = false;
		node = placement_choose(d, g, op->node, false, why, sizeof(why));
		if (!node) {
			char reason[sizeof(g->reason)];
			g->owner[0] = '\0';
			snprintf(reason, sizeof(reason), "its host was fenced; %.*s",
				 (int)sizeof(reason) - 32, why);
			log_err("registry: guest %s cannot be recovered from %s: %s", g->cfg.name,
				op->node, why);
			show_state(d, g, GS_STOPPED, reason);
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
	free(list);
	fence_forget(d, op->node);
}

/* Merge one record of a member's table: the higher generation wins. */
static void merge_record(struct hagentd *d, const Hagent__RegRecord *rec, const char *sender)
{
	struct guestcfg_diags *diags;
	struct guest *g = guests_find(d, rec->name);
	struct tombstone *t = tomb_find(reg_of(d), rec->name);
	bool was_local;

	if (g && g->orphan)
		return;
	if (rec->deleted) {
		/* removed while this host was away */
		tomb_set(reg_of(d), rec->name, rec->gen, true);
		if (!g || g->gen >= rec->gen)
			return;
		if (g->h) {
			char err[300];
			log_warn("registry: %s was removed from the cluster but runs here: destroying it",
				 g->cfg.name);
			if (supervise_destroy(g, err, sizeof(err)) < 0)
				log_err("registry: %s", err);
			return;
		}
		forget_guest(d, g, "removed from the cluster while this host was away");
		return;
	}
	if (t && t->gen >= rec->gen) {
		log_info("registry: %s was removed (gen %" PRIu64 "); %s's older copy (gen %" PRIu64
			 ") is not brought back", rec->name, t->gen, sender ? sender : "a peer",
			 rec->gen);
		return;
	}
	if (t)
		tomb_drop(reg_of(d), rec->name); /* defined again since */
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
	/* a migration under way: a joiner learns it from the tables (it is never
	 * one of the job's ends: its own earlier hagentd's departure aborted any) */
	if (rec->mig && rec->mig->job && rec->mig->job[0] && !reg_of(d)->synced &&
	    rec->gen >= g->gen)
		migrate_merge_job(d, g, rec->mig);
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
	g->reg_failed = !strcmp(rec->state, gstate_name(GS_FAILED));
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

#define SYNC_RETRY_MS 200

static void send_sync(struct hagentd *d);

static void sync_retry_cb(void *arg)
{
	struct hagentd *d = arg;
	struct registry *r = reg_of(d);

	if (!r)
		return;
	r->sync_retry_armed = false;
	send_sync(d);
}

static void send_sync(struct hagentd *d)
{
	struct registry *r = reg_of(d);
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	size_t k;
	Hagent__RegRecord *recs, **ptrs;
	Hagent__MigInfo *migs;
	struct guest *g;

	if (r->sync_retry_armed) { /* this one supersedes it */
		qb_loop_timer_del(d->loop, r->sync_retry);
		r->sync_retry_armed = false;
	}
	size_t i = 0;

	recs = calloc((size_t)d->n_guests + r->n_tombs + 1, sizeof(*recs));
	ptrs = calloc((size_t)d->n_guests + r->n_tombs + 1, sizeof(*ptrs));
	migs = calloc((size_t)d->n_guests + 1, sizeof(*migs));
	if (!recs || !ptrs || !migs)
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
		if (g->mig.job[0]) {
			hagent__mig_info__init(&migs[i]);
			migrate_fill_info(d, g, &migs[i]);
			recs[i].mig = &migs[i];
		}
		ptrs[i] = &recs[i];
		i++;
	}
	for (k = 0; k < r->n_tombs; k++) {
		hagent__reg_record__init(&recs[i]);
		recs[i].name = r->tombs[k].name;
		recs[i].gen = r->tombs[k].gen;
		recs[i].deleted = true;
		recs[i].state = (char *)gstate_name(GS_STOPPED);
		ptrs[i] = &recs[i];
		i++;
	}
	op.kind = HAGENT__REG_OP__KIND__SYNC;
	op.node = d->conf.node_name;
	op.version = REGISTRY_VERSION;
	op.capacity_mb = (uint64_t)d->conf.guest_memory_mb;
	op.watchdog_s = watchdog_timeout(d);
	op.mig_address = d->conf.migration_address;
	op.mig_port = (uint32_t)d->conf.migration_port;
	op.standby = d->standby;
	op.evacuation = d->evacuation;
	storage_published(d, (const char **)&op.storage, (const char **)&op.unusable);
	op.records = ptrs;
	op.n_records = i;
	if (mcast(d, &op) < 0) {
		int err = errno;
		r->sync_retry_armed =
			err == EAGAIN &&
			qb_loop_timer_add(d->loop, QB_LOOP_HIGH, SYNC_RETRY_MS * 1000000ULL, d,
					  sync_retry_cb, &r->sync_retry) == 0;
		log_err("registry: cannot send the table (%zu guests): %s%s", i, strerror(err),
			r->sync_retry_armed ? "; sending it again shortly" : "");
	}
out:
	free(recs);
	free(ptrs);
	free(migs);
}

/* After the sync: run what this host owns and should run. */
static void start_owned(struct hagentd *d)
{
	struct guest *g;

	guests_for_each(g, d) {
		if (g->incoming_left) {
			g->incoming_left = false;
			if (g->h || g->orphan || !guest_is_local(g) || g->desired != DESIRED_RUNNING ||
			    g->mig.job[0] || supervise_take_incoming(g) < 0)
				g->ops->discard_incoming(&d->drv, g->cfg.name);
		}
		if (g->resume_after_sync && g->h && !g->orphan && guest_is_local(g) &&
		    g->desired == DESIRED_RUNNING && !g->mig.job[0]) {
			log_notice("registry: %s still runs here (its migration never committed): "
				   "resuming it", g->cfg.name);
			if (g->ops->resume(g->h) < 0)
				log_err("registry: cannot resume %s: %s", g->cfg.name,
					strerror(errno));
		}
		g->resume_after_sync = false;
		if (!g->orphan && g->owner[0] && guest_is_local(g) &&
		    g->desired == DESIRED_RUNNING && !g->h &&
		    (g->state == GS_STOPPED || g->state == GS_STARTING))
			supervise_quorum_regained(g);
	}
}

static void apply(struct hagentd *d, uint32_t from, const uint8_t *msg, size_t len);

static void apply_sync(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct registry *r = reg_of(d);
	struct reg_node *n = node_info(r, from, true);
	size_t i;

	if (n) {
		n->version = op->version;
		n->capacity_mb = op->capacity_mb;
		n->watchdog_s = op->watchdog_s;
		n->incompatible = op->version != REGISTRY_VERSION;
		snprintf(n->mig_addr, sizeof(n->mig_addr), "%s", op->mig_address ? op->mig_address : "");
		n->mig_port = op->mig_port;
		n->standby = op->standby;
		snprintf(n->evacuation, sizeof(n->evacuation), "%s",
			 op->evacuation ? op->evacuation : "");
		snprintf(n->storage, sizeof(n->storage), "%s", op->storage ? op->storage : "");
		snprintf(n->unusable, sizeof(n->unusable), "%s", op->unusable ? op->unusable : "");
	}
	if (n && n->incompatible) {
		/* Not merged: its records might mean something else.  It counts
		 * as answered (no stall), but not as a member for quorum checks,
		 * and its changes are ignored until it runs our version. */
		snprintf(r->note, sizeof(r->note),
			 "node %s speaks registry version %" PRIu32 ", this host %d: its table and "
			 "changes are ignored until both run the same hagent",
			 op->node ? op->node : "?", op->version, REGISTRY_VERSION);
		log_err("registry: %s", r->note);
	} else {
		for (i = 0; i < op->n_records; i++)
			merge_record(d, op->records[i], op->node);
	}
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

/* hactl node standby|online NODE, and the standby node's "evacuated". */
/* This host's own guests that its storage can no longer run (an iSCSI
 * session failed, a VG or LV gone, DRBD no longer UpToDate): a running one
 * is migrated live to a host where its storage is usable (it keeps running;
 * its memory needs no disk); one with no process here (failed, waiting to
 * restart) is handed to such a host the way a spent restart budget is.  A
 * guest failed with its process kept (an I/O error) stays: that process
 * still holds the disk.  Acted on when the report changes. */
static void storage_lost(struct hagentd *d)
{
	struct guest *g;

	guests_for_each(g, d) {
		char why[512], r[256];
		const char *dst;

		if (g->orphan || strcmp(g->owner, d->conf.node_name) ||
		    g->desired != DESIRED_RUNNING || g->mig.job[0] || g->cfg.managed_by_pacemaker ||
		    !registry_storage_unusable(d, d->conf.node_name, g->cfg.name, r, sizeof(r)))
			continue;
		if (g->state == GS_RUNNING) {
			dst = placement_choose(d, g, d->conf.node_name, false, why, sizeof(why));
			if (!dst) {
				log_warn("registry: %s: its storage here failed (%s); no host to move it "
					 "to: %s", g->cfg.name, r, why);
				continue;
			}
			log_notice("registry: %s: its storage here failed (%s): migrating it to %s",
				   g->cfg.name, r, dst);
			if (migrate_request_own(d, g, dst) < 0)
				log_err("registry: cannot ask for the migration of %s: %s", g->cfg.name,
					strerror(errno));
		} else if (!g->h && (g->state == GS_FAILED || g->state == GS_BACKOFF ||
				     g->state == GS_STOPPED)) {
			log_notice("registry: %s: its storage here failed (%s): it may start elsewhere",
				   g->cfg.name, r);
			g->state = GS_FAILED;
			g->budget_spent = true;
			registry_report(d, g); /* everyone moves it (move_spent) */
		}
	}
}

/* A member's storage as it sees it: placement keeps guests off a host
 * whose storage for them is unusable.  Only the member itself says so. */
static void apply_storage(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct reg_node *n = node_info(reg_of(d), from, true);
	const char *name = cluster_node_name(d, from);

	if (!n || !name || !op->node || strcmp(op->node, name)) {
		log_warn("registry: storage report for '%.64s' from node %" PRIu32 " ignored",
			 op->node ? op->node : "", from);
		return;
	}
	if (strcmp(n->unusable, op->unusable ? op->unusable : ""))
		log_notice("registry: %s: storage keeps off it: %s", name,
			   op->unusable && op->unusable[0] ? op->unusable : "nothing");
	snprintf(n->storage, sizeof(n->storage), "%s", op->storage ? op->storage : "");
	snprintf(n->unusable, sizeof(n->unusable), "%s", op->unusable ? op->unusable : "");
	registry_check_recovery(d); /* a guest waiting for a usable host may have one now */
	if (from == cluster_local_id(d) && cluster_may_start(d))
		storage_lost(d);
}

static void apply_node_mode(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct reg_node *n;
	const char *st = op->state ? op->state : "";
	uint32_t id;

	if (!op->node || !cluster_node_id(d, op->node, &id) ||
	    !(n = node_info(reg_of(d), id, true))) {
		registry_answer(d, from, op, RC_NOT_FOUND, "unknown node '%s'",
				op->node ? op->node : "");
		return;
	}
	if (!strcmp(st, "evacuated")) {
		n->evacuating = false;
		snprintf(n->evacuation, sizeof(n->evacuation), "%s", op->reason ? op->reason : "");
		if (!strcmp(op->node, d->conf.node_name))
			snprintf(d->evacuation, sizeof(d->evacuation), "%s", n->evacuation);
		log_notice("registry: %s evacuated: %s", op->node, n->evacuation);
		events_publish_node(d, op->node, "evacuating", "standby", n->evacuation);
		return;
	}
	if (strcmp(st, "standby") && strcmp(st, "online")) {
		log_warn("registry: node mode '%.32s' for %s ignored", st, op->node);
		return;
	}
	if (!registry_member(d, op->node)) {
		registry_answer(d, from, op, RC_ERROR, "node %s is down (no hagentd in the group)",
				op->node);
		return;
	}
	n->standby = !strcmp(st, "standby");
	n->evacuating = n->standby;
	if (n->standby)
		n->evacuation[0] = '\0';
	events_publish_node(d, op->node, n->standby ? "online" : "standby",
			    n->standby ? "evacuating" : "online", "by the operator");
	registry_answer(d, from, op, 0, NULL);
	if (!strcmp(op->node, d->conf.node_name)) {
		d->standby = n->standby;
		if (store_save_standby(d) < 0)
			log_err("registry: cannot record the standby mode: %s", strerror(errno));
		if (d->standby)
			evacuate_begin(d);
		else
			evacuate_cancel(d);
	}
}

static void apply(struct hagentd *d, uint32_t from, const uint8_t *msg, size_t len)
{
	Hagent__RegOp *op = hagent__reg_op__unpack(NULL, len, msg);

	if (!op) {
		log_warn("registry: malformed change from node %" PRIu32 " (%zu bytes) ignored",
			 from, len);
		return;
	}
	if (op->kind != HAGENT__REG_OP__KIND__SYNC && incompatible(reg_of(d), from)) {
		log_warn("registry: change from node %" PRIu32 " (another registry version) ignored",
			 from);
		goto out;
	}
	if (op->kind != HAGENT__REG_OP__KIND__SYNC &&
	    (!op->name || !guest_name_valid(op->name)) &&
	    op->kind != HAGENT__REG_OP__KIND__FENCED && op->kind != HAGENT__REG_OP__KIND__NODE_MODE &&
	    op->kind != HAGENT__REG_OP__KIND__STORAGE && op->kind != HAGENT__REG_OP__KIND__DRBD_OUTDATE &&
	    op->kind != HAGENT__REG_OP__KIND__DRBD_OUTDATED) {
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
	case HAGENT__REG_OP__KIND__MIGRATE:
	case HAGENT__REG_OP__KIND__MIG_PHASE: migrate_apply(d, from, op); break;
	case HAGENT__REG_OP__KIND__NODE_MODE: apply_node_mode(d, from, op); break;
	case HAGENT__REG_OP__KIND__STORAGE: apply_storage(d, from, op); break;
	case HAGENT__REG_OP__KIND__DRBD_OUTDATE:
	case HAGENT__REG_OP__KIND__DRBD_OUTDATED: peerfence_apply(d, from, op); break;
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
	migrate_members_changed(d);
	peerfence_members_changed(d);
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
	op.budget_spent = g->state == GS_FAILED && g->budget_spent;
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
	op.reason = (char *)why;
	if (mcast(d, &op) < 0)
		log_err("registry: cannot announce that %s is fenced: %s", node, strerror(errno));
	r->note[0] = '\0';
}

/* Fence one lost owner: its own agent (fence_nodes), else fence_agent, else
 * the watchdog it announced; with none, its guests wait and status says so. */
static void fence_lost(struct hagentd *d, struct registry *r, const char *node)
{
	const struct cluster_view *v = cluster_view(d);
	const char *agent, *args;
	unsigned wd;

	if (conf_fence_for(&d->conf, node, &agent, &args)) {
		fence_node(d, node, agent, args, fenced_cb);
		return;
	}
	wd = registry_node_watchdog(d, node);
	if (wd && v) {
		uint64_t since;
		bool by_wd;
		if (!fence_in_progress(d, node, &since, &by_wd))
			snprintf(r->note, sizeof(r->note),
				 "%s is lost: waiting for its watchdog (%u s) to self-fence it", node,
				 wd);
		fence_wait_watchdog(d, node, TO_WATCHDOG_WAIT_MS((uint64_t)wd, v->consensus_ms),
				    fenced_cb);
		return;
	}
	snprintf(r->note, sizeof(r->note),
		 "%s is lost and has neither a fence agent nor a watchdog: its guests wait", node);
}

void registry_fence_lost(struct hagentd *d, const char *node)
{
	struct registry *r = reg_of(d);

	if (r && !cluster_is_member(d, node))
		fence_lost(d, r, node);
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
		fence_lost(d, r, g->owner);
	}
}

int registry_create(struct hagentd *d)
{
	struct registry *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	r->d = d;
	d->registry = r;
	store_load_tombs(d, tomb_loaded, r);
	return 0;
}

void registry_destroy(struct hagentd *d)
{
	struct registry *r = reg_of(d);
	size_t i;

	if (!r)
		return;
	if (r->sync_retry_armed)
		qb_loop_timer_del(d->loop, r->sync_retry);
	for (i = 0; i < r->n_queue; i++)
		free(r->queue[i].msg);
	free(r->queue);
	free(r->tombs);
	free(r);
	d->registry = NULL;
}

/* --- for migrate/job.c ------------------------------------------------------ */

int registry_mcast(struct hagentd *d, Hagent__RegOp *op)
{
	return reg_of(d) ? mcast(d, op) : -1;
}

void registry_save(struct hagentd *d, struct guest *g)
{
	save(d, g);
}

void registry_show(struct hagentd *d, struct guest *g, enum gstate to, const char *reason)
{
	show_state(d, g, to, reason);
}

bool registry_member(struct hagentd *d, const char *name)
{
	uint32_t ids[REG_MAX_SENDERS], id;
	size_t n, i;

	if (!reg_of(d) || !cluster_node_id(d, name, &id))
		return false;
	n = registry_member_ids(d, ids, REG_MAX_SENDERS);
	for (i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

bool registry_node_endpoint(struct hagentd *d, const char *name, char *addr, size_t len,
			    uint16_t *port)
{
	const struct cluster_view *v = cluster_view(d);
	struct reg_node *n;
	uint32_t id;
	int i;

	if (!reg_of(d) || !v || !cluster_node_id(d, name, &id))
		return false;
	n = node_info(reg_of(d), id, false);
	*port = n && n->mig_port ? (uint16_t)n->mig_port : 7800;
	if (n && n->mig_addr[0]) {
		snprintf(addr, len, "%s", n->mig_addr);
		return true;
	}
	for (i = 0; i < v->n_nodes; i++)
		if (v->nodes[i].id == id && v->nodes[i].addr[0]) {
			snprintf(addr, len, "%s", v->nodes[i].addr);
			return true;
		}
	return false;
}

bool registry_node_standby(struct hagentd *d, const char *name)
{
	struct reg_node *n;
	uint32_t id;

	if (!reg_of(d) || !cluster_node_id(d, name, &id))
		return false;
	n = node_info(reg_of(d), id, false);
	return n && n->standby;
}

bool registry_storage_unusable(struct hagentd *d, const char *node, const char *guest, char *why,
			       size_t len)
{
	struct reg_node *n;
	size_t gl = strlen(guest);
	const char *p;
	uint32_t id;

	if (!reg_of(d) || !cluster_node_id(d, node, &id) || !(n = node_info(reg_of(d), id, false)))
		return false;
	for (p = n->unusable; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
		if (!strncmp(p, guest, gl) && p[gl] == '\t') {
			const char *r = p + gl + 1;
			size_t rl = strcspn(r, "\n");
			if (why)
				snprintf(why, len, "%.*s", (int)rl, r);
			return true;
		}
	}
	return false;
}

const char *registry_node_storage(struct hagentd *d, const char *name, const char **unusable)
{
	struct reg_node *n;
	uint32_t id;

	*unusable = "";
	if (!reg_of(d) || !cluster_node_id(d, name, &id) ||
	    !(n = node_info(reg_of(d), id, false)))
		return "";
	*unusable = n->unusable;
	return n->storage;
}

const char *registry_node_mode(struct hagentd *d, const char *name, const char **evacuation)
{
	struct reg_node *n;
	uint32_t id;

	*evacuation = "";
	if (!reg_of(d) || !cluster_node_id(d, name, &id) ||
	    !(n = node_info(reg_of(d), id, false)))
		return "online";
	*evacuation = n->evacuation;
	return n->evacuating ? "evacuating" : n->standby ? "standby" : "online";
}

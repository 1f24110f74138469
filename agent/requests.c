#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/cluster.h"
#include "agent/conf.h"
#include "agent/control.h"
#include "agent/guests.h"
#include "agent/placement.h"
#include "agent/registry.h"
#include "agent/peerfence.h"
#include "agent/requests.h"
#include "agent/store.h"
#include "agent/supervise.h"
#include "agent/timeouts.h"
#include "agent/watchdog.h"
#include "lib/log.h"
#include "migrate/evacuate.h"
#include "migrate/job.h"

#define BIT(s) (1u << (s))
/* States a request is over in. */
#define SETTLED (BIT(GS_RUNNING) | BIT(GS_STOPPED) | BIT(GS_FAILED) | BIT(GS_PRESERVED) | \
		 BIT(GS_PAUSED))
#define DOWN (BIT(GS_STOPPED) | BIT(GS_FAILED) | BIT(GS_PRESERVED))

struct request_def {
	const char *name;
	int min_args, max_args;
	void (*fn)(struct conn *c, const Hagent__Request *req);
};

void requests_fill_info(struct hagentd *d, struct guest *g, Hagent__GuestInfo *info)
{
	info->name = g->cfg.name;
	info->node = g->owner[0] ? g->owner : (registry_active(d) ? "-" : d->conf.node_name);
	info->state = (char *)gstate_name(g->state);
	info->reason = g->reason;
	info->memory_mib = (uint64_t)(g->h || g->orphan ? g->mem_target_mib : g->cfg.memory_mib);
	info->maxmem_mib = (uint64_t)g->maxmem_mib;
	info->vcpus = (uint32_t)g->cfg.vcpus;
	info->started_at = g->started_at;
	info->pid = g->orphan ? g->orphan_pid : (g->h ? g->ops->pid(g->h) : 0);
	info->restarts = (uint32_t)g->n_restarts;
	info->desired = g->desired == DESIRED_RUNNING ? "running" : "stopped";
	info->driver = g->cfg.driver;
	info->source = g->cfg.source;
	info->managed_by = g->cfg.managed_by_pacemaker ? "pacemaker" : "hagent";
}

static struct guest *find_or_error(struct conn *c, const char *name)
{
	struct guest *g = guests_find(control_daemon(c), name);

	if (!g)
		control_error(c, RC_NOT_FOUND, "unknown guest '%s'", name);
	return g;
}

static void respond_ok(struct conn *c, char **messages, size_t n)
{
	Hagent__Response resp = HAGENT__RESPONSE__INIT;

	resp.node = control_daemon(c)->conf.node_name;
	resp.messages = messages;
	resp.n_messages = n;
	control_respond(c, &resp);
}

/* Static storage: answered before the next request is read. */
static Hagent__ClusterInfo cinfo;
static Hagent__NodeInfo ninfo[CLUSTER_MAX_NODES], *nptrs[CLUSTER_MAX_NODES];
static char fencing[CLUSTER_MAX_NODES][128], absorb[512], timeouts[256];

static void fill_fencing(struct hagentd *d, const char *node, char *out, size_t len)
{
	const char *agent, *args;
	unsigned wd = registry_node_watchdog(d, node);

	if (conf_fence_for(&d->conf, node, &agent, &args))
		snprintf(out, len, "agent %s", agent);
	else if (wd)
		snprintf(out, len, "watchdog %u s", wd);
	else
		snprintf(out, len, "none");
}

static void fill_cluster(struct hagentd *d, Hagent__Response *resp)
{
	const struct cluster_view *v = cluster_view(d);
	unsigned wd;
	int i, n;

	if (!v || !v->enabled)
		return;
	hagent__cluster_info__init(&cinfo);
	cinfo.name = (char *)v->name;
	cinfo.quorate = v->quorate;
	cinfo.votes = v->votes;
	cinfo.expected_votes = v->expected_votes;
	cinfo.quorum = v->quorum;
	cinfo.note = (char *)registry_recovery_note(d);
	for (i = 0; i < v->n_nodes; i++) {
		hagent__node_info__init(&ninfo[i]);
		ninfo[i].name = (char *)v->nodes[i].name;
		ninfo[i].id = v->nodes[i].id;
		ninfo[i].member = v->nodes[i].member;
		ninfo[i].hagentd = v->nodes[i].hagentd;
		ninfo[i].local = v->nodes[i].id == v->local_id;
		ninfo[i].capacity_mb = registry_node_capacity(d, v->nodes[i].id);
		ninfo[i].used_mb = placement_used_mb(d, v->nodes[i].name);
		ninfo[i].watchdog_s = registry_node_watchdog(d, v->nodes[i].name);
		fill_fencing(d, v->nodes[i].name, fencing[i], sizeof(fencing[i]));
		ninfo[i].fencing = fencing[i];
		ninfo[i].mode = (char *)registry_node_mode(d, v->nodes[i].name,
							   (const char **)&ninfo[i].evacuation);
		ninfo[i].storage = (char *)registry_node_storage(d, v->nodes[i].name,
								 (const char **)&ninfo[i].unusable);
		nptrs[i] = &ninfo[i];
	}
	placement_absorb(d, absorb, sizeof(absorb));
	cinfo.absorb = absorb;
	wd = watchdog_timeout(d);
	n = snprintf(timeouts, sizeof(timeouts),
		     "token %" PRIu32 " ms + consensus %" PRIu32 " ms: a lost host shows within %" PRIu32
		     " ms; fence agents get %ld s",
		     v->token_ms, v->consensus_ms, TO_DETECT_MS(v->token_ms, v->consensus_ms),
		     d->conf.fence_timeout_s);
	if (wd && n > 0 && (size_t)n < sizeof(timeouts))
		snprintf(timeouts + n, sizeof(timeouts) - (size_t)n,
			 "; this host self-fences by watchdog within %u s (the others wait %llu ms)",
			 wd, (unsigned long long)TO_WATCHDOG_WAIT_MS((uint64_t)wd, v->consensus_ms));
	cinfo.timeouts = timeouts;
	cinfo.nodes = nptrs;
	cinfo.n_nodes = (size_t)v->n_nodes;
	resp->cluster = &cinfo;
}

static void req_list(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	Hagent__Response resp = HAGENT__RESPONSE__INIT;
	Hagent__GuestInfo *infos, **ptrs;
	Hagent__MigInfo *migs;
	struct guest *g;
	size_t i = 0;

	infos = calloc((size_t)d->n_guests + 1, sizeof(*infos));
	ptrs = calloc((size_t)d->n_guests + 1, sizeof(*ptrs));
	migs = calloc((size_t)d->n_guests + 1, sizeof(*migs));
	if (!infos || !ptrs || !migs) {
		free(infos);
		free(ptrs);
		free(migs);
		control_error(c, RC_ERROR, "out of memory");
		return;
	}
	guests_for_each(g, d) {
		if (req->n_args && strcmp(req->args[0], g->cfg.name))
			continue;
		hagent__guest_info__init(&infos[i]);
		requests_fill_info(d, g, &infos[i]);
		if (g->mig.job[0] || g->mig.last[0]) {
			hagent__mig_info__init(&migs[i]);
			migrate_fill_info(d, g, &migs[i]);
			infos[i].migration = &migs[i];
		}
		ptrs[i] = &infos[i];
		i++;
	}
	if (req->n_args && i == 0) {
		free(infos);
		free(ptrs);
		free(migs);
		control_error(c, RC_NOT_FOUND, "unknown guest '%s'", req->args[0]);
		return;
	}
	resp.node = d->conf.node_name;
	resp.guests = ptrs;
	resp.n_guests = i;
	if (!strcmp(req->command, "status"))
		fill_cluster(d, &resp);
	control_respond(c, &resp);
	free(infos);
	free(ptrs);
	free(migs);
}

/* In a cluster every ha_nodes entry must name one of corosync's nodes. */
static void check_ha_nodes(struct hagentd *d, const struct guest_cfg *cfg,
			   struct guestcfg_diags *diags)
{
	uint32_t id;
	int k;

	for (k = 0; k < cfg->n_ha_nodes; k++)
		if (!cluster_node_id(d, cfg->ha_nodes[k], &id))
			guestcfg_diag_add(diags, DIAG_ERROR, 0, "ha_nodes",
					  "unknown node '%s' (not in corosync's nodelist)",
					  cfg->ha_nodes[k]);
}

/* The file as given, plus the key that hands the guest to Pacemaker. */
static struct guest *mark_pacemaker(struct hagentd *d, struct guest *g, const Hagent__Request *req,
				    const char *src, struct guestcfg_diags *diags)
{
	static const char mark[] = "\n# added by ocf:hagent:guest: Pacemaker decides where it runs\n"
				   "ha_managed_by = \"pacemaker\"\n";
	size_t len = req->file_content.len;
	char *text = malloc(len + sizeof(mark));

	guests_free(g);
	if (!text)
		return NULL;
	memcpy(text, req->file_content.data, len);
	memcpy(text + len, mark, sizeof(mark));
	memset(diags, 0, sizeof(*diags));
	g = guests_new(d, text, len + sizeof(mark) - 1, src, diags);
	free(text);
	return g;
}

static void req_add(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	struct guestcfg_diags *diags = calloc(1, sizeof(*diags));
	const char *src = req->file_path && req->file_path[0] ? req->file_path : "<request>";
	char *msgs[GUESTCFG_MAX_DIAGS], lines[GUESTCFG_MAX_DIAGS][512];
	struct guest *g = NULL, *old;
	size_t n = 0;
	int i;

	if (!diags) {
		control_error(c, RC_ERROR, "out of memory");
		return;
	}
	if (req->file_content.len == 0 || req->file_content.len > GUEST_FILE_MAX) {
		control_error(c, RC_INVALID, "%s: guest file is %s", src,
			      req->file_content.len ? "too large" : "empty");
		goto out;
	}
	g = guests_new(d, (const char *)req->file_content.data, req->file_content.len, src, diags);
	if (g && req->by_pacemaker && !g->cfg.managed_by_pacemaker && !diags->n_errors) {
		/* Added by ocf:hagent:guest: the stored definition says whose it is. */
		g = mark_pacemaker(d, g, req, src, diags);
		if (!g) {
			control_error(c, RC_ERROR, "out of memory");
			goto out;
		}
	}
	if (g) {
		struct guest_cfg *cfg = guests_load_cfg(g);
		if (cfg)
			guestcfg_check_host(cfg, diags);
		if (cfg && registry_active(d))
			check_ha_nodes(d, cfg, diags);
		free(cfg);
	}
	for (i = 0; i < diags->n; i++) {
		guestcfg_diag_format(&diags->d[i], src, lines[n], sizeof(lines[n]));
		msgs[n] = lines[n];
		n++;
	}
	if (!g || diags->n_errors) {
		Hagent__Response resp = HAGENT__RESPONSE__INIT;
		char err[600];
		const char *first = "invalid guest file";

		for (i = 0; i < diags->n; i++)
			if (diags->d[i].level == DIAG_ERROR) {
				first = lines[i];
				break;
			}
		snprintf(err, sizeof(err), "%s", first);
		resp.status = RC_INVALID;
		resp.error = err;
		resp.messages = msgs;
		resp.n_messages = n;
		resp.node = d->conf.node_name;
		control_respond(c, &resp);
		goto out;
	}
	if (registry_active(d)) {
		Hagent__RegOp op = HAGENT__REG_OP__INIT;
		op.kind = HAGENT__REG_OP__KIND__DEFINE;
		op.name = g->cfg.name;
		op.text.data = (uint8_t *)g->text;
		op.text.len = g->text_len;
		op.source = g->cfg.source;
		if (registry_submit(d, &op, c) < 0)
			control_error(c, RC_ERROR, "cannot reach the cluster: %s", strerror(errno));
		goto out; /* answered when the change is applied here */
	}
	old = guests_find(d, g->cfg.name);
	if (old) {
		control_error(c, RC_EXISTS, "guest '%s' is already defined (from %s)", g->cfg.name,
			      old->cfg.source[0] ? old->cfg.source : "?");
		goto out;
	}
	if (store_save_def(d, g) < 0 || store_save_state(d, g) < 0) {
		int e = errno;
		store_remove(d, g->cfg.name);
		control_error(c, RC_STORAGE, "cannot store guest '%s' in %s: %s", g->cfg.name,
			      d->conf.state_dir, strerror(e));
		goto out;
	}
	guests_insert(d, g);
	log_info("guest %s defined from %s", g->cfg.name, src);
	events_publish(d, g, GS_STOPPED, GS_STOPPED, "defined");
	g = NULL;
	respond_ok(c, msgs, n);
out:
	guests_free(g);
	free(diags);
}

/* In a cluster, guest changes go through the registry: answered once the
 * change is delivered and applied here. */
static bool via_registry(struct conn *c, int kind, const char *name, const char *node,
			 unsigned timeout_s)
{
	struct hagentd *d = control_daemon(c);
	Hagent__RegOp op = HAGENT__REG_OP__INIT;

	if (!registry_active(d))
		return false;
	op.kind = kind;
	op.name = (char *)name;
	op.node = (char *)(node ? node : "");
	op.timeout_s = timeout_s;
	if (registry_submit(d, &op, c) < 0)
		control_error(c, RC_ERROR, "cannot reach the cluster: %s", strerror(errno));
	return true;
}

/* A request that only the guest's own host can serve. */
static bool remote_guest(struct conn *c, struct guest *g)
{
	if (guest_is_local(g))
		return false;
	control_error(c, RC_ERROR, "guest '%s' runs on %s: ask there (hactl on %s)", g->cfg.name,
		      g->owner, g->owner);
	return true;
}

static void req_remove(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	struct guest *g = find_or_error(c, req->args[0]);

	if (!g)
		return;
	if (!g->orphan && via_registry(c, HAGENT__REG_OP__KIND__UNDEFINE, g->cfg.name, NULL, 0))
		return;
	if (g->h || g->orphan || (g->state != GS_STOPPED && g->state != GS_FAILED)) {
		control_error(c, RC_ERROR, "guest '%s' is %s; stop or destroy it first", g->cfg.name,
			      gstate_name(g->state));
		return;
	}
	if (store_remove(d, g->cfg.name) < 0) {
		control_error(c, RC_STORAGE, "cannot remove stored guest '%s': %s", g->cfg.name,
			      strerror(errno));
		return;
	}
	log_info("guest %s removed", g->cfg.name);
	events_publish(d, g, g->state, GS_STOPPED, "removed");
	guests_unlink(d, g);
	guests_free(g);
	respond_ok(c, NULL, 0);
}

static void req_start(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	struct guest *g = find_or_error(c, req->args[0]);
	char err[300] = "";

	if (!g)
		return;
	if (registry_active(d)) {
		uint32_t id;
		if (req->n_args > 1 && !cluster_node_id(d, req->args[1], &id)) {
			control_error(c, RC_NOT_FOUND, "unknown node '%s'", req->args[1]);
			return;
		}
		if (!cluster_may_start(d)) {
			control_error(c, RC_ERROR, "%s: not started: this partition has no quorum",
				      g->cfg.name);
			return;
		}
		via_registry(c, HAGENT__REG_OP__KIND__START, g->cfg.name,
			     req->n_args > 1 ? req->args[1] : NULL, 0);
		return;
	}
	if (req->n_args > 1 && strcmp(req->args[1], d->conf.node_name)) {
		control_error(c, RC_NOT_FOUND, "unknown node '%s' (this host is %s)", req->args[1],
			      d->conf.node_name);
		return;
	}
	if (!cluster_may_start(d)) {
		control_error(c, RC_ERROR, "%s: not started: this partition has no quorum",
			      g->cfg.name);
		return;
	}
	if (supervise_start(g, err, sizeof(err)) < 0) {
		control_error(c, errno == ENOSPC ? RC_STORAGE : RC_ERROR, "%s", err);
		return;
	}
	control_wait(c, g, BIT(GS_RUNNING) | BIT(GS_FAILED) | BIT(GS_STOPPED) | BIT(GS_PRESERVED),
		     TO_CLIENT_WAIT_S);
}

static void req_stop(struct conn *c, const Hagent__Request *req)
{
	struct guest *g = find_or_error(c, req->args[0]);
	unsigned t = req->timeout_s ? req->timeout_s : TO_STOP_DEFAULT_S;
	char err[300] = "";

	if (!g)
		return;
	if (!g->orphan && via_registry(c, HAGENT__REG_OP__KIND__STOP, g->cfg.name, NULL, t))
		return;
	if (supervise_stop(g, t, err, sizeof(err)) < 0) {
		control_error(c, RC_ERROR, "%s", err);
		return;
	}
	if (g->removing) {
		respond_ok(c, NULL, 0);
		return;
	}
	control_wait(c, g, DOWN, t + TO_DESTROY_KILL_MS / 1000 + 2);
}

static void drop_orphan(struct hagentd *d, struct guest *g)
{
	guests_unlink(d, g);
	guests_free(g);
}

static void req_destroy(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	struct guest *g = find_or_error(c, req->args[0]);
	char err[300] = "";

	if (!g)
		return;
	if (!g->orphan && via_registry(c, HAGENT__REG_OP__KIND__DESTROY, g->cfg.name, NULL, 0))
		return;
	if (supervise_destroy(g, err, sizeof(err)) < 0) {
		control_error(c, RC_ERROR, "%s", err);
		return;
	}
	if (g->removing) {
		drop_orphan(d, g);
		respond_ok(c, NULL, 0);
		return;
	}
	control_wait(c, g, DOWN, TO_DESTROY_KILL_MS / 1000 + 5);
}

static int parse_mib(struct conn *c, const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || (*end && strcmp(end, "M") && strcmp(end, "m")) || v <= 0 ||
	    v > (1L << 30)) {
		control_error(c, RC_USAGE, "expected a size in MiB, got '%s'", s);
		return -1;
	}
	*out = v;
	return 0;
}

static void req_mem_set(struct conn *c, const Hagent__Request *req)
{
	struct guest *g = find_or_error(c, req->args[0]);
	long mib;

	if (!g || parse_mib(c, req->args[1], &mib) < 0 || remote_guest(c, g))
		return;
	if (!g->h || g->state != GS_RUNNING) {
		control_error(c, RC_ERROR, "guest '%s' is %s, not running", g->cfg.name,
			      gstate_name(g->state));
		return;
	}
	if (mib > g->maxmem_mib || mib > g->boot_mem_mib) {
		control_error(c, RC_ERROR, "%s: %ld MiB is above the guest's maximum of %ld MiB",
			      g->cfg.name, mib, g->maxmem_mib < g->boot_mem_mib ? g->maxmem_mib
										: g->boot_mem_mib);
		return;
	}
	if (g->ops->mem_set(g->h, mib) < 0) {
		control_error(c, RC_ERROR, "%s: mem-set failed: %s", g->cfg.name, strerror(errno));
		return;
	}
	g->mem_target_mib = mib;
	log_info("guest %s: memory target %ld MiB", g->cfg.name, mib);
	respond_ok(c, NULL, 0);
}

static void req_mem_max(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	struct guest *g = find_or_error(c, req->args[0]);
	char note[200], *msgs[1] = { note };
	long mib, old;

	if (!g || parse_mib(c, req->args[1], &mib) < 0 || remote_guest(c, g))
		return;
	if (g->h && mib < g->mem_target_mib) {
		control_error(c, RC_ERROR, "%s: %ld MiB is below the current target of %ld MiB; "
			      "mem-set first", g->cfg.name, mib, g->mem_target_mib);
		return;
	}
	old = g->maxmem_mib;
	g->maxmem_mib = mib;
	if (store_save_state(d, g) < 0) {
		g->maxmem_mib = old;
		control_error(c, RC_STORAGE, "cannot record mem-max of '%s': %s", g->cfg.name,
			      strerror(errno));
		return;
	}
	if (g->h && g->ops->mem_max) {
		/* the driver sets it live (Xen): the domain may balloon up to it */
		if (g->ops->mem_max(g->h, mib) < 0) {
			control_error(c, RC_ERROR, "%s: %ld MiB recorded for its next start, but the "
				      "running guest's maximum could not be set: %s", g->cfg.name,
				      mib, strerror(errno));
			return;
		}
		log_info("guest %s: maximum memory %ld MiB", g->cfg.name, mib);
		respond_ok(c, NULL, 0);
		return;
	}
	if (g->h && mib > g->boot_mem_mib) {
		snprintf(note, sizeof(note), "%s: runs with %ld MiB; %ld MiB applies from its next start",
			 g->cfg.name, g->boot_mem_mib, mib);
		respond_ok(c, msgs, 1);
		return;
	}
	respond_ok(c, NULL, 0);
}

static void req_console(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	Hagent__Response resp = HAGENT__RESPONSE__INIT;
	struct guest *g = find_or_error(c, req->args[0]);

	if (!g || remote_guest(c, g))
		return;
	if (!g->h || !g->ops->console_path(g->h)) {
		control_error(c, RC_ERROR, "guest '%s' is %s: no console", g->cfg.name,
			      gstate_name(g->state));
		return;
	}
	resp.node = d->conf.node_name;
	resp.console_path = (char *)g->ops->console_path(g->h);
	control_respond(c, &resp);
}

static void req_events(struct conn *c, const Hagent__Request *req)
{
	respond_ok(c, NULL, 0);
	control_subscribe(c);
}

/* `hactl probe GUEST`: does the guest's monitor answer, and how fast?  The
 * answer goes to the request by its pending id, so a client that hung up
 * meanwhile is simply not answered; the probe lives until the driver's
 * callback (exactly once, also when the QEMU handle goes away). */
struct probe_req {
	struct hagentd *d;
	uint64_t id;       /* the waiting request (control_pending) */
	uint64_t t0_ms;
	unsigned timeout_s;
	qb_loop_timer_handle timer;
	bool timer_armed, answered;
	char guest[GUEST_NAME_MAX];
};

static void probe_answer(struct probe_req *p, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void probe_answer(struct probe_req *p, int status, const char *fmt, ...)
{
	struct conn *c = control_by_pending(p->d, p->id);
	char msg[300], *msgs[1] = { msg };
	va_list ap;

	p->answered = true;
	if (!c)
		return;
	control_pending(c, 0);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (status == RC_OK)
		respond_ok(c, msgs, 1);
	else
		control_error(c, status, "%s", msg);
}

static void probe_timeout(void *arg)
{
	struct probe_req *p = arg;

	p->timer_armed = false;
	probe_answer(p, RC_TIMEOUT, "%s: its monitor did not answer within %u s", p->guest,
		     p->timeout_s);
}

static void probe_done(void *arg, const char *status, const char *err)
{
	struct probe_req *p = arg;

	if (p->timer_armed)
		qb_loop_timer_del(p->d->loop, p->timer);
	if (!p->answered) {
		if (status)
			probe_answer(p, RC_OK, "%s: monitor answered in %llu ms: %s", p->guest,
				     (unsigned long long)(now_ms() - p->t0_ms), status);
		else
			probe_answer(p, RC_ERROR, "%s: %s", p->guest, err ? err : "no answer");
	}
	free(p);
}

static void req_probe(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	struct guest *g = find_or_error(c, req->args[0]);
	struct probe_req *p;

	if (!g || remote_guest(c, g))
		return;
	if (!g->h || !g->ops->probe) {
		control_error(c, RC_ERROR, "%s is %s: no monitor to ask", g->cfg.name,
			      gstate_name(g->state));
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		control_error(c, RC_ERROR, "out of memory");
		return;
	}
	p->d = d;
	p->id = control_pending_new(c);
	p->t0_ms = now_ms();
	p->timeout_s = req->timeout_s ? req->timeout_s : TO_PROBE_DEFAULT_S;
	snprintf(p->guest, sizeof(p->guest), "%s", g->cfg.name);
	if (g->ops->probe(g->h, probe_done, p) < 0) {
		control_pending(c, 0);
		control_error(c, RC_ERROR, "%s: cannot ask its monitor: %s", g->cfg.name,
			      strerror(errno));
		free(p);
		return;
	}
	if (qb_loop_timer_add(d->loop, QB_LOOP_LOW, (uint64_t)p->timeout_s * 1000000000ULL, p,
			      probe_timeout, &p->timer) == 0)
		p->timer_armed = true;
}

static void req_ping(struct conn *c, const Hagent__Request *req)
{
	respond_ok(c, NULL, 0);
}

static const struct request_def request_table[] = {
	{ "list", 0, 1, req_list },
	{ "status", 0, 1, req_list },
	{ "add", 0, 0, req_add },
	{ "remove", 1, 1, req_remove },
	{ "start", 1, 2, req_start },
	{ "stop", 1, 1, req_stop },
	{ "destroy", 1, 1, req_destroy },
	{ "mem-set", 2, 2, req_mem_set },
	{ "mem-max", 2, 2, req_mem_max },
	{ "console", 1, 1, req_console },
	{ "events", 0, 0, req_events },
	{ "ping", 0, 0, req_ping },
	{ "probe", 1, 1, req_probe },
	{ "migrate", 2, 2, migrate_req },
	{ "migrate-abort", 1, 1, migrate_req_abort },
	{ "node-standby", 1, 1, evacuate_req_standby },
	{ "node-online", 1, 1, evacuate_req_online },
	{ "fence-peer", 2, 2, peerfence_req },
};

/* Requests that change guests: in a cluster they go through the registry,
 * so none may act locally before this host has joined it. */
static bool changes_guests(const char *cmd)
{
	static const char *const names[] = { "add", "remove", "start", "stop", "destroy",
					     "migrate", "migrate-abort", "node-standby",
					     "node-online" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(cmd, names[i]))
			return true;
	return false;
}

void requests_dispatch(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	size_t i;

	if (!req->command) {
		control_error(c, RC_USAGE, "request without a command");
		return;
	}
	for (i = 0; i < sizeof(request_table) / sizeof(request_table[0]); i++) {
		const struct request_def *r = &request_table[i];
		if (strcmp(r->name, req->command))
			continue;
		if ((int)req->n_args < r->min_args || (int)req->n_args > r->max_args) {
			control_error(c, RC_USAGE, "%s: expected %d to %d arguments, got %zu", r->name,
				      r->min_args, r->max_args, req->n_args);
			return;
		}
		log_debug("control: %s%s%s", r->name, req->n_args ? " " : "",
			  req->n_args ? req->args[0] : "");
		if (!strcmp(d->conf.cluster, "corosync") && !registry_active(d) &&
		    changes_guests(r->name)) {
			control_error(c, RC_ERROR, "%s: not joined to the cluster yet "
				      "(is corosync running on %s?)", r->name, d->conf.node_name);
			return;
		}
		r->fn(c, req);
		return;
	}
	control_error(c, RC_USAGE, "unknown command '%.64s'", req->command);
}

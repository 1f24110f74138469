#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>
#include <corosync/cmap.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <corosync/votequorum.h>

#include "agent/cluster.h"
#include "agent/control.h"
#include "agent/fence.h"
#include "agent/guests.h"
#include "agent/registry.h"
#include "agent/supervise.h"
#include "agent/timeouts.h"
#include "lib/log.h"

#define CPG_GROUP "hagent"

struct cluster {
	struct hagentd *d;
	struct cluster_view view;
	cpg_handle_t cpg;
	quorum_handle_t q;
	votequorum_handle_t vq;
	int cpg_fd, q_fd;
	bool have_cpg, have_q, have_vq;
	bool was_quorate;
	bool quorum_known;  /* a first quorum view arrived since connecting */
	qb_loop_timer_handle retry;
	bool retry_armed;
	bool warned;
};

static struct cluster *cluster_of(struct hagentd *d)
{
	return d->cluster;
}

static struct cluster_node *node_get(struct cluster_view *v, uint32_t id)
{
	int i;

	for (i = 0; i < v->n_nodes; i++)
		if (v->nodes[i].id == id)
			return &v->nodes[i];
	if (v->n_nodes == CLUSTER_MAX_NODES)
		return NULL;
	v->nodes[v->n_nodes] = (struct cluster_node){ .id = id };
	snprintf(v->nodes[v->n_nodes].name, sizeof(v->nodes[0].name), "node%" PRIu32, id);
	return &v->nodes[v->n_nodes++];
}

/* Node names and ids from corosync.conf's nodelist, through cmap. */
static void read_nodelist(struct cluster *c)
{
	cmap_handle_t h;
	char key[CMAP_KEYNAME_MAXLEN + 1], *s = NULL;
	int i;

	if (cmap_initialize(&h) != CS_OK)
		return;
	if (cmap_get_string(h, "totem.cluster_name", &s) == CS_OK) {
		snprintf(c->view.name, sizeof(c->view.name), "%s", s);
		free(s);
	}
	/* the effective timers: token_coefficient already applied */
	if (cmap_get_uint32(h, "runtime.config.totem.token", &c->view.token_ms) != CS_OK)
		c->view.token_ms = COROSYNC_TOKEN_DEFAULT_MS;
	if (cmap_get_uint32(h, "runtime.config.totem.consensus", &c->view.consensus_ms) != CS_OK)
		c->view.consensus_ms = COROSYNC_CONSENSUS_DEFAULT_MS(c->view.token_ms);
	for (i = 0; i < CLUSTER_MAX_NODES; i++) {
		struct cluster_node *n;
		uint32_t id;

		snprintf(key, sizeof(key), "nodelist.node.%d.nodeid", i);
		if (cmap_get_uint32(h, key, &id) != CS_OK)
			break;
		n = node_get(&c->view, id);
		if (!n)
			break;
		snprintf(key, sizeof(key), "nodelist.node.%d.ring0_addr", i);
		if (cmap_get_string(h, key, &s) == CS_OK) {
			snprintf(n->addr, sizeof(n->addr), "%s", s);
			free(s);
			s = NULL;
		}
		snprintf(key, sizeof(key), "nodelist.node.%d.name", i);
		if (cmap_get_string(h, key, &s) != CS_OK) {
			snprintf(key, sizeof(key), "nodelist.node.%d.ring0_addr", i);
			if (cmap_get_string(h, key, &s) != CS_OK)
				s = NULL;
		}
		if (s) {
			snprintf(n->name, sizeof(n->name), "%s", s);
			free(s);
			s = NULL;
		}
	}
	cmap_finalize(h);
}

static void refresh_votes(struct cluster *c)
{
	struct votequorum_info info;

	if (c->have_vq && votequorum_getinfo(c->vq, c->view.local_id, &info) == CS_OK) {
		c->view.votes = info.total_votes;
		c->view.expected_votes = info.node_expected_votes;
		c->view.quorum = info.quorum;
	}
}

/* Quorum lost: this partition may be the minority the others will recover
 * from, so nothing of ours may keep running (DESIGN.md §3 safety rule).
 * Quorum regained: the guests stopped for that start again. */
static void quorum_changed(struct cluster *c, bool quorate)
{
	struct hagentd *d = c->d;
	struct guest *g;

	/* The first view always applies: a restarted hagentd may find itself
	 * in a minority with guests still running. */
	if (c->quorum_known && quorate == c->was_quorate)
		return;
	c->quorum_known = true;
	c->was_quorate = quorate;
	log_notice("cluster %s: quorum %s (votes %u, expected %u, quorum %u)", c->view.name,
		   quorate ? "regained" : "LOST", c->view.votes, c->view.expected_votes,
		   c->view.quorum);
	guests_for_each(g, d) {
		if (quorate)
			supervise_quorum_regained(g);
		else
			supervise_quorum_lost(g);
	}
}

static void on_quorum(quorum_handle_t h, uint32_t quorate, uint64_t ring_seq, uint32_t n,
		      uint32_t *list)
{
	const void *ctx = NULL;
	struct cluster *c;
	uint32_t i;
	int j;

	quorum_context_get(h, &ctx);
	c = (struct cluster *)ctx;
	if (!c)
		return;
	bool was[CLUSTER_MAX_NODES];
	int old_n = c->view.n_nodes;

	for (j = 0; j < c->view.n_nodes; j++) {
		was[j] = c->view.nodes[j].member;
		c->view.nodes[j].member = false;
	}
	for (i = 0; i < n; i++) {
		struct cluster_node *nd = node_get(&c->view, list[i]);
		if (nd)
			nd->member = true;
	}
	for (j = 0; j < c->view.n_nodes; j++) {
		struct cluster_node *nd = &c->view.nodes[j];
		bool before = j < old_n && c->quorum_known && was[j];
		if (nd->member)
			nd->lost_at = 0;
		else if (!nd->lost_at || (j < old_n && was[j]))
			nd->lost_at = (int64_t)time(NULL);
		if (before != c->view.nodes[j].member && (c->quorum_known || c->view.nodes[j].member))
			events_publish_node(c->d, c->view.nodes[j].name, before ? "member" : "lost",
					    c->view.nodes[j].member ? "member" : "lost",
					    "corosync membership");
	}
	c->view.quorate = quorate;
	refresh_votes(c);
	log_info("cluster: membership ring %" PRIu64 ": %u node%s, %squorate", ring_seq, n,
		 n == 1 ? "" : "s", quorate ? "" : "not ");
	quorum_changed(c, quorate);
	registry_check_recovery(c->d);
}

static void on_cpg_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid,
			   uint32_t pid, void *msg, size_t len)
{
	void *ctx = NULL;

	cpg_context_get(h, &ctx);
	if (ctx)
		registry_deliver(((struct cluster *)ctx)->d, nodeid, msg, len);
}

static void on_cpg_confchg(cpg_handle_t h, const struct cpg_name *group,
			   const struct cpg_address *members, size_t n_members,
			   const struct cpg_address *left, size_t n_left,
			   const struct cpg_address *joined, size_t n_joined)
{
	void *ctx = NULL;
	struct cluster *c;
	size_t i;
	int j;

	cpg_context_get(h, &ctx);
	c = ctx;
	if (!c)
		return;
	for (j = 0; j < c->view.n_nodes; j++)
		c->view.nodes[j].hagentd = false;
	for (i = 0; i < n_members; i++) {
		struct cluster_node *nd = node_get(&c->view, members[i].nodeid);
		if (nd)
			nd->hagentd = true;
	}
	for (i = 0; i < n_left; i++)
		log_info("cpg: hagentd on node %" PRIu32 " left (reason %" PRIu32 ")",
			 left[i].nodeid, left[i].reason);
	for (i = 0; i < n_joined; i++)
		log_info("cpg: hagentd on node %" PRIu32 " joined", joined[i].nodeid);
	{
		uint32_t mids[CPG_MEMBERS_MAX], jids[CPG_MEMBERS_MAX];
		bool local_joined = false;
		size_t nm = n_members < CPG_MEMBERS_MAX ? n_members : CPG_MEMBERS_MAX;
		size_t nj = n_joined < CPG_MEMBERS_MAX ? n_joined : CPG_MEMBERS_MAX;

		for (i = 0; i < nm; i++)
			mids[i] = members[i].nodeid;
		for (i = 0; i < nj; i++) {
			jids[i] = joined[i].nodeid;
			if (joined[i].nodeid == c->view.local_id && joined[i].pid == (uint32_t)getpid())
				local_joined = true;
		}
		registry_confchg(c->d, mids, nm, jids, nj, local_joined);
	}
}

static void disconnect(struct cluster *c);
static void arm_retry(struct cluster *c);

static int dispatch_io(int fd, int revents, void *arg)
{
	struct cluster *c = arg;
	cs_error_t rc = CS_OK;

	if (fd == c->cpg_fd)
		rc = cpg_dispatch(c->cpg, CS_DISPATCH_ALL);
	else if (fd == c->q_fd)
		rc = quorum_dispatch(c->q, CS_DISPATCH_ALL);
	if (rc != CS_OK || (revents & (POLLHUP | POLLERR))) {
		log_err("cluster: lost corosync (%d); treating as quorum loss", rc);
		disconnect(c);
		c->view.quorate = false;
		quorum_changed(c, false);
		arm_retry(c);
		return 0; /* disconnect() took both fds off the loop */
	}
	return 0;
}

static void disconnect(struct cluster *c)
{
	qb_loop_t *l = c->d->loop;

	if (c->have_cpg) {
		qb_loop_poll_del(l, c->cpg_fd);
		cpg_finalize(c->cpg);
	}
	if (c->have_q) {
		qb_loop_poll_del(l, c->q_fd);
		quorum_finalize(c->q);
	}
	if (c->have_vq)
		votequorum_finalize(c->vq);
	c->have_cpg = c->have_q = c->have_vq = false;
	c->view.enabled = false;
	c->quorum_known = false;
	fence_shutdown(c->d);
	registry_destroy(c->d);
}

static int connect_corosync(struct cluster *c)
{
	cpg_callbacks_t cpg_cb = { .cpg_deliver_fn = on_cpg_deliver,
				   .cpg_confchg_fn = on_cpg_confchg };
	quorum_callbacks_t q_cb = { .quorum_notify_fn = on_quorum };
	votequorum_callbacks_t vq_cb = { 0 };
	struct cpg_name name;
	uint32_t qtype = 0, local = 0;
	cs_error_t rc;

	rc = quorum_initialize(&c->q, &q_cb, &qtype);
	if (rc != CS_OK)
		goto fail;
	c->have_q = true;
	quorum_context_set(c->q, c);
	if (votequorum_initialize(&c->vq, &vq_cb) == CS_OK)
		c->have_vq = true;
	rc = cpg_initialize(&c->cpg, &cpg_cb);
	if (rc != CS_OK)
		goto fail;
	c->have_cpg = true;
	cpg_context_set(c->cpg, c);
	cpg_local_get(c->cpg, &local);
	c->view.local_id = local;
	read_nodelist(c);
	if (registry_create(c->d) < 0)
		goto fail;
	name.length = strlen(CPG_GROUP);
	memcpy(name.value, CPG_GROUP, name.length);
	rc = cpg_join(c->cpg, &name);
	if (rc != CS_OK)
		goto fail;
	if (cpg_fd_get(c->cpg, &c->cpg_fd) != CS_OK || quorum_fd_get(c->q, &c->q_fd) != CS_OK)
		goto fail;
	qb_loop_poll_add(c->d->loop, QB_LOOP_HIGH, c->cpg_fd, POLLIN, c, dispatch_io);
	qb_loop_poll_add(c->d->loop, QB_LOOP_HIGH, c->q_fd, POLLIN, c, dispatch_io);
	c->view.enabled = true;
	refresh_votes(c);
	/* CS_TRACK_CHANGES | CS_TRACK_CURRENT: the current view now, then each change */
	rc = quorum_trackstart(c->q, CS_TRACK_CHANGES | CS_TRACK_CURRENT);
	if (rc != CS_OK)
		goto fail;
	log_notice("cluster %s: joined CPG group %s as node %" PRIu32 "; token %" PRIu32
		   " ms, consensus %" PRIu32 " ms: a lost host shows within %" PRIu32 " ms",
		   c->view.name, CPG_GROUP, local, c->view.token_ms, c->view.consensus_ms,
		   TO_DETECT_MS(c->view.token_ms, c->view.consensus_ms));
	c->warned = false;
	return 0;
fail:
	if (!c->warned)
		log_notice("cluster: corosync not reachable (%d); running as a single host, "
			   "retrying every %d s", rc, TO_COROSYNC_RETRY_S);
	c->warned = true;
	disconnect(c);
	return -1;
}

static void retry_fired(void *arg)
{
	struct cluster *c = arg;

	c->retry_armed = false;
	if (connect_corosync(c) < 0)
		arm_retry(c);
}

static void arm_retry(struct cluster *c)
{
	if (c->retry_armed)
		return;
	if (qb_loop_timer_add(c->d->loop, QB_LOOP_LOW, TO_COROSYNC_RETRY_S * 1000000000ULL, c,
			      retry_fired, &c->retry) == 0)
		c->retry_armed = true;
}

int cluster_start(struct hagentd *d)
{
	struct cluster *c;

	if (!strcmp(d->conf.cluster, "none"))
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->d = d;
	snprintf(c->view.name, sizeof(c->view.name), "%s", "corosync");
	d->cluster = c;
	if (connect_corosync(c) < 0) {
		if (!strcmp(d->conf.cluster, "corosync"))
			log_warn("cluster = corosync but corosync is not reachable: "
				 "starting nothing until it is");
		arm_retry(c);
	}
	return 0;
}

void cluster_stop(struct hagentd *d)
{
	struct cluster *c = cluster_of(d);

	if (!c)
		return;
	if (c->retry_armed)
		qb_loop_timer_del(d->loop, c->retry);
	disconnect(c);
	free(c);
	d->cluster = NULL;
}

bool cluster_may_start(struct hagentd *d)
{
	struct cluster *c = cluster_of(d);

	if (!c)
		return true;
	if (!c->view.enabled)
		return strcmp(d->conf.cluster, "corosync") != 0; /* auto: single host */
	/* Quorate, and the table we hold was merged among at least a quorum of
	 * hagentds: a host that synced alone before its corosync merged with
	 * the others' must wait for their tables (they may have moved its
	 * guests meanwhile). */
	return c->view.quorate && registry_synced(d) && registry_members(d) >= c->view.quorum;
}

const struct cluster_view *cluster_view(struct hagentd *d)
{
	struct cluster *c = cluster_of(d);

	return c ? &c->view : NULL;
}

int cluster_mcast(struct hagentd *d, const void *buf, size_t len)
{
	struct cluster *c = cluster_of(d);
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	cs_error_t rc;
	int tries;

	if (!c || !c->have_cpg) {
		errno = ENOTCONN;
		return -1;
	}
	/* CS_ERR_TRY_AGAIN: corosync's flow control; the queue drains in ms */
	for (tries = 0; tries < 100; tries++) {
		rc = cpg_mcast_joined(c->cpg, CPG_TYPE_AGREED, &iov, 1);
		if (rc != CS_ERR_TRY_AGAIN)
			break;
		usleep(1000);
	}
	if (rc != CS_OK) {
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

uint32_t cluster_local_id(struct hagentd *d)
{
	struct cluster *c = cluster_of(d);

	return c ? c->view.local_id : 0;
}

const char *cluster_node_name(struct hagentd *d, uint32_t id)
{
	struct cluster *c = cluster_of(d);
	int i;

	if (!c)
		return NULL;
	for (i = 0; i < c->view.n_nodes; i++)
		if (c->view.nodes[i].id == id)
			return c->view.nodes[i].name;
	return NULL;
}

bool cluster_node_id(struct hagentd *d, const char *name, uint32_t *id)
{
	struct cluster *c = cluster_of(d);
	int i;

	if (!c)
		return false;
	for (i = 0; i < c->view.n_nodes; i++)
		if (!strcmp(c->view.nodes[i].name, name)) {
			*id = c->view.nodes[i].id;
			return true;
		}
	return false;
}

bool cluster_is_member(struct hagentd *d, const char *name)
{
	struct cluster *c = cluster_of(d);
	int i;

	if (!c)
		return true;
	for (i = 0; i < c->view.n_nodes; i++)
		if (!strcmp(c->view.nodes[i].name, name))
			return c->view.nodes[i].member;
	return false;
}

int64_t cluster_lost_at(struct hagentd *d, const char *name)
{
	struct cluster *c = cluster_of(d);
	int i;

	for (i = 0; c && i < c->view.n_nodes; i++)
		if (!strcmp(c->view.nodes[i].name, name))
			return c->view.nodes[i].member ? 0 : c->view.nodes[i].lost_at;
	return 0;
}

bool cluster_is_fencer(struct hagentd *d)
{
	struct cluster *c = cluster_of(d);
	int i;

	if (!c || !c->view.enabled || !c->view.quorate)
		return false;
	for (i = 0; i < c->view.n_nodes; i++)
		if (c->view.nodes[i].member && c->view.nodes[i].id < c->view.local_id)
			return false;
	return true;
}

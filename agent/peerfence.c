/* DRBD fence-peer requests: see peerfence.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/cluster.h"
#include "agent/peerfence.h"
#include "agent/registry.h"
#include "agent/requests.h"
#include "agent/timeouts.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/storage_host.h"

#define PF_MAX 16

enum pf_wait { PF_FREE = 0, PF_OUTDATE, PF_FENCE };

/* A handler's request waiting for its answer. */
struct pf_req {
	enum pf_wait wait;
	uint64_t id;                 /* control_pending_new's id */
	char res[64], peer[64];
	qb_loop_timer_handle timer;
	bool timer_on;
};

/* This host outdating its side for a peer's request. */
struct pf_outdate {
	pid_t pid;
	int fd;
	char res[64], requester[64];
	uint64_t req_id;
	char out[512];
	size_t used;
};

static struct {
	struct hagentd *d;
	struct pf_req reqs[PF_MAX];
	char fenced[PF_MAX][64];     /* lost nodes FENCED since they were lost */
	struct pf_outdate od[PF_MAX];
} pf;

static void answer(struct pf_req *r, int status, const char *word, const char *msg)
{
	struct conn *c = control_by_pending(pf.d, r->id);

	if (r->timer_on)
		qb_loop_timer_del(pf.d->loop, r->timer);
	r->timer_on = false;
	log_notice("fence-peer: %s of %s: %s%s%s", r->res, r->peer, word, msg[0] ? ": " : "", msg);
	r->wait = PF_FREE;
	if (!c)
		return; /* the handler gave up */
	control_pending(c, 0);
	if (status) {
		control_error(c, status, "%s", msg);
	} else {
		Hagent__Response resp = HAGENT__RESPONSE__INIT;
		char line[400], *m = line;
		/* the handler reads the first word; the rest is for people */
		snprintf(line, sizeof(line), "%s%s%.300s", word, msg[0] ? ": " : "", msg);
		resp.messages = &m;
		resp.n_messages = 1;
		resp.node = pf.d->conf.node_name;
		control_respond(c, &resp);
	}
}

static bool fenced_since_lost(const char *node)
{
	int i;

	for (i = 0; i < PF_MAX; i++)
		if (!strcmp(pf.fenced[i], node))
			return true;
	return false;
}

static void req_timeout(void *arg)
{
	struct pf_req *r = arg;

	r->timer_on = false;
	answer(r, RC_TIMEOUT, "timeout",
	       r->wait == PF_FENCE ? "the peer was not fenced in time"
				   : "the peer did not outdate its disk in time");
}

static void ask_outdate(struct pf_req *r)
{
	Hagent__RegOp op = HAGENT__REG_OP__INIT;

	op.kind = HAGENT__REG_OP__KIND__DRBD_OUTDATE;
	op.name = r->res;
	op.node = r->peer;
	op.source = pf.d->conf.node_name;
	op.req_id = r->id;
	r->wait = PF_OUTDATE;
	if (registry_mcast(pf.d, &op) < 0)
		answer(r, RC_ERROR, "error", "cannot reach the cluster");
}

static void start_fence(struct pf_req *r)
{
	r->wait = PF_FENCE;
	if (fenced_since_lost(r->peer)) {
		answer(r, 0, "fenced", "");
		return;
	}
	log_notice("fence-peer: %s: peer %s is lost: fencing it", r->res, r->peer);
	registry_fence_lost(pf.d, r->peer);
}

void peerfence_req(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	const char *res = req->args[0], *peer = req->args[1];
	unsigned timeout = req->timeout_s ? req->timeout_s : TO_FENCE_PEER_S;
	struct pf_req *r = NULL;
	uint32_t id;
	int i;

	pf.d = d;
	if (!registry_active(d)) {
		control_error(c, RC_ERROR, "not joined to the cluster: the peer cannot be confirmed");
		return;
	}
	if (!cluster_may_start(d)) {
		control_error(c, RC_ERROR, "this partition has no quorum: %s must not go on without %s",
			      res, peer);
		return;
	}
	if (!cluster_node_id(d, peer, &id)) {
		control_error(c, RC_NOT_FOUND, "unknown node '%s' (DRBD's peer of %s)", peer, res);
		return;
	}
	if (!strcmp(peer, d->conf.node_name)) {
		control_error(c, RC_USAGE, "%s is this host", peer);
		return;
	}
	for (i = 0; i < PF_MAX && !r; i++)
		if (pf.reqs[i].wait == PF_FREE)
			r = &pf.reqs[i];
	if (!r) {
		control_error(c, RC_ERROR, "too many fence-peer requests at once");
		return;
	}
	memset(r, 0, sizeof(*r));
	snprintf(r->res, sizeof(r->res), "%s", res);
	snprintf(r->peer, sizeof(r->peer), "%s", peer);
	r->id = control_pending_new(c);
	r->timer_on = qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)timeout * 1000000000ULL, r,
					req_timeout, &r->timer) == 0;
	if (registry_member(d, peer))
		ask_outdate(r);
	else
		start_fence(r);
}

/* ---- the peer's side: drbdadm outdate in a child ------------------ */

static void outdate_answer(struct pf_outdate *o, bool ok, const char *why)
{
	Hagent__RegOp op = HAGENT__REG_OP__INIT;

	op.kind = HAGENT__REG_OP__KIND__DRBD_OUTDATED;
	op.name = o->res;
	op.node = pf.d->conf.node_name;
	op.source = o->requester;
	op.req_id = o->req_id;
	op.state = ok ? "outdated" : "refused";
	op.reason = (char *)why;
	if (registry_mcast(pf.d, &op) < 0)
		log_err("fence-peer: cannot answer %s about %s: %s", o->requester, o->res,
			strerror(errno));
}

static int outdate_readable(int fd, int revents, void *arg)
{
	struct pf_outdate *o = arg;
	ssize_t n = read(fd, o->out + o->used, sizeof(o->out) - 1 - o->used);
	int status = 0;

	(void)revents;
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n > 0) {
		o->used += (size_t)n;
		if (o->used < sizeof(o->out) - 1)
			return 0;
	}
	qb_loop_poll_del(pf.d->loop, fd);
	close(fd);
	while (waitpid(o->pid, &status, 0) < 0 && errno == EINTR)
		;
	o->out[o->used] = '\0';
	log_notice("fence-peer: %s asked this host to outdate %s: %s", o->requester, o->res,
		   WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "outdated" : o->out);
	outdate_answer(o, WIFEXITED(status) && WEXITSTATUS(status) == 0, o->out);
	o->pid = 0;
	return 0;
}

static void outdate_here(const Hagent__RegOp *op)
{
	struct pf_outdate *o = NULL;
	int p[2], i;

	for (i = 0; i < PF_MAX && !o; i++)
		if (!pf.od[i].pid)
			o = &pf.od[i];
	if (!o || pipe2(p, O_CLOEXEC) < 0)
		return;
	memset(o, 0, sizeof(*o));
	snprintf(o->res, sizeof(o->res), "%s", op->name);
	snprintf(o->requester, sizeof(o->requester), "%s", op->source ? op->source : "");
	o->req_id = op->req_id;
	o->pid = fork();
	if (o->pid == 0) {
		char out[400];
		int rc;
		close(p[0]);
		rc = stor_run((char *const[]){ "drbdadm", "outdate", o->res, NULL },
			      STOR_TOOL_TIMEOUT_S, out, sizeof(out));
		(void)fs_write_all(p[1], out, strlen(out));
		_exit(rc == 0 ? 0 : 1);
	}
	close(p[1]);
	if (o->pid < 0) {
		o->pid = 0;
		close(p[0]);
		outdate_answer(o, false, "cannot fork");
		return;
	}
	o->fd = p[0];
	fcntl(o->fd, F_SETFL, O_NONBLOCK);
	if (qb_loop_poll_add(pf.d->loop, QB_LOOP_MED, o->fd, POLLIN, o, outdate_readable) < 0) {
		kill(o->pid, SIGKILL);
		waitpid(o->pid, NULL, 0);
		o->pid = 0;
		close(o->fd);
		outdate_answer(o, false, "cannot watch drbdadm");
	}
}

void peerfence_apply(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	int i;

	pf.d = d;
	if (!op->name || !op->node || !op->source)
		return;
	if (op->kind == HAGENT__REG_OP__KIND__DRBD_OUTDATE) {
		if (!strcmp(op->node, d->conf.node_name))
			outdate_here(op);
		return;
	}
	/* DRBD_OUTDATED: the answer to one of ours? */
	if (strcmp(op->source, d->conf.node_name) || from == cluster_local_id(d))
		return;
	for (i = 0; i < PF_MAX; i++) {
		struct pf_req *r = &pf.reqs[i];
		if (r->wait != PF_OUTDATE || r->id != op->req_id)
			continue;
		if (op->state && !strcmp(op->state, "outdated"))
			answer(r, 0, "outdated", "");
		else
			answer(r, 0, "refused", op->reason ? op->reason : "");
		return;
	}
}

void peerfence_fenced(struct hagentd *d, const char *node)
{
	int i;

	pf.d = d;
	if (!fenced_since_lost(node)) {
		for (i = 0; i < PF_MAX; i++)
			if (!pf.fenced[i][0]) {
				snprintf(pf.fenced[i], sizeof(pf.fenced[i]), "%s", node);
				break;
			}
	}
	for (i = 0; i < PF_MAX; i++)
		if (pf.reqs[i].wait == PF_FENCE && !strcmp(pf.reqs[i].peer, node))
			answer(&pf.reqs[i], 0, "fenced", "");
}

void peerfence_members_changed(struct hagentd *d)
{
	int i;

	pf.d = d;
	for (i = 0; i < PF_MAX; i++) {
		/* a node back in the group may be lost (and fenced) again later */
		if (pf.fenced[i][0] && cluster_is_member(d, pf.fenced[i]))
			pf.fenced[i][0] = '\0';
		if (pf.reqs[i].wait == PF_OUTDATE && !registry_member(d, pf.reqs[i].peer))
			start_fence(&pf.reqs[i]);
	}
}

void peerfence_shutdown(struct hagentd *d)
{
	int i;

	for (i = 0; i < PF_MAX; i++) {
		if (pf.reqs[i].timer_on)
			qb_loop_timer_del(d->loop, pf.reqs[i].timer);
		pf.reqs[i].timer_on = false;
		if (pf.od[i].pid) {
			qb_loop_poll_del(d->loop, pf.od[i].fd);
			close(pf.od[i].fd);
			pf.od[i].pid = 0;
		}
	}
}

#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/cluster.h"
#include "agent/control.h"
#include "agent/guests.h"
#include "agent/placement.h"
#include "agent/registry.h"
#include "agent/requests.h"
#include "agent/storage.h"
#include "agent/supervise.h"
#include "agent/testhold.h"
#include "agent/timeouts.h"
#include "agent/watchdog.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "migrate/channel.h"
#include "migrate/evacuate.h"
#include "migrate/job.h"
#include "migrate/relay.h"

/* The daemon's migration endpoint. */
struct migrate {
	struct mchan_key key;
	enum mchan_mode mode;
	struct mchan_server *srv;
	bool relay;             /* tls: the memory goes through our TLS session */
	char tls_dir[PATH_MAX]; /* qemu-tls: QEMU's TLS-PSK credentials ("" = none) */
	char why_off[256];      /* why migrations are refused here ("" = they are not) */
};

/* This host's side of one job. */
struct migjob {
	struct hagentd *d;
	struct guest *g;        /* NULL once the job let go of its guest */
	const struct driver_ops *ops;
	char job[64];
	char guest[GUEST_NAME_MAX];
	bool src;
	/* destination */
	struct drv_host host;   /* d->drv, with the events coming here */
	struct drv_guest *h;    /* the incoming QEMU */
	long boot_mem_mib, mem_mib;
	bool ready_sent;
	bool received;          /* the source's connection was handed to QEMU */
	bool loaded_sent;       /* "loaded" announced */
	/* source */
	struct mchan_client *cl;
	qb_loop_timer_handle deadline, poll;
	bool deadline_on, poll_on;
	uint64_t last_progress_ms;
	bool sending, ended;    /* QEMU migration under way / outcome reported */
	bool sent;              /* "sent" announced: QEMU completed here */
	int completed_queries;
	/* both */
	struct relay *relay;    /* the memory stream through our TLS session */
};

static const char *phase_name(enum mig_phase p)
{
	switch (p) {
	case MIG_PREPARE: return "prepare";
	case MIG_TRANSFER: return "transfer";
	default: return "none";
	}
}

/* What moves the guest's memory, in messages: QEMU, or Xen's libxl. */
static const char *engine(const struct migjob *j)
{
	return !strcmp(j->ops->name, "xen") ? "libxl" : "QEMU";
}

static bool local_node(struct hagentd *d, const char *node)
{
	return !strcmp(node, d->conf.node_name);
}

static void publish(struct hagentd *d, struct guest *g, const char *from, const char *to,
		    const char *cause)
{
	log_info("migration %s of %s: %s -> %s (%s)", g->mig.job[0] ? g->mig.job : "-",
		 g->cfg.name, from, to, cause);
	events_publish_raw(d, g->cfg.name, g->owner, from, to, cause);
}

/* --- sending phases ---------------------------------------------------------- */

static void send_phase(struct hagentd *d, struct guest *g, const char *job, const char *phase,
		       const char *reason, const struct drv_migrate_stats *st)
{
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	Hagent__MigInfo mi = HAGENT__MIG_INFO__INIT;

	op.kind = HAGENT__REG_OP__KIND__MIG_PHASE;
	op.name = g->cfg.name;
	op.node = d->conf.node_name;
	op.job = (char *)job;
	op.state = (char *)phase;
	op.reason = (char *)(reason ? reason : "");
	if (st) {
		mi.status = (char *)st->status;
		mi.total_bytes = st->total_bytes;
		mi.transferred_bytes = st->transferred_bytes;
		mi.remaining_bytes = st->remaining_bytes;
		mi.rate_bps = st->rate_bps;
		mi.dirty_rate = st->dirty_rate;
		mi.expected_downtime_ms = st->expected_downtime_ms;
		mi.downtime_ms = st->downtime_ms;
		mi.elapsed_ms = st->total_time_ms > 0 ? (uint64_t)st->total_time_ms : 0;
		op.mig = &mi;
	}
	if (registry_mcast(d, &op) < 0)
		log_err("migration %s of %s: cannot announce %s: %s", job, g->cfg.name, phase,
			strerror(errno));
}

static void job_abort_send(struct migjob *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void job_abort_send(struct migjob *j, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (!j->g || j->ended)
		return;
	j->ended = true;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_err("migration %s of %s: %s", j->job, j->guest, why);
	send_phase(j->d, j->g, j->job, "abort", why, NULL);
}

/* --- the job object -------------------------------------------------------- */

static void timers_off(struct migjob *j)
{
	if (j->deadline_on)
		qb_loop_timer_del(j->d->loop, j->deadline);
	if (j->poll_on)
		qb_loop_timer_del(j->d->loop, j->poll);
	j->deadline_on = j->poll_on = false;
}

/* Free now, or (destination) once its incoming QEMU has exited. */
static void job_release(struct migjob *j)
{
	timers_off(j);
	if (j->relay) {
		relay_stop(j->relay);
		j->relay = NULL;
	}
	if (j->cl) {
		mchan_client_cancel(j->cl);
		j->cl = NULL;
	}
	if (j->g && j->g->mig.local == j)
		j->g->mig.local = NULL;
	j->g = NULL;
	if (j->h) {
		/* An incoming QEMU never ran the guest: kill it; the job is freed
		 * on its EXIT (dst_event), which also unlinks its files. */
		if (j->ops->destroy(j->h) == 0)
			return;
		log_err("migration %s of %s: cannot destroy the incoming QEMU: %s", j->job,
			j->guest, strerror(errno));
		j->ops->release(j->h);
		j->h = NULL;
	}
	free(j);
}

static struct migjob *job_new(struct hagentd *d, struct guest *g, bool src)
{
	struct migjob *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->d = d;
	j->g = g;
	j->src = src;
	j->ops = g->ops;
	snprintf(j->job, sizeof(j->job), "%s", g->mig.job);
	snprintf(j->guest, sizeof(j->guest), "%s", g->cfg.name);
	g->mig.local = j;
	return j;
}

/* A test hold (agent/testhold.h) at a step of a job: the step runs on
 * release only if the job is still this host's side of the same job. */
/* A job named by guest and job id, for a callback that may outlive it (a
 * test hold, a query of QEMU's figures): the job is found again, or not,
 * when the callback runs. */
struct job_ref {
	struct hagentd *d;
	char guest[GUEST_NAME_MAX];
	char job[64];
};

static void job_ref_set(struct job_ref *r, const struct migjob *j)
{
	r->d = j->d;
	snprintf(r->guest, sizeof(r->guest), "%s", j->guest);
	snprintf(r->job, sizeof(r->job), "%s", j->job);
}

/* This host's side of the job still running, or NULL. */
static struct migjob *job_ref_find(const struct job_ref *r)
{
	struct guest *g = guests_find(r->d, r->guest);
	struct migjob *j = g ? g->mig.local : NULL;

	return j && !strcmp(j->job, r->job) && j->g ? j : NULL;
}

struct held {
	struct job_ref ref;
	void (*fn)(struct migjob *j);
};

static void held_release(void *arg)
{
	struct held *t = arg;
	struct migjob *j = job_ref_find(&t->ref);

	if (j)
		t->fn(j);
	else
		log_notice("migration %s of %s: ended during a test hold", t->ref.job,
			   t->ref.guest);
}

/* Run fn(j) now, or when the test hold at point is released. */
static void step(struct migjob *j, const char *point, void (*fn)(struct migjob *j))
{
	struct held *t = calloc(1, sizeof(*t));

	if (t) {
		job_ref_set(&t->ref, j);
		t->fn = fn;
		if (test_hold(j->d->loop, point, j->job, held_release, t, free))
			return;
		free(t);
	}
	fn(j);
}

/* --- the memory stream through our TLS session ------------------------------ */

static void relay_done(void *arg, uint64_t to_net, uint64_t from_net, const char *err)
{
	struct migjob *j = arg;

	j->relay = NULL;
	log_info("migration %s of %s: TLS relay ended: %" PRIu64 " bytes out, %" PRIu64
		 " in%s%s", j->job, j->guest, to_net, from_net, err ? ": " : "", err ? err : "");
	if (err && j->g && !j->ended)
		job_abort_send(j, "the migration stream %s %s broke: %s", j->src ? "to" : "from",
			       j->src ? j->g->mig.dst : j->g->mig.src, err);
}

/* The socket the channel handed over, as QEMU should get it: with our own
 * TLS, a socketpair whose other end the relay pumps through the session;
 * else the socket itself (QEMU's own TLS, or plaintext).  Takes fd and tls;
 * -1 (both closed) and err on failure. */
static int stream_fd(struct migjob *j, int fd, struct mchan_tls *tls, char *err, size_t len)
{
	char label[160];
	int qfd;

	if (!tls || !j->d->migrate->relay) {
		mchan_tls_free(tls); /* QEMU's own TLS (or none) runs on the bare socket */
		return fd;
	}
	snprintf(label, sizeof(label), "migration %s of %s", j->job, j->guest);
	j->relay = relay_start(j->d->loop, fd, tls, label, &qfd, relay_done, j, err, len);
	if (!j->relay) {
		mchan_tls_free(tls);
		close(fd);
		return -1;
	}
	return qfd;
}

/* --- destination ------------------------------------------------------------ */

static void dst_send_ready(struct migjob *j)
{
	send_phase(j->d, j->g, j->job, "ready", NULL, NULL);
}

/* The incoming QEMU has the whole guest: half of the commit's condition. */
static void dst_send_loaded(struct migjob *j)
{
	send_phase(j->d, j->g, j->job, "loaded", NULL, NULL);
}

static void dst_event(void *owner, enum drv_event ev, const char *detail,
		      const struct drv_exit *exit_info)
{
	struct migjob *j = owner;

	(void)exit_info;
	if (ev == DRV_EV_EXIT) {
		j->ops->release(j->h);
		j->h = NULL;
		if (!j->g) {
			/* aborted: this was what we waited for; the storage it had
			 * open may be released now */
			struct guest *g = guests_find(j->d, j->guest);
			free(j);
			if (g)
				supervise_storage_settle(g);
			return;
		}
		job_abort_send(j, "the incoming QEMU on %s exited: %s", j->d->conf.node_name,
			       detail ? detail : "?");
		return;
	}
	if (!j->g)
		return;
	if (ev == DRV_EV_PAUSED && !j->ready_sent) {
		j->ready_sent = true;
		log_info("migration %s of %s: incoming QEMU ready (%s)", j->job, j->guest,
			 detail ? detail : "");
		step(j, "ready", dst_send_ready);
		return;
	}
	if (ev == DRV_EV_MIGRATION) {
		log_info("migration %s of %s: destination QEMU: %s", j->job, j->guest,
			 detail ? detail : "");
		if (detail && !strncmp(detail, "failed", 6)) {
			job_abort_send(j, "the destination %s says the migration %s", engine(j),
				       detail);
		} else if (detail && !strcmp(detail, "completed") && !j->loaded_sent) {
			j->loaded_sent = true;
			step(j, "loaded", dst_send_loaded);
		}
	}
}

static void dst_start_incoming(struct migjob *j)
{
	struct hagentd *d = j->d;
	struct guest *g = j->g;
	struct guest_cfg *cfg;
	char err[256] = "out of memory";
	int rc = -1;

	cfg = supervise_launch_cfg(g, err, sizeof(err));
	if (cfg) {
		j->boot_mem_mib = cfg->maxmem_mib;
		j->mem_mib = cfg->memory_mib;
		storage_apply(g, cfg);
		rc = g->ops->start_incoming(&j->host, cfg, j, &j->h, err, sizeof(err));
	}
	free(cfg);
	if (rc < 0) {
		j->h = NULL;
		job_abort_send(j, "cannot start the incoming %s on %s: %s",
			       !strcmp(j->ops->name, "xen") ? "domain" : "QEMU", d->conf.node_name, err);
	}
}

/* The destination's storage is active beside the source's (a second DRBD
 * primary, the LV active here too): the incoming guest may open it. */
static void dst_storage_done(struct guest *g, enum storage_op op, bool ok, const char *why)
{
	struct migjob *j = g->mig.local;

	(void)op;
	if (!j || j->src || !j->g) {
		supervise_storage_settle(g); /* the job ended meanwhile */
		return;
	}
	if (!ok) {
		job_abort_send(j, "storage on %s: %s", g->d->conf.node_name, why);
		return;
	}
	dst_start_incoming(j);
}

static void dst_prepare(struct hagentd *d, struct guest *g)
{
	struct migjob *j = job_new(d, g, false);
	struct guest_cfg *cfg;
	char err[256];
	bool needed;

	if (!j) {
		log_crit("migration of %s: out of memory", g->cfg.name);
		return;
	}
	j->host = d->drv;
	j->host.event = dst_event;
	cfg = guests_load_cfg(g);
	needed = cfg && storage_needed(cfg);
	free(cfg);
	if (!needed) {
		dst_start_incoming(j);
		return;
	}
	if (storage_run(g, STORAGE_PREPARE_SHARED, dst_storage_done, err, sizeof(err)) < 0)
		job_abort_send(j, "storage on %s: %s", d->conf.node_name, err);
}

static int chan_verify(void *arg, const struct mchan_hello *h, char *why, size_t len)
{
	struct hagentd *d = arg;
	struct guest *g = guests_find(d, h->guest);

	if (!g) {
		snprintf(why, len, "unknown guest '%s'", h->guest);
		return -1;
	}
	if (!g->mig.job[0] || strcmp(g->mig.job, h->job) || !g->mig.local || g->mig.local->src) {
		snprintf(why, len, "no migration %s of %s to this host", h->job, h->guest);
		return -1;
	}
	if (strcmp(g->mig.src, h->src) || strcmp(g->mig.dst, d->conf.node_name) ||
	    h->gen != g->gen) {
		snprintf(why, len, "migration %s of %s: source %s gen %" PRIu64
			 " does not match the registry (%s, gen %" PRIu64 ")",
			 h->job, h->guest, h->src, h->gen, g->mig.src, g->gen);
		return -1;
	}
	if (!g->mig.local->h || !g->mig.local->ready_sent || g->mig.local->received) {
		snprintf(why, len, "migration %s of %s: the incoming QEMU is not waiting", h->job,
			 h->guest);
		return -1;
	}
	return 0;
}

static void chan_accept(void *arg, const struct mchan_hello *h, int fd, struct mchan_tls *tls)
{
	struct hagentd *d = arg;
	struct guest *g = guests_find(d, h->guest);
	struct migjob *j = g ? g->mig.local : NULL;
	struct drv_migrate_params p = { 0 };
	char err[256];

	if (!j || j->src || !j->h || strcmp(j->job, h->job)) {
		log_warn("migration %s of %s: gone before its connection arrived", h->job, h->guest);
		mchan_tls_free(tls);
		close(fd);
		return;
	}
	p.tls_dir = d->migrate->tls_dir[0] ? d->migrate->tls_dir : NULL;
	j->received = true;
	log_info("migration %s of %s: %s connected; handing the channel to QEMU", j->job, j->guest,
		 h->src);
	fd = stream_fd(j, fd, tls, err, sizeof(err));
	if (fd < 0) {
		job_abort_send(j, "cannot relay the migration stream on %s: %s",
			       d->conf.node_name, err);
		return;
	}
	if (g->ops->migrate_recv(j->h, fd, &p) < 0)
		job_abort_send(j, "cannot hand the channel to the incoming QEMU: %s",
			       strerror(errno));
	close(fd);
}

/* --- source ------------------------------------------------------------------ */

static void src_poll_arm(struct migjob *j);

/* A query of QEMU's figures outlives the job it was for when the job ends
 * meanwhile: its answer finds the job again (NULL figures: QEMU went away). */
struct ticket {
	struct job_ref ref;
	void (*fn)(struct migjob *j, const struct drv_migrate_stats *st);
};

static void ticket_cb(void *arg, const struct drv_migrate_stats *st)
{
	struct ticket *t = arg;
	struct migjob *j = st ? job_ref_find(&t->ref) : NULL;

	if (j)
		t->fn(j, st);
	free(t);
}

static int query(struct migjob *j, void (*fn)(struct migjob *, const struct drv_migrate_stats *))
{
	struct ticket *t;

	if (!j->g || !j->g->h)
		return -1;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	job_ref_set(&t->ref, j);
	t->fn = fn;
	if (j->g->ops->migrate_query(j->g->h, ticket_cb, t) < 0) {
		free(t);
		return -1;
	}
	return 0;
}

static void src_stats(struct migjob *j, const struct drv_migrate_stats *st)
{
	uint64_t now = now_ms();

	if (!j->g)
		return;
	j->g->mig.st = *st;
	if (!j->ended && j->sending && now - j->last_progress_ms >= TO_MIGRATE_PROGRESS_MS) {
		j->last_progress_ms = now;
		send_phase(j->d, j->g, j->job, "progress", NULL, st);
	}
}

static void src_poll_cb(void *arg)
{
	struct migjob *j = arg;

	j->poll_on = false;
	if (!j->g || j->ended || j->sent || !j->g->h)
		return;
	if (query(j, src_stats) < 0)
		log_warn("migration %s of %s: query-migrate: %s", j->job, j->guest, strerror(errno));
	src_poll_arm(j);
}

static void src_poll_arm(struct migjob *j)
{
	j->poll_on = qb_loop_timer_add(j->d->loop, QB_LOOP_LOW, TO_MIGRATE_POLL_MS * 1000000ULL, j,
				       src_poll_cb, &j->poll) == 0;
}

static void src_deadline_cb(void *arg)
{
	struct migjob *j = arg;

	j->deadline_on = false;
	if (j->g)
		job_abort_send(j, "timed out after %u s (%s)", j->g->mig.timeout_s,
			       phase_name(j->g->mig.phase));
}

static void src_connected(void *arg, int fd, struct mchan_tls *tls, const char *err)
{
	struct migjob *j = arg;
	struct hagentd *d = j->d;
	struct guest *g = j->g;
	struct drv_migrate_params p = { 0 };
	char why[256];

	j->cl = NULL;
	if (!g) {
		mchan_tls_free(tls);
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd < 0) {
		job_abort_send(j, "channel to %s: %s", g->mig.dst, err ? err : "failed");
		return;
	}
	if (!g->h) {
		mchan_tls_free(tls);
		close(fd);
		job_abort_send(j, "the guest stopped on %s", d->conf.node_name);
		return;
	}
	fd = stream_fd(j, fd, tls, why, sizeof(why));
	if (fd < 0) {
		job_abort_send(j, "cannot relay the migration stream: %s", why);
		return;
	}
	p.downtime_ms = g->mig.downtime_ms;
	p.bandwidth_mib = g->mig.bandwidth_mib;
	/* asked for (hactl migrate --auto-converge, ha_migrate_auto_converge):
	 * QEMU throttles the guest's vCPUs only while it dirties faster than
	 * half of what the link moves; off by default, since it slows the guest
	 * and a job on a too-slow link is often better aborted */
	p.auto_converge = g->mig.auto_converge;
	p.tls_dir = d->migrate->tls_dir[0] ? d->migrate->tls_dir : NULL;
	p.tls_hostname = g->mig.dst;
	if (g->ops->migrate_send(g->h, fd, &p) < 0) {
		close(fd);
		job_abort_send(j, "cannot start QEMU's migration: %s", strerror(errno));
		return;
	}
	close(fd);
	j->sending = true;
	j->last_progress_ms = now_ms();
	src_poll_arm(j);
}

static void src_transfer(struct hagentd *d, struct guest *g)
{
	struct migjob *j = g->mig.local;
	struct mchan_hello h = { 0 };
	char addr[64], err[256] = "";
	uint16_t port;

	if (!j)
		return;
	if (!registry_node_endpoint(d, g->mig.dst, addr, sizeof(addr), &port)) {
		job_abort_send(j, "no migration address known for %s", g->mig.dst);
		return;
	}
	snprintf(h.job, sizeof(h.job), "%s", g->mig.job);
	snprintf(h.guest, sizeof(h.guest), "%s", g->cfg.name);
	h.gen = g->gen;
	snprintf(h.src, sizeof(h.src), "%s", g->mig.src);
	snprintf(h.dst, sizeof(h.dst), "%s", g->mig.dst);
	log_info("migration %s of %s: connecting to %s at %s:%u", j->job, j->guest, g->mig.dst,
		 addr, port);
	j->cl = mchan_connect(d->loop, d->migrate->mode, &d->migrate->key, addr, port, &h,
			      TO_MIGRATE_CONNECT_MS, src_connected, j, err, sizeof(err));
	if (!j->cl)
		job_abort_send(j, "channel to %s (%s:%u): %s", g->mig.dst, addr, port, err);
}

static void src_begin(struct hagentd *d, struct guest *g)
{
	struct migjob *j = job_new(d, g, true);

	if (!j) {
		log_crit("migration of %s: out of memory", g->cfg.name);
		return;
	}
	j->deadline_on = qb_loop_timer_add(d->loop, QB_LOOP_MED,
					   (uint64_t)g->mig.timeout_s * 1000000000ULL, j,
					   src_deadline_cb, &j->deadline) == 0;
}

bool migrate_source_here(const struct guest *g)
{
	return g->mig.local && g->mig.local->src;
}

static void src_send_sent(struct migjob *j)
{
	if (j->ended)
		return;
	send_phase(j->d, j->g, j->job, "sent", NULL, &j->g->mig.st);
}

static void src_completed(struct migjob *j, const struct drv_migrate_stats *st)
{
	if (!j->g || j->ended || j->sent)
		return;
	/* QEMU may answer "completed" with zero figures at first: ask once
	 * more, at once.  Never wait longer for figures: the guest is paused on
	 * both ends until the commit. */
	if (st->total_time_ms == 0 && j->completed_queries++ < 1 && query(j, src_completed) == 0)
		return;
	j->sent = true;
	j->g->mig.st = *st;
	log_notice("migration %s of %s: QEMU completed (total %" PRId64 " ms, downtime %" PRId64
		   " ms); the guest is paused here", j->job, j->guest, st->total_time_ms,
		   st->downtime_ms);
	step(j, "sent", src_send_sent);
}

void migrate_source_event(struct guest *g, enum drv_event ev, const char *detail)
{
	struct migjob *j = g->mig.local;

	if (!j || !j->src) {
		log_debug("%s: %s (%s) outside a migration", g->cfg.name, drv_event_name(ev),
			  detail ? detail : "");
		return;
	}
	if (ev == DRV_EV_PAUSED || ev == DRV_EV_RESUMED) {
		log_info("migration %s of %s: source QEMU %s (%s)", j->job, j->guest,
			 drv_event_name(ev), detail ? detail : "");
		return;
	}
	if (ev == DRV_EV_EXIT) {
		job_abort_send(j, "the guest's QEMU exited on %s", g->d->conf.node_name);
		return;
	}
	log_info("migration %s of %s: source QEMU: %s", j->job, j->guest, detail ? detail : "");
	if (!detail)
		return;
	if (!strcmp(detail, "completed")) {
		/* the final figures first: they go with the commit */
		if (query(j, src_completed) < 0) {
			struct drv_migrate_stats st = { .status = "completed" };
			src_completed(j, &st);
		}
	} else if (!strncmp(detail, "failed", 6)) {
		job_abort_send(j, "%s: migration %s", engine(j), detail);
	}
}

/* --- applying the registry's changes ------------------------------------ */

/* The registry's record of the job ends (its outcome stays in mig.last). */
static void job_forget(struct guest *g)
{
	g->mig.job[0] = '\0';
	g->mig.phase = MIG_NONE;
	g->mig.sent = g->mig.loaded = false;
	g->mig.local = NULL;
}

/* The job ends here without a commit: keep (or resume) the source's copy,
 * destroy the destination's.  Every member runs this at the same point. */
static void end_aborted(struct hagentd *d, struct guest *g, const char *why)
{
	struct migjob *j = g->mig.local;

	snprintf(g->mig.last, sizeof(g->mig.last), "migration %s to %s aborted: %s", g->mig.job,
		 g->mig.dst, why);
	if (local_node(d, g->mig.src))
		evacuate_job_ended(d, g->cfg.name, false, why);
	publish(d, g, phase_name(g->mig.phase), "aborted", why);
	if (j) {
		if (j->src && g->h && j->sending && g->ops->migrate_cancel(g->h) < 0)
			log_err("migration %s of %s: cannot cancel: %s", j->job, j->guest,
				strerror(errno));
		j->ended = true;
		job_release(j);
	}
	job_forget(g);
	if (local_node(d, g->mig.src) && g->stor_active) {
		char err[256];
		/* the source keeps the guest: no second primary any more */
		if (storage_run(g, STORAGE_WINDOW_CLOSE, NULL, err, sizeof(err)) < 0)
			log_warn("%s: %s", g->cfg.name, err);
	}
	supervise_storage_settle(g);
}

/* A MIGRATE refused: answer its client, and tell an evacuation of ours. */
static void refuse(struct hagentd *d, uint32_t from, const Hagent__RegOp *op, int rc,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void refuse(struct hagentd *d, uint32_t from, const Hagent__RegOp *op, int rc,
		   const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	registry_answer(d, from, op, rc, "%s", msg);
	if (from == cluster_local_id(d) && op->name)
		evacuate_job_ended(d, op->name, false, msg);
}

static void apply_migrate(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct guest *g = guests_find(d, op->name);
	uint32_t id;
	char why[512];

	if (!g) {
		refuse(d, from, op, RC_NOT_FOUND, "unknown guest '%s'", op->name);
		return;
	}
	if (!op->node || !cluster_node_id(d, op->node, &id)) {
		refuse(d, from, op, RC_NOT_FOUND, "unknown node '%s'", op->node ? op->node : "");
		return;
	}
	if (g->mig.job[0]) {
		refuse(d, from, op, RC_ERROR,
				"%s is already migrating (job %s, %s to %s, %s)", g->cfg.name,
				g->mig.job, g->mig.src, g->mig.dst, phase_name(g->mig.phase));
		return;
	}
	/* Pacemaker's own move comes through its agent (migrate_to). */
	if (g->cfg.managed_by_pacemaker && !op->by_pacemaker) {
		refuse(d, from, op, RC_ERROR,
				"%s is managed by Pacemaker: move it with crm_resource --move",
				g->cfg.name);
		return;
	}
	if (g->desired != DESIRED_RUNNING || !g->owner[0] || g->state != GS_RUNNING) {
		refuse(d, from, op, RC_ERROR, "%s is not running (%s%s%s)", g->cfg.name,
				gstate_name(g->state), g->owner[0] ? " on " : "", g->owner);
		return;
	}
	if (!strcmp(g->owner, op->node)) {
		refuse(d, from, op, RC_ERROR, "%s already runs on %s", g->cfg.name,
				op->node);
		return;
	}
	if (!registry_member(d, op->node)) {
		refuse(d, from, op, RC_ERROR, "node %s is down (no hagentd in the group)",
				op->node);
		return;
	}
	if (op->gen != g->gen) {
		refuse(d, from, op, RC_ERROR, "%s changed meanwhile (gen %" PRIu64
				", asked for %" PRIu64 "); try again", g->cfg.name, g->gen, op->gen);
		return;
	}
	if (!placement_fits(d, g, op->node, why, sizeof(why))) {
		refuse(d, from, op, RC_ERROR, "cannot migrate %s to %s: %s", g->cfg.name,
				op->node, why);
		return;
	}
	memset(&g->mig.st, 0, sizeof(g->mig.st));
	snprintf(g->mig.job, sizeof(g->mig.job), "%s", op->job);
	snprintf(g->mig.src, sizeof(g->mig.src), "%s", g->owner);
	snprintf(g->mig.dst, sizeof(g->mig.dst), "%s", op->node);
	g->mig.phase = MIG_PREPARE;
	g->mig.sent = g->mig.loaded = false;
	g->mig.downtime_ms = op->downtime_ms;
	g->mig.auto_converge = op->auto_converge;
	g->mig.bandwidth_mib = op->bandwidth_mib;
	g->mig.timeout_s = op->timeout_s ? op->timeout_s : TO_MIGRATE_DEFAULT_S;
	g->mig.began_ms = now_ms();
	g->mig.local = NULL;
	publish(d, g, "none", "prepare", "migration requested");
	registry_answer(d, from, op, 0, NULL);
	if (local_node(d, g->mig.dst)) {
		dst_prepare(d, g);
	} else if (local_node(d, g->mig.src)) {
		char err[256];
		/* DRBD: the destination becomes a second primary */
		if (g->stor_active && storage_run(g, STORAGE_WINDOW_OPEN, NULL, err, sizeof(err)) < 0)
			log_warn("%s: %s", g->cfg.name, err);
		src_begin(d, g);
	}
}

/* The destination resumes its copy: the registry made it the guest. */
static void dst_resume(struct migjob *j)
{
	struct hagentd *d = j->d;
	struct guest *g = j->g;
	struct drv_guest *h = j->h;

	j->h = NULL;
	if (!h) {
		/* it exited during a hold: the guest is lost here; its supervisor
		 * reports it as any failed guest */
		log_err("migration %s of %s: the incoming QEMU is gone after the commit", j->job,
			j->guest);
		registry_show(d, g, GS_FAILED, "its migrated QEMU exited before it resumed");
	} else {
		g->ops->rebind(h, &d->drv, g);
		supervise_adopt(g, h, j->boot_mem_mib, j->mem_mib);
	}
	j->g = NULL;
	job_release(j);
}

static void dst_resume_held(void *arg)
{
	dst_resume(arg);
}

/* Both ends are done: the source's QEMU completed (its copy is paused for
 * good) and the destination's QEMU loaded the whole guest.  Every member
 * applies this at the same point of the order. */
static void commit(struct hagentd *d, struct guest *g)
{
	struct migjob *j = g->mig.local;
	uint64_t ms = now_ms() - g->mig.began_ms;
	const char *eng = !strcmp(g->ops->name, "xen") ? "libxl" : "QEMU";
	char src[64];

	snprintf(src, sizeof(src), "%s", g->mig.src);
	if (g->mig.st.total_time_ms > 0)
		snprintf(g->mig.last, sizeof(g->mig.last),
			 "migrated from %s to %s in %" PRIu64 " ms (%s: %" PRId64
			 " ms, downtime %" PRId64 " ms)", g->mig.src, g->mig.dst, ms, eng,
			 g->mig.st.total_time_ms, g->mig.st.downtime_ms);
	else
		snprintf(g->mig.last, sizeof(g->mig.last),
			 "migrated from %s to %s in %" PRIu64 " ms (%s gave no figures)",
			 g->mig.src, g->mig.dst, ms, eng);
	/* the one decision: from here on the destination's copy is the guest */
	g->gen++;
	snprintf(g->owner, sizeof(g->owner), "%s", g->mig.dst);
	registry_save(d, g);
	publish(d, g, "transfer", "commit", g->mig.last);
	if (local_node(d, src))
		evacuate_job_ended(d, g->cfg.name, true, NULL);
	job_forget(g);
	if (!j) {
		registry_show(d, g, GS_RUNNING, "migrated here");
		return;
	}
	j->ended = true;
	if (!j->src && g->stor_shared) {
		char err[256];
		/* the source goes secondary once its copy is gone; then this
		 * host is the only primary again (the job retries till then) */
		g->stor_shared = false;
		if (storage_run(g, STORAGE_WINDOW_CLOSE, NULL, err, sizeof(err)) < 0)
			log_warn("%s: %s", g->cfg.name, err);
	}
	if (!j->src && j->h) {
		/* j stays alive through a hold: nothing else reaches it now */
		if (!test_hold(d->loop, "resume", j->job, dst_resume_held, j, NULL))
			dst_resume(j);
		return;
	} else if (j->src) {
		char why[128];
		snprintf(why, sizeof(why), "migrated to %s", g->owner);
		g->owner_state = GS_RUNNING;
		snprintf(g->owner_reason, sizeof(g->owner_reason), "migrated from %s", src);
		supervise_hand_off(g, why);
	}
	job_release(j);
}

/* "sent" (from the source, with QEMU's final figures) and "loaded" (from the
 * destination): the commit is the second of the two to be applied. */
static void apply_done_half(struct hagentd *d, struct guest *g, const Hagent__RegOp *op,
			    bool sent)
{
	if (sent) {
		if (op->mig) {
			g->mig.st.downtime_ms = op->mig->downtime_ms;
			g->mig.st.total_time_ms = (int64_t)op->mig->elapsed_ms;
		}
		g->mig.sent = true;
	} else {
		g->mig.loaded = true;
	}
	log_info("migration %s of %s: %s", g->mig.job, g->cfg.name,
		 sent ? "the source sent the guest" : "the destination loaded the guest");
	if (g->mig.sent && g->mig.loaded)
		commit(d, g);
}

static void on_ready(struct hagentd *d, uint32_t from, struct guest *g, const Hagent__RegOp *op)
{
	(void)from;
	(void)op;
	g->mig.phase = MIG_TRANSFER;
	publish(d, g, "prepare", "transfer", "the destination is ready");
	if (local_node(d, g->mig.src))
		src_transfer(d, g);
}

static void on_progress(struct hagentd *d, uint32_t from, struct guest *g,
			const Hagent__RegOp *op)
{
	(void)d;
	(void)from;
	if (!op->mig)
		return;
	g->mig.st.total_bytes = op->mig->total_bytes;
	g->mig.st.transferred_bytes = op->mig->transferred_bytes;
	g->mig.st.remaining_bytes = op->mig->remaining_bytes;
	g->mig.st.rate_bps = op->mig->rate_bps;
	g->mig.st.dirty_rate = op->mig->dirty_rate;
	g->mig.st.expected_downtime_ms = op->mig->expected_downtime_ms;
	snprintf(g->mig.st.status, sizeof(g->mig.st.status), "%s",
		 op->mig->status ? op->mig->status : "");
}

static void on_sent(struct hagentd *d, uint32_t from, struct guest *g, const Hagent__RegOp *op)
{
	(void)from;
	apply_done_half(d, g, op, true);
}

static void on_loaded(struct hagentd *d, uint32_t from, struct guest *g, const Hagent__RegOp *op)
{
	(void)from;
	apply_done_half(d, g, op, false);
}

static void on_abort(struct hagentd *d, uint32_t from, struct guest *g, const Hagent__RegOp *op)
{
	end_aborted(d, g, op->reason && op->reason[0] ? op->reason : "aborted");
	registry_answer(d, from, op, 0, NULL);
}

/* The job's phase machine: what each MIG_PHASE does, and in which of the
 * registry's phases it applies (MIG_NONE: any).  Out of its phase, a
 * change is ignored: every member ignores it alike. */
static const struct {
	const char *name;
	enum mig_phase in;
	void (*apply)(struct hagentd *d, uint32_t from, struct guest *g, const Hagent__RegOp *op);
} phase_table[] = {
	{ "ready", MIG_PREPARE, on_ready },       /* prepare -> transfer */
	{ "progress", MIG_NONE, on_progress },    /* the source's figures */
	{ "sent", MIG_TRANSFER, on_sent },        /* with loaded: the commit */
	{ "loaded", MIG_TRANSFER, on_loaded },
	{ "abort", MIG_NONE, on_abort },          /* before the commit, any phase */
};

static void apply_phase(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	struct guest *g = guests_find(d, op->name);
	const char *ph = op->state ? op->state : "";
	size_t i;

	if (!g || !op->job || !g->mig.job[0] || strcmp(g->mig.job, op->job)) {
		if (!strcmp(ph, "abort"))
			registry_answer(d, from, op, RC_ERROR, "%s: no migration %s running",
					op->name, op->job && op->job[0] ? op->job : "");
		else
			log_info("migration %s of %s: %s for an ended job ignored",
				 op->job ? op->job : "?", op->name, ph);
		return;
	}
	for (i = 0; i < sizeof(phase_table) / sizeof(phase_table[0]); i++) {
		if (strcmp(ph, phase_table[i].name))
			continue;
		if (phase_table[i].in != MIG_NONE && phase_table[i].in != g->mig.phase)
			log_warn("migration %s of %s: '%s' in phase %s ignored", g->mig.job,
				 g->cfg.name, ph, phase_name(g->mig.phase));
		else
			phase_table[i].apply(d, from, g, op);
		return;
	}
	log_warn("migration %s of %s: unknown phase '%.32s' ignored", op->job, op->name, ph);
}

void migrate_apply(struct hagentd *d, uint32_t from, const Hagent__RegOp *op)
{
	if (op->kind == HAGENT__REG_OP__KIND__MIGRATE)
		apply_migrate(d, from, op);
	else
		apply_phase(d, from, op);
}

void migrate_members_changed(struct hagentd *d)
{
	struct guest *g;
	char why[160];

	guests_for_each(g, d) {
		const char *gone;
		if (!g->mig.job[0])
			continue;
		gone = !registry_member(d, g->mig.src) ? g->mig.src
		     : !registry_member(d, g->mig.dst) ? g->mig.dst : NULL;
		if (!gone)
			continue;
		snprintf(why, sizeof(why), "%s left the cluster group (%s)", gone,
			 !strcmp(gone, g->mig.src) ? "source" : "destination");
		end_aborted(d, g, why);
	}
}

/* --- requests ------------------------------------------------------------------ */

void migrate_new_job_id(struct hagentd *d, char *out, size_t len)
{
	static unsigned seq;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, len, "%.40s-%lx-%u", d->conf.node_name, (unsigned long)ts.tv_sec, ++seq);
}

int migrate_request_own(struct hagentd *d, struct guest *g, const char *dst)
{
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	char job[64];

	migrate_new_job_id(d, job, sizeof(job));
	op.kind = HAGENT__REG_OP__KIND__MIGRATE;
	op.name = g->cfg.name;
	op.node = (char *)dst;
	op.gen = g->gen;
	op.job = job;
	op.downtime_ms = (uint32_t)g->cfg.migrate_downtime_ms;
	op.auto_converge = g->cfg.migrate_auto_converge;
	op.bandwidth_mib = (uint32_t)g->cfg.migrate_bandwidth_mib;
	return registry_mcast(d, &op);
}

void migrate_req(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	struct guest *g = guests_find(d, req->args[0]);
	char job[64];
	uint32_t id;

	if (!g) {
		control_error(c, RC_NOT_FOUND, "unknown guest '%s'", req->args[0]);
		return;
	}
	if (!registry_active(d)) {
		control_error(c, RC_ERROR, "migrate: this host is not in a cluster");
		return;
	}
	if (!cluster_node_id(d, req->args[1], &id)) {
		control_error(c, RC_NOT_FOUND, "unknown node '%s'", req->args[1]);
		return;
	}
	if (!cluster_may_start(d)) {
		control_error(c, RC_ERROR, "migrate: this partition has no quorum");
		return;
	}
	if (!d->migrate || d->migrate->why_off[0]) {
		control_error(c, RC_ERROR, "migrate: migrations are off on %s: %s",
			      d->conf.node_name, d->migrate ? d->migrate->why_off : "not set up");
		return;
	}
	migrate_new_job_id(d, job, sizeof(job));
	op.kind = HAGENT__REG_OP__KIND__MIGRATE;
	op.name = g->cfg.name;
	op.node = req->args[1];
	op.gen = g->gen;
	op.job = job;
	op.downtime_ms = req->downtime_ms ? req->downtime_ms : (uint32_t)g->cfg.migrate_downtime_ms;
	op.bandwidth_mib = req->bandwidth_mib ? req->bandwidth_mib
					      : (uint32_t)g->cfg.migrate_bandwidth_mib;
	op.timeout_s = req->timeout_s;
	op.auto_converge = req->auto_converge || g->cfg.migrate_auto_converge;
	op.by_pacemaker = req->by_pacemaker;
	if (registry_submit(d, &op, c) < 0)
		control_error(c, RC_ERROR, "migrate: cannot reach the cluster: %s", strerror(errno));
}

void migrate_req_abort(struct conn *c, const Hagent__Request *req)
{
	struct hagentd *d = control_daemon(c);
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	struct guest *g = guests_find(d, req->args[0]);

	if (!g) {
		control_error(c, RC_NOT_FOUND, "unknown guest '%s'", req->args[0]);
		return;
	}
	if (!g->mig.job[0]) {
		control_error(c, RC_ERROR, "%s is not migrating", g->cfg.name);
		return;
	}
	op.kind = HAGENT__REG_OP__KIND__MIG_PHASE;
	op.name = g->cfg.name;
	op.node = d->conf.node_name;
	op.job = g->mig.job;
	op.state = "abort";
	op.reason = "aborted by the user";
	if (registry_submit(d, &op, c) < 0)
		control_error(c, RC_ERROR, "migrate-abort: cannot reach the cluster: %s",
			      strerror(errno));
}

void migrate_merge_job(struct hagentd *d, struct guest *g, const Hagent__MigInfo *mi)
{
	if (g->mig.job[0])
		return;
	snprintf(g->mig.job, sizeof(g->mig.job), "%s", mi->job);
	snprintf(g->mig.src, sizeof(g->mig.src), "%s", mi->src ? mi->src : "");
	snprintf(g->mig.dst, sizeof(g->mig.dst), "%s", mi->dst ? mi->dst : "");
	g->mig.phase = mi->phase && !strcmp(mi->phase, "transfer") ? MIG_TRANSFER : MIG_PREPARE;
	g->mig.sent = mi->sent;
	g->mig.loaded = mi->loaded;
	g->mig.began_ms = now_ms() - mi->elapsed_ms;
	g->mig.st.downtime_ms = mi->downtime_ms;
	g->mig.local = NULL;
	log_info("migration %s of %s: learnt from the cluster (%s to %s, %s)", g->mig.job,
		 g->cfg.name, g->mig.src, g->mig.dst, phase_name(g->mig.phase));
	(void)d; /* a later departure of either end aborts it here as everywhere */
}

void migrate_fill_info(struct hagentd *d, struct guest *g, Hagent__MigInfo *mi)
{
	(void)d;
	mi->job = g->mig.job;
	mi->src = g->mig.src;
	mi->dst = g->mig.dst;
	mi->phase = (char *)phase_name(g->mig.phase);
	mi->status = g->mig.st.status;
	mi->total_bytes = g->mig.st.total_bytes;
	mi->transferred_bytes = g->mig.st.transferred_bytes;
	mi->remaining_bytes = g->mig.st.remaining_bytes;
	mi->rate_bps = g->mig.st.rate_bps;
	mi->dirty_rate = g->mig.st.dirty_rate;
	mi->expected_downtime_ms = g->mig.st.expected_downtime_ms;
	mi->downtime_ms = g->mig.st.downtime_ms;
	mi->elapsed_ms = g->mig.job[0] ? now_ms() - g->mig.began_ms : 0;
	mi->sent = g->mig.sent;
	mi->loaded = g->mig.loaded;
	mi->last = g->mig.last;
}

/* --- set-up ----------------------------------------------------------------------- */

/* QEMU's TLS-PSK reads DIR/keys.psk: "username:hexkey" lines. */
static int write_tls_dir(struct hagentd *d, struct migrate *m)
{
	char path[PATH_MAX], tmp[PATH_MAX], line[16 + 2 * MCHAN_KEY_MAX + 2];
	size_t i, n;
	int fd;

	if (fs_path(m->tls_dir, sizeof(m->tls_dir), "%s/migrate-tls", d->conf.run_dir) < 0 ||
	    fs_path(path, sizeof(path), "%s/keys.psk", m->tls_dir) < 0 ||
	    fs_path(tmp, sizeof(tmp), "%s/keys.psk.tmp", m->tls_dir) < 0)
		return -1;
	if (mkdir(m->tls_dir, 0700) < 0 && errno != EEXIST)
		return -1;
	n = (size_t)snprintf(line, sizeof(line), "hagent:");
	for (i = 0; i < m->key.len; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%02x", m->key.key[i]);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "\n");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, line, n) != (ssize_t)n || close(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

int migrate_init(struct hagentd *d)
{
	struct migrate *m = calloc(1, sizeof(*m));
	char err[256] = "";
	const char *addr = d->conf.migration_address[0] ? d->conf.migration_address : "0.0.0.0";

	if (!m)
		return -1;
	d->migrate = m;
	m->mode = strcmp(d->conf.migration_transport, "plaintext") ? MCHAN_TLS : MCHAN_PLAIN;
	m->relay = !strcmp(d->conf.migration_transport, "tls");
	if (mchan_key_load(d->conf.authkey, &m->key, err, sizeof(err)) < 0) {
		snprintf(m->why_off, sizeof(m->why_off), "cluster key: %.200s", err);
		log_err("migration: off: %s", m->why_off);
		return -1;
	}
	if (!strcmp(d->conf.migration_transport, "qemu-tls") && write_tls_dir(d, m) < 0) {
		snprintf(m->why_off, sizeof(m->why_off), "cannot write QEMU's TLS key in %.100s: %s",
			 m->tls_dir, strerror(errno));
		log_err("migration: off: %s", m->why_off);
		m->tls_dir[0] = '\0';
		return -1;
	}
	if (strcmp(d->conf.migration_transport, "qemu-tls"))
		m->tls_dir[0] = '\0';
	m->srv = mchan_listen(d->loop, m->mode, &m->key, addr, (uint16_t)d->conf.migration_port,
			      TO_MIGRATE_HANDSHAKE_MS, chan_verify, chan_accept, d, err, sizeof(err));
	if (!m->srv) {
		snprintf(m->why_off, sizeof(m->why_off), "cannot listen on %.64s:%ld: %.150s", addr,
			 d->conf.migration_port, err);
		log_err("migration: off: %s", m->why_off);
		return -1;
	}
	log_info("migration: listening on %s:%ld (%s)", addr, d->conf.migration_port,
		 m->relay ? "TLS-PSK, memory relayed in the same session"
		 : m->mode == MCHAN_TLS ? "TLS-PSK, memory over QEMU's TLS" : "plaintext");
	return 0;
}

void migrate_fini(struct hagentd *d)
{
	struct migrate *m = d->migrate;
	struct guest *g;

	if (!m)
		return;
	guests_for_each(g, d) {
		struct migjob *j = g->mig.local;
		if (!j)
			continue;
		/* hagentd exits: an incoming QEMU is left for the cluster to clean
		 * (its source aborts the job); nothing is destroyed here */
		if (j->h) {
			j->ops->detach(j->h);
			j->h = NULL;
		}
		j->g = NULL;
		g->mig.local = NULL;
		job_release(j);
	}
	if (m->srv)
		mchan_server_close(m->srv);
	free(m);
	d->migrate = NULL;
}

/* Live migration in the QEMU driver: the QMP side of it.
 *
 * The migration channel (migrate/channel.c) gives both ends a connected,
 * authenticated socket; here it is handed to QEMU with getfd and used as
 * "fd:" migration on the source (migrate) and the destination
 * (migrate-incoming, on a QEMU started with -S -incoming defer, so it stays
 * paused until hagent says cont).  With a TLS directory, QEMU's own TLS-PSK
 * runs over that socket (a tls-creds-psk object, the cluster key in
 * DIR/keys.psk).  The set-up commands run one after the other (a chain), so
 * a refused one stops the migration before it sends anything; each end
 * reports with DRV_EV_MIGRATION events (QMP MIGRATION, "events" capability). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <signal.h>

#include "drivers/qemu_argv.h"
#include "drivers/qemu_priv.h"
#include "lib/log.h"

#define MIG_FDNAME "hagent-mig"
#define MIG_TLS_CLIENT "hagent-mig-tls-client"
#define MIG_TLS_SERVER "hagent-mig-tls-server"
#define MIG_TLS_ID_MAX 48
#define MIG_TLS_USER "hagent"
#define MIG_CHAIN_MAX 6
/* "unlimited": QEMU takes bytes per second in an int64 */
#define MIG_BANDWIDTH_UNLIMITED (1ULL << 40)

struct mig_step {
	const char *execute;
	json_t *args;
	bool with_fd;
};

struct qemu_mig_chain {
	struct drv_guest *g;
	struct mig_step steps[MIG_CHAIN_MAX];
	int n, next;
	int fd;            /* our duplicate of the channel, until getfd sent it */
	const char *what;  /* "migrate" or "migrate-incoming", for messages */
};

static void chain_free(struct qemu_mig_chain *c)
{
	int i;

	for (i = c->next; i < c->n; i++)
		json_decref(c->steps[i].args);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

void qemu_mig_free(struct drv_guest *g)
{
	if (g->chain) {
		g->chain->g = NULL;
		chain_free(g->chain);
		g->chain = NULL;
	}
}

static void chain_add(struct qemu_mig_chain *c, const char *execute, json_t *args, bool with_fd)
{
	if (c->n == MIG_CHAIN_MAX) {
		json_decref(args);
		return;
	}
	c->steps[c->n++] = (struct mig_step){ execute, args, with_fd };
}

static void chain_run(struct qemu_mig_chain *c);

static void on_chain_reply(struct qmp *q, void *arg, json_t *ret, json_t *error)
{
	struct drv_guest *g = arg;
	struct qemu_mig_chain *c = g->chain;
	char detail[256];

	(void)q;
	(void)ret;
	if (!c)
		return;
	qemu_guest_hold(g);
	if (error) {
		snprintf(detail, sizeof(detail), "failed: %s refused: %s",
			 c->steps[c->next - 1].execute, qemu_error_desc(error));
		/* a channel QEMU got but did not take would keep the peer waiting */
		if (c->fd < 0 && qmp_is_ready(g->qmp))
			qmp_command(g->qmp, json_pack("{s:s}", "fdname", MIG_FDNAME), "closefd",
				    NULL, NULL);
		g->chain = NULL;
		chain_free(c);
		qemu_emit(g, DRV_EV_MIGRATION, detail, NULL);
	} else if (c->next == c->n) {
		log_info("guest %s: %s under way", g->name, c->what);
		g->chain = NULL;
		chain_free(c);
	} else {
		chain_run(c);
	}
	qemu_guest_unhold(g);
}

static void chain_run(struct qemu_mig_chain *c)
{
	struct drv_guest *g = c->g;
	struct mig_step *s = &c->steps[c->next++];
	char detail[160];
	int rc;

	log_debug("guest %s: %s: %s", g->name, c->what, s->execute);
	if (s->with_fd) {
		rc = qmp_command_fd(g->qmp, s->args, s->execute, c->fd, on_chain_reply, g);
		close(c->fd);
		c->fd = -1;
	} else {
		rc = qmp_command(g->qmp, s->args, s->execute, on_chain_reply, g);
	}
	s->args = NULL;
	if (rc < 0) {
		snprintf(detail, sizeof(detail), "failed: cannot send %s: %s", s->execute,
			 strerror(errno));
		g->chain = NULL;
		chain_free(c);
		qemu_emit(g, DRV_EV_MIGRATION, detail, NULL);
	}
}

static struct qemu_mig_chain *chain_new(struct drv_guest *g, int fd, const char *what)
{
	struct qemu_mig_chain *c;

	if (g->exited || !qmp_is_ready(g->qmp)) {
		errno = ENOTCONN;
		return NULL;
	}
	if (g->chain) {
		errno = EBUSY;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->g = g;
	c->what = what;
	c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	/* QEMU's channels wait for EAGAIN in their loop (destination) or thread
	 * (source); a blocking socket would stall the destination's main loop,
	 * monitor included, whenever the source is slow. */
	if (c->fd < 0 || fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) {
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return NULL;
	}
	return c;
}

/* The id of this hagentd's tls-creds-psk object for an endpoint.  A QEMU
 * re-attached after an hagentd restart still holds the objects the earlier
 * hagentd added (and g->tls_* start false again): the pid keeps the ids
 * apart, so object-add never meets a duplicate. */
static const char *tls_id(char *buf, size_t len, bool client)
{
	snprintf(buf, len, "%s-%ld", client ? MIG_TLS_CLIENT : MIG_TLS_SERVER, (long)getpid());
	return buf;
}

static void chain_common(struct qemu_mig_chain *c, struct drv_guest *g,
			 const struct drv_migrate_params *p, const char *endpoint)
{
	char id[MIG_TLS_ID_MAX];

	chain_add(c, "migrate-set-capabilities",
		  json_pack("{s:[{s:s,s:b},{s:s,s:b}]}", "capabilities", "capability", "events",
			    "state", 1, "capability", "auto-converge", "state",
			    p && p->auto_converge && !strcmp(endpoint, "client")),
		  false);
	bool client = !strcmp(endpoint, "client");
	bool *have = client ? &g->tls_client : &g->tls_server;

	if (p && p->tls_dir && !*have) {
		/* one object per endpoint: a guest that came in leaves again later */
		/* AES-GCM first: with a SHA-256 PSK, GnuTLS's default order
		 * lands on ChaCha20, several times slower where AES-NI is */
		json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "qom-type", "tls-creds-psk", "id",
				      tls_id(id, sizeof(id), client), "endpoint", endpoint,
				      "dir", p->tls_dir, "priority",
				      "NORMAL:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305");
		/* the client names its key; the server looks every name up */
		if (client)
			json_object_set_new(o, "username", json_string(MIG_TLS_USER));
		chain_add(c, "object-add", o, false);
		*have = true;
	}
}

int qemu_migrate_send(struct drv_guest *g, int fd, const struct drv_migrate_params *p)
{
	struct qemu_mig_chain *c = chain_new(g, fd, "migrate");
	char id[MIG_TLS_ID_MAX];
	json_t *params;

	if (!c)
		return -1;
	chain_common(c, g, p, "client");
	params = json_pack("{s:I,s:s,s:s}", "max-bandwidth",
			   (json_int_t)(p->bandwidth_mib ? (uint64_t)p->bandwidth_mib << 20
							 : MIG_BANDWIDTH_UNLIMITED),
			   "tls-creds", p->tls_dir ? tls_id(id, sizeof(id), true) : "", "tls-hostname",
			   p->tls_dir && p->tls_hostname ? p->tls_hostname : "");
	if (p->downtime_ms)
		json_object_set_new(params, "downtime-limit", json_integer(p->downtime_ms));
	chain_add(c, "migrate-set-parameters", params, false);
	chain_add(c, "getfd", json_pack("{s:s}", "fdname", MIG_FDNAME), true);
	chain_add(c, "migrate", json_pack("{s:s}", "uri", "fd:" MIG_FDNAME), false);
	g->chain = c;
	log_info("guest %s: migrating out (%s, downtime %u ms, bandwidth %u MiB/s%s)", g->name,
		 p->tls_dir ? "QEMU TLS-PSK" : "plain", p->downtime_ms, p->bandwidth_mib,
		 p->auto_converge ? ", auto-converge" : "");
	chain_run(c);
	return 0;
}

int qemu_migrate_recv(struct drv_guest *g, int fd, const struct drv_migrate_params *p)
{
	struct qemu_mig_chain *c = chain_new(g, fd, "migrate-incoming");
	char id[MIG_TLS_ID_MAX];

	if (!c)
		return -1;
	chain_common(c, g, p, "server");
	chain_add(c, "migrate-set-parameters",
		  json_pack("{s:s}", "tls-creds", p && p->tls_dir ? tls_id(id, sizeof(id), false) : ""),
		  false);
	chain_add(c, "getfd", json_pack("{s:s}", "fdname", MIG_FDNAME), true);
	chain_add(c, "migrate-incoming", json_pack("{s:s}", "uri", "fd:" MIG_FDNAME), false);
	g->chain = c;
	log_info("guest %s: receiving a migration (%s)", g->name,
		 p && p->tls_dir ? "QEMU TLS-PSK" : "plain");
	chain_run(c);
	return 0;
}

/* --- progress --------------------------------------------------------------- */

struct mig_query {
	struct drv_guest *g;
	drv_migrate_query_fn cb;
	void *arg;
};

static uint64_t u64_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v) && json_integer_value(v) > 0)
		return (uint64_t)json_integer_value(v);
	if (json_is_real(v) && json_real_value(v) > 0)
		return (uint64_t)json_real_value(v);
	return 0;
}

static void stats_parse(json_t *ret, struct drv_migrate_stats *st)
{
	json_t *ram = json_object_get(ret, "ram");
	const char *s = json_string_value(json_object_get(ret, "status"));
	const char *e = json_string_value(json_object_get(ret, "error-desc"));
	json_t *mbps = json_object_get(ram, "mbps");

	snprintf(st->status, sizeof(st->status), "%s", s ? s : "none");
	snprintf(st->error, sizeof(st->error), "%s", e ? e : "");
	st->total_bytes = u64_of(ram, "total");
	st->transferred_bytes = u64_of(ram, "transferred");
	st->remaining_bytes = u64_of(ram, "remaining");
	/* mbps: megabits per second, a float */
	st->rate_bps = json_is_number(mbps) ? (uint64_t)(json_number_value(mbps) * 1e6 / 8) : 0;
	st->dirty_rate = u64_of(ram, "dirty-pages-rate");
	st->expected_downtime_ms = (int64_t)u64_of(ret, "expected-downtime");
	st->downtime_ms = (int64_t)u64_of(ret, "downtime");
	st->total_time_ms = (int64_t)u64_of(ret, "total-time");
}

/* The QEMU handle went away first: the caller learns it (NULL figures), so
 * that it can free what it gave as arg. */
static void on_query_drop(void *arg)
{
	struct mig_query *mq = arg;

	mq->cb(mq->arg, NULL);
	free(mq);
}

static void on_query(struct qmp *q, void *arg, json_t *ret, json_t *error)
{
	struct mig_query *mq = arg;
	struct drv_migrate_stats st;

	(void)q;
	memset(&st, 0, sizeof(st));
	if (error) {
		snprintf(st.status, sizeof(st.status), "unknown");
		snprintf(st.error, sizeof(st.error), "%s", qemu_error_desc(error));
	} else {
		stats_parse(ret, &st);
	}
	mq->cb(mq->arg, &st);
	free(mq);
}

/* A query whose ticket (allocated by the caller, NULL when that failed) is
 * freed by its reply or its drop, or here when it cannot be sent. */
static int send_ticket(struct drv_guest *g, const char *execute, qmp_reply_fn on,
		       qmp_drop_fn drop, void *ticket)
{
	if (!ticket)
		return -1;
	if (g->exited || !qmp_is_ready(g->qmp)) {
		free(ticket);
		errno = ENOTCONN;
		return -1;
	}
	if (qmp_command_drop(g->qmp, NULL, execute, on, ticket, drop) < 0) {
		free(ticket);
		return -1;
	}
	return 0;
}

int qemu_migrate_query(struct drv_guest *g, drv_migrate_query_fn cb, void *arg)
{
	struct mig_query *mq = calloc(1, sizeof(*mq));

	if (mq)
		*mq = (struct mig_query){ g, cb, arg };
	return send_ticket(g, "query-migrate", on_query, on_query_drop, mq);
}

struct probe {
	drv_probe_fn cb;
	void *arg;
};

static void on_probe_drop(void *arg)
{
	struct probe *p = arg;

	p->cb(p->arg, NULL, "QEMU went away before its monitor answered");
	free(p);
}

static void on_probe(struct qmp *q, void *arg, json_t *ret, json_t *error)
{
	struct probe *p = arg;
	const char *st = error ? NULL : json_string_value(json_object_get(ret, "status"));

	(void)q;
	if (st)
		p->cb(p->arg, st, NULL);
	else
		p->cb(p->arg, NULL, error ? qemu_error_desc(error) : "query-status gave no status");
	free(p);
}

/* The monitor's round trip: query-status, answered in QMP's own order. */
int qemu_probe(struct drv_guest *g, drv_probe_fn cb, void *arg)
{
	struct probe *p = calloc(1, sizeof(*p));

	if (p)
		*p = (struct probe){ cb, arg };
	return send_ticket(g, "query-status", on_probe, on_probe_drop, p);
}

/* A failed migration: say why (query-migrate's error-desc). */
static void on_failed_query(struct qmp *q, void *arg, json_t *ret, json_t *error)
{
	struct drv_guest *g = arg;
	const char *e = error ? NULL : json_string_value(json_object_get(ret, "error-desc"));
	char detail[256], tail[200] = "";

	(void)q;
	qemu_guest_hold(g);
	if (!e) /* QEMU 7.2 leaves error-desc out for some, e.g. a disk it cannot hand over */
		qemu_log_tail(g, tail, sizeof(tail));
	snprintf(detail, sizeof(detail), "failed: %s",
		 e ? e : tail[0] ? tail : "QEMU gave no reason");
	qemu_emit(g, DRV_EV_MIGRATION, detail, NULL);
	qemu_guest_unhold(g);
}

void qemu_mig_event(struct drv_guest *g, json_t *data)
{
	const char *s = json_string_value(json_object_get(data, "status"));

	if (!s)
		return;
	if (!strcmp(s, "failed") && !g->incoming && qmp_is_ready(g->qmp) &&
	    qmp_command(g->qmp, NULL, "query-migrate", on_failed_query, g) == 0)
		return;
	qemu_emit(g, DRV_EV_MIGRATION, s, NULL);
}

/* --- cancel ------------------------------------------------------------------ */

static void on_cancel_status(struct qmp *q, void *arg, json_t *ret, json_t *error)
{
	struct drv_guest *g = arg;
	const char *s = error ? NULL : json_string_value(json_object_get(ret, "status"));

	(void)q;
	if (!s || g->exited)
		return;
	/* QEMU resumes a guest it stopped for an unfinished migration itself;
	 * a completed one leaves it paused ("postmigrate"): it runs on here. */
	if (!strcmp(s, "postmigrate") || !strcmp(s, "finish-migrate")) {
		log_notice("guest %s: migration cancelled after it completed: resuming here", g->name);
		qmp_command(g->qmp, NULL, "cont", NULL, NULL);
	}
}

int qemu_migrate_cancel(struct drv_guest *g)
{
	if (g->exited || !qmp_is_ready(g->qmp)) {
		errno = ENOTCONN;
		return -1;
	}
	qemu_mig_free(g); /* a chain still setting up stops here */
	log_info("guest %s: migrate_cancel", g->name);
	if (qmp_command(g->qmp, NULL, "migrate_cancel", NULL, NULL) < 0)
		return -1;
	return qmp_command(g->qmp, NULL, "query-status", on_cancel_status, g);
}

/* The incoming guest becomes the guest: its run_dir files lose their tag
 * (QEMU keeps its open files and listening sockets across a rename). */
void qemu_rebind(struct drv_guest *g, struct drv_host *host, void *owner)
{
	char base[QEMU_INCOMING_NAME_MAX];

	g->host = host;
	g->owner = owner;
	if (!g->incoming)
		return;
	g->incoming = false;
	qemu_incoming_name(base, sizeof(base), g->name);
	qemu_files_rename(host, base, g->name);
	qemu_path(g->qmp_path, sizeof(g->qmp_path), host->run_dir, g->name, QEMU_SUFFIX_QMP);
	qemu_path(g->serial_path, sizeof(g->serial_path), host->run_dir, g->name,
		  QEMU_SUFFIX_SERIAL);
	qemu_path(g->pid_path, sizeof(g->pid_path), host->run_dir, g->name, QEMU_SUFFIX_PID);
	qemu_path(g->log_path, sizeof(g->log_path), host->run_dir, g->name, QEMU_SUFFIX_LOG);
}

bool qemu_incoming_alive(struct drv_host *host, const char *name)
{
	char base[QEMU_INCOMING_NAME_MAX], path[PATH_MAX];
	pid_t pid;

	qemu_incoming_name(base, sizeof(base), name);
	return qemu_path(path, sizeof(path), host->run_dir, base, QEMU_SUFFIX_PID) == 0 &&
	       qemu_find_running(path, name, &pid, NULL) == 0;
}

void qemu_discard_incoming(struct drv_host *host, const char *name)
{
	char base[QEMU_INCOMING_NAME_MAX], path[PATH_MAX];
	pid_t pid;
	int pidfd;

	qemu_incoming_name(base, sizeof(base), name);
	if (qemu_path(path, sizeof(path), host->run_dir, base, QEMU_SUFFIX_PID) < 0)
		return;
	if (qemu_find_running(path, name, &pid, &pidfd) == 0) {
		log_notice("guest %s: an incoming copy (QEMU %d) was left by a migration that "
			   "ended while hagentd was away; killing it", name, (int)pid);
		if (kill(-pid, SIGKILL) < 0)
			kill(pid, SIGKILL);
		close(pidfd);
	}
	qemu_files_unlink(host, base);
}

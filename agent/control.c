#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/control.h"
#include "agent/guests.h"
#include "agent/registry.h"
#include "agent/requests.h"
#include "agent/supervise.h"
#include "agent/timeouts.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "proto/frame.h"
#include "proto/hagent.pb-c.h"

#define CONN_OUT_MAX (8u << 20) /* a subscriber further behind is dropped */
#define CONN_MAX 256

struct conn {
	struct qb_list_head list;
	struct control *ctl;
	int fd;
	uid_t uid;
	struct frame_reader rd;
	uint8_t *out;
	size_t out_len, out_cap;
	bool subscriber;
	bool dead;               /* closed as soon as the loop gets back */
	/* a request waiting for a guest to settle */
	char wait_guest[GUEST_NAME_MAX];
	unsigned wait_mask;      /* bit per enum gstate */
	unsigned wait_s;
	qb_loop_timer_handle wait_timer;
	bool waiting;
	uint64_t pending_id;     /* a registry change this request waits for */
};

struct control {
	struct hagentd *d;
	int fd;
	char path[PATH_MAX];
	struct qb_list_head conns;
	int n_conns;
	gid_t gid;
	bool have_gid;
	uint64_t last_pending;   /* control_pending_new's ids: one sequence for all */
};

static void conn_close(struct conn *c);
static void conn_kill(struct conn *c);
static int conn_io(int fd, int revents, void *arg);

static void conn_update_poll(struct conn *c)
{
	if (c->dead)
		return;
	int ev = POLLIN | (c->out_len ? POLLOUT : 0);

	qb_loop_poll_mod(c->ctl->d->loop, QB_LOOP_MED, c->fd, ev, c, conn_io);
}

static int conn_flush(struct conn *c)
{
	while (c->out_len) {
		ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -1;
		}
		memmove(c->out, c->out + w, c->out_len - (size_t)w);
		c->out_len -= (size_t)w;
	}
	conn_update_poll(c);
	return 0;
}

/* Queue a frame; -1 when the peer is too far behind (caller closes). */
static int conn_send(struct conn *c, uint8_t type, const ProtobufCMessage *msg)
{
	uint8_t *buf;
	ssize_t n = frame_encode(type, msg, &buf);

	if (n < 0)
		return -1;
	if (c->out_len + (size_t)n > CONN_OUT_MAX) {
		free(buf);
		errno = ENOBUFS;
		return -1;
	}
	if (c->out_len + (size_t)n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		uint8_t *nb;
		while (cap < c->out_len + (size_t)n)
			cap *= 2;
		nb = realloc(c->out, cap);
		if (!nb) {
			free(buf);
			return -1;
		}
		c->out = nb;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, buf, (size_t)n);
	c->out_len += (size_t)n;
	free(buf);
	return conn_flush(c);
}

void control_respond(struct conn *c, Hagent__Response *resp)
{
	if (conn_send(c, FRAME_RESPONSE, &resp->base) < 0) {
		log_warn("control: cannot answer client: %s", strerror(errno));
		conn_kill(c);
	}
}

void control_error(struct conn *c, int status, const char *fmt, ...)
{
	Hagent__Response resp = HAGENT__RESPONSE__INIT;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	resp.status = status;
	resp.error = msg;
	resp.node = c->ctl->d->conf.node_name;
	control_respond(c, &resp);
}

static void wait_done(struct conn *c, struct guest *g, bool timed_out)
{
	Hagent__Response resp = HAGENT__RESPONSE__INIT;
	Hagent__GuestInfo info = HAGENT__GUEST_INFO__INIT, *infos[1] = { &info };
	char err[300];

	if (c->waiting && !timed_out)
		qb_loop_timer_del(c->ctl->d->loop, c->wait_timer);
	c->waiting = false;
	resp.node = c->ctl->d->conf.node_name;
	if (!g) {
		resp.status = 0; /* removed meanwhile: nothing left to wait for */
	} else {
		requests_fill_info(c->ctl->d, g, &info);
		resp.guests = infos;
		resp.n_guests = 1;
		if (timed_out) {
			snprintf(err, sizeof(err), "%s: still %s after %u s", g->cfg.name,
				 gstate_name(g->state), c->wait_s);
			resp.status = 3;
			resp.error = err;
		} else if (g->state == GS_FAILED) {
			snprintf(err, sizeof(err), "%s: failed: %s", g->cfg.name, g->reason);
			resp.status = 1;
			resp.error = err;
		}
	}
	control_respond(c, &resp);
}

static void wait_timeout(void *arg)
{
	struct conn *c = arg;

	wait_done(c, guests_find(c->ctl->d, c->wait_guest), true);
}

void control_wait(struct conn *c, struct guest *g, unsigned mask, unsigned timeout_s)
{
	if (mask & (1u << g->state)) {
		c->waiting = false;
		wait_done(c, g, false);
		return;
	}
	snprintf(c->wait_guest, sizeof(c->wait_guest), "%s", g->cfg.name);
	c->wait_mask = mask;
	c->wait_s = timeout_s;
	if (qb_loop_timer_add(c->ctl->d->loop, QB_LOOP_LOW, (uint64_t)timeout_s * 1000000000ULL, c,
			      wait_timeout, &c->wait_timer) < 0) {
		wait_done(c, g, true);
		return;
	}
	c->waiting = true;
}

uint64_t control_pending(struct conn *c, uint64_t id)
{
	c->pending_id = id;
	return id;
}

uint64_t control_pending_new(struct conn *c)
{
	return control_pending(c, ++c->ctl->last_pending);
}

struct conn *control_by_pending(struct hagentd *d, uint64_t id)
{
	struct conn *c;

	if (!d->ctl || !id)
		return NULL;
	qb_list_for_each_entry(c, &d->ctl->conns, list)
		if (!c->dead && c->pending_id == id)
			return c;
	return NULL;
}

void control_ok(struct conn *c)
{
	Hagent__Response resp = HAGENT__RESPONSE__INIT;

	resp.node = c->ctl->d->conf.node_name;
	control_respond(c, &resp);
}

void control_subscribe(struct conn *c)
{
	c->subscriber = true;
}

struct hagentd *control_daemon(struct conn *c)
{
	return c->ctl->d;
}

/* Stamp an event and send it to every `hactl events` subscriber. */
static void event_send(struct hagentd *d, Hagent__Event *ev)
{
	struct conn *c, *tmp;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ev->time_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	qb_list_for_each_entry_safe(c, tmp, &d->ctl->conns, list) {
		if (c->dead || !c->subscriber)
			continue;
		if (conn_send(c, FRAME_EVENT, &ev->base) < 0) {
			log_warn("events: dropping a subscriber that fell behind");
			conn_kill(c);
		}
	}
}

void events_publish(struct hagentd *d, struct guest *g, enum gstate from, enum gstate to,
		    const char *cause)
{
	Hagent__Event ev = HAGENT__EVENT__INIT;
	struct conn *c, *tmp;

	if (g->owner[0] && guest_is_local(g) && from != to)
		registry_report(d, g); /* the other members show what the owner sees */
	if (!d->ctl)
		return;
	ev.guest = g->cfg.name;
	ev.from = (char *)gstate_name(from);
	ev.to = (char *)gstate_name(to);
	ev.cause = (char *)(cause ? cause : "");
	ev.node = g->owner[0] ? g->owner : d->conf.node_name;
	event_send(d, &ev);
	qb_list_for_each_entry_safe(c, tmp, &d->ctl->conns, list)
		if (!c->dead && c->waiting && !strcmp(c->wait_guest, g->cfg.name) &&
		    (c->wait_mask & (1u << to)))
			wait_done(c, g, false);
}

static void conn_close(struct conn *c)
{
	struct control *ctl = c->ctl;

	if (c->waiting)
		qb_loop_timer_del(ctl->d->loop, c->wait_timer);
	if (!c->dead)
		qb_loop_poll_del(ctl->d->loop, c->fd);
	close(c->fd);
	frame_reader_free(&c->rd);
	free(c->out);
	qb_list_del(&c->list);
	ctl->n_conns--;
	free(c);
}

static void close_job(void *arg)
{
	conn_close(arg);
}

/* Closing is deferred to the loop so no caller up the stack (a request
 * handler, an event fan-out) is left holding a freed connection. */
static void conn_kill(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	if (c->waiting)
		qb_loop_timer_del(c->ctl->d->loop, c->wait_timer);
	c->waiting = false;
	c->subscriber = false;
	qb_loop_poll_del(c->ctl->d->loop, c->fd);
	if (qb_loop_job_add(c->ctl->d->loop, QB_LOOP_HIGH, c, close_job) < 0)
		log_err("control: cannot schedule close");
}

static int conn_io(int fd, int revents, void *arg)
{
	struct conn *c = arg;
	uint8_t buf[16384];

	if (c->dead)
		return 0;
	if (revents & POLLOUT) {
		if (conn_flush(c) < 0) {
			conn_kill(c);
			return 0;
		}
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		uint8_t type;
		const uint8_t *payload;
		size_t plen;
		int got;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0) {
			conn_kill(c);
			return 0;
		}
		if (frame_reader_feed(&c->rd, buf, (size_t)r) < 0) {
			log_warn("control: request too large from uid %d, closing", (int)c->uid);
			control_error(c, 2, "request too large (limit %u bytes)", FRAME_MAX_CONTROL);
			conn_kill(c);
			return 0;
		}
		while ((got = frame_reader_next(&c->rd, &type, &payload, &plen)) == 1) {
			Hagent__Request *req;

			if (type != FRAME_REQUEST || c->waiting || c->subscriber || c->pending_id) {
				log_warn("control: unexpected frame type %u, closing", type);
				control_error(c, 2, "protocol error: unexpected frame");
				conn_kill(c);
				return 0;
			}
			req = hagent__request__unpack(NULL, plen, payload);
			if (!req) {
				log_warn("control: malformed request from uid %d, closing", (int)c->uid);
				control_error(c, 2, "protocol error: malformed request");
				conn_kill(c);
				return 0;
			}
			requests_dispatch(c, req);
			hagent__request__free_unpacked(req, NULL);
			if (c->dead)
				return 0;
		}
		if (got < 0) {
			log_warn("control: bad frame from uid %d (%s), closing", (int)c->uid,
				 strerror(errno));
			control_error(c, 2, "protocol error: %s", strerror(errno));
			conn_kill(c);
			return 0;
		}
	}
}

static bool peer_allowed(struct control *ctl, int fd, uid_t *uid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	gid_t groups[256];
	int ngroups = 256, i;
	struct passwd *pw;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	*uid = cr.uid;
	if (cr.uid == 0 || cr.uid == geteuid())
		return true;
	if (!ctl->have_gid)
		return false;
	if (cr.gid == ctl->gid)
		return true;
	/* supplementary membership of socket_group counts too */
	pw = getpwuid(cr.uid);
	if (pw && getgrouplist(pw->pw_name, pw->pw_gid, groups, &ngroups) >= 0)
		for (i = 0; i < ngroups; i++)
			if (groups[i] == ctl->gid)
				return true;
	return false;
}

static int accept_io(int fd, int revents, void *arg)
{
	struct control *ctl = arg;
	struct conn *c;
	uid_t uid = (uid_t)-1;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0)
		return 0;
	if (!peer_allowed(ctl, cfd, &uid)) {
		log_warn("control: refused client uid %d (not root, not in socket_group)", (int)uid);
		close(cfd);
		return 0;
	}
	if (ctl->n_conns >= CONN_MAX) {
		log_warn("control: too many clients (%d), refusing one", CONN_MAX);
		close(cfd);
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return 0;
	}
	c->ctl = ctl;
	c->fd = cfd;
	c->uid = uid;
	frame_reader_init(&c->rd, FRAME_MAX_CONTROL);
	qb_list_add_tail(&c->list, &ctl->conns);
	ctl->n_conns++;
	if (qb_loop_poll_add(ctl->d->loop, QB_LOOP_MED, cfd, POLLIN, c, conn_io) < 0) {
		qb_list_del(&c->list);
		ctl->n_conns--;
		close(cfd);
		free(c);
	}
	return 0;
}

int control_listen(struct hagentd *d)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct group *gr;

	if (!ctl)
		return -1;
	ctl->d = d;
	qb_list_init(&ctl->conns);
	if (fs_path(ctl->path, sizeof(ctl->path), "%s/hagentd.sock", d->conf.run_dir) < 0 ||
	    strlen(ctl->path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	memcpy(sa.sun_path, ctl->path, strlen(ctl->path) + 1);
	if (d->conf.socket_group[0]) {
		gr = getgrnam(d->conf.socket_group);
		if (!gr) {
			log_err("socket_group %s does not exist", d->conf.socket_group);
			errno = ENOENT;
			goto fail;
		}
		ctl->gid = gr->gr_gid;
		ctl->have_gid = true;
	}
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0)
		goto fail;
	unlink(ctl->path); /* stale: the pid-file lock proves no other hagentd owns it */
	if (bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(ctl->path, 0660) < 0 ||
	    (ctl->have_gid && chown(ctl->path, 0, ctl->gid) < 0) || listen(ctl->fd, 64) < 0)
		goto fail_fd;
	if (qb_loop_poll_add(d->loop, QB_LOOP_MED, ctl->fd, POLLIN, ctl, accept_io) < 0)
		goto fail_fd;
	d->ctl = ctl;
	return 0;
fail_fd:
	close(ctl->fd);
fail:
	free(ctl);
	return -1;
}

void control_close(struct hagentd *d)
{
	struct control *ctl = d->ctl;
	struct conn *c, *tmp;

	if (!ctl)
		return;
	qb_list_for_each_entry_safe(c, tmp, &ctl->conns, list)
		conn_close(c);
	qb_loop_poll_del(d->loop, ctl->fd);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl);
	d->ctl = NULL;
}

void events_publish_node(struct hagentd *d, const char *node, const char *from, const char *to,
			 const char *cause)
{
	log_info("node %s: %s -> %s (%s)", node, from, to, cause);
	events_publish_raw(d, "", node, from, to, cause);
}

void events_publish_raw(struct hagentd *d, const char *guest, const char *node, const char *from,
			const char *to, const char *cause)
{
	Hagent__Event ev = HAGENT__EVENT__INIT;

	if (!d->ctl)
		return;
	ev.guest = (char *)guest;
	ev.from = (char *)from;
	ev.to = (char *)to;
	ev.cause = (char *)cause;
	ev.node = (char *)node;
	event_send(d, &ev);
}

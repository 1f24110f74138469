#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "drivers/qmp.h"
#include "lib/log.h"

#define QMP_READ_CHUNK 65536
#define QMP_IN_INITIAL 4096
#define QMP_EXECUTE_MAX 64
#define QMP_EXCERPT 80

enum qmp_state { QS_CONNECTING = 0, QS_GREETING, QS_NEGOTIATING, QS_READY, QS_DEAD };

/* One serialized command waiting to be written. */
struct qmp_out {
	struct qmp_out *next;
	char *buf;
	size_t len, off;
	int fd; /* sent with the first byte (SCM_RIGHTS), -1 for none */
};

/* One command waiting for its reply, matched by id. */
struct qmp_pending {
	struct qmp_pending *next;
	json_int_t id;
	qmp_reply_fn cb;
	void *arg;
	qmp_drop_fn drop;   /* instead of cb when it is discarded unanswered */
	char execute[QMP_EXECUTE_MAX];
};

static void pending_discard(struct qmp_pending *p)
{
	if (p->drop)
		p->drop(p->arg);
	free(p);
}

struct qmp {
	qb_loop_t *loop;
	int fd;
	enum qmp_state state;
	struct qmp_callbacks cb;
	void *arg;
	char tag[64];
	json_t *greeting;
	/* Input: bytes [0, in_len) of in; [0, scan) known to hold no '\n'. */
	char *in;
	size_t in_len, in_cap, scan;
	struct qmp_out *out_head, *out_tail;
	struct qmp_pending *pend_head, *pend_tail;
	json_int_t next_id;
	int poll_events; /* what fd is registered for in the loop; 0 = not */
	/* Callbacks may call qmp_close(): depth counts the frames of ours on the
	 * stack, and the free waits for the outermost one. */
	int depth;
	bool closing;
	/* A write error found inside qmp_command() is reported from the loop,
	 * never from under the caller. */
	qb_loop_timer_handle fail_timer;
	bool fail_timer_on;
	int fail_err;
};

static void qmp_fail(struct qmp *q, int err, const char *why);
static int32_t qmp_dispatch(int32_t fd, int32_t revents, void *data);

/* A printable excerpt of untrusted bytes for a log line. */
static void qmp_excerpt(char *out, size_t outlen, const char *s, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];

		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[o] = '\0';
}

static void qmp_free_out(struct qmp *q)
{
	struct qmp_out *o, *next;

	for (o = q->out_head; o; o = next) {
		next = o->next;
		if (o->fd >= 0)
			close(o->fd);
		free(o->buf);
		free(o);
	}
	q->out_head = q->out_tail = NULL;
}

static void qmp_maybe_free(struct qmp *q)
{
	if (q->depth > 0 || !q->closing)
		return;
	free(q->in);
	free(q);
}

static int qmp_wanted_events(const struct qmp *q)
{
	switch (q->state) {
	case QS_CONNECTING:
		return POLLOUT;
	case QS_DEAD:
		return 0;
	case QS_GREETING:
		return POLLIN;
	default:
		return POLLIN | (q->out_head ? POLLOUT : 0);
	}
}

static int qmp_poll_update(struct qmp *q)
{
	int want = qmp_wanted_events(q);
	int rc;

	if (want == q->poll_events)
		return 0;
	if (want == 0) {
		qb_loop_poll_del(q->loop, q->fd);
		q->poll_events = 0;
		return 0;
	}
	if (q->poll_events == 0)
		rc = qb_loop_poll_add(q->loop, QB_LOOP_MED, q->fd, want, q, qmp_dispatch);
	else
		rc = qb_loop_poll_mod(q->loop, QB_LOOP_MED, q->fd, want, q, qmp_dispatch);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	q->poll_events = want;
	return 0;
}

/* Drop the socket and every queue.  No callback. */
static void qmp_teardown(struct qmp *q)
{
	struct qmp_pending *p, *next;

	if (q->poll_events) {
		qb_loop_poll_del(q->loop, q->fd);
		q->poll_events = 0;
	}
	if (q->fd >= 0) {
		close(q->fd);
		q->fd = -1;
	}
	if (q->fail_timer_on) {
		qb_loop_timer_del(q->loop, q->fail_timer);
		q->fail_timer_on = false;
	}
	qmp_free_out(q);
	for (p = q->pend_head; p; p = next) {
		next = p->next;
		pending_discard(p);
	}
	q->pend_head = q->pend_tail = NULL;
	json_decref(q->greeting);
	q->greeting = NULL;
	q->state = QS_DEAD;
}

/* The connection is over: fail every pending command, then tell the owner.
 * Only called from loop callbacks (depth > 0 guards the memory). */
static void qmp_fail(struct qmp *q, int err, const char *why)
{
	struct qmp_pending *list, *p;
	json_t *error;

	if (q->state == QS_DEAD)
		return;
	if (err)
		log_warn("qmp %s: connection closed: %s (%s)", q->tag, why, strerror(err));
	else
		log_info("qmp %s: connection closed: %s", q->tag, why);
	list = q->pend_head;
	q->pend_head = q->pend_tail = NULL;
	qmp_teardown(q);
	q->depth++;
	error = json_pack("{s:s, s:s}", "class", "Disconnected", "desc", why);
	while (list) {
		p = list;
		list = p->next;
		if (!q->closing && p->cb) {
			p->cb(q, p->arg, NULL, error);
			free(p);
		} else {
			pending_discard(p);
		}
	}
	json_decref(error);
	if (!q->closing && q->cb.closed)
		q->cb.closed(q, q->arg, err);
	q->depth--;
}

static void qmp_fail_timer_cb(void *data)
{
	struct qmp *q = data;

	q->fail_timer_on = false;
	q->depth++;
	qmp_fail(q, q->fail_err, "write failed");
	q->depth--;
	qmp_maybe_free(q);
}

static void qmp_schedule_fail(struct qmp *q, int err)
{
	int rc;

	if (q->fail_timer_on || q->state == QS_DEAD)
		return;
	q->fail_err = err;
	rc = qb_loop_timer_add(q->loop, QB_LOOP_HIGH, 0, q, qmp_fail_timer_cb, &q->fail_timer);
	if (rc == 0) {
		q->fail_timer_on = true;
		return;
	}
	/* No timer: make the reader see the end instead. */
	shutdown(q->fd, SHUT_RDWR);
}

/* Write what the socket takes now.  Errors are reported from the loop. */
static void qmp_flush(struct qmp *q)
{
	while (q->out_head && q->state >= QS_NEGOTIATING && q->state != QS_DEAD) {
		struct qmp_out *o = q->out_head;
		ssize_t n;

		if (o->fd >= 0 && o->off == 0) {
			union {
				char buf[CMSG_SPACE(sizeof(int))];
				struct cmsghdr align;
			} u;
			struct iovec iov = { .iov_base = o->buf, .iov_len = o->len };
			struct msghdr msg = { 0 };
			struct cmsghdr *c;

			memset(&u, 0, sizeof(u));
			msg.msg_iov = &iov;
			msg.msg_iovlen = 1;
			msg.msg_control = u.buf;
			msg.msg_controllen = sizeof(u.buf);
			c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &o->fd, sizeof(int));
			n = sendmsg(q->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		} else {
			n = send(q->fd, o->buf + o->off, o->len - o->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			qmp_schedule_fail(q, errno);
			return;
		}
		if (o->fd >= 0) {
			/* The descriptor travelled with the first byte. */
			close(o->fd);
			o->fd = -1;
		}
		o->off += (size_t)n;
		if (o->off == o->len) {
			q->out_head = o->next;
			if (!q->out_head)
				q->out_tail = NULL;
			free(o->buf);
			free(o);
		}
	}
	if (q->state != QS_DEAD && qmp_poll_update(q) < 0)
		qmp_schedule_fail(q, errno);
}

static struct qmp_pending *qmp_take_pending(struct qmp *q, json_int_t id)
{
	struct qmp_pending *p, *prev = NULL;

	for (p = q->pend_head; p; prev = p, p = p->next) {
		if (p->id != id)
			continue;
		if (prev)
			prev->next = p->next;
		else
			q->pend_head = p->next;
		if (q->pend_tail == p)
			q->pend_tail = prev;
		p->next = NULL;
		return p;
	}
	return NULL;
}

/* Serialize and queue; at_head puts it before everything (qmp_capabilities
 * must be the first command on the wire). */
static int qmp_enqueue(struct qmp *q, json_t *args, const char *execute, int fd, qmp_reply_fn cb,
		       void *arg, qmp_drop_fn drop, bool at_head)
{
	struct qmp_pending *p = NULL;
	struct qmp_out *o = NULL;
	json_t *msg = NULL;
	char *text = NULL;
	size_t tlen;
	int saved;

	if (!q || !execute || strlen(execute) >= QMP_EXECUTE_MAX) {
		json_decref(args);
		errno = EINVAL;
		return -1;
	}
	if (q->state == QS_DEAD || q->closing) {
		json_decref(args);
		errno = ENOTCONN;
		return -1;
	}
	p = calloc(1, sizeof(*p));
	o = calloc(1, sizeof(*o));
	msg = json_object();
	if (!p || !o || !msg)
		goto nomem;
	o->fd = -1;
	p->id = ++q->next_id;
	if (json_object_set_new(msg, "execute", json_string(execute)) < 0 ||
	    json_object_set_new(msg, "id", json_integer(p->id)) < 0)
		goto nomem;
	if (args) {
		if (json_object_set_new(msg, "arguments", args) < 0) {
			args = NULL;
			goto nomem;
		}
		args = NULL;
	}
	text = json_dumps(msg, JSON_COMPACT);
	if (!text)
		goto nomem;
	tlen = strlen(text);
	o->buf = malloc(tlen + 1);
	if (!o->buf)
		goto nomem;
	memcpy(o->buf, text, tlen);
	o->buf[tlen] = '\n';
	o->len = tlen + 1;
	if (fd >= 0) {
		o->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (o->fd < 0)
			goto fail;
	}
	free(text);
	json_decref(msg);
	p->cb = cb;
	p->arg = arg;
	p->drop = drop;
	strcpy(p->execute, execute); /* length checked above */

	if (q->pend_tail)
		q->pend_tail->next = p;
	else
		q->pend_head = p;
	q->pend_tail = p;
	if (at_head) {
		o->next = q->out_head;
		q->out_head = o;
		if (!q->out_tail)
			q->out_tail = o;
	} else {
		if (q->out_tail)
			q->out_tail->next = o;
		else
			q->out_head = o;
		q->out_tail = o;
	}
	log_debug("qmp %s: -> %s (id %lld)", q->tag, execute, (long long)p->id);
	qmp_flush(q);
	return 0;

nomem:
	errno = ENOMEM;
fail:
	saved = errno;
	json_decref(args);
	json_decref(msg);
	free(text);
	if (o) {
		free(o->buf);
		free(o);
	}
	free(p);
	errno = saved;
	return -1;
}

static void qmp_caps_reply(struct qmp *q, void *arg, json_t *ret, json_t *error)
{
	json_t *greeting;

	(void)arg;
	if (error) {
		const char *desc = json_string_value(json_object_get(error, "desc"));

		qmp_fail(q, EPROTO, desc ? desc : "qmp_capabilities refused");
		return;
	}
	q->state = QS_READY;
	log_debug("qmp %s: ready", q->tag);
	greeting = q->greeting;
	q->greeting = NULL;
	if (q->cb.ready)
		q->cb.ready(q, q->arg, greeting);
	json_decref(greeting);
}

static int64_t qmp_timestamp(json_t *msg)
{
	json_t *ts = json_object_get(msg, "timestamp");
	json_t *sec = json_object_get(ts, "seconds");
	json_t *usec = json_object_get(ts, "microseconds");

	if (!json_is_integer(sec) || !json_is_integer(usec))
		return -1;
	return (int64_t)json_integer_value(sec) * 1000000 + (int64_t)json_integer_value(usec);
}

/* One complete line (without its '\n'). */
static void qmp_handle_line(struct qmp *q, const char *line, size_t len)
{
	char ex[QMP_EXCERPT + 1];
	json_error_t jerr;
	json_t *msg, *v, *ret, *error;

	if (len > 0 && line[len - 1] == '\r')
		len--; /* QEMU ends lines with "\r\n" */
	if (len == 0)
		return;
	msg = json_loadb(line, len, 0, &jerr);
	if (!msg || !json_is_object(msg)) {
		qmp_excerpt(ex, sizeof(ex), line, len);
		log_warn("qmp %s: not a JSON object (%s): %s", q->tag, msg ? "not an object" : jerr.text,
			 ex);
		json_decref(msg);
		qmp_fail(q, EPROTO, "garbage from peer");
		return;
	}
	if (q->state == QS_GREETING) {
		v = json_object_get(msg, "QMP");
		if (!json_is_object(v)) {
			qmp_excerpt(ex, sizeof(ex), line, len);
			log_warn("qmp %s: expected a greeting, got: %s", q->tag, ex);
			qmp_fail(q, EPROTO, "no QMP greeting");
			goto done;
		}
		q->greeting = json_incref(v);
		q->state = QS_NEGOTIATING;
		if (qmp_enqueue(q, NULL, "qmp_capabilities", -1, qmp_caps_reply, NULL, NULL, true) < 0)
			qmp_fail(q, errno, "cannot queue qmp_capabilities");
		goto done;
	}
	v = json_object_get(msg, "event");
	if (json_is_string(v)) {
		log_debug("qmp %s: event %s", q->tag, json_string_value(v));
		if (q->cb.event) {
			json_t *data = json_object_get(msg, "data");

			q->cb.event(q, q->arg, json_string_value(v), data, qmp_timestamp(msg));
		}
		goto done;
	}
	ret = json_object_get(msg, "return");
	error = json_object_get(msg, "error");
	if ((ret != NULL) != (error != NULL) && (!error || json_is_object(error))) {
		struct qmp_pending *p = NULL;

		v = json_object_get(msg, "id");
		if (json_is_integer(v))
			p = qmp_take_pending(q, json_integer_value(v));
		if (!p) {
			qmp_excerpt(ex, sizeof(ex), line, len);
			log_warn("qmp %s: reply to no command of ours: %s", q->tag, ex);
			qmp_fail(q, EPROTO, "unmatched reply");
			goto done;
		}
		if (error && !p->cb)
			log_warn("qmp %s: %s failed: %s", q->tag, p->execute,
				 json_string_value(json_object_get(error, "desc")) ?: "?");
		if (p->cb)
			p->cb(q, p->arg, ret, error);
		free(p);
		goto done;
	}
	qmp_excerpt(ex, sizeof(ex), line, len);
	log_warn("qmp %s: unexpected message: %s", q->tag, ex);
	qmp_fail(q, EPROTO, "unexpected message");
done:
	json_decref(msg);
}

/* Split the buffer into lines and hand them out; keep the partial tail. */
static void qmp_process_input(struct qmp *q)
{
	size_t start = 0;

	while (q->state != QS_DEAD && !q->closing) {
		char *nl = memchr(q->in + q->scan, '\n', q->in_len - q->scan);
		size_t len;

		if (!nl) {
			q->scan = q->in_len;
			break;
		}
		len = (size_t)(nl - (q->in + start));
		q->scan = (size_t)(nl - q->in) + 1;
		if (len > QMP_LINE_MAX) {
			qmp_fail(q, EMSGSIZE, "line too long");
			return;
		}
		qmp_handle_line(q, q->in + start, len);
		start = q->scan;
	}
	if (q->state == QS_DEAD || q->closing)
		return;
	if (start > 0) {
		memmove(q->in, q->in + start, q->in_len - start);
		q->in_len -= start;
		q->scan -= start;
	}
	if (q->in_len > QMP_LINE_MAX)
		qmp_fail(q, EMSGSIZE, "line too long");
}

/* Read one chunk (or, draining, until the socket is empty). */
static void qmp_read(struct qmp *q, bool drain)
{
	while (q->state != QS_DEAD && !q->closing) {
		ssize_t n;
		size_t room;

		if (q->in_len == q->in_cap) {
			/* The cap is one byte above the line limit, so a buffer
			 * full without '\n' has already failed above. */
			size_t ncap = q->in_cap ? q->in_cap * 2 : QMP_IN_INITIAL;
			char *nin;

			if (ncap > QMP_LINE_MAX + 1)
				ncap = QMP_LINE_MAX + 1;
			if (ncap <= q->in_cap) {
				qmp_fail(q, EMSGSIZE, "line too long");
				return;
			}
			nin = realloc(q->in, ncap);
			if (!nin) {
				qmp_fail(q, ENOMEM, "input buffer");
				return;
			}
			q->in = nin;
			q->in_cap = ncap;
		}
		room = q->in_cap - q->in_len;
		if (room > QMP_READ_CHUNK)
			room = QMP_READ_CHUNK;
		n = read(q->fd, q->in + q->in_len, room);
		if (n > 0) {
			q->in_len += (size_t)n;
			qmp_process_input(q);
			if (!drain)
				return;
			continue;
		}
		if (n == 0) {
			qmp_fail(q, 0, "end of file");
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			qmp_fail(q, errno, "read failed");
		return;
	}
}

static int32_t qmp_dispatch(int32_t fd, int32_t revents, void *data)
{
	struct qmp *q = data;

	(void)fd;
	q->depth++;
	if (q->state == QS_CONNECTING) {
		int err = 0;
		socklen_t elen = sizeof(err);

		if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err) {
			qmp_fail(q, err, "connect failed");
		} else {
			q->state = QS_GREETING;
			if (qmp_poll_update(q) < 0)
				qmp_fail(q, errno, "poll");
		}
		goto out;
	}
	if ((revents & POLLOUT) && q->state != QS_DEAD)
		qmp_flush(q);
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && q->state != QS_DEAD && !q->closing)
		qmp_read(q, false);
out:
	q->depth--;
	qmp_maybe_free(q);
	return 0;
}

static struct qmp *qmp_new(qb_loop_t *loop, int fd, const struct qmp_callbacks *cb, void *arg,
			   const char *tag)
{
	struct qmp *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->loop = loop;
	q->fd = fd;
	if (cb)
		q->cb = *cb;
	q->arg = arg;
	snprintf(q->tag, sizeof(q->tag), "%s", tag ? tag : "?");
	return q;
}

struct qmp *qmp_connect(qb_loop_t *loop, const char *path, const struct qmp_callbacks *cb,
			void *arg, const char *tag)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct qmp *q = NULL;
	int fd, saved;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	q = qmp_new(loop, fd, cb, arg, tag);
	if (!q)
		goto fail;
	/* A unix connect completes at once (or is refused), even before QEMU
	 * accepts: the kernel queues it on the listening socket. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		q->state = QS_GREETING;
	else if (errno == EINPROGRESS)
		q->state = QS_CONNECTING;
	else
		goto fail;
	if (qmp_poll_update(q) < 0)
		goto fail;
	return q;
fail:
	saved = errno;
	free(q);
	close(fd);
	errno = saved;
	return NULL;
}

struct qmp *qmp_open_fd(qb_loop_t *loop, int fd, const struct qmp_callbacks *cb, void *arg,
			const char *tag)
{
	struct qmp *q;
	int fl, saved;

	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	q = qmp_new(loop, fd, cb, arg, tag);
	if (!q)
		goto fail;
	q->state = QS_GREETING;
	if (qmp_poll_update(q) < 0) {
		saved = errno;
		free(q);
		errno = saved;
		goto fail;
	}
	return q;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return NULL;
}

int qmp_command(struct qmp *q, json_t *args, const char *execute, qmp_reply_fn cb, void *arg)
{
	return qmp_enqueue(q, args, execute, -1, cb, arg, NULL, false);
}

int qmp_command_drop(struct qmp *q, json_t *args, const char *execute, qmp_reply_fn cb,
		     void *arg, qmp_drop_fn drop)
{
	return qmp_enqueue(q, args, execute, -1, cb, arg, drop, false);
}

int qmp_command_fd(struct qmp *q, json_t *args, const char *execute, int fd, qmp_reply_fn cb,
		   void *arg)
{
	if (fd < 0) {
		json_decref(args);
		errno = EBADF;
		return -1;
	}
	return qmp_enqueue(q, args, execute, fd, cb, arg, NULL, false);
}

bool qmp_is_ready(const struct qmp *q)
{
	return q && q->state == QS_READY && !q->closing;
}

bool qmp_is_dead(const struct qmp *q)
{
	return !q || q->state == QS_DEAD || q->closing;
}

void qmp_drain(struct qmp *q)
{
	if (!q || q->closing || q->state == QS_DEAD || q->state == QS_CONNECTING)
		return;
	q->depth++;
	qmp_read(q, true);
	q->depth--;
	qmp_maybe_free(q);
}

void qmp_close(struct qmp *q)
{
	if (!q || q->closing)
		return;
	q->closing = true;
	qmp_teardown(q);
	qmp_maybe_free(q);
}

/* drivers/qmp.c against a fake QMP server in the same process and loop,
 * over a socketpair: handshake, id matching with out-of-order replies,
 * events, fd passing, and the ways a connection ends (EOF, garbage, a line
 * above the limit).  The real QEMU is tests/integ/test-qemu-driver's job. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "drivers/qmp.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, " \
		 "\"capabilities\": [\"oob\"]}}\r\n"
#define MAX_CMDS 16

/* The server end: what the client sent, and a write queue driven by the
 * loop (a 1 MiB line does not fit a socketpair's buffer). */
struct fake {
	qb_loop_t *loop;
	int fd;
	char in[65536];
	size_t in_len;
	json_t *cmds[MAX_CMDS];
	int n_cmds;
	int got_fd; /* last descriptor received with SCM_RIGHTS */
	char *out;
	size_t out_len, out_off;
	bool out_polled;
};

/* What the client reported. */
struct seen {
	int ready;
	int closed;
	int close_err;
	int n_events;
	char event[8][32];
	int64_t ts[8];
	bool event_data_null[8];
	int n_replies;
	char reply[8][64]; /* "ARG:ret-json" or "ARG:error:CLASS" */
	struct qmp *q;
	bool close_in_event; /* qmp_close() from the event callback */
};

struct env {
	qb_loop_t *loop;
	struct fake srv;
	struct seen s;
	struct qmp *q;
};

/* ---- the fake server ---------------------------------------------------- */

static int32_t fake_out_cb(int32_t fd, int32_t revents, void *data);

static void fake_flush(struct fake *f)
{
	while (f->out_off < f->out_len) {
		ssize_t n = write(f->fd, f->out + f->out_off, f->out_len - f->out_off);

		if (n < 0)
			break;
		f->out_off += (size_t)n;
	}
	if (f->out_off < f->out_len && !f->out_polled) {
		assert_int_equal(qb_loop_poll_add(f->loop, QB_LOOP_MED, f->fd, POLLOUT, f, fake_out_cb), 0);
		f->out_polled = true;
	} else if (f->out_off == f->out_len && f->out_polled) {
		qb_loop_poll_del(f->loop, f->fd);
		f->out_polled = false;
	}
}

static int32_t fake_out_cb(int32_t fd, int32_t revents, void *data)
{
	(void)fd;
	(void)revents;
	fake_flush(data);
	return 0;
}

static void fake_send_raw(struct fake *f, const char *data, size_t len)
{
	f->out = realloc(f->out, f->out_len + len);
	assert_non_null(f->out);
	memcpy(f->out + f->out_len, data, len);
	f->out_len += len;
	fake_flush(f);
}

static void fake_send(struct fake *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fake_send(struct fake *f, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	fake_send_raw(f, buf, (size_t)n);
}

/* Read what the client sent (and any descriptor with it), without
 * blocking; returns the number of complete commands known. */
static int fake_read(struct fake *f)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *c;
	char *nl;
	ssize_t n;

	for (;;) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = f->in + f->in_len;
		iov.iov_len = sizeof(f->in) - f->in_len;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		n = recvmsg(f->fd, &msg, MSG_DONTWAIT);
		if (n <= 0)
			break;
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				memcpy(&f->got_fd, CMSG_DATA(c), sizeof(int));
		f->in_len += (size_t)n;
	}
	while ((nl = memchr(f->in, '\n', f->in_len))) {
		size_t len = (size_t)(nl - f->in);
		json_t *cmd = json_loadb(f->in, len, 0, NULL);

		assert_non_null(cmd);
		assert_true(f->n_cmds < MAX_CMDS);
		f->cmds[f->n_cmds++] = cmd;
		memmove(f->in, nl + 1, f->in_len - len - 1);
		f->in_len -= len + 1;
	}
	return f->n_cmds;
}

static const char *cmd_execute(struct fake *f, int i)
{
	return json_string_value(json_object_get(f->cmds[i], "execute"));
}

static json_int_t cmd_id(struct fake *f, int i)
{
	json_t *id = json_object_get(f->cmds[i], "id");

	assert_true(json_is_integer(id));
	return json_integer_value(id);
}

/* ---- running the loop until something happened ----------------------- */

struct wait {
	qb_loop_t *loop;
	bool (*pred)(struct env *e);
	struct env *e;
	int ticks;
	bool met;
};

static void wait_tick(void *data)
{
	struct wait *w = data;
	qb_loop_timer_handle h;

	if (w->pred(w->e)) {
		w->met = true;
		qb_loop_stop(w->loop);
		return;
	}
	if (--w->ticks <= 0) {
		qb_loop_stop(w->loop);
		return;
	}
	qb_loop_timer_add(w->loop, QB_LOOP_LOW, 1000000, w, wait_tick, &h);
}

/* Runs the loop until pred holds (true) or 5 s pass (false). */
static bool run_until(struct env *e, bool (*pred)(struct env *e))
{
	struct wait w = { .loop = e->loop, .pred = pred, .e = e, .ticks = 5000 };
	qb_loop_timer_handle h;

	qb_loop_timer_add(e->loop, QB_LOOP_LOW, 0, &w, wait_tick, &h);
	qb_loop_run(e->loop);
	return w.met;
}

static bool p_one_cmd(struct env *e)
{
	return fake_read(&e->srv) >= 1;
}

static bool p_ready(struct env *e)
{
	return e->s.ready > 0;
}

static bool p_closed(struct env *e)
{
	return e->s.closed > 0;
}

/* ---- client callbacks ----------------------------------------------------- */

static void on_ready(struct qmp *q, void *arg, json_t *greeting)
{
	struct seen *s = arg;

	assert_ptr_equal(q, s->q);
	assert_non_null(json_object_get(greeting, "version"));
	s->ready++;
}

static void on_event(struct qmp *q, void *arg, const char *name, json_t *data, int64_t ts)
{
	struct seen *s = arg;

	assert_true(s->n_events < 8);
	snprintf(s->event[s->n_events], sizeof(s->event[0]), "%s", name);
	s->ts[s->n_events] = ts;
	s->event_data_null[s->n_events] = data == NULL;
	s->n_events++;
	if (s->close_in_event) {
		qmp_close(q);
		s->q = NULL;
	}
}

static void on_closed(struct qmp *q, void *arg, int err)
{
	struct seen *s = arg;

	s->closed++;
	s->close_err = err;
}

static const struct qmp_callbacks cbs = { on_ready, on_event, on_closed };

/* arg is a short label; the reply is recorded as "label:..." */
static void on_reply(struct qmp *q, void *arg, json_t *ret, json_t *error)
{
	struct seen *s = (struct seen *)((char **)arg)[0];
	const char *label = ((char **)arg)[1];
	char *text;

	assert_true(s->n_replies < 8);
	if (error) {
		snprintf(s->reply[s->n_replies++], sizeof(s->reply[0]), "%s:error:%s", label,
			 json_string_value(json_object_get(error, "class")));
		return;
	}
	text = json_dumps(ret, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(s->reply[s->n_replies++], sizeof(s->reply[0]), "%s:%s", label, text);
	free(text);
}

/* ---- fixtures ---------------------------------------------------------------- */

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	int sv[2];

	assert_non_null(e);
	e->loop = qb_loop_create();
	assert_non_null(e->loop);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	e->srv.loop = e->loop;
	e->srv.fd = sv[0];
	e->srv.got_fd = -1;
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	e->q = qmp_open_fd(e->loop, sv[1], &cbs, &e->s, "test");
	assert_non_null(e->q);
	e->s.q = e->q;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	int i;

	if (e->s.q)
		qmp_close(e->s.q);
	if (e->srv.out_polled)
		qb_loop_poll_del(e->loop, e->srv.fd);
	if (e->srv.fd >= 0)
		close(e->srv.fd);
	if (e->srv.got_fd >= 0)
		close(e->srv.got_fd);
	for (i = 0; i < e->srv.n_cmds; i++)
		json_decref(e->srv.cmds[i]);
	free(e->srv.out);
	qb_loop_destroy(e->loop);
	free(e);
	return 0;
}

/* Greeting, then qmp_capabilities answered: ready. */
static void handshake(struct env *e)
{
	fake_send(&e->srv, GREETING);
	assert_true(run_until(e, p_one_cmd));
	assert_string_equal(cmd_execute(&e->srv, 0), "qmp_capabilities");
	fake_send(&e->srv, "{\"return\": {}, \"id\": %lld}\r\n", (long long)cmd_id(&e->srv, 0));
	assert_true(run_until(e, p_ready));
	assert_int_equal(e->s.ready, 1);
}

/* ---- tests -------------------------------------------------------------- */

static bool p_two_cmds(struct env *e)
{
	return fake_read(&e->srv) >= 2;
}

static bool p_three_cmds(struct env *e)
{
	return fake_read(&e->srv) >= 3;
}

static bool p_two_replies(struct env *e)
{
	return e->s.n_replies >= 2;
}

/* Commands queued before the greeting wait for qmp_capabilities. */
static void test_handshake_and_queue(void **state)
{
	struct env *e = *state;
	void *a1[2] = { &e->s, "a" }, *a2[2] = { &e->s, "b" };

	assert_false(qmp_is_ready(e->q));
	assert_int_equal(qmp_command(e->q, NULL, "query-status", on_reply, a1), 0);
	assert_int_equal(qmp_command(e->q, json_pack("{s:I}", "value", (json_int_t)1 << 30), "balloon",
				     on_reply, a2),
			 0);
	/* nothing on the wire before the greeting */
	assert_int_equal(fake_read(&e->srv), 0);
	/* a greeting split across writes */
	fake_send_raw(&e->srv, GREETING, 10);
	fake_send_raw(&e->srv, &GREETING[10], strlen(GREETING) - 10);
	assert_true(run_until(e, p_three_cmds));
	assert_string_equal(cmd_execute(&e->srv, 0), "qmp_capabilities");
	assert_string_equal(cmd_execute(&e->srv, 1), "query-status");
	assert_string_equal(cmd_execute(&e->srv, 2), "balloon");
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(e->srv.cmds[2], "arguments"), "value")),
			 (json_int_t)1 << 30);
	assert_null(json_object_get(e->srv.cmds[1], "arguments"));
	fake_send(&e->srv, "{\"return\": {}, \"id\": %lld}\r\n", (long long)cmd_id(&e->srv, 0));
	assert_true(run_until(e, p_ready));
	assert_true(qmp_is_ready(e->q));
	fake_send(&e->srv, "{\"return\": {\"status\": \"running\"}, \"id\": %lld}\r\n"
			   "{\"return\": {}, \"id\": %lld}\r\n",
		  (long long)cmd_id(&e->srv, 1), (long long)cmd_id(&e->srv, 2));
	assert_true(run_until(e, p_two_replies));
	assert_string_equal(e->s.reply[0], "a:{\"status\":\"running\"}");
	assert_string_equal(e->s.reply[1], "b:{}");
}

/* Replies are matched by id, whatever their order. */
static void test_out_of_order(void **state)
{
	struct env *e = *state;
	void *a1[2] = { &e->s, "one" }, *a2[2] = { &e->s, "two" };

	handshake(e);
	assert_int_equal(qmp_command(e->q, NULL, "cmd-one", on_reply, a1), 0);
	assert_int_equal(qmp_command(e->q, NULL, "cmd-two", on_reply, a2), 0);
	assert_true(run_until(e, p_three_cmds));
	assert_true(cmd_id(&e->srv, 1) != cmd_id(&e->srv, 2));
	fake_send(&e->srv, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": %lld}\n",
		  (long long)cmd_id(&e->srv, 2));
	fake_send(&e->srv, "{\"return\": 1, \"id\": %lld}\n", (long long)cmd_id(&e->srv, 1));
	assert_true(run_until(e, p_two_replies));
	assert_string_equal(e->s.reply[0], "two:error:GenericError");
	assert_string_equal(e->s.reply[1], "one:1");
	assert_int_equal(e->s.closed, 0);
}

static bool p_one_event(struct env *e)
{
	return e->s.n_events >= 1;
}

static bool p_two_events(struct env *e)
{
	return e->s.n_events >= 2;
}

static void test_events(void **state)
{
	struct env *e = *state;

	handshake(e);
	fake_send(&e->srv, "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 250}, "
			   "\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": "
			   "\"guest-shutdown\"}}\r\n{\"event\": \"STOP\"}\r\n");
	assert_true(run_until(e, p_two_events));
	assert_string_equal(e->s.event[0], "SHUTDOWN");
	assert_true(e->s.ts[0] == 1700000000LL * 1000000 + 250);
	assert_false(e->s.event_data_null[0]);
	assert_string_equal(e->s.event[1], "STOP");
	assert_true(e->s.ts[1] == -1);
	assert_true(e->s.event_data_null[1]);
	assert_int_equal(e->s.closed, 0);
}

/* A large but legal line (512 KiB) passes; one above 1 MiB closes. */
static void test_long_lines(void **state)
{
	struct env *e = *state;
	void *a1[2] = { &e->s, "p" };
	size_t big = 512 * 1024, huge = QMP_LINE_MAX + 16;
	char *line = malloc(huge + 1);
	int n;

	assert_non_null(line);
	handshake(e);
	n = snprintf(line, big, "{\"event\": \"BIG\", \"data\": {\"x\": \"");
	memset(line + n, 'x', big - (size_t)n - 5);
	memcpy(line + big - 5, "\"}}\r\n", 5);
	fake_send_raw(&e->srv, line, big);
	assert_true(run_until(e, p_one_event));
	assert_int_equal(e->s.n_events, 1);
	assert_string_equal(e->s.event[0], "BIG");

	assert_int_equal(qmp_command(e->q, NULL, "pending", on_reply, a1), 0);
	memset(line, ' ', huge); /* no newline at all */
	fake_send_raw(&e->srv, line, huge);
	assert_true(run_until(e, p_closed));
	assert_int_equal(e->s.close_err, EMSGSIZE);
	/* the pending command was failed before closed() */
	assert_int_equal(e->s.n_replies, 1);
	assert_string_equal(e->s.reply[0], "p:error:Disconnected");
	assert_true(qmp_is_dead(e->q));
	assert_int_equal(qmp_command(e->q, NULL, "late", on_reply, a1), -1);
	assert_int_equal(errno, ENOTCONN);
	free(line);
}

static void garbage_case(const char *before_greeting, const char *after)
{
	struct env *e;
	void *st;

	setup(&st);
	e = st;
	if (before_greeting) {
		fake_send(&e->srv, "%s", before_greeting);
	} else {
		handshake(e);
		fake_send(&e->srv, "%s", after);
	}
	assert_true(run_until(e, p_closed));
	assert_int_equal(e->s.closed, 1);
	assert_int_equal(e->s.close_err, EPROTO);
	teardown(&st);
}

/* Whatever the peer sends, the connection closes cleanly. */
static void test_garbage(void **state)
{
	(void)state;
	garbage_case("hello world\n", NULL);
	garbage_case("{\"event\": \"STOP\"}\n", NULL);      /* no greeting */
	garbage_case("{\"QMP\": 1}\n", NULL);               /* greeting not an object */
	garbage_case(NULL, "this is not json\r\n");
	garbage_case(NULL, "[1, 2, 3]\n");                  /* not an object */
	garbage_case(NULL, "{\"return\": {}, \"id\": 999}\n"); /* no such id */
	garbage_case(NULL, "{\"return\": {}}\n");           /* no id */
	garbage_case(NULL, "{\"hello\": 1}\n");             /* neither */
	garbage_case(NULL, "{\"event\": \"X\"} trailing\n");
	{
		/* a raw NUL inside a line */
		struct env *e;
		void *st;
		static const char nul_line[] = "{\"event\": \"A\0B\"}\n";

		setup(&st);
		e = st;
		handshake(e);
		fake_send_raw(&e->srv, nul_line, sizeof(nul_line) - 1);
		assert_true(run_until(e, p_closed));
		assert_int_equal(e->s.close_err, EPROTO);
		teardown(&st);
	}
}

static void test_eof(void **state)
{
	struct env *e = *state;
	void *a1[2] = { &e->s, "x" };

	handshake(e);
	assert_int_equal(qmp_command(e->q, NULL, "quit", on_reply, a1), 0);
	/* read it: closing with unread data would be a reset, not an EOF */
	assert_true(run_until(e, p_two_cmds));
	/* an event, then the end, in one read: the event still comes first */
	fake_send(&e->srv, "{\"event\": \"SHUTDOWN\", \"data\": {}}\n");
	close(e->srv.fd);
	e->srv.fd = -1;
	assert_true(run_until(e, p_closed));
	assert_int_equal(e->s.n_events, 1);
	assert_int_equal(e->s.close_err, 0);
	assert_string_equal(e->s.reply[0], "x:error:Disconnected");
}

/* qmp_drain reads everything up to the end without the loop. */
static void test_drain(void **state)
{
	struct env *e = *state;

	handshake(e);
	fake_send(&e->srv, "{\"event\": \"A\"}\n{\"event\": \"B\"}\n");
	close(e->srv.fd);
	e->srv.fd = -1;
	qmp_drain(e->q);
	assert_int_equal(e->s.n_events, 2);
	assert_int_equal(e->s.closed, 1);
}

/* Closing from inside a callback stops everything at once. */
static void test_close_in_callback(void **state)
{
	struct env *e = *state;
	void *a1[2] = { &e->s, "never" };

	handshake(e);
	assert_int_equal(qmp_command(e->q, NULL, "pending", on_reply, a1), 0);
	e->s.close_in_event = true;
	fake_send(&e->srv, "{\"event\": \"A\"}\n{\"event\": \"B\"}\n");
	assert_true(run_until(e, p_one_event));
	assert_int_equal(e->s.n_events, 1);
	assert_null(e->s.q);
	assert_int_equal(e->s.closed, 0);
	assert_int_equal(e->s.n_replies, 0);
	e->q = NULL;
}

static bool p_one_reply(struct env *e)
{
	return e->s.n_replies >= 1;
}

static int n_dropped;

static void on_drop(void *arg)
{
	assert_string_equal(((char **)arg)[1], "dropped");
	n_dropped++;
}

/* qmp_command_drop: a command discarded unanswered by qmp_close hands its
 * arg to drop, never to cb; an answered one goes to cb only. */
static void test_drop(void **state)
{
	struct env *e = *state;
	void *a1[2] = { &e->s, "answered" }, *a2[2] = { &e->s, "dropped" };

	n_dropped = 0;
	handshake(e);
	assert_int_equal(qmp_command_drop(e->q, NULL, "one", on_reply, a1, on_drop), 0);
	assert_int_equal(qmp_command_drop(e->q, NULL, "two", on_reply, a2, on_drop), 0);
	assert_true(run_until(e, p_three_cmds));
	fake_send(&e->srv, "{\"return\": 1, \"id\": %lld}\n", (long long)cmd_id(&e->srv, 1));
	assert_true(run_until(e, p_one_reply));
	assert_string_equal(e->s.reply[0], "answered:1");
	assert_int_equal(n_dropped, 0);
	qmp_close(e->q);
	e->q = e->s.q = NULL;
	assert_int_equal(n_dropped, 1);
	assert_int_equal(e->s.n_replies, 1);
}

static bool p_got_fd(struct env *e)
{
	return fake_read(&e->srv) >= 2 && e->srv.got_fd >= 0;
}

/* qmp_command_fd: the descriptor arrives with the command. */
static void test_fd_passing(void **state)
{
	struct env *e = *state;
	int p[2];
	char buf[8] = "";

	handshake(e);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(qmp_command_fd(e->q, json_pack("{s:s}", "fdname", "mig"), "getfd", p[1],
					NULL, NULL),
			 0);
	close(p[1]); /* the caller's copy; ours travelled */
	assert_true(run_until(e, p_got_fd));
	assert_string_equal(cmd_execute(&e->srv, 1), "getfd");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(e->srv.cmds[1], "arguments"), "fdname")),
			    "mig");
	assert_int_equal(write(e->srv.got_fd, "ok", 2), 2);
	close(e->srv.got_fd);
	e->srv.got_fd = -1;
	assert_int_equal(read(p[0], buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "ok", 2);
	close(p[0]);
	assert_int_equal(qmp_command_fd(e->q, NULL, "getfd", -1, NULL, NULL), -1);
	assert_int_equal(errno, EBADF);
}

/* qmp_connect on a path: queued on the listening socket, then greeted. */
static void test_connect_path(void **state)
{
	struct env *e = *state, *e2;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/test_qmp.XXXXXX";
	struct seen s0 = { 0 };
	int l, i;

	assert_non_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/q.sock", dir);
	errno = 0;
	assert_null(qmp_connect(e->loop, sa.sun_path, &cbs, &s0, "t2"));
	assert_int_equal(errno, ENOENT);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);

	e2 = calloc(1, sizeof(*e2));
	assert_non_null(e2);
	e2->loop = e->loop;
	e2->srv.loop = e->loop;
	e2->srv.got_fd = -1;
	/* connect completes before anyone accepts */
	e2->q = qmp_connect(e->loop, sa.sun_path, &cbs, &e2->s, "t2");
	assert_non_null(e2->q);
	e2->s.q = e2->q;
	e2->srv.fd = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	assert_true(e2->srv.fd >= 0);
	handshake(e2);
	assert_int_equal(e2->s.closed, 0);

	qmp_close(e2->q);
	close(e2->srv.fd);
	for (i = 0; i < e2->srv.n_cmds; i++)
		json_decref(e2->srv.cmds[i]);
	free(e2->srv.out);
	free(e2);
	close(l);
	unlink(sa.sun_path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handshake_and_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_lines, setup, teardown),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_in_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_passing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_path, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

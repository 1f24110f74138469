/* migrate/relay.c: the TLS relay over real loopback TCP, with real GnuTLS
 * sessions from a real channel handshake (mchan_listen/mchan_connect).
 *
 * The test plays QEMU on both sides: its ends of the relays' socketpairs
 * are non-blocking and driven by the same qb_loop as the relays' done
 * callbacks.  A writer sends a generated stream (any byte is a function of
 * seed and offset), the reader on the other side checks every byte against
 * the same function.  Each case runs the loop until what it waits for has
 * happened, with a deadline; no sleeps. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <qb/qbloop.h>
#include <qb/qblog.h>

#include "migrate/channel.h"
#include "migrate/relay.h"
#include "tests/unit/chan_util.h"

#define DEADLINE_MS 30000
#define CHUNK (64 * 1024)
#define MIB (1024ULL * 1024ULL)
#define ENDLESS UINT64_MAX

/* One side as QEMU sees it: its end of the socketpair, a writer, a reader,
 * and what the relay's done said. */
struct end {
	const char *name;
	int plain;               /* -1: closed */
	bool polled;
	struct relay *r;         /* NULL once done or stopped */
	/* writer */
	bool writing;            /* has a stream to send */
	bool w_ended;
	bool w_close;            /* at its end: close() (QEMU), else shutdown(SHUT_WR) */
	uint64_t w_seed, w_total, w_sent;
	int w_errno;             /* the write that failed (the relay went) */
	/* reader */
	bool reading;
	bool r_eof;
	bool r_close;            /* no writer: close at EOF (QEMU does), else shutdown(SHUT_WR) */
	uint64_t r_seed, r_got, r_stop_at; /* r_stop_at: stop the loop there (0: no) */
	uint64_t r_bad_at;       /* first wrong byte + 1 (0: none) */
	int r_errno;
	/* the relay's report */
	bool done;
	uint64_t to_net, from_net;
	char err[256];           /* "" = clean */
};

static struct {
	qb_loop_t *loop;
	int fds_before;
	bool in_start;
	struct end src, dst;
	struct chu_pair pair;
	bool (*finished)(void);
} T;

/* ---- the stream ---------------------------------------------------------------- */

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void stream_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++, off++)
		buf[i] = (uint8_t)(mix(seed ^ (off >> 3) * 0x100000001b3ULL) >> (8 * (off & 7)));
}

/* ---- QEMU's side ----------------------------------------------------------------- */

static void check_finished(void)
{
	if (T.finished && T.finished())
		qb_loop_stop(T.loop);
}

static int end_io(int fd, int revents, void *arg);

static void end_close(struct end *e)
{
	if (e->polled)
		qb_loop_poll_del(T.loop, e->plain);
	e->polled = false;
	close(e->plain);
	e->plain = -1;
}

/* (Re)register what the end still waits for. */
static void end_watch(struct end *e)
{
	int ev = 0;

	if (e->plain < 0)
		return;
	if (e->reading && !e->r_eof)
		ev |= POLLIN;
	if (e->writing && !e->w_ended)
		ev |= POLLOUT;
	if (!ev) {
		if (e->polled)
			qb_loop_poll_del(T.loop, e->plain);
		e->polled = false;
	} else if (e->polled) {
		assert_int_equal(qb_loop_poll_mod(T.loop, QB_LOOP_MED, e->plain, ev, e, end_io), 0);
	} else {
		assert_int_equal(qb_loop_poll_add(T.loop, QB_LOOP_MED, e->plain, ev, e, end_io), 0);
		e->polled = true;
	}
}

static void end_read(struct end *e)
{
	static uint8_t buf[CHUNK], want[CHUNK];

	for (;;) {
		ssize_t n = read(e->plain, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			e->r_errno = n < 0 ? errno : 0;
			e->r_eof = true;
			/* a reader only: its stream ends now (a writer ends its own) */
			if (!e->writing && e->r_close)
				end_close(e);
			else if (!e->writing)
				assert_int_equal(shutdown(e->plain, SHUT_WR), 0);
			return;
		}
		if (!e->r_bad_at) {
			stream_fill(e->r_seed, e->r_got, want, (size_t)n);
			if (memcmp(buf, want, (size_t)n)) {
				size_t i = 0;

				while (buf[i] == want[i])
					i++;
				e->r_bad_at = e->r_got + i + 1;
			}
		}
		e->r_got += (uint64_t)n;
		if (e->r_stop_at && e->r_got >= e->r_stop_at) {
			e->r_stop_at = 0;
			qb_loop_stop(T.loop);
			return;
		}
	}
}

static void end_write(struct end *e)
{
	static uint8_t buf[CHUNK];

	while (e->w_sent < e->w_total) {
		uint64_t left = e->w_total - e->w_sent;
		size_t n = left < CHUNK ? (size_t)left : CHUNK;
		ssize_t w;

		stream_fill(e->w_seed, e->w_sent, buf, n);
		w = send(e->plain, buf, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (w < 0) { /* the relay is gone (stopped, failed) */
			e->w_errno = errno;
			e->w_ended = true;
			return;
		}
		e->w_sent += (uint64_t)w;
	}
	e->w_ended = true;
	if (e->w_close && !(e->reading && !e->r_eof))
		end_close(e);
	else
		assert_int_equal(shutdown(e->plain, SHUT_WR), 0);
}

static int end_io(int fd, int revents, void *arg)
{
	struct end *e = arg;

	(void)fd;
	(void)revents;
	if (e->reading && !e->r_eof)
		end_read(e);
	if (e->plain >= 0 && e->writing && !e->w_ended)
		end_write(e);
	end_watch(e);
	check_finished();
	return 0;
}

static void relay_done_cb(void *arg, uint64_t to_net, uint64_t from_net, const char *err)
{
	struct end *e = arg;

	assert_false(T.in_start); /* never from inside relay_start */
	assert_false(e->done);    /* exactly once */
	e->done = true;
	e->r = NULL;
	e->to_net = to_net;
	e->from_net = from_net;
	snprintf(e->err, sizeof(e->err), "%s", err ? err : "");
	if (err)
		print_message("relay %s: %s\n", e->name, err);
	check_finished();
}

static bool is_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && !(fl & O_NONBLOCK);
}

static void relay_on(struct end *e, int net, struct mchan_tls *tls)
{
	char err[256] = "";
	int fd = -1;

	T.in_start = true;
	e->r = relay_start(T.loop, net, tls, e->name, &fd, relay_done_cb, e, err, sizeof(err));
	T.in_start = false;
	if (!e->r)
		fail_msg("relay_start: %s", err);
	assert_true(fd >= 0);
	assert_true(is_blocking(fd)); /* as QEMU gets it */
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	e->plain = fd;
	end_watch(e);
}

static void run_until(bool (*finished)(void))
{
	T.finished = finished;
	if (!chu_run(T.loop, DEADLINE_MS))
		fail_msg("timed out: src done %d got %llu eof %d; dst done %d got %llu eof %d",
			 T.src.done, (unsigned long long)T.src.r_got, T.src.r_eof, T.dst.done,
			 (unsigned long long)T.dst.r_got, T.dst.r_eof);
	T.finished = NULL;
}

static void both_relays(void)
{
	chu_pair_open(T.loop, MCHAN_TLS, &T.pair);
	relay_on(&T.src, T.pair.cfd, T.pair.ctls);
	relay_on(&T.dst, T.pair.sfd, T.pair.stls);
	T.pair.cfd = T.pair.sfd = -1; /* the relays' now */
	T.pair.ctls = T.pair.stls = NULL;
}

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	T.fds_before = chu_count_fds();
	T.loop = qb_loop_create();
	assert_non_null(T.loop);
	T.src.name = "src";
	T.dst.name = "dst";
	T.src.plain = T.dst.plain = -1;
	T.pair.cfd = T.pair.sfd = -1;
	return 0;
}

static int teardown(void **state)
{
	struct end *ends[] = { &T.src, &T.dst };
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		relay_stop(ends[i]->r);
		if (ends[i]->plain >= 0)
			end_close(ends[i]);
	}
	mchan_tls_free(T.pair.ctls);
	mchan_tls_free(T.pair.stls);
	if (T.pair.cfd >= 0)
		close(T.pair.cfd);
	if (T.pair.sfd >= 0)
		close(T.pair.sfd);
	qb_loop_destroy(T.loop);
	/* every socket, eventfd and thread's fd is gone */
	assert_int_equal(chu_count_fds(), T.fds_before);
	return 0;
}

/* ---- one way, and the clean end --------------------------------------------------- */

static bool all_ended(void)
{
	return T.src.done && T.dst.done && (!T.src.reading || T.src.r_eof) &&
	       (!T.dst.reading || T.dst.r_eof);
}

/* Megabytes of QEMU's stream arrive byte for byte; QEMU closing its end
 * ends both relays cleanly, with the counts. */
static void test_one_way(void **state)
{
	const uint64_t n = 8 * MIB + 12345;

	(void)state;
	T.src.writing = true;
	T.src.w_seed = 1;
	T.src.w_total = n;
	T.src.w_close = true;
	T.dst.reading = true;
	T.dst.r_seed = 1;
	T.dst.r_close = true; /* as QEMU's incoming side */
	both_relays();
	run_until(all_ended);
	assert_int_equal(T.dst.r_bad_at, 0);
	assert_int_equal(T.dst.r_got, n);
	assert_int_equal(T.dst.r_errno, 0);
	assert_string_equal(T.src.err, "");
	assert_string_equal(T.dst.err, "");
	assert_int_equal(T.src.to_net, n);
	assert_int_equal(T.src.from_net, 0);
	assert_int_equal(T.dst.to_net, 0);
	assert_int_equal(T.dst.from_net, n);
}

/* QEMU writes and closes at once, before the relay has read a byte: all it
 * wrote still reaches the other side, then EOF.  The destination's QEMU
 * only shuts its writing side down. */
static void test_eof_drains(void **state)
{
	uint8_t buf[CHUNK];

	(void)state;
	T.dst.reading = true;
	T.dst.r_seed = 7;
	both_relays();
	/* as much as the socket takes without waiting */
	for (;;) {
		ssize_t w;

		stream_fill(7, T.src.w_sent, buf, sizeof(buf));
		w = write(T.src.plain, buf, sizeof(buf));
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		assert_true(w > 0);
		T.src.w_sent += (uint64_t)w;
		if (T.src.w_sent > 64 * MIB)
			break;
	}
	end_close(&T.src);
	run_until(all_ended);
	assert_int_equal(T.dst.r_bad_at, 0);
	assert_int_equal(T.dst.r_got, T.src.w_sent);
	assert_string_equal(T.src.err, "");
	assert_string_equal(T.dst.err, "");
	assert_int_equal(T.src.to_net, T.src.w_sent);
	assert_int_equal(T.dst.from_net, T.src.w_sent);
	assert_true(T.dst.r_eof); /* and the relay still ended with dst's end open */
}

/* Both ways at once, each QEMU reading while it writes. */
static void test_both_ways(void **state)
{
	const uint64_t a = 4 * MIB + 1, b = 3 * MIB + 77;

	(void)state;
	T.src.writing = T.src.reading = true;
	T.src.w_seed = 11, T.src.w_total = a, T.src.r_seed = 22;
	T.dst.writing = T.dst.reading = true;
	T.dst.w_seed = 22, T.dst.w_total = b, T.dst.r_seed = 11;
	both_relays();
	run_until(all_ended);
	assert_int_equal(T.src.r_bad_at, 0);
	assert_int_equal(T.dst.r_bad_at, 0);
	assert_int_equal(T.dst.r_got, a);
	assert_int_equal(T.src.r_got, b);
	assert_string_equal(T.src.err, "");
	assert_string_equal(T.dst.err, "");
	assert_int_equal(T.src.to_net, a);
	assert_int_equal(T.src.from_net, b);
	assert_int_equal(T.dst.to_net, b);
	assert_int_equal(T.dst.from_net, a);
}

/* ---- a peer that ends badly -------------------------------------------------------- */

static bool dst_ended(void)
{
	return T.dst.done && T.dst.r_eof;
}

enum cut { CUT_CLOSE, CUT_SHUT, CUT_RESET };

/* The source side is a bare session here: records, then the connection
 * ends without close_notify.  The destination must call that an error, and
 * its QEMU see EOF after the data. */
static void cut_case(enum cut how)
{
	static uint8_t buf[CHUNK];
	gnutls_session_t s;
	size_t off;
	ssize_t n;

	T.dst.reading = true;
	T.dst.r_seed = 3;
	chu_pair_open(T.loop, MCHAN_TLS, &T.pair);
	relay_on(&T.dst, T.pair.sfd, T.pair.stls);
	T.pair.sfd = -1;
	T.pair.stls = NULL;
	s = mchan_tls_session(T.pair.ctls);
	stream_fill(3, 0, buf, sizeof(buf));
	/* the session as handed over (blocking fd); small enough to sit in the
	 * socket buffers at once */
	for (off = 0; off < CHUNK; off += (size_t)n) {
		n = gnutls_record_send(s, buf + off, CHUNK - off);
		assert_true(n > 0);
	}
	mchan_tls_free(T.pair.ctls); /* sends nothing */
	T.pair.ctls = NULL;
	if (how == CUT_SHUT) {
		assert_int_equal(shutdown(T.pair.cfd, SHUT_WR), 0);
	} else {
		if (how == CUT_RESET) {
			struct linger l = { .l_onoff = 1, .l_linger = 0 };

			assert_int_equal(
				setsockopt(T.pair.cfd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
		}
		close(T.pair.cfd);
		T.pair.cfd = -1;
	}
	run_until(dst_ended);
	assert_int_equal(T.dst.r_bad_at, 0);
	assert_int_equal(T.dst.r_got, T.dst.from_net);
	if (how == CUT_RESET) {
		assert_non_null(strstr(T.dst.err, "receiving from the peer"));
	} else {
		assert_non_null(strstr(T.dst.err, "without close_notify"));
		assert_int_equal(T.dst.r_got, CHUNK);
	}
}

static void test_cut_close(void **state)
{
	(void)state;
	cut_case(CUT_CLOSE);
}

static void test_cut_shutdown(void **state)
{
	(void)state;
	cut_case(CUT_SHUT);
}

static void test_cut_reset(void **state)
{
	(void)state;
	cut_case(CUT_RESET);
}

/* Bytes that are no TLS records: an error, not a crash, and QEMU sees EOF
 * without a byte of them. */
static void garbage_case(bool framed)
{
	uint8_t junk[20000];
	size_t i;
	unsigned x = 12345;

	for (i = 0; i < sizeof(junk); i++) {
		x = x * 1103515245u + 12345u;
		junk[i] = (uint8_t)(x >> 16);
	}
	if (framed) { /* a well-formed application_data record header, then noise */
		memcpy(junk, "\x17\x03\x03\x04\x00", 5);
	}
	T.dst.reading = true;
	chu_pair_open(T.loop, MCHAN_TLS, &T.pair);
	relay_on(&T.dst, T.pair.sfd, T.pair.stls);
	T.pair.sfd = -1;
	T.pair.stls = NULL;
	assert_int_equal(send(T.pair.cfd, junk, sizeof(junk), MSG_NOSIGNAL), sizeof(junk));
	run_until(dst_ended);
	assert_non_null(strstr(T.dst.err, "receiving from the peer"));
	assert_int_equal(T.dst.r_got, 0);
	assert_int_equal(T.dst.from_net, 0);
}

static void test_garbage(void **state)
{
	(void)state;
	garbage_case(false);
}

static void test_garbage_record(void **state)
{
	(void)state;
	garbage_case(true);
	assert_non_null(strstr(T.dst.err, "TLS"));
}

/* ---- relay_stop ----------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool never(void)
{
	return false;
}

/* Mid-stream, both ends: prompt, done never called, nothing left (the fd
 * count in teardown, ASan for memory and the threads' stacks). */
static void test_stop(void **state)
{
	double t0;

	(void)state;
	T.src.writing = true;
	T.src.w_seed = 5;
	T.src.w_total = ENDLESS;
	T.dst.reading = true;
	T.dst.r_seed = 5;
	T.dst.r_stop_at = 2 * MIB;
	both_relays();
	run_until(never); /* until r_stop_at */
	assert_true(T.dst.r_got >= 2 * MIB);
	t0 = now_s();
	relay_stop(T.src.r);
	T.src.r = NULL;
	relay_stop(T.dst.r);
	T.dst.r = NULL;
	assert_true(now_s() - t0 < 2.0);
	/* a short spell of the loop: nothing may report */
	assert_false(chu_run(T.loop, 50));
	assert_false(T.src.done);
	assert_false(T.dst.done);
	assert_int_equal(T.dst.r_bad_at, 0);
}

/* One end stopped: the other sees the cut (no close_notify) as an error,
 * its QEMU an EOF. */
static void test_stop_one(void **state)
{
	(void)state;
	T.src.writing = true;
	T.src.w_seed = 6;
	T.src.w_total = ENDLESS;
	T.dst.reading = true;
	T.dst.r_seed = 6;
	T.dst.r_stop_at = 1 * MIB;
	both_relays();
	run_until(never);
	relay_stop(T.src.r);
	T.src.r = NULL;
	run_until(dst_ended);
	assert_false(T.src.done);
	assert_non_null(strstr(T.dst.err, "without close_notify"));
	assert_int_equal(T.dst.r_bad_at, 0);
	assert_int_equal(T.dst.r_got, T.dst.from_net);
}

/* ---- arguments ---------------------------------------------------------------------- */

static void test_bad_args(void **state)
{
	char err[256] = "";
	int fd = -1;

	(void)state;
	chu_pair_open(T.loop, MCHAN_TLS, &T.pair);
	assert_null(relay_start(T.loop, -1, T.pair.ctls, "x", &fd, relay_done_cb, &T.src, err,
				sizeof(err)));
	assert_non_null(strstr(err, "invalid"));
	assert_null(relay_start(T.loop, T.pair.cfd, NULL, "x", &fd, relay_done_cb, &T.src, err,
				sizeof(err)));
	assert_int_equal(fd, -1);
	relay_stop(NULL);
	/* the caller still owns both: teardown closes them */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_way, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_drains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
	};
	int rc;

	qb_log_init("test_relay", LOG_DAEMON, LOG_DEBUG);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_DEBUG);
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
	/* libqb makes its signal pipe with the first loop, for good: before
	 * the tests count their fds */
	qb_loop_destroy(qb_loop_create());
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	qb_log_fini();
	return rc;
}

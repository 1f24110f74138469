/* migrate/channel.c: the migration channel over real loopback TCP and real
 * GnuTLS, client and server in one qb_loop in this process.
 *
 * Each case runs the loop until the callbacks it waits for have happened
 * (they stop the loop), with a deadline timer so that a bug fails the test
 * instead of hanging it.  No sleeps: every wait is the loop's.
 *
 * The crucial property (nothing past the exchange is read, since it is
 * QEMU's stream or the handed-over session's next records) is checked both
 * ways:
 *  - client side: the server's accept callback writes on its fd at once
 *    (raw bytes, or a record of its TLS session), before the client has even
 *    read the reply; the client must hand them over untouched with its fd
 *    (and session);
 *  - server side: a hand-made client (fake_*) sends its hello and raw bytes
 *    right behind it in the same loop callback, so both are in the server's
 *    socket when it reads the hello; the accept callback must find the raw
 *    bytes on its fd. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <qb/qbloop.h>
#include <qb/qblog.h>

#include "migrate/channel.h"
#include "proto/frame.h"
#include "proto/hagent.pb-c.h"
#include "tests/unit/chan_util.h"

#define MAXC 16
#define DEADLINE_MS 10000

static const struct mchan_hello HELLO = {
	.job = "job-7", .guest = "vm1", .gen = 0x0102030405060708ULL, .src = "nodeA",
	.dst = "nodeB",
};

struct fake;

static struct t {
	qb_loop_t *loop;
	struct mchan_key key, other;
	uint16_t port;
	struct mchan_server *srv;
	bool tls;                    /* the server's mode is MCHAN_TLS */
	int fds_before;
	/* server side */
	int n_verify, n_accept;
	struct mchan_hello seen;
	int sfd[MAXC];
	struct mchan_tls *stls[MAXC];
	const char *refuse;          /* verify refuses with this */
	struct mchan_client *cancel_in_verify;
	const char *accept_write;    /* written on the accepted fd at once (tls: a record) */
	const char *accept_expect;   /* must be readable at once on the accepted fd */
	bool accept_expect_ok;
	/* client side */
	bool in_connect;
	int n_done;
	int cfd[MAXC];
	struct mchan_tls *ctls[MAXC];
	char cerr[MAXC][512];
	/* hand-made clients */
	int n_fake;
	/* log lines "migration channel: peer ...: ..." at LOG_WARNING */
	int n_warn;
	char warn[8][512];
	/* stop when all reached */
	int want_done, want_accept, want_warn, want_fake;
} T;

/* ---- plumbing -------------------------------------------------------------- */

static void maybe_stop(void)
{
	if (T.n_done >= T.want_done && T.n_accept >= T.want_accept && T.n_warn >= T.want_warn &&
	    T.n_fake >= T.want_fake)
		qb_loop_stop(T.loop);
}

/* Run until the awaited callbacks happened; a bug fails, never hangs. */
static void run(int done, int accept, int warn, int fake)
{
	T.want_done = done;
	T.want_accept = accept;
	T.want_warn = warn;
	T.want_fake = fake;
	if (!chu_run(T.loop, DEADLINE_MS))
		fail_msg("timed out: done %d/%d accept %d/%d warn %d/%d fake %d/%d", T.n_done, done,
			 T.n_accept, accept, T.n_warn, warn, T.n_fake, fake);
}

static void log_capture(int32_t t, struct qb_log_callsite *cs, struct timespec *ts,
			const char *msg)
{
	(void)t;
	(void)ts;
	if (cs->priority <= LOG_WARNING && strstr(msg, "migration channel: peer ")) {
		if (T.n_warn < 8)
			snprintf(T.warn[T.n_warn], sizeof(T.warn[0]), "%s", msg);
		T.n_warn++;
		maybe_stop();
	}
}

static int setup(void **state)
{
	int i;

	(void)state;
	memset(&T, 0, sizeof(T));
	T.fds_before = chu_count_fds();
	T.loop = qb_loop_create();
	assert_non_null(T.loop);
	chu_key_fill(&T.key, 0x5a);
	chu_key_fill(&T.other, 0xa5);
	for (i = 0; i < MAXC; i++)
		T.sfd[i] = T.cfd[i] = -1;
	return 0;
}

static int teardown(void **state)
{
	int i;

	(void)state;
	if (T.srv)
		mchan_server_close(T.srv);
	for (i = 0; i < MAXC; i++) {
		mchan_tls_free(T.stls[i]);
		mchan_tls_free(T.ctls[i]);
		if (T.sfd[i] >= 0)
			close(T.sfd[i]);
		if (T.cfd[i] >= 0)
			close(T.cfd[i]);
	}
	qb_loop_destroy(T.loop);
	/* every socket the channel made was closed or handed over (and closed) */
	assert_int_equal(chu_count_fds(), T.fds_before);
	return 0;
}

/* ---- the callbacks ------------------------------------------------------------ */

static int verify_cb(void *arg, const struct mchan_hello *h, char *why, size_t len)
{
	(void)arg;
	T.n_verify++;
	T.seen = *h;
	if (T.cancel_in_verify) {
		mchan_client_cancel(T.cancel_in_verify);
		T.cancel_in_verify = NULL;
	}
	if (T.refuse) {
		snprintf(why, len, "%s", T.refuse);
		return -1;
	}
	return 0;
}

static bool is_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && !(fl & O_NONBLOCK);
}

/* Exactly n bytes, there now (never waits long: a bug fails). */
static bool read_exact_now(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 2000) != 1)
			return false;
		r = read(fd, buf + got, n - got);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static bool nothing_more(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

/* The same through a handed-over session (blocking fd, as handed over). */
static bool tls_read_exact_now(struct mchan_tls *t, int fd, char *buf, size_t n)
{
	gnutls_session_t s = mchan_tls_session(t);
	size_t got = 0;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (gnutls_record_check_pending(s) == 0 && poll(&p, 1, 2000) != 1)
			return false;
		r = gnutls_record_recv(s, buf + got, n - got);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static void tls_write(struct mchan_tls *t, const char *data)
{
	ssize_t n = (ssize_t)strlen(data);

	assert_int_equal(gnutls_record_send(mchan_tls_session(t), data, (size_t)n), n);
}

/* Either way: raw on fd (plaintext) or through the session (tls). */
static bool chan_read_exact_now(struct mchan_tls *t, int fd, char *buf, size_t n)
{
	return t ? tls_read_exact_now(t, fd, buf, n) : read_exact_now(fd, buf, n);
}

static void chan_write(struct mchan_tls *t, int fd, const char *data)
{
	if (t)
		tls_write(t, data);
	else
		assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
}

/* Small writes right behind another are held back (Nagle) until the
 * first is acknowledged: then the peer could read the reply before the
 * bytes behind it even arrive, and read-ahead would go unnoticed. */
static void no_delay(int fd)
{
	int one = 1;

	assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
}

static void accept_cb(void *arg, const struct mchan_hello *h, int fd, struct mchan_tls *tls)
{
	(void)arg;
	assert_true(fd >= 0);
	assert_true(is_blocking(fd));
	assert_true((tls != NULL) == T.tls);
	T.seen = *h;
	no_delay(fd);
	if (T.accept_write)
		chan_write(tls, fd, T.accept_write);
	if (T.accept_expect) {
		char buf[64] = "";
		size_t n = strlen(T.accept_expect);

		T.accept_expect_ok = read_exact_now(fd, buf, n) && !memcmp(buf, T.accept_expect, n);
	}
	if (T.n_accept < MAXC) {
		T.sfd[T.n_accept] = fd;
		T.stls[T.n_accept] = tls;
	} else {
		mchan_tls_free(tls);
		close(fd);
	}
	T.n_accept++;
	maybe_stop();
}

static void done_cb(void *arg, int fd, struct mchan_tls *tls, const char *err)
{
	int i = (int)(intptr_t)arg;

	assert_false(T.in_connect); /* never from inside mchan_connect */
	assert_true(i >= 0 && i < MAXC);
	assert_int_equal(T.cfd[i], -1);
	assert_int_equal(T.cerr[i][0], '\0'); /* exactly once */
	if (fd >= 0) {
		assert_null(err);
		assert_true(is_blocking(fd));
		assert_true((tls != NULL) == T.tls);
		T.cfd[i] = fd;
		T.ctls[i] = tls;
		snprintf(T.cerr[i], sizeof(T.cerr[i]), "(ok)");
	} else {
		assert_non_null(err);
		assert_null(tls);
		snprintf(T.cerr[i], sizeof(T.cerr[i]), "%s", err);
		print_message("client %d failed: %s\n", i, err);
	}
	T.n_done++;
	maybe_stop();
}

static void listen_on(enum mchan_mode mode, const struct mchan_key *key, unsigned hs_ms)
{
	char err[256] = "";

	T.port = chu_free_port();
	T.tls = mode == MCHAN_TLS;
	T.srv = mchan_listen(T.loop, mode, key, "127.0.0.1", T.port, hs_ms, verify_cb, accept_cb,
			     NULL, err, sizeof(err));
	if (!T.srv)
		fail_msg("mchan_listen: %s", err);
}

static struct mchan_client *connect_as(int i, enum mchan_mode mode, const struct mchan_key *key,
				       const char *addr)
{
	char err[256] = "";
	struct mchan_client *c;

	T.in_connect = true;
	c = mchan_connect(T.loop, mode, key, addr, T.port, &HELLO, 5000, done_cb,
			  (void *)(intptr_t)i, err, sizeof(err));
	T.in_connect = false;
	if (!c)
		fail_msg("mchan_connect: %s", err);
	return c;
}

static void assert_hello_seen(void)
{
	assert_string_equal(T.seen.job, HELLO.job);
	assert_string_equal(T.seen.guest, HELLO.guest);
	assert_true(T.seen.gen == HELLO.gen);
	assert_string_equal(T.seen.src, HELLO.src);
	assert_string_equal(T.seen.dst, HELLO.dst);
}

/* ---- success, and nothing read past the exchange --------------------------------- */

/* tls: both ends carry on in the handed-over sessions (the sessions are
 * live, and the client's held nothing of the server's first record). */
static void ok_case(enum mchan_mode mode)
{
	char buf[32] = "";

	listen_on(mode, &T.key, 5000);
	T.accept_write = "QEMU-DATA"; /* lands before the client reads the reply */
	connect_as(0, mode, &T.key, "127.0.0.1");
	run(1, 1, 0, 0);
	assert_string_equal(T.cerr[0], "(ok)");
	assert_int_equal(T.n_verify, 1);
	assert_int_equal(T.n_accept, 1);
	assert_hello_seen();
	/* destination -> source: the bytes, all of them, nothing else */
	assert_true(chan_read_exact_now(T.ctls[0], T.cfd[0], buf, 9));
	assert_memory_equal(buf, "QEMU-DATA", 9);
	assert_true(nothing_more(T.cfd[0]));
	/* source -> destination */
	chan_write(T.ctls[0], T.cfd[0], "SRC-DATA");
	assert_true(chan_read_exact_now(T.stls[0], T.sfd[0], buf, 8));
	assert_memory_equal(buf, "SRC-DATA", 8);
	assert_true(nothing_more(T.sfd[0]));
	assert_int_equal(T.n_warn, 0);
}

static void test_tls_ok(void **state)
{
	(void)state;
	ok_case(MCHAN_TLS);
}

static void test_plain_ok(void **state)
{
	(void)state;
	ok_case(MCHAN_PLAIN);
}

/* The handed-over sessions own what they need: they work on with the
 * server closed (ASan would see its credentials used after free). */
static void test_tls_outlives_server(void **state)
{
	char buf[16];

	(void)state;
	listen_on(MCHAN_TLS, &T.key, 5000);
	connect_as(0, MCHAN_TLS, &T.key, "127.0.0.1");
	run(1, 1, 0, 0);
	mchan_server_close(T.srv);
	T.srv = NULL;
	tls_write(T.ctls[0], "after-close");
	assert_true(tls_read_exact_now(T.stls[0], T.sfd[0], buf, 11));
	assert_memory_equal(buf, "after-close", 11);
	tls_write(T.stls[0], "and-back");
	assert_true(tls_read_exact_now(T.ctls[0], T.cfd[0], buf, 8));
	assert_memory_equal(buf, "and-back", 8);
}

/* Several at once, each handed its own socket. */
static int cmp_char(const void *a, const void *b)
{
	return *(const char *)a - *(const char *)b;
}

static void test_tls_many(void **state)
{
	int i, n = 8;
	char sent[8], got[8];

	(void)state;
	listen_on(MCHAN_TLS, &T.key, 5000);
	for (i = 0; i < n; i++)
		connect_as(i, MCHAN_TLS, &T.key, "127.0.0.1");
	run(n, n, 0, 0);
	/* one distinct byte down each client session, each comes out of exactly
	 * one server session */
	for (i = 0; i < n; i++) {
		char one[2] = { (char)('a' + i), '\0' };

		assert_string_equal(T.cerr[i], "(ok)");
		sent[i] = one[0];
		tls_write(T.ctls[i], one);
	}
	for (i = 0; i < n; i++) {
		assert_true(tls_read_exact_now(T.stls[i], T.sfd[i], &got[i], 1));
		assert_true(nothing_more(T.sfd[i]));
	}
	qsort(got, (size_t)n, 1, cmp_char);
	assert_memory_equal(got, sent, (size_t)n);
	assert_int_equal(T.n_warn, 0);
}

/* ---- the hand-made client: hello, then raw bytes in the same breath ----------- */

struct fake {
	int fd;
	enum mchan_mode mode;
	gnutls_session_t tls;
	gnutls_psk_client_credentials_t psk;
	int step;          /* 0 handshake / challenge, 1 reply, 2 done */
	const char *after; /* raw bytes sent right behind the hello */
	uint32_t version;  /* 0: MCHAN_VERSION */
	bool ok;
	char error[256];   /* the reply's */
};

static int fake_connect(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(T.port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	/* blocking connect: the kernel completes it without the server's accept */
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* The plaintext MAC, written from the protocol's description (channel.c):
 * HMAC-SHA256(key, server nonce, client nonce, job\0, guest\0, gen as 8
 * bytes big-endian, src\0, dst\0). */
static void fake_mac(const uint8_t *sn, const uint8_t *cn, uint8_t *mac)
{
	uint8_t buf[512];
	size_t n = 0;
	int i;

	memcpy(buf + n, sn, 32), n += 32;
	memcpy(buf + n, cn, 32), n += 32;
	memcpy(buf + n, HELLO.job, strlen(HELLO.job) + 1), n += strlen(HELLO.job) + 1;
	memcpy(buf + n, HELLO.guest, strlen(HELLO.guest) + 1), n += strlen(HELLO.guest) + 1;
	for (i = 7; i >= 0; i--)
		buf[n++] = (uint8_t)(HELLO.gen >> (8 * i));
	memcpy(buf + n, HELLO.src, strlen(HELLO.src) + 1), n += strlen(HELLO.src) + 1;
	memcpy(buf + n, HELLO.dst, strlen(HELLO.dst) + 1), n += strlen(HELLO.dst) + 1;
	assert_int_equal(gnutls_hmac_fast(GNUTLS_MAC_SHA256, T.key.key, T.key.len, buf, n, mac),
			 0);
}

/* The hello frame followed by the raw bytes, as one buffer. */
static size_t fake_hello(struct fake *f, const uint8_t *sn, uint8_t *out, size_t cap)
{
	Hagent__MigHello m = HAGENT__MIG_HELLO__INIT;
	uint8_t cn[32], mac[32], *buf;
	ssize_t n;

	m.version = f->version ? f->version : MCHAN_VERSION;
	m.job = (char *)HELLO.job;
	m.guest = (char *)HELLO.guest;
	m.gen = HELLO.gen;
	m.src = (char *)HELLO.src;
	m.dst = (char *)HELLO.dst;
	if (sn) {
		memset(cn, 0x33, sizeof(cn));
		fake_mac(sn, cn, mac);
		m.nonce.data = cn;
		m.nonce.len = 32;
		m.mac.data = mac;
		m.mac.len = 32;
	}
	n = frame_encode(FRAME_MIGRATE, &m.base, &buf);
	assert_true(n > 0 && (size_t)n + strlen(f->after) <= cap);
	memcpy(out, buf, (size_t)n);
	free(buf);
	memcpy(out + n, f->after, strlen(f->after));
	return (size_t)n + strlen(f->after);
}

static void fake_finish(struct fake *f, const uint8_t *payload, size_t len)
{
	Hagent__MigReply *r = hagent__mig_reply__unpack(NULL, len, payload);

	assert_non_null(r);
	f->ok = r->ok;
	snprintf(f->error, sizeof(f->error), "%s", r->error ? r->error : "");
	hagent__mig_reply__free_unpacked(r, NULL);
	f->step = 2;
	qb_loop_poll_del(T.loop, f->fd);
	T.n_fake++;
	maybe_stop();
}

static int fake_plain_io(int fd, int revents, void *arg)
{
	struct fake *f = arg;
	uint8_t type, *payload, out[1024];
	ssize_t n;

	(void)revents;
	/* the server writes each frame with one send: all of it is here */
	n = frame_read_fd(fd, 4096, &type, &payload);
	assert_true(n >= 0);
	assert_int_equal(type, FRAME_MIGRATE);
	if (f->step == 0) {
		Hagent__MigReply *r = hagent__mig_reply__unpack(NULL, (size_t)n, payload);
		size_t len;

		assert_non_null(r);
		assert_int_equal(r->nonce.len, 32);
		len = fake_hello(f, r->nonce.data, out, sizeof(out));
		hagent__mig_reply__free_unpacked(r, NULL);
		assert_int_equal(write(fd, out, len), (ssize_t)len);
		f->step = 1;
	} else {
		fake_finish(f, payload, (size_t)n);
	}
	free(payload);
	return 0;
}

static int fake_tls_io(int fd, int revents, void *arg)
{
	struct fake *f = arg;
	uint8_t out[1024];
	int rc;

	(void)revents;
	if (f->step == 0) {
		size_t len;
		ssize_t hl;

		rc = gnutls_handshake(f->tls);
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
			qb_loop_poll_mod(T.loop, QB_LOOP_MED, fd,
					 gnutls_record_get_direction(f->tls) ? POLLOUT : POLLIN, f,
					 fake_tls_io);
			return 0;
		}
		assert_int_equal(rc, 0);
		len = fake_hello(f, NULL, out, sizeof(out));
		hl = (ssize_t)(len - strlen(f->after));
		/* the hello in one record, then the raw bytes straight on the socket:
		 * both are waiting when the server reads its hello */
		assert_int_equal(gnutls_record_send(f->tls, out, (size_t)hl), hl);
		assert_int_equal(send(fd, out + hl, len - (size_t)hl, MSG_NOSIGNAL),
				 (ssize_t)(len - (size_t)hl));
		f->step = 1;
		qb_loop_poll_mod(T.loop, QB_LOOP_MED, fd, POLLIN, f, fake_tls_io);
		return 0;
	}
	rc = (int)gnutls_record_recv(f->tls, out, sizeof(out));
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		return 0;
	assert_true(rc > (int)FRAME_HDR);
	fake_finish(f, out + FRAME_HDR, (size_t)rc - FRAME_HDR);
	return 0;
}

static void fake_start(struct fake *f, enum mchan_mode mode, const char *after)
{
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->after = after;
	f->fd = fake_connect();
	no_delay(f->fd);
	if (mode == MCHAN_TLS) {
		gnutls_datum_t k = { .data = T.key.key, .size = (unsigned)T.key.len };

		assert_int_equal(gnutls_psk_allocate_client_credentials(&f->psk), 0);
		assert_int_equal(gnutls_psk_set_client_credentials(f->psk, "hagent", &k,
								   GNUTLS_PSK_KEY_RAW), 0);
		assert_int_equal(gnutls_init(&f->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
							   GNUTLS_NO_TICKETS), 0);
		assert_int_equal(gnutls_priority_set_direct(
					 f->tls, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+ECDHE-PSK", NULL), 0);
		assert_int_equal(gnutls_credentials_set(f->tls, GNUTLS_CRD_PSK, f->psk), 0);
		gnutls_transport_set_int(f->tls, f->fd);
		assert_int_equal(fcntl(f->fd, F_SETFL, O_NONBLOCK), 0);
		assert_int_equal(qb_loop_poll_add(T.loop, QB_LOOP_MED, f->fd, POLLOUT, f,
						  fake_tls_io), 0);
	} else {
		assert_int_equal(qb_loop_poll_add(T.loop, QB_LOOP_MED, f->fd, POLLIN, f,
						  fake_plain_io), 0);
	}
}

static void fake_free(struct fake *f)
{
	if (f->step != 2)
		qb_loop_poll_del(T.loop, f->fd);
	if (f->tls)
		gnutls_deinit(f->tls);
	if (f->psk)
		gnutls_psk_free_client_credentials(f->psk);
	close(f->fd);
}

static void server_exact_case(enum mchan_mode mode)
{
	struct fake f;
	char buf[16];

	listen_on(mode, &T.key, 5000);
	T.accept_expect = "SRC-DATA";
	fake_start(&f, mode, "SRC-DATA");
	run(0, 1, 0, 1);
	assert_true(f.ok);
	assert_hello_seen();
	/* the bytes behind the hello were left in the socket for QEMU */
	assert_true(T.accept_expect_ok);
	assert_true(nothing_more(T.sfd[0]));
	/* and the other way: the client's socket holds nothing after the reply */
	assert_int_equal(write(T.sfd[0], "QEMU", 4), 4);
	assert_true(read_exact_now(f.fd, buf, 4));
	assert_memory_equal(buf, "QEMU", 4);
	fake_free(&f);
}

static void test_tls_server_exact(void **state)
{
	(void)state;
	server_exact_case(MCHAN_TLS);
}

static void test_plain_server_exact(void **state)
{
	(void)state;
	server_exact_case(MCHAN_PLAIN);
}

/* A source speaking another protocol version is told so. */
static void test_plain_bad_version(void **state)
{
	struct fake f;

	(void)state;
	listen_on(MCHAN_PLAIN, &T.key, 5000);
	fake_start(&f, MCHAN_PLAIN, "");
	f.version = MCHAN_VERSION + 1;
	run(0, 0, 1, 1);
	assert_false(f.ok);
	assert_non_null(strstr(f.error, "protocol version 2"));
	assert_int_equal(T.n_verify, 0);
	assert_int_equal(T.n_accept, 0);
	assert_non_null(strstr(T.warn[0], "protocol version 2"));
	fake_free(&f);
}

/* ---- refusals ----------------------------------------------------------------------- */

static void refuse_case(enum mchan_mode mode)
{
	listen_on(mode, &T.key, 5000);
	T.refuse = "no migration job-7 of vm1 to this host";
	connect_as(0, mode, &T.key, "127.0.0.1");
	run(1, 0, 1, 0);
	assert_string_equal(T.cerr[0], "refused by destination: no migration job-7 of vm1 to this host");
	assert_int_equal(T.n_verify, 1);
	assert_int_equal(T.n_accept, 0);
	assert_int_equal(T.n_warn, 1);
	assert_non_null(strstr(T.warn[0], "no migration job-7"));
	assert_hello_seen();
}

static void test_tls_refused(void **state)
{
	(void)state;
	refuse_case(MCHAN_TLS);
}

static void test_plain_refused(void **state)
{
	(void)state;
	refuse_case(MCHAN_PLAIN);
}

static void test_tls_wrong_key(void **state)
{
	(void)state;
	listen_on(MCHAN_TLS, &T.key, 5000);
	connect_as(0, MCHAN_TLS, &T.other, "127.0.0.1");
	run(1, 0, 1, 0);
	assert_int_equal(T.cfd[0], -1);
	assert_non_null(strstr(T.cerr[0], "TLS handshake failed"));
	assert_non_null(strstr(T.cerr[0], "wrong cluster key"));
	assert_int_equal(T.n_verify, 0);
	assert_int_equal(T.n_accept, 0);
	assert_int_equal(T.n_warn, 1);
	assert_non_null(strstr(T.warn[0], "TLS handshake failed"));
}

static void test_plain_wrong_key(void **state)
{
	(void)state;
	listen_on(MCHAN_PLAIN, &T.key, 5000);
	connect_as(0, MCHAN_PLAIN, &T.other, "127.0.0.1");
	run(1, 0, 1, 0);
	assert_int_equal(T.cfd[0], -1);
	assert_string_equal(T.cerr[0],
			    "refused by destination: authentication failed (wrong cluster key?)");
	assert_int_equal(T.n_verify, 0);
	assert_int_equal(T.n_accept, 0);
	assert_int_equal(T.n_warn, 1);
	assert_non_null(strstr(T.warn[0], "authentication failed"));
}

/* A TLS source against a plaintext destination and the other way round:
 * both fail, neither hangs past its deadline, nothing is accepted. */
static void test_mode_mismatch(void **state)
{
	(void)state;
	listen_on(MCHAN_PLAIN, &T.key, 300);
	connect_as(0, MCHAN_TLS, &T.key, "127.0.0.1");
	run(1, 0, 1, 0);
	assert_int_equal(T.cfd[0], -1);
	assert_int_equal(T.n_accept, 0);
	mchan_server_close(T.srv);
	T.srv = NULL;
	T.n_warn = 0;

	listen_on(MCHAN_TLS, &T.key, 300);
	connect_as(1, MCHAN_PLAIN, &T.key, "127.0.0.1");
	/* the TLS server waits for a ClientHello, the client for a challenge:
	 * the server's handshake deadline ends it */
	run(2, 0, 1, 0);
	assert_int_equal(T.cfd[1], -1);
	assert_int_equal(T.n_accept, 0);
	assert_non_null(strstr(T.warn[0], "timed out"));
}

/* ---- peers that are not hagent --------------------------------------------------- */

static int raw_peer(const void *data, size_t len)
{
	int fd = fake_connect();

	if (len)
		assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
	return fd;
}

/* The server dropped it: EOF or reset, and no more. */
static bool dropped(int fd)
{
	char buf[4096];
	ssize_t r;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 2000) != 1)
			return false;
		r = read(fd, buf, sizeof(buf));
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		if (r < 0)
			return false;
		/* a plaintext server's challenge, or a TLS alert: fine, keep reading */
	}
}

static void garbage_case(enum mchan_mode mode)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
	uint8_t rnd[20000];
	int fhttp, frnd, fsilent;
	size_t i;
	unsigned x = 12345;

	/* more than any TLS record or frame header can ask for: a decision is
	 * forced whatever the bytes */
	for (i = 0; i < sizeof(rnd); i++) {
		x = x * 1103515245u + 12345u;
		rnd[i] = (uint8_t)(x >> 16);
	}
	listen_on(mode, &T.key, 5000);
	fhttp = raw_peer(http, sizeof(http) - 1);
	frnd = raw_peer(rnd, sizeof(rnd));
	fsilent = raw_peer(NULL, 0); /* left waiting, closed with the server */
	connect_as(0, mode, &T.key, "127.0.0.1");
	run(1, 1, 2, 0);
	assert_string_equal(T.cerr[0], "(ok)");
	assert_hello_seen();
	assert_int_equal(T.n_warn, 2); /* one line per bad peer */
	assert_int_equal(T.n_verify, 1);
	assert_true(dropped(fhttp));
	assert_true(dropped(frnd));
	close(fhttp);
	close(frnd);
	mchan_server_close(T.srv); /* with the silent peer still in its handshake */
	T.srv = NULL;
	assert_true(dropped(fsilent));
	close(fsilent);
	assert_int_equal(T.n_warn, 2);
}

static void test_tls_garbage(void **state)
{
	(void)state;
	garbage_case(MCHAN_TLS);
}

static void test_plain_garbage(void **state)
{
	(void)state;
	garbage_case(MCHAN_PLAIN);
}

/* A frame header announcing more than the limit: refused on the header,
 * without reading (or allocating) the rest. */
static void test_plain_oversized(void **state)
{
	uint8_t hdr[FRAME_HDR] = { 0x00, 0x10, 0x00, 0x00, FRAME_MIGRATE }; /* 1 MiB */
	int fd;

	(void)state;
	listen_on(MCHAN_PLAIN, &T.key, 5000);
	fd = raw_peer(hdr, sizeof(hdr));
	run(0, 0, 1, 0);
	assert_non_null(strstr(T.warn[0], "bad frame"));
	assert_true(dropped(fd));
	close(fd);
}

static void silent_case(enum mchan_mode mode, const char *step)
{
	int fd;

	listen_on(mode, &T.key, 200);
	fd = raw_peer(NULL, 0);
	run(0, 0, 1, 0);
	assert_non_null(strstr(T.warn[0], "timed out after 200 ms"));
	assert_non_null(strstr(T.warn[0], step));
	assert_true(dropped(fd));
	close(fd);
	/* the server still serves */
	connect_as(0, mode, &T.key, "127.0.0.1");
	run(1, 1, 1, 0);
	assert_string_equal(T.cerr[0], "(ok)");
}

static void test_tls_silent(void **state)
{
	(void)state;
	silent_case(MCHAN_TLS, "during the TLS handshake");
}

static void test_plain_silent(void **state)
{
	(void)state;
	silent_case(MCHAN_PLAIN, "during the hello");
}

/* ---- the client's own failures and cancel -------------------------------------- */

static void test_conn_refused(void **state)
{
	char want[64];

	(void)state;
	T.port = chu_free_port(); /* nothing listens there */
	connect_as(0, MCHAN_TLS, &T.key, "127.0.0.1");
	run(1, 0, 0, 0);
	snprintf(want, sizeof(want), "127.0.0.1:%u", T.port);
	assert_int_equal(T.cfd[0], -1);
	assert_non_null(strstr(T.cerr[0], want));
	assert_non_null(strstr(T.cerr[0], "refused"));
}

/* connect() fails at once (TCP to a multicast address: ENETUNREACH, no
 * packet sent); done still comes from the loop. */
static void test_connect_fails_at_once(void **state)
{
	(void)state;
	T.port = 7800;
	connect_as(0, MCHAN_TLS, &T.key, "224.0.0.1");
	assert_int_equal(T.n_done, 0);
	run(1, 0, 0, 0);
	assert_int_equal(T.cfd[0], -1);
	assert_non_null(strstr(T.cerr[0], "cannot connect to 224.0.0.1:7800"));
}

static void test_client_timeout(void **state)
{
	char err[256] = "";
	int lfd;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct mchan_client *c;

	(void)state;
	/* a listener that never answers: the kernel completes the connection,
	 * nobody speaks */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	c = mchan_connect(T.loop, MCHAN_PLAIN, &T.key, "127.0.0.1", ntohs(sa.sin_port), &HELLO, 150,
			  done_cb, (void *)(intptr_t)0, err, sizeof(err));
	assert_non_null(c);
	run(1, 0, 0, 0);
	assert_non_null(strstr(T.cerr[0], "timed out after 150 ms"));
	assert_non_null(strstr(T.cerr[0], "during the challenge"));
	close(lfd);
}

/* ---- the hand-made destination: plaintext, without the key ------------------- */

struct fake_dst {
	int lfd, fd;
	const uint8_t *mac; /* the accepting reply's MAC: NULL none, else 32 bytes */
};

static void send_reply(int fd, bool ok, const uint8_t *nonce, const uint8_t *mac)
{
	Hagent__MigReply r = HAGENT__MIG_REPLY__INIT;
	uint8_t *buf;
	ssize_t n;

	r.ok = ok;
	r.error = (char *)"";
	if (nonce) {
		r.nonce.data = (uint8_t *)nonce;
		r.nonce.len = 32;
	}
	if (mac) {
		r.mac.data = (uint8_t *)mac;
		r.mac.len = 32;
	}
	n = frame_encode(FRAME_MIGRATE, &r.base, &buf);
	assert_true(n > 0);
	assert_int_equal(write(fd, buf, (size_t)n), n);
	free(buf);
}

static int fake_dst_io(int fd, int revents, void *arg)
{
	struct fake_dst *f = arg;
	uint8_t type, *payload;
	ssize_t n;

	(void)revents;
	/* the hello (one frame, one send): accept it without checking anything */
	n = frame_read_fd(fd, 4096, &type, &payload);
	if (n >= 0)
		free(payload);
	qb_loop_poll_del(T.loop, fd);
	send_reply(fd, true, NULL, f->mac);
	return 0;
}

static int fake_dst_accept(int lfd, int revents, void *arg)
{
	struct fake_dst *f = arg;
	uint8_t nonce[32];

	(void)revents;
	f->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(f->fd >= 0);
	qb_loop_poll_del(T.loop, lfd);
	memset(nonce, 0x44, sizeof(nonce));
	send_reply(f->fd, false, nonce, NULL); /* the challenge */
	assert_int_equal(qb_loop_poll_add(T.loop, QB_LOOP_MED, f->fd, POLLIN, f, fake_dst_io), 0);
	return 0;
}

/* A destination that says yes without proving the key is refused by the
 * source: with no MAC, and with a wrong one. */
static void fake_dst_case(const uint8_t *mac, const char *label)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct fake_dst f = { .fd = -1, .mac = mac };
	char err[256] = "";

	f.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f.lfd, 4), 0);
	assert_int_equal(getsockname(f.lfd, (struct sockaddr *)&sa, &sl), 0);
	assert_int_equal(qb_loop_poll_add(T.loop, QB_LOOP_MED, f.lfd, POLLIN, &f, fake_dst_accept), 0);
	assert_non_null(mchan_connect(T.loop, MCHAN_PLAIN, &T.key, "127.0.0.1", ntohs(sa.sin_port),
				      &HELLO, 2000, done_cb, (void *)(intptr_t)0, err, sizeof(err)));
	run(1, 0, 0, 0);
	print_message("# %s: %s\n", label, T.cerr[0]);
	assert_int_equal(T.cfd[0], -1);
	assert_null(T.ctls[0]);
	assert_non_null(strstr(T.cerr[0], "did not prove the cluster key"));
	if (f.fd >= 0)
		close(f.fd);
	close(f.lfd);
}

static void test_plain_fake_destination(void **state)
{
	uint8_t bogus[32];

	(void)state;
	fake_dst_case(NULL, "no MAC");
	memset(T.cerr[0], 0, sizeof(T.cerr[0]));
	T.n_done = 0;
	memset(bogus, 0x55, sizeof(bogus));
	fake_dst_case(bogus, "a wrong MAC");
}

static void test_bad_args(void **state)
{
	char err[256] = "";
	struct mchan_hello h = HELLO;

	(void)state;
	T.port = 7800;
	assert_null(mchan_connect(T.loop, MCHAN_TLS, &T.key, "not-an-address", 7800, &HELLO, 1000,
				  done_cb, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not-an-address"));
	h.guest[0] = '\0';
	assert_null(mchan_connect(T.loop, MCHAN_TLS, &T.key, "127.0.0.1", 7800, &h, 1000, done_cb,
				  NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "guest"));
	assert_null(mchan_listen(T.loop, MCHAN_TLS, &T.key, "nowhere", 7800, 1000, verify_cb,
				 accept_cb, NULL, err, sizeof(err)));
	assert_int_equal(T.n_done, 0);
}

/* Cancelled before the loop ever ran, and cancelled mid-exchange (from the
 * server's verify): done is never called, nothing leaks. */
static void test_cancel(void **state)
{
	struct mchan_client *c;

	(void)state;
	listen_on(MCHAN_TLS, &T.key, 5000);
	c = connect_as(0, MCHAN_TLS, &T.key, "127.0.0.1");
	mchan_client_cancel(c);
	run(0, 0, 1, 0); /* the server sees the peer go */
	assert_int_equal(T.n_done, 0);

	T.cancel_in_verify = connect_as(1, MCHAN_TLS, &T.key, "127.0.0.1");
	run(0, 1, 1, 0); /* the server still accepts: its side was fine */
	assert_null(T.cancel_in_verify);
	assert_int_equal(T.n_done, 0);

	/* and the immediate failure path: cancelled before its 0-delay report */
	mchan_client_cancel(connect_as(2, MCHAN_PLAIN, &T.key, "224.0.0.1"));
	T.port = chu_free_port();
	connect_as(3, MCHAN_PLAIN, &T.key, "127.0.0.1");
	run(1, 1, 1, 0);
	assert_string_equal(T.cerr[2], "");
	assert_non_null(strstr(T.cerr[3], "refused"));
}

/* ---- the key file ---------------------------------------------------------------- */

static void write_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_key_load(void **state)
{
	char dir[] = "/tmp/hagent-test-channel.XXXXXX", path[128], err[256];
	const char *content = "0123456789abcdef-cluster-key";
	unsigned char want[32];
	struct mchan_key k;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/authkey", dir);

	err[0] = '\0';
	assert_int_equal(mchan_key_load(path, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));

	write_file(path, content, 0644);
	assert_int_equal(mchan_key_load(path, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "0644"));

	write_file(path, content, 0620);
	assert_int_equal(mchan_key_load(path, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "0620"));

	write_file(path, "fifteen-bytes!!", 0600);
	assert_int_equal(mchan_key_load(path, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too short"));

	assert_int_equal(mchan_key_load(dir, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));

	write_file(path, content, 0400);
	assert_int_equal(mchan_key_load(path, &k, err, sizeof(err)), 0);
	assert_int_equal(k.len, 32);
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, content, strlen(content), want), 0);
	assert_memory_equal(k.key, want, 32);

	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_load),
		cmocka_unit_test_setup_teardown(test_tls_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_outlives_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_server_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_server_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_bad_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_wrong_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_wrong_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_silent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_silent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conn_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_fails_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_fake_destination, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	};
	int32_t t, rc;

	/* the channel's log lines: to stderr (the test log) and counted */
	qb_log_init("test_channel", LOG_DAEMON, LOG_DEBUG);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_DEBUG);
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
	t = qb_log_custom_open(log_capture, NULL, NULL, NULL);
	assert_true(t >= 0);
	qb_log_filter_ctl(t, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_DEBUG);
	qb_log_ctl(t, QB_LOG_CONF_ENABLED, QB_TRUE);
	/* libqb makes its signal pipe with the first loop, for good: before
	 * the tests count their fds */
	qb_loop_destroy(qb_loop_create());
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	qb_log_fini();
	return rc;
}

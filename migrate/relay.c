/* The TLS relay (see relay.h).
 *
 * Ownership: from relay_start until it signals done_fd, the thread alone
 * touches the sockets, the session and the buffers; then the loop joins it
 * (which also makes the thread's counts and error visible) and frees
 * everything.  Both sockets are non-blocking and the thread waits only in
 * poll(), on them and on stop_fd, so relay_stop's join is prompt.
 *
 * Each direction is a buffer and a small state machine.  The thread steps
 * both in turn, each a bounded amount (one buffer's worth) per round, and
 * polls only when neither can go on, for what each last call said it waits
 * for.  That is also why data already in hand but invisible to poll() (a
 * record GnuTLS decrypted but did not return in full, bytes read ahead in
 * rbuf) is never stranded: we wait on the socket only after
 * gnutls_record_recv said GNUTLS_E_AGAIN, which it does only when both are
 * empty; while QEMU does not read we wait on the plain side instead, and
 * then call gnutls_record_recv again, which returns what it holds. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gnutls/gnutls.h>

#include "lib/log.h"
#include "migrate/relay.h"

/* QEMU's side, per direction: what one round reads from QEMU (then sent as
 * records) or receives from the peer (then written to QEMU). */
#ifndef RELAY_BUF
#define RELAY_BUF (256u * 1024u)
#endif
/* The network side: records are read ahead and written out in batches of
 * up to this much, not one or two syscalls per 16 KiB record. */
#ifndef RELAY_NETBUF
#define RELAY_NETBUF (256u * 1024u)
#endif
#define RELAY_ERR 256

enum up_state {   /* plain -> net */
	UP_RUN,   /* reading QEMU, sending records */
	UP_BYE,   /* QEMU's EOF, all sent: close_notify */
	UP_FIN,   /* out of our buffer, then FIN */
	UP_DONE,
};

enum down_state { /* net -> plain */
	DOWN_RUN,   /* receiving records, writing to QEMU */
	DOWN_FLUSH, /* close_notify received: the rest to QEMU, then EOF */
	DOWN_DONE,
};

struct relay {
	/* the loop's */
	qb_loop_t *loop;
	relay_done_fn done;
	void *arg;
	char label[64];
	pthread_t thread;
	int done_fd;          /* eventfd: the thread has ended */
	int stop_fd;          /* eventfd: relay_stop wakes the thread */
	atomic_bool stop;
	/* the thread's until done_fd */
	int net, plain;
	struct mchan_tls *tls;
	gnutls_session_t s;
	int net_errno;        /* of the last failed recv/send on net */
	bool net_eof;         /* recv on net said EOF */
	uint8_t *rbuf, *wbuf; /* read ahead / records not yet sent */
	size_t r_off, r_len, w_off, w_len;
	short flush_wait;     /* wbuf waits for POLLOUT */
	enum up_state up_state;
	enum down_state down_state;
	short up_wait_plain, up_wait_net;     /* poll events the last step waits for */
	short down_wait_plain, down_wait_net;
	uint8_t *up, *down;
	size_t up_len, up_off, down_len, down_off;
	uint64_t to_net, from_net;
	char err[RELAY_ERR];  /* "" = none; the first error wins */
};

static void relay_free(struct relay *r)
{
	if (r->net >= 0)
		close(r->net);
	if (r->plain >= 0)
		close(r->plain);
	if (r->done_fd >= 0)
		close(r->done_fd);
	if (r->stop_fd >= 0)
		close(r->stop_fd);
	mchan_tls_free(r->tls); /* no close_notify: only the thread says the end */
	free(r->up);
	free(r->down);
	free(r->rbuf);
	free(r->wbuf);
	free(r);
}

__attribute__((format(printf, 2, 3))) static int fail(struct relay *r, const char *fmt, ...)
{
	if (!r->err[0]) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(r->err, sizeof(r->err), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ---- the session's transport: the TCP socket, buffered ----------------------
 *
 * GnuTLS reads a record as its header, then its body (two recv calls), and
 * sends each record with its own send: on loopback, where every send also
 * runs the receiving side's TCP, those are a good part of the cost.  So the
 * pull function reads ahead into rbuf, and the push function collects the
 * records in wbuf, sent when full and at the end of every round
 * (net_flush).  Nothing is hidden from the rules of relay_run: pull says
 * EAGAIN only with rbuf empty, and wbuf is flushed before any wait.
 * errno of a failed socket call is kept for the messages. */

static ssize_t net_pull(gnutls_transport_ptr_t p, void *buf, size_t n)
{
	struct relay *r = p;

	if (r->r_off == r->r_len) {
		ssize_t got = recv(r->net, r->rbuf, RELAY_NETBUF, 0);

		if (got <= 0) {
			r->net_errno = errno;
			r->net_eof = got == 0;
			return got;
		}
		r->r_off = 0;
		r->r_len = (size_t)got;
	}
	if (n > r->r_len - r->r_off)
		n = r->r_len - r->r_off;
	memcpy(buf, r->rbuf + r->r_off, n);
	r->r_off += n;
	return (ssize_t)n;
}

/* 0 all sent, -1 not (errno: EAGAIN, or the error). */
static int net_flush(struct relay *r)
{
	while (r->w_off < r->w_len) {
		ssize_t put = send(r->net, r->wbuf + r->w_off, r->w_len - r->w_off, MSG_NOSIGNAL);

		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0) {
			r->net_errno = errno;
			return -1;
		}
		r->w_off += (size_t)put;
	}
	r->w_off = r->w_len = 0;
	return 0;
}

/* A record (or part of one) into wbuf; when it does not fit, what is
 * there goes first.  EAGAIN makes GnuTLS keep the record and say
 * GNUTLS_E_AGAIN, to be retried once the socket takes more. */
static ssize_t net_push(gnutls_transport_ptr_t p, const void *buf, size_t n)
{
	struct relay *r = p;

	if (n > RELAY_NETBUF - r->w_len) {
		if (net_flush(r) < 0) {
			errno = r->net_errno;
			return -1;
		}
		if (n > RELAY_NETBUF)
			n = RELAY_NETBUF; /* (records are far smaller) */
	}
	memcpy(r->wbuf + r->w_len, buf, n);
	r->w_len += n;
	return (ssize_t)n;
}

/* Only called with a record timeout, which is never set here. */
static int net_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
	struct relay *r = p;
	struct pollfd pfd = { .fd = r->net, .events = POLLIN };

	return poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

static short tls_wait(const struct relay *r)
{
	return gnutls_record_get_direction(r->s) ? POLLOUT : POLLIN;
}

static bool again(ssize_t rc)
{
	return rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED;
}

static int fail_net(struct relay *r, const char *what, ssize_t rc)
{
	/* (an EOF inside a record is a cut just the same) */
	if (rc == GNUTLS_E_PREMATURE_TERMINATION ||
	    (rc == GNUTLS_E_UNEXPECTED_PACKET_LENGTH && r->net_eof))
		return fail(r, "the peer closed the connection without close_notify "
			       "(the stream may be truncated)");
	if (rc == GNUTLS_E_PULL_ERROR || rc == GNUTLS_E_PUSH_ERROR)
		return fail(r, "%s the peer: %s", what, strerror(r->net_errno));
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED || rc == GNUTLS_E_WARNING_ALERT_RECEIVED)
		return fail(r, "%s the peer: it sent alert '%s'", what,
			    gnutls_alert_get_name(gnutls_alert_get(r->s)));
	return fail(r, "%s the peer: TLS: %s", what, gnutls_strerror((int)rc));
}

/* ---- plain -> net ------------------------------------------------------------- */

/* -1 failed, 0 waits (up_wait_* set), 1 more to do at once. */
static int up_step(struct relay *r)
{
	ssize_t n;

	r->up_wait_plain = r->up_wait_net = 0;
	/* after GNUTLS_E_AGAIN GnuTLS wants the very same call again, which
	 * this is: up_off has not moved */
	while (r->up_off < r->up_len) {
		n = gnutls_record_send(r->s, r->up + r->up_off, r->up_len - r->up_off);
		if (again(n)) {
			r->up_wait_net = tls_wait(r);
			return 0;
		}
		if (n < 0)
			return fail_net(r, "sending to", n);
		r->up_off += (size_t)n;
		r->to_net += (uint64_t)n;
	}
	r->up_off = r->up_len = 0;
	switch (r->up_state) {
	case UP_RUN:
		n = recv(r->plain, r->up, RELAY_BUF, 0);
		if (n > 0) {
			r->up_len = (size_t)n;
			return 1;
		}
		if (n < 0 && errno == EINTR)
			return 1;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			r->up_wait_plain = POLLIN;
			return 0;
		}
		if (n < 0)
			return fail(r, "reading from QEMU: %s", strerror(errno));
		r->up_state = UP_BYE; /* QEMU's EOF: all it wrote has been sent */
		return 1;
	case UP_BYE:
		n = gnutls_bye(r->s, GNUTLS_SHUT_WR);
		if (again(n)) {
			r->up_wait_net = tls_wait(r);
			return 0;
		}
		if (n < 0)
			return fail_net(r, "sending close_notify to", n);
		r->up_state = UP_FIN;
		return 1;
	case UP_FIN:
		if (net_flush(r) < 0) {
			if (r->net_errno != EAGAIN && r->net_errno != EWOULDBLOCK)
				return fail(r, "sending to the peer: %s", strerror(r->net_errno));
			r->up_wait_net = POLLOUT;
			return 0;
		}
		if (shutdown(r->net, SHUT_WR) < 0)
			return fail(r, "shutting down the connection: %s", strerror(errno));
		r->up_state = UP_DONE;
		return 0;
	case UP_DONE:
		break;
	}
	return 0;
}

/* ---- net -> plain ------------------------------------------------------------- */

/* After a failure on the network side: what came before it goes to QEMU
 * if QEMU takes it now (no waiting: the stream is failed anyway). */
static void down_flush_once(struct relay *r)
{
	while (r->down_off < r->down_len) {
		ssize_t n = send(r->plain, r->down + r->down_off, r->down_len - r->down_off,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		r->down_off += (size_t)n;
		r->from_net += (uint64_t)n;
	}
}

/* Fill the buffer from the session, then empty it to QEMU, once round.
 * -1 failed, 0 waits (down_wait_* set), 1 more to do at once. */
static int down_step(struct relay *r)
{
	ssize_t n;

	r->down_wait_plain = r->down_wait_net = 0;
	while (r->down_state == DOWN_RUN && r->down_len < RELAY_BUF) {
		n = gnutls_record_recv(r->s, r->down + r->down_len, RELAY_BUF - r->down_len);
		if (n > 0) {
			r->down_len += (size_t)n;
		} else if (n == 0) {
			r->down_state = DOWN_FLUSH; /* close_notify: the end, for sure */
		} else if (again(n)) {
			r->down_wait_net = tls_wait(r);
			break;
		} else {
			fail_net(r, "receiving from", n);
			down_flush_once(r);
			return -1;
		}
	}
	while (r->down_off < r->down_len) {
		n = send(r->plain, r->down + r->down_off, r->down_len - r->down_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			r->down_wait_plain = POLLOUT;
			r->down_wait_net = 0; /* nothing is read while QEMU lags */
			return 0;
		}
		if (n < 0)
			return fail(r, "writing to QEMU: %s", strerror(errno));
		r->down_off += (size_t)n;
		r->from_net += (uint64_t)n;
	}
	r->down_off = r->down_len = 0;
	if (r->down_state == DOWN_FLUSH) {
		/* QEMU's EOF (a QEMU already gone needs none) */
		(void)shutdown(r->plain, SHUT_WR);
		r->down_state = DOWN_DONE;
		return 0;
	}
	return r->down_state == DOWN_RUN && !r->down_wait_net;
}

/* ---- the thread ------------------------------------------------------------------ */

static int relay_prepare(struct relay *r)
{
	int one = 1, fl = fcntl(r->net, F_GETFL);

	if (fl < 0 || fcntl(r->net, F_SETFL, fl | O_NONBLOCK) < 0)
		return fail(r, "cannot make the connection non-blocking: %s", strerror(errno));
	/* a round's records go out at its end: the last, short ones of the
	 * stream must not then wait for an acknowledgement (Nagle), since
	 * the guest is paused; batches fill segments anyway */
	if (setsockopt(r->net, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 &&
	    errno != EOPNOTSUPP && errno != ENOPROTOOPT)
		return fail(r, "TCP_NODELAY: %s", strerror(errno));
	gnutls_transport_set_ptr(r->s, r);
	gnutls_transport_set_pull_function(r->s, net_pull);
	gnutls_transport_set_push_function(r->s, net_push);
	gnutls_transport_set_pull_timeout_function(r->s, net_pull_timeout);
	return 0;
}

static void relay_run(struct relay *r)
{
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = r->plain },
			{ .fd = r->net },
			{ .fd = r->stop_fd, .events = POLLIN },
		};
		int up = r->up_state == UP_DONE ? 0 : up_step(r);
		int down = r->down_state == DOWN_DONE ? 0 : down_step(r);

		if (up < 0 || down < 0)
			return;
		if (r->up_state == UP_DONE && r->down_state == DOWN_DONE)
			return;
		/* the records of this round go out now, together */
		r->flush_wait = 0;
		if (net_flush(r) < 0) {
			if (r->net_errno != EAGAIN && r->net_errno != EWOULDBLOCK) {
				fail(r, "sending to the peer: %s", strerror(r->net_errno));
				return;
			}
			r->flush_wait = POLLOUT;
		}
		if (atomic_load_explicit(&r->stop, memory_order_relaxed)) {
			fail(r, "stopped");
			return;
		}
		if (up > 0 || down > 0)
			continue;
		/* a socket nobody waits on is left out: its hang-up would
		 * wake us for nothing while the other side lags */
		p[0].events = r->up_wait_plain | r->down_wait_plain;
		p[1].events = r->up_wait_net | r->down_wait_net | r->flush_wait;
		if (!p[0].events)
			p[0].fd = -1;
		if (!p[1].events)
			p[1].fd = -1;
		if (p[0].fd < 0 && p[1].fd < 0) {
			fail(r, "internal error: nothing to wait for");
			return;
		}
		if (poll(p, 3, -1) < 0 && errno != EINTR) {
			fail(r, "poll: %s", strerror(errno));
			return;
		}
	}
}

static void *relay_thread(void *arg)
{
	struct relay *r = arg;
	uint64_t one = 1;

	if (relay_prepare(r) == 0)
		relay_run(r);
	if (r->err[0]) {
		/* no close_notify: the peer sees a cut, QEMU an end after what
		 * it was given, and its writes fail at once */
		shutdown(r->net, SHUT_RDWR);
		shutdown(r->plain, SHUT_RDWR);
	}
	while (write(r->done_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	return NULL;
}

/* ---- the loop's side ------------------------------------------------------------- */

static int relay_done_io(int fd, int revents, void *arg)
{
	struct relay *r = arg;
	relay_done_fn done = r->done;
	void *darg = r->arg;
	uint64_t to_net, from_net;
	char err[RELAY_ERR];

	(void)fd;
	(void)revents;
	qb_loop_poll_del(r->loop, r->done_fd);
	pthread_join(r->thread, NULL);
	to_net = r->to_net;
	from_net = r->from_net;
	memcpy(err, r->err, sizeof(err));
	log_debug("relay %s: %s: %llu bytes to the peer, %llu from it", r->label,
		  err[0] ? err : "ended", (unsigned long long)to_net, (unsigned long long)from_net);
	relay_free(r);
	done(darg, to_net, from_net, err[0] ? err : NULL);
	return 0;
}

struct relay *relay_start(qb_loop_t *loop, int net_fd, struct mchan_tls *tls, const char *label,
			  int *plain_fd, relay_done_fn done, void *arg, char *err, size_t errlen)
{
	struct relay *r;
	int sv[2] = { -1, -1 }, rc;
	sigset_t all, old;
	bool polled = false;

	if (!loop || net_fd < 0 || !tls || !plain_fd || !done) {
		snprintf(err, errlen, "invalid arguments");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->loop = loop;
	r->done = done;
	r->arg = arg;
	snprintf(r->label, sizeof(r->label), "%s", label ? label : "?");
	r->net = r->plain = r->done_fd = r->stop_fd = -1;
	r->s = mchan_tls_session(tls);
	r->up = malloc(RELAY_BUF);
	r->down = malloc(RELAY_BUF);
	r->rbuf = malloc(RELAY_NETBUF);
	r->wbuf = malloc(RELAY_NETBUF);
	if (!r->up || !r->down || !r->rbuf || !r->wbuf) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		goto fail;
	}
	r->plain = sv[0];
	if (fcntl(r->plain, F_SETFL, O_NONBLOCK) < 0 ||
	    (r->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    (r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	if (qb_loop_poll_add(loop, QB_LOOP_MED, r->done_fd, POLLIN, r, relay_done_io) < 0) {
		snprintf(err, errlen, "cannot watch the relay");
		goto fail;
	}
	polled = true;
	r->net = net_fd;
	r->tls = tls;
	/* signals are the main thread's business (libqb turns them into
	 * loop events): the relay thread takes none */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&r->thread, NULL, relay_thread, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		pthread_setname_np(r->thread, "hagent-relay"); /* for top -H, perf */
	if (rc != 0) {
		r->net = -1; /* still the caller's */
		r->tls = NULL;
		snprintf(err, errlen, "cannot start the relay thread: %s", strerror(rc));
		goto fail;
	}
	*plain_fd = sv[1];
	return r;
fail:
	if (polled)
		qb_loop_poll_del(loop, r->done_fd);
	if (sv[1] >= 0)
		close(sv[1]);
	relay_free(r);
	return NULL;
}

void relay_stop(struct relay *r)
{
	uint64_t one = 1;

	if (!r)
		return;
	qb_loop_poll_del(r->loop, r->done_fd);
	atomic_store(&r->stop, true);
	while (write(r->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(r->thread, NULL);
	log_debug("relay %s: stopped: %llu bytes to the peer, %llu from it", r->label,
		  (unsigned long long)r->to_net, (unsigned long long)r->from_net);
	relay_free(r);
}

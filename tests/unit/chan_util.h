/* tests/unit/chan_util.h: small helpers shared by the tests of migrate/
 * (test_channel, test_relay): loopback ports, keys, fd counting, running a
 * qb_loop with a deadline, and a live channel (both ends of one accepted
 * mchan connection) to build on.  Header-only; cmocka must be included
 * first. */
#ifndef HAGENT_TESTS_CHAN_UTIL_H
#define HAGENT_TESTS_CHAN_UTIL_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <qb/qbloop.h>

#include "migrate/channel.h"

/* A port nothing listens on (bound, read, released). */
static inline uint16_t chu_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static inline void chu_key_fill(struct mchan_key *k, unsigned char v)
{
	memset(k, 0, sizeof(*k));
	memset(k->key, v, 32);
	k->len = 32;
}

static inline int chu_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own */
}

struct chu_deadline {
	qb_loop_t *loop;
	bool fired;
};

static inline void chu_deadline_cb(void *arg)
{
	struct chu_deadline *d = arg;

	d->fired = true;
	qb_loop_stop(d->loop);
}

/* Run the loop until a callback stops it (true) or ms pass (false): a bug
 * fails its test instead of hanging it. */
static inline bool chu_run(qb_loop_t *loop, unsigned ms)
{
	struct chu_deadline d = { .loop = loop };
	qb_loop_timer_handle t;

	assert_int_equal(qb_loop_timer_add(loop, QB_LOOP_LOW, ms * 1000000ULL, &d, chu_deadline_cb,
					   &t), 0);
	qb_loop_run(loop);
	if (!d.fired)
		qb_loop_timer_del(loop, t);
	return !d.fired;
}

/* ---- a live channel ------------------------------------------------------------- */

/* Both ends of one accepted connection: the source's (client) and the
 * destination's (server) socket, with their sessions in tls mode. */
struct chu_pair {
	qb_loop_t *loop;
	int cfd, sfd;
	struct mchan_tls *ctls, *stls;
	bool client_done, accepted;
	char err[256];
};

static inline int chu_pair_verify(void *arg, const struct mchan_hello *h, char *why, size_t len)
{
	(void)arg;
	(void)h;
	(void)why;
	(void)len;
	return 0;
}

static inline void chu_pair_accept(void *arg, const struct mchan_hello *h, int fd,
				   struct mchan_tls *tls)
{
	struct chu_pair *p = arg;

	(void)h;
	p->sfd = fd;
	p->stls = tls;
	p->accepted = true;
	if (p->client_done)
		qb_loop_stop(p->loop);
}

static inline void chu_pair_done(void *arg, int fd, struct mchan_tls *tls, const char *err)
{
	struct chu_pair *p = arg;

	p->cfd = fd;
	p->ctls = tls;
	p->client_done = true;
	if (err) {
		snprintf(p->err, sizeof(p->err), "%s", err);
		qb_loop_stop(p->loop);
	} else if (p->accepted) {
		qb_loop_stop(p->loop);
	}
}

/* Handshake a connection over loopback TCP through mchan_listen and
 * mchan_connect; the server is gone afterwards, the pair is the caller's. */
static inline void chu_pair_open(qb_loop_t *loop, enum mchan_mode mode, struct chu_pair *p)
{
	static const struct mchan_hello hello = {
		.job = "job-1", .guest = "vm1", .gen = 1, .src = "nodeA", .dst = "nodeB",
	};
	struct mchan_key key;
	struct mchan_server *srv;
	struct mchan_client *cl;
	char err[256] = "";
	uint16_t port = chu_free_port();

	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->cfd = p->sfd = -1;
	chu_key_fill(&key, 0x5a);
	srv = mchan_listen(loop, mode, &key, "127.0.0.1", port, 5000, chu_pair_verify,
			   chu_pair_accept, p, err, sizeof(err));
	if (!srv)
		fail_msg("mchan_listen: %s", err);
	cl = mchan_connect(loop, mode, &key, "127.0.0.1", port, &hello, 5000, chu_pair_done, p, err,
			   sizeof(err));
	if (!cl)
		fail_msg("mchan_connect: %s", err);
	if (!chu_run(loop, 10000))
		fail_msg("channel handshake timed out");
	mchan_server_close(srv);
	if (p->err[0])
		fail_msg("channel: %s", p->err);
	assert_true(p->cfd >= 0 && p->sfd >= 0);
	assert_true((mode == MCHAN_TLS) == (p->ctls && p->stls));
}

#endif

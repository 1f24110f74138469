/* Benchmark: the TLS relay (migrate/relay.c) against a plain TCP copy of the
 * same bytes, over loopback, in one run.
 *
 *   relay  writer -> socketpair -> relay(src) -> TLS over TCP -> relay(dst)
 *          -> socketpair -> reader; the sessions come from a real channel
 *          handshake (mchan_listen / mchan_connect), as in hagentd
 *   plain  writer -> TCP -> reader
 *
 * The writer is a thread writing SIZE bytes (pseudo-random, 1 MiB writes)
 * then closing, the reader the main thread reading to EOF; both sum the
 * bytes as 64-bit words, so a corrupted or truncated stream fails the run.
 * Figures: MB/s (10^6 bytes) from the first write to the reader's EOF, CPU
 * seconds of the whole process per GiB, and relay / plain.  Each mode runs
 * ROUNDS times; the best and the median are printed.
 *
 * usage: relay_bench [SIZE_MIB (1024)] [ROUNDS (3)] [relay|plain (both)]
 * (one mode alone: for a profiler)
 *
 * Mind the machine: on loopback both ends share its cores (writer, two relay
 * threads, reader), where a real migration has one relay per host. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <qb/qbloop.h>
#include <qb/qblog.h>

/* chan_util.h asserts the cmocka way; here a failed check ends the run */
#define fail_msg(...) \
	do { \
		fprintf(stderr, "relay_bench: " __VA_ARGS__); \
		fputc('\n', stderr); \
		exit(1); \
	} while (0)
#define assert_true(c) \
	do { \
		if (!(c)) \
			fail_msg("%s:%d: %s", __FILE__, __LINE__, #c); \
	} while (0)
#define assert_int_equal(a, b) assert_true((a) == (b))
#define assert_non_null(p) assert_true((p) != NULL)

#include "migrate/channel.h"
#include "migrate/relay.h"
#include "tests/unit/chan_util.h"

#define WRITE_SZ (1024 * 1024)
#define MIB (1024ULL * 1024ULL)

struct writer {
	int fd;
	uint64_t size;
	const uint8_t *pattern; /* WRITE_SZ bytes */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t sum64(const uint8_t *p, size_t n)
{
	uint64_t s = 0, w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		s += w;
	}
	for (; i < n; i++)
		s += p[i];
	return s;
}

/* The sum of a stream made of whole patterns and a tail: writes of
 * WRITE_SZ always start at offset 0 of the pattern. */
static uint64_t stream_sum(const uint8_t *pattern, uint64_t size)
{
	return sum64(pattern, WRITE_SZ) * (size / WRITE_SZ) + sum64(pattern, size % WRITE_SZ);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t left = w->size;

	while (left) {
		size_t n = left < WRITE_SZ ? (size_t)left : WRITE_SZ, off = 0;

		while (off < n) {
			ssize_t k = send(w->fd, w->pattern + off, n - off, MSG_NOSIGNAL);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				fail_msg("writer: %s", k < 0 ? strerror(errno) : "short write");
			off += (size_t)k;
		}
		left -= n;
	}
	close(w->fd);
	return NULL;
}

/* Read to EOF; the byte count, and the sum (words aligned on WRITE_SZ
 * boundaries of the stream, as stream_sum counts them). */
static uint64_t read_all(int fd, uint64_t *sum)
{
	static uint8_t buf[WRITE_SZ];
	uint64_t got = 0;
	size_t fill = 0;

	*sum = 0;
	for (;;) {
		ssize_t n = read(fd, buf + fill, sizeof(buf) - fill);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail_msg("reader: %s", strerror(errno));
		if (n == 0)
			break;
		fill += (size_t)n;
		got += (uint64_t)n;
		if (fill == sizeof(buf)) {
			*sum += sum64(buf, fill);
			fill = 0;
		}
	}
	*sum += sum64(buf, fill);
	return got;
}

struct result {
	double mbs, cpu_per_gib;
};

/* Time one transfer: the writer on wfd, the reader on rfd. */
static struct result transfer(int wfd, int rfd, const uint8_t *pattern, uint64_t size)
{
	struct writer w = { .fd = wfd, .size = size, .pattern = pattern };
	pthread_t th;
	double t0, c0, t;
	uint64_t got, sum;
	struct result r;

	c0 = cpu_s();
	t0 = now_s();
	if (pthread_create(&th, NULL, writer_main, &w) != 0)
		fail_msg("pthread_create");
	got = read_all(rfd, &sum);
	t = now_s() - t0;
	pthread_join(th, NULL);
	r.cpu_per_gib = (cpu_s() - c0) / ((double)size / (1024.0 * MIB));
	if (got != size || sum != stream_sum(pattern, size))
		fail_msg("stream damaged: %llu of %llu bytes", (unsigned long long)got,
			 (unsigned long long)size);
	r.mbs = (double)size / t / 1e6;
	return r;
}

/* ---- plain TCP ----------------------------------------------------------------- */

static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(*a >= 0);
	assert_int_equal(connect(*a, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*b >= 0);
	close(l);
}

static struct result run_plain(const uint8_t *pattern, uint64_t size)
{
	int a, b;
	struct result r;

	tcp_pair(&a, &b);
	r = transfer(a, b, pattern, size); /* closes a */
	close(b);
	return r;
}

/* ---- the relay ------------------------------------------------------------------ */

struct ends {
	qb_loop_t *loop;
	int n_done;
	uint64_t sent, received;
	char err[256];
};

static void relay_done(void *arg, uint64_t to_net, uint64_t from_net, const char *err)
{
	struct ends *e = arg;

	e->sent += to_net;
	e->received += from_net;
	if (err && !e->err[0])
		snprintf(e->err, sizeof(e->err), "%s", err);
	if (++e->n_done == 2)
		qb_loop_stop(e->loop);
}

static struct result run_relay(qb_loop_t *loop, const uint8_t *pattern, uint64_t size)
{
	struct ends e = { .loop = loop };
	struct chu_pair p;
	char err[256];
	int wfd, rfd;
	struct result r;

	chu_pair_open(loop, MCHAN_TLS, &p);
	if (!relay_start(loop, p.cfd, p.ctls, "bench-src", &wfd, relay_done, &e, err,
			 sizeof(err)) ||
	    !relay_start(loop, p.sfd, p.stls, "bench-dst", &rfd, relay_done, &e, err,
			 sizeof(err)))
		fail_msg("relay_start: %s", err);
	r = transfer(wfd, rfd, pattern, size); /* closes wfd: the source's end */
	close(rfd);                            /* the destination's: both relays end */
	if (!chu_run(loop, 10000))
		fail_msg("the relays did not end");
	if (e.err[0] || e.sent != size || e.received != size)
		fail_msg("relay: %s (%llu sent, %llu received)", e.err[0] ? e.err : "counts",
			 (unsigned long long)e.sent, (unsigned long long)e.received);
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	uint64_t size = (argc > 1 ? strtoull(argv[1], NULL, 10) : 1024) * MIB;
	int rounds = argc > 2 ? atoi(argv[2]) : 3, i;
	bool do_relay = argc <= 3 || !strcmp(argv[3], "relay"),
	     do_plain = argc <= 3 || !strcmp(argv[3], "plain");
	double plain[16], relay[16], plain_cpu = 0, relay_cpu = 0;
	uint8_t *pattern = malloc(WRITE_SZ);
	qb_loop_t *loop;
	uint64_t x = 88172645463325252ULL;

	if (!size || rounds < 1 || rounds > 16 || !pattern) {
		fprintf(stderr, "usage: relay_bench [SIZE_MIB] [ROUNDS (1-16)] [relay|plain]\n");
		return 2;
	}
	for (i = 0; i < WRITE_SZ; i++) { /* xorshift: incompressible, not all zero */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		pattern[i] = (uint8_t)x;
	}
	qb_log_init("relay_bench", LOG_DAEMON, LOG_WARNING);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	loop = qb_loop_create();
	printf("relay_bench: %llu MiB per run, %d rounds, %ld CPUs\n",
	       (unsigned long long)(size / MIB), rounds, sysconf(_SC_NPROCESSORS_ONLN));
	for (i = 0; i < rounds; i++) { /* interleaved: drift hits both alike */
		struct result p = { 0 }, r = { 0 };

		if (do_plain)
			p = run_plain(pattern, size);
		if (do_relay)
			r = run_relay(loop, pattern, size);

		plain[i] = p.mbs;
		relay[i] = r.mbs;
		plain_cpu += p.cpu_per_gib / rounds;
		relay_cpu += r.cpu_per_gib / rounds;
		printf("  round %d: plain TCP %7.0f MB/s   relay %7.0f MB/s\n", i + 1, p.mbs,
		       r.mbs);
	}
	qsort(plain, (size_t)rounds, sizeof(double), cmp_double);
	qsort(relay, (size_t)rounds, sizeof(double), cmp_double);
	printf("plain TCP: best %.0f MB/s, median %.0f MB/s, %.2f CPU-s/GiB\n", plain[rounds - 1],
	       plain[rounds / 2], plain_cpu);
	printf("relay:     best %.0f MB/s, median %.0f MB/s, %.2f CPU-s/GiB\n", relay[rounds - 1],
	       relay[rounds / 2], relay_cpu);
	printf("relay / plain TCP (median): %.2f\n", relay[rounds / 2] / plain[rounds / 2]);
	qb_loop_destroy(loop);
	qb_log_fini();
	free(pattern);
	return 0;
}

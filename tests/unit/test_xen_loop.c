/* drivers/xen_loop.c: libxl's fd and timeout registrations in a real libqb
 * loop, with real pipes.  libxl itself cannot run without Xen, so this test
 * stands in for its side: it calls the hooks as libxl would, and defines
 * libxl_osevent_occurred_fd/_timeout to record what the loop hands back
 * (and to deregister from within, as libxl may). */
#include "config.h"

#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/xen_loop.h"

#define MAX_CALLS 16
static struct {
	void *for_libxl[MAX_CALLS];
	short revents[MAX_CALLS];
	int n_fd, n_timeout;
	void *timeouts[MAX_CALLS];
	/* deregister this registration when the first fd call arrives */
	void *kill_reg;
	int kill_fd;
	struct xen_loop *xl;
	qb_loop_t *loop;
} F;

void libxl_osevent_occurred_fd(libxl_ctx *ctx, void *for_libxl, int fd, short events,
			       short revents)
{
	(void)ctx;
	(void)events;
	if (F.n_fd < MAX_CALLS) {
		F.for_libxl[F.n_fd] = for_libxl;
		F.revents[F.n_fd] = revents;
	}
	F.n_fd++;
	if (F.kill_reg) {
		xen_loop_hooks()->fd_deregister(F.xl, F.kill_fd, F.kill_reg);
		F.kill_reg = NULL;
	}
	qb_loop_stop(F.loop);
}

void libxl_osevent_occurred_timeout(libxl_ctx *ctx, void *for_libxl)
{
	(void)ctx;
	if (F.n_timeout < MAX_CALLS)
		F.timeouts[F.n_timeout] = for_libxl;
	F.n_timeout++;
	qb_loop_stop(F.loop);
}

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	F.loop = qb_loop_create();
	F.xl = xen_loop_new(F.loop);
	xen_loop_set_ctx(F.xl, (libxl_ctx *)&F); /* never dereferenced here */
	return F.loop && F.xl ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	xen_loop_free(F.xl);
	qb_loop_destroy(F.loop);
	return 0;
}

/* Runs the loop until a hook call stops it, or 2 s pass. */
static void deadline_stop(void *arg)
{
	(void)arg;
	qb_loop_stop(F.loop);
}

static void run_loop(void)
{
	qb_loop_timer_handle t;

	assert_int_equal(qb_loop_timer_add(F.loop, QB_LOOP_LOW, 2000000000ULL, NULL, deadline_stop, &t), 0);
	qb_loop_run(F.loop);
	qb_loop_timer_del(F.loop, t);
}

static void test_two_registrations_one_fd(void **state)
{
	const libxl_osevent_hooks *h = xen_loop_hooks();
	int p[2];
	void *ra = NULL, *rb = NULL;
	int tag_a, tag_b;

	(void)state;
	assert_int_equal(pipe(p), 0);
	/* libxl may register one fd twice, with distinct event bits */
	assert_int_equal(h->fd_register(F.xl, p[0], &ra, POLLIN, &tag_a), 0);
	assert_int_equal(h->fd_register(F.xl, p[0], &rb, POLLPRI, &tag_b), 0);
	assert_non_null(ra);
	assert_non_null(rb);
	assert_int_equal(xen_loop_n_fds(F.xl), 1); /* one poll entry for both */
	assert_int_equal(write(p[1], "x", 1), 1);
	run_loop();
	/* only the registration that asked for POLLIN hears of it */
	assert_int_equal(F.n_fd, 1);
	assert_ptr_equal(F.for_libxl[0], &tag_a);
	assert_true(F.revents[0] & POLLIN);

	/* modify b to POLLIN too: both are told, a then b */
	assert_int_equal(h->fd_modify(F.xl, p[0], &rb, POLLIN), 0);
	F.n_fd = 0;
	run_loop(); /* the byte is still unread */
	assert_int_equal(F.n_fd, 2);
	assert_ptr_equal(F.for_libxl[0], &tag_a);
	assert_ptr_equal(F.for_libxl[1], &tag_b);

	/* events == 0: registered, silent */
	assert_int_equal(h->fd_modify(F.xl, p[0], &ra, 0), 0);
	assert_int_equal(h->fd_modify(F.xl, p[0], &rb, 0), 0);
	F.n_fd = 0;
	run_loop();
	assert_int_equal(F.n_fd, 0);

	h->fd_deregister(F.xl, p[0], ra);
	assert_int_equal(xen_loop_n_fds(F.xl), 1);
	h->fd_deregister(F.xl, p[0], rb);
	assert_int_equal(xen_loop_n_fds(F.xl), 0);
	close(p[0]);
	close(p[1]);
}

/* libxl deregisters b while a's event is delivered: b is not called (its
 * for_libxl may be gone). */
static void test_deregister_during_dispatch(void **state)
{
	const libxl_osevent_hooks *h = xen_loop_hooks();
	int p[2];
	void *ra = NULL, *rb = NULL;
	int tag_a, tag_b;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(h->fd_register(F.xl, p[0], &ra, POLLIN, &tag_a), 0);
	assert_int_equal(h->fd_register(F.xl, p[0], &rb, POLLIN, &tag_b), 0);
	F.kill_reg = rb;
	F.kill_fd = p[0];
	assert_int_equal(write(p[1], "x", 1), 1);
	run_loop();
	assert_int_equal(F.n_fd, 1);
	assert_ptr_equal(F.for_libxl[0], &tag_a);
	h->fd_deregister(F.xl, p[0], ra);
	assert_int_equal(xen_loop_n_fds(F.xl), 0);
	close(p[0]);
	close(p[1]);
}

/* A regular file (libxl copies the device model's saved state from one into
 * a migration stream): epoll refuses it, poll(2) calls it always ready, and
 * so does the loop, until it is deregistered or asks for nothing. */
static void test_regular_file_always_ready(void **state)
{
	const libxl_osevent_hooks *h = xen_loop_hooks();
	char path[] = "/tmp/hagent-xen-loop.XXXXXX";
	int fd = mkstemp(path), tag;
	void *r = NULL;

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(h->fd_register(F.xl, fd, &r, POLLIN, &tag), 0);
	assert_int_equal(xen_loop_n_fds(F.xl), 1);
	run_loop();
	assert_int_equal(F.n_fd, 1);
	assert_ptr_equal(F.for_libxl[0], &tag);
	assert_true(F.revents[0] & POLLIN);
	/* ready again at the next turn, as long as it asks */
	run_loop();
	assert_int_equal(F.n_fd, 2);
	/* asking for nothing: silent (the loop stops at its 2 s deadline) */
	assert_int_equal(h->fd_modify(F.xl, fd, &r, 0), 0);
	run_loop();
	assert_int_equal(F.n_fd, 2);
	assert_int_equal(h->fd_modify(F.xl, fd, &r, POLLIN), 0);
	run_loop();
	assert_int_equal(F.n_fd, 3);
	h->fd_deregister(F.xl, fd, r);
	assert_int_equal(xen_loop_n_fds(F.xl), 0);
	run_loop();
	assert_int_equal(F.n_fd, 3);
	close(fd);
}

static void test_timeouts(void **state)
{
	const libxl_osevent_hooks *h = xen_loop_hooks();
	struct timeval now, later;
	void *ra = NULL, *rb = NULL;
	int tag_a, tag_b;

	(void)state;
	gettimeofday(&now, NULL);
	later = now;
	later.tv_sec += 60;
	assert_int_equal(h->timeout_register(F.xl, &ra, later, &tag_a), 0);
	now.tv_usec = (now.tv_usec + 50000) % 1000000; /* about 50 ms from now (or past) */
	if (now.tv_usec < 50000)
		now.tv_sec++;
	assert_int_equal(h->timeout_register(F.xl, &rb, now, &tag_b), 0);
	assert_int_equal(xen_loop_n_timeouts(F.xl), 2);
	run_loop();
	assert_int_equal(F.n_timeout, 1);
	assert_ptr_equal(F.timeouts[0], &tag_b);
	assert_int_equal(xen_loop_n_timeouts(F.xl), 1); /* deregistered as it fired */

	/* the minute-long one brought forward to "now" */
	later.tv_sec = 0;
	later.tv_usec = 0;
	assert_int_equal(h->timeout_modify(F.xl, &ra, later), 0);
	run_loop();
	assert_int_equal(F.n_timeout, 2);
	assert_ptr_equal(F.timeouts[1], &tag_a);
	assert_int_equal(xen_loop_n_timeouts(F.xl), 0);
}

/* What libxl leaves registered when its ctx goes is dropped with the loop
 * glue (ASan sees a leak otherwise). */
static void test_free_with_registrations(void **state)
{
	const libxl_osevent_hooks *h = xen_loop_hooks();
	struct timeval later;
	void *r = NULL, *t = NULL;
	int p[2], tag;

	(void)state;
	assert_int_equal(pipe(p), 0);
	gettimeofday(&later, NULL);
	later.tv_sec += 60;
	assert_int_equal(h->fd_register(F.xl, p[0], &r, POLLIN, &tag), 0);
	assert_int_equal(h->timeout_register(F.xl, &t, later, &tag), 0);
	xen_loop_free(F.xl);
	F.xl = xen_loop_new(F.loop);
	assert_int_equal(write(p[1], "x", 1), 1);
	run_loop(); /* nothing of the old registry fires */
	assert_int_equal(F.n_fd + F.n_timeout, 0);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_registrations_one_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deregister_during_dispatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_regular_file_always_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_registrations, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

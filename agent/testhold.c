#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent/testhold.h"
#include "lib/log.h"

#define HOLD_CHECK_MS 20

struct hold {
	qb_loop_t *loop;
	char path[PATH_MAX];
	char point[64];
	void (*fn)(void *);
	void *arg;
	void (*free_arg)(void *);
	qb_loop_timer_handle timer;
};

static void hold_end(struct hold *h)
{
	h->fn(h->arg);
	if (h->free_arg)
		h->free_arg(h->arg);
	free(h);
}

static void hold_check(void *arg)
{
	struct hold *h = arg;

	if (access(h->path, F_OK) == 0 &&
	    qb_loop_timer_add(h->loop, QB_LOOP_LOW, HOLD_CHECK_MS * 1000000ULL, h, hold_check,
			      &h->timer) == 0)
		return;
	log_notice("test hold: %s released", h->point);
	hold_end(h);
}

bool test_hold(qb_loop_t *loop, const char *point, const char *what, void (*fn)(void *arg),
	       void *arg, void (*free_arg)(void *arg))
{
	const char *dir = getenv("HAGENT_TEST_HOLD_DIR");
	struct hold *h;
	char path[PATH_MAX];

	if (!dir || !dir[0] ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, point) >= sizeof(path) ||
	    access(path, F_OK) < 0)
		return false;
	h = calloc(1, sizeof(*h));
	if (!h) {
		log_err("test hold: %s: out of memory: not holding", point);
		return false;
	}
	h->loop = loop;
	snprintf(h->path, sizeof(h->path), "%s", path);
	snprintf(h->point, sizeof(h->point), "%s", point);
	h->fn = fn;
	h->arg = arg;
	h->free_arg = free_arg;
	log_notice("test hold: %s (%s)", point, what);
	if (qb_loop_timer_add(loop, QB_LOOP_LOW, HOLD_CHECK_MS * 1000000ULL, h, hold_check,
			      &h->timer) < 0) {
		log_err("test hold: %s: cannot arm a timer: not holding", point);
		hold_end(h);
	}
	return true;
}

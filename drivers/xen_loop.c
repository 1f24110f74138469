#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <qb/qblist.h>

#include "drivers/xen_loop.h"
#include "lib/log.h"

struct fd_reg {
	struct qb_list_head list;
	uint64_t id;          /* unique: a dispatch finds it again by id */
	short events;
	void *for_libxl;
};

struct fd_ent {
	struct qb_list_head list;
	struct qb_list_head regs;
	int fd;
	short polled;         /* the union of the registrations' events */
	bool always;          /* a regular file (epoll refuses it): always ready */
};

struct tmo {
	struct qb_list_head list;
	struct xen_loop *xl;
	void *for_libxl;
	qb_loop_timer_handle timer;
};

struct xen_loop {
	qb_loop_t *loop;
	libxl_ctx *ctx;
	struct qb_list_head fds, timeouts;
	uint64_t next_id;
	int n_fds, n_timeouts;
	bool always_queued;   /* always_run is queued in the loop */
};

static void always_arm(struct xen_loop *xl);
static int fd_ready(int32_t fd, int32_t revents, void *data);

static struct fd_ent *fd_find(struct xen_loop *xl, int fd)
{
	struct fd_ent *e;

	qb_list_for_each_entry(e, &xl->fds, list)
		if (e->fd == fd)
			return e;
	return NULL;
}

static struct fd_reg *reg_find(struct fd_ent *e, uint64_t id)
{
	struct fd_reg *r;

	qb_list_for_each_entry(r, &e->regs, list)
		if (r->id == id)
			return r;
	return NULL;
}

static short union_of(struct fd_ent *e)
{
	struct fd_reg *r;
	short ev = 0;

	qb_list_for_each_entry(r, &e->regs, list)
		ev |= r->events;
	return ev;
}

/* One poll event of an fd: every registration whose events it concerns.
 * libxl may deregister any of them (or the fd) from within the call, so
 * each is looked up again, by fd and id, before it is called. */
#define DISPATCH_MAX 16
static int fd_ready(int32_t fd, int32_t revents, void *data)
{
	struct xen_loop *xl = data;
	struct fd_ent *e = fd_find(xl, fd);
	uint64_t ids[DISPATCH_MAX];
	struct fd_reg *r;
	int i, n = 0;

	if (!e || !xl->ctx)
		return 0;
	qb_list_for_each_entry(r, &e->regs, list)
		if (n < DISPATCH_MAX && (r->events & revents || revents & (POLLERR | POLLHUP | POLLNVAL)) &&
		    r->events)
			ids[n++] = r->id;
	for (i = 0; i < n; i++) {
		e = fd_find(xl, fd);
		r = e ? reg_find(e, ids[i]) : NULL;
		if (r)
			libxl_osevent_occurred_fd(xl->ctx, r->for_libxl, fd, r->events,
						  (short)(revents & (r->events | POLLERR | POLLHUP | POLLNVAL)));
	}
	return 0;
}

/* Regular files (libxl copies the device model's saved state from one into
 * the migration stream) cannot be epolled; poll(2), which libxl's own loop
 * uses, says they are always ready.  So they are: a low-priority loop job
 * offers every such fd its events until libxl deregisters it. */
static void always_run(void *data)
{
	struct xen_loop *xl = data;
	struct fd_ent *e;
	int fds[DISPATCH_MAX], n = 0, i;

	xl->always_queued = false;
	qb_list_for_each_entry(e, &xl->fds, list)
		if (e->always && e->polled && n < DISPATCH_MAX)
			fds[n++] = e->fd;
	for (i = 0; i < n; i++) {
		e = fd_find(xl, fds[i]);
		if (e && e->always)
			(void)fd_ready(e->fd, e->polled & (POLLIN | POLLOUT), xl);
	}
	always_arm(xl);
}

static void always_arm(struct xen_loop *xl)
{
	struct fd_ent *e;

	if (xl->always_queued)
		return;
	qb_list_for_each_entry(e, &xl->fds, list)
		if (e->always && e->polled) {
			xl->always_queued = qb_loop_job_add(xl->loop, QB_LOOP_LOW, xl,
							    always_run) == 0;
			return;
		}
}

static int repoll(struct xen_loop *xl, struct fd_ent *e, bool added)
{
	short ev = union_of(e);
	struct stat st;
	int rc;

	if (e->always) {
		e->polled = ev;
		always_arm(xl);
		return 0;
	}

	if (added && fstat(e->fd, &st) == 0 && S_ISREG(st.st_mode)) {
		rc = -EPERM; /* what epoll says of a regular file: no need to ask */
	} else if (added) {
		rc = qb_loop_poll_add(xl->loop, QB_LOOP_MED, e->fd, ev, xl, fd_ready);
		if (rc == -EEXIST) {
			/* an fd number libxl closed and reused before it
			 * deregistered the old one: the loop still has it */
			(void)qb_loop_poll_del(xl->loop, e->fd);
			rc = qb_loop_poll_add(xl->loop, QB_LOOP_MED, e->fd, ev, xl, fd_ready);
		}
	} else {
		rc = qb_loop_poll_mod(xl->loop, QB_LOOP_MED, e->fd, ev, xl, fd_ready);
		if (rc < 0) {
			(void)qb_loop_poll_del(xl->loop, e->fd);
			rc = qb_loop_poll_add(xl->loop, QB_LOOP_MED, e->fd, ev, xl, fd_ready);
		}
	}
	if (rc == -EPERM) {
		(void)qb_loop_poll_del(xl->loop, e->fd); /* libqb keeps a failed entry */
		e->always = true;
		e->polled = ev;
		always_arm(xl);
		return 0;
	}
	if (rc < 0) {
		log_err("xen: cannot poll libxl's fd %d for events 0x%x: %s", e->fd, (unsigned)ev,
			strerror(-rc));
		return rc;
	}
	e->polled = ev;
	return 0;
}

static int hook_fd_register(void *user, int fd, void **reg_out, short events, void *for_libxl)
{
	struct xen_loop *xl = user;
	struct fd_ent *e = fd_find(xl, fd);
	struct fd_reg *r = calloc(1, sizeof(*r));
	bool added = false;

	if (!r)
		return ERROR_OSEVENT_REG_FAIL;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			free(r);
			return ERROR_OSEVENT_REG_FAIL;
		}
		e->fd = fd;
		qb_list_init(&e->regs);
		added = true;
	}
	r->id = ++xl->next_id;
	r->events = events;
	r->for_libxl = for_libxl;
	qb_list_add_tail(&r->list, &e->regs);
	if (repoll(xl, e, added) < 0) {
		qb_list_del(&r->list);
		free(r);
		if (added)
			free(e);
		log_err("xen: cannot watch libxl's fd %d", fd);
		return ERROR_OSEVENT_REG_FAIL;
	}
	if (added) {
		qb_list_add_tail(&e->list, &xl->fds);
		xl->n_fds++;
	}
	if (e->always)
		always_arm(xl); /* now that the loop's job can find it */
	*reg_out = r;
	return 0;
}

static int hook_fd_modify(void *user, int fd, void **reg_update, short events)
{
	struct xen_loop *xl = user;
	struct fd_ent *e = fd_find(xl, fd);
	struct fd_reg *r = *reg_update;
	short old = r->events;

	if (!e)
		return ERROR_OSEVENT_REG_FAIL;
	r->events = events;
	if (repoll(xl, e, false) < 0) {
		r->events = old;
		return ERROR_OSEVENT_REG_FAIL;
	}
	return 0;
}

static void hook_fd_deregister(void *user, int fd, void *reg)
{
	struct xen_loop *xl = user;
	struct fd_ent *e = fd_find(xl, fd);
	struct fd_reg *r = reg;

	qb_list_del(&r->list);
	free(r);
	if (!e)
		return;
	if (!qb_list_empty(&e->regs)) {
		(void)repoll(xl, e, false);
		return;
	}
	if (!e->always)
		qb_loop_poll_del(xl->loop, fd);
	qb_list_del(&e->list);
	free(e);
	xl->n_fds--;
}

static void timeout_fired(void *data)
{
	struct tmo *t = data;
	struct xen_loop *xl = t->xl;
	void *for_libxl = t->for_libxl;

	/* deregistered on entry to occurred_timeout: libxl registers anew */
	qb_list_del(&t->list);
	xl->n_timeouts--;
	free(t);
	if (xl->ctx)
		libxl_osevent_occurred_timeout(xl->ctx, for_libxl);
}

static uint64_t ns_until(struct timeval abs)
{
	struct timeval now;
	int64_t us;

	gettimeofday(&now, NULL); /* libxl's deadlines are gettimeofday's */
	us = ((int64_t)abs.tv_sec - now.tv_sec) * 1000000 + ((int64_t)abs.tv_usec - now.tv_usec);
	return us > 0 ? (uint64_t)us * 1000 : 0;
}

static int hook_timeout_register(void *user, void **reg_out, struct timeval abs, void *for_libxl)
{
	struct xen_loop *xl = user;
	struct tmo *t = calloc(1, sizeof(*t));

	if (!t)
		return ERROR_OSEVENT_REG_FAIL;
	t->xl = xl;
	t->for_libxl = for_libxl;
	int rc = qb_loop_timer_add(xl->loop, QB_LOOP_MED, ns_until(abs), t, timeout_fired, &t->timer);

	if (rc < 0) {
		log_err("xen: cannot add libxl's timeout: %s", strerror(-rc));
		free(t);
		return ERROR_OSEVENT_REG_FAIL;
	}
	qb_list_add_tail(&t->list, &xl->timeouts);
	xl->n_timeouts++;
	*reg_out = t;
	return 0;
}

/* Only ever "now" (abs = {0,0}). */
static int hook_timeout_modify(void *user, void **reg_update, struct timeval abs)
{
	struct xen_loop *xl = user;
	struct tmo *t = *reg_update;

	qb_loop_timer_del(xl->loop, t->timer);
	if (qb_loop_timer_add(xl->loop, QB_LOOP_MED, ns_until(abs), t, timeout_fired, &t->timer) < 0)
		return ERROR_OSEVENT_REG_FAIL;
	return 0;
}

static void hook_timeout_deregister(void *user, void *reg)
{
	struct xen_loop *xl = user;
	struct tmo *t = reg;

	/* libxl never calls it (a deprecated mode), but be exact if it does */
	qb_loop_timer_del(xl->loop, t->timer);
	qb_list_del(&t->list);
	xl->n_timeouts--;
	free(t);
}

static const libxl_osevent_hooks hooks = {
	.fd_register = hook_fd_register,
	.fd_modify = hook_fd_modify,
	.fd_deregister = hook_fd_deregister,
	.timeout_register = hook_timeout_register,
	.timeout_modify = hook_timeout_modify,
	.timeout_deregister = hook_timeout_deregister,
};

const libxl_osevent_hooks *xen_loop_hooks(void)
{
	return &hooks;
}

struct xen_loop *xen_loop_new(qb_loop_t *loop)
{
	struct xen_loop *xl = calloc(1, sizeof(*xl));

	if (!xl)
		return NULL;
	xl->loop = loop;
	qb_list_init(&xl->fds);
	qb_list_init(&xl->timeouts);
	return xl;
}

void xen_loop_set_ctx(struct xen_loop *xl, libxl_ctx *ctx)
{
	xl->ctx = ctx;
}

void xen_loop_free(struct xen_loop *xl)
{
	struct fd_ent *e, *en;
	struct fd_reg *r, *rn;
	struct tmo *t, *tn;

	if (!xl)
		return;
	if (xl->always_queued)
		qb_loop_job_del(xl->loop, QB_LOOP_LOW, xl, always_run);
	qb_list_for_each_entry_safe(e, en, &xl->fds, list) {
		qb_list_for_each_entry_safe(r, rn, &e->regs, list)
			free(r);
		qb_loop_poll_del(xl->loop, e->fd);
		free(e);
	}
	qb_list_for_each_entry_safe(t, tn, &xl->timeouts, list) {
		qb_loop_timer_del(xl->loop, t->timer);
		free(t);
	}
	free(xl);
}

int xen_loop_n_fds(const struct xen_loop *xl)
{
	return xl->n_fds;
}

int xen_loop_n_timeouts(const struct xen_loop *xl)
{
	return xl->n_timeouts;
}

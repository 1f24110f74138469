/* libxl's events in hagentd's own libqb loop: the osevent hooks
 * (libxl_event.h) map libxl's fd and timeout registrations onto
 * qb_loop_poll_* and qb_loop_timer_*, so no thread polls for libxl.
 *
 * libxl may register one fd more than once (each registration with its own
 * event bits); libqb takes an fd once, so registrations of one fd share one
 * poll entry watching the union of their events, and an event is handed to
 * every registration it concerns. */
#ifndef HAGENT_XEN_LOOP_H
#define HAGENT_XEN_LOOP_H

#include <qb/qbloop.h>

#include <libxl.h>

struct xen_loop;

/* The hooks for libxl_osevent_register_hooks(ctx, xen_loop_hooks(), xl).
 * They must outlast the ctx (a static table). */
const libxl_osevent_hooks *xen_loop_hooks(void);

/* A registry bound to loop; xen_loop_set_ctx once the ctx exists (the
 * hooks may be called before: libxl registers from within
 * libxl_osevent_register_hooks, events only come from the loop later). */
struct xen_loop *xen_loop_new(qb_loop_t *loop);
void xen_loop_set_ctx(struct xen_loop *xl, libxl_ctx *ctx);
/* After libxl_ctx_free: drops what libxl left registered. */
void xen_loop_free(struct xen_loop *xl);

/* For tests and status: fds and timeouts registered now. */
int xen_loop_n_fds(const struct xen_loop *xl);
int xen_loop_n_timeouts(const struct xen_loop *xl);

#endif

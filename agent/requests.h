/* Control requests: one table row per command (name, arity, handler). */
#ifndef HAGENT_REQUESTS_H
#define HAGENT_REQUESTS_H

#include "agent/hagentd.h"
#include "proto/hagent.pb-c.h"

struct conn;

void requests_dispatch(struct conn *c, const Hagent__Request *req);
void requests_fill_info(struct hagentd *d, struct guest *g, Hagent__GuestInfo *info);

/* Provided by control.c for the handlers. */
void control_respond(struct conn *c, Hagent__Response *resp);
void control_error(struct conn *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Answer once g's state is in mask (bits of enum gstate), or at timeout. */
void control_wait(struct conn *c, struct guest *g, unsigned mask, unsigned timeout_s);
void control_subscribe(struct conn *c);
void control_ok(struct conn *c);
/* Tie the request to a registry change (id != 0) or untie it (0). */
uint64_t control_pending(struct conn *c, uint64_t id);
/* Tie it to a new id, unique among this daemon's pending requests (a
 * registry change, a driver's answer); returns the id. */
uint64_t control_pending_new(struct conn *c);
struct conn *control_by_pending(struct hagentd *d, uint64_t id);
struct hagentd *control_daemon(struct conn *c);

/* Exit codes of hactl, shared with the daemon's answers. */
enum {
	RC_OK = 0,
	RC_ERROR = 1,       /* the request failed */
	RC_USAGE = 2,       /* malformed request */
	RC_TIMEOUT = 3,
	RC_NOT_FOUND = 4,   /* unknown guest */
	RC_EXISTS = 5,      /* duplicate name */
	RC_INVALID = 6,     /* bad guest file */
	RC_STORAGE = 7,     /* could not record durably (e.g. full disk) */
};

#endif

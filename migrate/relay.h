/* The TLS relay: in tls mode, QEMU sends (or receives) its migration stream
 * in plaintext on one end of a socketpair, and hagent carries it through the
 * channel's GnuTLS session (migrate/channel.h) on the TCP connection to the
 * peer agent.  QEMU's own TLS is not involved.
 *
 * One relay is a thread pumping both directions at once:
 *  - plain -> net: QEMU's bytes, sent as TLS records.  When QEMU closes its
 *    end (EOF), everything it wrote is sent, then close_notify, then a TCP
 *    FIN: the peer knows the stream ended there and was not cut.
 *  - net -> plain: the peer's records, written to QEMU.  At the peer's
 *    close_notify QEMU sees EOF after the last byte.  A connection that ends
 *    without close_notify (a cut, a crashed peer), garbage, or any other
 *    error ends the relay with an error, and QEMU sees EOF as well: a
 *    truncated stream is never reported as complete.
 * The thread ends when both directions have ended, or at the first error.
 * It never touches the loop; it signals an eventfd the loop watches, and the
 * loop side joins it and reports. */
#ifndef HAGENT_MIGRATE_RELAY_H
#define HAGENT_MIGRATE_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <qb/qbloop.h>

#include "migrate/channel.h"

struct relay;

/* Both directions ended (err NULL), or the relay failed (err says how; the
 * first error wins).  to_net: QEMU's bytes sent to the peer; from_net: the
 * peer's bytes written to QEMU.  The relay is freed before the call: do not
 * call relay_stop on it, from done or later. */
typedef void (*relay_done_fn)(void *arg, uint64_t to_net, uint64_t from_net, const char *err);

/* Start relaying between a new socketpair and the session tls on net_fd (as
 * the channel handed them over; blocking or not).  *plain_fd: QEMU's end
 * (blocking, CLOEXEC), the caller's; it keeps no copy once QEMU has it, since
 * the relay sees QEMU's EOF only when every copy is closed.  On success the
 * relay owns net_fd and tls; on failure (NULL, err) the caller still does.
 * done is called exactly once, from the loop, never from inside
 * relay_start; label names the relay in log lines. */
struct relay *relay_start(qb_loop_t *loop, int net_fd, struct mchan_tls *tls, const char *label,
			  int *plain_fd, relay_done_fn done, void *arg, char *err, size_t errlen);

/* Stop at once: the thread is woken and joined, both sockets closed, the
 * session freed without close_notify (the peer sees a cut, not an end).
 * done is not called.  Only before done: done is the relay's end. */
void relay_stop(struct relay *r);

#endif

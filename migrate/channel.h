/* The migration channel: one TCP connection from the source agent to the
 * destination agent's migration_address:migration_port, authenticated with
 * the cluster key (authkey), over which the guest's memory then goes.
 *
 * tls mode: a GnuTLS PSK handshake (the key derived from authkey), then the
 * source's MigHello and the destination's MigReply as FRAME_MIGRATE frames
 * inside TLS.  The session stays up and is handed to the caller with the
 * socket: QEMU's plaintext stream is relayed through it (migrate/relay.h).
 * plaintext mode: the destination sends a MigReply with a random nonce, the
 * source answers with a MigHello carrying an HMAC (SHA-256, the cluster key)
 * over the nonce and the hello's fields, the destination replies; the bare
 * socket is then QEMU's.
 * Either way, a peer without the key, with a wrong key or speaking garbage is
 * refused with a log line, and neither side ever reads past the last frame of
 * the exchange: what follows on the socket is QEMU's stream, or the session's
 * next records, untouched.
 *
 * Everything runs in hagentd's qb_loop, non-blocking, with a deadline. */
#ifndef HAGENT_MIGRATE_CHANNEL_H
#define HAGENT_MIGRATE_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <gnutls/gnutls.h>
#include <qb/qbloop.h>

#define MCHAN_VERSION 1
#define MCHAN_KEY_MAX 64

enum mchan_mode { MCHAN_TLS = 0, MCHAN_PLAIN };

struct mchan_key {
	unsigned char key[MCHAN_KEY_MAX];
	size_t len;
};

struct mchan_hello {
	char job[64];
	char guest[64];
	uint64_t gen;
	char src[64];
	char dst[64];
};

/* Read the cluster key from path (any content of 16 bytes or more; the key is
 * its SHA-256).  -1 and a one-line reason in err (missing, unreadable, too
 * short, readable by group or others). */
int mchan_key_load(const char *path, struct mchan_key *key, char *err, size_t errlen);

/* tls mode: the session established on a handed-over socket, with what it
 * needs to stay valid (credentials), owned by whoever received it.  Its
 * transport is that socket (plain recv/send on the fd, MSG_NOSIGNAL; the
 * session's pointer is unused): it works in blocking mode, as handed over,
 * or non-blocking, and another owner may install its own transport
 * functions.  Nothing unread of the exchange is left in it. */
struct mchan_tls;
gnutls_session_t mchan_tls_session(const struct mchan_tls *t);
/* gnutls_deinit without sending anything (no close_notify), frees the
 * credentials; does not close the socket.  NULL is fine. */
void mchan_tls_free(struct mchan_tls *t);

/* --- source side ---------------------------------------------------------- */
struct mchan_client;
/* fd >= 0: the destination accepted; the caller owns fd (blocking mode,
 * nothing unread in it that belongs to the exchange) and tls (tls mode: the
 * live session on fd; NULL in plaintext mode).  fd < 0: tls is NULL, err
 * says why (refused: its reason; timeout; connection refused; bad key ...). */
typedef void (*mchan_client_done_fn)(void *arg, int fd, struct mchan_tls *tls, const char *err);
/* Start connecting; NULL (and err) when it cannot even start.  done is called
 * exactly once, from the loop, never from inside mchan_connect. */
struct mchan_client *mchan_connect(qb_loop_t *loop, enum mchan_mode mode,
				   const struct mchan_key *key, const char *addr, uint16_t port,
				   const struct mchan_hello *hello, unsigned timeout_ms,
				   mchan_client_done_fn done, void *arg, char *err, size_t errlen);
/* Give up: closes everything, done is not called. */
void mchan_client_cancel(struct mchan_client *c);

/* --- destination side ---------------------------------------------------- */
struct mchan_server;
/* Decide on an authenticated hello: 0 accepts, -1 refuses with a reason
 * (sent to the source and logged). */
typedef int (*mchan_verify_fn)(void *arg, const struct mchan_hello *h, char *why, size_t len);
/* An accepted connection: the callee owns fd (blocking mode) and tls (tls
 * mode: the live session on fd, which may outlive the server; NULL in
 * plaintext mode). */
typedef void (*mchan_accept_fn)(void *arg, const struct mchan_hello *h, int fd,
				struct mchan_tls *tls);
struct mchan_server *mchan_listen(qb_loop_t *loop, enum mchan_mode mode,
				  const struct mchan_key *key, const char *addr, uint16_t port,
				  unsigned handshake_timeout_ms, mchan_verify_fn verify,
				  mchan_accept_fn accept, void *arg, char *err, size_t errlen);
void mchan_server_close(struct mchan_server *s);

#endif

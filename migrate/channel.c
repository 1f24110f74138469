/* The migration channel (see channel.h): a short authenticated exchange on a
 * fresh TCP connection, after which the socket is handed over: bare (to QEMU)
 * in plaintext mode, with its live TLS session (to the relay) in tls mode.
 *
 * Both ends are explicit state machines driven by the qb_loop: every step
 * either finishes (the next state runs at once), would block (we wait for
 * the poll events it asked for) or fails.  One deadline timer per connection
 * bounds the whole exchange.
 *
 * The one rule everything here bends to: never consume a byte beyond the
 * last frame of the exchange, since what follows belongs to QEMU (plaintext)
 * or to whoever takes over the session (tls).  Plaintext frames are read as
 * a 5-byte header and then exactly the length it announces.  GnuTLS reads a
 * TLS record the same way (its 5-byte header, then exactly the record), so a
 * frame inside TLS is just as exact; session tickets are off, so no record
 * follows the handshake unasked. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <qb/qblist.h>

#include "lib/log.h"
#include "migrate/channel.h"
#include "proto/frame.h"
#include "proto/hagent.pb-c.h"

#define MCHAN_FRAME_LIMIT 4096u /* type + payload; a hello is a few hundred bytes */
#define MCHAN_NONCE_LEN 32
#define MCHAN_MAC_LEN 32        /* HMAC-SHA256 */
#define MCHAN_KEY_MIN 16        /* bytes of key file */
#define MCHAN_PSK_USER "hagent"
/* TLS 1.3 (1.2 tolerated) with a pre-shared key only: ECDHE-PSK first for
 * forward secrecy, plain PSK as the peer's fallback.  No certificate key
 * exchange: there are no certificates.
 * The ciphers are ordered for the relay's bulk data: AES-128-GCM first.  A
 * TLS 1.3 external PSK binds the suite's hash to its own (SHA-256 here), so
 * NORMAL's order (AES-256-GCM, a SHA-384 suite, then ChaCha20) picks
 * ChaCha20-Poly1305, which GnuTLS runs at about 0.5 GB/s on this machine's
 * CPUs, against 4.7 GB/s for AES-128-GCM (AES-NI). */
#define MCHAN_PRIORITY                                                                  \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-PSK:+PSK:-CIPHER-ALL:" \
	"+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305"
#define MCHAN_DEFAULT_TIMEOUT_MS 10000u
#define MCHAN_CONNS_MAX 64      /* handshakes in progress on one server */
#define MCHAN_ACCEPT_BURST 16   /* accepts per wake-up, so a flood cannot hog the loop */
#define MCHAN_WHY 256

/* ---- the cluster key ------------------------------------------------------- */

int mchan_key_load(const char *path, struct mchan_key *key, char *err, size_t errlen)
{
	unsigned char buf[4096];
	gnutls_hash_hd_t h = NULL;
	struct stat st;
	size_t total = 0;
	int fd, rc = -1;

	memset(key, 0, sizeof(*key));
	/* O_NONBLOCK: opening a FIFO must not hang; fstat refuses it below */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
		snprintf(err, errlen,
			 "%s has mode %04o: the cluster key must not be readable or writable by "
			 "group or others (chmod 600)", path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
		snprintf(err, errlen, "cannot hash %s: SHA-256 unavailable", path);
		h = NULL;
		goto out;
	}
	/* streamed: any size of key file works, the key is its SHA-256 */
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		gnutls_hash(h, buf, (size_t)n);
		total += (size_t)n;
	}
	if (total < MCHAN_KEY_MIN) {
		snprintf(err, errlen, "%s is too short (%zu bytes, at least %d)", path, total,
			 MCHAN_KEY_MIN);
		goto out;
	}
	gnutls_hash_deinit(h, key->key);
	h = NULL;
	key->len = 32;
	rc = 0;
out:
	if (h)
		gnutls_hash_deinit(h, NULL);
	gnutls_memset(buf, 0, sizeof(buf));
	close(fd);
	return rc;
}

/* ---- one connection's transport: raw socket, or TLS on it ------------------- */

/* A TLS session and everything it needs to stay valid once the channel is
 * gone: its PSK credentials, one set per connection (GnuTLS does not count
 * references to credentials, and a server may be closed while sessions it
 * accepted live on).  The priority cache needs no owner here: sessions hold
 * a reference to theirs (GnuTLS >= 3.7 counts them). */
struct mchan_tls {
	gnutls_session_t session;
	gnutls_psk_client_credentials_t ccred; /* source side */
	gnutls_psk_server_credentials_t scred; /* destination side */
};

void mchan_tls_free(struct mchan_tls *t)
{
	if (!t)
		return;
	if (t->session)
		gnutls_deinit(t->session); /* sends nothing */
	if (t->ccred)
		gnutls_psk_free_client_credentials(t->ccred);
	if (t->scred)
		gnutls_psk_free_server_credentials(t->scred);
	free(t);
}

gnutls_session_t mchan_tls_session(const struct mchan_tls *t)
{
	return t->session;
}

struct link {
	int fd;
	struct mchan_tls *tls; /* NULL: plaintext, or TLS not started yet */
	int events;            /* what the last blocked operation waits for */
	/* the frame being read: header, then exactly its length */
	uint8_t in[FRAME_HDR + MCHAN_FRAME_LIMIT];
	size_t in_len;
	/* the frame being sent (frame_encode's buffer) */
	uint8_t *out;
	size_t out_len, out_off;
	char peer[INET6_ADDRSTRLEN + 10]; /* "1.2.3.4:5678", "[::1]:5678" */
};

/* GnuTLS's default transport may switch the socket to kernel TLS when the
 * system configuration asks for it (ktls = true), which we do not control.
 * Our own push/pull functions rule that out (GnuTLS only enables kTLS on its
 * own system_read), and send with MSG_NOSIGNAL.  The transport pointer is the
 * fd (gnutls_transport_set_int).  They are plain recv/send: they work on the
 * handed-over session whether its owner keeps the fd non-blocking or makes
 * it blocking. */
static ssize_t tls_pull(gnutls_transport_ptr_t p, void *buf, size_t n)
{
	return recv((int)(intptr_t)p, buf, n, 0);
}

static ssize_t tls_push(gnutls_transport_ptr_t p, const void *buf, size_t n)
{
	return send((int)(intptr_t)p, buf, n, MSG_NOSIGNAL);
}

/* Required with a custom pull function.  GnuTLS only calls it when a
 * timeout is set: never during our handshake (its timeout is off, our own
 * deadline applies), so the loop never waits in here.  Honoured as asked for
 * an owner that sets a record timeout on a blocking session. */
static int tls_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
	struct pollfd pfd = { .fd = (int)(intptr_t)p, .events = POLLIN };

	return poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

static int tls_events(const struct link *l)
{
	return gnutls_record_get_direction(l->tls->session) ? POLLOUT : POLLIN;
}

/* The PSK lookup of the destination side. */
static int psk_server_key(gnutls_session_t session, const char *user, gnutls_datum_t *key);

/* A session on l->fd, with its own credentials: the client's hold key, the
 * server's (key NULL) look it up through ptr (psk_server_key). */
static int link_tls_start(struct link *l, unsigned side, gnutls_priority_t prio,
			  const struct mchan_key *key, void *ptr, char *why, size_t len)
{
	struct mchan_tls *t = calloc(1, sizeof(*t));
	int rc;

	if (!t) {
		snprintf(why, len, "TLS: out of memory");
		return -1;
	}
	if (side == GNUTLS_CLIENT) {
		gnutls_datum_t k = { .data = (unsigned char *)key->key,
				     .size = (unsigned)key->len };

		if ((rc = gnutls_psk_allocate_client_credentials(&t->ccred)) < 0) {
			t->ccred = NULL;
			goto fail;
		}
		rc = gnutls_psk_set_client_credentials(t->ccred, MCHAN_PSK_USER, &k,
						       GNUTLS_PSK_KEY_RAW);
	} else {
		if ((rc = gnutls_psk_allocate_server_credentials(&t->scred)) < 0) {
			t->scred = NULL;
			goto fail;
		}
		gnutls_psk_set_server_credentials_function(t->scred, psk_server_key);
	}
	if (rc < 0)
		goto fail;
	/* no tickets: nothing but our own records follows the handshake */
	rc = gnutls_init(&t->session,
			 side | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS);
	if (rc < 0) {
		t->session = NULL;
		goto fail;
	}
	if ((rc = gnutls_priority_set(t->session, prio)) < 0 ||
	    (rc = gnutls_credentials_set(t->session, GNUTLS_CRD_PSK,
					 side == GNUTLS_CLIENT ? (void *)t->ccred
							       : (void *)t->scred)) < 0)
		goto fail;
	gnutls_session_set_ptr(t->session, ptr);
	gnutls_transport_set_int(t->session, l->fd);
	gnutls_transport_set_pull_function(t->session, tls_pull);
	gnutls_transport_set_push_function(t->session, tls_push);
	gnutls_transport_set_pull_timeout_function(t->session, tls_pull_timeout);
	gnutls_handshake_set_timeout(t->session, GNUTLS_INDEFINITE_TIMEOUT);
	l->tls = t;
	return 0;
fail:
	snprintf(why, len, "TLS: %s", gnutls_strerror(rc));
	mchan_tls_free(t);
	return -1;
}

/* What a failed handshake most likely means, for the operator.  A PSK
 * mismatch shows as a bad binder or Finished (illegal parameter, decrypt
 * error) on the side that detects it, and as that alert on the other. */
static const char *tls_hint(int rc, gnutls_alert_description_t alert)
{
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED)
		return alert == GNUTLS_A_ILLEGAL_PARAMETER || alert == GNUTLS_A_DECRYPT_ERROR ||
		       alert == GNUTLS_A_BAD_RECORD_MAC || alert == GNUTLS_A_UNKNOWN_PSK_IDENTITY
			       ? " (wrong cluster key?)" : "";
	switch (rc) {
	case GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER:
	case GNUTLS_E_DECRYPTION_FAILED:
	case GNUTLS_E_ERROR_IN_FINISHED_PACKET:
		return " (wrong cluster key?)";
	case GNUTLS_E_UNEXPECTED_PACKET:
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
	case GNUTLS_E_UNEXPECTED_HANDSHAKE_PACKET:
		return " (the peer does not speak TLS: same migration_transport on both hosts?)";
	default:
		return "";
	}
}

/* 1 done, 0 would block (l->events set), -1 failed (why). */
static int link_handshake(struct link *l, char *why, size_t len)
{
	gnutls_session_t s = l->tls->session;
	int rc = gnutls_handshake(s);
	gnutls_alert_description_t alert = 0;

	if (rc == GNUTLS_E_SUCCESS) {
		log_debug("migration channel: %s: %s, %s, %s", l->peer,
			  gnutls_protocol_get_name(gnutls_protocol_get_version(s)),
			  gnutls_kx_get_name(gnutls_kx_get(s)),
			  gnutls_cipher_get_name(gnutls_cipher_get(s)));
		return 1;
	}
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
		l->events = tls_events(l);
		return 0;
	}
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		alert = gnutls_alert_get(s);
		snprintf(why, len, "TLS handshake failed: the peer sent alert '%s'%s",
			 gnutls_alert_get_name(alert), tls_hint(rc, alert));
	} else if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PULL_ERROR) {
		snprintf(why, len, "TLS handshake failed: connection closed by the peer");
	} else {
		snprintf(why, len, "TLS handshake failed: %s%s", gnutls_strerror(rc),
			 tls_hint(rc, alert));
	}
	/* tell the peer why, best effort: one small non-blocking record */
	gnutls_alert_send_appropriate(s, rc);
	return -1;
}

/* Some bytes into buf: > 0 read, 0 would block (l->events set), -1 failed. */
static ssize_t link_recv(struct link *l, void *buf, size_t n, char *why, size_t len)
{
	ssize_t r;

	if (l->tls) {
		r = gnutls_record_recv(l->tls->session, buf, n);
		if (r > 0)
			return r;
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			l->events = tls_events(l);
			return 0;
		}
		if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION)
			snprintf(why, len, "connection closed by the peer");
		else
			snprintf(why, len, "TLS: %s", gnutls_strerror((int)r));
		return -1;
	}
	for (;;) {
		r = recv(l->fd, buf, n, 0);
		if (r > 0)
			return r;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			l->events = POLLIN;
			return 0;
		}
		if (r == 0)
			snprintf(why, len, "connection closed by the peer");
		else
			snprintf(why, len, "receive: %s", strerror(errno));
		return -1;
	}
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One FRAME_MIGRATE frame, read exactly: the header, which is checked before
 * anything else is read (a garbage or oversized length is refused at once),
 * then the length it announces and not a byte more.  1 with the payload
 * (valid until the next frame), 0 would block, -1 failed. */
static int link_read_frame(struct link *l, const uint8_t **payload, size_t *plen, char *why,
			   size_t len)
{
	for (;;) {
		size_t want = FRAME_HDR;
		ssize_t r;

		if (l->in_len >= FRAME_HDR) {
			uint32_t flen = get_be32(l->in);

			if (flen < 1 || flen > MCHAN_FRAME_LIMIT) {
				snprintf(why, len, "bad frame: length %u (limit %u)", flen,
					 MCHAN_FRAME_LIMIT);
				return -1;
			}
			if (l->in[4] != FRAME_MIGRATE) {
				snprintf(why, len, "bad frame: type %u, not a migration frame",
					 l->in[4]);
				return -1;
			}
			want = 4 + (size_t)flen;
			if (l->in_len == want) {
				*payload = l->in + FRAME_HDR;
				*plen = want - FRAME_HDR;
				l->in_len = 0; /* the next frame starts afresh */
				return 1;
			}
		}
		r = link_recv(l, l->in + l->in_len, want - l->in_len, why, len);
		if (r <= 0)
			return (int)r;
		l->in_len += (size_t)r;
	}
}

/* Queue one frame for link_flush. */
static int link_queue(struct link *l, const ProtobufCMessage *msg, char *why, size_t len)
{
	uint8_t *buf;
	ssize_t n = frame_encode(FRAME_MIGRATE, msg, &buf);

	if (n < 0) {
		snprintf(why, len, "cannot encode a frame: %s", strerror(errno));
		return -1;
	}
	free(l->out);
	l->out = buf;
	l->out_len = (size_t)n;
	l->out_off = 0;
	return 0;
}

/* Send the queued frame: 1 all sent, 0 would block, -1 failed. */
static int link_flush(struct link *l, char *why, size_t len)
{
	while (l->out_off < l->out_len) {
		const uint8_t *p = l->out + l->out_off;
		size_t n = l->out_len - l->out_off;
		ssize_t w;

		if (l->tls) {
			/* after GNUTLS_E_AGAIN GnuTLS wants the very same call again,
			 * which this is: out_off has not moved */
			w = gnutls_record_send(l->tls->session, p, n);
			if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) {
				l->events = tls_events(l);
				return 0;
			}
			if (w < 0) {
				snprintf(why, len, "TLS: %s", gnutls_strerror((int)w));
				return -1;
			}
		} else {
			w = send(l->fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				l->events = POLLOUT;
				return 0;
			}
			if (w < 0) {
				snprintf(why, len, "send: %s", strerror(errno));
				return -1;
			}
		}
		l->out_off += (size_t)w;
	}
	free(l->out);
	l->out = NULL;
	l->out_len = l->out_off = 0;
	return 1;
}

/* Data GnuTLS already holds past our last frame: the peer broke the
 * protocol (nothing may follow a frame in its record, and the next owner of
 * the session must find it as the exchange left it). */
static int link_check_drained(struct link *l, char *why, size_t len)
{
	if (l->tls && gnutls_record_check_pending(l->tls->session) > 0) {
		snprintf(why, len, "protocol error: data after the last frame");
		return -1;
	}
	return 0;
}

/* Hand back the socket in blocking mode and, in tls mode, the live session
 * on it (*tls; NULL in plaintext mode).  Nothing is sent: the next bytes on
 * the socket are QEMU's, or the session's next records.  The session's
 * pointer went to the connection's state, about to be freed: cleared (the
 * PSK lookup then refuses, though nothing asks after the handshake).  -1
 * with the link closed on failure. */
static int link_release(struct link *l, struct mchan_tls **tls)
{
	int fd = l->fd, fl;

	*tls = l->tls;
	l->tls = NULL;
	if (*tls)
		gnutls_session_set_ptr((*tls)->session, NULL);
	free(l->out);
	l->out = NULL;
	l->fd = -1;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		close(fd);
		mchan_tls_free(*tls);
		*tls = NULL;
		return -1;
	}
	return fd;
}

static void link_close(struct link *l)
{
	mchan_tls_free(l->tls);
	l->tls = NULL;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	free(l->out);
	l->out = NULL;
	gnutls_memset(l->in, 0, sizeof(l->in));
}

/* ---- the hello -------------------------------------------------------------- */

/* A name field: present, fits the struct with its NUL, printable (it ends up
 * in log lines and error messages). */
static int copy_field(char *dst, size_t cap, const char *src, const char *what, char *why,
		      size_t len)
{
	size_t n = src ? strnlen(src, cap) : 0, i;

	if (n == 0 || n >= cap) {
		snprintf(why, len, "bad hello: %s %s", what, n ? "too long" : "missing");
		return -1;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) {
			snprintf(why, len, "bad hello: control character in %s", what);
			return -1;
		}
	memcpy(dst, src, n + 1);
	return 0;
}

static int hello_check(const struct mchan_hello *h, char *why, size_t len)
{
	struct mchan_hello tmp;

	return copy_field(tmp.job, sizeof(tmp.job), h->job, "job", why, len) < 0 ||
	       copy_field(tmp.guest, sizeof(tmp.guest), h->guest, "guest", why, len) < 0 ||
	       copy_field(tmp.src, sizeof(tmp.src), h->src, "source", why, len) < 0 ||
	       copy_field(tmp.dst, sizeof(tmp.dst), h->dst, "destination", why, len) < 0
		       ? -1 : 0;
}

static int hello_from_msg(struct mchan_hello *h, const Hagent__MigHello *m, char *why, size_t len)
{
	if (m->version != MCHAN_VERSION) {
		snprintf(why, len, "protocol version %u, this host speaks %d", m->version,
			 MCHAN_VERSION);
		return -1;
	}
	memset(h, 0, sizeof(*h));
	h->gen = m->gen;
	return copy_field(h->job, sizeof(h->job), m->job, "job", why, len) < 0 ||
	       copy_field(h->guest, sizeof(h->guest), m->guest, "guest", why, len) < 0 ||
	       copy_field(h->src, sizeof(h->src), m->src, "source", why, len) < 0 ||
	       copy_field(h->dst, sizeof(h->dst), m->dst, "destination", why, len) < 0
		       ? -1 : 0;
}

static size_t put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s) + 1;

	memcpy(p, s, n);
	return n;
}

/* Plaintext mode's proof of the key: HMAC-SHA256 over the server's nonce,
 * the client's nonce, job, guest, gen (8 bytes big-endian), src and dst.
 * Each string goes in with its terminating NUL (none holds a NUL or is
 * empty), so no two different hellos share an input. */
/* HMAC-SHA256 with the cluster key over [label] snonce cnonce and the
 * hello's fields: the source's proof (no label) and, over the same
 * material, the destination's (REPLY_LABEL), so a destination without the
 * key cannot pass for one. */
#define REPLY_LABEL "hagent migration reply"
static int hello_mac(const struct mchan_key *key, const char *label, const uint8_t *snonce,
		     const uint8_t *cnonce, const struct mchan_hello *h, uint8_t *mac)
{
	uint8_t buf[sizeof(REPLY_LABEL) + 2 * MCHAN_NONCE_LEN + sizeof(h->job) + sizeof(h->guest) +
		    8 + sizeof(h->src) + sizeof(h->dst)];
	size_t n = 0;
	int i, rc;

	if (label)
		n += put_str(buf, label);
	memcpy(buf + n, snonce, MCHAN_NONCE_LEN);
	n += MCHAN_NONCE_LEN;
	memcpy(buf + n, cnonce, MCHAN_NONCE_LEN);
	n += MCHAN_NONCE_LEN;
	n += put_str(buf + n, h->job);
	n += put_str(buf + n, h->guest);
	for (i = 7; i >= 0; i--)
		buf[n++] = (uint8_t)(h->gen >> (8 * i));
	n += put_str(buf + n, h->src);
	n += put_str(buf + n, h->dst);
	rc = gnutls_hmac_fast(GNUTLS_MAC_SHA256, key->key, key->len, buf, n, mac);
	return rc < 0 ? -1 : 0;
}

/* Constant time, so the comparison does not tell how much of a forged MAC
 * was right. */
static bool mac_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

/* Text from the peer goes into our messages and logs: no control bytes. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void peer_name(const struct sockaddr *sa, socklen_t salen, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN], serv[8];

	if (getnameinfo(sa, salen, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, len, "?");
		return;
	}
	snprintf(out, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* Numeric addresses only: a name lookup would block the loop.  "[v6]" is
 * accepted too.  NULL or "" (server) is any address. */
static int resolve(const char *addr, uint16_t port, bool passive, struct addrinfo **res,
		   char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	char host[INET6_ADDRSTRLEN + 2], serv[8];
	size_t n = addr ? strlen(addr) : 0;
	int rc;

	if (passive)
		hints.ai_flags |= AI_PASSIVE;
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	if (n >= sizeof(host)) {
		snprintf(err, errlen, "bad address '%s': not a numeric IP address", addr);
		return -1;
	}
	memcpy(host, addr ? addr : "", n);
	host[n] = '\0';
	snprintf(serv, sizeof(serv), "%u", port);
	rc = getaddrinfo(n ? host : NULL, serv, &hints, res);
	if (rc != 0) {
		snprintf(err, errlen, "bad address '%s': %s", host,
			 rc == EAI_NONAME ? "not a numeric IP address" : gai_strerror(rc));
		return -1;
	}
	return 0;
}

static int set_timer(qb_loop_t *loop, unsigned ms, void *arg, qb_loop_timer_dispatch_fn fn,
		     qb_loop_timer_handle *h)
{
	return qb_loop_timer_add(loop, QB_LOOP_MED, (uint64_t)ms * 1000000ULL, arg, fn, h);
}

enum step {
	STEP_NEXT,  /* done; the new state runs at once */
	STEP_WAIT,  /* would block; wait for l->events */
	STEP_END,   /* the exchange is over */
	STEP_FAIL,  /* why says it */
};

/* ---- destination side -------------------------------------------------------- */

enum sc_state { SC_HANDSHAKE, SC_CHALLENGE, SC_HELLO, SC_REPLY };
static const char *const sc_step_name[] = {
	[SC_HANDSHAKE] = "TLS handshake",
	[SC_CHALLENGE] = "challenge",
	[SC_HELLO] = "hello",
	[SC_REPLY] = "reply",
};

struct mchan_server {
	qb_loop_t *loop;
	enum mchan_mode mode;
	struct mchan_key key;
	int fd;
	unsigned timeout_ms;
	mchan_verify_fn verify;
	mchan_accept_fn accept;
	void *arg;
	gnutls_priority_t prio;
	struct qb_list_head conns;
	unsigned n_conns;
};

struct sconn {
	struct qb_list_head list;
	struct mchan_server *s;
	struct link l;
	enum sc_state state;
	int polled;                /* events registered with the loop */
	qb_loop_timer_handle timer;
	bool timer_on;
	uint8_t nonce[MCHAN_NONCE_LEN]; /* plaintext: our challenge */
	struct mchan_hello hello;
	bool hello_ok;             /* hello holds a well-formed hello */
	bool refused;              /* the reply says no: close once it is sent */
	char why[MCHAN_WHY];
};

static int sconn_io(int fd, int revents, void *arg);

static void sconn_free(struct sconn *c)
{
	struct mchan_server *s = c->s;

	if (c->timer_on)
		qb_loop_timer_del(s->loop, c->timer);
	if (c->l.fd >= 0)
		qb_loop_poll_del(s->loop, c->l.fd);
	link_close(&c->l);
	qb_list_del(&c->list);
	s->n_conns--;
	gnutls_memset(c, 0, sizeof(*c));
	free(c);
}

/* Every way a peer can fail ends here: one log line, the connection gone,
 * nothing else touched. */
static void sconn_drop(struct sconn *c, const char *why)
{
	log_warn("migration channel: peer %s: %s", c->l.peer, why);
	sconn_free(c);
}

static void sconn_timeout(void *arg)
{
	struct sconn *c = arg;
	char why[MCHAN_WHY];

	c->timer_on = false; /* fired: not to be deleted */
	snprintf(why, sizeof(why), "timed out after %u ms during the %s", c->s->timeout_ms,
		 sc_step_name[c->state]);
	sconn_drop(c, why);
}

/* The PSK lookup: one user, one key (the server's, via the session's
 * connection; none once the session was handed over). */
static int psk_server_key(gnutls_session_t session, const char *user, gnutls_datum_t *key)
{
	struct sconn *c = gnutls_session_get_ptr(session);

	if (!c || strcmp(user, MCHAN_PSK_USER) != 0)
		return -1;
	key->data = gnutls_malloc(c->s->key.len);
	if (!key->data)
		return -1;
	memcpy(key->data, c->s->key.key, c->s->key.len);
	key->size = (unsigned)c->s->key.len;
	return 0;
}

static enum step sc_handshake(struct sconn *c)
{
	int rc = link_handshake(&c->l, c->why, sizeof(c->why));

	if (rc < 0)
		return STEP_FAIL;
	if (rc == 0)
		return STEP_WAIT;
	c->state = SC_HELLO;
	return STEP_NEXT;
}

/* Plaintext: a fresh random challenge the hello's MAC must cover. */
static enum step sc_challenge(struct sconn *c)
{
	int rc;

	if (!c->l.out) {
		Hagent__MigReply r = HAGENT__MIG_REPLY__INIT;

		if (gnutls_rnd(GNUTLS_RND_RANDOM, c->nonce, sizeof(c->nonce)) < 0) {
			snprintf(c->why, sizeof(c->why), "no random numbers");
			return STEP_FAIL;
		}
		r.nonce.data = c->nonce;
		r.nonce.len = sizeof(c->nonce);
		if (link_queue(&c->l, &r.base, c->why, sizeof(c->why)) < 0)
			return STEP_FAIL;
	}
	rc = link_flush(&c->l, c->why, sizeof(c->why));
	if (rc <= 0)
		return rc < 0 ? STEP_FAIL : STEP_WAIT;
	c->state = SC_HELLO;
	return STEP_NEXT;
}

/* Authenticate and judge the hello; the outcome is queued as the reply.
 * A hello we cannot take (another protocol version, bad fields, a wrong
 * MAC) is refused with its reason rather than just dropped: the source's
 * operator gets to read why. */
static int sc_judge(struct sconn *c, const Hagent__MigHello *m)
{
	struct mchan_server *s = c->s;
	Hagent__MigReply r = HAGENT__MIG_REPLY__INIT;
	uint8_t mac[MCHAN_MAC_LEN];

	if (hello_from_msg(&c->hello, m, c->why, sizeof(c->why)) < 0)
		c->refused = true;
	else
		c->hello_ok = true;
	if (!c->refused && s->mode == MCHAN_PLAIN) {
		if (m->nonce.len != MCHAN_NONCE_LEN || m->mac.len != MCHAN_MAC_LEN) {
			snprintf(c->why, sizeof(c->why), "bad hello: nonce or MAC missing");
			c->refused = true;
		} else if (hello_mac(&s->key, NULL, c->nonce, m->nonce.data, &c->hello, mac) < 0) {
			snprintf(c->why, sizeof(c->why), "cannot compute HMAC-SHA256");
			return -1;
		} else if (!mac_equal(mac, m->mac.data, MCHAN_MAC_LEN)) {
			snprintf(c->why, sizeof(c->why), "authentication failed (wrong cluster key?)");
			c->refused = true;
		}
	}
	if (!c->refused) {
		c->why[0] = '\0';
		/* (verify must not close the server: this connection is still
		 * in use; the accept callback may) */
		if (s->verify(s->arg, &c->hello, c->why, sizeof(c->why)) < 0) {
			c->refused = true;
			if (!c->why[0])
				snprintf(c->why, sizeof(c->why), "refused");
			sanitize(c->why);
		}
	}
	r.ok = !c->refused;
	r.error = c->refused ? c->why : (char *)"";
	if (r.ok && s->mode == MCHAN_PLAIN) {
		/* our own proof, over the source's nonce too: no replay */
		if (hello_mac(&s->key, REPLY_LABEL, c->nonce, m->nonce.data, &c->hello, mac) < 0) {
			snprintf(c->why, sizeof(c->why), "cannot compute HMAC-SHA256");
			return -1;
		}
		r.mac.data = mac;
		r.mac.len = MCHAN_MAC_LEN;
	}
	return link_queue(&c->l, &r.base, c->why, sizeof(c->why));
}

static enum step sc_hello(struct sconn *c)
{
	const uint8_t *p;
	size_t n;
	Hagent__MigHello *m;
	int rc = link_read_frame(&c->l, &p, &n, c->why, sizeof(c->why));

	if (rc <= 0)
		return rc < 0 ? STEP_FAIL : STEP_WAIT;
	if (link_check_drained(&c->l, c->why, sizeof(c->why)) < 0)
		return STEP_FAIL;
	m = hagent__mig_hello__unpack(NULL, n, p);
	if (!m) {
		snprintf(c->why, sizeof(c->why), "malformed hello");
		return STEP_FAIL;
	}
	rc = sc_judge(c, m);
	hagent__mig_hello__free_unpacked(m, NULL);
	if (rc < 0)
		return STEP_FAIL;
	c->state = SC_REPLY;
	return STEP_NEXT;
}

static enum step sc_reply(struct sconn *c)
{
	int rc = link_flush(&c->l, c->why, sizeof(c->why));

	if (rc <= 0)
		return rc < 0 ? STEP_FAIL : STEP_WAIT;
	return STEP_END;
}

/* The exchange is over: hand the socket over, or close it after a refusal.
 * The connection is freed before the callback, which may do anything with
 * the server (even close it). */
static void sconn_finish(struct sconn *c)
{
	struct mchan_server *s = c->s;
	struct mchan_hello h = c->hello;
	mchan_accept_fn accept_fn = s->accept;
	void *arg = s->arg;
	char peer[sizeof(c->l.peer)];
	struct mchan_tls *tls;
	int fd;

	if (c->refused) {
		char why[MCHAN_WHY + 160];

		if (c->hello_ok)
			snprintf(why, sizeof(why), "refused migration %s of %s from %s: %.150s",
				 h.job, h.guest, h.src, c->why);
		else
			snprintf(why, sizeof(why), "refused: %.200s", c->why);
		sconn_drop(c, why);
		return;
	}
	memcpy(peer, c->l.peer, sizeof(peer));
	if (c->timer_on)
		qb_loop_timer_del(s->loop, c->timer);
	c->timer_on = false;
	qb_loop_poll_del(s->loop, c->l.fd);
	fd = link_release(&c->l, &tls);
	sconn_free(c);
	if (fd < 0) {
		log_warn("migration channel: peer %s: cannot make the socket blocking", peer);
		return;
	}
	log_info("migration channel: peer %s: accepted migration %s of %s (gen %llu) from %s",
		 peer, h.job, h.guest, (unsigned long long)h.gen, h.src);
	accept_fn(arg, &h, fd, tls);
}

static void sconn_run(struct sconn *c)
{
	for (;;) {
		enum step st;

		switch (c->state) {
		case SC_HANDSHAKE: st = sc_handshake(c); break;
		case SC_CHALLENGE: st = sc_challenge(c); break;
		case SC_HELLO: st = sc_hello(c); break;
		case SC_REPLY: st = sc_reply(c); break;
		default: st = STEP_FAIL; break;
		}
		switch (st) {
		case STEP_NEXT:
			continue;
		case STEP_WAIT:
			if (c->polled != c->l.events &&
			    qb_loop_poll_mod(c->s->loop, QB_LOOP_MED, c->l.fd, c->l.events, c,
					     sconn_io) == 0)
				c->polled = c->l.events;
			return;
		case STEP_END:
			sconn_finish(c);
			return;
		case STEP_FAIL:
			sconn_drop(c, c->why);
			return;
		}
	}
}

static int sconn_io(int fd, int revents, void *arg)
{
	(void)fd;
	(void)revents; /* each step tries its I/O and learns the truth from it */
	sconn_run(arg);
	return 0;
}

static void sconn_new(struct mchan_server *s, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct sconn *c;
	char peer[sizeof(c->l.peer)], why[MCHAN_WHY];

	peer_name(sa, salen, peer, sizeof(peer));
	if (s->n_conns >= MCHAN_CONNS_MAX) {
		log_warn("migration channel: peer %s: too many handshakes in progress (%d)", peer,
			 MCHAN_CONNS_MAX);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		log_warn("migration channel: peer %s: out of memory", peer);
		close(fd);
		return;
	}
	c->s = s;
	c->l.fd = fd;
	memcpy(c->l.peer, peer, sizeof(peer));
	qb_list_add_tail(&c->list, &s->conns);
	s->n_conns++;
	c->state = s->mode == MCHAN_TLS ? SC_HANDSHAKE : SC_CHALLENGE;
	if (s->mode == MCHAN_TLS &&
	    link_tls_start(&c->l, GNUTLS_SERVER, s->prio, NULL, c, why, sizeof(why)) < 0) {
		sconn_drop(c, why);
		return;
	}
	/* The first step runs from the loop, not from here: nothing the
	 * exchange calls back into can happen inside the accept loop.
	 * Plaintext speaks first (the challenge), TLS waits for a ClientHello. */
	c->polled = s->mode == MCHAN_TLS ? POLLIN : POLLOUT;
	if (qb_loop_poll_add(s->loop, QB_LOOP_MED, fd, c->polled, c, sconn_io) < 0) {
		c->l.fd = -1;
		close(fd);
		sconn_drop(c, "cannot watch the socket");
		return;
	}
	if (set_timer(s->loop, s->timeout_ms, c, sconn_timeout, &c->timer) < 0) {
		sconn_drop(c, "cannot arm the handshake timer");
		return;
	}
	c->timer_on = true;
}

static int server_accept_io(int fd, int revents, void *arg)
{
	struct mchan_server *s = arg;
	int i;

	(void)revents;
	for (i = 0; i < MCHAN_ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("migration channel: accept: %s", strerror(errno));
			return 0;
		}
		sconn_new(s, cfd, (struct sockaddr *)&ss, sl);
	}
	return 0;
}

static int server_socket(const struct addrinfo *ai, char *err, size_t errlen)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	int one = 1;

	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct mchan_server *mchan_listen(qb_loop_t *loop, enum mchan_mode mode,
				  const struct mchan_key *key, const char *addr, uint16_t port,
				  unsigned handshake_timeout_ms, mchan_verify_fn verify,
				  mchan_accept_fn accept, void *arg, char *err, size_t errlen)
{
	struct mchan_server *s;
	struct addrinfo *res = NULL, *ai;
	int rc;

	if (!key || key->len == 0 || key->len > MCHAN_KEY_MAX || !verify || !accept) {
		snprintf(err, errlen, "invalid arguments");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->loop = loop;
	s->mode = mode;
	s->key = *key;
	s->fd = -1;
	s->timeout_ms = handshake_timeout_ms ? handshake_timeout_ms : MCHAN_DEFAULT_TIMEOUT_MS;
	s->verify = verify;
	s->accept = accept;
	s->arg = arg;
	qb_list_init(&s->conns);
	if (mode == MCHAN_TLS && (rc = gnutls_priority_init(&s->prio, MCHAN_PRIORITY, NULL)) < 0) {
		s->prio = NULL;
		snprintf(err, errlen, "TLS priorities: %s", gnutls_strerror(rc));
		goto fail;
	}
	if (resolve(addr, port, true, &res, err, errlen) < 0)
		goto fail;
	/* the first address that binds */
	for (ai = res; ai && s->fd < 0; ai = ai->ai_next)
		s->fd = server_socket(ai, err, errlen);
	freeaddrinfo(res);
	if (s->fd < 0)
		goto fail;
	if (qb_loop_poll_add(loop, QB_LOOP_MED, s->fd, POLLIN, s, server_accept_io) < 0) {
		snprintf(err, errlen, "cannot watch the listening socket");
		goto fail;
	}
	return s;
fail:
	if (s->fd >= 0)
		close(s->fd);
	if (s->prio)
		gnutls_priority_deinit(s->prio);
	gnutls_memset(s, 0, sizeof(*s));
	free(s);
	return NULL;
}

void mchan_server_close(struct mchan_server *s)
{
	struct sconn *c, *tmp;

	if (!s)
		return;
	qb_list_for_each_entry_safe(c, tmp, &s->conns, list)
		sconn_free(c);
	qb_loop_poll_del(s->loop, s->fd);
	close(s->fd);
	if (s->prio)
		gnutls_priority_deinit(s->prio);
	gnutls_memset(s, 0, sizeof(*s));
	free(s);
}

/* ---- source side ------------------------------------------------------------- */

enum cl_state { CL_CONNECT, CL_HANDSHAKE, CL_CHALLENGE, CL_HELLO, CL_REPLY };
static const char *const cl_step_name[] = {
	[CL_CONNECT] = "connect",
	[CL_HANDSHAKE] = "TLS handshake",
	[CL_CHALLENGE] = "challenge",
	[CL_HELLO] = "hello",
	[CL_REPLY] = "reply",
};

struct mchan_client {
	qb_loop_t *loop;
	enum mchan_mode mode;
	struct mchan_key key;
	struct mchan_hello hello;
	struct link l;
	enum cl_state state;
	unsigned timeout_ms;
	bool polling;
	int polled;
	qb_loop_timer_handle timer, kick;
	bool timer_on, kick_on;
	uint8_t snonce[MCHAN_NONCE_LEN], cnonce[MCHAN_NONCE_LEN];
	gnutls_priority_t prio;
	mchan_client_done_fn done;
	void *arg;
	char why[MCHAN_WHY];
};

static int client_io(int fd, int revents, void *arg);

static void client_free(struct mchan_client *c)
{
	if (c->timer_on)
		qb_loop_timer_del(c->loop, c->timer);
	if (c->kick_on)
		qb_loop_timer_del(c->loop, c->kick);
	if (c->polling)
		qb_loop_poll_del(c->loop, c->l.fd);
	link_close(&c->l);
	if (c->prio)
		gnutls_priority_deinit(c->prio); /* a handed-over session keeps its reference */
	gnutls_memset(c, 0, sizeof(*c));
	free(c);
}

/* The one call to done: everything is freed first, so done may do anything. */
static void client_end(struct mchan_client *c, int fd, struct mchan_tls *tls, const char *why)
{
	mchan_client_done_fn done = c->done;
	void *arg = c->arg;
	char msg[MCHAN_WHY + 64];

	if (fd < 0)
		snprintf(msg, sizeof(msg), "%s", why);
	client_free(c);
	done(arg, fd, tls, fd < 0 ? msg : NULL);
}

static void client_fail(struct mchan_client *c)
{
	client_end(c, -1, NULL, c->why);
}

static void client_timeout(void *arg)
{
	struct mchan_client *c = arg;

	c->timer_on = false;
	snprintf(c->why, sizeof(c->why), "timed out after %u ms talking to %s during the %s",
		 c->timeout_ms, c->l.peer, cl_step_name[c->state]);
	client_fail(c);
}

/* connect() failed at once: reported from the loop, as promised. */
static void client_kick(void *arg)
{
	struct mchan_client *c = arg;

	c->kick_on = false;
	client_fail(c);
}

static enum step cl_connect(struct mchan_client *c)
{
	struct pollfd p = { .fd = c->l.fd, .events = POLLOUT };
	int e = 0;
	socklen_t el = sizeof(e);

	if (poll(&p, 1, 0) == 0) {
		c->l.events = POLLOUT;
		return STEP_WAIT;
	}
	if (getsockopt(c->l.fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		e = errno;
	if (e) {
		snprintf(c->why, sizeof(c->why), "cannot connect to %s: %s", c->l.peer,
			 strerror(e));
		return STEP_FAIL;
	}
	if (c->mode == MCHAN_PLAIN) {
		c->state = CL_CHALLENGE;
		return STEP_NEXT;
	}
	if (link_tls_start(&c->l, GNUTLS_CLIENT, c->prio, &c->key, c, c->why, sizeof(c->why)) < 0)
		return STEP_FAIL;
	c->state = CL_HANDSHAKE;
	return STEP_NEXT;
}

static int cl_queue_hello(struct mchan_client *c)
{
	Hagent__MigHello m = HAGENT__MIG_HELLO__INIT;
	uint8_t mac[MCHAN_MAC_LEN];

	m.version = MCHAN_VERSION;
	m.job = c->hello.job;
	m.guest = c->hello.guest;
	m.gen = c->hello.gen;
	m.src = c->hello.src;
	m.dst = c->hello.dst;
	if (c->mode == MCHAN_PLAIN) {
		if (gnutls_rnd(GNUTLS_RND_NONCE, c->cnonce, sizeof(c->cnonce)) < 0 ||
		    hello_mac(&c->key, NULL, c->snonce, c->cnonce, &c->hello, mac) < 0) {
			snprintf(c->why, sizeof(c->why), "cannot compute the hello's MAC");
			return -1;
		}
		m.nonce.data = c->cnonce;
		m.nonce.len = sizeof(c->cnonce);
		m.mac.data = mac;
		m.mac.len = sizeof(mac);
	}
	return link_queue(&c->l, &m.base, c->why, sizeof(c->why));
}

/* The source's errors end up in the job's outcome: say where and when. */
static enum step cl_fail_io(struct mchan_client *c)
{
	char tmp[MCHAN_WHY];

	snprintf(tmp, sizeof(tmp), "%s", c->why);
	if (c->state == CL_HANDSHAKE) /* the message says so already */
		snprintf(c->why, sizeof(c->why), "%s: %.180s", c->l.peer, tmp);
	else
		snprintf(c->why, sizeof(c->why), "%s, during the %s: %.160s", c->l.peer,
			 cl_step_name[c->state], tmp);
	return STEP_FAIL;
}

static enum step cl_handshake(struct mchan_client *c)
{
	int rc = link_handshake(&c->l, c->why, sizeof(c->why));

	if (rc < 0)
		return cl_fail_io(c);
	if (rc == 0)
		return STEP_WAIT;
	if (cl_queue_hello(c) < 0)
		return STEP_FAIL;
	c->state = CL_HELLO;
	return STEP_NEXT;
}

/* Plaintext: the destination's nonce, which our MAC must cover. */
static enum step cl_challenge(struct mchan_client *c)
{
	const uint8_t *p;
	size_t n;
	Hagent__MigReply *r;
	int rc = link_read_frame(&c->l, &p, &n, c->why, sizeof(c->why));

	if (rc <= 0)
		return rc < 0 ? cl_fail_io(c) : STEP_WAIT;
	r = hagent__mig_reply__unpack(NULL, n, p);
	if (!r || r->ok || r->nonce.len != MCHAN_NONCE_LEN) {
		snprintf(c->why, sizeof(c->why), "%s: bad challenge (a hagent migration channel?)",
			 c->l.peer);
		if (r)
			hagent__mig_reply__free_unpacked(r, NULL);
		return STEP_FAIL;
	}
	memcpy(c->snonce, r->nonce.data, MCHAN_NONCE_LEN);
	hagent__mig_reply__free_unpacked(r, NULL);
	if (cl_queue_hello(c) < 0)
		return STEP_FAIL;
	c->state = CL_HELLO;
	return STEP_NEXT;
}

static enum step cl_hello(struct mchan_client *c)
{
	int rc = link_flush(&c->l, c->why, sizeof(c->why));

	if (rc <= 0)
		return rc < 0 ? cl_fail_io(c) : STEP_WAIT;
	c->state = CL_REPLY;
	return STEP_NEXT;
}

static enum step cl_reply(struct mchan_client *c)
{
	const uint8_t *p;
	size_t n;
	Hagent__MigReply *r;
	int rc = link_read_frame(&c->l, &p, &n, c->why, sizeof(c->why));

	if (rc <= 0)
		return rc < 0 ? cl_fail_io(c) : STEP_WAIT;
	r = hagent__mig_reply__unpack(NULL, n, p);
	if (!r) {
		snprintf(c->why, sizeof(c->why), "%s: malformed reply", c->l.peer);
		return STEP_FAIL;
	}
	if (!r->ok) {
		snprintf(c->why, sizeof(c->why), "refused by destination: %s",
			 r->error && r->error[0] ? r->error : "no reason given");
		sanitize(c->why);
		hagent__mig_reply__free_unpacked(r, NULL);
		return STEP_FAIL;
	}
	if (c->mode == MCHAN_PLAIN) {
		uint8_t mac[MCHAN_MAC_LEN];

		if (hello_mac(&c->key, REPLY_LABEL, c->snonce, c->cnonce, &c->hello, mac) < 0) {
			snprintf(c->why, sizeof(c->why), "cannot compute HMAC-SHA256");
			hagent__mig_reply__free_unpacked(r, NULL);
			return STEP_FAIL;
		}
		if (r->mac.len != MCHAN_MAC_LEN || !mac_equal(mac, r->mac.data, MCHAN_MAC_LEN)) {
			snprintf(c->why, sizeof(c->why),
				 "%s: the destination did not prove the cluster key (wrong key?)",
				 c->l.peer);
			hagent__mig_reply__free_unpacked(r, NULL);
			return STEP_FAIL;
		}
	}
	hagent__mig_reply__free_unpacked(r, NULL);
	if (link_check_drained(&c->l, c->why, sizeof(c->why)) < 0)
		return cl_fail_io(c);
	return STEP_END;
}

static void client_run(struct mchan_client *c)
{
	for (;;) {
		enum step st;
		struct mchan_tls *tls;
		int fd;

		switch (c->state) {
		case CL_CONNECT: st = cl_connect(c); break;
		case CL_HANDSHAKE: st = cl_handshake(c); break;
		case CL_CHALLENGE: st = cl_challenge(c); break;
		case CL_HELLO: st = cl_hello(c); break;
		case CL_REPLY: st = cl_reply(c); break;
		default: st = STEP_FAIL; break;
		}
		switch (st) {
		case STEP_NEXT:
			continue;
		case STEP_WAIT:
			if (c->polled != c->l.events &&
			    qb_loop_poll_mod(c->loop, QB_LOOP_MED, c->l.fd, c->l.events, c,
					     client_io) == 0)
				c->polled = c->l.events;
			return;
		case STEP_END:
			qb_loop_poll_del(c->loop, c->l.fd);
			c->polling = false;
			fd = link_release(&c->l, &tls);
			if (fd < 0) {
				snprintf(c->why, sizeof(c->why), "%s: cannot make the socket blocking",
					 c->l.peer);
				client_fail(c);
				return;
			}
			client_end(c, fd, tls, NULL);
			return;
		case STEP_FAIL:
			client_fail(c);
			return;
		}
	}
}

static int client_io(int fd, int revents, void *arg)
{
	(void)fd;
	(void)revents;
	client_run(arg);
	return 0;
}

struct mchan_client *mchan_connect(qb_loop_t *loop, enum mchan_mode mode,
				   const struct mchan_key *key, const char *addr, uint16_t port,
				   const struct mchan_hello *hello, unsigned timeout_ms,
				   mchan_client_done_fn done, void *arg, char *err, size_t errlen)
{
	struct mchan_client *c;
	struct addrinfo *res = NULL;
	int rc;

	if (!key || key->len == 0 || key->len > MCHAN_KEY_MAX || !hello || !done || !addr) {
		snprintf(err, errlen, "invalid arguments");
		return NULL;
	}
	if (hello_check(hello, err, errlen) < 0)
		return NULL;
	if (resolve(addr, port, false, &res, err, errlen) < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		freeaddrinfo(res);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->loop = loop;
	c->mode = mode;
	c->key = *key;
	c->hello = *hello;
	c->timeout_ms = timeout_ms ? timeout_ms : MCHAN_DEFAULT_TIMEOUT_MS;
	c->done = done;
	c->arg = arg;
	c->state = CL_CONNECT;
	peer_name(res->ai_addr, res->ai_addrlen, c->l.peer, sizeof(c->l.peer));
	c->l.fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->l.fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (mode == MCHAN_TLS && (rc = gnutls_priority_init(&c->prio, MCHAN_PRIORITY, NULL)) < 0) {
		c->prio = NULL;
		snprintf(err, errlen, "TLS: %s", gnutls_strerror(rc));
		goto fail;
	}
	if (set_timer(loop, c->timeout_ms, c, client_timeout, &c->timer) < 0) {
		snprintf(err, errlen, "cannot arm the timer");
		goto fail;
	}
	c->timer_on = true;
	if (connect(c->l.fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS) {
		/* refused or unreachable at once: said from the loop, not from here */
		snprintf(c->why, sizeof(c->why), "cannot connect to %s: %s", c->l.peer,
			 strerror(errno));
		if (set_timer(loop, 0, c, client_kick, &c->kick) < 0) {
			snprintf(err, errlen, "%s", c->why);
			goto fail;
		}
		c->kick_on = true;
		freeaddrinfo(res);
		return c;
	}
	if (qb_loop_poll_add(loop, QB_LOOP_MED, c->l.fd, POLLOUT, c, client_io) < 0) {
		snprintf(err, errlen, "cannot watch the socket");
		goto fail;
	}
	c->polling = true;
	c->polled = POLLOUT;
	freeaddrinfo(res);
	return c;
fail:
	freeaddrinfo(res);
	client_free(c);
	return NULL;
}

void mchan_client_cancel(struct mchan_client *c)
{
	if (c)
		client_free(c);
}

/* An asynchronous QMP client on a qb_loop.
 *
 * QMP is newline-delimited JSON over a stream socket: QEMU greets with
 * {"QMP": ...}, the client answers qmp_capabilities, then sends commands
 * {"execute": ..., "arguments": ..., "id": N} and receives replies
 * {"return"|"error": ..., "id": N} and asynchronous events
 * {"event": ..., "data": ..., "timestamp": {...}}.
 *
 * This client never blocks: the socket is non-blocking, reads and writes are
 * driven by the loop.  Anything it does not understand (a non-JSON line, a
 * reply to an id it never sent, a line above QMP_LINE_MAX) closes the
 * connection: a confused monitor is not worth guessing about. */
#ifndef HAGENT_QMP_H
#define HAGENT_QMP_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <qb/qbloop.h>

/* Longest line accepted from the peer (bytes before '\n').  QEMU's largest
 * normal replies (query-qmp-schema) are about 200 KiB. */
#define QMP_LINE_MAX (1024 * 1024)

struct qmp;

/* A command's outcome.  Exactly one of ret (the "return" value) and error
 * (the "error" object: {"class": ..., "desc": ...}) is non-NULL.  When the
 * connection dies before the reply, error is {"class": "Disconnected", ...}.
 * Both are borrowed for the duration of the call. */
typedef void (*qmp_reply_fn)(struct qmp *q, void *arg, json_t *ret, json_t *error);

struct qmp_callbacks {
	/* qmp_capabilities succeeded: commands and events flow.  greeting is
	 * the "QMP" object QEMU sent (borrowed). */
	void (*ready)(struct qmp *q, void *arg, json_t *greeting);
	/* An event.  data may be NULL; ts_usec is QEMU's timestamp in
	 * microseconds since the epoch, or -1 when absent. */
	void (*event)(struct qmp *q, void *arg, const char *name, json_t *data, int64_t ts_usec);
	/* The connection ended: err 0 for an orderly EOF, else an errno value
	 * (EPROTO garbage, EMSGSIZE line too long, ECONNRESET, ...).  Every
	 * pending command has had its reply callback (Disconnected) first.
	 * The object stays allocated and inert until qmp_close(). */
	void (*closed)(struct qmp *q, void *arg, int err);
};

/* Connect to a unix socket path.  Returns NULL with errno when the
 * connection is refused outright; otherwise the handshake proceeds in the
 * loop.  tag names the peer in log lines (e.g. the guest name). */
struct qmp *qmp_connect(qb_loop_t *loop, const char *path, const struct qmp_callbacks *cb,
			void *arg, const char *tag);
/* The same over an already connected stream socket; takes ownership of fd
 * (it is made non-blocking). */
struct qmp *qmp_open_fd(qb_loop_t *loop, int fd, const struct qmp_callbacks *cb, void *arg,
			const char *tag);

/* Queue a command.  args (may be NULL) is stolen, as json_object_set_new()
 * does, even on failure.  Commands queued before the handshake finishes are
 * sent after qmp_capabilities.  cb may be NULL (reply ignored, errors
 * logged).  -1 with errno ENOTCONN when the connection is dead. */
int qmp_command(struct qmp *q, json_t *args, const char *execute, qmp_reply_fn cb, void *arg);
/* The same, for an arg the caller must get back: drop(arg) runs instead of
 * cb when the command is discarded unanswered (qmp_close while it waits),
 * so exactly one of cb and drop sees arg once the command is queued. */
typedef void (*qmp_drop_fn)(void *arg);
int qmp_command_drop(struct qmp *q, json_t *args, const char *execute, qmp_reply_fn cb,
		     void *arg, qmp_drop_fn drop);
/* The same, passing fd with SCM_RIGHTS on the command's first byte (what
 * QEMU's getfd/add-fd expect).  The caller keeps its fd; a duplicate is
 * sent and closed here. */
int qmp_command_fd(struct qmp *q, json_t *args, const char *execute, int fd, qmp_reply_fn cb,
		   void *arg);

bool qmp_is_ready(const struct qmp *q);
bool qmp_is_dead(const struct qmp *q);
/* Read and dispatch everything the socket holds right now, up to EOF.  For
 * when the peer is known dead (its last events are still buffered). */
void qmp_drain(struct qmp *q);
/* Close and free.  No callback is called afterwards (pending commands are
 * dropped silently).  Safe from inside any of this object's callbacks. */
void qmp_close(struct qmp *q);

#endif

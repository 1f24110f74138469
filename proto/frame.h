/* One framing layer for every hagent message: a 4-byte big-endian length of
 * what follows, one type byte, then a protobuf-c payload.  The reader is
 * incremental and bounded: a length above the channel's limit is an error,
 * never an allocation. */
#ifndef HAGENT_FRAME_H
#define HAGENT_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

enum frame_type {
	FRAME_REQUEST = 1,
	FRAME_RESPONSE = 2,
	FRAME_EVENT = 3,
	FRAME_REGOP = 4,   /* registry change over CPG */
	FRAME_MIGRATE = 5, /* migration channel handshake (migrate/channel.c) */
};

#define FRAME_HDR 5u
#define FRAME_MAX_CONTROL (1u << 20) /* a guest file + slack */

struct frame_reader {
	uint8_t *buf;
	size_t len;   /* bytes held */
	size_t cap;
	size_t limit; /* largest accepted frame (type + payload) */
	size_t used;  /* bytes of the frame last returned, dropped on next call */
};

void frame_reader_init(struct frame_reader *r, size_t limit);
void frame_reader_free(struct frame_reader *r);
/* Append bytes; -1 with errno EMSGSIZE when the buffer would exceed the limit. */
int frame_reader_feed(struct frame_reader *r, const void *data, size_t n);
/* Next complete frame: 1 with type, payload and plen set (valid until the next
 * call), 0 when incomplete, -1 (errno EMSGSIZE or EPROTO) on a bad frame. */
int frame_reader_next(struct frame_reader *r, uint8_t *type, const uint8_t **payload, size_t *plen);

/* Encode msg as a frame into a malloc'd buffer; returns its size or -1. */
ssize_t frame_encode(uint8_t type, const ProtobufCMessage *msg, uint8_t **out);
/* Blocking helpers for simple clients (hactl) and tests. */
int frame_write_fd(int fd, uint8_t type, const ProtobufCMessage *msg);
/* Reads one frame; returns payload length (payload malloc'd in *out) or -1. */
ssize_t frame_read_fd(int fd, size_t limit, uint8_t *type, uint8_t **out);

#endif

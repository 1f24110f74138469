#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "proto/frame.h"

void frame_reader_init(struct frame_reader *r, size_t limit)
{
	memset(r, 0, sizeof(*r));
	r->limit = limit;
}

void frame_reader_free(struct frame_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

static void drop_used(struct frame_reader *r)
{
	if (!r->used)
		return;
	memmove(r->buf, r->buf + r->used, r->len - r->used);
	r->len -= r->used;
	r->used = 0;
}

int frame_reader_feed(struct frame_reader *r, const void *data, size_t n)
{
	size_t need;

	drop_used(r);
	need = r->len + n;
	/* A frame larger than the limit is refused when its header arrives, so
	 * the buffer never needs more than one frame and a bit of the next. */
	if (need > r->limit + 4 + 64 * 1024) {
		errno = EMSGSIZE;
		return -1;
	}
	if (need > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		uint8_t *nb;
		while (cap < need)
			cap *= 2;
		nb = realloc(r->buf, cap);
		if (!nb)
			return -1;
		r->buf = nb;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, n);
	r->len = need;
	return 0;
}

int frame_reader_next(struct frame_reader *r, uint8_t *type, const uint8_t **payload, size_t *plen)
{
	uint32_t be, flen;

	drop_used(r);
	if (r->len < 4)
		return 0;
	memcpy(&be, r->buf, 4);
	flen = ntohl(be);
	if (flen < 1) {
		errno = EPROTO;
		return -1;
	}
	if (flen > r->limit) {
		errno = EMSGSIZE;
		return -1;
	}
	if (r->len < 4 + (size_t)flen)
		return 0;
	*type = r->buf[4];
	*payload = r->buf + FRAME_HDR;
	*plen = flen - 1;
	r->used = 4 + (size_t)flen;
	return 1;
}

ssize_t frame_encode(uint8_t type, const ProtobufCMessage *msg, uint8_t **out)
{
	size_t plen = protobuf_c_message_get_packed_size(msg);
	uint32_t be;
	uint8_t *buf;

	if (plen + 1 > UINT32_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	buf = malloc(FRAME_HDR + plen);
	if (!buf)
		return -1;
	be = htonl((uint32_t)(plen + 1));
	memcpy(buf, &be, 4);
	buf[4] = type;
	protobuf_c_message_pack(msg, buf + FRAME_HDR);
	*out = buf;
	return (ssize_t)(FRAME_HDR + plen);
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int frame_write_fd(int fd, uint8_t type, const ProtobufCMessage *msg)
{
	uint8_t *buf;
	ssize_t n = frame_encode(type, msg, &buf);
	int rc;

	if (n < 0)
		return -1;
	rc = fs_write_all(fd, buf, (size_t)n);
	free(buf);
	return rc;
}

ssize_t frame_read_fd(int fd, size_t limit, uint8_t *type, uint8_t **out)
{
	uint8_t hdr[FRAME_HDR];
	uint32_t be, flen;
	uint8_t *buf;

	if (read_all(fd, hdr, FRAME_HDR) < 0)
		return -1;
	memcpy(&be, hdr, 4);
	flen = ntohl(be);
	if (flen < 1) {
		errno = EPROTO;
		return -1;
	}
	if (flen > limit) {
		errno = EMSGSIZE;
		return -1;
	}
	buf = malloc(flen);
	if (!buf)
		return -1;
	if (read_all(fd, buf, flen - 1) < 0) {
		free(buf);
		return -1;
	}
	*type = hdr[4];
	*out = buf;
	return (ssize_t)(flen - 1);
}

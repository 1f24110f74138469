/* proto/frame.c: the one framing layer.  Round trips, split delivery,
 * oversized and garbage frames. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "proto/frame.h"
#include "proto/hagent.pb-c.h"

static void test_round_trip_split(void **state)
{
	Hagent__Request req = HAGENT__REQUEST__INIT, *out;
	char *args[] = { "web1", "n2" };
	struct frame_reader r;
	uint8_t *buf, type;
	const uint8_t *payload;
	size_t plen, i;
	ssize_t n;

	req.command = "start";
	req.args = args;
	req.n_args = 2;
	n = frame_encode(FRAME_REQUEST, &req.base, &buf);
	assert_true(n > (ssize_t)FRAME_HDR);
	frame_reader_init(&r, FRAME_MAX_CONTROL);
	/* byte by byte: nothing until the last byte arrives */
	for (i = 0; i < (size_t)n - 1; i++) {
		assert_int_equal(frame_reader_feed(&r, buf + i, 1), 0);
		assert_int_equal(frame_reader_next(&r, &type, &payload, &plen), 0);
	}
	assert_int_equal(frame_reader_feed(&r, buf + n - 1, 1), 0);
	assert_int_equal(frame_reader_next(&r, &type, &payload, &plen), 1);
	assert_int_equal(type, FRAME_REQUEST);
	out = hagent__request__unpack(NULL, plen, payload);
	assert_non_null(out);
	assert_string_equal(out->command, "start");
	assert_int_equal(out->n_args, 2);
	assert_string_equal(out->args[1], "n2");
	hagent__request__free_unpacked(out, NULL);
	assert_int_equal(frame_reader_next(&r, &type, &payload, &plen), 0);
	free(buf);
	frame_reader_free(&r);
}

static void test_two_frames_one_read(void **state)
{
	Hagent__Event ev = HAGENT__EVENT__INIT;
	struct frame_reader r;
	uint8_t *a, *b, *both, type;
	const uint8_t *payload;
	size_t plen;
	ssize_t na, nb;

	ev.guest = "g1";
	na = frame_encode(FRAME_EVENT, &ev.base, &a);
	ev.guest = "g2";
	nb = frame_encode(FRAME_EVENT, &ev.base, &b);
	both = malloc((size_t)(na + nb));
	memcpy(both, a, (size_t)na);
	memcpy(both + na, b, (size_t)nb);
	frame_reader_init(&r, 1024);
	assert_int_equal(frame_reader_feed(&r, both, (size_t)(na + nb)), 0);
	for (int i = 1; i <= 2; i++) {
		Hagent__Event *e;
		char want[16];
		assert_int_equal(frame_reader_next(&r, &type, &payload, &plen), 1);
		e = hagent__event__unpack(NULL, plen, payload);
		assert_non_null(e);
		snprintf(want, sizeof(want), "g%d", i);
		assert_string_equal(e->guest, want);
		hagent__event__free_unpacked(e, NULL);
	}
	assert_int_equal(frame_reader_next(&r, &type, &payload, &plen), 0);
	free(a);
	free(b);
	free(both);
	frame_reader_free(&r);
}

static void test_oversized_refused_at_header(void **state)
{
	uint8_t hdr[5] = { 0x7f, 0xff, 0xff, 0xff, FRAME_REQUEST };
	struct frame_reader r;
	uint8_t type;
	const uint8_t *payload;
	size_t plen;

	frame_reader_init(&r, 4096);
	assert_int_equal(frame_reader_feed(&r, hdr, sizeof(hdr)), 0);
	errno = 0;
	assert_int_equal(frame_reader_next(&r, &type, &payload, &plen), -1);
	assert_int_equal(errno, EMSGSIZE);
	frame_reader_free(&r);
}

static void test_zero_length_is_protocol_error(void **state)
{
	uint8_t hdr[4] = { 0, 0, 0, 0 };
	struct frame_reader r;
	uint8_t type;
	const uint8_t *payload;
	size_t plen;

	frame_reader_init(&r, 4096);
	assert_int_equal(frame_reader_feed(&r, hdr, sizeof(hdr)), 0);
	assert_int_equal(frame_reader_next(&r, &type, &payload, &plen), -1);
	assert_int_equal(errno, EPROTO);
	frame_reader_free(&r);
}

static void test_feed_bounded(void **state)
{
	static uint8_t junk[200000];
	struct frame_reader r;

	frame_reader_init(&r, 1024);
	assert_int_equal(frame_reader_feed(&r, junk, sizeof(junk)), -1);
	assert_int_equal(errno, EMSGSIZE);
	frame_reader_free(&r);
}

static void test_fd_helpers(void **state)
{
	Hagent__Response resp = HAGENT__RESPONSE__INIT, *out;
	uint8_t type, *buf;
	int sv[2];
	ssize_t n;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	resp.status = 4;
	resp.error = "unknown guest 'x'";
	assert_int_equal(frame_write_fd(sv[0], FRAME_RESPONSE, &resp.base), 0);
	n = frame_read_fd(sv[1], 4096, &type, &buf);
	assert_true(n > 0);
	assert_int_equal(type, FRAME_RESPONSE);
	out = hagent__response__unpack(NULL, (size_t)n, buf);
	assert_non_null(out);
	assert_int_equal(out->status, 4);
	assert_string_equal(out->error, "unknown guest 'x'");
	hagent__response__free_unpacked(out, NULL);
	free(buf);
	/* a peer that closes mid-frame is an error, not a hang */
	assert_int_equal(write(sv[0], "\0\0\0\x10\x01", 5), 5);
	close(sv[0]);
	assert_int_equal(frame_read_fd(sv[1], 4096, &type, &buf), -1);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_split),
		cmocka_unit_test(test_two_frames_one_read),
		cmocka_unit_test(test_oversized_refused_at_header),
		cmocka_unit_test(test_zero_length_is_protocol_error),
		cmocka_unit_test(test_feed_bounded),
		cmocka_unit_test(test_fd_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

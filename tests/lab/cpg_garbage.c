/* cpg_garbage: a misbehaving peer for the lab tests.  Joins the CPG group
 * "hagent" and multicasts what a confused or hostile member might: random
 * bytes, a frame header claiming a huge length, a frame of the wrong type,
 * a registry frame whose protobuf is corrupt, and a well-formed change
 * naming an invalid guest.  hagentd must log and ignore each one.
 * With --version V it instead sends one well-formed table (SYNC) of registry
 * version V holding a guest "intruder": a host of another hagent version. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <corosync/cpg.h>

#include "proto/frame.h"
#include "proto/hagent.pb-c.h"

static void deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t node, uint32_t pid,
		    void *msg, size_t len)
{
}

static int send_buf(cpg_handle_t h, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	int tries;

	for (tries = 0; tries < 1000; tries++) {
		cs_error_t rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
		if (rc == CS_OK)
			return 0;
		if (rc != CS_ERR_TRY_AGAIN)
			return -1;
		usleep(1000);
	}
	return -1;
}

static int send_version(cpg_handle_t h, uint32_t version)
{
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	Hagent__RegRecord rec = HAGENT__REG_RECORD__INIT, *recs[1] = { &rec };
	static const char text[] = "name = \"intruder\"\ntype = \"pvh\"\nkernel = \"/k\"\n";
	uint8_t *frame;
	ssize_t n;
	int rc;

	rec.name = "intruder";
	rec.text.data = (uint8_t *)text;
	rec.text.len = sizeof(text) - 1;
	rec.source = "/intruder.cfg";
	rec.owner = "";
	rec.gen = 1000;
	rec.state = "stopped";
	rec.reason = "";
	op.kind = HAGENT__REG_OP__KIND__SYNC;
	op.node = "intruder-host";
	op.version = version;
	op.records = recs;
	op.n_records = 1;
	n = frame_encode(FRAME_REGOP, &op.base, &frame);
	if (n < 0)
		return -1;
	rc = send_buf(h, frame, (size_t)n);
	free(frame);
	return rc;
}

int main(int argc, char **argv)
{
	cpg_callbacks_t cb = { .cpg_deliver_fn = deliver };
	struct cpg_name name = { .length = 6 };
	Hagent__RegOp op = HAGENT__REG_OP__INIT;
	uint8_t junk[512], *frame;
	cpg_handle_t h;
	ssize_t n;
	int i, fails = 0;

	memcpy(name.value, "hagent", 6);
	if (cpg_initialize(&h, &cb) != CS_OK || cpg_join(h, &name) != CS_OK) {
		fprintf(stderr, "cpg_garbage: cannot join the CPG group\n");
		return 1;
	}
	if (argc == 3 && !strcmp(argv[1], "--version")) {
		fails = send_version(h, (uint32_t)strtoul(argv[2], NULL, 10)) < 0;
		cpg_leave(h, &name);
		cpg_finalize(h);
		printf("cpg_garbage: sent a table of registry version %s%s\n", argv[2],
		       fails ? " (failed)" : "");
		return fails;
	}
	srand(42);
	for (i = 0; i < (int)sizeof(junk); i++)
		junk[i] = (uint8_t)rand();
	fails += send_buf(h, junk, sizeof(junk)) < 0;
	fails += send_buf(h, "\x7f\xff\xff\xff\x04", 5) < 0;           /* huge length */
	fails += send_buf(h, "\0\0\0\x02\x09\x00", 6) < 0;             /* unknown frame type */
	fails += send_buf(h, "\0\0\0\x06\x04\xff\xff\xff\xff\xff", 10) < 0; /* corrupt protobuf */
	op.kind = HAGENT__REG_OP__KIND__START;
	op.name = "../../etc/passwd";
	op.node = "n1";
	n = frame_encode(FRAME_REGOP, &op.base, &frame);
	if (n > 0) {
		fails += send_buf(h, frame, (size_t)n) < 0;
		free(frame);
	}
	op.kind = 99; /* an unknown kind with a valid name */
	op.name = "nosuchguest";
	n = frame_encode(FRAME_REGOP, &op.base, &frame);
	if (n > 0) {
		fails += send_buf(h, frame, (size_t)n) < 0;
		free(frame);
	}
	cpg_leave(h, &name);
	cpg_finalize(h);
	printf("cpg_garbage: sent 6 bad messages, %d failed to send\n", fails);
	return fails ? 1 : 0;
}

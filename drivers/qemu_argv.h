/* xl.cfg (struct guest_cfg) to a QEMU command line.  A pure function: no
 * I/O, no globals; every xl key the qemu driver supports is one entry of a
 * table in qemu_argv.c, and everything it cannot express is an error naming
 * the key (so `hactl check` and start report the same thing). */
#ifndef HAGENT_QEMU_ARGV_H
#define HAGENT_QEMU_ARGV_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/guestcfg.h"

#define QEMU_ARGV_MAX 256 /* arguments, argv[0] included */

/* File names under run_dir, one set per guest. */
#define QEMU_SUFFIX_QMP ".qmp"             /* QMP socket */
#define QEMU_SUFFIX_SERIAL ".serial"       /* serial console socket */
#define QEMU_SUFFIX_PID ".pid"             /* QEMU's -pidfile */
#define QEMU_SUFFIX_CONSOLE ".console.log" /* all serial output */
#define QEMU_SUFFIX_LOG ".qemu.log"        /* QEMU's stdout/stderr */
#define QEMU_SUFFIX_OBSERVE ".observe.qmp" /* second QMP monitor for test observers */

struct qemu_argv_opts {
	const char *run_dir;
	const char *binary;
	const char *accel; /* "kvm" | "tcg" (already resolved) */
	/* Listening sockets QEMU inherits at these descriptor numbers; -1 lets
	 * QEMU create the socket itself at RUN_DIR/NAME.qmp|.serial. */
	int qmp_fd;
	int serial_fd;
	/* A second QMP monitor at RUN_DIR/NAME.observe.qmp for an outside
	 * observer (the lab's dual-run checker asks each copy's run state). */
	bool observer;
	/* The destination of a live migration: -S -incoming defer. */
	bool incoming;
	/* inserted between NAME and each run_dir file's suffix (NULL = none) */
	const char *file_tag;
};
#define QEMU_INCOMING_TAG ".in"

struct qemu_argv {
	char *argv[QEMU_ARGV_MAX + 1]; /* NULL-terminated, each malloc'd */
	int argc;
};

/* Build the command line.  Errors (one per problem, naming the xl key) are
 * appended to diags; returns -1 when there is any, with out empty. */
int qemu_argv_build(const struct guest_cfg *cfg, const struct qemu_argv_opts *opts,
		    struct qemu_argv *out, struct guestcfg_diags *diags);
void qemu_argv_free(struct qemu_argv *a);

/* RUN_DIR/NAME<suffix>; -1 ENAMETOOLONG. */
int qemu_path(char *buf, size_t len, const char *run_dir, const char *name, const char *suffix);
/* QEMU device for an xl vif model ("" = default e1000); NULL when unknown. */
const char *qemu_nic_model(const char *xl_model);
/* Does /proc/PID/cmdline (NUL-separated, len bytes) run guest `name`?
 * True when some "-name" argument is followed by exactly name, or by name
 * and a ',' (options such as debug-threads=on). */
bool qemu_cmdline_matches(const char *cmdline, size_t len, const char *name);

#endif

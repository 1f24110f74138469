/* hactl: the command line of hagent.  The command table below drives
 * dispatch, usage and bash completion. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/driver.h"
#include "drivers/xen_config.h"
#include "hactl/hactl.h"
#include "lib/fsutil.h"
#include "lib/guestcfg.h"
#include "lib/storage_host.h"
#include "proto/frame.h"

#define DEFAULT_SOCKET "/run/hagent/hagentd.sock" /* run_dir's default, DESIGN.md §5 */

static const struct hactl_cmd commands[];

static int simple_request(struct hactl *h, const char *command, int argc, char **argv)
{
	Hagent__Request req = HAGENT__REQUEST__INIT;
	Hagent__Response *resp;

	req.command = (char *)command;
	req.args = argv;
	req.n_args = (size_t)argc;
	req.timeout_s = h->timeout_s;
	resp = client_call(h, &req, NULL);
	return resp ? client_finish(h, resp) : 1;
}

static int cmd_simple(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	return simple_request(h, cmd->name, argc, argv);
}

static int cmd_list(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	Hagent__Request req = HAGENT__REQUEST__INIT;
	Hagent__Response *resp;

	req.command = (char *)cmd->name;
	req.args = argv;
	req.n_args = (size_t)argc;
	resp = client_call(h, &req, NULL);
	if (!resp)
		return 1;
	if (resp->status == 0)
		output_guests(h, resp, !strcmp(cmd->name, "status"));
	return client_finish(h, resp);
}

static void print_diags(const struct guestcfg_diags *diags, const char *path)
{
	char line[600];
	int i;

	for (i = 0; i < diags->n; i++) {
		guestcfg_diag_format(&diags->d[i], path, line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
}

static int cmd_check(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	struct guestcfg_diags *diags = calloc(1, sizeof(*diags));
	struct guest_cfg *cfg = calloc(1, sizeof(*cfg));
	int rc = 1;

	if (!diags || !cfg)
		goto out;
	/* as hagentd here would read it: no ha_driver is this host's */
	guestcfg_set_default_driver(driver_host_default());
	if (guestcfg_parse_file(argv[0], cfg, diags) == 0) {
		const struct driver_ops *ops = driver_lookup(cfg->driver);
		if (!ops)
			guestcfg_diag_add(diags, DIAG_ERROR, 0, "ha_driver",
					  "driver '%s' is not available", cfg->driver);
		else if (ops->check)
			ops->check(cfg, diags);
		guestcfg_check_host(cfg, diags);
		stor_check_cfg(cfg, diags); /* VG, LV, iSCSI target, DRBD resource here */
		if (ops == &xen_driver_ops) /* what libxl needs on this host */
			xen_config_check_host(cfg, NULL, diags);
	}
	print_diags(diags, argv[0]);
	if (diags->n_errors) {
		fprintf(stderr, "%s: %d error%s, %d warning%s\n", argv[0], diags->n_errors,
			diags->n_errors == 1 ? "" : "s", diags->n_warnings,
			diags->n_warnings == 1 ? "" : "s");
		goto out;
	}
	printf("%s: ok (guest %s, %ld MiB, %d vcpu%s, driver %s)%s\n", argv[0], cfg->name,
	       cfg->memory_mib, cfg->vcpus, cfg->vcpus == 1 ? "" : "s", cfg->driver,
	       diags->n_warnings ? ", with warnings" : "");
	rc = 0;
out:
	free(diags);
	free(cfg);
	return rc;
}

static int cmd_add(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	Hagent__Request req = HAGENT__REQUEST__INIT;
	Hagent__Response *resp;
	char *text = NULL, abspath[PATH_MAX];
	ssize_t len;

	(void)cmd;
	if (argc == 2 && !strcmp(argv[1], "--pacemaker")) {
		req.by_pacemaker = true; /* ocf:hagent:guest's start */
	} else if (argc != 1) {
		fprintf(stderr, "usage: hactl add FILE [--pacemaker]\n");
		return 2;
	}
	len = fs_read_file(argv[0], GUEST_FILE_MAX, &text);
	if (len < 0) {
		fprintf(stderr, "hactl: cannot read %s: %s\n", argv[0],
			errno == EFBIG ? "larger than 256 KiB" : strerror(errno));
		return 1;
	}
	/* The daemon resolves relative paths in the file against its location. */
	if (!realpath(argv[0], abspath))
		snprintf(abspath, sizeof(abspath), "%s", argv[0]);
	req.command = "add";
	req.file_content.data = (uint8_t *)text;
	req.file_content.len = (size_t)len;
	req.file_path = abspath;
	resp = client_call(h, &req, NULL);
	free(text);
	return resp ? client_finish(h, resp) : 1;
}

/* GUEST [--timeout S]: stop, probe */
/* want positional arguments and an optional --timeout S (into h); 0 or
 * hactl's usage exit status. */
static int timed_args(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv,
		      char **rest, int want)
{
	int i, n = 0;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			char *end;
			long t = strtol(argv[++i], &end, 10);
			if (*end || t <= 0 || t > 86400) {
				fprintf(stderr, "hactl: --timeout expects seconds (1..86400)\n");
				return 2;
			}
			h->timeout_s = (unsigned)t;
		} else if (n < want) {
			rest[n++] = argv[i];
		} else {
			fprintf(stderr, "hactl: %s: too many arguments\n", cmd->name);
			return 2;
		}
	}
	if (n != want) {
		fprintf(stderr, "usage: hactl %s %s\n", cmd->name, cmd->args);
		return 2;
	}
	return 0;
}

static int cmd_timed(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	char *rest[1];
	int rc = timed_args(h, cmd, argc, argv, rest, 1);

	return rc ? rc : simple_request(h, cmd->name, 1, rest);
}

/* DRBD's fence-peer handler asks: prints outdated, refused or fenced. */
static int cmd_fence_peer(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	Hagent__Request req = HAGENT__REQUEST__INIT;
	Hagent__Response *resp;
	char *rest[2];
	int rc = timed_args(h, cmd, argc, argv, rest, 2);

	if (rc)
		return rc;
	req.command = "fence-peer";
	req.args = rest;
	req.n_args = 2;
	req.timeout_s = h->timeout_s;
	resp = client_call(h, &req, NULL);
	if (!resp)
		return 1;
	if (resp->status == 0 && resp->n_messages == 1) {
		printf("%s\n", resp->messages[0]);
		hagent__response__free_unpacked(resp, NULL);
		return 0;
	}
	rc = client_finish(h, resp);
	return rc ? rc : 1;
}

static int cmd_console(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	Hagent__Request req = HAGENT__REQUEST__INIT;
	Hagent__Response *resp;
	char path[PATH_MAX];

	req.command = "console";
	req.args = argv;
	req.n_args = 1;
	resp = client_call(h, &req, NULL);
	if (!resp)
		return 1;
	if (resp->status)
		return client_finish(h, resp);
	snprintf(path, sizeof(path), "%s", resp->console_path);
	client_finish(h, resp);
	return console_run(path, argv[0]);
}

static int cmd_events(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	Hagent__Request req = HAGENT__REQUEST__INIT;
	Hagent__Response *resp;
	int fd = -1, rc;

	req.command = "events";
	resp = client_call(h, &req, &fd);
	if (!resp)
		return 1;
	if (!resp->status && !h->json)
		printf("-- following events of %s\n", resp->node);
	rc = client_finish(h, resp);
	if (rc) {
		close(fd);
		return rc;
	}
	fflush(stdout);
	for (;;) {
		uint8_t type, *buf = NULL;
		ssize_t n = frame_read_fd(fd, FRAME_MAX_CONTROL, &type, &buf);
		Hagent__Event *ev;

		if (n < 0) {
			fprintf(stderr, "hactl: hagentd closed the event stream\n");
			close(fd);
			return 1;
		}
		ev = type == FRAME_EVENT ? hagent__event__unpack(NULL, (size_t)n, buf) : NULL;
		free(buf);
		if (!ev)
			continue;
		output_event(h, ev);
		hagent__event__free_unpacked(ev, NULL);
	}
}

static void usage(FILE *f)
{
	const struct hactl_cmd *c;

	fprintf(f, "usage: hactl [-s SOCKET] [--json] COMMAND [ARGS]\n\ncommands:\n");
	for (c = commands; c->name; c++)
		fprintf(f, "  %-10s %-26s %s\n", c->name, c->args, c->help);
	fprintf(f, "\nThe socket defaults to $HAGENT_SOCKET or %s.\n", DEFAULT_SOCKET);
}

static int cmd_help(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	usage(stdout);
	return 0;
}

/* Bash completion generated from the table: `source <(hactl completion)`. */
static int cmd_completion(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	const struct hactl_cmd *c;

	printf("_hactl() {\n"
	       "  local cur=${COMP_WORDS[COMP_CWORD]} cmd=\"\" i\n"
	       "  for ((i=1; i<COMP_CWORD; i++)); do case ${COMP_WORDS[i]} in -s) ((i++));; -*) ;; *) cmd=${COMP_WORDS[i]}; break;; esac; done\n"
	       "  if [ -z \"$cmd\" ]; then COMPREPLY=($(compgen -W \"--json -s");
	for (c = commands; c->name; c++)
		printf(" %s", c->name);
	printf("\" -- \"$cur\")); return; fi\n  case $cmd in\n");
	for (c = commands; c->name; c++) {
		if (!strcmp(c->complete, "guest"))
			printf("    %s) COMPREPLY=($(compgen -W \"$(hactl --json list 2>/dev/null | "
			       "sed -n 's/.*\\\"name\\\": \\\"\\(.*\\)\\\",/\\1/p')\" -- \"$cur\"));;\n",
			       c->name);
		else if (!strcmp(c->complete, "file"))
			printf("    %s) COMPREPLY=($(compgen -f -- \"$cur\"));;\n", c->name);
	}
	printf("  esac\n}\ncomplete -F _hactl hactl\n");
	return 0;
}

static const struct hactl_cmd commands[] = {
	{ "status", "", "this host and its guests", 0, 0, "", cmd_list },
	{ "list", "[GUEST]", "guests: name, node, state, memory, vcpus, uptime", 0, 1, "guest",
	  cmd_list },
	{ "check", "FILE", "validate a guest file (no daemon needed)", 1, 1, "file", cmd_check },
	{ "add", "FILE [--pacemaker]", "define a guest from its xl.cfg file (--pacemaker: Pacemaker's)",
	  1, 2, "file", cmd_add },
	{ "remove", "GUEST", "undefine a stopped guest", 1, 1, "guest", cmd_simple },
	{ "start", "GUEST [NODE]", "start a guest and wait until it runs", 1, 2, "guest",
	  cmd_simple },
	{ "stop", "GUEST [--timeout S]", "power button, destroy after S s (60)", 1, 3, "guest",
	  cmd_timed },
	{ "probe", "GUEST [--timeout S]", "does the guest's monitor answer within S s (10)?", 1, 3,
	  "guest", cmd_timed },
	{ "destroy", "GUEST", "stop a guest at once (like pulling the plug)", 1, 1, "guest",
	  cmd_simple },
	{ "migrate", "GUEST NODE [--downtime MS] [--bandwidth MIB] [--timeout S] [--auto-converge] [--wait] [--pacemaker]",
	  "live-migrate a running guest to NODE", 2, 12, "guest", cmd_migrate },
	{ "migrate-abort", "GUEST", "abort a migration; the guest runs on where it was", 1, 1,
	  "guest", cmd_simple },
	{ "node", "standby|online NODE [--no-wait]",
	  "standby: move every guest away by live migration, take none; online: allow again", 2,
	  3, "", cmd_node },
	{ "console", "GUEST", "serial console; Ctrl-] leaves", 1, 1, "guest", cmd_console },
	{ "fence-peer", "RESOURCE PEER [--timeout S]",
	  "DRBD's fence-peer handler: outdate PEER's disk of RESOURCE, or fence PEER if lost", 2, 4,
	  "", cmd_fence_peer },
	{ "mem-set", "GUEST MIB", "set the memory target (balloon)", 2, 2, "guest", cmd_simple },
	{ "mem-max", "GUEST MIB", "set the maximum memory", 2, 2, "guest", cmd_simple },
	{ "events", "", "follow state transitions as they happen", 0, 0, "", cmd_events },
	{ "completion", "", "print the bash completion script", 0, 0, "", cmd_completion },
	{ "help", "", "this text", 0, 0, "", cmd_help },
	{ NULL, NULL, NULL, 0, 0, NULL, NULL },
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hactl h = { .socket = getenv("HAGENT_SOCKET") };
	const struct hactl_cmd *c;
	int opt, nargs;

	if (!h.socket || !h.socket[0])
		h.socket = DEFAULT_SOCKET;
	/* "+": options end at the command, so its own options stay its own. */
	while ((opt = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 's': h.socket = optarg; break;
		case 'j': h.json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	for (c = commands; c->name; c++)
		if (!strcmp(c->name, argv[optind]))
			break;
	if (!c->name) {
		fprintf(stderr, "hactl: unknown command '%s' (try hactl help)\n", argv[optind]);
		return 2;
	}
	nargs = argc - optind - 1;
	if (nargs < c->min_args || nargs > c->max_args) {
		fprintf(stderr, "usage: hactl %s %s\n", c->name, c->args);
		return 2;
	}
	return c->fn(&h, c, nargs, argv + optind + 1);
}

/* hactl migrate GUEST NODE [--downtime MS] [--bandwidth MIB] [--timeout S]
 * [--wait], and the progress it shows while it waits. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hactl/hactl.h"

#define MIB (1024.0 * 1024.0)
#define WAIT_POLL_MS 200
#define WAIT_SLACK_S 30 /* beyond the job's deadline: the cluster ends it first */
#define JOB_DEFAULT_S 600 /* agent/timeouts.h TO_MIGRATE_DEFAULT_S */

static int parse_uint(const char *opt, const char *v, long max, uint32_t *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n <= 0 || n > max) {
		fprintf(stderr, "hactl: %s expects a number from 1 to %ld\n", opt, max);
		return -1;
	}
	*out = (uint32_t)n;
	return 0;
}

/* The guest's migration as the daemon reports it (NULL on error). */
static Hagent__Response *query(struct hactl *h, char *guest, const Hagent__MigInfo **mi)
{
	Hagent__Request req = HAGENT__REQUEST__INIT;
	Hagent__Response *resp;
	bool json = h->json;

	req.command = "list";
	req.args = &guest;
	req.n_args = 1;
	h->json = false;
	resp = client_call(h, &req, NULL);
	h->json = json;
	if (!resp)
		return NULL;
	if (resp->status || resp->n_guests != 1) {
		client_finish(h, resp);
		return NULL;
	}
	*mi = resp->guests[0]->migration;
	return resp;
}

static void show_progress(const Hagent__MigInfo *mi, bool tty)
{
	double sent = (double)mi->transferred_bytes / MIB, total = (double)mi->total_bytes / MIB;
	double rate = (double)mi->rate_bps / MIB;
	long eta = mi->rate_bps ? (long)(mi->remaining_bytes / mi->rate_bps) : -1;

	printf("%s%s -> %s: %-8s %7.0f/%.0f MiB  %6.1f MiB/s  dirty %" PRIu64
	       " pages/s  downtime ~%" PRId64 " ms  ETA %s%ld s%s",
	       tty ? "\r" : "", mi->src, mi->dst, mi->phase, sent, total, rate, mi->dirty_rate,
	       mi->expected_downtime_ms, eta < 0 ? "?" : "", eta < 0 ? 0 : eta, tty ? "  " : "\n");
	fflush(stdout);
}

/* Follow the job until it is over; 0 when it committed. */
static int wait_job(struct hactl *h, char *guest, const char *before, unsigned timeout_s)
{
	time_t end = time(NULL) + (time_t)timeout_s + WAIT_SLACK_S;
	bool tty = isatty(STDOUT_FILENO) && !h->json, seen = false;
	char last_phase[32] = "";

	while (time(NULL) < end) {
		const Hagent__MigInfo *mi = NULL;
		Hagent__Response *resp = query(h, guest, &mi);
		int rc;

		if (!resp)
			return 1;
		if (mi && mi->job[0]) {
			seen = true;
			if (tty || strcmp(last_phase, mi->phase)) {
				snprintf(last_phase, sizeof(last_phase), "%s", mi->phase);
				show_progress(mi, tty);
			}
		} else if (mi && mi->last[0] && (seen || strcmp(mi->last, before))) {
			rc = strncmp(mi->last, "migrated", 8) ? 1 : 0;
			if (tty)
				printf("\n");
			if (rc)
				fprintf(stderr, "hactl: %s: %s\n", guest, mi->last);
			else
				printf("%s: %s\n", guest, mi->last);
			hagent__response__free_unpacked(resp, NULL);
			return rc;
		}
		hagent__response__free_unpacked(resp, NULL);
		poll(NULL, 0, WAIT_POLL_MS); /* a CLI following a job, not a test */
	}
	fprintf(stderr, "hactl: %s: no outcome within %u s\n", guest, timeout_s + WAIT_SLACK_S);
	return 3;
}

int cmd_migrate(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	Hagent__Request req = HAGENT__REQUEST__INIT;
	Hagent__Response *resp;
	const Hagent__MigInfo *mi = NULL;
	char *rest[2], before[512] = "";
	bool wait = false;
	int i, n = 0, rc;

	(void)cmd;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--wait")) {
			wait = true;
		} else if (!strcmp(a, "--auto-converge")) {
			req.auto_converge = true;
		} else if (!strcmp(a, "--pacemaker")) {
			req.by_pacemaker = true; /* ocf:hagent:guest's migrate_to */
		} else if (!strcmp(a, "--downtime") && i + 1 < argc) {
			if (parse_uint(a, argv[++i], 600000, &req.downtime_ms) < 0)
				return 2;
		} else if (!strcmp(a, "--bandwidth") && i + 1 < argc) {
			if (parse_uint(a, argv[++i], 1048576, &req.bandwidth_mib) < 0)
				return 2;
		} else if (!strcmp(a, "--timeout") && i + 1 < argc) {
			if (parse_uint(a, argv[++i], 86400, &req.timeout_s) < 0)
				return 2;
		} else if (a[0] != '-' && n < 2) {
			rest[n++] = argv[i];
		} else {
			fprintf(stderr, "hactl: migrate: unexpected '%s'\n", a);
			n = -1;
			break;
		}
	}
	if (n != 2) {
		fprintf(stderr, "usage: hactl migrate GUEST NODE [--downtime MS] [--bandwidth MIB] "
				"[--timeout S] [--auto-converge] [--wait] [--pacemaker]\n");
		return 2;
	}
	if (wait) {
		resp = query(h, rest[0], &mi);
		if (!resp)
			return 1;
		if (mi)
			snprintf(before, sizeof(before), "%s", mi->last);
		hagent__response__free_unpacked(resp, NULL);
	}
	req.command = "migrate";
	req.args = rest;
	req.n_args = 2;
	resp = client_call(h, &req, NULL);
	if (!resp)
		return 1;
	rc = client_finish(h, resp);
	if (rc || !wait)
		return rc;
	return wait_job(h, rest[0], before, req.timeout_s ? req.timeout_s : JOB_DEFAULT_S);
}

/* The node's mode and last evacuation from `status` (-1 when unknown). */
static int node_mode(struct hactl *h, const char *node, char *mode, size_t mlen, char *evac,
		     size_t elen)
{
	Hagent__Request req = HAGENT__REQUEST__INIT;
	Hagent__Response *resp;
	bool json = h->json;
	size_t i;
	int rc = -1;

	req.command = "status";
	h->json = false;
	resp = client_call(h, &req, NULL);
	h->json = json;
	if (!resp)
		return -1;
	for (i = 0; resp->status == 0 && resp->cluster && i < resp->cluster->n_nodes; i++) {
		const Hagent__NodeInfo *n = resp->cluster->nodes[i];
		if (strcmp(n->name, node))
			continue;
		snprintf(mode, mlen, "%s", n->mode);
		snprintf(evac, elen, "%s", n->evacuation);
		rc = 0;
	}
	if (resp->status)
		client_finish(h, resp);
	else
		hagent__response__free_unpacked(resp, NULL);
	return rc;
}

/* hactl node standby NODE [--no-wait] | node online NODE */
int cmd_node(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv)
{
	Hagent__Request req = HAGENT__REQUEST__INIT;
	Hagent__Response *resp;
	char mode[32], evac[1024], command[32];
	bool wait = argc < 3 || strcmp(argv[2], "--no-wait");
	time_t end = time(NULL) + 3600;
	int rc;

	(void)cmd;
	if (argc < 2 || argc > 3 || (strcmp(argv[0], "standby") && strcmp(argv[0], "online")) ||
	    (argc == 3 && strcmp(argv[2], "--no-wait"))) {
		fprintf(stderr, "usage: hactl node standby|online NODE [--no-wait]\n");
		return 2;
	}
	snprintf(command, sizeof(command), "node-%s", argv[0]);
	req.command = command;
	req.args = &argv[1];
	req.n_args = 1;
	resp = client_call(h, &req, NULL);
	if (!resp)
		return 1;
	rc = client_finish(h, resp);
	if (rc || strcmp(argv[0], "standby") || !wait)
		return rc;
	/* follow the evacuation until the node announces its outcome */
	while (time(NULL) < end) {
		if (node_mode(h, argv[1], mode, sizeof(mode), evac, sizeof(evac)) < 0)
			return 1;
		if (strcmp(mode, "evacuating")) {
			printf("%s: standby; evacuation: %s\n", argv[1], evac[0] ? evac : "nothing to move");
			return strstr(evac, "stayed") ? 1 : 0;
		}
		poll(NULL, 0, WAIT_POLL_MS);
	}
	fprintf(stderr, "hactl: %s: still evacuating after an hour\n", argv[1]);
	return 3;
}

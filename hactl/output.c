#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "hactl/hactl.h"

static json_t *mig_json(const Hagent__MigInfo *m)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}",
			 "job", m->job, "src", m->src, "dst", m->dst, "phase", m->phase, "status",
			 m->status, "total_bytes", (json_int_t)m->total_bytes, "transferred_bytes",
			 (json_int_t)m->transferred_bytes, "remaining_bytes",
			 (json_int_t)m->remaining_bytes, "rate_bps", (json_int_t)m->rate_bps,
			 "dirty_rate", (json_int_t)m->dirty_rate, "expected_downtime_ms",
			 (json_int_t)m->expected_downtime_ms, "downtime_ms", (json_int_t)m->downtime_ms,
			 "elapsed_ms", (json_int_t)m->elapsed_ms, "last", m->last);
}

static json_t *guest_json(const Hagent__GuestInfo *g)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:I, s:i, s:i, s:s, s:s, s:s}",
			      "name", g->name, "node", g->node, "state", g->state, "reason",
			      g->reason, "memory", (json_int_t)g->memory_mib, "maxmem",
			      (json_int_t)g->maxmem_mib, "vcpus", (int)g->vcpus, "started_at",
			      (json_int_t)g->started_at, "pid", (int)g->pid, "restarts",
			      (int)g->restarts, "desired", g->desired, "driver", g->driver, "source",
			      g->source);

	if (o)
		json_object_set_new(o, "managed_by",
				    json_string(g->managed_by && g->managed_by[0] ? g->managed_by
										  : "hagent"));
	if (o && g->migration)
		json_object_set_new(o, "migration", mig_json(g->migration));
	return o;
}

/* "Storage of n1:" and its lines; "  keeps off: GUEST (REASON)" per guest */
static void print_storage(const Hagent__NodeInfo *n)
{
	const char *p;

	if ((!n->storage || !n->storage[0]) && (!n->unusable || !n->unusable[0]))
		return;
	printf("Storage of %s:\n", n->name);
	for (p = n->storage ? n->storage : ""; *p;) {
		size_t l = strcspn(p, "\n");
		printf("  %.*s\n", (int)l, p);
		p += l + (p[l] == '\n');
	}
	for (p = n->unusable ? n->unusable : ""; *p;) {
		size_t l = strcspn(p, "\n"), t = strcspn(p, "\t");
		if (t < l)
			printf("  cannot run %.*s: %.*s\n", (int)t, p, (int)(l - t - 1), p + t + 1);
		p += l + (p[l] == '\n');
	}
}

static json_t *cluster_json(const Hagent__ClusterInfo *c)
{
	json_t *nodes = json_array();
	size_t i;

	for (i = 0; i < c->n_nodes; i++)
		json_array_append_new(
			nodes, json_pack("{s:s, s:i, s:b, s:b, s:b, s:I, s:I, s:i, s:s, s:s, s:s}", "name",
					 c->nodes[i]->name, "id", (int)c->nodes[i]->id, "member",
					 c->nodes[i]->member, "hagentd", c->nodes[i]->hagentd, "local",
					 c->nodes[i]->local, "capacity_mb",
					 (json_int_t)c->nodes[i]->capacity_mb, "used_mb",
					 (json_int_t)c->nodes[i]->used_mb, "watchdog_s",
					 (int)c->nodes[i]->watchdog_s, "fencing",
					 c->nodes[i]->fencing ? c->nodes[i]->fencing : "", "storage",
					 c->nodes[i]->storage ? c->nodes[i]->storage : "", "unusable",
					 c->nodes[i]->unusable ? c->nodes[i]->unusable : ""));
	return json_pack("{s:s, s:b, s:i, s:i, s:i, s:o, s:s, s:s, s:s}", "name", c->name,
			 "quorate", c->quorate, "votes", (int)c->votes, "expected_votes",
			 (int)c->expected_votes, "quorum", (int)c->quorum, "nodes", nodes, "note",
			 c->note ? c->note : "", "absorb", c->absorb ? c->absorb : "", "timeouts",
			 c->timeouts ? c->timeouts : "");
}

static void print_cluster(const Hagent__Response *resp)
{
	const Hagent__ClusterInfo *c = resp->cluster;
	size_t i;

	printf("Cluster %s: %s, votes %u of expected %u (quorum %u)\n", c->name,
	       c->quorate ? "quorate" : "NOT QUORATE", c->votes, c->expected_votes, c->quorum);
	if (c->note && c->note[0])
		printf("Recovery: %s\n", c->note);
	if (c->absorb && c->absorb[0])
		printf("Absorb loss of a host: %s\n", c->absorb);
	if (c->timeouts && c->timeouts[0])
		printf("Timeouts: %s\n", c->timeouts);
	printf("%-16s %5s  %-13s %-19s %s\n", "Node", "Id", "Guest memory", "Fencing", "State");
	for (i = 0; i < c->n_nodes; i++) {
		const Hagent__NodeInfo *n = c->nodes[i];
		char mem[32];
		if (n->capacity_mb)
			snprintf(mem, sizeof(mem), "%llu/%llu MiB", (unsigned long long)n->used_mb,
				 (unsigned long long)n->capacity_mb);
		else
			snprintf(mem, sizeof(mem), "%llu MiB", (unsigned long long)n->used_mb);
		printf("%-16s %5u  %-13s %-19s %s%s%s%s%s\n", n->name, n->id, mem,
		       n->fencing ? n->fencing : "", n->member ? "member" : "lost",
		       n->member ? (n->hagentd ? ", hagentd up" : ", hagentd DOWN") : "",
		       n->mode && strcmp(n->mode, "online") ? ", " : "",
		       n->mode && strcmp(n->mode, "online") ? n->mode : "",
		       n->local ? " (this host)" : "");
	}
	for (i = 0; i < c->n_nodes; i++)
		if (c->nodes[i]->evacuation && c->nodes[i]->evacuation[0])
			printf("Evacuation of %s: %s\n", c->nodes[i]->name, c->nodes[i]->evacuation);
	for (i = 0; i < c->n_nodes; i++)
		print_storage(c->nodes[i]);
	printf("\n");
}

static void format_uptime(int64_t started, char *buf, size_t len)
{
	long s = started ? (long)(time(NULL) - started) : -1;

	if (s < 0)
		snprintf(buf, len, "-");
	else if (s < 86400)
		snprintf(buf, len, "%02ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%ldd %02ld:%02ld", s / 86400, s / 3600 % 24, s / 60 % 60);
}

void output_guests(struct hactl *h, Hagent__Response *resp, bool status)
{
	size_t i, w = 4;

	if (h->json) {
		json_t *arr = json_array(), *root;
		char *s;
		for (i = 0; i < resp->n_guests; i++)
			json_array_append_new(arr, guest_json(resp->guests[i]));
		root = json_pack("{s:s, s:o}", "node", resp->node, "guests", arr);
		if (status && resp->cluster)
			json_object_set_new(root, "cluster", cluster_json(resp->cluster));
		s = json_dumps(root, JSON_INDENT(2));
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(root);
		return;
	}
	if (status && resp->cluster)
		print_cluster(resp);
	else if (status)
		printf("Node %s: single host (no corosync), %zu guest%s\n\n", resp->node,
		       resp->n_guests, resp->n_guests == 1 ? "" : "s");
	for (i = 0; i < resp->n_guests; i++)
		if (strlen(resp->guests[i]->name) > w)
			w = strlen(resp->guests[i]->name);
	printf("%-*s %-12s %-11s %8s %5s %10s\n", (int)w, "Name", "Node", "State", "Mem(MiB)",
	       "VCPUs", "Uptime");
	for (i = 0; i < resp->n_guests; i++) {
		const Hagent__GuestInfo *g = resp->guests[i];
		char up[32];
		format_uptime(g->started_at, up, sizeof(up));
		printf("%-*s %-12s %-11s %8llu %5u %10s", (int)w, g->name, g->node, g->state,
		       (unsigned long long)g->memory_mib, g->vcpus, up);
		if (g->reason && g->reason[0] &&
		    (!strcmp(g->state, "failed") || !strcmp(g->state, "preserved") || status))
			printf("  (%s)", g->reason);
		printf("\n");
	}
	for (i = 0; status && i < resp->n_guests; i++) {
		const Hagent__MigInfo *m = resp->guests[i]->migration;
		if (!m)
			continue;
		if (m->job[0])
			printf("Migrating %s: %s -> %s, %s (QEMU %s), %.0f/%.0f MiB sent, %.1f MiB/s, "
			       "dirty %llu pages/s, %llu s\n", resp->guests[i]->name, m->src, m->dst,
			       m->phase, m->status[0] ? m->status : "-",
			       (double)m->transferred_bytes / 1048576.0,
			       (double)m->total_bytes / 1048576.0, (double)m->rate_bps / 1048576.0,
			       (unsigned long long)m->dirty_rate,
			       (unsigned long long)(m->elapsed_ms / 1000));
		else if (m->last[0])
			printf("Last migration of %s: %s\n", resp->guests[i]->name, m->last);
	}
}

void output_event(struct hactl *h, const Hagent__Event *ev)
{
	time_t t = (time_t)(ev->time_us / 1000000);
	struct tm tm;
	char ts[32];

	if (h->json) {
		json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "time_us",
				      (json_int_t)ev->time_us, "guest", ev->guest, "from", ev->from,
				      "to", ev->to, "cause", ev->cause, "node", ev->node);
		char *s = json_dumps(o, JSON_COMPACT);
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		localtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		if (!ev->guest[0])
			printf("%s.%03d node %s: %s -> %s (%s)\n", ts,
			       (int)(ev->time_us / 1000 % 1000), ev->node, ev->from, ev->to, ev->cause);
		else
			printf("%s.%03d %s %s: %s -> %s (%s)\n", ts, (int)(ev->time_us / 1000 % 1000),
			       ev->node, ev->guest, ev->from, ev->to, ev->cause);
	}
	fflush(stdout);
}

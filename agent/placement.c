#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cluster.h"
#include "agent/guests.h"
#include "agent/placement.h"
#include "agent/registry.h"

/* The members as placement sees them: capacity and what is placed there. */
struct pnode {
	const char *name;
	uint32_t id;
	uint64_t cap_mb;   /* 0 = not announced: no limit known */
	uint64_t used_mb;
	int n_guests;
};

struct pview {
	struct pnode n[CLUSTER_MAX_NODES];
	int count;
};

static uint64_t mem_of(const struct guest *g)
{
	return g->cfg.memory_mib > 0 ? (uint64_t)g->cfg.memory_mib : 0;
}

/* Counts against its owner: meant to run there and not reported failed. */
static bool placed(const struct guest *g)
{
	return !g->orphan && g->owner[0] && g->desired == DESIRED_RUNNING && !g->reg_failed;
}

static struct pnode *view_find(struct pview *v, const char *name)
{
	int i;

	for (i = 0; i < v->count; i++)
		if (!strcmp(v->n[i].name, name))
			return &v->n[i];
	return NULL;
}

static void view_build(struct hagentd *d, struct pview *v)
{
	uint32_t ids[CLUSTER_MAX_NODES];
	size_t i, n = registry_member_ids(d, ids, CLUSTER_MAX_NODES);
	struct guest *g;

	v->count = 0;
	for (i = 0; i < n; i++) {
		const char *name = cluster_node_name(d, ids[i]);
		if (!name || registry_node_standby(d, name))
			continue; /* in standby: takes no guest */
		v->n[v->count++] = (struct pnode){ .name = name, .id = ids[i],
						   .cap_mb = registry_node_capacity(d, ids[i]) };
	}
	guests_for_each(g, d) {
		struct pnode *p;
		if (!placed(g) || !(p = view_find(v, g->owner)))
			continue;
		p->used_mb += mem_of(g);
		p->n_guests++;
	}
}

static bool room(const struct pnode *p, const struct guest *g)
{
	uint64_t used = p->used_mb;

	if (placed(g) && !strcmp(g->owner, p->name))
		used -= mem_of(g); /* already counted there */
	return !p->cap_mb || used + mem_of(g) <= p->cap_mb;
}

static bool spent_on(const struct guest *g, const char *node)
{
	size_t n = strlen(node);
	const char *p = g->spent_on;

	while ((p = strstr(p, node)) != NULL) {
		if ((p == g->spent_on || p[-1] == ',') && p[n] == ',')
			return true;
		p++;
	}
	return false;
}

void placement_mark_spent(struct guest *g, const char *node)
{
	size_t n = strlen(g->spent_on);

	if (!spent_on(g, node) && n + strlen(node) + 2 <= sizeof(g->spent_on))
		snprintf(g->spent_on + n, sizeof(g->spent_on) - n, "%s,", node);
}

static void free_list(const struct pview *v, char *out, size_t len)
{
	size_t n = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < v->count && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s: %" PRIu64 " of %" PRIu64 " MiB free",
				      i ? ", " : "", v->n[i].name,
				      v->n[i].cap_mb > v->n[i].used_mb ? v->n[i].cap_mb - v->n[i].used_mb : 0,
				      v->n[i].cap_mb);
}

/* Does the host's own storage report keep g off it? */
static bool storage_bars(struct hagentd *d, const struct guest *g, const struct pnode *p,
			 char *stor_why, size_t len)
{
	char r[256];

	if (!registry_storage_unusable(d, p->name, g->cfg.name, r, sizeof(r)))
		return false;
	if (!stor_why[0])
		snprintf(stor_why, len, "%s: %s", p->name, r);
	return true;
}

static struct pnode *choose(struct hagentd *d, struct pview *v, struct guest *g,
			    struct guest_cfg *cfg, const char *exclude, bool skip_spent, char *why,
			    size_t whylen)
{
	struct pnode *best = NULL;
	bool any_up = false, any_spent = false;
	char stor_why[320] = "";
	int i, k;

	if (cfg && cfg->n_ha_nodes > 0) {
		for (k = 0; k < cfg->n_ha_nodes; k++) {
			struct pnode *p = view_find(v, cfg->ha_nodes[k]);
			if (!p || (exclude && !strcmp(p->name, exclude)))
				continue;
			if (skip_spent && spent_on(g, p->name)) {
				any_spent = true;
				continue;
			}
			any_up = true;
			if (storage_bars(d, g, p, stor_why, sizeof(stor_why)))
				continue;
			if (room(p, g))
				return p;
		}
	} else {
		for (i = 0; i < v->count; i++) {
			struct pnode *p = &v->n[i];
			if (exclude && !strcmp(p->name, exclude))
				continue;
			if (skip_spent && spent_on(g, p->name)) {
				any_spent = true;
				continue;
			}
			any_up = true;
			if (storage_bars(d, g, p, stor_why, sizeof(stor_why)) || !room(p, g))
				continue;
			if (!best || p->n_guests < best->n_guests ||
			    (p->n_guests == best->n_guests && p->id < best->id))
				best = p;
		}
		if (best)
			return best;
	}
	if (why && !any_up && any_spent) {
		size_t n = strlen(g->spent_on);
		snprintf(why, whylen, "it has spent its restart budget on every allowed host up (%.*s)",
			 (int)(n ? n - 1 : 0), g->spent_on);
	} else if (why && !any_up) {
		snprintf(why, whylen, "%s", cfg && cfg->n_ha_nodes ? "none of its ha_nodes is up"
							      : "no other host is up");
	} else if (why && stor_why[0]) {
		snprintf(why, whylen, "no host up has usable storage and room for it (%s)", stor_why);
	} else if (why) {
		char list[512];
		free_list(v, list, sizeof(list));
		snprintf(why, whylen, "no host has %" PRIu64 " MiB free for it (%s)", mem_of(g), list);
	}
	return NULL;
}

const char *placement_choose(struct hagentd *d, struct guest *g, const char *exclude,
			     bool skip_spent, char *why, size_t whylen)
{
	struct pview *v = calloc(1, sizeof(*v));
	struct guest_cfg *cfg = guests_load_cfg(g);
	struct pnode *p = NULL;
	const char *name = NULL;

	if (v) {
		view_build(d, v);
		p = choose(d, v, g, cfg, exclude, skip_spent, why, whylen);
		name = p ? p->name : NULL;
	} else if (why) {
		snprintf(why, whylen, "out of memory");
	}
	free(cfg);
	free(v);
	return name; /* points into the cluster's node table */
}

bool placement_fits(struct hagentd *d, struct guest *g, const char *node, char *why,
		    size_t whylen)
{
	struct pview *v = calloc(1, sizeof(*v));
	struct pnode *p;
	bool ok = false;
	char r[256];

	if (!v) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	view_build(d, v);
	p = view_find(v, node);
	if (!p && registry_node_standby(d, node))
		snprintf(why, whylen, "%s is in standby (hactl node online %s)", node, node);
	else if (!p)
		snprintf(why, whylen, "the hagentd of %s is not in the cluster now", node);
	else if (registry_storage_unusable(d, node, g->cfg.name, r, sizeof(r)))
		snprintf(why, whylen, "its storage is not usable on %s: %s", node, r);
	else if (!(ok = room(p, g)))
		snprintf(why, whylen, "%s has %" PRIu64 " of %" PRIu64 " MiB free; %s needs %" PRIu64
			 " MiB", node, p->cap_mb > p->used_mb ? p->cap_mb - p->used_mb : 0, p->cap_mb,
			 g->cfg.name, mem_of(g));
	free(v);
	return ok;
}

uint64_t placement_used_mb(struct hagentd *d, const char *node)
{
	struct guest *g;
	uint64_t mb = 0;

	guests_for_each(g, d)
		if (placed(g) && !strcmp(g->owner, node))
			mb += mem_of(g);
	return mb;
}

int placement_order(const void *a, const void *b)
{
	const struct guest *x = *(struct guest *const *)a, *y = *(struct guest *const *)b;

	if (x->cfg.ha_priority != y->cfg.ha_priority)
		return x->cfg.ha_priority > y->cfg.ha_priority ? -1 : 1;
	return strcmp(x->cfg.name, y->cfg.name);
}

/* Place the lost host's guests on the others, highest priority first, as
 * recovery would; the first that fits nowhere is named in why. */
static bool absorbs(struct hagentd *d, const struct pview *base, const char *lost, char *why,
		    size_t whylen)
{
	struct pview *v = malloc(sizeof(*v));
	struct guest **list = calloc((size_t)d->n_guests + 1, sizeof(*list));
	struct guest *g;
	size_t n = 0, i;
	bool ok = v && list;

	if (ok) {
		*v = *base;
		guests_for_each(g, d)
			if (placed(g) && !strcmp(g->owner, lost))
				list[n++] = g;
		qsort(list, n, sizeof(*list), placement_order);
	}
	for (i = 0; ok && i < n; i++) {
		struct guest_cfg *cfg = guests_load_cfg(list[i]);
		struct pnode *p = choose(d, v, list[i], cfg, lost, false, NULL, 0);
		free(cfg);
		if (!p) {
			snprintf(why, whylen, "%s (%ld MiB) would fit nowhere", list[i]->cfg.name,
				 list[i]->cfg.memory_mib);
			ok = false;
			break;
		}
		p->used_mb += mem_of(list[i]);
		p->n_guests++;
	}
	free(list);
	free(v);
	return ok;
}

void placement_absorb(struct hagentd *d, char *out, size_t len)
{
	struct pview *v = calloc(1, sizeof(*v));
	const struct pnode *largest = NULL;
	char why[256] = "";
	int i;

	if (!v) {
		snprintf(out, len, "unknown (out of memory)");
		return;
	}
	view_build(d, v);
	for (i = 0; i < v->count; i++)
		if (!largest || v->n[i].used_mb > largest->used_mb)
			largest = &v->n[i];
	if (!largest || !largest->n_guests) {
		snprintf(out, len, "yes: no host runs guests");
	} else if (!absorbs(d, v, largest->name, why, sizeof(why))) {
		snprintf(out, len, "NO: if %s (%" PRIu64 " MiB of guests) is lost, %s", largest->name,
			 largest->used_mb, why);
	} else {
		for (i = 0; i < v->count; i++)
			if (v->n[i].n_guests && !absorbs(d, v, v->n[i].name, why, sizeof(why)))
				break;
		if (i < v->count)
			snprintf(out, len, "NO: if %s (%" PRIu64 " MiB of guests) is lost, %s",
				 v->n[i].name, v->n[i].used_mb, why);
		else
			snprintf(out, len, "yes: the loss of its largest host, %s (%" PRIu64
				 " MiB of guests), or of any other", largest->name, largest->used_mb);
	}
	free(v);
}

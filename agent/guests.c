#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/guests.h"

struct guest *guests_new(struct hagentd *d, const char *text, size_t len, const char *source,
			 struct guestcfg_diags *diags)
{
	struct guest *g = calloc(1, sizeof(*g));

	if (!g) {
		guestcfg_diag_add(diags, DIAG_ERROR, 0, NULL, "out of memory");
		return NULL;
	}
	if (guestcfg_parse(text, len, source, &g->cfg, diags) < 0)
		goto fail;
	g->ops = driver_lookup(g->cfg.driver);
	if (!g->ops) {
		guestcfg_diag_add(diags, DIAG_ERROR, 0, "ha_driver",
				  "driver '%s' is not available on host %s", g->cfg.driver,
				  d->conf.node_name);
		goto fail;
	}
	if (g->ops->check && g->ops->check(&g->cfg, diags) < 0)
		goto fail;
	g->text = malloc(len + 1);
	if (!g->text)
		goto fail;
	memcpy(g->text, text, len);
	g->text[len] = '\0';
	g->text_len = len;
	g->d = d;
	g->maxmem_mib = g->cfg.maxmem_mib;
	g->mem_target_mib = g->cfg.memory_mib;
	qb_list_init(&g->list);
	return g;
fail:
	free(g);
	return NULL;
}

void guests_free(struct guest *g)
{
	if (!g)
		return;
	free(g->text);
	free(g);
}

void guests_insert(struct hagentd *d, struct guest *g)
{
	qb_list_add_tail(&g->list, &d->guests);
	d->n_guests++;
}

void guests_unlink(struct hagentd *d, struct guest *g)
{
	qb_list_del(&g->list);
	d->n_guests--;
}

struct guest *guests_find(struct hagentd *d, const char *name)
{
	struct guest *g;

	guests_for_each(g, d)
		if (!strcmp(g->cfg.name, name))
			return g;
	return NULL;
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/guests.h"
#include "agent/storage.h"

static void brief_from(struct guest_brief *b, const struct guest_cfg *c)
{
	memcpy(b->name, c->name, sizeof(b->name));
	memcpy(b->source, c->source, sizeof(b->source));
	memcpy(b->driver, c->driver, sizeof(b->driver));
	b->memory_mib = c->memory_mib;
	b->maxmem_mib = c->maxmem_mib;
	b->vcpus = c->vcpus;
	b->on_poweroff = c->on_poweroff;
	b->on_reboot = c->on_reboot;
	b->on_crash = c->on_crash;
	b->on_watchdog = c->on_watchdog;
	b->ha_restart_max = c->ha_restart_max;
	b->ha_restart_window_s = c->ha_restart_window_s;
	b->ha_priority = c->ha_priority;
	b->migrate_downtime_ms = c->ha_migrate_downtime_ms;
	b->migrate_auto_converge = c->ha_migrate_auto_converge;
	b->migrate_bandwidth_mib = c->ha_migrate_bandwidth_mib;
	b->managed_by_pacemaker = !strcmp(c->ha_managed_by, "pacemaker");
}

struct guest *guests_new(struct hagentd *d, const char *text, size_t len, const char *source,
			 struct guestcfg_diags *diags)
{
	struct guest *g = calloc(1, sizeof(*g));
	struct guest_cfg *cfg = calloc(1, sizeof(*cfg));

	if (!g || !cfg) {
		guestcfg_diag_add(diags, DIAG_ERROR, 0, NULL, "out of memory");
		goto fail;
	}
	if (guestcfg_parse(text, len, source, cfg, diags) < 0)
		goto fail;
	g->ops = driver_lookup(cfg->driver);
	if (!g->ops) {
		guestcfg_diag_add(diags, DIAG_ERROR, 0, "ha_driver",
				  "driver '%s' is not available on host %s", cfg->driver,
				  d->conf.node_name);
		goto fail;
	}
	if (g->ops->check && g->ops->check(cfg, diags) < 0)
		goto fail;
	g->text = malloc(len + 1);
	if (!g->text)
		goto fail;
	memcpy(g->text, text, len);
	g->text[len] = '\0';
	g->text_len = len;
	g->d = d;
	brief_from(&g->cfg, cfg);
	g->maxmem_mib = cfg->maxmem_mib;
	g->mem_target_mib = cfg->memory_mib;
	qb_list_init(&g->list);
	free(cfg);
	return g;
fail:
	free(cfg);
	free(g);
	return NULL;
}

struct guest_cfg *guests_load_cfg(const struct guest *g)
{
	struct guestcfg_diags *diags = calloc(1, sizeof(*diags));
	struct guest_cfg *cfg = calloc(1, sizeof(*cfg));

	/* The text parsed when it was added: this cannot fail but for memory
	 * (a kept renamed instance has none). */
	if (!diags || !cfg || !g->text ||
	    guestcfg_parse(g->text, g->text_len, g->cfg.source, cfg, diags) < 0) {
		free(cfg);
		cfg = NULL;
	}
	free(diags);
	return cfg;
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
	storage_guests_changed(d);
}

void guests_unlink(struct hagentd *d, struct guest *g)
{
	qb_list_del(&g->list);
	d->n_guests--;
	storage_guests_changed(d);
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

bool guest_is_local(const struct guest *g)
{
	return !g->owner[0] || !strcmp(g->owner, g->d->conf.node_name);
}

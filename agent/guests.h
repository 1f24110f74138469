/* The table of defined guests of this host. */
#ifndef HAGENT_GUESTS_H
#define HAGENT_GUESTS_H

#include "agent/hagentd.h"

/* Parse a guest file, resolve its driver and let the driver check it.
 * Returns a new guest (not yet in the table) or NULL with diags filled. */
struct guest *guests_new(struct hagentd *d, const char *text, size_t len, const char *source,
			 struct guestcfg_diags *diags);
void guests_free(struct guest *g);
/* The full parsed definition, for a driver call; free() it after. */
struct guest_cfg *guests_load_cfg(const struct guest *g);
void guests_insert(struct hagentd *d, struct guest *g);
void guests_unlink(struct hagentd *d, struct guest *g);
struct guest *guests_find(struct hagentd *d, const char *name);

#define guests_for_each(g, d) qb_list_for_each_entry(g, &(d)->guests, list)

#endif

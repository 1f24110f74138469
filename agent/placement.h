/* Placement: which host runs a guest.  Computed from the registry alone (the
 * table, the ordered CPG membership and each member's announced memory), so
 * every member reaches the same answer for the same change. */
#ifndef HAGENT_PLACEMENT_H
#define HAGENT_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/hagentd.h"

/* A host for g: its ha_nodes in order, else the member with the fewest
 * guests (lowest node id on a tie), among members with room for its memory.
 * Never `exclude`, nor (with skip_spent) a host that spent its restart
 * budget.  NULL with why filled when none can take it. */
const char *placement_choose(struct hagentd *d, struct guest *g, const char *exclude,
			     bool skip_spent, char *why, size_t whylen);
/* Can node (a member) take g now?  false with why. */
bool placement_fits(struct hagentd *d, struct guest *g, const char *node, char *why,
		    size_t whylen);
/* Memory of the guests node should run (MiB). */
uint64_t placement_used_mb(struct hagentd *d, const char *node);
/* Could the members absorb the loss of the host with the most guest memory
 * (and of every other)?  One line for hactl status. */
void placement_absorb(struct hagentd *d, char *out, size_t len);
/* Remember that g spent its restart budget on node. */
void placement_mark_spent(struct guest *g, const char *node);
/* Compare guests for recovery order: higher ha_priority first, then name. */
int placement_order(const void *a, const void *b);

#endif

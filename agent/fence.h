/* Fencing a lost node with a fence agent (the fence-agents stdin protocol:
 * "key=value" lines on stdin, exit 0 on success), in a child process with a
 * deadline, one at a time per node. */
#ifndef HAGENT_FENCE_H
#define HAGENT_FENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/hagentd.h"

typedef void (*fence_done_fn)(struct hagentd *d, const char *node, bool ok, const char *why);

/* Start fencing node with agent unless it is already being (or was just)
 * fenced; the agent gets fence_timeout seconds. */
void fence_node(struct hagentd *d, const char *node, const char *agent, const char *args,
		fence_done_fn done);
/* A node without an agent that announced a watchdog: it counts as fenced
 * once wait_ms have passed with it still out of the membership. */
void fence_wait_watchdog(struct hagentd *d, const char *node, uint64_t wait_ms,
			 fence_done_fn done);
/* Is node being fenced now (since when, by waiting out its watchdog)? */
bool fence_in_progress(struct hagentd *d, const char *node, uint64_t *since_ms, bool *watchdog);
/* The node's recovery was applied: a later loss fences it again. */
void fence_forget(struct hagentd *d, const char *node);
void fence_shutdown(struct hagentd *d);

#endif

/* Fencing a lost node with a fence agent (the fence-agents stdin protocol:
 * "key=value" lines on stdin, exit 0 on success), in a child process with a
 * deadline, one at a time per node. */
#ifndef HAGENT_FENCE_H
#define HAGENT_FENCE_H

#include <stdbool.h>

#include "agent/hagentd.h"

typedef void (*fence_done_fn)(struct hagentd *d, const char *node, bool ok, const char *why);

/* Start fencing node unless it is already being (or was just) fenced. */
void fence_node(struct hagentd *d, const char *node, fence_done_fn done);
/* The node's recovery was applied: a later loss fences it again. */
void fence_forget(struct hagentd *d, const char *node);
void fence_shutdown(struct hagentd *d);

#endif

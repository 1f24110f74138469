/* The control socket RUN_DIR/hagentd.sock: framed protobuf requests from
 * hactl, answered in order; `events` subscribers get every transition. */
#ifndef HAGENT_CONTROL_H
#define HAGENT_CONTROL_H

#include "agent/hagentd.h"

int control_listen(struct hagentd *d);
void control_close(struct hagentd *d);
/* A guest changed state: tell subscribers and wake waiting requests. */
void events_publish(struct hagentd *d, struct guest *g, enum gstate from, enum gstate to,
		    const char *cause);

/* A cluster node changed (member, lost, fenced): an event with no guest. */
void events_publish_node(struct hagentd *d, const char *node, const char *from, const char *to,
			 const char *cause);

/* Anything else (a migration's phases): an event as given. */
void events_publish_raw(struct hagentd *d, const char *guest, const char *node, const char *from,
			const char *to, const char *cause);

#endif

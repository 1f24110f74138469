/* hactl node standby|online (migrate/evacuate.c). */
#ifndef HAGENT_MIGRATE_EVACUATE_H
#define HAGENT_MIGRATE_EVACUATE_H

#include "agent/hagentd.h"
#include "proto/hagent.pb-c.h"

struct conn;

/* This host went into standby: migrate its guests away, one at a time. */
void evacuate_begin(struct hagentd *d);
/* Back online: no further guest is moved. */
void evacuate_cancel(struct hagentd *d);
/* A migration of this host's guest ended (committed, aborted or refused). */
void evacuate_job_ended(struct hagentd *d, const char *guest, bool moved, const char *why);

/* A job id: NODE-TIME-SEQ (migrate/job.c). */
void migrate_new_job_id(struct hagentd *d, char *out, size_t len);
/* Asks the cluster to migrate g to dst with its own tunables (a MIGRATE
 * change under a new job id; migrate/job.c): hagentd's own moves
 * (evacuation, failed storage).  -1 with errno when it cannot be sent. */
int migrate_request_own(struct hagentd *d, struct guest *g, const char *dst);

void evacuate_req_standby(struct conn *c, const Hagent__Request *req);
void evacuate_req_online(struct conn *c, const Hagent__Request *req);

#endif

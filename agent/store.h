/* Durable guest definitions and desired state under STATE_DIR/guests:
 * NAME.cfg is the guest file exactly as added, NAME.state holds what hagentd
 * decided about it (desired state, mem-max, failure).  Every write is atomic
 * (temp file, fsync, rename, fsync of the directory). */
#ifndef HAGENT_STORE_H
#define HAGENT_STORE_H

#include "agent/hagentd.h"

int store_init(struct hagentd *d);
int store_save_def(struct hagentd *d, const struct guest *g);
int store_save_state(struct hagentd *d, const struct guest *g);
int store_remove(struct hagentd *d, const char *name);
/* Load every stored guest into d->guests.  A stored file that no longer
 * parses is logged and left in place (never deleted), and skipped. */
int store_load_all(struct hagentd *d);

/* Tombstones of undefined guests (cluster registry). */
typedef void (*store_tomb_fn)(void *arg, const char *name, uint64_t gen);
int store_save_tomb(struct hagentd *d, const char *name, uint64_t gen);
int store_remove_tomb(struct hagentd *d, const char *name);
int store_save_standby(struct hagentd *d);
void store_load_standby(struct hagentd *d);
int store_load_tombs(struct hagentd *d, store_tomb_fn fn, void *arg);

#endif

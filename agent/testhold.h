/* Test holds: points in hagentd where a lab test may stop a step, so that a
 * fault can be injected at a precise point of a protocol (a migration
 * between "QEMU completed" and the commit, say) instead of being raced.
 *
 * Off unless hagentd runs with HAGENT_TEST_HOLD_DIR in its environment (the
 * lab sets it; nothing else should).  With it, a step that reaches point P
 * while the file $HAGENT_TEST_HOLD_DIR/P exists logs "test hold: P" once and
 * waits until the file is removed, then runs on.  The wait is a loop timer:
 * the daemon keeps serving everything else meanwhile. */
#ifndef HAGENT_AGENT_TESTHOLD_H
#define HAGENT_AGENT_TESTHOLD_H

#include <stdbool.h>
#include <qb/qbloop.h>

/* Is point held?  Then fn(arg) runs once it is released (from the loop) and
 * true is returned; else false, and the caller goes on at once (fn is not
 * called).  The caller makes arg safe to use later (a ticket, not a pointer
 * into something that may be freed meanwhile); free_arg (may be NULL) runs
 * after fn, or if the hold cannot be set up (then fn runs at once). */
bool test_hold(qb_loop_t *loop, const char *point, const char *what, void (*fn)(void *arg),
	       void *arg, void (*free_arg)(void *arg));

#endif

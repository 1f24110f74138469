/* Watchdog self-fencing: for clusters without a fence device.  While this
 * host holds guests and is a member of the cluster, a watchdog device (the
 * kernel's softdog, or a hardware one) is open; hagentd feeds it only while
 * the partition is quorate.  A host that loses quorum, whose corosync dies or
 * whose hagentd hangs is therefore reset by the device within its timeout,
 * and the survivors may start its guests after TO_WATCHDOG_WAIT_MS
 * (agent/timeouts.h has the arithmetic). */
#ifndef HAGENT_WATCHDOG_H
#define HAGENT_WATCHDOG_H

#include <stddef.h>

#include "agent/hagentd.h"

/* Check and set up `watchdog` from hagent.conf (nothing when unset).  A
 * device that cannot be opened or given its timeout is an error: hagentd
 * refuses to start rather than run guests it cannot self-fence. */
int watchdog_start(struct hagentd *d, char *err, size_t errlen);
/* Before a guest starts: open the device (arming it) when this host is in a
 * cluster.  -1 with err when it cannot be armed. */
int watchdog_arm(struct hagentd *d, char *err, size_t errlen);
/* The timeout (s) this host promises to self-fence within; 0 = none. */
unsigned watchdog_timeout(struct hagentd *d);
bool watchdog_armed(struct hagentd *d);
/* At exit: disarm (magic close) only if no guest is held; otherwise leave it
 * running, so a host whose hagentd stays away is still reset in time. */
void watchdog_stop(struct hagentd *d);

#endif

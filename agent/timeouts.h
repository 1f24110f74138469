/* Every timer of hagentd, in one place, with where its value comes from.
 * (Cluster timeouts derived from corosync's token and consensus join these
 * when the cluster layer lands.) */
#ifndef HAGENT_TIMEOUTS_H
#define HAGENT_TIMEOUTS_H

/* Graceful stop: ACPI power button, then destroy.  xl's default for
 * `xl shutdown -w` is to wait indefinitely; an HA stack must not, and 60 s is
 * what Pacemaker's VirtualDomain gives a guest by default (stop timeout 90 s
 * minus margin).  `hactl stop --timeout S` overrides it per request. */
#define TO_STOP_DEFAULT_S 60

/* Destroy: QMP quit, then SIGKILL of QEMU's session after this long.  QEMU
 * exits from quit in well under 100 ms under TCG (LAB.md); 3 s covers a
 * loaded host. */
#define TO_DESTROY_KILL_MS 3000

/* Restart back-off after a crash: the first restart is immediate (a crash is
 * usually a one-off and the goal is < 30 ms overhead), then it doubles from
 * TO_BACKOFF_BASE_MS up to TO_BACKOFF_MAX_MS.  With the default budget of
 * 3 restarts in 600 s, the waits are 0, 500 ms, 1 s before the guest fails. */
#define TO_BACKOFF_BASE_MS 500
#define TO_BACKOFF_MAX_MS 30000

/* Defaults of the restart budget (ha_restart_max / ha_restart_window). */
#define RESTART_MAX_DEFAULT 3
#define RESTART_WINDOW_DEFAULT_S 600

/* A client waiting for a guest to reach a state ("hactl start") gets an
 * answer at the latest after this; QEMU under TCG starts in ~35 ms. */
#define TO_CLIENT_WAIT_S 30

/* systemd watchdog: notify at half of WatchdogSec (sd_watchdog_enabled). */

#endif

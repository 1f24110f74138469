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

/* Destroy: QMP quit, then SIGKILL of QEMU's process group after this long.
 * QEMU exits from quit in well under 100 ms under TCG (LAB.md) unless it is
 * wedged (e.g. stuck in I/O); 3 s covers a loaded host. */
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

/* --- cluster (agent/cluster.c) --- */

/* Without a reachable corosync, try again this often (a reconnect, not a
 * poll of any state): hagentd often starts a moment before corosync. */
#define TO_COROSYNC_RETRY_S 1

/* Fencing: a fence agent (e.g. an IPMI or PDU call) gets this long before it
 * is killed and counted as failed; fence_ipmilan's own default login and
 * power timeouts add up to about 20 s.  A failed fencing is retried after
 * TO_FENCE_RETRY_S; a lost node's guests never start before it succeeds. */
#define TO_FENCE_S 30
#define TO_FENCE_RETRY_S 5

/* --- QEMU driver (drivers/qemu.c) --- */

/* After QMP quit, how long QEMU gets before SIGKILL to its process group.
 * quit exits at once unless QEMU is wedged (e.g. stuck in I/O). */
#define QEMU_QUIT_GRACE_NS ((unsigned long long)TO_DESTROY_KILL_MS * 1000000ULL)
/* From start (or attach) to an answered query-status.  Measured about 30 ms
 * under TCG; the margin covers a loaded host.  A started QEMU that does not
 * answer by then is killed (EXIT says why); an attached one is reported as
 * PAUSED (its monitor may be held by another client). */
#define QEMU_HANDSHAKE_NS (30ULL * 1000000000ULL)
/* Every reset of a pc machine is followed by a second one: QEMU keeps the
 * shadowed BIOS in RAM across a reset, SeaBIOS finds it has already run POST
 * and reboots once more through the reset register ("guest-reset").  So a
 * guest reboot shows two or three RESET events within about 50-160 ms
 * (TCG), and a host system_reset one host RESET then one or two guest ones
 * once the guest runs.  A guest RESET this close to the previous reset (or
 * to the guest running again after a reset while stopped) is the same
 * reset.  Real guests take far longer than this to boot and reboot. */
#define QEMU_RESET_COLLAPSE_US 1000000
/* With on_reboot != restart QEMU runs with -action reboot=shutdown, which
 * turns *every* reset request, our own system_reset and the firmware's
 * follow-up included, into a paused SHUTDOWN.  reset() therefore switches
 * the reboot action to "reset" for the reset and switches it back once the
 * guest has run this long without another RESET. */
#define QEMU_RESET_SETTLE_NS (1000ULL * 1000000ULL)
/* systemd watchdog: notify at half of WatchdogSec (sd_watchdog_enabled). */

#endif

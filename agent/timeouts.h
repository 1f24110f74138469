/* Every timer of hagentd, in one place, with where its value comes from.
 * Cluster deadlines are derived from corosync's token and consensus. */
#ifndef HAGENT_TIMEOUTS_H
#define HAGENT_TIMEOUTS_H

/* Graceful stop: ACPI power button, then destroy.  xl's default for
 * `xl shutdown -w` is to wait indefinitely; an HA stack must not, and 60 s is
 * what Pacemaker's VirtualDomain gives a guest by default (stop timeout 90 s
 * minus margin).  `hactl stop --timeout S` overrides it per request. */
#define TO_STOP_DEFAULT_S 60

/* `hactl probe`: a monitor that answers query-status within this is
 * responsive.  QEMU answers in about a millisecond when idle; an incoming or
 * migrating QEMU can stay busy for seconds (LAB.md), so a monitor action
 * gives it 10 s unless the request says otherwise (hactl probe --timeout). */
#define TO_PROBE_DEFAULT_S 10

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

/* A storage job (agent/storage.c): each tool in it (lvchange, iscsiadm,
 * drbdadm) has STOR_TOOL_TIMEOUT_S (20 s, lib/storage_host.h); an iSCSI
 * activation is three of them (discovery, login, the LUN's disk appearing),
 * a DRBD one up to five.  This backstop covers two such disks. */
#define TO_STORAGE_JOB_S 120

/* Storage state (agent/storage_state.c) follows events (uevents, DRBD's
 * events2); triggers closer than the debounce make one probe (an LV
 * activation alone brings several uevents).  The backstop catches what no
 * event reports (a VG's metadata changed by another host), at the cost of
 * one lvs/drbdadm round a minute.  A drbdsetup events2 that ended is
 * started again after the retry. */
/* `hactl fence-peer` (DRBD's fence-peer handler) waits this long for the
 * peer's outdate or its fencing unless told otherwise: a fencing takes the
 * lost node's detection (token + consensus) plus its agent's run; DRBD's
 * own handler timeout should be longer still. */
#define TO_FENCE_PEER_S 90

#define TO_STORAGE_DEBOUNCE_MS 500
#define TO_STORAGE_REFRESH_S 60
#define TO_STORAGE_EVENTS_RETRY_S 10

/* --- cluster (agent/cluster.c) --- */

/* Without a reachable corosync, try again this often (a reconnect, not a
 * poll of any state): hagentd often starts a moment before corosync. */
#define TO_COROSYNC_RETRY_S 1

/* Corosync's own timers, read through cmap when hagentd joins (the
 * runtime.config.totem.* keys: effective values, token_coefficient applied):
 *   T = token      a member that has not passed the token for T ms is lost
 *                  (token + (nodes - 2) * token_coefficient; 1000 + 650 = 1650
 *                  ms for token 1000 on 3 nodes, 500 for token 500 and
 *                  coefficient 0);
 *   C = consensus  the survivors agree on the new membership within C ms
 *                  (default 1.2 T).
 * A lost host therefore shows up as a membership change after at most
 * D = T + C of its silence (measured on the lab, tests/bench/failover:
 * 3.53 s for T 1650 / C 1980, 1.07 s for T 500 / C 600).  Every cluster
 * deadline below is written in these terms; hactl status prints the values. */
#define TO_DETECT_MS(T, C) ((T) + (C))

/* Fencing: a fence agent (e.g. an IPMI or PDU call) gets fence_timeout
 * seconds (default below) before it is killed and counted as failed;
 * fence_ipmilan's own login and power timeouts add up to about 20 s.  A
 * failed fencing is retried after TO_FENCE_RETRY_S; a lost node's guests
 * never start before it succeeds. */
#define TO_FENCE_S 30
#define TO_FENCE_RETRY_S 5

/* Watchdog self-fencing (agent/watchdog.c).  A host with `watchdog` set opens
 * the device before it starts a guest and keeps it open while it holds any;
 * it writes a keepalive every K ms but only while its partition is quorate,
 * so a host that loses quorum, or whose hagentd hangs or dies, is reset by
 * the device W s after its last keepalive (unless hagentd destroyed all its
 * guests first, then it closes the device with the magic 'V').
 *   K = min(1000, W * 1000 / 4): four keepalives per period, so one late
 *       tick of a loaded host does not reset it.
 * The survivors start a watchdog-fenced host's guests only after
 *   WAIT = W * 1000 + C + K + TO_WATCHDOG_MARGIN_MS   after they saw it lost.
 * Why: let t0 be the last token both sides shared.  The survivors see the
 * loss at t_s >= t0 + T.  The lost host sees its own quorum loss no later
 * than t0 + T + C, and a keepalive already due then may still go out, one K
 * later at most; it is reset W s after that: by t0 + T + C + K + W <= t_s +
 * C + K + W.  The margin covers scheduling delays of that last keepalive
 * and of the device's timer.  (Default W = 10: WAIT = 13.98 s at token 1000
 * on 3 nodes; 7.98 s with the lab's W = 4.) */
#define TO_WATCHDOG_DEFAULT_S 10
#define TO_WATCHDOG_KICK_MS(W) ((W) * 1000 / 4 < 1000 ? (W) * 1000 / 4 : 1000)
#define TO_WATCHDOG_MARGIN_MS 1000
#define TO_WATCHDOG_WAIT_MS(W, C) \
	((W) * 1000 + (C) + TO_WATCHDOG_KICK_MS(W) + TO_WATCHDOG_MARGIN_MS)

/* Corosync's defaults, used when cmap does not answer (corosync.conf(5)). */
#define COROSYNC_TOKEN_DEFAULT_MS 3000
#define COROSYNC_CONSENSUS_DEFAULT_MS(T) ((T) * 12 / 10)

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

/* Live migration (migrate/job.c).  A job's default deadline covers a large
 * guest at a modest rate (8 GiB at 100 MiB/s is 80 s) several times over;
 * --timeout sets it per job.  The channel's connect and handshake are local
 * network round trips plus one TLS handshake: 10 s means the peer is wedged.
 * The source polls QEMU's figures twice a second and shares them with the
 * cluster once a second (one small CPG message). */
#define TO_MIGRATE_DEFAULT_S 600
#define TO_MIGRATE_CONNECT_MS 10000
#define TO_MIGRATE_HANDSHAKE_MS 10000
#define TO_MIGRATE_POLL_MS 500
#define TO_MIGRATE_PROGRESS_MS 1000

#endif

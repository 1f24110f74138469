#!/bin/bash
# Live migration on the lab (3 hosts, TLS channel with the lab's cluster key):
#   - mg1 moves n1 -> n2 with --wait: a new QEMU on n2, none left on n1, the
#     guest's heartbeat counter goes on (no reboot), every host agrees; and
#     back to n1 while the guest dirties 20 MiB/s;
#   - migrate-abort during a slow transfer: the guest runs on at the source,
#     the destination's incoming QEMU is gone;
#   - a hagentd (re)joining during a migration learns the job from the
#     members' tables: its status shows it and its migrate-abort works;
#   - --timeout expiry: the same, with the reason;
#   - the guest crashes on the source mid-transfer: the job is aborted, and
#     on_crash restarts it there;
#   - the destination's hagentd is killed mid-transfer: the job is aborted,
#     the guest runs on at the source, a new hagentd there kills the incoming
#     copy left behind;
#   - the destination's link fails mid-transfer (silent partition): the
#     same, and the cut-off destination destroys its incoming copy;
#   - the destination host is killed mid-transfer: the same;
#   - the source host is killed mid-transfer: it is fenced and the guest is
#     recovered on a survivor (booted anew: its memory was on the lost host);
#   - bad input: unknown guest or node, a guest that is not running, its own
#     host, a second migration while one runs: each a one-line error, the
#     guest undisturbed; garbage sent to a migration port is logged and
#     changes nothing.
# The dual-run checker samples every QEMU throughout; a second copy counts
# only while QEMU says it is running (an incoming QEMU waits paused).
LABTEST_NAME=migrate
. "$(dirname "$0")/labtest.sh"
export -f lab field
export LAB

lab up 3 >/dev/null || { echo "lab up failed"; exit 1; }
shared=$(lab dir)/shared
"$abs_top_srcdir/tests/lab/dualrun" --interval 10 --out "$LAB_DIR/dualrun.out" mg1 >/dev/null 2>&1 &
DUAL_PID=$!
printf 'name = "mg1"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 64\non_crash = "restart"\n' \
	"$shared" >"$shared/mg1.cfg"
lab exec n1 hactl add "$shared/mg1.cfg" >/dev/null
if lab exec n1 hactl start mg1 n1 >/dev/null; then ok "mg1 started on n1"; else bad "mg1 started on n1"; exit 1; fi

G=mg1
. "$(dirname "$0")/guestutil.sh"
no_qemu_on() { ! lab exec "$1" test -e /run/hagent/mg1.pid; }

check "mg1 heartbeats on n1" until_true 20 hb_above n1 5
before=$(last_hb n1)
p1=$(qemu_pid n1)

# --- n1 -> n2, waiting
out=$(lab exec n3 hactl migrate mg1 n2 --wait 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "hactl migrate mg1 n2 --wait exits 0" test "$rc" = 0
check "it reports the move" grep -q "mg1: migrated from n1 to n2 in [0-9]* ms" <<<"$out"
check "every host shows mg1 running on n2" until_true 10 runs_on n2
check "a QEMU of mg1 runs on n2" test -n "$(qemu_pid n2)"
check "none is left on n1" until_true 10 no_qemu_on n1
check "the guest kept counting: heartbeat on n2 goes past $before (no reboot)" \
	until_true 10 hb_above n2 "$before"
check "n2's console log has no boot line (it did not boot there)" \
	bash -c "! lab exec n2 grep -q 'TESTGUEST boot' /run/hagent/mg1.console.log"
check "status tells the last migration" status_has n1 "Last migration of mg1: migrated from n1 to n2"

# --- n2 -> n1 while the guest dirties memory
check "mg1 dirties 20 MiB/s" guest_cmd n2 $'d20\n' "TESTGUEST dirty 20"
out=$(lab exec n1 hactl migrate mg1 n1 --auto-converge --wait 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "back to n1 under a dirtying guest" test "$rc" = 0
check "with auto-converge on n2's QEMU" grep -q "guest mg1: migrating out (.*auto-converge)" "$LAB_DIR/n2/hagentd.log"
check "and without it on n1's, where it was not asked for" bash -c \
	"grep -q 'guest mg1: migrating out (' $LAB_DIR/n1/hagentd.log && ! grep -q 'guest mg1: migrating out (.*auto-converge' $LAB_DIR/n1/hagentd.log"
check "every host shows mg1 running on n1" until_true 10 runs_on n1
check "none is left on n2" until_true 10 no_qemu_on n2
check "its QEMU on n1 is a new process" test "$(qemu_pid n1)" != "$p1"

# --- bad input
expect_err() { # description pattern command...
	local d=$1 p=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	echo "# $* -> exit $rc: $out"
	check "$d" bash -c "[ $rc -ne 0 ] && grep -q -- \"\$1\" <<<\"\$2\"" _ "$p" "$out"
}
expect_err "unknown guest" "unknown guest 'nope'" lab exec n1 hactl migrate nope n2
expect_err "unknown node" "unknown node 'n9'" lab exec n1 hactl migrate mg1 n9
expect_err "to the host it runs on" "mg1 already runs on n1" lab exec n2 hactl migrate mg1 n1
expect_err "bad --bandwidth" "expects a number" lab exec n1 hactl migrate mg1 n2 --bandwidth x
printf 'name = "idle"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 16\n' "$shared" >"$shared/idle.cfg"
lab exec n1 hactl add "$shared/idle.cfg" >/dev/null
expect_err "a stopped guest" "idle is not running" lab exec n1 hactl migrate idle n2
printf 'name = "pm"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 16\nha_managed_by = "pacemaker"\n' \
	"$shared" >"$shared/pm.cfg"
lab exec n1 hactl add "$shared/pm.cfg" >/dev/null
expect_err "a guest Pacemaker manages" "pm is managed by Pacemaker: move it with crm_resource --move" \
	lab exec n2 hactl migrate pm n3
expect_err "abort without a migration" "mg1 is not migrating" lab exec n1 hactl migrate-abort mg1
# garbage on n2's migration port
lab exec n1 bash -c 'printf "GET / HTTP/1.0\r\n\r\n" >/dev/tcp/192.0.2.12/7800' 2>/dev/null
check "n2 logs the garbage peer" until_true 10 grep -q "migration channel: peer" "$LAB_DIR/n2/hagentd.log"
check "mg1 still runs on n1" runs_on n1

# --- abort mid-transfer (1 MiB/s: a 64 MiB guest takes a minute)
check "a slow migration starts" lab exec n1 hactl migrate mg1 n2 --bandwidth 1
check "it reaches transfer" until_true 20 status_has n3 "Migrating mg1: n1 -> n2, transfer"
expect_err "a second migration is refused" "mg1 is already migrating" lab exec n3 hactl migrate mg1 n3
check "an incoming QEMU waits on n2" lab exec n2 test -e /run/hagent/mg1.in.pid
check "migrate-abort" lab exec n2 hactl migrate-abort mg1
check "status says aborted by the user" until_true 10 status_has n1 "aborted: aborted by the user"
check "mg1 runs on n1" until_true 10 runs_on n1
check "n2's incoming QEMU is gone" until_true 15 no_qemu_on n2
h=$(last_hb n1)
check "mg1 keeps heartbeating on n1" until_true 10 hb_above n1 "$h"

# --- a hagentd that joins during a migration learns the job from the tables
check "a slow migration to n2" lab exec n1 hactl migrate mg1 n2 --bandwidth 1
check "it reaches transfer" until_true 20 status_has n1 "Migrating mg1: n1 -> n2, transfer"
kill -9 "$(cat "$LAB_DIR/n3/hagentd.pid")"
check "n3's hagentd is gone from the group" until_true 20 bash -c "lab exec n1 hactl status | grep -q 'hagentd DOWN'"
lab exec n3 sh -c "setsid hagentd -f -d -c /etc/hagent/hagent.conf >>$LAB_DIR/n3/hagentd.log 2>&1 &"
check "n3's hagentd is back in the group" until_true 20 bash -c "! lab exec n1 hactl status | grep -q 'hagentd DOWN'"
check "the new hagentd on n3 shows the running job" until_true 10 status_has n3 "Migrating mg1: n1 -> n2, transfer"
check "and can abort it" lab exec n3 hactl migrate-abort mg1
check "n1 says aborted by the user" until_true 10 status_has n1 "aborted: aborted by the user"
check "mg1 runs on n1" until_true 10 runs_on n1
check "n2's incoming QEMU is gone" until_true 15 no_qemu_on n2

# --- timeout
out=$(lab exec n1 hactl migrate mg1 n3 --bandwidth 1 --timeout 3 --wait 2>&1)
rc=$?
echo "# $out"
check "--timeout 3 fails the migration" test "$rc" -ne 0
check "... saying it timed out" grep -q "timed out after 3 s" <<<"$out"
check "mg1 runs on n1" until_true 10 runs_on n1
check "n3's incoming QEMU is gone" until_true 15 no_qemu_on n3

# --- the guest crashes on the source mid-transfer: on_crash restarts it there
check "a slow migration to n3" lab exec n1 hactl migrate mg1 n3 --bandwidth 1
check "it reaches transfer" until_true 20 status_has n1 "Migrating mg1: n1 -> n3, transfer"
p=$(qemu_pid n1)
check "mg1 panics" guest_cmd n1 p "TESTGUEST panic"
check "the job is aborted" until_true 20 status_has n1 "Last migration of mg1: migration .* to n3 aborted"
lab exec n1 hactl status | grep "^Last migration" | sed 's/^/# /'
check "mg1 runs again on n1, in a new QEMU" until_true 20 bash -c \
	"runs_on n1 && [ \"\$(lab exec n1 cat /run/hagent/mg1.pid)\" != $p ]"
check "n3's incoming copy is gone" until_true 15 bash -c "! lab exec n3 test -e /run/hagent/mg1.in.pid"
check "mg1 dirties again (a fresh boot)" guest_cmd n1 $'d20\n' "TESTGUEST dirty 20"

# --- the destination's hagentd dies mid-transfer (kill -9), then comes back
check "a slow migration to n2" lab exec n1 hactl migrate mg1 n2 --bandwidth 1
check "it reaches transfer" until_true 20 status_has n1 "Migrating mg1: n1 -> n2, transfer"
kill -9 "$(cat "$LAB_DIR/n2/hagentd.pid")"
# aborted when n2 leaves the group, or earlier if the channel's handshake
# was under way and broke
check "the job is aborted" until_true 20 status_has n1 "Last migration of mg1: migration .* to n2 aborted"
lab exec n1 hactl status | grep "^Last migration" | sed 's/^/# /'
check "mg1 runs on n1 (n1's and n3's tables)" until_true 10 bash -c \
	'for n in n1 n3; do [ "$(field $n mg1 node)" = n1 ] && [ "$(field $n mg1 state)" = running ] || exit 1; done'
lab exec n2 sh -c "setsid hagentd -f -d -c /etc/hagent/hagent.conf >>$LAB_DIR/n2/hagentd.log 2>&1 &"
# QEMU may end the incoming copy itself once the source cancelled; if it is
# still there, the new hagentd kills it
until_true 15 grep -q "mg1: an incoming copy (QEMU [0-9]*) was left by a migration" "$LAB_DIR/n2/hagentd.log" &&
	echo "# the new hagentd on n2 killed the incoming copy left behind"
check "nothing of mg1 is left on n2" until_true 10 bash -c "! lab exec n2 test -e /run/hagent/mg1.in.pid"
check "n2's hagentd is back in the group" until_true 20 bash -c "! lab exec n1 hactl status | grep -q 'hagentd DOWN'"

# --- the link of the destination fails mid-transfer (silent partition)
check "a slow migration to n2" lab exec n1 hactl migrate mg1 n2 --bandwidth 1
check "it reaches transfer" until_true 20 status_has n1 "Migrating mg1: n1 -> n2, transfer"
lab partition n2
check "the job is aborted: n2 left" until_true 20 status_has n1 "n2 left the cluster group (destination)"
check "mg1 runs on n1 (n1's and n3's tables)" until_true 10 bash -c \
	'for n in n1 n3; do [ "$(field $n mg1 node)" = n1 ] && [ "$(field $n mg1 state)" = running ] || exit 1; done'
check "cut off, n2 destroys its incoming copy" until_true 20 bash -c "! lab exec n2 test -e /run/hagent/mg1.in.pid"
lab heal n2
check "n2 is back" until_true 60 bash -c "lab wait n1 3 5 >/dev/null 2>&1"
check "n2 shows mg1 on n1 again" until_true 20 bash -c '[ "$(field n2 mg1 node)" = n1 ]'

# --- the destination host dies mid-transfer
check "a slow migration to n3" lab exec n1 hactl migrate mg1 n3 --bandwidth 1
check "it reaches transfer" until_true 20 status_has n1 "Migrating mg1: n1 -> n3, transfer"
lab kill n3
check "the job is aborted: n3 left" until_true 20 status_has n1 "n3 left the cluster group"
check "mg1 runs on n1" until_true 10 runs_on n1
h=$(last_hb n1)
check "mg1 keeps heartbeating on n1" until_true 10 hb_above n1 "$h"
lab start n3 >/dev/null
check "n3 is back" until_true 60 bash -c "lab wait n1 3 5 >/dev/null 2>&1"

# --- the source host dies mid-transfer: recovered by failover after fencing
check "a slow migration to n2" lab exec n1 hactl migrate mg1 n2 --bandwidth 1
check "it reaches transfer" until_true 20 status_has n2 "Migrating mg1: n1 -> n2, transfer"
lab kill n1
check "n1 is fenced" until_true 30 grep -q "fence: n1 FENCED" "$LAB_DIR/n2/hagentd.log"
check "mg1 is recovered on n2 or n3" until_true 30 bash -c "runs_on n2 || runs_on n3"
check "the job was aborted when n1 left" status_has n2 "n1 left the cluster group (source)"
check "no incoming copy is left on n2" until_true 10 bash -c "! lab exec n2 test -e /run/hagent/mg1.in.pid"

kill "$DUAL_PID"; wait "$DUAL_PID"; DUAL_PID=
cat "$LAB_DIR/dualrun.out"
check "never two running copies of mg1 (dual-run checker)" grep -q "^dualrun: ok" "$LAB_DIR/dualrun.out"
echo "# $FAILS failed"
[ "$FAILS" -eq 0 ]

#!/bin/bash
# Faults at precise points of a live migration, on the lab (3 hosts), with
# test holds (agent/testhold.h: touching LAB_DIR/nK/holds/POINT stops
# hagentd on nK at POINT until the file is removed):
#   1. abort in prepare (hold "ready" on the destination): the incoming QEMU
#      is destroyed, the guest runs on in the same QEMU at the source;
#   2. abort after the source's QEMU completed, before the commit (hold
#      "sent" on the source): the paused source copy is resumed, same QEMU,
#      no reboot; the destination's copy is destroyed;
#   3. the same with "sent" in the registry and the destination held before
#      "loaded": --timeout expires, the source resumes;
#   4. the source host killed after the commit, before the destination
#      resumed (hold "resume"): the destination resumes its copy, which is
#      the guest (no reboot), whatever the source's fate;
#   5. the source cut off mid-transfer (silent partition): the majority
#      aborts the job, fences the source and recovers the guest (booted
#      anew); the incoming copy is gone; the source, back, runs nothing;
#   6. the source's hagentd killed after its QEMU completed (hold "sent"):
#      the others abort the job and destroy the incoming copy; a new hagentd
#      on the source re-attaches the QEMU paused in postmigrate and resumes
#      it once the cluster confirms the guest is still its own.
#   7. the destination's hagentd is killed after the commit, before it
#      resumed its copy: the new hagentd finds the paused incoming copy and,
#      since the cluster's table makes its host the owner, takes it over (the
#      guest's memory survives: no reboot).
# The dual-run checker samples every QEMU throughout.
LABTEST_NAME=migfaults
. "$(dirname "$0")/labtest.sh"
export -f lab field
export LAB

lab up 3 >/dev/null || { echo "lab up failed"; exit 1; }
# holds left behind must not stop anything during `lab down`
trap 'rm -f "$LAB_DIR"/n*/holds/*; cleanup' EXIT
T0=$(date +%s)
shared=$(lab dir)/shared
"$abs_top_srcdir/tests/lab/dualrun" --interval 10 --out "$LAB_DIR/dualrun.out" mg2 >/dev/null 2>&1 &
DUAL_PID=$!
G=mg2
. "$(dirname "$0")/guestutil.sh"
printf 'name = "mg2"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 64\non_crash = "restart"\n' \
	"$shared" >"$shared/mg2.cfg"
lab exec n1 hactl add "$shared/mg2.cfg" >/dev/null
if lab exec n1 hactl start mg2 n1 >/dev/null; then ok "mg2 started on n1"; else bad "mg2 started on n1"; exit 1; fi

qemus_on() { # node: pids of mg2's QEMU processes (incoming ones too) in that host's cgroup
	local p
	for p in $(cat "$(lab cgroup "$1")/cgroup.procs" 2>/dev/null); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "-name mg2,debug-threads" && echo "$p"
	done
}
only_qemu_on() { [ "$(qemus_on "$1" | tr '\n' ' ')" = "${2:+$2 }" ]; } # node pid|"" (none)
# node: no incoming copy's pid file, QMP or serial socket (mg2.in.*).  Its
# console and QEMU logs are left, like any stopped guest's, and so is its
# observer socket (mg2.in.observe.qmp, lab only) when QEMU had to be killed.
no_incoming() {
	! lab exec "$1" sh -c 'for s in pid qmp serial; do [ -e /run/hagent/mg2.in.$s ] && exit 0; done; exit 1'
}
leftover_in() { lab exec "$1" sh -c 'cd /run/hagent && ls mg2.in.* 2>/dev/null' | tr '\n' ' '; } # node
last_mig() { lab exec "$1" hactl status 2>/dev/null | grep "^Last migration of mg2" | sed 's/^/# /'; }
# holds and hagentd's log, from an offset taken before the step
hold() { : >"$LAB_DIR/$1/holds/$2"; }    # node point
release() { rm -f "$LAB_DIR/$1/holds/$2"; } # node point
logsz() { stat -c %s "$LAB_DIR/$1/hagentd.log"; }
log_has() { tail -c "+$(($2 + 1))" "$LAB_DIR/$1/hagentd.log" | grep -q -- "$3"; } # node offset pattern
held() { until_true "$3" log_has "$1" "$4" "test hold: $2 ("; } # node point secs offset
bg_migrate() { # out-file hactl-args...: a `hactl migrate --wait` from n3, in the background
	local out=$1
	shift
	lab exec n3 timeout 60 hactl migrate mg2 "$@" --wait >"$out" 2>&1 &
	BG=$!
}
bg_done() { # expect-pattern: the background migration failed, saying so
	local rc
	wait "$BG"
	rc=$?
	sed 's/^/# hactl: /' "$BG_OUT"
	[ "$rc" -ne 0 ] && grep -q -- "$1" "$BG_OUT"
}
scenario() { echo "# --- scenario $1 at $(($(date +%s) - T0)) s"; }
export -f log_has field qemus_on only_qemu_on no_incoming

check "mg2 heartbeats on n1" until_true 20 hb_above n1 5

# --- 1. abort in prepare: the destination holds before announcing "ready"
scenario 1
p1=$(qemu_pid n1)
o2=$(logsz n2)
hold n2 ready
BG_OUT=$LAB_DIR/mig1.out
bg_migrate "$BG_OUT" n2
check "1: n2 holds at ready" held n2 ready 20 "$o2"
check "1: the job is in prepare" status_has n1 "Migrating mg2: n1 -> n2, prepare"
check "1: an incoming QEMU waits on n2" lab exec n2 test -e /run/hagent/mg2.in.pid
check "1: migrate-abort exits 0" lab exec n1 hactl migrate-abort mg2
check "1: status says aborted by the user" until_true 10 status_has n3 "Last migration of mg2: .* aborted: aborted by the user"
check "1: hactl migrate --wait fails, aborted by the user" bg_done "aborted by the user"
check "1: n2's incoming QEMU is gone (its pid file and sockets too)" until_true 15 bash -c "only_qemu_on n2 '' && no_incoming n2"
echo "# left on n2: $(leftover_in n2)"
check "1: mg2 runs on n1 (every host)" until_true 10 runs_on n1
check "1: in the same QEMU ($p1), the only one on n1" only_qemu_on n1 "$p1"
h=$(last_hb n1)
check "1: mg2 keeps heartbeating on n1 (past $h)" until_true 10 hb_above n1 "$h"
release n2 ready
check "1: released, n2 notes the job ended during the hold" until_true 10 log_has n2 "$o2" "ended during a test hold"
check "1: nothing changed: mg2 on n1, same QEMU, nothing on n2" bash -c \
	"runs_on n1 && only_qemu_on n1 $p1 && only_qemu_on n2 '' && no_incoming n2"

# --- 2. abort after the source's QEMU completed, before the commit
scenario 2
before=$(last_hb n1)
o1=$(logsz n1)
hold n1 sent
BG_OUT=$LAB_DIR/mig2.out
bg_migrate "$BG_OUT" n2
check "2: n1 holds at sent" held n1 sent 30 "$o1"
check "2: n1's QEMU completed: the guest is paused there" log_has n1 "$o1" "QEMU completed .*the guest is paused here"
check "2: n1's status shows the job in transfer, QEMU completed" status_has n1 "Migrating mg2: n1 -> n2, transfer (QEMU completed)"
check "2: the table still says mg2 runs on n1" runs_on n1
check "2: migrate-abort exits 0" lab exec n2 hactl migrate-abort mg2
check "2: status says aborted by the user" until_true 10 status_has n1 "Last migration of mg2: .* aborted: aborted by the user"
check "2: hactl migrate --wait fails" bg_done "aborted by the user"
check "2: n1 resumes its completed copy" until_true 10 log_has n1 "$o1" "cancelled after it completed: resuming here"
check "2: mg2 runs on n1 in the same QEMU ($p1)" until_true 10 bash -c \
	"runs_on n1 && only_qemu_on n1 $p1"
check "2: the guest counts on: heartbeat past $before (no reboot)" until_true 10 hb_above n1 "$before"
check "2: n2's copy is gone (process, pid file, sockets)" until_true 15 bash -c \
	"only_qemu_on n2 '' && no_incoming n2"
release n1 sent
check "2: released, n1 notes the job ended during the hold" until_true 10 log_has n1 "$o1" "ended during a test hold"
check "2: still on n1, same QEMU" bash -c "runs_on n1 && only_qemu_on n1 $p1"

# --- 3. "sent" is in the registry, the destination holds before "loaded";
# the job's deadline expires
scenario 3
before=$(last_hb n1)
o1=$(logsz n1)
o2=$(logsz n2)
hold n2 loaded
BG_OUT=$LAB_DIR/mig3.out
bg_migrate "$BG_OUT" n2 --timeout 3
check "3: n2 holds at loaded" held n2 loaded 20 "$o2"
check "3: the source's \"sent\" is applied, the commit waits" until_true 5 log_has n2 "$o2" "the source sent the guest"
check "3: hactl migrate --timeout 3 --wait fails: timed out" bg_done "timed out after 3 s"
check "3: status says timed out" until_true 10 status_has n3 "Last migration of mg2: .* aborted: timed out after 3 s"
check "3: n1 resumes its completed copy" until_true 10 log_has n1 "$o1" "cancelled after it completed: resuming here"
check "3: mg2 runs on n1 in the same QEMU ($p1)" until_true 10 bash -c \
	"runs_on n1 && only_qemu_on n1 $p1"
check "3: heartbeat past $before (no reboot)" until_true 10 hb_above n1 "$before"
check "3: n2's copy is gone (process, pid file, sockets)" until_true 15 bash -c \
	"only_qemu_on n2 '' && no_incoming n2"
release n2 loaded
check "3: released, n2 notes the job ended during the hold" until_true 10 log_has n2 "$o2" "ended during a test hold"
last_mig n1

# --- 4. the source host dies after the commit, before the destination resumed
scenario 4
before=$(last_hb n1)
o2=$(logsz n2)
hold n2 resume
lab exec n3 timeout 60 hactl migrate mg2 n2 --wait >"$LAB_DIR/mig4.out" 2>&1
rc=$?
sed 's/^/# hactl: /' "$LAB_DIR/mig4.out"
check "4: the migration commits (hactl --wait exits 0)" test "$rc" = 0
check "4: n2 holds at resume" held n2 resume 10 "$o2"
pin=$(lab exec n2 cat /run/hagent/mg2.in.pid 2>/dev/null)
check "4: n2's incoming QEMU ($pin) is its only copy of mg2" only_qemu_on n2 "$pin"
check "4: every host's table makes n2 the owner" bash -c \
	'for n in n1 n2 n3; do [ "$(field $n mg2 node)" = n2 ] || exit 1; done'
out=$(lab exec n3 hactl migrate-abort mg2 2>&1)
rc=$?
echo "# migrate-abort after the commit -> exit $rc: $out"
check "4: after the commit there is nothing left to abort" \
	bash -c '[ "$1" -ne 0 ] && grep -q "mg2 is not migrating" <<<"$2"' _ "$rc" "$out"
lab kill n1
check "4: n2 sees n1 gone from the membership" until_true 30 log_has n2 "$o2" "membership ring [0-9]*: 2 nodes, quorate"
check "4: so does n3" until_true 10 bash -c '[ "$(lab members n3)" = 2 ]'
if log_has n2 "$o2" "fence: n1 FENCED" || log_has n3 0 "fence: n1 FENCED"; then
	echo "# n1 was fenced"
else
	echo "# n1 was not fenced (it owned no guest any more after the commit)"
fi
release n2 resume
check "4: released, n2 resumes its copy" until_true 10 log_has n2 "$o2" "test hold: resume released"
check "4: mg2 runs on n2 (n2's and n3's tables)" until_true 10 runs_on n2
check "4: in the incoming QEMU ($pin), now its only copy" bash -c \
	"[ \"\$(lab exec n2 cat /run/hagent/mg2.pid)\" = '$pin' ] && only_qemu_on n2 '$pin'"
check "4: the guest kept counting: heartbeat on n2 past $before" until_true 10 hb_above n2 "$before"
check "4: n2's console log has no boot line" bash -c "! lab exec n2 grep -q 'TESTGUEST boot' /run/hagent/mg2.console.log"
check "4: no incoming files left on n2" no_incoming n2
check "4: nothing of mg2 runs on n3" only_qemu_on n3 ""
lab start n1 >/dev/null
check "4: n1 is back and shows mg2 on n2" until_true 30 bash -c '[ "$(field n1 mg2 node)" = n2 ] && runs_on n2'
check "4: no QEMU of mg2 on the restarted n1" only_qemu_on n1 ""
last_mig n3

# --- 5. the source is cut off mid-transfer (mg2 is on n2).  The guest
# dirties 20 MiB/s first, so that a 1 MiB/s transfer cannot end by itself.
scenario 5
o1=$(logsz n1)
o3=$(logsz n3)
check "5: mg2 dirties 20 MiB/s" guest_cmd n2 $'d20\n' "TESTGUEST dirty 20"
check "5: a slow migration n2 -> n3" lab exec n1 hactl migrate mg2 n3 --bandwidth 1
check "5: it reaches transfer" until_true 20 status_has n1 "Migrating mg2: n2 -> n3, transfer"
check "5: an incoming QEMU waits on n3" lab exec n3 test -e /run/hagent/mg2.in.pid
lab partition n2
check "5: the job is aborted: n2 left (source)" until_true 20 status_has n1 "Last migration of mg2: .* aborted: n2 left the cluster group (source)"
last_mig n3
check "5: n2 is fenced" until_true 30 bash -c "log_has n1 $o1 'fence: n2 FENCED' || log_has n3 $o3 'fence: n2 FENCED'"
check "5: n2 is down (the lab's fence agent killed it)" until_true 10 bash -c "lab status | grep -q '^n2 killed'"
check "5: mg2 is recovered on n1 or n3" until_true 30 bash -c "runs_on n1 || runs_on n3"
new=$(field n1 mg2 node)
echo "# recovered on $new"
check "5: n3's incoming copy is gone" until_true 15 bash -c "only_qemu_on n3 '' && no_incoming n3"
echo "# left on n3: $(leftover_in n3)"
check "5: it booted anew on $new" until_true 10 bash -c "lab exec $new grep -q 'TESTGUEST boot' /run/hagent/mg2.console.log"
pnew=$(qemu_pid "$new")
check "5: one QEMU of mg2 in the cluster: $pnew on $new" bash -c \
	"only_qemu_on $new '$pnew' && only_qemu_on n2 '' && for n in n1 n3; do [ \$n = $new ] || only_qemu_on \$n '' || exit 1; done"
if lab status | grep -q '^n2 killed'; then
	lab start n2 >/dev/null
else
	lab heal n2
fi
check "5: n2 is back and shows mg2 running on $new" until_true 30 bash -c "[ \"\$(field n2 mg2 node)\" = $new ] && runs_on $new"
check "5: no copy of mg2 on n2" only_qemu_on n2 ""

# --- 6. the source's hagentd dies after its QEMU completed (hold "sent")
scenario 6
src=$new
dst=n2
[ "$src" = n2 ] && dst=n3
check "6: mg2 heartbeats on $src" until_true 20 hb_above "$src" 5
before=$(last_hb "$src")
psrc=$(qemu_pid "$src")
os=$(logsz "$src")
hold "$src" sent
BG_OUT=$LAB_DIR/mig6.out
bg_migrate "$BG_OUT" "$dst"
check "6: $src holds at sent" held "$src" sent 30 "$os"
kill -9 "$(cat "$LAB_DIR/$src/hagentd.pid")"
release "$src" sent
for n in n1 n2 n3; do
	[ "$n" = "$src" ] && continue
	check "6: $n: the job is aborted: $src left" until_true 20 status_has "$n" \
		"Last migration of mg2: .* aborted: $src left the cluster group (source)"
done
check "6: hactl migrate --wait fails" bg_done "$src left the cluster group"
check "6: $dst's incoming copy is destroyed" until_true 15 bash -c "only_qemu_on $dst '' && no_incoming $dst"
check "6: $src's QEMU ($psrc) lives on, alone" only_qemu_on "$src" "$psrc"
qstat=$(lab exec "$src" python3 -c '
import json, socket
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect("/run/hagent/mg2.qmp")
f = s.makefile("rw")
f.readline()
for cmd in ("qmp_capabilities", "query-status"):
    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush()
    while True:
        m = json.loads(f.readline())
        if "return" in m or "error" in m:
            break
print(m.get("return", {}).get("status", m))' 2>&1)
check "6: with no hagentd, $src's QEMU is paused in postmigrate ($qstat)" test "$qstat" = postmigrate
check "6: the others still show mg2 owned by $src" bash -c \
	"for n in n1 n2 n3; do [ \$n = $src ] || [ \"\$(field \$n mg2 node)\" = $src ] || exit 1; done"
os=$(logsz "$src")
lab exec "$src" sh -c "HAGENT_TEST_HOLD_DIR=$LAB_DIR/$src/holds setsid hagentd -f -d -c /etc/hagent/hagent.conf >>$LAB_DIR/$src/hagentd.log 2>&1 & echo \$! >$LAB_DIR/$src/hagentd.pid"
check "6: the new hagentd re-attaches the paused QEMU" until_true 20 log_has "$src" "$os" "mg2: re-attached to running QEMU (pid $psrc)"
check "6: ... and resumes it once synced" until_true 20 bash -c \
	"log_has $src $os 'mg2 still runs here (its migration never committed): resuming it' || log_has $src $os 'never committed: resumed'"
grep -a -E "mg2: re-attached|never committed|registry: synced" <(tail -c "+$((os + 1))" "$LAB_DIR/$src/hagentd.log") | sed 's/^/# /'
check "6: mg2 runs on $src (every host) in the same QEMU ($psrc)" until_true 20 bash -c \
	"runs_on $src && only_qemu_on $src $psrc"
check "6: the guest counts on: heartbeat past $before (no reboot)" until_true 10 hb_above "$src" "$before"
check "6: $src's hagentd is back in the group" until_true 20 bash -c "! lab exec $dst hactl status | grep -q 'hagentd DOWN'"
check "6: nothing of mg2 on the other hosts" bash -c \
	"for n in n1 n2 n3; do [ \$n = $src ] || only_qemu_on \$n '' || exit 1; done"
last_mig "$dst"

# --- 7. the destination's hagentd dies after the commit, before it resumed
# its copy (hold "resume"): the new hagentd finds the paused incoming copy,
# and since the cluster's table makes its host the owner, takes it over
scenario 7
src=$(field n1 mg2 node)
dst=n2 # (not n3: hactl --wait runs there)
[ "$src" = n2 ] && dst=n1
check "7: mg2 heartbeats on $src" until_true 20 hb_above "$src" 5
before=$(last_hb "$src")
od=$(logsz "$dst")
hold "$dst" resume
BG_OUT=$LAB_DIR/mig7.out
bg_migrate "$BG_OUT" "$dst"
check "7: $dst holds at resume (the commit is applied)" held "$dst" resume 30 "$od"
pin=$(lab exec "$dst" cat /run/hagent/mg2.in.pid 2>/dev/null)
kill -9 "$(cat "$LAB_DIR/$dst/hagentd.pid")"
release "$dst" resume
wait "$BG"
rc=$?
sed 's/^/# hactl: /' "$BG_OUT"
check "7: hactl migrate --wait reports the move" \
	bash -c '[ "$1" = 0 ] && grep -q "$2" "$3"' _ "$rc" "migrated from $src to $dst" "$BG_OUT"
check "7: every other host makes $dst the owner" bash -c \
	"for n in n1 n2 n3; do [ \$n = $dst ] || [ \"\$(field \$n mg2 node)\" = $dst ] || exit 1; done"
check "7: $src's copy is destroyed" until_true 15 only_qemu_on "$src" ""
check "7: the paused incoming copy ($pin) is the only QEMU of mg2" only_qemu_on "$dst" "$pin"
od=$(logsz "$dst")
lab exec "$dst" sh -c "HAGENT_TEST_HOLD_DIR=$LAB_DIR/$dst/holds setsid hagentd -f -d -c /etc/hagent/hagent.conf >>$LAB_DIR/$dst/hagentd.log 2>&1 & echo \$! >$LAB_DIR/$dst/hagentd.pid"
check "7: the new hagentd takes the copy over" until_true 20 log_has "$dst" "$od" "mg2: took over its migrated copy"
check "7: mg2 runs on $dst (every host) in that QEMU ($pin)" until_true 20 bash -c \
	"runs_on $dst && only_qemu_on $dst $pin && [ \"\$(qemu_pid $dst)\" = $pin ]"
check "7: the guest counts on: heartbeat past $before (no reboot)" until_true 10 hb_above "$dst" "$before"
check "7: $dst's console log has no boot line" bash -c "! lab exec $dst grep -q 'TESTGUEST boot' /run/hagent/mg2.console.log"
check "7: no incoming files left on $dst" no_incoming "$dst"
last_mig "$dst"

kill "$DUAL_PID"; wait "$DUAL_PID"; DUAL_PID=
cat "$LAB_DIR/dualrun.out"
check "never two running copies of mg2 (dual-run checker)" grep -q "^dualrun: ok" "$LAB_DIR/dualrun.out"
echo "# scenarios took $(($(date +%s) - T0)) s"
echo "# $FAILS failed"
[ "$FAILS" -eq 0 ]

#!/bin/bash
# Guests on shared and replicated storage, in three nested Xen hosts running
# hagentd over corosync (tests/vmlab/vmlab, storage from tests/vmlab/storage.sh):
# x1 exports an iSCSI LUN (tgt), x2 and x3 log in and share the LVM volume
# group vgshared on it; x2 and x3 replicate the DRBD 8.4 resource r0
# (fencing resource-only, hagent's fence-peer handler).  The test guest
# writes a numbered record per heartbeat to its PV disk and acknowledges each
# one on its console once written and flushed (tests/guest/README); after
# every move the records up to the last acknowledged one are read back from
# the device (tests/guest/diskseq): none may be missing.
#   The seed's "live migration of an LVM-based guest over iSCSI": web1 on
#     phy:/dev/vgshared/web1, placed where its VG is (not x1), its LV active
#     only where it runs, migrated live x2 <-> x3 while writing.
#   The seed's "Heartbeat2 + DRBD8" with hagent in Heartbeat's place: db1 on
#     drbd:r0 (xm's form), r0 Primary only where it runs, migrated live in a
#     dual-primary window that closes afterwards; moved live by hagent
#     itself when r0's disk fails under it (detached: DRBD runs on through the
#     peer's disk); then failed over when its host is killed: the survivor
#     promotes r0 only after the dead peer is fenced (the fence-peer
#     handler's answer).
# Exit 0 pass, 1 fail, 77 skip (as test-xen.sh).
set -u

XT_NAME=storage-test
# shellcheck source=tests/vmlab/xentest.sh
. "$(dirname "$0")/xentest.sh"
unset VMLAB_TWO_NODE
[ -x "$HAGENT_BUILD/tests/guest/diskseq" ] || { echo "SKIP: no tests/guest/diskseq"; exit 77; }
# shellcheck source=tests/vmlab/storage.sh
. "$SRC/tests/vmlab/storage.sh"
finish() {
	echo "# $CHECKS checks, $FAILS failed"
	[ "$FAILS" = 0 ]
	exit
}

# the guest's console lines of domain D on NODE (port 0xe9 in xl dmesg)
glines() { vx "$1" xl dmesg 2>/dev/null | sed -n "s/^(d$2) \(\[[ 0-9.]*\] \)\{0,1\}//p"; }
# the last acknowledged write of domain D on NODE (0: none)
acked() { glines "$1" "$2" | sed -n 's/^TESTGUEST disk-write ok seq=\([0-9]*\).*/\1/p' | tail -n 1 | grep . || echo 0; }
acked_above() { [ "$(acked "$1" "$2")" -gt "$3" ]; }         # node domid n
vbd_up() { glines "$1" "$2" | grep -q "^TESTGUEST disk seq="; } # node domid: its disk scanned
say() { printf %s "$3" | timeout 60 "$VMLAB" exec "$1" hactl console "$2" >/dev/null 2>&1; } # node guest chars
# every record 1..N on DEV of NODE (tests/guest/diskseq reads with O_DIRECT)
records_upto() { # node dev n
	local out
	out=$(vx "$1" "$HAGENT_BUILD/tests/guest/diskseq" "$2" --upto "$3" 2>&1)
	local rc=$?
	echo "# diskseq $2 --upto $3 on $1: $out"
	return $rc
}
lv_active() { [ "$(vx "$1" lvs --noheadings -o lv_active vgshared/web1 2>/dev/null | tr -d ' ')" = active ]; }
lv_inactive() { vx "$1" lvs --noheadings -o lv_active vgshared/web1 >/dev/null 2>&1 && ! lv_active "$1"; }
drbd_role() { vx "$1" drbdadm role r0 2>/dev/null; }        # node: "Primary/Secondary"

# --- the lab and its storage ---------------------------------------------------------
T0=$(now_ms)
if ! "$VMLAB" up 3 </dev/null; then
	not_ok "vmlab up 3"
	finish
fi
ok "vmlab up 3 with hagentd in every host"
echo "# vmlab up 3: $(secs $(($(now_ms) - T0))) s"
check "the three hagentds see each other" until_true 90 members x1 3
# DRBD runs its handlers with PATH=/sbin:/usr/sbin:/bin:/usr/bin: hactl there
for n in x1 x2 x3; do vx "$n" ln -sf /opt/hagent/bin/hactl /usr/local/sbin/hactl; done
T0=$(now_ms)
IQN=$(st_iscsi_target x1 lun1 96) && st_iscsi_login x2 x1 lun1 >/dev/null &&
	st_iscsi_login x3 x1 lun1 >/dev/null && st_lvm_setup x1 >/dev/null &&
	st_lvm_shared vgshared x2 x3 >/dev/null && st_lv_create x2 vgshared web1 16 >/dev/null
check "iSCSI LUN on x1 ($IQN), logged in on x2 and x3, VG vgshared with LV web1 (inactive)" test $? = 0
echo "# iSCSI + LVM set-up: $(secs $(($(now_ms) - T0))) s"
T0=$(now_ms)
ST_DRBD_EXTRA="disk { fencing resource-only; }
handlers { fence-peer \"$SRC/ra/hagent-fence-peer\"; after-resync-target \"$SRC/ra/hagent-fence-peer --unfence\"; }" \
	st_drbd x2 x3 r0 0 32 >/dev/null
check "DRBD r0 between x2 and x3, UpToDate on both, hagent's fence-peer handler" test $? = 0
echo "# DRBD set-up (32 MiB initial sync): $(secs $(($(now_ms) - T0))) s"

# --- web1 on LVM over iSCSI ---------------------------------------------------------
cfg=$VMLAB_DIR/shared/web1.cfg
cat >"$cfg" <<EOF
name = "web1"
type = "pvh"
kernel = "$HAGENT_BUILD/tests/guest/testguest.elf"
memory = 32
disk = [ 'phy:/dev/vgshared/web1,xvda,w' ]
EOF
out=$(hx x2 check "$cfg" 2>&1)
check "hactl check on x2: ok, its LV named inactive" \
	sh -c "echo \"\$1\" | grep -q 'note: .*LVM volume vgshared/web1: LV vgshared/web1 inactive' && echo \"\$1\" | grep -q ': ok (guest web1'" _ "$out"
out=$(hx x1 check "$cfg" 2>&1)
rc=$?
check "hactl check on x1 (no session to the LUN): exit 1 naming VG vgshared" \
	sh -c "[ $rc = 1 ] && echo \"\$1\" | grep -q 'volume group vgshared not found'" _ "$out"
check "hactl add web1" hx x2 add "$cfg"
check "x1 reports that it cannot run web1" until_true 60 sh -c \
	"'$VMLAB' exec x2 hactl status </dev/null | sed -n '/^Storage of x1/,/^Storage of x2/p' | grep -q 'cannot run web1: xvda LVM volume vgshared/web1: volume group vgshared not found'"
T0=$(now_ms)
check "hactl start web1 (no node given)" hx x2 start web1
echo "# start (activation + create): $(secs $(($(now_ms) - T0))) s"
A=$(field x2 web1 node)
case $A in x2) B=x3 ;; x3) B=x2 ;; *) B= ;; esac
check "web1 was placed on x2 or x3, where its VG is (on $A)" test -n "$B"
[ -n "$B" ] || finish
check "web1 runs on $A" until_true 30 state_is "$A" web1 running
check "its LV is active on $A" lv_active "$A"
check "... and inactive on $B" lv_inactive "$B"
D=$(domid "$A" web1)
check "web1's disk is connected and scanned" until_true 30 vbd_up "$A" "${D:-0}"
say "$A" web1 W
check "web1 writes and acknowledges" until_true 30 acked_above "$A" "${D:-0}" 10
before=$(acked "$A" "$D")
T0=$(now_ms)
out=$(hx "$A" migrate web1 "$B" --wait --timeout 120 2>&1)
rc=$?
echo "# hactl migrate web1 $B: rc $rc, $(secs $(($(now_ms) - T0))) s: $(echo "$out" | tail -n 1)"
check "hactl migrate web1 $B --wait succeeds, writing all along" test "$rc" = 0
check "web1 runs on $B" until_true 30 state_is "$B" web1 running
D=$(domid "$B" web1)
check "its writes go on past seq $before on $B" until_true 30 acked_above "$B" "${D:-0}" "$before"
check "its LV is active on $B" until_true 30 lv_active "$B"
check "... and released on $A" until_true 30 lv_inactive "$A"
say "$B" web1 S
sleep_until_quiet() { local a; a=$(acked "$B" "$D"); sleep 1; [ "$(acked "$B" "$D")" = "$a" ]; }
until_true 10 sleep_until_quiet
last=$(acked "$B" "$D")
check "every acknowledged record 1..$last is on the LV (read on $B)" records_upto "$B" /dev/vgshared/web1 "$last"
T0=$(now_ms)
out=$(hx "$B" stop web1 --timeout 10 2>&1)
check "hactl stop web1" until_true 60 state_is "$B" web1 stopped
check "... its LV is released on $B" until_true 30 lv_inactive "$B"

# --- bad input: an iSCSI portal nobody answers on (x1's port 3261) ---------------------
cat >"$VMLAB_DIR/shared/bad1.cfg" <<EOF
name = "bad1"
type = "pvh"
kernel = "$HAGENT_BUILD/tests/guest/testguest.elf"
memory = 32
disk = [ 'vdev=xvda,access=w,script=block-iscsi,target=iqn=iqn.2026-11.invalid.hagent:nosuch,portal=192.0.2.11:3261' ]
ha_nodes = [ "x2" ]
EOF
check "hactl add bad1 (iSCSI target at 192.0.2.11:3261, where nothing listens)" hx x2 add "$VMLAB_DIR/shared/bad1.cfg"
out=$(hx x2 start bad1 x2 2>&1)
rc=$?
echo "# hactl start bad1 x2: rc $rc: $out"
check "its start fails, naming the portal" \
	sh -c "[ $rc != 0 ] && echo \"\$1\" | grep -q 'iSCSI discovery at 192.0.2.11:3261 failed'" _ "$out"
check "... no domain bad1" no_domain x2 bad1
check "... bad1 is failed" state_is x2 bad1 failed

# --- db1 on DRBD ---------------------------------------------------------------------
cfg=$VMLAB_DIR/shared/db1.cfg
cat >"$cfg" <<EOF
name = "db1"
type = "pvh"
kernel = "$HAGENT_BUILD/tests/guest/testguest.elf"
memory = 32
disk = [ 'drbd:r0,xvda,w' ]
ha_nodes = [ "x2", "x3" ]
EOF
check "hactl add db1 (disk drbd:r0)" hx x2 add "$cfg"

# --- bad input: r0 disconnected on both sides (StandAlone, as after a split
# brain): neither side may be promoted; the start is refused, naming it
unusable_on() { # as NODE sees it: does HOST's storage keep GUEST off it?
	hx "$1" --json status 2>/dev/null | python3 -c '
import json, sys
nodes = {n["name"]: n for n in json.load(sys.stdin)["cluster"]["nodes"]}
sys.exit(0 if (sys.argv[2] + "\t") in nodes[sys.argv[1]]["unusable"] else 1)' "$2" "$3"
}
both_unusable() { unusable_on x2 x2 db1 && unusable_on x2 x3 db1; }
both_usable() { ! unusable_on x2 x2 db1 && ! unusable_on x2 x3 db1; }
role_of() { vx "$1" drbdadm role r0 | cut -d/ -f1; }
check "drbdadm disconnect r0 on x2 and x3 (both StandAlone)" sh -c \
	"'$VMLAB' exec x2 drbdadm disconnect r0 </dev/null && '$VMLAB' exec x3 drbdadm disconnect r0 </dev/null"
check "x2 and x3 report that they cannot run db1" until_true 60 both_unusable
out=$(hx x2 start db1 x2 2>&1)
rc=$?
echo "# hactl start db1 x2 with r0 StandAlone: rc $rc: $out"
check "hactl start db1 x2 is refused, naming the split brain" \
	sh -c "[ $rc != 0 ] && echo \"\$1\" | grep -q 'split brain or disconnected'" _ "$out"
check "... r0 stays Secondary on both" sh -c "[ '$(role_of x2)' = Secondary ] && [ '$(role_of x3)' = Secondary ]"
reconnect() { vx x2 drbdadm connect r0 && vx x3 drbdadm connect r0 && st__run x2 120 st__r_drbd_wait r0 100 Connected UpToDate/UpToDate >/dev/null; }
check "drbdadm connect r0 on both: Connected, UpToDate/UpToDate" reconnect
check "x2 and x3 may run db1 again" until_true 60 both_usable

T0=$(now_ms)
check "hactl start db1 x2" hx x2 start db1 x2
echo "# start (drbdadm primary + create): $(secs $(($(now_ms) - T0))) s"
check "db1 runs on x2" until_true 30 state_is x2 db1 running
check "r0 is Primary on x2, Secondary on x3" test "$(drbd_role x2)" = Primary/Secondary
check "... Secondary/Primary as x3 sees it" test "$(drbd_role x3)" = Secondary/Primary
D=$(domid x2 db1)
check "db1's disk is connected and scanned" until_true 30 vbd_up x2 "${D:-0}"
say x2 db1 W
check "db1 writes and acknowledges" until_true 30 acked_above x2 "${D:-0}" 10
before=$(acked x2 "$D")
T0=$(now_ms)
out=$(hx x2 migrate db1 x3 --wait --timeout 120 2>&1)
rc=$?
echo "# hactl migrate db1 x3: rc $rc, $(secs $(($(now_ms) - T0))) s: $(echo "$out" | tail -n 1)"
check "hactl migrate db1 x3 --wait succeeds, writing all along" test "$rc" = 0
check "db1 runs on x3" until_true 30 state_is x3 db1 running
D=$(domid x3 db1)
check "its writes go on past seq $before on x3" until_true 30 acked_above x3 "${D:-0}" "$before"
check "r0 is Primary on x3 only after the migration" until_true 60 sh -c \
	"[ \"\$('$VMLAB' exec x3 drbdadm role r0 </dev/null)\" = Primary/Secondary ]"
check "the dual-primary window is closed on x3" until_true 60 sh -c "! '$VMLAB' exec x3 drbdsetup show r0 </dev/null | grep -q 'allow-two-primaries *yes'"
check "... and on x2" until_true 30 sh -c "! '$VMLAB' exec x2 drbdsetup show r0 </dev/null | grep -q 'allow-two-primaries *yes'"
grep -h "storage: db1:" "$VMLAB_DIR"/x2/vm/log/hagentd.log "$VMLAB_DIR"/x3/vm/log/hagentd.log | sed 's/^/# /' | tail -n 8

# --- storage lost: r0's disk fails on x3 (detached) while db1 runs there --------------
# DRBD goes on through x2's disk (Diskless Primary); x3's probe (a drbdsetup
# events2 line) says it cannot run db1, and x3 migrates it live to x2.
before=$(acked x3 "$D")
T0=$(now_ms)
check "drbdadm detach r0 on x3 (its disk fails)" vx x3 drbdadm detach r0
check "... x3's r0 is Diskless" test "$(vx x3 drbdadm dstate r0)" = Diskless/UpToDate
if until_true 120 owner_is x2 db1 x2 && until_true 60 state_is x2 db1 running; then
	ok "db1 was migrated live to x2"
	echo "# detach to db1 running on x2: $(secs $(($(now_ms) - T0))) s"
else
	not_ok "db1 was migrated live to x2"
	log_tail x3 30
fi
check "... because its storage on x3 failed (x3's log)" \
	grep -q "db1: its storage here failed (.*Diskless.*): migrating it to x2" "$VMLAB_DIR/x3/vm/log/hagentd.log"
D=$(domid x2 db1)
check "its writes go on past seq $before on x2" until_true 30 acked_above x2 "${D:-0}" "$before"
check "... in the same guest (no boot on x2)" sh -c "! '$VMLAB' exec x2 xl dmesg </dev/null | grep -q '^(d${D:-x}) .*TESTGUEST boot'"
check "r0 is Primary on x2 only" until_true 60 sh -c \
	"[ \"\$('$VMLAB' exec x2 drbdadm role r0 </dev/null)\" = Primary/Secondary ]"
reattach() { vx x3 drbdadm attach r0 && st__run x3 120 st__r_drbd_wait r0 100 Connected UpToDate/UpToDate >/dev/null; }
check "drbdadm attach r0 on x3: resynced, UpToDate/UpToDate" reattach

# --- failover: x2 (db1's host, r0's Primary) is killed while db1 writes ---------------
check "db1 is writing on x2" until_true 10 acked_above x2 "${D:-0}" "$before"
last=$(acked x2 "$D")
T0=$(now_ms)
check "vmlab kill x2 (power loss), last acknowledged seq $last" "$VMLAB" kill x2
if until_true 90 owner_is x3 db1 x3 && until_true 60 state_is x3 db1 running; then
	ok "db1 runs on x3 after x2's loss"
	echo "# kill to running on x3: $(secs $(($(now_ms) - T0))) s"
else
	not_ok "db1 runs on x3 after x2's loss"
	log_tail x3 30
fi
L3=$VMLAB_DIR/x3/vm/log/hagentd.log
check "x2 was fenced" grep -q "node x2 fenced" "$L3"
check "DRBD asked hagent's fence-peer handler before promoting r0 on x3: x2 fenced" \
	grep -q "fence-peer: r0 of x2: fenced" "$L3"
fenced_line=$(grep -n "node x2 fenced" "$L3" | head -n 1 | cut -d: -f1)
primary_line=$(grep -n "storage: db1: activate done" "$L3" | tail -n 1 | cut -d: -f1)
check "r0 was made Primary on x3 after the fencing (log lines $fenced_line < $primary_line)" \
	test "${fenced_line:-999999}" -lt "${primary_line:-0}"
check "r0 is Primary on x3" test "$(drbd_role x3 | cut -d/ -f1)" = Primary
D=$(domid x3 db1)
check "the restarted db1 scanned its disk" until_true 30 vbd_up x3 "${D:-0}"
glines x3 "$D" | grep "^TESTGUEST disk seq=" | sed 's/^/# after the failover: /'
check "every record 1..$last acknowledged on x2 is on x3's r0" records_upto x3 /dev/drbd0 "$last"
first=$(glines x3 "$D" | sed -n 's/^TESTGUEST disk seq=\([0-9]*\).*/\1/p' | head -n 1)
check "db1's boot went on from the disk's last record (${first:-?} >= $last)" test "${first:-0}" -ge "$last"
say x3 db1 W
check "db1 writes again on x3" until_true 30 acked_above x3 "${D:-0}" "$last"
grep -h "fence-peer\|storage: db1" "$L3" | tail -n 6 | sed 's/^/# x3: /'

finish

#!/bin/bash
# Storage on the namespace lab (3 hosts, real corosync, hagentd, lvm2 and
# drbd-utils; this machine has no device-mapper or DRBD module, so no VG and
# no DRBD resource exist here: the VM lab's test-storage.sh has the real
# ones):
#   - each host probes its guests' storage and publishes it: a guest on an
#     LVM volume whose VG no host has is shown unusable on every host in
#     `hactl status` (naming the VG), and a start is refused naming it;
#   - a disk image that exists on one host only (n2's private /run) keeps
#     the guest to that host: started without a node it goes to n2; when n2
#     is killed and fenced it is not started elsewhere (status says why);
#   - a running guest whose image disappears from its host (n1): n1 asks
#     for a live migration to the other host that has one (n3), which QEMU
#     cannot complete without its image: the guest runs on, on n1;
#   - DRBD's fence-peer handler (ra/hagent-fence-peer over hactl fence-peer):
#     a live peer is asked to outdate its disk (n2's real drbdadm refuses: no
#     such resource here -> "refused", exit 6); a lost peer is fenced first
#     (fence_lab) -> "fenced", exit 7; an unknown node is an error (exit 1).
LABTEST_NAME=storage
. "$(dirname "$0")/labtest.sh"
LAB_HAGENT_EXTRA="$LAB_HAGENT_EXTRA
storage_refresh = 2"
command -v lvs >/dev/null && command -v drbdadm >/dev/null ||
	{ echo "SKIP: lvm2 or drbd-utils missing (scripts/install-deps installs them)"; exit 77; }
HANDLER=$abs_top_srcdir/ra/hagent-fence-peer
status_has() { lab exec "$1" hactl status 2>/dev/null | grep -qF -- "$2"; }
# does node's storage report (as host asks the cluster) keep guest off it?
unusable_on() { # host node guest
	lab exec "$1" hactl --json status 2>/dev/null | python3 -c '
import json, sys
nodes = {n["name"]: n for n in json.load(sys.stdin)["cluster"]["nodes"]}
sys.exit(0 if (sys.argv[2] + "\t") in nodes[sys.argv[1]]["unusable"] else 1)' "$2" "$3"
}
export -f field lab unusable_on
export LAB

lab up 3 >/dev/null || { echo "lab up failed"; exit 1; }
shared=$(lab dir)/shared

# --- an LVM volume no host has
printf 'name = "st1"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 32\ndisk = [ "phy:/dev/hagent-novg/st1,xvda,w" ]\n' \
	"$shared" >"$shared/st1.cfg"
out=$(lab exec n1 hactl add "$shared/st1.cfg" 2>&1)
check "st1 (disk on LVM volume hagent-novg/st1) is added" [ $? -eq 0 ]
for n in n1 n2 n3; do
	check "$n reports that it cannot run st1 (as n1 sees it)" until_true 20 unusable_on n1 "$n" st1
done
check "n1's status names VG hagent-novg" \
	status_has n1 "cannot run st1: xvda LVM volume hagent-novg/st1: volume group hagent-novg not found"
lab exec n1 hactl status 2>&1 | sed -n '/^Storage of/,$p' | sed 's/^/# n1 status: /' | head -n 12
out=$(lab exec n1 hactl start st1 n2 2>&1)
rc=$?
echo "# hactl start st1 n2: exit $rc: $out"
check "start st1 n2 is refused naming n2's storage" \
	bash -c "[ $rc -ne 0 ] && grep -qF 'its storage is not usable on n2: xvda LVM volume hagent-novg/st1' <<<'$out'"
out=$(lab exec n1 hactl start st1 2>&1)
rc=$?
echo "# hactl start st1: exit $rc: $out"
check "start st1 anywhere is refused: no host has usable storage" \
	bash -c "[ $rc -ne 0 ] && grep -qF 'no host up has usable storage' <<<'$out'"
check "st1 stays stopped" bash -c "[ \"\$(field n1 st1 state)\" = stopped ]"

# --- hactl check names the missing VG (the same probe, no daemon)
out=$(lab exec n1 hactl check "$shared/st1.cfg" 2>&1)
rc=$?
check "hactl check st1.cfg: exit 1 naming VG hagent-novg" \
	bash -c "[ $rc -eq 1 ] && grep -qF 'volume group hagent-novg not found' <<<'$out'"

# --- fence-peer, the peer alive: asked to outdate; its drbdadm refuses
out=$(lab exec n1 env DRBD_RESOURCE=r0 DRBD_PEERS=n2 HAGENT_FENCE_PEER_TIMEOUT=30 "$HANDLER" 2>&1)
rc=$?
echo "# handler, r0, peer n2 up: exit $rc: $out"
check "fence-peer with n2 up: n2 refuses to outdate (exit 6)" [ $rc -eq 6 ]
check "n2 ran drbdadm outdate r0 for n1" \
	grep -q "fence-peer: n1 asked this host to outdate r0" "$LAB_DIR/n2/hagentd.log"
out=$(lab exec n1 hactl fence-peer r0 nosuchnode 2>&1)
rc=$?
echo "# hactl fence-peer r0 nosuchnode: exit $rc: $out"
check "fence-peer naming an unknown node: exit $rc, names it" \
	bash -c "[ $rc -ne 0 ] && [[ \"\$1\" == *\"unknown node 'nosuchnode'\"* ]]" _ "$out"
check "n2's refusal gives drbdadm's reason" grep -Eq "refused: .*(resources|r0|drbd)" <<<"$(lab exec n1 hactl fence-peer r0 n2 2>&1)"
out=$(lab exec n1 env DRBD_RESOURCE=r0 "$HANDLER" 2>&1)
check "the handler without DRBD's environment: exit 1" [ $? -eq 1 ]

# --- a disk image only n2 has: placement keeps st2 there
lab exec n2 truncate -s 4M /run/st2.img
printf 'name = "st2"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 32\ndisk = [ "/run/st2.img,raw,hda,w" ]\n' \
	"$shared" >"$shared/st2.cfg"
lab exec n2 hactl add "$shared/st2.cfg" >/dev/null 2>&1
check "st2 is added on n2 (its image is there)" [ $? -eq 0 ]
check "n1 and n3 say they cannot run st2 (no /run/st2.img)" until_true 20 bash -c \
	"unusable_on n2 n1 st2 && unusable_on n2 n3 st2"
check "n2 can run st2" bash -c "! unusable_on n2 n2 st2"
out=$(lab exec n1 hactl start st2 2>&1)
check "hactl start st2 (no node) succeeds: $out" [ $? -eq 0 ]
check "st2 runs on n2, the one host with its image" \
	until_true 20 bash -c "[ \"\$(field n1 st2 node)\" = n2 ] && [ \"\$(field n1 st2 state)\" = running ]"

# --- st3's image is on n1 and n3; it runs on n1; n1's copy goes: n1's probe
# (storage_refresh = 2 s here) finds it missing and asks for a live
# migration to n3.  QEMU cannot finish one whose image is gone (it must
# reopen it to hand it over: "bdrv_inactivate_all() failed"), so the
# migration aborts and st3 runs on where it was: never a second copy, never a
# stop.  (The VM lab's test-storage.sh moves a guest whose DRBD disk is
# detached, which can migrate.)
lab exec n1 truncate -s 4M /run/st3.img
lab exec n3 truncate -s 4M /run/st3.img
printf 'name = "st3"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 32\ndisk = [ "/run/st3.img,raw,hda,w" ]\n' \
	"$shared" >"$shared/st3.cfg"
lab exec n1 hactl add "$shared/st3.cfg" >/dev/null 2>&1
check "st3 is added on n1" [ $? -eq 0 ]
check "hactl start st3 n1" lab exec n1 hactl start st3 n1
check "st3 runs on n1" until_true 20 bash -c "[ \"\$(field n1 st3 node)\" = n1 ] && [ \"\$(field n1 st3 state)\" = running ]"
pid1=$(lab exec n1 cat /run/hagent/st3.pid 2>/dev/null)
lab exec n1 rm -f /run/st3.img
check "n1 finds st3's image gone and asks for a live migration to n3" until_true 30 \
	grep -q "st3: its storage here failed (.*): migrating it to n3" "$LAB_DIR/n1/hagentd.log"
check "... which QEMU cannot finish (aborted)" until_true 30 \
	grep -q "migration .* of st3: transfer -> aborted" "$LAB_DIR/n1/hagentd.log"
check "... n1 gives QEMU's reason" until_true 10 \
	grep -q "st3: migration: failed: .*bdrv_inactivate_all" "$LAB_DIR/n1/hagentd.log"
check "st3 still runs on n1, in the same QEMU ($pid1)" until_true 20 bash -c \
	"[ \"\$(field n1 st3 node)\" = n1 ] && [ \"\$(field n1 st3 state)\" = running ] && kill -0 ${pid1:-0}"
check "... and no copy is left on n3" bash -c "! lab exec n3 test -e /run/hagent/st3.pid"
lab exec n1 hactl destroy st3 >/dev/null 2>&1

# --- n2 is lost: fence-peer fences it; st2 is not started elsewhere
lab kill n2
out=$(lab exec n1 env DRBD_RESOURCE=r0 DRBD_PEERS=n2 HAGENT_FENCE_PEER_TIMEOUT=60 "$HANDLER" 2>&1)
rc=$?
echo "# handler, r0, peer n2 killed: exit $rc: $out"
check "fence-peer with n2 lost: n2 fenced first (exit 7)" [ $rc -eq 7 ]
check "n1 or n3 fenced n2" bash -c "grep -q 'fence: n2 FENCED' '$LAB_DIR/n1/hagentd.log' '$LAB_DIR/n3/hagentd.log'"
check "st2 is not recovered: no other host has its image" \
	until_true 20 bash -c "field n1 st2 reason | grep -q 'no host up has usable storage'"
echo "# n1: st2 $(field n1 st2 state): $(field n1 st2 reason)"
check "st2 runs nowhere" bash -c "[ \"\$(field n1 st2 state)\" != running ]"
out=$(lab exec n1 hactl fence-peer r0 n2 2>&1)
check "fence-peer again for the fenced n2: fenced at once ($out)" [ "$out" = fenced ]

echo "# $FAILS failed"
[ "$FAILS" -eq 0 ]

#!/bin/bash
# Placement on the lab (3 hosts, each giving guests 100 MiB): admission
# control (a start that fits nowhere, or on a full host, is refused with the
# free memory of each host), unknown node names, "can absorb the loss of its
# largest host" in hactl status, and undefine tombstones (a host that was
# down during `hactl remove` does not bring the guest back).
LABTEST_NAME=placement
. "$(dirname "$0")/labtest.sh"
export LAB_HAGENT_EXTRA="$LAB_HAGENT_EXTRA
guest_memory = 100"
export -f lab field
export LAB
lab up 3 >/dev/null || { echo "lab up failed"; exit 1; }
shared=$(lab dir)/shared
guest() { # name memory
	printf 'name = "%s"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = %s\n' \
		"$1" "$shared" "$2" >"$shared/$1.cfg"
	lab exec n1 hactl add "$shared/$1.cfg" >/dev/null
}
guest big 60
guest full 90
guest huge 128
guest tb 16
guest bad 16

out=$(lab exec n1 hactl start big nosuchnode 2>&1)
check "start on an unknown node is refused, naming it" grep -q "unknown node 'nosuchnode'" <<<"$out"
printf 'name = "badn"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nha_nodes = [ "n1", "nX" ]\n' "$shared" >"$shared/badn.cfg"
out=$(lab exec n1 hactl add "$shared/badn.cfg" 2>&1)
check "ha_nodes naming an unknown node is refused at add" grep -q "unknown node 'nX'" <<<"$out"
check "status shows each host's guest memory" bash -c "lab exec n2 hactl status | grep -q '^n1 .* 0/100 MiB'"

check "big starts on n1" lab exec n2 hactl start big n1
out=$(lab exec n3 hactl start full n1 2>&1)
check "full on n1 is refused: n1 has 40 of 100 MiB free" grep -q "n1 has 40 of 100 MiB free; full needs 90 MiB" <<<"$out"
check "full starts on n2" lab exec n3 hactl start full n2
check "bad starts on n3" lab exec n3 hactl start bad n3
out=$(lab exec n1 hactl start huge 2>&1)
check "huge (128 MiB) fits nowhere and says so" grep -q "no host has 128 MiB free" <<<"$out"
check "status: the cluster cannot absorb the loss of n2" \
	bash -c "lab exec n3 hactl status | grep -q '^Absorb loss of a host: NO: if n2 (90 MiB of guests) is lost, full (90 MiB) would fit nowhere'"
check "status prints the corosync-derived timeouts" \
	bash -c "lab exec n1 hactl status | grep -q '^Timeouts: token [0-9]* ms + consensus [0-9]* ms'"
lab exec n2 hactl destroy full >/dev/null
check "after full stops, the loss of any host can be absorbed" \
	until_true 10 bash -c "lab exec n3 hactl status | grep -q '^Absorb loss of a host: yes'"

# --- tombstones: n3 is down while tb is removed
lab kill n3
lab wait n1 2 30 >/dev/null
check "tb removed while n3 is down" lab exec n1 hactl remove tb
lab start n3 >/dev/null
lab wait n1 3 30 >/dev/null
check "n3 logs that tb was removed while it was away" \
	until_true 20 grep -q "guest tb removed (removed from the cluster while this host was away)" "$LAB_DIR/n3/hagentd.log"
check "tb is not back on n1" bash -c "! lab exec n1 hactl list tb >/dev/null 2>&1"
check "tb is gone on n3 too" bash -c "! lab exec n3 hactl list tb >/dev/null 2>&1"
check "tb can be added again" lab exec n2 hactl add "$shared/tb.cfg"
check "... and every host has it" until_true 10 lab exec n3 hactl list tb

# --- a peer speaking another registry version
check "a peer on n3 sends a table of registry version 99" \
	lab exec n3 "$abs_top_builddir/tests/lab/cpg_garbage" --version 99
check "n1 says which node speaks which version" \
	until_true 10 grep -q "speaks registry version 99, this host 2" "$LAB_DIR/n1/hagentd.log"
check "its guest 'intruder' was not merged" bash -c "! lab exec n1 hactl list intruder >/dev/null 2>&1"
check "big still runs on n1" bash -c "[ \"\$(field n2 big state)\" = running ]"
echo "# $FAILS failed"
[ "$FAILS" -eq 0 ]

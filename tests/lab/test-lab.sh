#!/bin/bash
# The lab harness itself (DESIGN.md §9): 3 hosts with real corosync and
# hagentd, kill/start, partition/heal, and `lab down` leaving nothing behind.
# Exit 0 pass, 1 fail, 77 skip (not root, no corosync, no build).
set -u

[ "$(id -u)" = 0 ] || { echo "SKIP: the lab runs as root"; exit 77; }
for t in corosync corosync-quorumtool unshare nsenter bridge qemu-system-x86_64; do
	command -v "$t" >/dev/null 2>&1 || { echo "SKIP: no $t"; exit 77; }
done
SRC=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
HAGENT_BUILD=${HAGENT_BUILD:-${abs_top_builddir:-$SRC/build}}
[ -x "$HAGENT_BUILD/bin/hagentd" ] || { echo "SKIP: no $HAGENT_BUILD/bin/hagentd"; exit 77; }
export HAGENT_BUILD
LAB=$SRC/tests/lab/lab
LAB_DIR=$(mktemp -d /tmp/hagent-lab-test.XXXXXX)
export LAB_DIR
unset LAB_KEEP LAB_TOKEN_COEFFICIENT
export LAB_TOKEN=1000

FAILS=0
CHECKS=0
ok() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
not_ok() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "not ok - $*"; }
check() { # description command...
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
now_ms() { date +%s%3N; }
lab() { "$LAB" "$@"; }

DOWN_DONE=
cleanup() {
	[ -n "$DOWN_DONE" ] || "$LAB" down >/dev/null 2>&1
	rm -rf "$LAB_DIR" "$LAB_DIR.seen" "$LAB_DIR.n3procs"
}
trap cleanup EXIT

# Every process the lab ever had, as "pid:starttime" (pid reuse proof).
SEEN=$LAB_DIR.seen
record_procs() {
	local n p
	for n in n1 n2 n3; do
		for p in $(cat "$(lab cgroup $n)/cgroup.procs" 2>/dev/null); do
			echo "$p:$(awk '{ print $22 }' "/proc/$p/stat" 2>/dev/null)"
		done
	done >>"$SEEN"
}
# the recorded processes still alive (zombies do not count: they hold nothing)
survivors() { # [file]
	local e p st
	for e in $(sort -u "${1:-$SEEN}"); do
		p=${e%%:*}
		st=$(awk '{ print $22 }' "/proc/$p/stat" 2>/dev/null) || continue
		[ "$p:$st" = "$e" ] || continue
		[ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" = Z ] && continue
		echo "$p($(cat "/proc/$p/comm" 2>/dev/null))"
	done
}
quorum_of() { lab exec "$1" corosync-quorumtool -s 2>/dev/null; }
shows() { # node members quorate(Yes/No)
	local q
	q=$(quorum_of "$1")
	echo "$q" | grep -Eq "^Nodes: +$2\$" && echo "$q" | grep -Eq "^Quorate: +$3\$"
}
timed_wait() { # node count -> prints ms since T0, fails on timeout
	lab wait "$1" "$2" 20 && echo "$(($(now_ms) - T0))"
}

NETNS_BEFORE=$(lsns -t net -n -o NS | sort -u)
IPNETNS_BEFORE=$(ip netns list 2>/dev/null)

# --- up ---------------------------------------------------------------------
T0=$(now_ms)
if ! lab up 3; then
	not_ok "lab up 3"
	echo "# $CHECKS checks, $FAILS failed"
	exit 1
fi
echo "# lab up 3: $(($(now_ms) - T0)) ms"
ok "lab up 3"
record_procs
for n in n1 n2 n3; do
	check "$n: corosync shows 3 members, quorate" shows $n 3 Yes
done
check "lab exec n2 hactl list" lab exec n2 hactl list
check "hostname inside n2 is n2" test "$(lab exec n2 hostname)" = n2
check "n1 sees the guest in the shared dir" lab exec n1 test -f "$LAB_DIR/shared/testguest.elf"
check "n3 sees the guest in the shared dir" lab exec n3 test -f "$LAB_DIR/shared/testguest.elf"
check "n1 has 192.0.2.11 and no default route" \
	sh -c "'$LAB' exec n1 ip -4 -br addr show eth0 | grep -q 192.0.2.11/24 && ! '$LAB' exec n1 ip route | grep -q default"
check "n1 has its own /run (tmpfs, not the machine's)" \
	sh -c "'$LAB' exec n1 test -S /run/hagent/hagentd.sock && ! test -S /run/hagent/hagentd.sock"
check "exec keeps the working directory and exit status" \
	sh -c "cd '$LAB_DIR' && test \"\$('$LAB' exec n1 pwd)\" = '$LAB_DIR' && ! '$LAB' exec n1 false"
check "status shows 3 hosts up" test "$(lab status | grep -c ' up ')" = 3

# a guest on n3: stored on its disk, dies with it
cat >"$LAB_DIR/shared/labg3.cfg" <<EOF
name = "labg3"
type = "pvh"
kernel = "$LAB_DIR/shared/testguest.elf"
memory = 32
vcpus = 1
EOF
check "n3: hactl add + start a guest" \
	sh -c "'$LAB' exec n3 hactl add '$LAB_DIR/shared/labg3.cfg' >/dev/null && '$LAB' exec n3 hactl start labg3 n3 >/dev/null"
record_procs
LAB_CG_NAME=$(basename "$(dirname "$(lab cgroup n3)")")
N3_PROCS=$LAB_DIR.n3procs # outside LAB_DIR: it outlives lab down
for p in $(cat "$(lab cgroup n3)/cgroup.procs"); do
	echo "$p:$(awk '{ print $22 }' "/proc/$p/stat")"
done >"$N3_PROCS"
check "n3's cgroup holds holder, corosync, hagentd and QEMU" \
	sh -c "xargs ps -o comm= -p <'$(lab cgroup n3)/cgroup.procs' | sort | tr '\n' ' ' | grep -q 'corosync hagentd qemu-system-x86 sleep'"

# --- kill / start -------------------------------------------------------------
T0=$(now_ms)
check "lab kill n3" lab kill n3
echo "# kill n3 returned after $(($(now_ms) - T0)) ms"
if ms=$(timed_wait n1 2); then
	ok "n1 sees 2 members after n3's power loss"
	echo "# membership after kill: $ms ms"
else
	not_ok "n1 sees 2 members after n3's power loss"
fi
check "n3's cgroup is empty" test -z "$(cat "$(lab cgroup n3)/cgroup.procs")"
check "no process of n3 remains (ps)" test -z "$(survivors "$N3_PROCS")"
# this lab has no fence agent: n3's guest must wait, and status must say why
no_fence_note() {
	local i
	for i in $(seq 100); do # up to 10 s
		"$LAB" exec n1 hactl status 2>/dev/null | grep -q "n3 is lost and has neither a fence agent nor a watchdog" && return 0
		sleep 0.1
	done
	return 1
}
check "without a fence agent, n1's status says n3's guests wait" no_fence_note
check "... and labg3 is not started on a survivor" \
	sh -c "! ps -eo stat=,args= | grep -v '^Z' | grep -q '[-]name labg3'"
check "lab kill n3 again is an error" sh -c "! '$LAB' kill n3 2>/dev/null"
check "lab exec on a killed host is an error" sh -c "! '$LAB' exec n3 true 2>/dev/null"
T0=$(now_ms)
check "lab start n3" lab start n3
echo "# start n3 (to 3 members + hagentd): $(($(now_ms) - T0)) ms"
record_procs
check "n1 shows 3 members again" shows n1 3 Yes
check "n3 shows 3 members" shows n3 3 Yes
check "n3 kept its stored guest across the power loss" sh -c "'$LAB' exec n3 hactl list | grep -q labg3"

# --- partition / heal ---------------------------------------------------------
T0=$(now_ms)
check "lab partition n2" lab partition n2
if ms=$(timed_wait n1 2); then
	ok "n1 sees 2 members after n2's partition"
	echo "# membership after partition (n1): $ms ms"
else
	not_ok "n1 sees 2 members after n2's partition"
fi
if ms=$(timed_wait n2 1); then
	ok "n2 is alone"
	echo "# membership after partition (n2): $ms ms"
else
	not_ok "n2 is alone"
fi
check "n2 is not quorate" shows n2 1 No
check "n1 is quorate" shows n1 2 Yes
check "the partition kept the carrier (n2's eth0 still up)" \
	sh -c "'$LAB' exec n2 cat /sys/class/net/eth0/carrier | grep -qx 1"
T0=$(now_ms)
check "lab heal n2" lab heal n2
if ms=$(timed_wait n1 3) && lab wait n2 3 20; then
	ok "3 members again after heal"
	echo "# membership after heal: $ms ms"
else
	not_ok "3 members again after heal"
fi

# --- down -----------------------------------------------------------------------
CGDIR=$(dirname "$(lab cgroup n1)")
T0=$(now_ms)
check "lab down" lab down
DOWN_DONE=1
echo "# down: $(($(now_ms) - T0)) ms"
check "no lab process remains" test -z "$(survivors)"
check "no lab cgroup remains" test ! -e "$CGDIR"
check "no mount of the lab remains" sh -c "! grep -q '$LAB_DIR' /proc/mounts"
check "the lab directory is gone" test ! -e "$LAB_DIR"
# namespaces created meanwhile by something else (another lab of a parallel
# test) do not count: only those whose processes are in this lab's cgroups
NEW_NS=$(comm -13 <(echo "$NETNS_BEFORE") <(lsns -t net -n -o NS | sort -u) |
	while read -r ns; do
		for pid in $(lsns -t net -n -o NS,PID | awk -v ns="$ns" '$1 == ns { print $2 }'); do
			grep -q "$LAB_CG_NAME" "/proc/$pid/cgroup" 2>/dev/null && echo "$ns"
		done
	done | sort -u)
check "no network namespace remains ($NEW_NS)" test -z "$NEW_NS"
check "ip netns list unchanged" test "$(ip netns list 2>/dev/null)" = "$IPNETNS_BEFORE"
check "lab down again says there is no lab" sh -c "'$LAB' down 2>&1 | grep -q 'no lab'"
rm -f "$SEEN" "$N3_PROCS"

echo "# $CHECKS checks, $FAILS failed"
[ "$FAILS" -eq 0 ]

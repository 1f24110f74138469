#!/bin/bash
# Faults that must NOT fail a guest over, and one that must: on a 3-host lab
# with ft1 running on n2 --
#   hagentd kill -9 on the owner: the guest runs on, untouched; a new
#     hagentd re-attaches to it; no fencing, no second copy;
#   SIGSTOP of the owner's hagentd for longer than the token: nothing moves;
#   a peer multicasting garbage into the CPG group: logged, ignored;
#   corosync killed on the owner: that host stops its guest (no quorum for
#     it), the others fence it and recover the guest.
# The dual-run checker samples every QEMU of the machine throughout.
LABTEST_NAME=faults
. "$(dirname "$0")/labtest.sh"
qemu_pid_on() { lab exec "$1" cat /run/hagent/ft1.pid 2>/dev/null; }
owner_is() { [ "$(field "$1" ft1 node)" = "$2" ] && [ "$(field "$1" ft1 state)" = "$3" ]; }
export -f field lab owner_is
export LAB

lab up 3 >/dev/null || { echo "lab up failed"; exit 1; }
"$abs_top_srcdir/tests/lab/dualrun" --interval 10 --out "$LAB_DIR/dualrun.out" ft1 >/dev/null 2>&1 &
DUAL_PID=$!
shared=$(lab dir)/shared
printf 'name = "ft1"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 32\non_crash = "restart"\n' \
	"$shared" >"$shared/ft1.cfg"
lab exec n1 hactl add "$shared/ft1.cfg" >/dev/null
check "ft1 started on n2" lab exec n1 hactl start ft1 n2
pid=$(qemu_pid_on n2)

# --- hagentd kill -9 on the owner
kill -9 "$(cat "$LAB_DIR/n2/hagentd.pid")"
check "n1 sees n2's hagentd leave but n2 stays a member" \
	until_true 10 bash -c "lab exec n1 hactl status | grep -q 'member, hagentd DOWN'"
check "ft1's QEMU on n2 runs on, untouched" kill -0 "$pid"
lab exec n2 sh -c "setsid hagentd -f -d -c /etc/hagent/hagent.conf >>$LAB_DIR/n2/hagentd.log 2>&1 &"
check "a new hagentd on n2 re-attaches to the same QEMU" \
	until_true 15 grep -q "ft1: re-attached to running QEMU (pid $pid)" "$LAB_DIR/n2/hagentd.log"
check "every host shows ft1 running on n2" until_true 15 bash -c "owner_is n1 n2 running && owner_is n3 n2 running"
check "nobody was fenced" bash -c "! grep -q 'fence: fencing' $LAB_DIR/n1/hagentd.log $LAB_DIR/n3/hagentd.log"

# --- SIGSTOP of the owner's hagentd for longer than the token (1 s)
hd=$(pgrep -f "hagentd -f -d -c /etc/hagent/hagent.conf" | while read -r p; do
	grep -q "hagent-lab" "/proc/$p/cgroup" 2>/dev/null && [ "$(readlink /proc/$p/ns/net)" = "$(readlink /proc/$(lab pid n2)/ns/net)" ] && echo "$p"; done | head -n1)
kill -STOP "$hd"
sleep 3 # the fault itself: hagentd frozen for three token timeouts
kill -CONT "$hd"
check "after SIGSTOP/SIGCONT ft1 still runs in the same QEMU on n2" kill -0 "$pid"
check "n2's hagentd answers again" until_true 10 lab exec n2 hactl list
check "still nobody fenced" bash -c "! grep -q 'fence: fencing' $LAB_DIR/n1/hagentd.log $LAB_DIR/n3/hagentd.log"

# --- garbage in the CPG group
check "a peer on n3 multicasts garbage" lab exec n3 "$abs_top_builddir/tests/lab/cpg_garbage"
check "n1 logged and ignored it" until_true 10 grep -q "registry: garbage from node 3" "$LAB_DIR/n1/hagentd.log"
check "n1 refused the change with an invalid guest name" grep -q "change without a valid guest name" "$LAB_DIR/n1/hagentd.log"
for n in n1 n2 n3; do
	check "$n's hagentd still answers" lab exec "$n" hactl list
done
check "ft1 untouched by it" kill -0 "$pid"

# --- corosync killed on the owner
kill -9 "$(cat "$LAB_DIR/n2/corosync.pid")"
check "ft1 recovered on a survivor" until_true 30 bash -c "owner_is n1 n1 running || owner_is n1 n3 running"
check "n2 was fenced" grep -q "fence: n2 FENCED" "$LAB_DIR/n1/hagentd.log"

kill "$DUAL_PID"; wait "$DUAL_PID"; DUAL_PID=
cat "$LAB_DIR/dualrun.out"
check "never two copies of ft1 (dual-run checker)" grep -q "^dualrun: ok" "$LAB_DIR/dualrun.out"
echo "# $FAILS failed"
[ "$FAILS" -eq 0 ]

#!/bin/bash
# Cluster on the lab: three hosts share one guest table; killing the guest's
# host gets it fenced (fence_lab) and the guest running on a survivor; the
# killed host comes back, gets the table and starts nothing; a host cut off
# alone loses quorum and destroys its copy while the others fence it and
# recover the guest; with two of three hosts lost nothing starts.  The
# dual-run checker samples every QEMU of the machine throughout (each lab
# test names its guest differently: tests may run in parallel).
LABTEST_NAME=failover
. "$(dirname "$0")/labtest.sh"
# wait until `hactl list` on NODE shows GUEST running on a host other than NOT
wait_running_elsewhere() { # node guest not timeout
	local end=$(($(date +%s%3N) + $4 * 1000)) o s
	while [ "$(date +%s%3N)" -lt "$end" ]; do
		o=$(field "$1" "$2" node)
		s=$(field "$1" "$2" state)
		if [ "$s" = running ] && [ -n "$o" ] && [ "$o" != "$3" ] && [ "$o" != - ]; then
			echo "$o"
			return 0
		fi
		sleep 0.05
	done
	return 1
}
# wait for a heartbeat of GUEST on NODE after the log had FROM lines
wait_hb() { # node guest timeout
	lab exec "$1" timeout "$3" sh -c "tail -n +1 -F /run/hagent/$2.console.log 2>/dev/null | grep -q -m1 '^HB '"
}

export -f field lab
export LAB
lab up 3 >/dev/null || { echo "lab up failed"; exit 1; }
"$abs_top_srcdir/tests/lab/dualrun" --interval 10 --out "$LAB_DIR/dualrun.out" fo1 >/dev/null 2>&1 &
DUAL_PID=$!

shared=$(lab dir)/shared
cat >"$shared/fo1.cfg" <<EOC
name = "fo1"
type = "pvh"
kernel = "$shared/testguest.elf"
memory = 32
on_crash = "restart"
EOC

check "hactl add on n1" lab exec n1 hactl add "$shared/fo1.cfg"
check "the definition reached n3" bash -c "[ \"\$(field n3 fo1 state)\" = stopped ]"
check "hactl start fo1 n2 from n1" lab exec n1 hactl start fo1 n2
for n in n1 n2 n3; do
	check "$n shows fo1 running on n2" bash -c "[ \"\$(field $n fo1 node)\" = n2 ] && [ \"\$(field $n fo1 state)\" = running ]"
done
check "fo1 prints heartbeats on n2" wait_hb n2 fo1 10
hactl_status=$(lab exec n3 hactl status)
echo "$hactl_status"
check "status on n3: quorate, 3 members" bash -c "echo '$hactl_status' | grep -q 'quorate, votes 3 of expected 3'"

# --- host kill: fenced, recovered on a survivor
t0=$(date +%s%3N)
lab kill n2
new=$(wait_running_elsewhere n1 fo1 n2 30)
t1=$(date +%s%3N)
check "after n2's power loss fo1 runs on a survivor ($new, $((t1 - t0)) ms)" test -n "$new"
check "n2 was fenced before the recovery" grep -q "fence: n2 FENCED" "$LAB_DIR/n1/hagentd.log"
[ -n "$new" ] && check "fo1 heartbeats on $new" wait_hb "$new" fo1 10

# --- n2 comes back: gets the table, starts nothing owned elsewhere
lab start n2 >/dev/null
check "n2 rejoined and shows fo1 on $new" bash -c "for i in \$(seq 100); do [ \"\$(field n2 fo1 node)\" = '$new' ] && exit 0; sleep 0.1; done; exit 1"
check "no fo1 QEMU on n2" bash -c "! lab exec n2 test -e /run/hagent/fo1.pid"

# --- silent partition of the owner: it loses quorum and destroys its copy,
# the other two fence it and recover the guest
owner=$new
t0=$(date +%s%3N)
lab partition "$owner"
other=n1
[ "$owner" = n1 ] && other=n2
new2=$(wait_running_elsewhere "$other" fo1 "$owner" 40)
t1=$(date +%s%3N)
check "after partitioning $owner, fo1 runs on $new2 ($((t1 - t0)) ms)" test -n "$new2"
check "the partitioned owner was fenced" bash -c "lab status | grep -q '^$owner killed'"
lab start "$owner" >/dev/null 2>&1 || true

# --- two of three lost: no quorum, nothing starts
survivor=$new2
for n in n1 n2 n3; do
	[ "$n" = "$survivor" ] && continue
	lab kill "$n" >/dev/null 2>&1
done
check "the last host loses quorum" bash -c "for i in \$(seq 150); do lab exec $survivor hactl status | grep -q 'NOT QUORATE' && exit 0; sleep 0.1; done; exit 1"
check "and destroys its copy of fo1" bash -c "for i in \$(seq 100); do [ \"\$(field $survivor fo1 state)\" = stopped ] && exit 0; sleep 0.1; done; exit 1"
lab exec "$survivor" hactl start fo1 >"$LAB_DIR/start.out" 2>&1
check "a start without quorum is refused" grep -q "no quorum" "$LAB_DIR/start.out"

kill "$DUAL_PID"; wait "$DUAL_PID"; DUAL_PID=
cat "$LAB_DIR/dualrun.out"
check "never two copies of fo1 (dual-run checker)" grep -q "^dualrun: ok" "$LAB_DIR/dualrun.out"
echo "# $FAILS failed"
[ "$FAILS" -eq 0 ]

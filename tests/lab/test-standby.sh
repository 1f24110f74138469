#!/bin/bash
# hactl node standby / online on the lab (3 hosts, 100 MiB of guest memory
# each): n1 holds big (60 MiB, ha_priority 10), s1 and s2 (16 MiB each); n2
# has 20 MiB free, n3 50.  Standby of n1 live-migrates s1 and s2 away, big
# fits nowhere and stays running on n1, listed with the reason (exit 1);
# nothing is stopped; n1 takes no new guest until it is online again.
# The dual-run checker samples every QEMU throughout.
LABTEST_NAME=standby
. "$(dirname "$0")/labtest.sh"
export LAB_HAGENT_EXTRA="$LAB_HAGENT_EXTRA
guest_memory = 100"
export -f lab field
export LAB

lab up 3 >/dev/null || { echo "lab up failed"; exit 1; }
shared=$(lab dir)/shared
"$abs_top_srcdir/tests/lab/dualrun" --interval 10 --out "$LAB_DIR/dualrun.out" \
	big s1 s2 fill2 fill3 late >/dev/null 2>&1 &
DUAL_PID=$!
guest() { # name memory node [extra]
	printf 'name = "%s"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = %s\n%s\n' \
		"$1" "$shared" "$2" "${4:-}" >"$shared/$1.cfg"
	lab exec n1 hactl add "$shared/$1.cfg" >/dev/null &&
		lab exec n1 hactl start "$1" "$3" >/dev/null
}
check "big on n1" guest big 60 n1 'ha_priority = 10'
check "s1 on n1" guest s1 16 n1 'ha_priority = 5'
check "s2 on n1" guest s2 16 n1
check "fill2 on n2" guest fill2 80 n2
check "fill3 on n3" guest fill3 50 n3
pid_big=$(lab exec n1 cat /run/hagent/big.pid)

out=$(lab exec n2 hactl node standby n1 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "standby of n1 exits 1: something stayed" test "$rc" = 1
check "it says 2 moved, 1 stayed, and why" \
	grep -q "n1: standby; evacuation: 2 moved, 1 stayed: big (no host has 60 MiB free" <<<"$out"
check "s1 went to n2" bash -c "[ \"\$(field n3 s1 node)\" = n2 ] && [ \"\$(field n3 s1 state)\" = running ]"
check "s2 went to n3" bash -c "[ \"\$(field n3 s2 node)\" = n3 ] && [ \"\$(field n3 s2 state)\" = running ]"
check "big still runs on n1, the same QEMU" bash -c \
	"[ \"\$(field n2 big state)\" = running ] && [ \"\$(lab exec n1 cat /run/hagent/big.pid)\" = $pid_big ]"
check "status shows n1 in standby and the outcome" bash -c \
	"lab exec n3 hactl status | grep -q '^n1 .*member, hagentd up, standby' &&
	 lab exec n3 hactl status | grep -q '^Evacuation of n1: 2 moved, 1 stayed'"
printf 'name = "late"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 8\n' "$shared" >"$shared/late.cfg"
lab exec n1 hactl add "$shared/late.cfg" >/dev/null
out=$(lab exec n3 hactl start late n1 2>&1)
check "a start on n1 is refused: standby" grep -q "n1 is in standby" <<<"$out"
check "a start anywhere does not pick n1" lab exec n3 hactl start late
check "... it runs elsewhere" bash -c "[ \"\$(field n1 late node)\" != n1 ]"
check "node online n1" lab exec n2 hactl node online n1
check "status no longer says standby" bash -c "! lab exec n3 hactl status | grep -q '^n1 .*standby'"
lab exec n1 hactl destroy late >/dev/null
check "n1 takes guests again" lab exec n3 hactl start late n1
out=$(lab exec n1 hactl node standby n9 2>&1)
check "standby of an unknown node is refused" grep -q "unknown node 'n9'" <<<"$out"

kill "$DUAL_PID"; wait "$DUAL_PID"; DUAL_PID=
cat "$LAB_DIR/dualrun.out"
check "never two running copies (dual-run checker)" grep -q "^dualrun: ok" "$LAB_DIR/dualrun.out"
echo "# $FAILS failed"
[ "$FAILS" -eq 0 ]

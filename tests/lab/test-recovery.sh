#!/bin/bash
# Recovery choices on the lab (3 hosts, each giving guests 100 MiB):
#   budget: bud (on_crash = "restart", ha_restart_max = 1, ha_nodes n1 n3)
#     crashes twice on n1: its budget there is spent, so it moves to n3; it
#     crashes twice on n3 too: every allowed host has spent one, it stays
#     failed; a user start gives it a fresh budget;
#   fence_nodes: the cluster-wide fence_agent always fails, but n2 has its
#     own agent (fence_lab) in fence_nodes: killing n2 fences it with that
#     one, never with the global one;
#   ha_priority: n2 holds alo (priority 1) and zhi (priority 10), 50 MiB
#     each; after n2's loss only one of them fits (n1 has 55 MiB free, n3
#     40): zhi gets the room although "alo" sorts first by name, alo stays
#     stopped with the reason.
# The dual-run checker samples every QEMU of the machine throughout.
LABTEST_NAME=recovery
. "$(dirname "$0")/labtest.sh"
MODE=$LAB_DIR/shared/fence.mode
export LAB_HAGENT_EXTRA="guest_memory = 100
fence_agent = \"$abs_top_srcdir/tests/lab/fence_flaky\"
fence_args = \"lab=$LAB,lab_dir=$LAB_DIR,mode_file=$MODE\"
fence_nodes = [ \"n2 $abs_top_srcdir/tests/lab/fence_lab lab=$LAB,lab_dir=$LAB_DIR\" ]"
export -f lab field
export LAB

lab up 3 >/dev/null || { echo "lab up failed"; exit 1; }
echo fail >"$MODE"
shared=$(lab dir)/shared
guest() { # name memory [extra xl.cfg line...]
	local name=$1 mem=$2
	shift 2
	{
		printf 'name = "%s"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = %s\n' \
			"$name" "$shared" "$mem"
		for l in "$@"; do echo "$l"; done
	} >"$shared/$name.cfg"
	lab exec n1 hactl add "$shared/$name.cfg" >/dev/null
}
"$abs_top_srcdir/tests/lab/dualrun" --interval 10 --out "$LAB_DIR/dualrun.out" \
	bud alo zhi fill1 fill3 >/dev/null 2>&1 &
DUAL_PID=$!
runs_on() { # guest node: every host's table says so
	local n
	for n in n1 n2 n3; do
		lab exec "$n" true 2>/dev/null || continue # a killed host has no table
		[ "$(field "$n" "$1" node)" = "$2" ] && [ "$(field "$n" "$1" state)" = running ] || return 1
	done
}
qemu_pid() { lab exec "$2" cat "/run/hagent/$1.pid" 2>/dev/null; } # guest node
# kill -9 GUEST's QEMU on NODE (a crash), then wait for a new QEMU or not
crash() { # guest node
	local p
	p=$(qemu_pid "$1" "$2")
	[ -n "$p" ] || { echo "# no QEMU of $1 on $2"; return 1; }
	kill -9 "$p"
}
restarted() { # guest node oldpid
	local p
	p=$(qemu_pid "$1" "$2")
	[ -n "$p" ] && [ "$p" != "$3" ] && [ "$(field "$2" "$1" state)" = running ]
}
log_has() { grep -q -- "$2" "$LAB_DIR/$1/hagentd.log"; } # node pattern

# --- budget spent: moves to the next allowed host, then stays failed
guest bud 16 'on_crash = "restart"' 'ha_restart_max = 1' 'ha_restart_window = 600' \
	'ha_nodes = [ "n1", "n3" ]'
check "bud starts on n1" lab exec n2 hactl start bud n1
check "every host shows bud running on n1" until_true 10 runs_on bud n1
p=$(qemu_pid bud n1)
crash bud n1
check "first crash on n1: restarted in place" until_true 20 restarted bud n1 "$p"
crash bud n1
check "second crash on n1: every host logs the move to n3" until_true 20 bash -c \
	"for n in n1 n2 n3; do grep -q 'registry: bud spent its restart budget on n1; moving it to n3' $LAB_DIR/\$n/hagentd.log || exit 1; done"
check "bud runs on n3, every host agrees" until_true 20 runs_on bud n3
check "no QEMU of bud left on n1" bash -c "! lab exec n1 test -e /run/hagent/bud.pid"
p=$(qemu_pid bud n3)
crash bud n3
check "first crash on n3: restarted in place" until_true 20 restarted bud n3 "$p"
crash bud n3
check "second crash on n3: spent on every allowed host, bud stays failed" until_true 20 \
	log_has n2 "registry: bud spent its restart budget on n3 and stays failed: it has spent its restart budget on every allowed host up (n1,n3)"
check "n2 shows bud failed with the budget as reason" until_true 10 bash -c \
	"lab exec n2 hactl list bud | grep -q 'failed.*restart budget exhausted: 1 restarts within 600 s'"
check "bud runs nowhere" bash -c "! ps -eo stat=,args= | grep -v '^Z' | grep -Eq -- '[-]name bud([, ]|\$)'"
check "a user start gives bud a fresh budget" lab exec n1 hactl start bud
check "bud runs again" until_true 20 bash -c "[ \"\$(field n1 bud state)\" = running ]"
lab exec n1 hactl destroy bud >/dev/null

# --- priority and per-node fencing: n2 is lost with alo and zhi
guest fill1 45
guest fill3 60
guest alo 50 'ha_priority = 1'
guest zhi 50 'ha_priority = 10'
check "fill1 starts on n1" lab exec n1 hactl start fill1 n1
check "fill3 starts on n3" lab exec n1 hactl start fill3 n3
check "alo starts on n2" lab exec n1 hactl start alo n2
check "zhi starts on n2" lab exec n1 hactl start zhi n2
check "every host shows zhi running on n2" until_true 10 runs_on zhi n2
check "status: the loss of n2 cannot be absorbed" bash -c \
	"lab exec n1 hactl status | grep -q '^Absorb loss of a host: NO: if n2 (100 MiB of guests) is lost'"
lab kill n2
check "n1 fences n2 with n2's own agent from fence_nodes" until_true 30 \
	log_has n1 "fence: fencing n2 with $abs_top_srcdir/tests/lab/fence_lab"
check "n2 FENCED" until_true 30 log_has n1 "fence: n2 FENCED"
check "the cluster-wide agent (failing) was never called" bash -c "[ ! -s '$MODE.log' ]"
check "zhi (priority 10) recovered on n1" until_true 30 runs_on zhi n1
check "alo (priority 1) fits nowhere and says so" until_true 10 bash -c \
	"lab exec n3 hactl status | grep -q '^alo .*stopped.*its host was fenced; no host has 50 MiB free for it (n1: 5 of 100 MiB free, n3: 40 of 100 MiB free)'"
check "n3 logged that alo cannot be recovered" log_has n3 "guest alo cannot be recovered from n2"
check "alo runs nowhere" bash -c "! ps -eo stat=,args= | grep -v '^Z' | grep -Eq -- '[-]name alo([, ]|\$)'"

kill "$DUAL_PID"; wait "$DUAL_PID"; DUAL_PID=
cat "$LAB_DIR/dualrun.out"
check "never two copies of any guest (dual-run checker)" grep -q "^dualrun: ok" "$LAB_DIR/dualrun.out"
echo "# $FAILS failed"
[ "$FAILS" -eq 0 ]

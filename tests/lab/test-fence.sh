#!/bin/bash
# Fencing that does not succeed must hold a lost host's guest back: on a
# 3-host lab whose fence agent is fence_flaky (its behaviour read from a
# mode file at each call) with fence_timeout = 3, fl1 runs on n2 and n2 is
# killed --
#   hang: n1 kills the agent after 3 s, says so in its status, and tries
#     again; fl1 runs nowhere, still owned by n2;
#   fail: status gives the agent's exit status; fl1 still runs nowhere;
#   ok:   n2 is fenced and fl1 recovered on n1 or n3.
# The dual-run checker samples every QEMU of the machine throughout.  Then
# a bad input: hagentd with a fence_agent that does not exist refuses to start
# and names the path.
LABTEST_NAME=fence
. "$(dirname "$0")/labtest.sh"
MODE=$LAB_DIR/shared/fence.mode
export LAB_HAGENT_EXTRA="fence_agent = \"$abs_top_srcdir/tests/lab/fence_flaky\"
fence_args = \"lab=$LAB,lab_dir=$LAB_DIR,mode_file=$MODE\"
fence_timeout = 3"
set_mode() { echo "$1" >"$MODE.tmp" && mv "$MODE.tmp" "$MODE"; }
attempts() { wc -l <"$MODE.log" 2>/dev/null || echo 0; }
n1_log() { grep -q -- "$1" "$LAB_DIR/n1/hagentd.log"; }
n1_status() { lab exec n1 hactl status 2>/dev/null | grep -q -- "$1"; }
# no live QEMU of fl1 on the machine (zombies run nothing), no pid file on n1/n3
runs_nowhere() {
	! ps -eo stat=,args= | grep -v '^Z' | grep -Eq -- '[-]name fl1([, ]|$)' &&
		! lab exec n1 test -e /run/hagent/fl1.pid && ! lab exec n3 test -e /run/hagent/fl1.pid
}
held_by_n2() { # n1's table: still n2's (its last report stands until n2 is fenced)
	local o s
	o=$(field n1 fl1 node)
	s=$(field n1 fl1 state)
	echo "# n1's hactl list: fl1 on '$o', state '$s'"
	[ "$o" = n2 ]
}
recovered() {
	local o s
	o=$(field n1 fl1 node)
	s=$(field n1 fl1 state)
	{ [ "$o" = n1 ] || [ "$o" = n3 ]; } && [ "$s" = running ]
}
export -f field lab
export LAB

lab up 3 >/dev/null || { echo "lab up failed"; exit 1; }
set_mode hang
"$abs_top_srcdir/tests/lab/dualrun" --interval 10 --out "$LAB_DIR/dualrun.out" fl1 >/dev/null 2>&1 &
DUAL_PID=$!
shared=$(lab dir)/shared
printf 'name = "fl1"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 32\non_crash = "restart"\n' \
	"$shared" >"$shared/fl1.cfg"
lab exec n1 hactl add "$shared/fl1.cfg" >/dev/null
if lab exec n1 hactl start fl1 n2; then ok "fl1 started on n2"; else bad "fl1 started on n2"; exit 1; fi
check "n1 shows fl1 running on n2" until_true 10 bash -c "[ \"\$(field n1 fl1 node)\" = n2 ] && [ \"\$(field n1 fl1 state)\" = running ]"

# --- hang: the agent is killed after fence_timeout and tried again
t0=$(date +%s%3N)
lab kill n2
check "n1 kills the hung agent after 3 s" \
	until_true 30 n1_log "fence: agent for n2 still running after 3 s, killing it"
check "n1's status says why n2's guests wait" \
	until_true 10 n1_status "fencing n2 failed: agent did not finish within 3 s; retrying"
check "n1 tries again (a second call of the agent)" until_true 20 bash -c "[ \$(wc -l <'$MODE.log') -ge 2 ]"
echo "# fence_flaky calls: $(attempts) within $(($(date +%s%3N) - t0)) ms of the kill"
lab exec n1 hactl status 2>&1 | sed 's/^/# n1 status: /'
check "fl1 runs nowhere while n2 is not fenced" runs_nowhere
check "n1 still shows fl1 owned by n2" held_by_n2
check "n2 was not reported fenced" bash -c "! grep -q 'fence: n2 FENCED' '$LAB_DIR/n1/hagentd.log'"

# --- fail: the agent's exit status is shown, nothing starts
set_mode fail
check "n1's status gives the agent's exit status" \
	until_true 40 n1_status "fencing n2 failed: agent exited with status 1; retrying"
check "fence_flaky was called in mode fail" grep -q " fail plug=n2" "$MODE.log"
check "fl1 still runs nowhere" runs_nowhere
check "n1 still shows fl1 owned by n2" held_by_n2
check "n2 still not reported fenced" bash -c "! grep -q 'fence: n2 FENCED' '$LAB_DIR/n1/hagentd.log'"

# --- ok: fenced, recovered
set_mode ok
t1=$(date +%s%3N)
check "fl1 recovered on n1 or n3 once the agent succeeds" until_true 40 recovered
echo "# recovered $(($(date +%s%3N) - t1)) ms after the mode became ok; owner $(field n1 fl1 node)"
check "n1 logged n2 FENCED" n1_log "fence: n2 FENCED"
check "fence_flaky was called in mode ok" grep -q " ok plug=n2" "$MODE.log"
check "n1's status no longer says fencing failed" until_true 10 bash -c "! lab exec n1 hactl status | grep -q 'fencing n2 failed'"
echo "# fence_flaky calls:"
sed 's/^/#   /' "$MODE.log"

kill "$DUAL_PID"; wait "$DUAL_PID"; DUAL_PID=
cat "$LAB_DIR/dualrun.out"
check "never two copies of fl1 (dual-run checker)" grep -q "^dualrun: ok" "$LAB_DIR/dualrun.out"

# --- bad input: a fence_agent that does not exist (outside the lab)
tmp=$(mktemp -d /tmp/hagent-fence-badinput.XXXXXX)
missing=$tmp/no-such-dir/fence_nothing
cat >"$tmp/hagent.conf" <<EOC
node_name = "badfence"
run_dir = "$tmp/run"
state_dir = "$tmp/state"
cluster = "none"
fence_agent = "$missing"
EOC
mkdir -p "$tmp/run" "$tmp/state"
rc=0
timeout 10 "$abs_top_builddir/bin/hagentd" -f -c "$tmp/hagent.conf" >"$tmp/out" 2>"$tmp/err" || rc=$?
echo "# hagentd with fence_agent = $missing: exit $rc, stderr: $(head -c 400 "$tmp/err")"
check "hagentd with a missing fence_agent refuses to start (exit $rc)" \
	bash -c "[ $rc -ne 0 ] && [ $rc -ne 124 ]"
check "its error names the path" grep -qF -- "$missing" "$tmp/err"
rm -rf "$tmp"

echo "# $FAILS failed"
[ "$FAILS" -eq 0 ]

#!/bin/bash
# Watchdog self-fencing on the lab (LAB_WATCHDOG=4: every host's
# /run/watchdog is read by softdog_lab, which runs `lab kill` when it
# expires), with no fence agent at all: a lost owner's guest may start
# elsewhere only once the owner's watchdog has surely reset it.  wd1 runs on
# n2 --
#   A: n2's hagentd is frozen (SIGSTOP, never continued): it stops feeding
#      the watchdog, which resets n2; the survivors wait at least the
#      watchdog timeout after losing n2, then recover wd1; n2 boots again,
#      rejoins and starts nothing;
#   B: the owner is cut off alone: without quorum it destroys wd1 and then
#      disarms its watchdog (or is reset by it); the others recover wd1
#      after their wait; the link heals;
#   C: a host that holds no guest loses quorum: its watchdog is not armed,
#      nothing resets it.
# The dual-run checker samples every QEMU of the machine throughout.
LABTEST_NAME=watchdog
. "$(dirname "$0")/labtest.sh"
WD=4
export LAB_WATCHDOG=$WD
export LAB_HAGENT_EXTRA=""
# wait until NODE's `hactl list` shows wd1 running on a host other than NOT
wait_running_elsewhere() { # node not timeout
	local end=$(($(date +%s%3N) + $3 * 1000)) o s
	while [ "$(date +%s%3N)" -lt "$end" ]; do
		o=$(field "$1" wd1 node)
		s=$(field "$1" wd1 state)
		if [ "$s" = running ] && [ -n "$o" ] && [ "$o" != "$2" ] && [ "$o" != - ]; then
			echo "$o"
			return 0
		fi
		sleep 0.1
	done
	return 1
}
log_ms() { # "Mon DD HH:MM:SS.mmm rest" -> epoch ms
	date -d "$(echo "$1" | awk '{ print $1, $2, $3 }')" +%s%3N
}
# first line of FILE after line FROM matching PATTERN (grep -E)
line_after() { # file from pattern
	tail -n +"$(($2 + 1))" "$1" | grep -E -m1 -- "$3"
}
lines() { wc -l <"$1" 2>/dev/null || echo 0; }
no_wd1_qemu_on() { ! lab exec "$1" test -e /run/hagent/wd1.pid; }
others() { # node -> the two other nodes
	local n
	for n in n1 n2 n3; do [ "$n" = "$1" ] || echo "$n"; done
}
# the state changes logged by NODE's softdog_lab since it last started
softdog_changes() { # node
	local f=$LAB_DIR/$1/softdog.log
	tail -n +"$(grep -n 'softdog_lab\[[0-9]*\]: started' "$f" | tail -n1 | cut -d: -f1)" "$f" |
		grep -E 'armed \(|disarmed|unexpected close|expired|writer opened'
}
softdog_state() { softdog_changes "$1" | tail -n1; } # the last one
# NODE's watchdog is not running: never armed since its softdog started, or
# its last change a magic close
softdog_idle() { # node
	local last
	last=$(softdog_state "$1")
	[ -z "$last" ] || echo "$last" | grep -q 'disarmed (magic close)'
}
# NODE stays up and its softdog does not fire for SECS
not_reset_for() { # node secs softdog-log-lines-before
	local end=$(($(date +%s%3N) + $2 * 1000))
	while [ "$(date +%s%3N)" -lt "$end" ]; do
		tail -n +"$(($3 + 1))" "$LAB_DIR/$1/softdog.log" | grep -q expired && return 1
		lab status | grep -q "^$1 killed" && return 1
		sleep 0.2
	done
	return 0
}
export -f field lab
export LAB

lab up 3 >/dev/null || { echo "lab up failed"; exit 1; }
for n in n1 n2 n3; do
	check "$n's hagent.conf has the watchdog" grep -q "^watchdog = \"/run/watchdog\"" "$LAB_DIR/$n/hagent.conf"
	check "$n's softdog_lab listens" grep -q "softdog_lab.*started" "$LAB_DIR/$n/softdog.log"
done
"$abs_top_srcdir/tests/lab/dualrun" --interval 10 --out "$LAB_DIR/dualrun.out" wd1 >/dev/null 2>&1 &
DUAL_PID=$!
shared=$(lab dir)/shared
printf 'name = "wd1"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 32\non_crash = "restart"\n' \
	"$shared" >"$shared/wd1.cfg"
lab exec n1 hactl add "$shared/wd1.cfg" >/dev/null
if lab exec n1 hactl start wd1 n2; then ok "wd1 started on n2"; else bad "wd1 started on n2"; exit 1; fi
armed_now() { softdog_state "$1" | grep -Eq 'armed \(|writer opened'; }
check "n2's watchdog is armed once it holds wd1" until_true 10 armed_now n2
echo "# n2 softdog: $(softdog_state n2)"

# --- A: the owner's hagentd hangs
hd=$(cat "$LAB_DIR/n2/hagentd.pid")
check "n2's hagentd pid $hd is hagentd" bash -c "[ \"\$(cat /proc/$hd/comm)\" = hagentd ]"
from1=$(lines "$LAB_DIR/n1/hagentd.log")
from3=$(lines "$LAB_DIR/n3/hagentd.log")
kill -STOP "$hd"
t_stop=$(date +%s%3N)
check "n2's softdog expires" until_true $((WD + 10)) grep -q "expired after $WD s without keepalive" "$LAB_DIR/n2/softdog.log"
check "... and resets n2 (lab kill)" until_true 15 bash -c "lab status | grep -q '^n2 killed'"
t_exp=$(grep -m1 'expired after' "$LAB_DIR/n2/softdog.log" | awk '{ print $1 }')
echo "# n2's softdog expired $((t_exp - t_stop)) ms after SIGSTOP"
new=$(wait_running_elsewhere n1 n2 40)
check "wd1 recovered on a survivor ($new)" test -n "$new"
for n in n1 n3; do
	from=$from1
	[ $n = n3 ] && from=$from3
	lost=$(line_after "$LAB_DIR/$n/hagentd.log" "$from" 'cluster: membership ring [0-9]+: 2 nodes')
	rec=$(line_after "$LAB_DIR/$n/hagentd.log" "$from" 'registry: guest wd1 recovered from n2')
	if [ -n "$lost" ] && [ -n "$rec" ]; then
		waited=$(($(log_ms "$rec") - $(log_ms "$lost")))
		echo "# $n: lost n2 at ${lost%% info*}, moved wd1 at ${rec%% notice*}: waited $waited ms"
		check "$n waited at least the watchdog timeout ($WD s) after losing n2" [ "$waited" -ge $((WD * 1000)) ]
		check "$n moved wd1 after n2's watchdog had fired" [ "$(log_ms "$rec")" -gt "$t_exp" ]
	else
		bad "$n logged the loss of n2 and the recovery of wd1 (loss: '$lost', recovery: '$rec')"
	fi
done
fencer=$(grep -l 'fence: n2 FENCED' "$LAB_DIR/n1/hagentd.log" "$LAB_DIR/n3/hagentd.log" | head -n1)
check "the fencer says n2 self-fenced by its watchdog" \
	grep -q "fence: n2 FENCED (self-fenced by its watchdog" "${fencer:-/dev/null}"
grep -h "fence: n2" "$LAB_DIR/n1/hagentd.log" "$LAB_DIR/n3/hagentd.log" | sed 's/^/# /'
[ -n "$new" ] && check "wd1 has a QEMU on $new" lab exec "$new" test -e /run/hagent/wd1.pid

check "lab start n2" lab start n2
check "n2 rejoined and shows wd1 on $new" until_true 10 bash -c "[ \"\$(field n2 wd1 node)\" = '$new' ]"
check "no wd1 QEMU on n2" no_wd1_qemu_on n2
check "n2's new softdog is not running (n2 holds nothing)" softdog_idle n2
softdog_changes n2 | sed 's/^/# n2 softdog after the restart: /'

# --- B: the owner is cut off alone
owner=$new
sd_from=$(lines "$LAB_DIR/$owner/softdog.log")
{ read -r s1; read -r s2; } < <(others "$owner")
from_s1=$(lines "$LAB_DIR/$s1/hagentd.log")
from_s2=$(lines "$LAB_DIR/$s2/hagentd.log")
from_owner=$(lines "$LAB_DIR/$owner/hagentd.log")
t0=$(date +%s%3N)
lab partition "$owner"
new2=$(wait_running_elsewhere "$s1" "$owner" 40)
t1=$(date +%s%3N)
check "after partitioning $owner, wd1 runs on $new2 ($((t1 - t0)) ms)" test -n "$new2"
owner_sd=$(tail -n +"$((sd_from + 1))" "$LAB_DIR/$owner/softdog.log")
echo "$owner_sd" | sed 's/^/# '"$owner"' softdog: /'
grep -E "watchdog|wd1|quorum" "$LAB_DIR/$owner/hagentd.log" | grep -v debug | tail -n 8 | sed 's/^/# '"$owner"': /'
check "$owner disarmed its watchdog (magic close) or was reset by it" \
	bash -c "echo \"\$1\" | grep -Eq 'disarmed \\(magic close\\)|expired after'" _ "$owner_sd"
if echo "$owner_sd" | grep -q 'disarmed (magic close)'; then
	t_dis=$(echo "$owner_sd" | grep -m1 'disarmed (magic close)' | awk '{ print $1 }')
	gone=$(line_after "$LAB_DIR/$owner/hagentd.log" "$from_owner" 'guest wd1: .*-> stopped')
	echo "# $owner disarmed $((t_dis - t0)) ms after the partition; wd1 stopped there: ${gone:-never}"
	check "$owner disarmed only after its copy of wd1 was gone" \
		bash -c "[ -n '$gone' ] && [ $(log_ms "${gone:-Jan 1 00:00:00}") -le $t_dis ]"
	check "$owner has no wd1 QEMU" no_wd1_qemu_on "$owner"
fi
for n in "$s1" "$s2"; do
	from=$from_s1
	[ "$n" = "$s2" ] && from=$from_s2
	lost=$(line_after "$LAB_DIR/$n/hagentd.log" "$from" 'cluster: membership ring [0-9]+: 2 nodes')
	rec=$(line_after "$LAB_DIR/$n/hagentd.log" "$from" "registry: guest wd1 recovered from $owner")
	if [ -n "$lost" ] && [ -n "$rec" ]; then
		waited=$(($(log_ms "$rec") - $(log_ms "$lost")))
		echo "# $n waited $waited ms between losing $owner and moving wd1"
		check "$n waited at least the watchdog timeout after losing $owner" [ "$waited" -ge $((WD * 1000)) ]
	else
		bad "$n logged the loss of $owner and the recovery of wd1"
	fi
done
if lab status | grep -q "^$owner killed"; then
	check "lab start $owner (reset by its watchdog)" lab start "$owner"
else
	check "lab heal $owner" lab heal "$owner"
	check "$owner rejoins (3 members)" lab wait "$owner" 3 30
fi
check "$owner shows wd1 on $new2" until_true 15 bash -c "[ \"\$(field $owner wd1 node)\" = '$new2' ]"
check "no wd1 QEMU on $owner" no_wd1_qemu_on "$owner"

# --- C: a host holding no guest loses quorum: nothing resets it
# the host that neither held wd1 in B nor holds it now
for idle in n1 n2 n3; do [ "$idle" != "$new2" ] && [ "$idle" != "$owner" ] && break; done
sd_from=$(lines "$LAB_DIR/$idle/softdog.log")
check "$idle holds no guest" no_wd1_qemu_on "$idle"
lab partition "$idle"
check "$idle loses quorum" until_true 15 bash -c "lab exec $idle hactl status | grep -q 'NOT QUORATE'"
# the window in which an armed, unfed watchdog would have fired
check "$idle is not reset within $((WD + 3)) s without quorum" not_reset_for "$idle" $((WD + 3)) "$sd_from"
echo "# $idle softdog lines since the partition: $(($(lines "$LAB_DIR/$idle/softdog.log") - sd_from))"
echo "# $idle softdog state: $(softdog_state "$idle")"
check "$idle's watchdog is disarmed or was never armed" softdog_idle "$idle"
check "lab heal $idle" lab heal "$idle"
check "$idle rejoins (3 members)" lab wait "$idle" 3 30
check "wd1 still runs on $new2" bash -c "[ \"\$(field $idle wd1 node)\" = '$new2' ] && [ \"\$(field $idle wd1 state)\" = running ]"

kill "$DUAL_PID"; wait "$DUAL_PID"; DUAL_PID=
cat "$LAB_DIR/dualrun.out"
check "never two copies of wd1 (dual-run checker)" grep -q "^dualrun: ok" "$LAB_DIR/dualrun.out"
echo "# $FAILS failed"
[ "$FAILS" -eq 0 ]

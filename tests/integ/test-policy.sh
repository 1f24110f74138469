#!/bin/bash
# The on_* policy matrix on real QEMU: each of poweroff, reboot, crash
# (pvpanic) and watchdog (ib700), with each of xl's actions.
. "$(dirname "$0")/lib.sh"
write_conf
start_daemon || exit 1

# event key, guest command, on_* key
EVENTS="poweroff:o:on_poweroff reboot:r:on_reboot crash:p:on_crash watchdog:w:on_watchdog"
ACTIONS="destroy restart preserve coredump-destroy coredump-restart rename-restart"

for e in $EVENTS; do
	ev=${e%%:*} rest=${e#*:}
	cmd=${rest%%:*} key=${rest#*:}
	for a in $ACTIONS; do
		n="${ev}-${a}"
		f=$(guest_file "$n" "$key = \"$a\"")
		hactl add "$f" >/dev/null 2>&1 || { not_ok "$n: add"; continue; }
		hactl start "$n" >/dev/null || { not_ok "$n: start"; continue; }
		wait_hb "$n" 2 10 || { not_ok "$n: no heartbeat"; continue; }
		pid=$(qemu_pid "$n")
		log_from=$(lines "$(console_log "$n")")
		mark
		guest_cmd "$n" "$cmd"
		case $a in
		destroy)
			check "$n: stopped" wait_state "$n" stopped 10
			check "$n: QEMU gone" bash -c "! kill -0 $pid 2>/dev/null"
			check "$n: desired now stopped" grep -q desired=stopped "$T/state/guests/$n.state"
			;;
		restart)
			if [ "$ev" = reboot ]; then
				# QEMU resets the guest in place: same process, guest boots anew
				check "$n: guest booted again" wait_line "$(console_log "$n")" "TESTGUEST boot" 10 "$log_from"
				check "$n: same QEMU" test "$(qemu_pid "$n")" = "$pid"
				check "$n: still running" test "$(json_field "$n" state)" = running
			else
				check "$n: running again" wait_state "$n" running 10
				check "$n: a new QEMU" test "$(qemu_pid "$n")" != "$pid"
				check "$n: heartbeat from the new instance" wait_hb "$n" 1 10 "$log_from"
			fi
			;;
		preserve)
			check "$n: preserved" wait_state "$n" preserved 10
			check "$n: same QEMU kept" kill -0 "$pid"
			check "$n: destroy clears it" hactl destroy "$n"
			check "$n: QEMU gone" bash -c "! kill -0 $pid 2>/dev/null"
			;;
		coredump-destroy)
			check "$n: stopped after dump" wait_state "$n" stopped 20
			check "$n: core file written" bash -c "ls $T/dump/$n-*.core >/dev/null 2>&1 && test -s \$(ls $T/dump/$n-*.core | head -n1)"
			;;
		coredump-restart)
			check "$n: running after dump" wait_line "$T/events.log" " $n: starting -> running " 20 "$MARK"
			check "$n: core file written" bash -c "ls $T/dump/$n-*.core >/dev/null 2>&1"
			check "$n: a new QEMU" test "$(qemu_pid "$n")" != "$pid"
			;;
		rename-restart)
			check "$n: running again" wait_line "$T/events.log" " $n: starting -> running " 10 "$MARK"
			check "$n: crashed instance kept as $n-1" test "$(json_field "$n-1" state)" = preserved
			check "$n: ... with the old QEMU alive" kill -0 "$pid"
			check "$n: a new QEMU for $n" test "$(qemu_pid "$n")" != "$pid"
			check "$n: destroy $n-1" hactl destroy "$n-1"
			check "$n: old QEMU gone" bash -c "! kill -0 $pid 2>/dev/null"
			hactl list "$n-1" >/dev/null 2>&1
			check "$n: $n-1 no longer listed" test $? -eq 4
			;;
		esac
		hactl destroy "$n" >/dev/null 2>&1
	done
done
finish

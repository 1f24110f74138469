#!/bin/bash
# Restart budget and back-off: a guest that keeps crashing is restarted
# ha_restart_max times within ha_restart_window, then shows failed with the
# reason; an unexpected QEMU death counts as a crash.
. "$(dirname "$0")/lib.sh"
write_conf
start_daemon || exit 1

f=$(guest_file crashy 'on_crash = "restart"' 'ha_restart_max = 2' 'ha_restart_window = 600')
hactl add "$f" >/dev/null && hactl start crashy >/dev/null
check "crashy runs" wait_hb crashy 1 10
for i in 1 2; do
	mark
	from=$(lines "$(console_log crashy)")
	guest_cmd crashy p
	check "crash $i: restarted" wait_line "$T/events.log" " crashy: starting -> running " 10 "$MARK"
	check "crash $i: heartbeat again" wait_hb crashy 1 10 "$from"
done
check "the second restart backed off" grep -q "crashy: restart 2 within window, backing off 500 ms" "$T/hagentd.log"
mark
guest_cmd crashy p
check "third crash: failed" wait_state crashy failed 10
hactl list crashy >"$T/list.out"; cat "$T/list.out"
check "reason names the budget" grep -q "restart budget exhausted: 2 restarts within 600 s" "$T/list.out"
check "no QEMU left" test -z "$(pgrep -f -- "-name crashy")"
check "start clears the failure" hactl start crashy

# SIGKILL of QEMU is a crash too
f=$(guest_file killed 'on_crash = "restart"')
hactl add "$f" >/dev/null && hactl start killed >/dev/null
pid=$(qemu_pid killed)
mark
kill -9 "$pid"
check "killed QEMU: restarted" wait_line "$T/events.log" " killed: starting -> running " 10 "$MARK"
check "reason says signal 9" grep -q "killed.*QEMU exited (signal 9)" "$T/events.log"
check "a new QEMU" test "$(qemu_pid killed)" != "$pid"

# on_crash = destroy with a killed QEMU: stopped, not restarted
f=$(guest_file killed2 'on_crash = "destroy"')
hactl add "$f" >/dev/null && hactl start killed2 >/dev/null
mark
kill -9 "$(qemu_pid killed2)"
check "killed QEMU under on_crash=destroy: stopped" wait_state killed2 stopped 10
finish

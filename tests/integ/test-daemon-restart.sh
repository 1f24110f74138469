#!/bin/bash
# kill -9 of hagentd at any moment: running guests keep running (same QEMU),
# are supervised again after a restart, and a guest that died or crashed
# meanwhile is handled per its policy.
. "$(dirname "$0")/lib.sh"
write_conf
start_daemon || exit 1

for g in keep died crashed gone; do
	pol=restart
	[ $g = gone ] && pol=destroy
	f=$(guest_file $g "on_crash = \"$pol\"")
	hactl add "$f" >/dev/null && hactl start $g >/dev/null || not_ok "start $g"
done
check "all four run" wait_hb keep 1 10
wait_hb crashed 1 10
p_keep=$(qemu_pid keep)
p_died=$(qemu_pid died)
p_crashed=$(qemu_pid crashed)
p_gone=$(qemu_pid gone)
from_keep=$(lines "$(console_log keep)")

kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
# while hagentd is down: one guest's QEMU dies, one guest panics
kill -9 "$p_died" "$p_gone"
guest_cmd crashed p
check "crashed guest printed its panic" wait_line "$(console_log crashed)" "TESTGUEST panic" 10
check "keep's QEMU survived the daemon" kill -0 "$p_keep"

mark
start_daemon || exit 1
check "keep: re-attached, running" wait_line "$T/hagentd.log" "keep: re-attached to running QEMU \\(pid $p_keep\\)" 10
check "keep: same QEMU" test "$(qemu_pid keep)" = "$p_keep"
check "keep: state running" test "$(json_field keep state)" = running
check "keep: heartbeat counter continued (no reboot)" \
	bash -c "! tail -n +$((from_keep + 1)) $(console_log keep) | grep -q 'TESTGUEST boot'"
# (these transitions happen while hagentd starts, before `hactl events` can
# subscribe: the state is checked instead)
check "died: restarted per on_crash" wait_json_state died running 10
check "died: a new QEMU" test "$(qemu_pid died)" != "$p_died"
check "crashed: panic seen on re-attach, restarted" wait_json_state crashed running 10
check "crashed: a new QEMU" test "$(qemu_pid crashed)" != "$p_crashed"
check "gone: on_crash=destroy leaves it stopped" test "$(json_field gone state)" = stopped

# the re-attached guest is supervised: a crash now is restarted
mark
guest_cmd keep p
check "keep: crash after re-attach restarts it" wait_line "$T/events.log" " keep: starting -> running " 10 "$MARK"
check "keep: new QEMU" test "$(qemu_pid keep)" != "$p_keep"

# SIGTERM: hagentd exits, guests keep running
p=$(qemu_pid keep)
kill "$DAEMON_PID"; wait "$DAEMON_PID"; DAEMON_PID=
check "SIGTERM of hagentd leaves guests running" kill -0 "$p"
start_daemon || exit 1
check "and they are re-attached" test "$(json_field keep pid)" = "$p"
finish

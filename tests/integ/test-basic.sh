#!/bin/bash
# The user's path on one host: check, add, start, list (text and JSON),
# mem-set/mem-max, stop, destroy, remove; definitions survive a restart.
. "$(dirname "$0")/lib.sh"
write_conf
start_daemon || exit 1

f=$(guest_file web1 'on_crash = "restart"' 'maxmem = 64')
check "hactl check accepts the test guest" hactl check "$f"
check "hactl add defines it" hactl add "$f"
check "the definition is stored" test -s "$T/state/guests/web1.cfg"
mark
check "hactl start returns once running" hactl start web1
check "state is running" test "$(json_field web1 state)" = running
check "events saw stopped -> starting -> running" wait_state web1 running 5
check "heartbeats arrive on the serial port" wait_hb web1 3 10
pid=$(qemu_pid web1)
check "QEMU carries -name web1" grep -qa -- "-name.web1" "/proc/$pid/cmdline"
check "QEMU runs in its own session" test "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid"
out=$(hactl list)
echo "$out"
check "list shows a row for web1 running with 32 MiB" \
	bash -c "echo '$out' | grep -Eq '^web1 +testhost +running +32 +1 '"
json_ok() {
	hactl --json status | python3 -c '
import json, sys
g = json.load(sys.stdin)["guests"][0]
sys.exit(0 if (g["name"], g["node"], g["state"], g["memory"], g["vcpus"]) == ("web1", "testhost", "running", 32, 1) else 1)'
}
check "json has name/node/state/memory/vcpus" json_ok
check "mem-set below maxmem" hactl mem-set web1 16
check "memory now 16" test "$(json_field web1 memory)" = 16
hactl mem-set web1 65 2>"$T/err"; rc=$?
check "mem-set above maxmem refused" test $rc -ne 0
check "... with a clear message" grep -q "above the guest's maximum of 64 MiB" "$T/err"
check "mem-max 48" hactl mem-max web1 48
check "maxmem now 48" test "$(json_field web1 maxmem)" = 48
hactl mem-set web1 56 2>/dev/null
check "mem-set above new max refused" test $? -ne 0
hactl remove web1 2>"$T/err"
check "remove of a running guest refused" grep -q "is running; stop or destroy it first" "$T/err"

mark
hactl stop web1 --timeout 2
check "stop (guest ignores ACPI): stopped after the timeout" test "$(json_field web1 state)" = stopped
check "QEMU is gone" bash -c "! kill -0 $pid 2>/dev/null"
check "start again" hactl start web1
pid2=$(qemu_pid web1)
check "a new QEMU process" test "$pid2" != "$pid"
mark
check "destroy" hactl destroy web1
check "events saw destroying -> stopped" wait_state web1 stopped 5
check "state file says stopped" grep -q "desired=stopped" "$T/state/guests/web1.state"

# definitions survive a daemon restart
kill "$DAEMON_PID"; wait "$DAEMON_PID"
start_daemon
check "web1 still defined after restart" test "$(json_field web1 state)" = stopped
check "remove" hactl remove web1
check "stored files gone" test ! -e "$T/state/guests/web1.cfg"
hactl list web1 2>/dev/null
check "list of a removed guest fails with 4" test $? -eq 4
finish

# Shared helpers of the integration tests: a private hagentd (own run_dir,
# state_dir and socket under a temp dir), real QEMU under TCG, the test guest.
# Waiting is always for an event (a line in a log or in `hactl events`) with
# a deadline, never a bare sleep.
set -u

: "${abs_top_builddir:=$(pwd)}"
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
HAGENTD=$abs_top_builddir/bin/hagentd
HACTL_BIN=$abs_top_builddir/bin/hactl
TESTGUEST=$abs_top_builddir/tests/guest/testguest.elf
T=$(mktemp -d /tmp/hagent-test.XXXXXX)
export HAGENT_SOCKET=$T/run/hagentd.sock
FAILS=0
CHECKS=0
DAEMON_PID=
EVENTS_PID=

[ "$(id -u)" = 0 ] || { echo "SKIP: integration tests run as root"; exit 77; }
[ -f "$TESTGUEST" ] || { echo "SKIP: no $TESTGUEST"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: no qemu-system-x86_64"; exit 77; }

hactl() { "$HACTL_BIN" "$@"; }

ok() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
not_ok() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "not ok - $*"; }
check() { # description command...
	d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}

# Wait until FILE gets a line matching REGEX after line FROM (default 0).
wait_line() { # file regex timeout_s [from_line]
	timeout "$3" tail -n "+$((${4:-0} + 1))" -F "$1" 2>/dev/null | grep -q -m1 -E "$2"
}
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }

write_conf() {
	mkdir -p "$T/run" "$T/state" "$T/guests"
	cat >"$T/hagent.conf" <<EOC
node_name = "testhost"
run_dir = "$T/run"
state_dir = "$T/state"
dump_dir = "$T/dump"
accel = "${HAGENT_ACCEL:-tcg}"
cluster = "none"
EOC
}

start_daemon() {
	from=$(lines "$T/hagentd.log")
	"$HAGENTD" -f -d -c "$T/hagent.conf" >>"$T/hagentd.log" 2>&1 &
	DAEMON_PID=$!
	wait_line "$T/hagentd.log" "hagentd ready" 10 "$from" || { echo "hagentd did not start"; cat "$T/hagentd.log"; return 1; }
	start_events
}

start_events() {
	[ -n "$EVENTS_PID" ] && kill "$EVENTS_PID" 2>/dev/null
	from=$(lines "$T/events.log")
	"$HACTL_BIN" events >>"$T/events.log" 2>&1 &
	EVENTS_PID=$!
	wait_line "$T/events.log" "^-- following events" 10 "$from"
}

# Wait for a transition of GUEST to STATE in `hactl events`, after mark.
mark() { MARK=$(lines "$T/events.log"); }
wait_state() { # guest state [timeout]
	wait_line "$T/events.log" " $1: [a-z]+ -> $2 " "${3:-15}" "${MARK:-0}"
}

# The guest file of the test guest with extra lines.
guest_file() { # name [extra xl.cfg lines...]
	n=$1
	shift
	f=$T/guests/$n.cfg
	{
		echo "name = \"$n\""
		echo "type = \"pvh\""
		echo "kernel = \"$TESTGUEST\""
		echo "memory = 32"
		echo "vcpus = 1"
		for l in "$@"; do echo "$l"; done
	} >"$f"
	echo "$f"
}

console_log() { echo "$T/run/$1.console.log"; }
qemu_pid() { cat "$T/run/$1.pid" 2>/dev/null; }

# Type a command into the guest's serial console (QEMU's socket chardev).
guest_cmd() { # guest chars
	printf '%s' "$2" | timeout 5 socat -u - "UNIX-CONNECT:$T/run/$1.serial" 2>/dev/null
}

# Wait until the guest prints heartbeat number >= N after line FROM of its log.
wait_hb() { # guest n timeout [from]
	# a read loop, not awk: mawk fills its input buffer before it looks
	timeout "$3" tail -n "+$((${4:-0} + 1))" -F "$(console_log "$1")" 2>/dev/null | {
		while read -r word num; do
			num=${num%$'\r'}
			[ "$word" = HB ] && [ "$num" -ge "$2" ] 2>/dev/null && exit 0
		done
		exit 1
	}
}

json_field() { # guest field  (from hactl --json list)
	hactl --json list "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['guests'][0]['$2'])"
}

# Wait (with a deadline) until GUEST's state is STATE in `hactl --json list`:
# for transitions that may happen before an events subscriber is connected
# (hagentd re-attaching at its start).
wait_json_state() { # guest state timeout_s
	local end=$(($(date +%s) + $3))
	while [ "$(date +%s)" -le "$end" ]; do
		[ "$(json_field "$1" state 2>/dev/null)" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

cleanup() {
	[ -n "$EVENTS_PID" ] && kill "$EVENTS_PID" 2>/dev/null
	[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
	for p in "$T"/run/*.pid; do
		[ -f "$p" ] || continue
		case $p in *hagentd.pid) continue ;; esac
		pid=$(cat "$p" 2>/dev/null) && [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	done
	# renamed crashed instances and anything else started with our run_dir
	pkill -9 -f "qemu-system-x86_64 .*$T/run" 2>/dev/null
	if [ "$FAILS" -ne 0 ] || [ -n "${KEEP:-}" ]; then
		echo "--- hagentd.log (tail)"; tail -n 60 "$T/hagentd.log" 2>/dev/null
		echo "--- events.log (tail)"; tail -n 30 "$T/events.log" 2>/dev/null
	fi
	for m in "$T/state" "$T/full"; do
		mountpoint -q "$m" 2>/dev/null && umount "$m"
	done
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

finish() {
	echo "# $CHECKS checks, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}

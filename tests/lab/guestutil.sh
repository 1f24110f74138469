# Sourced by the migration lab tests after labtest.sh, with G set to the
# test's guest name: what one guest looks like from the lab's hosts.
export G
qemu_pid() { lab exec "$1" cat "/run/hagent/$G.pid" 2>/dev/null; } # node
last_hb() { # node: the last heartbeat number in the guest's console log there
	lab exec "$1" tac "/run/hagent/$G.console.log" 2>/dev/null | awk '$1 == "HB" { print $2 + 0; exit }'
}
hb_above() { local n; n=$(last_hb "$1"); [ -n "$n" ] && [ "$n" -gt "$2" ]; } # node count
runs_on() { # node: every live host's table says the guest runs there
	local n
	for n in n1 n2 n3; do
		lab exec "$n" true 2>/dev/null || continue
		[ "$(field "$n" "$G" node)" = "$1" ] && [ "$(field "$n" "$G" state)" = running ] || return 1
	done
}
status_has() { lab exec "$1" hactl status 2>/dev/null | grep -q -- "$2"; } # node text
guest_cmd() { # node text expect: type into the guest's serial console there,
	# and stay connected until the guest answers (QEMU drops what is still
	# unread when the client hangs up: the serial port takes one byte at a time)
	lab exec "$1" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[3])
s.settimeout(10); s.sendall(sys.argv[1].encode()); got = b""; end = time.time() + 10
while sys.argv[2].encode() not in got and time.time() < end:
    got += s.recv(4096)
sys.exit(0 if sys.argv[2].encode() in got else 1)' "$2" "$3" "/run/hagent/$G.serial"
}
export -f qemu_pid last_hb hb_above runs_on status_has guest_cmd

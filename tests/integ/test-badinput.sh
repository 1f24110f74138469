#!/bin/bash
# The bad-input catalogue: each case gets a clear error and exit code, the
# daemon survives, and nothing stored is lost.
. "$(dirname "$0")/lib.sh"
write_conf
# A small state disk we can fill (tmpfs), mounted before the daemon starts.
mount -t tmpfs -o size=512k tmpfs "$T/state" || { echo "SKIP: cannot mount tmpfs"; exit 77; }
start_daemon || exit 1

expect_fail() { # description expected-rc regex command...
	d=$1 want=$2 re=$3
	shift 3
	"$@" >"$T/out" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ] && { [ "$want" = any ] || [ "$rc" -eq "$want" ]; } && grep -Eq -- "$re" "$T/out"; then
		ok "$d (rc $rc: $(head -c 160 "$T/out" | tr '\n' ' '))"
	else
		not_ok "$d: rc $rc, output: $(cat "$T/out")"
	fi
}
alive() { check "daemon still answers after: $1" hactl list; }

g=$T/guests
printf 'name = "b1"\nkernel = "%s"\nmemory = "lots"\n' "$TESTGUEST" >"$g/lots.cfg"
expect_fail "1 memory = \"lots\"" 1 "lots.cfg:3: error: key 'memory'.*expected" hactl check "$g/lots.cfg"
printf 'name = "b2"\nkernel = "%s"\n\non_crash = "explode"\n' "$TESTGUEST" >"$g/explode.cfg"
expect_fail "2 on_crash = \"explode\"" 1 "explode.cfg:4: error: key 'on_crash'.*destroy.*restart" hactl check "$g/explode.cfg"
printf 'name = "b3"\nkernel = "%s"\ndisk = [ "file:/nonexistent/disk.img,xvda,w" ]\n' "$TESTGUEST" >"$g/nodisk.cfg"
expect_fail "3 missing disk image named" 1 "/nonexistent/disk.img" hactl check "$g/nodisk.cfg"
printf 'name = "b4"\nmemory = [ 1, \n' >"$g/syntax.cfg"
expect_fail "4 syntax error" 1 "syntax.cfg.*error" hactl check "$g/syntax.cfg"
printf 'kernel = "%s"\nmemory = 32\n' "$TESTGUEST" >"$g/noname.cfg"
expect_fail "5 missing name" 1 "name" hactl check "$g/noname.cfg"
printf 'name = "../etc/passwd"\nkernel = "%s"\n' "$TESTGUEST" >"$g/badname.cfg"
expect_fail "6 invalid guest name" 1 "key 'name'" hactl check "$g/badname.cfg"
head -c 300000 /dev/zero | tr '\0' '#' >"$g/huge.cfg"
expect_fail "7 oversized guest file" any "too large|larger than" hactl check "$g/huge.cfg"
expect_fail "8 check of a missing file" 1 "No such file" hactl check "$g/none.cfg"
printf 'name = "b9"\nkernel = "%s"\non_crash = "soft-reset"\n' "$TESTGUEST" >"$g/softreset.cfg"
expect_fail "9 soft-reset refused by the qemu driver" 1 "soft-reset" hactl check "$g/softreset.cfg"
printf 'name = "b10"\nkernel = "%s"\nmemory = 64\nmaxmem = 32\n' "$TESTGUEST" >"$g/maxmem.cfg"
expect_fail "10 maxmem below memory" 1 "maxmem" hactl check "$g/maxmem.cfg"
expect_fail "11 add of an invalid file names the error" 6 "memory" hactl add "$g/lots.cfg"

f=$(guest_file good)
check "a good guest is added" hactl add "$f"
expect_fail "12 duplicate name" 5 "already defined" hactl add "$f"
expect_fail "13 start of an unknown guest" 4 "unknown guest 'nosuch'" hactl start nosuch
expect_fail "14 stop of an unknown guest" 4 "unknown guest" hactl stop nosuch
expect_fail "15 remove of an unknown guest" 4 "unknown guest" hactl remove nosuch
expect_fail "16 mem-set with a non-number" 2 "expected a size in MiB" hactl mem-set good lots
expect_fail "17 mem-set of a stopped guest" 1 "not running" hactl mem-set good 16
expect_fail "18 console of a stopped guest" 1 "no console" hactl console good
expect_fail "19 unknown hactl command" 2 "unknown command" hactl frobnicate
expect_fail "20 no daemon at the socket" 1 "is hagentd running" hactl -s "$T/nosock" list
expect_fail "21 start on an unknown node" 4 "unknown node 'n9'" hactl start good n9

# raw garbage on the control socket
sock=$HAGENT_SOCKET
raw() { python3 - "$sock" "$1" <<'PY'
import socket, sys, struct
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(5)
kind = sys.argv[2]
if kind == "garbage": s.sendall(b"GET / HTTP/1.0\r\n\r\n" * 10)
elif kind == "huge": s.sendall(struct.pack(">I", 0x7fffffff) + b"\x01")
elif kind == "badpb": s.sendall(struct.pack(">I", 6) + b"\x01\xff\xff\xff\xff\xff")
elif kind == "unknown":
    cmd = b"frobnicate"; pb = b"\x0a" + bytes([len(cmd)]) + cmd
    s.sendall(struct.pack(">I", len(pb) + 1) + b"\x01" + pb)
elif kind == "wrongtype": s.sendall(struct.pack(">I", 1) + b"\x03")
data = b""
try:
    while True:
        c = s.recv(4096)
        if not c: break
        data += c
        if kind == "unknown" and len(data) > 5: break
except socket.timeout:
    pass
sys.stdout.write(data[5:].decode("utf-8", "replace"))
PY
}
expect_fail_out() { d=$1 re=$2; out=$(raw "$3"); if echo "$out" | grep -Eq "$re"; then ok "$d"; else not_ok "$d: got '$out'"; fi; }
expect_fail_out "22 garbage on the control socket: protocol error" "too large|protocol error" garbage
alive garbage
expect_fail_out "23 oversized frame refused" "too large|Message too long" huge
alive "oversized frame"
expect_fail_out "24 malformed protobuf refused" "malformed request" badpb
alive "malformed protobuf"
expect_fail_out "25 unknown request command" "unknown command 'frobnicate'" unknown
expect_fail_out "26 wrong frame type" "unexpected frame" wrongtype
alive "wrong frame type"

# an unprivileged user is refused (socket mode 0660, SO_PEERCRED)
if command -v setpriv >/dev/null; then
	expect_fail "27 unprivileged client refused" 1 "Permission denied|cannot reach" \
		setpriv --reuid=65534 --regid=65534 --clear-groups "$HACTL_BIN" list
fi

# full state disk
dd if=/dev/zero of="$T/state/filler" bs=4k count=200 2>/dev/null
while dd if=/dev/zero of="$T/state/filler2" bs=4k count=1 oflag=append conv=notrunc 2>/dev/null; do :; done
f2=$(guest_file new2)
expect_fail "28 add on a full state disk" 7 "No space left on device" hactl add "$f2"
check "28 ... nothing half-stored" test ! -e "$T/state/guests/new2.cfg"
expect_fail "29 start on a full state disk refused (desired state not durable)" any "cannot record desired state.*No space" hactl start good
check "29 ... good stays stopped" test "$(json_field good state)" = stopped
check "29 ... existing definition intact" grep -q 'name = "good"' "$T/state/guests/good.cfg"
rm -f "$T/state/filler" "$T/state/filler2"
check "30 with space back, add works" hactl add "$f2"

# a stored definition corrupted behind hagentd's back is skipped, not lost
echo 'memory = [[[' >>"$T/state/guests/new2.cfg"
kill "$DAEMON_PID"; wait "$DAEMON_PID"; DAEMON_PID=
start_daemon || exit 1
check "31 corrupt stored guest reported" grep -q "stored guest new2 skipped (left in place)" "$T/hagentd.log"
check "31 ... file left in place" test -s "$T/state/guests/new2.cfg"
check "31 ... other guests still there" test "$(json_field good state)" = stopped

# a Xen guest on a host without Xen: defined, but its start says why not
f=$(guest_file xeng 'ha_driver = "xen"')
check "35 a Xen guest file is accepted" hactl add "$f"
expect_fail "35 ... its start names the driver and the host" 1 \
	"driver 'xen' is unavailable on host testhost: no Xen hypervisor" hactl start xeng
check "35 ... shown failed with the reason" grep -q "driver 'xen' is unavailable on host .*no Xen hypervisor" <(hactl list xeng)
check "35 ... the daemon still answers" hactl list good
printf 'name = "hvm1"\nbuilder = "hvm"\nmemory = 32\nha_driver = "xen"\n' >"$g/hvm.cfg"
expect_fail "36 check of an hvm guest on a host without Xen's device model" 1 \
	"key 'type': an hvm guest needs Xen's device model \(qemu-xen\)" hactl check "$g/hvm.cfg"

# hagentd -n
printf 'run_dir = "%s/run2"\nstate_dir = "%s/state"\naccel = "warp"\n' "$T" "$T" >"$T/bad.conf"
expect_fail "32 hagentd -n: bad accel value" 1 "accel" "$HAGENTD" -n -c "$T/bad.conf"
expect_fail "33 hagentd -c of a missing file" 1 "cannot parse|No such file" "$HAGENTD" -n -c "$T/missing.conf"
printf 'state_dir = "%s/state"\nrun_dir = "%s/run2"\nguest_dir = "%s/guests"\n' "$T" "$T" "$T" >"$T/check.conf"
expect_fail "34 hagentd -n reports the bad guest files in guest_dir" 1 "lots.cfg:3: error" "$HAGENTD" -n -c "$T/check.conf"
finish

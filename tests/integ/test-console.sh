#!/bin/bash
# hactl console through a real pty: guest output arrives, typed input
# reaches the guest, Ctrl-] leaves and restores the terminal.
. "$(dirname "$0")/lib.sh"
write_conf
start_daemon || exit 1
f=$(guest_file con1)
hactl add "$f" >/dev/null && hactl start con1 >/dev/null
check "con1 runs" wait_hb con1 1 10

python3 - "$HACTL_BIN" >"$T/pty.out" 2>&1 <<'PY'
import os, pty, sys, time, select, termios
hactl = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execv(hactl, [hactl, "console", "con1"])
def read_until(pat, deadline):
    buf = b""
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if pat in buf:
                return buf
    return None
ok = True
b = read_until(b"escape character is ^]", time.time() + 10)
print("banner:", b is not None); ok &= b is not None
b = read_until(b"HB ", time.time() + 10)
print("heartbeat through pty:", b is not None); ok &= b is not None
os.write(fd, b"e")
b = read_until(b"TESTGUEST echo", time.time() + 10)
print("input reached the guest:", b is not None); ok &= b is not None
os.write(fd, b"\x1d")
deadline = time.time() + 10
status = None
while time.time() < deadline:
    p, st = os.waitpid(pid, os.WNOHANG)
    if p:
        status = st
        break
    select.select([fd], [], [], 0.1)
    try: os.read(fd, 4096)
    except OSError: pass
print("Ctrl-] left with status:", status); ok &= status == 0
sys.exit(0 if ok else 1)
PY
rc=$?
cat "$T/pty.out"
check "console through a pty works" test $rc -eq 0
check "the guest still runs after leaving the console" test "$(json_field con1 state)" = running
finish

#!/bin/bash
# A disk I/O error (here: the image's filesystem is full) pauses the guest;
# hagent shows it failed (io-error), keeps its QEMU for inspection (never
# resumes it blindly) and destroys it only when told.
. "$(dirname "$0")/lib.sh"
write_conf
mkdir -p "$T/full"
mount -t tmpfs -o size=256k tmpfs "$T/full" || { echo "SKIP: cannot mount tmpfs"; exit 77; }
truncate -s 64M "$T/full/d.img"
start_daemon || exit 1

f=$(guest_file disky "disk = [ \"file:$T/full/d.img,hda,w\" ]" 'on_crash = "restart"')
check "guest with a disk on a small filesystem is added" hactl add "$f"
check "and started" hactl start disky
check "it runs" wait_hb disky 1 10
from=$(lines "$(console_log disky)")
guest_cmd disky x
check "a write with space succeeds" wait_line "$(console_log disky)" "disk-write ok" 10 "$from"
dd if=/dev/zero of="$T/full/fill" bs=4k count=1000 2>/dev/null
pid=$(qemu_pid disky)
mark
guest_cmd disky x
check "the failing write makes it failed" wait_state disky failed 10
hactl list disky >"$T/list.out"
cat "$T/list.out"
check "list says io-error" grep -q "io-error" "$T/list.out"
check "the reason names the device and errno" grep -q "No space left on device" "$T/list.out"
check "QEMU is kept (paused) for inspection" kill -0 "$pid"
check "json state is failed" test "$(json_field disky state)" = failed
hactl start disky 2>"$T/err"
check "start of a failed guest whose QEMU is kept is refused" grep -q "destroy it first" "$T/err"
check "destroy" hactl destroy disky
check "QEMU gone after destroy" bash -c "! kill -0 $pid 2>/dev/null"
check "state stopped" test "$(json_field disky state)" = stopped
hactl destroy disky >/dev/null 2>&1
finish

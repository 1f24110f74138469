#!/bin/bash
# hagent's Xen driver under real (nested) Xen 4.17: two VM lab hosts x1 x2
# (tests/vmlab/vmlab) run hagentd over corosync; a PVH test guest is started,
# destroyed behind hagentd's back, crashed, re-attached after an hagentd
# restart, migrated live between the hosts, and failed over when its host is
# killed (fenced through the lab's fence device); a guest with a bad kernel
# path fails with libxl's reason and leaves no domain.
# Exit 0 pass, 1 fail, 77 skip (not root, no QEMU/debootstrap, no build, an
# ASan build: its libraries are not in the image).
set -u

XT_NAME=xen-test
# shellcheck source=tests/vmlab/xentest.sh
. "$(dirname "$0")/xentest.sh"
# two_node: the survivor of a host kill stays quorate, fences and fails over
export VMLAB_TWO_NODE=1

# hb NODE DOMID: the domain's latest heartbeat number in NODE's xl dmesg (0: none)
hb() {
	vx "$1" xl dmesg 2>/dev/null | sed -n "s/^(d$2) \(\[[ 0-9.]*\] \)\{0,1\}HB \([0-9]*\)\$/\2/p" |
		tail -n 1 | grep . || echo 0
}
hb_above() { [ "$(hb "$1" "$2")" -gt "$3" ]; }             # node domid n
booted() { vx "$1" xl dmesg 2>/dev/null | grep -Eq "^\(d$2\) (\[[ 0-9.]+\] )?TESTGUEST boot"; }
not_booted() { ! booted "$@"; }

# --- the lab -----------------------------------------------------------------
T0=$(now_ms)
if ! "$VMLAB" up 2 </dev/null; then
	not_ok "vmlab up 2"
	echo "# $CHECKS checks, $FAILS failed"
	exit 1
fi
ok "vmlab up 2 with hagentd in both hosts"
echo "# vmlab up 2: $(secs $(($(now_ms) - T0))) s"
check "hagentd in x1 and x2 see each other" until_true 60 members x1 2
check "... and in x2" until_true 30 members x2 2

# --- start -------------------------------------------------------------------
cfg=$VMLAB_DIR/shared/web1.cfg
cat >"$cfg" <<EOF
# a PVH guest: no ha_driver (the default on a Xen host is xen)
name = "web1"
type = "pvh"
kernel = "$HAGENT_BUILD/tests/guest/testguest.elf"
memory = 32
vcpus = 1
on_crash = "restart"
EOF
check "hactl add of the guest file" hx x1 add "$cfg"
check "its driver is xen (the host's default)" test "$(field x1 web1 driver)" = xen
T0=$(now_ms)
check "hactl start web1 x1" hx x1 start web1 x1
echo "# hactl start: $(secs $(($(now_ms) - T0))) s"
check "web1 runs on x1 for both hosts" until_true 20 owner_is x2 web1 x1
D=$(domid x1 web1)
echo "# web1 is domain ${D:-?} on x1"
check "web1 is a domain on x1 and none on x2" sh -c "test -n '$D' && ! '$VMLAB' exec x2 xl domid web1 </dev/null >/dev/null 2>&1"
check "its heartbeat goes on (xl dmesg)" until_true 30 hb_above x1 "${D:-0}" 3
check "hactl start of a running guest succeeds" hx x1 start web1

# --- mem-set --------------------------------------------------------------------
check "hactl mem-set web1 24" hx x1 mem-set web1 24
check "... the domain's memory target is 24 MiB" \
	test "$(vx x1 xenstore-read "/local/domain/$D/memory/target" 2>/dev/null)" = 24576

check "hactl mem-max web1 40 (set live under Xen)" hx x1 mem-max web1 40
check "... the domain's static-max is 40 MiB" \
	test "$(vx x1 xenstore-read "/local/domain/$D/memory/static-max" 2>/dev/null)" = 40960
# back to memory = maxmem: a restart with less memory than its maximum would be
# a populate-on-demand domain (see the note in docs/hagent.conf.5)
check "hactl mem-max web1 32, mem-set web1 32" sh -c "'$VMLAB' exec x1 hactl mem-max web1 32 </dev/null && '$VMLAB' exec x1 hactl mem-set web1 32 </dev/null"

# --- destroyed behind hagentd's back: on_crash = restart ------------------------
T0=$(now_ms)
check "xl destroy web1 (outside hagentd)" vx x1 xl destroy web1
new_domain() { local d; d=$(domid x1 web1) && [ -n "$d" ] && [ "$d" != "$D" ]; }
if until_true 30 new_domain; then
	ok "hagentd restarted web1 as a new domain (on_crash = restart)"
	echo "# destroy to new domain: $(secs $(($(now_ms) - T0))) s"
else
	not_ok "hagentd restarted web1 as a new domain (on_crash = restart)"
	log_tail x1
fi
D=$(domid x1 web1)
check "the new domain boots and beats" until_true 30 hb_above x1 "${D:-0}" 1
check "web1 is running again" until_true 20 state_is x1 web1 running
check "the reason logged says the Xen domain went away" \
	grep -q "web1: running -> starting (Xen domain exited: domain died)" "$VMLAB_DIR/x1/vm/log/hagentd.log"

# --- hagentd restart: re-attach -----------------------------------------------
check "kill -9 hagentd on x1" vx x1 sh -c 'kill -9 $(cat /run/hagent/hagentd.pid)'
check "restart hagentd on x1" vx x1 sh -c \
	'setsid /opt/hagent/bin/hagentd -f -c /etc/hagent/hagent.conf >>/vmlab/log/hagentd.log 2>&1 </dev/null & sleep 0.1'
check "hagentd on x1 is back in the group" until_true 30 members x1 2
check "web1 runs on, re-attached" until_true 20 state_is x1 web1 running
check "... the same domain" test "$(domid x1 web1)" = "$D"
check "... still beating" hb_above x1 "$D" 1

# --- the console, and a crash through it: on_crash = restart -----------------------
D=$(domid x1 web1)
check "hactl console web1 takes a command ('e' echoes)" sh -c \
	"printf e | '$VMLAB' exec x1 hactl console web1 >/dev/null 2>&1"
check "... the guest answered on its Xen console" until_true 10 sh -c \
	"'$VMLAB' exec x1 xl dmesg </dev/null | grep -Eq '^\(d$D\) (\[[ 0-9.]+\] )?TESTGUEST echo'"
T0=$(now_ms)
check "hactl console web1 <<< p (the guest panics)" sh -c \
	"printf p | '$VMLAB' exec x1 hactl console web1 >/dev/null 2>&1"
if until_true 30 new_domain; then
	ok "web1 crashed and was restarted as a new domain"
	echo "# crash to new domain: $(secs $(($(now_ms) - T0))) s"
else
	not_ok "web1 crashed and was restarted as a new domain"
	log_tail x1
fi
check "the reason logged is a crash reported by Xen" \
	grep -q "web1: .*(guest crashed: crash)" "$VMLAB_DIR/x1/vm/log/hagentd.log"
D=$(domid x1 web1)
check "the restarted web1 beats" until_true 30 hb_above x1 "${D:-0}" 1

# --- bad input -------------------------------------------------------------------
cat >"$VMLAB_DIR/shared/bad.cfg" <<EOF
name = "bad"
type = "pvh"
kernel = "/nonexistent/vmlinuz"
memory = 32
EOF
out=$(hx x1 add "$VMLAB_DIR/shared/bad.cfg" 2>&1)
check "hactl add of a guest whose kernel does not exist is refused" test $? != 0
check "... naming the key and the path" sh -c "echo \"\$1\" | grep -q \"key 'kernel'.*/nonexistent/vmlinuz does not exist\"" _ "$out"
# a kernel file that is not a kernel: only libxl can tell
cat >"$VMLAB_DIR/shared/junk.cfg" <<EOF
name = "junk"
type = "pvh"
kernel = "$VMLAB_DIR/shared/junk.cfg"
memory = 32
EOF
check "hactl add of a guest whose kernel is not a kernel" hx x1 add "$VMLAB_DIR/shared/junk.cfg"
out=$(hx x1 start junk x1 2>&1)
rc=$?
echo "# start junk: rc $rc: $out"
check "its start fails" test "$rc" != 0
check "... with libxl's reason" sh -c "echo \"\$1\" | grep -q 'libxl could not create the domain (error -3: .*[a-z]'" _ "$out"
check "... no domain is left behind" no_domain x1 junk
check "... junk shows failed" state_is x1 junk failed
check "... web1 is untouched" test "$(domid x1 web1)" = "$D"

# --- live migration x1 -> x2 ---------------------------------------------------------
D=$(domid x1 web1)
check "web1 beats on x1 before the migration" until_true 20 hb_above x1 "$D" 5
before=$(hb x1 "$D")
T0=$(now_ms)
out=$(hx x1 migrate web1 x2 --wait --timeout 90 2>&1)
rc=$?
echo "# hactl migrate web1 x2: rc $rc, $(secs $(($(now_ms) - T0))) s: $(echo "$out" | tail -n 1)"
check "hactl migrate web1 x2 --wait succeeds" test "$rc" = 0
check "web1 is owned by x2 for both hosts" until_true 20 owner_is x1 web1 x2
check "... and runs there" until_true 20 state_is x2 web1 running
D2=$(domid x2 web1)
check "a domain web1 on x2, none on x1" sh -c "test -n '$D2' && ! '$VMLAB' exec x1 xl domid web1 </dev/null >/dev/null 2>&1"
check "no web1--incoming is left on x2" no_domain x2 web1--incoming
check "its heartbeat counter goes on past $before on x2" until_true 20 hb_above x2 "${D2:-0}" "$before"
check "... without a boot on x2 (the same guest, not a restart)" not_booted x2 "${D2:-0}"
grep -h "migrated from x1 to x2" "$VMLAB_DIR"/x*/vm/log/hagentd.log | tail -n 1 | sed 's/^/# /'

# --- host failure: x2 killed, fenced, web1 restarted on x1 ----------------------------
T0=$(now_ms)
check "vmlab kill x2 (power loss)" "$VMLAB" kill x2
if until_true 60 owner_is x1 web1 x1 && until_true 30 state_is x1 web1 running; then
	ok "web1 runs on x1 after x2's loss"
	echo "# kill to running on x1: $(secs $(($(now_ms) - T0))) s"
else
	not_ok "web1 runs on x1 after x2's loss"
	log_tail x1 25
fi
check "x1 fenced x2 before restarting web1" grep -q "fenc.*x2" "$VMLAB_DIR/x1/vm/log/hagentd.log"
D=$(domid x1 web1)
check "web1 boots on x1 (a restart, from its definition)" until_true 30 booted x1 "${D:-0}"
check "... and beats" until_true 30 hb_above x1 "${D:-0}" 1

# --- an HVM guest in the seed's style (builder='hvm', vif, vnc, on_crash) -----------
T0=$(now_ms)
check "hactl add tests/vmlab/guest-hvm.cfg (the seed's style)" hx x1 add "$SRC/tests/vmlab/guest-hvm.cfg"
check "hactl start tg-hvm x1" hx x1 start tg-hvm x1
echo "# hactl add+start of the HVM guest: $(secs $(($(now_ms) - T0))) s"
H=$(domid x1 tg-hvm)
echo "# tg-hvm is domain ${H:-?}"
check "tg-hvm runs under qemu-xen (a device model process for its domain)" \
	vx x1 sh -c "pgrep -f 'qemu-system-i386.*-xen-domid ${H:-x} ' >/dev/null"
check "its vif carries the file's MAC" sh -c "'$VMLAB' exec x1 xl network-list tg-hvm </dev/null | grep -qi '00:16:3e:48:41:01'"
check "its VNC server listens on 127.0.0.1" sh -c "'$VMLAB' exec x1 ss -ltn </dev/null | grep -q '127.0.0.1:59[0-9][0-9]'"
check "tg-hvm beats" until_true 60 hb_above x1 "${H:-0}" 1
pv_tty() { vx x1 xenstore-read "/local/domain/$1/console/tty" 2>/dev/null; }
T0=$(now_ms)
check "a panic written to its PV console" vx x1 sh -c "printf p > \$(xenstore-read /local/domain/$H/console/tty)"
hvm_new() { local d; d=$(domid x1 tg-hvm) && [ -n "$d" ] && [ "$d" != "$H" ]; }
if until_true 90 hvm_new; then
	ok "tg-hvm restarted as a new domain (on_crash = 'restart')"
	echo "# HVM crash to new domain: $(secs $(($(now_ms) - T0))) s"
else
	not_ok "tg-hvm restarted as a new domain (on_crash = 'restart')"
	log_tail x1
fi
H=$(domid x1 tg-hvm)
check "the new tg-hvm beats" until_true 90 hb_above x1 "${H:-0}" 1
echo "# HVM crash to first heartbeat: $(secs $(($(now_ms) - T0))) s"
# no PV drivers: the ACPI power button, then destroy after 5 s; tearing an HVM
# domain and its device model down takes seconds more under TCG, longer than
# hactl's wait: the outcome is checked, not hactl's patience
out=$(hx x1 stop tg-hvm --timeout 5 2>&1)
echo "# hactl stop tg-hvm: $out"
check "after hactl stop tg-hvm, no domain is left" until_true 90 no_domain x1 tg-hvm
check "... and tg-hvm shows stopped" until_true 30 state_is x1 tg-hvm stopped

echo "# $CHECKS checks, $FAILS failed"
[ "$FAILS" = 0 ]

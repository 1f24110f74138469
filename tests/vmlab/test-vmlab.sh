#!/bin/bash
# The VM lab itself (tests/vmlab/vmlab): 2 nested Xen hosts under QEMU TCG,
# xl and corosync in each, hagentd in each (VMLAB_RC=tests/vmlab/rc-hagentd)
# with hactl seeing both members, a PVH test guest under Xen, kill/start,
# partition/heal, the lab's fence device through tests/vmlab/fence_vmlab
# (fencing a partitioned host from the other one, already-off, unknown plug,
# a wrong key, a stolen key from the wrong address), and `vmlab down` leaving
# nothing behind, the fence device included.
# Exit 0 pass, 1 fail, 77 skip (not root, no QEMU/debootstrap, no build).
# Slow: the first run builds the image (a few minutes, cached afterwards in
# VMLAB_CACHE); booting 2 hosts takes about a minute on 2 cores.
set -u

[ "$(id -u)" = 0 ] || { echo "SKIP: the VM lab runs as root"; exit 77; }
[ "${HAGENT_VMLAB:-}" != skip ] || { echo "SKIP: HAGENT_VMLAB=skip (scripts/test runs it in a pass of its own)"; exit 77; }
for t in qemu-system-x86_64 qemu-img debootstrap mkfs.ext4 ssh ssh-keygen unshare nsenter bridge flock socat; do
	command -v "$t" >/dev/null 2>&1 || { echo "SKIP: no $t (scripts/install-deps)"; exit 77; }
done
SRC=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
HAGENT_BUILD=${HAGENT_BUILD:-${abs_top_builddir:-$SRC/build}}
[ -x "$HAGENT_BUILD/bin/hagentd" ] || { echo "SKIP: no $HAGENT_BUILD/bin/hagentd"; exit 77; }
[ -f "$HAGENT_BUILD/tests/guest/testguest.elf" ] || { echo "SKIP: no $HAGENT_BUILD/tests/guest/testguest.elf"; exit 77; }
export HAGENT_BUILD
VMLAB=$SRC/tests/vmlab/vmlab
FENCE=$SRC/tests/vmlab/fence_vmlab # the same path inside the hosts
VMLAB_DIR=$(mktemp -d /tmp/hagent-vmlab-test.XXXXXX)
export VMLAB_DIR
unset VMLAB_KEEP
VMLAB_RC=$SRC/tests/vmlab/rc-hagentd
export VMLAB_RC
WAIT=${VMLAB_TEST_WAIT:-90} # seconds for a membership change

# shellcheck source=tests/vmlab/tap.sh
. "$SRC/tests/vmlab/tap.sh"
vmlab() { "$VMLAB" "$@"; }
secs() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }

CGDIR=
DOWN_DONE=
cleanup() {
	[ -n "$DOWN_DONE" ] || "$VMLAB" down >/dev/null 2>&1
	rm -rf "$VMLAB_DIR" "$VMLAB_DIR.seen"
}
trap cleanup EXIT

# Every process the lab ever had on the machine, as "pid:starttime".
SEEN=$VMLAB_DIR.seen
record_procs() {
	local g p
	[ -n "$CGDIR" ] || return 0
	for g in "$CGDIR"/*/; do
		for p in $(cat "$g/cgroup.procs" 2>/dev/null); do
			echo "$p:$(awk '{ print $22 }' "/proc/$p/stat" 2>/dev/null)"
		done
	done >>"$SEEN"
}
survivors() {
	local e p st
	[ -f "$SEEN" ] || return 0
	for e in $(sort -u "$SEEN"); do
		p=${e%%:*}
		st=$(awk '{ print $22 }' "/proc/$p/stat" 2>/dev/null) || continue
		[ "$p:$st" = "$e" ] || continue
		[ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" = Z ] && continue
		echo "$p($(cat "/proc/$p/comm" 2>/dev/null))"
	done
}
shows() { # node members quorate(Yes/No)
	local q
	q=$(vmlab exec "$1" corosync-quorumtool -s </dev/null 2>/dev/null)
	echo "$q" | grep -Eq "^Nodes: +$2\$" && echo "$q" | grep -Eq "^Quorate: +$3\$"
}
timed_wait() { # node count -> prints ms since T0, fails on timeout
	vmlab wait "$1" "$2" "$WAIT" </dev/null && echo "$(($(now_ms) - T0))"
}
hagentd_members() { # node count: its hactl status lists COUNT members with hagentd up
	[ "$(vmlab exec "$1" hactl status </dev/null 2>/dev/null | grep -c 'member, hagentd up')" = "$2" ]
}
show_hagentd() { # node: why not (for the log)
	vmlab exec "$1" hactl status </dev/null 2>&1 | sed "s/^/# $1 hactl status: /"
	tail -n 5 "$VMLAB_DIR/$1/vm/log/hagentd.log" 2>/dev/null | sed "s/^/# $1 hagentd.log: /"
	tail -n 5 "$VMLAB_DIR/$1/vm/log/rc.local.log" 2>/dev/null | sed "s/^/# $1 rc.local.log: /"
}
# fence_from NODE LINE...: run fence_vmlab inside NODE with these stdin lines;
# its exit status in FRC, its output (stdout and stderr) in FOUT
fence_from() {
	local n=$1
	shift
	FOUT=$(printf '%s\n' "$@" | "$VMLAB" exec "$n" "$FENCE" 2>&1)
	FRC=$?
	echo "$FOUT" | sed "s/^/# $n fence_vmlab: /"
}
failed_saying() { [ "$FRC" != 0 ] && echo "$FOUT" | grep -qF -- "$1"; }

# --- up -------------------------------------------------------------------------
T0=$(now_ms)
if ! vmlab up 2 </dev/null; then
	not_ok "vmlab up 2"
	echo "# $CHECKS checks, $FAILS failed"
	exit 1
fi
echo "# vmlab up 2 (image included): $(secs $(($(now_ms) - T0))) s"
ok "vmlab up 2"
CGDIR=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)/hagent-vmlab-$(printf '%s' "$VMLAB_DIR" | cksum | cut -d' ' -f1)
record_procs
# the switch namespace (bridges, taps): net:[inode]
SWNS=$(readlink "/proc/$(cat "$VMLAB_DIR/sw/holder.pid")/ns/net" | tr -dc 0-9)
check "the switch namespace holds the taps t1 m1 t2 m2" \
	sh -c "nsenter -n -t '$(cat "$VMLAB_DIR/sw/holder.pid")' ip -o link show | grep -c ': [tm][12]:' | grep -qx 4"

for n in x1 x2; do
	caps=$(vmlab exec $n xl info </dev/null 2>/dev/null | awk -F': ' '$1 ~ /^virt_caps/ { print $2 }')
	echo "# $n virt_caps: $caps"
	check "$n: xl info shows virt_caps with hvm (PVH guests)" sh -c "echo '$caps' | grep -qw hvm"
	check "$n: corosync shows 2 members, quorate" shows $n 2 Yes
done
check "exec passes the exit status" sh -c "'$VMLAB' exec x1 sh -c 'exit 3' </dev/null; test \$? = 3"
check "exec keeps the arguments" \
	test "$(vmlab exec x1 printf '%s|' "a b" "it's" '$HOME' </dev/null)" = "a b|it's|\$HOME|"
check "exec passes stdin" test "$(echo hello | vmlab exec x2 cat)" = hello
check "hostname inside x2 is x2" test "$(vmlab exec x2 hostname </dev/null)" = x2
check "x1 has 192.0.2.11 on xenbr0" sh -c "'$VMLAB' exec x1 ip -4 -br addr show xenbr0 </dev/null | grep -q 192.0.2.11/24"
check "x1 reaches x2 on the cluster link" sh -c "'$VMLAB' exec x1 ping -c 1 -W 5 192.0.2.12 </dev/null >/dev/null"
check "hagentd's libraries resolve in x1 (/opt/hagent)" \
	sh -c "'$VMLAB' exec x1 ldd /opt/hagent/bin/hagentd </dev/null >/dev/null && ! '$VMLAB' exec x1 ldd /opt/hagent/bin/hagentd </dev/null | grep -q 'not found'"
check "x2 sees the lab's shared directory" vmlab exec x2 test -f /vmlab/shared/testguest.elf </dev/null
check "x2 sees the shared directory, the build and the sources at the machine's paths" \
	vmlab exec x2 sh -c "test -f '$VMLAB_DIR/shared/testguest.elf' && test -x '$HAGENT_BUILD/bin/hagentd' && test -f '$SRC/tests/vmlab/vmlab'" </dev/null
check "status shows 2 hosts up" test "$(vmlab status | grep -c '^x[0-9]* up ')" = 2

# --- hagentd in the hosts (rc-hagentd) ----------------------------------------------
T0=$(now_ms)
if until_true 60 hagentd_members x1 2; then
	ok "x1: hactl status lists 2 members with hagentd up"
	echo "# hagentd: 2 members in x1's hactl $(secs $(($(now_ms) - T0))) s after up returned"
else
	not_ok "x1: hactl status lists 2 members with hagentd up"
	show_hagentd x1
fi
check "x2: hactl status lists 2 members with hagentd up" until_true 30 hagentd_members x2 2
check "x1: hagentd fences with fence_vmlab (hactl status)" \
	sh -c "'$VMLAB' exec x1 hactl status </dev/null | grep -E '^x2 ' | grep -qF 'agent $FENCE'"

# --- a PVH test guest under the nested Xen ----------------------------------------
cat >"$VMLAB_DIR/shared/tg.cfg" <<EOF
name = "tg"
type = "pvh"
kernel = "/vmlab/shared/testguest.elf"
memory = 32
vcpus = 1
on_crash = "preserve"
EOF
T0=$(now_ms)
if vmlab exec x1 xl create /vmlab/shared/tg.cfg </dev/null; then
	ok "x1: xl create of the PVH test guest"
	echo "# xl create: $(secs $(($(now_ms) - T0))) s"
else
	not_ok "x1: xl create of the PVH test guest"
fi
DOMID=$(vmlab exec x1 xl domid tg </dev/null 2>/dev/null)
echo "# tg is domain ${DOMID:-?}"
heartbeats() { # SECS: the guest's HB 3 shows in xl dmesg
	local end=$(($(now_ms) + $1 * 1000))
	while [ "$(now_ms)" -lt "$end" ]; do
		vmlab exec x1 xl dmesg </dev/null 2>/dev/null | grep -Eq "^\(d$DOMID\) (\[[ 0-9.]+\] )?HB 3\$" && return 0
		sleep 1
	done
	return 1
}
if heartbeats 60; then
	ok "x1: the guest's heartbeats (port 0xe9) are in xl dmesg"
	echo "# heartbeat 3 seen $(secs $(($(now_ms) - T0))) s after xl create"
else
	not_ok "x1: the guest's heartbeats (port 0xe9) are in xl dmesg"
	vmlab exec x1 xl dmesg </dev/null 2>/dev/null | tail -n 10 | sed 's/^/# /'
fi
check "x1: the guest's boot line is in xl dmesg" \
	sh -c "'$VMLAB' exec x1 xl dmesg </dev/null | grep -Eq '^\(d$DOMID\) (\[[ 0-9.]+\] )?TESTGUEST boot'"
check "x1: xl destroy tg" vmlab exec x1 xl destroy tg </dev/null

# --- kill / start ---------------------------------------------------------------------
record_procs
T0=$(now_ms)
check "vmlab kill x2" vmlab kill x2
if ms=$(timed_wait x1 1); then
	ok "x1 sees 1 member after x2's power loss"
	echo "# membership after kill: $(secs "$ms") s"
else
	not_ok "x1 sees 1 member after x2's power loss"
fi
check "x1 is not quorate alone" shows x1 1 No
check "x2's cgroup is empty" test -z "$(cat "$CGDIR/x2/cgroup.procs" 2>/dev/null)"
check "exec on a killed host is an error" sh -c "! '$VMLAB' exec x2 true </dev/null 2>/dev/null"
check "vmlab kill x2 again is an error" sh -c "! '$VMLAB' kill x2 2>/dev/null"
T0=$(now_ms)
check "vmlab start x2" vmlab start x2 </dev/null
echo "# start x2 (to xl and 2 members): $(secs $(($(now_ms) - T0))) s"
record_procs
check "x1 shows 2 members again" shows x1 2 Yes
check "x2 shows 2 members" shows x2 2 Yes
if until_true 60 hagentd_members x1 2; then
	ok "x2's hagentd is back after start (x1's hactl: 2 members with hagentd up)"
else
	not_ok "x2's hagentd is back after start (x1's hactl: 2 members with hagentd up)"
	show_hagentd x2
fi

# --- partition / heal ---------------------------------------------------------------
T0=$(now_ms)
check "vmlab partition x2" vmlab partition x2
if ms=$(timed_wait x1 1) && timed_wait x2 1 >/dev/null; then
	ok "x1 and x2 each alone after the partition"
	echo "# membership after partition: $(secs "$ms") s"
else
	not_ok "x1 and x2 each alone after the partition"
fi
check "exec still reaches the partitioned x2" vmlab exec x2 true </dev/null
check "x2's cluster link kept its carrier" \
	sh -c "'$VMLAB' exec x2 ip -o link show master xenbr0 </dev/null | grep -q LOWER_UP"
T0=$(now_ms)
check "vmlab heal x2" vmlab heal x2
if ms=$(timed_wait x1 2) && timed_wait x2 2 >/dev/null; then
	ok "2 members again after heal"
	echo "# membership after heal: $(secs "$ms") s"
else
	not_ok "2 members again after heal"
fi

# --- the fence device (fence_vmlab in a host -> the lab's service) ------------------
FPID=$(cat "$VMLAB_DIR/fence/socat.pid" 2>/dev/null)
HP=$(cat "$VMLAB_DIR/sw/holder.pid")
check "status shows the fence device up" sh -c "'$VMLAB' status | grep -q '^fence up 198.51.100.1:1229 socat=$FPID '"
check "the fence device listens on the management address only (198.51.100.1:1229)" \
	test "$(nsenter -n -t "$HP" ss -Hltn 'sport = :1229' | awk '{ print $4 }')" = 198.51.100.1:1229
check "the switch has no IPv4 address on the cluster bridge (the device is not on that link)" \
	test -z "$(nsenter -n -t "$HP" ip -4 -o addr show dev br0)"
check "fence_vmlab metadata names fence_vmlab (on the machine, no lab needed)" \
	sh -c "echo action=metadata | '$FENCE' | grep -qF '<resource-agent name=\"fence_vmlab\"'"
fence_from x2 action=monitor
check "x2: fence_vmlab monitor exits 0" test "$FRC" = 0
fence_from x2 action=off plug=x9 port=x9
check "x2: fence_vmlab with the unknown plug x9 fails, saying so" failed_saying "unknown plug 'x9'"
fence_from x2 action=off plug=n1 port=n1
check "x2: fence_vmlab with plug n1 (not a vmlab name) fails, saying so" failed_saying "unknown plug 'n1'"
fence_from x2 action=off plug=x1 port=x1 key_file=/etc/hostname
check "x2: fence_vmlab with a wrong key fails (authentication failed)" failed_saying "authentication failed"
cp "$VMLAB_DIR/x1/vm/fence.key" "$VMLAB_DIR/shared/stolen.key"
fence_from x2 action=off plug=x1 port=x1 login=x1 key_file=/vmlab/shared/stolen.key
rm -f "$VMLAB_DIR/shared/stolen.key"
check "x2 with x1's key is refused: not x1's management address" \
	failed_saying "authentication failed: x1 connects from 198.51.100.11, not 198.51.100.12"
check "x1 is still up after the refused requests" sh -c "'$VMLAB' status | grep -q '^x1 up '"
fence_from x2 action=status plug=x1
check "x2: fence_vmlab status of x1 says on (exit 0)" test "$FRC" = 0

# the real thing: x1 partitioned (its cluster link cut), fenced from x2 over
# the management link, as hagentd in x2 would
check "vmlab partition x1" vmlab partition x1
QPID=$(cat "$VMLAB_DIR/x1/qemu.pid")
T0=$(now_ms)
FOUT=$(vmlab exec x2 bash -c 't0=$(date +%s%3N)
	printf "action=off\nplug=x1\nport=x1\n" | "$1"
	rc=$?
	echo "agent-ms=$(($(date +%s%3N) - t0))"
	exit $rc' sh "$FENCE" </dev/null 2>&1)
FRC=$?
FMS=$(($(now_ms) - T0))
echo "$FOUT" | sed 's/^/# x2 fence_vmlab: /'
check "x2: fence_vmlab off plug=x1 exits 0" test "$FRC" = 0
check "x1's QEMU (pid $QPID) is gone once fence_vmlab returned" sh -c "! [ -d /proc/$QPID ] || grep -q '^State:.*Z' /proc/$QPID/status"
check "x1's cgroup is empty" test -z "$(cat "$CGDIR/x1/cgroup.procs" 2>/dev/null)"
check "vmlab status shows x1 killed and fenced by x2" sh -c "'$VMLAB' status | grep -q '^x1 killed .* fenced by=x2 '"
GONE=$(echo "$FOUT" | sed -n 's/.*gone after \([0-9]*\) ms.*/\1/p')
AGENT=$(echo "$FOUT" | sed -n 's/^agent-ms=//p')
echo "# fence x1 from x2: request -> QEMU gone ${GONE:-?} ms (the device's count), fence_vmlab ${AGENT:-?} ms inside x2, vmlab exec $FMS ms on the machine"
fence_from x2 action=off plug=x1 port=x1
check "x2: fencing the already-off x1 exits 0" sh -c "[ '$FRC' = 0 ] && echo \"\$1\" | grep -q 'it was already'" sh "$FOUT"
fence_from x2 action=status plug=x1
check "x2: fence_vmlab status of x1 says off (exit 2)" test "$FRC" = 2
check "the device logged the requests" grep -qF 'from x2 (198.51.100.12): "off x1" -> ok x1 is off (QEMU pid' "$VMLAB_DIR/fence/fence.log"
T0=$(now_ms)
check "vmlab start x1 after the fencing" vmlab start x1 </dev/null
echo "# start x1 (to xl and 2 members): $(secs $(($(now_ms) - T0))) s"
check "status shows x1 up and no longer fenced" sh -c "'$VMLAB' status | grep '^x1 ' | grep -v fenced | grep -q '^x1 up '"
check "x1's hagentd is back (2 members with hagentd up)" until_true 60 hagentd_members x1 2

# --- down -------------------------------------------------------------------------
record_procs
T0=$(now_ms)
check "vmlab down" vmlab down
DOWN_DONE=1
echo "# down: $(($(now_ms) - T0)) ms"
check "no lab process remains ($(survivors | tr '\n' ' '))" test -z "$(survivors)"
check "no lab cgroup remains" test ! -e "$CGDIR"
check "the lab directory is gone" test ! -e "$VMLAB_DIR"
check "the switch namespace is gone (net:[${SWNS:-?}])" sh -c "[ -n '$SWNS' ] && ! lsns -t net -n -o NS | grep -qx '$SWNS'"
check "no tap of the lab was moved to the machine" sh -c "! ip -o link show | grep -Eq ': (t1|t2|m1|m2|mg0)[:@]'"
check "no QEMU of the lab left" sh -c "! pgrep -f -- '[-]virtfs local,path=$VMLAB_DIR/' >/dev/null"
check "the fence device (socat pid ${FPID:-?}) is gone" \
	sh -c "[ -n '$FPID' ] && { ! [ -d /proc/$FPID ] || grep -q '^State:.*Z' /proc/$FPID/status; }"
check "vmlab down again says there is no lab" sh -c "'$VMLAB' down 2>&1 | grep -q 'no lab'"
rm -f "$SEEN"

echo "# $CHECKS checks, $FAILS failed"
[ "$FAILS" -eq 0 ]

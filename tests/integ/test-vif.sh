#!/bin/bash
# A vif with a bridge gets a tap on that bridge with the guest's MAC and NIC
# model, through QEMU's bridge helper.  Runs in its own network and mount
# namespace: the bridge and /etc/qemu/bridge.conf exist only there.
. "$(dirname "$0")/lib.sh"
command -v ip >/dev/null || { echo "SKIP: no ip"; exit 77; }
[ -x /usr/lib/qemu/qemu-bridge-helper ] || { echo "SKIP: no qemu-bridge-helper"; exit 77; }
if [ -z "${IN_NS:-}" ]; then
	# re-run this script inside fresh namespaces; lib.sh's cleanup runs there
	rm -rf "$T"
	trap - EXIT
	IN_NS=1 exec unshare -n -m --propagation private "$0" "$@"
fi
ip link set lo up
ip link add hatest0 type bridge
ip link set hatest0 up
mount -t tmpfs tmpfs /etc/qemu 2>/dev/null || { mkdir -p /etc/qemu && mount -t tmpfs tmpfs /etc/qemu; }
echo "allow hatest0" >/etc/qemu/bridge.conf
write_conf
start_daemon || exit 1

f=$(guest_file net1 'vif = [ "mac=00:16:3e:12:34:56,bridge=hatest0,model=e1000" ]')
check "guest with a bridged vif added" hactl add "$f"
check "and started" hactl start net1
check "it runs" wait_hb net1 1 10
ports=$(ip -o link show master hatest0 | awk -F': ' '{print $2}')
echo "bridge ports: $ports"
check "a tap is attached to the bridge" test -n "$ports"
pid=$(qemu_pid net1)
check "QEMU has the MAC and model" grep -qa "e1000,netdev=net0,id=vif0,mac=00:16:3e:12:34:56" "/proc/$pid/cmdline"
check "destroy" hactl destroy net1
check "the tap is gone with QEMU" test -z "$(ip -o link show master hatest0)"

f=$(guest_file net2 'vif = [ "bridge=nosuchbr" ]')
hactl add "$f" >/dev/null
hactl start net2 >"$T/out" 2>&1
rc=$?
cat "$T/out"
check "a bridge QEMU may not use: start fails" test $rc -ne 0
check "... with QEMU's own reason" grep -qi "bridge" "$T/out"
finish

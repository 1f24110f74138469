# shellcheck shell=bash disable=SC2016 # eval '...' strings expand in the host
# storage.sh — shared storage for the VM lab (tests/vmlab/vmlab), issue 8:
# iSCSI LUNs (tgt on one host, open-iscsi on the others), a shared LVM volume
# group on such a LUN, and DRBD 8.4 resources between two hosts.
#
# A library: `. tests/vmlab/storage.sh`, then set VMLAB to the vmlab command
# (VMLAB=tests/vmlab/vmlab; VMLAB_DIR as for vmlab itself).  Every step runs in
# a host's dom0 as `$VMLAB exec HOST bash -c ... </dev/null`, bounded by
# `timeout` in the host and on the machine.  Functions print what they make
# on stdout, errors on stderr, and return non-zero on failure.  They are
# idempotent: run again, they check and complete what exists.
#
#   st_iscsi_target HOST NAME MIB     tgtd on HOST, file-backed LUN 1 of MIB MiB
#                                     (/var/lib/vmlab-iscsi/NAME.img), target
#                                     iqn.2026-11.invalid.hagent:NAME, open to
#                                     192.0.2.0/24; prints the IQN
#   st_iscsi_login HOST TARGET_HOST NAME   log HOST in (portal 192.0.2.(10+K):3260
#                                     of TARGET_HOST=xK); prints the disk (/dev/sdX)
#   st_iscsi_logout HOST TARGET_HOST NAME  log out (refused while the disk has
#                                     holders, e.g. active LVs)
#   st_iscsi_dev HOST TARGET_HOST NAME     print the disk of that session
#   st_iscsi_state HOST TARGET_HOST NAME   print "session state, device state"
#   st_lvm_shared VG HOST...          pvcreate + vgcreate VG on the first host's
#                                     iSCSI disk, the VG checked visible on the
#                                     others; ST_LUN=NAME picks the LUN when a
#                                     host has several
#   st_lv_create HOST VG LV MIB [HOST...]  an LV, left inactive on HOST and on the
#                                     other hosts (default: those given to
#                                     st_lvm_shared for VG)
#   st_lvm_setup HOST                 the LVM configuration below (the others
#                                     call it)
#   st_drbd HOST_A HOST_B RES MINOR MIB    DRBD resource RES (/dev/drbdMINOR, port
#                                     7788+MINOR on the cluster link), backing
#                                     loop devices, initial sync from HOST_A,
#                                     both left Secondary, UpToDate, Connected
#   st_drbd_state HOST RES            "RES role:A/B disk:A/B conn:C" (drbdadm)
#   st_drbd_role HOST RES primary|secondary [--force]
#   st_drbd_down HOST RES             drbdadm down (the backing file stays)
#
# Environment: VMLAB (required), ST_TIMEOUT (seconds for a step that waits:
# login, connect, sync; 120), ST_LUN (see st_lvm_shared),
# ST_ISCSI_REPLACEMENT_TIMEOUT (node.session.timeo.replacement_timeout set
# before login; default: open-iscsi's 120 s), ST_DRBD_NET (text inside the
# resource's `net { }`, e.g. "ping-timeout 20;"), ST_DRBD_EXTRA (more
# sections of the resource, e.g. disk { fencing resource-only; } handlers {
# fence-peer "/path"; }).
#
# ---------------------------------------------------------------------------
# Measured facts (Debian 12 dom0 of a vmlab host: kernel 6.1, in-tree DRBD
# 8.4.11, drbd-utils 9.22.0, open-iscsi 2.1.8, tgt 1.0.85, lvm2 2.03.16;
# 1 vCPU under QEMU TCG; 2026-11, tests/vmlab/storage-demo.sh and by hand)
#
# The dom0 (PID 1 tests/vmlab/init) has no udevd, but /run is the initramfs'
# one, moved over, and keeps a stale /run/udev/control: libdevmapper then
# believes udev runs and waits for udev to complete its cookie.  With
# Debian's lvm.conf (udev_sync = 1), `lvchange -an vgshared/web1` hung for 11
# minutes in semtimedop and ignored SIGTERM (`timeout 20` did nothing; `kill
# -9` and `dmsetup udevcomplete_all -y` freed it).  So st_lvm_setup writes
# /etc/lvm/lvmlocal.conf (read after lvm.conf, any section; checked with
# `lvmconfig --type full activation/udev_sync`):
#     devices { obtain_device_list_from_udev = 0  use_devicesfile = 0 }
#     activation { udev_sync = 0  udev_rules = 0 }
# With it LVM makes /dev/mapper/VG-LV and the /dev/VG/LV links itself.
# Without udev nothing loads modules for new devices either: the iSCSI LUN
# shows up as a SCSI device but has no /dev/sdX until `modprobe sd_mod`.
# /dev/disk/by-path holds only the initramfs' links (vda): find the disk in
# sysfs, /sys/class/iscsi_session/sessionN/device/target*/*:*:*:1/block/*.
# All hosts share one image, hence one /etc/iscsi/initiatorname.iscsi
# (iqn.1993-08.org.debian:01:54a425982080 on every host): st_iscsi_login
# writes iqn.2026-11.invalid.hagent:initiator.xK before starting iscsid.
# iscsiadm also needs /run/lock/iscsi ("Could not open /run/lock/iscsi").
#
# LVM on a plain shared VG (no lvmlockd, no lvmetad in 2.03): every command
# reads the disks, so an LV made on x2 is listed by `lvs` on x3 at once, no
# vgscan, pvscan --cache or lvscan needed (measured: lvcreate on x2, then lvs
# on x3 right away).  What a host does not see is a change to an LV that is
# *active* there: after lvextend on x2, x3's `lvs` shows the new size with
# attributes -wi-XX--X- (dm table does not match) and the device keeps its
# old size until `lvchange --refresh VG/LV` on x3.
# `lvchange -aey VG/LV` works on a plain VG and is a local -ay: it ran on x3
# and then on x2, both succeeded, both had /dev/mapper/vgshared-web1, and
# each host's `lvs -o lv_active_exclusively` said "active exclusively".
# No protection across hosts whatsoever: exclusivity is hagent's job.
# lvcreate -an warns "Logical volume ... not zeroed": st_lv_create creates
# it active (zeroes the start, wipes signatures), then lvchange -an.
#
# DRBD 8.4 with drbd-utils 9.22: drbdadm/drbdsetup see the 8.4 module and
# run /usr/lib/drbd/drbdadm-84, drbdsetup-84.  `drbdsetup events2` WORKS
# with the 8.4 module (drbdsetup-84 implements it, in the DRBD 9 format; the
# peer is always peer-node-id:0 conn-name:peer).  `drbdsetup events2 --now r0`:
#   exists resource name:r0 role:Secondary suspended:no
#   exists connection name:r0 peer-node-id:0 conn-name:peer connection:Connected role:Secondary
#   exists device name:r0 volume:0 minor:0 disk:Inconsistent
#   exists peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Established peer-disk:Inconsistent resync-suspended:no
#   exists -
# Streaming, `drbdsetup events2 --timestamps all` (the "exists" lines, then
# "change"/"create"/"destroy"/"call helper"/"response helper"):
#  drbdadm primary r0 (local, x2):
#   2026-11-26T00:33:02.623357+00:00 change resource name:r0 role:Primary
#  ... as seen on the peer x3:
#   2026-11-26T00:33:03.131815+00:00 change connection name:r0 peer-node-id:0 conn-name:peer role:Primary
#  drbdadm disconnect r0 on x3, seen on x2 (the Primary):
#   00:33:05.173754 change connection name:r0 peer-node-id:0 conn-name:peer connection:TearDown role:Unknown
#   00:33:05.173754 change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Off peer-disk:DUnknown
#   00:33:05.214261 change connection name:r0 peer-node-id:0 conn-name:peer connection:Unconnected
#   00:33:05.214911 change connection name:r0 peer-node-id:0 conn-name:peer connection:Connecting
#  ... and on x3 itself:
#   00:33:05.697837 change connection name:r0 peer-node-id:0 conn-name:peer connection:Disconnecting role:Unknown
#   00:33:05.736490 change connection name:r0 peer-node-id:0 conn-name:peer connection:StandAlone
#   00:33:05.738569 destroy peer-device name:r0 peer-node-id:0 conn-name:peer volume:0
#   00:33:05.738569 destroy connection name:r0 peer-node-id:0 conn-name:peer
#  drbdadm connect r0 on x3 (x3 was Outdated meanwhile), on x3:
#   00:33:08.293946 create connection name:r0 peer-node-id:0 conn-name:peer connection:StandAlone role:Unknown
#   00:33:08.306974 change connection name:r0 peer-node-id:0 conn-name:peer connection:Connecting
#   00:33:08.851856 change connection name:r0 peer-node-id:0 conn-name:peer connection:Connected
#   00:33:08.874710 change connection name:r0 peer-node-id:0 conn-name:peer role:Primary
#   00:33:08.874710 change device name:r0 volume:0 minor:0 disk:Outdated
#   00:33:08.874710 change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:WFBitMapT peer-disk:UpToDate
#   00:33:09.161297 change device name:r0 volume:0 minor:0 disk:Inconsistent
#   00:33:09.161297 change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:SyncTarget
#   00:33:09.302897 change device name:r0 volume:0 minor:0 disk:UpToDate
#   00:33:09.302897 change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Established
#  disk state: drbdadm detach r0 / attach r0 on x3, on x3:
#   00:33:12.975690 change device name:r0 volume:0 minor:0 disk:Failed
#   00:33:12.976324 change device name:r0 volume:0 minor:0 disk:Diskless
#   00:33:15.839567 change device name:r0 volume:0 minor:0 disk:Attaching
#   00:33:15.849529 change device name:r0 volume:0 minor:0 disk:Negotiating
#   00:33:15.853537 change device name:r0 volume:0 minor:0 disk:Inconsistent
#  ... on x2: change peer-device ... peer-disk:Failed, then peer-disk:Diskless
#  link loss (vmlab partition x3 while x2 Primary), on x2, 4.4 s later:
#   00:34:14.794782 change connection name:r0 peer-node-id:0 conn-name:peer connection:NetworkFailure role:Unknown
#   00:34:14.866429 change connection name:r0 peer-node-id:0 conn-name:peer connection:Connecting
#   00:34:14.869255 call helper name:r0 peer-node-id:0 conn-name:peer helper:fence-peer
#   00:34:15.491407 response helper name:r0 peer-node-id:0 conn-name:peer helper:fence-peer status:1792
#   00:34:15.491974 change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 peer-disk:Outdated
# (status is the wait status: 1792 = exit 7 << 8).  Helpers show as "call
# helper"/"response helper" (before-resync-source, after-resync-target,
# unfence-peer after a resync when fencing is on, fence-peer).  The old
# `drbdsetup all events` / `drbdsetup r0 events` (8.4 format: "ST-prev",
# "ST-new", "ST 0,r0[0] { cs:Connected ro:Primary/Secondary
# ds:UpToDate/UpToDate r--- }", "SP" sync progress, "UH"/"UH-post" helpers)
# work too.  events2 is the event source to use; /proc/drbd is not needed.
# Link-loss detection is DRBD's ping: ping-int 10 s, ping-timeout 0.5 s by
# default (and the "timeout" 6 s for pending requests).
#
# Dual primary, at runtime: without it `drbdadm primary r0` on the second
# host fails: "State change failed: (-1) Multiple primaries not allowed by
# config", exit 11.  `drbdadm net-options --allow-two-primaries=yes r0` on
# ONE host (x2) was enough while Connected: `drbdsetup show r0` on x3 showed
# allow-two-primaries yes as well (the peer takes the changed protocol
# settings); `drbdadm primary r0` on x3 then worked, `drbdadm role r0` =
# Primary/Primary.  Do it on both hosts anyway (a reconnect renegotiates;
# `drbdadm adjust` resets to the file).  `--allow-two-primaries=no` while both
# are Primary fails: "Failure: (164) Can not clear allow_two_primaries as long
# as there a primaries on both sides", exit 10.  Order that works:
#   x2: drbdadm net-options --allow-two-primaries=yes r0   (x3: the same)
#   x3: drbdadm primary r0          -> Primary/Primary
#   x3: drbdadm secondary r0        -> x3 Secondary/Primary
#   x2: drbdadm net-options --allow-two-primaries=no r0    -> rc 0
#   x3: drbdadm primary r0          -> exit 11 again (not allowed)
#
# fence-peer (disk { fencing resource-only; } handlers { fence-peer
# "/usr/local/sbin/vmlab-fence-env"; }, drbdadm adjust on both): not called
# by `drbdadm disconnect` on the Secondary peer, nor by `drbdadm disconnect`
# on the Primary itself (graceful: the peer is marked Outdated, pdsk
# Outdated, no handler); called on the Primary when the link is lost
# (`vmlab partition x3`, silent drop): about 4.4 s after the cut, the
# kernel runs `/sbin/drbdadm fence-peer r0`, which runs the handler with
# cwd /, no arguments, and this environment (complete `env | sort`):
#   DRBD_CONF=/etc/drbd.conf
#   DRBD_DONT_WARN_ON_VERSION_MISMATCH=1
#   DRBD_MINOR=0
#   DRBD_PEER=x3
#   DRBD_PEERS=x3
#   DRBD_PEER_ADDRESS=192.0.2.13
#   DRBD_PEER_AF=ipv4
#   DRBD_RESOURCE=r0
#   HOME=/
#   PATH=/sbin:/usr/sbin:/bin:/usr/bin:/lib/drbd
#   PWD=/
#   TERM=linux
# Exit codes (kernel drbd_nl.c conn_try_outdate_peer(), 8.4): 3 peer is
# Inconsistent or worse (pdsk := Inconsistent); 4 peer was fenced, i.e.
# Outdated now or before (pdsk := Outdated); 5 peer unreachable: pdsk :=
# Outdated if our disk is UpToDate ("assumed to be dead"), else nothing;
# 6 peer is Primary: outdate MYSELF (disk := Outdated); 7 peer was STONITHed
# (pdsk := Outdated; logs "fence-peer() = 7 && fencing != Stonith !!!" unless
# fencing resource-and-stonith); anything else: "fence-peer helper broken",
# nothing changes (with resource-and-stonith, I/O stays frozen).  Measured
# with 7: kernel log "fence-peer helper returned 7 (peer was stonithed)",
# pdsk( DUnknown -> Outdated ), role stayed Primary, WFConnection.  After the
# heal it reconnected and resynced by itself.
#
# iSCSI session state: /sys/class/iscsi_session/sessionN/state (LOGGED_IN,
# FAILED, FREE), /sys/class/iscsi_connection/connectionN:0/state (up,
# failed), the disk's /sys/block/sdX/device/state (running, blocked,
# transport-offline); `iscsiadm -m session -P 1` shows "iSCSI Connection
# State: TRANSPORT WAIT / iSCSI Session State: FAILED / Internal iscsid
# Session State: REOPEN" while the target is gone.  tgtd killed (kill -9 on
# x1): the initiators see the TCP close at once ("detected conn error
# (1020)"); within 0.4-1.3 s the session is FAILED, connection failed, disk
# blocked (I/O queued).  After replacement_timeout (open-iscsi default
# node.session.timeo.replacement_timeout = 120) the session reads FREE and
# the disk transport-offline: I/O fails (open: "No such device or address").
# A silent link loss is found by the NOP-Out ping (noop_out_interval 5 s,
# noop_out_timeout 5 s): "ping timeout of 5 secs expired".  Set the timeout
# before login with `iscsiadm -m node -T IQN -p ADDR:3260 -o update -n
# node.session.timeo.replacement_timeout -v 5` (ST_ISCSI_REPLACEMENT_TIMEOUT
# here) or on a live session with `echo 5 >
# /sys/class/iscsi_session/sessionN/recovery_tmo` (measured: "session
# recovery timed out after 5 secs").  tgtd keeps its targets in memory only:
# after a restart st_iscsi_target must be run again; iscsid keeps retrying
# and the sessions come back to LOGGED_IN/running by themselves (2-3 s after
# the target was back, even after the replacement timeout had expired).
#
# Times (1 vCPU TCG dom0, nice 10).  In the host (bash `time`): tgtd start
# 0.1 s, tgtadm new target 0.05 s, LUN + bind ~0.1 s; modprobe iscsi_tcp
# 0.2 s, iscsid 0.15 s, discovery 0.19 s, --login 0.3 s, then the LUN's
# /dev/sdX about 0.6 s later (modprobe sd_mod); pvcreate + vgcreate 1.3 s +
# 0.8 s; lvcreate 0.5 s; lvchange -ay 0.36 s; drbdadm create-md 0.7 s, up
# 0.6-0.8 s; initial sync of 32-33 MiB 8-10.5 s (default resync controller);
# drbdadm primary 0.17-0.4 s, secondary 0.17-0.3 s.  Per function, from
# the machine (each `vmlab exec` adds 0.3-0.4 s), storage-demo.sh in a fresh
# lab, two runs: st_iscsi_target 1.8-2.4 s, st_iscsi_login 1.5-3.7 s,
# st_lvm_shared (2 hosts) 5.8-7.7 s, st_lv_create (2 hosts) 5.9-6.1 s,
# st_drbd 32 MiB 22.7-23.3 s (the sync 10.3-10.5 s of it; 7.6-9.3 s when
# all is there already), st_drbd_role primary 0.5-0.9 s / secondary
# 0.5-1.1 s, st_iscsi_logout 0.6-1.5 s, st_drbd_state 0.8-1.7 s; the whole
# demo 106-136 s, of which `vmlab up 3` 43-62 s.
# ---------------------------------------------------------------------------

ST_TIMEOUT=${ST_TIMEOUT:-120}
ST_IQN_PREFIX=iqn.2026-11.invalid.hagent
ST_SUBNET=192.0.2
ST_ISCSI_PORT=3260
ST_DRBD_PORT=7788

st__err() { echo "storage: $*" >&2; }

st__k() { # xK -> K
	case $1 in
	x[1-9]) echo "${1#x}" ;;
	*) st__err "bad host name '$1' (x1..x9)"; return 1 ;;
	esac
}

st__addr() { # xK -> its cluster address
	local k
	k=$(st__k "$1") || return 1
	echo "$ST_SUBNET.$((10 + k))"
}

st__name() { # WHAT VALUE: a name usable in paths, IQNs and DRBD
	case $2 in
	'' | *[!A-Za-z0-9_.-]* | [.-]*) st__err "bad $1 '$2' (letters, digits, _ . -)"; return 1 ;;
	esac
}

st__num() { # WHAT VALUE [MIN]
	case $2 in
	'' | *[!0-9]*) st__err "bad $1 '$2' (a number)"; return 1 ;;
	esac
	[ "$2" -ge "${3:-0}" ] || { st__err "$1 must be at least ${3:-0}"; return 1; }
}

# --- run in a host ---------------------------------------------------------------
# The host side is written as shell functions below (st__r_*), sent with
# `declare -f` and run by bash in the host; st__r_fail exits that bash.

st__r_fail() { echo "$(uname -n): $*" >&2; exit 1; }

st__r_until() { # SECS CMD...: poll every 0.2 s until CMD succeeds
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.2
	done
}

# st__run HOST SECS FUNC ARGS...: FUNC ARGS in HOST, at most SECS (plus the
# ssh set-up) on the machine's clock
st__run() {
	local host=$1 secs=$2 fn=$3 rc
	shift 3
	[ -n "${VMLAB:-}" ] || { st__err "set VMLAB to the vmlab command (VMLAB=tests/vmlab/vmlab)"; return 1; }
	st__k "$host" >/dev/null || return 1
	# shellcheck disable=SC2086,SC2046 # VMLAB is a command line
	timeout -k 10 "$((secs + 30))" $VMLAB exec "$host" bash -c \
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
$(declare -f $(compgen -A function st__r_))
$fn \"\$@\"" "st-$host" "$@" </dev/null
	rc=$?
	case $rc in
	124 | 137) st__err "$host: $fn did not finish within $((secs + 30)) s" ;;
	esac
	return "$rc"
}

st__ms() { date +%s%3N; }

# --- iSCSI -----------------------------------------------------------------------
st__r_tgt_info() { # IQN -> "TID HAS_LUN1 ACL..." if the target exists
	timeout -k 5 15 tgtadm --lld iscsi --op show --mode target | awk -v q="$1" '
		$1 == "Target" { cur = ($3 == q); acl = 0; if (cur) { tid = $2; sub(":", "", tid) }; next }
		!cur { next }
		$1 == "LUN:" && $2 == "1" { lun = 1 }
		/^ *ACL information:/ { acl = 1; next }
		/^ *[A-Za-z ]+:/ { acl = 0 }
		acl && NF == 1 { acls = acls " " $1 }
		END { if (tid != "") print tid, lun + 0, acls }'
}

st__r_iscsi_target() { # NAME MIB IQN NET
	local name=$1 mib=$2 iqn=$3 net=$4 dir=/var/lib/vmlab-iscsi img want have info tid lun acls
	img=$dir/$name.img
	mkdir -p "$dir" || st__r_fail "cannot make $dir"
	if ! timeout -k 5 15 tgtadm --lld iscsi --op show --mode sys >/dev/null 2>&1; then
		timeout -k 5 15 tgtd </dev/null >>/var/log/vmlab-tgtd.log 2>&1 ||
			st__r_fail "tgtd did not start (/var/log/vmlab-tgtd.log)"
		st__r_until 15 eval 'timeout -k 5 10 tgtadm --lld iscsi --op show --mode sys >/dev/null 2>&1' ||
			st__r_fail "tgtd does not answer tgtadm"
	fi
	want=$((mib * 1048576))
	if [ -e "$img" ]; then
		have=$(stat -c %s "$img") || st__r_fail "cannot stat $img"
		[ "$have" = "$want" ] || st__r_fail "$img exists with $have bytes, not $mib MiB"
	else
		truncate -s "$want" "$img" || st__r_fail "cannot make $img"
	fi
	info=$(st__r_tgt_info "$iqn") || st__r_fail "tgtadm --op show failed"
	if [ -z "$info" ]; then
		tid=$(timeout -k 5 15 tgtadm --lld iscsi --op show --mode target |
			awk '$1 == "Target" { t = $2; sub(":", "", t); if (t + 0 > m) m = t + 0 } END { print m + 1 }')
		timeout -k 5 15 tgtadm --lld iscsi --op new --mode target --tid "$tid" -T "$iqn" ||
			st__r_fail "tgtadm: cannot make target $iqn (tid $tid)"
		lun=0 acls=
	else
		read -r tid lun acls <<<"$info"
	fi
	if [ "$lun" != 1 ]; then
		timeout -k 5 30 tgtadm --lld iscsi --op new --mode logicalunit --tid "$tid" --lun 1 -b "$img" ||
			st__r_fail "tgtadm: cannot add LUN 1 ($img) to $iqn"
	fi
	case " $acls " in
	*" $net "*) ;;
	*)
		timeout -k 5 15 tgtadm --lld iscsi --op bind --mode target --tid "$tid" -I "$net" ||
			st__r_fail "tgtadm: cannot bind $iqn to $net"
		;;
	esac
	info=$(st__r_tgt_info "$iqn")
	read -r tid lun acls <<<"$info"
	[[ $lun == 1 && " $acls " == *" $net "* ]] || st__r_fail "target $iqn incomplete: $info"
	echo "$iqn"
}

st_iscsi_target() { # HOST NAME MIB
	[ $# = 3 ] || { st__err "usage: st_iscsi_target HOST NAME MIB"; return 2; }
	st__name NAME "$2" && st__num MIB "$3" 1 || return 2
	st__run "$1" 60 st__r_iscsi_target "$2" "$3" "$ST_IQN_PREFIX:$2" "$ST_SUBNET.0/24" ||
		{ st__err "st_iscsi_target $*: failed"; return 1; }
}

st__r_iscsi_session() { # ADDR IQN -> sessionN of that target through that portal
	local s n t a
	for s in /sys/class/iscsi_session/session*; do
		[ -e "$s/targetname" ] || continue
		read -r t <"$s/targetname" || continue
		[ "$t" = "$2" ] || continue
		n=${s##*/session}
		read -r a <"/sys/class/iscsi_connection/connection$n:0/persistent_address" 2>/dev/null || continue
		[ "$a" = "$1" ] || continue
		echo "${s##*/}"
		return 0
	done
	return 1
}

st__r_iscsi_disk() { # sessionN -> sdX (LUN 1), if its block device exists
	local b
	for b in /sys/class/iscsi_session/"$1"/device/target*/*:*:*:1/block/*; do
		[ -e "$b" ] && [ -b "/dev/${b##*/}" ] && { echo "${b##*/}"; return 0; }
	done
	return 1
}

st__r_iscsi_login() { # ADDR PORT IQN INITIATOR_PREFIX SECS REPLACEMENT_TIMEOUT
	local addr=$1 port=$2 iqn=$3 want secs=$5 repl=$6 cur='' s='' d='' p
	want="InitiatorName=$4.$(uname -n)"
	modprobe -a iscsi_tcp sd_mod || st__r_fail "modprobe iscsi_tcp sd_mod failed"
	mkdir -p /run/lock/iscsi /var/log
	# one image for every host: give each its own initiator name (before
	# iscsid reads it)
	[ -r /etc/iscsi/initiatorname.iscsi ] && cur=$(grep '^InitiatorName=' /etc/iscsi/initiatorname.iscsi)
	if [ "$cur" != "$want" ]; then
		if p=$(pidof iscsid); then
			compgen -G '/sys/class/iscsi_session/session*' >/dev/null &&
				st__r_fail "iscsid runs as ${cur#*=} with sessions: cannot give it the name ${want#*=}"
			# shellcheck disable=SC2086
			kill $p
			st__r_until 10 eval '! pidof iscsid >/dev/null' || st__r_fail "iscsid does not stop"
		fi
		echo "$want" >/etc/iscsi/initiatorname.iscsi || st__r_fail "cannot write initiatorname.iscsi"
	fi
	if ! pidof iscsid >/dev/null; then
		iscsid </dev/null >>/var/log/vmlab-iscsid.log 2>&1 || st__r_fail "iscsid did not start"
		st__r_until 10 test -S /run/iscsid.pid -o -f /run/iscsid.pid || st__r_fail "iscsid did not start"
	fi
	if ! s=$(st__r_iscsi_session "$addr" "$iqn"); then
		timeout -k 5 30 iscsiadm -m discovery -t sendtargets -p "$addr:$port" >/dev/null ||
			st__r_fail "discovery (sendtargets) on $addr:$port failed"
		timeout -k 5 10 iscsiadm -m node -T "$iqn" -p "$addr:$port" >/dev/null 2>&1 ||
			st__r_fail "$addr:$port does not offer $iqn"
		if [ -n "$repl" ]; then
			timeout -k 5 10 iscsiadm -m node -T "$iqn" -p "$addr:$port" -o update \
				-n node.session.timeo.replacement_timeout -v "$repl" ||
				st__r_fail "cannot set replacement_timeout"
		fi
		timeout -k 5 60 iscsiadm -m node -T "$iqn" -p "$addr:$port" --login >/dev/null ||
			st__r_fail "login to $iqn at $addr:$port failed"
		st__r_until 10 eval 's=$(st__r_iscsi_session "$addr" "$iqn")' ||
			st__r_fail "logged in, but no session in /sys/class/iscsi_session"
	fi
	st__r_until "$secs" eval 'd=$(st__r_iscsi_disk "$s")' ||
		st__r_fail "$s ($iqn): no block device for LUN 1 after $secs s"
	echo "/dev/$d"
}

st_iscsi_login() { # HOST TARGET_HOST NAME
	[ $# = 3 ] || { st__err "usage: st_iscsi_login HOST TARGET_HOST NAME"; return 2; }
	local addr
	st__name NAME "$3" || return 2
	addr=$(st__addr "$2") || return 2
	[ -z "${ST_ISCSI_REPLACEMENT_TIMEOUT:-}" ] || st__num ST_ISCSI_REPLACEMENT_TIMEOUT "$ST_ISCSI_REPLACEMENT_TIMEOUT" || return 2
	st__run "$1" "$((ST_TIMEOUT + 120))" st__r_iscsi_login "$addr" "$ST_ISCSI_PORT" "$ST_IQN_PREFIX:$3" \
		"$ST_IQN_PREFIX:initiator" 30 "${ST_ISCSI_REPLACEMENT_TIMEOUT:-}" ||
		{ st__err "st_iscsi_login $*: failed"; return 1; }
}

st__r_iscsi_logout() { # ADDR PORT IQN
	local addr=$1 port=$2 iqn=$3 s d h
	s=$(st__r_iscsi_session "$addr" "$iqn") || { echo "not logged in to $iqn at $addr"; return 0; }
	if d=$(st__r_iscsi_disk "$s"); then
		h=$(cd "/sys/block/$d/holders" && echo *)
		[ "$h" != '*' ] || h=''
		[ -z "$h" ] || st__r_fail "/dev/$d ($iqn) is in use by: $h (deactivate the LVs first)"
	fi
	timeout -k 5 60 iscsiadm -m node -T "$iqn" -p "$addr:$port" --logout >/dev/null ||
		st__r_fail "logout from $iqn at $addr:$port failed"
	st__r_until 20 eval '! st__r_iscsi_session "$addr" "$iqn" >/dev/null' ||
		st__r_fail "the session to $iqn is still there"
	echo "logged out of $iqn at $addr"
}

st_iscsi_logout() { # HOST TARGET_HOST NAME
	[ $# = 3 ] || { st__err "usage: st_iscsi_logout HOST TARGET_HOST NAME"; return 2; }
	local addr
	st__name NAME "$3" || return 2
	addr=$(st__addr "$2") || return 2
	st__run "$1" 90 st__r_iscsi_logout "$addr" "$ST_ISCSI_PORT" "$ST_IQN_PREFIX:$3" ||
		{ st__err "st_iscsi_logout $*: failed"; return 1; }
}

st__r_iscsi_show() { # ADDR IQN WHAT(dev|state)
	local s d st ds=none
	s=$(st__r_iscsi_session "$1" "$2") || st__r_fail "no session to $2 at $1"
	if [ "$3" = dev ]; then
		d=$(st__r_iscsi_disk "$s") || st__r_fail "$s: no block device"
		echo "/dev/$d"
		return
	fi
	read -r st <"/sys/class/iscsi_session/$s/state"
	d=$(st__r_iscsi_disk "$s") && read -r ds <"/sys/block/$d/device/state"
	echo "$s $st ${d:-nodisk} $ds"
}

st_iscsi_dev() { # HOST TARGET_HOST NAME
	[ $# = 3 ] || { st__err "usage: st_iscsi_dev HOST TARGET_HOST NAME"; return 2; }
	local addr
	addr=$(st__addr "$2") || return 2
	st__run "$1" 20 st__r_iscsi_show "$addr" "$ST_IQN_PREFIX:$3" dev
}

st_iscsi_state() { # HOST TARGET_HOST NAME -> "sessionN LOGGED_IN sdX running"
	[ $# = 3 ] || { st__err "usage: st_iscsi_state HOST TARGET_HOST NAME"; return 2; }
	local addr
	addr=$(st__addr "$2") || return 2
	st__run "$1" 20 st__r_iscsi_show "$addr" "$ST_IQN_PREFIX:$3" state
}

# --- LVM -------------------------------------------------------------------------
st__r_lvmconf() { # LVM without udev (see the top of this file); dm_mod
	local f=/etc/lvm/lvmlocal.conf
	modprobe dm_mod || st__r_fail "modprobe dm_mod failed"
	grep -q 'vmlab storage.sh' "$f" 2>/dev/null && return 0
	cat >"$f.tmp" <<-'EOF' || st__r_fail "cannot write $f"
		# written by tests/vmlab/storage.sh (vmlab storage.sh): this dom0 has no
		# udevd, but a stale /run/udev/control from the initramfs
		local {
		}
		devices {
			obtain_device_list_from_udev = 0
			use_devicesfile = 0
		}
		activation {
			udev_sync = 0
			udev_rules = 0
		}
	EOF
	mv "$f.tmp" "$f" || st__r_fail "cannot write $f"
	[ "$(lvmconfig --type full activation/udev_sync)" = "udev_sync=0" ] ||
		st__r_fail "$f is not taken into account"
}

st__r_lvm_setup() { st__r_lvmconf && echo "$(uname -n): LVM configured for no udev"; }

st_lvm_setup() { # HOST
	[ $# = 1 ] || { st__err "usage: st_lvm_setup HOST"; return 2; }
	st__run "$1" 30 st__r_lvm_setup
}

st__r_vg_create() { # VG IQN|'' -> "VG on /dev/sdX"
	local vg=$1 iqn=$2 s t d devs=() pv
	st__r_lvmconf
	if timeout -k 5 30 vgs "$vg" >/dev/null 2>&1; then
		pv=$(timeout -k 5 30 pvs --noheadings -o pv_name -S "vg_name=$vg" | xargs)
		echo "$vg exists on $pv"
		return 0
	fi
	for s in /sys/class/iscsi_session/session*; do
		[ -e "$s/targetname" ] || continue
		read -r t <"$s/targetname"
		[ -z "$iqn" ] || [ "$t" = "$iqn" ] || continue
		d=$(st__r_iscsi_disk "${s##*/}") && devs+=("/dev/$d")
	done
	[ ${#devs[@]} = 1 ] ||
		st__r_fail "want one iSCSI disk${iqn:+ of $iqn} for $vg, found ${#devs[@]}: ${devs[*]} (ST_LUN=NAME?)"
	timeout -k 5 60 pvcreate -y "${devs[0]}" >/dev/null || st__r_fail "pvcreate ${devs[0]} failed"
	timeout -k 5 60 vgcreate "$vg" "${devs[0]}" >/dev/null || st__r_fail "vgcreate $vg ${devs[0]} failed"
	echo "$vg created on ${devs[0]}"
}

st__r_vg_see() { # VG
	local vg=$1
	st__r_lvmconf
	# no lvmetad in LVM 2.03: each command reads the disks; vgscan only
	# to be explicit (and to make the /dev/VG links of active LVs)
	timeout -k 5 30 vgscan --mknodes >/dev/null 2>&1
	st__r_until 20 eval 'timeout -k 5 30 vgs "$vg" >/dev/null 2>&1' || st__r_fail "does not see VG $vg"
	echo "$(uname -n) sees $vg on $(timeout -k 5 30 pvs --noheadings -o pv_name -S "vg_name=$vg" | xargs)"
}

st__statedir() { # the lab's shared directory, for the hosts of each VG
	local d
	# shellcheck disable=SC2086
	d=$($VMLAB dir) || return 1
	mkdir -p "$d/shared/vmlab-storage" && echo "$d/shared/vmlab-storage"
}

st_lvm_shared() { # VG HOST...
	[ $# -ge 2 ] || { st__err "usage: st_lvm_shared VG HOST..."; return 2; }
	local vg=$1 first=$2 h sd
	st__name VG "$vg" || return 2
	shift
	st__run "$first" 150 st__r_vg_create "$vg" "${ST_LUN:+$ST_IQN_PREFIX:$ST_LUN}" ||
		{ st__err "st_lvm_shared: VG $vg on $first failed"; return 1; }
	shift
	for h in "$@"; do
		st__run "$h" 90 st__r_vg_see "$vg" || { st__err "st_lvm_shared: $h does not see $vg"; return 1; }
	done
	sd=$(st__statedir) && echo "$first $*" >"$sd/vg-$vg.hosts"
}

st__r_lv_create() { # VG LV MIB
	local vg=$1 lv=$2 mib=$3
	st__r_lvmconf
	if ! timeout -k 5 30 lvs "$vg/$lv" >/dev/null 2>&1; then
		# active, so that LVM zeroes its start and wipes signatures
		timeout -k 5 60 lvcreate -y -L "${mib}m" -n "$lv" "$vg" >/dev/null ||
			st__r_fail "lvcreate -L ${mib}m -n $lv $vg failed"
	fi
	st__r_lv_inactive "$vg" "$lv"
}

st__r_lv_inactive() { # VG LV
	local lv=$1/$2
	st__r_lvmconf
	st__r_until 20 eval 'timeout -k 5 30 lvs "$lv" >/dev/null 2>&1' || st__r_fail "no LV $lv"
	timeout -k 5 60 lvchange -an "$1/$2" || st__r_fail "lvchange -an $1/$2 failed"
	[ -z "$(timeout -k 5 30 lvs --noheadings -o lv_active "$1/$2" | tr -d ' ')" ] ||
		st__r_fail "$1/$2 is still active"
	echo "$(uname -n): $1/$2 $(timeout -k 5 30 lvs --noheadings -o lv_size,lv_attr "$1/$2" | xargs)"
}

st_lv_create() { # HOST VG LV MIB [HOST...]
	[ $# -ge 4 ] || { st__err "usage: st_lv_create HOST VG LV MIB [OTHER_HOST...]"; return 2; }
	local host=$1 vg=$2 lv=$3 mib=$4 h sd others=()
	st__name VG "$vg" && st__name LV "$lv" && st__num MIB "$mib" 1 || return 2
	shift 4
	if [ $# -gt 0 ]; then
		others=("$@")
	elif sd=$(st__statedir) && [ -r "$sd/vg-$vg.hosts" ]; then
		read -r -a others <"$sd/vg-$vg.hosts"
	fi
	st__run "$host" 120 st__r_lv_create "$vg" "$lv" "$mib" ||
		{ st__err "st_lv_create: $vg/$lv on $host failed"; return 1; }
	for h in "${others[@]}"; do
		[ "$h" = "$host" ] && continue
		st__run "$h" 90 st__r_lv_inactive "$vg" "$lv" ||
			{ st__err "st_lv_create: $vg/$lv not inactive on $h"; return 1; }
	done
}

# --- DRBD ------------------------------------------------------------------------
# Backing device: a loop device on a file (/var/lib/vmlab-drbd/RES.img, MIB
# + 1 MiB for the internal meta data).  Not an LV on a local VG: one layer
# less, no LVM configuration needed for DRBD, and nothing that the shared-VG
# tests could see or scan.  The loop number is found again with losetup -j
# (st_drbd run again after a reboot rewrites the configuration).

st__r_drbd_backing() { # RES MIB -> /dev/loopN
	local res=$1 mib=$2 dir=/var/lib/vmlab-drbd img want have loop
	img=$dir/$res.img
	modprobe -a drbd loop || st__r_fail "modprobe drbd loop failed"
	# drbdadm and drbdmeta lock /var/lock/drbd-MAJOR-MINOR (/run/lock)
	mkdir -p "$dir" /run/lock || st__r_fail "cannot make $dir"
	want=$(((mib + 1) * 1048576))
	if [ -e "$img" ]; then
		have=$(stat -c %s "$img")
		[ "$have" = "$want" ] || st__r_fail "$img exists with $have bytes, not $((mib + 1)) MiB"
	else
		truncate -s "$want" "$img" || st__r_fail "cannot make $img"
	fi
	loop=$(losetup -j "$img" | head -n 1 | cut -d: -f1)
	[ -n "$loop" ] || loop=$(timeout -k 5 30 losetup -f --show "$img") || st__r_fail "losetup $img failed"
	echo "$loop"
}

st__r_write() { # FILE TEXT: write if different
	[ "$(cat "$1" 2>/dev/null)" = "$2" ] && return 0
	{ printf '%s\n' "$2" >"$1.tmp" && mv "$1.tmp" "$1"; } || st__r_fail "cannot write $1"
}

st__r_drbd_up() { # RES CONF_TEXT
	local res=$1 ds
	st__r_write "/etc/drbd.d/$res.res" "$2"
	timeout -k 5 30 drbdadm dump "$res" >/dev/null || st__r_fail "drbdadm does not accept /etc/drbd.d/$res.res"
	ds=$(timeout -k 5 30 drbdadm dstate "$res" 2>/dev/null)
	case $ds in
	'' | Diskless* | Unconfigured*)
		# not attached: meta data only if there is none (keep the
		# generation identifiers of an existing one)
		if ! timeout -k 5 30 drbdadm dump-md "$res" >/dev/null 2>&1; then
			timeout -k 5 60 drbdadm create-md --force "$res" >/dev/null 2>&1 ||
				st__r_fail "drbdadm create-md --force $res failed"
		fi
		;;
	esac
	if [ -z "$ds" ]; then
		timeout -k 5 60 drbdadm up "$res" || st__r_fail "drbdadm up $res failed"
	else
		timeout -k 5 60 drbdadm adjust "$res" || st__r_fail "drbdadm adjust $res failed"
	fi
	echo "$(uname -n): $res up"
}

st__r_drbd_wait() { # RES SECS CSTATE DSTATE: wait for both (DSTATE may be a glob)
	local res=$1 secs=$2 wc=$3 wd=$4 c='' d=''
	# shellcheck disable=SC2254
	st__r_until "$secs" eval 'c=$(drbdadm cstate "$res" 2>/dev/null) && d=$(drbdadm dstate "$res" 2>/dev/null) &&
		[ "$c" = "$wc" ] && case $d in $wd) true ;; *) false ;; esac' ||
		st__r_fail "$res: not $wc $wd after $secs s (now: cstate $c, dstate $d)"
}

st__r_drbd_sync() { # RES SECS: connect, initial sync as the source if both Inconsistent, then Secondary
	local res=$1 secs=$2 d t0
	st__r_drbd_wait "$res" "$secs" Connected '*'
	d=$(drbdadm dstate "$res")
	if [ "$d" = Inconsistent/Inconsistent ]; then
		t0=$(date +%s%3N)
		timeout -k 5 30 drbdadm primary --force "$res" || st__r_fail "drbdadm primary --force $res failed"
		st__r_drbd_wait "$res" "$secs" Connected UpToDate/UpToDate
		echo "$(uname -n): $res initial sync done in $(($(date +%s%3N) - t0)) ms"
	else
		st__r_drbd_wait "$res" "$secs" Connected UpToDate/UpToDate
	fi
	st__r_drbd_secondary "$res"
}

st__r_drbd_secondary() { # RES
	case $(drbdadm role "$1") in
	Secondary/*) ;;
	*) timeout -k 5 30 drbdadm secondary "$1" || st__r_fail "drbdadm secondary $1 failed (in use?)" ;;
	esac
}

st__r_drbd_state() { # RES
	local r d c
	r=$(drbdadm role "$1" 2>&1) || st__r_fail "$1: $r"
	d=$(drbdadm dstate "$1" 2>&1) || st__r_fail "$1: $d"
	c=$(drbdadm cstate "$1" 2>&1) || st__r_fail "$1: $c"
	echo "$1 role:$r disk:$d conn:$c"
}

st__drbd_conf() { # HOST_A LOOP_A HOST_B LOOP_B RES MINOR
	local port=$((ST_DRBD_PORT + $6))
	cat <<-EOF
		# written by tests/vmlab/storage.sh (st_drbd); DRBD 8.4 syntax
		resource $5 {
			protocol C;
			device /dev/drbd$6 minor $6;
			meta-disk internal;
			net {
				${ST_DRBD_NET:-}
			}
			${ST_DRBD_EXTRA:-}
			on $1 {
				disk $2;
				address $(st__addr "$1"):$port;
			}
			on $3 {
				disk $4;
				address $(st__addr "$3"):$port;
			}
		}
	EOF
}

st_drbd() { # HOST_A HOST_B RES MINOR MIB
	[ $# = 5 ] || { st__err "usage: st_drbd HOST_A HOST_B RES MINOR MIB"; return 2; }
	local a=$1 b=$2 res=$3 minor=$4 mib=$5 la lb conf
	st__name RES "$res" && st__num MINOR "$minor" && st__num MIB "$mib" 1 || return 2
	st__addr "$a" >/dev/null && st__addr "$b" >/dev/null || return 2
	[ "$a" != "$b" ] || { st__err "st_drbd: two different hosts, please"; return 2; }
	la=$(st__run "$a" 60 st__r_drbd_backing "$res" "$mib") || { st__err "st_drbd: backing device on $a failed"; return 1; }
	lb=$(st__run "$b" 60 st__r_drbd_backing "$res" "$mib") || { st__err "st_drbd: backing device on $b failed"; return 1; }
	conf=$(st__drbd_conf "$a" "$la" "$b" "$lb" "$res" "$minor")
	{ st__run "$a" 120 st__r_drbd_up "$res" "$conf" && st__run "$b" 120 st__r_drbd_up "$res" "$conf"; } ||
		{ st__err "st_drbd: $res up failed"; return 1; }
	st__run "$a" "$((ST_TIMEOUT + 60))" st__r_drbd_sync "$res" "$ST_TIMEOUT" ||
		{ st__err "st_drbd: $res: connect or initial sync failed"; return 1; }
	st__run "$b" 60 st__r_drbd_secondary "$res" || return 1
	st__run "$a" "$((ST_TIMEOUT + 60))" st__r_drbd_wait "$res" "$ST_TIMEOUT" Connected UpToDate/UpToDate ||
		{ st__err "st_drbd: $res not UpToDate/UpToDate"; return 1; }
	st_drbd_state "$a" "$res" && st_drbd_state "$b" "$res"
}

st_drbd_state() { # HOST RES
	[ $# = 2 ] || { st__err "usage: st_drbd_state HOST RES"; return 2; }
	st__run "$1" 30 st__r_drbd_state "$2" | sed "s/^/$1 /"
	return "${PIPESTATUS[0]}"
}

st__r_drbd_role() { # RES primary|secondary [--force]
	timeout -k 5 60 drbdadm "$2" ${3:+"$3"} "$1" || st__r_fail "drbdadm $2 ${3:-}$1 failed"
}

st_drbd_role() { # HOST RES primary|secondary [--force]
	case ${3:-}:${4:-} in
	primary: | primary:--force | secondary:) ;;
	*) st__err "usage: st_drbd_role HOST RES primary|secondary [--force]"; return 2 ;;
	esac
	st__run "$1" 60 st__r_drbd_role "$2" "$3" "${4:-}"
}

st__r_drbd_down() { timeout -k 5 60 drbdadm down "$1" || st__r_fail "drbdadm down $1 failed"; }

st_drbd_down() { # HOST RES
	[ $# = 2 ] || { st__err "usage: st_drbd_down HOST RES"; return 2; }
	st__run "$1" 60 st__r_drbd_down "$2"
}

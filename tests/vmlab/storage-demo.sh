#!/bin/bash
# storage-demo.sh — tests/vmlab/storage.sh from start to end in a fresh lab:
# vmlab up 3; an iSCSI target on x1 (LUN "lun1", 96 MiB); x2 and x3 log in;
# the shared VG vgshared on it with the LV web1 (16 MiB, left inactive); the
# DRBD resource r0 (minor 0, 32 MiB) between x2 and x3; the states; one
# Primary/Secondary switch, a logout and a login again; vmlab down (always,
# also on failure).  Prints the time of every step and a summary.
#
# Run as root from anywhere, with your own lab directory:
#   VMLAB_DIR=/tmp/vst HAGENT_BUILD=/work/main/build tests/vmlab/storage-demo.sh
# Environment: VMLAB (the vmlab command; default the one next to this file),
# VMLAB_DIR and the rest as for vmlab; VMLAB_KEEP_UP=1 leaves the lab up.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
VMLAB=${VMLAB:-$HERE/vmlab}
export VMLAB
# shellcheck source=tests/vmlab/storage.sh
. "$HERE/storage.sh"

now_ms() { date +%s%3N; }
T0=$(now_ms)
SUMMARY=()

step() { # NAME CMD...: run, time, stop the demo on failure
	local name=$1 t rc
	shift
	echo "--- $name: $*"
	t=$(now_ms)
	"$@"
	rc=$?
	t=$(($(now_ms) - t))
	SUMMARY+=("$(printf '%-34s %7d ms  rc %d' "$name" "$t" "$rc")")
	echo "--- $name: rc $rc, $t ms"
	if [ "$rc" != 0 ]; then
		echo "storage-demo: FAILED at $name" >&2
		exit 1
	fi
}

finish() {
	local rc=$?
	if [ "${VMLAB_KEEP_UP:-0}" != 1 ]; then
		echo "--- down"
		# shellcheck disable=SC2086 # VMLAB is a command line
		nice -n 10 $VMLAB down || rc=1
	fi
	echo "=== storage-demo summary (lab ${VMLAB_DIR:-/tmp/hagent-vmlab})"
	printf '%s\n' "${SUMMARY[@]}"
	echo "total $(($(now_ms) - T0)) ms, exit $rc"
	exit "$rc"
}
trap finish EXIT

lvs_on() { $VMLAB exec "$1" lvs -o vg_name,lv_name,lv_size,lv_attr vgshared </dev/null; }
lv_inactive_on() { # HOST: web1 there and not active
	local a
	a=$($VMLAB exec "$1" lvs --noheadings -o lv_active vgshared/web1 </dev/null) || return 1
	[ -z "${a// /}" ] || { echo "web1 is active on $1" >&2; return 1; }
}

# shellcheck disable=SC2086
step "vmlab up 3" nice -n 10 $VMLAB up 3
step "iSCSI target x1 lun1 96 MiB" st_iscsi_target x1 lun1 96
step "iSCSI login x2" st_iscsi_login x2 x1 lun1
step "iSCSI login x3" st_iscsi_login x3 x1 lun1
step "VG vgshared (x2; x3 sees it)" st_lvm_shared vgshared x2 x3
step "LV web1 16 MiB (inactive x2 x3)" st_lv_create x2 vgshared web1 16
step "DRBD r0 x2-x3 32 MiB" st_drbd x2 x3 r0 0 32
echo "=== states"
step "iSCSI state x2" st_iscsi_state x2 x1 lun1
step "iSCSI state x3" st_iscsi_state x3 x1 lun1
step "lvs x2" lvs_on x2
step "lvs x3" lvs_on x3
step "web1 inactive on x2" lv_inactive_on x2
step "web1 inactive on x3" lv_inactive_on x3
step "DRBD state x2" st_drbd_state x2 r0
step "DRBD state x3" st_drbd_state x3 r0
echo "=== a switch, a logout, idempotence"
step "DRBD r0 primary x3" st_drbd_role x3 r0 primary
step "DRBD state x3 (Primary)" st_drbd_state x3 r0
step "DRBD r0 secondary x3" st_drbd_role x3 r0 secondary
step "iSCSI logout x3" st_iscsi_logout x3 x1 lun1
step "iSCSI login x3 again" st_iscsi_login x3 x1 lun1
step "st_drbd again (no-op)" st_drbd x2 x3 r0 0 32
step "st_lv_create again (no-op)" st_lv_create x2 vgshared web1 16

#!/bin/bash
# The OCF resource agent ra/guest against a real, standalone hagentd and the
# test guest, without Pacemaker: meta-data against ra-api-1.dtd, validate-all,
# start/stop idempotent, monitor (depth 0 and 10, a stopped QEMU, a crash),
# migrate_to to a node hagentd does not know, and ocf-tester.
. "$(dirname "$0")/../integ/lib.sh"

OCF_ROOT=$(pkg-config --variable=ocfrootdir resource-agents 2>/dev/null) || OCF_ROOT=/usr/lib/ocf
DTD=$(pkg-config --variable=ra_api_dtd resource-agents 2>/dev/null) || DTD=/usr/share/resource-agents/ra-api-1.dtd
export OCF_ROOT
[ -r "$OCF_ROOT/lib/heartbeat/ocf-shellfuncs" ] && [ -r "$DTD" ] && command -v ocf-tester >/dev/null ||
	{ echo "SKIP: resource-agents is not installed"; exit 77; }
command -v xmllint >/dev/null || { echo "SKIP: no xmllint (libxml2-utils)"; exit 77; }
RA=$abs_top_srcdir/ra/guest

write_conf
# the agent wants hagentd's node name to be Pacemaker's, where it can tell
n=$(crm_node -n 2>/dev/null) && [ -n "$n" ] && sed -i "s/^node_name = .*/node_name = \"$n\"/" "$T/hagent.conf"
start_daemon || exit 1
# on_crash = "restart", no ha_managed_by: the agent's start (hactl add
# --pacemaker) hands the guest to Pacemaker, so hagentd restarts nothing
# itself and a crash is for monitor
F=$(guest_file vm1 'on_crash = "restart"')

# Runs the agent as Pacemaker would, with extra VAR=value; its output goes to
# ra.log.  A stop gets 10 s: the test guest ignores the power button, so
# hactl stop destroys it after 2 s.
ra() { # action [VAR=value...]
	a=$1
	shift
	echo "--- $a $*" >>"$T/ra.log"
	env OCF_RESOURCE_INSTANCE=vm1 OCF_RESKEY_config="$F" OCF_RESKEY_hactl="$HACTL_BIN" \
		OCF_RESKEY_CRM_meta_timeout=10000 "$@" "$RA" "$a" >>"$T/ra.log" 2>&1
}
check_rc() { # description expected-rc action [VAR=value...]
	d=$1 want=$2
	shift 2
	ra "$@"
	got=$?
	if [ "$got" -eq "$want" ]; then ok "$d"; else not_ok "$d (exit $got, expected $want)"; fi
}
qemu_alive() { p=$(qemu_pid vm1) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

meta_valid() { "$RA" meta-data | (cd "$(dirname "$DTD")" && xmllint --noout --dtdvalid "$DTD" -); }
check "meta-data is valid against ra-api-1.dtd" meta_valid

bad=$T/guests/bad.cfg
printf 'name = "bad\nmemory = 32\n' >"$bad"
check_rc "validate-all on the good file: 0" 0 validate-all
check_rc "validate-all on a malformed file: 6 (ERR_CONFIGURED)" 6 validate-all OCF_RESKEY_config="$bad"
check_rc "validate-all on a missing file: 5 (ERR_INSTALLED, node-local)" 5 validate-all OCF_RESKEY_config="$T/none.cfg"
check_rc "validate-all without config: 6" 6 validate-all OCF_RESKEY_config=
check_rc "validate-all, migration_downtime not a number: 6" 6 validate-all OCF_RESKEY_migration_downtime=fast
check_rc "validate-all with hactl missing: 5 (ERR_INSTALLED)" 5 validate-all OCF_RESKEY_hactl=/nonexistent/hactl
check_rc "validate-all with hagentd not answering: 5" 5 validate-all HAGENT_SOCKET="$T/none.sock"
check_rc "validate-all, Pacemaker's node name not hagentd's: 5" 5 validate-all OCF_RESKEY_CRM_meta_on_node=other
check_rc "an unknown action: 3 (ERR_UNIMPLEMENTED)" 3 reload

check_rc "probe before start: 7 (NOT_RUNNING)" 7 monitor OCF_RESKEY_CRM_meta_interval=0
check_rc "monitor before start: 7" 7 monitor OCF_RESKEY_CRM_meta_interval=10000
check_rc "start: 0" 0 start
check "the guest was defined from the file" test "$(json_field vm1 source)" = "$F"
check "... as Pacemaker's (managed_by pacemaker)" test "$(json_field vm1 managed_by)" = pacemaker
check "its QEMU runs" qemu_alive
check "heartbeats arrive" wait_hb vm1 2 10
pid=$(qemu_pid vm1)
check_rc "start again: 0" 0 start
check "... the same QEMU" test "$(qemu_pid vm1)" = "$pid"
check_rc "monitor: 0" 0 monitor OCF_RESKEY_CRM_meta_interval=10000
check_rc "monitor at OCF_CHECK_LEVEL=10: 0" 0 monitor OCF_CHECK_LEVEL=10

# depth 10 looks at the process: a SIGSTOPped QEMU is still "running" for
# hagentd (depth 0), not for depth 10
check "hactl probe: its monitor answers: running" \
	bash -c "'$HACTL_BIN' probe vm1 2>&1 | grep -q 'monitor answered in [0-9]* ms: running'"
kill -STOP "$pid"
check_rc "QEMU stopped (SIGSTOP): monitor 0" 0 monitor
check_rc "QEMU stopped (SIGSTOP): monitor at depth 10: 1 (ERR_GENERIC)" 1 monitor OCF_CHECK_LEVEL=10
probe_out=$("$HACTL_BIN" probe vm1 --timeout 1 2>&1)
probe_rc=$?
check "hactl probe of a stopped QEMU: exit 3 after 1 s ($probe_out)" \
	test "$probe_rc:${probe_out#*: }" = "3:vm1: its monitor did not answer within 1 s"
kill -CONT "$pid"
check_rc "QEMU continued: depth 10: 0" 0 monitor OCF_CHECK_LEVEL=10
check "... hactl probe answers again" "$HACTL_BIN" probe vm1
check "hactl probe of an unknown guest: exit 4" bash -c "'$HACTL_BIN' probe nosuch; test \$? -eq 4"

check_rc "migrate_to a node hagentd does not know: 1 (ERR_GENERIC)" 1 migrate_to \
	OCF_RESKEY_CRM_meta_migrate_target=nosuchnode
check "... the guest runs on, same QEMU" test "$(json_field vm1 state)/$(qemu_pid vm1)" = "running/$pid"
check_rc "migrate_from with the guest running here: 0" 0 migrate_from

# kill -9 with on_crash = "restart": hagentd does not restart a guest of
# Pacemaker's; it records it failed, no QEMU is left, and monitor says
# ERR_GENERIC: Pacemaker's fail-count and recovery take it from there
mark
kill -9 "$pid"
check "hagentd saw the crash: failed" wait_state vm1 failed 10
check "... not restarted: Pacemaker manages it" \
	bash -c "'$HACTL_BIN' --json list | grep -q 'not restarted: Pacemaker manages it'"
check "... and no QEMU runs (pid 0)" test "$(json_field vm1 pid)" = 0
check_rc "monitor after kill -9 of QEMU: 1 (ERR_GENERIC)" 1 monitor
check_rc "stop after the crash: 0" 0 stop
check_rc "start after the crash: 0" 0 start
check "a new QEMU" qemu_alive
pid=$(qemu_pid vm1)
check_rc "stop: 0" 0 stop
check "QEMU is gone" bash -c "! kill -0 $pid 2>/dev/null"
check "hagentd says stopped" test "$(json_field vm1 state)" = stopped
check_rc "stop again: 0" 0 stop
check_rc "monitor after stop: 7" 7 monitor
check_rc "migrate_from with the guest stopped: 1" 1 migrate_from

# a guest file edited into a bad one while the guest runs: monitor and stop
# still find the guest (by the file it was added from)
check_rc "start for the bad-file case: 0" 0 start
cp "$F" "$T/good.cfg"
echo 'memory = "lots"' >>"$F"
check_rc "file broken meanwhile: monitor 0" 0 monitor
check_rc "file broken meanwhile: stop 0" 0 stop
check "... and it stopped" test "$(json_field vm1 state)" = stopped
cp "$T/good.cfg" "$F"

# ocf-tester: start/stop/monitor/probe in every order; it calls migrate_to
# (without a target) and migrate_from on the stopped resource and only looks
# for "not implemented" there.  CRM_meta_timeout: a 10 s stop timeout as for
# ra() (ocf-tester's own default is 20 s).
ocf-tester -n vm1 -o config="$F" -o hactl="$HACTL_BIN" -o CRM_meta_timeout=10000 "$RA" >"$T/ocf-tester.log" 2>&1
rc=$?
cat "$T/ocf-tester.log"
check "ocf-tester passes (exit 0)" test $rc -eq 0
check "... all tests" grep -q "passed all tests" "$T/ocf-tester.log"
check "the guest is stopped after ocf-tester" test "$(json_field vm1 state)" = stopped
[ "$FAILS" -eq 0 ] || { echo "--- ra.log"; cat "$T/ra.log"; }
finish

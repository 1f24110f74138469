#!/bin/bash
# Pacemaker manages a guest through ocf:hagent:guest, on a 3-host lab with
# Pacemaker in every host (lab up 3 --pacemaker: stonith with fence_lab) and
# hagentd's fence agent fence-pacemaker (it waits for Pacemaker's fencing):
#   - ocf-tester passes on a real guest inside a host;
#   - crm_resource --validate runs the agent's validate-all: 0 for the good
#     file, ERR_CONFIGURED for a malformed one;
#   - the resource starts; hagentd marks the guest Pacemaker's, and refuses
#     to move it on its own (hactl migrate without --pacemaker);
#   - crm_resource --move is a live migration: migrate_to/migrate_from, a
#     new QEMU on the target, the heartbeat counter goes on, no boot;
#   - a crash (kill -9 of QEMU) with on_crash = "restart": hagentd does not
#     restart it; Pacemaker's monitor fails, its fail-count is 1, and it
#     recovers the guest (stop, start) on the same node;
#   - the guest's host is killed: Pacemaker fences it (its stonith history),
#     hagentd learns it through fence-pacemaker, and Pacemaker starts the
#     guest on a survivor.
# The dual-run checker samples every QEMU throughout.
LABTEST_NAME=pcmk
. "$(dirname "$0")/labtest.sh"
command -v pacemakerd >/dev/null && command -v crm_resource >/dev/null ||
	{ echo "SKIP: no pacemaker"; exit 77; }
export LAB_HAGENT_EXTRA="fence_agent = \"$abs_top_srcdir/ra/fence-pacemaker\""
export -f lab field
export LAB

t0=$(date +%s%3N)
lab up 3 --pacemaker >/dev/null || { bad "lab up 3 --pacemaker"; exit 1; }
ok "lab up 3 --pacemaker in $(($(date +%s%3N) - t0)) ms"
shared=$(lab dir)/shared
"$abs_top_srcdir/tests/lab/dualrun" --interval 10 --out "$LAB_DIR/dualrun.out" pm1 >/dev/null 2>&1 &
DUAL_PID=$!
printf 'name = "pm1"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 64\non_crash = "restart"\n' \
	"$shared" >"$shared/pm1.cfg"
printf 'name = "pm1"\nmemory = "lots"\n' >"$shared/bad.cfg"

G=pm1
. "$(dirname "$0")/guestutil.sh"
crm() { lab exec n1 "$@"; }
validate() { # file
	crm crm_resource --validate --class ocf --provider hagent --agent guest --option "config=$1" \
		>"$LAB_DIR/validate.out" 2>&1
}
validate "$shared/pm1.cfg"
check "crm_resource --validate on the good file: 0" test $? = 0
validate "$shared/bad.cfg"
rc=$?
check "crm_resource --validate on a malformed file: fails (exit $rc)" test $rc != 0
check "... saying why" grep -q "memory" "$LAB_DIR/validate.out"

# ocf-tester on a real guest inside a host, as Pacemaker's executor would run
# the agent there (its OCF root has ocf:hagent:guest)
printf 'name = "ot1"\ntype = "pvh"\nkernel = "%s/testguest.elf"\nmemory = 32\n' "$shared" >"$shared/ot1.cfg"
lab exec n3 ocf-tester -n ot1 -o config="$shared/ot1.cfg" -o CRM_meta_timeout=20000 \
	/usr/lib/ocf/resource.d/hagent/guest >"$LAB_DIR/ocf-tester.log" 2>&1
rc=$?
check "ocf-tester on n3 with a real guest: exit 0" test $rc = 0
check "... passed all tests" grep -q "passed all tests" "$LAB_DIR/ocf-tester.log"
check "... and it left ot1 stopped" test "$(field n1 ot1 state)" = stopped
[ $rc = 0 ] || sed 's/^/# /' "$LAB_DIR/ocf-tester.log"

# the resource: live migration allowed, a monitor at depth 0 and one at 10
crm cibadmin -C -o resources -X "<primitive id=\"pm1\" class=\"ocf\" provider=\"hagent\" type=\"guest\">
  <instance_attributes id=\"pm1-ia\"><nvpair id=\"pm1-config\" name=\"config\" value=\"$shared/pm1.cfg\"/></instance_attributes>
  <meta_attributes id=\"pm1-meta\"><nvpair id=\"pm1-am\" name=\"allow-migrate\" value=\"true\"/>
    <nvpair id=\"pm1-tr\" name=\"target-role\" value=\"Stopped\"/>
    <nvpair id=\"pm1-mt\" name=\"migration-threshold\" value=\"3\"/></meta_attributes>
  <operations>
    <op id=\"pm1-mon\" name=\"monitor\" interval=\"1s\" timeout=\"20s\"/>
    <op id=\"pm1-mon10\" name=\"monitor\" interval=\"7s\" timeout=\"20s\">
      <instance_attributes id=\"pm1-mon10-ia\"><nvpair id=\"pm1-mon10-depth\" name=\"OCF_CHECK_LEVEL\" value=\"10\"/></instance_attributes></op>
    <op id=\"pm1-start\" name=\"start\" interval=\"0\" timeout=\"60s\"/>
    <op id=\"pm1-stop\" name=\"stop\" interval=\"0\" timeout=\"30s\"/>
    <op id=\"pm1-mt-to\" name=\"migrate_to\" interval=\"0\" timeout=\"90s\"/>
  </operations>
</primitive>" >/dev/null
check "the resource is in the CIB" test $? = 0
# first where it should start, then start it
crm cibadmin -C -o constraints -X '<rsc_location id="pm1-n1" rsc="pm1" node="n1" score="50"/>' >/dev/null
crm crm_resource -r pm1 --meta -p target-role -v Started >/dev/null 2>&1

# where Pacemaker says it runs ("" when nowhere yet)
pcmk_node() {
	lab exec "${1:-n1}" crm_resource --locate -r pm1 2>/dev/null | sed -n 's/.* is running on: \([^ ]*\).*/\1/p' | head -n 1
}
where_both() { # node: Pacemaker and every hagentd say pm1 runs there
	[ "$(pcmk_node)" = "$1" ] && runs_on "$1"
}
check "Pacemaker starts pm1 on n1" until_true 60 where_both n1
check "hagentd has it as Pacemaker's" test "$(field n1 pm1 managed_by)" = pacemaker
check "pm1 heartbeats on n1" until_true 20 hb_above n1 3

# hagentd does not move it on its own
out=$(lab exec n2 hactl migrate pm1 n2 2>&1)
check "hactl migrate without --pacemaker is refused" grep -q "managed by Pacemaker: move it with crm_resource --move" <<<"$out"

# --- crm_resource --move: a live migration
before=$(last_hb n1)
p1=$(qemu_pid n1)
t0=$(date +%s%3N)
crm crm_resource --move -r pm1 -N n2 >/dev/null 2>&1
check "crm_resource --move -r pm1 -N n2" test $? = 0
check "Pacemaker and hagentd: pm1 runs on n2" until_true 90 where_both n2
echo "# moved in $(($(date +%s%3N) - t0)) ms (crm_resource --move to both views agreeing)"
check "by migrate_to on n1 (Pacemaker's log)" \
	grep -q "pm1_migrate_to_0.*ok\|Result of migrate_to operation for pm1 on n1: ok" "$LAB_DIR/n1/pacemaker.log"
check "and migrate_from on n2" \
	grep -q "pm1_migrate_from_0.*ok\|Result of migrate_from operation for pm1 on n2: ok" "$LAB_DIR/n2/pacemaker.log"
check "a live migration in hagentd (migrated from n1 to n2)" \
	grep -q "pm1.*migrated from n1 to n2\|migration of pm1 .*committed\|pm1: migrated" "$LAB_DIR/n1/hagentd.log" "$LAB_DIR/n2/hagentd.log"
check "a QEMU of pm1 runs on n2, a new one" bash -c "p=\$(qemu_pid n2); [ -n \"\$p\" ] && [ \"\$p\" != '$p1' ]"
check "the heartbeat counter goes on past $before on n2 (no reboot)" until_true 10 hb_above n2 "$before"
check "n2's console log has no boot line" bash -c "! lab exec n2 grep -q 'TESTGUEST boot' /run/hagent/pm1.console.log"
crm crm_resource --clear -r pm1 >/dev/null 2>&1

# --- a crash: Pacemaker recovers it, hagentd does not
mark=$(wc -l <"$LAB_DIR/n2/hagentd.log")
p2=$(qemu_pid n2)
lab exec n2 kill -9 "$p2"
failcount() { lab exec n1 crm_failcount --query -r pm1 -N n2 2>/dev/null | sed -n 's/.*value=\([0-9]*\).*/\1/p'; }
fc_is() { [ "$(failcount)" = "$1" ]; }
check "Pacemaker's monitor failed: fail-count of pm1 on n2 is 1" until_true 30 fc_is 1
check "hagentd did not restart it (Pacemaker manages it)" \
	bash -c "tail -n +$mark '$LAB_DIR/n2/hagentd.log' | grep -q 'not restarted: Pacemaker manages it'"
new_qemu() { local p; p=$(qemu_pid n2); [ -n "$p" ] && [ "$p" != "$p2" ]; }
check "Pacemaker recovered it on n2: a new QEMU" until_true 60 new_qemu
check "... running for both" until_true 60 where_both n2
check "it booted anew (a crash loses the guest's memory)" \
	until_true 20 lab exec n2 grep -q 'TESTGUEST boot' /run/hagent/pm1.console.log

# --- the guest's host is lost: Pacemaker fences it and starts pm1 elsewhere
t0=$(date +%s%3N)
lab kill n2
fenced() { lab exec n1 stonith_admin --history n2 2>/dev/null | grep -q "reboot of n2.*successful\|off of n2.*successful\|n2 was able to\|n2 was fenced"; }
check "Pacemaker fenced n2 (stonith history)" until_true 60 fenced
running_on_survivor() { local w; w=$(pcmk_node); [ -n "$w" ] && [ "$w" != n2 ] && runs_on "$w"; }
check "pm1 runs on a survivor, for Pacemaker and hagentd" until_true 90 running_on_survivor
echo "# host kill to running on $(pcmk_node): $(($(date +%s%3N) - t0)) ms"
check "hagentd learned the fencing from Pacemaker (fence-pacemaker)" \
	grep -q "n2 was fenced by Pacemaker" "$LAB_DIR/n1/hagentd.log" "$LAB_DIR/n3/hagentd.log"
check "... and left pm1 to Pacemaker instead of placing it itself" \
	grep -q "guest pm1 of fenced n2 is Pacemaker's: left for it to place" "$LAB_DIR/n1/hagentd.log"

kill "$DUAL_PID" 2>/dev/null
wait "$DUAL_PID" 2>/dev/null
DUAL_PID=
cat "$LAB_DIR/dualrun.out"
check "never two copies of pm1 (dual-run checker)" grep -q "^dualrun: ok" "$LAB_DIR/dualrun.out"
[ "$FAILS" -eq 0 ] || for n in n1 n2 n3; do
	echo "--- $n pacemaker.log (pm1, tail)"
	grep -i 'pm1\|fenc' "$LAB_DIR/$n/pacemaker.log" 2>/dev/null | tail -n 30
done
echo "# $FAILS failed"
[ "$FAILS" -eq 0 ]

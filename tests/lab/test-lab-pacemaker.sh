#!/bin/bash
# `lab up 3 --pacemaker` (DESIGN.md §9, LAB.md "Pacemaker in the same lab"):
# Pacemaker in every host, the pre-seeded CIB valid and shared, fence_lab
# registered, a host's power loss fenced by Pacemaker, the host back in the
# cluster after `lab start`, and `lab down` leaving nothing behind (nor
# anything changed on the machine: Pacemaker's files are private to each host).
# Exit 0 pass, 1 fail, 77 skip (not root, no corosync/Pacemaker, no build).
set -u

[ "$(id -u)" = 0 ] || { echo "SKIP: the lab runs as root"; exit 77; }
for t in corosync corosync-quorumtool unshare nsenter bridge pacemakerd crm_mon crm_verify \
	stonith_admin cibadmin crm_resource setpriv; do
	command -v "$t" >/dev/null 2>&1 || { echo "SKIP: no $t"; exit 77; }
done
# canonical, as the lab spells it (distcheck gives .../_build/sub/..)
SRC=$(cd "${abs_top_srcdir:-$(dirname "$0")/../..}" && pwd)
HAGENT_BUILD=${HAGENT_BUILD:-${abs_top_builddir:-$SRC/build}}
[ -x "$HAGENT_BUILD/bin/hagentd" ] || { echo "SKIP: no $HAGENT_BUILD/bin/hagentd"; exit 77; }
export HAGENT_BUILD
LAB=$SRC/tests/lab/lab
LAB_DIR=$(mktemp -d /tmp/hagent-lab-pcmk.XXXXXX)
export LAB_DIR
unset LAB_KEEP LAB_TOKEN_COEFFICIENT LAB_WATCHDOG LAB_HAGENT_EXTRA
export LAB_TOKEN=1000

FAILS=0
CHECKS=0
ok() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
not_ok() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "not ok - $*"; }
check() { # description command...
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
now_ms() { date +%s%3N; }
lab() { "$LAB" "$@"; }
until_true() { # secs command...: a wait with a deadline
	local end=$(($(now_ms) + $1 * 1000))
	shift
	while :; do
		"$@" && return 0
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

DOWN_DONE=
LOGS_SHOWN=
show_logs() { # once, on failure, before `lab down` removes them
	[ "$FAILS" -ne 0 ] && [ -z "$LOGS_SHOWN" ] || return 0
	LOGS_SHOWN=1
	for n in n1 n2 n3; do
		echo "--- $n pacemaker.log (tail, no debug)"
		grep -Ev 'debug|trace' "$LAB_DIR/$n/pacemaker.log" 2>/dev/null | tail -n 20
	done
}
cleanup() {
	show_logs
	[ -n "$DOWN_DONE" ] || "$LAB" down >/dev/null 2>&1
	rm -rf "$LAB_DIR" "$LAB_DIR.seen" "$LAB_DIR.mntns"
}
trap cleanup EXIT

# --- what crm_mon shows ------------------------------------------------------
mon() { lab exec "$1" timeout 10 crm_mon -1 --output-as xml 2>/dev/null; }
# node_attr XML NODE ATTR: an attribute of NODE in crm_mon's node list
node_attr() {
	printf '%s\n' "$1" | grep -E "<node name=\"$2\" [^>]*online=" | head -n 1 |
		sed -n "s/.* $3=\"\\([^\"]*\\)\".*/\\1/p"
}
dc_of() { printf '%s\n' "$1" | sed -n 's/.*<current_dc present="true" [^>]* name="\([^"]*\)".*/\1/p'; }
fence_started() { # XML: fence-lab started (and where, on stdout)
	local l
	l=$(printf '%s\n' "$1" | grep -A1 -E '<resource id="fence-lab" ') || return 1
	printf '%s\n' "$l" | head -n 1 | grep 'role="Started"' | grep -q 'active="true"' || return 1
	printf '%s\n' "$l" | sed -n 's/.*<node name="\([^"]*\)".*/\1/p'
}
shows_online() { # VIEWER NODE... : VIEWER's Pacemaker shows all NODEs online with a DC
	local v=$1 x n
	shift
	x=$(mon "$v") || return 1
	[ -n "$(dc_of "$x")" ] || return 1
	for n in "$@"; do [ "$(node_attr "$x" "$n" online)" = true ] || return 1; done
}
shows_fenced_offline() { # VIEWER NODE: offline and clean (fenced), not pending fencing
	local x
	x=$(mon "$1") || return 1
	[ "$(node_attr "$x" "$2" online)" = false ] && [ "$(node_attr "$x" "$2" unclean)" = false ]
}
fences_of() { # VIEWER TARGET: how many successful fences of TARGET the fencer's history has
	lab exec "$1" stonith_admin --history "$2" --verbose 2>/dev/null | grep -Ec "(reboot|off) of $2 successful"
}
fence_done() { # VIEWER TARGET [COUNT]: at least COUNT (1) successful fences of TARGET
	[ "$(fences_of "$1" "$2")" -ge "${3:-1}" ]
}
cib_version() { # NODE: admin_epoch.epoch of its local CIB copy
	local h
	h=$(lab exec "$1" cibadmin -Q --local 2>/dev/null | head -n 1) || return 1
	printf '%s.%s\n' "$(printf '%s\n' "$h" | sed -n 's/.* admin_epoch="\([0-9]*\)".*/\1/p')" \
		"$(printf '%s\n' "$h" | sed -n 's/.* epoch="\([0-9]*\)".*/\1/p')"
}
same_cib() { # NODE NODE
	local a b
	a=$(cib_version "$1") && b=$(cib_version "$2") || return 1
	case $a in *[0-9].[0-9]*) ;; *) return 1 ;; esac
	[ "$a" = "$b" ]
}
proc_of() { # NODE COMM: pid of that process in the host's cgroup
	local p
	for p in $(cat "$(lab cgroup "$1")/cgroup.procs"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && { echo "$p"; return 0; }
	done
	return 1
}
no_sys_boot() { # PID: CAP_SYS_BOOT (22) not in its effective set
	local e
	e=$(awk '/^CapEff:/ { print $2 }' "/proc/$1/status") || return 1
	[ $((0x$e & (1 << 22))) = 0 ]
}
env_has() { # PID VAR=VALUE-prefix
	tr '\0' '\n' <"/proc/$1/environ" | grep -q "^$2"
}

# Every process the lab ever had ("pid:starttime") and its hosts' mount
# namespaces: after `lab down`, none may be left.
SEEN=$LAB_DIR.seen
MNTNS=$LAB_DIR.mntns
record() {
	local n p
	for n in n1 n2 n3; do
		for p in $(cat "$(lab cgroup $n)/cgroup.procs" 2>/dev/null); do
			echo "$p:$(awk '{ print $22 }' "/proc/$p/stat" 2>/dev/null)" >>"$SEEN"
		done
		p=$(lab pid $n 2>/dev/null) && readlink "/proc/$p/ns/mnt" >>"$MNTNS"
	done
}
survivors() {
	local e p st
	for e in $(sort -u "$SEEN"); do
		p=${e%%:*}
		st=$(awk '{ print $22 }' "/proc/$p/stat" 2>/dev/null) || continue
		[ "$p:$st" = "$e" ] || continue
		[ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" = Z ] && continue
		echo "$p($(cat "/proc/$p/comm" 2>/dev/null))"
	done
}
mntns_left() { # processes still in one of the hosts' mount namespaces
	local f ns
	for f in /proc/[0-9]*/ns/mnt; do
		ns=$(readlink "$f" 2>/dev/null) || continue
		grep -qx "$ns" "$MNTNS" && echo "${f%/ns/mnt}"
	done
}
# the machine's own Pacemaker and OCF files, which the lab must not touch
machine_files() {
	ls -la --time-style=+%s /var/lib/pacemaker /var/lib/pacemaker/* /var/log/pacemaker \
		/usr/lib/ocf/resource.d 2>&1
	for f in /usr/sbin/fence_*; do echo "$f"; done
}
MACHINE_BEFORE=$(machine_files)

# --- up -----------------------------------------------------------------------
T0=$(now_ms)
if ! UP_OUT=$(lab up 3 --pacemaker 2>&1); then
	printf '%s\n' "$UP_OUT"
	not_ok "lab up 3 --pacemaker"
	echo "# $CHECKS checks, $FAILS failed"
	exit 1
fi
echo "# lab up 3 --pacemaker: $(($(now_ms) - T0)) ms"
printf '%s\n' "$UP_OUT" | sed 's/^/# /'
ok "lab up 3 --pacemaker"
record
check "lab.env records PACEMAKER=1" grep -qx 'PACEMAKER=1' "$LAB_DIR/lab.env"
check "lab status shows pacemakerd on 3 hosts" test "$(lab status | grep -c ' pacemakerd=[0-9]')" = 3

# right after `up`, without waiting: every host shows all 3 online, one DC
for n in n1 n2 n3; do
	x=$(mon $n)
	check "$n: crm_mon shows n1 n2 n3 online" \
		test "$(node_attr "$x" n1 online)$(node_attr "$x" n2 online)$(node_attr "$x" n3 online)" = truetruetrue
	dc[${n#n}]=$(dc_of "$x")
	check "$n: crm_mon shows a DC (${dc[${n#n}]:-none})" test -n "${dc[${n#n}]}"
	where=$(fence_started "$x")
	check "$n: crm_mon shows fence-lab started (on ${where:-?})" fence_started "$x" >/dev/null
done
check "all hosts agree on the DC" test "${dc[1]}" = "${dc[2]}" -a "${dc[2]}" = "${dc[3]}"
check "lab exec n1 crm_mon -1 (text) shows the nodes online" \
	sh -c "'$LAB' exec n1 crm_mon -1 | grep -Eq 'Online: \\[ n1 n2 n3 \\]'"
V=$(lab exec n2 crm_verify -L 2>&1)
check "crm_verify -L is clean${V:+ ($V)}" test -z "$V"
check "crm_verify -L exits 0" lab exec n3 crm_verify -L
check "the CIB has the pre-seeded options" \
	sh -c "'$LAB' exec n1 cibadmin -Q --scope crm_config | grep -q 'name=\"dc-deadtime\" value=\"5s\"' &&
		'$LAB' exec n1 cibadmin -Q --scope crm_config | grep -q 'name=\"stonith-enabled\" value=\"true\"' &&
		'$LAB' exec n1 cibadmin -Q --scope crm_config | grep -q 'name=\"no-quorum-policy\" value=\"stop\"' &&
		'$LAB' exec n1 cibadmin -Q --scope rsc_defaults | grep -q 'name=\"resource-stickiness\" value=\"100\"'"
check "fencing: fence_lab is an installed agent inside the hosts (stonith_admin -I)" \
	sh -c "'$LAB' exec n2 stonith_admin -I | grep -qx fence_lab"
check "fencing: fence_lab's metadata (stonith_admin -M -a fence_lab)" \
	sh -c "'$LAB' exec n3 stonith_admin -M -a fence_lab | grep -q 'resource-agent name=\"fence_lab\"'"
for n in n1 n2 n3; do
	check "$n: the fencer has fence-lab registered" \
		sh -c "'$LAB' exec $n stonith_admin -L | grep -qx fence-lab"
done
check "fencing: fence-lab can fence n3 (stonith_admin -l n3)" \
	sh -c "'$LAB' exec n1 stonith_admin -l n3 | grep -qx fence-lab"
check "ocf:hagent:guest is an agent inside the hosts" \
	sh -c "'$LAB' exec n2 crm_resource --list-agents ocf:hagent | grep -qx guest"
check "ocf:hagent:guest's meta-data" \
	sh -c "'$LAB' exec n1 crm_resource --show-metadata ocf:hagent:guest | grep -q '<resource-agent name=\"guest\"'"
check "the machine has no fence_lab nor hagent OCF dir (private to the hosts)" \
	test ! -e /usr/sbin/fence_lab -a ! -e /usr/lib/ocf/resource.d/hagent
check "the machine's Pacemaker and OCF files are unchanged" test "$(machine_files)" = "$MACHINE_BEFORE"
check "n1's pacemaker.log is LAB_DIR/n1/pacemaker.log" \
	grep -q 'Starting Pacemaker' "$LAB_DIR/n1/pacemaker.log"
for n in n1 n2 n3; do
	pm=$(proc_of $n pacemakerd)
	check "$n: pacemakerd runs without CAP_SYS_BOOT" no_sys_boot "$pm"
	check "$n: pacemakerd exits instead of panicking (PCMK_trace_formats=panic-delay)" \
		env_has "$pm" PCMK_trace_formats=panic-delay
	ex=$(proc_of $n pacemaker-execd)
	check "$n: Pacemaker's executor has the build's bin (hactl) first in PATH" \
		env_has "$ex" "PATH=$HAGENT_BUILD/bin:"
done
if [ -f "$SRC/ra/fence-pacemaker" ]; then
	check "hagent.conf: fence_agent is ra/fence-pacemaker" \
		sh -c "'$LAB' exec n2 cat /etc/hagent/hagent.conf | grep -qx 'fence_agent = \"$SRC/ra/fence-pacemaker\"'"
else
	check "hagent.conf: no fence_agent (no ra/fence-pacemaker yet)" \
		sh -c "! '$LAB' exec n2 grep -q fence_agent /etc/hagent/hagent.conf"
fi

# --- kill n3: Pacemaker fences it ----------------------------------------------
check "no fencing of n3 before its power loss" sh -c "! '$LAB' exec n1 stonith_admin --history n3 | grep -q successful"
T0=$(now_ms)
check "lab kill n3" lab kill n3
echo "# kill n3 returned after $(($(now_ms) - T0)) ms"
if until_true 20 sh -c "'$LAB' exec n1 corosync-quorumtool -s 2>/dev/null | grep -Eq '^Nodes: +2\$'"; then
	ok "n1's corosync sees 2 members"
	echo "# kill -> new membership (n1): $(($(now_ms) - T0)) ms"
else
	not_ok "n1's corosync sees 2 members"
fi
if until_true 40 fence_done n1 n3; then
	T_FENCED=$(now_ms)
	ok "Pacemaker fenced n3 (stonith_admin --history n3)"
	echo "# kill -> fence of n3 successful: $((T_FENCED - T0)) ms"
	echo "# $(lab exec n1 stonith_admin --history n3 | head -n 1)"
else
	not_ok "Pacemaker fenced n3 (stonith_admin --history n3)"
fi
check "n2's fencer knows n3 was fenced" until_true 10 fence_done n2 n3
for n in n1 n2; do
	check "$n: crm_mon shows n3 OFFLINE (clean)" until_true 20 shows_fenced_offline $n n3
	check "$n: crm_mon shows n1 n2 online" shows_online $n n1 n2
done
echo "# kill -> n3 offline in crm_mon: $(($(now_ms) - T0)) ms"
check "fence-lab is started on a survivor" \
	sh -c "x=\$('$LAB' exec n1 timeout 10 crm_mon -1 --output-as xml); printf '%s\n' \"\$x\" | grep -A1 '<resource id=\"fence-lab\"' | grep -Eq '<node name=\"n[12]\"'"
check "lab status: n3 killed" sh -c "'$LAB' status | grep -Eq '^n3 killed'"

# --- start n3: back in the cluster --------------------------------------------------
T0=$(now_ms)
if START_OUT=$(lab start n3 2>&1); then
	ok "lab start n3"
else
	not_ok "lab start n3"
	printf '%s\n' "$START_OUT"
fi
echo "# lab start n3 (to Pacemaker ready): $(($(now_ms) - T0)) ms"
printf '%s\n' "$START_OUT" | sed 's/^/# /'
record
for n in n1 n2 n3; do
	check "$n: crm_mon shows n1 n2 n3 online after the restart" shows_online $n n1 n2 n3
done
check "n3's CIB is the cluster's (same epoch as n1's)" until_true 10 same_cib n1 n3
check "n3's CIB has the fence device" \
	sh -c "'$LAB' exec n3 cibadmin -Q --scope resources | grep -q 'id=\"fence-lab\"'"
check "crm_verify -L clean on n3" sh -c "test -z \"\$('$LAB' exec n3 crm_verify -L 2>&1)\""
check "n3: pacemakerd runs without CAP_SYS_BOOT after the restart" no_sys_boot "$(proc_of n3 pacemakerd)"

# --- partition n3: the majority fences it, fence_lab powering it off ------------------
# (n3 is alive this time: fence_lab, run by a survivor's fencer inside that
# host, does `lab kill n3` itself)
check "n3 is up" sh -c "'$LAB' status | grep -Eq '^n3 up'"
F0=$(fences_of n1 n3)
T0=$(now_ms)
check "lab partition n3" lab partition n3
if until_true 40 fence_done n1 n3 $((F0 + 1)); then
	ok "Pacemaker fenced the partitioned n3"
	echo "# partition -> fence of n3 successful: $(($(now_ms) - T0)) ms"
else
	not_ok "Pacemaker fenced the partitioned n3"
fi
check "the fence powered n3 off (lab status: killed)" \
	until_true 10 sh -c "'$LAB' status | grep -Eq '^n3 killed'"
check "n3's cgroup is empty" sh -c "test -z \"\$(cat '$(lab cgroup n3)/cgroup.procs')\""
check "n1: crm_mon shows n3 OFFLINE (clean) after the partition" until_true 20 shows_fenced_offline n1 n3
check "the fence ran on a survivor" \
	sh -c "'$LAB' exec n1 stonith_admin --history n3 | grep -Eq 'of n3 successful: delegate=n[12],'"
T0=$(now_ms)
if START_OUT=$(lab start n3 2>&1); then
	ok "lab start n3 after the partition's fence"
else
	not_ok "lab start n3 after the partition's fence"
fi
echo "# lab start n3: $(($(now_ms) - T0)) ms"
printf '%s\n' "$START_OUT" | sed 's/^/# /'
record
check "n2: crm_mon shows n1 n2 n3 online again" shows_online n2 n1 n2 n3

# --- down -----------------------------------------------------------------------
show_logs
CGDIR=$(dirname "$(lab cgroup n1)")
T0=$(now_ms)
check "lab down" lab down
DOWN_DONE=1
echo "# down: $(($(now_ms) - T0)) ms"
check "no lab process remains (Pacemaker included)" test -z "$(survivors)"
check "no process is left in a host's mount namespace" test -z "$(mntns_left)"
check "no lab cgroup remains" test ! -e "$CGDIR"
check "no mount of the lab remains" sh -c "! grep -q '$LAB_DIR' /proc/mounts"
check "the lab directory is gone" test ! -e "$LAB_DIR"
check "the machine's Pacemaker and OCF files are unchanged" test "$(machine_files)" = "$MACHINE_BEFORE"
check "no fence_lab on the machine" test ! -e /usr/sbin/fence_lab

echo "# $CHECKS checks, $FAILS failed"
[ "$FAILS" -eq 0 ]

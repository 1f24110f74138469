# Shared set-up of the cluster tests on the lab: skips, a lab with fence_lab
# configured in LAB_DIR=/tmp/hagent-lab-$LABTEST_NAME.PID, ok/bad/check, and
# a cleanup that prints the hosts' logs on failure and takes the lab down.
# Source it after setting LABTEST_NAME.
set -u
: "${abs_top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
[ "$(id -u)" = 0 ] || { echo "SKIP: root needed"; exit 77; }
command -v corosync >/dev/null || { echo "SKIP: no corosync"; exit 77; }
[ -x "$abs_top_builddir/bin/hagentd" ] || { echo "SKIP: no build"; exit 77; }
LAB=$abs_top_srcdir/tests/lab/lab
export LAB_DIR=/tmp/hagent-lab-$LABTEST_NAME.$$
export HAGENT_BUILD=$abs_top_builddir
export LAB_HAGENT_EXTRA="fence_agent = \"$abs_top_srcdir/tests/lab/fence_lab\"
fence_args = \"lab=$LAB,lab_dir=$LAB_DIR\""
FAILS=0
ok() { echo "ok - $*"; }
until_true() { # timeout_s command...  (a wait with a deadline)
	local end=$(($(date +%s%3N) + $1 * 1000))
	shift
	while [ "$(date +%s%3N)" -lt "$end" ]; do "$@" && return 0; sleep 0.05; done
	return 1
}
bad() { echo "not ok - $*"; FAILS=$((FAILS + 1)); }
check() { d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
lab() { "$LAB" "$@"; }
DUAL_PID=
cleanup() {
	[ -n "$DUAL_PID" ] && kill "$DUAL_PID" 2>/dev/null && wait "$DUAL_PID" 2>/dev/null
	if [ "$FAILS" -ne 0 ]; then
		for n in n1 n2 n3; do
			echo "--- $n hagentd.log (tail)"
			grep -v debug "$LAB_DIR/$n/hagentd.log" 2>/dev/null | tail -n 25
		done
	fi
	lab down >/dev/null 2>&1
}
trap cleanup EXIT
field() { # node guest field
	lab exec "$1" hactl --json list "$2" 2>/dev/null |
		python3 -c "import json,sys; print(json.load(sys.stdin)['guests'][0]['$3'])" 2>/dev/null
}

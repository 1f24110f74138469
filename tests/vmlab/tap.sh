# The TAP-style helpers of the VM lab tests (sourced by test-vmlab.sh and
# test-xen.sh): ok/not_ok lines with their counts, check, and a wait with a
# deadline.  The tests print "# N checks, M failed" and exit by FAILS.
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
until_true() { # SECS CMD...: poll CMD until it succeeds or the deadline passes
	local end=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.3
	done
}

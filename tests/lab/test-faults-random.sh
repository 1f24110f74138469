#!/bin/bash
# The seeded randomized fault runner (tests/lab/faults) as a CI test: four
# rounds of random faults on a 3-host lab with a fixed seed, so a failure
# reproduces (HAGENT_FAULTS_SEED=S picks another seed; the runner prints the
# command that replays it). About 30-40 s on 2 cores.
# Exit 0 pass, 1 fail, 77 skip (not root, no corosync, no build).
set -u
: "${abs_top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
[ "$(id -u)" = 0 ] || { echo "SKIP: root needed"; exit 77; }
for t in corosync corosync-quorumtool unshare nsenter bridge qemu-system-x86_64 python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "SKIP: no $t"; exit 77; }
done
[ -x "$abs_top_builddir/bin/hagentd" ] || { echo "SKIP: no build"; exit 77; }
[ -x "$abs_top_builddir/tests/lab/cpg_garbage" ] || { echo "SKIP: no tests/lab/cpg_garbage (make check)"; exit 77; }
export HAGENT_BUILD=$abs_top_builddir
# seed 67: kill of an owner, hagentd kill -9 on the new owner, partition of a
# host with no guest (healed), corosync killed on an owner (fenced)
exec "$abs_top_srcdir/tests/lab/faults" --rounds 4 --seed "${HAGENT_FAULTS_SEED:-67}"

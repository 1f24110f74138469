# tests/lab — the multi-host lab harness (DESIGN.md §9), its fence agent, the
# dual-run checker, and the cluster tests.  Paths are relative to the top.
dist_noinst_SCRIPTS += tests/lab/lab tests/lab/test-lab.sh tests/lab/fence_lab \
	tests/lab/dualrun tests/lab/test-failover.sh tests/lab/test-faults.sh tests/lab/labtest.sh tests/lab/test-placement.sh \
	tests/lab/faults tests/lab/test-faults-random.sh \
	tests/lab/softdog_lab tests/lab/fence_flaky tests/lab/test-fence.sh tests/lab/test-watchdog.sh tests/lab/test-recovery.sh \
	tests/lab/test-migrate.sh tests/lab/test-migrate-faults.sh tests/lab/test-standby.sh \
	tests/lab/guestutil.sh tests/lab/test-lab-pacemaker.sh tests/lab/test-pacemaker.sh \
	tests/lab/test-storage.sh
TESTS += tests/lab/test-lab.sh tests/lab/test-failover.sh tests/lab/test-faults.sh \
	tests/lab/test-placement.sh \
	tests/lab/test-faults-random.sh \
	tests/lab/test-fence.sh tests/lab/test-watchdog.sh tests/lab/test-recovery.sh \
	tests/lab/test-migrate.sh tests/lab/test-migrate-faults.sh tests/lab/test-standby.sh \
	tests/lab/test-lab-pacemaker.sh tests/lab/test-pacemaker.sh tests/lab/test-storage.sh

# a misbehaving CPG peer for test-faults.sh
check_PROGRAMS += tests/lab/cpg_garbage
tests_lab_cpg_garbage_SOURCES = tests/lab/cpg_garbage.c
tests_lab_cpg_garbage_LDADD = $(HAGENT_LIBS) $(COROSYNC_LIBS)

# tests/vmlab — nested Xen hosts under QEMU TCG (the VM lab), its fence
# device's agent, and the Xen scenarios.  They boot real hypervisors: slow
# (a minute or two each) and CPU-hungry, so scripts/test runs them in a pass
# of their own, one at a time (HAGENT_VMLAB=skip makes them skip elsewhere).
dist_noinst_SCRIPTS += tests/vmlab/vmlab tests/vmlab/mkimage tests/vmlab/init \
	tests/vmlab/rc-hagentd tests/vmlab/fence_vmlab \
	tests/vmlab/test-vmlab.sh tests/vmlab/test-xen.sh tests/vmlab/test-storage.sh \
	tests/vmlab/storage-demo.sh
EXTRA_DIST += tests/vmlab/guest-pvh.cfg tests/vmlab/guest-hvm.cfg tests/vmlab/tap.sh \
	tests/vmlab/xentest.sh tests/vmlab/storage.sh
VMLAB_TESTS = tests/vmlab/test-vmlab.sh tests/vmlab/test-xen.sh tests/vmlab/test-storage.sh
TESTS += $(VMLAB_TESTS)

# the VM lab pass alone, serially: make check-vmlab
check-vmlab: all
	$(MAKE) $(AM_MAKEFLAGS) -j1 check TESTS="$(VMLAB_TESTS)" HAGENT_VMLAB=run
.PHONY: check-vmlab

# drivers — guest drivers behind driver.h's ops table (QEMU via QMP).
libhagent_a_SOURCES += \
	drivers/driver.c drivers/driver.h \
	drivers/qemu.c drivers/qemu_priv.h drivers/qemu_migrate.c drivers/qemu_files.c \
	drivers/qemu_argv.c drivers/qemu_argv.h \
	drivers/xen_config.c drivers/xen_config.h \
	drivers/qmp.c drivers/qmp.h

# Unit tests: argv table, QMP protocol against an in-process fake server.
check_PROGRAMS += tests/unit/test_qemu_argv tests/unit/test_qmp
TESTS += tests/unit/test_qemu_argv tests/unit/test_qmp
tests_unit_test_qemu_argv_SOURCES = tests/unit/test_qemu_argv.c
tests_unit_test_qemu_argv_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_qemu_argv_LDADD = $(HAGENT_LIBS) $(CMOCKA_LIBS)
tests_unit_test_qmp_SOURCES = tests/unit/test_qmp.c
tests_unit_test_qmp_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_qmp_LDADD = $(HAGENT_LIBS) $(CMOCKA_LIBS)

# Unit test: xl.cfg → libxl_domain_config, no hypervisor needed (the JSON round trip
# gets its libxl ctx from a shim in the test).
check_PROGRAMS += tests/unit/test_xen_config
TESTS += tests/unit/test_xen_config
tests_unit_test_xen_config_SOURCES = tests/unit/test_xen_config.c
tests_unit_test_xen_config_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_xen_config_LDADD = $(HAGENT_LIBS) $(CMOCKA_LIBS)

# Integration: the driver against a real QEMU (TCG unless HAGENT_ACCEL says
# otherwise) running the test guest (TESTGUEST, default
# ./tests/guest/testguest.elf from the build directory; skipped, exit 77,
# when it is missing).
check_PROGRAMS += tests/integ/test-qemu-driver
TESTS += tests/integ/test-qemu-driver
tests_integ_test_qemu_driver_SOURCES = tests/integ/test-qemu-driver.c
tests_integ_test_qemu_driver_LDADD = $(HAGENT_LIBS)

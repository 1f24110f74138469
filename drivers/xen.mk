# drivers/xen* — the Xen driver's parts: libxl's events in hagentd's loop.
# xen.c: the driver itself; written against libxl 4.17, not yet registered in
# driver.c (it waits for the nested-Xen VM lab to be run against real Xen).
libhagent_a_SOURCES += drivers/xen.c drivers/xen_loop.c drivers/xen_loop.h

# Unit test: the osevent glue in a real libqb loop; the test stands in for
# libxl's side (libxl cannot run without Xen), so it links no libxenlight.
check_PROGRAMS += tests/unit/test_xen_loop
TESTS += tests/unit/test_xen_loop
tests_unit_test_xen_loop_SOURCES = tests/unit/test_xen_loop.c drivers/xen_loop.c
tests_unit_test_xen_loop_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(XLUTIL_CFLAGS)
tests_unit_test_xen_loop_LDADD = libhagent.a $(QB_LIBS) $(CMOCKA_LIBS)

include tests/unit/guestcfg.mk

check_PROGRAMS += tests/unit/test_frame
TESTS += tests/unit/test_frame
tests_unit_test_frame_SOURCES = tests/unit/test_frame.c
tests_unit_test_frame_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_frame_LDADD = $(HAGENT_LIBS) $(CMOCKA_LIBS)
include tests/unit/agent.mk
include tests/unit/migrate.mk

# tests/unit/guestcfg.mk — guest definition parser (lib/guestcfg.c) tests.
# Included from tests/unit/local.mk.  Data files are found through $(srcdir),
# which automake exports to tests as "srcdir".
check_PROGRAMS += tests/unit/test_guestcfg
TESTS += tests/unit/test_guestcfg
tests_unit_test_guestcfg_SOURCES = tests/unit/test_guestcfg.c
tests_unit_test_guestcfg_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_guestcfg_LDADD = $(HAGENT_LIBS) $(CMOCKA_LIBS)
EXTRA_DIST += \
	tests/unit/data/guestcfg/winxp.cfg \
	tests/unit/data/guestcfg/openbsd.cfg \
	tests/unit/data/guestcfg/xlexample.hvm \
	tests/unit/data/guestcfg/xlexample.pvlinux \
	tests/unit/data/guestcfg/xlexample.pvhlinux \
	tests/unit/data/guestcfg/relkernel.cfg

check_PROGRAMS += tests/unit/test_storage
TESTS += tests/unit/test_storage
tests_unit_test_storage_SOURCES = tests/unit/test_storage.c
tests_unit_test_storage_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_storage_LDADD = $(HAGENT_LIBS) $(CMOCKA_LIBS)

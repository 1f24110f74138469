# tests/unit/migrate.mk — the migration modules (part of libagent.a): the
# agent-to-agent channel over real loopback TCP and real GnuTLS.  Included
# from tests/unit/local.mk.
check_PROGRAMS += tests/unit/test_channel
TESTS += tests/unit/test_channel

tests_unit_test_channel_SOURCES = tests/unit/test_channel.c
tests_unit_test_channel_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_channel_LDADD = $(AGENT_LIBS) $(CMOCKA_LIBS)

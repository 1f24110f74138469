# tests/unit/migrate.mk — the migration modules (part of libagent.a): the
# agent-to-agent channel and the TLS relay over real loopback TCP and real
# GnuTLS.  Included from tests/unit/local.mk.
check_PROGRAMS += tests/unit/test_channel
TESTS += tests/unit/test_channel

tests_unit_test_channel_SOURCES = tests/unit/test_channel.c tests/unit/chan_util.h
tests_unit_test_channel_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_channel_LDADD = $(AGENT_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_relay
TESTS += tests/unit/test_relay

tests_unit_test_relay_SOURCES = tests/unit/test_relay.c tests/unit/chan_util.h
tests_unit_test_relay_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_relay_LDADD = $(AGENT_LIBS) $(CMOCKA_LIBS)

# tests/unit/agent.mk — the daemon's modules (libagent.a): the supervisor's
# state table on a test double driver, the durable store and its file
# helpers, hagent.conf.  Included from tests/unit/local.mk.
check_PROGRAMS += tests/unit/test_supervise tests/unit/test_store tests/unit/test_conf
TESTS += tests/unit/test_supervise tests/unit/test_store tests/unit/test_conf

tests_unit_test_supervise_SOURCES = tests/unit/test_supervise.c
tests_unit_test_supervise_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_supervise_LDADD = $(AGENT_LIBS) $(CMOCKA_LIBS)

tests_unit_test_store_SOURCES = tests/unit/test_store.c
tests_unit_test_store_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_store_LDADD = $(AGENT_LIBS) $(CMOCKA_LIBS)

tests_unit_test_conf_SOURCES = tests/unit/test_conf.c
tests_unit_test_conf_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_conf_LDADD = $(AGENT_LIBS) $(CMOCKA_LIBS)

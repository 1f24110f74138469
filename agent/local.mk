# The daemon's parts live in libagent.a so unit tests can link them.
noinst_LIBRARIES += libagent.a
libagent_a_SOURCES = agent/hagentd.h agent/timeouts.h \
	agent/conf.c agent/conf.h agent/guests.c agent/guests.h \
	agent/store.c agent/store.h agent/supervise.c agent/supervise.h \
	agent/control.c agent/control.h agent/requests.c agent/requests.h \
	agent/cluster.c agent/cluster.h agent/registry.c agent/registry.h \
	agent/fence.c agent/fence.h agent/watchdog.c agent/watchdog.h \
	agent/placement.c agent/placement.h agent/testhold.c agent/testhold.h \
	agent/storage.c agent/storage.h agent/storage_state.c \
	agent/peerfence.c agent/peerfence.h
libagent_a_CFLAGS = $(AM_CFLAGS)
AGENT_LIBS = libagent.a $(HAGENT_LIBS) $(COROSYNC_LIBS) $(GNUTLS_LIBS)

sbin_PROGRAMS += bin/hagentd
bin_hagentd_SOURCES = agent/main.c
bin_hagentd_CFLAGS = $(AM_CFLAGS) $(SYSTEMD_CFLAGS)
bin_hagentd_LDADD = $(AGENT_LIBS) $(SYSTEMD_LIBS)

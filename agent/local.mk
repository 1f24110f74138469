sbin_PROGRAMS += bin/hagentd
bin_hagentd_SOURCES = agent/main.c agent/hagentd.h agent/timeouts.h \
	agent/conf.c agent/conf.h agent/guests.c agent/guests.h \
	agent/store.c agent/store.h agent/supervise.c agent/supervise.h \
	agent/control.c agent/control.h agent/requests.c agent/requests.h
bin_hagentd_CFLAGS = $(AM_CFLAGS) $(SYSTEMD_CFLAGS)
bin_hagentd_LDADD = $(HAGENT_LIBS) $(SYSTEMD_LIBS)

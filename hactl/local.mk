sbin_PROGRAMS += bin/hactl
bin_hactl_SOURCES = hactl/hactl.c hactl/hactl.h hactl/client.c hactl/output.c hactl/console.c hactl/migrate.c
bin_hactl_LDADD = $(HAGENT_LIBS)

# docs: man pages, the systemd unit and the example configuration.
dist_man_MANS = docs/hagentd.8 docs/hactl.8 docs/hagent.conf.5

# The unit names hagentd by its installed path, known only at make time.
systemdsystemunit_DATA = data/hagentd.service
CLEANFILES += data/hagentd.service
EXTRA_DIST += data/hagentd.service.in data/hagent.conf.example

data/hagentd.service: $(srcdir)/data/hagentd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) data && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' $(srcdir)/data/hagentd.service.in > $@.tmp && \
	mv $@.tmp $@

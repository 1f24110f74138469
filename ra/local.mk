# ra — the OCF resource agent ocf:hagent:guest (DESIGN.md §8), installed in
# Pacemaker's OCF root (configure: --with-ocf-root, else resource-agents'
# pkg-config file, else /usr/lib/ocf), and its manual page, made from its
# meta-data (which the agent prints without resource-agents' ocf-shellfuncs)
# by ra/metadata2man.py.  The page is distributed: a build from the tarball
# does not need python3.
ocfradir = $(OCF_ROOT)/resource.d/hagent
dist_ocfra_SCRIPTS = ra/guest
dist_man_MANS += ra/ocf_hagent_guest.7
# hagentd's fence agent where Pacemaker fences: it waits for Pacemaker's fencing
hagentexecdir = $(libexecdir)/hagent
dist_hagentexec_SCRIPTS = ra/fence-pacemaker ra/hagent-fence-peer
EXTRA_DIST += ra/metadata2man.py
MAINTAINERCLEANFILES = ra/ocf_hagent_guest.7

ra/ocf_hagent_guest.7: $(srcdir)/ra/guest $(srcdir)/ra/metadata2man.py
	$(AM_V_GEN)$(MKDIR_P) ra && \
	$(SHELL) $(srcdir)/ra/guest meta-data | \
	python3 $(srcdir)/ra/metadata2man.py hagent $(VERSION) >$@.tmp && mv $@.tmp $@

# distcheck installs under its own prefix, not into the system's OCF root
AM_DISTCHECK_CONFIGURE_FLAGS = --with-ocf-root="$$dc_install_base/lib/ocf"

TESTS += tests/ra/test-ra.sh
dist_noinst_SCRIPTS += tests/ra/test-ra.sh

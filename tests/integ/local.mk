INTEG_TESTS = tests/integ/test-basic.sh tests/integ/test-policy.sh tests/integ/test-budget.sh \
	tests/integ/test-daemon-restart.sh tests/integ/test-badinput.sh tests/integ/test-console.sh \
	tests/integ/test-ioerror.sh tests/integ/test-seed.sh tests/integ/test-vif.sh
TESTS += $(INTEG_TESTS)
dist_noinst_SCRIPTS += $(INTEG_TESTS) tests/integ/lib.sh
AM_TESTS_ENVIRONMENT = abs_top_builddir='$(abs_top_builddir)'; abs_top_srcdir='$(abs_top_srcdir)'; \
	export abs_top_builddir abs_top_srcdir;

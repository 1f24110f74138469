dist_noinst_SCRIPTS += tests/bench/restart tests/bench/failover tests/bench/migrate
# Benchmarks print figures; they are not part of `make check`.
bench: all
	$(srcdir)/tests/bench/restart $(abs_top_builddir)
.PHONY: bench

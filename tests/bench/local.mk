dist_noinst_SCRIPTS += tests/bench/restart tests/bench/failover tests/bench/migrate tests/bench/xen-migrate
# Benchmarks print figures; they are not part of `make check`.
bench: all
	$(srcdir)/tests/bench/restart $(abs_top_builddir)
.PHONY: bench

# The TLS relay against plain TCP over loopback (built by `make`, run by
# hand: tests/bench/relay_bench [SIZE_MIB] [ROUNDS]).
noinst_PROGRAMS += tests/bench/relay_bench
tests_bench_relay_bench_SOURCES = tests/bench/relay_bench.c tests/unit/chan_util.h
tests_bench_relay_bench_LDADD = $(AGENT_LIBS)

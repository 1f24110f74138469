# tests/lab — the multi-host lab harness (DESIGN.md §9) and its own test.
# Included from the top Makefile.am; paths are relative to the top.
dist_noinst_SCRIPTS += tests/lab/lab tests/lab/test-lab.sh
TESTS += tests/lab/test-lab.sh

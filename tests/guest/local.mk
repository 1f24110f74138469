# tests/guest — the bare-metal test guest (multiboot v1 ELF + Xen PVH note).
# Built with its own flags (32-bit, freestanding), not AM_CFLAGS/CFLAGS.
# $(TESTGUEST) is the build-dir path of the image; `make` builds it.
TESTGUEST = tests/guest/testguest.elf
TESTGUEST_OBJS = tests/guest/tg-boot.o tests/guest/tg-testguest.o
TESTGUEST_CCFLAGS = -m32 -march=i686 -O2 -g0 -ffreestanding -fno-builtin \
	-fno-pie -fno-pic -fno-stack-protector -fno-asynchronous-unwind-tables \
	-fcf-protection=none -mgeneral-regs-only -Wall -Wextra -Werror
TESTGUEST_LINKFLAGS = -m32 -nostdlib -static -no-pie -Wl,-m,elf_i386 \
	-Wl,--build-id=none -Wl,-T,$(srcdir)/tests/guest/testguest.ld

noinst_DATA = $(TESTGUEST)
CLEANFILES += $(TESTGUEST) $(TESTGUEST_OBJS)
EXTRA_DIST += tests/guest/boot.S tests/guest/testguest.c \
	tests/guest/testguest.ld tests/guest/testguest.cfg tests/guest/README
dist_noinst_SCRIPTS += tests/guest/run-bare

# diskseq: checks the guest's numbered disk records (README).  libc only:
# it runs in the vmlab hosts from /opt/hagent (their Debian 12 has the same
# libc; not linked statically, which a sanitizer build cannot).
noinst_PROGRAMS += tests/guest/diskseq
tests_guest_diskseq_SOURCES = tests/guest/diskseq.c

tests/guest/tg-boot.o: $(srcdir)/tests/guest/boot.S
	$(AM_V_CC)$(MKDIR_P) tests/guest && \
	$(CC) $(TESTGUEST_CCFLAGS) -c -o $@ $(srcdir)/tests/guest/boot.S
tests/guest/tg-testguest.o: $(srcdir)/tests/guest/testguest.c
	$(AM_V_CC)$(MKDIR_P) tests/guest && \
	$(CC) $(TESTGUEST_CCFLAGS) -c -o $@ $(srcdir)/tests/guest/testguest.c
tests/guest/testguest.elf: $(TESTGUEST_OBJS) $(srcdir)/tests/guest/testguest.ld
	$(AM_V_CCLD)$(CC) $(TESTGUEST_LINKFLAGS) -o $@ $(TESTGUEST_OBJS)

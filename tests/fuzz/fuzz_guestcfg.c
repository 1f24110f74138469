/* libFuzzer target: guest definition parsing never crashes, never leaks,
 * and always leaves a terminated, bounded result.
 *
 * Build and run (from the top of the tree; config.h only needs _GNU_SOURCE):
 *   mkdir -p /tmp/fz && echo '#define _GNU_SOURCE 1' > /tmp/fz/config.h
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I/tmp/fz -I. \
 *     $(pkg-config --cflags xlutil xenlight) \
 *     tests/fuzz/fuzz_guestcfg.c lib/guestcfg.c lib/fsutil.c \
 *     -o /tmp/fz/fuzz_guestcfg $(pkg-config --libs xlutil xenlight)
 *   mkdir -p /tmp/fz/corpus && cp -r tests/unit/data/guestcfg/. /tmp/fz/corpus/
 *   echo 'leak:libxlutil.so' > /tmp/fz/lsan.supp
 *   LSAN_OPTIONS=suppressions=/tmp/fz/lsan.supp \
 *     /tmp/fz/fuzz_guestcfg -max_total_time=60 -max_len=4096 /tmp/fz/corpus
 *
 * The suppression: libxlutil 4.17's bison parser drops already-built list
 * items on some syntax errors (e.g. the input  n=["",""/s  leaks ~40 bytes
 * from xlu__cfg_string_mk).  That is Xen's leak, once per rejected file;
 * leaks from our own code are still reported.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/guestcfg.h"

static struct guest_cfg cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guestcfg_diags diags;
	char line[512];
	int i;

	memset(&diags, 0, sizeof(diags));
	/* A source with a directory, so relative paths get resolved too. */
	if (guestcfg_parse((const char *)data, size, "/fuzz/dir/guest.cfg", &cfg, &diags) == 0) {
		if (diags.n_errors != 0 || !guest_name_valid(cfg.name) || cfg.n_disks > GUEST_MAX_DISKS ||
		    cfg.n_vifs > GUEST_MAX_VIFS || cfg.n_ha_nodes > GUEST_MAX_NODES ||
		    cfg.maxmem_mib < cfg.memory_mib)
			abort();
		/* host checks only stat(); keep them in the run */
		guestcfg_check_host(&cfg, &diags);
	}
	if (diags.n < 0 || diags.n > GUESTCFG_MAX_DIAGS)
		abort();
	for (i = 0; i < diags.n; i++) {
		guestcfg_diag_format(&diags.d[i], "/fuzz/dir/guest.cfg", line, sizeof(line));
		if (strchr(line, '\n'))
			abort();
	}
	return 0;
}

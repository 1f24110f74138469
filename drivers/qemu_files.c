/* A guest's files in run_dir (NAME.qmp, NAME.pid, ...): one list of them,
 * for whatever moves or removes a QEMU's files as a whole. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "drivers/qemu_argv.h"
#include "drivers/qemu_priv.h"
#include "lib/log.h"

static const char *const run_suffixes[] = {
	QEMU_SUFFIX_QMP, QEMU_SUFFIX_SERIAL, QEMU_SUFFIX_PID,
	QEMU_SUFFIX_CONSOLE, QEMU_SUFFIX_LOG, QEMU_SUFFIX_OBSERVE,
};

void qemu_incoming_name(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s%s", name, QEMU_INCOMING_TAG);
}

void qemu_files_rename(struct drv_host *host, const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(run_suffixes) / sizeof(run_suffixes[0]); i++)
		if (qemu_path(a, sizeof(a), host->run_dir, from, run_suffixes[i]) == 0 &&
		    qemu_path(b, sizeof(b), host->run_dir, to, run_suffixes[i]) == 0 &&
		    rename(a, b) < 0 && errno != ENOENT)
			log_warn("rename %s -> %s: %s", a, b, strerror(errno));
}

void qemu_files_unlink(struct drv_host *host, const char *name)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(run_suffixes) / sizeof(run_suffixes[0]); i++)
		if (strcmp(run_suffixes[i], QEMU_SUFFIX_LOG) && /* kept: it tells what happened */
		    qemu_path(path, sizeof(path), host->run_dir, name, run_suffixes[i]) == 0)
			unlink(path);
}

/* Small file helpers: bounded reads, atomic durable writes, directories. */
#ifndef HAGENT_FSUTIL_H
#define HAGENT_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Write data to path atomically and durably: PATH.tmp, fsync, rename, fsync
 * of the directory.  On failure the old file is untouched, the temp removed,
 * -1 with errno (ENOSPC for a full disk). */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* write(2) all of buf, retrying on EINTR and short writes; 0 or -1. */
int fs_write_all(int fd, const void *buf, size_t len);
/* Read a whole file of at most limit bytes into a NUL-terminated malloc'd
 * buffer.  -1 with errno EFBIG when larger. */
ssize_t fs_read_file(const char *path, size_t limit, char **out);
/* mkdir -p with mode for created components. */
int fs_mkdir_p(const char *path, mode_t mode);
/* snprintf that reports truncation: -1 with errno ENAMETOOLONG. */
int fs_path(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

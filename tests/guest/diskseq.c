/*
 * diskseq.c - check the numbered records the test guest writes to its disk
 * (tests/guest/README, "Numbered writes").
 *
 *   diskseq DEVICE|FILE [--upto N]
 *
 * Reads the sectors at LBA 2048 + 1, 2048 + 2, ... (the record of sequence
 * number n is at LBA 2048 + n) and prints
 *   last=<n> first_gap=<m|none> bad=<count>
 * last: the highest n whose sector holds a valid record of n; first_gap: the
 * lowest m in 1..last without one; bad: sectors that carry the magic but are
 * not a valid record of their position (checksum, or another seq).  The scan
 * ends at the end of the device, or 65536 sectors (32 MiB) past the last
 * sector that carried the magic.  With --upto N it exits 0 only when every
 * record 1..N is there and valid; else it prints "missing seq=<m>" (the
 * first one) and exits 1.  Exit 2: usage or I/O error.
 *
 * Block devices are read with O_DIRECT: blkback writes bypass the device's
 * page cache, so a buffered read could return what an earlier read cached.
 * Plain C and libc only (linked statically: it runs in the vmlab hosts).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define SECTOR          512
#define SEQ_BASE_LBA    2048u
#define CHUNK           (1024 * 1024)
#define MAX_RUN         65536u          /* sectors without magic: the end */
#define MAGIC           "HAGENT-SEQ"

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int has_magic(const uint8_t *p)
{
	static const uint8_t magic[16] = MAGIC;         /* NUL-padded */

	return memcmp(p, magic, sizeof(magic)) == 0;
}

/* A valid record of seq? */
static int valid(const uint8_t *p, uint64_t seq)
{
	return has_magic(p) && le64(p + 16) == seq && le32(p + 508) == fnv1a(p, 508);
}

/* Valid seqs seen, as a growable bitmap. */
static uint8_t *seen;
static uint64_t seen_bits;

static void mark(uint64_t seq)
{
	if (seq >= seen_bits) {
		uint64_t nbits = seen_bits ? seen_bits : 65536;
		uint8_t *n;

		while (nbits <= seq)
			nbits *= 2;
		n = realloc(seen, nbits / 8);
		if (!n) {
			perror("diskseq: realloc");
			exit(2);
		}
		memset(n + seen_bits / 8, 0, (nbits - seen_bits) / 8);
		seen = n;
		seen_bits = nbits;
	}
	seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
}

static int is_seen(uint64_t seq)
{
	return seq < seen_bits && (seen[seq / 8] >> (seq % 8) & 1);
}

static void usage(void)
{
	fprintf(stderr, "usage: diskseq DEVICE|FILE [--upto N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	uint64_t upto = 0, last = 0, bad = 0, gap = 0, m;
	uint64_t off, seq, last_magic = 0;
	int have_upto = 0, fd, i;
	uint8_t *buf;
	ssize_t got;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--upto") == 0 && i + 1 < argc) {
			char *end;

			errno = 0;
			upto = strtoull(argv[++i], &end, 10);
			if (errno || *end || end == argv[i])
				usage();
			have_upto = 1;
		} else if (argv[i][0] == '-' || path) {
			usage();
		} else {
			path = argv[i];
		}
	}
	if (!path)
		usage();
	fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0 && errno == EINVAL)          /* e.g. tmpfs */
		fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "diskseq: %s: %s\n", path, strerror(errno));
		return 2;
	}
	if (posix_memalign((void **)&buf, 4096, CHUNK)) {
		fprintf(stderr, "diskseq: out of memory\n");
		return 2;
	}
	/* Chunks from LBA 2048 (1 MiB: aligned for O_DIRECT); its first
	 * sector is not a record. */
	off = (uint64_t)SEQ_BASE_LBA * SECTOR;
	seq = 0;
	for (;;) {
		size_t k;

		got = pread(fd, buf, CHUNK, (off_t)off);
		if (got < 0) {
			fprintf(stderr, "diskseq: %s: read at %" PRIu64 ": %s\n", path, off,
				strerror(errno));
			return 2;
		}
		for (k = 0; k + SECTOR <= (size_t)got; k += SECTOR, seq++) {
			const uint8_t *p = buf + k;

			if (seq == 0)
				continue;       /* LBA 2048 */
			if (!has_magic(p))
				continue;
			last_magic = seq;
			if (valid(p, seq)) {
				mark(seq);
				if (seq > last)
					last = seq;
			} else {
				bad++;
			}
		}
		if ((size_t)got < CHUNK || seq - last_magic > MAX_RUN)
			break;
		off += (uint64_t)got;
	}
	close(fd);
	for (m = 1; m <= last; m++)
		if (!is_seen(m)) {
			gap = m;
			break;
		}
	printf("last=%" PRIu64 " first_gap=", last);
	if (gap)
		printf("%" PRIu64, gap);
	else
		printf("none");
	printf(" bad=%" PRIu64 "\n", bad);
	if (have_upto) {
		for (m = 1; m <= upto; m++)
			if (!is_seen(m)) {
				printf("missing seq=%" PRIu64 "\n", m);
				return 1;
			}
	}
	return 0;
}

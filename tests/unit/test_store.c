/* agent/store.c (durable guest definitions under STATE_DIR/guests) and the
 * file helpers under it (lib/fsutil.c), in a temporary state_dir.  A full
 * disk (ENOSPC) needs a small tmpfs: tests/integ covers it; here a write
 * failure is produced with RLIMIT_FSIZE instead (EFBIG), which works as root. */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/guests.h"
#include "agent/hagentd.h"
#include "agent/store.h"
#include "lib/fsutil.h"

/* snprintf that must not truncate */
static void pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < len);
}

struct env {
	struct hagentd d;
	char dir[64];
	char gdir[PATH_MAX]; /* STATE_DIR/guests */
};

static void hagentd_init(struct hagentd *d, const char *state_dir)
{
	memset(d, 0, sizeof(*d));
	qb_list_init(&d->guests);
	snprintf(d->conf.node_name, sizeof(d->conf.node_name), "testhost");
	snprintf(d->conf.state_dir, sizeof(d->conf.state_dir), "%s", state_dir);
}

static void free_guests(struct hagentd *d)
{
	struct guest *g, *tmp;

	qb_list_for_each_entry_safe(g, tmp, &d->guests, list) {
		guests_unlink(d, g);
		guests_free(g);
	}
	assert_int_equal(d->n_guests, 0);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char sd[PATH_MAX];

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/hagent-test-store.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	pathf(sd, sizeof(sd), "%s/state", e->dir);
	hagentd_init(&e->d, sd);
	pathf(e->gdir, sizeof(e->gdir), "%s/guests", sd);
	*state = e;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct env *e = *state;

	free_guests(&e->d);
	assert_int_equal(nftw(e->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(e);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* The file's content, or NULL when it does not exist (caller frees). */
static char *slurp(const char *path)
{
	char *text = NULL;

	if (fs_read_file(path, 1 << 20, &text) < 0) {
		assert_int_equal(errno, ENOENT);
		return NULL;
	}
	return text;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static const char *const VM1 =
	"# guest one\n"
	"name = \"vm1\"\n"
	"type = \"pvh\"\n"
	"kernel = \"/nonexistent/testguest.elf\"\n"
	"memory = 32\n"
	"maxmem = 64\n";

static const char *const VM2 =
	"name = \"vm2\"\n"
	"type = \"pvh\"\n"
	"kernel = \"/nonexistent/testguest.elf\"\n"
	"memory = 48\n"
	"on_crash = \"restart\"\n";

static const char *const VM3 =
	"name = \"vm3\"\n"
	"type = \"pvh\"\n"
	"kernel = \"/nonexistent/testguest.elf\"\n";

static struct guest *new_guest(struct env *e, const char *text, const char *source)
{
	struct guestcfg_diags *diags = calloc(1, sizeof(*diags));
	struct guest *g;

	assert_non_null(diags);
	g = guests_new(&e->d, text, strlen(text), source, diags);
	assert_non_null(g);
	assert_int_equal(diags->n_errors, 0);
	free(diags);
	return g;
}

/* ---- store ---------------------------------------------------------------- */

static void test_round_trip(void **state)
{
	struct env *e = *state;
	struct guest *g1, *g2, *g3, *l;
	struct hagentd *d2 = calloc(1, sizeof(*d2));
	char path[PATH_MAX], *text;
	struct stat st;

	assert_non_null(d2);
	assert_int_equal(store_init(&e->d), 0);
	assert_int_equal(store_init(&e->d), 0); /* idempotent */
	assert_int_equal(stat(e->gdir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);

	g1 = new_guest(e, VM1, "/etc/hagent/guests/vm1.cfg");
	g1->desired = DESIRED_RUNNING;
	g1->state = GS_RUNNING;
	g1->maxmem_mib = 256; /* mem-max raised at run time */
	g2 = new_guest(e, VM2, "/srv/vm2.cfg");
	g2->desired = DESIRED_RUNNING;
	g2->state = GS_FAILED;
	g3 = new_guest(e, VM3, "/srv/vm3.cfg"); /* defined, never started: no state file */
	assert_int_equal(store_save_def(&e->d, g1), 0);
	assert_int_equal(store_save_state(&e->d, g1), 0);
	assert_int_equal(store_save_def(&e->d, g2), 0);
	assert_int_equal(store_save_state(&e->d, g2), 0);
	assert_int_equal(store_save_def(&e->d, g3), 0);
	guests_free(g1);
	guests_free(g2);
	guests_free(g3);

	/* the definition is stored verbatim, privately, with no temp left */
	pathf(path, sizeof(path), "%s/vm1.cfg", e->gdir);
	text = slurp(path);
	assert_string_equal(text, VM1);
	free(text);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	pathf(path, sizeof(path), "%s/vm1.cfg.tmp", e->gdir);
	assert_false(exists(path));

	hagentd_init(d2, e->d.conf.state_dir);
	assert_int_equal(store_load_all(d2), 0);
	assert_int_equal(d2->n_guests, 3);

	l = guests_find(d2, "vm1");
	assert_non_null(l);
	assert_int_equal(l->desired, DESIRED_RUNNING);
	assert_int_equal(l->state, GS_STOPPED); /* not failed; supervise_resume decides */
	assert_int_equal(l->maxmem_mib, 256);
	assert_int_equal(l->cfg.memory_mib, 32);
	assert_string_equal(l->cfg.source, "/etc/hagent/guests/vm1.cfg");
	assert_int_equal(l->text_len, strlen(VM1));
	assert_memory_equal(l->text, VM1, l->text_len);
	assert_ptr_equal(l->d, d2);
	assert_ptr_equal(l->ops, &qemu_driver_ops);

	l = guests_find(d2, "vm2");
	assert_non_null(l);
	assert_int_equal(l->desired, DESIRED_RUNNING);
	assert_int_equal(l->state, GS_FAILED);
	assert_int_equal(l->maxmem_mib, 48);
	assert_int_equal(l->cfg.on_crash, GA_RESTART);
	assert_string_equal(l->cfg.source, "/srv/vm2.cfg");

	l = guests_find(d2, "vm3");
	assert_non_null(l);
	assert_int_equal(l->desired, DESIRED_STOPPED);
	assert_int_equal(l->state, GS_STOPPED);

	/* a new state replaces the old one; the failed mark goes */
	l = guests_find(d2, "vm2");
	l->state = GS_STOPPED;
	l->desired = DESIRED_STOPPED;
	assert_int_equal(store_save_state(d2, l), 0);
	free_guests(d2);
	assert_int_equal(store_load_all(d2), 0);
	l = guests_find(d2, "vm2");
	assert_non_null(l);
	assert_int_equal(l->state, GS_STOPPED);
	assert_int_equal(l->desired, DESIRED_STOPPED);

	/* remove takes both files, and is not an error when they are gone */
	assert_int_equal(store_remove(d2, "vm1"), 0);
	pathf(path, sizeof(path), "%s/vm1.cfg", e->gdir);
	assert_false(exists(path));
	pathf(path, sizeof(path), "%s/vm1.state", e->gdir);
	assert_false(exists(path));
	assert_int_equal(store_remove(d2, "vm1"), 0);
	assert_int_equal(store_remove(d2, "vm3"), 0); /* no state file */

	free_guests(d2);
	assert_int_equal(store_load_all(d2), 0);
	assert_int_equal(d2->n_guests, 1);
	assert_non_null(guests_find(d2, "vm2"));
	free_guests(d2);
	free(d2);
}

static void test_bad_files_skipped_and_kept(void **state)
{
	struct env *e = *state;
	static const char corrupt[] = "name = \"bad\"\nmemory = [[[\n";
	static const char badkey[] = "name = \"bad2\"\ntype = \"pvh\"\nkernel = \"/k\"\nmemory = \"lots\"\n";
	static const char other[] = "name = \"vm9\"\ntype = \"pvh\"\nkernel = \"/k\"\n";
	static const char *const files[][2] = {
		{ "bad.cfg", corrupt }, { "bad2.cfg", badkey }, { "other.cfg", other },
		{ "vm5.cfg.tmp", other }, /* an interrupted write's leftover */
		{ ".cfg", other },        /* no name at all */
		{ "orphan.state", "desired=running\n" },
	};
	char path[PATH_MAX], *text;
	struct guest *g;
	size_t i;

	assert_int_equal(store_init(&e->d), 0);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		pathf(path, sizeof(path), "%s/%s", e->gdir, files[i][0]);
		write_file(path, files[i][1]);
	}
	g = new_guest(e, VM1, "vm1.cfg");
	assert_int_equal(store_save_def(&e->d, g), 0);
	guests_free(g);

	assert_int_equal(store_load_all(&e->d), 0);
	assert_int_equal(e->d.n_guests, 1); /* only the good one */
	assert_non_null(guests_find(&e->d, "vm1"));
	assert_null(guests_find(&e->d, "bad"));
	assert_null(guests_find(&e->d, "bad2"));
	assert_null(guests_find(&e->d, "vm9"));
	assert_null(guests_find(&e->d, "other"));

	/* nothing was deleted or changed */
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		pathf(path, sizeof(path), "%s/%s", e->gdir, files[i][0]);
		text = slurp(path);
		assert_non_null(text);
		assert_string_equal(text, files[i][1]);
		free(text);
	}
}

static void test_load_without_dir(void **state)
{
	struct env *e = *state;

	/* store_init never ran */
	errno = 0;
	assert_int_equal(store_load_all(&e->d), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(e->d.n_guests, 0);
}

/* ---- fsutil ---------------------------------------------------------------- */

static void test_write_atomic(void **state)
{
	struct env *e = *state;
	char path[PATH_MAX], tmp[PATH_MAX], *text;
	struct stat st;

	pathf(path, sizeof(path), "%s/f", e->dir);
	pathf(tmp, sizeof(tmp), "%s/f.tmp", e->dir);
	assert_int_equal(fs_write_atomic(path, "one\n", 4, 0640), 0);
	assert_int_equal(fs_write_atomic(path, "two\n", 4, 0640), 0);
	text = slurp(path);
	assert_string_equal(text, "two\n");
	free(text);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_false(exists(tmp));
	assert_int_equal(fs_write_atomic(path, "", 0, 0600), 0); /* empty is fine */
	text = slurp(path);
	assert_string_equal(text, "");
	free(text);
}

static void test_write_atomic_no_dir(void **state)
{
	struct env *e = *state;
	char path[PATH_MAX], tmp[PATH_MAX];

	pathf(path, sizeof(path), "%s/missing/f", e->dir);
	pathf(tmp, sizeof(tmp), "%s/missing/f.tmp", e->dir);
	errno = 0;
	assert_int_equal(fs_write_atomic(path, "x", 1, 0600), -1);
	assert_int_equal(errno, ENOENT);
	assert_false(exists(path));
	assert_false(exists(tmp));
}

/* rename fails (the target is a non-empty directory): the old target stays,
 * the temp file is removed. */
static void test_write_atomic_rename_fails(void **state)
{
	struct env *e = *state;
	char path[PATH_MAX], tmp[PATH_MAX], inner[PATH_MAX], *text;
	struct stat st;

	pathf(path, sizeof(path), "%s/d", e->dir);
	pathf(tmp, sizeof(tmp), "%s/d.tmp", e->dir);
	pathf(inner, sizeof(inner), "%s/d/keep", e->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	write_file(inner, "kept\n");
	errno = 0;
	assert_int_equal(fs_write_atomic(path, "new\n", 4, 0600), -1);
	assert_true(errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	text = slurp(inner);
	assert_string_equal(text, "kept\n");
	free(text);
	assert_false(exists(tmp));
}

/* write fails half way (file size limit): the old file stays, the temp file
 * is removed, errno tells why. */
static void test_write_atomic_write_fails(void **state)
{
	struct env *e = *state;
	char path[PATH_MAX], tmp[PATH_MAX], *text, *big;
	struct rlimit old, lim;
	void (*old_handler)(int);
	size_t big_len = 64 * 1024;
	int rc, err;

	pathf(path, sizeof(path), "%s/f", e->dir);
	pathf(tmp, sizeof(tmp), "%s/f.tmp", e->dir);
	assert_int_equal(fs_write_atomic(path, "old content\n", 12, 0600), 0);
	big = malloc(big_len);
	assert_non_null(big);
	memset(big, 'x', big_len);

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 4096;
	old_handler = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	errno = 0;
	rc = fs_write_atomic(path, big, big_len, 0600);
	err = errno;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_handler);
	free(big);

	assert_int_equal(rc, -1);
	assert_int_equal(err, EFBIG);
	text = slurp(path);
	assert_string_equal(text, "old content\n");
	free(text);
	assert_false(exists(tmp));
}

static void test_read_file_limit(void **state)
{
	struct env *e = *state;
	char path[PATH_MAX], *text = NULL, *buf;
	size_t i;

	pathf(path, sizeof(path), "%s/r", e->dir);
	buf = malloc(5001);
	assert_non_null(buf);
	for (i = 0; i < 5000; i++)
		buf[i] = (char)('a' + i % 26);
	buf[5000] = '\0';
	write_file(path, buf);

	errno = 0;
	assert_int_equal(fs_read_file(path, 4096, &text), -1);
	assert_int_equal(errno, EFBIG);
	assert_null(text);
	errno = 0;
	assert_int_equal(fs_read_file(path, 10, &text), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(fs_read_file(path, 4999, &text), -1);
	assert_int_equal(errno, EFBIG);

	/* at the limit exactly: read, NUL-terminated */
	assert_int_equal(fs_read_file(path, 5000, &text), 5000);
	assert_non_null(text);
	assert_string_equal(text, buf);
	free(text);
	text = NULL;
	assert_int_equal(fs_read_file(path, 1 << 20, &text), 5000);
	free(text);
	free(buf);

	/* a small file and an empty one */
	write_file(path, "0123456789");
	text = NULL;
	assert_int_equal(fs_read_file(path, 10, &text), 10);
	assert_string_equal(text, "0123456789");
	free(text);
	write_file(path, "");
	text = NULL;
	assert_int_equal(fs_read_file(path, 10, &text), 0);
	assert_string_equal(text, "");
	free(text);

	pathf(path, sizeof(path), "%s/none", e->dir);
	errno = 0;
	assert_int_equal(fs_read_file(path, 10, &text), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_mkdir_p(void **state)
{
	struct env *e = *state;
	char path[PATH_MAX], file[PATH_MAX];
	struct stat st;

	pathf(path, sizeof(path), "%s/a/b/c", e->dir);
	assert_int_equal(fs_mkdir_p(path, 0750), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(fs_mkdir_p(path, 0750), 0); /* idempotent */
	pathf(path, sizeof(path), "%s/a/b/c/d/", e->dir); /* trailing slash */
	assert_int_equal(fs_mkdir_p(path, 0750), 0);
	pathf(path, sizeof(path), "%s/a/b/c/d", e->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));

	/* a component that is a file */
	pathf(file, sizeof(file), "%s/file", e->dir);
	write_file(file, "x");
	pathf(path, sizeof(path), "%s/file/sub", e->dir);
	errno = 0;
	assert_int_equal(fs_mkdir_p(path, 0750), -1);
	assert_int_equal(errno, ENOTDIR);
}

static void test_path(void **state)
{
	char buf[8];

	assert_int_equal(fs_path(buf, sizeof(buf), "%s/%s", "ab", "cd"), 0);
	assert_string_equal(buf, "ab/cd");
	errno = 0;
	assert_int_equal(fs_path(buf, sizeof(buf), "%s/%s", "abcd", "efg"), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_files_skipped_and_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_without_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic_no_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic_rename_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic_write_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_file_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

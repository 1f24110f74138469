/* Unit tests for lib/storage.c (disk classification) and the parts of
 * lib/storage_host.c that need no storage: stor_run's deadline and the
 * probes of files and plain devices. */
#include "config.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/guestcfg.h"
#include "lib/storage.h"
#include "lib/storage_host.h"

static struct guest_cfg cfg;
static struct guestcfg_diags diags;

static int parse(const char *disks)
{
	char text[2048];

	snprintf(text, sizeof(text), "name = \"web1\"\nmemory = 64\ndisk = [ %s ]\n", disks);
	memset(&diags, 0, sizeof(diags));
	return guestcfg_parse(text, strlen(text), "web1.cfg", &cfg, &diags);
}

static void classify_ok(const char *target, const char *script, struct stor_ref *r)
{
	char err[256];

	assert_int_equal(stor_classify(target, script, r, err, sizeof(err)), 0);
	assert_string_equal(err, "");
}

static void test_lvm(void **state)
{
	struct stor_ref r;

	(void)state;
	classify_ok("/dev/vgshared/web1", "", &r);
	assert_int_equal(r.kind, STOR_LVM);
	assert_string_equal(r.vg, "vgshared");
	assert_string_equal(r.lv, "web1");
	classify_ok("/dev/mapper/vg--a-lv--1", "", &r);
	assert_int_equal(r.kind, STOR_LVM);
	assert_string_equal(r.vg, "vg-a");
	assert_string_equal(r.lv, "lv-1");
	/* not volume groups */
	classify_ok("/dev/mapper/mpatha", "", &r);
	assert_int_equal(r.kind, STOR_BLOCK);
	classify_ok("/dev/disk/by-id/wwn-0x5000", "", &r);
	assert_int_equal(r.kind, STOR_BLOCK);
	classify_ok("/dev/md/raid1", "", &r);
	assert_int_equal(r.kind, STOR_BLOCK);
	classify_ok("/dev/sdb", "", &r);
	assert_int_equal(r.kind, STOR_BLOCK);
	classify_ok("/dev/a/b/c", "", &r);
	assert_int_equal(r.kind, STOR_BLOCK);
}

static void test_drbd(void **state)
{
	struct stor_ref r;
	char err[256];

	(void)state;
	classify_ok("r0", "block-drbd", &r);
	assert_int_equal(r.kind, STOR_DRBD);
	assert_string_equal(r.res, "r0");
	assert_int_equal(r.minor, -1);
	classify_ok("/dev/drbd/by-res/r1/2", "", &r);
	assert_int_equal(r.kind, STOR_DRBD);
	assert_string_equal(r.res, "r1");
	assert_int_equal(r.volume, 2);
	classify_ok("/dev/drbd/by-res/r1", "", &r);
	assert_string_equal(r.res, "r1");
	assert_int_equal(r.volume, 0);
	classify_ok("/dev/drbd7", "", &r);
	assert_int_equal(r.kind, STOR_DRBD);
	assert_string_equal(r.res, "");
	assert_int_equal(r.minor, 7);
	assert_int_equal(stor_classify("/dev/drbd/by-res/r1/x", "", &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "by-res"));
	assert_int_equal(stor_classify("a/b", "/etc/xen/scripts/block-drbd", &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "resource name"));
}

static void test_iscsi(void **state)
{
	struct stor_ref r;
	char err[256];

	(void)state;
	classify_ok("iqn=iqn.2026-11.invalid.hagent:lun1,portal=192.0.2.11", "block-iscsi", &r);
	assert_int_equal(r.kind, STOR_ISCSI);
	assert_string_equal(r.iqn, "iqn.2026-11.invalid.hagent:lun1");
	assert_string_equal(r.portal, "192.0.2.11:3260");
	assert_int_equal(r.lun, -1);
	classify_ok("iqn=iqn.x:y,portal=192.0.2.11:3261,lun=3", "block-iscsi", &r);
	assert_string_equal(r.portal, "192.0.2.11:3261");
	assert_int_equal(r.lun, 3);
	classify_ok("/dev/disk/by-path/ip-192.0.2.11:3260-iscsi-iqn.2026-11.invalid.hagent:t1-lun-1", "", &r);
	assert_int_equal(r.kind, STOR_ISCSI);
	assert_string_equal(r.portal, "192.0.2.11:3260");
	assert_string_equal(r.iqn, "iqn.2026-11.invalid.hagent:t1");
	assert_int_equal(r.lun, 1);
	assert_int_equal(stor_classify("iqn=iqn.x:y", "block-iscsi", &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "portal="));
	assert_int_equal(stor_classify("portal=1.2.3.4,lun=x", "block-iscsi", &r, err, sizeof(err)), -1);
	assert_int_equal(stor_classify("nbd.example:1", "block-nbd", &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "block-nbd"));
}

static void test_file_and_same(void **state)
{
	struct stor_ref a, b;

	(void)state;
	classify_ok("/srv/xen/web1.img", "", &a);
	assert_int_equal(a.kind, STOR_FILE);
	classify_ok("", "", &a);
	assert_int_equal(a.kind, STOR_NONE);
	classify_ok("r0", "block-drbd", &a);
	classify_ok("/dev/drbd/by-res/r0", "", &b);
	assert_true(stor_same(&a, "r0", &b, "/dev/drbd/by-res/r0"));
	classify_ok("/dev/vg/a", "", &a);
	classify_ok("/dev/mapper/vg-a", "", &b);
	assert_true(stor_same(&a, "/dev/vg/a", &b, "/dev/mapper/vg-a"));
	classify_ok("/dev/vg/b", "", &b);
	assert_false(stor_same(&a, "/dev/vg/a", &b, "/dev/vg/b"));
}

/* Through the xl.cfg parser: xm prefixes and xl's script= both arrive. */
static void test_guestcfg_specs(void **state)
{
	char buf[300];

	(void)state;
	assert_int_equal(parse("'phy:/dev/vgshared/web1,xvda,w', 'drbd:r0,xvdb,w', "
			       "'vdev=xvdc,access=w,script=block-iscsi,target=iqn=iqn.x:y,portal=192.0.2.11'"),
			 0);
	assert_int_equal(cfg.n_disks, 3);
	assert_int_equal(cfg.disks[0].stor.kind, STOR_LVM);
	assert_int_equal(cfg.disks[1].stor.kind, STOR_DRBD);
	assert_string_equal(cfg.disks[1].stor.res, "r0");
	assert_string_equal(cfg.disks[1].script, "block-drbd");
	assert_int_equal(cfg.disks[2].stor.kind, STOR_ISCSI);
	assert_string_equal(cfg.disks[2].stor.iqn, "iqn.x:y");
	assert_int_equal(diags.n_warnings, 0);
	stor_describe(&cfg.disks[2].stor, cfg.disks[2].target, buf, sizeof(buf));
	assert_string_equal(buf, "iSCSI target iqn.x:y at 192.0.2.11:3260");
	/* an iscsi target without its portal is the file's error, with its line */
	assert_int_equal(parse("'vdev=xvdc,access=w,script=block-iscsi,target=iqn=iqn.x:y'"), -1);
	assert_int_equal(diags.n_errors, 1);
	assert_int_equal(diags.d[0].line, 3);
	assert_non_null(strstr(diags.d[0].msg, "portal="));
	/* a script hagent does not run */
	assert_int_equal(parse("'vdev=xvdc,access=w,script=block-nbd,target=x:1'"), -1);
	assert_non_null(strstr(diags.d[0].msg, "block-nbd"));
}

/* An inactive LV's device does not exist: no "does not exist" error at add. */
static void test_check_host_skips_activated(void **state)
{
	(void)state;
	assert_int_equal(parse("'phy:/dev/hagent-test-novg/web1,xvda,w', 'drbd:r9,xvdb,w'"), 0);
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(guestcfg_check_host(&cfg, &diags), 0);
	assert_int_equal(diags.n_errors, 0);
	assert_int_equal(parse("'phy:/dev/hagent-test-nodisk,xvda,w'"), 0);
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(guestcfg_check_host(&cfg, &diags), -1);
}

static void test_run_deadline(void **state)
{
	char out[256];
	struct timespec a, b;
	long ms;

	(void)state;
	assert_int_equal(stor_run((char *const[]){ "sh", "-c", "echo hello; exit 3", NULL }, 5, out, sizeof(out)), 3);
	assert_string_equal(out, "hello");
	clock_gettime(CLOCK_MONOTONIC, &a);
	/* the grandchild keeps the pipe open: the deadline still ends it */
	assert_int_equal(stor_run((char *const[]){ "sh", "-c", "sleep 30 & sleep 30", NULL }, 1, out, sizeof(out)), 124);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms < 5000);
	assert_non_null(strstr(out, "did not finish within 1 s"));
	assert_int_equal(stor_run((char *const[]){ "hagent-no-such-tool", NULL }, 5, out, sizeof(out)), -1);
	assert_non_null(strstr(out, "hagent-no-such-tool"));
}

static void test_probe_file(void **state)
{
	struct stor_ref r;
	struct stor_status st;
	char err[256], dev[PATH_MAX];

	(void)state;
	classify_ok("/dev/null", "", &r);
	stor_probe(&r, "/dev/null", &st);
	assert_true(st.usable);
	classify_ok("/nonexistent/hagent.img", "", &r);
	stor_probe(&r, "/nonexistent/hagent.img", &st);
	assert_false(st.usable);
	assert_non_null(strstr(st.detail, "No such file"));
	assert_int_equal(stor_activate(&r, "/nonexistent/hagent.img", false, dev, sizeof(dev), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/hagent.img"));
}

/* Shared or local: tmpfs is local (and named), a missing path cannot be told. */
static void test_file_shared(void **state)
{
	char fs[32], path[] = "/dev/shm/hagent-test-storage.XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	if (fd < 0)
		skip();
	close(fd);
	assert_int_equal(stor_file_shared(path, fs, sizeof(fs)), 0);
	assert_string_equal(fs, "tmpfs");
	unlink(path);
	assert_int_equal(stor_file_shared("/nonexistent/hagent.img", fs, sizeof(fs)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lvm),
		cmocka_unit_test(test_drbd),
		cmocka_unit_test(test_iscsi),
		cmocka_unit_test(test_file_and_same),
		cmocka_unit_test(test_guestcfg_specs),
		cmocka_unit_test(test_check_host_skips_activated),
		cmocka_unit_test(test_run_deadline),
		cmocka_unit_test(test_probe_file),
		cmocka_unit_test(test_file_shared),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

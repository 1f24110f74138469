/* Unit tests for lib/guestcfg.c: seed xm files, xl examples, every error
 * class with its line, defaults, host checks and diagnostic formatting. */
#include "config.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/guestcfg.h"

/* struct guest_cfg is large (paths): keep it off the test's stack. */
static struct guest_cfg cfg;
static struct guestcfg_diags diags;

static const char *data_path(const char *name)
{
	static char buf[PATH_MAX];
	const char *srcdir = getenv("srcdir");

	snprintf(buf, sizeof(buf), "%s/tests/unit/data/guestcfg/%s", srcdir ? srcdir : ".", name);
	return buf;
}

static int parse(const char *text, const char *source)
{
	memset(&diags, 0, sizeof(diags));
	return guestcfg_parse(text, strlen(text), source, &cfg, &diags);
}

static int parse_file(const char *name)
{
	memset(&diags, 0, sizeof(diags));
	return guestcfg_parse_file(data_path(name), &cfg, &diags);
}

static void print_diags(const char *source)
{
	char buf[512];
	int i;

	for (i = 0; i < diags.n; i++) {
		guestcfg_diag_format(&diags.d[i], source, buf, sizeof(buf));
		print_message("  %s\n", buf);
	}
}

/* First diagnostic of that level and key whose message contains sub. */
static const struct guestcfg_diag *find_diag(enum diag_level lv, const char *key, const char *sub)
{
	int i;

	for (i = 0; i < diags.n; i++) {
		const struct guestcfg_diag *d = &diags.d[i];

		if (d->level == lv && !strcmp(d->key, key ? key : "") &&
		    (!sub || strstr(d->msg, sub)))
			return d;
	}
	return NULL;
}

/* Like find_diag, but the test fails (showing what there was) without it. */
static const struct guestcfg_diag *need_diag(enum diag_level lv, const char *key, const char *sub)
{
	const struct guestcfg_diag *d = find_diag(lv, key, sub);

	if (!d) {
		print_message("no %s diagnostic for key '%s' containing \"%s\"; have:\n",
			      lv == DIAG_ERROR ? "error" : lv == DIAG_WARNING ? "warning" : "note",
			      key ? key : "", sub ? sub : "");
		print_diags("cfg");
		fail();
	}
	return d;
}

static void assert_no_errors(int rc)
{
	if (rc != 0 || diags.n_errors != 0)
		print_diags("cfg");
	assert_int_equal(rc, 0);
	assert_int_equal(diags.n_errors, 0);
}

/* ---- seed files ---------------------------------------------------- */

static void test_seed_winxp(void **state)
{
	(void)state;
	assert_no_errors(parse_file("winxp.cfg"));
	assert_string_equal(cfg.name, "WindowsXP");
	assert_int_equal(cfg.type, GT_HVM);
	assert_string_equal(cfg.kernel, "");
	assert_int_equal(cfg.memory_mib, 512);
	assert_int_equal(cfg.maxmem_mib, 512);
	assert_int_equal(cfg.vcpus, 1);
	assert_string_equal(cfg.boot, "dca");
	assert_string_equal(cfg.serial, "pty");
	assert_string_equal(cfg.usbdevice, "tablet");
	assert_true(cfg.localtime);
	assert_true(cfg.vnc); /* xl's default for HVM */
	assert_int_equal(cfg.on_poweroff, GA_DESTROY);
	assert_int_equal(cfg.on_reboot, GA_RESTART);
	assert_int_equal(cfg.on_crash, GA_RESTART);
	assert_false(cfg.on_watchdog_set);

	assert_int_equal(cfg.n_disks, 2);
	assert_string_equal(cfg.disks[0].target, "/mnt/disk1/Winxp/WinXP.img");
	assert_string_equal(cfg.disks[0].vdev, "hda");
	assert_string_equal(cfg.disks[0].format, "raw");
	assert_int_equal(cfg.disks[0].backend, DISK_FILE);
	assert_false(cfg.disks[0].cdrom);
	assert_false(cfg.disks[0].readonly);
	assert_string_equal(cfg.disks[1].target, "/mnt/disk1/xp-sp2.iso");
	assert_string_equal(cfg.disks[1].vdev, "hdb");
	assert_true(cfg.disks[1].cdrom);
	assert_true(cfg.disks[1].readonly);

	assert_int_equal(cfg.n_vifs, 1);
	assert_string_equal(cfg.vifs[0].mac, "00:50:56:01:09:01");
	assert_string_equal(cfg.vifs[0].bridge, "xenbr0");
	assert_string_equal(cfg.vifs[0].model, "pcnet");

	/* legacy keys: warned about, with their lines */
	need_diag(DIAG_WARNING, "kernel", "hvmloader is implied");
	assert_int_equal(need_diag(DIAG_WARNING, "kernel", NULL)->line, 1);
	assert_int_equal(need_diag(DIAG_WARNING, "cdrom", NULL)->line, 9);
	need_diag(DIAG_WARNING, "device_model", NULL);
	need_diag(DIAG_WARNING, "nic", NULL);
	need_diag(DIAG_WARNING, "sdl", NULL);
	need_diag(DIAG_WARNING, "vncviewer", NULL);
	need_diag(DIAG_WARNING, "ne2000", NULL);
	/* builder = 'hvm' is meaningful, not warned about */
	assert_null(find_diag(DIAG_WARNING, "builder", NULL));
}

static void test_seed_openbsd(void **state)
{
	(void)state;
	assert_no_errors(parse_file("openbsd.cfg"));
	assert_string_equal(cfg.name, "OpenBSD");
	assert_int_equal(cfg.type, GT_HVM);
	assert_int_equal(cfg.memory_mib, 512); /* memory = '512' */
	assert_true(cfg.vnc);
	assert_string_equal(cfg.vnclisten, "192.168.130.20");
	assert_int_equal(cfg.vncdisplay, 1);
	assert_false(cfg.vncunused);
	assert_string_equal(cfg.boot, "cd");
	assert_false(cfg.acpi);
	assert_int_equal(cfg.on_crash, GA_RESTART);

	assert_int_equal(cfg.n_disks, 2);
	assert_string_equal(cfg.disks[0].target, "/root/test.img");
	assert_string_equal(cfg.disks[0].vdev, "hda");
	assert_false(cfg.disks[0].cdrom);
	assert_string_equal(cfg.disks[1].target, "/root/iso/cd42.iso");
	assert_string_equal(cfg.disks[1].vdev, "hdc");
	assert_true(cfg.disks[1].cdrom);
	assert_true(cfg.disks[1].readonly);

	assert_int_equal(cfg.n_vifs, 1);
	assert_string_equal(cfg.vifs[0].mac, "");
	assert_string_equal(cfg.vifs[0].bridge, "xenbr0");
	assert_string_equal(cfg.vifs[0].model, "pcnet");

	assert_int_equal(need_diag(DIAG_WARNING, "apic", NULL)->line, 35);
	need_diag(DIAG_WARNING, "nic", NULL);
	/* vncpasswd = '' means no password: nothing to warn about */
	assert_null(find_diag(DIAG_WARNING, "vncpasswd", NULL));
}

static void test_xl_examples(void **state)
{
	(void)state;
	assert_no_errors(parse_file("xlexample.hvm"));
	assert_string_equal(cfg.name, "example.hvm");
	assert_int_equal(cfg.type, GT_HVM);
	assert_int_equal(cfg.vcpus, 2);
	assert_int_equal(cfg.n_disks, 1);
	assert_string_equal(cfg.disks[0].target, "/dev/vg/guest-volume");
	assert_int_equal(cfg.disks[0].backend, DISK_PHY);
	assert_int_equal(cfg.n_vifs, 1); /* vif = [ '' ]: one default NIC */

	assert_no_errors(parse_file("xlexample.pvlinux"));
	assert_int_equal(diags.n_warnings, 0);
	assert_int_equal(cfg.type, GT_PV);
	assert_string_equal(cfg.kernel, "/boot/vmlinuz");
	assert_string_equal(cfg.cmdline, "root=/dev/xvda1");
	assert_false(cfg.vnc);

	assert_no_errors(parse_file("xlexample.pvhlinux"));
	assert_int_equal(cfg.type, GT_PVH);
	assert_int_equal(cfg.memory_mib, 512);
	assert_int_equal(cfg.vcpus, 4);
	assert_string_equal(cfg.disks[0].target, "/dev/zvol/tank/guest-volume");
}

/* ---- errors -------------------------------------------------------- */

static void test_memory_lots(void **state)
{
	const struct guestcfg_diag *d;

	(void)state;
	assert_int_equal(parse("name = 'g'\n# comment\n\nmemory = \"lots\"\n", "g.cfg"), -1);
	assert_int_equal(diags.n_errors, 1);
	d = find_diag(DIAG_ERROR, "memory", NULL);
	assert_non_null(d);
	assert_int_equal(d->line, 4);
	assert_string_equal(d->msg, "expected a number of MiB, got \"lots\"");
}

static void test_memory_range(void **state)
{
	(void)state;
	assert_int_equal(parse("name = 'g'\nmemory = 0\n", "g.cfg"), -1);
	assert_int_equal(need_diag(DIAG_ERROR, "memory", "in 1..")->line, 2);
	assert_int_equal(parse("name = 'g'\nvcpus = 129\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "vcpus", NULL);
	assert_int_equal(parse("name = 'g'\nha_restart_max = 1001\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "ha_restart_max", NULL);
	assert_int_equal(parse("name = 'g'\nmemory = 5\nmemory += 5\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "memory", "+=");
}

static void test_on_crash_explode(void **state)
{
	const struct guestcfg_diag *d;

	(void)state;
	assert_int_equal(parse("name = 'g'\non_crash = \"explode\"\n", "g.cfg"), -1);
	d = find_diag(DIAG_ERROR, "on_crash", NULL);
	assert_non_null(d);
	assert_int_equal(d->line, 2);
	assert_string_equal(d->msg, "expected one of destroy, restart, rename-restart, preserve, "
			    "coredump-destroy, coredump-restart, soft-reset; got \"explode\"");
	assert_no_errors(parse("name = 'g'\non_crash = 'coredump-restart'\non_watchdog = 'preserve'\n",
			       "g.cfg"));
	assert_int_equal(cfg.on_crash, GA_COREDUMP_RESTART);
	assert_int_equal(cfg.on_watchdog, GA_PRESERVE);
	assert_true(cfg.on_watchdog_set);
}

static void test_maxmem_below_memory(void **state)
{
	const struct guestcfg_diag *d;

	(void)state;
	assert_int_equal(parse("name = 'g'\nmemory = 512\nmaxmem = 256\n", "g.cfg"), -1);
	d = find_diag(DIAG_ERROR, "maxmem", NULL);
	assert_non_null(d);
	assert_int_equal(d->line, 3);
	assert_no_errors(parse("name = 'g'\nmemory = 512\nmaxmem = 1024\n", "g.cfg"));
	assert_int_equal(cfg.maxmem_mib, 1024);
}

static void test_missing_name(void **state)
{
	(void)state;
	assert_int_equal(parse("memory = 256\n", "g.cfg"), -1);
	assert_int_equal(diags.n_errors, 1);
	need_diag(DIAG_ERROR, "name", "missing");
	assert_int_equal(parse("", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "name", "missing");
}

static void test_invalid_name(void **state)
{
	static const char *const bad[] = { "-x", ".x", "a b", "a/b", "", "x\\ty" };
	char text[256], longname[80];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "name = \"%s\"\n", bad[i]);
		assert_int_equal(parse(text, "g.cfg"), -1);
		assert_int_equal(need_diag(DIAG_ERROR, "name", "expected 1 to 63")->line, 1);
	}
	memset(longname, 'a', 64);
	longname[64] = '\0';
	snprintf(text, sizeof(text), "name = '%s'\n", longname);
	assert_int_equal(parse(text, "g.cfg"), -1);
	longname[63] = '\0';
	snprintf(text, sizeof(text), "name = '%s'\n", longname);
	assert_no_errors(parse(text, "g.cfg"));
	assert_true(guest_name_valid("web-1.example_2"));
	assert_false(guest_name_valid(NULL));
}

static void test_unknown_key_warning(void **state)
{
	const struct guestcfg_diag *d;

	(void)state;
	assert_no_errors(parse("name = 'g'\n\nfrobnicate = [ 'a',\n  'b' ]\nmemory = 64\n", "g.cfg"));
	d = find_diag(DIAG_WARNING, "frobnicate", "unknown key, ignored");
	assert_non_null(d);
	assert_int_equal(d->line, 3);
	assert_int_equal(diags.n_warnings, 1);
	assert_int_equal(cfg.memory_mib, 64);
}

static void test_syntax_error(void **state)
{
	const struct guestcfg_diag *d;

	(void)state;
	assert_int_equal(parse("name = 'g'\nmemory = 64\nvcpus = = 2\n", "g.cfg"), -1);
	d = find_diag(DIAG_ERROR, NULL, "syntax error");
	assert_non_null(d);
	assert_int_equal(d->line, 3);
	assert_int_equal(parse("name = 'g'\nkernel = \"unterminated\n", "g.cfg"), -1);
	assert_int_equal(need_diag(DIAG_ERROR, NULL, NULL)->line, 2);
	/* Python-era files: error plus libxlutil's hint */
	assert_int_equal(parse("name = 'g'\nmemory = 1.5\n", "g.cfg"), -1);
	need_diag(DIAG_WARNING, NULL, "Python");
}

static void test_nul_byte(void **state)
{
	static const char text[] = "name = 'g'\nkernel = \"a\0b\"\n";

	(void)state;
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(guestcfg_parse(text, sizeof(text) - 1, "g.cfg", &cfg, &diags), -1);
	assert_int_equal(need_diag(DIAG_ERROR, NULL, "NUL")->line, 2);
}

static void test_kind_mismatch(void **state)
{
	(void)state;
	assert_int_equal(parse("name = 'g'\ndisk = 'file:/x.img,xvda,w'\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "disk", "got a single value");
	assert_int_equal(parse("name = [ 'g' ]\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "name", "got a list");
	assert_int_equal(parse("name = 'g'\nvif = [ [ 'mac=00:16:3e:00:00:01' ] ]\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "vif", "got a list");
}

/* ---- values -------------------------------------------------------- */

static void test_defaults(void **state)
{
	(void)state;
	assert_no_errors(parse("name = 'g'\n", "g.cfg"));
	assert_int_equal(diags.n, 0);
	assert_string_equal(cfg.driver, "qemu");
	assert_int_equal(cfg.type, GT_PV);
	assert_int_equal(cfg.memory_mib, 128);
	assert_int_equal(cfg.maxmem_mib, 128);
	assert_int_equal(cfg.vcpus, 1);
	assert_int_equal(cfg.on_poweroff, GA_DESTROY);
	assert_int_equal(cfg.on_reboot, GA_RESTART);
	assert_int_equal(cfg.on_crash, GA_DESTROY);
	assert_int_equal(cfg.on_watchdog, GA_DESTROY);
	assert_false(cfg.on_watchdog_set);
	assert_int_equal(cfg.ha_restart_max, 3);
	assert_int_equal(cfg.ha_restart_window_s, 600);
	assert_int_equal(cfg.ha_migrate_downtime_ms, 300);
	assert_int_equal(cfg.ha_migrate_bandwidth_mib, 0);
	assert_false(cfg.ha_migrate_auto_converge);
	assert_int_equal(cfg.ha_priority, 0);
	assert_string_equal(cfg.ha_managed_by, "hagent");
	assert_string_equal(cfg.serial, "pty");
	assert_string_equal(cfg.vnclisten, "127.0.0.1");
	assert_int_equal(cfg.vncdisplay, -1);
	assert_true(cfg.vncunused);
	assert_true(cfg.acpi);
	assert_int_equal(cfg.n_disks, 0);
	assert_int_equal(cfg.n_vifs, 0);
	assert_int_equal(cfg.n_ha_nodes, 0);
	assert_string_equal(cfg.source, "g.cfg");
}

static void test_ha_keys(void **state)
{
	(void)state;
	assert_no_errors(parse("name = 'g'\nha_nodes = [ 'node1', 'node2',\n 'node3' ]\n"
			       "ha_priority = '-5'\nha_restart_max = 0\nha_restart_window = 60\n"
			       "ha_migrate_downtime_ms = 50\nha_migrate_bandwidth_mib = 100\n"
			       "ha_migrate_auto_converge = 1\n"
			       "ha_managed_by = 'pacemaker'\nha_driver = 'xen'\n", "g.cfg"));
	assert_int_equal(cfg.n_ha_nodes, 3);
	assert_string_equal(cfg.ha_nodes[0], "node1");
	assert_string_equal(cfg.ha_nodes[2], "node3");
	assert_int_equal(cfg.ha_priority, -5);
	assert_int_equal(cfg.ha_restart_max, 0);
	assert_int_equal(cfg.ha_restart_window_s, 60);
	assert_int_equal(cfg.ha_migrate_downtime_ms, 50);
	assert_int_equal(cfg.ha_migrate_bandwidth_mib, 100);
	assert_true(cfg.ha_migrate_auto_converge);
	assert_string_equal(cfg.ha_managed_by, "pacemaker");
	assert_string_equal(cfg.driver, "xen");

	assert_no_errors(parse("name = 'g'\nha_nodes = 'b, a,c'\n", "g.cfg"));
	assert_int_equal(cfg.n_ha_nodes, 3);
	assert_string_equal(cfg.ha_nodes[0], "b");
	assert_string_equal(cfg.ha_nodes[1], "a");
	assert_string_equal(cfg.ha_nodes[2], "c");

	assert_int_equal(parse("name = 'g'\nha_nodes = [ 'ok', 'bad name' ]\n", "g.cfg"), -1);
	assert_int_equal(need_diag(DIAG_ERROR, "ha_nodes", NULL)->line, 2);
	assert_int_equal(parse("name = 'g'\nha_managed_by = 'crm'\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "ha_managed_by", "expected one of hagent, pacemaker");
	assert_int_equal(parse("name = 'g'\nha_driver = 'kvm'\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "ha_driver", NULL);
}

static void test_relative_paths(void **state)
{
	char want[PATH_MAX];

	(void)state;
	assert_no_errors(parse("name = 'g'\nkernel = \"./testguest.elf\"\nramdisk = 'boot/initrd'\n"
			       "disk = [ 'file:img/root.img,xvda,w', 'phy:/dev/sdz,xvdb,w',\n"
			       "         '/abs/x.qcow2,qcow2,xvdc,r' ]\n",
			       "/srv/guests/g.cfg"));
	assert_string_equal(cfg.kernel, "/srv/guests/testguest.elf");
	assert_string_equal(cfg.ramdisk, "/srv/guests/boot/initrd");
	assert_string_equal(cfg.disks[0].target, "/srv/guests/img/root.img");
	assert_string_equal(cfg.disks[1].target, "/dev/sdz");
	assert_int_equal(cfg.disks[1].backend, DISK_PHY);
	assert_string_equal(cfg.disks[2].target, "/abs/x.qcow2");
	assert_string_equal(cfg.disks[2].format, "qcow2");
	assert_true(cfg.disks[2].readonly);

	/* no directory in the source name: kept as written */
	assert_no_errors(parse("name = 'g'\nkernel = 'k.elf'\n", "g.cfg"));
	assert_string_equal(cfg.kernel, "k.elf");

	/* from a file: relative to the file's directory */
	assert_no_errors(parse_file("relkernel.cfg"));
	snprintf(want, sizeof(want), "%s", data_path("testguest.elf"));
	assert_string_equal(cfg.kernel, want);
}

static void test_legacy_forms(void **state)
{
	(void)state;
	assert_no_errors(parse("name = 'g'\nbuilder = 'hvm'\n"
			       "disk = [ 'phy:/dev/cdrom,ioemu:hda,r', 'tap:aio:/x.img,hdb,w',\n"
			       "         ',hdc:cdrom,r' ]\n"
			       "vif = [ 'type=ioemu, mac=00:16:3E:aa:bb:cc, bridge=br0, ip=10.0.0.1' ]\n"
			       "serial = [ 'pty', 'none' ]\n", "g.cfg"));
	assert_int_equal(cfg.type, GT_HVM);
	assert_int_equal(cfg.disks[0].backend, DISK_PHY);
	assert_true(cfg.disks[0].readonly);
	assert_false(cfg.disks[0].cdrom);
	assert_string_equal(cfg.disks[0].vdev, "hda");
	assert_int_equal(cfg.disks[1].backend, DISK_FILE);
	assert_string_equal(cfg.disks[1].target, "/x.img");
	assert_true(cfg.disks[2].cdrom);
	assert_string_equal(cfg.disks[2].target, "");
	assert_string_equal(cfg.vifs[0].mac, "00:16:3E:aa:bb:cc");
	assert_string_equal(cfg.vifs[0].bridge, "br0");
	need_diag(DIAG_NOTE, "vif", "\"ip\" is ignored");
	need_diag(DIAG_WARNING, "serial", "first serial port");

	/* type= wins over builder=, an unknown builder is only a warning */
	assert_no_errors(parse("name = 'g'\ntype = 'pvh'\nbuilder = 'hvm'\n", "g.cfg"));
	assert_int_equal(cfg.type, GT_PVH);
	assert_no_errors(parse("name = 'g'\nbuilder = 'weird'\n", "g.cfg"));
	need_diag(DIAG_WARNING, "builder", "unknown builder");
	assert_int_equal(parse("name = 'g'\ntype = 'kvm'\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "type", "expected one of hvm, pvh, pv");
}

static void test_cmdline(void **state)
{
	(void)state;
	assert_no_errors(parse("name = 'g'\nroot = '/dev/vda1 ro'\nextra = 'console=ttyS0'\n", "g.cfg"));
	assert_string_equal(cfg.cmdline, "root=/dev/vda1 ro console=ttyS0");
	assert_no_errors(parse("name = 'g'\nextra = 'quiet'\ncmdline = 'console=ttyS0'\n", "g.cfg"));
	assert_string_equal(cfg.cmdline, "console=ttyS0");
	need_diag(DIAG_WARNING, "cmdline", "ignored in favour");
}

static void test_device_errors(void **state)
{
	(void)state;
	assert_int_equal(parse("name = 'g'\n\ndisk = [ 'garbage' ]\n", "g.cfg"), -1);
	assert_int_equal(need_diag(DIAG_ERROR, "disk", "disk 1:")->line, 3);
	assert_int_equal(parse("name = 'g'\ndisk = [ '/a,raw,xvda,w', '/b,raw,xvda,w' ]\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "disk", "already used");
	assert_int_equal(parse("name = 'g'\nvif = [ 'mac=00:16:3e:zz:00:01' ]\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "vif", "expected mac=");
	assert_int_equal(parse("name = 'g'\nvif = [ 'bridge=averyveryverylongbridgename' ]\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "vif", "too long");
	assert_int_equal(parse("name = 'g'\nboot = 'cdx'\n", "g.cfg"), -1);
	need_diag(DIAG_ERROR, "boot", "expected boot devices");
	assert_no_errors(parse("name = 'g'\nserial = 'file:/tmp/x'\nusbdevice = 'host:1234:5678'\n", "g.cfg"));
	assert_string_equal(cfg.serial, "pty");
	need_diag(DIAG_WARNING, "serial", "only pty supported, using pty");
	need_diag(DIAG_WARNING, "usbdevice", NULL);
	assert_no_errors(parse("name = 'g'\nvncpasswd = 'secret'\n", "g.cfg"));
	need_diag(DIAG_WARNING, "vncpasswd", "not supported");
}

static void test_value_too_long(void **state)
{
	char *text = malloc(PATH_MAX + 64);

	(void)state;
	assert_non_null(text);
	strcpy(text, "name = 'g'\nkernel = '/");
	memset(text + strlen(text), 'k', PATH_MAX);
	strcpy(text + strlen("name = 'g'\nkernel = '/") + PATH_MAX, "'\n");
	assert_int_equal(parse(text, "g.cfg"), -1);
	need_diag(DIAG_ERROR, "kernel", "too long");
	free(text);
}

/* ---- host checks --------------------------------------------------- */

static void test_check_host(void **state)
{
	static char text[4 * PATH_MAX];
	const char *present_file = data_path("winxp.cfg");
	int n;

	(void)state;
	n = snprintf(text, sizeof(text),
		 "name = 'g'\nkernel = '%s'\n"
		 "disk = [ 'file:%s,xvda,w', 'file:/nonexistent/hagent/WinXP.img,xvdb,w',\n"
		 "         '/nonexistent/hagent/cd.iso,raw,hdc,r,devtype=cdrom', ',hdd:cdrom,r',\n"
		 "         'phy:%s,xvde,w' ]\n",
		 present_file, present_file, present_file);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	assert_no_errors(parse(text, "g.cfg"));
	assert_int_equal(cfg.n_disks, 5);
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(guestcfg_check_host(&cfg, &diags), -1);
	assert_int_equal(diags.n_errors, 3);
	assert_non_null(find_diag(DIAG_ERROR, "disk",
				  "disk image /nonexistent/hagent/WinXP.img does not exist"));
	need_diag(DIAG_ERROR, "disk", "cdrom image /nonexistent/hagent/cd.iso does not exist");
	need_diag(DIAG_ERROR, "disk", "is not a block device");

	assert_no_errors(parse("name = 'g'\nkernel = '/nonexistent/vmlinuz'\n", "g.cfg"));
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(guestcfg_check_host(&cfg, &diags), -1);
	assert_string_equal(need_diag(DIAG_ERROR, "kernel", NULL)->msg,
			    "kernel /nonexistent/vmlinuz does not exist");

	assert_no_errors(parse("name = 'g'\n", "g.cfg"));
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(guestcfg_check_host(&cfg, &diags), 0);
}

/* ---- diagnostics --------------------------------------------------- */

static void test_diag_format(void **state)
{
	struct guestcfg_diag d = { .level = DIAG_ERROR, .line = 12 };
	char buf[512];

	(void)state;
	strcpy(d.key, "memory");
	strcpy(d.msg, "expected a number of MiB, got \"lots\"");
	guestcfg_diag_format(&d, "/etc/hagent/guests/g.cfg", buf, sizeof(buf));
	assert_string_equal(buf, "/etc/hagent/guests/g.cfg:12: error: key 'memory': "
			    "expected a number of MiB, got \"lots\"");
	d.line = 0;
	d.level = DIAG_WARNING;
	guestcfg_diag_format(&d, "g.cfg", buf, sizeof(buf));
	assert_string_equal(buf, "g.cfg: warning: key 'memory': expected a number of MiB, got \"lots\"");
	d.key[0] = '\0';
	d.level = DIAG_NOTE;
	d.line = 3;
	strcpy(d.msg, "hello");
	guestcfg_diag_format(&d, "g.cfg", buf, sizeof(buf));
	assert_string_equal(buf, "g.cfg:3: note: hello");
	guestcfg_diag_format(&d, "g.cfg", buf, 8);
	assert_string_equal(buf, "g.cfg:3");

	/* end to end: what an operator sees */
	assert_int_equal(parse("name = 'g'\non_reboot = 'explode'\n", "g.cfg"), -1);
	guestcfg_diag_format(&diags.d[0], "g.cfg", buf, sizeof(buf));
	assert_string_equal(buf, "g.cfg:2: error: key 'on_reboot': expected one of destroy, restart, "
			    "rename-restart, preserve, coredump-destroy, coredump-restart, soft-reset; "
			    "got \"explode\"");
}

static void test_diag_overflow(void **state)
{
	int i;

	(void)state;
	memset(&diags, 0, sizeof(diags));
	for (i = 0; i < GUESTCFG_MAX_DIAGS + 10; i++)
		guestcfg_diag_add(&diags, i == GUESTCFG_MAX_DIAGS + 5 ? DIAG_ERROR : DIAG_WARNING,
				  i + 1, "k", "diag %d", i);
	assert_int_equal(diags.n, GUESTCFG_MAX_DIAGS);
	assert_int_equal(diags.n_warnings, GUESTCFG_MAX_DIAGS + 9);
	assert_int_equal(diags.n_errors, 1);
	assert_string_equal(diags.d[GUESTCFG_MAX_DIAGS - 2].msg, "diag 62");
	assert_non_null(strstr(diags.d[GUESTCFG_MAX_DIAGS - 1].msg, "too many diagnostics"));
	assert_int_equal(diags.d[GUESTCFG_MAX_DIAGS - 1].level, DIAG_ERROR);

	/* a NULL key and control characters stay one clean line */
	memset(&diags, 0, sizeof(diags));
	guestcfg_diag_add(&diags, DIAG_NOTE, 0, NULL, "a\nb");
	assert_string_equal(diags.d[0].msg, "a?b");
	assert_string_equal(diags.d[0].key, "");
}

static void test_parse_file_errors(void **state)
{
	char path[] = "/tmp/test_guestcfg.XXXXXX";
	char *big;
	int fd;

	(void)state;
	assert_int_equal(parse_file("does-not-exist.cfg"), -1);
	need_diag(DIAG_ERROR, NULL, "No such file or directory");

	fd = mkstemp(path);
	assert_true(fd >= 0);
	big = malloc(GUEST_FILE_MAX + 2);
	assert_non_null(big);
	memset(big, '#', GUEST_FILE_MAX + 1);
	assert_int_equal(write(fd, big, GUEST_FILE_MAX + 1), GUEST_FILE_MAX + 1);
	close(fd);
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(guestcfg_parse_file(path, &cfg, &diags), -1);
	need_diag(DIAG_ERROR, NULL, "larger than");
	unlink(path);
	free(big);
}

static void test_name_tables(void **state)
{
	int a;

	(void)state;
	for (a = 0; a < GA__COUNT; a++)
		assert_int_equal(guest_action_parse(guest_action_name((enum guest_action)a)), a);
	assert_int_equal(guest_action_parse("explode"), -1);
	assert_int_equal(guest_action_parse(NULL), -1);
	assert_string_equal(guest_action_name(GA_RENAME_RESTART), "rename-restart");
	assert_string_equal(guest_type_name(GT_HVM), "hvm");
	assert_string_equal(guest_type_name(GT_PVH), "pvh");
	assert_string_equal(guest_type_name(GT_PV), "pv");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_winxp),
		cmocka_unit_test(test_seed_openbsd),
		cmocka_unit_test(test_xl_examples),
		cmocka_unit_test(test_memory_lots),
		cmocka_unit_test(test_memory_range),
		cmocka_unit_test(test_on_crash_explode),
		cmocka_unit_test(test_maxmem_below_memory),
		cmocka_unit_test(test_missing_name),
		cmocka_unit_test(test_invalid_name),
		cmocka_unit_test(test_unknown_key_warning),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_kind_mismatch),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_ha_keys),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_legacy_forms),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_device_errors),
		cmocka_unit_test(test_value_too_long),
		cmocka_unit_test(test_check_host),
		cmocka_unit_test(test_diag_format),
		cmocka_unit_test(test_diag_overflow),
		cmocka_unit_test(test_parse_file_errors),
		cmocka_unit_test(test_name_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

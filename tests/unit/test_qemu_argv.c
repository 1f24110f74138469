/* drivers/qemu_argv.c: every table entry's fragment, the fixed parts, and
 * the errors that name their key. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "drivers/qemu_argv.h"

static const struct qemu_argv_opts opts = {
	.run_dir = "/run/hagent",
	.binary = "/usr/bin/qemu-system-x86_64",
	.accel = "tcg",
	.qmp_fd = 3,
	.serial_fd = 4,
};

/* What the parser's defaults would give (without depending on it). */
static void base_cfg(struct guest_cfg *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->name, "g1");
	strcpy(c->driver, "qemu");
	c->type = GT_HVM;
	c->memory_mib = 128;
	c->maxmem_mib = 128;
	c->vcpus = 1;
	c->vncdisplay = -1;
	c->vncunused = true;
	strcpy(c->serial, "pty");
	c->acpi = true;
	c->on_poweroff = GA_DESTROY;
	c->on_reboot = GA_RESTART;
	c->on_crash = GA_DESTROY;
	c->on_watchdog = GA_DESTROY;
}

/* Index of the first "opt value" pair, -1 when absent. */
static int pair_at(const struct qemu_argv *a, const char *opt, const char *val)
{
	int i;

	for (i = 0; i + 1 < a->argc; i++)
		if (strcmp(a->argv[i], opt) == 0 && strcmp(a->argv[i + 1], val) == 0)
			return i;
	return -1;
}

static bool has_pair(const struct qemu_argv *a, const char *opt, const char *val)
{
	return pair_at(a, opt, val) >= 0;
}

static bool has_arg(const struct qemu_argv *a, const char *s)
{
	int i;

	for (i = 0; i < a->argc; i++)
		if (strcmp(a->argv[i], s) == 0)
			return true;
	return false;
}

static bool has_error(const struct guestcfg_diags *d, const char *key)
{
	int i;

	for (i = 0; i < d->n; i++)
		if (d->d[i].level == DIAG_ERROR && strcmp(d->d[i].key, key) == 0)
			return true;
	return false;
}

static void build_ok(const struct guest_cfg *c, struct qemu_argv *a)
{
	struct guestcfg_diags d = { 0 };
	int i;

	if (qemu_argv_build(c, &opts, a, &d) < 0) {
		for (i = 0; i < d.n; i++)
			fprintf(stderr, "diag: %s: %s\n", d.d[i].key, d.d[i].msg);
		fail_msg("argv build failed");
	}
	assert_int_equal(d.n_errors, 0);
	assert_null(a->argv[a->argc]);
}

/* Fails, and the error names key. */
static void build_fails(const struct guest_cfg *c, const char *key)
{
	struct guestcfg_diags d = { 0 };
	struct qemu_argv a;

	assert_int_equal(qemu_argv_build(c, &opts, &a, &d), -1);
	assert_int_equal(a.argc, 0);
	assert_true(d.n_errors > 0);
	if (!has_error(&d, key))
		fail_msg("no error for key '%s' (first: '%s': %s)", key, d.d[0].key, d.d[0].msg);
}

static void test_fixed_parts(void **state)
{
	struct guest_cfg c;
	struct qemu_argv a;

	base_cfg(&c);
	build_ok(&c, &a);
	assert_string_equal(a.argv[0], opts.binary);
	/* -name first, plain first form, NAME then ',' options */
	assert_string_equal(a.argv[1], "-name");
	assert_string_equal(a.argv[2], "g1,debug-threads=on");
	assert_true(has_arg(&a, "-nodefaults"));
	assert_true(has_arg(&a, "-no-user-config"));
	assert_true(has_pair(&a, "-accel", "tcg"));
	assert_true(has_pair(&a, "-machine", "pc"));
	assert_true(has_pair(&a, "-display", "none"));
	assert_true(has_pair(&a, "-m", "size=128M"));
	assert_true(has_pair(&a, "-smp", "1"));
	assert_true(has_pair(&a, "-device", "pvpanic"));
	assert_true(has_pair(&a, "-action", "panic=pause"));
	assert_true(has_pair(&a, "-action", "shutdown=pause"));
	assert_true(has_pair(&a, "-device", "virtio-balloon"));
	assert_true(has_pair(&a, "-pidfile", "/run/hagent/g1.pid"));
	assert_true(has_pair(&a, "-chardev", "socket,id=qmp,fd=3,server=on,wait=off"));
	assert_true(has_pair(&a, "-mon", "chardev=qmp,mode=control"));
	assert_true(has_pair(&a, "-chardev", "socket,id=ser0,fd=4,server=on,wait=off,"
					     "logfile=/run/hagent/g1.console.log,logappend=on"));
	assert_true(has_pair(&a, "-serial", "chardev:ser0"));
	assert_true(has_pair(&a, "-rtc", "base=utc"));
	assert_true(has_pair(&a, "-boot", "order=cd"));
	/* on_reboot = restart: QEMU resets in place; no watchdog unless asked */
	assert_false(has_pair(&a, "-action", "reboot=shutdown"));
	assert_false(has_pair(&a, "-device", "ib700"));
	assert_false(has_arg(&a, "-vnc"));
	assert_false(has_arg(&a, "-kernel"));
	qemu_argv_free(&a);
	assert_int_equal(a.argc, 0);
}

static void test_memory_vcpus(void **state)
{
	struct guest_cfg c;
	struct qemu_argv a;

	base_cfg(&c);
	c.memory_mib = 256;
	c.maxmem_mib = 1024;
	c.vcpus = 4;
	build_ok(&c, &a);
	/* QEMU gets maxmem; the balloon brings it down after start */
	assert_true(has_pair(&a, "-m", "size=1024M"));
	assert_true(has_pair(&a, "-smp", "4"));
	qemu_argv_free(&a);

	base_cfg(&c);
	c.memory_mib = 256;
	c.maxmem_mib = 128;
	build_fails(&c, "maxmem");
	base_cfg(&c);
	c.memory_mib = 0;
	build_fails(&c, "memory");
	base_cfg(&c);
	c.vcpus = 0;
	build_fails(&c, "vcpus");
}

static void test_direct_boot(void **state)
{
	struct guest_cfg c;
	struct qemu_argv a;

	base_cfg(&c);
	c.type = GT_PVH;
	strcpy(c.kernel, "/boot/vmlinux");
	strcpy(c.ramdisk, "/boot/initrd.img");
	strcpy(c.cmdline, "console=ttyS0 root=/dev/vda");
	build_ok(&c, &a);
	assert_true(has_pair(&a, "-kernel", "/boot/vmlinux"));
	assert_true(has_pair(&a, "-initrd", "/boot/initrd.img"));
	assert_true(has_pair(&a, "-append", "console=ttyS0 root=/dev/vda"));
	assert_true(has_pair(&a, "-machine", "pc"));
	assert_false(has_arg(&a, "-boot"));
	qemu_argv_free(&a);

	base_cfg(&c);
	c.type = GT_PVH;
	build_fails(&c, "kernel");
	base_cfg(&c);
	c.type = GT_PV;
	build_fails(&c, "kernel");
	base_cfg(&c);
	strcpy(c.ramdisk, "/boot/initrd.img");
	build_fails(&c, "ramdisk");
}

static void test_boot_acpi_rtc_usb(void **state)
{
	struct guest_cfg c;
	struct qemu_argv a;

	base_cfg(&c);
	strcpy(c.boot, "dc");
	c.acpi = false;
	c.localtime = true;
	strcpy(c.usbdevice, "tablet");
	build_ok(&c, &a);
	assert_true(has_pair(&a, "-boot", "order=dc"));
	assert_true(has_pair(&a, "-machine", "pc,acpi=off"));
	assert_true(has_pair(&a, "-rtc", "base=localtime"));
	assert_true(has_arg(&a, "-usb"));
	assert_true(has_pair(&a, "-device", "usb-tablet"));
	qemu_argv_free(&a);

	base_cfg(&c);
	strcpy(c.usbdevice, "mouse");
	build_ok(&c, &a);
	assert_true(has_pair(&a, "-device", "usb-mouse"));
	qemu_argv_free(&a);

	base_cfg(&c);
	strcpy(c.boot, "cx");
	build_fails(&c, "boot");
	base_cfg(&c);
	strcpy(c.usbdevice, "joystick");
	build_fails(&c, "usbdevice");
}

static void add_disk(struct guest_cfg *c, const char *target, const char *fmt, const char *vdev,
		     enum disk_backend be, bool cdrom, bool ro)
{
	struct guest_disk *d = &c->disks[c->n_disks++];

	snprintf(d->target, sizeof(d->target), "%s", target);
	snprintf(d->format, sizeof(d->format), "%s", fmt);
	snprintf(d->vdev, sizeof(d->vdev), "%s", vdev);
	d->backend = be;
	d->cdrom = cdrom;
	d->readonly = ro;
}

static void test_disks(void **state)
{
	struct guest_cfg c;
	struct qemu_argv a;

	base_cfg(&c);
	add_disk(&c, "/img/a.raw", "raw", "hda", DISK_FILE, false, false);
	add_disk(&c, "/iso/x.iso", "raw", "hdc", DISK_FILE, true, false);
	add_disk(&c, "/dev/vg/x", "qcow2", "xvda", DISK_PHY, false, false);
	add_disk(&c, "/img/ro,1.img", "", "vdb", DISK_FILE, false, true);
	add_disk(&c, "", "", "hdd", DISK_FILE, true, true);
	add_disk(&c, "/img/s.vhd", "vhd", "sda", DISK_FILE, false, false);
	build_ok(&c, &a);
	assert_true(has_pair(&a, "-drive", "if=ide,index=0,id=hda,format=raw,file.driver=file,"
					   "file.filename=/img/a.raw,werror=stop,rerror=stop"));
	assert_true(has_pair(&a, "-drive", "if=ide,index=2,id=hdc,media=cdrom,format=raw,"
					   "file.driver=file,file.filename=/iso/x.iso,readonly=on"));
	assert_true(has_pair(&a, "-drive", "if=virtio,id=xvda,format=qcow2,file.driver=host_device,"
					   "file.filename=/dev/vg/x,werror=stop,rerror=stop"));
	/* ',' in a file name is doubled; read-only disks do not stop on errors */
	assert_true(has_pair(&a, "-drive", "if=virtio,id=vdb,format=raw,file.driver=file,"
					   "file.filename=/img/ro,,1.img,readonly=on"));
	assert_true(has_pair(&a, "-drive", "if=ide,index=3,id=hdd,media=cdrom,readonly=on"));
	assert_true(has_pair(&a, "-drive", "if=virtio,id=sda,format=vpc,file.driver=file,"
					   "file.filename=/img/s.vhd,werror=stop,rerror=stop"));
	qemu_argv_free(&a);

	base_cfg(&c);
	add_disk(&c, "/img/a", "raw", "hde", DISK_FILE, false, false);
	build_fails(&c, "disk");
	base_cfg(&c);
	add_disk(&c, "/img/a", "raw", "xvda", DISK_FILE, false, false);
	add_disk(&c, "/img/b", "raw", "xvda", DISK_FILE, false, false);
	build_fails(&c, "disk");
	base_cfg(&c);
	add_disk(&c, "/img/a", "cow", "xvda", DISK_FILE, false, false);
	build_fails(&c, "disk");
	base_cfg(&c);
	add_disk(&c, "/iso/a", "raw", "xvdc", DISK_FILE, true, true);
	build_fails(&c, "disk");
	base_cfg(&c);
	add_disk(&c, "", "raw", "xvda", DISK_FILE, false, false);
	build_fails(&c, "disk");
}

static void add_vif(struct guest_cfg *c, const char *mac, const char *bridge, const char *model)
{
	struct guest_vif *v = &c->vifs[c->n_vifs++];

	snprintf(v->mac, sizeof(v->mac), "%s", mac);
	snprintf(v->bridge, sizeof(v->bridge), "%s", bridge);
	snprintf(v->model, sizeof(v->model), "%s", model);
}

static void test_vifs(void **state)
{
	struct guest_cfg c;
	struct qemu_argv a;

	base_cfg(&c);
	add_vif(&c, "00:16:3e:01:02:03", "br0", "virtio");
	add_vif(&c, "", "", "");
	add_vif(&c, "", "xenbr1", "rtl8139");
	add_vif(&c, "", "br0", "pcnet");
	add_vif(&c, "", "br0", "ne2k_pci");
	build_ok(&c, &a);
	assert_true(has_pair(&a, "-netdev", "bridge,id=net0,br=br0"));
	assert_true(has_pair(&a, "-device", "virtio-net-pci,netdev=net0,id=vif0,mac=00:16:3e:01:02:03"));
	assert_true(has_pair(&a, "-netdev", "user,id=net1,restrict=on"));
	assert_true(has_pair(&a, "-device", "e1000,netdev=net1,id=vif1"));
	assert_true(has_pair(&a, "-netdev", "bridge,id=net2,br=xenbr1"));
	assert_true(has_pair(&a, "-device", "rtl8139,netdev=net2,id=vif2"));
	assert_true(has_pair(&a, "-device", "pcnet,netdev=net3,id=vif3"));
	assert_true(has_pair(&a, "-device", "ne2k_pci,netdev=net4,id=vif4"));
	qemu_argv_free(&a);

	base_cfg(&c);
	add_vif(&c, "", "br0", "vmxnet3");
	build_fails(&c, "vif");
	base_cfg(&c);
	add_vif(&c, "00:16:3e:01:02", "br0", "");
	build_fails(&c, "vif");
	base_cfg(&c);
	add_vif(&c, "", "br0,x", "");
	build_fails(&c, "vif");
}

static void test_vnc(void **state)
{
	struct guest_cfg c;
	struct qemu_argv a;

	base_cfg(&c);
	c.vnc = true;
	build_ok(&c, &a);
	assert_true(has_pair(&a, "-vnc", "127.0.0.1:0,to=99"));
	assert_true(has_pair(&a, "-vga", "std"));
	assert_false(has_pair(&a, "-display", "none"));
	qemu_argv_free(&a);

	base_cfg(&c);
	c.vnc = true;
	c.vncunused = false;
	c.vncdisplay = 3;
	strcpy(c.vnclisten, "0.0.0.0");
	build_ok(&c, &a);
	assert_true(has_pair(&a, "-vnc", "0.0.0.0:3"));
	qemu_argv_free(&a);

	base_cfg(&c);
	c.vnc = true;
	c.vncunused = false;
	strcpy(c.vnclisten, "10.0.0.1:7");
	build_ok(&c, &a);
	assert_true(has_pair(&a, "-vnc", "10.0.0.1:7"));
	qemu_argv_free(&a);

	base_cfg(&c);
	c.vnc = true;
	strcpy(c.vnclisten, "1.2.3.4,password=on");
	build_fails(&c, "vnclisten");
}

static void test_actions(void **state)
{
	static const char *const keys[] = { "on_poweroff", "on_reboot", "on_crash", "on_watchdog" };
	struct guest_cfg c;
	struct qemu_argv a;
	int i;

	base_cfg(&c);
	c.on_reboot = GA_DESTROY;
	build_ok(&c, &a);
	assert_true(has_pair(&a, "-action", "reboot=shutdown"));
	qemu_argv_free(&a);

	base_cfg(&c);
	c.on_reboot = GA_COREDUMP_RESTART;
	build_ok(&c, &a);
	assert_true(has_pair(&a, "-action", "reboot=shutdown"));
	qemu_argv_free(&a);

	/* the watchdog device only when on_watchdog is in the file */
	base_cfg(&c);
	c.on_watchdog = GA_RESTART;
	c.on_watchdog_set = true;
	build_ok(&c, &a);
	assert_true(has_pair(&a, "-device", "ib700"));
	assert_true(has_pair(&a, "-action", "watchdog=pause"));
	qemu_argv_free(&a);

	for (i = 0; i < 4; i++) {
		base_cfg(&c);
		if (i == 0)
			c.on_poweroff = GA_SOFT_RESET;
		else if (i == 1)
			c.on_reboot = GA_SOFT_RESET;
		else if (i == 2)
			c.on_crash = GA_SOFT_RESET;
		else
			c.on_watchdog = GA_SOFT_RESET;
		build_fails(&c, keys[i]);
	}
}

static void test_no_fds_and_name(void **state)
{
	struct qemu_argv_opts o = opts;
	struct guest_cfg c;
	struct qemu_argv a;
	struct guestcfg_diags d = { 0 };

	o.qmp_fd = -1;
	o.serial_fd = -1;
	o.run_dir = "/run/a,b";
	base_cfg(&c);
	assert_int_equal(qemu_argv_build(&c, &o, &a, &d), 0);
	assert_true(has_pair(&a, "-chardev", "socket,id=qmp,path=/run/a,,b/g1.qmp,server=on,wait=off"));
	assert_true(has_pair(&a, "-chardev", "socket,id=ser0,path=/run/a,,b/g1.serial,server=on,"
					     "wait=off,logfile=/run/a,,b/g1.console.log,logappend=on"));
	qemu_argv_free(&a);

	o = opts;
	o.accel = "hax";
	memset(&d, 0, sizeof(d));
	assert_int_equal(qemu_argv_build(&c, &o, &a, &d), -1);

	base_cfg(&c);
	strcpy(c.name, "-bad");
	build_fails(&c, "name");
}

/* Every problem is reported, not only the first. */
static void test_all_errors(void **state)
{
	struct guestcfg_diags d = { 0 };
	struct guest_cfg c;
	struct qemu_argv a;

	base_cfg(&c);
	c.type = GT_PVH;
	c.on_crash = GA_SOFT_RESET;
	add_vif(&c, "", "", "bogus");
	assert_int_equal(qemu_argv_build(&c, &opts, &a, &d), -1);
	assert_int_equal(d.n_errors, 3);
	assert_true(has_error(&d, "kernel"));
	assert_true(has_error(&d, "on_crash"));
	assert_true(has_error(&d, "vif"));
}

static void test_full_guest_bounded(void **state)
{
	struct guest_cfg c;
	struct qemu_argv a;
	char vdev[8];
	int i;

	base_cfg(&c);
	c.vnc = true;
	c.on_watchdog_set = true;
	c.on_reboot = GA_DESTROY;
	strcpy(c.usbdevice, "tablet");
	for (i = 0; i < GUEST_MAX_DISKS; i++) {
		snprintf(vdev, sizeof(vdev), "xvd%c", 'a' + i);
		add_disk(&c, "/img/x", "raw", vdev, DISK_FILE, false, false);
	}
	for (i = 0; i < GUEST_MAX_VIFS; i++)
		add_vif(&c, "", "br0", "");
	build_ok(&c, &a);
	assert_true(a.argc < QEMU_ARGV_MAX);
	qemu_argv_free(&a);
}

static void test_cmdline_matches(void **state)
{
	static const char a[] = "qemu\0-name\0web1,debug-threads=on\0-m\0size=64M";
	static const char b[] = "qemu\0-name\0web1";
	static const char c[] = "qemu\0-name\0web10";
	static const char d[] = "qemu\0-m\0web1\0-name";
	static const char e[] = "qemu\0-name\0guest=web1";

	assert_true(qemu_cmdline_matches(a, sizeof(a), "web1"));
	assert_true(qemu_cmdline_matches(b, sizeof(b) - 1, "web1")); /* no final NUL */
	assert_false(qemu_cmdline_matches(c, sizeof(c), "web1"));
	assert_false(qemu_cmdline_matches(d, sizeof(d), "web1"));
	assert_false(qemu_cmdline_matches(e, sizeof(e), "web1"));
	assert_false(qemu_cmdline_matches(a, sizeof(a), "web"));
	assert_false(qemu_cmdline_matches(a, sizeof(a), ""));
}

static void test_nic_models(void **state)
{
	assert_string_equal(qemu_nic_model(""), "e1000");
	assert_string_equal(qemu_nic_model("virtio-net"), "virtio-net-pci");
	assert_null(qemu_nic_model("e1000e"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_parts),
		cmocka_unit_test(test_memory_vcpus),
		cmocka_unit_test(test_direct_boot),
		cmocka_unit_test(test_boot_acpi_rtc_usb),
		cmocka_unit_test(test_disks),
		cmocka_unit_test(test_vifs),
		cmocka_unit_test(test_vnc),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_no_fds_and_name),
		cmocka_unit_test(test_all_errors),
		cmocka_unit_test(test_full_guest_bounded),
		cmocka_unit_test(test_cmdline_matches),
		cmocka_unit_test(test_nic_models),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

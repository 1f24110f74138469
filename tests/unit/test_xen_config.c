/* drivers/xen_config.c: real xl.cfg texts (the test guest, seed xm files, xl
 * examples, inline files) through the project's parser into
 * libxl_domain_config, field by field; every on_* value through the table;
 * every error with its message; the host check against a scratch directory;
 * and a JSON round trip through libxl with a ctx that a shim makes possible
 * without Xen. */
#include "config.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <xenctrl.h>
#include <xenstore.h>

#include "drivers/xen_config.h"

#include <libxl_utils.h> /* libxl_bitmap_test */

/* ---- a libxl ctx without Xen ---------------------------------------- */

/* libxl_ctx_alloc opens libxc and xenstore and nothing else; these stand-ins
 * take precedence over libxenctrl's and libxenstore's for libxenlight, so a
 * ctx exists for what needs no hypervisor (JSON of libxl types). */
xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger,
				unsigned open_flags)
{
	static char fake_xc;

	(void)logger;
	(void)dombuild_logger;
	(void)open_flags;
	return (xc_interface *)&fake_xc;
}

int xc_interface_close(xc_interface *xch)
{
	(void)xch;
	return 0;
}

struct xs_handle *xs_open(unsigned long flags)
{
	static char fake_xs;

	(void)flags;
	return (struct xs_handle *)&fake_xs;
}

void xs_close(struct xs_handle *xsh)
{
	(void)xsh;
}

static void tlog_vmessage(struct xentoollog_logger *lg, xentoollog_level level, int errnoval,
			  const char *context, const char *format, va_list al)
{
	(void)lg;
	(void)errnoval;
	if (level < XTL_WARN)
		return;
	fprintf(stderr, "libxl %s: ", context ? context : "");
	vfprintf(stderr, format, al);
	fputc('\n', stderr);
}

static void tlog_progress(struct xentoollog_logger *lg, const char *context,
			  const char *doing_what, int percent, unsigned long done,
			  unsigned long total)
{
	(void)lg, (void)context, (void)doing_what, (void)percent, (void)done, (void)total;
}

static void tlog_destroy(struct xentoollog_logger *lg)
{
	(void)lg;
}

static xentoollog_logger tlog = { tlog_vmessage, tlog_progress, tlog_destroy };

/* ---- helpers -------------------------------------------------------- */

/* Large (paths): off the stack, reset by each helper. */
static struct guest_cfg cfg;
static struct guestcfg_diags diags;
static libxl_domain_config dc;
static char err[1024];

static void print_diags(void)
{
	char buf[512];
	int i;

	for (i = 0; i < diags.n; i++) {
		guestcfg_diag_format(&diags.d[i], cfg.source, buf, sizeof(buf));
		print_message("  %s\n", buf);
	}
}

static void parse_text(const char *text)
{
	memset(&diags, 0, sizeof(diags));
	if (guestcfg_parse(text, strlen(text), "t.cfg", &cfg, &diags) != 0) {
		print_diags();
		fail_msg("the parser refused the test's guest file");
	}
}

static void parse_file(const char *rel)
{
	char path[PATH_MAX];
	const char *srcdir = getenv("srcdir");

	snprintf(path, sizeof(path), "%s/%s", srcdir ? srcdir : ".", rel);
	memset(&diags, 0, sizeof(diags));
	if (guestcfg_parse_file(path, &cfg, &diags) != 0) {
		print_diags();
		fail_msg("the parser refused %s", path);
	}
}

static void build_ok(void)
{
	libxl_domain_config_init(&dc);
	err[0] = '\0';
	if (xen_config_build(&cfg, &dc, err, sizeof(err)) != 0) {
		libxl_domain_config_dispose(&dc);
		fail_msg("xen_config_build failed: %s", err);
	}
}

/* Fails with exactly that message; dc is disposable afterwards. */
static void build_fails(const char *want)
{
	libxl_domain_config_init(&dc);
	err[0] = '\0';
	assert_int_equal(xen_config_build(&cfg, &dc, err, sizeof(err)), -1);
	libxl_domain_config_dispose(&dc);
	assert_string_equal(err, want);
}

static void done(void)
{
	libxl_domain_config_dispose(&dc);
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n >= m && strcmp(s + n - m, tail) == 0;
}

static void assert_mac(const libxl_mac mac, const char *want)
{
	char got[32];

	snprintf(got, sizeof(got), LIBXL_MAC_FMT, LIBXL_MAC_BYTES(mac));
	assert_string_equal(got, want);
}

static void assert_defbool(libxl_defbool b, bool want)
{
	assert_false(libxl_defbool_is_default(b));
	assert_int_equal(libxl_defbool_val(b), want);
}

static void assert_vcpus(int n)
{
	const libxl_bitmap *m = &dc.b_info.avail_vcpus;
	int i;

	assert_int_equal(dc.b_info.max_vcpus, n);
	assert_int_equal(m->size, (n + 7) / 8);
	for (i = 0; i < (int)m->size * 8; i++)
		assert_int_equal(libxl_bitmap_test(m, i), i < n);
}

/* ---- real files ----------------------------------------------------- */

static void test_pvh_testguest(void **state)
{
	(void)state;
	parse_file("tests/guest/testguest.cfg");
	build_ok();
	assert_int_equal(dc.c_info.type, LIBXL_DOMAIN_TYPE_PVH);
	assert_int_equal(dc.b_info.type, LIBXL_DOMAIN_TYPE_PVH);
	assert_string_equal(dc.c_info.name, "testguest");
	assert_false(libxl_uuid_is_nil(&dc.c_info.uuid));
	/* relative to the file, as the parser resolves it */
	assert_non_null(dc.b_info.kernel);
	assert_true(ends_with(dc.b_info.kernel, "/tests/guest/testguest.elf"));
	assert_null(dc.b_info.ramdisk);
	assert_null(dc.b_info.cmdline);
	assert_int_equal(dc.b_info.target_memkb, 32 * 1024);
	assert_int_equal(dc.b_info.max_memkb, 32 * 1024);
	assert_vcpus(1);
	assert_defbool(dc.b_info.acpi, true);
	assert_defbool(dc.b_info.localtime, false);
	assert_int_equal(dc.b_info.device_model_version, LIBXL_DEVICE_MODEL_VERSION_QEMU_XEN);
	assert_int_equal(dc.num_disks, 0);
	assert_int_equal(dc.num_nics, 0);
	assert_int_equal(dc.num_vfbs, 0);
	assert_int_equal(dc.num_vkbs, 0);
	assert_int_equal(dc.on_poweroff, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
	assert_int_equal(dc.on_reboot, LIBXL_ACTION_ON_SHUTDOWN_RESTART);
	assert_int_equal(dc.on_crash, LIBXL_ACTION_ON_SHUTDOWN_RESTART);
	assert_int_equal(dc.on_watchdog, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
	assert_int_equal(dc.on_soft_reset, LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET);
	done();
}

static const char pv_text[] =
	"name = \"pv1\"\n"
	"type = \"pv\"\n"
	"kernel = \"/boot/vmlinuz-6.1\"\n"
	"ramdisk = \"/boot/initrd.img-6.1\"\n"
	"root = \"/dev/xvda1 ro\"\n"
	"extra = \"console=hvc0 quiet\"\n"
	"memory = 256\n"
	"maxmem = 1024\n"
	"vcpus = 3\n"
	"disk = [ 'phy:/dev/vg0/pv1,xvda,w',\n"
	"         'format=qcow2,vdev=xvdb,access=ro,target=/srv/pv1-data.qcow2' ]\n"
	"vif = [ 'bridge=br0,vifname=pv1-eth0', 'mac=00:16:3E:AA:bb:0c' ]\n"
	"localtime = 1\n"
	"vnc = 1\n"
	"vncdisplay = 2\n"
	"serial = 'pty'\n"
	"boot = 'c'\n"
	"usbdevice = 'tablet'\n";

static void test_pv_kernel_ramdisk_extra_root(void **state)
{
	libxl_mac mac0;

	(void)state;
	parse_text(pv_text);
	build_ok();
	assert_int_equal(dc.c_info.type, LIBXL_DOMAIN_TYPE_PV);
	assert_int_equal(dc.b_info.type, LIBXL_DOMAIN_TYPE_PV);
	assert_string_equal(dc.b_info.kernel, "/boot/vmlinuz-6.1");
	assert_string_equal(dc.b_info.ramdisk, "/boot/initrd.img-6.1");
	assert_string_equal(dc.b_info.cmdline, "root=/dev/xvda1 ro console=hvc0 quiet");
	/* the deprecated u.pv copies stay empty */
	assert_null(dc.b_info.u.pv.kernel);
	assert_null(dc.b_info.u.pv.cmdline);
	assert_int_equal(dc.b_info.target_memkb, 256 * 1024);
	assert_int_equal(dc.b_info.max_memkb, 1024 * 1024);
	assert_vcpus(3);
	assert_true(libxl_defbool_is_default(dc.b_info.acpi)); /* no ACPI in PV */
	assert_defbool(dc.b_info.localtime, true);

	assert_int_equal(dc.num_disks, 2);
	assert_string_equal(dc.disks[0].vdev, "xvda");
	assert_string_equal(dc.disks[0].pdev_path, "/dev/vg0/pv1");
	assert_int_equal(dc.disks[0].format, LIBXL_DISK_FORMAT_RAW);
	assert_int_equal(dc.disks[0].backend, LIBXL_DISK_BACKEND_PHY);
	assert_int_equal(dc.disks[0].readwrite, 1);
	assert_int_equal(dc.disks[0].is_cdrom, 0);
	assert_int_equal(dc.disks[0].removable, 0);
	assert_string_equal(dc.disks[1].vdev, "xvdb");
	assert_string_equal(dc.disks[1].pdev_path, "/srv/pv1-data.qcow2");
	assert_int_equal(dc.disks[1].format, LIBXL_DISK_FORMAT_QCOW2);
	assert_int_equal(dc.disks[1].backend, LIBXL_DISK_BACKEND_QDISK);
	assert_int_equal(dc.disks[1].readwrite, 0);

	assert_int_equal(dc.num_nics, 2);
	assert_int_equal(dc.nics[0].devid, 0);
	assert_int_equal(dc.nics[0].nictype, LIBXL_NIC_TYPE_VIF);
	assert_string_equal(dc.nics[0].bridge, "br0");
	assert_string_equal(dc.nics[0].ifname, "pv1-eth0");
	assert_null(dc.nics[0].model);
	xen_config_default_mac("pv1", 0, mac0);
	assert_memory_equal(dc.nics[0].mac, mac0, 6);
	assert_int_equal(dc.nics[1].devid, 1);
	assert_mac(dc.nics[1].mac, "00:16:3e:aa:bb:0c");
	assert_null(dc.nics[1].bridge); /* libxl's xenbr0 */
	assert_null(dc.nics[1].ifname);

	/* vnc of a PV guest: a framebuffer and a keyboard, as xl */
	assert_int_equal(dc.num_vfbs, 1);
	assert_int_equal(dc.num_vkbs, 1);
	assert_int_equal(dc.vfbs[0].devid, 0);
	assert_defbool(dc.vfbs[0].vnc.enable, true);
	assert_string_equal(dc.vfbs[0].vnc.listen, "127.0.0.1");
	assert_int_equal(dc.vfbs[0].vnc.display, 2);
	assert_defbool(dc.vfbs[0].vnc.findunused, true);
	/* serial, boot, usbdevice mean nothing to a PV guest: the union's PV
	 * member is untouched */
	assert_null(dc.b_info.u.pv.bootloader);
	done();
}

/* The seed's style: xm keys, builder, hvmloader as kernel, device_model. */
static const char hvm_seed_text[] =
	"kernel = '/usr/lib/xen-3.0.3-1/boot/hvmloader'\n"
	"builder = 'hvm'\n"
	"name = 'web1'\n"
	"memory = 1024\n"
	"vcpus = 2\n"
	"device_model = '/usr/lib/xen-3.0.3-1/bin/qemu-dm'\n"
	"disk = ['phy:/dev/vg0/web1,xvda,w','file:/srv/iso/x.iso,hdc:cdrom,r']\n"
	"vif = ['bridge=xenbr0,mac=00:16:3e:12:34:56,model=e1000']\n"
	"vnc = 1\n"
	"vnclisten = '0.0.0.0'\n"
	"vncdisplay = 3\n"
	"serial = 'pty'\n"
	"boot = 'dc'\n"
	"on_crash = 'restart'\n"
	"on_poweroff = 'destroy'\n";

static void assert_hvm_seed(void)
{
	assert_int_equal(dc.c_info.type, LIBXL_DOMAIN_TYPE_HVM);
	assert_int_equal(dc.b_info.type, LIBXL_DOMAIN_TYPE_HVM);
	assert_string_equal(dc.c_info.name, "web1");
	/* hvmloader as kernel is dropped: firmware is libxl's default */
	assert_null(dc.b_info.kernel);
	assert_null(dc.b_info.u.hvm.firmware);
	assert_null(dc.b_info.device_model); /* libxl's own path */
	assert_int_equal(dc.b_info.device_model_version, LIBXL_DEVICE_MODEL_VERSION_QEMU_XEN);
	assert_int_equal(dc.b_info.target_memkb, 1024 * 1024);
	assert_int_equal(dc.b_info.max_memkb, 1024 * 1024);
	assert_vcpus(2);
	assert_defbool(dc.b_info.acpi, true);
	assert_defbool(dc.b_info.localtime, false);

	assert_int_equal(dc.num_disks, 2);
	assert_string_equal(dc.disks[0].vdev, "xvda");
	assert_string_equal(dc.disks[0].pdev_path, "/dev/vg0/web1");
	assert_int_equal(dc.disks[0].backend, LIBXL_DISK_BACKEND_PHY);
	assert_int_equal(dc.disks[0].format, LIBXL_DISK_FORMAT_RAW);
	assert_int_equal(dc.disks[0].readwrite, 1);
	assert_int_equal(dc.disks[0].is_cdrom, 0);
	assert_string_equal(dc.disks[1].vdev, "hdc");
	assert_string_equal(dc.disks[1].pdev_path, "/srv/iso/x.iso");
	assert_int_equal(dc.disks[1].format, LIBXL_DISK_FORMAT_RAW);
	/* an HVM guest's CD-ROM: qdisk, the only backend libxl 4.17 takes */
	assert_int_equal(dc.disks[1].backend, LIBXL_DISK_BACKEND_QDISK);
	assert_int_equal(dc.disks[1].readwrite, 0);
	assert_int_equal(dc.disks[1].is_cdrom, 1);
	assert_int_equal(dc.disks[1].removable, 1);

	assert_int_equal(dc.num_nics, 1);
	assert_mac(dc.nics[0].mac, "00:16:3e:12:34:56");
	assert_string_equal(dc.nics[0].bridge, "xenbr0");
	assert_string_equal(dc.nics[0].model, "e1000");
	assert_int_equal(dc.nics[0].nictype, LIBXL_NIC_TYPE_VIF_IOEMU);

	assert_defbool(dc.b_info.u.hvm.vnc.enable, true);
	assert_string_equal(dc.b_info.u.hvm.vnc.listen, "0.0.0.0");
	assert_int_equal(dc.b_info.u.hvm.vnc.display, 3);
	assert_defbool(dc.b_info.u.hvm.vnc.findunused, true);
	assert_int_equal(dc.num_vfbs, 0);
	assert_string_equal(dc.b_info.u.hvm.serial, "pty");
	assert_string_equal(dc.b_info.u.hvm.boot, "dc");
	assert_null(dc.b_info.u.hvm.usbdevice);

	assert_int_equal(dc.on_crash, LIBXL_ACTION_ON_SHUTDOWN_RESTART);
	assert_int_equal(dc.on_poweroff, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
	assert_int_equal(dc.on_reboot, LIBXL_ACTION_ON_SHUTDOWN_RESTART);
	assert_int_equal(dc.on_watchdog, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
	assert_int_equal(dc.on_soft_reset, LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET);
}

static void test_hvm_seed_style(void **state)
{
	(void)state;
	parse_text(hvm_seed_text);
	build_ok();
	assert_hvm_seed();
	done();
}

static void test_seed_winxp(void **state)
{
	(void)state;
	parse_file("tests/unit/data/guestcfg/winxp.cfg");
	build_ok();
	assert_int_equal(dc.c_info.type, LIBXL_DOMAIN_TYPE_HVM);
	assert_string_equal(dc.c_info.name, "WindowsXP");
	assert_null(dc.b_info.kernel);
	assert_int_equal(dc.b_info.target_memkb, 512 * 1024);
	assert_int_equal(dc.num_disks, 2);
	/* 'file:...,ioemu:hda,w': xm's ioemu: prefix is gone, raw file */
	assert_string_equal(dc.disks[0].vdev, "hda");
	assert_string_equal(dc.disks[0].pdev_path, "/mnt/disk1/Winxp/WinXP.img");
	assert_int_equal(dc.disks[0].format, LIBXL_DISK_FORMAT_RAW);
	assert_int_equal(dc.disks[0].readwrite, 1);
	assert_string_equal(dc.disks[1].vdev, "hdb");
	assert_int_equal(dc.disks[1].is_cdrom, 1);
	assert_int_equal(dc.disks[1].readwrite, 0);
	/* 'type=ioemu, mac=..., bridge=xenbr0, model=pcnet' */
	assert_int_equal(dc.num_nics, 1);
	assert_mac(dc.nics[0].mac, "00:50:56:01:09:01");
	assert_string_equal(dc.nics[0].bridge, "xenbr0");
	assert_string_equal(dc.nics[0].model, "pcnet");
	assert_int_equal(dc.nics[0].nictype, LIBXL_NIC_TYPE_VIF_IOEMU);
	assert_string_equal(dc.b_info.u.hvm.boot, "dca");
	assert_string_equal(dc.b_info.u.hvm.serial, "pty");
	assert_string_equal(dc.b_info.u.hvm.usbdevice, "tablet");
	assert_defbool(dc.b_info.localtime, true);
	assert_defbool(dc.b_info.u.hvm.vnc.enable, true); /* xl's default for HVM */
	assert_string_equal(dc.b_info.u.hvm.vnc.listen, "127.0.0.1");
	assert_int_equal(dc.on_crash, LIBXL_ACTION_ON_SHUTDOWN_RESTART);
	done();
}

static void test_seed_openbsd(void **state)
{
	libxl_mac mac0;

	(void)state;
	parse_file("tests/unit/data/guestcfg/openbsd.cfg");
	build_ok();
	assert_int_equal(dc.c_info.type, LIBXL_DOMAIN_TYPE_HVM);
	assert_defbool(dc.b_info.acpi, false);
	assert_defbool(dc.b_info.u.hvm.vnc.enable, true);
	assert_string_equal(dc.b_info.u.hvm.vnc.listen, "192.168.130.20");
	assert_int_equal(dc.b_info.u.hvm.vnc.display, 1);
	assert_defbool(dc.b_info.u.hvm.vnc.findunused, false);
	assert_string_equal(dc.b_info.u.hvm.boot, "cd");
	assert_int_equal(dc.num_nics, 1);
	assert_string_equal(dc.nics[0].model, "pcnet");
	xen_config_default_mac("OpenBSD", 0, mac0);
	assert_memory_equal(dc.nics[0].mac, mac0, 6);
	assert_int_equal(dc.num_disks, 2);
	assert_string_equal(dc.disks[0].vdev, "hda");
	assert_string_equal(dc.disks[1].vdev, "hdc");
	assert_int_equal(dc.disks[1].is_cdrom, 1);
	done();
}

static void test_xl_examples(void **state)
{
	static const struct {
		const char *file;
		libxl_domain_type type;
	} files[] = {
		{ "tests/unit/data/guestcfg/xlexample.hvm", LIBXL_DOMAIN_TYPE_HVM },
		{ "tests/unit/data/guestcfg/xlexample.pvlinux", LIBXL_DOMAIN_TYPE_PV },
		{ "tests/unit/data/guestcfg/xlexample.pvhlinux", LIBXL_DOMAIN_TYPE_PVH },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		parse_file(files[i].file);
		build_ok();
		assert_int_equal(dc.c_info.type, files[i].type);
		assert_int_equal(dc.num_disks, 1);
		assert_int_equal(dc.disks[0].format, LIBXL_DISK_FORMAT_RAW);
		assert_int_equal(dc.num_nics, 1); /* vif = [ '' ] */
		assert_int_equal(dc.nics[0].nictype, files[i].type == LIBXL_DOMAIN_TYPE_HVM ?
							     LIBXL_NIC_TYPE_VIF_IOEMU :
							     LIBXL_NIC_TYPE_VIF);
		assert_null(dc.nics[0].model); /* libxl's default */
		done();
	}
}

/* ---- the on_* table: every key, every value ------------------------- */

static void test_actions(void **state)
{
	static const struct {
		const char *name;
		libxl_action_on_shutdown want;
	} values[] = {
		{ "destroy", LIBXL_ACTION_ON_SHUTDOWN_DESTROY },
		{ "restart", LIBXL_ACTION_ON_SHUTDOWN_RESTART },
		{ "rename-restart", LIBXL_ACTION_ON_SHUTDOWN_RESTART_RENAME },
		{ "preserve", LIBXL_ACTION_ON_SHUTDOWN_PRESERVE },
		{ "coredump-destroy", LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_DESTROY },
		{ "coredump-restart", LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_RESTART },
		{ "soft-reset", LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET },
	};
	static const struct {
		const char *key;
		size_t off;
		libxl_action_on_shutdown dflt;
	} keys[] = {
		{ "on_poweroff", offsetof(libxl_domain_config, on_poweroff),
		  LIBXL_ACTION_ON_SHUTDOWN_DESTROY },
		{ "on_reboot", offsetof(libxl_domain_config, on_reboot),
		  LIBXL_ACTION_ON_SHUTDOWN_RESTART },
		{ "on_crash", offsetof(libxl_domain_config, on_crash),
		  LIBXL_ACTION_ON_SHUTDOWN_DESTROY },
		{ "on_watchdog", offsetof(libxl_domain_config, on_watchdog),
		  LIBXL_ACTION_ON_SHUTDOWN_DESTROY },
	};
	char text[256];
	size_t k, v, o;

	(void)state;
	assert_int_equal(sizeof(values) / sizeof(values[0]), GA__COUNT);
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		for (v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
			snprintf(text, sizeof(text),
				 "name = 'a'\ntype = 'pvh'\nkernel = '/k'\n%s = '%s'\n", keys[k].key,
				 values[v].name);
			parse_text(text);
			build_ok();
			for (o = 0; o < sizeof(keys) / sizeof(keys[0]); o++) {
				libxl_action_on_shutdown got =
					*(libxl_action_on_shutdown *)((char *)&dc + keys[o].off);

				assert_int_equal(got, o == k ? values[v].want : keys[o].dflt);
			}
			assert_int_equal(dc.on_soft_reset, LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET);
			done();
		}
	}
	/* a value outside the enum (a cfg not made by the parser) */
	parse_text("name = 'a'\ntype = 'pvh'\nkernel = '/k'\n");
	cfg.on_watchdog = GA__COUNT;
	build_fails("t.cfg: error: key 'on_watchdog': action 7 is not an xl action");
}

/* ---- memory and vcpus ----------------------------------------------- */

static const char pvh_base[] = "name = 'm'\ntype = 'pvh'\nkernel = '/boot/k'\n";

static void test_memory_vcpus(void **state)
{
	char text[256];
	int n;

	(void)state;
	snprintf(text, sizeof(text), "%smemory = 4096\n", pvh_base);
	parse_text(text);
	build_ok();
	assert_int_equal(dc.b_info.target_memkb, 4096ULL * 1024);
	assert_int_equal(dc.b_info.max_memkb, 4096ULL * 1024); /* maxmem = memory */
	assert_vcpus(1);
	done();

	snprintf(text, sizeof(text), "%smemory = 2048\nmaxmem = 16384\n", pvh_base);
	parse_text(text);
	build_ok();
	assert_int_equal(dc.b_info.target_memkb, 2097152);
	assert_int_equal(dc.b_info.max_memkb, 16777216);
	done();

	/* the largest memory the parser allows still fits */
	snprintf(text, sizeof(text), "%smemory = 16777216\n", pvh_base);
	parse_text(text);
	build_ok();
	assert_int_equal(dc.b_info.target_memkb, 16ULL * 1024 * 1024 * 1024);
	done();

	for (n = 1; n <= 128; n += (n < 10 ? 1 : 59)) {
		snprintf(text, sizeof(text), "%svcpus = %d\n", pvh_base, n);
		parse_text(text);
		build_ok();
		assert_vcpus(n);
		done();
	}

	parse_text(pvh_base);
	cfg.memory_mib = 0;
	build_fails("t.cfg: error: key 'memory': 0 MiB is out of range (1-16777216)");
	parse_text(pvh_base);
	cfg.memory_mib = 512;
	cfg.maxmem_mib = 256;
	build_fails("t.cfg: error: key 'maxmem': maxmem (256 MiB) is below memory (512 MiB)");
	parse_text(pvh_base);
	cfg.maxmem_mib = 16L * 1024 * 1024 + 1;
	build_fails("t.cfg: error: key 'maxmem': 16777217 MiB is out of range (1-16777216)");
	parse_text(pvh_base);
	cfg.vcpus = 0;
	build_fails("t.cfg: error: key 'vcpus': 0 is out of range (1-128)");
	parse_text(pvh_base);
	cfg.vcpus = 129;
	build_fails("t.cfg: error: key 'vcpus': 129 is out of range (1-128)");
}

/* ---- errors, one message each --------------------------------------- */

static void test_errors(void **state)
{
	(void)state;

	parse_text(hvm_seed_text);
	strcpy(cfg.disks[0].format, "vmdk");
	build_fails("t.cfg: error: key 'disk': disk 1 (xvda): format 'vmdk' is not supported "
		    "by Xen (raw, qcow, qcow2, vhd, qed)");

	parse_text(hvm_seed_text);
	strcpy(cfg.disks[1].vdev, "vdb");
	build_fails("t.cfg: error: key 'disk': disk 2: vdev 'vdb' is not a Xen virtual disk "
		    "(xvdX, hdX, sdX)");

	parse_text(hvm_seed_text);
	strcpy(cfg.disks[1].vdev, "xvda");
	build_fails("t.cfg: error: key 'disk': disk 2: vdev 'xvda' is also disk 1's");

	parse_text(hvm_seed_text);
	cfg.disks[0].target[0] = '\0';
	build_fails("t.cfg: error: key 'disk': disk 1 (xvda): no target");

	parse_text(hvm_seed_text);
	strcpy(cfg.vifs[0].mac, "00:16:3e:zz:00:01");
	build_fails("t.cfg: error: key 'vif': vif 1: mac '00:16:3e:zz:00:01' is not "
		    "xx:xx:xx:xx:xx:xx");

	parse_text(hvm_seed_text);
	strcpy(cfg.vifs[0].mac, "00-16-3e-12-34-56");
	build_fails("t.cfg: error: key 'vif': vif 1: mac '00-16-3e-12-34-56' is not "
		    "xx:xx:xx:xx:xx:xx");

	parse_text(hvm_seed_text);
	strcpy(cfg.vifs[0].mac, "01:00:5e:00:00:01");
	build_fails("t.cfg: error: key 'vif': vif 1: mac 01:00:5e:00:00:01 is a multicast "
		    "address");

	parse_text(hvm_seed_text);
	strcpy(cfg.vifs[0].mac, "00:00:00:00:00:00");
	build_fails("t.cfg: error: key 'vif': vif 1: mac 00:00:00:00:00:00 would make libxl "
		    "pick a random one");

	parse_text(hvm_seed_text);
	strcpy(cfg.vifs[0].model, "i82551");
	build_fails("t.cfg: error: key 'vif': vif 1: model 'i82551' is not supported (e1000, "
		    "rtl8139, pcnet, ne2k_pci, virtio)");

	parse_text("name = 'p'\ntype = 'pv'\n");
	build_fails("t.cfg: error: key 'kernel': a pv guest needs a kernel (bootloader= is not "
		    "supported)");
	parse_text("name = 'p'\ntype = 'pvh'\n");
	build_fails("t.cfg: error: key 'kernel': a pvh guest needs a kernel (bootloader= is not "
		    "supported)");
	parse_text("name = 'h'\ntype = 'hvm'\nramdisk = '/boot/initrd'\n");
	build_fails("t.cfg: error: key 'ramdisk': ramdisk without kernel");

	parse_text(hvm_seed_text);
	strcpy(cfg.name, "-web1");
	build_fails("t.cfg: error: key 'name': '-web1' is not a valid guest name");

	parse_text(hvm_seed_text);
	strcpy(cfg.vnclisten, "0.0.0.0:5");
	build_fails("t.cfg: error: key 'vncdisplay': display given both in vnclisten "
		    "('0.0.0.0:5') and vncdisplay (3)");

	parse_text(hvm_seed_text);
	strcpy(cfg.serial, "file:/tmp/x");
	build_fails("t.cfg: error: key 'serial': 'file:/tmp/x' is not supported (pty, none)");

	parse_text(hvm_seed_text);
	strcpy(cfg.usbdevice, "host:1234");
	build_fails("t.cfg: error: key 'usbdevice': 'host:1234' is not supported (tablet, "
		    "mouse, keyboard)");

	parse_text(hvm_seed_text);
	strcpy(cfg.boot, "dz");
	build_fails("t.cfg: error: key 'boot': 'dz': expected letters among a, c, d, n");

	parse_text(hvm_seed_text);
	cfg.type = (enum guest_type)42;
	build_fails("t.cfg: error: key 'type': guest type 42 is none of hvm, pvh, pv");
}

/* libxl 4.17 (libxl__device_disk_setdefault) refuses an HVM guest's CD-ROM
 * unless its backend is qdisk or left to libxl: "Backend for CD devices on
 * HVM guests must be Qdisk", and the create fails.  Seen in the VM lab with
 * a raw ISO, which used to get phy like any raw image.  A PV or PVH guest's
 * CD-ROM keeps the format's backend. */
static void test_hvm_cdrom_qdisk(void **state)
{
	static const char text[] =
		"name = 'cd1'\n"
		"builder = 'hvm'\n"
		"disk = [ 'file:/srv/cd1.img,hda,w', 'file:/srv/iso/x.iso,hdc:cdrom,r',\n"
		"         'format=qcow2,vdev=hdd,devtype=cdrom,target=/srv/iso/y.qcow2' ]\n";

	(void)state;
	parse_text(text);
	build_ok();
	assert_int_equal(dc.num_disks, 3);
	assert_int_equal(dc.disks[0].is_cdrom, 0);
	assert_int_equal(dc.disks[0].backend, LIBXL_DISK_BACKEND_PHY);
	assert_int_equal(dc.disks[1].is_cdrom, 1);
	assert_int_equal(dc.disks[1].format, LIBXL_DISK_FORMAT_RAW);
	assert_int_equal(dc.disks[1].backend, LIBXL_DISK_BACKEND_QDISK);
	assert_int_equal(dc.disks[2].is_cdrom, 1);
	assert_int_equal(dc.disks[2].format, LIBXL_DISK_FORMAT_QCOW2);
	assert_int_equal(dc.disks[2].backend, LIBXL_DISK_BACKEND_QDISK);
	done();

	cfg.type = GT_PVH;
	strcpy(cfg.kernel, "/k");
	build_ok();
	assert_int_equal(dc.disks[1].is_cdrom, 1);
	assert_int_equal(dc.disks[1].backend, LIBXL_DISK_BACKEND_PHY);
	assert_int_equal(dc.disks[2].backend, LIBXL_DISK_BACKEND_QDISK);
	done();
}

/* xl's parse_config_data also copies two xl.conf settings into every
 * domain's config; `xl create -n` in the VM lab shows them at xl.conf's
 * defaults: "claim_mode": "True", "run_hotplug_scripts": "True".  libxl's
 * own default for claim_mode is off. */
static void test_xl_conf_defaults(void **state)
{
	static const char *const texts[] = {
		"name = 'a'\ntype = 'hvm'\n",
		"name = 'b'\ntype = 'pvh'\nkernel = '/k'\n",
		"name = 'c'\ntype = 'pv'\nkernel = '/k'\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		parse_text(texts[i]);
		build_ok();
		assert_defbool(dc.b_info.claim_mode, true);
		assert_defbool(dc.c_info.run_hotplug_scripts, true);
		done();
	}
}

/* tests/vmlab's guest files, field by field as `xl create -n` (Xen 4.17.7)
 * printed them inside a vmlab host; xl leaves localtime, acpi and the
 * device model version to libxl's defaults, which are the values here. */
static void test_vmlab_guest_files(void **state)
{
	(void)state;
	parse_file("tests/vmlab/guest-hvm.cfg");
	build_ok();
	assert_int_equal(dc.c_info.type, LIBXL_DOMAIN_TYPE_HVM);
	assert_string_equal(dc.c_info.name, "tg-hvm");
	assert_string_equal(dc.b_info.kernel, "/opt/hagent/tests/guest/testguest.elf");
	assert_int_equal(dc.b_info.target_memkb, 65536);
	assert_int_equal(dc.b_info.max_memkb, 65536);
	assert_vcpus(1);
	assert_defbool(dc.b_info.acpi, true);
	assert_int_equal(dc.b_info.device_model_version, LIBXL_DEVICE_MODEL_VERSION_QEMU_XEN);
	assert_defbool(dc.b_info.u.hvm.vnc.enable, true);
	assert_string_equal(dc.b_info.u.hvm.vnc.listen, "127.0.0.1");
	assert_defbool(dc.b_info.u.hvm.vnc.findunused, true);
	assert_string_equal(dc.b_info.u.hvm.serial, "pty");
	assert_null(dc.b_info.u.hvm.boot);
	assert_int_equal(dc.num_disks, 0);
	assert_int_equal(dc.num_nics, 1);
	assert_int_equal(dc.nics[0].devid, 0);
	assert_string_equal(dc.nics[0].model, "e1000");
	assert_mac(dc.nics[0].mac, "00:16:3e:48:41:01");
	assert_string_equal(dc.nics[0].bridge, "xenbr0");
	assert_int_equal(dc.nics[0].nictype, LIBXL_NIC_TYPE_VIF_IOEMU);
	assert_int_equal(dc.num_vfbs, 0);
	assert_int_equal(dc.on_poweroff, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
	assert_int_equal(dc.on_reboot, LIBXL_ACTION_ON_SHUTDOWN_RESTART);
	assert_int_equal(dc.on_crash, LIBXL_ACTION_ON_SHUTDOWN_RESTART);
	assert_int_equal(dc.on_watchdog, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
	assert_int_equal(dc.on_soft_reset, LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET);
	done();

	parse_file("tests/vmlab/guest-pvh.cfg");
	build_ok();
	assert_int_equal(dc.c_info.type, LIBXL_DOMAIN_TYPE_PVH);
	assert_string_equal(dc.c_info.name, "tg-pvh");
	assert_string_equal(dc.b_info.kernel, "/opt/hagent/tests/guest/testguest.elf");
	assert_null(dc.b_info.ramdisk);
	assert_null(dc.b_info.cmdline);
	assert_int_equal(dc.b_info.target_memkb, 32768);
	assert_int_equal(dc.b_info.max_memkb, 32768);
	assert_vcpus(1);
	assert_int_equal(dc.num_disks, 0);
	assert_int_equal(dc.num_nics, 0);
	assert_int_equal(dc.num_vfbs, 0);
	assert_int_equal(dc.num_vkbs, 0);
	assert_int_equal(dc.on_poweroff, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
	assert_int_equal(dc.on_reboot, LIBXL_ACTION_ON_SHUTDOWN_RESTART);
	assert_int_equal(dc.on_crash, LIBXL_ACTION_ON_SHUTDOWN_RESTART);
	assert_int_equal(dc.on_watchdog, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
	done();
}

/* What xen_config_check reports: all problems, each under its key; and the
 * things that are fine for Xen although another driver may refuse them. */
static void test_check(void **state)
{
	(void)state;
	parse_text(hvm_seed_text);
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(xen_config_check(&cfg, &diags), 0);
	assert_int_equal(diags.n, 0);

	/* serial 'none' and an empty CD-ROM drive are fine */
	strcpy(cfg.serial, "none");
	cfg.disks[1].target[0] = '\0';
	assert_int_equal(xen_config_check(&cfg, &diags), 0);
	build_ok();
	assert_null(dc.b_info.u.hvm.serial);
	assert_null(dc.disks[1].pdev_path);
	assert_int_equal(dc.disks[1].format, LIBXL_DISK_FORMAT_EMPTY);
	assert_int_equal(dc.disks[1].backend, LIBXL_DISK_BACKEND_QDISK);
	done();

	cfg.type = GT_PV;
	strcpy(cfg.disks[0].format, "vmdk");
	strcpy(cfg.vifs[0].mac, "bad");
	cfg.on_crash = (enum guest_action)-1;
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(xen_config_check(&cfg, &diags), -1);
	assert_int_equal(diags.n_errors, 4);
	assert_int_equal(diags.n, 4);
	assert_string_equal(diags.d[0].key, "kernel");
	assert_string_equal(diags.d[1].key, "disk");
	assert_string_equal(diags.d[2].key, "vif");
	assert_string_equal(diags.d[3].key, "on_crash");
	assert_string_equal(diags.d[3].msg, "action -1 is not an xl action");
	/* err may be NULL */
	libxl_domain_config_init(&dc);
	assert_int_equal(xen_config_build(&cfg, &dc, NULL, 0), -1);
	done();
}

/* ---- the default MAC ------------------------------------------------ */

static void test_default_mac(void **state)
{
	libxl_mac a, b, m[GUEST_MAX_VIFS];
	int i, j;

	(void)state;
	xen_config_default_mac("web1", 0, a);
	xen_config_default_mac("web1", 0, b);
	assert_memory_equal(a, b, 6); /* the same on every host, every start */
	xen_config_default_mac("web2", 0, b);
	assert_memory_not_equal(a, b, 6);
	for (i = 0; i < GUEST_MAX_VIFS; i++) {
		xen_config_default_mac("web1", i, m[i]);
		assert_int_equal(m[i][0], 0x00);
		assert_int_equal(m[i][1], 0x16);
		assert_int_equal(m[i][2], 0x3e);
		assert_true(m[i][3] < 0x80);
		for (j = 0; j < i; j++)
			assert_memory_not_equal(m[i], m[j], 6);
	}
}

/* ---- host check ----------------------------------------------------- */

static char tmpdir[64];

static void make_file(const char *name, mode_t mode, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("x\n", f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static const struct guestcfg_diag *diag_for(const char *key)
{
	int i;

	for (i = 0; i < diags.n; i++)
		if (strcmp(diags.d[i].key, key) == 0)
			return &diags.d[i];
	print_diags();
	fail_msg("no diagnostic for key '%s'", key);
	return NULL;
}

static void test_check_host(void **state)
{
	char dm[128], dm2[128], noexec[128], loader[128], bios[128], want[512];
	char missing_dm[128], missing_loader[128], missing_bios[128];
	const char *dm_list[3], *loader_list[2], *bios_list[2], *empty[1] = { NULL };
	struct xen_host_paths none = { empty, empty, empty };
	struct xen_host_paths p = { dm_list, loader_list, bios_list };

	(void)state;
	strcpy(tmpdir, "/tmp/test_xen_config.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(missing_dm, sizeof(missing_dm), "%s/qemu-missing", tmpdir);
	snprintf(missing_loader, sizeof(missing_loader), "%s/hvmloader-missing", tmpdir);
	snprintf(missing_bios, sizeof(missing_bios), "%s/bios-missing", tmpdir);
	make_file("qemu", 0755, dm, sizeof(dm));
	make_file("qemu2", 0755, dm2, sizeof(dm2));
	make_file("qemu-noexec", 0644, noexec, sizeof(noexec));
	make_file("hvmloader", 0644, loader, sizeof(loader));
	make_file("bios-256k.bin", 0644, bios, sizeof(bios));

	/* HVM: everything missing, one error per piece */
	parse_text(hvm_seed_text);
	dm_list[0] = missing_dm;
	dm_list[1] = noexec; /* there, but not executable */
	dm_list[2] = NULL;
	loader_list[0] = missing_loader;
	loader_list[1] = NULL;
	bios_list[0] = missing_bios;
	bios_list[1] = NULL;
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(xen_config_check_host(&cfg, &p, &diags), -1);
	assert_int_equal(diags.n_errors, 3);
	assert_string_equal(diags.d[0].key, "type");
	snprintf(want, sizeof(want), "an hvm guest needs Xen's device model (qemu-xen): no "
		 "executable file %s or %s (Debian package qemu-system-xen)", missing_dm, noexec);
	assert_string_equal(diags.d[0].msg, want);
	snprintf(want, sizeof(want), "an hvm guest needs hvmloader: no readable file %s (Debian "
		 "package xen-utils-4.17)", missing_loader);
	assert_string_equal(diags.d[1].msg, want);
	snprintf(want, sizeof(want), "an hvm guest needs SeaBIOS: no readable file %s (Debian "
		 "package seabios)", missing_bios);
	assert_string_equal(diags.d[2].msg, want);

	/* the second candidate is enough */
	dm_list[1] = dm2;
	loader_list[0] = loader;
	bios_list[0] = bios;
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(xen_config_check_host(&cfg, &p, &diags), 0);
	assert_int_equal(diags.n, 0);
	dm_list[0] = dm;
	assert_int_equal(xen_config_check_host(&cfg, &p, &diags), 0);

	/* no list at all */
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(xen_config_check_host(&cfg, &none, &diags), -1);
	assert_string_equal(diags.d[0].msg, "an hvm guest needs Xen's device model (qemu-xen): "
					    "no executable file configured (Debian package "
					    "qemu-system-xen)");

	/* PV without QEMU-served devices needs nothing from the host */
	parse_text("name = 'p'\ntype = 'pv'\nkernel = '/k'\n"
		   "disk = [ 'phy:/dev/vg0/p,xvda,w', 'file:/srv/p.img,xvdb,w' ]\n");
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(xen_config_check_host(&cfg, &none, &diags), 0);
	assert_int_equal(diags.n, 0);
	/* ... and the defaults only matter for what needs them */
	assert_int_equal(xen_config_check_host(&cfg, NULL, &diags), 0);

	/* a qcow2 disk is QEMU's (qdisk) */
	parse_text("name = 'p'\ntype = 'pv'\nkernel = '/k'\n"
		   "disk = [ 'phy:/dev/vg0/p,xvda,w', 'format=qcow2,vdev=xvdb,target=/srv/p.q' ]\n");
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(xen_config_check_host(&cfg, &none, &diags), -1);
	assert_int_equal(diags.n_errors, 1);
	assert_string_equal(diag_for("disk")->msg,
			    "disk 2 (xvdb), a qcow2 image, needs Xen's device model (qemu-xen): "
			    "no executable file configured (Debian package qemu-system-xen)");
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(xen_config_check_host(&cfg, &p, &diags), 0);

	/* so is a PVH guest's VNC framebuffer */
	parse_text("name = 'p'\ntype = 'pvh'\nkernel = '/k'\nvnc = 1\n");
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(xen_config_check_host(&cfg, &none, &diags), -1);
	assert_string_equal(diag_for("vnc")->msg,
			    "a VNC framebuffer needs Xen's device model (qemu-xen): no executable "
			    "file configured (Debian package qemu-system-xen)");

	unlink(dm);
	unlink(dm2);
	unlink(noexec);
	unlink(loader);
	unlink(bios);
	assert_int_equal(rmdir(tmpdir), 0);
}

/* ---- JSON round trip through libxl ---------------------------------- */

static void test_json_roundtrip(void **state)
{
	libxl_domain_config back;
	libxl_ctx *ctx = NULL;
	char *json, *json2;

	(void)state;
	assert_int_equal(libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, &tlog), 0);
	parse_text(hvm_seed_text);
	build_ok();
	json = libxl_domain_config_to_json(ctx, &dc);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"type\": \"hvm\""));
	assert_non_null(strstr(json, "\"name\": \"web1\""));
	assert_non_null(strstr(json, "\"target_memkb\": 1048576"));
	assert_non_null(strstr(json, "\"max_vcpus\": 2"));
	assert_non_null(strstr(json, "\"pdev_path\": \"/srv/iso/x.iso\""));
	assert_non_null(strstr(json, "\"mac\": \"00:16:3e:12:34:56\""));
	assert_non_null(strstr(json, "\"nictype\": \"vif_ioemu\""));
	assert_non_null(strstr(json, "\"on_crash\": \"restart\""));
	assert_non_null(strstr(json, "\"device_model_version\": \"qemu_xen\""));
	assert_non_null(strstr(json, "\"claim_mode\": \"True\""));

	/* libxl reads back what it wrote, and writes the same again */
	libxl_domain_config_init(&back);
	assert_int_equal(libxl_domain_config_from_json(ctx, &back, json), 0);
	json2 = libxl_domain_config_to_json(ctx, &back);
	assert_non_null(json2);
	assert_string_equal(json, json2);
	libxl_domain_config_dispose(&dc);
	dc = back; /* the read-back config passes the same field checks */
	assert_hvm_seed();
	done();
	free(json);
	free(json2);
	libxl_ctx_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pvh_testguest),
		cmocka_unit_test(test_pv_kernel_ramdisk_extra_root),
		cmocka_unit_test(test_hvm_seed_style),
		cmocka_unit_test(test_seed_winxp),
		cmocka_unit_test(test_seed_openbsd),
		cmocka_unit_test(test_xl_examples),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_memory_vcpus),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_hvm_cdrom_qdisk),
		cmocka_unit_test(test_xl_conf_defaults),
		cmocka_unit_test(test_vmlab_guest_files),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_default_mac),
		cmocka_unit_test(test_check_host),
		cmocka_unit_test(test_json_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

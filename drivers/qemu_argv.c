#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/qemu_argv.h"
#include "lib/fsutil.h"

/* What every emitter gets. */
struct argv_ctx {
	const struct guest_cfg *cfg;
	const struct qemu_argv_opts *opts;
	struct qemu_argv *out;
	struct guestcfg_diags *diags;
	int errors;
	bool overflow;
};

static void argv_error(struct argv_ctx *c, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void argv_error(struct argv_ctx *c, const char *key, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->errors++;
	guestcfg_diag_add(c->diags, DIAG_ERROR, 0, key, "%s", msg);
}

static void arg(struct argv_ctx *c, const char *s)
{
	char *dup;

	if (c->out->argc >= QEMU_ARGV_MAX) {
		if (!c->overflow)
			argv_error(c, "", "more than %d QEMU arguments", QEMU_ARGV_MAX);
		c->overflow = true;
		return;
	}
	dup = strdup(s);
	if (!dup) {
		argv_error(c, "", "out of memory");
		return;
	}
	c->out->argv[c->out->argc++] = dup;
	c->out->argv[c->out->argc] = NULL;
}

static void argf(struct argv_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void argf(struct argv_ctx *c, const char *fmt, ...)
{
	char buf[3 * PATH_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		argv_error(c, "", "QEMU argument too long");
		return;
	}
	arg(c, buf);
}

/* QEMU's option syntax (key=value,...) escapes a ',' inside a value as
 * ",,".  Every free-form value that goes into such an option goes through
 * here; out must hold 2 * strlen(s) + 1. */
static void opt_escape(char *out, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 2 < len; s++) {
		out[o++] = *s;
		if (*s == ',')
			out[o++] = ',';
	}
	out[o] = '\0';
}

/* Append to an option string; on truncation *n ends at len or above. */
static void optcat(char *buf, size_t len, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void optcat(char *buf, size_t len, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (*n >= len)
		return;
	va_start(ap, fmt);
	k = vsnprintf(buf + *n, len - *n, fmt, ap);
	va_end(ap);
	*n = k < 0 ? len : *n + (size_t)k;
}

static bool all_chars(const char *s, const char *extra)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return false;
	return true;
}

int qemu_path(char *buf, size_t len, const char *run_dir, const char *name, const char *suffix)
{
	return fs_path(buf, len, "%s/%s%s", run_dir, name, suffix);
}

/* xl vif model → QEMU device.  xl passes model= through to QEMU, so both
 * spellings of virtio are accepted. */
static const struct {
	const char *xl;
	const char *qemu;
} nic_models[] = {
	{ "", "e1000" },
	{ "e1000", "e1000" },
	{ "rtl8139", "rtl8139" },
	{ "pcnet", "pcnet" },
	{ "ne2k_pci", "ne2k_pci" },
	{ "virtio", "virtio-net-pci" },
	{ "virtio-net", "virtio-net-pci" },
	{ "virtio-net-pci", "virtio-net-pci" },
};

const char *qemu_nic_model(const char *xl_model)
{
	size_t i;

	for (i = 0; i < sizeof(nic_models) / sizeof(nic_models[0]); i++)
		if (strcmp(nic_models[i].xl, xl_model) == 0)
			return nic_models[i].qemu;
	return NULL;
}

/* xl disk format → QEMU block driver. */
static const char *disk_format(const char *xl)
{
	static const struct {
		const char *xl;
		const char *qemu;
	} formats[] = {
		{ "", "raw" },	       { "raw", "raw" },   { "qcow", "qcow" },
		{ "qcow2", "qcow2" }, { "qed", "qed" },   { "vhd", "vpc" },
		{ "vmdk", "vmdk" },   { "vdi", "vdi" },   { "vhdx", "vhdx" },
	};
	size_t i;

	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(formats[i].xl, xl) == 0)
			return formats[i].qemu;
	return NULL;
}

bool qemu_cmdline_matches(const char *cmdline, size_t len, const char *name)
{
	size_t nlen = strlen(name), i = 0;
	bool after_name = false;

	if (nlen == 0)
		return false;
	while (i < len) {
		const char *a = cmdline + i;
		size_t alen = strnlen(a, len - i);

		if (after_name && alen >= nlen && memcmp(a, name, nlen) == 0 &&
		    (alen == nlen || a[nlen] == ','))
			return true;
		after_name = alen == 5 && memcmp(a, "-name", 5) == 0;
		i += alen + 1;
	}
	return false;
}

/* ---- the table's emitters, in command-line order ---------------------- */

/* -name first: hagent finds its QEMU processes by it (attach). */
static void emit_name(struct argv_ctx *c)
{
	if (!guest_name_valid(c->cfg->name)) {
		argv_error(c, "name", "'%s' is not a valid guest name", c->cfg->name);
		return;
	}
	arg(c, "-name");
	argf(c, "%s,debug-threads=on", c->cfg->name);
}

static void emit_base(struct argv_ctx *c)
{
	const char *accel = c->opts->accel ? c->opts->accel : "tcg";

	if (strcmp(accel, "kvm") != 0 && strcmp(accel, "tcg") != 0) {
		argv_error(c, "", "accelerator '%s' is neither kvm nor tcg", accel);
		return;
	}
	arg(c, "-nodefaults");
	arg(c, "-no-user-config");
	arg(c, "-accel");
	arg(c, accel);
}

/* type (and acpi): every type runs on the pc machine; pv/pvh only differ by
 * booting a kernel directly. */
static void emit_machine(struct argv_ctx *c)
{
	arg(c, "-machine");
	arg(c, c->cfg->acpi ? "pc" : "pc,acpi=off");
	if (c->cfg->type != GT_HVM && !c->cfg->kernel[0])
		argv_error(c, "kernel", "type %s needs a kernel for the qemu driver",
			   c->cfg->type == GT_PV ? "pv" : "pvh");
}

/* kernel, ramdisk, cmdline: direct boot.  -kernel/-initrd/-append take their
 * value verbatim (no option syntax), but a multiboot -initrd is a
 * comma-separated module list, so a ',' in the ramdisk path is refused. */
static void emit_kernel(struct argv_ctx *c)
{
	if (!c->cfg->kernel[0]) {
		if (c->cfg->ramdisk[0])
			argv_error(c, "ramdisk", "ramdisk without kernel");
		return;
	}
	arg(c, "-kernel");
	arg(c, c->cfg->kernel);
	if (c->cfg->ramdisk[0]) {
		if (strchr(c->cfg->ramdisk, ','))
			argv_error(c, "ramdisk", "a ',' in the ramdisk path is not supported");
		arg(c, "-initrd");
		arg(c, c->cfg->ramdisk);
	}
	if (c->cfg->cmdline[0]) {
		arg(c, "-append");
		arg(c, c->cfg->cmdline);
	}
}

/* memory, maxmem: QEMU gets maxmem, the balloon brings the guest down to
 * memory after start (qemu.c). */
static void emit_memory(struct argv_ctx *c)
{
	long mem = c->cfg->memory_mib, max = c->cfg->maxmem_mib;

	if (mem <= 0 || mem > 16L * 1024 * 1024) {
		argv_error(c, "memory", "%ld MiB is out of range", mem);
		return;
	}
	if (max <= 0)
		max = mem;
	if (max < mem) {
		argv_error(c, "maxmem", "maxmem (%ld MiB) is below memory (%ld MiB)", max, mem);
		return;
	}
	if (max > 16L * 1024 * 1024) {
		argv_error(c, "maxmem", "%ld MiB is out of range", max);
		return;
	}
	arg(c, "-m");
	argf(c, "size=%ldM", max);
}

static void emit_vcpus(struct argv_ctx *c)
{
	if (c->cfg->vcpus < 1 || c->cfg->vcpus > 255) {
		argv_error(c, "vcpus", "%d is out of range (1-255)", c->cfg->vcpus);
		return;
	}
	arg(c, "-smp");
	argf(c, "%d", c->cfg->vcpus);
}

/* boot: an hvm guest without a kernel boots from devices; xl's default is
 * "cd" and its letters are a (floppy), c (disk), d (cdrom), n (network). */
static void emit_boot(struct argv_ctx *c)
{
	const char *order = c->cfg->boot[0] ? c->cfg->boot : "cd";

	if (c->cfg->boot[0] && strspn(c->cfg->boot, "acdn") != strlen(c->cfg->boot)) {
		argv_error(c, "boot", "'%s': expected letters among a, c, d, n", c->cfg->boot);
		return;
	}
	if (c->cfg->type != GT_HVM || c->cfg->kernel[0])
		return;
	arg(c, "-boot");
	argf(c, "order=%s", order);
}

/* A vdev name: hd[a-d] is IDE (index 0-3, as xl), xvd/vd/sd + letters is
 * virtio-blk.  Returns the IDE index, -2 for virtio, -1 when unsupported. */
static int disk_vdev(const char *vdev)
{
	const char *letters;

	if (strncmp(vdev, "hd", 2) == 0) {
		if (vdev[2] >= 'a' && vdev[2] <= 'd' && vdev[3] == '\0')
			return vdev[2] - 'a';
		return -1;
	}
	if (strncmp(vdev, "xvd", 3) == 0)
		letters = vdev + 3;
	else if (strncmp(vdev, "vd", 2) == 0 || strncmp(vdev, "sd", 2) == 0)
		letters = vdev + 2;
	else
		return -1;
	if (!*letters || strspn(letters, "abcdefghijklmnopqrstuvwxyz") != strlen(letters) ||
	    strlen(letters) > 2)
		return -1;
	return -2;
}

/* disk: -drive with an explicit protocol driver (file.driver=file or
 * host_device), so a target such as "nbd:..." or "json:{...}" is a file
 * name, never a protocol.  A writable disk stops the guest on an I/O error
 * (werror/rerror=stop) so hagentd sees BLOCK_IO_ERROR and decides. */
static void emit_disks(struct argv_ctx *c)
{
	char esc[2 * PATH_MAX + 1], opt[3 * PATH_MAX];
	int i, j;

	for (i = 0; i < c->cfg->n_disks; i++) {
		const struct guest_disk *d = &c->cfg->disks[i];
		int idx = disk_vdev(d->vdev);
		const char *fmt = disk_format(d->format);
		const char *proto;
		size_t n;

		if (idx == -1) {
			argv_error(c, "disk", "vdev '%s' is not supported (hda-hdd, xvdX, vdX, sdX)",
				   d->vdev);
			continue;
		}
		for (j = 0; j < i; j++)
			if (strcmp(c->cfg->disks[j].vdev, d->vdev) == 0)
				break;
		if (j < i) {
			argv_error(c, "disk", "vdev '%s' is used twice", d->vdev);
			continue;
		}
		if (!fmt) {
			argv_error(c, "disk", "format '%s' is not supported", d->format);
			continue;
		}
		if (d->cdrom && idx < 0) {
			argv_error(c, "disk", "cdrom '%s' must be an IDE vdev (hda-hdd)", d->vdev);
			continue;
		}
		if (!d->cdrom && !d->target[0]) {
			argv_error(c, "disk", "vdev '%s' has no target", d->vdev);
			continue;
		}
		n = 0;
		if (idx >= 0)
			optcat(opt, sizeof(opt), &n, "if=ide,index=%d,id=%s", idx, d->vdev);
		else
			optcat(opt, sizeof(opt), &n, "if=virtio,id=%s", d->vdev);
		if (d->cdrom)
			optcat(opt, sizeof(opt), &n, ",media=cdrom");
		if (d->target[0]) {
			if (d->backend == DISK_PHY)
				proto = d->cdrom ? "host_cdrom" : "host_device";
			else
				proto = "file";
			opt_escape(esc, sizeof(esc), d->target);
			optcat(opt, sizeof(opt), &n, ",format=%s,file.driver=%s,file.filename=%s",
			       fmt, proto, esc);
		}
		if (d->readonly || d->cdrom)
			optcat(opt, sizeof(opt), &n, ",readonly=on");
		else
			optcat(opt, sizeof(opt), &n, ",werror=stop,rerror=stop");
		if (n >= sizeof(opt)) {
			argv_error(c, "disk", "vdev '%s': option too long", d->vdev);
			continue;
		}
		arg(c, "-drive");
		arg(c, opt);
	}
}

static bool mac_valid(const char *mac)
{
	int i;

	if (strlen(mac) != 17)
		return false;
	for (i = 0; i < 17; i++) {
		if (i % 3 == 2 ? mac[i] != ':' : !isxdigit((unsigned char)mac[i]))
			return false;
	}
	return true;
}

/* vif: a bridge uses QEMU's bridge helper (-netdev bridge runs
 * /usr/lib/qemu/qemu-bridge-helper, which creates the tap and needs
 * "allow BRIDGE" in /etc/qemu/bridge.conf).  No bridge: a NIC needs some
 * backend, so it gets a user-mode one with restrict=on (no host access). */
static void emit_vifs(struct argv_ctx *c)
{
	int i;

	for (i = 0; i < c->cfg->n_vifs; i++) {
		const struct guest_vif *v = &c->cfg->vifs[i];
		const char *model = qemu_nic_model(v->model);
		bool bad = false;

		if (!model) {
			argv_error(c, "vif", "model '%s' is not supported (e1000, rtl8139, pcnet, "
					     "ne2k_pci, virtio)", v->model);
			bad = true;
		}
		if (v->mac[0] && !mac_valid(v->mac)) {
			argv_error(c, "vif", "mac '%s' is not xx:xx:xx:xx:xx:xx", v->mac);
			bad = true;
		}
		if (v->bridge[0] && (!all_chars(v->bridge, "_.-") || strlen(v->bridge) > 15)) {
			argv_error(c, "vif", "bridge '%s' is not a valid interface name", v->bridge);
			bad = true;
		}
		if (bad)
			continue;
		arg(c, "-netdev");
		if (v->bridge[0])
			argf(c, "bridge,id=net%d,br=%s", i, v->bridge);
		else
			argf(c, "user,id=net%d,restrict=on", i);
		arg(c, "-device");
		if (v->mac[0])
			argf(c, "%s,netdev=net%d,id=vif%d,mac=%s", model, i, i, v->mac);
		else
			argf(c, "%s,netdev=net%d,id=vif%d", model, i, i);
	}
}

/* vnc, vnclisten, vncdisplay, vncunused: as xl, vncunused searches upward
 * from the display (QEMU's to=).  vnclisten may carry ":DISPLAY" itself. */
static void emit_vnc(struct argv_ctx *c)
{
	const char *listen = c->cfg->vnclisten[0] ? c->cfg->vnclisten : "127.0.0.1";
	const char *to = c->cfg->vncunused ? ",to=99" : "";

	if (!c->cfg->vnc) {
		arg(c, "-display");
		arg(c, "none");
		return;
	}
	if (!all_chars(listen, ".:-[]")) {
		argv_error(c, "vnclisten", "'%s' is not an address", listen);
		return;
	}
	arg(c, "-vga");
	arg(c, "std");
	arg(c, "-vnc");
	if (strchr(listen, ':') && listen[0] != '[')
		argf(c, "%s%s", listen, to);
	else
		argf(c, "%s:%d%s", listen, c->cfg->vncdisplay >= 0 ? c->cfg->vncdisplay : 0, to);
}

/* RUN_DIR/NAME[TAG]SUFFIX: an incoming guest's files carry a tag until it
 * is the guest (qemu_migrate.c renames them). */
static int run_path(struct argv_ctx *c, char *buf, size_t len, const char *suffix)
{
	return fs_path(buf, len, "%s/%s%s%s", c->opts->run_dir, c->cfg->name,
		       c->opts->file_tag ? c->opts->file_tag : "", suffix);
}

/* The socket chardevs: an inherited listening socket (fd=) or, without
 * one, a path QEMU binds itself. */
static void socket_chardev(struct argv_ctx *c, const char *id, int fd, const char *suffix,
			   const char *extra)
{
	char path[PATH_MAX], esc[2 * PATH_MAX + 1];

	if (fd >= 0) {
		argf(c, "socket,id=%s,fd=%d,server=on,wait=off%s", id, fd, extra);
		return;
	}
	if (run_path(c, path, sizeof(path), suffix) < 0) {
		argv_error(c, "", "run_dir path too long");
		return;
	}
	opt_escape(esc, sizeof(esc), path);
	argf(c, "socket,id=%s,path=%s,server=on,wait=off%s", id, esc, extra);
}

/* serial: the first port always goes to hagent's console socket, and
 * everything the guest writes is also appended to NAME.console.log. */
static void emit_serial(struct argv_ctx *c)
{
	char path[PATH_MAX], esc[2 * PATH_MAX + 1], extra[2 * PATH_MAX + 32];

	if (run_path(c, path, sizeof(path), QEMU_SUFFIX_CONSOLE) < 0) {
		argv_error(c, "", "run_dir path too long");
		return;
	}
	opt_escape(esc, sizeof(esc), path);
	snprintf(extra, sizeof(extra), ",logfile=%s,logappend=on", esc);
	arg(c, "-chardev");
	socket_chardev(c, "ser0", c->opts->serial_fd, QEMU_SUFFIX_SERIAL, extra);
	arg(c, "-serial");
	arg(c, "chardev:ser0");
}

static void emit_usb(struct argv_ctx *c)
{
	static const struct {
		const char *xl;
		const char *qemu;
	} usb[] = { { "tablet", "usb-tablet" }, { "mouse", "usb-mouse" }, { "keyboard", "usb-kbd" } };
	size_t i;

	if (!c->cfg->usbdevice[0])
		return;
	for (i = 0; i < sizeof(usb) / sizeof(usb[0]); i++) {
		if (strcmp(c->cfg->usbdevice, usb[i].xl) == 0) {
			arg(c, "-usb");
			arg(c, "-device");
			arg(c, usb[i].qemu);
			return;
		}
	}
	argv_error(c, "usbdevice", "'%s' is not supported (tablet, mouse, keyboard)",
		   c->cfg->usbdevice);
}

static void emit_rtc(struct argv_ctx *c)
{
	arg(c, "-rtc");
	arg(c, c->cfg->localtime ? "base=localtime" : "base=utc");
}

/* on_*: QEMU never decides a guest's fate on its own.  A panic or a
 * poweroff pauses it (hagentd applies on_crash/on_poweroff); a reboot
 * becomes a paused shutdown unless on_reboot is restart, in which case QEMU
 * resets in place (cheapest, and what restart means). */
static void emit_actions(struct argv_ctx *c)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{ "on_poweroff", offsetof(struct guest_cfg, on_poweroff) },
		{ "on_reboot", offsetof(struct guest_cfg, on_reboot) },
		{ "on_crash", offsetof(struct guest_cfg, on_crash) },
		{ "on_watchdog", offsetof(struct guest_cfg, on_watchdog) },
	};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const enum guest_action *a =
			(const enum guest_action *)((const char *)c->cfg + keys[i].off);

		if (*a == GA_SOFT_RESET)
			argv_error(c, keys[i].key, "qemu driver cannot soft-reset; use restart");
	}
	arg(c, "-device");
	arg(c, "pvpanic");
	arg(c, "-action");
	arg(c, "panic=pause");
	arg(c, "-action");
	arg(c, "shutdown=pause");
	if (c->cfg->on_reboot != GA_RESTART) {
		arg(c, "-action");
		arg(c, "reboot=shutdown");
	}
}

/* on_watchdog present: give the guest an ib700 (ISA, any OS knows it). */
static void emit_watchdog(struct argv_ctx *c)
{
	if (!c->cfg->on_watchdog_set)
		return;
	arg(c, "-device");
	arg(c, "ib700");
	arg(c, "-action");
	arg(c, "watchdog=pause");
}

/* The balloon serves memory < maxmem and mem-set. */
static void emit_balloon(struct argv_ctx *c)
{
	arg(c, "-device");
	arg(c, "virtio-balloon");
}

static void emit_control(struct argv_ctx *c)
{
	char path[PATH_MAX];

	if (run_path(c, path, sizeof(path), QEMU_SUFFIX_PID) < 0) {
		argv_error(c, "", "run_dir path too long");
		return;
	}
	arg(c, "-pidfile");
	arg(c, path);
	arg(c, "-chardev");
	socket_chardev(c, "qmp", c->opts->qmp_fd, QEMU_SUFFIX_QMP, "");
	arg(c, "-mon");
	arg(c, "chardev=qmp,mode=control");
	if (c->opts->incoming) {
		arg(c, "-S");
		arg(c, "-incoming");
		arg(c, "defer");
	}
	if (c->opts->observer) {
		arg(c, "-chardev");
		socket_chardev(c, "qmpobs", -1, QEMU_SUFFIX_OBSERVE, "");
		arg(c, "-mon");
		arg(c, "chardev=qmpobs,mode=control");
	}
}

/* One entry per xl key (or group of keys read together); "" = always. */
static const struct {
	const char *keys;
	void (*emit)(struct argv_ctx *c);
} argv_table[] = {
	{ "name", emit_name },
	{ "", emit_base },
	{ "type acpi", emit_machine },
	{ "kernel ramdisk cmdline", emit_kernel },
	{ "memory maxmem", emit_memory },
	{ "vcpus", emit_vcpus },
	{ "boot", emit_boot },
	{ "disk", emit_disks },
	{ "vif", emit_vifs },
	{ "vnc vnclisten vncdisplay vncunused", emit_vnc },
	{ "serial", emit_serial },
	{ "usbdevice", emit_usb },
	{ "localtime", emit_rtc },
	{ "on_poweroff on_reboot on_crash on_watchdog", emit_actions },
	{ "on_watchdog", emit_watchdog },
	{ "", emit_balloon },
	{ "", emit_control },
};

int qemu_argv_build(const struct guest_cfg *cfg, const struct qemu_argv_opts *opts,
		    struct qemu_argv *out, struct guestcfg_diags *diags)
{
	struct argv_ctx c = { .cfg = cfg, .opts = opts, .out = out, .diags = diags };
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!opts->run_dir || !opts->binary) {
		errno = EINVAL;
		return -1;
	}
	arg(&c, opts->binary);
	for (i = 0; i < sizeof(argv_table) / sizeof(argv_table[0]); i++)
		argv_table[i].emit(&c);
	if (c.errors) {
		qemu_argv_free(out);
		errno = EINVAL;
		return -1;
	}
	return 0;
}

void qemu_argv_free(struct qemu_argv *a)
{
	int i;

	for (i = 0; i < a->argc; i++)
		free(a->argv[i]);
	memset(a, 0, sizeof(*a));
}

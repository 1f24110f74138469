/* struct guest_cfg → libxl_domain_config, one table entry per xl key (or
 * group of keys read together), in the spirit of qemu_argv.c.  Field names
 * and semantics follow libxl_types.idl and xl's own parser (xl_parse.c) of
 * Xen 4.17, so a file means what it means to xl.
 *
 * Mapped: name, type/builder, kernel, ramdisk, cmdline (or root + extra),
 * memory, maxmem, vcpus, acpi, localtime, disk, vif, vnc, vnclisten,
 * vncdisplay, vncunused, serial, boot, usbdevice, on_poweroff, on_reboot,
 * on_crash, on_watchdog; the device model is always qemu-xen.
 *
 * Deliberately not mapped:
 * - driver (ha_driver) and every other ha_* key: hagent's own, they choose
 *   and steer the driver, libxl never sees them.
 * - source: where the file came from; only used in messages.
 * - on_watchdog_set: the QEMU driver adds a watchdog device when the key is
 *   present; Xen's watchdog is a hypercall every domain has, and libxl acts
 *   on on_watchdog whether or not the key was written.
 * - the disk's backend (phy: / file:): libxlutil drops that prefix for xl
 *   too.  The libxl backend follows the format instead, as libxl itself
 *   picks it on a Linux dom0 (raw → phy, which takes block devices and,
 *   through a loop device, files; qcow/qcow2/vhd/qed and an empty CD-ROM →
 *   qdisk; any CD-ROM of an HVM guest → qdisk, the only backend libxl 4.17
 *   accepts for it: "Backend for CD devices on HVM guests must be Qdisk"),
 *   written out so the configuration is the same on every host.
 * - vif model, serial, boot and usbdevice of PV and PVH guests: there is no
 *   emulated hardware to apply them to (xl ignores them as well); their
 *   console is the PV console.
 * - acpi of PV guests: they have no ACPI.
 * - keys the parser accepts but keeps no value of (uuid, rtc_timeoffset,
 *   device_model_override, vga/stdvga, bootloader, cpus, ...): guest_cfg
 *   has no field for them, so libxl's defaults apply.
 *
 * Choices where xl leaves something to chance or to libxl:
 * - vnc of a PV or PVH guest: a vfb with the vnc settings plus a vkb, as xl
 *   does for PV (xl 4.17 writes a PVH guest's into the HVM union member).
 * - a vif without mac= gets a MAC derived from the guest name and index
 *   (xen_config_default_mac), stable across restarts on any host; xl and
 *   libxl draw a random one.
 * - the uuid is drawn at each build, as xl does at each create.
 * - the device model version is named (qemu-xen) rather than left to libxl,
 *   which would fall back to qemu-xen-traditional when qemu-xen is missing.
 * - what xl's parse_config_data takes from xl.conf, at xl.conf's defaults:
 *   claim_mode on (the memory is claimed before the domain is built, so a
 *   create on a host short of memory fails at once instead of half way, and
 *   concurrent creates, such as a failover restarting several guests, cannot
 *   overcommit it), run_hotplug_scripts on (libxl runs the vif and block
 *   scripts itself; no udev rules needed).
 *
 * No libxl ctx is needed: libxl_domain_config_init/dispose, the
 * libxl_device_*_init functions, libxl_defbool_set, libxl_bitmap_set and
 * libxl_uuid_generate take none.  libxl_bitmap_alloc and
 * libxl_cpu_bitmap_alloc do take one; in 4.17 the first only uses it for its
 * allocation-failure path and the second asks the hypervisor for the CPU
 * count when given 0, so neither is called: avail_vcpus is filled by hand
 * (libxl.h documents libxl_bitmap as {size in bytes, map}, and
 * libxl_bitmap_dispose releases map with free()). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/qemu_argv.h"
#include "drivers/xen_config.h"

#include <libxl_utils.h> /* libxl_bitmap_set */

#define XEN_MEMORY_MAX_MIB (16L * 1024 * 1024) /* as the parser's bound */
#define XEN_VCPUS_MAX 128                      /* HVM_MAX_VCPUS of Xen 4.17 */

/* Debian's Xen 4.17 private directory (pkg-config xenlight: 4.17). */
#ifndef XEN_PRIVATE_DIR
#define XEN_PRIVATE_DIR "/usr/lib/xen-4.17"
#endif

/* ---- guest types ---------------------------------------------------- */

static const struct xen_type {
	enum guest_type type;
	const char *name;
	libxl_domain_type domain_type;
	libxl_nic_type nictype;  /* HVM: emulated NIC plus PV; PV/PVH: PV only */
	libxl_disk_backend cdrom_backend; /* forced for CD-ROMs; UNKNOWN = by format */
	bool emulated;           /* QEMU emulates a PC: b_info.u.hvm applies */
	bool acpi;               /* the acpi key applies */
	bool needs_kernel;       /* no firmware to boot from */
} xen_types[] = {
	/* an HVM guest's CD-ROM is QEMU's IDE drive: libxl 4.17 refuses any
	 * backend but qdisk for it */
	{ GT_HVM, "hvm", LIBXL_DOMAIN_TYPE_HVM, LIBXL_NIC_TYPE_VIF_IOEMU,
	  LIBXL_DISK_BACKEND_QDISK, true, true, false },
	{ GT_PVH, "pvh", LIBXL_DOMAIN_TYPE_PVH, LIBXL_NIC_TYPE_VIF, LIBXL_DISK_BACKEND_UNKNOWN,
	  false, true, true },
	{ GT_PV, "pv", LIBXL_DOMAIN_TYPE_PV, LIBXL_NIC_TYPE_VIF, LIBXL_DISK_BACKEND_UNKNOWN,
	  false, false, true },
};

static const struct xen_type *xen_type_find(enum guest_type t)
{
	size_t i;

	for (i = 0; i < sizeof(xen_types) / sizeof(xen_types[0]); i++)
		if (xen_types[i].type == t)
			return &xen_types[i];
	return NULL;
}

/* ---- on_* actions --------------------------------------------------- */

static const libxl_action_on_shutdown xen_actions[GA__COUNT] = {
	[GA_DESTROY] = LIBXL_ACTION_ON_SHUTDOWN_DESTROY,
	[GA_RESTART] = LIBXL_ACTION_ON_SHUTDOWN_RESTART,
	[GA_RENAME_RESTART] = LIBXL_ACTION_ON_SHUTDOWN_RESTART_RENAME,
	[GA_PRESERVE] = LIBXL_ACTION_ON_SHUTDOWN_PRESERVE,
	[GA_COREDUMP_DESTROY] = LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_DESTROY,
	[GA_COREDUMP_RESTART] = LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_RESTART,
	[GA_SOFT_RESET] = LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET,
};

static const struct {
	const char *key;
	size_t cfg_off; /* enum guest_action in struct guest_cfg */
	size_t dc_off;  /* libxl_action_on_shutdown in libxl_domain_config */
} xen_action_keys[] = {
	{ "on_poweroff", offsetof(struct guest_cfg, on_poweroff),
	  offsetof(libxl_domain_config, on_poweroff) },
	{ "on_reboot", offsetof(struct guest_cfg, on_reboot),
	  offsetof(libxl_domain_config, on_reboot) },
	{ "on_crash", offsetof(struct guest_cfg, on_crash),
	  offsetof(libxl_domain_config, on_crash) },
	{ "on_watchdog", offsetof(struct guest_cfg, on_watchdog),
	  offsetof(libxl_domain_config, on_watchdog) },
};

/* ---- disks ---------------------------------------------------------- */

static const struct {
	const char *name;          /* guest_cfg's format ("" = raw) */
	libxl_disk_format format;
	libxl_disk_backend backend; /* what libxl picks on Linux for it */
} xen_disk_formats[] = {
	{ "", LIBXL_DISK_FORMAT_RAW, LIBXL_DISK_BACKEND_PHY },
	{ "raw", LIBXL_DISK_FORMAT_RAW, LIBXL_DISK_BACKEND_PHY },
	{ "qcow", LIBXL_DISK_FORMAT_QCOW, LIBXL_DISK_BACKEND_QDISK },
	{ "qcow2", LIBXL_DISK_FORMAT_QCOW2, LIBXL_DISK_BACKEND_QDISK },
	{ "vhd", LIBXL_DISK_FORMAT_VHD, LIBXL_DISK_BACKEND_QDISK },
	{ "qed", LIBXL_DISK_FORMAT_QED, LIBXL_DISK_BACKEND_QDISK },
};
#define XEN_DISK_FORMAT_LIST "raw, qcow, qcow2, vhd, qed"

/* An empty CD-ROM drive: only QEMU can have no medium. */
static const struct {
	libxl_disk_format format;
	libxl_disk_backend backend;
} xen_disk_empty = { LIBXL_DISK_FORMAT_EMPTY, LIBXL_DISK_BACKEND_QDISK };

static int xen_disk_format_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(xen_disk_formats) / sizeof(xen_disk_formats[0]); i++)
		if (strcmp(xen_disk_formats[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* libxl's virtual disk names: xvd, hd or sd, 1-3 letters, an optional
 * partition number ("xvda", "hdc", "sdb", "xvdaa", "xvda1"). */
static bool vdev_valid(const char *v)
{
	static const char *const prefixes[] = { "xvd", "hd", "sd" };
	size_t i, letters, digits;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(v, prefixes[i], strlen(prefixes[i])) == 0)
			break;
	if (i == sizeof(prefixes) / sizeof(prefixes[0]))
		return false;
	v += strlen(prefixes[i]);
	letters = strspn(v, "abcdefghijklmnopqrstuvwxyz");
	digits = strspn(v + letters, "0123456789");
	return letters >= 1 && letters <= 3 && digits <= 2 && v[letters + digits] == '\0' &&
	       !(digits > 0 && v[letters] == '0');
}

/* ---- vifs ----------------------------------------------------------- */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Exactly xx:xx:xx:xx:xx:xx (hex, either case). */
static int mac_parse(const char *s, libxl_mac mac)
{
	int i, hi, lo;

	if (strlen(s) != 17)
		return -1;
	for (i = 0; i < 6; i++) {
		hi = hexval(s[3 * i]);
		lo = hexval(s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -1;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void xen_config_default_mac(const char *name, int index, libxl_mac mac)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	const unsigned char *p;
	int i;

	for (p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	h *= 16777619u; /* a NUL byte: the name's end */
	for (i = 0; i < 4; i++)
		h = (h ^ ((unsigned)index >> (8 * (3 - i)) & 0xff)) * 16777619u;
	mac[0] = 0x00;
	mac[1] = 0x16;
	mac[2] = 0x3e;
	mac[3] = (uint8_t)(h >> 16 & 0x7f); /* as libxl: the top bit stays clear */
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

/* ---- translation context -------------------------------------------- */

struct xen_ctx {
	const struct guest_cfg *cfg;
	libxl_domain_config *dc;
	const struct xen_type *t;   /* NULL when the type is invalid */
	struct guestcfg_diags *diags; /* every error, or NULL */
	struct guestcfg_diag first; /* the first error */
	int errors;
};

static void xen_error(struct xen_ctx *c, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void xen_error(struct xen_ctx *c, const char *key, const char *fmt, ...)
{
	char msg[sizeof(c->first.msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->errors++ == 0) {
		c->first.level = DIAG_ERROR;
		c->first.line = 0;
		snprintf(c->first.key, sizeof(c->first.key), "%s", key);
		memcpy(c->first.msg, msg, sizeof(msg));
	}
	if (c->diags)
		guestcfg_diag_add(c->diags, DIAG_ERROR, 0, key, "%s", msg);
}

/* strdup into a libxl field (libxl frees it with free()). */
static char *xdup(struct xen_ctx *c, const char *key, const char *s)
{
	char *d = strdup(s);

	if (!d)
		xen_error(c, key, "out of memory");
	return d;
}

/* Array of n libxl devices, each initialised as it is counted in, so a
 * failure half-way leaves something libxl_domain_config_dispose handles. */
static void *dev_array(struct xen_ctx *c, const char *key, size_t n, size_t size)
{
	void *a = calloc(n, size);

	if (!a)
		xen_error(c, key, "out of memory");
	return a;
}

/* ---- the table's mappers -------------------------------------------- */

static void map_name(struct xen_ctx *c)
{
	if (!guest_name_valid(c->cfg->name)) {
		xen_error(c, "name", "'%s' is not a valid guest name", c->cfg->name);
		return;
	}
	c->dc->c_info.name = xdup(c, "name", c->cfg->name);
	libxl_uuid_generate(&c->dc->c_info.uuid);
}

/* Before any other build-info field: init_type selects the union member. */
static void map_type(struct xen_ctx *c)
{
	c->t = xen_type_find(c->cfg->type);
	if (!c->t) {
		xen_error(c, "type", "guest type %d is none of hvm, pvh, pv", (int)c->cfg->type);
		return;
	}
	c->dc->c_info.type = c->t->domain_type;
	libxl_domain_build_info_init_type(&c->dc->b_info, c->t->domain_type);
}

/* kernel, ramdisk, cmdline: the build-info fields libxl 4.17 reads for
 * every type (u.pv.* are deprecated).  An HVM guest without a kernel boots
 * its firmware (hvmloader + SeaBIOS, libxl's default). */
static void map_kernel(struct xen_ctx *c)
{
	libxl_domain_build_info *b = &c->dc->b_info;

	if (!c->cfg->kernel[0]) {
		if (c->t && c->t->needs_kernel)
			xen_error(c, "kernel", "a %s guest needs a kernel (bootloader= is not "
					       "supported)", c->t->name);
		if (c->cfg->ramdisk[0])
			xen_error(c, "ramdisk", "ramdisk without kernel");
		return;
	}
	b->kernel = xdup(c, "kernel", c->cfg->kernel);
	if (c->cfg->ramdisk[0])
		b->ramdisk = xdup(c, "ramdisk", c->cfg->ramdisk);
	if (c->cfg->cmdline[0])
		b->cmdline = xdup(c, "cmdline", c->cfg->cmdline);
}

/* memory, maxmem: libxl counts KiB.  maxmem above memory is ballooning
 * (PV, PVH) or populate-on-demand (HVM), as with xl. */
static void map_memory(struct xen_ctx *c)
{
	long mem = c->cfg->memory_mib, max = c->cfg->maxmem_mib;

	if (mem <= 0 || mem > XEN_MEMORY_MAX_MIB) {
		xen_error(c, "memory", "%ld MiB is out of range (1-%ld)", mem, XEN_MEMORY_MAX_MIB);
		return;
	}
	if (max <= 0)
		max = mem;
	if (max < mem) {
		xen_error(c, "maxmem", "maxmem (%ld MiB) is below memory (%ld MiB)", max, mem);
		return;
	}
	if (max > XEN_MEMORY_MAX_MIB) {
		xen_error(c, "maxmem", "%ld MiB is out of range (1-%ld)", max, XEN_MEMORY_MAX_MIB);
		return;
	}
	c->dc->b_info.target_memkb = (uint64_t)mem * 1024;
	c->dc->b_info.max_memkb = (uint64_t)max * 1024;
}

/* vcpus: max_vcpus and the bitmap of those online at boot (all of them, as
 * xl when maxvcpus is not given).  The bitmap is built by hand: see the top
 * of the file. */
static void map_vcpus(struct xen_ctx *c)
{
	libxl_bitmap *avail = &c->dc->b_info.avail_vcpus;
	int i, n = c->cfg->vcpus;

	if (n < 1 || n > XEN_VCPUS_MAX) {
		xen_error(c, "vcpus", "%d is out of range (1-%d)", n, XEN_VCPUS_MAX);
		return;
	}
	libxl_bitmap_dispose(avail);
	avail->map = calloc(((size_t)n + 7) / 8, 1);
	if (!avail->map) {
		xen_error(c, "vcpus", "out of memory");
		return;
	}
	avail->size = ((uint32_t)n + 7) / 8;
	for (i = 0; i < n; i++)
		libxl_bitmap_set(avail, i);
	c->dc->b_info.max_vcpus = n;
}

/* acpi (HVM, PVH) and localtime (all: PV guests read the wallclock). */
static void map_platform(struct xen_ctx *c)
{
	libxl_defbool_set(&c->dc->b_info.localtime, c->cfg->localtime);
	if (c->t && c->t->acpi)
		libxl_defbool_set(&c->dc->b_info.acpi, c->cfg->acpi);
}

/* What xl's parse_config_data copies from xl.conf, at its defaults: see
 * the top of the file. */
static void map_toolstack(struct xen_ctx *c)
{
	libxl_defbool_set(&c->dc->b_info.claim_mode, true);
	libxl_defbool_set(&c->dc->c_info.run_hotplug_scripts, true);
}

/* qemu-xen, at libxl's own path, for every type: it serves HVM guests and
 * the qdisk/vfb backends of PV and PVH ones.  Naming it keeps libxl from
 * falling back to qemu-xen-traditional, which Debian does not ship. */
static void map_device_model(struct xen_ctx *c)
{
	c->dc->b_info.device_model_version = LIBXL_DEVICE_MODEL_VERSION_QEMU_XEN;
}

static void map_disks(struct xen_ctx *c)
{
	const struct guest_cfg *cfg = c->cfg;
	libxl_domain_config *dc = c->dc;
	int i, j;

	if (cfg->n_disks < 0 || cfg->n_disks > GUEST_MAX_DISKS) {
		xen_error(c, "disk", "%d disks (at most %d)", cfg->n_disks, GUEST_MAX_DISKS);
		return;
	}
	if (cfg->n_disks == 0)
		return;
	dc->disks = dev_array(c, "disk", (size_t)cfg->n_disks, sizeof(*dc->disks));
	if (!dc->disks)
		return;
	for (i = 0; i < cfg->n_disks; i++) {
		const struct guest_disk *g = &cfg->disks[i];
		libxl_device_disk *d = &dc->disks[i];
		bool empty = g->cdrom && !g->target[0];
		int f = xen_disk_format_find(g->format);

		libxl_device_disk_init(d);
		dc->num_disks = i + 1;
		if (!vdev_valid(g->vdev)) {
			xen_error(c, "disk", "disk %d: vdev '%s' is not a Xen virtual disk "
					     "(xvdX, hdX, sdX)", i + 1, g->vdev);
			continue;
		}
		for (j = 0; j < i; j++)
			if (strcmp(cfg->disks[j].vdev, g->vdev) == 0)
				break;
		if (j < i) {
			xen_error(c, "disk", "disk %d: vdev '%s' is also disk %d's", i + 1, g->vdev,
				  j + 1);
			continue;
		}
		if (f < 0) {
			xen_error(c, "disk", "disk %d (%s): format '%s' is not supported by Xen "
					     "(" XEN_DISK_FORMAT_LIST ")", i + 1, g->vdev, g->format);
			continue;
		}
		if (!g->cdrom && !g->target[0]) {
			xen_error(c, "disk", "disk %d (%s): no target", i + 1, g->vdev);
			continue;
		}
		d->vdev = xdup(c, "disk", g->vdev);
		if (empty) {
			d->format = xen_disk_empty.format;
			d->backend = xen_disk_empty.backend;
		} else {
			d->pdev_path = xdup(c, "disk", g->target);
			d->format = xen_disk_formats[f].format;
			d->backend = xen_disk_formats[f].backend;
		}
		if (g->cdrom && c->t && c->t->cdrom_backend != LIBXL_DISK_BACKEND_UNKNOWN)
			d->backend = c->t->cdrom_backend;
		/* as libxlutil: a CD-ROM is read-only and removable */
		d->is_cdrom = g->cdrom;
		d->removable = g->cdrom;
		d->readwrite = !(g->readonly || g->cdrom);
	}
}

static void map_vifs(struct xen_ctx *c)
{
	const struct guest_cfg *cfg = c->cfg;
	libxl_domain_config *dc = c->dc;
	int i;

	if (cfg->n_vifs < 0 || cfg->n_vifs > GUEST_MAX_VIFS) {
		xen_error(c, "vif", "%d vifs (at most %d)", cfg->n_vifs, GUEST_MAX_VIFS);
		return;
	}
	if (cfg->n_vifs == 0)
		return;
	dc->nics = dev_array(c, "vif", (size_t)cfg->n_vifs, sizeof(*dc->nics));
	if (!dc->nics)
		return;
	for (i = 0; i < cfg->n_vifs; i++) {
		const struct guest_vif *v = &cfg->vifs[i];
		libxl_device_nic *n = &dc->nics[i];

		libxl_device_nic_init(n);
		dc->num_nics = i + 1;
		n->devid = i; /* vifDOMID.i, as xl numbers them */
		if (!v->mac[0]) {
			xen_config_default_mac(cfg->name, i, n->mac);
		} else if (mac_parse(v->mac, n->mac) < 0) {
			xen_error(c, "vif", "vif %d: mac '%s' is not xx:xx:xx:xx:xx:xx", i + 1, v->mac);
		} else if (n->mac[0] & 1) {
			xen_error(c, "vif", "vif %d: mac %s is a multicast address", i + 1, v->mac);
		} else if (!(n->mac[0] | n->mac[1] | n->mac[2] | n->mac[3] | n->mac[4] | n->mac[5])) {
			xen_error(c, "vif", "vif %d: mac %s would make libxl pick a random one", i + 1,
				  v->mac);
		}
		if (v->bridge[0])
			n->bridge = xdup(c, "vif", v->bridge);  /* else libxl's xenbr0 */
		if (v->ifname[0])
			n->ifname = xdup(c, "vif", v->ifname);
		if (!c->t)
			continue;
		n->nictype = c->t->nictype;
		/* qemu-xen takes the model as a QEMU device name: the QEMU
		 * driver's table applies ("" = libxl's rtl8139). */
		if (c->t->emulated && v->model[0]) {
			const char *dev = qemu_nic_model(v->model);

			if (!dev)
				xen_error(c, "vif", "vif %d: model '%s' is not supported (e1000, "
						    "rtl8139, pcnet, ne2k_pci, virtio)", i + 1, v->model);
			else
				n->model = xdup(c, "vif", dev);
		}
	}
}

static void vnc_fill(struct xen_ctx *c, libxl_vnc_info *vnc)
{
	libxl_defbool_set(&vnc->enable, true);
	if (c->cfg->vnclisten[0])
		vnc->listen = xdup(c, "vnclisten", c->cfg->vnclisten);
	if (c->cfg->vncdisplay >= 0)
		vnc->display = c->cfg->vncdisplay;
	libxl_defbool_set(&vnc->findunused, c->cfg->vncunused);
}

/* vnc*: an HVM guest's display is QEMU's VGA; a PV or PVH guest gets a PV
 * framebuffer and keyboard, as xl gives a PV guest. */
static void map_vnc(struct xen_ctx *c)
{
	libxl_domain_config *dc = c->dc;

	if (!c->t)
		return;
	if (!c->cfg->vnc) {
		if (c->t->emulated)
			libxl_defbool_set(&dc->b_info.u.hvm.vnc.enable, false);
		return;
	}
	/* libxl takes "HOST:DISPLAY" in listen as is: both would conflict */
	if (strchr(c->cfg->vnclisten, ':') && c->cfg->vncdisplay >= 0) {
		xen_error(c, "vncdisplay", "display given both in vnclisten ('%s') and vncdisplay "
					   "(%d)", c->cfg->vnclisten, c->cfg->vncdisplay);
		return;
	}
	if (c->t->emulated) {
		vnc_fill(c, &dc->b_info.u.hvm.vnc);
		return;
	}
	dc->vfbs = dev_array(c, "vnc", 1, sizeof(*dc->vfbs));
	dc->vkbs = dev_array(c, "vnc", 1, sizeof(*dc->vkbs));
	if (dc->vfbs) {
		libxl_device_vfb_init(dc->vfbs);
		dc->num_vfbs = 1;
		dc->vfbs->devid = 0;
		vnc_fill(c, &dc->vfbs->vnc);
	}
	if (dc->vkbs) {
		libxl_device_vkb_init(dc->vkbs);
		dc->num_vkbs = 1;
		dc->vkbs->devid = 0;
	}
}

/* serial, boot, usbdevice: emulated hardware, HVM only. */
static void map_hvm_devices(struct xen_ctx *c)
{
	static const struct {
		const char *cfg;
		const char *xen; /* NULL = no serial port */
	} serials[] = { { "pty", "pty" }, { "none", NULL } };
	static const char *const usbdevices[] = { "tablet", "mouse", "keyboard" };
	libxl_domain_build_info *b = &c->dc->b_info;
	size_t i;

	if (!c->t || !c->t->emulated)
		return;
	for (i = 0; i < sizeof(serials) / sizeof(serials[0]); i++)
		if (strcmp(c->cfg->serial, serials[i].cfg) == 0)
			break;
	if (i == sizeof(serials) / sizeof(serials[0]))
		xen_error(c, "serial", "'%s' is not supported (pty, none)", c->cfg->serial);
	else if (serials[i].xen)
		b->u.hvm.serial = xdup(c, "serial", serials[i].xen);

	if (c->cfg->boot[0]) { /* "" = libxl's "cd" */
		if (strspn(c->cfg->boot, "acdn") != strlen(c->cfg->boot))
			xen_error(c, "boot", "'%s': expected letters among a, c, d, n", c->cfg->boot);
		else
			b->u.hvm.boot = xdup(c, "boot", c->cfg->boot);
	}

	if (!c->cfg->usbdevice[0])
		return;
	for (i = 0; i < sizeof(usbdevices) / sizeof(usbdevices[0]); i++)
		if (strcmp(c->cfg->usbdevice, usbdevices[i]) == 0)
			break;
	if (i == sizeof(usbdevices) / sizeof(usbdevices[0]))
		xen_error(c, "usbdevice", "'%s' is not supported (tablet, mouse, keyboard)",
			  c->cfg->usbdevice);
	else
		b->u.hvm.usbdevice = xdup(c, "usbdevice", usbdevices[i]);
}

/* on_*: libxl keeps them for the toolstack (hagentd) to act on; on_soft_reset
 * has no guest_cfg field and gets xl's default. */
static void map_actions(struct xen_ctx *c)
{
	size_t i;

	for (i = 0; i < sizeof(xen_action_keys) / sizeof(xen_action_keys[0]); i++) {
		enum guest_action a =
			*(const enum guest_action *)((const char *)c->cfg + xen_action_keys[i].cfg_off);
		libxl_action_on_shutdown *out =
			(libxl_action_on_shutdown *)((char *)c->dc + xen_action_keys[i].dc_off);

		if ((unsigned)a >= GA__COUNT) {
			xen_error(c, xen_action_keys[i].key, "action %d is not an xl action", (int)a);
			continue;
		}
		*out = xen_actions[a];
	}
	c->dc->on_soft_reset = LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET;
}

/* One entry per xl key (or keys read together); "" = always.  type comes
 * before every build-info field it selects. */
static const struct {
	const char *keys;
	void (*map)(struct xen_ctx *c);
} xen_config_table[] = {
	{ "name", map_name },
	{ "type builder", map_type },
	{ "kernel ramdisk cmdline root extra", map_kernel },
	{ "memory maxmem", map_memory },
	{ "vcpus", map_vcpus },
	{ "acpi localtime", map_platform },
	{ "", map_device_model },
	{ "", map_toolstack },
	{ "disk", map_disks },
	{ "vif", map_vifs },
	{ "vnc vnclisten vncdisplay vncunused", map_vnc },
	{ "serial boot usbdevice", map_hvm_devices },
	{ "on_poweroff on_reboot on_crash on_watchdog", map_actions },
};

static int xen_translate(struct xen_ctx *c)
{
	size_t i;

	for (i = 0; i < sizeof(xen_config_table) / sizeof(xen_config_table[0]); i++)
		xen_config_table[i].map(c);
	return c->errors ? -1 : 0;
}

int xen_config_build(const struct guest_cfg *cfg, libxl_domain_config *dc, char *err,
		     size_t errlen)
{
	struct xen_ctx c = { .cfg = cfg, .dc = dc };

	if (xen_translate(&c) == 0)
		return 0;
	if (err && errlen)
		guestcfg_diag_format(&c.first, cfg->source, err, errlen);
	errno = EINVAL;
	return -1;
}

int xen_config_check(const struct guest_cfg *cfg, struct guestcfg_diags *diags)
{
	struct xen_ctx c = { .cfg = cfg, .diags = diags };
	libxl_domain_config dc;
	int rc;

	libxl_domain_config_init(&dc);
	c.dc = &dc;
	rc = xen_translate(&c);
	libxl_domain_config_dispose(&dc);
	return rc;
}

/* ---- host check ----------------------------------------------------- */

static const char *const xen_dm_default[] = {
	"/usr/libexec/xen-qemu-system-i386",      /* Debian's libxl (qemu-system-xen) */
	XEN_PRIVATE_DIR "/bin/qemu-system-i386",  /* upstream, versioned libexec */
	"/usr/lib/xen/bin/qemu-system-i386",      /* upstream default layout */
	NULL,
};
static const char *const xen_hvmloader_default[] = {
	XEN_PRIVATE_DIR "/boot/hvmloader",
	"/usr/lib/xen/boot/hvmloader",
	NULL,
};
/* Debian's hvmloader loads the system SeaBIOS; a build that embeds SeaBIOS
 * in hvmloader would not need it (not a Debian 12 case). */
static const char *const xen_seabios_default[] = {
	"/usr/share/seabios/bios-256k.bin",
	NULL,
};

const struct xen_host_paths xen_host_paths_default = {
	.device_model = xen_dm_default,
	.hvmloader = xen_hvmloader_default,
	.seabios = xen_seabios_default,
};

/* Each "needs" function says which key (and what, for the message) needs
 * the piece, or returns NULL when the guest does not. */
typedef const char *(*need_fn)(const struct guest_cfg *cfg, char *what, size_t len);

static const char *need_hvm(const struct guest_cfg *cfg, char *what, size_t len)
{
	if (cfg->type != GT_HVM)
		return NULL;
	snprintf(what, len, "an hvm guest");
	return "type";
}

static const char *need_device_model(const struct guest_cfg *cfg, char *what, size_t len)
{
	int i;

	if (need_hvm(cfg, what, len))
		return "type";
	if (cfg->vnc) {
		snprintf(what, len, "a VNC framebuffer");
		return "vnc";
	}
	for (i = 0; i < cfg->n_disks && i < GUEST_MAX_DISKS; i++) {
		const struct guest_disk *d = &cfg->disks[i];
		int f = xen_disk_format_find(d->format);

		if (d->cdrom && !d->target[0]) {
			snprintf(what, len, "disk %d (%s), an empty CD-ROM drive,", i + 1, d->vdev);
			return "disk";
		}
		if (f >= 0 && xen_disk_formats[f].backend == LIBXL_DISK_BACKEND_QDISK) {
			snprintf(what, len, "disk %d (%s), a %s image,", i + 1, d->vdev, d->format);
			return "disk";
		}
	}
	return NULL;
}

static const struct {
	const char *piece;
	size_t off;      /* its list in struct xen_host_paths */
	bool exec;
	const char *package; /* Debian's */
	need_fn needed;
} xen_host_needs[] = {
	{ "Xen's device model (qemu-xen)", offsetof(struct xen_host_paths, device_model), true,
	  "qemu-system-xen", need_device_model },
	{ "hvmloader", offsetof(struct xen_host_paths, hvmloader), false, "xen-utils-4.17",
	  need_hvm },
	{ "SeaBIOS", offsetof(struct xen_host_paths, seabios), false, "seabios", need_hvm },
};

static bool host_file_ok(const char *path, bool exec)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       access(path, exec ? X_OK : R_OK) == 0;
}

int xen_config_check_host(const struct guest_cfg *cfg, const struct xen_host_paths *paths,
			  struct guestcfg_diags *diags)
{
	size_t i;
	int ret = 0;

	if (!paths)
		paths = &xen_host_paths_default;
	for (i = 0; i < sizeof(xen_host_needs) / sizeof(xen_host_needs[0]); i++) {
		const char *const *list =
			*(const char *const *const *)((const char *)paths + xen_host_needs[i].off);
		char what[96], tried[512] = "";
		size_t n = 0, k;
		const char *key = xen_host_needs[i].needed(cfg, what, sizeof(what));

		if (!key)
			continue;
		for (k = 0; list && list[k]; k++) {
			if (host_file_ok(list[k], xen_host_needs[i].exec))
				break;
			if (n < sizeof(tried)) {
				int r = snprintf(tried + n, sizeof(tried) - n, "%s%s", k ? " or " : "",
						 list[k]);
				n = r < 0 ? sizeof(tried) : n + (size_t)r;
			}
		}
		if (list && list[k])
			continue;
		guestcfg_diag_add(diags, DIAG_ERROR, 0, key, "%s needs %s: no %s file %s (Debian "
				  "package %s)", what, xen_host_needs[i].piece,
				  xen_host_needs[i].exec ? "executable" : "readable",
				  tried[0] ? tried : "configured", xen_host_needs[i].package);
		ret = -1;
	}
	return ret;
}

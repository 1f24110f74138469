/* xl.cfg (struct guest_cfg) to libxl_domain_config: the Xen driver's
 * counterpart of qemu_argv.c.  The translation is a pure function of the
 * guest file (no libxl ctx, no hypervisor, no I/O), so it runs in unit tests
 * and in `hactl check`; what only the host can tell (is Xen's device model
 * installed?) is a separate check.  Every key that is mapped is one entry of
 * a table in xen_config.c; the keys that are not, and why, are listed at the
 * top of that file. */
#ifndef HAGENT_XEN_CONFIG_H
#define HAGENT_XEN_CONFIG_H

#include <stddef.h>

#include <libxl.h>

#include "lib/guestcfg.h"

/* Fill *dc, which the caller initialised with libxl_domain_config_init.
 * Returns 0, or -1 with the first problem in err as
 * "SOURCE: error: key 'K': message" (guestcfg_diag_format).  Either way the
 * caller disposes *dc with libxl_domain_config_dispose. */
int xen_config_build(const struct guest_cfg *cfg, libxl_domain_config *dc, char *err,
		     size_t errlen);

/* What the driver can express, for `hactl check`, `hagentd -n` and define:
 * every problem of the translation as an error diagnostic naming its key.
 * Nothing about the host.  Returns -1 when there is any. */
int xen_config_check(const struct guest_cfg *cfg, struct guestcfg_diags *diags);

/* Files libxl needs on the host that runs the guest.  Each list holds the
 * candidate paths (NULL-terminated); one that exists is enough.  libxl
 * compiles its own paths in and exports none of them, so the defaults are
 * the places the Debian packages and upstream's default layout use. */
struct xen_host_paths {
	const char *const *device_model; /* qemu-xen, executable */
	const char *const *hvmloader;    /* HVM firmware loader */
	const char *const *seabios;      /* BIOS hvmloader hands to an HVM guest */
};
extern const struct xen_host_paths xen_host_paths_default;

/* Host check: an HVM guest needs the device model, hvmloader and SeaBIOS; a
 * PV or PVH guest needs the device model only for what QEMU serves it (a
 * VNC framebuffer, an image-format disk, an empty CD-ROM).  paths NULL =
 * xen_host_paths_default.  Appends one error per missing piece, naming the
 * key that needs it; returns -1 when there is any. */
int xen_config_check_host(const struct guest_cfg *cfg, const struct xen_host_paths *paths,
			  struct guestcfg_diags *diags);

/* The MAC a vif without mac= gets: Xen's OUI 00:16:3e and three bytes
 * derived from the guest name and the vif's index, so a guest restarted on
 * another host (failover) keeps its addresses.  xl would draw a random one
 * at every create. */
void xen_config_default_mac(const char *name, int index, libxl_mac mac);

#endif

/* Disk classification: see storage.h.  Pure string work, plus one statfs
 * for stor_file_shared. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

#include "storage.h"

/* /dev/X/... directories that are not volume groups */
static const char *const dev_dirs[] = {
	"disk", "mapper", "drbd", "md", "block", "char", "bus", "cpu", "dri", "fd",
	"hugepages", "input", "mqueue", "net", "pts", "shm", "snd", "vfio", "xen",
	"iscsi", "by-id", "cdrom", "loop", "nbd", "zvol", "rbd", "vg-none", NULL,
};

static bool is_dev_dir(const char *name, size_t len)
{
	int i;

	for (i = 0; dev_dirs[i]; i++)
		if (strlen(dev_dirs[i]) == len && !strncmp(dev_dirs[i], name, len))
			return true;
	return false;
}

static bool copy(char *dst, size_t cap, const char *src, size_t len)
{
	if (len == 0 || len >= cap)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* LVM names: [A-Za-z0-9+_.-], not starting with '-' */
static bool lvm_name_ok(const char *s)
{
	if (!*s || *s == '-')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '+' || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

/* /dev/mapper/VG-LV: a single '-' splits, "--" is a '-' of a name. */
static bool mapper_split(const char *name, struct stor_ref *r)
{
	size_t o = 0, i;
	char *dst = r->vg;
	size_t cap = sizeof(r->vg);
	bool split = false;

	for (i = 0; name[i]; i++) {
		if (name[i] == '-' && name[i + 1] == '-') {
			if (o + 1 >= cap)
				return false;
			dst[o++] = '-';
			i++;
		} else if (name[i] == '-' && !split) {
			dst[o] = '\0';
			dst = r->lv;
			cap = sizeof(r->lv);
			o = 0;
			split = true;
		} else if (name[i] == '-') {
			return false; /* a lone '-' in the LV part: not LVM's */
		} else {
			if (o + 1 >= cap)
				return false;
			dst[o++] = name[i];
		}
	}
	dst[o] = '\0';
	return split && r->vg[0] && r->lv[0];
}

static int classify_path(const char *t, struct stor_ref *r)
{
	const char *p, *slash;

	if (strncmp(t, "/dev/", 5)) {
		r->kind = STOR_FILE;
		return 0;
	}
	p = t + 5;
	if (!strncmp(p, "drbd", 4) && all_digits(p + 4)) {
		r->kind = STOR_DRBD;
		r->minor = atoi(p + 4);
		return 0;
	}
	if (!strncmp(p, "drbd/by-res/", 12)) {
		const char *res = p + 12;
		slash = strchr(res, '/');
		if (!copy(r->res, sizeof(r->res), res, slash ? (size_t)(slash - res) : strlen(res)))
			return -1;
		if (slash) {
			if (!all_digits(slash + 1))
				return -1;
			r->volume = atoi(slash + 1);
		}
		r->kind = STOR_DRBD;
		return 0;
	}
	if (!strncmp(p, "disk/by-path/", 13)) {
		/* ip-ADDR:PORT-iscsi-IQN-lun-N */
		const char *n = p + 13, *is = strstr(n, "-iscsi-"), *lun;
		if (strncmp(n, "ip-", 3) || !is)
			goto block;
		lun = strstr(is + 7, "-lun-");
		while (lun && strstr(lun + 5, "-lun-"))
			lun = strstr(lun + 5, "-lun-");
		if (!lun || !all_digits(lun + 5) ||
		    !copy(r->portal, sizeof(r->portal), n + 3, (size_t)(is - n - 3)) ||
		    !copy(r->iqn, sizeof(r->iqn), is + 7, (size_t)(lun - is - 7)))
			goto block;
		r->lun = atoi(lun + 5);
		r->kind = STOR_ISCSI;
		return 0;
	}
	if (!strncmp(p, "mapper/", 7)) {
		if (mapper_split(p + 7, r) && lvm_name_ok(r->vg) && lvm_name_ok(r->lv)) {
			r->kind = STOR_LVM;
			return 0;
		}
		r->vg[0] = r->lv[0] = '\0';
		goto block;
	}
	slash = strchr(p, '/');
	if (slash && !strchr(slash + 1, '/') && !is_dev_dir(p, (size_t)(slash - p)) &&
	    copy(r->vg, sizeof(r->vg), p, (size_t)(slash - p)) &&
	    copy(r->lv, sizeof(r->lv), slash + 1, strlen(slash + 1)) && lvm_name_ok(r->vg) &&
	    lvm_name_ok(r->lv)) {
		r->kind = STOR_LVM;
		return 0;
	}
	r->vg[0] = r->lv[0] = '\0';
block:
	r->kind = STOR_BLOCK;
	return 0;
}

/* block-iscsi's argument: iqn=IQN,portal=ADDR[:PORT][,lun=N][,other=...] */
static int classify_iscsi(const char *t, struct stor_ref *r, char *err, size_t errlen)
{
	const char *p = t;

	while (*p) {
		size_t n = strcspn(p, ",");
		if (!strncmp(p, "iqn=", 4)) {
			if (!copy(r->iqn, sizeof(r->iqn), p + 4, n - 4))
				goto bad;
		} else if (!strncmp(p, "portal=", 7)) {
			if (!copy(r->portal, sizeof(r->portal), p + 7, n - 7))
				goto bad;
		} else if (!strncmp(p, "lun=", 4)) {
			char num[12];
			if (!copy(num, sizeof(num), p + 4, n - 4) || !all_digits(num))
				goto bad;
			r->lun = atoi(num);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (!r->iqn[0] || !r->portal[0]) {
		snprintf(err, errlen, "iSCSI target \"%s\" needs iqn= and portal= (as block-iscsi)", t);
		return -1;
	}
	if (strchr(r->portal, ':') == NULL || (r->portal[0] == '[' && !strstr(r->portal, "]:"))) {
		size_t l = strlen(r->portal);
		if (l + 6 > sizeof(r->portal))
			goto bad;
		strcat(r->portal, ":3260");
	}
	r->kind = STOR_ISCSI;
	return 0;
bad:
	snprintf(err, errlen, "iSCSI target \"%s\": a field is empty or too long", t);
	return -1;
}

int stor_classify(const char *target, const char *script, struct stor_ref *r,
		  char *err, size_t errlen)
{
	const char *base;

	memset(r, 0, sizeof(*r));
	r->minor = -1;
	r->lun = -1;
	if (err && errlen)
		err[0] = '\0';
	if (!target || !target[0]) {
		r->kind = STOR_NONE;
		return 0;
	}
	if (!script || !script[0]) {
		if (classify_path(target, r) == 0)
			return 0;
		snprintf(err, errlen, "DRBD device \"%s\" is not /dev/drbd/by-res/RES[/VOLUME]", target);
		return -1;
	}
	base = strrchr(script, '/');
	base = base ? base + 1 : script;
	if (!strcmp(base, "block-drbd")) {
		if (!copy(r->res, sizeof(r->res), target, strlen(target)) || strchr(target, '/')) {
			snprintf(err, errlen, "drbd: needs a resource name, not \"%s\"", target);
			return -1;
		}
		r->kind = STOR_DRBD;
		return 0;
	}
	if (!strcmp(base, "block-iscsi"))
		return classify_iscsi(target, r, err, errlen);
	if (!strcmp(base, "block") && target[0] == '/')
		return classify_path(target, r);
	snprintf(err, errlen, "block script %s is not one hagent runs (it prepares file, LVM, iSCSI and DRBD storage itself)", script);
	return -1;
}

bool stor_activated(enum stor_kind k)
{
	return k == STOR_LVM || k == STOR_ISCSI || k == STOR_DRBD;
}

const char *stor_kind_name(enum stor_kind k)
{
	switch (k) {
	case STOR_NONE: return "none";
	case STOR_FILE: return "file";
	case STOR_BLOCK: return "block";
	case STOR_LVM: return "lvm";
	case STOR_ISCSI: return "iscsi";
	case STOR_DRBD: return "drbd";
	}
	return "?";
}

void stor_describe(const struct stor_ref *r, const char *target, char *buf, size_t len)
{
	switch (r->kind) {
	case STOR_NONE:
		snprintf(buf, len, "empty drive");
		break;
	case STOR_FILE:
		snprintf(buf, len, "image file %s", target);
		break;
	case STOR_BLOCK:
		snprintf(buf, len, "block device %s", target);
		break;
	case STOR_LVM:
		snprintf(buf, len, "LVM volume %s/%s", r->vg, r->lv);
		break;
	case STOR_ISCSI:
		if (r->lun >= 0)
			snprintf(buf, len, "iSCSI target %s at %s (LUN %d)", r->iqn, r->portal, r->lun);
		else
			snprintf(buf, len, "iSCSI target %s at %s", r->iqn, r->portal);
		break;
	case STOR_DRBD:
		if (r->res[0] && r->volume)
			snprintf(buf, len, "DRBD resource %s volume %d", r->res, r->volume);
		else if (r->res[0])
			snprintf(buf, len, "DRBD resource %s", r->res);
		else
			snprintf(buf, len, "DRBD device minor %d", r->minor);
		break;
	}
}

bool stor_same(const struct stor_ref *a, const char *ta, const struct stor_ref *b, const char *tb)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case STOR_LVM:
		return !strcmp(a->vg, b->vg) && !strcmp(a->lv, b->lv);
	case STOR_ISCSI:
		return !strcmp(a->iqn, b->iqn) && a->lun == b->lun;
	case STOR_DRBD:
		if (a->res[0] && b->res[0])
			return !strcmp(a->res, b->res) && a->volume == b->volume;
		return a->minor >= 0 && a->minor == b->minor;
	case STOR_NONE:
		return false;
	default:
		return !strcmp(ta, tb);
	}
}

int stor_file_shared(const char *path, char *fstype, size_t len)
{
	static const struct { unsigned long magic; const char *name; } shared[] = {
		{ 0x6969, "nfs" }, { 0x7461636f, "ocfs2" }, { 0x01161970, "gfs2" },
		{ 0xFF534D42, "cifs" }, { 0xFE534D42, "smb2" }, { 0x00c36400, "ceph" },
		{ 0x65735546, "fuse" }, { 0x01021997, "9p" },
	};
	static const struct { unsigned long magic; const char *name; } local[] = {
		{ 0xEF53, "ext4" }, { 0x58465342, "xfs" }, { 0x9123683E, "btrfs" },
		{ 0x01021994, "tmpfs" }, { 0x794c7630, "overlay" },
	};
	struct statfs sf;
	size_t i;

	if (statfs(path, &sf) < 0)
		return -1;
	for (i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
		if ((unsigned long)sf.f_type == shared[i].magic) {
			snprintf(fstype, len, "%s", shared[i].name);
			return 1;
		}
	}
	for (i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		if ((unsigned long)sf.f_type == local[i].magic) {
			snprintf(fstype, len, "%s", local[i].name);
			return 0;
		}
	}
	snprintf(fstype, len, "0x%lx", (unsigned long)sf.f_type);
	return 0;
}

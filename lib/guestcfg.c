/* Guest definitions: xl.cfg files read with Xen's libxlutil, checked key by
 * key against one table, turned into struct guest_cfg plus diagnostics.
 *
 * libxlutil gives values but no line numbers and no list of the keys it
 * saw, so a small lexical scan of our own (key_scan) maps each top-level
 * assignment to its line and finds unknown keys.  libxlutil's own messages
 * (syntax errors, disk-spec errors) go to a memstream and come back here as
 * diagnostics. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxlutil.h>

#include "lib/fsutil.h"
#include "lib/guestcfg.h"

/* Name given to libxlutil for its messages; stripped again when they are
 * converted, so the real source name never has to survive its formatting. */
#define XLU_SOURCE "cfg"

/* Upper bounds for numbers, chosen so nothing downstream overflows:
 * memory in MiB fits a QEMU "-m" and libxl's memkb (16 TiB). */
#define MEMORY_MAX_MIB (16L * 1024 * 1024)
#define VCPUS_MAX 128
#define VNCDISPLAY_MAX (65535 - 5900)
#define IFNAME_MAX 15 /* Linux IFNAMSIZ - 1 */

/* ---- diagnostics -------------------------------------------------- */

static const char *const level_names[] = {
	[DIAG_NOTE] = "note",
	[DIAG_WARNING] = "warning",
	[DIAG_ERROR] = "error",
};

static void diag_store(struct guestcfg_diag *d, enum diag_level level, int line,
		       const char *key, const char *msg)
{
	char *p;

	d->level = level;
	d->line = line > 0 ? line : 0;
	/* Keys longer than the field are never known keys; callers put the
	 * full name in the message instead of a truncated one here. */
	if (key && strlen(key) < sizeof(d->key))
		strcpy(d->key, key);
	else
		d->key[0] = '\0';
	snprintf(d->msg, sizeof(d->msg), "%s", msg);
	/* One diagnostic is one line of output: values quoted in messages may
	 * hold newlines or escapes from the file. */
	for (p = d->msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

void guestcfg_diag_add(struct guestcfg_diags *diags, enum diag_level level, int line,
		       const char *key, const char *fmt, ...)
{
	char msg[sizeof(diags->d[0].msg)];
	va_list ap;

	if (!diags)
		return;
	if (level == DIAG_ERROR)
		diags->n_errors++;
	else if (level == DIAG_WARNING)
		diags->n_warnings++;
	if (diags->n < 0)
		diags->n = 0;
	if (diags->n >= GUESTCFG_MAX_DIAGS) {
		/* Full: the last slot becomes the overflow marker, keeping the
		 * most severe level it has absorbed so an error stays visible. */
		struct guestcfg_diag *last = &diags->d[GUESTCFG_MAX_DIAGS - 1];
		enum diag_level lv = last->level > level ? last->level : level;

		diags->n = GUESTCFG_MAX_DIAGS;
		diag_store(last, lv, 0, NULL, "too many diagnostics; later ones not shown");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_store(&diags->d[diags->n++], level, line, key, msg);
}

void guestcfg_diag_format(const struct guestcfg_diag *d, const char *source, char *buf, size_t len)
{
	char where[PATH_MAX + 32] = "";
	char key[sizeof(d->key) + 16] = "";
	const char *lv = "error";

	if (!buf || len == 0)
		return;
	if ((unsigned)d->level < sizeof(level_names) / sizeof(level_names[0]))
		lv = level_names[d->level];
	if (source && *source && d->line > 0)
		snprintf(where, sizeof(where), "%s:%d: ", source, d->line);
	else if (source && *source)
		snprintf(where, sizeof(where), "%s: ", source);
	else if (d->line > 0)
		snprintf(where, sizeof(where), "%d: ", d->line);
	if (d->key[0])
		snprintf(key, sizeof(key), "key '%s': ", d->key);
	snprintf(buf, len, "%s%s: %s%s", where, lv, key, d->msg);
}

/* ---- small name tables -------------------------------------------- */

static const char *const action_names[GA__COUNT + 1] = {
	[GA_DESTROY] = "destroy",
	[GA_RESTART] = "restart",
	[GA_RENAME_RESTART] = "rename-restart",
	[GA_PRESERVE] = "preserve",
	[GA_COREDUMP_DESTROY] = "coredump-destroy",
	[GA_COREDUMP_RESTART] = "coredump-restart",
	[GA_SOFT_RESET] = "soft-reset",
	[GA__COUNT] = NULL,
};

static const char *const type_names[] = {
	[GT_HVM] = "hvm",
	[GT_PVH] = "pvh",
	[GT_PV] = "pv",
	NULL,
};

static const char *const driver_names[] = { "qemu", "xen", NULL };
static const char *const managed_by_names[] = { "hagent", "pacemaker", NULL };
static const char *const usbdevice_names[] = { "tablet", "mouse", "keyboard", NULL };

const char *guest_action_name(enum guest_action a)
{
	if ((unsigned)a >= GA__COUNT)
		return "invalid";
	return action_names[a];
}

int guest_action_parse(const char *s)
{
	int i;

	for (i = 0; s && i < GA__COUNT; i++)
		if (!strcmp(s, action_names[i]))
			return i;
	return -1;
}

const char *guest_type_name(enum guest_type t)
{
	if ((unsigned)t > GT_PV)
		return "invalid";
	return type_names[t];
}

/* Names end up in file names, QEMU -name and CPG messages: keep them to a
 * portable file-name alphabet and forbid leading '-' (option) and '.'
 * (hidden / "." / ".."). */
bool guest_name_valid(const char *name)
{
	size_t i, n;

	if (!name)
		return false;
	n = strlen(name);
	if (n == 0 || n >= GUEST_NAME_MAX || name[0] == '-' || name[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c >= 0x80 || !(isalnum(c) || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* ---- the lexical key scan ----------------------------------------- */

struct key_loc {
	const char *name;       /* points into the parsed text */
	size_t len;
	int line;
	bool add;               /* "+=" rather than "=" */
};

struct key_scan {
	struct key_loc *v;
	size_t n, cap;
};

static bool is_ident_start(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_ident(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9') || c == '_';
}

/* Mirrors libxlutil's lexer closely enough to find "IDENT =" / "IDENT +="
 * at the start of a statement (statements end at a newline outside
 * brackets, or ';').  On text libxlutil rejects the result does not
 * matter, it only has to terminate. */
static int key_scan_run(struct key_scan *ks, const char *s, size_t len)
{
	size_t i = 0;
	int line = 1, depth = 0;
	bool stmt_start = true;

	while (i < len) {
		char c = s[i];

		if (c == '\n') {
			line++;
			if (depth == 0)
				stmt_start = true;
			i++;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			i++;
		} else if (c == '#') {
			while (i < len && s[i] != '\n')
				i++;
		} else if (c == '"' || c == '\'') {
			/* A quoted string ends at its quote; an unterminated one
			 * at the newline (libxlutil reports it). */
			for (i++; i < len && s[i] != c && s[i] != '\n'; i++)
				if (s[i] == '\\' && i + 1 < len && s[i + 1] != '\n')
					i++;
			if (i < len && s[i] == c)
				i++;
			stmt_start = false;
		} else if (c == '[') {
			depth++;
			stmt_start = false;
			i++;
		} else if (c == ']') {
			if (depth > 0)
				depth--;
			i++;
		} else if (c == ';') {
			if (depth == 0)
				stmt_start = true;
			i++;
		} else if (is_ident_start(c)) {
			size_t start = i, j;

			while (i < len && is_ident(s[i]))
				i++;
			j = i;
			while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r'))
				j++;
			if (stmt_start && depth == 0 && j < len &&
			    (s[j] == '=' || (s[j] == '+' && j + 1 < len && s[j + 1] == '='))) {
				if (ks->n == ks->cap) {
					size_t ncap = ks->cap ? ks->cap * 2 : 64;
					struct key_loc *nv = realloc(ks->v, ncap * sizeof(*nv));

					if (!nv)
						return -1;
					ks->v = nv;
					ks->cap = ncap;
				}
				ks->v[ks->n++] = (struct key_loc){
					.name = s + start, .len = i - start, .line = line,
					.add = s[j] == '+',
				};
			}
			stmt_start = false;
		} else {
			stmt_start = false;
			i++;
		}
	}
	return 0;
}

static bool key_loc_is(const struct key_loc *k, const char *name)
{
	return strlen(name) == k->len && !memcmp(k->name, name, k->len);
}

/* libxlutil keeps the last assignment of a key: so does this. */
static const struct key_loc *key_scan_last(const struct key_scan *ks, const char *name)
{
	size_t i;

	for (i = ks->n; i-- > 0;)
		if (key_loc_is(&ks->v[i], name))
			return &ks->v[i];
	return NULL;
}

/* ---- parse context and helpers ------------------------------------ */

struct key_def;

struct parse_ctx {
	XLU_Config *xlu;
	struct guest_cfg *cfg;
	struct guestcfg_diags *diags;
	struct key_scan scan;
	FILE *report;           /* libxlutil's messages, into rbuf */
	char *rbuf;
	size_t rlen, rdone;
	char dir[PATH_MAX];     /* directory of source, "" = no resolution */
	const struct key_def *k; /* key being handled */
	int line;               /* its line, 0 if unknown */
	bool type_set;
};

typedef int (*key_fn)(struct parse_ctx *pc, const struct key_def *k);

struct key_def {
	const char *name;
	key_fn fn;
	size_t off, size;       /* field in struct guest_cfg; size 0 = none */
	long min, max;          /* numbers */
	const char *what;       /* expected value, or why a key is ignored */
	const char *const *choices;
};

static void kdiag(struct parse_ctx *pc, enum diag_level lv, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void kdiag(struct parse_ctx *pc, enum diag_level lv, const char *fmt, ...)
{
	char msg[sizeof(pc->diags->d[0].msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	guestcfg_diag_add(pc->diags, lv, pc->line, pc->k ? pc->k->name : NULL, "%s", msg);
}

/* A value for quoting in a message: bounded, marked when shortened. */
static const char *qv(char *buf, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (n < size) {
		memcpy(buf, s, n + 1);
	} else {
		memcpy(buf, s, size - 4);
		strcpy(buf + size - 4, "...");
	}
	return buf;
}

#define QV(s) qv((char[72]){ 0 }, 72, (s))

static void *field(struct parse_ctx *pc, const struct key_def *k)
{
	return (char *)pc->cfg + k->off;
}

/* Copies a value into a fixed field; too long is an error, never cut. */
static int put_str(struct parse_ctx *pc, char *dst, size_t size, const char *s, const char *what)
{
	size_t n = strlen(s);

	if (n >= size) {
		kdiag(pc, DIAG_ERROR, "%s too long (%zu characters, at most %zu): \"%s\"",
		      what, n, size - 1, QV(s));
		return -1;
	}
	memcpy(dst, s, n + 1);
	return 0;
}

/* 0 = *out is the string value, 1 = key absent, -1 = wrong kind (diag'd). */
static int get_string(struct parse_ctx *pc, const char *what, const char **out)
{
	int rc = xlu_cfg_get_string(pc->xlu, pc->k->name, out, 1);

	if (rc == ESRCH)
		return 1;
	if (rc == 0)
		return 0;
	kdiag(pc, DIAG_ERROR, "expected %s, got a list", what);
	return -1;
}

/* 0 = list, 1 = absent, -1 = wrong kind (diag'd). */
static int get_list(struct parse_ctx *pc, const char *what, XLU_ConfigList **l, int *n)
{
	const char *s;
	int rc = xlu_cfg_get_list(pc->xlu, pc->k->name, l, n, 1);

	if (rc == ESRCH)
		return 1;
	if (rc == 0)
		return 0;
	if (xlu_cfg_get_string(pc->xlu, pc->k->name, &s, 1) == 0)
		kdiag(pc, DIAG_ERROR, "expected %s, got a single value \"%s\"", what, QV(s));
	else
		kdiag(pc, DIAG_ERROR, "expected %s", what);
	return -1;
}

/* Item i of a list as a string; nested lists are errors. */
static const char *list_item(struct parse_ctx *pc, XLU_ConfigList *l, int i, const char *what)
{
	const char *s = xlu_cfg_get_listitem(l, i);

	if (!s)
		kdiag(pc, DIAG_ERROR, "item %d: expected %s, got a list", i + 1, what);
	return s;
}

/* xl reads numbers with strtol(.., 0) on the value's text, quoted or not
 * (memory = '512' is fine; 0x200 too). */
static int parse_number(const char *s, long *out)
{
	char *ep;
	long l;

	errno = 0;
	l = strtol(s, &ep, 0);
	if (errno || ep == s || *ep)
		return -1;
	*out = l;
	return 0;
}

static int get_number(struct parse_ctx *pc, const struct key_def *k, long *out)
{
	const struct key_loc *kl = key_scan_last(&pc->scan, k->name);
	const char *s;
	long l;
	int rc = get_string(pc, k->what, &s);

	if (rc)
		return rc;
	if (kl && kl->add) {
		kdiag(pc, DIAG_ERROR, "'+=' cannot be used with a number");
		return -1;
	}
	if (parse_number(s, &l) < 0) {
		kdiag(pc, DIAG_ERROR, "expected %s, got \"%s\"", k->what, QV(s));
		return -1;
	}
	if (l < k->min || l > k->max) {
		kdiag(pc, DIAG_ERROR, "expected %s in %ld..%ld, got %ld", k->what, k->min, k->max, l);
		return -1;
	}
	*out = l;
	return 0;
}

/* "expected one of a, b, c; got "x"" */
static void choice_error(struct parse_ctx *pc, const char *const *choices, const char *got)
{
	char list[200] = "";
	size_t off = 0;
	int i;

	for (i = 0; choices[i] && off < sizeof(list); i++) {
		int r = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", choices[i]);

		if (r < 0)
			break;
		off += (size_t)r;
	}
	kdiag(pc, DIAG_ERROR, "expected one of %s; got \"%s\"", list, QV(got));
}

static int find_choice(const char *const *choices, const char *s)
{
	int i;

	for (i = 0; choices[i]; i++)
		if (!strcmp(choices[i], s))
			return i;
	return -1;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* Relative kernel/image paths are relative to the guest file, like an
 * #include: a definition directory can then be moved as a whole. */
static int resolve_path(struct parse_ctx *pc, char *dst, size_t size, const char *path,
			const char *what)
{
	int r;

	if (path[0] == '/' || path[0] == '\0' || pc->dir[0] == '\0')
		return put_str(pc, dst, size, path, what);
	while (path[0] == '.' && path[1] == '/')
		for (path += 2; *path == '/'; path++)
			;
	r = snprintf(dst, size, "%s%s%s", pc->dir, strcmp(pc->dir, "/") ? "/" : "", path);
	if (r < 0 || (size_t)r >= size) {
		dst[0] = '\0';
		kdiag(pc, DIAG_ERROR, "%s path too long once made relative to %s", what, pc->dir);
		return -1;
	}
	return 0;
}

/* ---- generic handlers --------------------------------------------- */

static int h_string(struct parse_ctx *pc, const struct key_def *k)
{
	const char *s;
	int rc = get_string(pc, k->what, &s);

	if (rc)
		return rc < 0 ? -1 : 0;
	return put_str(pc, field(pc, k), k->size, s, "value");
}

/* Keys that only feed another key (root, extra): checked for kind here. */
static int h_check_string(struct parse_ctx *pc, const struct key_def *k)
{
	const char *s;

	return get_string(pc, k->what, &s) < 0 ? -1 : 0;
}

static int h_choice(struct parse_ctx *pc, const struct key_def *k)
{
	const char *s;
	int rc = get_string(pc, k->what, &s);

	if (rc)
		return rc < 0 ? -1 : 0;
	if (find_choice(k->choices, s) < 0) {
		choice_error(pc, k->choices, s);
		return -1;
	}
	return put_str(pc, field(pc, k), k->size, s, "value");
}

static int h_number(struct parse_ctx *pc, const struct key_def *k)
{
	long l;
	int rc = get_number(pc, k, &l);

	if (rc)
		return rc < 0 ? -1 : 0;
	if (k->size == sizeof(long))
		*(long *)field(pc, k) = l;
	else
		*(int *)field(pc, k) = (int)l; /* bounds in the table fit an int */
	return 0;
}

/* xl booleans are numbers, any non-zero is true. */
static int h_bool(struct parse_ctx *pc, const struct key_def *k)
{
	long l;
	int rc = get_number(pc, k, &l);

	if (rc)
		return rc < 0 ? -1 : 0;
	if (k->size)
		*(bool *)field(pc, k) = l != 0;
	return 0;
}

static int h_action(struct parse_ctx *pc, const struct key_def *k)
{
	const char *s;
	int a, rc = get_string(pc, k->what, &s);

	if (rc)
		return rc < 0 ? -1 : 0;
	a = guest_action_parse(s);
	if (a < 0) {
		choice_error(pc, action_names, s);
		return -1;
	}
	*(enum guest_action *)field(pc, k) = (enum guest_action)a;
	return 0;
}

/* Keys xl (or xm) knows and hagent does not use: say so once. */
static int h_ignored(struct parse_ctx *pc, const struct key_def *k)
{
	if (xlu_cfg_get_list(pc->xlu, k->name, NULL, NULL, 1) == ESRCH)
		return 0;
	kdiag(pc, DIAG_WARNING, "%s", k->what);
	return 0;
}

/* ---- key-specific handlers ---------------------------------------- */

static int h_name(struct parse_ctx *pc, const struct key_def *k)
{
	const char *s;
	int rc = get_string(pc, k->what, &s);

	if (rc < 0)
		return -1;
	if (rc > 0) {
		kdiag(pc, DIAG_ERROR, "required key is missing (the guest's name)");
		return -1;
	}
	if (!guest_name_valid(s)) {
		kdiag(pc, DIAG_ERROR, "expected %s, got \"%s\"", k->what, QV(s));
		return -1;
	}
	strcpy(pc->cfg->name, s); /* guest_name_valid bounds it */
	return 0;
}

static int h_type(struct parse_ctx *pc, const struct key_def *k)
{
	const char *s;
	int t, rc = get_string(pc, k->what, &s);

	if (rc)
		return rc < 0 ? -1 : 0;
	t = find_choice(type_names, s);
	if (t < 0) {
		choice_error(pc, type_names, s);
		return -1;
	}
	pc->cfg->type = (enum guest_type)t;
	pc->type_set = true;
	return 0;
}

/* xm's builder= is xl's type= under an older name; "generic" and "linux"
 * were the PV builders. */
static int h_builder(struct parse_ctx *pc, const struct key_def *k)
{
	static const struct { const char *name; enum guest_type type; } builders[] = {
		{ "hvm", GT_HVM }, { "generic", GT_PV }, { "linux", GT_PV },
	};
	const char *s;
	size_t i;
	int rc = get_string(pc, k->what, &s);

	if (rc)
		return rc < 0 ? -1 : 0;
	for (i = 0; i < sizeof(builders) / sizeof(builders[0]); i++) {
		if (strcmp(s, builders[i].name))
			continue;
		if (!pc->type_set)
			pc->cfg->type = builders[i].type;
		else if (pc->cfg->type != builders[i].type)
			kdiag(pc, DIAG_WARNING, "builder \"%s\" ignored, type = \"%s\" takes precedence",
			      s, guest_type_name(pc->cfg->type));
		return 0;
	}
	kdiag(pc, DIAG_WARNING, "unknown builder \"%s\" ignored (use type = hvm, pvh or pv)", QV(s));
	return 0;
}

static int h_path(struct parse_ctx *pc, const struct key_def *k)
{
	const char *s;
	int rc = get_string(pc, k->what, &s);

	if (rc)
		return rc < 0 ? -1 : 0;
	/* xm HVM files name Xen's firmware loader as the kernel; QEMU brings
	 * its own firmware and xl loads hvmloader by itself. */
	if (!strcmp(k->name, "kernel") && !strcmp(base_name(s), "hvmloader")) {
		kdiag(pc, DIAG_WARNING, "hvmloader is implied, ignored");
		return 0;
	}
	return resolve_path(pc, field(pc, k), k->size, s, k->name);
}

/* xl: cmdline wins; otherwise "root=ROOT EXTRA" from root= and extra=. */
static int h_cmdline(struct parse_ctx *pc, const struct key_def *k)
{
	char buf[sizeof(pc->cfg->cmdline)];
	const char *cmdline = NULL, *root = NULL, *extra = NULL;
	int r, rc = get_string(pc, k->what, &cmdline);

	if (rc < 0)
		return -1;
	/* root and extra were checked by their own entries: lists are errors
	 * already, so a failed read here just means "not set". */
	if (xlu_cfg_get_string(pc->xlu, "root", &root, 1))
		root = NULL;
	if (xlu_cfg_get_string(pc->xlu, "extra", &extra, 1))
		extra = NULL;
	if (cmdline) {
		if (root || extra)
			kdiag(pc, DIAG_WARNING, "root= and extra= ignored in favour of cmdline=");
		return put_str(pc, pc->cfg->cmdline, sizeof(pc->cfg->cmdline), cmdline,
			       "kernel command line");
	}
	if (root && extra)
		r = snprintf(buf, sizeof(buf), "root=%s %s", root, extra);
	else if (root)
		r = snprintf(buf, sizeof(buf), "root=%s", root);
	else if (extra)
		r = snprintf(buf, sizeof(buf), "%s", extra);
	else
		return 0;
	if (r < 0 || (size_t)r >= sizeof(buf)) {
		kdiag(pc, DIAG_ERROR, "kernel command line from root= and extra= too long (at most %zu characters)",
		      sizeof(buf) - 1);
		return -1;
	}
	memcpy(pc->cfg->cmdline, buf, (size_t)r + 1);
	return 0;
}

static int h_vncpasswd(struct parse_ctx *pc, const struct key_def *k)
{
	const char *s;
	int rc = get_string(pc, k->what, &s);

	if (rc)
		return rc < 0 ? -1 : 0;
	/* An operator who set a password must know the display is open. */
	if (s[0])
		kdiag(pc, DIAG_WARNING, "VNC passwords are not supported by hagent; the display "
		      "has no password, restrict it with vnclisten");
	return 0;
}

/* Reads a key that xl accepts as a string or a list of strings. */
static int get_string_or_list(struct parse_ctx *pc, const char *what, const char **first,
			      XLU_ConfigList **l, int *n)
{
	int rc;

	*l = NULL;
	*n = 0;
	rc = xlu_cfg_get_string(pc->xlu, pc->k->name, first, 1);
	if (rc == ESRCH)
		return 1;
	if (rc == 0) {
		*n = 1;
		return 0;
	}
	if (xlu_cfg_get_list(pc->xlu, pc->k->name, l, n, 1))
		return -1;
	*first = NULL;
	if (*n > 0 && !(*first = list_item(pc, *l, 0, what)))
		return -1;
	return 0;
}

static int h_serial(struct parse_ctx *pc, const struct key_def *k)
{
	XLU_ConfigList *l;
	const char *s;
	int n, rc = get_string_or_list(pc, k->what, &s, &l, &n);

	if (rc)
		return rc < 0 ? -1 : 0;
	if (n == 0)
		return 0;
	if (n > 1)
		kdiag(pc, DIAG_WARNING, "only the first serial port is used");
	if (!strcmp(s, "pty") || !strcmp(s, "none")) {
		strcpy(pc->cfg->serial, s);
		return 0;
	}
	/* xl also allows QEMU chardev specs (file:, tcp:, ...); hagent keeps
	 * the console itself and needs a pty. */
	kdiag(pc, DIAG_WARNING, "serial \"%s\": only pty supported, using pty", QV(s));
	strcpy(pc->cfg->serial, "pty");
	return 0;
}

static int h_boot(struct parse_ctx *pc, const struct key_def *k)
{
	const char *s;
	int rc = get_string(pc, k->what, &s);

	if (rc)
		return rc < 0 ? -1 : 0;
	if (!s[0] || strlen(s) >= sizeof(pc->cfg->boot) || strspn(s, "acdn") != strlen(s)) {
		kdiag(pc, DIAG_ERROR, "expected %s, got \"%s\"", k->what, QV(s));
		return -1;
	}
	strcpy(pc->cfg->boot, s);
	return 0;
}

static int h_usbdevice(struct parse_ctx *pc, const struct key_def *k)
{
	XLU_ConfigList *l;
	const char *s;
	int i, n, rc = get_string_or_list(pc, k->what, &s, &l, &n);

	if (rc)
		return rc < 0 ? -1 : 0;
	for (i = 0; i < n; i++) {
		if (l && !(s = list_item(pc, l, i, k->what)))
			return -1;
		if (find_choice(usbdevice_names, s) < 0) {
			/* xl also takes host:VID:PID passthrough: valid xl,
			 * just nothing hagent can move between hosts. */
			kdiag(pc, DIAG_WARNING, "usbdevice \"%s\" ignored: hagent supports tablet, mouse, keyboard",
			      QV(s));
			continue;
		}
		if (pc->cfg->usbdevice[0]) {
			kdiag(pc, DIAG_WARNING, "only one usbdevice is used, \"%s\" ignored", QV(s));
			continue;
		}
		strcpy(pc->cfg->usbdevice, s);
	}
	return 0;
}

static bool node_name_ok(const char *s)
{
	return guest_name_valid(s); /* same alphabet as host names */
}

static int add_node(struct parse_ctx *pc, const char *s, size_t len)
{
	struct guest_cfg *c = pc->cfg;
	char name[sizeof(c->ha_nodes[0])];
	int i;

	if (len >= sizeof(name)) {
		kdiag(pc, DIAG_ERROR, "node name too long (at most %zu characters)", sizeof(name) - 1);
		return -1;
	}
	memcpy(name, s, len);
	name[len] = '\0';
	if (!node_name_ok(name)) {
		kdiag(pc, DIAG_ERROR, "expected a node name, got \"%s\"", QV(name));
		return -1;
	}
	for (i = 0; i < c->n_ha_nodes; i++) {
		if (!strcmp(c->ha_nodes[i], name)) {
			kdiag(pc, DIAG_WARNING, "node \"%s\" listed twice", name);
			return 0;
		}
	}
	if (c->n_ha_nodes >= GUEST_MAX_NODES) {
		kdiag(pc, DIAG_ERROR, "too many nodes (at most %d)", GUEST_MAX_NODES);
		return -1;
	}
	strcpy(c->ha_nodes[c->n_ha_nodes++], name);
	return 0;
}

/* ha_nodes = [ 'a', 'b' ] or ha_nodes = 'a, b': preference order. */
static int h_nodes(struct parse_ctx *pc, const struct key_def *k)
{
	XLU_ConfigList *l;
	const char *s;
	int i, n, ret = 0, rc = get_string_or_list(pc, k->what, &s, &l, &n);

	if (rc)
		return rc < 0 ? -1 : 0;
	for (i = 0; i < n; i++) {
		if (l && !(s = list_item(pc, l, i, "a node name")))
			return -1;
		while (*s) {
			size_t len;

			s += strspn(s, " \t,");
			len = strcspn(s, ",");
			while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
				len--;
			if (len > 0 && add_node(pc, s, len) < 0)
				ret = -1;
			s += strcspn(s, ",");
		}
	}
	return ret;
}

/* ---- disks -------------------------------------------------------- */

/* Converts what libxlutil wrote to `report` since the last call into
 * diagnostics.  whole: the text is one message (disk specs may quote
 * newlines); otherwise one per line with "cfg:LINE:" prefixes. */
static void drain_report(struct parse_ctx *pc, enum diag_level lv, bool whole, const char *prefix)
{
	char *p, *end;

	if (!pc->report || fflush(pc->report) != 0 || !pc->rbuf || pc->rdone >= pc->rlen)
		return;
	p = pc->rbuf + pc->rdone;
	end = pc->rbuf + pc->rlen;
	pc->rdone = pc->rlen;
	if (whole)
		for (char *q = p; q < end; q++)
			if (*q == '\n')
				*q = ' ';
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *msg = p;
		enum diag_level l = lv;
		int line = pc->line;
		size_t n;

		if (!nl)
			nl = end;
		n = (size_t)(nl - p);
		/* "cfg:12: text" or "cfg: text" */
		if (n > sizeof(XLU_SOURCE) && !memcmp(msg, XLU_SOURCE ":", sizeof(XLU_SOURCE))) {
			msg += sizeof(XLU_SOURCE);
			if (isdigit((unsigned char)*msg)) {
				char *ep;
				long ln = strtol(msg, &ep, 10);

				if (*ep == ':') {
					line = ln > 0 && ln < INT_MAX ? (int)ln : 0;
					msg = ep + 1;
				}
			}
			while (msg < nl && *msg == ' ')
				msg++;
		}
		/* libxlutil's Python hint comes as "warning:" plus indented
		 * continuation lines. */
		if ((size_t)(nl - msg) > 10 && !memcmp(msg, "warning:  ", 10)) {
			l = DIAG_NOTE;
			msg += 10;
		} else if ((size_t)(nl - msg) > 9 && !memcmp(msg, "warning: ", 9)) {
			l = lv == DIAG_ERROR ? DIAG_WARNING : lv;
			msg += 9;
		}
		while (nl > msg && (nl[-1] == ' ' || nl[-1] == '\r'))
			nl--;
		if (nl > msg)
			guestcfg_diag_add(pc->diags, l, line, pc->k ? pc->k->name : NULL, "%s%.*s",
					  prefix, (int)(nl - msg), msg);
		p = (char *)memchr(p, '\n', (size_t)(end - p));
		p = p ? p + 1 : end;
	}
}

static const char *disk_format_name(libxl_disk_format f)
{
	switch (f) {
	case LIBXL_DISK_FORMAT_QCOW:
		return "qcow";
	case LIBXL_DISK_FORMAT_QCOW2:
		return "qcow2";
	case LIBXL_DISK_FORMAT_VHD:
		return "vhd";
	case LIBXL_DISK_FORMAT_QED:
		return "qed";
	default:
		return "raw"; /* raw, and "empty" for an empty cdrom */
	}
}

/* libxlutil strips xm's "phy:" prefix without recording it (the backend
 * stays UNKNOWN for libxl to guess), so look at the spec ourselves: a
 * positional or target= field starting with phy:, or a /dev path. */
static bool disk_is_phy(const char *spec, const libxl_device_disk *d)
{
	const char *p = spec;

	if (d->backend == LIBXL_DISK_BACKEND_PHY)
		return true;
	if (d->pdev_path && !strncmp(d->pdev_path, "/dev/", 5))
		return true;
	while (*p) {
		p += strspn(p, " \t");
		if (!strncmp(p, "target=", 7))
			return !strncmp(p + 7, "phy:", 4);
		if (!strncmp(p, "phy:", 4))
			return true;
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
	return false;
}

static int add_disk(struct parse_ctx *pc, int idx, const char *spec)
{
	struct guest_cfg *c = pc->cfg;
	struct guest_disk *gd;
	libxl_device_disk d;
	char what[32];
	int i, ret = -1;

	libxl_device_disk_init(&d);
	snprintf(what, sizeof(what), "disk %d: ", idx + 1);
	if (xlu_disk_parse(pc->xlu, 1, &spec, &d)) {
		int before = pc->diags->n_errors;

		drain_report(pc, DIAG_ERROR, true, what);
		if (pc->diags->n_errors == before)
			kdiag(pc, DIAG_ERROR, "%sinvalid disk specification \"%s\"", what, QV(spec));
		goto out;
	}
	drain_report(pc, DIAG_WARNING, true, what);
	if (c->n_disks >= GUEST_MAX_DISKS) {
		kdiag(pc, DIAG_ERROR, "too many disks (at most %d)", GUEST_MAX_DISKS);
		goto out;
	}
	gd = &c->disks[c->n_disks];
	memset(gd, 0, sizeof(*gd));
	gd->cdrom = d.is_cdrom != 0;
	gd->readonly = !d.readwrite;
	gd->backend = disk_is_phy(spec, &d) ? DISK_PHY : DISK_FILE;
	strcpy(gd->format, disk_format_name(d.format));
	if (!d.vdev || put_str(pc, gd->vdev, sizeof(gd->vdev), d.vdev, "virtual device name") < 0) {
		if (!d.vdev)
			kdiag(pc, DIAG_ERROR, "%sno virtual device (vdev) given", what);
		goto out;
	}
	for (i = 0; i < c->n_disks; i++) {
		if (!strcmp(c->disks[i].vdev, gd->vdev)) {
			kdiag(pc, DIAG_ERROR, "%svirtual device %s is already used by disk %d",
			      what, gd->vdev, i + 1);
			goto out;
		}
	}
	if (!d.pdev_path || !d.pdev_path[0]) {
		if (!gd->cdrom) {
			kdiag(pc, DIAG_ERROR, "%sno target (image file or device) given", what);
			goto out;
		}
	} else if (d.script) {
		/* e.g. xm's drbd:RES → block-drbd: the target is the
		 * script's argument, not a path; hagent prepares the storage
		 * itself (agent/storage.c) and hands the driver the device. */
		if (put_str(pc, gd->script, sizeof(gd->script), d.script, "block script") < 0 ||
		    put_str(pc, gd->target, sizeof(gd->target), d.pdev_path, "disk target") < 0)
			goto out;
	} else if (gd->backend == DISK_FILE) {
		if (resolve_path(pc, gd->target, sizeof(gd->target), d.pdev_path, "disk target") < 0)
			goto out;
	} else if (put_str(pc, gd->target, sizeof(gd->target), d.pdev_path, "disk target") < 0) {
		goto out;
	}
	{
		char err[256];
		if (stor_classify(gd->target, gd->script, &gd->stor, err, sizeof(err)) < 0) {
			kdiag(pc, DIAG_ERROR, "%s%s", what, err);
			goto out;
		}
	}
	c->n_disks++;
	ret = 0;
out:
	libxl_device_disk_dispose(&d);
	return ret;
}

static int h_disk(struct parse_ctx *pc, const struct key_def *k)
{
	XLU_ConfigList *l;
	const char *s;
	int i, n, ret = 0, rc = get_list(pc, k->what, &l, &n);

	if (rc)
		return rc < 0 ? -1 : 0;
	for (i = 0; i < n; i++) {
		if (!(s = list_item(pc, l, i, "a disk specification string")) || add_disk(pc, i, s) < 0)
			ret = -1;
	}
	return ret;
}

/* ---- network interfaces ------------------------------------------- */

static bool mac_valid(const char *s)
{
	int i;

	if (strlen(s) != 17)
		return false;
	for (i = 0; i < 17; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

enum vif_opt { VO_MAC, VO_BRIDGE, VO_MODEL, VO_TYPE, VO_VIFNAME, VO_IGNORED };

static const struct {
	const char *name;
	enum vif_opt opt;
} vif_opts[] = {
	{ "mac", VO_MAC }, { "bridge", VO_BRIDGE }, { "model", VO_MODEL },
	{ "type", VO_TYPE }, { "vifname", VO_VIFNAME },
	/* valid for xl, meaningless for hagent's QEMU tap + bridge setup */
	{ "ip", VO_IGNORED }, { "rate", VO_IGNORED }, { "script", VO_IGNORED },
	{ "backend", VO_IGNORED }, { "gatewaydev", VO_IGNORED }, { "devid", VO_IGNORED },
	{ "mtu", VO_IGNORED }, { "accel", VO_IGNORED }, { "trusted", VO_IGNORED },
	{ "untrusted", VO_IGNORED }, { "forwarddev", VO_IGNORED }, { "netdev", VO_IGNORED },
	{ "nat", VO_IGNORED }, { "vlan", VO_IGNORED }, { "vid", VO_IGNORED },
};

static int vif_option(struct parse_ctx *pc, struct guest_vif *v, const char *what,
		      const char *key, const char *val)
{
	size_t i;

	for (i = 0; i < sizeof(vif_opts) / sizeof(vif_opts[0]); i++)
		if (!strcmp(vif_opts[i].name, key))
			break;
	if (i == sizeof(vif_opts) / sizeof(vif_opts[0])) {
		kdiag(pc, DIAG_WARNING, "%sunknown option \"%s\" ignored", what, QV(key));
		return 0;
	}
	switch (vif_opts[i].opt) {
	case VO_MAC:
		if (!mac_valid(val)) {
			kdiag(pc, DIAG_ERROR, "%sexpected mac=xx:xx:xx:xx:xx:xx (hex), got \"%s\"", what, QV(val));
			return -1;
		}
		strcpy(v->mac, val);
		return 0;
	case VO_BRIDGE:
		if (strlen(val) > IFNAME_MAX) {
			kdiag(pc, DIAG_ERROR, "%sbridge name \"%s\" too long (at most %d characters)",
			      what, QV(val), IFNAME_MAX);
			return -1;
		}
		strcpy(v->bridge, val);
		return 0;
	case VO_MODEL:
		return put_str(pc, v->model, sizeof(v->model), val, "vif model");
	case VO_VIFNAME:
		if (strlen(val) > IFNAME_MAX) {
			kdiag(pc, DIAG_ERROR, "%svifname \"%s\" too long (at most %d characters)",
			      what, QV(val), IFNAME_MAX);
			return -1;
		}
		strcpy(v->ifname, val);
		return 0;
	case VO_TYPE:
		/* xm's type=ioemu asked for an emulated NIC: hagent's QEMU
		 * always emulates one. */
		if (strcmp(val, "ioemu") && strcmp(val, "vif")) {
			kdiag(pc, DIAG_ERROR, "%sexpected type=ioemu or type=vif, got \"%s\"", what, QV(val));
			return -1;
		}
		return 0;
	case VO_IGNORED:
		kdiag(pc, DIAG_NOTE, "%soption \"%s\" is ignored by hagent", what, key);
		return 0;
	}
	return 0;
}

/* One vifspec: "k=v, k=v" (xl splits on ',' and skips blanks). */
static int add_vif(struct parse_ctx *pc, int idx, const char *spec)
{
	struct guest_cfg *c = pc->cfg;
	struct guest_vif v;
	char what[32], tok[256];
	const char *p = spec;
	int ret = 0;

	memset(&v, 0, sizeof(v));
	snprintf(what, sizeof(what), "vif %d: ", idx + 1);
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *t = p, *eq;

		p += len;
		if (*p == ',')
			p++;
		while (len > 0 && isspace((unsigned char)*t))
			t++, len--;
		while (len > 0 && isspace((unsigned char)t[len - 1]))
			len--;
		if (len == 0)
			continue;
		if (len >= sizeof(tok)) {
			kdiag(pc, DIAG_ERROR, "%soption too long (at most %zu characters)", what, sizeof(tok) - 1);
			ret = -1;
			continue;
		}
		memcpy(tok, t, len);
		tok[len] = '\0';
		eq = strchr(tok, '=');
		if (eq) {
			tok[eq - tok] = '\0';
			eq++;
		} else {
			eq = "";
		}
		if (vif_option(pc, &v, what, tok, eq) < 0)
			ret = -1;
	}
	if (ret < 0)
		return -1;
	if (c->n_vifs >= GUEST_MAX_VIFS) {
		kdiag(pc, DIAG_ERROR, "too many network interfaces (at most %d)", GUEST_MAX_VIFS);
		return -1;
	}
	c->vifs[c->n_vifs++] = v;
	return 0;
}

static int h_vif(struct parse_ctx *pc, const struct key_def *k)
{
	XLU_ConfigList *l;
	const char *s;
	int i, n, ret = 0, rc = get_list(pc, k->what, &l, &n);

	if (rc)
		return rc < 0 ? -1 : 0;
	for (i = 0; i < n; i++)
		if (!(s = list_item(pc, l, i, "a vif specification string")) || add_vif(pc, i, s) < 0)
			ret = -1;
	return ret;
}

/* ---- the key table ------------------------------------------------ */

#define FIELD(f) offsetof(struct guest_cfg, f), sizeof(((struct guest_cfg *)0)->f)
#define KSTR(n, f, what) { n, h_string, FIELD(f), 0, 0, what, NULL }
#define KNUM(n, f, lo, hi, what) { n, h_number, FIELD(f), lo, hi, what, NULL }
#define KBOOL(n, f) { n, h_bool, FIELD(f), LONG_MIN, LONG_MAX, "0 or 1", NULL }
#define KBOOL_NOFIELD(n) { n, h_bool, 0, 0, LONG_MIN, LONG_MAX, "0 or 1", NULL }
#define KACTION(n, f) { n, h_action, FIELD(f), 0, 0, "an action name", action_names }
#define KCHOICE(n, f, ch) { n, h_choice, FIELD(f), 0, 0, "a name", ch }
#define KSPECIAL(n, fn, what) { n, fn, 0, 0, 0, 0, what, NULL }
#define KPATH(n, f) { n, h_path, FIELD(f), 0, 0, "a file name", NULL }
#define KLEGACY(n) { n, h_ignored, 0, 0, 0, 0, "xm legacy key, ignored by hagent", NULL }
#define KUNUSED(n) { n, h_ignored, 0, 0, 0, 0, "xl key not used by hagent, ignored", NULL }

/* Order matters where keys depend on each other: type before builder,
 * root and extra before cmdline. */
static const struct key_def keys[] = {
	KSPECIAL("name", h_name, "1 to 63 characters of A-Z a-z 0-9 _ . - not starting with - or ."),
	KSPECIAL("type", h_type, "hvm, pv or pvh"),
	KSPECIAL("builder", h_builder, "a builder name"),
	KPATH("kernel", kernel),
	KPATH("ramdisk", ramdisk),
	KSPECIAL("root", h_check_string, "a root device string"),
	KSPECIAL("extra", h_check_string, "a kernel command line string"),
	KSPECIAL("cmdline", h_cmdline, "a kernel command line string"),
	KNUM("memory", memory_mib, 1, MEMORY_MAX_MIB, "a number of MiB"),
	KNUM("maxmem", maxmem_mib, 1, MEMORY_MAX_MIB, "a number of MiB"),
	KNUM("vcpus", vcpus, 1, VCPUS_MAX, "a number of virtual CPUs"),
	KSPECIAL("disk", h_disk, "a list of disk specifications"),
	KSPECIAL("vif", h_vif, "a list of vif specifications"),
	KBOOL("vnc", vnc),
	KSTR("vnclisten", vnclisten, "an address string"),
	KNUM("vncdisplay", vncdisplay, 0, VNCDISPLAY_MAX, "a VNC display number"),
	KBOOL("vncunused", vncunused),
	KSPECIAL("vncpasswd", h_vncpasswd, "a password string"),
	KSPECIAL("serial", h_serial, "'pty' or a list of serial devices"),
	KSPECIAL("boot", h_boot, "boot devices from a, c, d, n (e.g. \"cd\", at most 7)"),
	KSPECIAL("usbdevice", h_usbdevice, "'tablet', 'mouse' or 'keyboard'"),
	KBOOL_NOFIELD("usb"),
	KBOOL("localtime", localtime),
	KBOOL("acpi", acpi),
	KACTION("on_poweroff", on_poweroff),
	KACTION("on_reboot", on_reboot),
	KACTION("on_crash", on_crash),
	KACTION("on_watchdog", on_watchdog),
	/* hagent's own */
	KCHOICE("ha_driver", driver, driver_names),
	KSPECIAL("ha_nodes", h_nodes, "a list of node names"),
	KNUM("ha_priority", ha_priority, INT_MIN, INT_MAX, "an integer priority"),
	KNUM("ha_restart_max", ha_restart_max, 0, 1000, "a number of restarts"),
	KNUM("ha_restart_window", ha_restart_window_s, 1, 86400, "a number of seconds"),
	KNUM("ha_migrate_downtime_ms", ha_migrate_downtime_ms, 1, 600000, "a number of milliseconds"),
	KBOOL("ha_migrate_auto_converge", ha_migrate_auto_converge),
	KNUM("ha_migrate_bandwidth_mib", ha_migrate_bandwidth_mib, 0, 1048576,
	     "a number of MiB/s (0 = unlimited)"),
	KCHOICE("ha_managed_by", ha_managed_by, managed_by_names),
	/* xm-era keys: xl dropped or never had them */
	KLEGACY("device_model"),
	KLEGACY("nic"),
	KLEGACY("ne2000"),
	KLEGACY("cdrom"),
	KLEGACY("vncviewer"),
	KLEGACY("vncconsole"),
	KLEGACY("monitor"),
	KLEGACY("display"),
	KLEGACY("xauthority"),
	KLEGACY("apic"),
	KLEGACY("pae"),
	KLEGACY("stdvga"),
	/* xl keys hagent does not act on */
	KUNUSED("device_model_version"),
	KUNUSED("device_model_override"),
	KUNUSED("device_model_args"),
	KUNUSED("device_model_args_hvm"),
	KUNUSED("device_model_args_pv"),
	KUNUSED("device_model_stubdomain_override"),
	KUNUSED("device_model_user"),
	KUNUSED("sdl"),
	KUNUSED("opengl"),
	KUNUSED("keymap"),
	KUNUSED("soundhw"),
	KUNUSED("vga"),
	KUNUSED("videoram"),
	KUNUSED("viridian"),
	KUNUSED("hap"),
	KUNUSED("nestedhvm"),
	KUNUSED("hpet"),
	KUNUSED("timer_mode"),
	KUNUSED("xen_platform_pci"),
	KUNUSED("uuid"),
	KUNUSED("maxvcpus"),
	KUNUSED("cpus"),
	KUNUSED("cpus_soft"),
	KUNUSED("cpu_weight"),
	KUNUSED("cap"),
	KUNUSED("pool"),
	KUNUSED("seclabel"),
	KUNUSED("bootloader"),
	KUNUSED("bootloader_args"),
	KUNUSED("firmware"),
	KUNUSED("bios"),
	KUNUSED("shadow_memory"),
	KUNUSED("tsc_mode"),
	KUNUSED("rtc_timeoffset"),
	KUNUSED("pci"),
	KUNUSED("vfb"),
	KUNUSED("vkb"),
	KUNUSED("vtpm"),
	KUNUSED("channel"),
	KUNUSED("usbctrl"),
	KUNUSED("usbdev"),
	KUNUSED("on_soft_reset"),
	KUNUSED("max_grant_frames"),
	KUNUSED("max_maptrack_frames"),
	KUNUSED("nomigrate"),
	KUNUSED("spice"),
};

static const struct key_def *key_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].name) == len && !memcmp(keys[i].name, name, len))
			return &keys[i];
	return NULL;
}

/* ---- parse driver ------------------------------------------------- */

static char default_driver[16] = "qemu";

void guestcfg_set_default_driver(const char *name)
{
	snprintf(default_driver, sizeof(default_driver), "%s", name);
}

static void cfg_defaults(struct guest_cfg *cfg, const char *source)
{
	memset(cfg, 0, sizeof(*cfg));
	if (source)
		snprintf(cfg->source, sizeof(cfg->source), "%s", source);
	memcpy(cfg->driver, default_driver, sizeof(cfg->driver));
	cfg->type = GT_PV;              /* xl's default */
	cfg->memory_mib = 128;
	cfg->maxmem_mib = 0;            /* = memory, settled after parsing */
	cfg->vcpus = 1;
	strcpy(cfg->vnclisten, "127.0.0.1");
	cfg->vncdisplay = -1;
	cfg->vncunused = true;
	strcpy(cfg->serial, "pty");
	cfg->acpi = true;
	cfg->on_poweroff = GA_DESTROY;
	cfg->on_reboot = GA_RESTART;
	cfg->on_crash = GA_DESTROY;
	cfg->on_watchdog = GA_DESTROY;
	cfg->ha_restart_max = 3;
	cfg->ha_restart_window_s = 600;
	cfg->ha_migrate_downtime_ms = 300;
	strcpy(cfg->ha_managed_by, "hagent");
}

static bool present(struct parse_ctx *pc, const char *name)
{
	return xlu_cfg_get_list(pc->xlu, name, NULL, NULL, 1) != ESRCH;
}

static int key_loc_cmp(const void *a, const void *b)
{
	const struct key_loc *x = *(const struct key_loc *const *)a;
	const struct key_loc *y = *(const struct key_loc *const *)b;
	size_t n = x->len < y->len ? x->len : y->len;
	int r = memcmp(x->name, y->name, n);

	if (r)
		return r;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x < y ? -1 : x > y; /* file order within one key */
}

/* Keys the scan saw that the table does not know, and keys assigned more
 * than once.  Sorted by name so a file of many keys stays cheap. */
static void scan_diags(struct parse_ctx *pc)
{
	const struct key_loc **v;
	size_t i;

	if (pc->scan.n == 0)
		return;
	v = malloc(pc->scan.n * sizeof(*v));
	if (!v) {
		guestcfg_diag_add(pc->diags, DIAG_ERROR, 0, NULL, "out of memory");
		return;
	}
	for (i = 0; i < pc->scan.n; i++)
		v[i] = &pc->scan.v[i];
	qsort(v, pc->scan.n, sizeof(*v), key_loc_cmp);
	for (i = 0; i < pc->scan.n; i++) {
		const struct key_loc *kl = v[i];
		bool first = i == 0 || v[i - 1]->len != kl->len ||
			     memcmp(v[i - 1]->name, kl->name, kl->len);
		bool fits = kl->len < sizeof(pc->diags->d[0].key);
		char name[sizeof(pc->diags->d[0].key)];

		if (fits) {
			memcpy(name, kl->name, kl->len);
			name[kl->len] = '\0';
		}
		if (first && !key_find(kl->name, kl->len)) {
			if (fits)
				guestcfg_diag_add(pc->diags, DIAG_WARNING, kl->line, name,
						  "unknown key, ignored");
			else
				guestcfg_diag_add(pc->diags, DIAG_WARNING, kl->line, NULL,
						  "unknown key '%.40s...', ignored", kl->name);
		} else if (!first && !kl->add && fits) {
			guestcfg_diag_add(pc->diags, DIAG_WARNING, kl->line, name,
					  "set more than once; the last value is used");
		}
	}
	free(v);
}

/* Diagnostics read best in file order; line 0 (whole-file) ones last. */
static void sort_diags(struct guestcfg_diags *diags, int from)
{
	int i, j;

	if (diags->n >= GUESTCFG_MAX_DIAGS)
		return; /* the overflow marker must stay last */
	for (i = from + 1; i < diags->n; i++) {
		struct guestcfg_diag t = diags->d[i];
		unsigned key = t.line ? (unsigned)t.line : UINT_MAX;

		for (j = i; j > from; j--) {
			unsigned pk = diags->d[j - 1].line ? (unsigned)diags->d[j - 1].line : UINT_MAX;

			if (pk <= key)
				break;
			diags->d[j] = diags->d[j - 1];
		}
		diags->d[j] = t;
	}
}

static void set_dir(struct parse_ctx *pc, const char *source)
{
	const char *slash = source ? strrchr(source, '/') : NULL;
	size_t n;

	pc->dir[0] = '\0';
	if (!slash)
		return;
	n = (size_t)(slash - source);
	if (n == 0)
		n = 1; /* "/x.cfg" */
	if (n < sizeof(pc->dir)) {
		memcpy(pc->dir, source, n);
		pc->dir[n] = '\0';
	}
}

static void run_keys(struct parse_ctx *pc)
{
	struct guest_cfg *c = pc->cfg;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key_loc *kl = key_scan_last(&pc->scan, keys[i].name);

		pc->k = &keys[i];
		pc->line = kl ? kl->line : 0;
		keys[i].fn(pc, &keys[i]);
	}
	/* Cross-key rule, reported on the key that has to change. */
	if (c->maxmem_mib == 0) {
		c->maxmem_mib = c->memory_mib;
	} else if (c->maxmem_mib < c->memory_mib) {
		const struct key_loc *kl = key_scan_last(&pc->scan, "maxmem");

		pc->k = key_find("maxmem", strlen("maxmem"));
		pc->line = kl ? kl->line : 0;
		kdiag(pc, DIAG_ERROR, "must not be less than memory (%ld MiB), got %ld",
		      c->memory_mib, c->maxmem_mib);
	}
	/* xl enables VNC for HVM guests unless told otherwise (xl.cfg(5)). */
	if (!present(pc, "vnc"))
		c->vnc = c->type == GT_HVM;
	c->on_watchdog_set = present(pc, "on_watchdog");
	pc->k = NULL;
}

int guestcfg_parse(const char *data, size_t len, const char *source,
		   struct guest_cfg *cfg, struct guestcfg_diags *diags)
{
	struct parse_ctx pc = { .cfg = cfg, .diags = diags };
	int errors0 = diags->n_errors, n0 = diags->n;
	const char *nul;
	int rc;

	if (!source)
		source = "";
	cfg_defaults(cfg, source);
	if (strlen(source) >= sizeof(cfg->source))
		guestcfg_diag_add(diags, DIAG_ERROR, 0, NULL, "source name too long");
	if (len > GUEST_FILE_MAX) {
		guestcfg_diag_add(diags, DIAG_ERROR, 0, NULL,
				  "guest file is larger than %d bytes, refused", GUEST_FILE_MAX);
		goto out;
	}
	/* libxlutil aborts on a NUL inside a quoted string (its dequote uses
	 * strlen): a guest file is text, refuse binary before it sees it. */
	nul = data ? memchr(data, '\0', len) : NULL;
	if (nul) {
		const char *p;
		int line = 1;

		for (p = data; p < nul; p++)
			line += *p == '\n';
		guestcfg_diag_add(diags, DIAG_ERROR, line, NULL,
				  "NUL byte in guest file; expected a text file");
		goto out;
	}
	if (!data)
		data = "";
	set_dir(&pc, source);
	if (key_scan_run(&pc.scan, data, len) < 0) {
		guestcfg_diag_add(diags, DIAG_ERROR, 0, NULL, "out of memory");
		goto out;
	}
	pc.report = open_memstream(&pc.rbuf, &pc.rlen);
	if (!pc.report) {
		guestcfg_diag_add(diags, DIAG_ERROR, 0, NULL, "cannot set up parser: %s", strerror(errno));
		goto out;
	}
	pc.xlu = xlu_cfg_init(pc.report, XLU_SOURCE);
	if (!pc.xlu) {
		guestcfg_diag_add(diags, DIAG_ERROR, 0, NULL, "out of memory");
		goto out;
	}
	rc = xlu_cfg_readdata(pc.xlu, data, (int)len);
	if (rc) {
		int before = diags->n_errors;

		drain_report(&pc, DIAG_ERROR, false, "");
		if (diags->n_errors == before)
			guestcfg_diag_add(diags, DIAG_ERROR, 0, NULL, "cannot parse: %s", strerror(rc));
		/* After a failed read libxlutil's getters are undefined. */
		goto out;
	}
	drain_report(&pc, DIAG_WARNING, false, "");
	run_keys(&pc);
	scan_diags(&pc);
out:
	if (pc.xlu)
		xlu_cfg_destroy(pc.xlu);
	if (pc.report)
		fclose(pc.report);
	free(pc.rbuf);
	free(pc.scan.v);
	if (diags->n > n0)
		sort_diags(diags, n0);
	return diags->n_errors > errors0 ? -1 : 0;
}

int guestcfg_parse_file(const char *path, struct guest_cfg *cfg, struct guestcfg_diags *diags)
{
	char *buf = NULL;
	ssize_t n;
	int ret;

	n = fs_read_file(path, GUEST_FILE_MAX, &buf);
	if (n < 0) {
		int e = errno;

		cfg_defaults(cfg, path);
		if (e == EFBIG)
			guestcfg_diag_add(diags, DIAG_ERROR, 0, NULL,
					  "guest file is larger than %d bytes, refused", GUEST_FILE_MAX);
		else
			guestcfg_diag_add(diags, DIAG_ERROR, 0, NULL, "cannot read guest file: %s",
					  strerror(e));
		return -1;
	}
	ret = guestcfg_parse(buf, (size_t)n, path, cfg, diags);
	free(buf);
	return ret;
}

/* ---- host checks -------------------------------------------------- */

/* what: "kernel", "disk image", ...; phy: must be a block device. */
static int check_path(struct guestcfg_diags *diags, const char *key, const char *what,
		      const char *path, bool phy)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			guestcfg_diag_add(diags, DIAG_ERROR, 0, key, "%s %s does not exist", what, path);
		else
			guestcfg_diag_add(diags, DIAG_ERROR, 0, key, "%s %s: %s", what, path,
					  strerror(errno));
		return -1;
	}
	if (phy && !S_ISBLK(st.st_mode)) {
		guestcfg_diag_add(diags, DIAG_ERROR, 0, key, "%s %s is not a block device", what, path);
		return -1;
	}
	if (!phy && S_ISDIR(st.st_mode)) {
		guestcfg_diag_add(diags, DIAG_ERROR, 0, key, "%s %s is a directory", what, path);
		return -1;
	}
	return 0;
}

int guestcfg_check_host(const struct guest_cfg *cfg, struct guestcfg_diags *diags)
{
	int i, ret = 0;

	if (!guest_name_valid(cfg->name)) {
		guestcfg_diag_add(diags, DIAG_ERROR, 0, "name", "invalid guest name \"%s\"", cfg->name);
		ret = -1;
	}
	if (cfg->kernel[0] && check_path(diags, "kernel", "kernel", cfg->kernel, false) < 0)
		ret = -1;
	if (cfg->ramdisk[0] && check_path(diags, "ramdisk", "ramdisk", cfg->ramdisk, false) < 0)
		ret = -1;
	for (i = 0; i < cfg->n_disks && i < GUEST_MAX_DISKS; i++) {
		const struct guest_disk *d = &cfg->disks[i];
		bool phy = d->backend == DISK_PHY;
		const char *what = phy ? "block device" : d->cdrom ? "cdrom image" : "disk image";

		if (!d->target[0])
			continue; /* empty cdrom drive */
		if (stor_activated(d->stor.kind))
			continue; /* its device appears once hagent activates it */
		if (check_path(diags, "disk", what, d->target, phy) < 0)
			ret = -1;
	}
	return ret;
}

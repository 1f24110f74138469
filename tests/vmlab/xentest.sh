# shellcheck shell=bash
# The common part of the VM lab's hagentd tests (test-xen.sh,
# test-storage.sh), sourced first: the skips, where the source tree and the
# build are, the TAP helpers (tap.sh), a lab directory of its own
# (VMLAB_DIR=/tmp/hagent-XT_NAME.XXXXXX, removed with the lab at exit) with
# hagentd in every host (rc-hagentd), and helpers that run commands in the
# hosts with a deadline:
#   vx NODE CMD...    a command in NODE's dom0 (stdin /dev/null; 300 s at most)
#   hx NODE ARGS...   hactl there
#   field NODE GUEST KEY, state_is / owner_is NODE GUEST VALUE (hactl --json list)
#   domid / no_domain NODE NAME, members NODE COUNT, log_tail NODE [LINES]
#   secs MS           "12.345"
# Set XT_NAME before sourcing it.  Exits 77 where the VM lab cannot run: not
# root, HAGENT_VMLAB=skip, a tool missing, no build, a sanitizer build (its
# runtime is not in the VM image).
[ "$(id -u)" = 0 ] || { echo "SKIP: the VM lab runs as root"; exit 77; }
[ "${HAGENT_VMLAB:-}" != skip ] || { echo "SKIP: HAGENT_VMLAB=skip (scripts/test runs it in a pass of its own)"; exit 77; }
for t in qemu-system-x86_64 qemu-img debootstrap mkfs.ext4 ssh ssh-keygen unshare nsenter python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "SKIP: no $t (scripts/install-deps)"; exit 77; }
done
SRC=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
SRC=$(cd "$SRC" && pwd -P)
HAGENT_BUILD=${HAGENT_BUILD:-${abs_top_builddir:-$SRC/build}}
HAGENT_BUILD=$(cd "$HAGENT_BUILD" && pwd -P)
[ -x "$HAGENT_BUILD/bin/hagentd" ] || { echo "SKIP: no $HAGENT_BUILD/bin/hagentd"; exit 77; }
[ -f "$HAGENT_BUILD/tests/guest/testguest.elf" ] || { echo "SKIP: no testguest.elf"; exit 77; }
if ldd "$HAGENT_BUILD/bin/hagentd" | grep -q 'libasan\|libubsan'; then
	echo "SKIP: a sanitizer build (its runtime is not in the VM image)"
	exit 77
fi
export HAGENT_BUILD
VMLAB=$SRC/tests/vmlab/vmlab
VMLAB_DIR=$(mktemp -d "/tmp/hagent-${XT_NAME:-vmtest}.XXXXXX")
export VMLAB VMLAB_DIR VMLAB_RC=$SRC/tests/vmlab/rc-hagentd
unset VMLAB_KEEP

# shellcheck source=tests/vmlab/tap.sh
. "$SRC/tests/vmlab/tap.sh"
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
xt_cleanup() {
	"$VMLAB" down >/dev/null 2>&1
	rm -rf "$VMLAB_DIR"
}
trap xt_cleanup EXIT

vx() { timeout 300 "$VMLAB" exec "$@" </dev/null; }    # node cmd... (never hangs the suite)
hx() { local n=$1; shift; vx "$n" hactl "$@"; }         # node hactl-args...
field() { # node guest field: from hactl --json list
	hx "$1" --json list "$2" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
g = d[0] if isinstance(d, list) else d.get("guests", [d])[0]
print(g.get(sys.argv[1], ""))' "$3" 2>/dev/null
}
state_is() { [ "$(field "$1" "$2" state)" = "$3" ]; }      # node guest state
owner_is() { [ "$(field "$1" "$2" node)" = "$3" ]; }       # node guest owner
domid() { vx "$1" xl domid "$2" 2>/dev/null; }              # node name
no_domain() { ! vx "$1" xl domid "$2" >/dev/null 2>&1; }    # node name
members() { [ "$(vx "$1" hactl status 2>/dev/null | grep -c 'member, hagentd up')" = "$2" ]; }
log_tail() { tail -n "${2:-15}" "$VMLAB_DIR/$1/vm/log/hagentd.log" 2>/dev/null | sed "s/^/# $1: /"; }

#!/bin/bash
# tests/powercut/run.sh: power-cut test of fstrackd in a QEMU guest (TCG).
#
# Per cycle (see driver.py and guest.sh):
#   host:    a fresh ext4 image holding a populated tree (workload.py
#            --populate, mkfs.ext4 -d), a small ext4 results image;
#   boot 1:  the guest mounts the image, starts fstrackd (state dir on the
#            tracked filesystem, excluded from the oracle, or on a disk of its
#            own: POWERCUT_STATE), takes snapshot N,
#            sync, oracle.py record BEFORE (onto the results disk, sync),
#            runs workload.py printing "PC STEP n" per acknowledged step;
#            the host kill -9s qemu after a random step (the power cut);
#   boot 2:  the guest mounts the image (journal replay), starts fstrackd
#            (reconcile), `fstrack changed --since N --dirs -0`, oracle.py
#            record AFTER, stops fstrackd, reboots (qemu exits);
#   host:    pulls the results out of the image with debugfs (no mount) and
#            runs oracle.py compare: zero misses required.
#
# The drive's write cache (POWERCUT_CACHE).  kill -9 of qemu loses the
# guest's memory but not a drive's volatile write cache: every write the
# guest issued is in the host's file.  A cache=lose cycle models the cache:
#   boot 1:  the tracked fs (and a separate state disk) sits on dm-log-writes
#            (each logging to a disk of its own, stable pages); at the cut
#            step the guest freezes them itself (dmsetup suspend --nolockfs,
#            then an error table: the swap drains the log, the writes no
#            flush covered included) and says "PC FROZEN"; then the kill;
#   host:    replaylog.py check: the log is complete and pristine copy +
#            every logged write == the disk the guest wrote (else a harness
#            error); replaylog.py build: each disk on its own rebuilt from
#            its pristine copy with every write up to its last FLUSH, the FUA
#            writes, and a seeded random subset (4 KiB blocks, keep
#            probability 0, 0.5 or random) of the writes after it: what a
#            drive with a volatile cache may hold after a power cut;
#   boot 2:  as above, on the rebuilt disks.
# Phase 1 writes dirty data back after 1 s (not 30 s), so that file data
# reaches the disks as unflushed writes within a cycle.
#
# Environment:
#   POWERCUT_CYCLES (3)   POWERCUT_OPS (300)  POWERCUT_PROCS (3)
#   POWERCUT_SEED (random, printed)           POWERCUT_HARDLINKS (lenient)
#   POWERCUT_STATE (alternate: odd cycles keep the state dir on the tracked
#     fs, even cycles on a disk of its own; or same, separate)
#   POWERCUT_CACHE (alternate: cycles 1, 2 lose the write cache, 3, 4 keep
#     it, 5, 6 lose it...: with POWERCUT_STATE=alternate every 4 cycles
#     cover the 4 pairs; or keep, lose)
#   POWERCUT_RETRIES (2: a cycle that the harness failed is run again)
#   POWERCUT_JOBS (1: cycles run one at a time)  POWERCUT_DIRS/FILES (100/300)
#   POWERCUT_LEVEL (full) POWERCUT_QEMU_TIMEOUT (300 s per boot)
#   POWERCUT_TOTAL_TIMEOUT (3600 s)           POWERCUT_KEEP=1 keep the work dir
#   POWERCUT_WORKDIR (default: mktemp -d under /var/tmp)
#   POWERCUT_NO_INSTALL=1 never apt-get install (skip instead)
#   top_srcdir / top_builddir (set by make check-powercut)
#
# Each cycle prints its must-report directories (and, losing the cache, the
# writes each disk kept and lost), the summary the total of all cycles.
#
# Exit: 0 pass, 1 fail (a miss, a daemon error), 77 skip, 99 set-up or
# harness broken (also a harness error left after POWERCUT_RETRIES).
set -eu
set -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
T0=$(date +%s)

say() { echo "[powercut $(date +%T)] $*"; }
skip() { echo "SKIP: powercut: $*"; exit 77; }
hard_error() { echo "ERROR: powercut: $*" >&2; exit 99; }

[ "$(id -u)" -eq 0 ] || skip "needs root (apt-get, kernel image, images)"
[ -x "$top_builddir/fstrackd" ] || hard_error "$top_builddir/fstrackd not built"
[ -x "$top_builddir/fstrack" ] || hard_error "$top_builddir/fstrack not built"

HOSTPY=/usr/bin/python3.11
[ -x "$HOSTPY" ] || HOSTPY=$(readlink -f /usr/bin/python3 2>/dev/null || true)
[ -x "$HOSTPY" ] || skip "no /usr/bin/python3 to copy into the guest"

# --- packages ---------------------------------------------------------------
have_pkgs() {
	command -v qemu-system-x86_64 >/dev/null 2>&1 &&
		[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -cx insmod >/dev/null &&
		! ldd /bin/busybox >/dev/null 2>&1 &&
		ls /boot/vmlinuz-* >/dev/null 2>&1 &&
		command -v mkfs.ext4 >/dev/null 2>&1 && command -v debugfs >/dev/null 2>&1 &&
		command -v cpio >/dev/null 2>&1 && command -v xz >/dev/null 2>&1 &&
		[ -x /usr/sbin/dmsetup ]
}
if ! have_pkgs; then
	[ "${POWERCUT_NO_INSTALL:-0}" != 1 ] || skip "packages missing and POWERCUT_NO_INSTALL=1"
	say "installing qemu-system-x86 linux-image-amd64 busybox-static"
	export DEBIAN_FRONTEND=noninteractive
	{ timeout 600 apt-get install -y --no-install-recommends qemu-system-x86 \
		linux-image-amd64 busybox-static cpio xz-utils e2fsprogs dmsetup ||
		{ timeout 300 apt-get update -q &&
			timeout 600 apt-get install -y --no-install-recommends \
				qemu-system-x86 linux-image-amd64 busybox-static \
				cpio xz-utils e2fsprogs dmsetup; }; } >/tmp/powercut-apt.log 2>&1 ||
		{ tail -n 20 /tmp/powercut-apt.log; skip "apt-get install failed (offline?)"; }
	have_pkgs || hard_error "packages installed but still missing something"
fi

# --- work dir ---------------------------------------------------------------
WORK=${POWERCUT_WORKDIR:-}
if [ -z "$WORK" ]; then
	WORK=$(mktemp -d /var/tmp/fstrack-powercut.XXXXXX)
else
	mkdir -p "$WORK"
fi
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	# driver.py kills its own qemu; nothing here is mounted (debugfs, -d).
	if [ "${POWERCUT_KEEP:-0}" = 1 ]; then
		echo "powercut: work dir kept: $WORK"
	elif [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		# keep the logs, drop the big files
		rm -f "$WORK"/*.img "$WORK"/vmlinux "$WORK"/initramfs.cpio \
			"$WORK"/cycle-*/*.img 2>/dev/null || true
		rm -rf "$WORK/toolsroot" "$WORK/initramfs"
		echo "powercut: work dir (logs) kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	echo "powercut: total run time $(($(date +%s) - T0)) s"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- guest kernel: uncompressed vmlinux for PVH direct boot ------------------
KVER=$(cd /boot && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
[ -d "/lib/modules/$KVER" ] || hard_error "no /lib/modules/$KVER"
say "guest kernel $KVER"
"$HOSTPY" - "/boot/vmlinuz-$KVER" "$WORK/vmlinux" <<'PYEOF' || hard_error "cannot extract vmlinux"
import subprocess, sys
data = open(sys.argv[1], "rb").read()
magic = b"\xfd7zXZ\x00"
pos = data.find(magic)
while pos >= 0:
    p = subprocess.run(["xz", "-dc"], input=data[pos:], capture_output=True)
    if p.stdout[:4] == b"\x7fELF":
        open(sys.argv[2], "wb").write(p.stdout)
        sys.exit(0)
    pos = data.find(magic, pos + 1)
sys.exit("no xz-compressed ELF kernel in %s" % sys.argv[1])
PYEOF

say "vmlinux extracted ($(($(date +%s) - T0)) s)"

# --- initramfs: busybox, modules, /init ---------------------------------------
IR=$WORK/initramfs
rm -rf "$IR"
mkdir -p "$IR"/{bin,dev,proc,sys,tools,modules}
cp /bin/busybox "$IR/bin/busybox"
: >"$IR/modules/order"
for m in virtio_pci virtio_blk crc32c_generic ext4 dm-mod dm-log-writes; do
	modprobe -S "$KVER" --show-depends "$m" || hard_error "modprobe --show-depends $m"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
	cp "$ko" "$IR/modules/"
	basename "$ko" >>"$IR/modules/order"
done
[ -s "$IR/modules/order" ] || hard_error "no modules for the initramfs"
cp "$here/init" "$IR/init"
chmod 755 "$IR/init"
(cd "$IR" && find . | cpio -o -H newc --quiet) >"$WORK/initramfs.cpio" ||
	hard_error "cpio failed"

say "initramfs ready ($(($(date +%s) - T0)) s)"

# --- tools image: a small root with busybox, python, fstrackd, the tests ------
TR=$WORK/toolsroot
rm -rf "$TR"
mkdir -p "$TR"/{bin,mnt,results,run,tmp,proc,sys,dev,opt/fstrack,usr/bin,usr/lib,usr/sbin}
cp /bin/busybox "$TR/bin/busybox"
chroot "$TR" /bin/busybox --install -s /bin || hard_error "busybox --install"
copy_with_libs() { # FILE...: copy the files' ldd libraries to the same paths
	local l
	{ ldd "$@" 2>/dev/null || true; } | { grep -o '/[^ :]*' || true; } |
		sort -u | while read -r l; do
			case $l in /lib* | /usr/lib*) ;; *) continue ;; esac
			[ -e "$l" ] && [ ! -e "$TR$l" ] || continue
			mkdir -p "$TR$(dirname "$l")"
			cp -L "$l" "$TR$l"
		done
}
cp "$HOSTPY" "$TR/usr/bin/python3"

pylib=$("$HOSTPY" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
mkdir -p "$TR$pylib"
(cd "$pylib" && tar --exclude=./test --exclude=./idlelib --exclude=./tkinter \
	--exclude=./turtledemo --exclude=./ensurepip --exclude=./lib2to3 \
	--exclude=./pydoc_data --exclude='./config-*' --exclude=./site-packages \
	--exclude=./dist-packages --exclude=./distutils -cf - .) |
	(cd "$TR$pylib" && tar -xf -) || hard_error "cannot copy $pylib"
copy_with_libs "$HOSTPY" "$TR$pylib"/lib-dynload/*.so \
	"$top_builddir/fstrackd" "$top_builddir/fstrack" /usr/sbin/dmsetup
cp /usr/sbin/dmsetup "$TR/usr/sbin/dmsetup"
cp "$top_builddir/fstrackd" "$top_builddir/fstrack" "$TR/opt/fstrack/"
cp "$top_srcdir/tests/oracle.py" "$top_srcdir/tests/workload.py" \
	"$here/guest.sh" "$TR/opt/fstrack/"
chmod 755 "$TR/opt/fstrack/guest.sh"
# Host-side sanity check of the tools root (also catches a missing library).
chroot "$TR" /usr/bin/python3 -c 'import argparse, ctypes, json, mmap, random, select, struct' ||
	hard_error "python in the tools root does not run"
chroot "$TR" /opt/fstrack/fstrack --help >/dev/null 2>&1 || true
# (the host kernel may have no device-mapper: only a loader failure counts)
dmrc=0
chroot "$TR" /usr/sbin/dmsetup --version >/dev/null 2>&1 || dmrc=$?
[ "$dmrc" -ne 127 ] || hard_error "dmsetup in the tools root does not run"
say "tools root copied ($(($(date +%s) - T0)) s)"
rm -f "$WORK/tools.img"
timeout 300 mkfs.ext4 -q -F -L pctools -d "$TR" "$WORK/tools.img" 256M >/dev/null ||
	hard_error "mkfs.ext4 -d tools image failed"
rm -rf "$TR" "$IR"
say "images ready in $WORK ($(($(date +%s) - T0)) s)"

rc=0
timeout -s TERM $((${POWERCUT_TOTAL_TIMEOUT:-3600} + 900)) \
	"$HOSTPY" "$here/driver.py" --work "$WORK" --kernel "$WORK/vmlinux" \
	--initrd "$WORK/initramfs.cpio" --tools "$WORK/tools.img" || rc=$?
exit "$rc"

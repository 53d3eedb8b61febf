#!/bin/bash
# repro-gone-dir.sh [rmtree|rename]: host-side reproduction (no QEMU) of the
# miss found by the power-cut test (cycle with the state dir on a disk of its
# own).  A power cut can leave the database AHEAD of the tracked filesystem:
# the daemon committed events whose filesystem changes were still in the
# uncommitted ext4 journal and are lost.  Modelled here by restoring the
# image of the filesystem as it was before the changes.  `rmtree`: the DB
# marked A/sub gone (dirs.gone=1) but A/sub exists again after the cut; a
# change to A/sub/f made while fstrackd is down is rescanned but recorded
# under the gone row, so `changed --dirs` does not list A/sub: a MISS.
# (`rename`: dirs.path is stale but the barrier's path refresh fixes it.)
# Root; runs in a private mount namespace; exit 1 when A/sub is missed.
set -u
[ "$(id -u)" -eq 0 ] || { echo "needs root"; exit 77; }
if [ "${PC_REPRO_NS:-}" != 1 ]; then
	PC_REPRO_NS=1 exec unshare -m --propagation private "$0" "$@"
fi
top=$(cd "$(dirname "$0")/../.." && pwd)
F=${FSTRACKD:-$top/fstrackd} C=${FSTRACK:-$top/fstrack}
MODE=${1:-rmtree}
W=$(mktemp -d /tmp/pcrepro.XXXXXX)
cd "$W" || exit 99
trap 'pkill -TERM -f "^$F --state-dir $W/state" 2>/dev/null; sleep 1; umount "$W/mnt" 2>/dev/null; rm -rf "$W"' EXIT
truncate -s 64M img && mkfs.ext4 -q -F img || exit 99
mkdir mnt state run
mount -o loop img mnt || exit 99
mkdir -p mnt/A/sub mnt/B && echo x >mnt/A/sub/f && echo y >mnt/A/sub/g
umount mnt
cp --sparse=always img img.before  # the filesystem as the cut will leave it
mount -o loop img mnt
"$F" --state-dir "$W/state" --socket "$W/run/s" "$W/mnt" || exit 99
N=$("$C" -s "$W/run/s" snapshot | tail -n 1)
case $MODE in
rmtree) rm -rf mnt/A/sub ;;
rename) mv mnt/A/sub mnt/B/moved ;;
esac
"$C" -s "$W/run/s" changed --since "$N" >/dev/null    # barrier: committed
pkill -TERM -f "^$F --state-dir $W/state"; sleep 2
umount mnt
cp --sparse=always img.before img   # the cut lost the fs changes, not the DB's
mount -o loop img mnt
echo changed-while-down >>mnt/A/sub/f
umount mnt && mount -o loop img mnt
"$F" --state-dir "$W/state" --socket "$W/run/s" "$W/mnt" || exit 99
"$C" -s "$W/run/s" changed --since "$N" --dirs >dirs.out
echo "--- fstrack changed --since $N --dirs:"; cat dirs.out
echo "--- fstrack changed --since $N:"; "$C" -s "$W/run/s" changed --since "$N"
echo "--- dirs table:"; sqlite3 state/fstrack.db "SELECT id, path, gone FROM dirs" 2>/dev/null
if grep -qx "$W/mnt/A/sub" dirs.out; then
	echo "ok: $W/mnt/A/sub reported"
	exit 0
fi
echo "MISS: $W/mnt/A/sub (its entry f changed) not reported"
exit 1

#!/bin/bash
# rsync-newdirs.sh -- fstrack-rsync when many directories are new or
# changed at once, against a plain `rsync -a --delete` copying the same.
#
# SRC: a loop ext4 (made with an inode per 4 KiB) tracked by fstrackd
# (DURABILITY, default strict; state on its own tmpfs), holding a small base
# tree; DEST1 (fstrack-rsync's) and DEST2 (plain rsync's): two more loop
# ext4s.  Both are synced once, untimed.  Then every round:
#	new:	create NEW_DIRS (10,000) directories of NEW_FILES (100) files
#		of 1-4 KiB each under SRC/new (untimed), sync, then time, in
#		alternating order:
#		    fstrack	fstrack-rsync SRC/ DEST1	(incremental)
#		    plain	rsync -a --delete SRC/ DEST2/
#		and verify that both equal SRC (rsync -n -i prints nothing);
#	list:	append to one file in each of those directories (untimed), then
#		time `RSYNC=true fstrack-rsync --dry-run` (the barrier, reading
#		the changes and building the list of NEW_DIRS changed
#		directories: rsync is replaced by true);
#	changed: time the incremental sync of those changes against plain,
#		and verify;
#	remove SRC/new and sync both destinations (untimed).
#
#	sudo bench/rsync-newdirs.sh
#	sudo REPEATS=1 NEW_FILES=10 bench/rsync-newdirs.sh	# quick look
#
# Environment: REPEATS (3), NEW_DIRS (10000), NEW_FILES (100), DURABILITY
# (strict|async), IMG_SIZE (16G, sparse, for each of the three images),
# RSYNC_TIMEOUT (1800 s per rsync), and common.sh's.

# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
bench_init "$@"

NEW_DIRS=${NEW_DIRS:-10000}
NEW_FILES=${NEW_FILES:-100}
DURABILITY=${DURABILITY:-strict}
IMG_SIZE=${IMG_SIZE:-16G}
RSYNC_TIMEOUT=${RSYNC_TIMEOUT:-1800}
case $NEW_DIRS$NEW_FILES in
*[!0-9]*) die "NEW_DIRS and NEW_FILES must be integers" ;;
esac
case $DURABILITY in
strict | async) ;;
*) die "DURABILITY must be strict or async" ;;
esac
command -v rsync >/dev/null 2>&1 || die "rsync not found"
[ -x "$TOP/fstrack-rsync" ] || die "$TOP/fstrack-rsync missing (make)"
cp "$TOP/fstrack-rsync" "$WORK/bin/" || die "cannot copy fstrack-rsync"
WRAP=$WORK/bin/fstrack-rsync

SMNT=$WORK/src
SRC=$SMNT/tree
D1MNT=$WORK/dest1
DEST=$D1MNT/tree
D2MNT=$WORK/dest2
DEST2=$D2MNT/tree
STATEDIR=$WORK/state
LOGS=$WORK/logs
RES=$WORK/results
mkdir -p "$LOGS"
: >"$RES"

# sync_wrap LOG: fstrack-rsync SRC/ DEST; prints the seconds taken.
sync_wrap() {
	local t0 rc=0
	t0=$(now)
	timeout "$RSYNC_TIMEOUT" "$WRAP" -s "$SOCK" -v "$SRC/" "$DEST" >"$1" 2>&1 ||
		rc=$?
	[ "$rc" -eq 0 ] || { tail -n 20 "$1" >&2; die "fstrack-rsync exited $rc"; }
	elapsed "$t0"
}

# sync_plain LOG: rsync -a --delete SRC/ DEST2/; prints the seconds taken.
sync_plain() {
	local t0 rc=0
	t0=$(now)
	timeout "$RSYNC_TIMEOUT" rsync -a --delete "$SRC/" "$DEST2/" >"$1" 2>&1 ||
		rc=$?
	[ "$rc" -eq 0 ] || { tail -n 20 "$1" >&2; die "rsync exited $rc"; }
	elapsed "$t0"
}

# verify TAG: both destinations equal SRC, or die.
verify() {
	local d
	for d in "$DEST" "$DEST2"; do
		timeout "$RSYNC_TIMEOUT" rsync -a --delete -n -i "$SRC/" "$d/" \
			>"$WORK/verify" 2>&1 || die "$1: verify rsync to $d failed"
		if [ -s "$WORK/verify" ]; then
			head -n 20 "$WORK/verify" >&2
			die "$1: $d differs from SRC in $(wc -l <"$WORK/verify") item(s)"
		fi
	done
}

# pair TAG: the two syncs, timed, order alternating with the round.
pair() {
	local tag=$1 v t
	local -a order=(fstrack plain)
	[ $((round % 2)) -eq 1 ] || order=(plain fstrack)
	for v in "${order[@]}"; do
		sync
		if [ "$v" = fstrack ]; then
			t=$(sync_wrap "$LOGS/$tag-fstrack.log")
			echo "${tag}_fstrack r$round s=$t dirs=$(listed "$LOGS/$tag-fstrack.log")" >>"$RES"
		else
			t=$(sync_plain "$LOGS/$tag-plain.log")
			echo "${tag}_plain r$round s=$t" >>"$RES"
		fi
		msg "r$round $tag: $v ${t}s"
	done
	verify "r$round $tag"
}

# listed LOG: how many directories fstrack-rsync -v listed.
listed() {
	sed -n 's/.* reported, \([0-9]*\) to sync under .*/\1/p' "$1" | tail -n 1
}

# field TAG KEY: the KEY values of TAG's lines.
field() {
	awk -v v="$1" -v k="$2" '$1 == v { for (i = 3; i <= NF; i++) {
		split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$RES"
}

# med TAG KEY: "median (min..max)".
med() {
	field "$1" "$2" >"$WORK/s"
	stats "$WORK/s" | awk '{print $1, "(" $2 ".." $3 ")"}'
}

# --- set-up
make_loop_ext4 src "$IMG_SIZE" "$SMNT" -i 4096
make_loop_ext4 dest1 "$IMG_SIZE" "$D1MNT" -i 4096
make_loop_ext4 dest2 "$IMG_SIZE" "$D2MNT" -i 4096
make_tmpfs "$STATEDIR" 900m
mkdir -p "$SRC/base" "$DEST2"
for i in $(seq 100); do
	mkdir -p "$SRC/base/d$i"
	echo "$i" >"$SRC/base/d$i/f"
done
start_daemon "$STATEDIR" --durability "$DURABILITY" "$SMNT" ||
	die "fstrackd did not start"
sync_wrap "$LOGS/first.log" >/dev/null
sync_plain "$LOGS/first-plain.log" >/dev/null
verify setup

for ((round = 1; round <= REPEATS; round++)); do
	msg "r$round: creating $NEW_DIRS directories of $NEW_FILES files"
	"$PY" - "$SRC/new" "$NEW_DIRS" "$NEW_FILES" "$round" <<'EOF' ||
import os, random, sys
top, ndirs, nfiles, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
blob = os.urandom(4096)
for d in range(ndirs):
    p = os.path.join(top, "g%03d" % (d // 100), "d%05d" % d)
    os.makedirs(p)
    for f in range(nfiles):
        fd = os.open(os.path.join(p, "f%03d" % f), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, blob[:rnd.randint(1024, 4096)])
        os.close(fd)
EOF
		die "creating the new directories failed"
	pair new
	msg "r$round: changing one file in each new directory"
	"$PY" - "$SRC/new" "$NEW_DIRS" <<'EOF' || die "changing the directories failed"
import os, sys
top, ndirs = sys.argv[1], int(sys.argv[2])
for d in range(ndirs):
    with open(os.path.join(top, "g%03d" % (d // 100), "d%05d" % d, "f000"), "ab") as f:
        f.write(b"changed\n")
EOF
	sync
	t0=$(now)
	RSYNC=true timeout "$RSYNC_TIMEOUT" "$WRAP" -s "$SOCK" -v --dry-run \
		"$SRC/" "$DEST" >"$LOGS/r$round-list.log" 2>&1 ||
		die "fstrack-rsync --dry-run with RSYNC=true failed"
	t=$(elapsed "$t0")
	echo "list r$round s=$t dirs=$(listed "$LOGS/r$round-list.log")" >>"$RES"
	msg "r$round: building the list of $(listed "$LOGS/r$round-list.log") directories: ${t}s"
	pair changed
	rm -rf "${SRC:?}/new"
	sync_wrap "$LOGS/r$round-clean.log" >/dev/null
	sync_plain "$LOGS/r$round-clean-plain.log" >/dev/null
	verify "r$round clean"
done
HWM=$(daemon_hwm_kb)
stop_daemon

echo
echo "== fstrack-rsync vs rsync -a --delete: $NEW_DIRS new directories of" \
	"$NEW_FILES files (1-4 KiB) on a loop ext4, durability $DURABILITY," \
	"$REPEATS round(s); seconds: median (min..max)"
for tag in new changed; do
	p=$(med "${tag}_plain" s)
	f=$(med "${tag}_fstrack" s)
	echo "   $tag: plain $p, fstrack-rsync $f (listed $(med "${tag}_fstrack" dirs))," \
		"fstrack/plain $(ratio "${f%% *}" "${p%% *}")x"
done
echo "   new: [target fstrack/plain <= 1.2x]"
echo "   building the list of $(med list dirs) changed directories" \
	"(RSYNC=true --dry-run): $(med list s) s [target <= 1 s]"
echo "   daemon peak RSS ${HWM} kB"
echo
echo "raw results:"
sed 's/^/   /' "$RES"
umount_fs "$STATEDIR"
umount_fs "$D2MNT"
umount_fs "$D1MNT"
umount_fs "$SMNT"

#!/bin/bash
# root-many-fs: per-filesystem state has no fixed-size limit.  fstrackd
# tracks 100 tmpfs filesystems at once; it is stopped (SIGTERM), files are
# changed on the 1st, 64th, 65th, 70th and 100th while it is down, and after
# the restart `changed --since N --dirs` must list each changed directory
# (the start-up rescan of every filesystem finds them by ctime), and
# unchanged ones must not be (reconcile-margin 0).  Live
# changes on the last filesystem are listed too, and `fstrack status` shows
# all 100.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
in_private_ns "$@"
setup_workdir
NFS=100
FSS=()
for i in $(seq 1 "$NFS"); do
	d=$WORK/fs/$i
	mkdir -p "$d"
	mount -t tmpfs -o size=4m "fstrack-many-$i" "$d" ||
		hard_error "cannot mount tmpfs $i"
	MOUNTS+=("$d")
	mkdir "$d/dir"
	echo old >"$d/dir/file"
	FSS+=("$d")
done
sleep 1.2	# the tree predates the first checkpoint
# reconcile-margin 0: the restart's rescan reports only what changed.
CONF=$WORK/fstrackd.conf
printf 'reconcile-margin 0\n' >"$CONF"
start_daemon -c "$CONF" "${FSS[@]}"
n=$(fst status | grep -c '^filesystem:' || true)
if [ "$n" -eq "$NFS" ]; then
	pass "status lists $NFS tracked filesystems"
else
	fail "status lists $n tracked filesystems, not $NFS"
fi
N=$(fst snapshot | tail -n 1)
[[ $N =~ ^[0-9]+$ ]] || die "snapshot printed '$N'"
sleep 1.5	# a checkpoint after the snapshot on every filesystem
stop_daemon || fail "fstrackd exit $? after SIGTERM"

CHANGED=(1 64 65 70 100)
for i in "${CHANGED[@]}"; do
	echo new >>"$WORK/fs/$i/dir/file"
done
start_daemon -c "$CONF" "${FSS[@]}"
echo live >"$WORK/fs/$NFS/live"	# not in dir/: independent of the check above
fst changed --since "$N" --dirs >"$WORK/dirs" || fail "changed --since $N failed"
for i in "${CHANGED[@]}"; do
	if grep -qxF -- "$WORK/fs/$i/dir" "$WORK/dirs"; then
		pass "filesystem $i: change made while stopped is listed"
	else
		fail "filesystem $i: change made while stopped NOT listed"
	fi
done
for i in 2 50 99; do
	if grep -qxF -- "$WORK/fs/$i/dir" "$WORK/dirs"; then
		fail "filesystem $i: listed although nothing changed there"
	fi
done
fst changed --since "$N" >"$WORK/entries" || fail "changed --since $N failed"
if grep -qF -- "	$WORK/fs/$NFS/live" "$WORK/entries"; then
	pass "filesystem $NFS: live change listed"
else
	fail "filesystem $NFS: live change NOT listed"
fi
stop_daemon || fail "fstrackd exit $? after SIGTERM"
finish

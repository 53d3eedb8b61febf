#!/bin/bash
# reads.sh -- what strict durability costs a program that reads a tree
# right after a snapshot (a backup tool's pattern), against no tracking in
# the same run.  The linux-source-6.1 tree (78,579 files, 5,097 dirs) on a
# loop ext4, committed once to a git repository; the page cache is warm.
# Workloads:
#	tar	tar -cf - TREE | cat >/dev/null
#	grep	grep -r -q NOSUCHSTRING TREE (reads every file)
#	cat	find TREE -type f -print0 | xargs -0 cat >/dev/null
#	git	git status in the work tree (lstat everything, open a few)
# For each round and variant: the daemon is started on the filesystem (not
# for untracked), then per workload `fstrack snapshot` and two timed passes:
# pass 1 enters every directory for the first time in the snapshot, pass 2
# runs again in the same snapshot.  Also the first-open latency of a
# directory (openbench first ... r: one read-open in each of NDIRS fresh
# directories, most of them armed ahead of the reader) and the permission
# events per pass.  Variants alternate.
# The variant floor runs bench/permfloor.c instead of fstrackd: a
# permission listener that only answers, with fstrackd's kind of ignore
# mark on every directory of the tree (the state strict reaches after a
# pass): both its passes are the kernel's price of the marks alone, and
# its first read-opens (in directories it has not marked) the price of a
# round trip with no work at all.
#
#	sudo bench/reads.sh
#	sudo REPEATS=5 WORKLOADS="tar grep" bench/reads.sh
#
# Environment: REPEATS (3), VARIANTS ("untracked strict"; async also
# works), WORKLOADS ("tar grep cat git"), NDIRS (1000), SETTLE (1 s of
# quiet between making the first-open directories and the snapshot), STATE_FS
# (tmpfs|ext4), CC (cc).

. "$(dirname "$0")/common.sh"
bench_init "$@"

VARIANTS=${VARIANTS:-untracked strict floor}
WORKLOADS=${WORKLOADS:-tar grep cat git}
NDIRS=${NDIRS:-1000}
SETTLE=${SETTLE:-1}
STATE_FS=${STATE_FS:-tmpfs}
CC=${CC:-cc}
MNT=$WORK/mnt
TREE=$MNT/linux
OB=$WORK/openbench
PF=$WORK/permfloor
RES=$WORK/results
: >"$RES"

check_words "$VARIANTS" variant untracked async strict floor
check_words "$WORKLOADS" workload tar grep cat git
case " $WORKLOADS " in
*" git "*) command -v git >/dev/null || die "git not found (apt-get install git)" ;;
esac
"$CC" -O2 -o "$OB" "$BENCH_DIR/openbench.c" || die "cannot build openbench"
"$CC" -O2 -o "$PF" "$BENCH_DIR/permfloor.c" || die "cannot build permfloor"
FLOOR_PID=
ensure_linux_tar

# workload NAME: run one workload over TREE (output discarded).
workload() {
	case $1 in
	tar) tar -cf - -C "$MNT" linux | cat >/dev/null ;;
	grep) grep -r -q fstrack-no-such-string-anywhere "$TREE" || true ;;
	cat) find "$TREE" -type f -print0 | xargs -0 cat >/dev/null ;;
	git) git -C "$TREE" status --porcelain >/dev/null ;;
	esac
}

# timed NAME: seconds one run of workload NAME takes.
timed() {
	local t0
	t0=$(now)
	workload "$1"
	elapsed "$t0"
}

# perm_events: the daemon's permission events so far (0 untracked).
perm_events() {
	if [ -n "$DAEMON_PID" ]; then status_get perm_events; else echo 0; fi
}

msg "building the tree: untar, git add, git commit (once)"
make_loop_ext4 reads 6G "$MNT"
tar -xf "$LINUX_TAR" -C "$MNT" || die "untar failed"
mv "$MNT"/linux-source-6.1 "$TREE" 2>/dev/null || true
[ -d "$TREE" ] || die "no tree at $TREE"
if [[ " $WORKLOADS " == *" git "* ]]; then
	# No background gc or maintenance, ever (an auto gc after the commit
	# would repack under tar); add -f: Debian's .gitignore ignores "/*".
	git -C "$TREE" init -q &&
		git -C "$TREE" config gc.auto 0 &&
		git -C "$TREE" config maintenance.auto false &&
		git -C "$TREE" add -A -f &&
		git -C "$TREE" -c user.name=bench -c user.email=bench@localhost \
			commit -q -m tree || die "git commit failed"
	git -C "$TREE" status --porcelain >/dev/null || die "git status failed"
fi
mkdir "$MNT"/fresh
sync

# run_variant VARIANT ROUND: every workload, two passes each; appends a line.
run_variant() {
	local v=$1 round=$2 state=$WORK/state w line t e0 e1 out i
	if [ "$STATE_FS" = ext4 ]; then
		make_loop_ext4 state 512M "$state"
	else
		make_tmpfs "$state" 512m
	fi
	line="$v round=$round"
	[ "$v" != floor ] || floor_start -r "$MNT" "$MNT"
	if [ "$v" != untracked ] && [ "$v" != floor ]; then
		start_daemon "$state" --durability "$v" "$MNT" ||
			die "fstrackd did not start"
		fst changed --since "$(new_snapshot)" --dirs >/dev/null ||
			die "reconcile did not finish"
	fi
	for w in $WORKLOADS; do
		workload "$w"	# warm the page cache
		[ -z "$DAEMON_PID" ] || new_snapshot >/dev/null
		e0=$(perm_events)
		t=$(timed "$w")
		e1=$(perm_events)
		line="$line ${w}1=$t ${w}1_ev=$((e1 - e0))"
		t=$(timed "$w")
		e0=$(perm_events)
		line="$line ${w}2=$t ${w}2_ev=$((e0 - e1))"
	done
	if [ "$v" = floor ]; then
		floor_stop
		line="$line passes_ev=$FLOOR_EV"
	fi
	# First read-open in each of NDIRS directories made before the snapshot,
	# each alone under its own parent (fresh/r/dI/d/f): every open is a
	# directory's first.  Arming ahead (armahead.c) walks up from the first
	# one and on to the siblings, so most make no round trip; first_ev
	# counts those that did, and the permission thread's CPU per event
	# includes the ignore marks of the directories armed ahead.
	rm -rf "$MNT"/fresh/r
	mkdir -p "$MNT"/fresh/r
	(cd "$MNT"/fresh/r && seq 0 $((NDIRS - 1)) | sed 's|^|d|; s|$|/d|' |
		xargs mkdir -p &&
		seq 0 $((NDIRS - 1)) | sed 's|^|d|; s|$|/d/f|' | xargs touch)
	sync
	# Directories write-opened (touched) less than perm.c's PERM_RECENT_MS
	# before a snapshot are carried into it and armed without a round trip.
	sleep "$SETTLE"
	[ -z "$DAEMON_PID" ] || new_snapshot >/dev/null
	# no marks now: every first open a round trip
	[ "$v" != floor ] || floor_start "$MNT"
	e0=$(perm_events)
	c0=0
	[ -z "$DAEMON_PID" ] || c0=$(thread_cpu_sec "$DAEMON_PID" fstrackd-perm)
	out=$("$OB" first "$MNT"/fresh/r "$NDIRS" r /d) || die "openbench first failed"
	e1=$(perm_events)
	for i in us_p50 us_p99; do
		line="$line first_$i=$(echo "$out" | tr ' ' '\n' | awk -F= -v k="$i" '$1 == k { print $2 }')"
	done
	if [ "$v" = floor ]; then
		floor_stop
		line="$line first_ev=$FLOOR_EV perm_us_per_event=$FLOOR_US"
	fi
	if [ -n "$DAEMON_PID" ] && [ $((e1 - e0)) -gt 0 ]; then
		c1=$(thread_cpu_sec "$DAEMON_PID" fstrackd-perm)
		line="$line first_ev=$((e1 - e0)) perm_us_per_event=$(awk -v a="$c0" -v b="$c1" -v n=$((e1 - e0)) 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')"
	fi
	if [ -n "$DAEMON_PID" ]; then
		line="$line durable_commits=$(status_get durable_commits)"
		line="$line armed_ahead=$(status_get perm_armed_ahead) marks=$(status_get perm_marks)"
		line="$line rss_kb=$(daemon_hwm_kb) cpu=$(proc_cpu_sec "$DAEMON_PID")"
	fi
	stop_daemon
	umount_fs "$state"
	echo "$line" >>"$RES"
	msg "$line"
}

for round in $(seq 1 "$REPEATS"); do
	for v in $VARIANTS; do
		run_variant "$v" "$round"
	done
done

# field VARIANT KEY: the values of KEY for VARIANT, one per line.
field() {
	awk -v v="$1" -v k="$2" '$1 == v {
		for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) print a[2] }
	}' "$RES"
}

echo
echo "reads.sh: linux-source-6.1 on loop ext4, warm cache, state on $STATE_FS," \
	"$REPEATS rounds; seconds (median min max n), ratio = median / untracked median"
for w in $WORKLOADS; do
	for p in 1 2; do
		field untracked "$w$p" >"$WORK/base"
		base=$(stats "$WORK/base" | cut -d' ' -f1)
		for v in $VARIANTS; do
			field "$v" "$w$p" >"$WORK/s"
			field "$v" "$w${p}_ev" >"$WORK/e"
			printf '  %-5s pass %d  %-9s %-28s ratio %-5s perm events %s\n' \
				"$w" "$p" "$v" "$(stats "$WORK/s")" \
				"$(ratio "$(stats "$WORK/s" | cut -d' ' -f1)" "$base")" \
				"$(stats "$WORK/e" | cut -d' ' -f1)"
		done
	done
done
for v in $VARIANTS; do
	field "$v" first_us_p50 >"$WORK/a"
	field "$v" first_us_p99 >"$WORK/b"
	field "$v" perm_us_per_event >"$WORK/c"
	printf '  first read-open per directory  %-9s p50 %s us  p99 %s us  perm thread CPU per event %s us\n' "$v" \
		"$(stats "$WORK/a" | cut -d' ' -f1)" "$(stats "$WORK/b" | cut -d' ' -f1)" \
		"$(stats "$WORK/c" | cut -d' ' -f1)"
done
echo "raw:"
sed 's/^/  /' "$RES"

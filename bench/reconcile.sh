#!/bin/bash
# reconcile.sh -- the daemon's start-up reconcile pass against the walk a
# consumer would do without it: `find TREE -cnewer MARKER`, cold and warm.
#
# A tree of COPIES (4) copies of linux-source-6.1 (~335k entries) on a loop
# ext4.  fstrackd tracks it once and stops (checkpoint).  Then, every round,
# with the daemon down: touch MARKER, change NCHANGE files, and time
#	find cold	drop_caches; find TREE -cnewer MARKER
#	find warm	the same again
#	reconcile cold	drop_caches; start fstrackd; time until `fstrack
#			status` answers (marks in place) and until its state
#			is ready instead of reconciling
#	reconcile warm	the same with warm caches (after new changes)
# and check that `fstrack changed` lists the changed files.  If the status
# never shows reconciling and reconcile_scanned stays 0, the reconcile is
# reported as not available and only find is measured.
#
#	sudo bench/reconcile.sh
#	sudo REPEATS=1 COPIES=2 bench/reconcile.sh
#
# Environment: REPEATS (3), COPIES (4), NCHANGE (100), DURABILITY (async),
# IMG_SIZE (12G, sparse), RECON_TIMEOUT (900 s), STATE_FS (tmpfs|ext4).

. "$(dirname "$0")/common.sh"
bench_init "$@"

COPIES=${COPIES:-4}
NCHANGE=${NCHANGE:-100}
DURABILITY=${DURABILITY:-async}
IMG_SIZE=${IMG_SIZE:-12G}
RECON_TIMEOUT=${RECON_TIMEOUT:-900}
STATE_FS=${STATE_FS:-tmpfs}
MNT=$WORK/mnt
TREE=$MNT/tree
MARKER=$MNT/marker
STATEDIR=$WORK/state
RES=$WORK/results
RECON_AVAILABLE=unknown
: >"$RES"

ensure_linux_tar

# time_cmd OUT CMD...: run CMD with stdout to OUT; print the seconds taken.
time_cmd() {
	local out=$1 t0
	shift
	t0=$(now)
	"$@" >"$out" || die "$* failed"
	elapsed "$t0"
}

# prepare_changes: with the daemon down, a new MARKER, then NCHANGE files
# of the tree touched (their ctime passes the marker and the checkpoint).
prepare_changes() {
	sleep 1.1
	: >"$MARKER"
	sleep 1.1
	xargs -d '\n' touch -c <"$WORK/victims" || die "touch failed"
}

# daemon_start_timed TAG: start the daemon; time until status answers and
# until the reconcile pass is over.  Appends a line to RES.
daemon_start_timed() {
	local tag=$1 t0 tup tready seen=0 st n rate=0 scanned recorded
	t0=$(now)
	start_daemon "$STATEDIR" --durability "$DURABILITY" "$MNT" ||
		die "fstrackd did not start"
	tup=$(elapsed "$t0")
	n=$((RECON_TIMEOUT * 10))
	while :; do
		fst status >"$WORK/st" 2>/dev/null || true
		st=$(status_file "$WORK/st" state)
		case $st in
		reconciling)
			seen=1
			rate=$(status_file "$WORK/st" reconcile_per_sec)
			;;
		ready | degraded) break ;;
		esac
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "still reconciling after ${RECON_TIMEOUT}s"
		sleep 0.1
	done
	tready=$(elapsed "$t0")
	scanned=$(status_file "$WORK/st" reconcile_scanned)
	recorded=$(status_file "$WORK/st" reconcile_recorded)
	echo "$tag up=$tup ready=$tready seen_reconciling=$seen state=$st" \
		"scanned=${scanned:-0} recorded=${recorded:-0} rate_reported=${rate:-0}" \
		"hwm_kb=$(daemon_hwm_kb)" >"$WORK/line"
	if [ "$seen" = 0 ] && [ "${scanned:-0}" = 0 ]; then
		[ "$RECON_AVAILABLE" = yes ] || RECON_AVAILABLE=no
	else
		RECON_AVAILABLE=yes
	fi
}

# check_changed SNAP: how many of the touched files `fstrack changed
# --since SNAP` lists (appended to the current line).
check_changed() {
	local listed
	fst changed --since "$1" --no-wait >"$WORK/changed" 2>/dev/null || true
	cut -f 2- "$WORK/changed" | LC_ALL=C sort -u >"$WORK/changed.paths"
	listed=$(LC_ALL=C comm -12 "$WORK/victims.sorted" "$WORK/changed.paths" |
		wc -l)
	echo "$(cat "$WORK/line") listed=$listed/$NCHANGE changed_lines=$(wc -l <"$WORK/changed")" \
		>"$WORK/line"
}

# end_daemon_round: a new snapshot (SNAP, for the next check), then stop
# the daemon (checkpoint).
end_daemon_round() {
	SNAP=$(new_snapshot)
	stop_daemon
}

# field TAG KEY: the KEY values of TAG's lines, one per line.
field() {
	awk -v v="$1" -v k="$2" '$1 == v {
		for (i = 2; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == k) print kv[2]
		}
	}' "$RES"
}

# med TAG KEY: "median (min..max)" of TAG's KEY.
med() {
	field "$1" "$2" >"$WORK/s"
	stats "$WORK/s" | awk '{print $1, "(" $2 ".." $3 ")"}'
}

# --- set-up: the tree, one tracked start, a checkpoint.
make_loop_ext4 recon "$IMG_SIZE" "$MNT"
if [ "$STATE_FS" = ext4 ]; then
	make_loop_ext4 state 512M "$STATEDIR"
else
	make_tmpfs "$STATEDIR" 900m
fi
for ((c = 1; c <= COPIES; c++)); do
	msg "populating copy $c of $COPIES"
	mkdir -p "$TREE/c$c"
	timeout 900 tar -xf "$LINUX_TAR" -C "$TREE/c$c" || die "tar failed"
done
sync
ENTRIES=$(find "$TREE" | wc -l)
msg "tree: $ENTRIES entries"
find "$TREE" -type f | awk -v n="$ENTRIES" -v k="$NCHANGE" '
	{ f[NR] = $0 }
	END { step = int(NR / k); if (step < 1) step = 1
	      for (i = 1; i <= NR && c < k; i += step) { print f[i]; c++ } }' \
	>"$WORK/victims"
NCHANGE=$(wc -l <"$WORK/victims")
LC_ALL=C sort "$WORK/victims" >"$WORK/victims.sorted"

msg "first start of fstrackd on the populated tree (new database)"
drop_caches
daemon_start_timed initial
cp "$WORK/line" "$WORK/line.initial"
cat "$WORK/line" >>"$RES"
msg "$(cat "$WORK/line")"
end_daemon_round

for ((round = 1; round <= REPEATS; round++)); do
	prepare_changes
	msg "round $round: find cold"
	drop_caches
	t=$(time_cmd "$WORK/find.out" find "$TREE" -cnewer "$MARKER")
	echo "find_cold round=$round s=$t found=$(wc -l <"$WORK/find.out")" >>"$RES"
	msg "round $round: find warm"
	t=$(time_cmd "$WORK/find.out" find "$TREE" -cnewer "$MARKER")
	echo "find_warm round=$round s=$t found=$(wc -l <"$WORK/find.out")" >>"$RES"

	msg "round $round: reconcile cold"
	drop_caches
	daemon_start_timed recon_cold
	check_changed "$SNAP"
	echo "$(cat "$WORK/line") round=$round" >>"$RES"
	msg "$(cat "$WORK/line")"
	end_daemon_round

	prepare_changes
	msg "round $round: reconcile warm"
	find "$TREE" -cnewer "$MARKER" >/dev/null	# warm, as for find
	daemon_start_timed recon_warm
	check_changed "$SNAP"
	echo "$(cat "$WORK/line") round=$round" >>"$RES"
	msg "$(cat "$WORK/line")"
	end_daemon_round
done

# --- report
echo
echo "== start-up reconcile vs find -cnewer: $COPIES x linux-source-6.1 =" \
	"$ENTRIES entries on a loop ext4, $NCHANGE files changed while the daemon" \
	"was down, $REPEATS round(s), durability $DURABILITY, state on $STATE_FS"
echo "   seconds: median (min..max)"
fc=$(med find_cold s); fw=$(med find_warm s)
echo "   find -cnewer cold   $fc   entries/s $(ratio "$ENTRIES" "${fc%% *}" | awk '{printf "%.0f", $1}')  found $(field find_cold found | head -n 1)"
echo "   find -cnewer warm   $fw   entries/s $(ratio "$ENTRIES" "${fw%% *}" | awk '{printf "%.0f", $1}')"
if [ "$RECON_AVAILABLE" != yes ]; then
	echo "   reconcile: not available (status never showed reconciling and" \
		"reconcile_scanned stayed 0)"
	for tag in recon_cold recon_warm; do
		echo "   $tag: daemon up (status answers) after $(med "$tag" up)," \
			"changed files listed: $(field "$tag" listed | tr '\n' ' ')"
	done
else
	for tag in recon_cold recon_warm; do
		rc=$(med "$tag" ready)
		case $tag in recon_cold) f=$fc ;; *) f=$fw ;; esac
		echo "   $tag: marks in place $(med "$tag" up), ready after $rc;" \
			"ratio to find $(ratio "${rc%% *}" "${f%% *}")"
		echo "      scanned $(med "$tag" scanned), recorded $(med "$tag" recorded)," \
			"reconcile_per_sec (last reported) $(med "$tag" rate_reported)," \
			"entries/s $(ratio "$(field "$tag" scanned | head -n 1)" "${rc%% *}" | awk '{printf "%.0f", $1}')," \
			"peak RSS $(med "$tag" hwm_kb) kB"
		echo "      seen reconciling: $(field "$tag" seen_reconciling | tr '\n' ' ')" \
			" changed files listed: $(field "$tag" listed | tr '\n' ' ')"
	done
fi
echo "   first start on the populated tree (new database): $(cat "$WORK/line.initial")"
echo
echo "raw results:"
sed 's/^/   /' "$RES"
umount_fs "$STATEDIR"
umount_fs "$MNT"

#!/bin/bash
# untar.sh -- cost of tracking a big sequential writer: untar linux-source-6.1
# (78k files, 5k dirs, 1.4 GB) onto a fresh loop ext4, untracked, under
# fstrackd --durability async, under --durability strict, and under
# `inotifywait -m -r -q` (the peer people use), and check that nothing was
# lost.  The variant floor runs bench/permfloor.c -a instead of fstrackd: a
# permission listener that answers at once and then puts strict mode's
# ignore mark on the event's directory, with no record and no commit -- the
# kernel's (and this VM's) price of one round trip per new directory, the
# least strict mode can cost here.  Prints wall-time ratios against the untracked runs of the same
# invocation (variants alternate, REPEATS rounds; medians and minimums).
#
#	sudo bench/untar.sh			# 3 rounds
#	sudo REPEATS=5 bench/untar.sh
#	sudo VARIANTS="untracked async" bench/untar.sh
#	sudo STATE_FS=ext4 bench/untar.sh	# state dir on its own loop ext4
#						# instead of tmpfs (real fsyncs)
#
# Environment: REPEATS (3), VARIANTS ("untracked async strict inotify";
# floor too),
# STATE_FS (tmpfs|ext4), IMG_SIZE (2G), BENCH_CACHE (/var/tmp/fstrack-bench:
# the .deb, the plain tar, and the loop images while running), KEEP_LOGS=DIR
# (copy per-run logs there).

. "$(dirname "$0")/common.sh"
bench_init "$@"

VARIANTS=${VARIANTS:-untracked async strict inotify}
STATE_FS=${STATE_FS:-tmpfs}
IMG_SIZE=${IMG_SIZE:-2G}
TAR_TIMEOUT=${TAR_TIMEOUT:-900}
MNT=$WORK/mnt
RES=$WORK/results	# one line per run: variant key=value...
: >"$RES"

case $STATE_FS in
tmpfs | ext4) ;;
*) die "STATE_FS is tmpfs or ext4" ;;
esac
check_words "$VARIANTS" variant untracked async strict inotify floor
PF=$WORK/permfloor
case " $VARIANTS " in
*" floor "*) "${CC:-cc}" -O2 -o "$PF" "$BENCH_DIR/permfloor.c" ||
	die "cannot build permfloor" ;;
esac
case " $VARIANTS " in
*" inotify "*) command -v inotifywait >/dev/null ||
	die "inotifywait not found (apt-get install inotify-tools)" ;;
esac
ensure_linux_tar

# tree_lists DIR OUT: sorted lists of the tree below DIR (lost+found left
# out): OUT.dirs (every directory, DIR included), OUT.full (directories with
# at least one entry), OUT.entries (every path below DIR).
tree_lists() {
	find "$1" -path "$1/lost+found" -prune -o -type d -print |
		LC_ALL=C sort >"$2.dirs"
	find "$1" -path "$1/lost+found" -prune -o -mindepth 1 -printf '%h\n' |
		LC_ALL=C sort -u >"$2.full"
	find "$1" -path "$1/lost+found" -prune -o -mindepth 1 -print |
		LC_ALL=C sort >"$2.entries"
}

# missing A B: how many lines of sorted file A are not in sorted file B.
missing() {
	LC_ALL=C comm -23 "$1" "$2" | wc -l
}

# start_inotify LOG: inotifywait -m -r -q on MNT into LOG; returns once a
# probe file shows up in LOG (the watches are in place).
start_inotify() {
	local n=600
	inotifywait -m -r -q "$MNT" >"$1" 2>"$1.err" </dev/null &
	INOTIFY_PID=$!
	CHILD_PIDS+=("$INOTIFY_PID")
	while :; do
		: >"$MNT/.bench-probe"
		grep -q 'bench-probe' "$1" 2>/dev/null && break
		pid_alive "$INOTIFY_PID" || die "inotifywait exited: $(cat "$1.err")"
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "inotifywait not watching after 30 s"
		sleep 0.05
	done
	rm -f "$MNT/.bench-probe"
}

# stop_inotify LOG: wait (at most 120 s) until LOG stops growing for 1 s,
# then kill inotifywait.  Prints its CPU seconds.
stop_inotify() {
	local last=-1 size n=1200 quiet=0 cpu
	while [ "$n" -gt 0 ]; do
		size=$(stat -c %s "$1")
		if [ "$size" = "$last" ]; then
			quiet=$((quiet + 1))
			[ "$quiet" -lt 10 ] || break
		else
			quiet=0
		fi
		last=$size
		n=$((n - 1))
		sleep 0.1
	done
	cpu=$(proc_cpu_sec "$INOTIFY_PID")
	kill -TERM "$INOTIFY_PID" 2>/dev/null || true
	wait_dead "$INOTIFY_PID" 10 || kill -KILL "$INOTIFY_PID" 2>/dev/null
	wait "$INOTIFY_PID" 2>/dev/null || true
	echo "$cpu"
}

# inotify_seen LOG OUT: OUT.dirs = sorted directories that appear in LOG
# as the watched directory of an event with a file name; OUT.entries =
# sorted paths (%w%f) that appear in LOG.
inotify_seen() {
	awk '{
		i = index($0, "/ ")
		if (i == 0) next
		w = substr($0, 1, i - 1)
		r = substr($0, i + 2)
		j = index(r, " ")
		if (j == 0) next
		f = substr(r, j + 1)
		if (f == "") next
		print w > "/dev/stderr"
		print w "/" f
	}' "$1" 2>"$2.dirs.u" | LC_ALL=C sort -u >"$2.entries"
	LC_ALL=C sort -u "$2.dirs.u" >"$2.dirs"
	rm -f "$2.dirs.u"
}

# run_variant VARIANT ROUND: one timed untar; appends a line to RES.
run_variant() {
	local v=$1 round=$2 state=$WORK/state t0 t1 t2 t3 snap=0 ilog line
	local ev0=0 cm0=0 du0=0 st hwm=0 cpu=0 out=$WORK/run
	make_loop_ext4 untar "$IMG_SIZE" "$MNT"
	if [ "$STATE_FS" = ext4 ]; then
		make_loop_ext4 state 512M "$state"
	else
		make_tmpfs "$state" 512m
	fi
	case $v in
	async | strict)
		if ! start_daemon "$state" --durability "$v" "$MNT"; then
			echo "$v round=$round unavailable=1" >>"$RES"
			umount_fs "$state"
			umount_fs "$MNT"
			return 0
		fi
		snap=$(new_snapshot)
		fst status >"$out.status0"
		ev0=$(status_file "$out.status0" events)
		cm0=$(status_file "$out.status0" commits)
		du0=$(status_file "$out.status0" durable_commits)
		;;
	inotify)
		ilog=$WORK/inotify.log
		start_inotify "$ilog"
		;;
	floor) floor_start -a "$MNT" ;;
	esac
	drop_caches
	msg "round $round: $v: untar"
	t0=$(now)
	timeout "$TAR_TIMEOUT" tar -xf "$LINUX_TAR" -C "$MNT" ||
		die "tar failed or timed out ($v)"
	t1=$(now)
	sync
	t2=$(now)
	line="$v round=$round tar=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')"
	line="$line tarsync=$(awk -v a="$t0" -v b="$t2" 'BEGIN{printf "%.3f", b-a}')"
	case $v in
	async | strict)
		# The barrier inside `changed` waits until every event of the
		# untar is read and committed: the catch-up time.
		fst changed --since "$snap" --dirs >"$out.fdirs" ||
			die "fstrack changed --dirs failed ($v)"
		t3=$(now)
		fst changed --since "$snap" | cut -f 2- | LC_ALL=C sort -u \
			>"$out.fentries" || die "fstrack changed failed ($v)"
		LC_ALL=C sort -u -o "$out.fdirs" "$out.fdirs"
		fst status >"$out.status1"
		hwm=$(daemon_hwm_kb)
		cpu=$(proc_cpu_sec "$DAEMON_PID")
		stop_daemon
		st=$out.status1
		tree_lists "$MNT" "$out.tree"
		line="$line catchup=$(awk -v a="$t2" -v b="$t3" 'BEGIN{printf "%.3f", b-a}')"
		line="$line tracked=$(awk -v a="$t0" -v b="$t3" 'BEGIN{printf "%.3f", b-a}')"
		line="$line events=$(($(status_file "$st" events) - ev0))"
		line="$line commits=$(($(status_file "$st" commits) - cm0))"
		line="$line durable=$(($(status_file "$st" durable_commits) - du0))"
		line="$line perm=$(status_file "$st" perm_events)"
		line="$line overflows=$(status_file "$st" overflows)"
		line="$line hwm_kb=$hwm cpu=$cpu"
		line="$line dirs=$(wc -l <"$out.tree.dirs")"
		line="$line miss_dirs=$(missing "$out.tree.full" "$out.fdirs")"
		line="$line miss_empty_dirs=$(($(missing "$out.tree.dirs" "$out.fdirs") - $(missing "$out.tree.full" "$out.fdirs")))"
		line="$line entries=$(wc -l <"$out.tree.entries")"
		line="$line miss_entries=$(missing "$out.tree.entries" "$out.fentries")"
		;;
	inotify)
		cpu=$(stop_inotify "$ilog")
		tree_lists "$MNT" "$out.tree"
		inotify_seen "$ilog" "$out.ino"
		line="$line cpu=$cpu lines=$(wc -l <"$ilog")"
		line="$line overflows=$(grep -c Q_OVERFLOW "$ilog" || true)"
		line="$line dirs=$(wc -l <"$out.tree.dirs")"
		line="$line full_dirs=$(wc -l <"$out.tree.full")"
		line="$line miss_dirs=$(missing "$out.tree.full" "$out.ino.dirs")"
		line="$line entries=$(wc -l <"$out.tree.entries")"
		line="$line miss_entries=$(missing "$out.tree.entries" "$out.ino.entries")"
		;;
	floor)
		floor_stop
		line="$line perm=$FLOOR_EV perm_us_per_event=$FLOOR_US"
		;;
	esac
	echo "$line" >>"$RES"
	msg "$line"
	if [ -n "${KEEP_LOGS:-}" ]; then
		mkdir -p "$KEEP_LOGS"
		for f in "$out".*; do
			[ -e "$f" ] && cp "$f" "$KEEP_LOGS/$v.$round.${f##*/}"
		done
		cp "$DAEMON_LOG" "$KEEP_LOGS/fstrackd.log"
		[ "$v" != inotify ] || cp "$ilog" "$KEEP_LOGS/inotify.$round.log"
	fi
	rm -f "$out".* "$WORK/inotify.log" "$WORK/inotify.log.err"
	umount_fs "$state"
	umount_fs "$MNT"
}

# field VARIANT KEY: the KEY values of VARIANT's runs, one per line.
field() {
	awk -v v="$1" -v k="$2" '$1 == v {
		for (i = 2; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == k) print kv[2]
		}
	}' "$RES"
}

# paired VARIANT KEY: per round, VARIANT's KEY / untracked's KEY.
paired() {
	awk -v v="$1" -v k="$2" '
		function get(s,   i, kv) {
			for (i = 2; i <= split(s, a, " "); i++) {
				split(a[i], kv, "=")
				if (kv[1] == k) return kv[2]
			}
			return ""
		}
		{ split($2, r, "="); x = get($0) }
		$1 == "untracked" { base[r[2]] = x }
		$1 == v { val[r[2]] = x }
		END { for (i in val) if (base[i] > 0 && val[i] != "") print val[i] / base[i] }
	' "$RES"
}

# summary: the report.
summary() {
	local v k s base t ut uts ev cm du tr
	echo
	echo "== untar linux-source-6.1 onto a fresh 2G loop ext4, drop_caches before" \
		"each run, $REPEATS round(s), state dir on $STATE_FS"
	echo "   host: $(uname -r), $(nproc) CPUs"
	field untracked tar >"$WORK/s"; read -r ut _ <<<"$(stats "$WORK/s")"
	field untracked tarsync >"$WORK/s"; read -r uts _ <<<"$(stats "$WORK/s")"
	echo "   times in s: median (min..max); ratio = median tar+sync / untracked" \
		"median tar+sync; paired = per-round ratios: median (min..max)"
	printf '%-10s %-22s %-22s %s\n' variant "tar" "tar+sync" "ratio"
	for v in $VARIANTS; do
		if [ -n "$(field "$v" unavailable)" ]; then
			printf '%-10s not available (the daemon refused to start; see its log)\n' "$v"
			continue
		fi
		field "$v" tar >"$WORK/s"; t=$(stats "$WORK/s")
		field "$v" tarsync >"$WORK/s"; s=$(stats "$WORK/s")
		read -r base _ <<<"$s"
		paired "$v" tarsync >"$WORK/p"
		printf '%-10s %-22s %-22s %s  paired %s  (tar only %s)\n' "$v" \
			"$(echo "$t" | awk '{print $1, "(" $2 ".." $3 ")"}')" \
			"$(echo "$s" | awk '{print $1, "(" $2 ".." $3 ")"}')" \
			"$(ratio "$base" "$uts")" \
			"$(stats "$WORK/p" | awk '{printf "%.2f (%.2f..%.2f)", $1, $2, $3}')" \
			"$(ratio "$(echo "$t" | cut -d' ' -f1)" "$ut")"
	done
	echo "   targets (tar+sync ratio): async <= 1.05, strict <= 1.15 (issue 8)"
	for v in async strict; do
		case " $VARIANTS " in *" $v "*) ;; *) continue ;; esac
		[ -z "$(field "$v" unavailable)" ] || continue
		[ -n "$(field "$v" events)" ] || continue
		echo
		echo "-- $v (medians over rounds; min..max)"
		for k in catchup tracked events commits durable perm overflows hwm_kb cpu \
			dirs miss_dirs miss_empty_dirs entries miss_entries; do
			field "$v" "$k" >"$WORK/s"
			printf '   %-16s %s\n' "$k" "$(stats "$WORK/s" | awk '{print $1, "(" $2 ".." $3 ")"}')"
		done
		field "$v" events >"$WORK/e"; field "$v" tracked >"$WORK/t"
		paste "$WORK/e" "$WORK/t" | awk '{print $1 / $2}' >"$WORK/s"
		ev=$(stats "$WORK/s" | awk '{printf "%.0f (%.0f..%.0f)", $1, $2, $3}')
		field "$v" commits >"$WORK/e"
		paste "$WORK/e" "$WORK/t" | awk '{print $1 / $2}' >"$WORK/s"
		cm=$(stats "$WORK/s" | awk '{printf "%.1f (%.1f..%.1f)", $1, $2, $3}')
		field "$v" durable >"$WORK/e"
		paste "$WORK/e" "$WORK/t" | awk '{print $1 / $2}' >"$WORK/s"
		du=$(stats "$WORK/s" | awk '{printf "%.1f (%.1f..%.1f)", $1, $2, $3}')
		field "$v" hwm_kb >"$WORK/s"
		tr=$(stats "$WORK/s" | awk '{printf "%.1f MiB (max %.1f)", $1 / 1024, $3 / 1024}')
		echo "   events/s $ev   commits/s $cm   durable commits/s $du   (over untar start .. barrier)"
		echo "   daemon peak RSS (VmHWM) $tr"
		echo "   no event lost: miss_dirs (non-empty dirs absent from changed --dirs)" \
			"and miss_entries must be 0; empty dirs are listed only through" \
			"their parent (created entry), so miss_empty_dirs is informational"
	done
	case " $VARIANTS " in
	*" floor "*)
		echo
		echo "-- floor (permfloor -a), medians (min..max)"
		for k in perm perm_us_per_event; do
			field floor "$k" >"$WORK/s"
			printf '   %-16s %s\n' "$k" "$(stats "$WORK/s" | awk '{print $1, "(" $2 ".." $3 ")"}')"
		done
		;;
	esac
	case " $VARIANTS " in
	*" inotify "*)
		echo
		echo "-- inotify (inotifywait -m -r -q > file), medians (min..max)"
		for k in cpu lines overflows full_dirs miss_dirs entries miss_entries; do
			field inotify "$k" >"$WORK/s"
			printf '   %-16s %s\n' "$k" "$(stats "$WORK/s" | awk '{print $1, "(" $2 ".." $3 ")"}')"
		done
		echo "   miss_dirs: non-empty directories none of whose entries appear in the log"
		;;
	esac
	echo
	echo "raw results:"
	sed 's/^/   /' "$RES"
}

read -ra VLIST <<<"$VARIANTS"
nv=${#VLIST[@]}
for ((round = 1; round <= REPEATS; round++)); do
	# Rotate the order every round so no variant always runs first.
	for ((i = 0; i < nv; i++)); do
		v=${VLIST[(i + round - 1) % nv]}
		if [ -n "$(field "$v" unavailable)" ]; then
			continue
		fi
		run_variant "$v" "$round"
	done
done
summary

#!/bin/bash
# scale.sh -- queries and the daemon's memory with millions of entries
# recorded in one snapshot.
#
# For each scale (1M and 5M entries by default): a fresh loop ext4 made
# with enough inodes (mkfs.ext4 -N), fstrackd started on it (state dir on
# its own tmpfs), a snapshot, then SCALE empty files created in NDIRS
# (10,000) directories (100 groups of 100), so that every entry is recorded
# in that one snapshot.  Then, REPEATS rounds in rotating order, each timed
# with its maximum resident set size (getrusage through /usr/bin/time):
#	plain	fstrack changed --since N >/dev/null
#	dirs	fstrack changed --since N --dirs >/dev/null
#	json	fstrack changed --since N --json >/dev/null
#	find	find TREE -cnewer MARKER >/dev/null (warm): the walk a consumer
#		would do without fstrack, the baseline of the ratios
# and once: the catch-up (the first query's barrier after the creation),
# the lines each query printed, the daemon's peak RSS (VmHWM) and its
# largest writer queue seen during the creation, and the database's bytes
# per recorded entry.
#
#	sudo bench/scale.sh			# 1M and 5M entries
#	sudo SCALE=100000 bench/scale.sh	# a quick look: one scale
#	sudo SCALES="1000000" REPEATS=5 bench/scale.sh
#
# Environment: SCALES ("1000000 5000000"), SCALE (one scale, overrides
# SCALES), NDIRS (10000), REPEATS (3), DURABILITY (strict), IMG_SIZE
# (default: 1G + 800 bytes per entry, sparse), CREATE_TIMEOUT (3600 s),
# KEEP_LOGS=DIR (the daemon log, the status outputs and the snapshot id;
# with KEEP_DB=1 also the database, for experiments with sqlite3).

. "$(dirname "$0")/common.sh"
bench_init "$@"

SCALES=${SCALE:-${SCALES:-1000000 5000000}}
NDIRS=${NDIRS:-10000}
DURABILITY=${DURABILITY:-strict}
CREATE_TIMEOUT=${CREATE_TIMEOUT:-3600}
MNT=$WORK/mnt
TREE=$MNT/tree
MARKER=$MNT/marker
STATEDIR=$WORK/state
RES=$WORK/results	# one line per measurement: scale what key=value...
: >"$RES"

# result LINE: append LINE to RES, and say it on stderr (kept if we die).
result() {
	echo "$1" >>"$RES"
	msg "result: $1"
}

for s in $SCALES; do
	case $s in
	'' | *[!0-9]* | 0) die "SCALE(S) must be positive integers" ;;
	esac
done
case $NDIRS in
'' | *[!0-9]* | 0) die "NDIRS must be a positive integer" ;;
esac
check_words "$DURABILITY" durability strict async
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
command -v python3 >/dev/null || die "python3 not found"

# make_tree N: N empty files in NDIRS directories below TREE (groups of
# 100 directories), created with open(O_CREAT|O_WRONLY) and close, like
# an unpacking tool would.
make_tree() {
	timeout "$CREATE_TIMEOUT" python3 - "$TREE" "$1" "$NDIRS" <<'EOF'
import os, sys
top, n, ndirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per, extra = divmod(n, ndirs)
flags = os.O_CREAT | os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC
for d in range(ndirs):
    path = "%s/g%03d/d%05d" % (top, d // 100, d)
    os.makedirs(path)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    for i in range(per + (1 if d < extra else 0)):
        os.close(os.open("file-%07d.dat" % i, flags, 0o644, dir_fd=fd))
    os.close(fd)
EOF
}

# sample_daemon OUT: every 2 s, the daemon's writer queue depth and VmRSS
# (kB) as "depth rss" lines into OUT, until killed.
sample_daemon() {
	while :; do
		echo "$(status_get queue_depth) $(awk '$1 == "VmRSS:" {
			print $2 }' "/proc/$DAEMON_PID/status" 2>/dev/null)" \
			>>"$1"
		sleep 2
	done
}

# timed_query OUT ARGS...: run the client with ARGS, its output counted
# by wc (lines and bytes into OUT: millions of lines do not fit the
# scratch tmpfs); prints "seconds maxrss_kb".
timed_query() {
	local tf=$WORK/time.out out=$1
	shift
	timeout "$FST_TIMEOUT" /usr/bin/time -o "$tf" -f '%e %M' \
		"$FSTRACK" -s "$SOCK" "$@" | wc -l -c >"$out" ||
		die "fstrack $* failed"
	cat "$tf"
}

# timed_find OUT: the baseline walk, counted like timed_query; prints
# "seconds maxrss_kb".
timed_find() {
	local tf=$WORK/time.out
	timeout "$FST_TIMEOUT" /usr/bin/time -o "$tf" -f '%e %M' \
		find "$TREE" -cnewer "$MARKER" | wc -l -c >"$1" ||
		die "find failed"
	cat "$tf"
}

# run_scale N: the whole measurement for one tree of N entries.
run_scale() {
	local n=$1 img snap t0 t1 sampler v round order i line
	local out=$WORK/q secs rss hwm dbsize entries
	img=${IMG_SIZE:-$((1024 + n * 800 / 1048576))M}
	msg "scale $n: mkfs ($img, $((n + NDIRS + 100000)) inodes)"
	rm -f "$IMGDIR/scale.img"
	truncate -s "$img" "$IMGDIR/scale.img"
	timeout 900 mkfs.ext4 -q -F -N $((n + NDIRS + 100000)) \
		-E lazy_itable_init=0,lazy_journal_init=0 "$IMGDIR/scale.img" ||
		die "mkfs.ext4 failed"
	mkdir -p "$MNT"
	mount -o loop "$IMGDIR/scale.img" "$MNT" || die "cannot mount the image"
	MOUNTS+=("$MNT")
	make_tmpfs "$STATEDIR" 4g
	start_daemon "$STATEDIR" --durability "$DURABILITY" "$MNT" ||
		die "fstrackd did not start"
	mkdir -p "$TREE"
	: >"$MARKER"
	sleep 1.1	# coarse ctimes: every entry's ctime passes the marker
	snap=$(new_snapshot)
	: >"$WORK/samples"
	sample_daemon "$WORK/samples" &
	sampler=$!
	CHILD_PIDS+=("$sampler")
	msg "scale $n: creating $n files in $NDIRS directories"
	t0=$(now)
	make_tree "$n" || die "creating the tree failed"
	t1=$(now)
	# The first query's barrier waits until every event is committed.
	fst changed --since "$snap" --dirs >"$out.dirs0" ||
		die "fstrack changed --dirs failed"
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	line="$n create create_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
	line="$line catchup_s=$(elapsed "$t1")"
	line="$line max_queue=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$WORK/samples")"
	line="$line max_rss_sampled_kb=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$WORK/samples")"
	result "$line"

	order="plain dirs json find"
	for ((round = 1; round <= REPEATS; round++)); do
		for v in $order; do
			msg "scale $n round $round: $v"
			case $v in
			plain) line=$(timed_query "$out.$v" changed --since "$snap") ;;
			dirs) line=$(timed_query "$out.$v" changed --since "$snap" --dirs) ;;
			json) line=$(timed_query "$out.$v" changed --since "$snap" --json) ;;
			find) line=$(timed_find "$out.$v") ;;
			esac
			[ -n "$line" ] || die "$v failed"
			read -r secs rss <<<"$line"
			read -r lines bytes <"$out.$v"
			result "$n $v round=$round s=$secs maxrss_kb=$rss lines=$lines bytes=$bytes"
		done
		# rotate: the first variant goes last
		order="${order#* } ${order%% *}"
	done
	# The JSON document lists as many entries as the plain listing.
	fst changed --since "$snap" --json | tr , '\n' | grep -c '{"path":' \
		>"$out.jsoncount" || die "fstrack changed --json failed"
	fst status >"$WORK/status.$n"
	hwm=$(daemon_hwm_kb)
	dbsize=$(status_file "$WORK/status.$n" database_size)
	read -r entries _ <"$out.plain"
	line="$n daemon hwm_kb=$hwm cpu_s=$(proc_cpu_sec "$DAEMON_PID")"
	line="$line events=$(status_file "$WORK/status.$n" events)"
	line="$line commits=$(status_file "$WORK/status.$n" commits)"
	line="$line records=$(status_file "$WORK/status.$n" records)"
	line="$line db_bytes=$dbsize entries=$entries"
	line="$line bytes_per_entry=$(ratio "$dbsize" "$entries")"
	line="$line json_entries=$(cat "$out.jsoncount") dirs_listed=$(wc -l <"$out.dirs0")"
	result "$line"
	stop_daemon
	if [ -n "${KEEP_LOGS:-}" ]; then
		mkdir -p "$KEEP_LOGS"
		cp "$DAEMON_LOG" "$KEEP_LOGS/fstrackd.log" || true
		cp "$WORK/status.$n" "$KEEP_LOGS/status.$n" || true
		cp "$WORK/samples" "$KEEP_LOGS/samples.$n" || true
		echo "$snap" >"$KEEP_LOGS/snapshot.$n"
		[ -z "${KEEP_DB:-}" ] ||
			cp "$STATEDIR/fstrack.db" "$KEEP_LOGS/fstrack.db.$n" || true
	fi
	rm -f "$out".*
	umount_fs "$STATEDIR"
	umount_fs "$MNT"
}

for s in $SCALES; do
	run_scale "$s"
done

# report: per scale, medians (min..max) of every query, ratios to find.
echo "scale.sh: $(date -u +%FT%TZ), $(nproc) CPUs, NDIRS=$NDIRS, REPEATS=$REPEATS, $DURABILITY, state on tmpfs"
for s in $SCALES; do
	echo "== $s entries"
	awk -v s="$s" '$1 == s && $2 == "create" { $1 = $2 = ""; print "   creation:" $0 }' "$RES"
	for v in find plain dirs json; do
		awk -v s="$s" -v v="$v" '$1 == s && $2 == v {
			for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "s") print kv[2] } }' \
			"$RES" >"$WORK/st.s"
		awk -v s="$s" -v v="$v" '$1 == s && $2 == v {
			for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "maxrss_kb") print kv[2] } }' \
			"$RES" >"$WORK/st.rss"
		read -r med min max cnt < <(stats "$WORK/st.s")
		read -r rmed _ rmax _ < <(stats "$WORK/st.rss")
		[ "$v" != find ] || fmed=$med
		lines=$(awk -v s="$s" -v v="$v" '$1 == s && $2 == v { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "lines") l = kv[2] } } END { print l }' "$RES")
		printf '   %-6s %7s s (%s..%s, n=%s)  %5sx find  max RSS %s kB (max %s)  lines %s\n' \
			"$v" "$med" "$min" "$max" "$cnt" "$(ratio "$med" "$fmed")" \
			"$rmed" "$rmax" "$lines"
	done
	awk -v s="$s" '$1 == s && $2 == "daemon" { $1 = $2 = ""; print "   daemon:" $0 }' "$RES"
done
echo "raw:"
cat "$RES"

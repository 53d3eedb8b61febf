#!/bin/bash
# rsync.sh -- incremental fstrack-rsync against a plain full
# `rsync -a --delete` after a small change to a big tree, cold and warm.
#
# SRC: COPIES (4) copies of linux-source-6.1 (~335k entries) on a loop ext4,
# tracked by fstrackd (DURABILITY, default strict; state dir on its own
# tmpfs).  DEST and DEST2: two more loop ext4s.  Set-up: DEST is filled by
# the first (full) fstrack-rsync run, DEST2 by a plain full rsync (both
# timed, for information).  Then every round, for the cold and then the
# warm variant:
#	change NDIRS (100) randomly chosen directories of SRC (seeded): touch
#	one file, append to another, delete a third, create a new one
#	time, in alternating order (round 1 fstrack-rsync first, round 2
#	plain first, ...), each after `sync` (warm) or `sync; echo 3 >
#	/proc/sys/vm/drop_caches` (cold):
#	    fstrack	fstrack-rsync -v --stats SRC/ DEST	(incremental)
#	    plain	rsync -a --delete --stats SRC/ DEST2/
#	    floor	rsync -a --files-from=EXACT --delete-missing-args SRC/
#			DEST3/, EXACT being the entries the change step touched,
#			appended, deleted, created and their directories: what
#			rsync must do after this change whoever tells it where;
#			run last, so it never warms the cache for the others.
#			plain / floor is the ceiling of any tracker's ratio.
#	verify: `rsync -a --delete -n -i SRC/ D/` prints nothing for all three
# (--stats only adds a summary; -v is the wrapper's own, not rsync's).
#
#	sudo bench/rsync.sh
#	sudo REPEATS=5 DURABILITY=async bench/rsync.sh
#	sudo REPEATS=1 COPIES=1 bench/rsync.sh		# quick look
#
# Environment: REPEATS (3), COPIES (4), NDIRS (100), SEED (1), DURABILITY
# (strict|async), IMG_SIZE (12G, sparse, for each of the three images),
# RSYNC_TIMEOUT (1800 s per rsync), RECON_TIMEOUT (900 s), KEEP_LOGS (a
# directory to copy the logs into), BREAKDOWN (1: before each warm pair, an
# untimed `fstrack-rsync --dry-run` through logging shims of fstrack and
# rsync, splitting its time into client calls, rsync and the script's own
# work; 0: skip), and common.sh's.

# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
bench_init "$@"

COPIES=${COPIES:-4}
NDIRS=${NDIRS:-100}
SEED=${SEED:-1}
DURABILITY=${DURABILITY:-strict}
IMG_SIZE=${IMG_SIZE:-12G}
RSYNC_TIMEOUT=${RSYNC_TIMEOUT:-1800}
RECON_TIMEOUT=${RECON_TIMEOUT:-900}
KEEP_LOGS=${KEEP_LOGS:-}
BREAKDOWN=${BREAKDOWN:-1}
case $DURABILITY in
strict | async) ;;
*) die "DURABILITY must be strict or async" ;;
esac
case $NDIRS$COPIES$SEED in
*[!0-9]*) die "NDIRS, COPIES and SEED must be integers" ;;
esac
command -v rsync >/dev/null 2>&1 || die "rsync not found"
[ -x "$TOP/fstrack-rsync" ] || die "$TOP/fstrack-rsync missing (make)"
cp "$TOP/fstrack-rsync" "$WORK/bin/" || die "cannot copy fstrack-rsync"
WRAP=$WORK/bin/fstrack-rsync
# The shim for the breakdown pass (never used by the timed runs): logs
# "rsync START END" around the real binary.
for b in rsync; do
	cat >"$WORK/bin/shim-$b" <<EOF
#!/bin/bash
t0=\$EPOCHREALTIME
"\$SHIM_REAL_$b" "\$@"
rc=\$?
echo "$b \$t0 \$EPOCHREALTIME" >>"\$SHIM_LOG"
exit \$rc
EOF
	chmod +x "$WORK/bin/shim-$b"
done

SMNT=$WORK/src		# tracked loop ext4
SRC=$SMNT/tree
D1MNT=$WORK/dest1	# fstrack-rsync's destination
DEST=$D1MNT/tree
D2MNT=$WORK/dest2	# plain rsync's destination
DEST2=$D2MNT/tree
D3MNT=$WORK/dest3	# the floor's destination
DEST3=$D3MNT/tree
STATEDIR=$WORK/state
LOGS=$WORK/logs
RES=$WORK/results
mkdir -p "$LOGS"
: >"$RES"

ensure_linux_tar

# wait_ready: wait (at most RECON_TIMEOUT s) until the daemon's state is
# ready (the start-up reconcile of a new database is over).
wait_ready() {
	local n=$((RECON_TIMEOUT * 10)) st
	while :; do
		fst status >"$WORK/st" 2>/dev/null || true
		st=$(status_file "$WORK/st" state)
		case $st in
		ready) return 0 ;;
		degraded) die "fstrackd is degraded: $(cat "$WORK/st")" ;;
		esac
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "fstrackd not ready after ${RECON_TIMEOUT}s"
		sleep 0.1
	done
}

# run_fstrack LOG: the incremental sync; prints the seconds taken.
run_fstrack() {
	local t0 rc=0
	t0=$(now)
	timeout "$RSYNC_TIMEOUT" "$WRAP" -s "$SOCK" -v --stats \
		"$SRC/" "$DEST" >"$1" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { tail -n 20 "$1" >&2; die "fstrack-rsync exited $rc"; }
	elapsed "$t0"
}

# run_plain LOG: the full plain rsync; prints the seconds taken.
run_plain() {
	local t0 rc=0
	t0=$(now)
	timeout "$RSYNC_TIMEOUT" rsync -a --delete --stats "$SRC/" "$DEST2/" \
		>"$1" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { tail -n 20 "$1" >&2; die "rsync exited $rc"; }
	elapsed "$t0"
}

# run_floor LOG: rsync of exactly the entries in $WORK/exact; prints the
# seconds taken.
run_floor() {
	local t0 rc=0
	t0=$(now)
	timeout "$RSYNC_TIMEOUT" rsync -a --stats --files-from="$WORK/exact" \
		--from0 --delete-missing-args "$SRC/" "$DEST3/" >"$1" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { tail -n 20 "$1" >&2; die "floor rsync exited $rc"; }
	elapsed "$t0"
}

# stat_of LOG KEY: a number from rsync --stats output ("Number of files").
stat_of() {
	awk -v k="$2" 'index($0, k ": ") == 1 {
		v = substr($0, length(k) + 3); sub(/ .*/, "", v); gsub(/,/, "", v)
		print v; exit }' "$1"
}

# wrap_dirs LOG: "reported listed new gone" from fstrack-rsync -v.
wrap_dirs() {
	sed -n 's/^.*: \([0-9]*\) changed directories reported, \([0-9]*\) to sync under .* (\([0-9]*\) in new subtrees, \([0-9]*\) gone)$/\1 \2 \3 \4/p' \
		"$1" | tail -n 1
}

# breakdown TAG: a dry run of fstrack-rsync (cursor untouched, no
# snapshot) with rsync through the shim: prints "total=S rsync=S
# wrapper=S" (wrapper = total - rsync: fstrack-rsync's own work, the
# daemon's barrier and the reading of the changes included).
breakdown() {
	local t0 t real_rsync
	real_rsync=$(command -v rsync)
	: >"$WORK/shim.log"
	t0=$(now)
	SHIM_LOG=$WORK/shim.log SHIM_REAL_rsync=$real_rsync \
		RSYNC=$WORK/bin/shim-rsync timeout "$RSYNC_TIMEOUT" "$WRAP" \
		-s "$SOCK" -v --dry-run "$SRC/" "$DEST" >"$LOGS/$1-breakdown.log" 2>&1 ||
		die "fstrack-rsync --dry-run failed"
	t=$(elapsed "$t0")
	awk -v t="$t" '{ s[$1] += $3 - $2 }
		END { printf "total=%.3f rsync=%.3f wrapper=%.3f\n",
			t, s["rsync"], t - s["rsync"] }' "$WORK/shim.log"
}

# verify TAG: both destinations equal SRC (rsync -n -i prints nothing);
# dies otherwise, with the differences.
verify() {
	local d n bad=0
	for d in "$DEST" "$DEST2" "$DEST3"; do
		timeout "$RSYNC_TIMEOUT" rsync -a --delete -n -i "$SRC/" "$d/" \
			>"$WORK/verify" 2>&1 || die "verify rsync to $d failed"
		n=$(wc -l <"$WORK/verify")
		if [ "$n" -ne 0 ]; then
			msg "$1: $d differs from SRC in $n item(s):"
			head -n 20 "$WORK/verify" >&2
			cp "$WORK/verify" "$LOGS/verify-$1-${d##*/dest}.diff" 2>/dev/null
			bad=1
		fi
	done
	[ "$bad" -eq 0 ] || {
		[ -z "$KEEP_LOGS" ] || { mkdir -p "$KEEP_LOGS"; cp -r "$LOGS/." "$KEEP_LOGS/"; }
		die "$1: a destination differs from SRC"
	}
}

# change_dirs TAG RSEED: in NDIRS directories picked from the directory list
# with RSEED: touch one file, append to another, delete a third (sorted
# names, picks from RSEED), create a new one.  Untimed.  $WORK/exact gets
# each directory and the four entries, relative to SRC, NUL-separated.
change_dirs() {
	local tag=$1 i=0 d f n a b c
	local -a files
	awk -v s="$2" -v k="$NDIRS" 'BEGIN { srand(s) }
		{ d[NR] = $0 }
		END {	if (k > NR) k = NR
			for (i = 0; i < k; i++) {
				j = int(rand() * (NR - i)) + 1 + i
				t = d[i + 1]; d[i + 1] = d[j]; d[j] = t
				print d[i + 1], int(rand() * 1000003) } }' \
		"$WORK/dirs" >"$WORK/picked"
	: >"$WORK/exact"
	while read -r d n; do
		mapfile -d '' -t files < <(find "$SRC/$d" -mindepth 1 -maxdepth 1 \
			-type f -print0 | LC_ALL=C sort -z)
		i=$((i + 1))
		a=-1 b=-1 c=-1
		if [ "${#files[@]}" -ge 1 ]; then a=$((n % ${#files[@]})); fi
		if [ "${#files[@]}" -ge 2 ]; then b=$(((a + 1) % ${#files[@]})); fi
		if [ "${#files[@]}" -ge 3 ]; then c=$(((a + 2) % ${#files[@]})); fi
		[ "$a" -lt 0 ] || touch "${files[a]}"
		[ "$b" -lt 0 ] || echo "fstrack bench $tag $i" >>"${files[b]}"
		[ "$c" -lt 0 ] || rm -f "${files[c]}"
		f=$SRC/$d/fstrack-bench-$tag-$i
		head -c "$(((n % 8192) + 1))" /dev/urandom >"$f"
		printf '%s\0' "$d" "${f#"$SRC"/}" >>"$WORK/exact"
		for n in "$a" "$b" "$c"; do
			[ "$n" -lt 0 ] || printf '%s\0' "${files[n]#"$SRC"/}" >>"$WORK/exact"
		done
	done <"$WORK/picked"
	[ "$i" -eq "$NDIRS" ] || msg "WARNING: only $i directories to change"
}

# timed_pair TAG VARIANT CMD...: for each CMD (fstrack, plain, floor), in that
# order: sync (and drop caches if cold), run it timed; appends its line to
# RES.
timed_pair() {
	local tag=$1 var=$2 v t log rep lst nw gn
	shift 2
	for v in "$@"; do
		log=$LOGS/$tag-$v.log
		sync
		[ "$var" = warm ] || echo 3 >/proc/sys/vm/drop_caches
		msg "$tag: $v ($var)"
		case $v in
		fstrack)
			t=$(run_fstrack "$log")
			read -r rep lst nw gn <<<"$(wrap_dirs "$log")" || true
			echo "fstrack_$var $tag s=$t reported=${rep:-?} dirs=${lst:-?}" \
				"new=${nw:-?} gone=${gn:-?}" \
				"files=$(stat_of "$log" "Number of files")" \
				"xfer=$(stat_of "$log" "Number of regular files transferred")" \
				>>"$RES" ;;
		plain | floor)
			if [ "$v" = plain ]; then
				t=$(run_plain "$log")
			else
				t=$(run_floor "$log")
			fi
			echo "${v}_$var $tag s=$t" \
				"files=$(stat_of "$log" "Number of files")" \
				"xfer=$(stat_of "$log" "Number of regular files transferred")" \
				>>"$RES" ;;
		esac
		msg "$tag: $v $var ${t}s"
	done
}

# field TAG KEY: the KEY values of TAG's lines, one per line.
field() {
	awk -v v="$1" -v k="$2" '$1 == v {
		for (i = 3; i <= NF; i++) {
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

# paired VAR: plain/fstrack per round of VAR, one per line.
paired() {
	paste <(field "plain_$1" s) <(field "fstrack_$1" s) |
		awk '$2 > 0 { printf "%.2f\n", $1 / $2 }'
}

# --- set-up
make_loop_ext4 src "$IMG_SIZE" "$SMNT"
make_loop_ext4 dest1 "$IMG_SIZE" "$D1MNT"
make_loop_ext4 dest2 "$IMG_SIZE" "$D2MNT"
make_loop_ext4 dest3 "$IMG_SIZE" "$D3MNT"
make_tmpfs "$STATEDIR" 900m
for ((c = 1; c <= COPIES; c++)); do
	msg "populating copy $c of $COPIES"
	mkdir -p "$SRC/c$c"
	timeout 900 tar -xf "$LINUX_TAR" -C "$SRC/c$c" || die "tar failed"
done
sync
ENTRIES=$(find "$SRC" | wc -l)
(cd "$SRC" && find . -mindepth 1 -type d | sed 's|^\./||' | LC_ALL=C sort) \
	>"$WORK/dirs"
grep -qv ' ' "$WORK/dirs" || die "no directory to change"
grep -v ' ' "$WORK/dirs" >"$WORK/dirs.tmp" && mv "$WORK/dirs.tmp" "$WORK/dirs"
NALLDIRS=$(wc -l <"$WORK/dirs")
msg "tree: $ENTRIES entries, $NALLDIRS directories"

msg "starting fstrackd --durability $DURABILITY on $SMNT (new database)"
t0=$(now)
start_daemon "$STATEDIR" --durability "$DURABILITY" "$SMNT" ||
	die "fstrackd did not start"
wait_ready
T_READY=$(elapsed "$t0")
msg "fstrackd ready after ${T_READY}s"

msg "first full sync: fstrack-rsync (no cursor yet) -> $DEST"
T_FULL1=$(run_fstrack "$LOGS/full-fstrack.log")
grep -q 'full sync: no cursor' "$LOGS/full-fstrack.log" ||
	msg "WARNING: the first fstrack-rsync run was not a full sync"
msg "first full sync: plain rsync -> $DEST2"
T_FULL2=$(run_plain "$LOGS/full-plain.log")
msg "full syncs: fstrack-rsync ${T_FULL1}s, plain ${T_FULL2}s"
timeout "$RSYNC_TIMEOUT" rsync -a "$SRC/" "$DEST3/" >"$LOGS/full-floor.log" 2>&1 ||
	die "the floor's first full sync failed"
verify setup

for ((round = 1; round <= REPEATS; round++)); do
	if [ $((round % 2)) -eq 1 ]; then
		order=(fstrack plain)
	else
		order=(plain fstrack)
	fi
	for var in cold warm; do
		tag=r$round-$var
		msg "$tag: changing $NDIRS directories"
		vi=0
		[ "$var" = cold ] || vi=1
		change_dirs "$tag" $((SEED * 1000 + round * 2 + vi))
		if [ "$var" = warm ] && [ "$BREAKDOWN" = 1 ]; then
			echo "breakdown_warm $tag $(breakdown "$tag")" >>"$RES"
		fi
		timed_pair "$tag" "$var" "${order[@]}" floor
		verify "$tag"
		msg "$tag: both destinations equal SRC"
	done
done

# daemon figures, then stop it
fst status >"$WORK/st.end" 2>/dev/null || true
HWM=$(daemon_hwm_kb)
DCPU=$(proc_cpu_sec "$DAEMON_PID")
stop_daemon

# --- report
echo
echo "== fstrack-rsync (incremental) vs rsync -a --delete (full): $COPIES x" \
	"linux-source-6.1 = $ENTRIES entries ($NALLDIRS directories) on a loop" \
	"ext4, $NDIRS directories changed per sync (SEED $SEED), $REPEATS" \
	"round(s), durability $DURABILITY, state on tmpfs, destinations on two" \
	"loop ext4s"
echo "   seconds: median (min..max); ratio = plain / fstrack-rsync"
for var in cold warm; do
	pf=$(med "plain_$var" s)
	ff=$(med "fstrack_$var" s)
	paired "$var" >"$WORK/p"
	echo "   $var:"
	echo "      plain rsync     $pf   files considered $(med "plain_$var" files)," \
		"transferred $(med "plain_$var" xfer)"
	echo "      fstrack-rsync   $ff   files considered $(med "fstrack_$var" files)," \
		"transferred $(med "fstrack_$var" xfer)"
	echo "      ratio of medians $(ratio "${pf%% *}" "${ff%% *}")x;" \
		"per round $(stats "$WORK/p" | awk '{print $1 "x (" $2 ".." $3 ")"}')" \
		"[target >= 40x]"
	fl=$(med "floor_$var" s)
	echo "      floor           $fl   (rsync of exactly the changed entries," \
		"transferred $(med "floor_$var" xfer)): no tracker can beat" \
		"$(ratio "${pf%% *}" "${fl%% *}")x"
	echo "      fstrack-rsync directories: reported $(med "fstrack_$var" reported)," \
		"synced (listed) $(med "fstrack_$var" dirs)," \
		"in new subtrees $(med "fstrack_$var" new), gone $(med "fstrack_$var" gone)"
done
if [ "$BREAKDOWN" = 1 ]; then
	echo "   where fstrack-rsync's time goes (warm, --dry-run, rsync through a" \
		"shim, so rsync -n and no snapshot/consumer set):"
	echo "      total $(med breakdown_warm total), rsync" \
		"$(med breakdown_warm rsync), fstrack-rsync itself (barrier, reading" \
		"the changes, the list) $(med breakdown_warm wrapper)"
fi
echo "   set-up: reconcile of the new database ${T_READY}s; first full sync" \
	"fstrack-rsync ${T_FULL1}s, plain rsync ${T_FULL2}s"
echo "   daemon: CPU ${DCPU}s over the whole run, peak RSS ${HWM} kB," \
	"events $(status_file "$WORK/st.end" events), commits" \
	"$(status_file "$WORK/st.end" commits), durable commits" \
	"$(status_file "$WORK/st.end" durable_commits), permission events" \
	"$(status_file "$WORK/st.end" perm_events), overflows" \
	"$(status_file "$WORK/st.end" overflows)"
echo "   verification: after every sync pair both destinations equal SRC" \
	"(rsync -a --delete -n -i printed nothing)"
echo
echo "raw results:"
sed 's/^/   /' "$RES"
if [ -n "$KEEP_LOGS" ]; then
	mkdir -p "$KEEP_LOGS" && cp -r "$LOGS/." "$KEEP_LOGS/"
fi
umount_fs "$STATEDIR"
umount_fs "$D3MNT"
umount_fs "$D2MNT"
umount_fs "$D1MNT"
umount_fs "$SMNT"

#!/bin/bash
# opens.sh -- per-open cost of tracking, with bench/openbench.c (built here
# with cc -O2), on one loop ext4, untracked vs fstrackd --durability async
# vs strict, variants alternating, REPEATS rounds:
#	ro     read-only opens in a directory never written (this snapshot)
#	rec_w  O_WRONLY opens in a directory already recorded this snapshot
#	rec_r  O_RDONLY opens in that recorded directory
#	first  the first write-open in each of NDIRS (1,000) fresh directories,
#	       created SETTLE (2.5) s before the snapshot: latency per open
#	       and durable commits (fsyncs) per 1,000 opens
#	first_recent  the same with directories created just before the
#	       snapshot (the daemon carries directories write-opened in the
#	       last 2 s into the new snapshot)
# and a fourth variant, floor: bench/permfloor.c instead of fstrackd, a
# permission listener that only answers, with fstrackd's kind of ignore
# mark on ro and rec (as strict has them after their first open): the
# kernel's own price, below which no daemon can go.  Its "perm thread
# us/event" is the round trip alone.
# Prints us per open+close, ratios tracked/untracked (medians, and paired
# per-round ratios with their minimum), daemon CPU per open.
#
#	sudo bench/opens.sh
#	sudo REPEATS=5 N_OPENS=500000 bench/opens.sh
#	sudo VARIANTS="untracked async" bench/opens.sh
#
# Environment: REPEATS (3), VARIANTS ("untracked async strict"), N_OPENS
# (200000), NFILES (100 files per loop directory), NDIRS (1000), SETTLE
# (2.5), STATE_FS (tmpfs|ext4), CC (cc).

. "$(dirname "$0")/common.sh"
bench_init "$@"

VARIANTS=${VARIANTS:-untracked async strict floor}
N_OPENS=${N_OPENS:-200000}
NFILES=${NFILES:-100}
NDIRS=${NDIRS:-1000}
STATE_FS=${STATE_FS:-tmpfs}
CC=${CC:-cc}
SETTLE=${SETTLE:-2.5}
MNT=$WORK/mnt
OB=$WORK/openbench
PF=$WORK/permfloor
RES=$WORK/results
: >"$RES"

check_words "$VARIANTS" variant untracked async strict floor
"$CC" -O2 -o "$OB" "$BENCH_DIR/openbench.c" || die "cannot build openbench"
"$CC" -O2 -o "$PF" "$BENCH_DIR/permfloor.c" || die "cannot build permfloor"
FLOOR_PID=

# make_files DIR N: DIR with files f0 .. f(N-1).
make_files() {
	mkdir -p "$1"
	(cd "$1" && seq 0 $(($2 - 1)) | sed 's/^/f/' | xargs touch)
}

# make_dirs ROOT N: ROOT/d0/d .. ROOT/d(N-1)/d, each with a file f.  Each
# directory alone under its own parent, so that arming ahead (armahead.c:
# the subtree of a newly armed directory's parent) never reaches the next
# one first: every open measured is a directory's first.
make_dirs() {
	mkdir -p "$1"
	(cd "$1" && seq 0 $(($2 - 1)) | sed 's|^|d|; s|$|/d|' | xargs mkdir -p &&
		seq 0 $(($2 - 1)) | sed 's|^|d|; s|$|/d/f|' | xargs touch)
}

# ob_field OUTPUT KEY: a key=value of openbench's output.
ob_field() {
	echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'
}

# daemon_cpu: CPU seconds of the daemon so far (0 when untracked).
daemon_cpu() {
	if [ -n "$DAEMON_PID" ]; then
		proc_cpu_sec "$DAEMON_PID"
	else
		echo 0
	fi
}

# perm_begin / perm_end TAG: around a measurement, add TAG_ev (permission
# events during it) and, when there were any, TAG_pcpu_ev (CPU of the
# permission thread per permission event, us) to line.
perm_begin() {
	[ -n "$DAEMON_PID" ] || return 0
	pe0=$(status_get perm_events)
	pc0=$(thread_cpu_sec "$DAEMON_PID" fstrackd-perm)
}
perm_end() {
	local pc1 pe1
	[ -n "$DAEMON_PID" ] || return 0
	pc1=$(thread_cpu_sec "$DAEMON_PID" fstrackd-perm)
	pe1=$(status_get perm_events)
	line="$line ${1}_ev=$((pe1 - pe0))"
	[ "$pe1" -le "$pe0" ] ||
		line="$line ${1}_pcpu_ev=$(per_op_us "$pc0" "$pc1" $((pe1 - pe0)))"
}

# floor_end TAG: stop permfloor; add TAG_ev and TAG_pcpu_ev (its CPU per
# event, us) to line when it answered any.
floor_end() {
	floor_stop
	line="$line ${1}_ev=$FLOOR_EV"
	[ "$FLOOR_EV" -eq 0 ] || line="$line ${1}_pcpu_ev=$FLOOR_US"
}

# run_floor ROUND: the measurements of run_variant with permfloor.
run_floor() {
	local out fresh
	v=floor
	round=$1
	line="floor round=$round"
	msg "round $round: floor"
	floor_start "$MNT" "$MNT/ro" "$MNT/rec"
	out=$("$OB" loop "$MNT/ro" "$NFILES" "$N_OPENS" r) || die "openbench ro"
	line="$line ro=$(ob_field "$out" us_per_op)"
	out=$("$OB" loop "$MNT/rec" "$NFILES" "$N_OPENS" w) || die "openbench rec w"
	line="$line rec_w=$(ob_field "$out" us_per_op)"
	out=$("$OB" loop "$MNT/rec" "$NFILES" "$N_OPENS" r) || die "openbench rec r"
	line="$line rec_r=$(ob_field "$out" us_per_op)"
	floor_end ro
	fresh=$MNT/first.floor.$round
	make_dirs "$fresh" "$NDIRS"
	sync
	floor_start "$MNT"
	out=$("$OB" first "$fresh" "$NDIRS" w /d) || die "openbench first"
	floor_end first
	line="$line first=$(ob_field "$out" us_mean) first_p50=$(ob_field "$out" us_p50)"
	line="$line first_p99=$(ob_field "$out" us_p99) first_max=$(ob_field "$out" us_max)"
	echo "$line" >>"$RES"
	msg "$line"
}

# per_op_us C0 C1 N: (C1 - C0) seconds spread over N operations, in us.
per_op_us() {
	awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }'
}

# measure_first TAG SETTLE: NDIRS fresh directories with a file each,
# SETTLE seconds of quiet, a new snapshot, then the first write-open in each
# (openbench first).  Adds TAG=mean TAG_p50 TAG_p99 TAG_max TAG_dcpu,
# TAG_ev (permission events during the opens), TAG_pcpu_ev (CPU of the
# permission thread per permission event), and
# for a tracked variant TAG_fsync_per_1000 (durable commits during the
# opens) and TAG_listed (directories that changed --dirs lists) to line.
measure_first() {
	local tag=$1 settle=$2 fresh out c0 c1 d0 d1 p0 p1 e0
	fresh=$MNT/$tag.$v.$round
	make_dirs "$fresh" "$NDIRS"
	sync
	if [ "$v" != untracked ]; then
		fst changed --since "$snap" --dirs >/dev/null ||
			die "fstrack changed failed"
	fi
	sleep "$settle"
	if [ "$v" != untracked ]; then
		snap=$(new_snapshot)
		d0=$(status_get durable_commits)
	fi
	c0=$(daemon_cpu)
	if [ -n "$DAEMON_PID" ]; then
		p0=$(thread_cpu_sec "$DAEMON_PID" fstrackd-perm)
		e0=$(status_get perm_events)
	fi
	out=$("$OB" first "$fresh" "$NDIRS" w /d) || die "openbench first"
	c1=$(daemon_cpu)
	[ -z "$DAEMON_PID" ] ||
		line="$line ${tag}_ev=$(($(status_get perm_events) - e0))"
	if [ -n "$DAEMON_PID" ] && [ "$(status_get perm_events)" -gt "$e0" ]; then
		p1=$(thread_cpu_sec "$DAEMON_PID" fstrackd-perm)
		line="$line ${tag}_pcpu_ev=$(per_op_us "$p0" "$p1" $(($(status_get perm_events) - e0)))"
	fi
	line="$line $tag=$(ob_field "$out" us_mean) ${tag}_p50=$(ob_field "$out" us_p50)"
	line="$line ${tag}_p99=$(ob_field "$out" us_p99) ${tag}_max=$(ob_field "$out" us_max)"
	line="$line ${tag}_dcpu=$(per_op_us "$c0" "$c1" "$NDIRS")"
	if [ "$v" != untracked ]; then
		# Durable commits during the opens themselves (read before
		# the barrier below adds its own).
		d1=$(status_get durable_commits)
		line="$line ${tag}_fsync_per_1000=$(awk -v a="$d0" -v b="$d1" -v n="$NDIRS" \
			'BEGIN { printf "%.1f", (b - a) * 1000 / n }')"
		fst changed --since "$snap" --dirs >"$WORK/fdirs" ||
			die "fstrack changed failed"
		line="$line ${tag}_listed=$(grep -c "^$fresh/d[0-9]*/d\$" "$WORK/fdirs" || true)"
	fi
}

# run_variant VARIANT ROUND: the four measurements; a line in RES.
run_variant() {
	local state=$WORK/state out c0 c1
	v=$1
	round=$2
	[ "$v" != floor ] || { run_floor "$round"; return 0; }
	line="$v round=$round"
	snap=0
	if [ "$STATE_FS" = ext4 ]; then
		make_loop_ext4 state 512M "$state"
	else
		make_tmpfs "$state" 512m
	fi
	if [ "$v" != untracked ]; then
		if ! start_daemon "$state" --durability "$v" "$MNT"; then
			echo "$v round=$round unavailable=1" >>"$RES"
			umount_fs "$state"
			return 0
		fi
		snap=$(new_snapshot)
	fi
	msg "round $round: $v"

	# (a) read-only opens, directory never written.
	perm_begin
	c0=$(daemon_cpu)
	out=$("$OB" loop "$MNT/ro" "$NFILES" "$N_OPENS" r) || die "openbench ro"
	c1=$(daemon_cpu)
	perm_end ro
	line="$line ro=$(ob_field "$out" us_per_op) ro_dcpu=$(per_op_us "$c0" "$c1" "$N_OPENS")"

	# (b) write and read opens in a directory recorded this snapshot:
	# one write-open first, then a barrier so that even the async daemon
	# has recorded it.
	"$OB" loop "$MNT/rec" 1 1 w >/dev/null || die "openbench rec first"
	[ "$v" = untracked ] || fst changed --since "$snap" --dirs >/dev/null ||
		die "fstrack changed failed"
	perm_begin
	c0=$(daemon_cpu)
	out=$("$OB" loop "$MNT/rec" "$NFILES" "$N_OPENS" w) || die "openbench rec w"
	c1=$(daemon_cpu)
	perm_end rec_w
	line="$line rec_w=$(ob_field "$out" us_per_op) rec_w_dcpu=$(per_op_us "$c0" "$c1" "$N_OPENS")"
	perm_begin
	c0=$(daemon_cpu)
	out=$("$OB" loop "$MNT/rec" "$NFILES" "$N_OPENS" r) || die "openbench rec r"
	c1=$(daemon_cpu)
	perm_end rec_r
	line="$line rec_r=$(ob_field "$out" us_per_op) rec_r_dcpu=$(per_op_us "$c0" "$c1" "$N_OPENS")"

	# (c) first write-open in each of NDIRS fresh directories, made
	# before the snapshot: "first" with the directories made more than
	# 2 s (perm.c's PERM_RECENT_MS) before it, "first_recent" made just
	# before it (the snapshot switch itself records them).
	measure_first first "$SETTLE"
	measure_first first_recent 0
	if [ "$v" != untracked ]; then
		line="$line perm=$(status_get perm_events)"
		line="$line hwm_kb=$(daemon_hwm_kb)"
		stop_daemon
	fi
	umount_fs "$state"
	echo "$line" >>"$RES"
	msg "$line"
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
		function get(s,   i, n, kv, a) {
			n = split(s, a, " ")
			for (i = 2; i <= n; i++) {
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
	local v k ub s m
	echo
	echo "== open+close micro-benchmark on a loop ext4, $REPEATS round(s)," \
		"N_OPENS=$N_OPENS over $NFILES files, NDIRS=$NDIRS, state dir on $STATE_FS"
	echo "   us per open+close: median (min..max); ratio = median/median of" \
		"untracked, paired = per-round ratios median (min..max); dcpu = daemon" \
		"CPU us per open"
	for k in ro rec_w rec_r first first_p50 first_p99 first_max \
		first_recent first_recent_p50 first_recent_p99 first_recent_max; do
		field untracked "$k" >"$WORK/s"
		read -r ub _ <<<"$(stats "$WORK/s")"
		echo "-- $k"
		for v in $VARIANTS; do
			if [ -n "$(field "$v" unavailable)" ]; then
				printf '   %-10s not available (the daemon refused to start)\n' "$v"
				continue
			fi
			field "$v" "$k" >"$WORK/s"
			[ -s "$WORK/s" ] || continue	# floor: first_recent
			s=$(stats "$WORK/s")
			read -r m _ <<<"$s"
			printf '   %-10s %-9s (%s..%s)' "$v" "$m" \
				"$(echo "$s" | cut -d' ' -f2)" "$(echo "$s" | cut -d' ' -f3)"
			if [ "$v" != untracked ]; then
				paired "$v" "$k" >"$WORK/p"
				printf '  ratio %s  paired %s' "$(ratio "$m" "$ub")" \
					"$(stats "$WORK/p" | awk '{printf "%.2f (%.2f..%.2f)", $1, $2, $3}')"
				case $k in
				ro | rec_w | rec_r | first | first_recent)
					field "$v" "${k}_dcpu" >"$WORK/s"
					[ ! -s "$WORK/s" ] ||
						printf '  dcpu %s' "$(stats "$WORK/s" | cut -d' ' -f1)"
					field "$v" "${k}_ev" >"$WORK/s"
					[ ! -s "$WORK/s" ] ||
						printf '  perm events %s' "$(stats "$WORK/s" | cut -d' ' -f1)"
					field "$v" "${k}_pcpu_ev" >"$WORK/s"
					[ ! -s "$WORK/s" ] ||
						printf '  perm thread us/event %s' "$(stats "$WORK/s" | cut -d' ' -f1)"
					;;
				esac
			fi
			echo
		done
	done
	for v in async strict; do
		case " $VARIANTS " in *" $v "*) ;; *) continue ;; esac
		[ -z "$(field "$v" unavailable)" ] || continue
		for k in first first_recent; do
			field "$v" "${k}_fsync_per_1000" >"$WORK/s"
			echo "-- $v $k: durable commits per 1,000 first write-opens:" \
				"$(stats "$WORK/s" | awk '{print $1, "(" $2 ".." $3 ")"}')" \
				" dirs listed by changed --dirs: $(field "$v" "${k}_listed" | tr '\n' ' ')(of $NDIRS)"
		done
	done
	echo "   targets: ro <= 1.5x, rec_w and rec_r <= 1.2x untracked;" \
		"perm thread <= 5 us per permission event"
	echo "   floor: a listener that only answers (bench/permfloor.c), ignore" \
		"marks on ro and rec: the kernel's price; perm us/event of floor ="
	echo "   the round trip alone (floor's ro and rec rows measure its ignore" \
		"marks, not a first open; its first_recent is not run)"
	echo
	echo "raw results:"
	sed 's/^/   /' "$RES"
}

make_loop_ext4 opens 1G "$MNT"
make_files "$MNT/ro" "$NFILES"
make_files "$MNT/rec" "$NFILES"
sync

read -ra VLIST <<<"$VARIANTS"
nv=${#VLIST[@]}
for ((round = 1; round <= REPEATS; round++)); do
	for ((i = 0; i < nv; i++)); do
		v=${VLIST[(i + round - 1) % nv]}
		[ -z "$(field "$v" unavailable)" ] || continue
		run_variant "$v" "$round"
	done
done
summary
umount_fs "$MNT"

# shellcheck shell=bash
# Shared helpers of the fstrack benchmarks (bench/*.sh).  Source it:
#
#	. "$(dirname "$0")/common.sh"
#	bench_init "$@"		# root check, private mount namespace, trap
#
# Benchmarks, not tests: they print numbers and ratios against a baseline
# measured in the same run, never pass/fail on timing.  Everything runs in a
# private mount namespace on loop images and tmpfs made for the run, never on
# the machine's own filesystems.  Every wait is bounded.  The EXIT trap kills
# the daemon FIRST (a pending permission event is allowed when the group fd
# closes, so nothing stays frozen), then the other children, then unmounts
# and deletes the images.
#
# Environment:
#	REPEATS		repetitions of every variant (default 3)
#	BENCH_CACHE	download/tar cache and image dir (/var/tmp/fstrack-bench)
#	FSTRACKD, FSTRACK	binaries (default: the build tree next to bench/)

set -eu
set -o pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH_DIR/.." && pwd)
FSTRACKD=${FSTRACKD:-$TOP/fstrackd}
FSTRACK=${FSTRACK:-$TOP/fstrack}
BENCH_CACHE=${BENCH_CACHE:-/var/tmp/fstrack-bench}
REPEATS=${REPEATS:-3}
START_TIMEOUT=${START_TIMEOUT:-60}
STOP_TIMEOUT=${STOP_TIMEOUT:-60}
FST_TIMEOUT=${FST_TIMEOUT:-300}
LINUX_TAR=$BENCH_CACHE/linux-source-6.1.tar
BENCH_NAME=$(basename "$0" .sh)
PY=$(command -v python3 || echo /usr/bin/python3)

WORK=		# tmpfs private to the namespace: state, socket, logs
IMGDIR=		# on disk (under BENCH_CACHE): loop images of this run
DAEMON_PID=
DAEMON_LOG=
SOCK=
CHILD_PIDS=()
MOUNTS=()

# msg TEXT: a progress line on stderr (results go to stdout).
msg() {
	echo "[$BENCH_NAME $(date +%T)] $*" >&2
}

# die TEXT: give up (the trap cleans up).
die() {
	echo "$BENCH_NAME: error: $*" >&2
	exit 1
}

# bench_init "$@": check root and tools, re-run the calling script in a
# private mount namespace, set up the scratch tmpfs and the cleanup trap.
bench_init() {
	local t
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	for t in unshare mount umount losetup timeout truncate mkfs.ext4 tar; do
		command -v "$t" >/dev/null 2>&1 || die "$t not found"
	done
	case $REPEATS in
	'' | *[!0-9]* | 0) die "REPEATS must be a positive integer" ;;
	esac
	if [ "${FSTRACK_BENCH_NS:-}" != "$$" ]; then
		export FSTRACK_BENCH_NS=$$
		exec unshare -m --propagation private -- "$BASH" "$0" "$@"
	fi
	[ -x "$FSTRACKD" ] || die "$FSTRACKD not built (make first)"
	[ -x "$FSTRACK" ] || die "$FSTRACK not built (make first)"
	mkdir -p "$BENCH_CACHE"
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/fstrack-bench.XXXXXX")
	IMGDIR=$(mktemp -d "$BENCH_CACHE/run.XXXXXX")
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM HUP
	mount -t tmpfs -o size=1g,mode=0700 fstrack-bench "$WORK" ||
		die "cannot mount a tmpfs on $WORK"
	MOUNTS+=("$WORK")
	SOCK=$WORK/fstrackd.sock
	DAEMON_LOG=$WORK/fstrackd.log
	: >"$DAEMON_LOG"
	# Run a private copy: a rebuild during the run must not change the
	# binaries between variants.
	mkdir -p "$WORK/bin"
	cp "$FSTRACKD" "$FSTRACK" "$WORK/bin/" || die "cannot copy the binaries"
	FSTRACKD=$WORK/bin/${FSTRACKD##*/}
	FSTRACK=$WORK/bin/${FSTRACK##*/}
}

# bench_cleanup: the EXIT trap.  Daemon first, children, mounts, images.
bench_cleanup() {
	local rc=$? i p
	set +e
	trap - EXIT INT TERM HUP
	if [ -n "$DAEMON_PID" ]; then
		kill -KILL "$DAEMON_PID" 2>/dev/null
		wait_dead "$DAEMON_PID" 10 || echo "fstrackd survives SIGKILL" >&2
	fi
	for p in "${CHILD_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait_dead "$p" 10
	done
	if [ "$rc" -ne 0 ] && [ -s "$DAEMON_LOG" ]; then
		echo "--- last 30 lines of the fstrackd log:" >&2
		tail -n 30 "$DAEMON_LOG" >&2
	fi
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTS[i]}" 2>/dev/null ||
			umount -l "${MOUNTS[i]}" 2>/dev/null ||
			echo "cannot unmount ${MOUNTS[i]}" >&2
	done
	[ -z "$IMGDIR" ] || rm -rf "$IMGDIR"
	[ -z "$WORK" ] || rmdir "$WORK" 2>/dev/null
	exit "$rc"
}

# pid_alive PID: true while PID runs (a zombie counts as dead).
pid_alive() {
	local s rest
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
	rest=${s##*) }
	[ "${rest%% *}" != Z ]
}

# wait_dead PID SECS: wait at most SECS for PID to end; false on timeout.
wait_dead() {
	local pid=$1 n=$(($2 * 10))
	while pid_alive "$pid"; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}

# now: seconds since the epoch, nanosecond resolution.
now() {
	date +%s.%N
}

# elapsed START: seconds since START (from now).
elapsed() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'
}

# drop_caches: write back and drop the page, dentry and inode caches.
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# ensure_linux_tar: the plain linux-source-6.1 tar in the cache, made once
# from the Debian package (apt-get download, dpkg-deb -x, xz -d).
ensure_linux_tar() {
	local deb tmp xzf
	[ -s "$LINUX_TAR" ] && return 0
	command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
	deb=$(find "$BENCH_CACHE" -maxdepth 1 -name 'linux-source-6.1_*.deb' |
		head -n 1)
	if [ -z "$deb" ]; then
		msg "downloading linux-source-6.1 into $BENCH_CACHE"
		(cd "$BENCH_CACHE" && timeout 900 apt-get download linux-source-6.1) ||
			die "apt-get download linux-source-6.1 failed (apt-get update?)"
		deb=$(find "$BENCH_CACHE" -maxdepth 1 -name 'linux-source-6.1_*.deb' |
			head -n 1)
		[ -n "$deb" ] || die "no linux-source-6.1 .deb after the download"
	fi
	tmp=$BENCH_CACHE/deb.tmp
	rm -rf "$tmp"
	msg "extracting $deb"
	timeout 900 dpkg-deb -x "$deb" "$tmp" || die "dpkg-deb -x failed"
	xzf=$(find "$tmp" -name 'linux-source-6.1.tar.xz' | head -n 1)
	[ -n "$xzf" ] || die "no linux-source-6.1.tar.xz in $deb"
	msg "decompressing to $LINUX_TAR"
	timeout 900 xz -dc "$xzf" >"$LINUX_TAR.tmp" || die "xz -d failed"
	mv "$LINUX_TAR.tmp" "$LINUX_TAR"
	rm -rf "$tmp"
}

# make_loop_ext4 NAME SIZE DIR [MKFS-OPTION...]: a fresh sparse SIZE ext4
# image NAME in IMGDIR, loop-mounted on DIR (the loop device is released on
# unmount); the options go to mkfs.ext4 (e.g. -i 4096 for many inodes).
make_loop_ext4() {
	local img=$IMGDIR/$1.img size=$2 dir=$3
	shift 3
	rm -f "$img"
	truncate -s "$size" "$img"
	timeout 300 mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 \
		"$@" "$img" || die "mkfs.ext4 $img failed"
	mkdir -p "$dir"
	mount -o loop "$img" "$dir" || die "cannot loop-mount $img"
	MOUNTS+=("$dir")
}

# umount_fs DIR: unmount DIR (mounted by make_loop_ext4 or make_tmpfs) and
# delete its image, if any.
umount_fs() {
	local i dev img
	dev=$(findmnt -n -o SOURCE --target "$1" 2>/dev/null || true)
	img=
	case $dev in
	/dev/loop*) img=$(losetup -n -O BACK-FILE "$dev" 2>/dev/null || true) ;;
	esac
	umount "$1" || die "cannot unmount $1"
	for i in "${!MOUNTS[@]}"; do
		[ "${MOUNTS[i]}" != "$1" ] || unset 'MOUNTS[i]'
	done
	MOUNTS=("${MOUNTS[@]}")
	case $img in
	"$IMGDIR"/*) rm -f "$img" ;;
	esac
}

# make_tmpfs DIR SIZE: a tmpfs on DIR.
make_tmpfs() {
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2,mode=0700" fstrack-bench-state "$1" ||
		die "cannot mount a tmpfs on $1"
	MOUNTS+=("$1")
}

# fst ARGS...: the client, talking to the bench daemon, bounded in time.
fst() {
	timeout "$FST_TIMEOUT" "$FSTRACK" -s "$SOCK" "$@"
}

# start_daemon STATE_DIR ARGS...: start fstrackd -f in the background and
# wait (at most START_TIMEOUT s) until `fstrack status` answers (exit 0:
# every mark in place).  Sets DAEMON_PID.  Returns 1 if the daemon exits
# during start-up (its log says why).
start_daemon() {
	local state=$1 n=$((START_TIMEOUT * 20)) rc
	shift
	echo "=== start $(date +%T.%N): fstrackd -f --state-dir $state $*" \
		>>"$DAEMON_LOG"
	"$FSTRACKD" -f --state-dir "$state" --socket "$SOCK" "$@" \
		>>"$DAEMON_LOG" 2>&1 </dev/null &
	DAEMON_PID=$!
	while :; do
		if ! pid_alive "$DAEMON_PID"; then
			rc=0
			wait "$DAEMON_PID" || rc=$?
			DAEMON_PID=
			msg "fstrackd exited with status $rc during start-up:"
			tail -n 5 "$DAEMON_LOG" >&2
			return 1
		fi
		if timeout 5 "$FSTRACK" -s "$SOCK" status >/dev/null 2>&1; then
			return 0
		fi
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "fstrackd not ready after ${START_TIMEOUT}s"
		sleep 0.05
	done
}

# stop_daemon: SIGTERM, wait at most STOP_TIMEOUT s, then SIGKILL.  Prints
# a warning if it had to be killed; returns the exit status.
stop_daemon() {
	local pid=$DAEMON_PID rc=0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_dead "$pid" "$STOP_TIMEOUT"; then
		msg "WARNING: fstrackd ignored SIGTERM for ${STOP_TIMEOUT}s: killed"
		kill -KILL "$pid" 2>/dev/null || true
		wait_dead "$pid" 10 || true
	fi
	wait "$pid" || rc=$?
	DAEMON_PID=
	echo "=== stopped $(date +%T.%N): status $rc" >>"$DAEMON_LOG"
	[ "$rc" -eq 0 ] || msg "WARNING: fstrackd exited with status $rc"
	return 0
}

# status_get KEY: one value of `fstrack status` (empty if absent).
status_get() {
	fst status 2>/dev/null | awk -v k="$1" -F '\t|: ' '
		$1 == k { sub(/^[^\t:]*(\t|: )/, ""); print; exit }'
}

# status_file FILE KEY: one value from a saved `fstrack status` output.
status_file() {
	awk -v k="$2" -F '\t|: ' '
		$1 == k { sub(/^[^\t:]*(\t|: )/, ""); print; exit }' "$1"
}

# daemon_hwm_kb: peak resident set of the daemon (VmHWM, kB).
daemon_hwm_kb() {
	awk '$1 == "VmHWM:" { print $2 }' "/proc/$DAEMON_PID/status" 2>/dev/null ||
		echo 0
}

# proc_cpu_sec PID: user+system CPU seconds used so far by PID.
proc_cpu_sec() {
	local s rest hz
	hz=$(getconf CLK_TCK)
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || { echo 0; return; }
	rest=${s##*) }
	# fields after the comm: state(3) ... utime(14) stime(15)
	echo "$rest" | awk -v hz="$hz" '{ printf "%.2f", ($12 + $13) / hz }'
}

# thread_cpu_sec PID NAME: CPU seconds of the threads of PID called NAME
# (the daemon names its threads: fstrackd-perm, -writer, -ahead, -walk),
# from schedstat (nanoseconds; the tick-based stat counts in 10 ms steps).
thread_cpu_sec() {
	local t sum=0 c
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] || continue
		read -r c _ <"$t/schedstat" 2>/dev/null || continue
		sum=$(awk -v a="$sum" -v b="$c" 'BEGIN { printf "%.6f", a + b / 1e9 }')
	done
	echo "$sum"
}

# floor_start ARG...: bench/permfloor (built as $PF by the caller) with
# ARG... in the background; returns once its marks are in place.
floor_start() {
	local n=$((START_TIMEOUT * 20))
	: >"$WORK/floor.out"
	"$PF" "$@" >"$WORK/floor.out" 2>"$WORK/floor.err" &
	FLOOR_PID=$!
	CHILD_PIDS+=("$FLOOR_PID")
	until grep -q '^ready$' "$WORK/floor.out"; do
		pid_alive "$FLOOR_PID" || die "permfloor: $(cat "$WORK/floor.err")"
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "permfloor not ready after ${START_TIMEOUT}s"
		sleep 0.05
	done
}

# floor_stop: stop permfloor; sets FLOOR_EV (events it answered) and
# FLOOR_US (its CPU per event, us; 0.00 without events).  Not in a
# subshell: it waits for its child.
floor_stop() {
	local rc=0
	kill -TERM "$FLOOR_PID"
	wait "$FLOOR_PID" || rc=$?
	FLOOR_PID=
	[ "$rc" -eq 0 ] || die "permfloor exited $rc: $(cat "$WORK/floor.err")"
	read -r FLOOR_EV FLOOR_US <<<"$(sed -n \
		's/^events=\([0-9]*\) .*us_per_event=\([0-9.]*\)$/\1 \2/p' \
		"$WORK/floor.err")"
	[ -n "$FLOOR_EV" ] || die "permfloor said: $(cat "$WORK/floor.err")"
}

# new_snapshot: `fstrack snapshot`, prints the id.
new_snapshot() {
	fst snapshot | tail -n 1
}

# stats FILE: "median min max n" of the numbers in FILE (one per line).
stats() {
	sort -g "$1" | awk '
		function f(x) { return x == int(x) ? sprintf("%d", x) : sprintf("%.3f", x) }
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- - - 0"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%s %s %s %d\n", f(m), f(v[1]), f(v[NR]), NR
		}'
}

# ratio A B: A / B with 2 decimals ("-" if B is 0 or missing).
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (b == "" || b == "-" || b + 0 == 0 || a == "" || a == "-") print "-"
		else printf "%.2f", a / b }'
}

# check_words LIST WHAT ALLOWED...: die unless every word of LIST is one of
# ALLOWED (WHAT names the list in the message).
check_words() {
	local list=$1 what=$2 w a ok
	shift 2
	for w in $list; do
		ok=0
		for a in "$@"; do [ "$w" != "$a" ] || ok=1; done
		[ "$ok" -eq 1 ] || die "unknown $what '$w' ($*)"
	done
}

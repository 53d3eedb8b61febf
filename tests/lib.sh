# shellcheck shell=bash
# Shared helpers of the fstrack root tests.  Source it from a bash script:
#
#	. "$(dirname "$0")/lib.sh"
#	require_root
#	in_private_ns "$@"
#	setup_workdir
#	make_fs ext4 "$MNT"
#	start_daemon "$MNT"
#	...
#	finish
#
# Everything runs in a private mount namespace, on filesystems made for the
# test (tmpfs or loop images), never on the machine's own.  Every wait is
# bounded.  The EXIT trap kills the daemon FIRST (a pending permission event
# is allowed when the group fd closes, so nothing stays frozen), then the
# workload, then unmounts and removes the scratch directory.
#
# Environment:
#	top_srcdir, top_builddir	set by `make check`; default: this dir/..
#	FSTRACK_TEST_STATE_ON_FS=1	put the state dir on the tracked fs
#	FSTRACK_TEST_KEEP=1		keep the scratch dir (logs) on failure
#	CI				set: missing mkfs tools are errors
#
# Exit statuses: 0 pass, 1 fail, 77 skip, 99 hard error (broken set-up).

set -eu
# Under pipefail a reader that stops early fails the whole pipeline when the
# writer writes after it is gone (SIGPIPE): never `producer | grep -q` nor
# `| awk '... exit'` in a condition -- `grep -c ... >/dev/null` reads it
# all.  (ldd | grep -q failed root-nonroot under CI that way.)
set -o pipefail

top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || echo python3)
FSTRACKD=$top_builddir/fstrackd
FSTRACK=$top_builddir/fstrack
ORACLE=$top_srcdir/tests/oracle.py
WORKLOAD=$top_srcdir/tests/workload.py
START_TIMEOUT=${START_TIMEOUT:-20}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}
FST_TIMEOUT=${FST_TIMEOUT:-120}
TEST_TIMEOUT=${TEST_TIMEOUT:-1200}

TEST_NAME=$(basename "$0" .sh)
WORK=
MNT=
STATE=
SOCK=
DAEMON_PID=
DAEMON_LOG=
WORKLOAD_PID=
WATCHDOG_PID=
MOUNTS=()
FAILURES=0

# log MSG: a progress line on stdout.
log() {
	echo "[$TEST_NAME $(date +%T)] $*"
}

# skip MSG: the test cannot run here.
skip() {
	echo "SKIP: $TEST_NAME: $*"
	exit 77
}

# hard_error MSG: the set-up is broken (not the thing under test).
hard_error() {
	echo "ERROR: $TEST_NAME: $*" >&2
	exit 99
}

# fail MSG: record a failure and go on.
fail() {
	echo "FAIL: $TEST_NAME: $*" >&2
	FAILURES=$((FAILURES + 1))
}

# die MSG: record a failure and stop now.
die() {
	echo "FAIL: $TEST_NAME: $*" >&2
	exit 1
}

# pass MSG
pass() {
	echo "ok: $*"
}

# finish: exit 0 when no failure was recorded, 1 otherwise.
finish() {
	if [ "$FAILURES" -ne 0 ]; then
		echo "$TEST_NAME: $FAILURES failure(s)"
		exit 1
	fi
	echo "$TEST_NAME: all passed"
	exit 0
}

# require_root: skip (77) unless we are root and can make private mount
# namespaces, mount filesystems and use loop devices.  Missing fstrack
# binaries are a hard error.
require_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	local t
	for t in unshare mount umount losetup timeout truncate; do
		command -v "$t" >/dev/null 2>&1 || skip "no $t"
	done
	if [ -z "${FSTRACK_TEST_NS:-}" ]; then
		local d
		d=$(mktemp -d "${TMPDIR:-/tmp}/fstrack-probe.XXXXXX")
		if ! timeout 10 unshare -m --propagation private \
			mount -t tmpfs fstrack-probe "$d" >/dev/null 2>&1; then
			rmdir "$d"
			skip "cannot mount in a private mount namespace"
		fi
		rmdir "$d"
	fi
	[ -e /dev/loop-control ] || skip "no loop devices"
	[ -x "$FSTRACKD" ] || hard_error "$FSTRACKD not built"
	[ -x "$FSTRACK" ] || hard_error "$FSTRACK not built"
}

# in_private_ns "$@": re-run the calling script once inside a private mount
# namespace (same pid, so the guard is the pid).
in_private_ns() {
	if [ "${FSTRACK_TEST_NS:-}" != "$$" ]; then
		export FSTRACK_TEST_NS=$$
		exec unshare -m --propagation private -- "$BASH" "$0" "$@"
	fi
}

# setup_workdir: scratch dir (a tmpfs private to this namespace), the
# tracked mount point $MNT, the state dir, the socket, the cleanup trap.
setup_workdir() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/fstrack-$TEST_NAME.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT TERM HUP
	mount -t tmpfs -o size=2g,mode=0700 fstrack-work "$WORK" ||
		hard_error "cannot mount tmpfs on $WORK"
	MOUNTS+=("$WORK")
	MNT=$WORK/mnt
	mkdir -p "$MNT" "$WORK/run"
	SOCK=$WORK/run/fstrackd.sock
	DAEMON_LOG=$WORK/fstrackd.log
	: >"$DAEMON_LOG"
	start_watchdog
	if [ "${FSTRACK_TEST_STATE_ON_FS:-0}" = 1 ]; then
		STATE=$MNT/.fstrack-state	# made by set_state_on_fs
	else
		STATE=$WORK/state
		mkdir -p "$STATE"
	fi
}

# start_watchdog: after TEST_TIMEOUT seconds, SIGKILL the daemon (which
# releases any opener stuck in a permission event) and SIGTERM this test.
start_watchdog() {
	local me=$$
	(
		sp=
		trap '[ -z "$sp" ] || kill "$sp" 2>/dev/null; exit 0' TERM
		sleep "$TEST_TIMEOUT" >/dev/null 2>&1 &
		sp=$!
		wait "$sp" || exit 0
		echo "FAIL: $TEST_NAME: watchdog: still running after ${TEST_TIMEOUT}s" >&2
		pid=$(cat "$WORK/daemon.pid" 2>/dev/null) &&
			kill -KILL "$pid" 2>/dev/null
		kill -TERM "$me"
	) </dev/null &
	WATCHDOG_PID=$!
}

# state_excludes: oracle --exclude options for the state dir, if tracked.
state_excludes() {
	case $STATE in
	"$MNT"/*) printf '%s\n' --exclude "$STATE" ;;
	esac
}

# make_fs TYPE DIR: mount a new TYPE filesystem (tmpfs, or a 512M sparse
# loop image of ext4, xfs or btrfs) on DIR.
make_fs() {
	local type=$1 dir=$2 img mkfs
	case $type in
	tmpfs)
		mount -t tmpfs -o size=512m fstrack-tmpfs "$dir" ||
			hard_error "cannot mount tmpfs"
		;;
	ext4 | xfs | btrfs)
		mkfs=mkfs.$type
		if ! command -v "$mkfs" >/dev/null 2>&1; then
			[ -z "${CI:-}" ] || hard_error "$mkfs missing (needed in CI)"
			skip "$mkfs missing"
		fi
		img=$WORK/$type.img
		truncate -s 512M "$img"
		case $type in
		ext4) timeout 120 mkfs.ext4 -q -F "$img" ;;
		xfs) timeout 120 mkfs.xfs -q -f "$img" ;;
		btrfs) timeout 120 mkfs.btrfs -q -f "$img" >/dev/null ;;
		esac || hard_error "$mkfs failed"
		mount -o loop "$img" "$dir" || hard_error "cannot loop-mount $img"
		;;
	*) hard_error "make_fs: unknown type $type" ;;
	esac
	MOUNTS+=("$dir")
	if [ "$STATE" = "$MNT/.fstrack-state" ] && [ "$dir" = "$MNT" ]; then
		mkdir -p "$STATE"
	fi
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

# fst ARGS...: the client, talking to the test daemon, bounded in time.
fst() {
	timeout "$FST_TIMEOUT" "$FSTRACK" -s "$SOCK" "$@"
}

# start_daemon MOUNT...: start fstrackd in the foreground (in the
# background of this shell) and wait at most START_TIMEOUT seconds until
# `fstrack status` exits 0.
start_daemon() {
	local n=$((START_TIMEOUT * 10)) rc
	echo "=== start $(date +%T.%N): fstrackd -f --state-dir $STATE --socket $SOCK $*" \
		>>"$DAEMON_LOG"
	"$FSTRACKD" -f --state-dir "$STATE" --socket "$SOCK" "$@" \
		>>"$DAEMON_LOG" 2>&1 </dev/null &
	DAEMON_PID=$!
	echo "$DAEMON_PID" >"$WORK/daemon.pid"
	while :; do
		if ! pid_alive "$DAEMON_PID"; then
			rc=0
			wait "$DAEMON_PID" || rc=$?
			DAEMON_PID=
			die "fstrackd exited with status $rc during start-up"
		fi
		if timeout 5 "$FSTRACK" -s "$SOCK" status >/dev/null 2>&1; then
			log "fstrackd $DAEMON_PID ready"
			return 0
		fi
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "fstrackd not ready after ${START_TIMEOUT}s"
		sleep 0.1
	done
}

# status_number NAME: a number from `fstrack status` (the test dies if the
# key is missing or not a number).
status_number() {
	local v
	v=$(fst status | awk -F ': ' -v k="$1" '$1 == k { print $2 }')
	[[ $v =~ ^[0-9]+$ ]] || die "status has no $1: '$v'"
	echo "$v"
}

# stop_daemon: SIGTERM, wait at most STOP_TIMEOUT seconds, then SIGKILL.
# Returns the daemon's exit status (137 after SIGKILL), fails the test if
# it had to be killed.
stop_daemon() {
	local pid=$DAEMON_PID rc=0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_dead "$pid" "$STOP_TIMEOUT"; then
		fail "fstrackd ignored SIGTERM for ${STOP_TIMEOUT}s: killed"
		kill -KILL "$pid" 2>/dev/null || true
		wait_dead "$pid" 10 || true
	fi
	wait "$pid" || rc=$?
	DAEMON_PID=
	echo "=== stopped $(date +%T.%N): status $rc" >>"$DAEMON_LOG"
	return "$rc"
}

# kill_daemon: SIGKILL, bounded wait.
kill_daemon() {
	local pid=$DAEMON_PID
	[ -n "$pid" ] || return 0
	kill -KILL "$pid" 2>/dev/null || true
	wait_dead "$pid" 10 || echo "fstrackd $pid survives SIGKILL" >&2
	wait "$pid" 2>/dev/null || true
	DAEMON_PID=
	echo "=== killed $(date +%T.%N)" >>"$DAEMON_LOG"
}

# start_workload ROOT ARGS...: run workload.py in its own process group
# (pgid = $WORKLOAD_PID) with a progress file; output in $WORK/workload.out.
# Its pause directory is $WORK/pause (made empty here): pass --pause-at K to
# have every worker stop by itself after K operations (see wait_paused).
start_workload() {
	local n=100
	rm -f "$WORK/progress"
	rm -rf "$WORK/pause"
	mkdir "$WORK/pause"
	"$PY" "$WORKLOAD" "$@" --own-pgrp --progress-file "$WORK/progress" \
		--pause-dir "$WORK/pause" \
		>"$WORK/workload.out" 2>&1 </dev/null &
	WORKLOAD_PID=$!
	# The progress file appears after setpgid(): from then on the whole
	# group can be killed.
	while [ ! -e "$WORK/progress" ]; do
		pid_alive "$WORKLOAD_PID" || break
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "workload did not start"
		sleep 0.1
	done
}

# workload_progress: operations done so far.
workload_progress() {
	cat "$WORK/progress" 2>/dev/null || echo 0
}

# wait_paused PROCS SECS: wait at most SECS until each of the PROCS workers
# of a workload started with --pause-at has paused by itself (written
# $WORK/pause/paused-N; it then waits for resume_paused, at most the
# workload's --pause-timeout, 600 s by default).  A paused worker has no
# system call in flight, however fast or slow it ran.  Dies when the
# workload ends first (a crashed worker) or the workers do not all get there
# in time (stalled).
wait_paused() {
	local procs=$1 n=$(($2 * 20)) got
	while :; do
		got=$(find "$WORK/pause" -maxdepth 1 -name 'paused-[0-9]*' \
			! -name '*.tmp' | wc -l)
		[ "$got" -lt "$procs" ] || return 0
		if ! pid_alive "$WORKLOAD_PID"; then
			cat "$WORK/workload.out" >&2
			die "workload ended before all its workers paused ($got of $procs)"
		fi
		n=$((n - 1))
		[ "$n" -gt 0 ] ||
			die "only $got of $procs workers paused within $2 s (stalled workload?)"
		sleep 0.05
	done
}

# resume_paused: let the paused workers go on.
resume_paused() {
	: >"$WORK/pause/resume"
}

# wait_workload SECS: wait for the workload; kill it and fail on timeout.
# Returns its exit status.
wait_workload() {
	local rc=0
	if ! wait_dead "$WORKLOAD_PID" "$1"; then
		kill -KILL -- "-$WORKLOAD_PID" 2>/dev/null || true
		wait "$WORKLOAD_PID" 2>/dev/null || true
		WORKLOAD_PID=
		die "workload did not finish in $1 s"
	fi
	wait "$WORKLOAD_PID" || rc=$?
	WORKLOAD_PID=
	return "$rc"
}

# cleanup: the EXIT trap.  Daemon first, then workload, then mounts.
cleanup() {
	local rc=$? i
	set +e
	trap - EXIT INT TERM HUP
	if [ -n "$DAEMON_PID" ]; then
		kill -KILL "$DAEMON_PID" 2>/dev/null
		wait_dead "$DAEMON_PID" 10 || echo "fstrackd survives SIGKILL" >&2
	fi
	if [ -n "$WATCHDOG_PID" ]; then
		kill -TERM "$WATCHDOG_PID" 2>/dev/null
		wait "$WATCHDOG_PID" 2>/dev/null
	fi
	if [ -n "$WORKLOAD_PID" ]; then
		kill -KILL -- "-$WORKLOAD_PID" 2>/dev/null
		kill -CONT -- "-$WORKLOAD_PID" 2>/dev/null
		wait_dead "$WORKLOAD_PID" 10
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -s "$DAEMON_LOG" ]; then
		echo "--- last 60 lines of the fstrackd log ($DAEMON_LOG):"
		tail -n 60 "$DAEMON_LOG"
		echo "---"
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] &&
		[ "${FSTRACK_TEST_KEEP:-0}" = 1 ] && [ -n "$WORK" ]; then
		local keep
		keep=$(mktemp -d "${TMPDIR:-/tmp}/fstrack-$TEST_NAME-kept.XXXXXX")
		cp -a "$WORK"/*.log "$WORK"/*.json "$WORK"/*.out "$WORK"/reported* \
			"$WORK"/journal* "$STATE" "$keep"/ 2>/dev/null
		echo "kept logs in $keep"
	fi
	cd /
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		timeout 60 umount "${MOUNTS[i]}" 2>/dev/null ||
			timeout 60 umount -l "${MOUNTS[i]}" ||
			echo "cannot unmount ${MOUNTS[i]}" >&2
	done
	[ -z "$WORK" ] || rmdir "$WORK" 2>/dev/null ||
		echo "cannot remove $WORK" >&2
	exit "$rc"
}

# oracle ARGS...: tests/oracle.py, bounded in time.
oracle() {
	timeout 600 "$PY" "$ORACLE" "$@"
}

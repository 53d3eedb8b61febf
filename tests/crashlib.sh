# shellcheck shell=bash
# shellcheck disable=SC2034  # ORC_*, DELAY, REFUSAL_RC are read by the tests
# Helpers of the crash, downtime and gap tests (root-crash-loop.sh,
# root-downtime.sh, root-gaps.sh), on top of lib.sh.  Source it after lib.sh:
#
#	. "$(dirname "$0")/lib.sh"
#	. "$(dirname "$0")/crashlib.sh"
#
# Nothing here starts a process that outlives the test: every command is
# bounded by timeout(1), and the daemon is still started and stopped by the
# lib.sh functions, so lib.sh's EXIT trap kills it first.

DB_TIMEOUT=${DB_TIMEOUT:-30}

# db FILE SQL...: sqlite3 on FILE, bounded in time.  Only while the daemon
# is not running on FILE (or read-only statements).
db() {
	local f=$1
	shift
	timeout "$DB_TIMEOUT" sqlite3 -batch -bail "$f" "$@"
}

# state_db: the daemon's database.
state_db() {
	echo "$STATE/fstrack.db"
}

# now_ns: CLOCK_REALTIME in nanoseconds.
now_ns() {
	date +%s%N
}

# changed_rc OUT ARGS...: fst changed ARGS; stdout in OUT, stderr in
# OUT.err; prints the exit status.
changed_rc() {
	local out=$1 rc=0
	shift
	fst changed "$@" >"$out" 2>"$out.err" || rc=$?
	echo "$rc"
}

# take_snapshot: print a new snapshot id (dies when snapshot fails).
take_snapshot() {
	local out=$WORK/snapshot.out n
	fst snapshot >"$out" 2>&1 || die "snapshot failed: $(cat "$out")"
	n=$(tail -n 1 "$out")
	[[ $n =~ ^[0-9]+$ ]] || die "snapshot printed '$n'"
	echo "$n"
}

# sabotage_checkpoint: (negative checks only) pretend that everything up to
# now was committed: set every checkpoint to the current time.  With
# reconcile-margin 0 the next start-up pass then skips every change made
# before this moment that the database does not hold already.  The daemon
# must not be running.
sabotage_checkpoint() {
	local t
	t=$(now_ns)
	db "$(state_db)" "UPDATE filesystems SET checkpoint_ns = $t;" ||
		hard_error "cannot rewrite the checkpoint"
	echo "=== sabotage: checkpoint_ns := $t" >>"$DAEMON_LOG"
}

# write_margin_conf FILE MS: a config file with reconcile-margin MS.
write_margin_conf() {
	printf 'reconcile-margin %s\n' "$2" >"$1"
}

# ORC_MISSES, ORC_FP, ORC_EXCUSED, ORC_REQ: figures of the last compare_dirs.
ORC_MISSES=
ORC_FP=
ORC_EXCUSED=
ORC_REQ=

# compare_dirs NAME BEFORE AFTER REPORTED0 HARDLINKS: oracle compare at level
# full of a `changed --dirs -0` output; output in $WORK/compare-NAME.out
# (printed without the EXCUSED lines).  Sets ORC_*; returns the oracle's
# status (0 no miss, 1 misses, 2 error).
compare_dirs() {
	local name=$1 before=$2 after=$3 rep=$4 hl=$5 rc=0 out
	out=$WORK/compare-$name.out
	oracle compare --reported0 --level full --hardlinks "$hl" \
		"$before" "$after" "$rep" >"$out" 2>&1 || rc=$?
	grep -v '^EXCUSED' "$out" | sed "s/^/  [$name] /"
	ORC_MISSES=$(sed -n 's/^oracle: MISSES \([0-9]*\).*/\1/p' "$out")
	ORC_FP=$(sed -n 's/^oracle: false positives \([0-9]*\).*/\1/p' "$out")
	ORC_EXCUSED=$(sed -n 's/^oracle: excused.* \([0-9]*\)$/\1/p' "$out")
	ORC_REQ=$(sed -n 's/^oracle: must-report \([0-9]*\),.*/\1/p' "$out")
	ORC_EXCUSED=${ORC_EXCUSED:-0}
	return "$rc"
}

# rand_delay MIN_MS MAX_MS: set DELAY to a pseudo-random delay (seconds,
# as 0.123) drawn from $RANDOM (seed it with RANDOM=SEED first).  Sets a
# variable instead of printing: a $(...) subshell would reseed RANDOM.
DELAY=
rand_delay() {
	local ms=$(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1)))
	DELAY=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
}

# expect_refusal WHAT ARGS...: fstrackd -f with ARGS must exit non-zero
# within START_TIMEOUT seconds; its output goes to $WORK/refusal.out.  The
# daemon runs as $DAEMON_PID meanwhile, so the EXIT trap kills it.  Returns
# 0 when it refused.
expect_refusal() {
	local what=$1 rc=0
	shift
	: >"$WORK/refusal.out"
	"$FSTRACKD" -f --state-dir "$STATE" --socket "$SOCK" "$@" \
		>"$WORK/refusal.out" 2>&1 </dev/null &
	DAEMON_PID=$!
	echo "$DAEMON_PID" >"$WORK/daemon.pid"
	if ! wait_dead "$DAEMON_PID" "$START_TIMEOUT"; then
		kill_daemon
		fail "$what: fstrackd still running after ${START_TIMEOUT}s (accepted it)"
		return 1
	fi
	wait "$DAEMON_PID" || rc=$?
	DAEMON_PID=
	cat "$WORK/refusal.out" >>"$DAEMON_LOG"
	if [ "$rc" -eq 0 ]; then
		fail "$what: fstrackd exited 0"
		return 1
	fi
	REFUSAL_RC=$rc
	return 0
}
REFUSAL_RC=

# flood_stopped DIR N: with the daemon SIGSTOPped, create N empty files in
# DIR (an async daemon with --bounded-queue then overflows its queue); the
# daemon goes on afterwards.  Never for a strict daemon: it would hold the
# opens.
flood_stopped() {
	log "fstrackd stopped; creating $2 files"
	kill -STOP "$DAEMON_PID"
	timeout 300 "$PY" -c '
import os, sys
d = sys.argv[1]
for i in range(int(sys.argv[2])):
    os.close(os.open(os.path.join(d, "f%05d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
' "$1" "$2" || {
		kill -CONT "$DAEMON_PID"
		hard_error "flood failed"
	}
	kill -CONT "$DAEMON_PID"
	log "fstrackd continued"
}

#!/bin/bash
# root-crash-loop [TYPE]: nothing is missed across repeated crashes.
#
# A populated tree on a loop TYPE filesystem (ext4 by default; xfs, btrfs),
# fstrackd tracking it; snapshot N, oracle BEFORE; then a random
# multi-process workload (tests/workload.py) runs continuously while
# fstrackd is SIGKILLed at random moments (0.05-1.5 s after it became
# ready; seeded) and restarted at once (bounded wait for readiness), so the
# workload keeps changing the tree while the daemon is down and while its
# start-up reconcile pass runs (a kill often lands in the middle of one).
# After the last restart the workload finishes, the oracle records AFTER, and
# `fstrack changed --since N --dirs -0` (which waits for the reconcile pass)
# must exit 0 and miss no directory (oracle.py compare --level full).
#
# Environment:
#	FSTRACK_CRASH_KILLS	kill points (default 20; make check-crash-long: 200)
#	FSTRACK_TEST_SEED	seed of the kill delays and the workload (default 1)
#	FSTRACK_CRASH_PROCS	workload processes (default 3)
#	FSTRACK_CRASH_CHUNK	seconds per workload run; a new run starts while
#				kill points remain (default 20)
#	FSTRACK_CRASH_RATE	workload operations per second, all processes
#				together (default 1500; 0: as fast as it goes).
#				Paced, the amount of change (and the depth the
#				random directory moves reach: ~650 bytes of path
#				per 20,000 operations) does not depend on the
#				speed of the machine; unpaced, 20 kills made
#				~240,000 operations here and paths beyond
#				PATH_MAX
#	FSTRACK_TEST_HARDLINKS	strict|lenient: the mode that decides (default
#				strict, as in oracle-run.sh); the other one is
#				computed and printed too
#	FSTRACK_CRASH_DURABILITY strict|async (default strict)
#	FSTRACK_CRASH_SABOTAGE=1 negative check of this test: before every
#				restart set the checkpoint to "now" and run with
#				reconcile-margin 0, as if the daemon had
#				committed everything it never saw: must fail.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=crashlib.sh
. "$(dirname "$0")/crashlib.sh"
TYPE=${1:-ext4}
case $TYPE in
ext4 | xfs | btrfs) ;;
*)
	echo "usage: root-crash-loop.sh [ext4|xfs|btrfs]" >&2
	exit 99
	;;
esac
[ "$TYPE" = ext4 ] || TEST_NAME=root-crash-loop-$TYPE
require_root
in_private_ns "$@"
KILLS=${FSTRACK_CRASH_KILLS:-20}
SEED=${FSTRACK_TEST_SEED:-1}
PROCS=${FSTRACK_CRASH_PROCS:-3}
CHUNK=${FSTRACK_CRASH_CHUNK:-20}
RATE=${FSTRACK_CRASH_RATE:-1500}
RATE_ARGS=()
[ "$RATE" = 0 ] || RATE_ARGS=(--rate "$RATE")
HARDLINKS=${FSTRACK_TEST_HARDLINKS:-strict}
DURABILITY=${FSTRACK_CRASH_DURABILITY:-strict}
SABOTAGE=${FSTRACK_CRASH_SABOTAGE:-0}
[ "$SABOTAGE" != 1 ] || command -v sqlite3 >/dev/null 2>&1 || skip "no sqlite3"
# A long run needs a longer watchdog than lib.sh's default.
if [ "$TEST_TIMEOUT" -lt $((300 + KILLS * 15)) ]; then
	TEST_TIMEOUT=$((300 + KILLS * 15))
fi
setup_workdir
make_fs "$TYPE" "$MNT"
T0=$(date +%s)
RANDOM=$SEED
DAEMON_ARGS=(--durability "$DURABILITY")
if [ "$SABOTAGE" = 1 ]; then
	write_margin_conf "$WORK/margin0.conf" 0
	DAEMON_ARGS+=(-c "$WORK/margin0.conf")
fi
SAB_NOTE=
[ "$SABOTAGE" != 1 ] || SAB_NOTE=", SABOTAGE (negative check: must fail)"
log "$TYPE, $KILLS kill points, seed $SEED, $PROCS workload processes (rate ${RATE}/s), durability $DURABILITY, hardlinks $HARDLINKS$SAB_NOTE"

TREE=$MNT/tree
mkdir "$TREE"
"$PY" "$WORKLOAD" "$TREE" --populate --dirs 150 --files 500 --seed "$SEED" ||
	hard_error "populate failed"
start_daemon "${DAEMON_ARGS[@]}" "$MNT"

N=$(take_snapshot)
log "snapshot $N"
oracle record "$MNT" "$WORK/before.json" || hard_error "oracle record (before) failed: the harness cannot read its own tree"

CHUNKS=0
WL_FAILED=0
: >"$WORK/workload-all.out"
mkdir "$WORK/journal"

# next_chunk: start the next workload run.
next_chunk() {
	CHUNKS=$((CHUNKS + 1))
	start_workload "$TREE" --procs "$PROCS" --ops 100000000 \
		--duration "$CHUNK" --seed "$SEED-crash-$CHUNKS" \
		--journal "$WORK/journal" "${RATE_ARGS[@]}"
}

# end_chunk SECS: wait for the current run (bounded), keep its output.
end_chunk() {
	local rc=0
	wait_workload "$1" || rc=$?
	{
		echo "--- workload run $CHUNKS (exit $rc)"
		cat "$WORK/workload.out"
	} >>"$WORK/workload-all.out"
	if [ "$rc" -ne 0 ]; then
		WL_FAILED=$((WL_FAILED + 1))
		fail "workload run $CHUNKS exited $rc: $(grep -m 3 'unexpected\|crash\|died' "$WORK/workload.out")"
	fi
}

next_chunk
kills=0
while [ "$kills" -lt "$KILLS" ]; do
	if ! pid_alive "$WORKLOAD_PID"; then
		end_chunk 10
		next_chunk
	fi
	rand_delay 50 1500
	sleep "$DELAY"
	kill_daemon 2>/dev/null	# no "Killed" job notice per kill
	kills=$((kills + 1))
	echo "=== kill $kills after ${DELAY}s, workload at $(workload_progress) ops" \
		>>"$DAEMON_LOG"
	[ "$SABOTAGE" != 1 ] || sabotage_checkpoint
	start_daemon "${DAEMON_ARGS[@]}" "$MNT" >/dev/null
	[ $((kills % 10)) -ne 0 ] || log "$kills kills"
done
log "$kills kills done; waiting for the workload run to end"
end_chunk $((CHUNK + 120))

oracle record "$MNT" "$WORK/after.json" || hard_error "oracle record (after) failed: the harness cannot read its own tree"
rc=0
fst changed --since "$N" --dirs -0 >"$WORK/reported" 2>"$WORK/changed.err" ||
	rc=$?
T1=$(date +%s)
starts=$(grep -c '^=== start' "$DAEMON_LOG" || true)
# kills that came before the start-up pass of that run had finished
inpass=$(awk '/^=== start/ { run = 1; fin = 0 }
	/reconcile finished/ { fin = 1 }
	/^=== killed/ { if (run && !fin) n++; run = 0 }
	END { print n + 0 }' "$DAEMON_LOG")
gaps=$(grep -c 'gap recorded' "$DAEMON_LOG" || true)
ops=$(sed -n 's/^workload: \([0-9]*\) operations.*/\1/p' "$WORK/workload-all.out" |
	awk '{ s += $1 } END { print s + 0 }')
log "daemon starts $starts, kills during the start-up pass $inpass, gaps recorded $gaps"
log "workload: $CHUNKS runs, $ops operations"
if [ "$rc" -ne 0 ]; then
	fail "changed --since $N --dirs -0 exited $rc: $(cat "$WORK/changed.err")"
	finish
fi
grep -v '^fstrack: waiting' "$WORK/changed.err" || true

rc=0
compare_dirs "$HARDLINKS" "$WORK/before.json" "$WORK/after.json" \
	"$WORK/reported" "$HARDLINKS" || rc=$?
case $rc in
0 | 1) ;;
*) hard_error "oracle compare failed ($rc)" ;;
esac
MISSES=$ORC_MISSES FP=$ORC_FP REQ=$ORC_REQ EXC=$ORC_EXCUSED
OTHER=strict
[ "$HARDLINKS" = lenient ] || OTHER=lenient
orc2=0
compare_dirs "$OTHER" "$WORK/before.json" "$WORK/after.json" \
	"$WORK/reported" "$OTHER" >/dev/null || orc2=$?
[ "$orc2" -le 1 ] || hard_error "oracle compare ($OTHER) failed ($orc2)"
grep '^MISS' "$WORK/compare-$OTHER.out" | sed "s/^/  [$OTHER] /" | head -n 20 || true
echo "crash-loop $TYPE: kills $kills ($inpass during a start-up pass), must-report $REQ, misses $MISSES ($HARDLINKS; excused $EXC), misses $ORC_MISSES ($OTHER), false positives $FP, $((T1 - T0)) s"
if [ "$rc" -eq 1 ]; then
	fail "$MISSES directories missed after $kills kills ($HARDLINKS)"
else
	pass "no directory missed after $kills kills ($HARDLINKS)"
fi
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "fstrackd exited $rc on the final SIGTERM"
finish

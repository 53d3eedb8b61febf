#!/bin/bash
# root-walks: barriers share their walk of /proc (daemon.c, BARRIER WALKS,
# SHARED).  A file open for writing makes no event until it is written or
# closed; only the barrier's walk of /proc finds it.  With barrier-walk-gap
# 10000 ms on a loop ext4 (async, so opens are not held):
#   a. a question alone walks at once and lists the directory of a file
#      held open for writing (never written);
#   b. questions asked within the gap after it wait for one shared walk,
#      which must find a second file opened for writing after the first
#      walk: every answer lists its directory, and status counts one walk
#      for all of them;
#   c. a question after the gap has passed walks at once again.
# If the machine stalled so long that starting the questions of (b) took
# half the gap, the round is tried again (at most 3 times), then a hard
# error: never a pass or a failure because of how fast something ran.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
in_private_ns "$@"
setup_workdir
make_fs ext4 "$MNT"

GAP_MS=10000
printf 'barrier-walk-gap %s\n' "$GAP_MS" >"$WORK/fstrackd.conf"
start_daemon --config "$WORK/fstrackd.conf" --durability async "$MNT"

# lists FILE DIR: DIR is in the `changed --dirs -0` answer in FILE.
lists() {
	tr '\0' '\n' <"$1" | grep -cxF -- "$2" >/dev/null
}

HOLDERS=()
cleanup_holders() {	# keeps $? for cleanup, which reports by it
	local rc=$? p
	for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null; done
	HOLDERS=()
	return "$rc"
}
trap 'cleanup_holders; cleanup' EXIT

N=8
for try in 1 2 3; do
	R=$MNT/round$try
	mkdir -p "$R/a" "$R/b"
	: >"$R/a/held"
	: >"$R/b/held"
	S=$(fst snapshot | tail -n 1)
	[[ $S =~ ^[0-9]+$ ]] || die "snapshot printed '$S'"
	sleep $((GAP_MS / 1000 + 1))	# past the gap of any walk before

	# a. alone: a walk of its own, at once.
	sleep 600 >>"$R/a/held" &
	HOLDERS+=($!)
	w0=$(status_number barrier_walks) || exit
	t0=$(date +%s%N)
	fst changed --since "$S" --dirs -0 >"$WORK/alone" ||
		die "fstrack changed failed"
	w1=$(status_number barrier_walks) || exit
	sh0=$(status_number barrier_walks_shared) || exit

	# b. within the gap: one shared walk, which must see b/held open.
	sleep 600 >>"$R/b/held" &
	HOLDERS+=($!)
	pids=()
	for i in $(seq "$N"); do
		timeout 60 "$FSTRACK" -s "$SOCK" changed --since "$S" --dirs -0 \
			>"$WORK/shared.$i" 2>"$WORK/shared.$i.err" &
		pids+=($!)
	done
	t1=$(date +%s%N)
	rc=0
	for p in "${pids[@]}"; do wait "$p" || rc=$?; done
	[ "$rc" -eq 0 ] || die "a shared question failed ($rc): $(cat "$WORK"/shared.*.err)"
	w2=$(status_number barrier_walks) || exit
	sh1=$(status_number barrier_walks_shared) || exit
	cleanup_holders
	if [ $(((t1 - t0) / 1000000)) -lt $((GAP_MS / 2)) ]; then
		break
	fi
	log "round $try: starting the questions took $(((t1 - t0) / 1000000)) ms, half the gap or more: again"
	[ "$try" -lt 3 ] || hard_error "three rounds slower than half the ${GAP_MS} ms gap"
done

if [ "$((w1 - w0))" -eq 1 ] && lists "$WORK/alone" "$R/a"; then
	pass "a: a question alone walks at once and lists the held file's directory"
else
	fail "a: walks $w0 -> $w1; listed: $(tr '\0' ' ' <"$WORK/alone")"
fi
missing=0
for i in $(seq "$N"); do
	lists "$WORK/shared.$i" "$R/b" || missing=$((missing + 1))
done
if [ "$missing" -eq 0 ]; then
	pass "b: all $N answers list the directory of the file opened after the first walk"
else
	fail "b: $missing of $N answers do not list $R/b"
fi
if [ "$((sh1 - sh0))" -eq "$N" ] && [ "$((w2 - w1))" -eq 1 ]; then
	pass "b: $N questions within the gap shared one walk"
else
	fail "b: shared $sh0 -> $sh1, walks $w1 -> $w2 for $N questions"
fi

# c. after the gap: at once again, nothing shared.
sleep $((GAP_MS / 1000 + 1))
fst changed --since "$S" --dirs >/dev/null || die "fstrack changed failed"
w3=$(status_number barrier_walks) || exit
sh2=$(status_number barrier_walks_shared) || exit
if [ "$((w3 - w2))" -eq 1 ] && [ "$sh2" -eq "$sh1" ]; then
	pass "c: a question after the gap walks at once"
else
	fail "c: walks $w2 -> $w3, shared $sh1 -> $sh2"
fi

rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "fstrackd exited $rc on SIGTERM"
finish

#!/bin/bash
# root-perm-stall: the stall guard.  Commits are made to hang by an outside
# process holding the database's write lock (BEGIN EXCLUSIVE; WAL mode);
# the daemon runs with --stall-timeout 1000.
#  A. Writers that write-open files in unrecorded directories must go on
#     after about 1 s (measured and printed: at least 0.8 s, so they were
#     held, at most 1 s + 2 s of slack); `fstrack status` must then say
#     state degraded with perm_stalled > 0, and stay degraded while the
#     commit is still stuck.  Once the lock is released the daemon must
#     commit the queued records and return to state ready (bounded), and
#     `changed --since N --dirs` lists the writers' directories.
#  B. Again with the lock held: stalled writers, SIGKILL of the daemon
#     while their records are still uncommitted, lock released, restart
#     (reconcile-margin 0, so only the checkpoint that the stall held back
#     can bring them in): their directories must be reported.
#  C. One wait per episode (daemon restarted with --stall-timeout 3000):
#     with the lock held, a first set of writers is held ~3 s; writers in
#     other unrecorded directories after that go on at once (each open
#     < 1.5 s, half the timeout), status says degraded with a
#     degraded_since time, the log says "stalled" once, and
#     `fstrack changed` answers within a bounded time with exit 6 (the
#     daemon cannot commit) instead of hanging.  After the lock goes:
#     state ready, and every writer's directory is listed.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=permlib.sh
. "$(dirname "$0")/permlib.sh"
require_root
in_private_ns "$@"
setup_workdir
make_fs ext4 "$MNT"
FST_TIMEOUT=60

# Extra daemon options for negative checks (unquoted on purpose).
EXTRA=${FSTRACK_TEST_DAEMON_ARGS:-}
NW=5
DB=$STATE/fstrack.db
LOCK_PID=
CONF=$WORK/fstrackd.conf
printf 'reconcile-margin 0\n' >"$CONF"

# status_field KEY
status_field() {
	timeout 10 "$FSTRACK" -s "$SOCK" status 2>/dev/null |
		awk -v k="$1:" '$1 == k { print $2; exit }'
}

trap perm_cleanup EXIT


# writers PREFIX OUT: NW parallel writers, one per directory PREFIXi;
# each prints "I SECONDS" (time open() took) to OUT.  Bounded: 30 s.
writers() {
	timeout 30 "$PY" - "$1" "$NW" <<'EOF' >"$2" 2>&1
import os, sys, time
prefix, n = sys.argv[1], int(sys.argv[2])
r, w = os.pipe()
kids = []
for i in range(1, n + 1):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        t0 = time.monotonic()
        fd = os.open("%s%d/file" % (prefix, i), os.O_WRONLY)
        el = time.monotonic() - t0
        os.write(fd, b"new data\n")
        os.close(fd)
        os.write(w, ("%d %.3f\n" % (i, el)).encode())
        os._exit(0)
    kids.append(pid)
os.close(w)
bad = sum(os.waitpid(p, 0)[1] != 0 for p in kids)
sys.stdout.write(os.fdopen(r).read())
sys.exit(1 if bad else 0)
EOF
}

# check_times OUT WHAT: every open took 0.8 .. 3 s.
check_times() {
	local n
	n=$(wc -l <"$1")
	log "$2: open() times: $(awk '{ printf "%s ", $2 }' "$1")"
	if [ "$n" -ne "$NW" ]; then
		fail "$2: $n of $NW writers reported: $(cat "$1")"
	elif awk '$2 < 0.8 || $2 > 3.0 { bad = 1 } END { exit !bad }' "$1"; then
		fail "$2: open() times outside 0.8 .. 3.0 s (stall-timeout 1000 ms)"
	else
		pass "$2: writers held ~1 s, then allowed"
	fi
}

# count_missing LIST PREFIX...: how many of $T/PREFIX1 .. $T/PREFIX$NW, for
# each PREFIX, LIST (one directory a line) lacks; names them on stderr.
count_missing() {
	local list=$1 p i missing=0
	shift
	for p in "$@"; do
		for i in $(seq 1 "$NW"); do
			grep -qxF -- "$T/$p$i" "$list" || {
				missing=$((missing + 1))
				echo "    missing: $T/$p$i" >&2
			}
		done
	done
	echo "$missing"
}

# wait_state WANT SECS: wait until status says state WANT.
wait_state() {
	local n=$(($2 * 10)) s
	while :; do
		s=$(status_field state)
		[ "$s" != "$1" ] || return 0
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}

T=$MNT/t
for i in $(seq 1 "$NW"); do
	for p in a b c d; do
		mkdir -p "$T/$p$i"
		echo old >"$T/$p$i/file"
	done
done
sync
sleep 1.5

# shellcheck disable=SC2086
start_daemon -c "$CONF" --stall-timeout 1000 $EXTRA "$MNT"
fst snapshot >"$WORK/snap.out" || die "snapshot failed"
N=$(tail -n 1 "$WORK/snap.out")
[[ $N =~ ^[0-9]+$ ]] || die "snapshot printed '$N'"
log "snapshot $N"
wait_checkpoint	# the tree is 1.5 s older than any checkpoint

# --- A: stall, recover -------------------------------------------------------
lock_db
rc=0
writers "$T/a" "$WORK/times-a" || rc=$?
[ "$rc" -eq 0 ] || fail "A: writers exit $rc (124: still blocked after 30 s): $(cat "$WORK/times-a")"
check_times "$WORK/times-a" "A"
st=$(status_field state)
ps=$(status_field perm_stalled)
log "A: state $st, perm_stalled $ps"
if [ "$st" = degraded ] && [ "${ps:-0}" -gt 0 ]; then
	pass "A: degraded with perm_stalled $ps"
else
	fail "A: after a stall: state '$st', perm_stalled '$ps' (expected degraded, > 0)"
fi
# Still stuck: must stay degraded (sampled as fast as status answers, 4 s).
notdeg=0
ns=0
end=$(($(date +%s%N) + 4000000000))
while [ "$(date +%s%N)" -lt "$end" ]; do
	st=$(status_field state)
	ns=$((ns + 1))
	[ "$st" = degraded ] || notdeg=$((notdeg + 1))
	sleep 0.05
done
if [ "$notdeg" -eq 0 ]; then
	pass "A: stays degraded while the commit is stuck ($ns samples)"
else
	fail "A: state not 'degraded' in $notdeg of $ns samples while the database is still locked"
fi
# The daemon's own word: nothing may claim recovery before the lock goes.
if grep -q "keep up again\|commits work again" "$DAEMON_LOG"; then
	fail "A: the daemon logs a recovery while the database is still locked:"
	grep "keep up again\|commits work again" "$DAEMON_LOG" | sed 's/^/    /' >&2
fi
unlock_db
if wait_state ready 20; then
	pass "A: state ready again after the lock is released"
else
	fail "A: state '$(status_field state)' 20 s after the lock was released"
fi
fst changed --since "$N" --dirs >"$WORK/dirs-a.txt" || fail "A: changed --since $N failed"
missing=$(count_missing "$WORK/dirs-a.txt" a)
if [ "$missing" -eq 0 ]; then
	pass "A: the stalled writers' directories are recorded once commits work"
else
	fail "A: $missing of $NW stalled writers' directories not recorded"
fi

# --- B: stall, SIGKILL, restart -----------------------------------------------
sleep 1.5	# a checkpoint after A
# A new snapshot: A's writers armed their siblings ahead (armahead.c); in a
# new snapshot nothing is armed, so B's writers are held again.
fst snapshot >/dev/null || die "snapshot failed"
lock_db
rc=0
writers "$T/b" "$WORK/times-b" || rc=$?
[ "$rc" -eq 0 ] || fail "B: writers exit $rc: $(cat "$WORK/times-b")"
check_times "$WORK/times-b" "B"
kill_daemon
unlock_db
start_daemon -c "$CONF" "$MNT"
rc=0
fst changed --since "$N" --dirs >"$WORK/dirs-b.txt" 2>"$WORK/dirs-b.err" || rc=$?
[ "$rc" -eq 0 ] || fail "B: changed --since $N --dirs exit $rc: $(cat "$WORK/dirs-b.err")"
missing=$(count_missing "$WORK/dirs-b.txt" a b)
if [ "$missing" -eq 0 ]; then
	pass "B: every stalled writer's directory reported after SIGKILL and restart"
else
	fail "B: $missing stalled writers' directories lost after SIGKILL and restart"
fi
[ "$(status_field state)" = ready ] || wait_state ready 20 ||
	fail "B: state '$(status_field state)' after restart"
stop_daemon || fail "fstrackd exit $? after SIGTERM"

# --- C: one wait per episode; queries answer ----------------------------------
start_daemon -c "$CONF" --stall-timeout 3000 "$MNT"
N=$(fst snapshot | tail -n 1)
nlog0=$(grep -c "durable commit stalled" "$DAEMON_LOG" || true)
lock_db
rc=0
writers "$T/c" "$WORK/times-c" || rc=$?
[ "$rc" -eq 0 ] || fail "C: first writers exit $rc: $(cat "$WORK/times-c")"
log "C: first writers: $(awk '{ printf "%s ", $2 }' "$WORK/times-c")"
if awk '$2 < 2.4 { bad = 1 } END { exit !bad }' "$WORK/times-c"; then
	fail "C: the first writers of the episode were not held (~3 s expected)"
fi
rc=0
writers "$T/d" "$WORK/times-d" || rc=$?
[ "$rc" -eq 0 ] || fail "C: later writers exit $rc: $(cat "$WORK/times-d")"
log "C: later writers: $(awk '{ printf "%s ", $2 }' "$WORK/times-d")"
if awk '$2 >= 1.5 { bad = 1 } END { exit !bad }' "$WORK/times-d"; then
	fail "C: writers waited again in the same stall episode"
else
	pass "C: later writers in the episode went on at once"
fi
if [ "$(status_field state)" = degraded ] &&
	[[ $(status_field degraded_since) =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T ]]; then
	pass "C: degraded, with degraded_since $(status_field degraded_since)"
else
	fail "C: status: state '$(status_field state)', degraded_since '$(status_field degraded_since)'"
fi
nlog=$(grep -c "durable commit stalled" "$DAEMON_LOG" || true)
if [ $((nlog - nlog0)) -eq 1 ]; then
	pass "C: the stall is logged once in the episode"
else
	fail "C: the stall is logged $((nlog - nlog0)) times in one episode"
fi
rc=0
FST_TIMEOUT=60 fst changed --since "$N" >"$WORK/changed-c" 2>"$WORK/changed-c.err" || rc=$?
if [ "$rc" -eq 6 ] && [ -s "$WORK/changed-c.err" ]; then
	pass "C: changed answers exit 6 while the database cannot commit: $(cat "$WORK/changed-c.err")"
else
	fail "C: changed exit $rc while the database cannot commit (expected 6): $(cat "$WORK/changed-c.err")"
fi
unlock_db
wait_state ready 30 || fail "C: state '$(status_field state)' 30 s after the lock was released"
fst changed --since "$N" --dirs >"$WORK/dirs-c.txt" || fail "C: changed --since $N failed after the lock went"
missing=$(count_missing "$WORK/dirs-c.txt" c d)
if [ "$missing" -eq 0 ]; then
	pass "C: every writer's directory listed once commits work"
else
	fail "C: $missing writers' directories not listed after the episode"
fi
stop_daemon || fail "fstrackd exit $? after SIGTERM"
finish

#!/bin/bash
# root-perm-selfdb: the daemon's state directory (its SQLite database) on the
# filesystem it tracks, in strict mode, on a loop ext4.  A write-heavy
# multi-process workload (tests/workload.py) runs while snapshots are taken
# and the client reads the database (the client opens the -shm file for
# writing: a held write-open unless the state directory is excluded); every
# step is bounded, so a self-deadlock (the daemon holding its own database
# writes) fails instead of hanging; the workload must finish in its bound.
# The daemon must never record its state directory (`changed --since N`
# and `--dirs` list nothing under it), and must not feed on its own writes:
# while nothing happens for 3 s, the `events` and `perm_events` counters of
# `fstrack status` do not grow (and `commits` by at most one checkpoint).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
in_private_ns "$@"
export FSTRACK_TEST_STATE_ON_FS=1
setup_workdir
make_fs ext4 "$MNT"
[ "$STATE" = "$MNT/.fstrack-state" ] || hard_error "state dir $STATE not on $MNT"
FST_TIMEOUT=60

# Extra daemon options for negative checks (unquoted on purpose).
EXTRA=${FSTRACK_TEST_DAEMON_ARGS:-}
WL_SECS=${WL_SECS:-20}
# The workload must not fill the filesystem (that also holds the state
# dir): a full disk is another subject than this test's.  Unpaced it writes
# ~3 KiB per operation at ~10,000 operations/s here, which fills the 512M
# image in 20 s; paced at WL_RATE operations/s and capped at WL_RATE *
# WL_SECS operations it writes ~130 MiB at most.  FREE_MARGIN_KB: below
# this much free space before a query, the harness is at fault: hard error.
WL_RATE=${WL_RATE:-2000}
WL_OPS=$((WL_RATE * WL_SECS))
FREE_MARGIN_KB=${FREE_MARGIN_KB:-131072}

# check_space WHAT: hard error when $MNT is nearly full.
check_space() {
	local avail
	avail=$(df -Pk "$MNT" | awk 'NR == 2 { print $4 }')
	[[ $avail =~ ^[0-9]+$ ]] || hard_error "df $MNT: '$avail'"
	[ "$avail" -ge "$FREE_MARGIN_KB" ] ||
		hard_error "$1: only $((avail / 1024)) MiB free on $MNT (margin $((FREE_MARGIN_KB / 1024)) MiB): the workload outgrew the filesystem (harness sizing, not the daemon)"
}

# status_field KEY
status_field() {
	fst status | awk -v k="$1:" '!found && $1 == k { print $2; found = 1 }'
}

# idle_check WHAT: counters must stay still while nothing happens.
idle_check() {
	local e0 e1 p0 p1 c0 c1
	sleep 1.5	# let the last checkpoint tick pass
	e0=$(status_field events)
	p0=$(status_field perm_events)
	c0=$(status_field commits)
	sleep 3
	e1=$(status_field events)
	p1=$(status_field perm_events)
	c1=$(status_field commits)
	log "$1: idle 3 s: events $e0 -> $e1, perm_events $p0 -> $p1, commits $c0 -> $c1"
	if [ -z "$e0" ] || [ -z "$e1" ]; then
		fail "$1: no events in status"
		return
	fi
	if [ "$e1" -eq "$e0" ] && [ "$p1" -eq "$p0" ] && [ "$c1" -le $((c0 + 1)) ]; then
		pass "$1: no events while idle"
	else
		fail "$1: counters grow while nothing happens (the daemon feeds on its own writes?)"
	fi
}

# no_state_entries FILE WHAT: FILE lists nothing under $STATE.
no_state_entries() {
	if grep -aqF -- "$STATE" "$1"; then
		fail "$2 lists the daemon's own state directory:"
		grep -aF -- "$STATE" "$1" | head -n 10 | sed 's/^/    /' >&2
	else
		pass "$2 lists nothing under $STATE"
	fi
}

W=$MNT/w
mkdir "$W"
timeout 120 "$PY" "$WORKLOAD" "$W" --populate --dirs 100 --files 400 --seed 7 \
	>"$WORK/populate.out" 2>&1 || hard_error "populate failed: $(cat "$WORK/populate.out")"

# shellcheck disable=SC2086
start_daemon $EXTRA "$MNT"
dur=$(status_field durability)
[ "$dur" = strict ] || log "WARNING: durability is '$dur', not strict"
fst snapshot >"$WORK/snap.out" || die "snapshot failed"
N=$(tail -n 1 "$WORK/snap.out")
[[ $N =~ ^[0-9]+$ ]] || die "snapshot printed '$N'"
log "snapshot $N, state dir $STATE"
idle_check "after start"

t0=$(date +%s)
start_workload "$W" --procs 4 --ops "$WL_OPS" --rate "$WL_RATE" \
	--duration "$WL_SECS" --seed 11
i=0
while pid_alive "$WORKLOAD_PID"; do
	i=$((i + 1))
	[ "$i" -le $((WL_SECS * 3 + 60)) ] || break
	check_space "during the workload ($i)"
	# Every daemon round trip bounded; a hang is a failure, not a stall.
	timeout 15 "$FSTRACK" -s "$SOCK" status >/dev/null 2>&1 ||
		die "status did not answer within 15 s during the workload (deadlock?)"
	if [ $((i % 4)) -eq 0 ]; then
		timeout 30 "$FSTRACK" -s "$SOCK" snapshot >/dev/null 2>&1 ||
			die "snapshot did not complete within 30 s during the workload"
	fi
	if [ $((i % 4)) -eq 2 ]; then
		timeout 60 "$FSTRACK" -s "$SOCK" changed --since "$N" --dirs \
			>"$WORK/dirs-during.txt" 2>&1 ||
			die "changed did not complete within 60 s during the workload"
		no_state_entries "$WORK/dirs-during.txt" "changed --dirs during the workload ($i)"
	fi
	sleep 1
done
rc=0
wait_workload $((WL_SECS + 60)) || rc=$?
t1=$(date +%s)
log "workload: $(workload_progress) operations in $((t1 - t0)) s, exit $rc"
[ "$rc" -eq 0 ] || fail "workload exit $rc: $(tail -n 5 "$WORK/workload.out")"
if [ $((t1 - t0)) -le $((WL_SECS + 30)) ]; then
	pass "workload finished in $((t1 - t0)) s (bound $((WL_SECS + 30)) s)"
else
	fail "workload took $((t1 - t0)) s for a ${WL_SECS} s run"
fi
[ "$(workload_progress)" -gt 1000 ] || fail "workload did only $(workload_progress) operations"
check_space "after the workload"
log "after the workload: $(df -Pk "$MNT" | awk 'NR == 2 { print int($3 / 1024) " MiB used, " int($4 / 1024) " MiB free" }') on $MNT"

fst changed --since "$N" >"$WORK/entries.txt" || fail "changed --since $N failed"
fst changed --since "$N" --dirs >"$WORK/dirs.txt" || fail "changed --dirs failed"
no_state_entries "$WORK/entries.txt" "changed --since $N"
no_state_entries "$WORK/dirs.txt" "changed --since $N --dirs"
if grep -aqF -- "$W" "$WORK/dirs.txt"; then
	pass "the workload's directories are listed ($(grep -acF -- "$W" "$WORK/dirs.txt"))"
else
	fail "nothing of the workload is listed"
fi
if grep -qxF -- "$MNT" "$WORK/dirs.txt"; then
	# The mount point holds only w and the state dir: was it recorded
	# because of the state dir?
	R=$MNT W=$W awk -F '\t' '
		index($2, ENVIRON["R"] "/") == 1 && $2 != ENVIRON["W"] &&
		index($2, ENVIRON["W"] "/") != 1 { print "    " $0 }' \
		"$WORK/entries.txt" >"$WORK/root-entries.txt" || true
	if [ -s "$WORK/root-entries.txt" ]; then
		fail "entries directly in $MNT other than $W:"
		cat "$WORK/root-entries.txt" >&2
	fi
fi
idle_check "after the workload"

# The same after a restart (reconcile pass, state dir on the walked fs).
stop_daemon || fail "fstrackd exit $? after SIGTERM"
# shellcheck disable=SC2086
start_daemon $EXTRA "$MNT"
fst changed --since "$N" >"$WORK/entries2.txt" || fail "changed after restart failed"
no_state_entries "$WORK/entries2.txt" "changed --since $N after a restart"
idle_check "after a restart"
stop_daemon || fail "fstrackd exit $? after SIGTERM"
finish

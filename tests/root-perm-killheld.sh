#!/bin/bash
# root-perm-killheld: SIGKILL of the daemon while many write-openers are
# held.  Commits are made to hang by an outside process holding the
# database's write lock (BEGIN EXCLUSIVE; WAL mode), the daemon runs with
# --stall-timeout 60000, and 20 processes each write-open an existing file
# in a distinct pre-existing directory not yet recorded in the current
# snapshot, then write to it.  The test checks that they are held (status
# perm_pending reaches 20, no open() has returned), SIGKILLs the daemon,
# and checks that every opener finishes within a few seconds (the kernel
# allows pending permission events when the group fd closes: nobody
# hangs).  Then the lock is released, the daemon restarted, and
# `changed --since N --dirs` must list all 20 directories (the held
# records were never committed, so the restart's reconcile must find them).
# The daemon runs with reconcile-margin 0, so that files made before it
# started are old (perm.c, YOUNG FILES NEED NO HOLD).
# Then young files: with the commit hanging again, 5 processes each create
# a new file in another pre-existing directory and write it; they must not
# be held (each open returns, perm_young counts them), and after a SIGKILL
# and a restart their directories must be listed: found by their ctime, as
# their records never committed either.
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
NOPEN=20
DB=$STATE/fstrack.db
LOCK_PID=
OPENERS_PID=

# status_field KEY
status_field() {
	timeout 10 "$FSTRACK" -s "$SOCK" status 2>/dev/null |
		awk -v k="$1:" '$1 == k { print $2; exit }'
}

# expect_listed N WHAT DIR...: every DIR is in `changed --since N --dirs`.
expect_listed() {
	local n=$1 what=$2 rc=0 missing=0 d
	shift 2
	fst changed --since "$n" --dirs >"$WORK/dirs.txt" 2>"$WORK/dirs.err" || rc=$?
	[ "$rc" -eq 0 ] || fail "changed --since $n --dirs exit $rc: $(cat "$WORK/dirs.err")"
	for d in "$@"; do
		grep -qxF -- "$d" "$WORK/dirs.txt" || {
			missing=$((missing + 1))
			echo "    missing: $d" >&2
		}
	done
	if [ "$missing" -eq 0 ]; then
		pass "all $# $what listed after restart"
	else
		fail "$missing of $# $what not listed after restart"
	fi
}

trap perm_cleanup EXIT


CONF=$WORK/fstrackd.conf
printf 'reconcile-margin 0\n' >"$CONF"

T=$MNT/t
for i in 1 2 3 4 5; do
	mkdir -p "$T/young$i"
done
for i in $(seq 1 "$NOPEN"); do
	mkdir -p "$T/d$i"
	echo old >"$T/d$i/file"
done
mkdir -p "$T/quiet"
echo q >"$T/quiet/file"
sync

# shellcheck disable=SC2086
start_daemon -c "$CONF" --stall-timeout 60000 $EXTRA "$MNT"
fst snapshot >"$WORK/snap.out" || die "snapshot failed"
N=$(tail -n 1 "$WORK/snap.out")
[[ $N =~ ^[0-9]+$ ]] || die "snapshot printed '$N'"
log "snapshot $N"
wait_checkpoint
lock_db

# The openers: one process group (setsid), one child per directory; each
# child touches WORK/opened.I when its open() returned, then writes.
mkdir -p "$WORK/opened"
setsid "$PY" - "$T" "$NOPEN" "$WORK/opened" <<'EOF' >"$WORK/openers.out" 2>&1 &
import os, sys, time
root, n, marks = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kids = []
for i in range(1, n + 1):
    pid = os.fork()
    if pid == 0:
        t0 = time.monotonic()
        fd = os.open(os.path.join(root, "d%d" % i, "file"), os.O_WRONLY)
        t1 = time.monotonic()
        open(os.path.join(marks, str(i)), "w").write("%.3f\n" % (t1 - t0))
        os.write(fd, b"new data\n")
        os.close(fd)
        os._exit(0)
    kids.append(pid)
bad = 0
for pid in kids:
    _, st = os.waitpid(pid, 0)
    bad += st != 0
sys.exit(1 if bad else 0)
EOF
OPENERS_PID=$!

# Held: all of them pending in the daemon, none returned from open().
end=$((SECONDS + 20))
pending=
while [ "$SECONDS" -lt "$end" ]; do
	pending=$(status_field perm_pending)
	[ "${pending:-0}" -lt "$NOPEN" ] || break
	pid_alive "$OPENERS_PID" || break	# not held at all
	sleep 0.1
done
nopened=$(find "$WORK/opened" -type f | wc -l)
log "perm_pending $pending, $nopened of $NOPEN open() returned"
if [ "${pending:-0}" -ge "$NOPEN" ] && [ "$nopened" -eq 0 ]; then
	pass "all $NOPEN write-openers held while commits hang"
else
	fail "openers not held: perm_pending '${pending}', $nopened open() returned"
fi
sleep 1
nopened=$(find "$WORK/opened" -type f | wc -l)
[ "$nopened" -eq 0 ] || fail "$nopened open() returned while the commit hangs"
pid_alive "$OPENERS_PID" || fail "the openers finished while the commit hangs"

# SIGKILL the daemon: every opener must go on at once.
t0=$(date +%s.%N)
kill_daemon
if wait_dead "$OPENERS_PID" 10; then
	t1=$(date +%s.%N)
	el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	rc=0
	wait "$OPENERS_PID" || rc=$?
	OPENERS_PID=
	nopened=$(find "$WORK/opened" -type f | wc -l)
	log "all openers finished ${el} s after SIGKILL (exit $rc, $nopened opened)"
	if [ "$rc" -eq 0 ] && [ "$nopened" -eq "$NOPEN" ]; then
		pass "every held opener went on after SIGKILL (${el} s)"
	else
		fail "openers: exit $rc, $nopened of $NOPEN opened: $(cat "$WORK/openers.out")"
	fi
	if awk -v e="$el" 'BEGIN { exit !(e > 5) }'; then
		fail "openers took ${el} s to finish after SIGKILL (bound 5 s)"
	fi
else
	nopened=$(find "$WORK/opened" -type f | wc -l)
	fail "openers still stuck 10 s after SIGKILL of the daemon ($nopened of $NOPEN opened)"
	kill -KILL -- "-$OPENERS_PID" 2>/dev/null || true
	OPENERS_PID=
fi

unlock_db
start_daemon -c "$CONF" --stall-timeout 60000 "$MNT"
expect_listed "$N" "held writers' directories" $(for i in $(seq 1 "$NOPEN"); do echo "$T/d$i"; done)

# --- young files: not held, found after a SIGKILL -----------------------------
N=$(fst snapshot | tail -n 1)
[[ $N =~ ^[0-9]+$ ]] || die "snapshot printed '$N'"
wait_checkpoint
lock_db
y0=$(status_field perm_young)
rc=0
timeout 20 "$PY" - "$T" <<'EOF' >"$WORK/young.out" 2>&1 || rc=$?
import os, sys
for i in range(1, 6):
    fd = os.open(os.path.join(sys.argv[1], "young%d" % i, "new"),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"young data\n")
    os.close(fd)
EOF
y1=$(status_field perm_young)
if [ "$rc" -eq 0 ] && [ "$((y1 - y0))" -ge 5 ]; then
	pass "5 young files written while commits hang, none held (perm_young +$((y1 - y0)))"
else
	fail "young files: exit $rc (124: held), perm_young $y0 -> $y1: $(cat "$WORK/young.out")"
fi
kill_daemon
unlock_db
start_daemon -c "$CONF" "$MNT"
expect_listed "$N" "young files' directories" "$T"/young1 "$T"/young2 "$T"/young3 "$T"/young4 "$T"/young5
stop_daemon || fail "fstrackd exit $? after SIGTERM"
finish

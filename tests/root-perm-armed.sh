#!/bin/bash
# root-perm-armed: strict mode costs one permission round trip per
# directory per snapshot, and arming a directory weakens nothing.  On a
# loop ext4 with a tree of 40 directories x 3 levels:
#  A. Reading the whole tree (every file, twice) right after a snapshot
#     makes at most one permission event per directory on the first pass
#     (plus the few opens that arrive while a directory's arm commits; the
#     bound checked is 3 per directory) and none on the second; find and
#     ls -R (directory opens) make none at all; `changed --since N` lists
#     nothing (armed is not changed).
#  B. The same read of a fresh snapshot, then a file in an armed directory
#     is opened O_RDWR and written ONLY through a shared mapping, and stays
#     mapped: `changed --since N` must list it while it is mapped (no event
#     exists for such writes; the query's walk of /proc finds it).
#  C. While an arm cannot commit (the database's write lock is held from
#     outside), read-opens in the directory are answered at once (leaving
#     no lease of the daemon's behind: /proc/locks), and a
#     write-open there is held -- the ignore mark must not go on before the
#     arm is durable.  The held writer is still blocked 1 s later (the stall
#     timeout is 60 s), and goes on once the lock is released.
#  E. A directory write-opened just before a snapshot is carried into it
#     (recorded again, open-at-snapshot, without a round trip): its ignore
#     mark must not go on before that record is durable either.  The first
#     write-open in $MNT/e, then the database locked, then a snapshot (its
#     commit waits for the lock; the switch is done): a write-open in
#     $MNT/e must be held.  If the directory was not carried (the snapshot
#     came more than 0.5 s after the write-open: the harness's timing), the
#     case is done again, at most 3 times, then exit 99.
#  D. A clean stop while a file in an armed directory is mapped shared and
#     written through the mapping (no event), with the mapping written again
#     and dropped while the daemon is down (no event, and no new ctime: the
#     page is already dirty): after the restart (reconcile-margin 0, so the
#     rescan cannot find it by ctime) the file must be listed -- the daemon
#     records files mapped or open for writing at its clean stop.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=permlib.sh
. "$(dirname "$0")/permlib.sh"
require_root
in_private_ns "$@"
setup_workdir
make_fs ext4 "$MNT"
FST_TIMEOUT=60
DB=$STATE/fstrack.db
LOCK_PID=

trap perm_cleanup EXIT

# wait_mapped: wait (bounded) until the mapping writer $MAPPER has written
# through its mapping ($WORK/mapped exists).
wait_mapped() {
	local n=0
	while [ ! -e "$WORK/mapped" ]; do
		pid_alive "$MAPPER" || hard_error "the mapping writer died"
		n=$((n + 1))
		[ "$n" -lt 500 ] || hard_error "the mapping writer did not map in 25 s"
		sleep 0.05
	done
}

# status_field KEY
status_field() {
	fst status | awk -v k="$1:" '!found && $1 == k { print $2; found = 1 }'
}

T=$MNT/tree
NDIRS=0
for i in $(seq 1 40); do
	mkdir -p "$T/a$i/b/c"
	for d in "$T/a$i" "$T/a$i/b" "$T/a$i/b/c"; do
		for j in $(seq 1 10); do echo "data $j" >"$d/f$j"; done
		NDIRS=$((NDIRS + 1))
	done
done
NDIRS=$((NDIRS + 1))	# $T itself
mkdir "$MNT/c" "$MNT/e"
echo data >"$MNT/c/held"
echo data >"$MNT/e/first"
echo data >"$MNT/e/second"
sync
sleep 1.2
# reconcile-margin 0: the files made above are old, so their write-opens
# are held (perm.c, YOUNG FILES NEED NO HOLD); C's restart needs it too.
CONF=$WORK/fstrackd.conf
printf 'reconcile-margin 0\n' >"$CONF"
start_daemon -c "$CONF" --stall-timeout 60000 "$MNT"

# --- A. one round trip per directory ----------------------------------------
N=$(fst snapshot | tail -n 1)
[[ $N =~ ^[0-9]+$ ]] || die "snapshot printed '$N'"
e0=$(status_field perm_events)
find "$T" -type f -exec cat {} + >/dev/null
e1=$(status_field perm_events)
find "$T" -type f -exec cat {} + >/dev/null
e2=$(status_field perm_events)
find "$T" >/dev/null
ls -R "$T" >/dev/null
du -s "$T" >/dev/null
e3=$(status_field perm_events)
log "permission events: first pass $((e1 - e0)), second $((e2 - e1)), directory walks $((e3 - e2)); $NDIRS directories, $((NDIRS * 10 - 10)) files"
if [ $((e1 - e0)) -le $((3 * NDIRS)) ]; then
	pass "first read of $NDIRS directories: $((e1 - e0)) permission events (<= 3 per directory)"
else
	fail "first read of $NDIRS directories: $((e1 - e0)) permission events (> 3 per directory)"
fi
if [ $((e2 - e1)) -eq 0 ]; then
	pass "second read in the same snapshot: no permission event"
else
	fail "second read in the same snapshot: $((e2 - e1)) permission events"
fi
if [ $((e3 - e2)) -eq 0 ]; then
	pass "find, ls -R, du: no permission event"
else
	fail "find, ls -R, du: $((e3 - e2)) permission events"
fi
fst changed --since "$N" >"$WORK/changed-a" || fail "changed --since $N failed"
if [ -s "$WORK/changed-a" ]; then
	fail "reads alone were reported as changes:"
	head -n 5 "$WORK/changed-a" | sed 's/^/    /' >&2
else
	pass "reads alone: changed --since $N lists nothing"
fi

# --- B. a shared-mapping write in an armed directory -------------------------
N=$(fst snapshot | tail -n 1)
find "$T" -type f -exec cat {} + >/dev/null
e0=$(status_field perm_events)
D=$T/a7/b
rm -f "$WORK/mapped" "$WORK/unmap"
timeout 60 "$PY" - "$D/f3" "$WORK/mapped" "$WORK/unmap" <<'EOF' &
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 4096 if os.fstat(fd).st_size >= 4096 else os.fstat(fd).st_size)
m[0:4] = b"MMAP"
open(sys.argv[2], "w").close()
end = time.monotonic() + 50
while not os.path.exists(sys.argv[3]) and time.monotonic() < end:
    time.sleep(0.02)
m.close()
os.close(fd)
EOF
MAPPER=$!
wait_mapped
e1=$(status_field perm_events)
[ "$e1" = "$e0" ] || log "note: the write-open made $((e1 - e0)) permission events (directory not yet silent)"
fst changed --since "$N" >"$WORK/changed-b" || fail "changed --since $N failed"
if grep -qF -- "	$D/f3" "$WORK/changed-b"; then
	pass "file written through a shared mapping in an armed directory: listed while mapped"
else
	fail "$D/f3 written through a shared mapping NOT listed while mapped:"
	sed 's/^/    /' "$WORK/changed-b" >&2
fi
: >"$WORK/unmap"
wait "$MAPPER" || fail "the mapping writer failed"

# --- C. no ignore mark before the arm is durable ------------------------------
N=$(fst snapshot | tail -n 1)
lock_db
e0=$(status_field perm_events)
# The reader keeps its fd: the probe that told it from a write-open took a
# lease on the daemon's event fd, which must be gone once the reader's
# open has returned (a write-open by anyone would wait for a lease).
rm -f "$WORK/reading" "$WORK/stopread"
timeout 60 "$PY" - "$MNT/c/held" "$WORK/reading" "$WORK/stopread" <<'EOF' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
open(sys.argv[2], "w").close()
end = time.monotonic() + 50
while not os.path.exists(sys.argv[3]) and time.monotonic() < end:
    time.sleep(0.02)
os.close(fd)
EOF
READER=$!
n=0
while [ ! -e "$WORK/reading" ]; do
	pid_alive "$READER" || break
	n=$((n + 1))
	[ "$n" -lt 600 ] || break
	sleep 0.05
done
if [ -e "$WORK/reading" ]; then
	pass "read-open answered while its directory's arm cannot commit"
else
	fail "a read-open waited for the arm's commit (30 s)"
fi
leases=$(awk -v p="$DAEMON_PID" '$2 == "LEASE" && $5 == p' /proc/locks)
if [ -z "$leases" ]; then
	pass "the read-open's lease probe left no lease behind"
else
	fail "fstrackd holds a lease after answering a read-open: $leases"
fi
: >"$WORK/stopread"
wait "$READER" || fail "the reader failed"
rm -f "$WORK/opened"
timeout 90 "$PY" - "$MNT/c/held" "$WORK/opened" <<'EOF' &
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
open(sys.argv[2], "w").close()
os.close(fd)
EOF
WRITER=$!
sleep 1
if [ -e "$WORK/opened" ]; then
	fail "write-open returned while its directory's arm was not durable"
else
	pass "write-open held while its directory's arm cannot commit"
fi
unlock_db
n=0
while [ ! -e "$WORK/opened" ]; do
	n=$((n + 1))
	[ "$n" -lt 600 ] || fail "held writer still blocked 30 s after the lock was released"
	[ "$n" -lt 600 ] || break
	sleep 0.05
done
wait "$WRITER" || fail "the held writer failed"
[ -e "$WORK/opened" ] && pass "held writer went on once the arm committed"

# --- E. a carried directory: no ignore mark before its record is durable ------
carried=no
for attempt in 1 2 3; do
	fst snapshot >/dev/null || fail "snapshot failed"
	old=$(status_field snapshot)
	rm -f "$WORK/locked" "$WORK/opened"
	# one process: the directory's first write-open, then the lock at once
	"$PY" - "$DB" "$WORK/locked" "$MNT/e/first" <<'PYEOF' >"$WORK/lock.out" 2>&1 &
import os, sqlite3, sys, time
os.close(os.open(sys.argv[3], os.O_WRONLY))
c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(300)
PYEOF
	LOCK_PID=$!
	n=0
	while [ ! -e "$WORK/locked" ]; do
		pid_alive "$LOCK_PID" || hard_error "lock holder died: $(cat "$WORK/lock.out")"
		n=$((n + 1))
		[ "$n" -lt 2000 ] || hard_error "could not lock the database in 20 s"
		sleep 0.01
	done
	timeout 90 "$FSTRACK" -s "$SOCK" snapshot >"$WORK/snap-e" 2>&1 &
	SNAPPER=$!
	n=0
	while [ "$(status_field snapshot)" = "$old" ]; do
		n=$((n + 1))
		[ "$n" -lt 500 ] || hard_error "the snapshot did not switch in 25 s"
		sleep 0.05
	done
	timeout 90 "$PY" - "$MNT/e/second" "$WORK/opened" <<'PYEOF' &
import os, sys
os.close(os.open(sys.argv[1], os.O_WRONLY))
open(sys.argv[2], "w").close()
PYEOF
	WRITER=$!
	sleep 1
	held=yes
	[ -e "$WORK/opened" ] && held=no
	unlock_db
	wait "$WRITER" || fail "the writer in the carried directory failed"
	wait "$SNAPPER" || fail "the snapshot taken under the lock failed: $(cat "$WORK/snap-e")"
	new=$(tail -n 1 "$WORK/snap-e")
	if fst changed --since "$new" | grep -c "open-at-snapshot.*	$MNT/e/first\$" >/dev/null; then
		carried=yes
		break
	fi
	log "E: $MNT/e was not carried into snapshot $new (attempt $attempt): again"
done
[ "$carried" = yes ] || hard_error "E: the directory was never carried into the snapshot (timing)"
if [ "$held" = yes ]; then
	pass "write-open in a carried directory held while its record cannot commit"
else
	fail "write-open in a carried directory returned before its record was durable"
fi

# --- D. mapped at a clean stop, written and dropped while down ----------------
stop_daemon || fail "fstrackd exit $? after SIGTERM"
start_daemon -c "$CONF" "$MNT"
N=$(fst snapshot | tail -n 1)
D=$T/a11/b/c
find "$D" -type f -exec cat {} + >/dev/null
rm -f "$WORK/mapped" "$WORK/unmap" "$WORK/done"
timeout 60 "$PY" - "$D/f5" "$WORK/mapped" "$WORK/unmap" "$WORK/done" <<'PYEOF' &
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, os.fstat(fd).st_size)
os.close(fd)			# only the mapping is left
m[0:1] = b"A"			# first fault: sets ctime
open(sys.argv[2], "w").close()
end = time.monotonic() + 50
while not os.path.exists(sys.argv[3]) and time.monotonic() < end:
    time.sleep(0.02)
m[1:2] = b"B"			# the page is dirty: no fault, no new ctime
m.close()
open(sys.argv[4], "w").close()
PYEOF
MAPPER=$!
wait_mapped
sleep 1.5	# a checkpoint later than the first fault's ctime
stop_daemon || fail "fstrackd exit $? after SIGTERM"
: >"$WORK/unmap"
wait "$MAPPER" || fail "the mapping writer failed"
[ -e "$WORK/done" ] || hard_error "the mapping writer did not finish"
start_daemon -c "$CONF" "$MNT"
fst changed --since "$N" >"$WORK/changed-d" || fail "changed --since $N failed"
if grep -qF -- "	$D/f5" "$WORK/changed-d"; then
	pass "file mapped at a clean stop and written while down: listed"
else
	fail "$D/f5 mapped at a clean stop and written while down NOT listed"
	sed 's/^/    /' "$WORK/changed-d" >&2
fi
stop_daemon || fail "fstrackd exit $? after SIGTERM"
finish

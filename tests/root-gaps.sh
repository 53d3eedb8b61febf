#!/bin/bash
# root-gaps: history that cannot be proved complete is reported as a gap.
# Each case must make `fstrack changed --since N` exit 4 with "history
# incomplete" on stderr naming the mount point, `--dirs` print the mount
# point as a line and `--json` say "complete":false; never a short list with
# exit 0:
#   e. negative control: an ordinary restart (SIGTERM; and SIGKILL) -> exit 0
#   c. overflowed event queue (--durability async --bounded-queue, daemon
#      SIGSTOPped while > 20000 files are created) -> exit 4; a snapshot
#      taken afterwards exit 0
#   d. a different filesystem mounted at the same mount point -> exit 4
#   a. clock stepped backwards (checkpoint moved an hour into the future
#      with sqlite3 while the daemon is stopped; the real clock is never
#      touched) -> old N exit 4; a snapshot taken after the restart exit 0,
#      also across a further ordinary restart
#   b. replaced database (fstrack.db* moved away) -> old N exit 4
#   b2. the same, with more snapshots than seconds between the two
#      databases' creation (ids of the old database overlap the new one's)
#   r. refusals: a garbage fstrack.db, a foreign SQLite database and one
#      with user_version 99 -> fstrackd exits non-zero with a message, and
#      the file is byte-for-byte unchanged.
# FSTRACK_GAPS_SABOTAGE=1 (negative check of this test): delete the gap rows
# (daemon stopped) before querying a, c and d: the test must then fail.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=crashlib.sh
. "$(dirname "$0")/crashlib.sh"
require_root
in_private_ns "$@"
command -v sqlite3 >/dev/null 2>&1 || skip "no sqlite3"
setup_workdir
make_fs ext4 "$MNT"
SABOTAGE=${FSTRACK_GAPS_SABOTAGE:-0}
mkdir "$MNT/tree"
"$PY" "$WORKLOAD" "$MNT/tree" --populate --dirs 20 --files 60 --seed gaps \
	>/dev/null || hard_error "populate failed"

# expect_gap LABEL N MOUNT: the three output modes report a gap (exit 4)
# naming MOUNT (MOUNT empty: the mount point need not be named).
expect_gap() {
	local label=$1 n=$2 mnt=$3 rc o=$WORK/gap-$1
	rc=$(changed_rc "$o.txt" --since "$n")
	if [ "$rc" -ne 4 ]; then
		fail "$label: changed --since $n exited $rc, expected 4 ($(wc -l <"$o.txt") lines; stderr: $(head -c 300 "$o.txt.err"))"
	elif ! grep -q 'history incomplete' "$o.txt.err"; then
		fail "$label: exit 4 without 'history incomplete' on stderr: $(head -c 300 "$o.txt.err")"
	elif [ -n "$mnt" ] && ! grep -qF -- "$mnt" "$o.txt.err"; then
		fail "$label: the message does not name $mnt: $(head -c 300 "$o.txt.err")"
	else
		pass "$label: exit 4: $(head -n 1 "$o.txt.err")"
	fi
	rc=$(changed_rc "$o.dirs" --since "$n" --dirs)
	if [ "$rc" -ne 4 ]; then
		fail "$label: changed --dirs exited $rc, expected 4"
	elif [ -n "$mnt" ] && ! grep -qxF -- "$mnt" "$o.dirs"; then
		fail "$label: changed --dirs does not print the line $mnt"
	else
		pass "$label: --dirs exit 4${mnt:+, lists $mnt}"
	fi
	rc=$(changed_rc "$o.json" --since "$n" --json)
	if [ "$rc" -ne 4 ]; then
		fail "$label: changed --json exited $rc, expected 4"
	elif ! grep -q '"complete":false' "$o.json"; then
		fail "$label: --json without \"complete\":false: $(head -c 300 "$o.json")"
	elif [ -n "$mnt" ] && ! grep -qF -- "\"mountpoint\":\"$mnt\"" "$o.json"; then
		fail "$label: --json gaps do not name $mnt: $(head -c 300 "$o.json")"
	else
		pass "$label: --json exit 4, complete:false"
	fi
}

# expect_complete LABEL N: exit 0 and "complete":true.
expect_complete() {
	local label=$1 n=$2 rc o=$WORK/ok-$1
	rc=$(changed_rc "$o.txt" --since "$n")
	if [ "$rc" -ne 0 ]; then
		fail "$label: changed --since $n exited $rc, expected 0: $(head -c 300 "$o.txt.err")"
		return
	fi
	rc=$(changed_rc "$o.json" --since "$n" --json)
	if [ "$rc" -ne 0 ] || ! grep -q '"complete":true' "$o.json"; then
		fail "$label: changed --json exited $rc / not complete: $(head -c 300 "$o.json")"
		return
	fi
	pass "$label: exit 0, complete ($(wc -l <"$o.txt") entries)"
}

# expect_listed LABEL N PATH: changed --since N lists PATH (exit 0).
expect_listed() {
	local rc o=$WORK/listed-$1
	rc=$(changed_rc "$o" --since "$2")
	if [ "$rc" -eq 0 ] && cut -f 2- "$o" | grep -cxF -- "$3" >/dev/null; then
		pass "$1: $3 listed"
	else
		fail "$1: changed --since $2 (exit $rc) does not list $3"
		echo "  stderr: $(cat "$o.err")"
		echo "  $(wc -l <"$o") entries; those in ${3%/*}:"
		awk -F '\t' -v d="${3%/*}" 'index($2, d) == 1' "$o" | head -n 20 |
			sed 's/^/    /'
		grep -c . "$WORK/ok-$1.txt" 2>/dev/null | sed 's/^/  entries of the previous query: /'
		diff <(sort "$WORK/ok-$1.txt") <(sort "$o") | head -n 10 | sed 's/^/  diff: /'
	fi
}

# sabotage_gaps: (negative check) drop every recorded gap.
sabotage_gaps() {
	[ "$SABOTAGE" = 1 ] || return 0
	stop_daemon || true
	db "$(state_db)" "DELETE FROM gaps;" || hard_error "sabotage failed"
	log "SABOTAGE: gaps deleted"
	start_daemon "$@"
}

start_daemon "$MNT"

# --- e. negative control: ordinary restarts keep history complete.
N0=$(take_snapshot)
touch "$MNT/tree/e1"
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "e: fstrackd exited $rc on SIGTERM"
start_daemon "$MNT"
expect_complete e-sigterm "$N0"
expect_listed e-sigterm "$N0" "$MNT/tree/e1"
kill_daemon
touch "$MNT/tree/e2"
start_daemon "$MNT"
expect_complete e-sigkill "$N0"
expect_listed e-sigkill "$N0" "$MNT/tree/e2"

# --- c. overflowed event queue (async daemon only: never SIGSTOP strict).
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "c: fstrackd exited $rc on SIGTERM"
start_daemon --durability async --bounded-queue "$MNT"
NC=$(take_snapshot)
mkdir "$MNT/flood"
fst changed --since "$NC" >/dev/null 2>&1 || true	# reconcile done
flood_stopped "$MNT/flood" 21000
sabotage_gaps --durability async --bounded-queue "$MNT"
expect_gap c-overflow "$NC" "$MNT"
NC2=$(take_snapshot)
touch "$MNT/tree/c2"
expect_complete c-after "$NC2"
expect_listed c-after "$NC2" "$MNT/tree/c2"
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "c: fstrackd exited $rc on SIGTERM"
start_daemon "$MNT"

# --- d. a different filesystem at the same mount point.
ND=$(take_snapshot)
touch "$MNT/tree/d1"
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "d: fstrackd exited $rc on SIGTERM"
timeout 60 umount "$MNT" || hard_error "cannot unmount $MNT"
truncate -s 512M "$WORK/ext4-new.img"
timeout 120 mkfs.ext4 -q -F "$WORK/ext4-new.img" || hard_error "mkfs failed"
mount -o loop "$WORK/ext4-new.img" "$MNT" || hard_error "cannot mount"
mkdir "$MNT/tree"
log "d: a new ext4 is mounted at $MNT"
start_daemon "$MNT"
sabotage_gaps "$MNT"
expect_gap d-newfs "$ND" "$MNT"
ND2=$(take_snapshot)
touch "$MNT/tree/d2"
expect_complete d-after "$ND2"

# --- a. clock stepped backwards (simulated: checkpoint in the future).
NA=$(take_snapshot)
touch "$MNT/tree/a1"
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "a: fstrackd exited $rc on SIGTERM"
db "$(state_db)" \
	"UPDATE filesystems SET checkpoint_ns = checkpoint_ns + 3600*1000000000;" ||
	hard_error "cannot move the checkpoint"
log "a: checkpoint moved one hour into the future"
start_daemon "$MNT"
if ! grep -q 'earlier than the last checkpoint' "$DAEMON_LOG"; then
	fail "a: the daemon log does not mention the clock step"
fi
NA2=$(take_snapshot)
sabotage_gaps "$MNT"
expect_gap a-clock "$NA" "$MNT"
touch "$MNT/tree/a2"
expect_complete a-after "$NA2"
expect_listed a-after "$NA2" "$MNT/tree/a2"
# The future checkpoint must not outlive the recovery: an ordinary restart
# later must not record another gap.
fst changed --since "$NA2" >/dev/null 2>&1 || true	# wait for the pass
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "a: fstrackd exited $rc on SIGTERM"
start_daemon "$MNT"
expect_complete a-restart-after "$NA2"

# --- b. replaced database.
NB=$(take_snapshot)
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "b: fstrackd exited $rc on SIGTERM"
mkdir "$WORK/olddb"
mv "$STATE"/fstrack.db* "$WORK/olddb/"
start_daemon "$MNT"
expect_gap b-newdb "$NB" ""
if grep -qF -- "$MNT" "$WORK/gap-b-newdb.txt.err"; then
	log "b: the message names $MNT"
else
	log "b: note: the message does not name a mount point: $(head -n 1 "$WORK/gap-b-newdb.txt.err")"
fi

# --- b2. replaced database, more snapshots than seconds in between: take
# snapshots until the old database's id is ahead of the clock, replace the
# database, take snapshots in the new one until its id passes the old one.
NB2=$(take_snapshot)
deadline=$(($(date +%s) + 90))
while [ "$NB2" -le $(($(date +%s) + 3)) ] && [ "$(date +%s)" -lt "$deadline" ]; do
	NB2=$(take_snapshot)
done
if [ "$NB2" -le "$(date +%s)" ]; then
	log "b2: skipped: snapshots are slower than one a second here"
else
	rc=0
	stop_daemon || rc=$?
	[ "$rc" -eq 0 ] || fail "b2: fstrackd exited $rc on SIGTERM"
	mkdir "$WORK/olddb2"
	mv "$STATE"/fstrack.db* "$WORK/olddb2/"
	start_daemon "$MNT"
	NB2NEW=$(take_snapshot)
	deadline=$(($(date +%s) + 90))
	while [ "$NB2NEW" -lt "$NB2" ] && [ "$(date +%s)" -lt "$deadline" ]; do
		NB2NEW=$(take_snapshot)
	done
	log "b2: last id of the old database $NB2, current id of the new one $NB2NEW (created at $(db "$(state_db)" 'SELECT min(id) FROM snapshots;'))"
	rc=$(changed_rc "$WORK/b2.txt" --since "$NB2")
	case $rc in
	4) pass "b2: old snapshot $NB2 -> exit 4" ;;
	3) fail "b2: old snapshot $NB2 -> exit 3 (no such snapshot) instead of 4: $(cat "$WORK/b2.txt.err")" ;;
	*) fail "b2: old snapshot $NB2 of a replaced database -> exit $rc: the new database's own history since its snapshot $NB2 was answered as complete ($(wc -l <"$WORK/b2.txt") lines)" ;;
	esac
fi

# --- r. refusals: the database file is left untouched.
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "r: fstrackd exited $rc on SIGTERM"
mkdir "$WORK/gooddb"
mv "$STATE"/fstrack.db* "$WORK/gooddb/"

# refuse LABEL: fstrackd must refuse $STATE/fstrack.db and leave it as is.
refuse() {
	cp "$STATE/fstrack.db" "$WORK/refuse-$1.orig"
	if expect_refusal "r-$1" "$MNT"; then
		if ! cmp -s "$STATE/fstrack.db" "$WORK/refuse-$1.orig"; then
			fail "r-$1: fstrackd changed the database file it refused"
		elif ! grep -q 'fstrack.db' "$WORK/refusal.out"; then
			fail "r-$1: exit $REFUSAL_RC, but the message does not name the database: $(cat "$WORK/refusal.out")"
		else
			pass "r-$1: refused (exit $REFUSAL_RC), file unchanged: $(grep -m 1 'fstrack.db' "$WORK/refusal.out")"
		fi
	fi
	rm -f "$STATE"/fstrack.db*
}
head -c 65536 /dev/urandom >"$STATE/fstrack.db"
refuse garbage
printf 'SQLite format 3\0' >"$STATE/fstrack.db"
head -c 8192 /dev/urandom >>"$STATE/fstrack.db"
refuse garbage-header
db "$STATE/fstrack.db" "PRAGMA journal_mode=WAL; CREATE TABLE photos(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO photos(name) VALUES ('a'), ('b');" >/dev/null ||
	hard_error "cannot make a foreign database"
refuse foreign
cp "$WORK/gooddb"/fstrack.db* "$STATE/"
db "$STATE/fstrack.db" "PRAGMA user_version = 99;" || hard_error "cannot set user_version"
[ ! -e "$STATE/fstrack.db-wal" ] || hard_error "WAL left behind by sqlite3"
refuse newer
cp "$WORK/gooddb"/fstrack.db* "$STATE/"
db "$STATE/fstrack.db" "PRAGMA application_id = 1234;" || hard_error "cannot set application_id"
refuse foreign-appid

# The good database still works.
cp "$WORK/gooddb"/fstrack.db* "$STATE/"
start_daemon "$MNT"
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "fstrackd exited $rc on the final SIGTERM"
finish

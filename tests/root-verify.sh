#!/bin/bash
# root-verify: `fstrack verify --since N` checks the record against the tree.
# On a loop ext4: snapshot N, a 3-process random workload; verify must find
# no miss (exit 0, "misses 0"), also with --json and --sample.  Then a file
# is appended to in a directory of its own and the record is damaged on
# purpose -- that directory's change rows are deleted from the database
# behind the daemon's back, as a daemon that lost them would have -- and
# verify must name the file as a miss and exit 1.  A snapshot that does not exist: exit 3.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
in_private_ns "$@"
setup_workdir
make_fs ext4 "$MNT"
DB=$STATE/fstrack.db

T=$MNT/tree
mkdir "$T"
"$PY" "$WORKLOAD" "$T" --populate --dirs 60 --files 200 --seed 7 ||
	hard_error "populate failed"
mkdir "$MNT/damaged"
echo data >"$MNT/damaged/file"
sleep 1.2
start_daemon "$MNT"
N=$(fst snapshot | tail -n 1)
[[ $N =~ ^[0-9]+$ ]] || die "snapshot printed '$N'"
# Hard links too: a link made and removed elsewhere changes a file's ctime
# without changing its directory, and the daemon's search for the file's
# names must have recorded that directory (tests/root-links.sh).
start_workload "$T" --procs 3 --ops 600 --seed 7-verify
rc=0
wait_workload 300 || rc=$?
[ "$rc" -eq 0 ] || fail "workload exited $rc"

rc=0
fst verify --since "$N" >"$WORK/verify.out" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && grep -qx 'misses	0' "$WORK/verify.out"; then
	pass "verify after the workload: no miss ($(tr '\n' ' ' <"$WORK/verify.out"))"
else
	fail "verify after the workload: exit $rc:"
	sed 's/^/    /' "$WORK/verify.out" >&2
fi
rc=0
fst verify --since "$N" --json >"$WORK/verify.json" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if d["misses"] == [] and d["scanned"] > 0 else 1)' "$WORK/verify.json"; then
	pass "verify --json: valid, no miss"
else
	fail "verify --json: exit $rc: $(cat "$WORK/verify.json")"
fi
rc=0
fst verify --since "$N" --sample 5 >"$WORK/verify-s.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && pass "verify --sample 5: no miss" ||
	fail "verify --sample 5: exit $rc: $(cat "$WORK/verify-s.out")"

# Damage the record: a directory with a changed file (outside the
# workload's tree, so nothing else touches it) loses its change rows.
D=$MNT/damaged
echo more >>"$D/file"
fst changed --since "$N" --dirs >"$WORK/dirs" || fail "changed --since $N failed"
grep -qxF -- "$D" "$WORK/dirs" || fail "$D/file was written but $D is not listed"
timeout 30 "$PY" - "$DB" "$D" "$N" <<'PYEOF' || hard_error "cannot edit the database"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=20, isolation_level=None)
c.execute("DELETE FROM changes WHERE snapshot >= ? AND dir_id IN "
          "(SELECT id FROM dirs WHERE path = ?)", (int(sys.argv[3]), sys.argv[2]))
PYEOF
rc=0
fst verify --since "$N" >"$WORK/verify2.out" 2>&1 || rc=$?
if [ "$rc" -eq 1 ] && grep -q "^miss	$D/" "$WORK/verify2.out"; then
	pass "a damaged record: verify names the miss in $D and exits 1"
else
	fail "a damaged record ($D): verify exit $rc:"
	sed 's/^/    /' "$WORK/verify2.out" >&2
fi
rc=0
fst verify --since 1 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || [ "$rc" -eq 4 ] && pass "verify --since 1: exit $rc" ||
	fail "verify --since 1: exit $rc (expected 3 or 4)"
stop_daemon || fail "fstrackd exit $? after SIGTERM"
finish

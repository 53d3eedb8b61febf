#!/bin/bash
# root-consumers: consumer cursors and retention.  consumer get/set/delete
# and their exit statuses; history a consumer still needs is never pruned;
# pruned history answers "incomplete" (4), not a short list; an idle
# consumer stops pinning history; retention-snapshots bounds the history
# kept when nobody pins it; status shows the database size.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
in_private_ns "$@"
setup_workdir
make_fs tmpfs "$MNT"
command -v sqlite3 >/dev/null || hard_error "sqlite3 is needed"

CONF=$WORK/fstrackd.conf
printf 'consumer-idle-days 14\nretention-snapshots 1000\n' >"$CONF"
start_daemon -c "$CONF" "$MNT"

# rc_of CMD...: the exit status of CMD, its output in $WORK/rc.out.
rc_of() {
	local rc=0
	"$@" >"$WORK/rc.out" 2>&1 || rc=$?
	echo "$rc"
}
# expect_rc WANT GOT WHAT
expect_rc() {
	if [ "$2" -eq "$1" ]; then pass "$3: exit $1"
	else fail "$3: exit $2, expected $1: $(cat "$WORK/rc.out")"; fi
}
snap() { fst snapshot | tail -n 1; }

mkdir "$MNT/d"
S1=$(snap)
echo one >"$MNT/d/f1"
S2=$(snap)
echo two >"$MNT/d/f2"
S3=$(snap)
echo three >"$MNT/d/f3"
S4=$(snap)
echo four >"$MNT/d/f4"
S5=$(snap)
log "snapshots $S1 $S2 $S3 $S4 $S5"

# --- cursors ------------------------------------------------------------------
expect_rc 3 "$(rc_of fst consumer get backup)" "get of an unknown consumer"
expect_rc 0 "$(rc_of fst consumer set backup "$S3")" "consumer set"
if [ "$(fst consumer get backup)" = "$S3" ]; then pass "consumer get"
else fail "consumer get printed '$(fst consumer get backup)', not $S3"; fi
expect_rc 2 "$(rc_of fst consumer set 'bad name' "$S3")" "a name with a space"
expect_rc 2 "$(rc_of fst consumer set "$(printf 'x%.0s' $(seq 65))" "$S3")" \
	"a 65-character name"
expect_rc 3 "$(rc_of fst consumer set backup $((S5 + 10)))" \
	"a cursor beyond the current snapshot"
fst consumers >"$WORK/consumers.txt" || fail "consumers failed"
if awk -F '\t' -v s="$S3" -v lag=$((S5 - S3)) \
	'$1 == "backup" && $2 == s && $4 == lag { f = 1 } END { exit !f }' \
	"$WORK/consumers.txt"; then
	pass "consumers lists backup with its cursor and lag"
else
	fail "consumers: $(cat "$WORK/consumers.txt")"
fi
fst consumers --json | "$PY" -c 'import json,sys; c=json.load(sys.stdin); assert c[0]["name"]=="backup"' ||
	fail "consumers --json"
expect_rc 0 "$(rc_of fst consumer set other "$S4")" "a second consumer"
expect_rc 0 "$(rc_of fst consumer delete other)" "consumer delete"
expect_rc 3 "$(rc_of fst consumer delete other)" "delete of a deleted consumer"
expect_rc 3 "$(rc_of fst consumer get other)" "get of a deleted consumer"

# --- pruning respects the cursor ----------------------------------------------
fst prune --before "$S5" >"$WORK/prune.out" || fail "prune failed"
log "$(cat "$WORK/prune.out")"
expect_rc 4 "$(rc_of fst changed --since "$S2" --dirs)" \
	"changed since a pruned snapshot"
grep -q "history incomplete" "$WORK/rc.out" ||
	fail "no history-incomplete message for a pruned snapshot"
expect_rc 0 "$(rc_of fst changed --since "$S3" --dirs)" \
	"changed since the consumer's cursor (pinned, kept)"
for f in f3 f4; do
	fst changed --since "$S3" | grep -c "$MNT/d/$f" >/dev/null ||
		fail "since the cursor: $MNT/d/$f missing"
done
if fst snapshots | cut -f 1 | grep -cx "$S2" >/dev/null; then
	fail "snapshot $S2 still listed after prune"
else
	pass "snapshot $S2 pruned"
fi
# the daemon knows what it pruned: status and consumer set agree with it
oldest=$(fst status | awk -F ': ' '$1 == "oldest_snapshot" { print $2 }')
if [ "$oldest" = "$S3" ]; then
	pass "status: oldest_snapshot is the pinned $S3 after the prune"
else
	fail "status: oldest_snapshot '$oldest' after the prune, not $S3"
fi
expect_rc 3 "$(rc_of fst consumer set late "$S2")" \
	"consumer set to a pruned snapshot"

# --- non-root peers ------------------------------------------------------------
chmod 0711 "$WORK" "$WORK/run"	# let the peer reach the socket at all
chmod 0666 "$SOCK"
if command -v setpriv >/dev/null; then
	NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	expect_rc 13 "$(rc_of "${NOBODY[@]}" "$FSTRACK" -s "$SOCK" snapshot)" \
		"snapshot by a non-root peer"
	expect_rc 13 "$(rc_of "${NOBODY[@]}" "$FSTRACK" -s "$SOCK" consumer set x "$S5")" \
		"consumer set by a non-root peer"
	expect_rc 13 "$(rc_of "${NOBODY[@]}" "$FSTRACK" -s "$SOCK" prune)" \
		"prune by a non-root peer"
	expect_rc 0 "$(rc_of "${NOBODY[@]}" "$FSTRACK" -s "$SOCK" status)" \
		"status by a non-root peer (read-only)"
fi
chmod 0600 "$SOCK"
chmod 0700 "$WORK"

# --- an idle consumer stops pinning --------------------------------------------
stop_daemon || fail "SIGTERM: exit $?"
sqlite3 "$STATE/fstrack.db" \
	"UPDATE consumers SET last_success = strftime('%s','now') - 30*86400" ||
	hard_error "sqlite3 update"
start_daemon -c "$CONF" "$MNT"
S6=$(snap)
fst prune --before "$S6" >/dev/null || fail "prune failed"
expect_rc 4 "$(rc_of fst changed --since "$S3")" \
	"an idle consumer's cursor no longer pins history"
expect_rc 0 "$(rc_of fst changed --since "$S6")" "the newest snapshot answers"

# --- retention-snapshots --------------------------------------------------------
stop_daemon || fail "SIGTERM: exit $?"
printf 'retention-snapshots 3\nconsumer-idle-days 14\n' >"$CONF"
start_daemon -c "$CONF" "$MNT"
fst consumer delete backup >/dev/null || fail "consumer delete backup"
for _ in 1 2 3 4 5; do last=$(snap); done
n=$(fst snapshots | wc -l)
if [ "$n" -le 3 ]; then pass "retention-snapshots 3 keeps $n snapshots"
else fail "retention-snapshots 3 keeps $n snapshots"; fi
expect_rc 0 "$(rc_of fst changed --since "$last")" "the newest snapshot answers"
size=$(fst status | awk -F ': ' '$1 == "database_size" { print $2 }')
if [ "${size:-0}" -gt 0 ]; then pass "status shows database_size $size"
else fail "status has no database_size"; fi
stop_daemon || fail "SIGTERM: exit $?"
finish

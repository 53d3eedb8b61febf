# shellcheck shell=bash
# permlib.sh -- helpers shared by the permission-hold tests (sourced after
# lib.sh): hold the database's write lock from outside so that commits hang,
# and wait for the first committed checkpoint.  The test sets DB (the
# database path) and LOCK_PID= before using them.

# lock_db: hold the database's write lock from outside (BEGIN EXCLUSIVE;
# in WAL mode this blocks the daemon's writer) until unlock_db.
lock_db() {
	local n=200
	rm -f "$WORK/locked"
	"$PY" - "$DB" "$WORK/locked" <<'EOF' >"$WORK/lock.out" 2>&1 &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(300)
EOF
	LOCK_PID=$!
	while [ ! -e "$WORK/locked" ]; do
		pid_alive "$LOCK_PID" || die "lock holder died: $(cat "$WORK/lock.out")"
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "could not lock the database in 20 s"
		sleep 0.1
	done
	log "database write lock held by $LOCK_PID"
}

# wait_checkpoint: wait (bounded) until the database holds a committed
# checkpoint for the tracked filesystem; without one a restart after
# SIGKILL rightly reports a gap.
wait_checkpoint() {
	timeout 30 "$PY" - "$DB" <<'EOF2' || die "no checkpoint committed within 20 s"
import sqlite3, sys, time
end = time.monotonic() + 20
while time.monotonic() < end:
    try:
        c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=5)
        n = c.execute("SELECT count(*) FROM filesystems"
                      " WHERE checkpoint_ns > 0").fetchone()[0]
        c.close()
        if n > 0:
            sys.exit(0)
    except sqlite3.Error:
        pass
    time.sleep(0.1)
sys.exit(1)
EOF2
}

# unlock_db: let the daemon's commits through again.
unlock_db() {
	[ -n "$LOCK_PID" ] || return 0
	kill -KILL "$LOCK_PID" 2>/dev/null || true
	wait "$LOCK_PID" 2>/dev/null || true
	LOCK_PID=
	log "database lock released"
}

# perm_cleanup: the EXIT trap of the permission tests: the daemon FIRST
# (its death frees every held opener), then the openers' process group
# ($OPENERS_PID, if set) and the lock holder, then lib.sh's cleanup.
# shellcheck disable=SC2317  # called from the EXIT trap
perm_cleanup() {
	local rc=$?
	set +e
	if [ -n "$DAEMON_PID" ]; then
		kill -KILL "$DAEMON_PID" 2>/dev/null
		wait_dead "$DAEMON_PID" 10
	fi
	[ -z "${OPENERS_PID:-}" ] || kill -KILL -- "-$OPENERS_PID" 2>/dev/null
	[ -z "$LOCK_PID" ] || kill -KILL "$LOCK_PID" 2>/dev/null
	(exit "$rc")
	cleanup
}

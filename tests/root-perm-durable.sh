#!/bin/bash
# root-perm-durable: strict durability holds a write-opener until its
# directory is durably recorded or armed.  On a loop ext4, for directories
# that are not recorded in the current snapshot, a process opens an existing
# file for writing (O_WRONLY, O_RDWR, O_WRONLY|O_APPEND, and O_WRONLY 20
# levels deep) and SIGKILLs the daemon the moment open() returns, before
# writing anything (so no ctime changes and only the held record can report
# it); after a restart `changed --since N --dirs` must list the directory.
# The same after the directory was read many times first (so it is armed and
# its opens are no longer held), with its file's times years in the past.
# Reading arms a directory: after a clean SIGTERM and restart it must NOT
# be listed; after a SIGKILL once it is armed it must be listed with kind
# "armed" and nothing else (reconcile-margin 0 in a config file, so that the
# restart's ctime rescan does not report the untouched tree).  Also: strict
# is the default durability, and with --durability async the permission
# path sees nothing (perm_events 0).
#
# Negative check (the test must fail):
#	FSTRACK_TEST_DAEMON_ARGS="--durability async" tests/root-perm-durable.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=permlib.sh
. "$(dirname "$0")/permlib.sh"
require_root
in_private_ns "$@"
setup_workdir
make_fs ext4 "$MNT"

# Extra daemon options for negative checks (unquoted on purpose).
EXTRA=${FSTRACK_TEST_DAEMON_ARGS:-}
CONF=$WORK/fstrackd.conf
DB=$STATE/fstrack.db
printf 'reconcile-margin 0\n' >"$CONF"

# status_field KEY: the value of KEY in `fstrack status`.
status_field() {
	fst status | awk -v k="$1:" '!found && $1 == k { print $2; found = 1 }'
}


# open_and_kill PATH FLAGS: open PATH with FLAGS (os.O_* names joined by
# '|'); as soon as open() returns, SIGKILL the daemon, wait until it is dead
# (its fds closed, so even our close() is not seen), then close and exit.
open_and_kill() {
	# shellcheck disable=SC2086
	timeout 30 "$PY" - "$1" "$2" "$DAEMON_PID" <<'EOF'
import os, signal, sys, time
path, flags, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
fl = 0
for f in flags.split("|"):
    fl |= getattr(os, f)
fd = os.open(path, fl)
os.kill(pid, signal.SIGKILL)
deadline = time.monotonic() + 10
while True:
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        break
    if state in ("Z", "X"):
        break
    if time.monotonic() > deadline:
        sys.exit("daemon %d still alive 10 s after SIGKILL" % pid)
    time.sleep(0.005)
os.close(fd)
EOF
}

# The tree, made well before the daemon's first checkpoint.
T=$MNT/t
mkdir -p "$T"/wronly "$T"/rdwr "$T"/append "$T"/rdonly "$T"/rdclean "$T"/readfirst
DEEP=$T/deep
for i in $(seq 1 20); do DEEP=$DEEP/d$i; done
mkdir -p "$DEEP"
for d in "$T"/wronly "$T"/rdwr "$T"/append "$T"/rdonly "$T"/rdclean \
	"$T"/readfirst "$DEEP"; do
	echo data >"$d"/file
done
for i in $(seq 1 50); do echo data >"$T"/readfirst/other$i; done
touch -d '2001-02-03 04:05:06' "$T"/readfirst/file "$T"/readfirst
sync
sleep 1.5

# shellcheck disable=SC2086
start_daemon -c "$CONF" $EXTRA "$MNT"

# --- strict is the default ---------------------------------------------------
dur=$(status_field durability)
if [ "$dur" = strict ]; then
	pass "durability defaults to strict"
else
	fail "durability is '$dur' without --durability (expected strict)"
fi

fst snapshot >"$WORK/snap.out" || die "snapshot failed"
N=$(tail -n 1 "$WORK/snap.out")
[[ $N =~ ^[0-9]+$ ]] || die "snapshot printed '$N'"
log "snapshot $N"
# A committed checkpoint (later than the tree: made 1.5 s before the start).
wait_checkpoint

# read_until_armed DIR: read every file of DIR until the daemon has added
# one more ignore mark than before and a further read makes no permission
# event (the directory is durably armed and silent).  Bounded.
read_until_armed() {
	local m0 e0 e1 n=200
	m0=$(status_field perm_marks)
	while :; do
		cat "$1"/* >/dev/null
		if [ "$(status_field perm_marks)" -gt "$m0" ]; then
			e0=$(status_field perm_events)
			cat "$1"/* >/dev/null
			e1=$(status_field perm_events)
			[ "$e0" != "$e1" ] || break
		fi
		n=$((n - 1))
		[ "$n" -gt 0 ] || hard_error "$1 not armed after 200 reads"
		sleep 0.05
	done
	log "$1 armed: further reads make no permission event"
}

# case NAME DIR FLAGS EXPECT(listed|absent|armed)
run_case() {
	local name=$1 dir=$2 flags=$3 expect=$4 rc=0
	log "case $name: open $flags, SIGKILL the daemon"
	if ! pid_alive "$DAEMON_PID"; then
		rc=0
		wait "$DAEMON_PID" || rc=$?
		DAEMON_PID=
		die "case $name: fstrackd died on its own before the case (exit status $rc)"
	fi
	open_and_kill "$dir/file" "$flags" || rc=$?
	[ "$rc" -eq 0 ] || die "case $name: the opener failed (exit $rc)"
	kill_daemon
	# shellcheck disable=SC2086
	start_daemon -c "$CONF" $EXTRA "$MNT"
	rc=0
	fst changed --since "$N" --dirs >"$WORK/dirs-$name.txt" 2>"$WORK/dirs-$name.err" ||
		rc=$?
	[ "$rc" -eq 0 ] || fail "case $name: changed --since $N --dirs exit $rc: $(cat "$WORK/dirs-$name.err")"
	if grep -qxF -- "$dir" "$WORK/dirs-$name.txt"; then
		if [ "$expect" = listed ]; then
			pass "$name: $dir listed after SIGKILL at open()"
		elif [ "$expect" = armed ]; then
			fst changed --since "$N" >"$WORK/entries-$name.txt" ||
				fail "case $name: changed --since $N failed"
			if grep -qxF -- "armed	$dir" "$WORK/entries-$name.txt" &&
				[ "$(grep -cF -- "	$dir" "$WORK/entries-$name.txt")" -eq 1 ]; then
				pass "$name: $dir listed as armed (only) after SIGKILL"
			else
				fail "$name: $dir listed, but not as armed only:"
				grep -F -- "$dir" "$WORK/entries-$name.txt" | sed 's/^/    /' >&2
			fi
		else
			fail "$name: $dir listed although only opened read-only"
			fst changed --since "$N" | grep -F -- "$dir" | sed 's/^/    /' >&2 || true
		fi
	else
		if [ "$expect" != absent ]; then
			fail "$name: $dir NOT listed: the open returned before its directory was durable"
			sed 's/^/    listed: /' "$WORK/dirs-$name.txt" >&2
		else
			pass "$name: $dir not listed (read-only open)"
		fi
	fi
}

# Read, then a clean stop: armed, but not changed.
read_until_armed "$T/rdclean"
stop_daemon || fail "fstrackd exit $? after SIGTERM"
# shellcheck disable=SC2086
start_daemon -c "$CONF" $EXTRA "$MNT"
fst changed --since "$N" --dirs >"$WORK/dirs-rdclean.txt" ||
	fail "changed --since $N --dirs failed after SIGTERM"
if grep -qxF -- "$T/rdclean" "$WORK/dirs-rdclean.txt"; then
	fail "$T/rdclean listed after reads and a clean stop (armed is not changed)"
else
	pass "$T/rdclean read, clean stop: not listed"
fi
# Read until armed (a read-open does not wait for the arm: killed before
# it commits, nothing could have been written unheld, and nothing is
# listed), then SIGKILL: listed, as armed only.
read_until_armed "$T/rdonly"
run_case rdonly "$T/rdonly" O_RDONLY armed
run_case wronly "$T/wronly" O_WRONLY listed
run_case rdwr "$T/rdwr" O_RDWR listed
run_case append "$T/append" "O_WRONLY|O_APPEND" listed
run_case deep "$DEEP" O_WRONLY listed
# Read many times first (armed, opens no longer held), then a write-open.
read_until_armed "$T/readfirst"
run_case readfirst "$T/readfirst" O_WRONLY listed
# (rdclean may be listed after the later SIGKILLs: their opens arm its
# siblings ahead of a reader, armahead.c, and arms are reported after an
# unclean stop.)

# --- async holds nothing -----------------------------------------------------
stop_daemon || fail "fstrackd exit $? after SIGTERM"
start_daemon -c "$CONF" --durability async "$MNT"
dur=$(status_field durability)
if [ "$dur" = async ]; then
	pass "--durability async: status says async"
else
	fail "--durability async: status says '$dur'"
fi
fst snapshot >"$WORK/snap2.out" || die "snapshot failed"
N2=$(tail -n 1 "$WORK/snap2.out")
pe0=$(status_field perm_events)
mkdir "$MNT"/async
timeout 60 "$PY" - "$MNT"/async <<'EOF' || fail "async writes failed"
import os, sys
d = sys.argv[1]
for i in range(200):
    p = os.path.join(d, "f%d" % (i % 10))
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if i % 2 else 0), 0o644)
    os.write(fd, b"x")
    os.close(fd)
    fd = os.open(p, os.O_RDWR)
    os.close(fd)
EOF
fst changed --since "$N2" --dirs >"$WORK/dirs-async.txt" || fail "changed --since $N2 failed"
pe1=$(status_field perm_events)
ph=$(status_field perm_held)
if [ "$pe0" = 0 ] && [ "$pe1" = 0 ] && [ "$ph" = 0 ]; then
	pass "async: perm_events stays 0 under 400 write-opens"
else
	fail "async: perm_events $pe0 -> $pe1, perm_held $ph (expected 0)"
fi
if grep -qxF -- "$MNT/async" "$WORK/dirs-async.txt"; then
	pass "async: writes still recorded"
else
	fail "async: $MNT/async not listed"
fi
stop_daemon || fail "fstrackd exit $? after SIGTERM"
finish

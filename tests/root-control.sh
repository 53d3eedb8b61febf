#!/bin/bash
# root-control: garbage on the control socket.  Overlong lines, NUL bytes,
# binary noise, empty and malformed requests, unknown verbs, clients that
# connect and say nothing, and more connections than the daemon serves at
# once: each gets an ERR reply or is dropped, and the daemon keeps working
# (status answers, a snapshot still works, changes are still recorded).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
in_private_ns "$@"
setup_workdir
make_fs tmpfs "$MNT"
start_daemon "$MNT"
N=$(fst snapshot | tail -n 1)

# send PYTHON-BYTES-EXPR: send the bytes, print the reply (bounded).
send() {
	timeout 20 "$PY" - "$SOCK" "$1" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(15)
s.connect(sys.argv[1])
s.sendall(eval(sys.argv[2]))
try:
    s.shutdown(socket.SHUT_WR)
except OSError:
    pass
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except (socket.timeout, ConnectionResetError):
    pass
sys.stdout.write(out.decode("utf-8", "replace"))
PYEOF
}

# expect_err NAME BYTES: the reply is an ERR line, and the daemon lives.
expect_err() {
	local r
	r=$(send "$2") || true
	case $r in
	*"ERR "*) pass "$1: $(printf '%s' "$r" | tail -n 1 | cut -c1-60)" ;;
	"") pass "$1: connection closed without reply" ;;
	*) fail "$1: unexpected reply '$r'" ;;
	esac
	fst status >/dev/null || die "daemon stopped answering after: $1"
}

expect_err "overlong line" "b'x' * 100000"
expect_err "overlong line with newline" "b'snapshot ' + b'9' * 10000 + b'\n'"
expect_err "NUL byte" "b'status\x00junk\n'"
expect_err "binary noise" "bytes(range(256)) * 8"
expect_err "empty line" "b'\n'"
expect_err "double space" "b'barrier  1\n'"
expect_err "leading space" "b' status\n'"
expect_err "unknown verb" "b'format-disk\n'"
expect_err "too many words" "b'a b c d e f g h i j k\n'"
expect_err "barrier without a number" "b'barrier x\n'"
expect_err "negative snapshot" "b'barrier -5\n'"
expect_err "huge snapshot" "b'barrier 99999999999999999999999\n'"
expect_err "consumer name with a slash" "b'consumer-set ../x 1\n'"
expect_err "prune with junk" "b'prune 12abc\n'"

# Connections that say nothing must not block others.
"$PY" - "$SOCK" <<'PYEOF' &
import socket, sys, time
conns = []
for _ in range(80):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sys.argv[1])
        conns.append(s)
    except OSError:
        break
time.sleep(4)
PYEOF
IDLE=$!
sleep 1
if timeout 10 "$FSTRACK" -s "$SOCK" status >/dev/null 2>&1 ||
	{ sleep 4; timeout 10 "$FSTRACK" -s "$SOCK" status >/dev/null; }; then
	pass "status answers while 80 idle connections are open"
else
	fail "status blocked by idle connections"
fi
wait "$IDLE" || true

# Still tracking after all that.
echo after >"$MNT/after-garbage"
if fst changed --since "$N" | grep -qF "$MNT/after-garbage"; then
	pass "changes still recorded"
else
	fail "change after the garbage not recorded"
fi
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "SIGTERM: exit $rc"
finish

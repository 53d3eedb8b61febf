#!/bin/bash
# root-control: garbage on the control socket.  Overlong lines, NUL bytes,
# binary noise, empty and malformed requests, unknown verbs: each gets an ERR
# reply or is dropped, and the daemon keeps working (status answers, a
# snapshot still works, changes are still recorded).  Clients that connect
# and say nothing: while fewer than the connection limit (CONTROL_MAX_CONNS
# in src/control.c) are held, a request still answers; with the limit held,
# one more client is refused ("too many connections") and served again once
# an idle one leaves; an idle client is dropped after the daemon's timeout.
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

# --- idle connections and the connection limit -----------------------------
# control.c serves at most CONTROL_MAX_CONNS connections at once (the one
# above gets "ERR ... too many connections" and is closed) and drops a
# client that sends no request within CONTROL_TIMEOUT_MS.
LIMIT=$(sed -n 's/^#define[[:space:]]*CONTROL_MAX_CONNS[[:space:]]*\([0-9][0-9]*\).*/\1/p' \
	"$top_srcdir/src/control.c")
IDLE_MS=$(sed -n 's/^#define[[:space:]]*CONTROL_TIMEOUT_MS[[:space:]]*\([0-9][0-9]*\).*/\1/p' \
	"$top_srcdir/src/control.c")
if ! [[ ${LIMIT:-} =~ ^[0-9]+$ ]] || [ "$LIMIT" -le 8 ]; then
	hard_error "no CONTROL_MAX_CONNS (> 8) in src/control.c: '${LIMIT:-}'"
fi
[[ ${IDLE_MS:-} =~ ^[0-9]+$ ]] || hard_error "no CONTROL_TIMEOUT_MS in src/control.c"

# idle_clients MODE: hold idle connections (they connect and say nothing)
# and check the daemon while they are all still held, i.e. before its
# idle timeout dropped any of them (checked: an idle socket with a reply or
# EOF on it is no longer held).  Exit 0 pass, 1 fail, 3 inconclusive (an
# idle client was dropped by the idle timeout before the check was done:
# the harness was too slow; retry, then a hard error), 4 an idle client was
# refused within the limit (earlier connections not yet closed by the
# daemon; retry, then a failure: the daemon serves fewer than the limit).
#   below:  LIMIT - 8 idle clients; `fstrack status` must answer.
#   beyond: LIMIT idle clients; one more client must be refused at once
#           with "too many connections"; then one idle client leaves and
#           `fstrack status` must answer, while the others are still held.
#   expire: one idle client; the daemon must drop it (an ERR reply or EOF)
#           within 3 x CONTROL_TIMEOUT_MS.
idle_clients() {
	timeout 120 "$PY" - "$SOCK" "$FSTRACK" "$LIMIT" "$IDLE_MS" "$1" <<'PYEOF'
import os, select, socket, subprocess, sys, time
sock, fstrack, limit, idle_ms, mode = sys.argv[1:6]
limit, idle_ms = int(limit), int(idle_ms)

def connect(n):
    out = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        out.append(s)
    return out

def dropped(conns):
    """Idle sockets with something to read (an ERR reply or EOF)."""
    if not conns:
        return []
    r, _, _ = select.select(conns, [], [], 0)
    res = []
    for s in r:
        try:
            data = s.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue
        except OSError as e:
            data = repr(e).encode()
        res.append(data.decode("utf-8", "replace").strip() or "EOF")
    return res

def status(conns):
    """Run `fstrack status`, watching the idle sockets meanwhile.  Returns
    (exit status, stderr, replies seen on idle sockets before it ended)."""
    p = subprocess.Popen([fstrack, "-s", sock, "status"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    early = []
    end = time.monotonic() + 60
    while p.poll() is None:
        if not early:
            early = dropped(conns)
        if time.monotonic() > end:
            p.kill()
            p.wait()
            return None, "no answer in 60 s", early
        time.sleep(0.01)
    err = p.stderr.read().decode("utf-8", "replace").strip()
    if not early:
        early = dropped(conns)
    return p.returncode, err, early

def result(code, msg):
    print(msg)
    sys.exit(code)

def early_exit(early, what):
    """An idle client got a reply before the check was done: refused (4:
    earlier connections still counted, or slots leaked) or dropped by the
    idle timeout (3: the harness was too slow)."""
    code = 4 if "too many connections" in early[0] else 3
    result(code, "%s: %s" % (what, early[0]))

if mode == "below":
    n = limit - 8
    conns = connect(n)
    rc, err, early = status(conns)
    if early:
        early_exit(early, "one of %d idle clients refused or dropped before "
                   "status ended" % n)
    if rc != 0:
        result(1, "status with %d idle clients held: exit %s: %s"
               % (n, rc, err))
    result(0, "status answers while %d idle clients are held (limit %d)"
           % (n, limit))
elif mode == "beyond":
    conns = connect(limit)
    # One more, through a raw socket that sends nothing: the daemon refuses
    # it at accept time; served instead, it would get the idle timeout's
    # reply.  (The fstrack client may die of SIGPIPE when its request meets
    # the refused connection already closed.)
    probe, = connect(1)
    probe.settimeout(60)
    reply = b""
    try:
        while True:
            b = probe.recv(4096)
            if not b:
                break
            reply += b
    except socket.timeout:
        result(1, "connection %d (one too many) hangs: no reply in 60 s"
               % (limit + 1))
    except ConnectionResetError:
        pass
    probe.close()
    reply = reply.decode("utf-8", "replace").strip()
    early = dropped(conns)
    if "too many connections" not in reply:
        # Served (the idle timeout's reply, 10 s later: the idle clients,
        # accepted just before it, are dropped then too), unless one of
        # the idle clients was refused in its place.
        if early and "too many connections" in early[0]:
            early_exit(early, "one of %d idle clients refused" % limit)
        result(1, "connection %d (one too many) was served, not refused: "
               "more than %d at once (reply '%s')" % (limit + 1, limit, reply))
    if early:
        early_exit(early, "one of %d idle clients refused or dropped"
                   % limit)
    conns.pop().close()
    # The daemon frees the slot when it sees the EOF, in its own time:
    # retry (bounded) while refused (an ERR, or SIGPIPE in the client).
    for i in range(100):
        rc, err, early = status(conns)
        if early:
            early_exit(early, "one of %d idle clients refused or dropped "
                       "before status ended" % (limit - 1))
        if rc == 0 or (rc != -13 and "too many connections" not in err):
            break
        time.sleep(0.05)
    if rc != 0:
        result(1, "status with %d idle clients held (one left): exit %s: %s"
               % (limit - 1, rc, err))
    result(0, "connection %d refused (too many connections) while %d idle "
           "clients were held; status answers again once one of them left"
           % (limit + 1, limit))
elif mode == "expire":
    s, = connect(1)
    t0 = time.monotonic()
    r, _, _ = select.select([s], [], [], 3 * idle_ms / 1000.0)
    if not r:
        result(1, "an idle client still held after %d ms (timeout %d ms)"
               % (3 * idle_ms, idle_ms))
    data = s.recv(4096).decode("utf-8", "replace").strip()
    if "too many connections" in data:
        early_exit([data], "the idle client was refused")
    result(0, "an idle client dropped after %.1f s: %s"
           % (time.monotonic() - t0, data or "EOF"))
PYEOF
}

# check_idle MODE: idle_clients MODE, retried while inconclusive.
check_idle() {
	local try rc out
	for try in 1 2 3 4 5; do
		rc=0
		out=$(idle_clients "$1") || rc=$?
		case $rc in
		0)
			pass "$out"
			return 0
			;;
		1)
			fail "$out"
			return 0
			;;
		3 | 4) log "idle clients ($1), try $try inconclusive: $out; retrying" ;;
		*) hard_error "idle clients ($1): helper failed ($rc): $out" ;;
		esac
		sleep 1
	done
	[ "$rc" -eq 4 ] || hard_error "idle clients ($1): inconclusive 5 times: $out"
	fail "idle clients ($1): 5 times: $out (fewer than $LIMIT connections served?)"
}

check_idle below
check_idle beyond
check_idle expire
fst status >/dev/null || die "daemon stopped answering after the idle clients"

# Still tracking after all that.
echo after >"$MNT/after-garbage"
if fst changed --since "$N" | grep -cF "$MNT/after-garbage" >/dev/null; then
	pass "changes still recorded"
else
	fail "change after the garbage not recorded"
fi
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "SIGTERM: exit $rc"
finish

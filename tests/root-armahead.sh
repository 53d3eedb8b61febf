#!/bin/bash
# root-armahead: arming ahead (armahead.c) follows the reader and is paid
# for by what the reader reads, on a loop ext4.
#  A. A read-open deep in a tree ($T/a4/s5/f) arms the rest of the tree:
#     a4/s5's siblings after it and before it, a4's siblings and their
#     subtrees, the tree's root (THE WALK FOLLOWS THE READER).  Once that
#     walk is served and its arms are marked, reading every file of the
#     tree makes no permission event at all.
#  B. A read-open in a small directory beside a large flat one ($B/x next
#     to 2,000 directories in $B/many: git status's pattern, a dozen opens
#     in .git beside the whole work tree) arms at most the first walk's
#     budget (128 directories; checked: at most 200), not all 2,000.
#  C. A reader of $B/many in readdir order, waiting after each of its
#     permission events until the walk it started is served and marked,
#     meets the end of a walk at most 8 times in 2,000 directories: each
#     walk that used its budget up doubles the next one's.
# Waits are on the daemon's counters (perm_ahead_walks, perm_marks), each
# bounded; nothing depends on how fast the walker runs.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
in_private_ns "$@"
setup_workdir
make_fs ext4 "$MNT"
FST_TIMEOUT=60

# status_field KEY
status_field() {
	fst status | awk -v k="$1:" '!found && $1 == k { print $2; found = 1 }'
}

# wait_walks N: wait (bounded) until armahead.c has served N requests.
wait_walks() {
	local n=0
	while [ "$(status_field perm_ahead_walks)" -lt "$1" ]; do
		n=$((n + 1))
		[ "$n" -lt 600 ] || hard_error "arm-ahead walk not served in 30 s"
		sleep 0.05
	done
}

# wait_marks N: wait (bounded) until the daemon has added N ignore marks.
wait_marks() {
	local n=0
	while [ "$(status_field perm_marks)" -lt "$1" ]; do
		n=$((n + 1))
		[ "$n" -lt 600 ] || hard_error "ignore marks not added in 30 s" \
			"($(status_field perm_marks) of $1)"
		sleep 0.05
	done
}

# read_in_new_snapshot FILE: a new snapshot, FILE read (the first open of
# its directory in it), and its arm-ahead walk waited for; sets ARMED (the
# directories that walk armed) and M0 (the ignore marks before it).
read_in_new_snapshot() {
	local w0 a0
	fst snapshot >/dev/null || die "snapshot failed"
	w0=$(status_field perm_ahead_walks)
	a0=$(status_field perm_armed_ahead)
	M0=$(status_field perm_marks)
	cat "$1" >/dev/null
	wait_walks $((w0 + 1))
	ARMED=$(($(status_field perm_armed_ahead) - a0))
}

T=$MNT/tree
B=$MNT/big
"$PY" - "$T" "$B" <<'EOF' || die "cannot build the trees"
import os, sys
t, b = sys.argv[1], sys.argv[2]
for i in range(10):
    for j in range(10):
        d = os.path.join(t, "a%d" % i, "s%d" % j)
        os.makedirs(d)
        open(os.path.join(d, "f"), "w").write("data\n")
    open(os.path.join(t, "a%d" % i, "f"), "w").write("data\n")
os.makedirs(os.path.join(b, "x"))
open(os.path.join(b, "x", "f"), "w").write("data\n")
for i in range(2000):
    d = os.path.join(b, "many", "d%d" % i)
    os.makedirs(d)
    open(os.path.join(d, "f"), "w").write("data\n")
EOF
sync
start_daemon "$MNT"
fst changed --since "$(fst snapshot | tail -n 1)" >/dev/null ||
	die "reconcile did not finish"

# --- A: the walk follows the reader -----------------------------------------
read_in_new_snapshot "$T/a4/s5/f"
# $T, a0..a9 and their 100 subdirectories, but a4/s5 (armed by its open)
if [ "$ARMED" -ge 110 ]; then
	pass "A: one read-open in a4/s5 armed $ARMED directories ahead (>= 110)"
else
	fail "A: one read-open in a4/s5 armed $ARMED directories ahead, not" \
		"the 110 of the tree around it"
fi
wait_marks $((M0 + ARMED + 1))
e0=$(status_field perm_events)
find "$T" -type f -print0 | xargs -0 cat >/dev/null
e1=$(status_field perm_events)
if [ "$e1" = "$e0" ]; then
	pass "A: reading the whole tree after the walk: no permission event"
else
	fail "A: reading the whole tree after the walk: $((e1 - e0)) permission events"
fi

# --- B: a few opens beside a large tree pay a small walk --------------------
read_in_new_snapshot "$B/x/f"
if [ "$ARMED" -le 200 ]; then
	pass "B: one read-open beside 2,000 directories armed $ARMED ahead (<= 200)"
else
	fail "B: one read-open beside 2,000 directories armed $ARMED ahead (> 200)"
fi
wait_marks $((M0 + ARMED + 1))

# --- C: a reader of the whole large tree meets a walk's end a few times -----
m0=$(status_field perm_marks)
a0=$(status_field perm_armed_ahead)
out=$(timeout 300 "$PY" - "$B/many" "$FSTRACK" "$SOCK" "$m0" "$a0" <<'EOF'
import os, subprocess, sys, time
top, fstrack, sock = sys.argv[1:4]
def status():
    out = subprocess.run([fstrack, "-s", sock, "status"], check=True,
                         capture_output=True, text=True).stdout
    return dict(l.split(": ", 1) for l in out.splitlines() if ": " in l)
def wait(key, n):
    end = time.monotonic() + 30
    while int(status()[key]) < n:
        if time.monotonic() > end:
            print("hard: %s stayed below %d" % (key, n)); sys.exit(99)
        time.sleep(0.02)
s = status()
events, walks = int(s["perm_events"]), int(s["perm_ahead_walks"])
hits = 0
for name in os.listdir(top):		# readdir order, as tar reads
    with open(os.path.join(top, name, "f")) as f:
        f.read()
    s = status()
    if int(s["perm_events"]) != events:
        hits += 1
        walks += 1
        wait("perm_ahead_walks", walks)
        s = status()
        # every directory armed so far marked (ours: armed by its open)
        wait("perm_marks", int(sys.argv[4]) + int(s["perm_armed_ahead"]) -
             int(sys.argv[5]) + hits)
        events = int(status()["perm_events"])
print(hits)
EOF
)
rc=$?
[ "$rc" -ne 99 ] || hard_error "C: $out"
[ "$rc" -eq 0 ] || die "C: the reader failed ($rc): $out"
if [ "$out" -le 8 ]; then
	pass "C: reading 2,000 directories met the end of a walk $out times (<= 8)"
else
	fail "C: reading 2,000 directories met the end of a walk $out times (> 8)"
fi
stop_daemon || fail "fstrackd exit $? after SIGTERM"
finish

#!/bin/bash
# root-links: the other names of hard-linked files, while the daemon runs.
# On a loop ext4, fstrackd in async mode (so it can be SIGSTOPped without
# holding anybody):
#   a. a link made and removed again before the daemon reads the events:
#      the kernel reports link(2) and unlink(2) by file handle only, the
#      search for the file's names then finds it with one name again, and
#      that name's directory (whose entry shows the new ctime) must still
#      be listed, and `fstrack verify` must find no miss;
#   b. the same with the file's directory moved while the events wait;
#   c. a write through a name made while the daemon runs: the directory
#      of the other name, found by the search, must be listed too;
#   d. a file born in this snapshot but before a position, linked and
#      unlinked elsewhere after it: the remaining name's directory listed
#      since the position (a file young for the snapshot is old for the
#      position: it must be searched for, notify.c YOUNG FILES);
#   e. git's way of writing an object (a temporary name, a link to the
#      final one, the temporary unlinked): both directories listed, no
#      search (status links_young counts it);
#   f. a young file left with two names: still searched for, so a write
#      through one name in the next snapshot lists the other's directory.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
in_private_ns "$@"
setup_workdir
make_fs ext4 "$MNT"

T=$MNT/tree
mkdir -p "$T/a" "$T/b" "$T/c/deep" "$T/d" "$T/e" "$T/f"
echo one >"$T/a/file"
echo two >"$T/c/deep/file"
echo three >"$T/e/file"
start_daemon --durability async "$MNT"

# take_snapshot: a new snapshot, after the start-up walk and any search.
take_snapshot() {
	local out n
	fst changed --since 0 --dirs >/dev/null 2>&1 || true
	out=$(fst snapshot) || die "snapshot failed: $out"
	n=$(printf '%s\n' "$out" | tail -n 1)
	[[ $n =~ ^[0-9]+$ ]] || die "snapshot printed '$n'"
	echo "$n"
}

# listed N DIR WHAT: DIR is in `fstrack changed --since N --dirs -0`.
listed() {
	local rc=0
	fst changed --since "$1" --dirs -0 >"$WORK/reported" 2>"$WORK/changed.err" || rc=$?
	[ "$rc" -eq 0 ] || { fail "$3: fstrack changed exited $rc: $(cat "$WORK/changed.err")"; return; }
	if tr '\0' '\n' <"$WORK/reported" | grep -cxF -- "$2" >/dev/null; then
		pass "$3: $2 listed"
	else
		fail "$3: $2 not listed; listed: $(tr '\0' ' ' <"$WORK/reported")"
	fi
}

# no_miss N WHAT: `fstrack verify --since N` finds nothing unreported.
no_miss() {
	local rc=0
	fst verify --since "$1" >"$WORK/verify.out" 2>&1 || rc=$?
	if [ "$rc" -eq 0 ] && grep -qx 'misses	0' "$WORK/verify.out"; then
		pass "$2: verify finds no miss"
	else
		fail "$2: verify exited $rc: $(tr '\n' ' ' <"$WORK/verify.out")"
	fi
}

# paused CMD...: run CMD while fstrackd is stopped, so that it reads the
# events only afterwards (the link is gone again by then).
paused() {
	kill -STOP "$DAEMON_PID" || hard_error "cannot stop fstrackd"
	"$@"
	local rc=$?
	kill -CONT "$DAEMON_PID" || hard_error "cannot continue fstrackd"
	[ "$rc" -eq 0 ] || hard_error "workload step failed: $*"
}

# --- a. link and unlink elsewhere, read late.
N=$(take_snapshot)
paused sh -c 'ln "$1/a/file" "$1/b/link" && rm "$1/b/link"' sh "$T"
listed "$N" "$T/a" "a: the remaining name's directory"
listed "$N" "$T/b" "a: the directory of the link"
no_miss "$N" a

# --- b. the same, with the remaining name's directory moved meanwhile.
N=$(take_snapshot)
paused sh -c 'ln "$1/c/deep/file" "$1/d/link" && rm "$1/d/link" &&
	mv "$1/c/deep" "$1/d/moved"' sh "$T"
listed "$N" "$T/d/moved" "b: the moved directory of the remaining name"
no_miss "$N" b

# --- c. a second name made live, then a write through it.
ln "$T/e/file" "$T/f/link"
take_snapshot >/dev/null	# the search has found e/file
N=$(take_snapshot)
echo more >>"$T/f/link"
listed "$N" "$T/f" "c: the directory written through"
listed "$N" "$T/e" "c: the directory of the other name"
no_miss "$N" c

# --- d. born in this snapshot, before a position; linked after it.
mkdir -p "$T/g" "$T/h" "$T/i" "$T/j" "$T/k" "$T/l"
take_snapshot >/dev/null
echo young >"$T/g/born"
P=$(fst position) || die "fstrack position failed: $P"
paused sh -c 'ln "$1/g/born" "$1/h/link" && rm "$1/h/link"' sh "$T"
listed "$P" "$T/g" "d: the remaining name's directory, since a position"
listed "$P" "$T/h" "d: the directory of the link, since a position"

# --- e. git's object write: tmp, link, unlink; one name left, no search.
N=$(take_snapshot)
y0=$(status_number links_young) || exit
paused sh -c 'echo obj >"$1/i/tmp_obj" && ln "$1/i/tmp_obj" "$1/j/obj" &&
	rm "$1/i/tmp_obj"' sh "$T"
listed "$N" "$T/i" "e: the temporary name's directory"
listed "$N" "$T/j" "e: the object's directory"
y1=$(status_number links_young) || exit
if [ "$y1" -gt "$y0" ]; then
	pass "e: no search for a young file with one name (links_young $y0 -> $y1)"
else
	fail "e: links_young did not grow ($y0 -> $y1)"
fi
no_miss "$N" e

# --- f. a young file left with two names, written in the next snapshot.
take_snapshot >/dev/null
echo two >"$T/k/pair"
ln "$T/k/pair" "$T/l/pair"
take_snapshot >/dev/null	# the search has found both names
N=$(take_snapshot)
echo more >>"$T/l/pair"
listed "$N" "$T/l" "f: the directory written through"
listed "$N" "$T/k" "f: the directory of the other name"
no_miss "$N" f

rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "fstrackd exited $rc on SIGTERM"
finish

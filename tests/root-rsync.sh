#!/bin/bash
# root-rsync: fstrack-rsync (src/fstrack-rsync.c) keeps a copy in step with the tracked
# filesystem, transferring only the changed directories.
#
#   - first run: full sync (no cursor);
#   - rounds of tests/workload.py, each followed by an incremental run, after
#     which `rsync -a --delete -n -i SRC/ DEST/` prints nothing and
#     `diff -r --no-dereference SRC DEST` agrees (FIFOs aside: diff cannot
#     compare them), plus an exact tree comparison (type, mode, owner,
#     mtime in ns, content, link target);
#   - a round with the workload running DURING the sync (snapshot-before-list
#     property), settled by one more run once it stops;
#   - a round where fstrackd is SIGKILLed between changes and restarted;
#   - rounds where rsync fails (RSYNC=false; a partial rsync exiting 23): the
#     cursor must not move, and the next normal run fixes everything;
#   - --dry-run leaves cursor and destination alone;
#   - a remote-shell transport (DEST host:path, -e a local fake rsh), with
#     the consumer name derived from DEST.
# Each incremental run prints how many directories it sent out of the total.
#
# Hard links: a change made through one name of a multiply linked file is
# seen by the kernel under that name only, so another name's directory may
# legitimately not be reported; such mismatches are counted, excused and
# repaired (like oracle.py --hardlinks lenient) before the strict checks.
#
# Environment: RSYNC_TEST_FS (tmpfs, ext4, xfs, btrfs; default tmpfs),
# RSYNC_TEST_ROUNDS (default 4), RSYNC_TEST_OPS (default 500).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
command -v rsync >/dev/null 2>&1 || skip "no rsync"
command -v diff >/dev/null 2>&1 || skip "no diff"
in_private_ns "$@"
setup_workdir

FS=${RSYNC_TEST_FS:-tmpfs}
ROUNDS=${RSYNC_TEST_ROUNDS:-4}
OPS=${RSYNC_TEST_OPS:-500}
WRAP=$top_builddir/fstrack-rsync
[ -x "$WRAP" ] || hard_error "$WRAP missing"
export FSTRACK
SRC=$MNT
DEST=$WORK/dest
RDEST=$WORK/rdest
NAME=test-local
# rsync compares mtimes to the second by default: a file rewritten with the
# same size within the second of the previous sync would look up to date to
# rsync itself (full or not).  Compare nanoseconds.
ROPTS=(-H --modify-window=-1)
mkdir -p "$DEST" "$RDEST"

make_fs "$FS" "$MNT"
log "populating $SRC ($FS)"
"$PY" "$WORKLOAD" "$SRC" --populate --dirs 150 --files 500 --seed 1 ||
	hard_error "populate failed"
start_daemon "$MNT"

# fake remote shell: drop the host name, run the command the way sshd would
# (one string for sh -c, so rsync's own argument quoting is honoured).
cat >"$WORK/fakersh" <<'EOF'
#!/bin/sh
printf '%s\n' "$*" >>"${FAKERSH_LOG:-/dev/null}"
while [ $# -gt 0 ]; do
	case $1 in
	-l) shift 2 ;;
	-*) shift ;;
	*) break ;;
	esac
done
shift
exec sh -c "$*"
EOF
chmod +x "$WORK/fakersh"

# partial rsync: transfers only small files, then reports failure 23
cat >"$WORK/partial-rsync" <<'EOF'
#!/bin/sh
rsync --max-size=200 "$@"
exit 23
EOF
chmod +x "$WORK/partial-rsync"

ndirs() {
	{ find "$1" -type d -print0 2>/dev/null || true; } | tr -dc '\0' | wc -c
}

# wrap LOG ARGS...: run fstrack-rsync -v, log in LOG, return its status
wrap() {
	local out=$1 rc=0
	shift
	timeout 600 "$WRAP" -s "$SOCK" -v "$@" >"$out" 2>&1 || rc=$?
	return "$rc"
}

# report LOG WHAT: one line on what a run did
report() {
	local line total
	total=$(ndirs "$SRC")
	if grep -q 'full sync:' "$1"; then
		line=$(grep -a 'full sync:' "$1" | head -n1)
		log "$2: FULL sync of $total directories (${line#*full sync: })"
	elif line=$(grep -a 'directories reported' "$1"); then
		line=${line#*: }
		log "$2: incremental: ${line%% (*} -> sent $(sed -n 's/.*reported, \([0-9]*\) to sync.*/\1/p' <<<"$line") of $total directories (${line#* (}"
	else
		log "$2: nothing to sync ($total directories)"
	fi
}

cursor() {
	fst consumer get "$1" 2>/dev/null | tail -n1
}

# mismatches SRC DEST LINKED OUT: exact comparison; writes the excused
# (hard-linked) relative paths NUL-separated to OUT; exit 1 on any
# mismatch that is not excused.
mismatches() {
	"$PY" - "$@" <<'EOF'
import os, stat, sys
src, dst, linked_file, out = sys.argv[1:5]
linked = set()
if os.path.exists(linked_file):
    with open(linked_file, "rb") as f:
        linked = set(p for p in f.read().split(b"\0") if p)

def onerror(e):
    raise e

def walk(root):
    res = {}
    root = os.fsencode(root)
    for d, dirs, files in os.walk(root, onerror=onerror):
        for n in dirs + files + [b"."]:
            p = os.path.normpath(os.path.join(d, n))
            rel = os.path.relpath(p, root)
            res[rel] = os.lstat(p)
    return res

def content(p):
    with open(p, "rb") as f:
        return f.read()

try:
    s, d = walk(src), walk(dst)
except OSError as e:
    print("  compare: cannot read the trees: %s" % e)
    sys.exit(2)
bad, excused = [], []
for rel in sorted(set(s) | set(d)):
    why = None
    a, b = s.get(rel), d.get(rel)
    if a is None:
        why = "only in DEST"
    elif b is None:
        why = "only in SRC"
    elif stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        why = "type"
    elif stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode):
        why = "mode %o/%o" % (a.st_mode, b.st_mode)
    elif (a.st_uid, a.st_gid) != (b.st_uid, b.st_gid):
        why = "owner"
    elif a.st_mtime_ns != b.st_mtime_ns:
        why = "mtime %d/%d" % (a.st_mtime_ns, b.st_mtime_ns)
    elif stat.S_ISLNK(a.st_mode):
        if os.readlink(os.path.join(os.fsencode(src), rel)) != \
           os.readlink(os.path.join(os.fsencode(dst), rel)):
            why = "link target"
    elif stat.S_ISREG(a.st_mode):
        if a.st_size != b.st_size or \
           content(os.path.join(os.fsencode(src), rel)) != \
           content(os.path.join(os.fsencode(dst), rel)):
            why = "content"
    if why is None:
        continue
    if a is not None and stat.S_ISREG(a.st_mode) and \
       (a.st_nlink > 1 or rel in linked):
        excused.append(rel)
        why += " (hard-linked: excused)"
    else:
        bad.append(rel)
    print("  mismatch: %r: %s" % (rel, why))
with open(out, "wb") as f:
    f.write(b"".join(r + b"\0" for r in excused))
print("  compare: %d entries, %d mismatches, %d excused (hard links)"
      % (len(s), len(bad), len(excused)))
sys.exit(1 if bad else 0)
EOF
}

# drop_fifo_diffs SRC DEST <DIFF-OUTPUT: print what remains of `diff -r
# SRC DEST` output once the message of every FIFO of SRC is removed; exit 1
# when something remains, 2 when SRC cannot be read.
drop_fifo_diffs() {
	"$PY" -c '
import os, stat, sys
src, dst = (os.fsencode(a) for a in sys.argv[1:3])
out = sys.stdin.buffer.read()
def onerror(e):
    raise e
try:
    for d, dirs, files in os.walk(src, onerror=onerror):
        for n in files:
            p = os.path.join(d, n)
            if stat.S_ISFIFO(os.lstat(p).st_mode):
                rel = os.path.relpath(p, src)
                msg = b"File %s/%s is a fifo while file %s/%s is a fifo\n" % (
                    src, rel, dst, rel)
                out = out.replace(msg, b"", 1)
except OSError as e:
    print("cannot read %r: %s" % (src, e))
    sys.exit(2)
sys.stdout.buffer.write(out)
sys.exit(1 if out.strip() else 0)
' "$1" "$2"
}

# linked_now: record the multiply linked regular files of SRC
linked_now() {
	find "$SRC" -type f -links +1 -printf '%P\0' >"$WORK/linked"
}

# check DEST WHAT: DEST must equal SRC
check() {
	local dest=$1 what=$2 out rc=0
	mismatches "$SRC" "$dest" "$WORK/linked" "$WORK/excused" || rc=$?
	case $rc in
	0) ;;
	1)
		fail "$what: $dest differs from $SRC"
		return 0
		;;
	*) hard_error "$what: the tree comparison failed ($rc)" ;;
	esac
	if [ -s "$WORK/excused" ]; then
		# repair the hard-link victims so the strict checks below see
		# everything else
		rsync -a --modify-window=-1 --files-from="$WORK/excused" --from0 \
			"$SRC/" "$dest/"
	fi
	out=$(rsync -a --delete -n -i --modify-window=-1 "$SRC/" "$dest/") ||
		fail "$what: rsync -n failed"
	if [ -n "$out" ]; then
		head -n 20 <<<"$out" | cut -c1-300
		fail "$what: rsync -n -i finds differences"
	fi
	# diff cannot compare FIFOs: drop its complaints about them (exactly
	# one "File SRC/X is a fifo while file DEST/X is a fifo" per FIFO X of
	# SRC; X may hold newlines, so the messages are matched whole, not
	# line by line).
	rc=0
	diff -r --no-dereference "$SRC" "$dest" >"$WORK/diff.out" 2>&1 || rc=$?
	[ "$rc" -le 1 ] || { head -c 3000 "$WORK/diff.out"; fail "$what: diff -r failed ($rc)"; }
	rc=0
	out=$(drop_fifo_diffs "$SRC" "$dest" <"$WORK/diff.out") || rc=$?
	case $rc in
	0) ;;
	1)
		head -n 20 <<<"$out" | cut -c1-300
		fail "$what: diff -r finds differences"
		;;
	*) hard_error "$what: drop_fifo_diffs failed ($rc): $out" ;;
	esac
	linked_now
	pass "$what: $dest in step"
}

# sync_local WHAT [wrapper args]: incremental run to DEST, must succeed
sync_local() {
	local what=$1 rc=0
	shift
	wrap "$WORK/run.log" "${ROPTS[@]}" --name "$NAME" "$@" "$SRC/" "$DEST" || rc=$?
	if [ "$rc" -ne 0 ]; then
		cat "$WORK/run.log"
		fail "$what: fstrack-rsync exited $rc"
	fi
	report "$WORK/run.log" "$what"
}

workload() {
	"$PY" "$WORKLOAD" "$SRC" --procs 3 --ops "$1" --seed "$2" \
		>"$WORK/workload.out" 2>&1 || {
		cat "$WORK/workload.out"
		fail "workload --seed $2 failed"
	}
}

# --- first run: full ----------------------------------------------------
rc=0
fst consumer get "$NAME" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "consumer get of an unknown consumer exited $rc, not 3"
sync_local "run 1"
grep -q 'full sync: no cursor' "$WORK/run.log" || fail "first run was not a full sync"
c=$(cursor "$NAME")
[ -n "$c" ] || fail "no cursor after the first run"
log "cursor after the first run: $c"
check "$DEST" "first run"

# --- rounds of changes ----------------------------------------------------
for r in $(seq 1 "$ROUNDS"); do
	workload "$OPS" "$r"
	before=$(cursor "$NAME")
	sync_local "round $r"
	grep -q 'full sync' "$WORK/run.log" && fail "round $r: unexpected full sync"
	after=$(cursor "$NAME")
	[ "$after" -gt "$before" ] || fail "round $r: cursor $before -> $after"
	check "$DEST" "round $r"
done

# --- nothing changed: nothing (or the last round's late events) to send ----
# The daemon carries directories write-opened in the last 0.5 s into a new
# snapshot (perm.c PERM_RECENT_MS): wait that out, so that the idle run's
# snapshot carries nothing of the last round and the targeted count below
# depends on nothing but the targeted changes.
sleep 1
sync_local "idle run"
check "$DEST" "idle run"

# --- a few targeted changes: only their directories are sent -------------
mapfile -d '' -t some < <(find "$SRC" -mindepth 1 -type d -print0 | LC_ALL=C sort -z | head -z -n 3)
[ "${#some[@]}" -eq 3 ] || hard_error "tree too small"
for d in "${some[@]}"; do
	echo x >"$d/targeted-file"
done
mkdir -p "${some[0]}/targeted-dir/sub"
echo y >"${some[0]}/targeted-dir/sub/file"
sync_local "targeted changes"
n=$(sed -n 's/.*reported, \([0-9]*\) to sync.*/\1/p' "$WORK/run.log")
# 3 + targeted-dir + sub, and maybe the parents of the 3 (their mtimes)
if [ -z "$n" ] || [ "$n" -lt 5 ] || [ "$n" -gt 8 ]; then
	fail "targeted changes: ${n:-?} directories sent, expected 5 to 8"
fi
check "$DEST" "targeted changes"

# --- workload running during the sync -------------------------------------
# The workload runs until the harness has done its three runs (--stop-file),
# paced (--rate) so that the tree grows by a bounded amount however long the
# runs take (unpaced, 6 s of it made ~60,000 operations and a tree of 4,000
# deep directories here, and every later run and check took minutes), and
# capped (--ops).  A workload that reached its cap before the third run
# ended did not run during all of them: the harness's fault, so the round
# is done again (at most 3 times).
CONC_RATE=${RSYNC_TEST_CONC_RATE:-300}
CONC_OPS=${RSYNC_TEST_CONC_OPS:-6000}
for attempt in 1 2 3; do
	rm -f "$WORK/stop"
	# --no-fifo-over: rsync's sender, having lstat()ed a file, would block
	# for ever opening a FIFO renamed over it (seen: wait_for_partner),
	# plain rsync as much as ours.
	start_workload "$SRC" --procs 3 --ops "$CONC_OPS" --rate "$CONC_RATE" \
		--no-fifo-over --stop-file "$WORK/stop" --seed "100-$attempt"
	for i in 1 2 3; do
		rc=0
		wrap "$WORK/run.log" "${ROPTS[@]}" --name "$NAME" "$SRC/" "$DEST" || rc=$?
		case $rc in
		0 | 23 | 24) report "$WORK/run.log" "concurrent run $i (exit $rc)" ;;
		*)
			# rsync itself may give up when the tree changes under it
			# (e.g. "Invalid packet at end of run", exit 2, with
			# --files-from and vanished directories): acceptable, as
			# long as the wrapper says so and the cursor stays put.
			if grep -q "rsync failed (exit $rc); cursor of $NAME left at" \
				"$WORK/run.log"; then
				log "concurrent run $i: rsync gave up (exit $rc), cursor kept"
			else
				cat "$WORK/run.log"
				fail "concurrent run $i: exit $rc"
			fi
			;;
		esac
	done
	alive=0
	pid_alive "$WORKLOAD_PID" && alive=1
	: >"$WORK/stop"
	rc=0
	wait_workload 60 || rc=$?
	[ "$rc" -eq 0 ] || fail "concurrent workload failed: $(cat "$WORK/workload.out")"
	log "concurrent workload: $(workload_progress) operations"
	[ "$alive" -eq 0 ] || break
	[ "$attempt" -lt 3 ] ||
		hard_error "the concurrent workload ($CONC_OPS operations at $CONC_RATE/s) ended before the third run, 3 times"
	log "the workload ended before the third concurrent run did: again"
done
sync_local "after the concurrent workload"
check "$DEST" "after the concurrent workload"

# --- daemon SIGKILLed between changes ---------------------------------------
workload 300 200
kill_daemon
log "fstrackd SIGKILLed; changing the tree while it is down"
workload 300 201
start_daemon "$MNT"
workload 200 202
sync_local "after SIGKILL + restart"
check "$DEST" "after SIGKILL + restart"
workload 300 203
sync_local "after the restart, next round"
grep -q 'full sync' "$WORK/run.log" && fail "unexpected full sync after a clean round"
check "$DEST" "after the restart, next round"

# --- rsync failures: the cursor stays ---------------------------------------
workload 300 300
before=$(cursor "$NAME")
rc=0
RSYNC=false wrap "$WORK/run.log" "${ROPTS[@]}" --name "$NAME" "$SRC/" "$DEST" || rc=$?
[ "$rc" -eq 1 ] || fail "RSYNC=false: exit $rc, expected 1"
[ "$(cursor "$NAME")" = "$before" ] || fail "RSYNC=false: cursor moved from $before"
workload 300 301
rc=0
RSYNC=$WORK/partial-rsync wrap "$WORK/run.log" "${ROPTS[@]}" --name "$NAME" "$SRC/" "$DEST" || rc=$?
[ "$rc" -eq 23 ] || fail "partial rsync: exit $rc, expected 23"
[ "$(cursor "$NAME")" = "$before" ] || fail "partial rsync: cursor moved from $before"
pass "failed runs left the cursor at $before"
rc=0
wrap "$WORK/run.log" "${ROPTS[@]}" --name "$NAME" "$WORK/nonexistent/" "$DEST" || rc=$?
[ "$rc" -eq 1 ] || fail "missing SRC: exit $rc, expected 1"
rc=0
wrap "$WORK/run.log" "$SRC/" || rc=$?
[ "$rc" -eq 2 ] || fail "one argument: exit $rc, expected 2"
workload 200 302
sync_local "after the failed runs"
check "$DEST" "after the failed runs"

# --- dry run ------------------------------------------------------------------
workload 200 400
before=$(cursor "$NAME")
wrap "$WORK/run.log" "${ROPTS[@]}" --name "$NAME" --dry-run "$SRC/" "$DEST" ||
	fail "dry run failed"
[ "$(cursor "$NAME")" = "$before" ] || fail "--dry-run moved the cursor"
[ -n "$(rsync -a --delete -n -i --modify-window=-1 "$SRC/" "$DEST/")" ] ||
	fail "--dry-run changed the destination"
sync_local "after the dry run"
check "$DEST" "after the dry run"

# --- remote-shell transport -------------------------------------------------
for r in 1 2 3; do
	[ "$r" -eq 1 ] || workload "$OPS" $((500 + r))
	rc=0
	wrap "$WORK/rrun.log" "${ROPTS[@]}" -e "$WORK/fakersh" "$SRC/" "localhost:$RDEST" || rc=$?
	if [ "$rc" -ne 0 ]; then
		cat "$WORK/rrun.log"
		fail "remote run $r: exit $rc"
	fi
	report "$WORK/rrun.log" "remote run $r"
	if [ "$r" -eq 1 ]; then
		grep -q 'full sync: no cursor' "$WORK/rrun.log" || fail "first remote run not full"
	else
		grep -q 'full sync' "$WORK/rrun.log" && fail "remote run $r: unexpected full sync"
	fi
	check "$RDEST" "remote run $r"
done
fst consumers | grep -aq '^rsync-localhost_' || fail "no derived consumer name in: $(fst consumers)"

# --- pull: HOST:SRC/ DEST, the cursor and the listing on HOST ----------------
# fstrack-rsync runs on "HOST" through the remote shell (--server-plan, then
# --server-commit); this side runs the one rsync, which pulls.
PDEST=$WORK/pdest
mkdir -p "$PDEST"
export FAKERSH_LOG=$WORK/rsh.log
for r in 1 2 3; do
	[ "$r" -eq 1 ] || workload "$OPS" $((600 + r))
	: >"$FAKERSH_LOG"
	rc=0
	wrap "$WORK/prun.log" "${ROPTS[@]}" -e "$WORK/fakersh" \
		--fstrack-rsync-path "$WRAP" "localhost:$SRC/" "$PDEST" || rc=$?
	if [ "$rc" -ne 0 ]; then
		cat "$WORK/prun.log"
		fail "pull run $r: exit $rc"
	fi
	report "$WORK/prun.log" "pull run $r"
	if [ "$r" -eq 1 ]; then
		grep -q 'full sync: no cursor' "$WORK/prun.log" || fail "first pull run not full"
	else
		grep -q 'full sync' "$WORK/prun.log" && fail "pull run $r: unexpected full sync"
	fi
	grep -q -- '--server-plan' "$FAKERSH_LOG" || fail "pull run $r: no plan step over the remote shell"
	grep -q -- '--server-commit' "$FAKERSH_LOG" || fail "pull run $r: no commit over the remote shell"
	n=$(grep -c -- '--server-plan\|--server-commit' "$FAKERSH_LOG" || true)
	[ "$n" -eq 2 ] ||
		fail "pull run $r: $n fstrack-rsync calls over the remote shell, expected 2"
	check "$PDEST" "pull run $r"
done
pname=$(fst consumers | grep -a '_pdest-' | cut -f1)
[ -n "$pname" ] || fail "no consumer derived from the pull's DEST in: $(fst consumers)"
workload 200 610
before=$(cursor "$pname")
rc=0
RSYNC=false wrap "$WORK/prun.log" "${ROPTS[@]}" -e "$WORK/fakersh" \
	--fstrack-rsync-path "$WRAP" "localhost:$SRC/" "$PDEST" || rc=$?
[ "$rc" -eq 1 ] || fail "pull with RSYNC=false: exit $rc, expected 1"
[ "$(cursor "$pname")" = "$before" ] || fail "pull with RSYNC=false: cursor moved"
rc=0
wrap "$WORK/prun.log" -e "$WORK/fakersh" --fstrack-rsync-path /nonexistent/fstrack-rsync \
	"localhost:$SRC/" "$PDEST" || rc=$?
[ "$rc" -eq 1 ] || fail "pull with a missing remote fstrack-rsync: exit $rc, expected 1"
[ "$(cursor "$pname")" = "$before" ] || fail "failed pull moved the cursor"
wrap "$WORK/prun.log" "${ROPTS[@]}" -e "$WORK/fakersh" --fstrack-rsync-path "$WRAP" \
	"localhost:$SRC/" "$PDEST" || fail "pull after the failures: $(cat "$WORK/prun.log")"
check "$PDEST" "pull after the failures"
unset FAKERSH_LOG

# --- --full -------------------------------------------------------------------
sync_local "--full" --full
grep -q 'full sync: --full' "$WORK/run.log" || fail "--full did not do a full sync"
check "$DEST" "--full"

# --- SRC below the mount point, an ancestor replaced: full sync -------------
mkdir -p "$SRC/sub/tree/x" "$WORK/sdest"
echo 1 >"$SRC/sub/tree/x/f"
wrap "$WORK/run.log" "$SRC/sub/tree/" "$WORK/sdest" || fail "sub-tree run 1 failed"
echo 2 >"$SRC/sub/tree/x/g"
wrap "$WORK/run.log" "$SRC/sub/tree/" "$WORK/sdest" || fail "sub-tree run 2 failed"
grep -q 'full sync' "$WORK/run.log" && fail "sub-tree run 2: unexpected full sync"
mv "$SRC/sub" "$SRC/sub.old"
mkdir -p "$SRC/new.sub/tree/x"
echo 3 >"$SRC/new.sub/tree/x/h"
mv "$SRC/new.sub" "$SRC/sub"
wrap "$WORK/run.log" "$SRC/sub/tree/" "$WORK/sdest" || fail "sub-tree run 3 failed"
grep -q 'may have been replaced' "$WORK/run.log" ||
	fail "ancestor of SRC replaced, no full sync: $(cat "$WORK/run.log")"
diff -r "$SRC/sub/tree" "$WORK/sdest" || fail "sub-tree copy differs"
pass "SRC below the mount point; replaced ancestor -> full sync"

# --- untracked filesystems are refused ----------------------------------------
mkdir -p "$WORK/untracked" "$SRC/submnt"
rc=0
wrap "$WORK/run.log" --name other "$WORK/untracked/" "$WORK/udest" || rc=$?
[ "$rc" -eq 1 ] || fail "untracked SRC: exit $rc, expected 1"
mount -t tmpfs fstrack-sub "$SRC/submnt" || hard_error "cannot mount on $SRC/submnt"
MOUNTS+=("$SRC/submnt")
rc=0
wrap "$WORK/run.log" "${ROPTS[@]}" --name "$NAME" "$SRC/" "$DEST" || rc=$?
[ "$rc" -eq 1 ] || fail "untracked filesystem below SRC: exit $rc, expected 1"
grep -q 'not tracked' "$WORK/run.log" || fail "no 'not tracked' message: $(cat "$WORK/run.log")"
before=$(cursor "$NAME")
[ "$(cursor "$NAME")" = "$before" ] || fail "refused run moved the cursor"
sync_local "with -x and a submount" -x
umount "$SRC/submnt" && unset 'MOUNTS[${#MOUNTS[@]}-1]'
pass "untracked filesystems refused"

stop_daemon || fail "fstrackd exited non-zero on SIGTERM"
finish

#!/bin/bash
# root-rsync-names: fstrack-rsync syncs every name, as a directory and as a
# file, when the directory is new (walked) and when it is only changed
# (listed from the records): names rsync's --files-from could read as
# comments (#, ;), as options (-, --delete), with newline, tab, backslash,
# glob and brace characters, blanks, bytes that are not UTF-8, 255-byte
# names, and paths close to PATH_MAX.  After every run `rsync -a --delete
# -n -i SRC/ DEST/` must print nothing and `diff -r` must agree; a
# directory too long for rsync's list makes the run exit 23 with the
# cursor left where it was, and the run after it is removed is complete.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
command -v rsync >/dev/null 2>&1 || skip "no rsync"
command -v diff >/dev/null 2>&1 || skip "no diff"
in_private_ns "$@"
setup_workdir

WRAP=$top_builddir/fstrack-rsync
[ -x "$WRAP" ] || hard_error "$WRAP missing"
SRC=$MNT
DEST=$WORK/dest
NAME=names
mkdir -p "$DEST"
make_fs tmpfs "$MNT"
mkdir -p "$SRC/base/files"
echo base >"$SRC/base/files/plain"
start_daemon "$MNT"

# The names, NUL-separated in a file (they hold newlines and odd bytes).
"$PY" - "$WORK/names" <<'EOF'
import sys
names = [b"#hash", b";semi", b"-dash", b"--delete", b"new\nline",
         b"tab\there", b"back\\slash", b"*glob?[a]", b"{br,ace}",
         b"sp ace", b" lead", b"trail ", b"\xff\xfe not utf-8",
         b".hidden", b"..dots", b"~tilde", b"colon:name", b"a=b", b"$dollar",
         b"'quote\"", b"#", b";", b"-", b"x" * 255]
with open(sys.argv[1], "wb") as f:
    f.write(b"".join(n + b"\0" for n in names))
EOF
mapfile -d '' -t NAMES <"$WORK/names"
log "${#NAMES[@]} names"

cursor() {
	fst consumer get "$NAME" 2>/dev/null | tail -n1
}

# run WHAT [expected status]: one fstrack-rsync run
run() {
	local what=$1 want=${2:-0} rc=0
	timeout 600 "$WRAP" -s "$SOCK" -v --modify-window=-1 --name "$NAME" \
		"$SRC/" "$DEST" >"$WORK/run.log" 2>&1 || rc=$?
	if [ "$rc" -ne "$want" ]; then
		cat "$WORK/run.log"
		fail "$what: fstrack-rsync exited $rc, expected $want"
	fi
	grep -a 'directories reported' "$WORK/run.log" | sed "s/^/  $what: /" || true
}

# in_step WHAT: DEST equals SRC
in_step() {
	local out rc=0
	out=$(rsync -a --delete -n -i --modify-window=-1 "$SRC/" "$DEST/" | cat -A) ||
		hard_error "$1: rsync -n failed"
	if [ -n "$out" ]; then
		head -n 30 <<<"$out" | cut -c1-200
		fail "$1: rsync -n -i finds $(wc -l <<<"$out") differences"
		return 0
	fi
	diff -r --no-dereference "$SRC" "$DEST" >"$WORK/diff.out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		head -c 2000 "$WORK/diff.out"
		fail "$1: diff -r finds differences ($rc)"
		return 0
	fi
	pass "$1: in step"
}

no_full() {
	if grep -q 'full sync' "$WORK/run.log"; then
		fail "$1: unexpected full sync: $(grep 'full sync' "$WORK/run.log")"
	fi
}

run "first run"
grep -q 'full sync: no cursor' "$WORK/run.log" || fail "first run was not a full sync"
in_step "first run"

# --- new: each name as a directory (at the top and deeper) and a file ------
for n in "${NAMES[@]}"; do
	for d in "$SRC/$n" "$SRC/base/$n"; do
		mkdir "$d"
		echo "f of $n" >"$d/f"
		mkdir "$d/$n"
		echo sub >"$d/$n/g"
	done
	echo "$n" >"$SRC/base/files/$n"
done
run "new names"
no_full "new names"
in_step "new names"

# --- changed, not new: directories listed from the records alone ----------
sleep 1	# later mtimes than the first copy, whatever the clock granularity
for n in "${NAMES[@]}"; do
	for d in "$SRC/$n" "$SRC/base/$n" "$SRC/$n/$n"; do
		echo more >>"$d/f"
		echo new >"$d/new-${n:0:240}"
	done
	echo changed >>"$SRC/base/files/$n"
done
run "changed names"
no_full "changed names"
grep -q 'directories reported, [1-9][0-9]* to sync' "$WORK/run.log" ||
	fail "changed names: nothing listed"
grep -q '([1-9][0-9]* in new subtrees' "$WORK/run.log" &&
	fail "changed names: directories were walked as new, not listed as changed"
in_step "changed names"

# --- deleted, renamed, attributes ------------------------------------------
i=0
for n in "${NAMES[@]}"; do
	rm "$SRC/$n/f"
	mv "$SRC/base/$n/$n" "$SRC/base/$n/${n:0:240}.renamed"
	chmod 0700 "$SRC/$n/$n"
	touch -d '2001-02-03 04:05:06' "$SRC/base/files/$n"
	if [ $((i % 3)) -eq 0 ]; then
		rm -r "$SRC/base/$n"
	fi
	i=$((i + 1))
done
rm "$SRC/base/files/${NAMES[0]}"
run "deleted and renamed names"
no_full "deleted and renamed names"
in_step "deleted and renamed names"

# --- paths close to PATH_MAX ------------------------------------------------
# 15 levels of 250-byte names below SRC/long and a 255-byte file name: a
# relative path of about 4,030 bytes, within rsync's limit of 4,095.
long=$(printf 'L%.0s' $(seq 250))
file255=$(printf 'F%.0s' $(seq 255))
deep=long
for _ in $(seq 15); do deep=$deep/$long; done
mkdir -p "$SRC/$deep"
echo deep >"$SRC/$deep/$file255"
echo "#" >"$SRC/$deep/#c"
run "paths near PATH_MAX"
no_full "paths near PATH_MAX"
in_step "paths near PATH_MAX"
echo changed >>"$SRC/$deep/$file255"
run "changed near PATH_MAX"
in_step "changed near PATH_MAX"

# --- a directory too long for rsync: exit 23, cursor kept -----------------
# $deep/$long/$long: about 4,270 bytes below SRC
before=$(cursor)
(cd "$SRC/$deep" && mkdir -p "$long/$long" && echo x >"$long/$long/x") ||
	hard_error "cannot make the too-long directory"
run "too long for rsync" 23
grep -q 'path too long for rsync' "$WORK/run.log" ||
	fail "too long: no message: $(cat "$WORK/run.log")"
[ "$(cursor)" = "$before" ] || fail "too long: the cursor moved from $before to $(cursor)"
rm -r "${SRC:?}/$deep/$long"
run "after the too-long directory went"
in_step "after the too-long directory went"

stop_daemon || fail "fstrackd exited non-zero on SIGTERM"
finish

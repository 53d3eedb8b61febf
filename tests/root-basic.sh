#!/bin/bash
# root-basic: fstrackd on a tmpfs.  snapshot prints an integer; changed
# lists created/deleted/moved/modified/attrib entries (text, -0, --json) and
# the right --dirs, with no sleep between a change and the query (barrier);
# a directory renamed after a change inside it is reported under its new
# path; text mode escapes newline, TAB and backslash; an unknown snapshot
# exits 3; status works; SIGTERM exits 0, and a restart keeps the history
# and the snapshot numbering.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
in_private_ns "$@"
setup_workdir
make_fs tmpfs "$MNT"

# has_kind FILE PATH KIND: the text output FILE has PATH with KIND.
has_kind() {
	# ENVIRON, not -v: awk would expand the backslashes of escaped paths.
	HK_PATH=$2 HK_KIND=$3 awk -F '\t' '
		$2 == ENVIRON["HK_PATH"] { n = split($1, a, ",")
			for (i = 1; i <= n; i++) if (a[i] == ENVIRON["HK_KIND"]) f = 1 }
		END { exit !f }' "$1"
}

# expect_kind FILE PATH KIND
expect_kind() {
	if has_kind "$1" "$2" "$3"; then
		pass "$3 $2"
	else
		fail "no '$3' for $2 in: changed --since $N"
		grep -F -- "$2" "$1" | sed 's/^/    found: /' >&2 || true
	fi
}

# expect_dir FILE DIR: DIR is a line of the --dirs output FILE.
expect_dir() {
	if grep -qxF -- "$2" "$1"; then
		pass "--dirs lists $2"
	else
		fail "--dirs does not list $2"
	fi
}

# expect_rc WANT GOT WHAT
expect_rc() {
	if [ "$2" -eq "$1" ]; then
		pass "$3: exit $2"
	else
		fail "$3: exit $2, expected $1: $(head -c 500 "$WORK/rc.out")"
	fi
}

# rc_of CMD...: print CMD's exit status (its output goes to $WORK/rc.out).
rc_of() {
	local rc=0
	"$@" >"$WORK/rc.out" 2>&1 || rc=$?
	echo "$rc"
}

P=$MNT/pre
mkdir -p "$P"/a "$P"/b "$P"/emptydir "$P"/deep/sub "$MNT"/quiet
echo 1 >"$P"/a/f1
echo 2 >"$P"/a/g
echo 3 >"$P"/b/old.txt
echo 4 >"$P"/b/perm
echo 5 >"$P"/b/app
echo 6 >"$MNT"/quiet/z

start_daemon "$MNT"

# --- status ------------------------------------------------------------------
rc=$(rc_of fst status)
cp "$WORK/rc.out" "$WORK/status.out"
if [ "$rc" -eq 0 ]; then pass "status exits 0"; else fail "status exits $rc"; fi
if grep -qF -- "$MNT" "$WORK/status.out"; then
	pass "status names $MNT"
else
	fail "status does not name $MNT: $(cat "$WORK/status.out")"
fi
if fst status --json >"$WORK/status.json" &&
	"$PY" -m json.tool "$WORK/status.json" >/dev/null; then
	pass "status --json is JSON"
else
	fail "status --json is not JSON: $(cat "$WORK/status.json")"
fi

# --- snapshot ----------------------------------------------------------------
fst snapshot >"$WORK/snap.out" || die "snapshot failed: $(cat "$WORK/snap.out")"
N=$(tail -n 1 "$WORK/snap.out")
[[ $N =~ ^[0-9]+$ ]] || die "snapshot printed '$N', not an integer"
pass "snapshot $N"
fst snapshots >"$WORK/snapshots.out" || fail "snapshots failed"
if grep -qP "^$N\\t\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\$" "$WORK/snapshots.out"; then
	pass "snapshots lists $N with an ISO 8601 UTC time"
else
	fail "snapshots does not list '$N<TAB>YYYY-MM-DDTHH:MM:SSZ': $(cat "$WORK/snapshots.out")"
fi

# --- changes (no sleep before the queries: the barrier must cover them) ------
WEIRD="we"$'\n'"ird"$'\t'"na\\me"
WEIRD_ESC='we\nird\tna\\me'
echo new >"$P"/a/new.txt
rm "$P"/b/old.txt
mv "$P"/a/f1 "$P"/a/f1.renamed
mv "$P"/a/g "$P"/b/g
mkdir "$MNT"/newdir
echo x >"$MNT"/newdir/x
rmdir "$P"/emptydir
chmod 600 "$P"/b/perm
echo more >>"$P"/b/app
printf x >"$P/a/$WEIRD"
echo in-deep >"$P"/deep/sub/file
mv "$P"/deep "$MNT"/moved_deep	# after the change inside it

rc=$(rc_of fst changed --since "$N")
cp "$WORK/rc.out" "$WORK/entries.txt"
[ "$rc" -eq 0 ] || fail "changed --since $N exits $rc: $(head -c 2000 "$WORK/entries.txt")"
E=$WORK/entries.txt
expect_kind "$E" "$P/a/new.txt" created
expect_kind "$E" "$P/b/old.txt" deleted
expect_kind "$E" "$P/a/f1" moved-from
expect_kind "$E" "$P/a/f1.renamed" moved-to
expect_kind "$E" "$P/a/g" moved-from
expect_kind "$E" "$P/b/g" moved-to
expect_kind "$E" "$MNT/newdir" created
expect_kind "$E" "$MNT/newdir/x" created
expect_kind "$E" "$P/emptydir" deleted
expect_kind "$E" "$P/b/perm" attrib
expect_kind "$E" "$P/b/app" modified
expect_kind "$E" "$P/a/$WEIRD_ESC" created
expect_kind "$E" "$MNT/moved_deep/sub/file" created
expect_kind "$E" "$P/deep" moved-from
expect_kind "$E" "$MNT/moved_deep" moved-to
if grep -q $'^[a-z-]*\\(,[a-z-]*\\)*\t/' "$E" &&
	! grep -vq $'^[a-z-]*\\(,[a-z-]*\\)*\t/' "$E"; then
	pass "every entry line is KINDS<TAB>/PATH"
else
	fail "malformed entry lines:"
	grep -v $'^[a-z-]*\\(,[a-z-]*\\)*\t/' "$E" | head -n 5 >&2
fi
bad=$(cut -f 1 "$E" | tr ',' '\n' | grep -vxE 'created|deleted|modified|attrib|moved-from|moved-to|closed-write|opened-write|rescanned|contents|open-at-snapshot' | sort -u | tr '\n' ' ' || true)
if [ -z "$bad" ]; then pass "only contract kinds"; else fail "unknown kinds: $bad"; fi

# -0: raw names, NUL-terminated records.
if fst changed --since "$N" -0 >"$WORK/entries0"; then
	if "$PY" - "$WORK/entries0" "$P/a/$WEIRD" <<'EOF'
import os, sys
recs = open(sys.argv[1], "rb").read().split(b"\0")
want = os.fsencode(sys.argv[2])
ok = any(r.split(b"\t", 1)[1:] == [want] and
         b"created" in r.split(b"\t", 1)[0].split(b",") for r in recs)
sys.exit(0 if ok else 1)
EOF
	then
		pass "-0 prints the raw name"
	else
		fail "-0 output lacks a raw 'created<TAB>$P/a/<weird name>' record"
	fi
	n0=$(tr -cd '\0' <"$WORK/entries0" | wc -c)
	n1=$(wc -l <"$E")
	if [ "$n0" -eq "$n1" ]; then
		pass "-0 has as many records as text mode ($n0)"
	else
		fail "-0 has $n0 records, text mode $n1"
	fi
else
	fail "changed -0 failed"
fi

# --dirs: sorted, unique, and the directories that changed.
D=$WORK/dirs.txt
fst changed --since "$N" --dirs >"$D" || fail "changed --dirs failed"
if LC_ALL=C sort -u "$D" | cmp -s - "$D"; then
	pass "--dirs is sorted and unique"
else
	fail "--dirs is not sorted (bytewise) and unique"
fi
expect_dir "$D" "$P/a"
expect_dir "$D" "$P/b"
expect_dir "$D" "$P"
expect_dir "$D" "$MNT"
expect_dir "$D" "$MNT/newdir"
expect_dir "$D" "$MNT/moved_deep/sub"
if grep -qxF -- "$MNT/quiet" "$D"; then
	echo "WARN: --dirs lists $MNT/quiet, untouched since before snapshot $N (false positive)"
fi
if grep -qxF -- "$P/deep/sub" "$D"; then
	echo "WARN: --dirs lists the old path $P/deep/sub (false positive)"
fi
if fst changed --since "$N" --dirs -0 >"$WORK/dirs0"; then
	if tr '\0' '\n' <"$WORK/dirs0" | cmp -s - "$D"; then
		pass "--dirs -0 matches --dirs"
	else
		fail "--dirs -0 differs from --dirs"
	fi
else
	fail "changed --dirs -0 failed"
fi

# --json
if fst changed --since "$N" --json >"$WORK/entries.json"; then
	if "$PY" - "$WORK/entries.json" "$N" "$P/a/$WEIRD" "$MNT/moved_deep/sub/file" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert j["since"] == n, "since %r" % j["since"]
assert j["snapshot"] >= n, "snapshot %r" % j["snapshot"]
assert j["complete"] is True, "complete %r" % j["complete"]
paths = {e["path"]: e for e in j["entries"]}
for p in sys.argv[3:]:
    assert p in paths, "%r missing" % p
    assert "created" in paths[p]["kinds"], "%r kinds %r" % (p, paths[p]["kinds"])
    e = paths[p]
    assert p.endswith("/" + e["name"]), "name %r" % e
    assert e["gone"] is False, "gone %r" % e
    # "dir" is the directory holding the entry, "is_dir" whether the
    # entry itself is a directory.
    assert e["dir"] + "/" + e["name"] == p, "dir %r" % e
    assert e["is_dir"] is False, "is_dir %r" % e
EOF
	then pass "changed --json"; else fail "changed --json content"; fi
else
	fail "changed --json failed"
fi
if fst changed --since "$N" --dirs --json >"$WORK/dirs.json"; then
	if "$PY" -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["dirs"]))' \
		"$WORK/dirs.json" | cmp -s - "$D"; then
		pass "--dirs --json matches --dirs"
	else
		fail "--dirs --json differs from --dirs"
	fi
else
	fail "changed --dirs --json failed"
fi

# --- exit statuses -----------------------------------------------------------
rc=$(rc_of fst changed --since $((N + 1000000)))
expect_rc 3 "$rc" "snapshot that never existed (after the current one)"
rc=$(rc_of fst changed --since 1)
# Older than the database's first snapshot: history incomplete (4), with
# the full-scan message.
expect_rc 4 "$rc" "snapshot older than the database"
grep -q "history incomplete" "$WORK/rc.out" ||
	fail "no 'history incomplete' message: $(cat "$WORK/rc.out")"
rc=$(rc_of fst changed --since notanumber)
expect_rc 2 "$rc" "bad --since"
rc=$(rc_of fst nosuchcommand)
expect_rc 2 "$rc" "unknown command"

# --- SIGTERM and restart -----------------------------------------------------
rc=0
stop_daemon || rc=$?
expect_rc 0 "$rc" "fstrackd after SIGTERM"
rc=$(rc_of fst status)
expect_rc 1 "$rc" "status with the daemon down"
start_daemon "$MNT"
fst changed --since "$N" --dirs >"$WORK/dirs-after-restart.txt" ||
	fail "changed --since $N after restart failed"
for d in "$P/a" "$P/b" "$P" "$MNT" "$MNT/newdir" "$MNT/moved_deep/sub"; do
	grep -qxF -- "$d" "$WORK/dirs-after-restart.txt" ||
		fail "after restart, --since $N lost $d"
done
fst snapshot >"$WORK/snap2.out" || die "snapshot after restart failed"
N2=$(tail -n 1 "$WORK/snap2.out")
if [[ $N2 =~ ^[0-9]+$ ]] && [ "$N2" -gt "$N" ]; then
	pass "snapshot after restart $N2 > $N"
else
	fail "snapshot after restart '$N2' not > $N"
fi
fst snapshots | cut -f 1 >"$WORK/ids" || fail "snapshots failed"
if grep -qx "$N" "$WORK/ids" && grep -qx "$N2" "$WORK/ids"; then
	pass "snapshots lists $N and $N2"
else
	fail "snapshots lacks $N or $N2"
fi
echo after >"$MNT"/quiet/after
fst changed --since "$N2" --dirs >"$WORK/dirs2.txt" ||
	fail "changed --since $N2 failed"
expect_dir "$WORK/dirs2.txt" "$MNT/quiet"
fst changed --since "$N2" >"$WORK/entries2.txt" || fail "changed --since $N2"
expect_kind "$WORK/entries2.txt" "$MNT/quiet/after" created
if grep -qF -- "$P/a/new.txt" "$WORK/entries2.txt"; then
	echo "WARN: --since $N2 lists $P/a/new.txt, changed before snapshot $N2"
fi

rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "second SIGTERM: exit $rc"
finish

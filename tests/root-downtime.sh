#!/bin/bash
# root-downtime: changes made while fstrackd is down are found by the
# start-up reconcile pass.  Two rounds on a loop ext4, one stopping the
# daemon with SIGTERM, one with SIGKILL.  Each round: snapshot N, oracle
# BEFORE, stop; then, with no daemon running, a deterministic script creates,
# deletes and renames files, renames directories that carry subtrees (and
# changes inside the moved subtree), rewrites existing files in place with
# their old mtime put back (only ctime shows it), chmods files and a
# directory, adds hard links and writes a file through one of its two names;
# then sleeps 6 s (longer than reconcile-margin, 5 s, after the last
# checkpoint) and changes two more directories; then starts fstrackd,
# records AFTER, and `fstrack changed --since N --dirs -0` must miss nothing
# (oracle.py compare --level full; hard-links mode FSTRACK_TEST_HARDLINKS,
# default strict, as in oracle-run.sh; with lenient the strict result is
# printed too; the directories of both names of the written hard link are
# checked by name either way).
#
# FSTRACK_DOWNTIME_SABOTAGE=1 (negative check of this test): before the
# restart set the checkpoint to "now" and run with reconcile-margin 0, as if
# the daemon had committed what it never saw; the test must then fail.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=crashlib.sh
. "$(dirname "$0")/crashlib.sh"
require_root
in_private_ns "$@"
setup_workdir
TYPE=${FSTRACK_DOWNTIME_FS:-ext4}
make_fs "$TYPE" "$MNT"
HARDLINKS=${FSTRACK_TEST_HARDLINKS:-strict}
SABOTAGE=${FSTRACK_DOWNTIME_SABOTAGE:-0}
LATE_SLEEP=${FSTRACK_DOWNTIME_LATE_SLEEP:-6}
[ "$SABOTAGE" != 1 ] || command -v sqlite3 >/dev/null 2>&1 || skip "no sqlite3"
write_margin_conf "$WORK/margin0.conf" 0
DAEMON_ARGS=()

mkdir "$MNT/pop"
"$PY" "$WORKLOAD" "$MNT/pop" --populate --dirs 60 --files 200 --seed downtime \
	>/dev/null || hard_error "populate failed"

# setup_tree T: the starting tree of one round.
setup_tree() {
	local t=$1 i
	mkdir -p "$t"/a/a1/a11/a111 "$t"/b/b1 "$t"/c "$t"/d/d1/d2/d3 "$t"/e \
		"$t"/h1 "$t"/h2 "$t"/late "$t"/late2 "$t"/still "$t"/x/y/z
	for i in 1 2 3 4 5 6; do
		printf 'file %s of e\n' "$i" >"$t/e/f$i"
		printf 'deep %s\n' "$i" >"$t/a/a1/a11/a111/g$i"
		printf 'd3 %s\n' "$i" >"$t/d/d1/d2/d3/h$i"
		printf 'z %s\n' "$i" >"$t/x/y/z/z$i"
	done
	printf 'hard-linked\n' >"$t/h1/orig"
	ln "$t/h1/orig" "$t/h2/link"
	printf 'late\n' >"$t/late2/old"
	printf 'still\n' >"$t/still/s"
}

# rewrite FILE: change FILE's content in place, same size, old mtime put
# back: only its ctime shows the change.
rewrite() {
	local m
	m=$(stat -c %y "$1")
	printf 'X' | dd of="$1" bs=1 seek=0 conv=notrunc status=none
	touch -m -d "$m" "$1"
}

# downtime_changes T: the changes made while the daemon is down.
downtime_changes() {
	local t=$1
	echo new >"$t/a/new-file"                  # create
	echo new >"$t/a/a1/a11/a111/new-deep"      # create, deep
	rm "$t/e/f1"                               # delete
	mv "$t/e/f2" "$t/e/f2.renamed"             # rename in place
	mv "$t/e/f3" "$t/b/b1/f3"                  # move across dirs
	mkdir -p "$t/c/newdir/n1/n2"               # new subtree
	echo n >"$t/c/newdir/n1/n2/nf"
	rm -r "$t/d/d1/d2"                         # delete a subtree
	mv "$t/a/a1" "$t/b/moved-a1"               # move a subtree
	echo m >"$t/b/moved-a1/a11/a111/after-move" # change inside it
	mv "$t/b/b1" "$t/b/b1-renamed"             # rename a dir in place
	mv "$t/x/y" "$t/c/y-moved"                 # move a subtree up/over
	rewrite "$t/e/f4"                          # content, same size+mtime
	rewrite "$t/b/moved-a1/a11/a111/g2"        # ... inside a moved dir
	chmod 600 "$t/e/f5"                        # chmod a file
	chmod 700 "$t/c"                           # chmod a dir
	ln "$t/e/f6" "$t/c/f6-link"                # new hard link
	printf 'more\n' >>"$t/h2/link"             # write via one of 2 names
	ln -s f4 "$t/e/sym-f4"                     # symlink
}

# late_changes T: changes made LATE_SLEEP s after the stop.
late_changes() {
	local t=$1
	echo late >"$t/late/new"
	rewrite "$t/late2/old"
}

# expect_listed REPORTED0 PATH WHAT: PATH is a record of the -0 list.
expect_listed() {
	if tr '\0' '\n' <"$1" | grep -cxF -- "$2" >/dev/null; then
		pass "$3: $2 listed"
	else
		fail "$3: $2 not listed"
	fi
}

# round NAME HOW: HOW is term or kill.
round() {
	local name=$1 how=$2 t=$MNT/t-$1 n rc
	n=$(take_snapshot)
	log "round $name: snapshot $n"
	oracle record "$MNT" "$WORK/before-$name.json" >/dev/null ||
		hard_error "oracle record (before) failed: the harness cannot read its own tree"
	if [ "$how" = term ]; then
		rc=0
		stop_daemon || rc=$?
		[ "$rc" -eq 0 ] || fail "round $name: fstrackd exited $rc on SIGTERM"
	else
		# a few live changes right before the kill
		echo live >"$t/still/live-before-kill"
		kill_daemon
	fi
	log "round $name: fstrackd stopped ($how); changing the tree"
	downtime_changes "$t"
	log "round $name: sleeping ${LATE_SLEEP}s, then the late changes"
	sleep "$LATE_SLEEP"
	late_changes "$t"
	if [ "$SABOTAGE" = 1 ]; then
		sabotage_checkpoint
		DAEMON_ARGS=(-c "$WORK/margin0.conf")
		log "round $name: SABOTAGE: checkpoint set to now, margin 0"
	fi
	start_daemon "${DAEMON_ARGS[@]}" "$MNT"
	oracle record "$MNT" "$WORK/after-$name.json" >/dev/null ||
		hard_error "oracle record (after) failed: the harness cannot read its own tree"
	rc=0
	fst changed --since "$n" --dirs -0 >"$WORK/reported-$name" \
		2>"$WORK/changed-$name.err" || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "round $name: changed --since $n --dirs -0 exited $rc: $(cat "$WORK/changed-$name.err")"
		return 0
	fi
	rc=0
	compare_dirs "$name" "$WORK/before-$name.json" "$WORK/after-$name.json" \
		"$WORK/reported-$name" "$HARDLINKS" || rc=$?
	case $rc in
	0) pass "round $name: no directory missed ($HARDLINKS): must-report $ORC_REQ, excused $ORC_EXCUSED, false positives $ORC_FP" ;;
	1) fail "round $name: $ORC_MISSES directories missed ($HARDLINKS)" ;;
	*) hard_error "oracle compare failed ($rc)" ;;
	esac
	if [ "$HARDLINKS" != strict ]; then
		rc=0
		compare_dirs "$name-strict" "$WORK/before-$name.json" \
			"$WORK/after-$name.json" "$WORK/reported-$name" strict >/dev/null || rc=$?
		log "round $name: hardlinks strict: misses $ORC_MISSES (exit $rc)"
	fi
	expect_listed "$WORK/reported-$name" "$t/late" "round $name late create"
	expect_listed "$WORK/reported-$name" "$t/late2" "round $name late rewrite"
	expect_listed "$WORK/reported-$name" "$t/h1" "round $name other name of a written hard link"
	expect_listed "$WORK/reported-$name" "$t/b/moved-a1/a11/a111" "round $name moved subtree"
	expect_listed "$WORK/reported-$name" "$t/e" "round $name rewrite with old mtime"
}

setup_tree "$MNT/t-term"
setup_tree "$MNT/t-kill"
start_daemon "$MNT"
# Let the set-up age past the reconcile margin, so that its directories are
# not rescanned (false positives that could hide a miss).
sleep 6
round term term
round kill kill
rc=0
stop_daemon || rc=$?
[ "$rc" -eq 0 ] || fail "fstrackd exited $rc on the final SIGTERM"
finish

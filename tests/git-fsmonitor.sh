#!/bin/bash
# git-fsmonitor: git's own test suite with fstrack-fsmonitor as the
# core.fsmonitor hook.  Not in `make check`: it needs a built git source
# tree (and takes minutes); it exits 77 without one.
#
#	tests/git-fsmonitor.sh --fetch [DIR]	get and build git's source
#	tests/git-fsmonitor.sh			run the tests (root)
#
# --fetch: a deb-src entry for the Debian archive apt already uses (from
# /etc/apt/sources.list.d/*.sources or sources.list), `apt-get source git`
# into DIR (default /var/tmp/fstrack-git), the few packages the build needs,
# and `make` (without curl, Tcl/Tk and gettext: the tests do not need
# them).  Then: GIT_SRC=DIR/git-VERSION (default: the first DIR/git-*/).
#
# The run: a test fstrackd (its own state dir and socket) tracking a
# loop-mounted ext4, FSTRACK_SOCKET exported, and each of GIT_TESTS run
# three times, their trash directories (--root) on that filesystem:
#	none	   no GIT_TEST_FSMONITOR: git as it is
#	all	   GIT_TEST_FSMONITOR=t/t7519/fsmonitor-all, git's own hook
#		   that always answers "/": what using a hook at all changes
#	statdiff   GIT_TEST_FSMONITOR=tests/fsmonitor-statdiff.py, a hook
#		   that lstat()s the whole work tree each time and answers
#		   exactly what changed since: precise like fstrack-fsmonitor,
#		   by brute force, so what fails with both fails because git
#		   trusts a precise answer (or counts its own work), not
#		   because of fstrack
#	fstrack	   GIT_TEST_FSMONITOR=fstrack-fsmonitor (through a wrapper
#		   that counts its answers, exact and "/")
#	socket	   the same with FSTRACK_VIA_SOCKET=1: the daemon answers, as
#		   it does every user but root
# and a table of ok / failed / skipped / known breakage for each, with the
# tests that fail with fstrack-fsmonitor but pass with both git's own
# hook and statdiff.  It fails (exit 1) if there is any such test.
#
# Last full run (git 2.39.5 from Debian 12, the 22 tests below; ok/failed):
# none 558/0, all 557/1, statdiff 550/8, fstrack 550/8, socket 550/8 -- the
# same 8 with statdiff: t7001 1, 48-51 (git mv keeps an entry's
# CE_FSMONITOR_VALID across its own rename of the file and its own write of
# .gitmodules, so the change goes unstaged), t7063 32, 36 (they count git's
# untracked-cache invalidations), t2108 2 (racy timestamps, with any hook,
# git's fsmonitor-all too).  3,460
# answers of the hook, 362 of them "/" (the first question of each new
# repository).
#
# Environment: GIT_SRC, GIT_TESTS (names without .sh), GIT_CONFIGS (some of
# "none all statdiff fstrack socket"), GIT_TEST_ARGS (extra arguments to each test script,
# e.g. -v), FSMON_RESULTS (a file for the table; default
# $top_builddir/git-fsmonitor.results), FSMON_OUTPUT (a directory to keep
# each test's output in), FSMON_HOOK_ARGS (e.g. -v: why each "/", in the
# output of tests run with -v).
# shellcheck source-path=SCRIPTDIR source=lib.sh
TEST_TIMEOUT=${TEST_TIMEOUT:-7200}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
FETCH_DIR=/var/tmp/fstrack-git

# fetch DIR: the deb-src entry, the source, the build.
fetch() {
	local dir=$1 src f
	mkdir -p "$dir"
	if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list \
		/etc/apt/sources.list.d/; then
		src=/etc/apt/sources.list.d/fstrack-deb-src.sources
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -e "$f" ] || continue
			sed -n '/^Types:/,/^$/p' "$f" | sed 's/^Types:.*/Types: deb-src/'
			echo
		done >"$src"
		if [ ! -s "$src" ] && [ -e /etc/apt/sources.list ]; then
			rm -f "$src"
			grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' \
				>/etc/apt/sources.list.d/fstrack-deb-src.list
		fi
		echo "added a deb-src entry to /etc/apt/sources.list.d/"
	fi
	apt-get update -q
	apt-get install -y -q dpkg-dev make gcc zlib1g-dev libexpat1-dev \
		libssl-dev perl
	(cd "$dir" && apt-get source git)
	src=$(ls -d "$dir"/git-*/ | head -n 1)
	make -C "$src" -j"$(nproc)" NO_CURL=1 NO_TCLTK=1 NO_GETTEXT=1 all
	echo "built $src: run this script with GIT_SRC=$src"
}

case ${1:-} in
--fetch)
	set -eu
	fetch "${2:-$FETCH_DIR}"
	exit 0
	;;
"") ;;
*)
	sed -n '2,/^# shellcheck/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
esac

. "$(dirname "$0")/lib.sh"
GIT_SRC=${GIT_SRC:-$(ls -d "$FETCH_DIR"/git-*/ 2>/dev/null | head -n 1)}
GIT_SRC=${GIT_SRC%/}
if [ -z "$GIT_SRC" ] || [ ! -x "$GIT_SRC/t/helper/test-tool" ] ||
	[ ! -x "$GIT_SRC/git" ]; then
	skip "no built git source tree (GIT_SRC=${GIT_SRC:-unset}): run $0 --fetch"
fi
require_root
in_private_ns "$@"
HOOK=$top_builddir/fstrack-fsmonitor
[ -x "$HOOK" ] || hard_error "$HOOK not built"
GIT_TESTS=${GIT_TESTS:-"t7519-status-fsmonitor t7063-status-untracked-cache
	t7508-status t7060-wtstatus t7061-wtstatus-ignore t7064-wtstatus-pv2
	t7506-status-submodule t7511-status-index t7515-status-symlinks
	t7521-ignored-mode t7525-status-rename t7001-mv t7101-reset-empty-subdirs
	t7102-reset t7113-post-index-change-hook t3000-ls-files-others
	t3001-ls-files-others-exclude t3011-common-prefixes-and-directory-traversal
	t2200-add-update t2201-add-update-typechange t2108-update-index-refresh-racy
	t2500-untracked-overwriting"}
RESULTS=${FSMON_RESULTS:-$top_builddir/git-fsmonitor.results}
setup_workdir
make_fs ext4 "$MNT"
start_daemon "$MNT"
export FSTRACK_SOCKET=$SOCK
log "git $("$GIT_SRC/git" --version | cut -d' ' -f3) from $GIT_SRC"

# The wrapper: counts each answer of the hook, exact or "/".
cat >"$WORK/fstrack-fsmonitor" <<EOF
#!/bin/sh
"$HOOK" ${FSMON_HOOK_ARGS:-} "\$@" >"$WORK/answer.\$\$"
rc=\$?
cat "$WORK/answer.\$\$"
if [ "\$(tail -c 3 "$WORK/answer.\$\$" | od -An -c | tr -d ' ')" = '\\0/\\0' ]
then echo all; else echo exact; fi >>"$WORK/answers"
rm -f "$WORK/answer.\$\$"
exit \$rc
EOF
chmod +x "$WORK/fstrack-fsmonitor"
: >"$WORK/answers"
export FSMON_STATDIFF_DIR=$WORK/statdiff

# run TEST CONFIG: one test script, its TAP output in $WORK/TEST.CONFIG.
run() {
	local t=$1 cfg=$2 root=$MNT/trash-$2 rc=0
	mkdir -p "$root"
	case $cfg in
	none) unset GIT_TEST_FSMONITOR ;;
	all) export GIT_TEST_FSMONITOR=$GIT_SRC/t/t7519/fsmonitor-all ;;
	statdiff) export GIT_TEST_FSMONITOR=$top_srcdir/tests/fsmonitor-statdiff.py ;;
	fstrack) export GIT_TEST_FSMONITOR=$WORK/fstrack-fsmonitor ;;
	socket) export GIT_TEST_FSMONITOR=$WORK/fstrack-fsmonitor \
		FSTRACK_VIA_SOCKET=1 ;;
	esac
	(cd "$GIT_SRC/t" && timeout 1800 "$BASH" "./$t.sh" --root="$root" \
		${GIT_TEST_ARGS:-}) >"$WORK/$t.$cfg" 2>&1 </dev/null || rc=$?
	unset GIT_TEST_FSMONITOR FSTRACK_VIA_SOCKET
	rm -rf "$root"
	[ -z "${FSMON_OUTPUT:-}" ] || cp "$WORK/$t.$cfg" "$FSMON_OUTPUT/"
	[ "$rc" -ne 124 ] || fail "$t ($cfg) timed out"
}

# counts FILE: "ok failed skipped known-breakage" of a TAP output.
counts() {
	awk '
	/^ok [0-9]+ .*# skip/		{ s++; next }
	/^ok [0-9]+ .*# TODO/		{ k++; next }
	/^not ok [0-9]+ .*# TODO/	{ k++; next }
	/^ok [0-9]+/			{ o++; next }
	/^not ok [0-9]+/		{ f++; next }
	END { printf "%d %d %d %d\n", o, f, s, k }' "$1"
}

# failed FILE: the numbers of the failed tests, one a line (sorted for comm).
failed() {
	[ ! -e "$1" ] ||
		awk '/^not ok [0-9]+/ && !/# TODO/ { print $3 }' "$1" | sort
}

{
	printf '%-34s %-8s %5s %6s %5s %5s\n' test config ok failed skip known
	for t in $GIT_TESTS; do
		[ -e "$GIT_SRC/t/$t.sh" ] || { fail "no test $t"; continue; }
		for cfg in ${GIT_CONFIGS:-none all statdiff fstrack socket}; do
			before=$(wc -l <"$WORK/answers")
			run "$t" "$cfg"
			read -r o f s k < <(counts "$WORK/$t.$cfg")
			printf '%-34s %-8s %5d %6d %5d %5d' "$t" "$cfg" "$o" "$f" "$s" "$k"
			if [ "$cfg" = fstrack ] || [ "$cfg" = socket ]; then
				tail -n +"$((before + 1))" "$WORK/answers" | sort |
					uniq -c | awk '{ printf "  %s %s", $1, $2 }'
			fi
			echo
		done
		comm -23 <(sort -u <(failed "$WORK/$t.fstrack") <(failed \
			"$WORK/$t.socket")) <(sort -u <(failed "$WORK/$t.all") \
			<(failed "$WORK/$t.statdiff")) >"$WORK/$t.only"
		if [ -s "$WORK/$t.only" ]; then
			echo "  failing only with fstrack-fsmonitor: $(tr '\n' ' ' <"$WORK/$t.only")"
			grep -hE "^not ok ($(paste -sd'|' "$WORK/$t.only")) " \
				"$WORK/$t.fstrack" "$WORK/$t.socket" | sort -u |
				sed 's/^/    /'
		fi
	done
} | tee "$RESULTS"
log "hook answers: $(sort "$WORK/answers" | uniq -c | tr -s ' \n' ' ')"
if grep -q 'failing only with fstrack-fsmonitor' "$RESULTS"; then
	for t in $GIT_TESTS; do
		[ -s "$WORK/$t.only" ] || continue
		echo "--- $t with fstrack-fsmonitor (failures):"
		grep -A30 -E "^not ok ($(paste -sd'|' "$WORK/$t.only")) " \
			"$WORK/$t.fstrack" "$WORK/$t.socket" | head -80
	done
	fail "tests fail with fstrack-fsmonitor that pass with the other hooks"
else
	pass "no test fails with fstrack-fsmonitor that passes with the other hooks"
fi
log "table in $RESULTS"
finish

#!/bin/bash
# root-fsmonitor: fstrack-fsmonitor(1), git's core.fsmonitor hook, with a
# real git on a tracked ext4 (no git source needed; tests/git-fsmonitor.sh
# runs git's own tests).
#   1. the protocol: a token that is not ours (git's first one, garbage, of
#      another work tree) gives "/" and a token of ours; a token of ours
#      gives exactly what changed since (a file, a new nested directory,
#      a rename), names not only directories, no path outside the work
#      tree, nothing in .git; the token of that answer gives nothing when
#      nothing changed; version 1 is refused (non-zero, as git expects).
#   2. not answerable: fstrackd stopped gives "/" and the token back (and,
#      once restarted, the answer since that token lists what changed
#      meanwhile); a work tree on an untracked filesystem, or with one
#      mounted below it, gives "/".
#   3. random rounds of changes (gitchurn.py: adds, modifies at the same
#      size, deletes, renames of files and directories, directories made
#      again at a renamed one's path (and the same on purpose, and a copy
#      of the repository changed before git ran in it), untracked files
#      in new nested
#      directories, file <-> directory, modes, symbolic links, .gitignore)
#      and git commands (add, commit, rm --cached, diff) in two
#      repositories, core.untrackedCache=true, one showing untracked files
#      "normal", one "all": after each round `git status --porcelain` with
#      the hook must equal, byte for byte, `git status --porcelain` without
#      it (core.fsmonitor=false, nothing written; where git without the
#      untracked cache too differs, a note says so), and most answers must
#      be exact (not "/"), or the comparison proves nothing.
#      The same through the socket (FSTRACK_VIA_SOCKET: the daemon answers,
#      as it does every user but root).
#   4. the same as an ordinary user (useradd), who owns the repository and
#      runs git, the hook and the changes.
# FSMON_ROUNDS (default 40) rounds per repository, FSMON_SEED the seed.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
require_root
in_private_ns "$@"
command -v git >/dev/null 2>&1 || skip "no git"
HOOK=$top_builddir/fstrack-fsmonitor
[ -x "$HOOK" ] || hard_error "$HOOK not built"
CHURN=$top_srcdir/tests/gitchurn.py
ROUNDS=${FSMON_ROUNDS:-40}
SEED=${FSMON_SEED:-$RANDOM}
setup_workdir
make_fs ext4 "$MNT"
printf 'reconcile-margin 0\n' >"$WORK/margin0.conf"
mkdir -p "$WORK/hooks"	# the wrappers' logs (wrap), the user's too
chmod 1777 "$WORK/hooks"
start_daemon "$MNT"
export FSTRACK_SOCKET=$SOCK
# git on its own: no user or system configuration
export HOME=$WORK/home GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=t \
	GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
mkdir -p "$HOME"
git config --global init.defaultBranch main
git config --global advice.detachedHead false
RANDOM=$SEED
log "seed $SEED (FSMON_SEED), $ROUNDS rounds per repository"

# hook DIR TOKEN OUT: run the hook in DIR as git does; the answer's token
# into OUT.token, its paths (one a line) into OUT.paths; status returned.
hook() {
	local rc=0
	(cd "$1" && timeout 60 "$HOOK" 2 "$2") >"$3.raw" 2>"$3.err" || rc=$?
	"$PY" - "$3" <<'EOF'
import sys
raw = open(sys.argv[1] + ".raw", "rb").read()
tok, _, rest = raw.partition(b"\0")
open(sys.argv[1] + ".token", "wb").write(tok)
paths = [p for p in rest.split(b"\0")]
if paths and paths[-1] == b"":
    paths.pop()
open(sys.argv[1] + ".paths", "wb").write(b"".join(p + b"\n" for p in paths))
EOF
	return "$rc"
}

# is_all OUT: the answer in OUT was "/".
is_all() {
	[ "$(cat "$1.paths")" = / ]
}

# expect_has LABEL OUT PATH...: the answer lists each PATH.
expect_has() {
	local label=$1 out=$2 p
	shift 2
	for p in "$@"; do
		if ! grep -qxF -- "$p" "$out.paths"; then
			fail "$label: '$p' not listed: $(tr '\n' ' ' <"$out.paths")"
			return
		fi
	done
	pass "$label: lists $*"
}

# expect_clean LABEL OUT: no path outside the work tree, none in .git.
expect_clean() {
	if grep -E '^/.|^\.\.(/|$)|(^|/)\.\.(/|$)|(^|/)\.git(/|$)' "$2.paths"; then
		fail "$1: a path outside the work tree or in .git is listed"
	else
		pass "$1: nothing outside the work tree, nothing in .git"
	fi
}

# u COMMAND...: COMMAND as the user section 3 runs as (RUNAS, a setpriv
# command line; empty: root).
RUNAS=()
u() {
	"${RUNAS[@]}" "$@"
}

# wrap DIR: a hook for core.fsmonitor that keeps each answer in DIR.answer
wrap() {
	cat >"$1.hook" <<EOF
#!/bin/sh
"$HOOK" -v "\$@" >"$1.answer.tmp" 2>>"$1.why"
rc=\$?
cat "$1.answer.tmp"
cat "$1.answer.tmp" >>"$1.answers"
printf '\\n--\\n' >>"$1.answers"
if [ "\$(tail -c 3 "$1.answer.tmp" | od -An -c | tr -d ' ')" = '\\0/\\0' ]; then
	echo all >>"$1.kinds"
else
	echo exact >>"$1.kinds"
fi
exit \$rc
EOF
	chmod +x "$1.hook"
}

# round_check NAME DIR K: compare git status with the hook and without it
# (core.fsmonitor=false: the untracked cache, if on, checked by lstat();
# nothing written), byte for byte.  Where git without any cache says
# otherwise too, that is git's untracked cache: said, not failed.
round_check() {
	local name=$1 dir=$2 k=$3
	u git -C "$dir" status --porcelain >"$WORK/$name.with" 2>"$WORK/$name.with.err" ||
		fail "3: $name round $k: git status (with the hook) failed"
	u git -C "$dir" -c core.fsmonitor=false --no-optional-locks status \
		--porcelain >"$WORK/$name.without" 2>/dev/null ||
		fail "3: $name round $k: git status (without) failed"
	u git -C "$dir" -c core.fsmonitor=false -c core.untrackedCache=false \
		--no-optional-locks status --porcelain >"$WORK/$name.plain" \
		2>/dev/null || fail "3: $name round $k: git status (plain) failed"
	if ! cmp -s "$WORK/$name.with" "$WORK/$name.without"; then
		fail "3: $name round $k: git status differs with the hook (< with, > without):"
		diff "$WORK/$name.with" "$WORK/$name.without" | head -20 >&2
		echo "--- the changes of this round:" >&2
		cat "$WORK/$name.churn" >&2
		echo "--- the hook's last answer:" >&2
		tr '\0' '\n' <"$WORK/hooks/$name.answer.tmp" | head -40 >&2
		echo "--- without the untracked cache either:" >&2
		diff "$WORK/$name.without" "$WORK/$name.plain" >&2 &&
			echo "(the same)" >&2
		[ -z "${FSMON_KEEP:-}" ] || cp -a "$dir" "$FSMON_KEEP/$name"
		return 1
	fi
	cmp -s "$WORK/$name.with" "$WORK/$name.plain" ||
		log "note: $name round $k: git's untracked cache (without the hook too) differs from no cache: $(diff "$WORK/$name.with" "$WORK/$name.plain" | grep '^[<>]' | head -3 | tr '\n' ' ')"
}

# --- 1. the protocol ------------------------------------------------------
R=$MNT/repo
mkdir -p "$R/dir"
git -C "$R" init -q
echo a >"$R/dir/a"
git -C "$R" add dir/a
git -C "$R" commit -qm init
hook "$R" "" "$WORK/h0" || fail "1: hook 2 '' exited $?"
if is_all "$WORK/h0" && grep -q '^fsm1:' "$WORK/h0.token"; then
	pass "1: an empty token: '/' and a token of ours"
else
	fail "1: an empty token: $(tr '\0' ' ' <"$WORK/h0.raw")"
fi
hook "$R" 1796140364722179479 "$WORK/h1" || fail "1: hook exited $?"
is_all "$WORK/h1" || fail "1: git's first token (a time) is not answered '/'"
hook "$R" "fsm1:0000000000000000:-:fst1:0123456789abcdef:1:2" "$WORK/h1b"
is_all "$WORK/h1b" || fail "1: a token of another work tree is not answered '/'"
T1=$(cat "$WORK/h1.token")
echo new >"$R/dir/new"
mkdir -p "$R/n1/n2"
echo deep >"$R/n1/n2/f"
mv "$R/dir/a" "$R/dir/a2"
echo outside >"$MNT/outside"
echo junk >"$R/.git/junk"
hook "$R" "$T1" "$WORK/h2" || fail "1: hook 2 T1 exited $?"
T2=$(cat "$WORK/h2.token")
if is_all "$WORK/h2"; then
	fail "1: since T1: '/' ($(cat "$WORK/h2.err"))"
else
	expect_has "1: since T1" "$WORK/h2" dir/new n1/n2/f dir/a dir/a2
	[ "$T2" != "$T1" ] || fail "1: the token did not move"
fi
expect_clean "1: since T1" "$WORK/h2"
hook "$R" "$T2" "$WORK/h3" || fail "1: hook 2 T2 exited $?"
if [ -s "$WORK/h3.paths" ]; then
	fail "1: nothing changed since T2, listed: $(tr '\n' ' ' <"$WORK/h3.paths")"
else
	pass "1: nothing changed since T2: nothing listed"
fi
T3=$(cat "$WORK/h3.token")
rc=0
(cd "$R" && "$HOOK" 1 123 >/dev/null 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "1: version 1 accepted"

# --- 2. not answerable ----------------------------------------------------
stop_daemon || fail "2: fstrackd stop exited non-zero"
hook "$R" "$T3" "$WORK/h4" || fail "2: hook with fstrackd stopped exited $?"
if is_all "$WORK/h4" && [ "$(cat "$WORK/h4.token")" = "$T3" ]; then
	pass "2: fstrackd stopped: '/' and the same token"
else
	fail "2: fstrackd stopped: $(tr '\0' ' ' <"$WORK/h4.raw")"
fi
echo while-down >"$R/n1/n2/down"
start_daemon -c "$WORK/margin0.conf" "$MNT"
hook "$R" "$T3" "$WORK/h5" || fail "2: hook after the restart exited $?"
if is_all "$WORK/h5"; then
	fail "2: after the restart: '/' ($(cat "$WORK/h5.err"))"
else
	expect_has "2: after the restart, since the token" "$WORK/h5" \
		n1/n2/down
fi
T5=$(cat "$WORK/h5.token")
hook "$R" "$T5" "$WORK/h5b"
[ ! -s "$WORK/h5b.paths" ] || fail "2: the answer after the restart's: listed $(tr '\n' ' ' <"$WORK/h5b.paths")"
mkdir -p "$WORK/untracked"
mount -t tmpfs fsmon-untracked "$WORK/untracked"
MOUNTS+=("$WORK/untracked")
git -C "$WORK/untracked" init -q
hook "$WORK/untracked" "" "$WORK/h6a"
T6=$(cat "$WORK/h6a.token")
hook "$WORK/untracked" "$T6" "$WORK/h6"
is_all "$WORK/h6" || fail "2: a work tree on an untracked filesystem: not '/'"
mkdir -p "$R/mnt-below"
mount -t tmpfs fsmon-below "$R/mnt-below"
MOUNTS+=("$R/mnt-below")
hook "$R" "$T5" "$WORK/h7"
is_all "$WORK/h7" || fail "2: an untracked filesystem mounted below: not '/'"
umount "$R/mnt-below"
unset 'MOUNTS[-1]'
rmdir "$R/mnt-below"
pass "2: untracked filesystems: '/'"

# --- 2b. a gap, a prune ----------------------------------------------------
# The events of a change lost (the queue overflows: async, bounded, the
# daemon stopped meanwhile), or its record pruned, then a command that
# takes the hook's "/" and writes the index without reading directories:
# git status must still see the change (fstrackd rescans after the gap; after
# the prune, the next answer makes git read every directory again).
stop_daemon || fail "2b: fstrackd stop exited non-zero"
start_daemon --durability async --bounded-queue "$MNT"
G=$MNT/gap
mkdir -p "$G/doc" "$MNT/flood"
git -C "$G" init -q
echo a >"$G/doc/a"
git -C "$G" add doc
git -C "$G" commit -qm gap
wrap "$WORK/hooks/gap"
git -C "$G" config core.fsmonitor "$WORK/hooks/gap.hook"
git -C "$G" config core.untrackedCache true
: >"$WORK/hooks/gap.kinds"
for k in 1 2 3; do
	round_check gap "$G" "before the gap $k" || true
done
kill -STOP "$DAEMON_PID"
"$PY" -c '
import os, sys
for i in range(20000):
    os.close(os.open(os.path.join(sys.argv[1], "f%05d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
' "$MNT/flood"
echo lost >"$G/doc/lost-untracked"
kill -CONT "$DAEMON_PID"
git -C "$G" add -u
if [ "$(tail -n 1 "$WORK/hooks/gap.kinds")" = all ]; then
	pass "2b: after the gap: '/'"
else
	fail "2b: after the gap: not '/' ($(tail -n 1 "$WORK/hooks/gap.why" 2>/dev/null))"
fi
echo "a gap, git add -u" >"$WORK/gap.churn"
if round_check gap "$G" "after the gap and git add -u" &&
	grep -q 'lost-untracked' "$WORK/gap.with"; then
	pass "2b: after the gap and git add -u: git status sees the lost change"
fi
rm -rf "$MNT/flood"
stop_daemon || fail "2b: fstrackd stop exited non-zero"
start_daemon "$MNT"
# The same with the history pruned: nothing recorded says what changed.
round_check gap "$G" "before the prune" || true
echo pruned >"$G/doc/pruned-untracked"
S=$(fst snapshot | tail -n 1)
fst prune --before "$S" >/dev/null || fail "2b: fstrack prune failed"
git -C "$G" add -u
[ "$(tail -n 1 "$WORK/hooks/gap.kinds")" = all ] ||
	fail "2b: after the prune: not '/'"
echo "a prune, git add -u" >"$WORK/gap.churn"
if round_check gap "$G" "after the prune and git add -u" &&
	grep -q 'pruned-untracked' "$WORK/gap.with"; then
	pass "2b: after the prune and git add -u: git status sees the change"
fi

# --- 3. random rounds -----------------------------------------------------
# step NAME DIR WHAT COMMAND...: a change (in DIR, as the user), then
# round_check.
step() {
	local name=$1 dir=$2 what=$3
	shift 3
	u sh -c 'cd "$1" && shift && "$@"' sh "$dir" "$@"
	echo "$what" >"$WORK/$name.churn"
	round_check "$name" "$dir" "$what"
}

# stale NAME DIR: directories made again, and moved in, at paths whose
# untracked files git read before (git keeps a record per directory).
stale() {
	local n=$1 d=$2 bad=0
	u sh -c 'cd "$1" && mkdir -p S/sub S2/sub M/deep/er && echo u >S/sub/u &&
		echo v >M/deep/er/v && echo t >S2/sub/t' sh "$d"
	u git -C "$d" add S2
	step "$n" "$d" "read S, M" true || bad=1
	step "$n" "$d" "mv S S.old; mkdir -p S/sub" \
		sh -c 'mv S S.old && mkdir -p S/sub' || bad=1
	step "$n" "$d" "rm -rf S.old" rm -rf S.old || bad=1
	step "$n" "$d" "mkdir -p N/deep/er" mkdir -p N/deep/er || bad=1
	step "$n" "$d" "mv M M.old; mv N M (empty directories where files were)" \
		sh -c 'mv M M.old && mv N M' || bad=1
	step "$n" "$d" "mv S2 T2; mkdir -p S2/sub (tracked files gone)" \
		sh -c 'mv S2 T2 && mkdir -p S2/sub' || bad=1
	step "$n" "$d" "mv T2 S2.x; mv S2.x/sub S2/sub/in" \
		sh -c 'mv T2 S2.x && mv S2.x/sub S2/sub/in' || bad=1
	step "$n" "$d" "chmod 0 S2/sub/in" chmod 0 S2/sub/in || bad=1
	step "$n" "$d" "chmod 755 S2/sub/in" chmod 755 S2/sub/in || bad=1
	step "$n" "$d" "mkdir -p doc/fresh/deeper; a file in it" \
		sh -c 'mkdir -p doc/fresh/deeper && echo f >doc/fresh/deeper/f' ||
		bad=1
	[ "$bad" -ne 0 ] ||
		pass "3: $n: directories made again or moved in where git read others"
	u rm -rf "$d/S" "$d/S2" "$d/S2.x" "$d/M" "$d/M.old"
	u git -C "$d" add -A
	u git -C "$d" commit -qm stale >/dev/null || true
}

# copied NAME DIR: a copy of the repository (index, untracked cache and
# token with it) changed before git runs in it, then a command that takes
# the hook's "/" (a token of another tree) and writes the index without
# reading directories (git add -u): git status must still see the change.
copied() {
	local n=$1 d=$2 c=$2-copy
	u cp -a "$d" "$c"
	u sh -c 'echo new >"$1/doc/copied-untracked"' sh "$c"
	u git -C "$c" add -u
	if step "$n" "$c" "a copy, changed, git add -u" true; then
		pass "3: $n: a copy of the repository, changed before git ran there"
	fi
	u rm -rf "$c"
}

# rounds NAME MODE [PARENT]: a repository PARENT/NAME ($MNT/NAME) made by
# the user (RUNAS),
# untracked files shown MODE, the hook through a wrapper (wrap) with its
# logs in $WORK/hooks (the user writes them); stale, copied, then ROUNDS
# random rounds, each checked.
rounds() {
	local name=$1 mode=$2 dir=${3:-$MNT}/$1 k bad=0 exact all
	local logs=$WORK/hooks/$1
	u mkdir -p "$dir"
	u git -C "$dir" init -q
	u "$PY" "$CHURN" init "$dir" "$SEED$mode" >/dev/null
	u git -C "$dir" add -A
	u git -C "$dir" commit -qm init
	wrap "$logs"
	u git -C "$dir" config core.fsmonitor "$logs.hook"
	u git -C "$dir" config core.untrackedCache true
	u git -C "$dir" config status.showUntrackedFiles "$mode"
	u sh -c ': >"$1.kinds"' sh "$logs"
	# kinds are per snapshot: the rows of the rounds must not all carry
	# "created" from the making of the tree (a snapshot every 10 rounds)
	fst snapshot >/dev/null || fail "3: $name: fstrack snapshot failed"
	round_check "$name" "$dir" 0 || true
	stale "$name" "$dir"
	copied "$name" "$dir"
	for ((k = 1; k <= ROUNDS; k++)); do
		u "$PY" "$CHURN" round "$dir" "$SEED$mode$k" $((RANDOM % 6 + 1)) \
			>"$WORK/$name.churn" || hard_error "gitchurn.py failed"
		# git commands that take the hook's answer without reading
		# directories, and write the index (and the token) all the same
		case $((RANDOM % 8)) in
		0) u git -C "$dir" add -A && echo "git add -A" >>"$WORK/$name.churn" ;;
		1) u git -C "$dir" commit -qam "round $k" >/dev/null 2>&1 &&
			echo "git commit -a" >>"$WORK/$name.churn" ;;
		2) u git -C "$dir" diff --quiet >/dev/null 2>&1 || true
			echo "git diff" >>"$WORK/$name.churn" ;;
		3) u git -C "$dir" add -u && echo "git add -u" >>"$WORK/$name.churn" ;;
		4) u git -C "$dir" rm -r -q --cached src >/dev/null 2>&1 &&
			echo "git rm --cached src" >>"$WORK/$name.churn" ;;
		esac
		round_check "$name" "$dir" "$k" || bad=$((bad + 1))
		[ $((k % 10)) -ne 0 ] || fst snapshot >/dev/null ||
			fail "3: $name: fstrack snapshot failed"
		# and once more with nothing changed
		if [ $((k % 5)) -eq 0 ]; then
			round_check "$name" "$dir" "$k (again)" || bad=$((bad + 1))
		fi
	done
	exact=$(grep -c exact "$logs.kinds" || true)
	all=$(grep -c all "$logs.kinds" || true)
	log "$name: $exact exact answers, $all '/'"
	[ "$bad" -eq 0 ] && pass "3: $name: $ROUNDS rounds, git status the same with the hook"
	if [ "$exact" -lt $((ROUNDS / 2)) ]; then
		fail "3: $name: only $exact exact answers of $((exact + all)): the rounds prove little"
	fi
}

# root reads the database itself
rounds r-normal normal
rounds r-all all
# root through the socket, as everybody else: the daemon answers
FSTRACK_VIA_SOCKET=1 rounds r-socket all
# --- 4. an ordinary user ----------------------------------------------------
# The repository's owner runs git, the hook and the changes, without root:
# the daemon answers, judging every row by the user's permissions.
if command -v useradd >/dev/null 2>&1 && command -v setpriv >/dev/null 2>&1; then
	FSU=fstfsm$$
	useradd -M -N -g nogroup -s /usr/sbin/nologin "$FSU" ||
		hard_error "useradd $FSU failed"
	trap 'rc=$?; set +e; userdel -f "$FSU" 2>/dev/null; (exit $rc); cleanup' EXIT
	chmod 0755 "$WORK" "$WORK/run" "$HOME"
	mkdir -p "$WORK/bin"
	cp "$HOOK" "$CHURN" "$WORK/bin/"
	chmod 0755 "$WORK/bin" "$WORK/bin/"*
	HOOK=$WORK/bin/${HOOK##*/}
	CHURN=$WORK/bin/${CHURN##*/}
	mkdir "$MNT/home"
	chown "$FSU:nogroup" "$MNT/home"
	RUNAS=(setpriv --reuid="$FSU" --regid=nogroup --clear-groups --)
	rounds r-user normal "$MNT/home"
	RUNAS=()
else
	fail "4: no useradd or setpriv: the hook was not run as an ordinary user"
fi
finish

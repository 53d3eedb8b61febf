#!/bin/bash
# git-status.sh -- `git status` in a 78k-file work tree with fstrack-fsmonitor
# against plain git, in the same run.
#
# The linux-source-6.1 tree (78,579 files, 5,096 directories) extracted
# onto a loop ext4 tracked by a strict fstrackd (its state on a loop ext4
# of its own), Debian's "ignore the top level" taken out of its .gitignore,
# `git init`, one commit of everything.  Three variants, each
# with an index of its own (GIT_INDEX_FILE, a copy of the committed one):
#	plain	core.fsmonitor=false, core.untrackedCache=false
#	uc	core.untrackedCache=true (git's stat-based untracked cache)
#	fsmon	core.untrackedCache=true, core.fsmonitor=fstrack-fsmonitor
# After three warm-up runs of each (the hook's first answer is "/", its
# second makes git read every directory again),
# REPEATS rounds, the variants in rotating order, each timed (wall clock,
# page cache warm) in each scenario:
#	idle	nothing changed since the variant's last status
#	touch	one tracked file appended to, one untracked file made, just
#		before
#	commit	a tracked file changed and committed (git writes objects:
#		fstrackd searches for the names of hard-linked files, which
#		the hook waits for) just before
# Per variant and scenario: the median, min and max in milliseconds, and
# the ratio of the median to plain's; and the hook alone (fstrack-fsmonitor
# 2 TOKEN, nothing changed), its median over HOOK_N calls.
#
#	sudo bench/git-status.sh
#	sudo REPEATS=9 SCENARIOS=idle bench/git-status.sh
#
# git writes objects with core.createObject=link (CREATE_OBJECT, git's
# default: a temporary name, a link, an unlink; fstrackd needs no search
# for such a file, notify.c YOUNG FILES) or rename; the run waits for
# "ready" after the first commit either way and prints how long it took.
#
# Environment: REPEATS (7), SCENARIOS ("idle touch commit"), HOOK_N (50),
# CREATE_OBJECT (rename|link), GIT (the git to run, default git on PATH).

. "$(dirname "$0")/common.sh"
REPEATS=${REPEATS:-7}
bench_init "$@"

SCENARIOS=${SCENARIOS:-idle touch commit}
check_words "$SCENARIOS" scenario idle touch commit
HOOK_N=${HOOK_N:-50}
CREATE_OBJECT=${CREATE_OBJECT:-link}
check_words "$CREATE_OBJECT" CREATE_OBJECT rename link
GIT=${GIT:-git}
HOOK=${HOOK:-$TOP/fstrack-fsmonitor}
[ -x "$HOOK" ] || die "$HOOK not built (make first)"
cp "$HOOK" "$WORK/bin/" && HOOK=$WORK/bin/${HOOK##*/}
command -v "$GIT" >/dev/null || die "no git"
VARIANTS="plain uc fsmon"
MNT=$WORK/mnt
STATEDIR=$WORK/state
R=$MNT/linux
RES=$WORK/results
: >"$RES"
export HOME=$WORK GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b \
	GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
export FSTRACK_SOCKET=$SOCK

ensure_linux_tar
make_loop_ext4 tree 6G "$MNT"
make_loop_ext4 state 512M "$STATEDIR"
start_daemon "$STATEDIR" "$MNT" || die "fstrackd did not start"
msg "extracting the linux tree, git init, add, commit"
mkdir -p "$R"
t0=$(now)
timeout 900 tar -xf "$LINUX_TAR" -C "$R" --strip-components=1 ||
	die "tar failed"
nfiles=$(find "$R" -type f | wc -l)
ndirs=$(find "$R" -type d | wc -l)
# Debian's copy ignores its whole top level ("/*"): the upstream rules
sed -i '/^# Debian packaging/,$d' "$R/.gitignore"
"$GIT" -C "$R" init -q
"$GIT" -C "$R" config core.createObject "$CREATE_OBJECT"
timeout 1800 "$GIT" -C "$R" add -A >"$WORK/add.log" 2>&1 ||
	die "git add failed: $(tail -n 5 "$WORK/add.log")"
timeout 900 "$GIT" -C "$R" commit -q -m linux >"$WORK/commit.log" 2>&1 ||
	die "git commit failed ($?): $(tail -n 5 "$WORK/commit.log")"
msg "$nfiles files, $ndirs directories, committed in $(elapsed "$t0") s"
# link(): fstrackd searches for the other names of each object written
t0=$(now)
n=0
while [ "$(status_get state)" != ready ]; do
	n=$((n + 1))
	[ "$n" -lt 3600 ] || die "fstrackd still not ready after an hour"
	sleep 1
done
msg "fstrackd ready $(elapsed "$t0") s after the commit"

# gitv VARIANT ARGS...: git with the variant's index and configuration.
gitv() {
	local v=$1
	shift
	case $v in
	plain) GIT_INDEX_FILE=$R/.git/index-$v "$GIT" -C "$R" \
		-c core.fsmonitor=false -c core.untrackedCache=false "$@" ;;
	uc) GIT_INDEX_FILE=$R/.git/index-$v "$GIT" -C "$R" \
		-c core.fsmonitor=false -c core.untrackedCache=true "$@" ;;
	fsmon) GIT_INDEX_FILE=$R/.git/index-$v "$GIT" -C "$R" \
		-c core.fsmonitor="$HOOK" -c core.untrackedCache=true "$@" ;;
	esac
}

# timed VARIANT: one git status, its milliseconds on stdout.
timed() {
	local t
	t=$(now)
	gitv "$1" status >/dev/null 2>"$WORK/status.err" ||
		die "git status ($1) failed: $(cat "$WORK/status.err")"
	awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'
}

# change SCENARIO VARIANT ROUND: what the scenario does before the status.
change() {
	case $1 in
	idle) ;;
	touch)
		echo "$2 $3" >>"$R/README"
		echo x >"$R/untracked-$2-$3"
		;;
	commit)
		echo "$2 $3" >>"$R/MAINTAINERS"
		gitv "$2" commit -q -m "$2 $3" MAINTAINERS >/dev/null ||
			die "git commit ($2) failed"
		;;
	esac
}

for v in $VARIANTS; do
	cp "$R/.git/index" "$R/.git/index-$v"
	for i in 1 2 3; do
		timed "$v" >/dev/null
	done
done
rot=0
for ((k = 1; k <= REPEATS; k++)); do
	msg "round $k of $REPEATS"
	for s in $SCENARIOS; do
		set -- $VARIANTS
		for ((i = 0; i < rot; i++)); do set -- "$@" "$1"; shift; done
		for v in "$@"; do
			change "$s" "$v" "$k"
			echo "$v $s $(timed "$v")" >>"$RES"
		done
		rot=$(((rot + 1) % 3))
	done
done

# the hook alone, nothing changed (its second answer reads every directory)
(cd "$R" && "$HOOK" 2 first >"$WORK/answer")
for ((i = 0; i < HOOK_N + 1; i++)); do
	tok=$(head -z -n 1 "$WORK/answer" | tr -d '\0')
	t=$(now)
	(cd "$R" && "$HOOK" 2 "$tok" >"$WORK/answer")
	[ "$i" -eq 0 ] ||
		awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.2f\n", (b - a) * 1000 }'
done >"$WORK/hook.ms"

echo "git status, $nfiles files and $ndirs directories on a tracked ext4," \
	"warm cache, $REPEATS rounds, core.createObject=$CREATE_OBJECT"
printf '%-8s %-8s %9s %9s %9s %9s\n' scenario variant median_ms min_ms \
	max_ms vs_plain
for s in $SCENARIOS; do
	awk -v s="$s" '$2 == s && $1 == "plain" { print $3 }' "$RES" >"$WORK/p"
	read -r pm _ <<<"$(stats "$WORK/p")"
	for v in $VARIANTS; do
		awk -v s="$s" -v v="$v" '$2 == s && $1 == v { print $3 }' "$RES" \
			>"$WORK/x"
		read -r m lo hi _ <<<"$(stats "$WORK/x")"
		printf '%-8s %-8s %9s %9s %9s %9s\n' "$s" "$v" "$m" "$lo" "$hi" \
			"$(ratio "$m" "$pm")"
	done
done
read -r m lo hi n <<<"$(stats "$WORK/hook.ms")"
echo "fstrack-fsmonitor alone (nothing changed): median $m ms (min $lo, max $hi, $n calls)"

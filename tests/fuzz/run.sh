#!/bin/sh
# run.sh -- `make fuzz`: build every fuzz target with clang, libFuzzer,
# ASan and UBSan, run each for FUZZ_SECONDS, and print libFuzzer's
# summary of each run.
#
# make passes: FUZZ_CC, srcdir, FUZZ_CPPFLAGS, FUZZ_LIBS, the source lists
# FUZZ_DAEMON_SRCS, FUZZ_COMMON_SRCS, FUZZ_CLIENT_SRCS (automake's lists of
# the three libraries), FUZZ_SECONDS, FUZZ_TARGETS and FUZZ_OPTIONS (more
# libFuzzer options, e.g. -jobs=2).  Everything it makes is under
# tests/fuzz/build (objects, targets) and tests/fuzz/work/TARGET (the
# corpus it grew, crashes as crash-*, the whole log as TARGET.log); the
# committed seed corpus tests/fuzz/corpus/TARGET is only read.
#
# Exit status: 0 if every target ran its time without a finding.
set -u

: "${FUZZ_SECONDS:=60}"
: "${FUZZ_TARGETS:=event control reply config plan}"
: "${FUZZ_OPTIONS:=}"
b=tests/fuzz/build
sanflags="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cflags="-g -O1 -fno-omit-frame-pointer -std=gnu11 -pthread $sanflags"
cflags="$cflags -Wall -Wextra -Wno-unused-parameter"

say() { printf '==> %s\n' "$*"; }

# Files compiled without coverage feedback (still with the sanitizers):
# no target tests them, and dircache.c clears its 262144 buckets at every
# snapshot, which instrumented took most of fuzz-control's time.
nocov="dircache.c"

# Compile src into obj unless obj is newer than it and than every header.
compile() {
	src=$1 obj=$2
	if [ -f "$obj" ] && [ "$obj" -nt "$src" ] && [ "$obj" -nt "$0" ]; then
		stale=$(find "$srcdir/src" "$srcdir/tests/fuzz" config.h \
			-name '*.h' -newer "$obj" 2>/dev/null | head -n 1)
		[ -z "$stale" ] && return 0
	fi
	cov=-fsanitize=fuzzer-no-link
	case " $nocov " in *" $(basename "$src") "*) cov= ;; esac
	echo "  FUZZCC   $obj"
	$FUZZ_CC $cflags $cov $FUZZ_CPPFLAGS -c "$src" -o "$obj" || exit 1
}

# Build an instrumented archive lib from the .c files of a source list.
library() {
	lib=$1
	shift
	mkdir -p "$b/$lib"
	objs=
	for s in "$@"; do
		case $s in *.c) ;; *) continue ;; esac
		o=$b/$lib/$(basename "$s" .c).o
		compile "$srcdir/$s" "$o"
		objs="$objs $o"
	done
	rm -f "$b/$lib.a"
	ar cr "$b/$lib.a" $objs && ranlib "$b/$lib.a" || exit 1
}

# Link fuzz target t from its harness files and libraries.
target() {
	t=$1
	shift
	objs=
	for s in $(eval echo "\$harness_$t"); do
		o=$b/harness/$(basename "$s" .c).o
		mkdir -p "$b/harness"
		compile "$srcdir/tests/fuzz/$s" "$o"
		objs="$objs $o"
	done
	echo "  FUZZLD   $b/fuzz-$t"
	$FUZZ_CC $cflags -fsanitize=fuzzer -o "$b/fuzz-$t" $objs "$@" \
		$FUZZ_LIBS || exit 1
}

harness_event="fuzz_event.c"
harness_control="fuzz_control.c fuzz_daemon.c"
harness_reply="fuzz_reply.c"
harness_config="fuzz_config.c"
harness_plan="fuzz_plan.c"

say "building the fuzz targets with $FUZZ_CC (libFuzzer, ASan, UBSan)"
mkdir -p "$b"
library fuzzd $FUZZ_DAEMON_SRCS
library fuzzcommon $FUZZ_COMMON_SRCS
library fuzzclient $FUZZ_CLIENT_SRCS
target event "$b/fuzzd.a" "$b/fuzzcommon.a"
target control "$b/fuzzd.a" "$b/fuzzcommon.a"
target reply "$b/fuzzclient.a" "$b/fuzzcommon.a"
target config "$b/fuzzd.a" "$b/fuzzcommon.a"
target plan "$b/fuzzclient.a" "$b/fuzzcommon.a"

rc=0
for t in $FUZZ_TARGETS; do
	w=tests/fuzz/work/$t
	mkdir -p "$w/corpus"
	# Lines past PROTO_MAX_LINE need inputs over 4 KiB.  The config
	# parser logs every error and the reply parser every "waiting" line:
	# their output is dropped (libFuzzer's and the sanitizers' is kept).
	case $t in
	control) opts="-max_len=8192" ;;
	reply) opts="-max_len=8192 -close_fd_mask=2" ;;
	config) opts="-max_len=4096 -close_fd_mask=2" ;;
	plan) opts="-max_len=8192" ;;
	*) opts="-max_len=4096" ;;
	esac
	[ -f "$srcdir/tests/fuzz/$t.dict" ] &&
		opts="$opts -dict=$srcdir/tests/fuzz/$t.dict"
	say "fuzz-$t: $FUZZ_SECONDS s (log: $w.log)"
	"$b/fuzz-$t" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
		-timeout=30 -artifact_prefix="$w/" $opts $FUZZ_OPTIONS \
		"$w/corpus" "$srcdir/tests/fuzz/corpus/$t" >"$w.log" 2>&1
	st=$?
	# libFuzzer's last status line and its final statistics
	grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
		"$w.log" | sed "s/^/fuzz-$t: /"
	if [ "$st" -ne 0 ]; then
		echo "fuzz-$t: FINDING (exit $st); the end of $w.log:"
		tail -n 40 "$w.log"
		ls "$w"/crash-* "$w"/leak-* "$w"/timeout-* "$w"/oom-* 2>/dev/null
		rc=1
	fi
done
exit $rc

#!/bin/bash
# positions.sh -- what a position costs against a snapshot, in the same run.
#
# One loop ext4 with a tree of NDIRS directories (NFILES files each),
# tracked by a strict fstrackd whose state dir is on its own loop ext4 by
# default (STATE_FS=ext4: a durable commit costs a real fsync; tmpfs makes
# snapshots look cheaper than they are).  Every round, in rotating order,
# each variant is run N times in a row:
#	position	fstrack position
#	changed		fstrack changed --since P --position-file F (the
#			answer a poller or a git hook asks for: a barrier with
#			its walk of /proc, a position, the query), P the last
#			position
#	snapshot	fstrack snapshot
#	poll		what fstrack changed --follow asks between its walks of
#			/proc: "barrier P position noscan" (socket only; the
#			query that follows is left out)
# and then, ROUNDS_AFTER times, the variant once followed by an append of
# one byte to a file in each directory: after a snapshot every directory's
# first write-open is held again until its record is durable (the
# permission state starts afresh); after a position nothing is held.
# Per variant: milliseconds per operation (client wall time, with the
# start of an fstrack process each time), the same on the socket from one
# process (the request alone: "position", "barrier P position",
# "snapshot"), daemon CPU per operation (all its threads, from schedstat),
# durable commits (fsyncs) per operation, database growth per operation,
# snapshots made, and the time of the appends after one operation; then
# the ratios against position (medians of the rounds).
#
#	sudo bench/positions.sh
#	sudo REPEATS=5 N=500 bench/positions.sh
#
# Environment: REPEATS (3), N (200), ROUNDS_AFTER (10), NDIRS (100),
# NFILES (10), STATE_FS (ext4|tmpfs, default ext4), VARIANTS
# ("position changed snapshot").

. "$(dirname "$0")/common.sh"
bench_init "$@"

N=${N:-200}
ROUNDS_AFTER=${ROUNDS_AFTER:-10}
NDIRS=${NDIRS:-100}
NFILES=${NFILES:-10}
STATE_FS=${STATE_FS:-ext4}
VARIANTS=${VARIANTS:-position poll changed snapshot}
check_words "$VARIANTS" variant position poll changed snapshot
check_words "$STATE_FS" STATE_FS ext4 tmpfs
MNT=$WORK/mnt
STATEDIR=$WORK/state
RES=$WORK/results
: >"$RES"

make_loop_ext4 tree 1G "$MNT"
if [ "$STATE_FS" = ext4 ]; then
	make_loop_ext4 state 512M "$STATEDIR"
else
	make_tmpfs "$STATEDIR" 512m
fi
msg "making $NDIRS directories of $NFILES files"
for ((d = 0; d < NDIRS; d++)); do
	mkdir -p "$MNT/tree/d$d"
	for ((f = 0; f < NFILES; f++)); do
		echo "$d $f" >"$MNT/tree/d$d/f$f"
	done
done
sync
start_daemon "$STATEDIR" --durability strict "$MNT" || die "fstrackd did not start"
P=$(fst position) || die "fstrack position failed"
fst changed --since "$P" >/dev/null || die "the first barrier failed"

# db_bytes: the database and its WAL.
db_bytes() {
	local n=0 f
	for f in "$STATEDIR/fstrack.db" "$STATEDIR/fstrack.db-wal"; do
		[ -e "$f" ] && n=$((n + $(stat -c %s "$f")))
	done
	echo "$n"
}

# daemon_cpu: CPU seconds of every thread of the daemon (schedstat, ns).
daemon_cpu() {
	cat /proc/"$DAEMON_PID"/task/*/schedstat 2>/dev/null |
		awk '{ s += $1 } END { printf "%.6f", s / 1e9 }'
}

# sock_loop VARIANT N: N requests of VARIANT on the socket from one process
# (no fstrack started per request); prints the seconds they took.
sock_loop() {
	"$PY" - "$SOCK" "$1" "$2" "$P" <<'PYEOF'
import socket, sys, time
path, variant, n, pos = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def ask(line):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(line.encode() + b"\n")
    buf = b""
    while not (buf.endswith(b"OK\n") or b"\nERR " in buf or buf.startswith(b"ERR ")):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    if not buf.endswith(b"OK\n"):
        sys.exit("%s: %r" % (line, buf))
    return buf.decode()
t0 = time.monotonic()
for i in range(n):
    if variant == "position":
        ask("position")
    elif variant in ("changed", "poll"):
        r = ask("barrier %s position%s" % (pos, " noscan" if variant == "poll" else ""))
        pos = [l.split("\t")[1] for l in r.splitlines() if l.startswith("position\t")][0]
    else:
        ask("snapshot")
print("%.6f" % (time.monotonic() - t0))
PYEOF
}

# one VARIANT: one operation of VARIANT.
one() {
	case $1 in
	position) "$FSTRACK" -s "$SOCK" position >/dev/null ;;
	changed)
		"$FSTRACK" -s "$SOCK" changed --since "$P" \
			--position-file "$WORK/pos" >/dev/null &&
			P=$(cat "$WORK/pos")
		;;
	snapshot) "$FSTRACK" -s "$SOCK" snapshot >/dev/null ;;
	poll) "$FSTRACK" -s "$SOCK" position >/dev/null ;;	# for the appends
	esac
}

# appends: one byte appended to a file in every directory.
appends() {
	local d
	for ((d = 0; d < NDIRS; d++)); do
		echo x >>"$MNT/tree/d$d/f0"
	done
}

# measure VARIANT ROUND: N operations, then ROUNDS_AFTER operations each
# followed by the appends; a line of results.
measure() {
	local v=$1 r=$2 t0 t cpu0 cpu1 dur0 dur1 sz0 sz1 sn0 sn1 i ta=0 t1 ts
	fst status >"$WORK/st0"
	dur0=$(status_file "$WORK/st0" durable_commits)
	sn0=$(fst snapshots | wc -l)
	sz0=$(db_bytes)
	cpu0=$(daemon_cpu)
	t0=$(now)
	for ((i = 0; i < N; i++)); do
		[ "$v" = poll ] || one "$v" || die "$v failed"
	done
	t=$(elapsed "$t0")
	[ "$v" != poll ] || t=-
	ts=$(sock_loop "$v" "$N") || die "$v on the socket failed"
	cpu1=$(daemon_cpu)
	fst status >"$WORK/st1"
	dur1=$(status_file "$WORK/st1" durable_commits)
	sn1=$(fst snapshots | wc -l)
	sz1=$(db_bytes)
	for ((i = 0; i < ROUNDS_AFTER; i++)); do
		one "$v" || die "$v failed"
		t1=$(now)
		appends
		ta=$(awk -v a="$ta" -v b="$(elapsed "$t1")" 'BEGIN { print a + b }')
	done
	echo "$v $r $(awk -v t="$t" -v n="$N" 'BEGIN { if (t == "-") print "-"; else printf "%.3f", t * 1000 / n }') \
$(awk -v t="$ts" -v n="$N" 'BEGIN { printf "%.3f", t * 1000 / n }') \
$(awk -v a="$cpu0" -v b="$cpu1" -v n="$N" -v k=$([ "$v" = poll ] && echo 1 || echo 2) 'BEGIN { printf "%.3f", (b - a) * 1000 / n / k }') \
$(awk -v a="$dur0" -v b="$dur1" -v n="$N" -v k=$([ "$v" = poll ] && echo 1 || echo 2) 'BEGIN { printf "%.3f", (b - a) / n / k }') \
$(awk -v a="$sz0" -v b="$sz1" -v n="$N" -v k=$([ "$v" = poll ] && echo 1 || echo 2) 'BEGIN { printf "%.1f", (b - a) / n / k }') \
$((sn1 - sn0)) \
$(awk -v t="$ta" -v n="$ROUNDS_AFTER" 'BEGIN { printf "%.2f", t * 1000 / n }')" >>"$RES"
	msg "round $r $v: $(tail -n 1 "$RES")"
}

set -- $VARIANTS
nv=$#
for ((r = 1; r <= REPEATS; r++)); do
	order=()
	for ((k = 0; k < nv; k++)); do
		i=$(((k + r - 1) % nv + 1))
		order+=("${!i}")
	done
	for v in "${order[@]}"; do
		measure "$v" "$r"
	done
done
stop_daemon

# column VARIANT K: median of field K (3..9) over the rounds of VARIANT.
column() {
	awk -v v="$1" -v k="$2" '$1 == v && $k != "-" { print $k }' "$RES" >"$WORK/col"
	stats "$WORK/col" | cut -d ' ' -f 1
}

echo "positions.sh: N=$N per variant and round, REPEATS=$REPEATS, $NDIRS dirs x $NFILES files, state on $STATE_FS, strict"
printf '%-9s %9s %9s %10s %9s %9s %9s %11s\n' variant ms/op sock_ms/op \
	cpu_ms/op fsync/op bytes/op snapshots appends_ms
for v in $VARIANTS; do
	printf '%-9s %9s %9s %10s %9s %9s %9s %11s\n' "$v" "$(column "$v" 3)" \
		"$(column "$v" 4)" "$(column "$v" 5)" "$(column "$v" 6)" \
		"$(column "$v" 7)" \
		"$(awk -v v="$v" '$1 == v { s += $8 } END { print s + 0 }' "$RES")" \
		"$(column "$v" 9)"
done
if [[ " $VARIANTS " == *" position "* ]]; then
	echo "ratios against position (medians):"
	for v in $VARIANTS; do
		[ "$v" != position ] || continue
		echo "  $v/position: time $(ratio "$(column "$v" 3)" "$(column position 3)"), on the socket $(ratio "$(column "$v" 4)" "$(column position 4)"), daemon cpu $(ratio "$(column "$v" 5)" "$(column position 5)"), appends after $(ratio "$(column "$v" 9)" "$(column position 9)")"
	done
fi
echo "raw runs (variant round ms/op sock_ms/op cpu_ms/op fsync/op bytes/op snapshots appends_ms):"
sed 's/^/  /' "$RES"

#!/bin/bash
# quickstart.sh -- build fstrack and start fstrackd on one filesystem.
#
#   sudo ./contrib/quickstart.sh [MOUNTPOINT]
#
# On a fresh Debian machine: installs the build dependencies with apt-get,
# runs `autoreconf -fi && ./configure && make`, then starts ./fstrackd in
# the background on MOUNTPOINT (the whole filesystem mounted there).  With
# no argument it makes a 256M ext4 image under /var/tmp/fstrack-scratch/,
# loop-mounts it on /var/tmp/fstrack-scratch/mnt and tracks that.
#
# Re-running is safe: packages already present are not reinstalled, an
# existing scratch image and mount are reused, and a daemon started by an
# earlier run is stopped (cleanly, SIGTERM) and started again from the fresh
# build.  Nothing is installed outside the source tree except packages.
#
# Environment (all optional):
#   FSTRACK_STATE_DIR  database directory (default /var/lib/fstrack)
#   FSTRACK_SOCKET     control socket (default /run/fstrack/fstrackd.sock)
#   FSTRACK_DURABILITY strict (default) or async
#   SKIP_DEPS=1        do not touch packages
#   SKIP_BUILD=1       use the binaries already built

set -euo pipefail

PACKAGES=(autoconf automake libtool pkg-config check libuv1-dev
	libsqlite3-dev sqlite3 rsync xfsprogs btrfs-progs mandoc e2fsprogs
	python3 inotify-tools)
SCRATCH=/var/tmp/fstrack-scratch
STATE_DIR=${FSTRACK_STATE_DIR:-/var/lib/fstrack}
SOCKET=${FSTRACK_SOCKET:-/run/fstrack/fstrackd.sock}
DURABILITY=${FSTRACK_DURABILITY:-strict}
LOG=$STATE_DIR/quickstart.log
PIDFILE=$STATE_DIR/quickstart.pid

say() { printf '==> %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 ${*:-}"
[ $# -le 1 ] || die "usage: $0 [MOUNTPOINT]"
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# ---- 1. packages -----------------------------------------------------------
install_deps() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "build dependencies already installed"
		return
	fi
	say "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
if [ "${SKIP_DEPS:-0}" = 1 ]; then say "SKIP_DEPS=1: not checking packages"; else install_deps; fi

# ---- 2. build ----------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" = 1 ]; then
	say "SKIP_BUILD=1: using the existing build"
else
	say "building: autoreconf -fi && ./configure && make"
	mkdir -p m4
	autoreconf -fi
	./configure --quiet
	make -j"$(nproc)"
fi
if [ ! -x ./fstrackd ] || [ ! -x ./fstrack ]; then die "build did not produce ./fstrackd and ./fstrack"; fi

# ---- 3. the filesystem to track ----------------------------------------------
if [ $# -eq 1 ]; then
	MNT=$(realpath -e -- "$1") || die "$1: no such directory"
	mountpoint -q -- "$MNT" ||
		die "$MNT is not a mount point; fstrackd tracks whole filesystems: give the mount point (see 'findmnt -T $MNT')"
	say "tracking the filesystem mounted on $MNT"
else
	MNT=$SCRATCH/mnt
	mkdir -p "$MNT"
	if mountpoint -q "$MNT"; then
		say "scratch filesystem already mounted on $MNT"
	else
		if [ ! -s "$SCRATCH/ext4.img" ]; then
			say "creating a 256M ext4 image $SCRATCH/ext4.img"
			truncate -s 256M "$SCRATCH/ext4.img"
			mkfs.ext4 -q -F -L fstrack-scratch "$SCRATCH/ext4.img"
		fi
		say "loop-mounting $SCRATCH/ext4.img on $MNT"
		mount -o loop "$SCRATCH/ext4.img" "$MNT"
	fi
fi

# ---- 4. (re)start the daemon ---------------------------------------------------
mkdir -p "$STATE_DIR"
chmod 0700 "$STATE_DIR"
if [ -s "$PIDFILE" ]; then
	old=$(cat "$PIDFILE")
	if [ -n "$old" ] && kill -0 "$old" 2>/dev/null &&
		grep -q fstrackd "/proc/$old/cmdline" 2>/dev/null; then
		say "stopping the fstrackd started by an earlier run (pid $old)"
		kill -TERM "$old"
		for _ in $(seq 300); do
			kill -0 "$old" 2>/dev/null || break
			sleep 0.1
		done
		! kill -0 "$old" 2>/dev/null || die "pid $old did not exit after SIGTERM; stop it and re-run"
	fi
	rm -f "$PIDFILE"
fi
if ./fstrack -s "$SOCKET" status >/dev/null 2>&1; then
	die "another fstrackd already answers on $SOCKET (a system service?); stop it, or set FSTRACK_SOCKET and FSTRACK_STATE_DIR"
fi

say "starting ./fstrackd -f on $MNT (state in $STATE_DIR, log in $LOG)"
setsid ./fstrackd -f --state-dir "$STATE_DIR" --socket "$SOCKET" \
	--durability "$DURABILITY" "$MNT" </dev/null >>"$LOG" 2>&1 &
pid=$!
echo "$pid" >"$PIDFILE"
# `fstrack status` exits 0 once every mark is in place.
ready=0
for _ in $(seq 300); do
	if ./fstrack -s "$SOCKET" status >/dev/null 2>&1; then ready=1; break; fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ "$ready" -ne 1 ]; then
	echo "---- last lines of $LOG" >&2
	tail -n 20 "$LOG" >&2 || true
	kill -0 "$pid" 2>/dev/null && kill -TERM "$pid"
	rm -f "$PIDFILE"
	die "fstrackd did not become ready"
fi

./fstrack -s "$SOCKET" status || true

cli=./fstrack
[ "$SOCKET" = /run/fstrack/fstrackd.sock ] || cli="FSTRACK_SOCKET=$SOCKET ./fstrack"
cat <<EOF

fstrackd is running (pid $pid) and tracks the filesystem on $MNT.
Try, from $top:

  N=\$(sudo $cli snapshot | tail -n 1)
  sudo mkdir -p $MNT/demo && echo hello | sudo tee $MNT/demo/hello.txt
  sudo $cli changed --since \$N
  sudo $cli changed --since \$N --dirs
  sudo $cli changed --since \$N --json
  sudo sqlite3 -readonly $STATE_DIR/fstrack.db \\
      "SELECT DISTINCT path FROM changed_dirs WHERE snapshot >= \$N"
  man -l man/fstrack.1

Log:  $LOG
Stop: sudo kill \$(cat $PIDFILE)
EOF

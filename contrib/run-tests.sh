#!/bin/bash
# run-tests.sh -- install the build dependencies, build, and run `make check`.
#
#   sudo ./contrib/run-tests.sh [MAKE-CHECK-ARGS...]
#
# The root tests need real root (they loop-mount scratch ext4, xfs, btrfs and
# tmpfs filesystems in a private mount namespace); without root they are
# skipped, not failed.  On failure the test-suite.log (which holds the log of
# every failed test) is printed and the exit status is non-zero.
#
# Environment: SKIP_DEPS=1 does not touch packages.

set -euo pipefail

PACKAGES=(autoconf automake libtool pkg-config check libuv1-dev
	libsqlite3-dev sqlite3 rsync xfsprogs btrfs-progs mandoc e2fsprogs
	python3 inotify-tools)

say() { printf '==> %s\n' "$*"; }

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "$(id -u)" -ne 0 ]; then
	say "not root: packages are not installed and the root tests will be skipped"
	SKIP_DEPS=1
fi

if [ "${SKIP_DEPS:-0}" != 1 ]; then
	missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}"
	else
		say "build dependencies already installed"
	fi
fi

say "building: autoreconf -fi && ./configure && make"
mkdir -p m4
autoreconf -fi
./configure --quiet
make -j"$(nproc)"

say "running: make check $*"
rc=0
make check "$@" || rc=$?
if [ "$rc" -ne 0 ]; then
	if [ -f test-suite.log ]; then
		echo
		say "test-suite.log:"
		cat test-suite.log
	fi
	say "make check failed (exit $rc)"
	exit "$rc"
fi
say "all tests passed"

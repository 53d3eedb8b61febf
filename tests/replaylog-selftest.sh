#!/bin/bash
# Self-test of tests/powercut/replaylog.py (no root, no guest): hand-made
# dm-log-writes logs in the kernel's format must be rebuilt into exactly the
# disks a drive that lost its write cache may hold -- everything before the
# last FLUSH, FUA writes after it, cached writes only as --keep says -- and
# `check` must refuse a log without the end mark or one that disagrees with
# the disk written through the target.
set -eu

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
W=$(mktemp -d "${TMPDIR:-/tmp}/replaylog-selftest.XXXXXX")
trap 'rm -rf "$W"' EXIT

"$PY" - "$top_srcdir/tests/powercut/replaylog.py" "$W" <<'PYEOF'
import struct
import subprocess
import sys

tool, w = sys.argv[1], sys.argv[2]
SS = 512
FLUSH, FUA, MARK = 1, 2, 8
failures = 0


def fail(msg):
    global failures
    print("FAIL: " + msg)
    failures += 1


def write_log(path, entries, end=True):
    """entries: (sector, bytes or None, flags); None = no data (a flush)."""
    body = b""
    n = 0
    for sector, data, flags in entries:
        nsec = len(data) // SS if data else 0
        body += struct.pack("<QQQQ", sector, nsec, flags, 0).ljust(SS, b"\0")
        body += data or b""
        n += 1
    if end:
        m = b"dm-log-writes-end"
        body += (struct.pack("<QQQQ", 0, 0, MARK, len(m)) + m).ljust(SS, b"\0")
        n += 1
    sup = struct.pack("<QQQI", 0x6a736677736872, 1, n, SS).ljust(SS, b"\0")
    with open(path, "wb") as f:
        f.write(sup + body)


def blk(c, n=8):
    return bytes([c]) * (SS * n)      # n sectors (8: 4 KiB)


def run(*args):
    return subprocess.run([sys.executable, tool] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def disk(path):
    return open(path, "rb").read()


base = w + "/base.img"
with open(base, "wb") as f:
    f.write(b"\0" * (SS * 64))
# a (sectors 0-7) and b (8-15) flushed; c (16-23) FUA after the flush;
# d (24-31) and e (32-39) cached; d2 (24-31) cached, rewrites d.
ents = [(0, blk(1), 0), (8, blk(2), 0), (0, None, FLUSH),
        (16, blk(3), FUA), (24, blk(4), 0), (32, blk(5), 0),
        (24, blk(6), 0)]
log = w + "/log.img"
write_log(log, ents)
final = bytearray(disk(base))
for s, d, _ in ents:
    if d:
        final[s * SS:s * SS + len(d)] = d
open(w + "/final.img", "wb").write(final)

p = run("check", "--log", log, "--base", base, "--final", w + "/final.img",
        "--out", w + "/out.img")
if p.returncode != 0:
    fail("check of a good log: %s" % p.stdout)
if disk(w + "/out.img") != bytes(final):
    fail("check: base + every write is not the final disk")

p = run("build", "--log", log, "--base", base, "--out", w + "/lost.img",
        "--keep", "0", "--seed", "1")
want = bytearray(disk(base))
for s, d in ((0, blk(1)), (8, blk(2)), (16, blk(3))):
    want[s * SS:s * SS + len(d)] = d
if p.returncode != 0 or disk(w + "/lost.img") != bytes(want):
    fail("build --keep 0: not exactly the flushed and FUA writes (%s)"
         % p.stdout)
p = run("build", "--log", log, "--base", base, "--out", w + "/kept.img",
        "--keep", "1", "--seed", "1")
if p.returncode != 0 or disk(w + "/kept.img") != bytes(final):
    fail("build --keep 1: not every write (%s)" % p.stdout)

# Half: every 4 KiB block of the cached writes is old or new, never else.
seen = set()
for seed in range(40):
    run("build", "--log", log, "--base", base, "--out", w + "/half.img",
        "--keep", "0.5", "--seed", str(seed))
    h = disk(w + "/half.img")
    if h[:SS * 24] != bytes(want[:SS * 24]):
        fail("build --keep 0.5 (seed %d) lost a durable write" % seed)
    d = h[SS * 24:SS * 32]
    e = h[SS * 32:SS * 40]
    if d not in (blk(0), blk(4), blk(6)) or e not in (blk(0), blk(5)):
        fail("build --keep 0.5 (seed %d): a block no write left" % seed)
    seen.add((d[0], e[0]))
if len(seen) < 4:
    fail("build --keep 0.5: only %d of 6 outcomes in 40 seeds" % len(seen))

# No FLUSH at all: everything is cached.
write_log(w + "/noflush.img", [(0, blk(1), 0), (8, blk(2), 0)])
p = run("build", "--log", w + "/noflush.img", "--base", base, "--out",
        w + "/nf.img", "--keep", "0", "--seed", "1")
if p.returncode != 0 or disk(w + "/nf.img") != disk(base):
    fail("build without a flush, --keep 0: not the pristine disk")

# Refusals: no end mark; a disk that is not base + the log.
write_log(w + "/noend.img", ents, end=False)
p = run("check", "--log", w + "/noend.img", "--base", base, "--final",
        w + "/final.img", "--out", w + "/out.img")
if p.returncode != 2:
    fail("check accepted a log without the end mark")
final[SS * 40] = 9
open(w + "/final2.img", "wb").write(final)
p = run("check", "--log", log, "--base", base, "--final", w + "/final2.img",
        "--out", w + "/out.img")
if p.returncode != 2:
    fail("check accepted a disk with a write the log does not have")

if failures:
    sys.exit(1)
print("replaylog self-test: all cases passed")
PYEOF

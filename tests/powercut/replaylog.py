#!/usr/bin/python3
"""Rebuild a disk from a dm-log-writes log, as a drive with a volatile
write cache may have left it at a power cut (tests/powercut, cache=lose).

The log (the kernel's Documentation/admin-guide/device-mapper/
log-writes.rst, drivers/md/dm-log-writes.c): sector 0 holds the super
(magic, version, nr_entries, sectorsize); then per entry one sectorsize
block holding (sector, nr_sectors, flags, data_len) -- a mark's text
follows in the same block -- and, unless it is a discard or a mark, the
nr_sectors * sectorsize bytes written.  The target logs a plain write only
once a FLUSH that was issued after the write completed has completed (the
write is then spliced in just before that FLUSH's entry), a FUA write when
it completes, and when the table is destroyed (guest.sh's freeze: the
device is suspended, then its table replaced) the writes that completed
but no flush covered, followed by the mark "dm-log-writes-end".

So with L the last FLUSH entry: every entry before L reached stable
storage (a FLUSH completed after it), L's own data if it is also FUA, and
later FUA writes; the other writes after L sat in the drive's cache and
the cut may have kept any subset of them, each 4 KiB block on its own
(a drive writes its cache back in any order, and one write need not
land whole).  `build` writes such a state: base + the durable entries +
a seeded random subset (--keep P per block) of the cached ones, in log
order.  `check` makes sure the log is complete (ends with the end mark)
and that base + every entry equals the disk the guest wrote through the
target (the harness's own sanity check: a mismatch is a broken harness,
not a product failure).
"""

import argparse
import json
import random
import struct
import sys

MAGIC = 0x6a736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
END_MARK = b"dm-log-writes-end"
CHUNK = 4096


class LogError(Exception):
    pass


def read_log(path):
    """The entries of the log at path: a list of dicts, in log order."""
    with open(path, "rb") as f:
        sup = f.read(512)
        if len(sup) < 28:
            raise LogError("log too short")
        magic, version, nr, ss = struct.unpack_from("<QQQI", sup)
        if magic != MAGIC:
            raise LogError("no dm-log-writes super (magic %#x)" % magic)
        if version != 1 or ss not in (512, 1024, 2048, 4096):
            raise LogError("unknown log version %d / sectorsize %d"
                           % (version, ss))
        pos = ss
        entries = []
        for i in range(nr):
            f.seek(pos)
            hdr = f.read(ss)
            if len(hdr) < ss:
                raise LogError("entry %d: log truncated" % i)
            sector, nsec, flags, dlen = struct.unpack_from("<QQQQ", hdr)
            e = {"i": i, "sector": sector, "nsec": nsec, "flags": flags,
                 "off": pos + ss}
            pos += ss
            if flags & MARK:
                e["mark"] = hdr[32:32 + dlen]
            elif not flags & DISCARD:
                pos += nsec * ss
            entries.append(e)
        return {"sectorsize": ss, "entries": entries}


def durable_split(entries):
    """Index of the last FLUSH entry (-1 if none)."""
    last = -1
    for e in entries:
        if e["flags"] & FLUSH:
            last = e["i"]
    return last


def apply(log, logpath, out, select):
    """Apply the entries of log for which select(e, chunk) says so, chunk
    by chunk (chunk = byte offset within the write), to the file out."""
    ss = log["sectorsize"]
    with open(logpath, "rb") as lf, open(out, "r+b") as of:
        for e in log["entries"]:
            if e["flags"] & MARK or e["nsec"] == 0:
                continue
            nbytes = e["nsec"] * ss
            base = e["sector"] * ss
            if not e["flags"] & DISCARD:
                lf.seek(e["off"])
                data = lf.read(nbytes)
                if len(data) != nbytes:
                    raise LogError("entry %d: data truncated" % e["i"])
            for c in range(0, nbytes, CHUNK):
                n = min(CHUNK, nbytes - c)
                if not select(e, c):
                    continue
                of.seek(base + c)
                if e["flags"] & DISCARD:
                    of.write(b"\0" * n)
                else:
                    of.write(data[c:c + n])


def copy(src, dst):
    with open(src, "rb") as s, open(dst, "wb") as d:
        while True:
            b = s.read(1 << 20)
            if not b:
                break
            d.write(b)


def same(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        off = 0
        while True:
            x = fa.read(1 << 20)
            y = fb.read(1 << 20)
            if x != y:
                return off
            if not x:
                return None
            off += len(x)


def cmd_check(args):
    log = read_log(args.log)
    ents = log["entries"]
    if not ents or ents[-1].get("mark") != END_MARK:
        raise LogError("log does not end with the %r mark (%d entries): "
                       "the freeze did not drain it" % (END_MARK, len(ents)))
    copy(args.base, args.out)
    apply(log, args.log, args.out, lambda e, c: True)
    diff = same(args.out, args.final)
    if diff is not None:
        raise LogError("base + every logged write differs from the disk "
                       "written through the target near byte %d" % diff)
    print(json.dumps({"entries": len(ents)}))


def cmd_build(args):
    log = read_log(args.log)
    ents = log["entries"]
    if not ents or ents[-1].get("mark") != END_MARK:
        raise LogError("log does not end with the %r mark" % END_MARK)
    last = durable_split(ents)
    rng = random.Random(args.seed)
    st = {"entries": len(ents), "last_flush": last, "durable": 0,
          "cached": 0, "cached_chunks": 0, "kept_chunks": 0,
          "keep": args.keep}

    def durable(e):
        if e["i"] < last:
            return True
        return bool(e["flags"] & FUA)

    for e in ents:
        if e["flags"] & MARK or e["nsec"] == 0:
            continue
        if durable(e):
            st["durable"] += 1
        else:
            st["cached"] += 1

    def select(e, c):
        if durable(e):
            return True
        st["cached_chunks"] += 1
        if rng.random() < args.keep:
            st["kept_chunks"] += 1
            return True
        return False

    copy(args.base, args.out)
    apply(log, args.log, args.out, select)
    print(json.dumps(st))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--log", required=True)
    c.add_argument("--base", required=True)
    c.add_argument("--final", required=True)
    c.add_argument("--out", required=True)
    b = sub.add_parser("build")
    b.add_argument("--log", required=True)
    b.add_argument("--base", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--seed", required=True)
    b.add_argument("--keep", type=float, required=True)
    args = ap.parse_args()
    try:
        (cmd_check if args.cmd == "check" else cmd_build)(args)
    except LogError as e:
        print("replaylog: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""mkcorpus.py -- write the seed corpora of the fuzz targets.

    python3 tests/fuzz/mkcorpus.py [DIR]    (default: tests/fuzz/corpus)

Each target gets a handful of small valid and invalid inputs in
DIR/TARGET/, named for what they are.  Regression inputs for bugs the
fuzzers found are kept as files of their own (regress-*) and are not
written here.  The input formats are described at the top of each
tests/fuzz/fuzz_*.c.
"""
import os
import struct
import sys

# fanotify (compat.h)
FAN_MODIFY, FAN_ATTRIB, FAN_CLOSE_WRITE = 0x02, 0x04, 0x08
FAN_MOVED_FROM, FAN_MOVED_TO, FAN_CREATE, FAN_DELETE = 0x40, 0x80, 0x100, 0x200
FAN_Q_OVERFLOW, FAN_ONDIR, FAN_RENAME = 0x4000, 0x40000000, 0x10000000
FID, DFID_NAME, DFID, OLD_DFID_NAME, NEW_DFID_NAME = 1, 2, 3, 10, 12
VERS, MDLEN = 3, 24


def info(kind, handle, name=None, htype=1, fsid=b"\x11" * 8):
    body = fsid + struct.pack("<Ii", len(handle), htype) + handle
    if name is not None:
        body += name + b"\0"
    rec = struct.pack("<BBH", kind, 0, 4 + len(body)) + body
    return rec


def event(mask, infos=b"", fd=-1, pid=1234, vers=VERS, mdlen=MDLEN, elen=None):
    if elen is None:
        elen = mdlen + len(infos)
    return struct.pack("<IBBHQii", elen, vers, 0, mdlen, mask, fd, pid) + infos


def unterminated(kind, handle, name):
    """An info record whose name has no NUL within its length."""
    rec = info(kind, handle, name)[:-1]
    return rec[:2] + struct.pack("<H", len(rec)) + rec[4:]


H1 = bytes(range(8))
H2 = bytes(range(8, 20))


def chunks(data, size):
    """data cut into chunks of size bytes, in the fuzz.h format."""
    out = b""
    for i in range(0, len(data), size):
        c = data[i:i + size]
        out += bytes([len(c)]) + c
    return out


def control(flags, text, size=255):
    return bytes([flags]) + chunks(text, size)


def reply_raw(text, size=255):
    return b"\0" + chunks(text, size)


def reply_model(fields, chunk=255):
    return bytes([((chunk - 1) << 1 | 1) & 0xff]) + b"\0".join(fields)


SEEDS = {
    "event": {
        "create-dfid-name": event(FAN_CREATE, info(DFID_NAME, H1, b"file")),
        "mkdir-ondir": event(FAN_CREATE | FAN_ONDIR,
                             info(DFID_NAME, H1, b"dir")),
        "modify-fid-dfid-name": event(
            FAN_MODIFY | FAN_CLOSE_WRITE,
            info(DFID_NAME, H1, b"f") + info(FID, H2)),
        "attrib-dfid": event(FAN_ATTRIB | FAN_ONDIR, info(DFID, H1)),
        "rename": event(FAN_RENAME,
                        info(OLD_DFID_NAME, H1, b"old") +
                        info(NEW_DFID_NAME, H2, b"new")),
        "two-events": event(FAN_DELETE, info(DFID_NAME, H1, b"a")) +
        event(FAN_MOVED_FROM | FAN_MOVED_TO, info(DFID_NAME, H2, b"b")),
        "overflow": event(FAN_Q_OVERFLOW),
        "unknown-info-type": event(FAN_CREATE, struct.pack("<BBH", 99, 0, 8) +
                                   b"\0" * 4 + info(DFID_NAME, H1, b"x")),
        "bad-version": event(FAN_CREATE, info(DFID_NAME, H1, b"x"), vers=2),
        "truncated": event(FAN_CREATE, info(DFID_NAME, H1, b"file"))[:-3],
        "rename-half": event(FAN_RENAME, info(OLD_DFID_NAME, H1, b"old")),
        "name-not-terminated": event(FAN_CREATE, unterminated(DFID_NAME, H1,
                                                              b"x")),
        "handle-too-long": event(FAN_CREATE,
                                 info(DFID_NAME, b"\x01" * 129, b"x")),
        "empty-name": event(FAN_CREATE, info(DFID_NAME, H1, b"")),
        "short": b"\x18\0\0\0\x03",
    },
    "control": {
        "status": control(0, b"status\n"),
        "status-nonroot": control(1, b"status\n"),
        "status-degraded": control(6, b"status\n"),
        "dbpath-bytewise": control(0, b"dbpath\n", 1),
        "snapshot": control(0, b"snapshot\n"),
        "snapshot-nonroot": control(1, b"snapshot\n"),
        "barrier": control(0, b"barrier 1\n"),
        "barrier-nowait": control(0, b"barrier 1 nowait\n", 3),
        "barrier-huge": control(0, b"barrier 99999999999999999999\n"),
        "barrier-position": control(0, b"barrier 1 position noscan\n", 7),
        "barrier-since-position": control(0, b"barrier fst1:0123456789abcdef:"
                                          b"1:5 nowait position\n"),
        "barrier-twice": control(0, b"barrier 1 noscan noscan\n"),
        "position": control(1, b"position\n"),
        "consumer-set": control(0, b"consumer-set backup.host:1 1\n", 7),
        "consumer-set-nosnap": control(0, b"consumer-set x 0\n"),
        "consumer-delete": control(0, b"consumer-delete backup.host:1\n"),
        "consumer-delete-badname": control(0, b"consumer-delete a/b\n"),
        "prune": control(0, b"prune\n"),
        "prune-nonroot": control(1, b"prune 1\n"),
        "unknown": control(0, b"frobnicate\n"),
        "two-spaces": control(0, b"barrier  1\n"),
        "nul": control(0, b"stat\0us\n"),
        "no-newline": control(0, b"status"),
        "empty-line": control(0, b"\n"),
        "trailing-data": control(0, b"status\nsnapshot\n"),
        "line-4096": control(0, b"prune " + b"0" * 4090 + b"\n"),
        "line-too-long": control(0, b"x" * 5000 + b"\n"),
        "changed": control(0, b"changed 1\n"),
        "changed-nonroot": control(1, b"changed 1 json\n"),
        "changed-words": control(1, b"changed 1 dirs nul position nowait\n",
                                 5),
        "changed-position": control(1, b"changed fst1:0123456789abcdef:1:1"
                                    b" json\n"),
        "changed-follow": control(1, b"changed 1 follow json\n"),
        "changed-twice": control(1, b"changed 1 follow follow\n"),
        "changed-nosince": control(1, b"changed\n"),
        "changed-degraded": control(3, b"changed 1\n"),
    },
    "reply": {
        "ok": reply_raw(b"OK\n"),
        "kv-ok": reply_raw(b"dbpath\t/var/lib/fstrack/fstrack.db\n"
                           b"snapshot\t17\nOK\n", 5),
        "err": reply_raw(b"ERR 3 no such snapshot\n"),
        "err-nomsg": reply_raw(b"ERR 5\n"),
        "err-zero": reply_raw(b"ERR 0 zero\n"),
        "err-huge": reply_raw(b"ERR 99999999999 huge\n"),
        "waiting": reply_raw(b"waiting\treconcile\nsnapshot\t1\nOK\n", 3),
        "escapes": reply_raw(b"k\ta\\tb\\nc\\\\d\\q\\\nOK\n"),
        "no-final": reply_raw(b"snapshot\t1\n"),
        "no-newline": reply_raw(b"OK"),
        "garbage": reply_raw(b"\xff\xfe\0\t\n\n\tOK\n"),
        "model-ok": reply_model([b"snapshot", b"42", b"dbpath",
                                 b"/a\tb\nc\\d", b"OK"], 2),
        "model-err": reply_model([b"ERR", b"6", b"cannot\tcommit\n"], 1),
        "model-waiting": reply_model([b"waiting", b"reconcile", b"OK"], 7),
    },
    "config": {
        "full": b"# fstrackd.conf\ntrack /home\ntrack /srv/data  # data\n"
        b"state-dir /var/lib/fstrack\nsocket /run/fstrack/fstrackd.sock\n"
        b"durability async\nstall-timeout 1000\nretention-snapshots 10\n"
        b"retention-days 7\nconsumer-idle-days 3\nmerge-delay 0\n"
        b"reconcile-margin 100\n",
        "blanks": b"\n   \n\t# only a comment\n  track\t/a b  \n",
        "duplicate-track": b"track /x\ntrack /x\n",
        "relative-track": b"track home\n",
        "relative-state-dir": b"state-dir var\n",
        "no-value": b"durability\n",
        "bad-durability": b"durability sometimes\n",
        "bad-number": b"stall-timeout 9\n",
        "overflow-number": b"retention-snapshots 99999999999999999999\n",
        "negative": b"merge-delay -1\n",
        "unknown": b"frobnicate yes\n",
        "nul": b"track /a\0b\n",
        "no-final-newline": b"track /last",
    },
}


def main(argv):
    top = argv[1] if len(argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    for target, seeds in SEEDS.items():
        d = os.path.join(top, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

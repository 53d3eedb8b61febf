#!/usr/bin/python3
"""Ground truth for fstrack's claim "no directory whose entries changed is missed".

    oracle.py record ROOT OUT.json [--exclude PATH]...
    oracle.py compare BEFORE.json AFTER.json REPORTED [--reported0]
                      [--level entries|full] [--hardlinks strict|lenient]
                      [--linked-inodes FILE]
                      [--max-misses N] [--verbose]

record walks ROOT (no symlinks followed, no other mounts entered; through
directory fds, so any depth works, paths beyond PATH_MAX included) and stores,
for every directory, its own lstat and the lstat of each entry: inode, type,
size, mtime_ns, ctime_ns, mode, nlink.  ctime covers xattr and ACL changes.

compare decides which directories MUST be reported and checks them against
the list the tracker printed (`fstrack changed --since N --dirs [-0]`).

Directories are matched between BEFORE and AFTER by file handle (inode
number and generation, so a deleted directory whose inode number is reused
by a new one is not taken for it; by inode number alone where the
filesystem has no handles), not by path, so a directory renamed during the
workload is compared with its own past and must be reported under its
CURRENT (AFTER) path.  A directory of
AFTER is required when:
  - it has no directory with its inode in BEFORE ("new directory") and is
    not empty (an empty new directory is covered by its parent, whose entry
    set changed);
  - its set of entry names differs from its BEFORE counterpart;
  - an entry with the same name changed attributes:
      --level entries: for non-directories: inode, type, size, mtime, ctime,
        mode, nlink; for directories: inode, type, mode, nlink;
      --level full (default): for every entry all of them.
    (A change of D's entries changes D's mtime/ctime, so at level full the
    parent of D is required as well: the tracker must report it.)
Deleted directories themselves are not required: the parent of the topmost
deleted directory lost an entry and is required by the rules above.

Hard links: an attribute change of an inode with several links shows up in
every directory that links it, while the kernel only tells the tracker about
the path that was used.  --hardlinks strict (default) requires them all;
--hardlinks lenient excuses such a directory when its only reasons are
attribute changes of multiply linked inodes, each of which could have been
made through another name: one in a reported directory, one in a directory
deleted since, or a name that came and went unseen by the oracle (the link
count changed, or the inode is listed in --linked-inodes FILE: inode
numbers, whitespace-separated, that the workload gave a second name during
the run).  Excused directories are counted and listed.

Exit status: 0 no misses, 1 misses, 2 usage or input error (record: the
tree could not be read; tests treat that as a hard error of the harness).
"""

import argparse
import ctypes
import errno
import json
import os
import stat
import sys

FORMAT = "fstrack-oracle-1"
ATTRS_ALL = ("ino", "type", "size", "mtime_ns", "ctime_ns", "mode", "nlink")
ATTRS_DIR_ENTRIES = ("ino", "type", "mode", "nlink")


class OracleError(Exception):
    """A usage or input problem: exit status 2."""


def ftype(mode):
    """One-letter file type of an st_mode."""
    for test, letter in ((stat.S_ISDIR, "d"), (stat.S_ISREG, "f"),
                         (stat.S_ISLNK, "l"), (stat.S_ISFIFO, "p"),
                         (stat.S_ISSOCK, "s"), (stat.S_ISCHR, "c"),
                         (stat.S_ISBLK, "b")):
        if test(mode):
            return letter
    return "?"


_libc = ctypes.CDLL(None, use_errno=True)
AT_EMPTY_PATH = 0x1000
MAX_HANDLE_SZ = 128
PATH_MAX = 4096
O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def handle_of(fd):
    """Hex file handle of the open directory FD (type + bytes; carries the
    inode generation, so a reused inode number gets a new identity), or
    None where the filesystem has no handles."""
    fn = getattr(_libc, "name_to_handle_at", None)
    if fn is None:
        return None
    buf = ctypes.create_string_buffer(8 + MAX_HANDLE_SZ)
    ctypes.c_uint.from_buffer(buf, 0).value = MAX_HANDLE_SZ
    mount_id = ctypes.c_int()
    if fn(fd, b"", buf, ctypes.byref(mount_id), AT_EMPTY_PATH) != 0:
        e = ctypes.get_errno()
        if e in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS):
            return None
        raise OSError(e, os.strerror(e))
    n = ctypes.c_uint.from_buffer(buf, 0).value
    htype = ctypes.c_int.from_buffer(buf, 4).value
    return "%d:%s" % (htype, buf.raw[8:8 + n].hex())


def statrec(st):
    """The recorded attributes of one lstat result."""
    return {"ino": st.st_ino, "type": ftype(st.st_mode), "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "mode": stat.S_IMODE(st.st_mode), "nlink": st.st_nlink,
            "dev": st.st_dev}


def normpath(p):
    """Absolute, normalised path without trailing slash ('/' stays '/')."""
    p = os.path.abspath(p)
    if len(p) > 1:
        p = p.rstrip("/")
    return p


def join(d, name):
    return d + name if d.endswith("/") else d + "/" + name


def short(p, n=160):
    """P for a message: its tail when it is very long."""
    return p if len(p) <= n else "..." + p[-n:]


def raise_nofile():
    """The walk holds one fd per level of the current directory chain: raise
    the soft RLIMIT_NOFILE to the hard limit, for very deep trees."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def scan_dir(fd, path, excl, dev, dirs):
    """Record the directory open as FD (full path PATH) in DIRS; return its
    subdirectories on the same filesystem as (name, lstat) pairs."""
    dst = os.fstat(fd)
    names = os.listdir(fd)
    entries = {}
    subdirs = []
    for name in sorted(names):
        p = join(path, name)
        if p in excl:
            continue
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        rec = statrec(st)
        if st.st_dev != dev:
            # A mount point: the entry is there, its attributes belong
            # to another filesystem, and we do not enter it.
            rec = {"ino": None, "type": "mount", "dev": st.st_dev}
        elif stat.S_ISDIR(st.st_mode):
            subdirs.append((name, st))
        entries[name] = rec
    self_rec = statrec(dst)
    self_rec["handle"] = handle_of(fd)
    dirs[path] = {"self": self_rec, "entries": entries}
    return subdirs


def record(root, out, excludes):
    """Walk ROOT and write the JSON record to OUT.

    The walk goes through directory fds (openat/fstatat/name_to_handle_at
    relative to the parent's fd), never through full paths, so a tree of
    any depth works, paths longer than PATH_MAX included; the recorded
    paths are full strings all the same."""
    root = normpath(root)
    excl = {normpath(e) for e in excludes}
    raise_nofile()
    try:
        rfd = os.open(root, O_DIR)
    except OSError as e:
        raise OracleError("cannot open %s: %s" % (root, e.strerror))
    dirs = {}
    stack = []
    path = root
    try:
        dev = os.fstat(rfd).st_dev
        stack.append((rfd, root, iter(scan_dir(rfd, root, excl, dev, dirs))))
        while stack:
            fd, path, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                os.close(fd)
                stack.pop()
                continue
            name, st = nxt
            path = join(path, name)
            cfd = os.open(name, O_DIR, dir_fd=fd)
            try:
                cst = os.fstat(cfd)
                if (cst.st_dev, cst.st_ino) != (st.st_dev, st.st_ino):
                    raise OSError(errno.ESTALE, "replaced while walking")
                sub = scan_dir(cfd, path, excl, dev, dirs)
            except BaseException:
                os.close(cfd)
                raise
            stack.append((cfd, path, iter(sub)))
    except OSError as e:
        raise OracleError("cannot read %s (depth %d, %d bytes): %s (is "
                          "something still changing the tree?)"
                          % (short(path), path.count("/"),
                             len(os.fsencode(path)), e.strerror))
    finally:
        for fd, _, _ in stack:
            os.close(fd)
    nentries = sum(len(d["entries"]) for d in dirs.values())
    maxlen = max(len(os.fsencode(p)) for p in dirs)
    data = {"format": FORMAT, "root": root, "dev": dev,
            "excludes": sorted(excl), "dirs": dirs}
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        # ensure_ascii keeps undecodable names (surrogate escapes) intact.
        json.dump(data, f, ensure_ascii=True, sort_keys=True)
    os.replace(tmp, out)
    print("oracle: recorded %d directories, %d entries under %s "
          "(longest directory path %d bytes)"
          % (len(dirs), nentries, root, maxlen))


def load(path):
    with open(path, encoding="ascii") as f:
        data = json.load(f)
    if data.get("format") != FORMAT:
        raise OracleError("%s: not an oracle record" % path)
    return data


def unescape(s):
    """Undo the text-mode escaping of fstrack: \\n, \\t, \\\\."""
    if "\\" not in s:
        return s
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            out.append({"n": "\n", "t": "\t", "\\": "\\"}.get(n, "\\" + n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def read_reported(path, nul):
    with open(path, "rb") as f:
        raw = f.read()
    if nul:
        recs = raw.split(b"\0")
    else:
        recs = raw.split(b"\n")
    out = set()
    for r in recs:
        if not r:
            continue
        s = os.fsdecode(r)
        if not nul:
            s = unescape(s)
        if s.startswith("/"):
            s = normpath(s) if s != "/" else s
        out.add(s)
    return out


def attr_diff(b, a, level):
    """Names of attributes that differ between two entry records."""
    if b.get("type") == "mount" or a.get("type") == "mount":
        return ["type"] if b.get("type") != a.get("type") else []
    if level == "full" or (b["type"] != "d" and a["type"] != "d"):
        keys = ATTRS_ALL
    else:
        keys = ATTRS_DIR_ENTRIES
    return [k for k in keys if b.get(k) != a.get(k)]


def dir_id(d):
    """Identity of a recorded directory: its file handle (inode number and
    generation), or its inode number where the fs has no handles."""
    return d["self"].get("handle") or d["self"]["ino"]


def required_dirs(before, after, level, linked=frozenset()):
    """Map AFTER path -> list of (reason, hardlinked_inode_or_None)."""
    bdirs = before["dirs"]
    adirs = after["dirs"]
    by_id = {}
    for p, d in bdirs.items():
        by_id[dir_id(d)] = p
    req = {}
    for p, d in adirs.items():
        reasons = []
        bp = by_id.get(dir_id(d))
        if bp is None:
            if d["entries"]:
                reasons.append(("new directory with %d entries (e.g. %r)"
                                % (len(d["entries"]),
                                   sorted(d["entries"])[0]), None))
        else:
            be = bdirs[bp]["entries"]
            ae = d["entries"]
            moved = "" if bp == p else " (was %s)" % bp
            for name in sorted(set(be) - set(ae)):
                reasons.append(("entry %r removed%s" % (name, moved), None))
            for name in sorted(set(ae) - set(be)):
                reasons.append(("entry %r added%s" % (name, moved), None))
            for name in sorted(set(ae) & set(be)):
                diff = attr_diff(be[name], ae[name], level)
                if not diff:
                    continue
                hl = None
                b, a = be[name], ae[name]
                if "ino" not in diff and a.get("type") != "d":
                    if a["ino"] in linked:
                        hl = (a["ino"], True)
                    elif max(b.get("nlink") or 1, a.get("nlink") or 1) > 1:
                        hl = (a["ino"], "nlink" in diff)
                reasons.append(("entry %r changed %s%s%s"
                                % (name, ",".join(diff), moved,
                                   " (hard-linked inode %d)" % hl[0]
                                   if hl is not None else ""), hl))
        if reasons:
            req[p] = reasons
    return req


def links_of(rec_dirs):
    """Map inode -> set of directory paths holding a link to it."""
    out = {}
    for p, d in rec_dirs.items():
        for e in d["entries"].values():
            if e.get("type") not in ("d", "mount"):
                out.setdefault(e["ino"], set()).add(p)
    return out


def compare(args):
    before = load(args.before)
    after = load(args.after)
    root = after["root"]
    reported = read_reported(args.reported, args.reported0)
    linked = set()
    if args.linked_inodes:
        with open(args.linked_inodes) as f:
            linked = {int(x) for x in f.read().split()}
    req = required_dirs(before, after, args.level, linked)

    excused = {}
    if args.hardlinks == "lenient":
        bdirs, adirs = before["dirs"], after["dirs"]
        blinks = links_of(bdirs)
        alinks = links_of(adirs)
        alive = {dir_id(d) for d in adirs.values()}
        for p, reasons in req.items():
            if p in reported or any(hl is None for _, hl in reasons):
                continue
            ok = True
            for _, hl in reasons:
                ino, nlink_changed = hl
                others = (blinks.get(ino, set()) | alinks.get(ino, set())) \
                    - {p}
                gone = {o for o in blinks.get(ino, set())
                        if dir_id(bdirs[o]) not in alive}
                # The change may have been made through another name: one
                # in a reported directory, in a directory deleted since, or
                # one that came and went (the link count changed).
                if not (others & reported or gone or nlink_changed):
                    ok = False
                    break
            if ok:
                excused[p] = reasons

    misses = sorted(p for p in req if p not in reported and p not in excused)
    adirs = after["dirs"]
    bdirs = before["dirs"]
    excl = set(after.get("excludes", []))

    def in_scope(p):
        if p != root and not p.startswith(root.rstrip("/") + "/"):
            return False
        return not any(p == e or p.startswith(e + "/") for e in excl)

    extra = sorted(p for p in reported if p not in req)
    fp_live = [p for p in extra if p in adirs]
    fp_old = [p for p in extra if p not in adirs and p in bdirs]
    fp_out = [p for p in extra if not in_scope(p)]
    fp_other = [p for p in extra
                if p not in adirs and p not in bdirs and in_scope(p)]

    print("oracle: level %s, hardlinks %s" % (args.level, args.hardlinks))
    print("oracle: directories before %d, after %d"
          % (len(bdirs), len(adirs)))
    print("oracle: must-report %d, reported %d, covered %d"
          % (len(req), len(reported), len(req) - len(misses) - len(excused)))
    if excused:
        print("oracle: excused (hard links changed through another reported "
              "directory) %d" % len(excused))
        for p in sorted(excused)[:args.max_misses]:
            print("EXCUSED %s: %s" % (p, excused[p][0][0]))
    print("oracle: false positives %d (existing dirs %d, old paths of moved/"
          "deleted dirs %d, outside scope %d, unknown paths %d)"
          % (len(extra), len(fp_live), len(fp_old), len(fp_out),
             len(fp_other)))
    if args.verbose:
        for p in extra[:args.max_misses]:
            print("EXTRA %r" % p)
    print("oracle: MISSES %d" % len(misses))
    deep = sum(1 for p in misses if len(os.fsencode(p)) >= PATH_MAX)
    if deep:
        print("oracle: misses with a path of PATH_MAX (%d) bytes or more: %d"
              % (PATH_MAX, deep))
    for p in misses[:args.max_misses]:
        reasons = req[p]
        more = " (+%d more reasons)" % (len(reasons) - 1) \
            if len(reasons) > 1 else ""
        print("MISS %r: %s%s" % (p, reasons[0][0], more))
    if len(misses) > args.max_misses:
        print("MISS ... and %d more" % (len(misses) - args.max_misses))
    return 1 if misses else 0


def main():
    ap = argparse.ArgumentParser(prog="oracle.py", description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("root")
    r.add_argument("out")
    r.add_argument("--exclude", action="append", default=[])
    c = sub.add_parser("compare")
    c.add_argument("before")
    c.add_argument("after")
    c.add_argument("reported")
    c.add_argument("--reported0", action="store_true")
    c.add_argument("--level", choices=("entries", "full"), default="full")
    c.add_argument("--hardlinks", choices=("strict", "lenient"),
                   default="strict")
    c.add_argument("--linked-inodes")
    c.add_argument("--max-misses", type=int, default=50)
    c.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    try:
        if args.cmd == "record":
            record(args.root, args.out, args.exclude)
            return 0
        return compare(args)
    except (OSError, ValueError, OracleError) as e:
        print("oracle: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

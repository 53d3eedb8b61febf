#!/usr/bin/python3
"""Random multi-process filesystem workload for the fstrack tests.

    workload.py ROOT [--procs 4] [--ops 2000] [--seed S] [--duration SECS]
                     [--progress-file F] [--own-pgrp] [--no-weird-names]
                     [--no-links] [--no-fifo-over]
                     [--pause-at K --pause-dir DIR [--pause-timeout SECS]]
                     [--stop-file F] [--rate OPS_PER_SEC]
    workload.py ROOT --populate [--dirs 150] [--files 500] [--seed S]

Every worker process works on the whole tree under ROOT: it picks its
targets by a random walk from ROOT, so workers race with each other and
tolerate the usual errors (ENOENT, ENOTEMPTY, EEXIST, ...).  The choices of
worker i are drawn from Random(seed, i): with --procs 1 a run is
reproducible on the same starting tree; with several workers the
interleaving is up to the scheduler.

--ops is the total number of operations, split over the workers;
--duration stops them earlier.  --progress-file is rewritten (atomically,
about ten times a second) with the number of operations done so far, so a
test can act in the middle of the run.  --own-pgrp puts the workload in a
process group of its own (its pid), so that a test can SIGSTOP/SIGCONT
every worker at once with kill -STOP -- -PID.

--pause-at K --pause-dir DIR: every worker stops by itself after its
first K operations (between two operations: none of its system calls is in
flight), writes DIR/paused-N (N: the worker index; the file holds K) and
waits for DIR/resume to appear; after --pause-timeout seconds (default 600)
without it the worker gives up and the workload exits 1.  A worker with K
or fewer operations pauses after its last one.  A test waits for all the
paused-N files, acts (e.g. restarts the daemon) and creates DIR/resume:
the pause does not depend on how fast the workload runs.  Time spent paused
does not count against --duration.

--rate R: at most R operations per second in all (each worker paces itself
at R/procs), so that --ops spreads over at least --ops/R seconds and a test
knows how much a run of a given duration can write at most.

--stop-file F: every worker stops before its next operation once F exists
(so a test can keep a workload running for exactly as long as it needs).

--journal DIR writes DIR/worker-N.log: one line per operation with the
paths it picked and their inode numbers, to trace a reported miss back to
the operations that caused it.

Symlinks made here point only at sibling names, so no path resolution ever
leaves ROOT.  Worker opens use O_NOFOLLOW|O_NONBLOCK and check for a regular
file, so a FIFO or symlink raced into place never blocks a worker.  mmap
writes run in a short-lived child, so a SIGBUS caused by a concurrent
truncation is counted instead of killing the worker.

Exit status: 0, or 1 when an operation failed with an error that the races
cannot explain (printed), 2 on usage errors.
"""

import argparse
import ctypes
import errno
import json
import mmap
import os
import random
import select
import signal
import stat
import struct
import sys
import time

# Errors that concurrent workers explain by themselves.
RACE = {errno.ENOENT, errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY,
        errno.EISDIR, errno.EINVAL, errno.EBUSY, errno.ELOOP, errno.EMLINK,
        errno.ENXIO, errno.ETXTBSY, errno.ENODATA}
FULL = {errno.ENOSPC, errno.EDQUOT}
UNSUPPORTED = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
# Per operation, extra errors that are explained by a race.
OP_RACE = {
    "link": {errno.EPERM},          # the source became a directory
    "setxattr": {errno.EPERM},      # user.* on a symlink raced into place
    "removexattr": {errno.EPERM},
}

WEIRD = ["sp ace", "new\nline", "tab\there", "back\\slash",
         os.fsdecode(b"bad-\xff\xfe-utf8"), "\u00fcn\u00efcode",
         "-dash", ".hidden", "L" * 200, "q\"uote'", "star*?[x]"]

WEIGHTS = [
    ("create", 12), ("write", 10), ("append", 6), ("truncate", 4),
    ("rename_file", 6), ("move_file", 6), ("rename_over", 2),
    ("move_dir", 4), ("rename_dir", 3), ("exchange", 2), ("mkdir", 8),
    ("rmdir", 3), ("rmtree", 1), ("link", 4), ("symlink", 3),
    ("unlink", 6), ("chmod", 3), ("utime", 3), ("setxattr", 3),
    ("removexattr", 1), ("mmap_write", 3), ("fallocate", 3),
    ("rdonly_trunc", 2), ("mkfifo", 1),
]

NO_LINKS = False   # --no-links: no file ever gets a second name
# --no-fifo-over: rename_over never moves a FIFO over another name.  A
# concurrent reader (rsync) that lstat()ed that name as a regular file and
# then opens it would block for ever on the FIFO, waiting for a writer.
NO_FIFO_OVER = False

OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def renameat2(a, b, flags):
    """renameat2(2); raises OSError."""
    fn = getattr(_libc, "renameat2", None)
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 not in libc")
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                   ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)


class Worker:
    """One worker: its random source, its counters, its operations."""

    def __init__(self, root, index, seed, weird, journal=None):
        self.root = root
        self.index = index
        self.rng = random.Random("%s/%d" % (seed, index))
        self.weird = weird
        self.counter = 0
        self.counts = {}
        self.unexpected = []
        self.journal = journal
        self.picked = []

    # -- picking targets ---------------------------------------------------

    def listing(self, d):
        """Sorted (name, is_dir, is_reg) of D, or [] when D is gone."""
        out = []
        try:
            with os.scandir(d) as it:
                for e in it:
                    try:
                        isdir = e.is_dir(follow_symlinks=False)
                        isreg = e.is_file(follow_symlinks=False)
                    except OSError:
                        continue
                    out.append((e.name, isdir, isreg))
        except OSError:
            return []
        out.sort()
        return out

    def pick_dir(self, allow_root=True):
        """A directory reached by a random walk from ROOT."""
        rng = self.rng
        cur = self.root
        for _ in range(12):
            subs = [n for n, isdir, _ in self.listing(cur) if isdir]
            if not subs:
                break
            if cur != self.root or not allow_root:
                if rng.random() < 0.35:
                    break
            elif rng.random() < 0.15:
                break
            cur = os.path.join(cur, rng.choice(subs))
        if not allow_root and cur == self.root:
            return None
        self.note(cur)
        return cur

    def pick_entry(self, kind):
        """An entry path: kind 'file' (regular), 'dir' (not ROOT), 'any'."""
        rng = self.rng
        cur = self.root
        for _ in range(12):
            ents = self.listing(cur)
            subs = [n for n, isdir, _ in ents if isdir]
            if kind == "file":
                here = [n for n, _, isreg in ents if isreg]
            elif kind == "dir":
                here = subs
            else:
                here = [n for n, _, _ in ents]
            if here and (not subs or rng.random() < 0.4):
                return self.note(os.path.join(cur, rng.choice(here)))
            if not subs:
                return None
            cur = os.path.join(cur, rng.choice(subs))
        return None

    def note(self, path):
        """Remember a picked path (and its inode) for the journal."""
        if self.journal is not None:
            try:
                ino = os.lstat(path).st_ino
            except OSError:
                ino = 0
            esc = path.replace("\\", "\\\\").replace("\t", "\\t") \
                .replace("\n", "\\n")
            self.picked.append("%s@%d" % (esc, ino))
        return path

    def newname(self, prefix="f"):
        self.counter += 1
        if self.weird and self.rng.random() < 0.03:
            return "%s%d_%d_%s" % (prefix, self.index, self.counter,
                                   self.rng.choice(WEIRD))
        return "%s%d_%d" % (prefix, self.index, self.counter)

    def data(self, n):
        chunk = bytes(self.rng.getrandbits(8) for _ in range(min(n, 64)))
        return (chunk * (n // 64 + 1))[:n]

    # -- helpers -----------------------------------------------------------

    def open_reg(self, path, flags):
        """Open PATH with FLAGS; None (counted) unless a regular file."""
        fd = os.open(path, flags | OPEN_FLAGS)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return fd

    # -- operations (each may raise OSError) -------------------------------

    def op_create(self):
        d = self.pick_dir()
        fd = os.open(os.path.join(d, self.newname()),
                     os.O_CREAT | os.O_EXCL | os.O_WRONLY | OPEN_FLAGS, 0o644)
        try:
            os.write(fd, self.data(self.rng.randrange(0, 16384)))
        finally:
            os.close(fd)

    def op_write(self):
        p = self.pick_entry("file")
        off = self.rng.randrange(0, 65536)
        buf = self.data(self.rng.randrange(1, 16384))
        if p is None:
            return "nothing"
        fd = self.open_reg(p, os.O_WRONLY)
        if fd is None:
            return "notreg"
        try:
            os.pwrite(fd, buf, off)
        finally:
            os.close(fd)
        return None

    def op_append(self):
        p = self.pick_entry("file")
        buf = self.data(self.rng.randrange(1, 4096))
        if p is None:
            return "nothing"
        fd = self.open_reg(p, os.O_WRONLY | os.O_APPEND)
        if fd is None:
            return "notreg"
        try:
            os.write(fd, buf)
        finally:
            os.close(fd)
        return None

    def op_truncate(self):
        p = self.pick_entry("file")
        n = self.rng.choice([0, 1, 100, 4096, 10000, 70000])
        if p is None:
            return "nothing"
        fd = self.open_reg(p, os.O_WRONLY)
        if fd is None:
            return "notreg"
        try:
            os.ftruncate(fd, n)
        finally:
            os.close(fd)
        return None

    def op_rename_file(self):
        p = self.pick_entry("file")
        name = self.newname("r")
        if p is None:
            return "nothing"
        os.rename(p, os.path.join(os.path.dirname(p), name))
        return None

    def op_move_file(self):
        p = self.pick_entry("file")
        d = self.pick_dir()
        name = self.newname("m")
        if p is None:
            return "nothing"
        os.rename(p, os.path.join(d, name))
        return None

    def op_rename_over(self):
        a = self.pick_entry("any")
        b = self.pick_entry("any")
        if a is None or b is None or a == b:
            return "nothing"
        if NO_FIFO_OVER and stat.S_ISFIFO(os.lstat(a).st_mode):
            return "nothing"
        os.rename(a, b)
        return None

    def op_move_dir(self):
        src = self.pick_entry("dir")
        dst = self.pick_dir()
        name = self.newname("D")
        if src is None:
            return "nothing"
        os.rename(src, os.path.join(dst, name))
        return None

    def op_rename_dir(self):
        src = self.pick_entry("dir")
        name = self.newname("R")
        if src is None:
            return "nothing"
        os.rename(src, os.path.join(os.path.dirname(src), name))
        return None

    def op_exchange(self):
        a = self.pick_entry("any")
        b = self.pick_entry(self.rng.choice(["dir", "any"]))
        if a is None or b is None or a == b:
            return "nothing"
        renameat2(a, b, RENAME_EXCHANGE)
        return None

    def op_mkdir(self):
        d = self.pick_dir()
        os.mkdir(os.path.join(d, self.newname("d")), 0o755)

    def op_rmdir(self):
        p = self.pick_entry("dir")
        if p is None:
            return "nothing"
        os.rmdir(p)
        return None

    def op_rmtree(self):
        p = self.pick_entry("dir")
        if p is None:
            return "nothing"
        # Only small subtrees, so the tree does not drain away.
        todo, seen = [p], []
        while todo:
            d = todo.pop()
            seen.append(d)
            if len(seen) > 30:
                return "toobig"
            for n, isdir, _ in self.listing(d):
                if isdir:
                    todo.append(os.path.join(d, n))
                else:
                    seen.append(None)
        for d in reversed([x for x in seen if x is not None]):
            for n, isdir, _ in self.listing(d):
                if not isdir:
                    try:
                        os.unlink(os.path.join(d, n))
                    except OSError as e:
                        if e.errno not in RACE:
                            raise
            try:
                os.rmdir(d)
            except OSError as e:
                if e.errno not in RACE:
                    raise
        return None

    def op_link(self):
        p = self.pick_entry("file")
        d = self.pick_dir()
        name = self.newname("h")
        if p is None:
            return "nothing"
        os.link(p, os.path.join(d, name), follow_symlinks=False)
        return None

    def op_symlink(self):
        d = self.pick_dir()
        sib = [n for n, _, _ in self.listing(d)]
        # Sibling names only (or a dangling one): resolution stays in d.
        target = self.rng.choice(sib) if sib and self.rng.random() < 0.7 \
            else "dangling-%d" % self.rng.randrange(1000)
        os.symlink(target, os.path.join(d, self.newname("s")))

    def op_unlink(self):
        p = self.pick_entry(self.rng.choice(["file", "any"]))
        if p is None:
            return "nothing"
        try:
            os.unlink(p)
        except IsADirectoryError:
            return "isdir"
        return None

    def op_chmod(self):
        p = self.pick_entry(self.rng.choice(["file", "dir"]))
        if p is None:
            return "nothing"
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            return "symlink"
        modes = [0o755, 0o700, 0o775] if stat.S_ISDIR(st.st_mode) \
            else [0o644, 0o600, 0o755, 0o640]
        os.chmod(p, self.rng.choice(modes))
        return None

    def op_utime(self):
        p = self.pick_entry("any")
        t = self.rng.randrange(10**9, 2 * 10**9) * 10**9 + \
            self.rng.randrange(10**9)
        if p is None:
            return "nothing"
        os.utime(p, ns=(t, t), follow_symlinks=False)
        return None

    def op_setxattr(self):
        p = self.pick_entry(self.rng.choice(["file", "dir"]))
        val = self.data(self.rng.randrange(1, 200))
        if p is None:
            return "nothing"
        os.setxattr(p, "user.fstrack%d" % self.rng.randrange(3), val,
                    follow_symlinks=False)
        return None

    def op_removexattr(self):
        p = self.pick_entry(self.rng.choice(["file", "dir"]))
        if p is None:
            return "nothing"
        os.removexattr(p, "user.fstrack%d" % self.rng.randrange(3),
                       follow_symlinks=False)
        return None

    def op_mmap_write(self):
        p = self.pick_entry("file")
        pos = self.rng.random()
        buf = self.data(self.rng.randrange(1, 8192))
        if p is None:
            return "nothing"
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                fd = self.open_reg(p, os.O_RDWR)
                if fd is None:
                    os._exit(10)
                size = os.fstat(fd).st_size
                if size == 0:
                    os._exit(11)
                m = mmap.mmap(fd, size, mmap.MAP_SHARED,
                              mmap.PROT_READ | mmap.PROT_WRITE)
                off = int(pos * size)
                n = min(len(buf), size - off)
                m[off:off + n] = buf[:n]
                m.close()
                os.close(fd)
            except OSError as e:
                code = 20 if e.errno in RACE else 21
            except ValueError:  # "mmap length is greater than file size"
                code = 20           # the file shrank after fstat()
            except BaseException as e:  # never return into the worker loop
                sys.stderr.write("workload: mmap child: %r\n" % e)
                code = 22
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            return "sig%d" % os.WTERMSIG(status)
        code = os.WEXITSTATUS(status)
        return {0: None, 10: "notreg", 11: "empty", 20: "race"}.get(
            code, "childerror%d" % code)

    def op_fallocate(self):
        p = self.pick_entry("file")
        off = self.rng.randrange(0, 262144)
        ln = self.rng.randrange(1, 262144)
        if p is None:
            return "nothing"
        fd = self.open_reg(p, os.O_WRONLY)
        if fd is None:
            return "notreg"
        try:
            os.posix_fallocate(fd, off, ln)
        finally:
            os.close(fd)
        return None

    def op_rdonly_trunc(self):
        p = self.pick_entry("file")
        if p is None:
            return "nothing"
        fd = self.open_reg(p, os.O_RDONLY | os.O_TRUNC)
        if fd is None:
            return "notreg"
        os.close(fd)
        return None

    def op_mkfifo(self):
        d = self.pick_dir()
        os.mkfifo(os.path.join(d, self.newname("p")), 0o644)

    # -- driver ------------------------------------------------------------

    def log(self, op, res):
        """One journal line: time, op, result, picked paths@inode."""
        if self.journal is not None:
            self.journal.write(os.fsencode("%.6f\t%s\t%s\t%s\n" % (
                time.time(), op, res, "\t".join(self.picked))))

    def count(self, key):
        self.counts[key] = self.counts.get(key, 0) + 1

    def pause(self, pause_dir, done, timeout):
        """Write PAUSE_DIR/paused-INDEX, wait (bounded) for PAUSE_DIR/resume.
        Returns the seconds spent paused; raises on timeout."""
        t0 = time.monotonic()
        marker = os.path.join(pause_dir, "paused-%d" % self.index)
        with open(marker + ".tmp", "w") as f:
            f.write("%d\n" % done)
        os.replace(marker + ".tmp", marker)
        resume = os.path.join(pause_dir, "resume")
        while not os.path.exists(resume):
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("worker %d: paused after %d operations, "
                                   "no %s after %d s" % (self.index, done,
                                                         resume, timeout))
            time.sleep(0.02)
        return time.monotonic() - t0

    def run(self, nops, deadline, progress, slot, pause_at=None,
            pause_dir=None, pause_timeout=600, stop_file=None, rate=None):
        table = [(n, w) for n, w in WEIGHTS
                 if not (NO_LINKS and n == "link")]
        names = [n for n, _ in table]
        weights = [w for _, w in table]
        done = 0
        paused = pause_at is None
        t0 = time.monotonic()
        for _ in range(nops):
            if not paused and done >= pause_at:
                paused = True
                waited = self.pause(pause_dir, done, pause_timeout)
                t0 += waited
                if deadline is not None:
                    deadline += waited
            if rate:
                ahead = t0 + done / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            if deadline is not None and time.monotonic() >= deadline:
                break
            if stop_file is not None and os.path.exists(stop_file):
                break
            op = self.rng.choices(names, weights)[0]
            try:
                self.picked = []
                res = getattr(self, "op_" + op)()
                self.count(op if res is None else "%s:%s" % (op, res))
                self.log(op, res or "ok")
                if res is not None and res.startswith("childerror"):
                    self.unexpected.append("%s: %s" % (op, res))
            except OSError as e:
                tag = errno.errorcode.get(e.errno, str(e.errno))
                self.log(op, tag)
                if e.errno in RACE or e.errno in OP_RACE.get(op, ()):
                    self.count("%s:%s" % (op, tag))
                elif e.errno in UNSUPPORTED:
                    self.count("%s:unsupported" % op)
                elif e.errno in FULL:
                    self.count("%s:%s" % (op, tag))
                    self.count("fs-full")
                else:
                    self.count("%s:%s" % (op, tag))
                    if len(self.unexpected) < 20:
                        self.unexpected.append("%s: %s" % (op, e))
                    else:
                        self.unexpected.append("...")
            done += 1
            if progress is not None:
                struct.pack_into("q", progress, slot * 8, done)
        if not paused:
            self.pause(pause_dir, done, pause_timeout)
        return done


def populate(root, ndirs, nfiles, seed):
    """Deterministic starting tree: NDIRS dirs, NFILES files, some links."""
    rng = random.Random("populate/%s" % seed)
    dirs = [root]
    for i in range(ndirs):
        parent = rng.choice(dirs)
        d = os.path.join(parent, "dir%03d" % i)
        os.mkdir(d)
        dirs.append(d)
    files = []
    for i in range(nfiles):
        d = rng.choice(dirs)
        p = os.path.join(d, "file%04d" % i)
        with open(p, "wb") as f:
            f.write(bytes([i % 256]) * rng.randrange(0, 20000))
        files.append(p)
    for i in range(nfiles // 20):
        os.link(rng.choice(files), os.path.join(rng.choice(dirs),
                                                "hard%03d" % i))
        d = rng.choice(dirs)
        sib = sorted(os.listdir(d))
        os.symlink(rng.choice(sib) if sib else "x",
                   os.path.join(d, "sym%03d" % i))
    print("workload: populated %s: %d dirs, %d files" % (root, ndirs, nfiles))


def write_progress(path, total):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % total)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(prog="workload.py", description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--duration", type=float)
    ap.add_argument("--progress-file")
    ap.add_argument("--own-pgrp", action="store_true")
    ap.add_argument("--no-weird-names", action="store_true")
    ap.add_argument("--no-links", action="store_true",
                    help="never give a file a second name (hard link)")
    ap.add_argument("--no-fifo-over", action="store_true",
                    help="never rename a FIFO over another name (a "
                    "concurrent reader would block opening it)")
    ap.add_argument("--journal",
                    help="directory for per-worker logs of every operation "
                    "(picked paths with their inode numbers), for "
                    "investigating a miss")
    ap.add_argument("--pause-at", type=int, metavar="K",
                    help="every worker pauses after K of its operations "
                    "(needs --pause-dir)")
    ap.add_argument("--pause-dir", metavar="DIR")
    ap.add_argument("--pause-timeout", type=float, default=600)
    ap.add_argument("--rate", type=float, metavar="OPS_PER_SEC",
                    help="at most this many operations per second in all")
    ap.add_argument("--stop-file", metavar="F",
                    help="workers stop once F exists")
    ap.add_argument("--populate", action="store_true")
    ap.add_argument("--dirs", type=int, default=150)
    ap.add_argument("--files", type=int, default=500)
    args = ap.parse_args()
    global NO_LINKS, NO_FIFO_OVER
    NO_LINKS = args.no_links
    NO_FIFO_OVER = args.no_fifo_over
    root = os.path.abspath(args.root)
    if not os.path.isdir(root):
        print("workload: %s: not a directory" % root, file=sys.stderr)
        return 2
    if args.populate:
        populate(root, args.dirs, args.files, args.seed)
        return 0
    if args.procs < 1 or args.ops < 0:
        print("workload: bad --procs/--ops", file=sys.stderr)
        return 2
    if args.rate is not None and args.rate <= 0:
        print("workload: bad --rate", file=sys.stderr)
        return 2
    if args.pause_at is not None and (args.pause_at < 0 or
                                      not args.pause_dir or
                                      not os.path.isdir(args.pause_dir)):
        print("workload: --pause-at needs --pause-at >= 0 and an existing "
              "--pause-dir", file=sys.stderr)
        return 2
    if args.own_pgrp:
        os.setpgid(0, 0)
    deadline = None if args.duration is None \
        else time.monotonic() + args.duration
    progress = mmap.mmap(-1, 8 * args.procs)
    children = {}
    for i in range(args.procs):
        nops = args.ops // args.procs + (1 if i < args.ops % args.procs else 0)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                journal = None
                if args.journal:
                    journal = open(os.path.join(args.journal,
                                                "worker-%d.log" % i), "ab")
                wk = Worker(root, i, args.seed, not args.no_weird_names,
                            journal)
                done = wk.run(nops, deadline, progress, i,
                              pause_at=args.pause_at,
                              pause_dir=args.pause_dir,
                              pause_timeout=args.pause_timeout,
                              stop_file=args.stop_file,
                              rate=args.rate / args.procs
                              if args.rate else None)
                if journal is not None:
                    journal.close()
                res = {"done": done, "counts": wk.counts,
                       "unexpected": wk.unexpected}
                os.write(w, json.dumps(res).encode())
            except BaseException as e:  # report, never fall back into main
                try:
                    os.write(w, json.dumps({"crash": repr(e)}).encode())
                except BaseException:
                    pass
                code = 1
            os._exit(code)
        os.close(w)
        children[pid] = (i, r, bytearray())
    status = 0
    results = []
    live = set(children)
    fds = {r: pid for pid, (_, r, _) in children.items()}
    while live or fds:
        rl, _, _ = select.select(list(fds), [], [], 0.1)
        for fd in rl:
            chunk = os.read(fd, 65536)
            if chunk:
                children[fds[fd]][2].extend(chunk)
            else:
                os.close(fd)
                del fds[fd]
        for pid in list(live):
            p, st = os.waitpid(pid, os.WNOHANG)
            if p:
                live.discard(pid)
                if not os.WIFEXITED(st) or os.WEXITSTATUS(st) != 0:
                    print("workload: worker %d died (status %#x)"
                          % (children[pid][0], st), file=sys.stderr)
                    status = 1
        if args.progress_file:
            total = sum(struct.unpack_from("q", progress, 8 * i)[0]
                        for i in range(args.procs))
            write_progress(args.progress_file, total)
    totals = {}
    done = 0
    for pid, (i, _, buf) in sorted(children.items(), key=lambda x: x[1][0]):
        try:
            res = json.loads(buf.decode() or "{}")
        except ValueError:
            res = {"crash": "unreadable result"}
        if "crash" in res or "done" not in res:
            print("workload: worker %d crashed: %s" % (i, res.get("crash")),
                  file=sys.stderr)
            status = 1
            continue
        results.append(res)
        done += res["done"]
        for k, v in res["counts"].items():
            totals[k] = totals.get(k, 0) + v
        for u in res["unexpected"]:
            print("workload: worker %d: unexpected error: %s" % (i, u),
                  file=sys.stderr)
            status = 1
    if args.progress_file:
        write_progress(args.progress_file, done)
    print("workload: %d operations by %d workers (seed %s)"
          % (done, args.procs, args.seed))
    for k in sorted(totals):
        print("  %-28s %6d" % (k, totals[k]))
    return status


if __name__ == "__main__":
    sys.exit(main())

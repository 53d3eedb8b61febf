#!/usr/bin/env python3
"""fsmonitor-statdiff.py -- a precise core.fsmonitor hook by brute force.

    fsmonitor-statdiff.py 2 TOKEN      (as git runs a hook, in the work tree)

A yardstick for tests/git-fsmonitor.sh: each call lstat()s the whole work
tree (.git left out), keeps that picture under a new token in
$FSMON_STATDIFF_DIR, and answers, for a token it gave, exactly the paths
whose lstat() changed since that picture (added, removed, replaced,
written, chmod'ed): like any precise monitor, and never behind.  A
directory that appeared (or was replaced) at a path is also named with a
name inside it, so that git reads it again (see fstrack-fsmonitor.c).  An
unknown token gets "/".  A test that fails with this hook and with
fstrack-fsmonitor, but not without a hook, fails because git trusts a
precise answer (an entry git itself changes after asking stays valid),
not because of fstrack.
"""
import os
import stat
import sys

STATE = os.environ.get("FSMON_STATDIFF_DIR", "/tmp/fsmonitor-statdiff")


def picture():
    """path -> (kind, ino, size, mode, mtime, ctime) below ".", no .git."""
    pic = {}
    for top, dirs, files in os.walk(".", followlinks=False):
        if ".git" in dirs:
            dirs.remove(".git")
        for name in dirs + files:
            if name == ".git":
                continue
            p = os.path.normpath(os.path.join(top, name))
            try:
                st = os.lstat(p)
            except OSError:
                continue
            kind = "d" if stat.S_ISDIR(st.st_mode) else "f"
            pic[p] = (kind, st.st_ino, st.st_size, st.st_mode,
                      st.st_mtime_ns, st.st_ctime_ns)
    return pic


def save(pic):
    os.makedirs(STATE, exist_ok=True)
    n = len(os.listdir(STATE)) + 1
    tok = "statdiff:%d:%d" % (os.getpid(), n)
    with open(os.path.join(STATE, tok), "w") as f:
        for p, v in pic.items():
            f.write("%s\0%s\0" % (p, ",".join(map(str, v))))
    return tok


def load(tok):
    if not tok.startswith("statdiff:") or "/" in tok:
        return None
    try:
        data = open(os.path.join(STATE, tok)).read().split("\0")
    except OSError:
        return None
    pic = {}
    for i in range(0, len(data) - 1, 2):
        v = data[i + 1].split(",")
        pic[data[i]] = (v[0],) + tuple(int(x) for x in v[1:])
    return pic


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "2":
        sys.exit(1)
    old = load(sys.argv[2])
    new = picture()
    out = sys.stdout.buffer
    out.write(save(new).encode() + b"\0")
    if old is None:
        out.write(b"/\0")
        return
    for p in sorted(set(old) | set(new)):
        a, b = old.get(p), new.get(p)
        if a == b:
            continue
        dirs = [v for v in (a, b) if v is not None and v[0] == "d"]
        if not dirs:
            out.write(os.fsencode(p) + b"\0")
            continue
        out.write(os.fsencode(p) + b"\0" + os.fsencode(p) + b"/\0")
        if b is not None and b[0] == "d" and (a is None or a[1] != b[1]):
            out.write(os.fsencode(p) + b"/.statdiff\0")


if __name__ == "__main__":
    main()

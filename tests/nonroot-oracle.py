#!/usr/bin/env python3
"""nonroot-oracle.py -- what a user may see of root's answer, by access(2).

    nonroot-oracle.py [--dirs] ROOT_ANSWER      (run as the user)

ROOT_ANSWER is root's `fstrack changed ... -0` (records KINDS<TAB>PATH, or
PATH with --dirs, each ended by NUL).  Prints, in the same form and order,
the records the user running this may see by fstrack(1)'s rule: an entry
when the user may read and search the directory that holds its name (so
every directory above it searchable too), a directory of --dirs when the
user may read and search it.  access(2) asks the kernel with the real
uid and groups, as the user: modes, ACLs and all, by the path as it is
now, independently of fstrackd's own check (src/access.c).
"""
import os
import sys


def may_list(d):
    try:
        return os.path.isdir(d) and os.access(d, os.R_OK | os.X_OK)
    except OSError:
        return False


def main(argv):
    dirs = "--dirs" in argv
    path = [a for a in argv if a != "--dirs"][0]
    data = open(path, "rb").read()
    out = []
    for rec in data.split(b"\0")[:-1]:
        p = rec if dirs else rec.split(b"\t", 1)[1]
        d = p if dirs else (os.path.dirname(p) or b"/")
        if may_list(d):
            out.append(rec + b"\0")
    sys.stdout.buffer.write(b"".join(out))
    return 0


sys.exit(main(sys.argv[1:]))

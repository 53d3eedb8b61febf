#!/usr/bin/env python3
"""gitchurn.py -- random changes to a git work tree, for root-fsmonitor.sh.

    gitchurn.py init TREE SEED      make a tree to commit (dirs, files)
    gitchurn.py round TREE SEED N   N random changes of the kinds below

Changes: files created (untracked, in new nested directories too),
modified (appended, or rewritten at the same size), deleted, renamed
(within and across directories); directories made empty, renamed (within
the tree, also with untracked files in them, and made again at the old
path), removed whole; a file replaced by a directory and the other way
round; modes (chmod +x/-x); symbolic links; .gitignore patterns and the
files they match.  Never a name ".git", nothing outside TREE.  Every
change is printed on stdout, one line each, so a failing round can be
read back.
"""
import os
import random
import shutil
import sys

NAMES = ["a", "b", "c", "d1", "e.txt", "f.c", "g h", "x.tmp", "sub", "Zz"]


def walk(tree):
    """Every directory and file below tree (relative), .git left out."""
    dirs, files = [""], []
    for top, dnames, fnames in os.walk(tree):
        rel = os.path.relpath(top, tree)
        rel = "" if rel == "." else rel
        if ".git" in dnames:
            dnames.remove(".git")
        for d in dnames:
            p = os.path.join(rel, d)
            if os.path.islink(os.path.join(tree, p)):
                files.append(p)
            else:
                dirs.append(p)
        for f in fnames:
            files.append(os.path.join(rel, f))
    return dirs, files


class Churn:
    def __init__(self, tree, seed):
        self.tree = tree
        self.r = random.Random(seed)

    def p(self, rel):
        return os.path.join(self.tree, rel)

    def say(self, *words):
        print(" ".join(str(w) for w in words), flush=True)

    def newpath(self, dirs, depth=0):
        d = self.r.choice(dirs)
        for _ in range(self.r.choice([0, 0, 0, 1, 2]) if depth else 0):
            d = os.path.join(d, self.r.choice(NAMES))
        return os.path.join(d, self.r.choice(NAMES))

    def write(self, rel, text):
        with open(self.p(rel), "w") as f:
            f.write(text)

    def content(self):
        return "".join(self.r.choice("abc\n") for _ in
                       range(self.r.randint(0, 40)))

    # --- the changes ------------------------------------------------------
    def create(self, dirs, files):
        rel = self.newpath(dirs, depth=1)
        if os.path.lexists(self.p(rel)):
            return
        parent = os.path.dirname(rel)
        if parent and os.path.lexists(self.p(parent)) and \
                not os.path.isdir(self.p(parent)):
            return
        os.makedirs(self.p(parent) if parent else self.tree, exist_ok=True)
        self.write(rel, self.content())
        self.say("create", rel)

    def modify(self, dirs, files):
        regular = [f for f in files if not os.path.islink(self.p(f))]
        if not regular:
            return
        rel = self.r.choice(regular)
        if self.r.random() < 0.5:
            with open(self.p(rel), "a") as f:
                f.write(self.content() + "x")
            self.say("append", rel)
        else:
            size = os.path.getsize(self.p(rel))
            self.write(rel, "".join(self.r.choice("xyz") for _ in
                                    range(size)))
            self.say("rewrite-same-size", rel)

    def delete(self, dirs, files):
        if files:
            rel = self.r.choice(files)
            os.unlink(self.p(rel))
            self.say("delete", rel)

    def rename(self, dirs, files):
        if not files:
            return
        src = self.r.choice(files)
        dst = self.newpath(dirs)
        if os.path.lexists(self.p(dst)) and os.path.isdir(self.p(dst)):
            return
        os.rename(self.p(src), self.p(dst))
        self.say("rename", src, dst)

    def mkdir(self, dirs, files):
        rel = self.newpath(dirs)
        if not os.path.lexists(self.p(rel)):
            os.mkdir(self.p(rel))
            self.say("mkdir", rel)

    def rename_dir(self, dirs, files):
        cand = [d for d in dirs if d]
        if not cand:
            return
        src = self.r.choice(cand)
        dst = self.newpath([d for d in dirs if not
                            (d + "/").startswith(src + "/")])
        if os.path.lexists(self.p(dst)):
            return
        os.rename(self.p(src), self.p(dst))
        self.say("rename-dir", src, dst)
        if self.r.random() < 0.5:
            # the same path again: git may still hold the old one's record
            os.makedirs(self.p(os.path.join(src, self.r.choice(NAMES))))
            self.say("mkdir-again", src)

    def rmtree(self, dirs, files):
        cand = [d for d in dirs if d]
        if cand and self.r.random() < 0.5:
            rel = self.r.choice(cand)
            shutil.rmtree(self.p(rel))
            self.say("rm-rf", rel)

    def replace(self, dirs, files):
        if files and self.r.random() < 0.5:
            rel = self.r.choice(files)
            os.unlink(self.p(rel))
            os.mkdir(self.p(rel))
            self.write(os.path.join(rel, "in"), "in\n")
            self.say("file-to-dir", rel)
        else:
            cand = [d for d in dirs if d]
            if cand:
                rel = self.r.choice(cand)
                shutil.rmtree(self.p(rel))
                self.write(rel, "was a directory\n")
                self.say("dir-to-file", rel)

    def chmod(self, dirs, files):
        regular = [f for f in files if not os.path.islink(self.p(f))]
        if regular:
            rel = self.r.choice(regular)
            mode = os.stat(self.p(rel)).st_mode ^ 0o111
            os.chmod(self.p(rel), mode)
            self.say("chmod", oct(mode & 0o777), rel)

    def symlink(self, dirs, files):
        rel = self.newpath(dirs)
        if not os.path.lexists(self.p(rel)):
            os.symlink(self.r.choice(NAMES), self.p(rel))
            self.say("symlink", rel)

    def ignore(self, dirs, files):
        d = self.r.choice(dirs)
        gi = os.path.join(d, ".gitignore")
        if os.path.exists(self.p(gi)) and self.r.random() < 0.4:
            os.unlink(self.p(gi))
            self.say("unignore", gi)
            return
        pat = self.r.choice(["*.tmp", "sub/", "b", "!x.tmp", "*.c"])
        with open(self.p(gi), "a") as f:
            f.write(pat + "\n")
        self.say("ignore", gi, pat)

    def round(self, n):
        kinds = [(self.create, 6), (self.modify, 5), (self.delete, 3),
                 (self.rename, 3), (self.mkdir, 2), (self.rename_dir, 2),
                 (self.rmtree, 1), (self.replace, 1), (self.chmod, 1),
                 (self.symlink, 1), (self.ignore, 1)]
        funcs = [f for f, w in kinds for _ in range(w)]
        for _ in range(n):
            dirs, files = walk(self.tree)
            try:
                self.r.choice(funcs)(dirs, files)
            except (NotADirectoryError, FileExistsError, IsADirectoryError,
                    FileNotFoundError):
                pass        # a path that cannot be made: no change

    def init(self):
        for d in ["src/lib/deep", "doc", "empty-later", "t/x/y"]:
            os.makedirs(self.p(d), exist_ok=True)
        for i in range(30):
            dirs, files = walk(self.tree)
            try:
                self.create(dirs, files)
            except (NotADirectoryError, FileExistsError):
                pass


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("init", "round"):
        sys.exit(__doc__)
    c = Churn(sys.argv[2], sys.argv[3])
    if sys.argv[1] == "init":
        c.init()
    else:
        c.round(int(sys.argv[4]))


if __name__ == "__main__":
    main()

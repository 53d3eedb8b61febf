#!/usr/bin/env python3
"""contract.py -- doc/CONTRACT.md against the code and the man pages.

CONTRACT.md fixes the names every part builds against; this checks that
it says what the code does, in both directions, for every name a script
or a black-box check can use:

  - fstrackd's long options (getopt table in fstrackd.c): in CONTRACT's
    synopsis and in fstrackd(8);
  - fstrackd.conf keys (config.c): in CONTRACT and in fstrackd.conf(5);
  - control verbs (control.c's dispatch): CONTRACT's verb list;
  - fstrack's commands (the client's usage text): CONTRACT's command list
    and fstrack(1);
  - fstrack-rsync's options (its --help): CONTRACT's synopsis and
    fstrack-rsync(1);
  - exit statuses (FST_EXIT_* in proto.h): CONTRACT's table;
  - change kinds (query.c's names, dbformat.h's bits): CONTRACT's kind
    list and mask bits;
  - the database: every table and column of schema.c's current schema in
    CONTRACT, and the schema version.

Usage: contract.py TOP_SRCDIR TOP_BUILDDIR.  Prints every mismatch and
exits 1 if there is one, 0 otherwise.
"""
import os
import re
import subprocess
import sys

top, build = sys.argv[1], sys.argv[2]
problems = []


def read(rel):
    with open(os.path.join(top, rel), encoding="utf-8", errors="replace") as f:
        return f.read()


def section(text, title):
    """The body of the markdown section whose heading starts with title."""
    m = re.search(r"^## " + re.escape(title) + r".*?$(.*?)(?=^## |\Z)", text,
                  re.S | re.M)
    if not m:
        problems.append("CONTRACT.md has no section '%s'" % title)
        return ""
    return m.group(1)


def man_text(name):
    """An mdoc page with its escaped hyphens plain."""
    return read(os.path.join("man", name)).replace("\\-", "-")


def man_has_option(man, opt):
    """Whether an mdoc page names long option opt ("Fl -long": Fl adds one
    hyphen)."""
    return re.search(r"\bFl " + re.escape(opt[1:]) + r"(?![\w-])", man) is not None


def man_has_word(man, macro_re, word):
    """Whether an mdoc page has word after one of the macros."""
    return re.search(r"\b(?:%s) %s(?![\w-])" % (macro_re, re.escape(word)),
                     man) is not None


def compare(what, code, doc, code_name="the code", doc_name="CONTRACT.md"):
    for x in sorted(code - doc):
        problems.append("%s: '%s' is in %s but not in %s" % (what, x, code_name,
                                                           doc_name))
    for x in sorted(doc - code):
        problems.append("%s: '%s' is in %s but not in %s" % (what, x, doc_name,
                                                           code_name))


contract = read("doc/CONTRACT.md")

# --- fstrackd options ------------------------------------------------------
src = read("src/fstrackd.c")
longopts = set(re.findall(r'\{\s*"([a-z][a-z-]*)",\s*(?:no|required|optional)_argument',
                          src))
longopts -= {"help", "version"}
sec = section(contract, "fstrackd(8)")
synopsis = sec.split("\n- ")[0]
compare("fstrackd option", longopts, set(re.findall(r"--([a-z][a-z-]*)", synopsis)),
        "fstrackd.c", "CONTRACT.md's fstrackd synopsis")
man = man_text("fstrackd.8")
for o in sorted(longopts):
    if not man_has_option(man, "--" + o):
        problems.append("fstrackd option '--%s' is not in man/fstrackd.8" % o)

# --- fstrackd.conf keys ----------------------------------------------------
src = read("src/config.c")
keys = set(re.findall(r'strcmp\(key, "([a-z-]+)"\)', src))
sec = section(contract, "fstrackd.conf(5)")
block = "\n".join(l for l in sec.splitlines() if l.startswith("    "))
doc_keys = set(re.findall(r"^\s+([a-z][a-z-]+) ", block, re.M))
compare("config key", keys, doc_keys, "config.c", "CONTRACT.md")
man = man_text("fstrackd.conf.5")
for k in sorted(keys):
    if not man_has_word(man, "Ic|Cm", k):
        problems.append("config key '%s' is not in man/fstrackd.conf.5" % k)

# --- control verbs ---------------------------------------------------------
src = read("src/control.c")
verbs = set(re.findall(r'strcmp\(argv\[0\], "([a-z-]+)"\)', src))
sec = section(contract, "Control protocol")
m = re.search(r"Verbs:(.*?)\.\s", sec, re.S)
doc_verbs = set(re.findall(r"`([a-z-]+)(?: [^`]*)?`", m.group(1))) if m else set()
compare("control verb", verbs, doc_verbs, "control.c", "CONTRACT.md")

# --- fstrack commands ------------------------------------------------------
out = subprocess.run([os.path.join(build, "fstrack"), "--help"],
                     capture_output=True, text=True).stderr
usage_cmds = set()
for line in out.splitlines():
    line = line.strip()
    if line.startswith("usage:") or line.startswith("commands:"):
        continue
    for part in line.split("|"):
        w = part.split()
        if w:
            usage_cmds.add(w[0] if w[0] != "consumer" or len(w) < 2 else
                           "consumer " + w[1])
sec = section(contract, "fstrack(1)")
doc_cmds = set()
for m in re.finditer(r"^- `([a-z]+)(?: (get|set|delete))?", sec, re.M):
    doc_cmds.add(m.group(1) + (" " + m.group(2) if m.group(2) else ""))
compare("fstrack command", usage_cmds, doc_cmds, "fstrack's usage", "CONTRACT.md")
man = man_text("fstrack.1")
for c in sorted(usage_cmds):
    if not man_has_word(man, "Ic|Cm", c.split()[0]):
        problems.append("fstrack command '%s' is not in man/fstrack.1" % c)

# fstrack's options, per command, from the usage text
for line in out.splitlines():
    for opt in re.findall(r"--([a-z][a-z-]*)", line):
        if "--" + opt not in sec:
            problems.append("fstrack option '--%s' (usage) is not in CONTRACT.md" % opt)
        if not man_has_option(man, "--" + opt):
            problems.append("fstrack option '--%s' is not in man/fstrack.1" % opt)

# --- fstrack-rsync options ---------------------------------------------------
out = subprocess.run([os.path.join(build, "fstrack-rsync"), "--help"],
                     capture_output=True, text=True).stdout
# the synopsis, the option column of the option lines ("  -s, --socket
# PATH ..."), and "(also ...)" lines; the rest of the text names rsync's own
ropts = set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", out.split("\n\n")[0]))
for l in out.splitlines():
    m = re.match(r"\s{2}(?:-\w, |\s{4})--([a-z][a-z0-9-]*)", l)
    if m:
        ropts.add(m.group(1))
    m = re.match(r"\s+\(also (.*)\)", l)
    if m:
        ropts |= set(re.findall(r"--([a-z][a-z0-9-]*)", m.group(1)))
ropts -= {"help"}
sec = section(contract, "fstrack-rsync(1)")
synopsis = sec.split("\n- ")[0]
doc_ropts = set(re.findall(r"--([a-z][a-z0-9-]*)", synopsis))
compare("fstrack-rsync option", ropts, doc_ropts, "fstrack-rsync --help",
        "CONTRACT.md's fstrack-rsync synopsis")
man = man_text("fstrack-rsync.1")
for o in sorted(ropts):
    if not man_has_option(man, "--" + o):
        problems.append("fstrack-rsync option '--%s' is not in man/fstrack-rsync.1" % o)

# --- exit statuses -------------------------------------------------------------
src = read("src/proto.h")
codes = {int(v): n for n, v in re.findall(r"#define FST_EXIT_(\w+)\s+(\d+)", src)}
sec = section(contract, "fstrack(1)")
doc_codes = set(int(c) for c in re.findall(r"^\| (\d+) \|", sec, re.M))
compare("fstrack exit status", set(codes), doc_codes, "proto.h", "CONTRACT.md")

# --- kinds and mask bits -----------------------------------------------------
src = read("src/query.c")
m = re.search(r"query_kind_names\[\] = \{(.*?)\};", src, re.S)
names = re.findall(r'"([a-z-]+)"|NULL', m.group(1)) if m else []
kinds = {}
for i, n in enumerate(re.findall(r'("([a-z-]+)"|NULL)', m.group(1)) if m else []):
    if n[1]:
        kinds[n[1]] = 1 << i
bits = {int(v, 16): n for n, v in re.findall(r"#define FST_M_(\w+)\s+0x([0-9a-fA-F]+)",
                                              read("src/dbformat.h"))}
sec = section(contract, "fstrack(1)")
kl = re.search(r"KINDS a comma list of(.*?)PATH is", sec, re.S)
doc_kinds = set(re.findall(r"`([a-z-]+)`", kl.group(1))) if kl else set()
compare("change kind", set(kinds), doc_kinds, "query.c", "CONTRACT.md's kind list")
db = section(contract, "Database")
for name, bit in sorted(kinds.items(), key=lambda x: x[1]):
    if not re.search(r"\b%d\b" % bit, db):
        problems.append("mask bit %d (%s) is not in CONTRACT.md's database section"
                        % (bit, name))
for bit in bits:
    if not re.search(r"\b%d\b" % bit, db):
        problems.append("mask bit %d (FST_M_%s) is not in CONTRACT.md's database "
                        "section" % (bit, bits[bit]))

# --- database tables and columns -------------------------------------------------
src = read("src/schema.c")
ver = re.search(r"#define FSTRACK_SCHEMA_VERSION\s+(\d+)", read("src/dbformat.h"))
if ver and ("user_version = %s" % ver.group(1)) not in db:
    problems.append("CONTRACT.md does not give PRAGMA user_version = %s" % ver.group(1))
ddl = ""
for m in re.finditer(r"static const char \w+\[\]\s*=(.*?);\n", src, re.S):
    ddl += "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))
ddl = ddl.replace("\\n", "\n")
if not ddl:
    problems.append("cannot find the schema in src/schema.c")
for t, body in re.findall(r"CREATE TABLE (\w+)\s*\((.*?)\)\s*(?:WITHOUT ROWID)?;", ddl,
                          re.S):
    cols = []
    for part in re.split(r",\s*(?![^()]*\))", body):
        w = re.match(r"\s*(\w+)", part)
        if w and w.group(1).upper() not in ("PRIMARY", "UNIQUE", "FOREIGN",
                                            "CHECK", "CONSTRAINT"):
            cols.append(w.group(1))
    if not re.search(r"^\s+%s\(" % t, db, re.M):
        problems.append("table '%s' (schema.c) is not in CONTRACT.md" % t)
        continue
    start = re.search(r"^\s+%s\(" % t, db, re.M).end()
    decl = db[start:start + 600]
    for c in cols:
        if not re.search(r"\b%s\b" % c, decl):
            problems.append("column %s.%s (schema.c) is not in CONTRACT.md" % (t, c))
for t in re.findall(r"^    (\w+)\(", db, re.M):
    if not re.search(r"CREATE (?:TABLE|VIEW) %s\b" % t, ddl):
        problems.append("table or view '%s' (CONTRACT.md) is not in schema.c" % t)

for p in problems:
    print("contract: " + p)
print("contract: %d mismatch(es)" % len(problems))
sys.exit(1 if problems else 0)

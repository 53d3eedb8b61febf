#!/usr/bin/python3
"""Host side of the fstrack power-cut test (run by tests/powercut/run.sh).

For each cycle: make the data and results images, boot the guest (phase 1),
kill -9 qemu after a random acknowledged workload step, boot it again
(phase 2: journal replay, fstrackd reconcile, `fstrack changed`, oracle
record AFTER), pull the results out of the results image with debugfs and
run oracle.py compare.  Prints one result line per cycle and a summary.

In a cache=lose cycle the guest runs the tracked fs (and a separate state
disk) on dm-log-writes and freezes the disks itself at the cut step
(guest.sh); after the kill the host checks each log against the disk the
guest wrote (replaylog.py check) and rebuilds the disk from its pristine
copy as a drive that lost its volatile write cache would have left it:
everything up to the last completed FLUSH, FUA writes, and a seeded
random subset (per 4 KiB block, keep probability P) of the writes after
it (replaylog.py build).  Each disk loses its own cache.

Exit 0 when every cycle ran and had zero misses, 1 when one failed (a
miss, a daemon or client error), 99 when the harness itself failed (a
harness error that persisted over POWERCUT_RETRIES retries of a cycle).
"""

import argparse
import concurrent.futures
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

ENV = os.environ
SRC = ENV.get("top_srcdir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
ORACLE = os.path.join(SRC, "tests", "oracle.py")
WORKLOAD = os.path.join(SRC, "tests", "workload.py")
REPLAYLOG = os.path.join(SRC, "tests", "powercut", "replaylog.py")
PY = sys.executable


def env_int(name, default):
    try:
        return int(ENV.get(name, default))
    except ValueError:
        sys.exit("powercut: %s must be an integer" % name)


CYCLES = env_int("POWERCUT_CYCLES", 3)
OPS = env_int("POWERCUT_OPS", 300)
PROCS = env_int("POWERCUT_PROCS", 3)
DIRS = env_int("POWERCUT_DIRS", 100)
FILES = env_int("POWERCUT_FILES", 300)
QEMU_TIMEOUT = env_int("POWERCUT_QEMU_TIMEOUT", 300)
TOTAL_TIMEOUT = env_int("POWERCUT_TOTAL_TIMEOUT", 3600)
HARDLINKS = ENV.get("POWERCUT_HARDLINKS", "lenient")
LEVEL = ENV.get("POWERCUT_LEVEL", "full")
SEED = ENV.get("POWERCUT_SEED") or str(random.SystemRandom().randrange(10**6))
KEEP = ENV.get("POWERCUT_KEEP", "") == "1"
JOBS = max(1, env_int("POWERCUT_JOBS", 1))
STATE = ENV.get("POWERCUT_STATE", "alternate")
if STATE not in ("same", "separate", "alternate"):
    sys.exit("powercut: POWERCUT_STATE is same, separate or alternate")
CACHE = ENV.get("POWERCUT_CACHE", "alternate")
if CACHE not in ("keep", "lose", "alternate"):
    sys.exit("powercut: POWERCUT_CACHE is keep, lose or alternate")
RETRIES = env_int("POWERCUT_RETRIES", 2)
LOGSIZE = "1G"      # each dm-log-writes log disk (sparse)


class HarnessError(Exception):
    """The harness failed, not the product: the cycle is run again."""


def log(msg):
    print("[powercut %s] %s" % (time.strftime("%T"), msg), flush=True)


LIVE = set()     # process ids (= process groups) of running qemu wrappers


def on_term(signum, frame):
    """SIGTERM/SIGINT: kill every running guest, then exit."""
    for pid in list(LIVE):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    log("killed by signal %d" % signum)
    os._exit(1)


class Guest:
    """One boot of the guest: qemu with a deadline, console lines."""

    def __init__(self, args, data, results, cmdline, console, state=None,
                 extra=()):
        cmd = ["timeout", "-s", "KILL", str(QEMU_TIMEOUT + 30),
               "qemu-system-x86_64", "-accel", "tcg,thread=multi",
               "-cpu", "max", "-m", "1024", "-smp", "2", "-nic", "none",
               "-display", "none", "-monitor", "none", "-serial", "stdio",
               "-no-reboot", "-kernel", args.kernel, "-initrd", args.initrd,
               "-append", "console=ttyS0 panic=-1 quiet loglevel=3 " + cmdline,
               "-drive", "file=%s,format=raw,if=virtio,cache=none" % data,
               "-drive", "file=%s,format=raw,if=virtio,cache=none,"
               "readonly=on" % args.tools,
               "-drive", "file=%s,format=raw,if=virtio,cache=none" % results]
        for d in ([state] if state is not None else []) + list(extra):
            cmd += ["-drive", "file=%s,format=raw,if=virtio,cache=none" % d]
        self.console = open(console, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        LIVE.add(self.proc.pid)
        self.deadline = time.monotonic() + QEMU_TIMEOUT
        self.buf = b""
        self.t0 = time.monotonic()

    def lines(self):
        """Yield console lines until qemu exits or the deadline passes."""
        fd = self.proc.stdout.fileno()
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise TimeoutError("qemu still running after %d s"
                                   % QEMU_TIMEOUT)
            r, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                if self.buf:
                    yield self.buf.decode("utf-8", "replace")
                return
            self.console.write(chunk)
            self.console.flush()
            self.buf += chunk
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                yield line.rstrip(b"\r").decode("utf-8", "replace")

    def kill(self):
        """The power cut: SIGKILL qemu (and the timeout wrapper)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait()

    def wait(self):
        try:
            self.proc.wait(timeout=QEMU_TIMEOUT + 60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        LIVE.discard(self.proc.pid)
        self.proc.stdout.close()
        self.console.close()
        return self.proc.returncode


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, timeout=600, **kw)


def make_images(cdir, seed, separate, lose=False):
    stage = os.path.join(cdir, "stage")
    os.makedirs(os.path.join(stage, "tree"))
    run([PY, WORKLOAD, os.path.join(stage, "tree"), "--populate",
         "--dirs", str(DIRS), "--files", str(FILES), "--seed", seed],
        stdout=subprocess.DEVNULL)
    data = os.path.join(cdir, "data.img")
    results = os.path.join(cdir, "results.img")
    # cache=lose: no lazy inode table / journal zeroing in the guest (it
    # would only fill the log).
    eopt = ["-E", "lazy_itable_init=0,lazy_journal_init=0"] if lose else []
    run(["mkfs.ext4", "-q", "-F", "-L", "pcdata"] + eopt +
        ["-d", stage, data, "256M"], stdout=subprocess.DEVNULL)
    run(["mkfs.ext4", "-q", "-F", "-L", "pcresults", results, "64M"],
        stdout=subprocess.DEVNULL)
    shutil.rmtree(stage)
    state = None
    if separate:
        state = os.path.join(cdir, "state.img")
        run(["mkfs.ext4", "-q", "-F", "-L", "pcstate"] + eopt +
            [state, "64M"], stdout=subprocess.DEVNULL)
    return data, results, state


def make_logs(cdir, data, state):
    """cache=lose: pristine copies of the disks, and empty log disks.
    Returns the extra drives (vdd a placeholder when there is no state
    disk, so that the logs are always vde and vdf) and the (disk, base,
    log, name) list."""
    disks = [(data, "data")] + ([(state, "state")] if state else [])
    extra = []
    if state is None:
        ph = os.path.join(cdir, "placeholder.img")
        with open(ph, "wb") as f:
            f.truncate(1 << 20)
        extra.append(ph)
    out = []
    for disk, name in disks:
        base = os.path.join(cdir, "%s.base.img" % name)
        shutil.copyfile(disk, base)
        lg = os.path.join(cdir, "%s.wlog.img" % name)
        with open(lg, "wb") as f:
            f.truncate(0)
        run(["truncate", "-s", LOGSIZE, lg])
        extra.append(lg)
        out.append((disk, base, lg, name))
    return extra, out


def replay(res, cdir, logs, rng):
    """cache=lose, after the kill: check each log, then rebuild its disk as
    a drive that lost its cache (see the module doc).  HarnessError if a
    log is incomplete or disagrees with the disk the guest wrote."""
    notes = []
    for disk, base, lg, name in logs:
        tmp = os.path.join(cdir, "%s.replay.img" % name)
        p = subprocess.run([PY, REPLAYLOG, "check", "--log", lg, "--base",
                            base, "--final", disk, "--out", tmp],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=600)
        if p.returncode != 0:
            raise HarnessError("replaylog check %s: %s" % (
                name, p.stdout.decode("utf-8", "replace").strip()))
        keep = rng.choice([0.0, 0.0, 0.5, round(rng.random(), 2)])
        p = subprocess.run([PY, REPLAYLOG, "build", "--log", lg, "--base",
                            base, "--out", tmp, "--keep", str(keep),
                            "--seed", "%s-%s" % (res["seed"], name)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=600)
        if p.returncode != 0:
            raise HarnessError("replaylog build %s: %s" % (
                name, p.stdout.decode("utf-8", "replace").strip()))
        st = json.loads(p.stdout.decode().strip().splitlines()[-1])
        if KEEP:
            os.rename(disk, os.path.join(cdir, "%s.final.img" % name))
        else:
            os.remove(lg)
            os.remove(base)
        os.replace(tmp, disk)
        notes.append("%s: %d entries, %d durable writes, %d cached (kept "
                     "%d/%d blocks, P %.2f)"
                     % (name, st["entries"], st["durable"], st["cached"],
                        st["kept_chunks"], st["cached_chunks"], keep))
    res["replay"] = "; ".join(notes)


def extract(results, outdir, names):
    os.makedirs(outdir, exist_ok=True)
    cmds = "".join("dump /%s %s\n" % (n, os.path.join(outdir, n))
                   for n in names)
    subprocess.run(["debugfs", "-f", "-", results], input=cmds.encode(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=120)
    return {n: os.path.join(outdir, n) for n in names
            if os.path.exists(os.path.join(outdir, n))}


def cycle(args, i):
    """One cycle; returns a dict of results."""
    t0 = time.monotonic()
    cseed = "%s-%d" % (SEED, i)
    rng = random.Random(cseed)
    cut_at = rng.randint(1, OPS)
    cdir = os.path.join(args.work, "cycle-%02d" % i)
    os.makedirs(cdir)
    res = {"cycle": i, "seed": cseed, "cut_target": cut_at, "ok": False,
           "misses": None, "fp": None, "cut_step": None, "error": None,
           "dir": cdir}
    separate = STATE == "separate" or (STATE == "alternate" and i % 2 == 0)
    res["state"] = "separate" if separate else "same"
    # alternate: cycles 1, 2 lose the cache, 3, 4 keep it, 5, 6 lose it...
    # (with the state alternation, every 4 cycles cover the 4 pairs).
    lose = CACHE == "lose" or (CACHE == "alternate" and (i - 1) // 2 % 2 == 0)
    res["cache"] = "lose" if lose else "keep"
    # With the state dir elsewhere nothing forces the tracked fs's journal
    # to commit before its 5 s timer: commit more often, so that the cut
    # finds durable changes to report.
    res["commit"] = rng.choice([1, 2]) if separate else 5
    data, results, state = make_images(cdir, cseed, separate, lose)
    console = os.path.join(cdir, "console.log")
    extra, logs = make_logs(cdir, data, state) if lose else ([], [])
    order = rng.choice(["data,state", "state,data"])
    if lose:
        res["order"] = order if separate else "data"

    # Phase 1: run until the cut.
    g = Guest(args, data, results, "pc.phase=1 pc.ops=%d pc.procs=%d "
              "pc.seed=%s pc.state=%s pc.commit=%d pc.cache=%s pc.cut=%d "
              "pc.order=%s"
              % (OPS, PROCS, cseed, res["state"], res["commit"],
                 res["cache"], cut_at, order),
              console, state, extra)
    snap = None
    last_step = 0
    ended = False
    try:
        for line in g.lines():
            m = re.match(r"PC (\S+) ?(.*)", line)
            if not m:
                continue
            tag, rest = m.groups()
            if tag == "SNAP":
                snap = rest.strip()
            elif tag == "STEP":
                last_step = int(rest)
                if last_step >= cut_at and not lose:
                    g.kill()
                    res["cut_step"] = last_step
                    break
            elif tag == "WORKLOAD-END":
                if lose:
                    ended = True
                    continue
                g.kill()
                res["cut_step"] = "end(%d)" % last_step
                break
            elif tag == "FROZEN" and lose:
                # the guest froze its disks: the cut has happened
                g.kill()
                n = rest.split()[0] if rest.split() else "?"
                res["cut_step"] = ("end(%s)" % n) if ended else n
                break
            elif tag == "HERROR":
                raise HarnessError("phase 1: %s" % rest)
            elif tag in ("ERROR", "HALT"):
                res["error"] = "phase 1: %s %s" % (tag, rest)
                break
        else:
            res["error"] = "phase 1: qemu exited before the cut"
    except TimeoutError as e:
        res["error"] = "phase 1: %s" % e
    finally:
        g.kill()
    res["t_phase1"] = time.monotonic() - g.t0
    if res["error"] is None and (snap is None or not snap.isdigit()):
        res["error"] = "phase 1: no snapshot id (%r)" % snap
    if res["error"]:
        return res
    with open(console, "ab") as f:
        f.write(b"\n===== POWER CUT after step %s =====\n\n"
                % str(res["cut_step"]).encode())
    if lose:
        replay(res, cdir, logs, rng)

    # Phase 2: replay, reconcile, report.
    g = Guest(args, data, results, "pc.phase=2 pc.since=%s pc.state=%s"
              % (snap, res["state"]), console, state)
    done = False
    rc_changed = None
    try:
        for line in g.lines():
            m = re.match(r"PC (\S+) ?(.*)", line)
            if not m:
                continue
            tag, rest = m.groups()
            if tag == "PHASE2-DONE":
                done = True
            elif tag == "CHANGED-RC":
                rc_changed = rest
            elif tag == "ERROR":
                res["error"] = "phase 2: %s" % rest
    except TimeoutError as e:
        res["error"] = "phase 2: %s" % e
    g.wait()
    res["t_phase2"] = time.monotonic() - g.t0
    if res["error"] is None and not done:
        res["error"] = "phase 2: guest did not finish"
    if res["error"]:
        return res

    fsck = subprocess.run(["e2fsck", "-fn", data], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=300)
    with open(os.path.join(cdir, "e2fsck.out"), "wb") as f:
        f.write(fsck.stdout)
    res["fsck"] = fsck.returncode
    out = extract(results, os.path.join(cdir, "results"),
                  ["since", "before.json", "after.json", "reported",
                   "changed.rc", "changed.err", "changed.txt", "status.txt",
                   "daemon.rc"])
    for n in ("before.json", "after.json", "reported", "changed.rc"):
        if n not in out:
            res["error"] = "results: %s missing" % n
            return res
    crc = open(out["changed.rc"]).read().strip()
    drc = open(out["daemon.rc"]).read().strip() if "daemon.rc" in out \
        else "?"
    res["changed_rc"] = crc
    res["daemon_rc"] = drc
    cmp = subprocess.run([PY, ORACLE, "compare", "--reported0",
                          "--hardlinks", HARDLINKS, "--level", LEVEL,
                          out["before.json"], out["after.json"],
                          out["reported"]],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=300)
    text = cmp.stdout.decode("utf-8", "replace")
    with open(os.path.join(cdir, "oracle.out"), "w") as f:
        f.write(text)
    m = re.search(r"MISSES (\d+)", text)
    res["misses"] = int(m.group(1)) if m else None
    m = re.search(r"false positives (\d+)", text)
    res["fp"] = int(m.group(1)) if m else None
    m = re.search(r"must-report (\d+), reported (\d+)", text)
    res["must"] = m.group(1) if m else "?"
    res["oracle_text"] = text
    if crc != "0":
        res["error"] = "fstrack changed exited %s: %s" % (
            crc, open(out.get("changed.err", os.devnull)).read().strip())
    elif cmp.returncode not in (0, 1):
        res["error"] = "oracle compare failed (%d): %s" % (cmp.returncode,
                                                           text[-500:])
    elif drc != "0":
        res["error"] = "fstrackd exited %s on SIGTERM" % drc
    res["ok"] = res["error"] is None and res["misses"] == 0
    res["time"] = time.monotonic() - t0
    return res


def report(r):
    """Print one cycle's result line (and details when it failed)."""
    i = r["cycle"]
    status = "ok" if r["ok"] else "FAIL"
    if r.get("harness"):
        status = "HARNESS-ERROR"
    log("cycle %d %s: seed %s, state %s, cache %s, commit %s, "
        "cut after step %s (target %s), "
        "must-report %s, misses %s, false positives %s, fsck %s, "
        "%.0f s (boot1 %.0f s, boot2 %.0f s)%s"
        % (i, status, r["seed"], r.get("state", "?"), r.get("cache", "?"),
           r.get("commit", "?"), r["cut_step"], r["cut_target"],
           r.get("must", "?"), r["misses"], r["fp"], r.get("fsck", "?"),
           r["time"], r.get("t_phase1", 0), r.get("t_phase2", 0),
           "" if r["error"] is None else ": " + r["error"]))
    if r.get("replay"):
        print("    lost cache (freeze order %s): %s"
              % (r.get("order", "?"), r["replay"]), flush=True)
    if not r["ok"]:
        for line in r.get("oracle_text", "").splitlines():
            if line.startswith(("MISS", "oracle:")):
                print("    " + line)
        print("    logs: %s" % r["dir"], flush=True)
    if not KEEP and r["ok"]:
        shutil.rmtree(r["dir"], ignore_errors=True)
    elif not KEEP:
        for n in os.listdir(r["dir"]) if os.path.isdir(r["dir"]) else []:
            if n.endswith(".img"):
                os.remove(os.path.join(r["dir"], n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--tools", required=True)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    start = time.monotonic()
    log("seed %s, %d cycles (%d at a time), %d ops by %d procs per cycle, "
        "tree %d dirs %d files, oracle level %s hardlinks %s, state %s, "
        "cache %s"
        % (SEED, CYCLES, JOBS, OPS, PROCS, DIRS, FILES, LEVEL, HARDLINKS,
           STATE, CACHE))
    allres = []
    lock = threading.Lock()

    def one(i):
        if time.monotonic() - start > TOTAL_TIMEOUT:
            with lock:
                log("POWERCUT_TOTAL_TIMEOUT (%d s) reached: cycle %d not run"
                    % (TOTAL_TIMEOUT, i))
            return
        for attempt in range(RETRIES + 1):
            t0 = time.monotonic()
            cdir = os.path.join(args.work, "cycle-%02d" % i)
            if attempt:
                shutil.rmtree(cdir, ignore_errors=True)
            try:
                r = cycle(args, i)
            except (HarnessError, subprocess.SubprocessError, OSError) as e:
                r = {"cycle": i, "ok": False, "error": "harness: %s" % e,
                     "harness": True, "misses": None, "fp": None,
                     "cut_step": None, "cut_target": None,
                     "seed": "%s-%d" % (SEED, i), "dir": cdir}
            r["time"] = time.monotonic() - t0
            with lock:
                if r.get("harness") and attempt < RETRIES:
                    log("cycle %d: harness error, run again (%d of %d): %s"
                        % (i, attempt + 1, RETRIES, r["error"]))
                    continue
                report(r)
                allres.append(r)
            break

    if JOBS == 1:
        for i in range(1, CYCLES + 1):
            one(i)
    else:
        with concurrent.futures.ThreadPoolExecutor(JOBS) as ex:
            list(ex.map(one, range(1, CYCLES + 1)))
    allres.sort(key=lambda r: r["cycle"])
    nfail = sum(1 for r in allres if not r["ok"])
    nmiss = sum(r["misses"] or 0 for r in allres)
    times = [r["time"] for r in allres]
    nvoid = sum(1 for r in allres if r.get("must") == "0")
    nharness = sum(1 for r in allres if r.get("harness"))
    nlose = sum(1 for r in allres if r.get("cache") == "lose" and r["ok"])
    must = sum(int(r["must"]) for r in allres
               if str(r.get("must", "")).isdigit())
    log("SUMMARY: %d cycles (%d of them passed with a lost write cache), "
        "%d failed (%d by the harness), %d misses in total, %d must-report "
        "directories covered in all, %d cycles with "
        "nothing durable to report, false positives "
        "%s, %.0f s per cycle on average, %.0f s in all (seed %s)"
        % (len(allres), nlose, nfail, nharness, nmiss, must, nvoid,
           "/".join(str(r["fp"]) for r in allres),
           sum(times) / max(1, len(times)), time.monotonic() - start, SEED))
    if allres and nfail == 0 and len(allres) == CYCLES:
        return 0
    if nfail == nharness and nharness > 0:
        return 99      # only the harness failed
    return 1


if __name__ == "__main__":
    sys.exit(main())

/*
 * perm.c -- holding writers until their directory is durably armed.
 *
 * THE GUARANTEE (durability strict).  Before open() for writing returns on a
 * tracked filesystem, the directory that holds the file (its handle) is in
 * the database, fsync'd, in the current snapshot: either as a change
 * (entry name, kind opened-write) or as an ARM, a record that says "from
 * now on files here may be written without further holds" -- or the file
 * is young, and the start-up rescan finds it by its ctime whatever happens
 * (YOUNG FILES NEED NO HOLD, below).  So if the machine dies at any point
 * after a process could have written, what says where it may have written
 * is already on disk.
 *
 * HOW.  A second fanotify group (FAN_CLASS_CONTENT, fd mode, unlimited
 * queue) marks each tracked filesystem for FAN_OPEN_PERM (files only: no
 * FAN_ONDIR, so opening a directory -- find, ls, du, readdir -- makes no
 * event).  The kernel stops the opener until we answer.  This thread:
 *  1. allows our own process and non-regular files at once;
 *  2. reads the file's path (readlink of the event fd) and tells a
 *     write-open from a read-open with the lease probe: F_SETLEASE
 *     F_RDLCK on the event fd fails with EAGAIN exactly when the file is
 *     open for writing by anyone, this opener included, since the kernel
 *     takes write access before FAN_OPEN_PERM (doc/kernel-facts.md);
 *     anything the probe cannot classify counts as a write.  A read-open
 *     is allowed right here, before the directory is even looked up
 *     (READ-OPENS GO FIRST, below);
 *  3. finds the directory (an O_PATH open of the path's parent, checked
 *     against the file's inode, and name_to_handle_at of it); if it is
 *     armed (or recorded) and durable in this snapshot, allows a
 *     write-open at once -- the ignore mark raced with the open;
 *  4. on the first open of the directory in this snapshot queues a durable
 *     record: the entry (opened-write) for a write-open, an arm for a
 *     read-open (a recorded entry always goes with an arm row, submitted
 *     just before it, so both commit together); and asks armahead.c to
 *     arm what a reader of the directory opens next, its subtree first
 *     (once per directory and snapshot, handed over after perm_lock is
 *     released);
 *  5. parks a write-open until the commit sequence passes the record (a
 *     read-open was let go in step 2 and never waits for that commit);
 *  6. once the record is committed, adds an ignore mark (FAN_MARK_IGNORE,
 *     SURV, EVENT_ON_CHILD, evictable where the kernel has it) on the
 *     directory, so its children's opens stop reaching us for the rest of
 *     the snapshot.  A new snapshot flushes the ignore marks.  The mark
 *     goes on through the O_PATH fd of step 3, kept until then (at most
 *     PERM_KEEP_FDS of them), else through open_by_handle_at.  "The
 *     record is committed" is always store_committed() >= the record's
 *     sequence number, read after the commit: how the mark is added
 *     changes nothing about when.
 * One round trip per directory per snapshot, whatever is opened in it
 * afterwards: the ignore mark goes on only after the record is durable, so
 * a write-open is never let through unheld in a directory that is not
 * durably armed.  A directory born in this snapshot inside one that is
 * armed or recorded is covered by that record (perm_cover).
 *
 * ARMED IS NOT CHANGED.  Queries read the changes table only; arms live in
 * their own table (schema.c), so a directory that was only read is not
 * listed.  Every write in an armed directory is seen by the notification
 * group (notify.c): write(2), pwrite, writev, io_uring writes and
 * O_TRUNC truncation queue FAN_MODIFY; close after writing queues
 * FAN_CLOSE_WRITE; creates, unlinks, renames, links, attribute changes
 * queue their own events.  While the daemon runs those events reach the
 * database, so an armed directory with a real change is listed by its
 * change, not by its arm.  What the notification group can lose is what it
 * had not committed when the daemon stopped uncleanly, and after a power
 * cut the file's ctime, which the start-up rescan relies on, may be lost
 * with it while the data reached the disk.  Hence:
 *
 * AFTER AN UNCLEAN STOP (SIGKILL, crash, power cut; daemon.c keeps meta
 * run_state "running" from start-up until SIGTERM's last durable commit),
 * every directory armed in the newest two snapshots becomes a change of
 * kind "armed" in the current snapshot (store.c, OP_PROMOTE_ARMS), before
 * anything else is recorded.  So any span that includes an unclean stop
 * lists every directory that was armed in it.  Why the snapshot before the
 * newest too: an opener that passed an ignore mark of the old snapshot just
 * before perm_new_snapshot() flushed it may install its fd only after
 * openscan's walk of /proc, and then write in the new snapshot.  Older
 * arms cannot matter: every fd opened through their marks was found by an
 * openscan at a later snapshot switch and recorded there.  After a clean
 * SIGTERM, every event was drained and committed, and the ignore marks died
 * with the group: the next run arms afresh.
 *
 * THE CASES, one by one (armed directory D, ignore mark in place):
 *  - a write through an fd opened after arming: FAN_MODIFY / CLOSE_WRITE
 *    (live); D's arm after an unclean stop.
 *  - a file opened for writing in D and written only through a shared
 *    mapping: no event at all.  Every query barrier walks /proc
 *    (daemon_barrier, openscan.c) and records files open for writing or
 *    mapped shared and writable, so a query made while it is still open or
 *    mapped lists it; closing the fd queues FAN_CLOSE_WRITE; after an
 *    unclean stop, D's arm.  At every snapshot switch openscan carries such
 *    files into the new snapshot as before.
 *  - open(O_RDONLY|O_TRUNC): truncates after the permission event and
 *    probes as a read; the truncation queues FAN_MODIFY and sets ctime;
 *    D's arm after an unclean stop.
 *  - hard links: the ignore mark is judged by the directory of the name
 *    opened.  A write through a name in D is a write in D (armed);
 *    links.c records the other names of a written file live.  After an
 *    unclean stop the other names' directories are found only if they were
 *    armed too or their ctime survived (fstrackd(8) CAVEATS).
 *  - renames into D: no permission event; FAN_MOVED_TO on D (live) and the
 *    directory's ctime (rescan).  The renamed file is then a file of D:
 *    its writes are the first case.  Renames out of D: FAN_MOVED_FROM, and
 *    the file's later opens are judged by its new directory.  A directory
 *    renamed (D itself or a subdirectory): marks and arms follow inodes and
 *    handles, not paths.
 *  - subdirectories: ignore marks cover direct children only, so a
 *    subdirectory of D is armed on its own (by its first open or by
 *    armahead.c); it is never assumed armed because D is.
 *  - a new snapshot: the marks are flushed under perm_lock with the
 *    generation switch, so from then on every open is judged again;
 *    directories write-opened in the last PERM_RECENT_MS are recorded in
 *    the new snapshot (their openers may be between our answer and the end
 *    of open(), invisible to openscan), with their arm rows, and get their
 *    ignore marks as soon as those records commit, like any other
 *    recorded directory: their next opens make no round trip at all.
 *  - a clean SIGTERM: see above; nothing is promoted.  Files open for
 *    writing or mapped at that moment are recorded by the last commit
 *    (daemon_stop), since their mappings may be written and dropped
 *    while the daemon is down; parked writers go on only once their
 *    records are in (bounded by stall-timeout).
 *  - every directory that gets an ignore mark has an arm row in the
 *    snapshot, also one recorded by a change or covered by its parent
 *    (perm_ignore_dir), so the switch race above is covered for it too.
 *  - not seen by openscan: fds in io_uring fixed-file tables and fds in
 *    flight over SCM_RIGHTS; their writes show only as FAN_MODIFY (live)
 *    and ctime (rescan), like writes in async mode (fstrackd(8) CAVEATS).
 *
 * WHAT THE KERNEL LETS THROUGH UNHELD ANYWAY, AND WHAT COVERS IT.
 *  - create, unlink, rename, link, symlink, mkdir, rmdir, chmod, chown,
 *    utimes, xattrs: there is no permission event for them.  The
 *    notification group records them asynchronously (notify.c); after a
 *    crash the start-up reconcile finds them by ctime >= checkpoint - margin
 *    (reconcile.c), because the checkpoint never passes an unrecorded event
 *    and a directory entry change is journalled with its ctime.
 *  - fds opened before the daemon started, or before the current snapshot
 *    began: openscan.c records every such file at start-up, at every
 *    snapshot switch and at every query.
 *  - io_uring opens go through the same open path and are held like any
 *    other; io_uring writes to an fd opened earlier are the case above.
 *  - a stall (below): openers are allowed before their record is durable.
 *
 * READ-OPENS GO FIRST.  A read-open never waits for the arm it causes, so
 * it is answered as soon as the probe has told it from a write-open, and
 * the directory's lookup, its arm and the arm-ahead request follow while
 * the reader goes on.  Nothing depends on the arm being queued before the
 * reader runs: an fd opened for reading cannot write, truncate or map
 * shared-writable, and whatever the reader does next that could change
 * the directory is either a write-open -- an event of its own, read after
 * this one is handled, so it finds the arm queued -- or a name change,
 * which no permission event covers anyway (below).  The event fd is
 * closed before the answer: that drops the probe's lease without an
 * F_UNLCK, and the answered reader can never meet it (another process's
 * write-open in the microseconds between probe and close waits that long,
 * as it did for the F_UNLCK; SIGIO is ignored); the answer names the
 * event by the fd number the kernel gave it, which stays
 * unique among our unanswered events (each holds its own fd open) until
 * the next read of the group, and that comes after the answer.  Answering
 * first is also what keeps this thread awake: the reader's next open is
 * usually queued by the time the bookkeeping is done, and read without a
 * sleep and a wake-up, which on these VMs cost more than the bookkeeping
 * (bench/opens.sh, its floor variant).  If the path raced with a rename,
 * the directory is left unarmed: its next open is judged again.
 *
 * YOUNG FILES NEED NO HOLD.  A write-open of a file born (statx btime) at
 * or after the newest checkpoint minus reconcile-margin is allowed at once;
 * its records are queued as for any first open, and the ignore mark still
 * waits for their commit.  Whatever happens to the machine, such a file
 * is reported:
 *  - if the daemon keeps running, by its events (its CREATE, queued before
 *    this permission event: open(O_CREAT) creates, then asks);
 *  - after a crash or power cut with a durable checkpoint T at or below
 *    btime + margin: the inode exists on disk only if the journal
 *    transaction that created it committed, and that transaction wrote a
 *    ctime equal to its btime; ctime only grows and user space cannot set
 *    it, so every durable name of the file has ctime >= T - margin and
 *    the start-up rescan records its directory (reconcile.c), whether or
 *    not its data or its later times reached the disk.  Without the
 *    creation committed there is no file, and nothing to report;
 *  - with a durable T above btime + margin: T passed the file's CREATE
 *    event, so the record of its directory is durable (store.c invariant
 *    2; the margin covers the event queued a little after btime).
 * fs->checkpoint_ns is the newest checkpoint submitted, never below the
 * durable one, so the test errs towards holding.  Only btime counts: a
 * hard link, a rename or an O_TRUNC of an old file does not make it young.
 * Where statx has no btime (or it lies ahead of the clock), we hold.  This
 * is what makes an untar, a build or a git checkout (new files written
 * through a temporary name and renamed) cost no commit wait per directory.
 *
 * STALL GUARD.  If a durable commit does not finish within stall-timeout
 * (disk stalled or full, database locked), parked openers are allowed,
 * the daemon reports itself degraded, and the records stay queued.  That
 * starts an episode: from then on write-opens are allowed at once (their
 * records still queued) until every record let by has committed, so a
 * disk that stays full costs one stall-timeout, not one per directory;
 * the log says so once per episode.  The
 * checkpoint cannot advance past them (store.c invariant 2), so if the
 * daemon dies before they commit, the next start-up rescans from before
 * the stall and the ctime of every inode written meanwhile brings it in.
 * What a stall does give up is the power-cut guarantee for the writers it
 * let by: if the machine loses power before their records commit, a write
 * that reached the disk without its inode's new ctime is missed.  That is
 * why a stall is loud (degraded, logged, degraded_since in status) and
 * why stall-timeout is long by default.  An arm that never committed has
 * no ignore mark: its directory's opens keep coming here.
 *
 * SAFETY.  This thread never waits on SQLite, never opens a file on a
 * tracked filesystem (O_PATH opens and name_to_handle_at generate no
 * permission events), and answers every event it reads: on every error
 * path, on stop, and if the daemon dies the kernel allows everything
 * pending when the group fd closes (fanotify fails open).  FAN_CLOEXEC
 * keeps the group out of programs we might exec; the daemon forks only
 * before the group exists.
 */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "fstrack.h"
#include "log.h"

#define PERM_RECENT_MS	500	/* write-opens carried into a new snapshot */

struct perm_dir {
	struct perm_dir		*hnext;
	struct fst_fs		*fs;
	struct fst_handle	 h;
	uint64_t		 hash;
	uint64_t		 gen;
	uint64_t		 seq;		/* record queued with this seq */
	int			 durable;	/* committed in generation gen */
	int64_t			 last_write_ms;
	char			*path;
	char			*name;		/* last name write-opened */
	int			 pending;	/* on perm_pend: mark when durable */
	int			 marked;	/* ignore mark added in gen */
	int			 arm_queued;	/* an arm row queued in gen */
	uint64_t		 ahead_gen;	/* arm-ahead asked for in gen */
	int			 dfd;		/* O_PATH fd kept for the mark */
	uint64_t		 hurried;	/* seq store_hurry() was told */
};

struct perm_wait {
	int			 fd;
	uint64_t		 seq;
	int64_t			 deadline_ms;
	struct perm_dir		*dir;
};

static int		 perm_fan = -1;
static int		 perm_wake = -1;
static pthread_t	 perm_thread;
static int		 perm_running;
static _Atomic int	 perm_stopping;
static pthread_mutex_t	 perm_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t		 perm_gen = 1;
static int64_t		 perm_snapshot;
static int64_t		 perm_snapshot_ns;	/* when it began */
static struct perm_dir	**perm_dirs;
static size_t		 perm_dirs_size = 16384, perm_ndirs;
static struct perm_wait	*perm_waits;
static size_t		 perm_nwaits, perm_waits_cap;
static _Atomic uint64_t	 perm_npending;
static int		 perm_stalling;
static uint64_t		 perm_stall_seq;	/* last record a stall let by */
static struct perm_dir	**perm_pend;		/* armed, commit not yet seen */
static size_t		 perm_pend_head, perm_npend, perm_pend_cap;
/* Arm-ahead requests made under perm_lock, handed over after it. */
#define PERM_AHEAD_MAX	64
#define PERM_MARK_SLICE	32	/* ignore marks added between event reads */
static struct {
	struct fst_fs		*fs;
	struct fst_handle	 h;
	uint64_t		 gen;
}			 perm_ahead[PERM_AHEAD_MAX];
static int		 perm_nahead;
/* O_PATH fds of directories kept from their event until their mark. */
#define PERM_KEEP_FDS	256
static int		 perm_nkept;
/* Evictable where the kernel has it: the marks then pin no inodes. */
static unsigned int	 perm_mark_flags = FAN_MARK_ADD | FAN_MARK_IGNORE_SURV |
			     FAN_MARK_EVICTABLE;

/* Monotonic milliseconds. */
static int64_t
perm_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Create the permission group.  Needs CAP_SYS_ADMIN. */
int
perm_init(char *err, size_t errlen)
{
	perm_fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC |
	    FAN_NONBLOCK | FAN_UNLIMITED_QUEUE, O_RDONLY | O_CLOEXEC |
	    O_LARGEFILE);
	if (perm_fan == -1) {
		snprintf(err, errlen, "fanotify_init (permission events): %s%s",
		    strerror(errno), errno == EINVAL ? " (kernel built "
		    "without CONFIG_FANOTIFY_ACCESS_PERMISSIONS)" : "");
		return -1;
	}
	if ((perm_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -1;
	}
	if ((perm_dirs = calloc(perm_dirs_size, sizeof *perm_dirs)) == NULL)
		fatal("out of memory");
	perm_snapshot = atomic_load(&fstd.cur_snapshot);
	perm_snapshot_ns = now_ns();	/* conservative: later than it began */
	return 0;
}

/* The fd of the permission group (-1 when not in strict mode). */
int
perm_fd(void)
{
	return perm_fan;
}

/*
 * Move the permission group to an fd above floor (the notification
 * group's), before the thread starts: see fstrackd_notify_init for why.
 * Returns 0, or -1 with errno.
 */
int
perm_fd_above(int floor)
{
	int	fd;

	if (perm_fan == -1 || perm_fan > floor)
		return 0;
	if ((fd = fcntl(perm_fan, F_DUPFD_CLOEXEC, floor + 1)) == -1)
		return -1;
	close(perm_fan);
	perm_fan = fd;
	return 0;
}

/* Number of openers waiting for a commit. */
uint64_t
perm_pending(void)
{
	return atomic_load(&perm_npending);
}

/* Keep our own state directory out of the permission path. */
static void
perm_ignore_state_dir(void)
{
	if (fanotify_mark(perm_fan, FAN_MARK_ADD | FAN_MARK_IGNORE_SURV,
	    FAN_OPEN_PERM | FAN_EVENT_ON_CHILD | FAN_ONDIR, AT_FDCWD,
	    fstd.cfg.state_dir) == -1 && errno != ENOENT)
		log_debug("ignore mark on state directory: %s", strerror(errno));
}

/* Mark a filesystem for FAN_OPEN_PERM. */
int
perm_mark(struct fst_fs *fs, char *err, size_t errlen)
{
	if (fanotify_mark(perm_fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
	    FAN_OPEN_PERM, AT_FDCWD, fs->mountpoint) == -1) {
		snprintf(err, errlen, "cannot add permission mark on '%s': %s",
		    fs->mountpoint, strerror(errno));
		return -1;
	}
	perm_ignore_state_dir();
	return 0;
}

/*
 * Allow the permission event whose fd number is fd (already closed or
 * not: the kernel finds the event by the number).
 */
static void
perm_allow(int fd)
{
	struct fanotify_response	r;

	r.fd = fd;
	r.response = FAN_ALLOW;
	if (write(perm_fan, &r, sizeof r) != sizeof r && errno != ENOENT)
		log_warn("fanotify response");
}

/* Answer one permission event and close its fd. */
static void
perm_answer(int fd)
{
	perm_allow(fd);
	close(fd);
}

/* Find or add a directory in the table. */
static struct perm_dir *
perm_dir_get(struct fst_fs *fs, const struct fst_handle *h)
{
	uint64_t	 x = handle_hash(fs, h);
	struct perm_dir	*d;

	for (d = perm_dirs[x % perm_dirs_size]; d != NULL; d = d->hnext)
		if (d->hash == x && d->fs == fs && handle_equal(&d->h, h))
			return d;
	if ((d = calloc(1, sizeof *d)) == NULL)
		fatal("out of memory");
	d->fs = fs;
	d->h = *h;
	d->hash = x;
	d->dfd = -1;
	d->hnext = perm_dirs[x % perm_dirs_size];
	perm_dirs[x % perm_dirs_size] = d;
	perm_ndirs++;
	return d;
}

/* Close the O_PATH fd kept for d's ignore mark, if any. */
static void
perm_dir_drop_fd(struct perm_dir *d)
{
	if (d->dfd == -1)
		return;
	close(d->dfd);
	d->dfd = -1;
	perm_nkept--;
}

/*
 * Lend dfd, an O_PATH fd of d from its event, to d while the event is
 * handled, so that an ignore mark added meanwhile needs no
 * open_by_handle_at.  Takes ownership of dfd.
 */
static void
perm_dir_lend_fd(struct perm_dir *d, int dfd)
{
	if (d->dfd != -1) {
		close(dfd);
		return;
	}
	d->dfd = dfd;
	perm_nkept++;
}

/*
 * After d's event: keep its fd until d's ignore mark goes on if the mark
 * is still to come (its record is not committed yet), else close it.
 */
static void
perm_dir_done_fd(struct perm_dir *d)
{
	if (d->dfd != -1 && (d->marked || !d->pending ||
	    perm_nkept > PERM_KEEP_FDS))
		perm_dir_drop_fd(d);
}

/* Drop directories not used in this generation (table kept bounded). */
static void
perm_dirs_trim(void)
{
	struct perm_dir	**pp, *d;
	size_t		  i;
	int64_t		  now = perm_now_ms();

	for (i = 0; i < perm_dirs_size; i++) {
		for (pp = &perm_dirs[i]; (d = *pp) != NULL; ) {
			if ((d->seq != 0 && !d->durable) || d->pending) {
				pp = &d->hnext;
				continue;
			}
			if (now - d->last_write_ms < PERM_RECENT_MS) {
				pp = &d->hnext;
				continue;
			}
			*pp = d->hnext;
			perm_dir_drop_fd(d);
			free(d->path);
			free(d->name);
			free(d);
			perm_ndirs--;
		}
	}
}

/*
 * d's record (an arm when arm) was queued as seq in this generation: not
 * durable, not marked, until that commits.  Caller holds perm_lock.
 */
static void
perm_dir_queued(struct perm_dir *d, uint64_t seq, int arm)
{
	d->seq = seq;
	d->durable = 0;
	d->gen = perm_gen;
	d->marked = 0;
	d->arm_queued = arm;
}

/*
 * Queue a durable record of (d, name) in the current snapshot, and d's arm
 * row with it unless one is queued already: the arm goes first in the same
 * submission (one wake-up of the writer), so it is in the database no
 * later than the record, before d can get its ignore mark.
 */
static void
perm_submit(struct perm_dir *d, const char *name, uint32_t kinds)
{
	struct store_op	*ops[2];
	int		 n = 0, arm;

	arm = d->gen == perm_gen && d->arm_queued;
	if (!arm)
		ops[n++] = store_op_arm(perm_snapshot, d->fs->id, &d->h);
	ops[n] = store_op_change(perm_snapshot, d->fs->id, &d->h, d->path, name,
	    kinds);
	ops[n]->durable = 1;
	n++;
	perm_dir_queued(d, store_submit_many(ops, n) + n - 1, 1);
}

/*
 * Queue a read-open's arm of d in the current snapshot: from its commit
 * on, opens in d are let through unheld for the rest of the snapshot.  It
 * is durable (synchronous=FULL) and unhurried: nobody waits for it yet but
 * d's ignore mark, and a millisecond of company is cheaper than a commit
 * and a wake-up per directory read (store.c, STORE_UNHURRIED_MS).  The
 * next open in d before the arm is in hurries it (perm_hurry): a directory
 * whose files are being read costs the round trips of one commit, as
 * before, and a directory read once waits for company.
 */
static void
perm_submit_arm(struct perm_dir *d)
{
	struct store_op	*op = store_op_arm(perm_snapshot, d->fs->id, &d->h);

	op->durable = 1;
	op->unhurried = 1;
	perm_dir_queued(d, store_submit(op), 1);
}

/* Remember that d's ignore mark goes on once its record is committed. */
static void
perm_pend_add(struct perm_dir *d)
{
	if (d->pending)
		return;
	if (perm_npend == perm_pend_cap && perm_pend_head > perm_pend_cap / 2) {
		memmove(perm_pend, perm_pend + perm_pend_head, (perm_npend -
		    perm_pend_head) * sizeof *perm_pend);
		perm_npend -= perm_pend_head;
		perm_pend_head = 0;
	}
	if (perm_npend == perm_pend_cap) {
		perm_pend_cap = perm_pend_cap ? perm_pend_cap * 2 : 256;
		if ((perm_pend = realloc(perm_pend, perm_pend_cap *
		    sizeof *perm_pend)) == NULL)
			fatal("out of memory");
	}
	perm_pend[perm_npend++] = d;
	d->pending = 1;
}

/*
 * The path of the file open as fd, from /proc, split at its last slash:
 * dir becomes the directory's path ("" for the root), *name points at the
 * entry's name in it.  -1 when there is no usable path: unlinked, not
 * absolute (another namespace), too long, or readlink failed.
 */
static int
perm_path(int fd, char *dir, size_t dirlen, const char **name)
{
	char	 proc[64], *slash;
	ssize_t	 n;

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	n = readlink(proc, dir, dirlen - 1);
	if (n <= 0 || (size_t)n >= dirlen - 1 || dir[0] != '/')
		return -1;
	dir[n] = '\0';
	if (n > 10 && strcmp(dir + n - 10, " (deleted)") == 0)
		return -1;	/* unlinked: no directory changes */
	slash = strrchr(dir, '/');
	*slash = '\0';
	*name = slash + 1;
	return 0;
}

/*
 * Open the directory dir (from perm_path) and take its handle, if its
 * entry name is still the file st -- the path can race with a rename --
 * or whatever it is when anyway.  On success *dfdp is an O_PATH fd of the
 * directory (the caller closes it): one path walk, and the handle and the
 * parent come from the fd.
 */
static int
perm_open_dir(const char *dir, const char *name, const struct stat *st,
    int anyway, struct fst_handle *dh, int *dfdp)
{
	struct stat	st2;
	int		same, dfd;

	dfd = open(dir[0] != '\0' ? dir : "/", O_PATH | O_DIRECTORY |
	    O_CLOEXEC);
	if (dfd == -1)
		return -1;
	same = fstatat(dfd, name, &st2, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st2.st_ino == st->st_ino && st2.st_dev == st->st_dev;
	if ((same || anyway) && handle_of_fd(dfd, "", AT_EMPTY_PATH, dh) == 0) {
		*dfdp = dfd;
		return 0;
	}
	close(dfd);
	return -1;
}

/*
 * Find the directory holding the file open as fd, whose path perm_path
 * has just read into dir and *name, reading it again if it raced with a
 * rename (perm_open_dir).
 */
static int
perm_locate(int fd, const struct stat *st, struct fst_handle *dh,
    char *dir, size_t dirlen, const char **name, int *dfdp)
{
	int	tries;

	for (tries = 0; tries < 3; tries++) {
		if (tries > 0 && perm_path(fd, dir, dirlen, name) != 0)
			return -1;
		/* Raced with renames three times: use the last answer anyway. */
		if (perm_open_dir(dir, *name, st, tries == 2, dh, dfdp) == 0)
			return 0;
	}
	return -1;
}

/*
 * Whether the open behind fd must be treated as a write-open (the lease
 * probe of step 2): 1 unless F_SETLEASE F_RDLCK succeeds, whose lease then
 * lasts until fd is closed.
 */
static int
perm_write_open(int fd)
{
	/* EAGAIN: open for writing; anything else: cannot tell, so hold. */
	return fcntl(fd, F_SETLEASE, F_RDLCK) != 0;
}

/*
 * Whether the file open as fd was born at or after the newest checkpoint of
 * fs minus the margin (YOUNG FILES NEED NO HOLD): its write-open need not
 * wait for a commit.
 */
static int
perm_young(int fd, struct fst_fs *fs)
{
	struct statx	stx;
	int64_t		btime, from;

	from = atomic_load(&fs->checkpoint_ns);
	if (from <= 0 || statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &stx) == -1 ||
	    !(stx.stx_mask & STATX_BTIME))
		return 0;
	btime = (int64_t)stx.stx_btime.tv_sec * 1000000000 +
	    stx.stx_btime.tv_nsec;
	from -= (int64_t)fstd.cfg.reconcile_margin_ms * 1000000;
	return btime >= from && btime <= now_ns() + 1000000000;
}

/*
 * Someone waits for d's record, or opens in d again before it is in: tell
 * the writer not to wait for company (once per record).
 */
static void
perm_hurry(struct perm_dir *d)
{
	if (d->hurried == d->seq)
		return;
	d->hurried = d->seq;
	store_hurry(d->seq);
}

/* Park an opener until seq commits. */
static void
perm_park(int fd, struct perm_dir *d)
{
	perm_hurry(d);
	if (perm_nwaits == perm_waits_cap) {
		perm_waits_cap = perm_waits_cap ? perm_waits_cap * 2 : 64;
		perm_waits = realloc(perm_waits, perm_waits_cap *
		    sizeof *perm_waits);
		if (perm_waits == NULL)
			fatal("out of memory");
	}
	perm_waits[perm_nwaits].fd = fd;
	perm_waits[perm_nwaits].seq = d->seq;
	perm_waits[perm_nwaits].deadline_ms = perm_now_ms() +
	    fstd.cfg.stall_timeout_ms;
	perm_waits[perm_nwaits].dir = d;
	perm_nwaits++;
	atomic_store(&perm_npending, perm_nwaits);
	atomic_fetch_add(&fstd.st.perm_held, 1);
}

/* Add the ignore mark that silences d's children for this snapshot. */
static void
perm_ignore_dir(struct perm_dir *d)
{
	struct {
		struct file_handle	fh;
		unsigned char		buf[FST_HANDLE_MAX];
	} u;
	int	dfd, rc;

	if (d->marked)
		return;
	d->marked = 1;	/* tried once per generation, whatever the result */
	/*
	 * Every marked directory has an arm row in this snapshot, also one
	 * recorded by a change or covered by its parent: an opener that
	 * passes this mark just before the next snapshot switch may write in
	 * the next snapshot, which only the promotion of this snapshot's arms
	 * covers.  It need not be durable now: the next snapshot's row is
	 * committed durably after it, before anyone can ask about that
	 * snapshot; within this one the change or the parent covers d.
	 */
	if (!d->arm_queued) {
		store_submit(store_op_arm(perm_snapshot, d->fs->id, &d->h));
		d->arm_queued = 1;
	}
	if ((dfd = d->dfd) != -1) {
		d->dfd = -1;	/* the directory of d's own event */
		perm_nkept--;
	} else {
		u.fh.handle_bytes = d->h.len;
		u.fh.handle_type = d->h.type;
		memcpy(u.fh.f_handle, d->h.bytes, d->h.len);
		dfd = open_by_handle_at(d->fs->mount_fd, &u.fh, O_PATH |
		    O_CLOEXEC);
		if (dfd == -1)
			return;
	}
	rc = fanotify_mark(perm_fan, perm_mark_flags, FAN_OPEN_PERM |
	    FAN_EVENT_ON_CHILD, dfd, ".");
	if (rc == -1 && errno == EINVAL &&
	    (perm_mark_flags & FAN_MARK_EVICTABLE)) {
		perm_mark_flags &= ~FAN_MARK_EVICTABLE;	/* older kernel */
		log_debug("no evictable marks: ignore marks pin inodes");
		rc = fanotify_mark(perm_fan, perm_mark_flags, FAN_OPEN_PERM |
		    FAN_EVENT_ON_CHILD, dfd, ".");
	}
	/* Without the mark (ENOSPC: max_user_marks) opens keep coming. */
	if (rc == -1)
		log_debug("ignore mark: %s", strerror(errno));
	else
		atomic_fetch_add(&fstd.st.perm_marks, 1);
	close(dfd);
}

/*
 * Whether directory d (at path) is covered in this snapshot without a
 * record of its own: it was born after the snapshot began (statx btime,
 * which user space cannot set) inside a directory that is recorded, or
 * itself covered, in this snapshot.  A directory that did not exist when a
 * consumer's snapshot began is new to that consumer, so the recorded
 * parent's listing already tells it to copy the whole subtree; a
 * pre-existing directory moved in is old and never covered.  This is what
 * keeps an untar at one durable commit instead of one per directory
 * (doc/prototype-measurements.md).  On success d takes the covering record's
 * sequence number (the opener waits for it, and hurries it) and the
 * recorded ancestor is returned; the topmost new directory of a new
 * subtree is recorded itself.
 * NULL means d is older than the snapshot and needs its own record.
 */
static struct perm_dir *
perm_cover(struct perm_dir *d, const char *path, int depth)
{
	struct statx		 stx;
	struct fst_handle	 ph;
	struct perm_dir		*p;
	char			 ppath[PATH_MAX], *slash;
	int64_t			 btime;

	if (d->gen == perm_gen && d->seq != 0) {
		if (!d->durable && d->seq <= store_committed()) {
			d->durable = 1;
			perm_ignore_dir(d);
		}
		return d;
	}
	if (depth > 64 || handle_equal(&d->h, &d->fs->root))
		return NULL;
	/* The event's own directory by its fd: no walk of the path again. */
	if ((depth == 0 && d->dfd != -1 ? statx(d->dfd, "", AT_EMPTY_PATH,
	    STATX_BTIME, &stx) : statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW,
	    STATX_BTIME, &stx)) == -1 || !(stx.stx_mask & STATX_BTIME))
		return NULL;
	btime = (int64_t)stx.stx_btime.tv_sec * 1000000000 +
	    stx.stx_btime.tv_nsec;
	if (btime < perm_snapshot_ns)
		return NULL;	/* older than the snapshot */
	if (btime > now_ns() + 1000000000)
		return NULL;	/* from the future: the clock stepped back */
	snprintf(ppath, sizeof ppath, "%s", path);
	if ((slash = strrchr(ppath, '/')) == NULL)
		return NULL;
	if (slash == ppath)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (handle_of_fd(AT_FDCWD, ppath, 0, &ph) != 0)
		return NULL;
	p = perm_dir_get(d->fs, &ph);
	if (p == d)
		return NULL;
	if ((p = perm_cover(p, ppath, depth + 1)) == NULL) {
		/* The top of a new subtree: one record covers all of it. */
		perm_submit(d, ".", FST_M_CONTENTS | FST_M_ISDIR);
		return d;
	}
	d->gen = perm_gen;
	d->seq = p->seq;
	d->durable = p->durable;
	d->marked = 0;
	d->arm_queued = 0;
	atomic_fetch_add(&fstd.st.perm_covered, 1);
	return p;
}

/*
 * Ask armahead.c, once per directory and generation, to arm what a reader
 * of d opens next (d's subtree, then what follows it: THE WALK FOLLOWS
 * THE READER there); queued, perm_ahead_flush() hands the queue over.
 * Caller holds perm_lock.
 */
static void
perm_ahead_add(struct perm_dir *d)
{
	if (d->ahead_gen == perm_gen)
		return;		/* asked already in this snapshot */
	d->ahead_gen = perm_gen;
	if (perm_nahead == PERM_AHEAD_MAX) {
		/* perm_lock -> ra_lock is allowed; this is only slower. */
		armahead_request(d->fs, &d->h, perm_gen);
		return;
	}
	perm_ahead[perm_nahead].fs = d->fs;
	perm_ahead[perm_nahead].h = d->h;
	perm_ahead[perm_nahead].gen = perm_gen;
	perm_nahead++;
}

/*
 * Hand the queued arm-ahead requests to armahead.c.  Perm thread, without
 * perm_lock: the walker's callback takes perm_lock, so a walker woken
 * while we held it would only wait for us.
 */
static void
perm_ahead_flush(void)
{
	int	i;

	for (i = 0; i < perm_nahead; i++)
		armahead_request(perm_ahead[i].fs, &perm_ahead[i].h,
		    perm_ahead[i].gen);
	perm_nahead = 0;
}

/*
 * The bookkeeping of an open in directory dh (at dir, open as dfd, which
 * it takes; the entry name when a write-open, else NULL): on the first
 * open of the directory in this snapshot, its record (a write-open's
 * entry, or an arm) unless a recorded parent covers it, and the arm-ahead
 * request.  Returns the directory, durable or not.
 */
static struct perm_dir *
perm_note_open(struct fst_fs *fs, const struct fst_handle *dh,
    const char *dir, const char *name, int dfd)
{
	struct perm_dir		*d;
	const char		*dpath;

	dpath = dir[0] != '\0' ? dir : "/";
	d = perm_dir_get(fs, dh);
	perm_dir_lend_fd(d, dfd);
	if (d->gen == perm_gen && d->seq != 0 && !d->durable &&
	    d->seq <= store_committed())
		d->durable = 1;
	if (d->gen == perm_gen && d->durable)
		return d;	/* raced with its ignore mark, or it has none */
	if (d->gen == perm_gen && d->seq != 0)
		perm_hurry(d);	/* opened again before its record is in */
	if (name != NULL) {
		d->last_write_ms = perm_now_ms();
		free(d->name);
		d->name = strdup(name);
	}
	/* The path is only a hint for the records queued below. */
	if ((name != NULL || d->gen != perm_gen || d->seq == 0) &&
	    (d->path == NULL || strcmp(d->path, dpath) != 0)) {
		free(d->path);
		d->path = strdup(dpath);
	}
	if (d->gen != perm_gen || d->seq == 0) {
		if (perm_cover(d, dpath, 0) == NULL) {
			if (name != NULL)
				perm_submit(d, name, FST_M_OPENED_WRITE);
			else
				perm_submit_arm(d);
			perm_ahead_add(d);
		}
		perm_pend_add(d);
	}
	if (!d->durable && d->seq <= store_committed())
		d->durable = 1;		/* e.g. carried into this snapshot */
	return d;
}

/*
 * A write-open of name in directory dh (at dir, open as dfd): answer it
 * once its directory is durable, or now when it need not wait (a stall, a
 * young file); else park it.  Returns the directory.
 */
static struct perm_dir *
perm_handle_write(int fd, struct fst_fs *fs, const struct fst_handle *dh,
    const char *dir, const char *name, int dfd)
{
	struct perm_dir	*d = perm_note_open(fs, dh, dir, name, dfd);

	if (d->durable) {
		perm_answer(fd);
		perm_ignore_dir(d);
	} else if (perm_stalling) {
		/*
		 * A stall episode is on: commits did not finish within
		 * stall-timeout, and until the records let by so far commit,
		 * waiting again would only wedge writers one timeout each.
		 * The record stays queued; the checkpoint cannot pass it.
		 */
		perm_answer(fd);
		atomic_fetch_add(&fstd.st.perm_stalled, 1);
		if (d->seq > perm_stall_seq)
			perm_stall_seq = d->seq;
	} else if (perm_young(fd, d->fs)) {
		perm_answer(fd);	/* found by its ctime whatever happens */
		atomic_fetch_add(&fstd.st.perm_young, 1);
	} else
		perm_park(fd, d);
	return d;
}

/*
 * Classify one permission event; answer it now or park it.  The first
 * open of any kind in a directory per snapshot arms it (a write-open also
 * records its entry) and asks armahead.c to arm the subtree below; a
 * read-open never waits for that commit and is answered before the
 * directory is looked up (READ-OPENS GO FIRST); a write-open waits.
 */
static void
perm_handle(int fd, pid_t pid)
{
	struct stat		 st;
	struct perm_dir		*d;
	struct fst_fs		*fs;
	struct fst_handle	 dh;
	char			 dir[PATH_MAX];
	const char		*name;
	int			 dfd;

	atomic_fetch_add(&fstd.st.perm_events, 1);
	if (pid == fstd.pid || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (fs = fsinfo_by_dev(st.st_dev)) == NULL ||
	    perm_path(fd, dir, sizeof dir, &name) != 0) {
		/* Unlinked files have no directory that could change. */
		perm_answer(fd);
		return;
	}
	if (!perm_write_open(fd)) {
		close(fd);	/* drops the lease: before the answer */
		perm_allow(fd);
		/* Raced with a rename: left unarmed, judged again next time. */
		if (perm_open_dir(dir, name, &st, 0, &dh, &dfd) != 0)
			return;
		d = perm_note_open(fs, &dh, dir, NULL, dfd);
		if (d->durable)
			perm_ignore_dir(d);
		perm_dir_done_fd(d);
		return;
	}
	if (perm_locate(fd, &st, &dh, dir, sizeof dir, &name, &dfd) != 0) {
		perm_answer(fd);
		return;
	}
	perm_dir_done_fd(perm_handle_write(fd, fs, &dh, dir, name, dfd));
}

/*
 * armahead.c found directories hs[0..n-1] below an armed one: arm those
 * not armed yet in generation gen (isnew[i] = 1), in one batch whose last
 * record is durable.  Walker thread; non-zero once gen is over.
 */
static int
perm_arm_ahead(struct fst_fs *fs, uint64_t gen, const struct fst_handle *hs,
    int n, unsigned char *isnew)
{
	struct perm_dir	*dirs[n];
	struct store_op	*ops[n];
	uint64_t	 seq;
	int		 i, k = 0;

	pthread_mutex_lock(&perm_lock);
	if (gen != perm_gen || atomic_load(&perm_stopping)) {
		pthread_mutex_unlock(&perm_lock);
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct perm_dir *d = perm_dir_get(fs, &hs[i]);

		isnew[i] = d->gen != perm_gen || d->seq == 0;
		if (!isnew[i])
			continue;
		ops[k] = store_op_arm(perm_snapshot, fs->id, &d->h);
		dirs[k++] = d;
	}
	if (k > 0) {
		ops[k - 1]->durable = 1;
		seq = store_submit_many(ops, k);
		for (i = 0; i < k; i++) {
			perm_dir_queued(dirs[i], seq + i, 1);
			perm_pend_add(dirs[i]);
		}
	}
	atomic_fetch_add(&fstd.st.perm_armed_ahead, k);
	pthread_mutex_unlock(&perm_lock);
	return 0;
}

/*
 * Release every opener whose record is committed; apply the stall guard;
 * add the ignore marks of up to PERM_MARK_SLICE more directories whose
 * arms are committed.  Returns non-zero when more such marks are left: a
 * walk's commit brings hundreds, ~5-10 us each (the kernel sets a flag on
 * every child's dentry), and events wait while we add them, so the loop
 * reads events between slices (a reader's open that met the end of a walk
 * waited up to ~0.7 ms behind one batch before).
 */
static int
perm_release(void)
{
	uint64_t	committed = store_committed();
	int64_t		now = perm_now_ms();
	size_t		i, j, n = 0;
	int		stalled = 0, more = 0;

	for (i = j = 0; i < perm_nwaits; i++) {
		struct perm_wait *w = &perm_waits[i];

		if (w->seq <= committed) {
			/*
			 * The waiter's record is in; the directory is durable
			 * in this snapshot only if its own current record is.
			 */
			if (!w->dir->durable && w->dir->gen == perm_gen &&
			    w->dir->seq <= committed) {
				w->dir->durable = 1;
				perm_ignore_dir(w->dir);
			}
			perm_answer(w->fd);
		} else if (now >= w->deadline_ms || perm_stalling) {
			/* Once an episode began, nobody waits again in it. */
			perm_answer(w->fd);
			atomic_fetch_add(&fstd.st.perm_stalled, 1);
			if (w->seq > perm_stall_seq)
				perm_stall_seq = w->seq;
			stalled = 1;
		} else
			perm_waits[j++] = *w;
	}
	perm_nwaits = j;
	atomic_store(&perm_npending, perm_nwaits);
	/*
	 * Arms were queued in sequence order (a covered directory may carry
	 * an older one: it is marked a little late, or by its next event), so
	 * stop at the first that is not committed: O(committed), not O(all),
	 * however many arms are in flight.
	 */
	for (i = perm_pend_head; i < perm_npend; i++) {
		struct perm_dir *d = perm_pend[i];

		if (d->gen == perm_gen && d->seq > committed)
			break;
		if (n++ == PERM_MARK_SLICE) {
			more = 1;	/* the rest after the next event read */
			break;
		}
		d->pending = 0;
		if (d->gen == perm_gen) {
			d->durable = 1;
			perm_ignore_dir(d);
		}
		perm_dir_drop_fd(d);
	}
	perm_pend_head = i;
	if (perm_pend_head == perm_npend)
		perm_pend_head = perm_npend = 0;
	if (stalled && !perm_stalling) {
		log_warnx("durable commit stalled for more than %d ms%s%s: "
		    "allowing writers before their directory is recorded; "
		    "the next start-up reconciles from before the stall",
		    fstd.cfg.stall_timeout_ms, store_last_error()[0] ?
		    ": " : "", store_last_error());
		health_set_degraded(DEGRADED_STALL, "durable commit stalled: "
		    "writers allowed before their directory was recorded");
		perm_stalling = 1;
	} else if (!stalled && perm_stalling && committed >= perm_stall_seq) {
		/* Every record of the stalled writers is in: caught up. */
		perm_stalling = 0;
		log_warnx("durable commits keep up again");
		health_clear_degraded(DEGRADED_STALL);
	}
	return more;
}

/*
 * Read and handle every queued permission event.  A read that leaves room
 * for another event found the queue empty: no second read() to see EAGAIN
 * (anything queued since makes the group fd readable for the next poll).
 */
static void
perm_read(void)
{
	char					 buf[8192]
	    __attribute__((aligned(8)));
	struct fanotify_event_metadata		*md;
	ssize_t					 n = sizeof buf;

	while (n > (ssize_t)(sizeof buf - 2 * FAN_EVENT_METADATA_LEN)) {
		n = read(perm_fan, buf, sizeof buf);
		if (n <= 0)
			return;
		for (md = (struct fanotify_event_metadata *)buf;
		    FAN_EVENT_OK(md, n); md = FAN_EVENT_NEXT(md, n)) {
			if (md->vers != FANOTIFY_METADATA_VERSION) {
				if (md->fd >= 0)
					perm_answer(md->fd);
				continue;
			}
			if (md->fd < 0)
				continue;	/* overflow: cannot happen unlimited */
			if (md->mask & FAN_OPEN_PERM)
				perm_handle(md->fd, md->pid);
			else
				perm_answer(md->fd);
		}
	}
}

/* The permission thread. */
static void *
perm_main(void *arg)
{
	struct pollfd	pfd[3];
	uint64_t	v;
	int		timeout, more = 0;
	int64_t		next;
	size_t		i;

	for (;;) {
		timeout = more ? 0 : 1000;
		if (perm_nwaits > 0 && !more) {
			next = perm_waits[0].deadline_ms;
			for (i = 1; i < perm_nwaits; i++)
				if (perm_waits[i].deadline_ms < next)
					next = perm_waits[i].deadline_ms;
			next -= perm_now_ms();
			timeout = next < 0 ? 0 : next < 1000 ? (int)next + 1 :
			    1000;
		}
		pfd[0].fd = perm_fan;
		pfd[0].events = POLLIN;
		pfd[1].fd = store_event_fd();
		pfd[1].events = POLLIN;
		pfd[2].fd = perm_wake;
		pfd[2].events = POLLIN;
		if (poll(pfd, 3, timeout) == -1 && errno != EINTR)
			log_warn("poll");
		if (pfd[1].revents & POLLIN)
			(void)!read(store_event_fd(), &v, sizeof v);
		if (pfd[2].revents & POLLIN)
			(void)!read(perm_wake, &v, sizeof v);
		pthread_mutex_lock(&perm_lock);
		if (pfd[0].revents & POLLIN) {
			(void)perm_release();
			perm_read();
		}
		/* Records committed while we read: no need to wait. */
		more = perm_release();
		if (perm_ndirs > 100000)
			perm_dirs_trim();
		pthread_mutex_unlock(&perm_lock);
		perm_ahead_flush();
		if (atomic_load(&perm_stopping))
			break;
	}
	/*
	 * Parked openers go on only once their records are in (bounded by
	 * stall-timeout): the writer still runs, and a power cut right after
	 * a clean stop must find their directories.  Then answer everything.
	 */
	pthread_mutex_lock(&perm_lock);
	next = perm_now_ms() + fstd.cfg.stall_timeout_ms;
	while (perm_nwaits > 0 && perm_now_ms() < next) {
		pthread_mutex_unlock(&perm_lock);
		pfd[0].fd = store_event_fd();
		pfd[0].events = POLLIN;
		if (poll(pfd, 1, 50) == 1)
			(void)!read(store_event_fd(), &v, sizeof v);
		pthread_mutex_lock(&perm_lock);
		(void)perm_release();
	}
	for (i = 0; i < perm_nwaits; i++)
		perm_answer(perm_waits[i].fd);
	perm_nwaits = 0;
	atomic_store(&perm_npending, 0);
	pthread_mutex_unlock(&perm_lock);
	return NULL;
}

/* Start the permission thread. */
int
perm_start(void)
{
	if (perm_fan == -1)
		return 0;
	if (pthread_create(&perm_thread, NULL, perm_main, NULL) != 0)
		return -1;
	(void)pthread_setname_np(perm_thread, "fstrackd-perm");
	perm_running = 1;
	if (armahead_start(perm_arm_ahead) != 0)
		log_warnx("cannot start the arm-ahead walker: every directory "
		    "is armed when first opened");
	return 0;
}

/*
 * A new snapshot: from now on write-opens are held for snapshot id.  Called
 * by the main thread before it switches its own snapshot.  Holding
 * perm_lock means no event is half-classified under the old generation.
 * Directories write-opened in the last PERM_RECENT_MS are recorded in the
 * new snapshot too: their openers may be between our answer and the end of
 * open(), invisible to openscan's walk of /proc.
 */
void
perm_new_snapshot(int64_t id)
{
	struct perm_dir	*d;
	size_t		 i;
	int64_t		 now;
	uint64_t	 one = 1;

	if (perm_fan == -1)
		return;
	pthread_mutex_lock(&perm_lock);
	now = perm_now_ms();
	perm_gen++;
	perm_snapshot = id;
	perm_snapshot_ns = now_ns();
	/* Old marks left in place would let writers by unheld: never. */
	if (fanotify_mark(perm_fan, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL) == -1)
		fatal("cannot flush the ignore marks at a snapshot switch");
	perm_ignore_state_dir();
	for (i = 0; i < perm_dirs_size; i++)
		for (d = perm_dirs[i]; d != NULL; d = d->hnext)
			if (now - d->last_write_ms < PERM_RECENT_MS &&
			    d->name != NULL) {
				perm_submit(d, d->name,
				    FST_M_OPENED_WRITE | FST_M_OPEN_AT_SNAPSHOT);
				/* Durable soon: marked then, no round trip. */
				perm_pend_add(d);
			}
	/*
	 * Parked openers now wait for a record in the new snapshot, however
	 * long they have waited: their directory is recorded again here.
	 */
	for (i = 0; i < perm_nwaits; i++) {
		d = perm_waits[i].dir;
		if (d->gen != perm_gen)
			perm_submit(d, d->name != NULL ? d->name : ".",
			    FST_M_OPENED_WRITE | FST_M_OPEN_AT_SNAPSHOT);
		perm_waits[i].seq = d->seq;
	}
	pthread_mutex_unlock(&perm_lock);
	(void)!write(perm_wake, &one, sizeof one);
}

/* Stop: answer every event, then close the group. */
void
perm_stop(void)
{
	uint64_t	one = 1;

	if (!perm_running)
		return;
	atomic_store(&perm_stopping, 1);
	armahead_stop();
	(void)!write(perm_wake, &one, sizeof one);
	pthread_join(perm_thread, NULL);
	perm_running = 0;
	close(perm_fan);	/* the kernel allows anything still pending */
	perm_fan = -1;
}

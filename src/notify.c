/*
 * notify.c -- the notification group: reading what changed.
 *
 * One fanotify group in notification class with FAN_REPORT_DFID_NAME_TARGET
 * and a filesystem mark per tracked filesystem.  Every create, delete, move
 * (both sides), modify, attrib and close-after-write, on files and on
 * directories, arrives as (directory handle, entry name); the kernel queues
 * it inside the system call that caused it, so after a read returns EAGAIN
 * every change whose system call has returned is in our hands (the query
 * barrier of notify_drain()).
 *
 * The queue is unlimited: it never overflows silently.  Should it overflow
 * anyway (--bounded-queue, for tests), FAN_Q_OVERFLOW records a gap on every
 * filesystem, so no query pretends to be complete across it.
 *
 * Reading as fast as events arrive yields about one event per read() and
 * costs the workload CPU.  After a read that emptied the queue we stop
 * polling for merge-delay milliseconds: the kernel merges a file's CREATE,
 * MODIFY and CLOSE_WRITE meanwhile (doc/prototype-measurements.md: 454k -> 90k
 * events for one untar).  Barriers drain at once regardless.
 *
 * The writer's queue is bounded (store_queue_full): while it is full we
 * stop reading and the kernel keeps the events, so a burst of millions of
 * changes costs the daemon no more memory than a small one.  A drain waits
 * for room instead (store_wait_room), since it must read everything.
 *
 * Our own activity: the writer's database files would feed back forever.
 * The state directory gets an ignore mark, and any event whose pid is ours
 * is dropped (fanotify never merges events of different pids).
 *
 * QUIET FILES.  A file written again and again (a log, a database, one file
 * opened for writing in a loop) queues a MODIFY per write and a CLOSE_WRITE
 * per close, each a repeat of what this snapshot has recorded already: the
 * kernel allocates, queues and we read and drop every one, and the writer
 * pays for it.  On the first repeat (dircache_record says so), the file's
 * inode gets an evictable ignore mark for exactly the kinds it repeated, so
 * the kernel drops those events before queueing them.  Nothing is lost:
 *  - that entry and every name of the file we know were recorded with those
 *    kinds by earlier events (links_foreach runs on every event, this one
 *    included); names it gains later are recorded by their own CREATE and
 *    MOVED_TO events, which are directory events the mark does not cover;
 *    names not yet known are recorded by the hard-link search (links.c);
 *  - ATTRIB (link counts start searches), directory events and every other
 *    kind are never ignored;
 *  - notify_quiet_flush() removes every such mark before the queue is
 *    drained for a new snapshot (daemon_snapshot) or a new dedup epoch,
 *    that is a position (daemon_position, daemon_barrier), so a change
 *    whose system call returns after the switch queues its event again; a
 *    change that was ignored before the flush was recorded in the old
 *    snapshot (epoch), whose records the drain and the checkpoint order as
 *    usual (reconcile.c);
 *  - an evictable mark goes with its inode (events resume), the marks die
 *    with the group at exit or crash, and past NOTIFY_QUIET_MAX marks per
 *    snapshot, or once the kernel refuses one, files simply stay loud.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "fstrack.h"
#include "log.h"

#define NOTIFY_MASK (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | \
	FAN_RENAME | FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE | FAN_ONDIR)

static int		 notify_fd = -1;
static uv_poll_t	 notify_poll;
static uv_timer_t	 notify_timer;
static int		 notify_polling;
static uint64_t		 notify_events_at_checkpoint;
static int64_t		 notify_last_checkpoint;
static uint64_t		 notify_buf[32768];	/* 256 KiB, aligned */
static unsigned		 notify_quiet_count;	/* quiet marks this snapshot */
static int		 notify_quiet_off;	/* the kernel refused one */
static int		 notify_quiet_paused;	/* a snapshot switch runs */

#define NOTIFY_QUIET_MAX	16384

/* Create the notification group.  Needs CAP_SYS_ADMIN. */
int
notify_init(char *err, size_t errlen)
{
	unsigned	flags;

	flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK |
	    FAN_REPORT_DFID_NAME_TARGET;
	if (!fstd.cfg.bounded_queue)
		flags |= FAN_UNLIMITED_QUEUE;
	notify_fd = fanotify_init(flags, O_RDONLY | O_CLOEXEC | O_LARGEFILE);
	if (notify_fd == -1) {
		snprintf(err, errlen, "fanotify_init: %s%s", strerror(errno),
		    errno == EPERM ? " (fstrackd must run as root)" :
		    errno == ENOSYS ? " (kernel built without fanotify)" :
		    errno == EINVAL ? " (kernel older than 5.17: no "
		    "FAN_REPORT_TARGET_FID)" : "");
		return -1;
	}
	return 0;
}

/* Ignore the state directory if it is on fs (0: it is, and it is ignored). */
static int
notify_ignore_state_dir(dev_t dev)
{
	struct stat	st;

	if (stat(fstd.cfg.state_dir, &st) != 0 || st.st_dev != dev)
		return 1;
	return fanotify_mark(notify_fd, FAN_MARK_ADD | FAN_MARK_IGNORE_SURV,
	    NOTIFY_MASK | FAN_EVENT_ON_CHILD, AT_FDCWD, fstd.cfg.state_dir);
}

/* The notification group's fd (-1 before notify_init). */
int
notify_group_fd(void)
{
	return notify_fd;
}

/* Mark a whole filesystem, and ignore our state directory on it. */
int
notify_mark(struct fst_fs *fs, char *err, size_t errlen)
{
	if (fanotify_mark(notify_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
	    NOTIFY_MASK, AT_FDCWD, fs->mountpoint) == -1) {
		snprintf(err, errlen, "cannot mark '%s' (%s): %s%s",
		    fs->mountpoint, fs->fstype, strerror(errno),
		    errno == EXDEV ? " (a btrfs subvolume: track the top-level "
		    "subvolume's mount instead)" :
		    errno == ENODEV || errno == EOPNOTSUPP ? " (this "
		    "filesystem does not report file handles)" : "");
		return -1;
	}
	if (notify_ignore_state_dir(fs->dev) == -1)
		log_warn("cannot ignore state directory '%s' (events from it "
		    "are dropped by pid instead)", fstd.cfg.state_dir);
	return 0;
}

/* Record a change on another name of a hard-linked file. */
static void
notify_other_name(struct fst_fs *fs, const struct fst_handle *dir,
    const char *name, void *arg)
{
	dircache_record(fs, dir, name, *(uint32_t *)arg);
}

/*
 * The inode's handle, opened O_PATH (no events): its stat and, if
 * born_after is not NULL, whether it was born (statx btime) at or after
 * from.  A btime ahead of the clock (the clock stepped back) or missing
 * does not count as born after anything.
 */
static int
notify_stat_handle(struct fst_fs *fs, const struct fst_handle *h,
    struct stat *st, int64_t from, int *born_after)
{
	struct statx	stx;
	int64_t		btime;
	int		fd, rc;

	if (born_after != NULL)
		*born_after = 0;
	if ((fd = handle_open(fs->mount_fd, h, O_PATH | O_CLOEXEC)) == -1)
		return -1;
	if ((rc = fstat(fd, st)) == 0 && born_after != NULL &&
	    statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &stx) == 0 &&
	    (stx.stx_mask & STATX_BTIME)) {
		btime = (int64_t)stx.stx_btime.tv_sec * 1000000000 +
		    stx.stx_btime.tv_nsec;
		*born_after = btime >= from && btime <= now_ns() + 1000000000;
	}
	close(fd);
	return rc;
}

/*
 * A file's link count changed (link, unlink, rename over it): the kernel
 * reports it by handle only.  Every other name of it now shows a new
 * ctime and link count: record them, or search for them (links.c).
 *
 * YOUNG FILES NEED NO SEARCH when one name is left.  A file born at or
 * after the current epoch began (dircache_epoch_ns: a snapshot or a
 * position, switched on this thread after the drain) got every name it
 * ever had by a create, link or rename, and each of those is a name event
 * of its directory read after the switch, so recorded in this epoch;
 * unlinks and renames away are name events too.  So every directory that
 * holds or held a name of it is recorded already, and with one name left
 * there is no other name for a later write to reach.  (btime is taken
 * from the coarse clock, never ahead of the real time of birth: the test
 * errs towards searching; a btime more than a second ahead of the clock is
 * not believed.  What it cannot see, like perm.c's young files: a clock
 * that was ahead when the file was born and stepped back before the epoch
 * began, by more than the epoch's age.)  This is git's every object:
 * written under a temporary name, linked to its own and unlinked; without
 * it, a commit of 78k objects meant 78k inodes sought by walks of the
 * whole filesystem.
 * A young file with several names is still sought: the table must know
 * its names for the writes of later epochs.
 */
static void
notify_link_count(struct fst_fs *fs, const struct fst_handle *h)
{
	struct stat	st;
	uint32_t	kinds = FST_M_ATTRIB;
	int		young;

	if (links_foreach(fs, h, notify_other_name, &kinds) > 0)
		return;
	if (notify_stat_handle(fs, h, &st, dircache_epoch_ns(), &young) == -1 ||
	    S_ISDIR(st.st_mode) || st.st_nlink == 0)
		return;
	if (young && st.st_nlink == 1) {
		atomic_fetch_add(&fstd.st.links_young, 1);
		return;
	}
	links_search(fs, st.st_ino);
	reconcile_search_start();
}

/* Keep the names of hard-linked files current, and report the others. */
static void
notify_links(struct fst_fs *fs, struct fst_event *ev, uint32_t kinds)
{
	struct stat	st;
	uint32_t	other;

	if (kinds & (FST_M_DELETED | FST_M_MOVED_FROM))
		links_remove(fs, &ev->child, &ev->dir, ev->name);
	if (kinds & (FST_M_CREATED | FST_M_MOVED_TO)) {
		if (links_known(fs, &ev->child))
			links_add(fs, &ev->child, &ev->dir, ev->name);
		else if (atomic_load(&fstd.reconciling) &&
		    notify_stat_handle(fs, &ev->child, &st, 0, NULL) == 0 &&
		    st.st_nlink > 1 && links_searching(fs, st.st_ino))
			links_add(fs, &ev->child, &ev->dir, ev->name);
	}
	other = kinds & (FST_M_MODIFIED | FST_M_ATTRIB | FST_M_CLOSED_WRITE);
	if (kinds & (FST_M_MOVED_FROM | FST_M_MOVED_TO))
		other |= FST_M_ATTRIB;	/* a rename sets the inode's ctime */
	if (other != 0)
		links_foreach(fs, &ev->child, notify_other_name, &other);
}

/*
 * File h repeated kinds already recorded in this snapshot: have the kernel
 * drop its MODIFY / CLOSE_WRITE events until the next flush (QUIET FILES).
 */
static void
notify_quiet(struct fst_fs *fs, const struct fst_handle *h, uint32_t kinds)
{
	char		path[64];
	uint64_t	mask = 0;
	int		fd, rc;

	if (kinds & FST_M_MODIFIED)
		mask |= FAN_MODIFY;
	if (kinds & FST_M_CLOSED_WRITE)
		mask |= FAN_CLOSE_WRITE;
	if (mask == 0 || (kinds & ~(FST_M_MODIFIED | FST_M_CLOSED_WRITE)) ||
	    notify_quiet_off || notify_quiet_paused ||
	    notify_quiet_count >= NOTIFY_QUIET_MAX)
		return;
	/* This very inode, whatever its names are by now: no lookup by name. */
	if ((fd = handle_open(fs->mount_fd, h, O_PATH | O_CLOEXEC)) == -1)
		return;
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	rc = fanotify_mark(notify_fd, FAN_MARK_ADD | FAN_MARK_IGNORE_SURV |
	    FAN_MARK_EVICTABLE, mask, AT_FDCWD, path);
	close(fd);
	if (rc == 0)
		atomic_store(&fstd.st.quiet_files, ++notify_quiet_count);
	else {
		notify_quiet_off = 1;	/* e.g. no evictable marks: stay loud */
		log_debug("quiet mark: %s; repeated writes stay reported",
		    strerror(errno));
	}
}

/*
 * Remove every quiet mark: a new snapshot is about to begin.  Called before
 * the queue is drained for it, so every change from then on is queued; no
 * mark is added again until notify_quiet_resume(), after the switch, or an
 * event drained for the old snapshot could silence the new one.
 */
void
notify_quiet_flush(void)
{
	int	i;

	notify_quiet_paused = 1;
	if (notify_fd == -1 || notify_quiet_count == 0)
		return;
	if (fanotify_mark(notify_fd, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL) == -1)
		fatal("cannot flush the quiet marks at a snapshot switch");
	notify_quiet_count = 0;
	atomic_store(&fstd.st.quiet_files, 0);
	/* The flush took the state directory's ignore mark too. */
	for (i = 0; i < fstd.nfs; i++)
		if (fstd.fs[i].state == FS_TRACKED &&
		    notify_ignore_state_dir(fstd.fs[i].dev) == 0)
			break;
}

/* The new snapshot is in place: repeats may be silenced again. */
void
notify_quiet_resume(void)
{
	notify_quiet_paused = 0;
}

/* Record one decoded event. */
static void
notify_handle(struct fst_event *ev)
{
	struct fst_fs	*fs;
	uint32_t	 kinds;
	int		 repeat;

	atomic_fetch_add(&fstd.st.events_read, 1);
	if (ev->mask & FAN_Q_OVERFLOW) {
		atomic_fetch_add(&fstd.st.overflows, 1);
		log_warnx("fanotify event queue overflowed: events were lost; "
		    "recording a gap on every filesystem");
		store_record_gap(NULL, "event queue overflowed");
		return;
	}
	if (ev->pid == fstd.pid) {
		atomic_fetch_add(&fstd.st.self_events, 1);
		return;
	}
	if ((fs = fsinfo_by_fsid(&ev->fsid)) == NULL) {
		log_debug("event for an unknown fsid, mask %llx",
		    (unsigned long long)ev->mask);
		return;
	}
	kinds = event_mask_to_kinds(ev->mask);
	if (ev->mask & FAN_RENAME) {
		if (ev->has_rename != 3)
			return;
		if (ev->mask & FAN_ONDIR)
			dircache_rename(fs, &ev->old_dir, ev->old_name,
			    &ev->new_dir, ev->new_name);
		dircache_record(fs, &ev->old_dir, ev->old_name,
		    FST_M_MOVED_FROM | (kinds & FST_M_ISDIR));
		dircache_record(fs, &ev->new_dir, ev->new_name,
		    FST_M_MOVED_TO | (kinds & FST_M_ISDIR));
		return;
	}
	if (!ev->has_dir) {
		if (ev->has_child)
			notify_link_count(fs, &ev->child);
		return;
	}
	repeat = dircache_record(fs, &ev->dir, ev->name != NULL ? ev->name :
	    ".", kinds);
	if (ev->has_child && !(ev->mask & FAN_ONDIR) && ev->name != NULL) {
		notify_links(fs, ev, kinds);
		if (repeat)
			notify_quiet(fs, &ev->child, kinds);
	}
	if ((ev->mask & FAN_DELETE) && (ev->mask & FAN_ONDIR) &&
	    ev->has_child && !(ev->mask & FAN_CREATE))
		dircache_gone(fs, &ev->child);
}

/*
 * Read from the group once.  Returns the number of bytes read, 0 when the
 * queue was empty, -1 on error.
 */
static ssize_t
notify_read_once(void)
{
	struct fst_event	ev;
	ssize_t			n;
	size_t			off = 0;
	int			r;

	n = read(notify_fd, notify_buf, sizeof notify_buf);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		log_warn("read fanotify");
		return -1;
	}
	while ((r = event_next(notify_buf, n, &off, &ev)) == 1) {
		if (ev.fd >= 0)
			close(ev.fd);
		notify_handle(&ev);
	}
	if (r == -1) {
		log_warnx("malformed fanotify record at offset %zu of %zd; "
		    "recording a gap", off, n);
		store_record_gap(NULL, "malformed event record");
	}
	return n;
}

/* Read until the queue is empty: every completed change is now recorded. */
void
notify_drain(void)
{
	int	i;

	for (i = 0; i < 100000; i++) {
		store_wait_room();
		if (notify_read_once() <= 0)
			return;
	}
}

static void notify_poll_cb(uv_poll_t *, int, int);

/* The merge delay is over, or the writer's queue had no room: poll again. */
static void
notify_timer_cb(uv_timer_t *t)
{
	if (!notify_polling && notify_fd != -1) {
		uv_poll_start(&notify_poll, UV_READABLE, notify_poll_cb);
		notify_polling = 1;
	}
}

/*
 * The group is readable: read, and let the queue fill up a little.  While
 * the writer's queue is full, look again every few milliseconds instead.
 */
static void
notify_poll_cb(uv_poll_t *p, int status, int events)
{
	ssize_t	n;

	if (store_queue_full()) {
		uv_poll_stop(&notify_poll);
		notify_polling = 0;
		uv_timer_start(&notify_timer, notify_timer_cb, 5, 0);
		return;
	}
	n = notify_read_once();
	if (n >= 0 && (size_t)n < sizeof notify_buf / 2 &&
	    fstd.cfg.merge_delay_ms > 0) {
		uv_poll_stop(&notify_poll);
		notify_polling = 0;
		uv_timer_start(&notify_timer, notify_timer_cb,
		    fstd.cfg.merge_delay_ms, 0);
	}
}

/* Start reading events in the loop. */
void
notify_start(void)
{
	uv_poll_init(fstd.loop, &notify_poll, notify_fd);
	uv_timer_init(fstd.loop, &notify_timer);
	uv_poll_start(&notify_poll, UV_READABLE, notify_poll_cb);
	notify_polling = 1;
}

/*
 * Read until the queue is empty, unless the writer's queue fills first:
 * 0 when everything queued is read, -1 when it stopped for the writer.
 */
static int
notify_drain_while_room(void)
{
	int	i;

	for (i = 0; i < 100000; i++) {
		if (store_queue_full())
			return -1;
		if (notify_read_once() <= 0)
			return 0;
	}
	return -1;
}

/*
 * Advance the checkpoints: T is read before draining, so every change whose
 * event was queued before T is in the writer queue ahead of the checkpoint
 * record, and commits no later than it (store.c invariant 2).  While the
 * writer is behind, a tick leaves the checkpoint where it is instead of
 * holding the loop until the writer caught up; force (the last one, at
 * shutdown) drains and waits.
 */
void
notify_checkpoint_tick(int force)
{
	int64_t		 t = now_coarse_ns();
	uint64_t	 seen;
	int		 i;

	if (force)
		notify_drain();
	else if (notify_drain_while_room() != 0)
		return;
	seen = atomic_load(&fstd.st.events_read);
	if (!force && seen == notify_events_at_checkpoint &&
	    t - notify_last_checkpoint < 30LL * 1000000000)
		return;
	notify_events_at_checkpoint = seen;
	notify_last_checkpoint = t;
	for (i = 0; i < fstd.nfs; i++) {
		if (fstd.fs[i].state != FS_TRACKED)
			continue;
		store_submit(store_op_checkpoint(fstd.fs[i].id, t));
		fstd.fs[i].checkpoint_ns = t;
	}
}

/*
 * Stop (a clean shutdown): the last checkpoint, unless a reconcile pass
 * has not finished (no checkpoint may pass it: the next start-up runs it
 * again), then read what is left and close the group.
 */
void
notify_stop(void)
{
	if (notify_fd == -1)
		return;
	if (!atomic_load(&fstd.reconciling))
		notify_checkpoint_tick(1);
	notify_drain();
	if (notify_polling)
		uv_poll_stop(&notify_poll);
	uv_close((uv_handle_t *)&notify_poll, NULL);
	uv_close((uv_handle_t *)&notify_timer, NULL);
	close(notify_fd);
	notify_fd = -1;
}

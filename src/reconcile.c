/*
 * reconcile.c -- the start-up rescan, and why nothing is missed across
 * crashes, power loss and downtime.
 *
 * THE CHECKPOINT.  For each filesystem, filesystems.checkpoint_ns holds a
 * time T such that every change whose event the kernel queued before T is
 * committed.  notify_checkpoint_tick() reads T from CLOCK_REALTIME_COARSE,
 * then drains the queue and submits the checkpoint behind the records it
 * drained; the writer commits in order (store.c invariant 2), so a durable
 * T never outruns its records.  It is not advanced while a reconcile is
 * running, and SIGTERM writes a final one.
 *
 * WHAT CAN BE MISSING AT START-UP.  Changes made after T by anybody: while
 * the daemon was killed or the machine lost power (events queued but not
 * committed, or never read), while it was stopped (no events at all), and
 * by another system that mounted the filesystem.  Every such change sets
 * the ctime of the inode it touches to the current time, and a change to
 * a directory's entries sets the directory's ctime: ctime cannot be set
 * from user space (doc/kernel-facts.md).  So every directory whose entries or
 * children changed after T has an entry, or is itself, with ctime >= T.
 *
 * THE PASS.  Marks go in first (fstrackd.c), so changes from now on are
 * seen live.  Then every directory of each filesystem is read, and every
 * entry with ctime >= T - margin is recorded in the current snapshot as
 * "rescanned" (a directory whose own ctime qualifies is recorded too, with
 * name ".").  A directory renamed during the pass is walked again under its
 * new name (reconcile_note_move), so the walk cannot step over a subtree
 * moved from its unvisited part into its visited part.  Its rename event
 * can still be unread when the walkers finish: before a pass (or a
 * hard-link search) is declared done the event queue is drained (the hook
 * set by reconcile_set_drain_hook), so every rename made during the walk
 * has been seen while the pass still counted as running, and requeued.  Files open for
 * writing or mapped shared-writable at start-up are recorded (openscan.c):
 * their content can change with no event and no ctime we could trust.
 *
 * THE MARGIN (reconcile-margin, default 5 s).  ctime is set at the start of
 * a system call, its event queued at the end.  A call in flight when T was
 * read has ctime < T and an event that may never have been committed.  The
 * margin covers calls up to that long, plus the kernel's multigrain ctime
 * lag (at most one jiffy behind the coarse clock).  Longer calls are writes
 * blocked in the page cache; those files are open for writing, which strict
 * mode recorded durably at open and openscan records again at start-up.
 *
 * GAPS.  What ctime cannot prove is recorded as a gap, never skipped: a
 * clock now earlier than T (stepped backwards), a filesystem with no
 * checkpoint, one tracked for the first time in an existing history, a
 * different filesystem at a known mount point (store_fs_attach), a lost or
 * overflowed event queue (notify.c), a database that is new (its snapshot
 * ids start above any older database's).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fstrack.h"
#include "log.h"

#define RECONCILE_THREADS	4

enum rc_mode {
	RC_FULL,	/* record ctime >= threshold, learn hard links */
	RC_SEARCH	/* find the names of the inodes links.c searches for */
};

struct rc_item {
	struct rc_item	*next;
	struct fst_fs	*fs;
	int64_t		 threshold;
	char		 path[];
};

struct rc_waiter {
	struct rc_waiter	*next;
	void			(*cb)(void *);
	void			*arg;
};

static pthread_t	 rc_threads[RECONCILE_THREADS];
static int		 rc_nthreads;
static pthread_mutex_t	 rc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 rc_cond = PTHREAD_COND_INITIALIZER;
static struct rc_item	*rc_queue;
static int		 rc_busy;
static int		 rc_idle;
static _Atomic int	 rc_stop;
static int		 rc_finished;
static uv_async_t	 rc_async;
static int		 rc_async_open;
static struct rc_waiter	*rc_waiters;
static int64_t		 rc_started_ns, rc_done_ns;
static uint64_t		 rc_total;
static void		(*rc_drain_hook)(void);	/* reads pending events */
static enum rc_mode	 rc_mode;
static int64_t		 rc_walk_from;	/* coarse time the walk began, -1 s */

/* Queue a directory for the walkers.  Caller holds rc_lock. */
static void
rc_push(struct fst_fs *fs, int64_t threshold, const char *path)
{
	struct rc_item	*it;
	size_t		 n = strlen(path) + 1;

	if ((it = malloc(sizeof *it + n)) == NULL)
		fatal("out of memory");
	it->fs = fs;
	it->threshold = threshold;
	memcpy(it->path, path, n);
	it->next = rc_queue;
	rc_queue = it;
	pthread_cond_signal(&rc_cond);
}

/*
 * Record (dir, name) as found by the rescan.  A walker waits while the
 * writer's queue is full: a rescan that finds millions of changed inodes
 * must not hold them all in memory.
 */
static void
rc_record(struct fst_fs *fs, const struct fst_handle *dh, const char *dpath,
    const char *name, uint32_t kinds)
{
	store_wait_room();
	store_submit(store_op_change(atomic_load(&fstd.cur_snapshot), fs->id,
	    dh, dpath, name, kinds | FST_M_RESCANNED));
	atomic_fetch_add(&fstd.st.reconcile_recorded, 1);
}

/* A statx timestamp in nanoseconds. */
static int64_t
rc_ns(const struct statx_timestamp *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/*
 * Collect a subdirectory of it->path in the caller's local list; rc_scan
 * hands the whole list to the queue at once, so walkers do not take the
 * lock and wake each other once per directory.
 */
static void
rc_push_child(struct rc_item *it, const char *name, struct rc_item **local)
{
	struct rc_item	*c;
	size_t		 plen = strlen(it->path), nlen = strlen(name);

	if (plen + 1 + nlen + 1 > PATH_MAX)
		return;
	if ((c = malloc(sizeof *c + plen + 1 + nlen + 1)) == NULL)
		fatal("out of memory");
	c->fs = it->fs;
	c->threshold = it->threshold;
	if (strcmp(it->path, "/") == 0)
		plen = 0;
	memcpy(c->path, it->path, plen);
	c->path[plen] = '/';
	memcpy(c->path + plen + 1, name, nlen + 1);
	c->next = *local;
	*local = c;
}

/* Move a local list of directories to the shared queue. */
static void
rc_push_list(struct rc_item *local)
{
	struct rc_item	*last;

	if (local == NULL)
		return;
	for (last = local; last->next != NULL; last = last->next)
		;
	pthread_mutex_lock(&rc_lock);
	last->next = rc_queue;
	rc_queue = local;
	if (rc_idle > 0)
		pthread_cond_broadcast(&rc_cond);
	pthread_mutex_unlock(&rc_lock);
}

/* A name of a file with several: remember it (and record it, searching). */
static void
rc_link(struct rc_item *it, int fd, const struct fst_handle *dh,
    const char *name)
{
	struct fst_handle	fh;

	struct statx		stx;

	if (handle_of_fd(fd, name, 0, &fh) != 0)
		return;
	links_add(it->fs, &fh, dh, name);
	if (rc_mode == RC_SEARCH) {
		rc_record(it->fs, dh, it->path, name, FST_M_ATTRIB);
		return;
	}
	/*
	 * Changed through another name since the walk began, before we knew
	 * this one?  Events after links_add() find it in the table; the ctime
	 * read after it covers the changes before.
	 */
	if (statx(fd, name, AT_SYMLINK_NOFOLLOW, STATX_CTIME, &stx) == 0 &&
	    rc_ns(&stx.stx_ctime) >= rc_walk_from)
		rc_record(it->fs, dh, it->path, name, FST_M_ATTRIB);
}

/* Whether it->path/name is the daemon's state directory. */
static int
rc_is_state_dir(struct rc_item *it, const char *name)
{
	const char	*sd = fstd.cfg.state_dir;
	size_t		 plen = strcmp(it->path, "/") ? strlen(it->path) : 0;

	return strncmp(sd, it->path, plen) == 0 && sd[plen] == '/' &&
	    strcmp(sd + plen + 1, name) == 0;
}

/* Read one directory: record what is new, queue its subdirectories. */
static void
rc_scan(struct rc_item *it)
{
	struct fst_handle	 dh;
	struct statx		 stx;
	struct dirent		*de;
	DIR			*d;
	int			 fd, isdir;
	uint64_t		 n = 0;
	struct rc_item		*local = NULL;
	unsigned		 mask = STATX_CTIME | STATX_TYPE | STATX_NLINK |
				    STATX_INO;

	if (strcmp(it->path, fstd.cfg.state_dir) == 0)
		return;		/* our own database: never recorded */
	fd = open(it->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return;		/* vanished: its parent's ctime shows it */
	if (statx(fd, "", AT_EMPTY_PATH, STATX_CTIME, &stx) == -1 ||
	    makedev(stx.stx_dev_major, stx.stx_dev_minor) != it->fs->dev ||
	    handle_of_fd(fd, "", AT_EMPTY_PATH, &dh) != 0) {
		close(fd);
		return;		/* another mount on top, or gone */
	}
	if (rc_mode == RC_FULL && rc_ns(&stx.stx_ctime) >= it->threshold)
		rc_record(it->fs, &dh, it->path, ".", FST_M_ISDIR);
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL && !atomic_load(&rc_stop)) {
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
		    (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		n++;
		if (rc_mode == RC_SEARCH) {
			if (de->d_type == DT_DIR) {
				rc_push_child(it, de->d_name, &local);
				continue;
			}
			if (de->d_type != DT_UNKNOWN &&
			    !links_searching(it->fs, de->d_ino))
				continue;
		}
		if (statx(fd, de->d_name, AT_SYMLINK_NOFOLLOW |
		    AT_STATX_DONT_SYNC, mask, &stx) == -1)
			continue;
		isdir = S_ISDIR(stx.stx_mode);
		if (isdir && makedev(stx.stx_dev_major, stx.stx_dev_minor) ==
		    it->fs->dev && rc_is_state_dir(it, de->d_name))
			continue;
		if (isdir) {
			if (rc_mode == RC_FULL &&
			    rc_ns(&stx.stx_ctime) >= it->threshold)
				rc_record(it->fs, &dh, it->path, de->d_name,
				    FST_M_ISDIR);
			rc_push_child(it, de->d_name, &local);
			continue;
		}
		if (rc_mode == RC_FULL && rc_ns(&stx.stx_ctime) >= it->threshold)
			rc_record(it->fs, &dh, it->path, de->d_name, 0);
		/*
		 * Searching, a name of a searched inode is recorded whatever
		 * its link count is now: the link that made us search may be
		 * gone again (link, then unlink), and this name's directory
		 * still shows the new ctime of both.
		 */
		if (rc_mode == RC_SEARCH ? links_searching(it->fs,
		    stx.stx_ino) : stx.stx_nlink > 1)
			rc_link(it, fd, &dh, de->d_name);
	}
	closedir(d);
	rc_push_list(local);
	atomic_fetch_add(&fstd.st.reconcile_scanned, n);
}

/* A walker thread. */
static void *
rc_main(void *arg)
{
	struct rc_item	*it;

	pthread_mutex_lock(&rc_lock);
	for (;;) {
		while (rc_queue == NULL && rc_busy > 0 && !atomic_load(&rc_stop)) {
			rc_idle++;
			pthread_cond_wait(&rc_cond, &rc_lock);
			rc_idle--;
		}
		if (atomic_load(&rc_stop) || (rc_queue == NULL && rc_busy == 0))
			break;
		it = rc_queue;
		rc_queue = it->next;
		rc_busy++;
		pthread_mutex_unlock(&rc_lock);
		rc_scan(it);
		free(it);
		pthread_mutex_lock(&rc_lock);
		rc_busy--;
		if (rc_queue == NULL && rc_busy == 0)
			pthread_cond_broadcast(&rc_cond);
	}
	if (!rc_finished && rc_queue == NULL && rc_busy == 0 &&
	    !atomic_load(&rc_stop)) {
		rc_finished = 1;
		uv_async_send(&rc_async);
	}
	pthread_mutex_unlock(&rc_lock);
	return NULL;
}

/* Start the walker threads on whatever is queued.  Main thread. */
static int
rc_spawn(void)
{
	int	i;

	rc_finished = 0;
	rc_busy = 0;
	for (i = 0; i < RECONCILE_THREADS; i++) {
		if (pthread_create(&rc_threads[i], NULL, rc_main, NULL) != 0)
			break;
		(void)pthread_setname_np(rc_threads[i], "fstrackd-walk");
		rc_nthreads++;
	}
	return rc_nthreads > 0 ? 0 : -1;
}

/* Whether directories were queued after the walkers finished. */
static int
rc_requeued(void)
{
	int	again;

	pthread_mutex_lock(&rc_lock);
	again = rc_queue != NULL;
	pthread_mutex_unlock(&rc_lock);
	return again && !atomic_load(&rc_stop);
}

static void	rc_async_cb(uv_async_t *);

/* Start a pass looking for the names links.c queued; 0 if none. */
static int
rc_search_pass(void)
{
	int	i;

	if (atomic_load(&rc_stop) || links_search_begin() == 0)
		return 0;	/* stopping: no walkers the stop would not join */
	rc_mode = RC_SEARCH;
	for (i = 0; i < fstd.nfs; i++) {  /* only where an inode is sought */
		if (fstd.fs[i].state != FS_TRACKED ||
		    !links_search_on(&fstd.fs[i]))	/* links_lock: a leaf */
			continue;
		pthread_mutex_lock(&rc_lock);
		rc_push(&fstd.fs[i], INT64_MAX, fstd.fs[i].mountpoint);
		pthread_mutex_unlock(&rc_lock);
	}
	atomic_store(&fstd.reconciling, 1);
	rc_spawn();
	return 1;
}

/*
 * A hard-linked file's other names are wanted: search now, or after the
 * pass that is running.  Main thread.
 */
void
reconcile_search_start(void)
{
	if (atomic_load(&fstd.reconciling) || atomic_load(&rc_stop))
		return;		/* rc_committed starts it */
	rc_search_pass();
}

/* Every record of the pass is committed: the history is whole again. */
static void
rc_committed(struct store_op *op, int err, void *arg)
{
	struct rc_waiter	*w, *next, *list;

	if (rc_drain_hook != NULL)
		rc_drain_hook();	/* renames during the walk: noted now */
	if (rc_requeued()) {	/* a rename moved a subtree behind the walk */
		rc_spawn();
		return;
	}
	if (rc_search_pass())
		return;

	rc_done_ns = now_ns();
	atomic_store(&fstd.reconciling, 0);
	if (rc_mode == RC_FULL)
		log_info("reconcile finished: %llu entries scanned, %llu "
		    "recorded, %.1f s", (unsigned long long)atomic_load(
		    &fstd.st.reconcile_scanned), (unsigned long long)
		    atomic_load(&fstd.st.reconcile_recorded),
		    (rc_done_ns - rc_started_ns) / 1e9);
	else
		log_debug("hard-link search finished");
	/* Detach first: a callback may start a search and wait again. */
	list = rc_waiters;
	rc_waiters = NULL;
	for (w = list; w != NULL; w = next) {
		next = w->next;
		w->cb(w->arg);
		free(w);
	}
}

/* Main thread: the walkers are done; commit their records durably. */
static void
rc_async_cb(uv_async_t *a)
{
	struct store_op	*op;
	int		 i;

	for (i = 0; i < rc_nthreads; i++)
		pthread_join(rc_threads[i], NULL);
	rc_nthreads = 0;
	if (rc_requeued()) {
		rc_spawn();
		return;
	}
	op = store_op_sync();		/* a durable commit of all before */
	op->durable = 1;
	op->done = rc_committed;
	store_submit(op);
}

/* A file open for writing at start-up: record its directory. */
static void
rc_carry_writer(struct fst_fs *fs, const char *path, void *arg)
{
	char			 dir[PATH_MAX], *slash;
	struct fst_handle	 h;

	snprintf(dir, sizeof dir, "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash[1] == '\0')
		return;
	*slash = '\0';
	if (handle_of_fd(AT_FDCWD, dir[0] ? dir : "/", 0, &h) == 0)
		rc_record(fs, &h, dir[0] ? dir : "/", slash + 1,
		    FST_M_OPEN_AT_SNAPSHOT);
}

/*
 * Decide what each filesystem needs and start the walkers.  Called once the
 * marks are in place and the writer runs.
 */
int
reconcile_start(void)
{
	struct statvfs	 sv;
	int64_t		 now = now_coarse_ns(), margin;
	int		 i, need = 0;

	margin = (int64_t)fstd.cfg.reconcile_margin_ms * 1000000;
	rc_started_ns = now_ns();
	rc_walk_from = now - 1000000000;
	if (uv_async_init(fstd.loop, &rc_async, rc_async_cb) != 0)
		return -1;
	rc_async_open = 1;
	openscan_writers(rc_carry_writer, NULL);
	pthread_mutex_lock(&rc_lock);
	for (i = 0; i < fstd.nfs; i++) {
		struct fst_fs *fs = &fstd.fs[i];

		if (fs->is_new) {
			/* No history to continue: only learn hard links. */
			fs->reconcile_threshold = INT64_MAX;
		} else if (fs->checkpoint_ns == 0) {
			fs->reconcile_threshold = 0;	/* gap recorded; scan all */
		} else if (now < fs->checkpoint_ns) {
			struct store_op *op;

			store_record_gap(fs, "clock is earlier than the last "
			    "checkpoint (stepped backwards?)");
			fs->reconcile_threshold = 0;
			/*
			 * The gap covers everything until now; the checkpoint
			 * restarts from the present clock, or every restart
			 * would see the same step again.
			 */
			op = store_op_checkpoint_reset(fs->id, now);
			op->durable = 1;
			store_submit(op);
			fs->checkpoint_ns = now;
		} else
			fs->reconcile_threshold = fs->checkpoint_ns - margin;
		if (statvfs(fs->mountpoint, &sv) == 0 && sv.f_files > sv.f_ffree)
			rc_total += sv.f_files - sv.f_ffree;
		rc_push(fs, fs->reconcile_threshold, fs->mountpoint);
		need = 1;
		if (!fs->is_new)
			log_info("reconciling '%s' from %lld (checkpoint minus "
			    "%d ms)", fs->mountpoint,
			    (long long)(fs->reconcile_threshold / 1000000000),
			    fstd.cfg.reconcile_margin_ms);
	}
	pthread_mutex_unlock(&rc_lock);
	if (!need)
		return 0;
	rc_mode = RC_FULL;
	atomic_store(&fstd.reconciling, 1);
	return rc_spawn();
}

/*
 * A directory was renamed: if a pass is running, walk it again under its
 * new name, in case the rename moved it behind the walk.  Main thread.
 */
void
reconcile_note_move(struct fst_fs *fs, const char *newpath)
{
	if (!atomic_load(&fstd.reconciling))
		return;
	pthread_mutex_lock(&rc_lock);
	rc_push(fs, fs->reconcile_threshold, newpath);
	pthread_mutex_unlock(&rc_lock);
}

/* Stop the walkers (shutdown); an unfinished pass reruns at next start. */
void
reconcile_stop(void)
{
	int	i;

	atomic_store(&rc_stop, 1);
	pthread_mutex_lock(&rc_lock);
	pthread_cond_broadcast(&rc_cond);
	pthread_mutex_unlock(&rc_lock);
	for (i = 0; i < rc_nthreads; i++)
		pthread_join(rc_threads[i], NULL);
	rc_nthreads = 0;
	if (rc_async_open) {
		uv_close((uv_handle_t *)&rc_async, NULL);
		rc_async_open = 0;
	}
}

/* Progress for status: scanned, recorded, entries/s, seconds left (-1). */
void
reconcile_progress(uint64_t *scanned, uint64_t *recorded, double *rate,
    double *eta)
{
	int64_t	end = atomic_load(&fstd.reconciling) ? now_ns() : rc_done_ns;
	double	secs = (end - rc_started_ns) / 1e9;

	*scanned = atomic_load(&fstd.st.reconcile_scanned);
	*recorded = atomic_load(&fstd.st.reconcile_recorded);
	*rate = secs > 0 && rc_started_ns != 0 && end != 0 ? *scanned / secs : 0;
	*eta = -1;
	if (atomic_load(&fstd.reconciling) && *rate > 0 && rc_total > *scanned)
		*eta = (rc_total - *scanned) / *rate;
}

/*
 * Set the function that reads the events still queued (notify_drain):
 * called before a pass is declared done.  Main thread, before start.
 */
void
reconcile_set_drain_hook(void (*fn)(void))
{
	rc_drain_hook = fn;
}

/* Run cb when the pass has committed; -1 if none is running. */
int
reconcile_wait_add(void (*cb)(void *), void *arg)
{
	struct rc_waiter	*w;

	if (!atomic_load(&fstd.reconciling))
		return -1;
	if ((w = malloc(sizeof *w)) == NULL)
		fatal("out of memory");
	w->cb = cb;
	w->arg = arg;
	w->next = rc_waiters;
	rc_waiters = w;
	return 0;
}

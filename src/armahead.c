/*
 * armahead.c -- arming the directories a reader is about to enter, before
 * the reader gets there.
 *
 * Why.  Arming a directory (perm.c) costs a durable commit, and until that
 * commit is in, every open in the directory still makes a permission round
 * trip (~80 us on these machines, against ~1 us for the open itself).  A
 * tree reader (tar, grep -r, a backup tool) enters each directory once and
 * opens all its files at once, well inside one commit: arming a directory
 * only when the reader arrives would save almost nothing.  So when perm.c
 * arms a directory D that was not armed yet, it asks this thread to arm
 * what a reader in D reads next, and the walker, reading only directories,
 * stays ahead of a reader that reads the files too.
 *
 * THE WALK FOLLOWS THE READER.  A request at D walks D's subtree depth
 * first in readdir order -- the order tar, find and grep walk in -- and
 * then goes on where such a reader goes after D: D's parent (which the
 * reader is back in, and which may not be armed at all: a reader that
 * starts deep in a tree opens nothing on the way down), D's later
 * siblings' subtrees, then the earlier ones (a reader in another order,
 * rsync's sorted one, comes back for them), then the same one level up,
 * and so on to the root of the daemon's mount.  Every directory found is
 * handed to perm.c's callback, which arms those not armed yet.  Each
 * request may look at a budget of directories; the first request of a
 * snapshot gets RA_FIRST_DIRS, and each request that used its budget up
 * doubles the next one's, to RA_MAX_DIRS.  Directories whose link count
 * says they have no subdirectories are not read at all (ra_walk).  A
 * reader that reads a whole tree therefore runs into the end of the walk a
 * few times (log2 of the tree's size over RA_FIRST_DIRS), each time an
 * open of its own that restarts the walk where it is now, with more
 * budget; a reader that opens a handful of files in a large tree (git
 * status opens a dozen, in .git) costs a walk of a few hundred
 * directories, not of the whole tree (before the budget grew, every
 * snapshot's git status in a linux tree paid a walk of its ~5,400
 * directories, ~100 ms of this thread, on a machine of two cores).  A
 * directory whose subtree was walked to the end is remembered (by its
 * inode, for the snapshot, up to RA_MAX_DONE of them: 4 MiB) and not read
 * nor counted again; one cut by the budget is read again by the next
 * request that reaches it, so a walk cut half way leaves nothing behind
 * that no later walk can reach.
 *
 * Why it is safe.  Arming is conservative: an armed directory is reported
 * after an unclean stop whether or not anything changed in it (perm.c has
 * the argument), so arming too much costs false positives after crashes,
 * rows in the arms table (two snapshots' worth at most) and ignore marks,
 * never a missed change; arming too little costs round trips, as without
 * this thread.  The walk never crosses into another mount (mount points
 * are left alone, found by the mount id of their handle) nor climbs above
 * the root of the daemon's mount, stops at RA_MAX_DEPTH levels, and drops
 * a request whose snapshot has ended (the callback says so).  A remembered
 * inode that was reused within the snapshot (or an inode-number clash)
 * only leaves a subtree unwalked: its directories are armed by their own
 * first opens.
 *
 * Threads.  One walker thread; the state below ra_lock is its own.  It
 * opens directories only: the permission marks carry no FAN_ONDIR, so
 * opening a directory makes no permission event, and the notification
 * group drops the daemon's own events.  It knows nothing of the permission
 * table: the callback registered by perm.c decides which directories are
 * new and arms them.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/syscall.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fstrack.h"
#include "log.h"

#define RA_MAX_QUEUE	256	/* requests waiting; more are dropped */
#define RA_FIRST_DIRS	128	/* directories a snapshot's first walk sees */
#define RA_MAX_DIRS	32768	/* directories one walk sees, at most */
#define RA_MAX_DEPTH	128	/* levels below (and above) the request */
#define RA_CHUNK	64	/* child directories handed over at once */
#define RA_MAX_DONE	262144	/* subtrees remembered: a 4 MiB table */

/* A getdents64 record (glibc 2.36 has no public definition). */
struct linux_dirent64 {
	uint64_t	d_ino;
	int64_t		d_off;
	unsigned short	d_reclen;
	unsigned char	d_type;
	char		d_name[];
};

struct ra_req {
	struct fst_fs		*fs;
	struct fst_handle	 h;
	uint64_t		 gen;
	int			 mnt;	/* id of fs->mount_fd's mount (ra_serve) */
};

/* The child directories of one directory, in readdir order. */
struct ra_list {
	char		*names;		/* NUL-separated */
	struct ra_ent {
		uint64_t	 ino;
		size_t		 off;	/* of its name in names */
	}		*ents;
	int		 count;
};

static pthread_t	 ra_thread;
static int		 ra_running;
static pthread_mutex_t	 ra_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 ra_cond = PTHREAD_COND_INITIALIZER;
static struct ra_req	 ra_queue[RA_MAX_QUEUE];
static int		 ra_nqueue;
static int		 ra_idle;	/* the walker waits on ra_cond */
static _Atomic int	 ra_stopping;
static armahead_cb	 ra_cb;

/* The walker's own: what it knows of generation ra_gen. */
static uint64_t		 ra_gen;
static int		 ra_budget = RA_FIRST_DIRS;	/* the next request's */
static uint64_t		*ra_done;	/* walked to the end; 0 = free */
static size_t		 ra_done_cap, ra_done_n;

/*
 * The key of directory ino of the filesystem with device dev (never 0),
 * mixed (splitmix64's finisher) so that its low bits, the table's slot,
 * depend on every bit of both: ext4 numbers the directories of its block
 * groups alike modulo 8,192.
 */
static uint64_t
ra_key(dev_t dev, uint64_t ino)
{
	uint64_t	k = ino ^ ((uint64_t)dev << 40);

	k = (k ^ (k >> 30)) * 0xbf58476d1ce4e5b9ULL;
	k = (k ^ (k >> 27)) * 0x94d049bb133111ebULL;
	k ^= k >> 31;
	return k != 0 ? k : 1;
}

/* Whether the subtree of the directory with key k was walked to the end. */
static int
ra_is_done(uint64_t k)
{
	size_t	i;

	if (ra_done_cap == 0)
		return 0;
	for (i = k & (ra_done_cap - 1); ra_done[i] != 0;
	    i = (i + 1) & (ra_done_cap - 1))
		if (ra_done[i] == k)
			return 1;
	return 0;
}

/*
 * Remember that the subtree of the directory with key k was walked; past
 * RA_MAX_DONE subtrees in a snapshot, forget (a later walk reads them
 * again: time, not memory, on a filesystem of millions of directories).
 */
static void
ra_set_done(uint64_t k)
{
	uint64_t	*old = ra_done;
	size_t		 oldcap = ra_done_cap, i;

	if (ra_done_n >= RA_MAX_DONE || ra_is_done(k))
		return;
	if (2 * (ra_done_n + 1) > ra_done_cap) {
		ra_done_cap = oldcap ? oldcap * 2 : 1024;
		if ((ra_done = calloc(ra_done_cap, sizeof *ra_done)) == NULL)
			fatal("out of memory");
		ra_done_n = 0;
		for (i = 0; i < oldcap; i++)
			if (old[i] != 0)
				ra_set_done(old[i]);
		free(old);
	}
	for (i = k & (ra_done_cap - 1); ra_done[i] != 0;
	    i = (i + 1) & (ra_done_cap - 1))
		;
	ra_done[i] = k;
	ra_done_n++;
}

/* Start generation gen afresh: nothing walked, the first budget. */
static void
ra_new_gen(uint64_t gen)
{
	free(ra_done);
	ra_done = NULL;
	ra_done_cap = ra_done_n = 0;
	ra_budget = RA_FIRST_DIRS;
	ra_gen = gen;
}

/*
 * Read dfd's child directories into *l; returns how many, -1 on error.
 * Reads with getdents64 on dfd itself (no second open); dfd's offset is
 * left at the end.
 */
static int
ra_list_dirs(int dfd, struct ra_list *l)
{
	char			 dents[32768] __attribute__((aligned(8)));
	struct linux_dirent64	*de;
	struct stat		 st;
	size_t			 cap = 0, n, used = 0, icap = 0;
	long			 got, off;

	memset(l, 0, sizeof *l);
	while ((got = syscall(SYS_getdents64, dfd, dents, sizeof dents)) > 0) {
		for (off = 0; off < got; off += de->d_reclen) {
			de = (struct linux_dirent64 *)(dents + off);
			if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
			    (de->d_name[1] == '.' && de->d_name[2] == '\0')))
				continue;
			if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
				continue;
			if (de->d_type == DT_UNKNOWN && (fstatat(dfd,
			    de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
			    !S_ISDIR(st.st_mode)))
				continue;
			n = strlen(de->d_name) + 1;
			if (used + n > cap) {
				cap = cap ? cap * 2 : 4096;
				while (used + n > cap)
					cap *= 2;
				if ((l->names = realloc(l->names, cap)) == NULL)
					fatal("out of memory");
			}
			if ((size_t)l->count == icap) {
				icap = icap ? icap * 2 : 64;
				if ((l->ents = realloc(l->ents,
				    icap * sizeof *l->ents)) == NULL)
					fatal("out of memory");
			}
			memcpy(l->names + used, de->d_name, n);
			l->ents[l->count].ino = de->d_ino;
			l->ents[l->count++].off = used;
			used += n;
		}
	}
	return got < 0 ? -1 : l->count;
}

static int ra_walk(struct ra_req *, int, uint64_t, nlink_t, int, int *);

/*
 * Hand l's directories from index first on (wrapping round) to the
 * callback in chunks, and walk the subtree of each, but those walked to
 * the end already in this snapshot (handed over then: skipped, free of
 * budget) and that of index skip (-1: none), where the walk came from.
 * dfd is their parent, on the daemon's mount (the walk never leaves it).
 * A mount point is left alone (another filesystem, or a bind mount of
 * this one, whose directories are reached where they are).  Returns 1 when all of them were walked to the end (a subtree
 * deeper than RA_MAX_DEPTH counts: its directories' own opens ask for
 * it), 0 when not, -1 when the request is to stop (out of budget, its
 * snapshot over, the daemon stopping).
 */
static int
ra_walk_list(struct ra_req *r, int dfd, const struct ra_list *l, int first,
    int skip, int depth, int *budget)
{
	struct fst_handle	 hs[RA_CHUNK];
	const char		*names[RA_CHUNK];
	uint64_t		 inos[RA_CHUNK];
	unsigned char		 isnew[RA_CHUNK];
	unsigned char		 walk[RA_CHUNK];
	struct stat		 st;
	int			 i, j, n, left, cfd, rc, mnt, whole = 1;

	j = first;
	for (left = l->count; left > 0;) {
		for (n = 0; n < RA_CHUNK && left > 0; left--, j = (j + 1) %
		    l->count) {
			names[n] = l->names + l->ents[j].off;
			inos[n] = l->ents[j].ino;
			walk[n] = j != skip;
			if (walk[n] && ra_is_done(ra_key(r->fs->dev, inos[n])))
				continue;
			if (handle_mount_of_fd(dfd, names[n], 0, &hs[n],
			    &mnt) == 0) {
				if (mnt == r->mnt)
					n++;
			} else if (errno != ENOENT && errno != ENOTDIR)
				whole = 0;	/* not gone: not walked either */
		}
		if (n == 0)
			continue;
		if (*budget < n || ra_cb(r->fs, r->gen, hs, n, isnew) != 0)
			return -1;
		*budget -= n;
		for (i = 0; i < n; i++) {
			if (atomic_load(&ra_stopping))
				return -1;
			if (!walk[i] || depth + 1 >= RA_MAX_DEPTH)
				continue;
			cfd = openat(dfd, names[i], O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (cfd == -1) {
				if (errno != ENOENT && errno != ENOTDIR)
					whole = 0;
				continue;	/* gone: nothing to arm */
			}
			rc = 0;
			if (fstat(cfd, &st) == 0 && st.st_dev == r->fs->dev)
				rc = ra_is_done(ra_key(r->fs->dev, st.st_ino)) ?
				    1 : ra_walk(r, cfd, st.st_ino, st.st_nlink,
				    depth + 1, budget);
			close(cfd);
			if (rc < 0)
				return -1;
			if (rc == 0)
				whole = 0;
		}
	}
	return whole;
}

/*
 * Walk the subtree below dfd (directory ino, nlink links), depth first;
 * remember it when walked to the end.  Returns as ra_walk_list().  A link
 * count of 2 is a directory without subdirectories on ext4, xfs and tmpfs
 * (btrfs counts 1, ext4 too past 65,000 subdirectories): it is not read,
 * which spares the walk most of a tree's names (the files of its leaf
 * directories, all of git's objects).  Were the count wrong somewhere, a
 * subdirectory would only be armed by its own first open.
 */
static int
ra_walk(struct ra_req *r, int dfd, uint64_t ino, nlink_t nlink, int depth,
    int *budget)
{
	struct ra_list	l;
	int		n, rc;

	memset(&l, 0, sizeof l);
	if (nlink == 2 || (n = ra_list_dirs(dfd, &l)) == 0)
		rc = 1;		/* nothing below */
	else if (n < 0)
		rc = 0;		/* unreadable: not walked */
	else
		rc = ra_walk_list(r, dfd, &l, 0, -1, depth, budget);
	free(l.names);
	free(l.ents);
	if (rc == 1)
		ra_set_done(ra_key(r->fs->dev, ino));
	return rc;
}

/*
 * Serve request r at directory dfd (which it takes): its subtree, then,
 * one level up at a time, the subtrees of its siblings after it and then
 * before it (THE WALK FOLLOWS THE READER), until the budget is spent, the
 * snapshot is over, RA_MAX_DEPTH levels are climbed or the root of the
 * daemon's mount of the filesystem is done.
 */
static void
ra_serve(struct ra_req *r, int dfd)
{
	struct ra_list	 l;
	struct fst_handle top_h;
	struct stat	 st, pst, top;
	int		 budget = ra_budget, pfd, rc, n, i, level;

	if (fstat(dfd, &st) == -1 || st.st_dev != r->fs->dev ||
	    fstat(r->fs->mount_fd, &top) == -1 ||
	    handle_mount_of_fd(r->fs->mount_fd, "", AT_EMPTY_PATH, &top_h,
	    &r->mnt) == -1) {
		close(dfd);	/* e.g. a btrfs subvolume: not this walk's */
		return;
	}
	rc = ra_is_done(ra_key(r->fs->dev, st.st_ino)) ? 1 :
	    ra_walk(r, dfd, st.st_ino, st.st_nlink, 0, &budget);
	for (level = 0; rc >= 0 && level < RA_MAX_DEPTH; level++) {
		if (st.st_dev == top.st_dev && st.st_ino == top.st_ino)
			break;		/* the mount's root: nothing above */
		pfd = openat(dfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pfd == -1)
			break;
		if (fstat(pfd, &pst) == -1 || pst.st_dev != r->fs->dev ||
		    pst.st_ino == st.st_ino) {
			close(pfd);
			break;		/* not below the mount's root after all */
		}
		close(dfd);
		dfd = pfd;
		if (ra_is_done(ra_key(r->fs->dev, pst.st_ino))) {
			st = pst;
			continue;	/* all of it walked: go on up */
		}
		if ((n = ra_list_dirs(dfd, &l)) > 0) {
			for (i = 0; i < l.count && l.ents[i].ino != st.st_ino;
			    i++)
				;
			/* Where we came from first: armed, not walked again. */
			rc = i < l.count ? ra_walk_list(r, dfd, &l, i, i, 0,
			    &budget) : ra_walk_list(r, dfd, &l, 0, -1, 0, &budget);
			if (rc == 1 && i < l.count && !ra_is_done(ra_key(
			    r->fs->dev, st.st_ino)))
				rc = 0;	/* where we came from was cut short */
		} else
			rc = n == 0;	/* unreadable: not walked, as in ra_walk */
		free(l.names);
		free(l.ents);
		if (rc == 1)
			ra_set_done(ra_key(r->fs->dev, pst.st_ino));
		st = pst;
	}
	close(dfd);
	if (budget <= 0 || rc < 0)
		ra_budget = ra_budget * 2 > RA_MAX_DIRS ? RA_MAX_DIRS :
		    ra_budget * 2;
}

/* The walker thread: newest request first (it is where a reader is). */
static void *
ra_main(void *arg)
{
	struct ra_req		r;
	int			dfd;
	struct {
		struct file_handle	fh;
		unsigned char		buf[FST_HANDLE_MAX];
	} u;

	for (;;) {
		pthread_mutex_lock(&ra_lock);
		while (ra_nqueue == 0 && !ra_stopping) {
			ra_idle = 1;
			pthread_cond_wait(&ra_cond, &ra_lock);
			ra_idle = 0;
		}
		if (ra_stopping) {
			pthread_mutex_unlock(&ra_lock);
			break;
		}
		r = ra_queue[--ra_nqueue];
		pthread_mutex_unlock(&ra_lock);

		if (r.gen < ra_gen)
			continue;	/* its snapshot is over */
		if (r.gen > ra_gen)
			ra_new_gen(r.gen);
		u.fh.handle_bytes = r.h.len;
		u.fh.handle_type = r.h.type;
		memcpy(u.fh.f_handle, r.h.bytes, r.h.len);
		dfd = open_by_handle_at(r.fs->mount_fd, &u.fh, O_RDONLY |
		    O_DIRECTORY | O_CLOEXEC);
		if (dfd != -1)
			ra_serve(&r, dfd);
		atomic_fetch_add(&fstd.st.perm_ahead_walks, 1);
	}
	ra_new_gen(0);
	return NULL;
}

/*
 * Ask for what a reader of directory h of fs opens next to be armed in
 * generation gen: its subtree, then its siblings' and so on up (THE WALK
 * FOLLOWS THE READER).  Never blocks for long; a full queue drops the
 * request (its directories are armed when opened).  The walker is woken
 * only when it is idle, and after ra_lock is released, so that it does not
 * wake only to wait for the lock; a busy walker finds the queue when it is
 * done.  Any thread.
 */
void
armahead_request(struct fst_fs *fs, const struct fst_handle *h, uint64_t gen)
{
	int	wake = 0;

	if (!ra_running)
		return;
	pthread_mutex_lock(&ra_lock);
	if (ra_nqueue < RA_MAX_QUEUE) {
		ra_queue[ra_nqueue].fs = fs;
		ra_queue[ra_nqueue].h = *h;
		ra_queue[ra_nqueue].gen = gen;
		ra_nqueue++;
		wake = ra_idle;
		ra_idle = 0;	/* one wake-up is enough */
	}
	pthread_mutex_unlock(&ra_lock);
	if (wake)
		pthread_cond_signal(&ra_cond);
}

/*
 * Start the walker; cb decides, for a batch of directories found, which
 * are new in generation gen (setting isnew[i]) and arms those, or returns
 * non-zero when gen is over.
 */
int
armahead_start(armahead_cb cb)
{
	ra_cb = cb;
	ra_stopping = 0;
	if (pthread_create(&ra_thread, NULL, ra_main, NULL) != 0)
		return -1;
	(void)pthread_setname_np(ra_thread, "fstrackd-ahead");
	ra_running = 1;
	return 0;
}

/* Stop the walker (a walk in progress ends at its next directory). */
void
armahead_stop(void)
{
	if (!ra_running)
		return;
	pthread_mutex_lock(&ra_lock);
	ra_stopping = 1;
	ra_nqueue = 0;
	pthread_cond_signal(&ra_cond);
	pthread_mutex_unlock(&ra_lock);
	pthread_join(ra_thread, NULL);
	ra_running = 0;
}

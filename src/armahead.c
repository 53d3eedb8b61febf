/*
 * armahead.c -- arming the directories below one that a reader just
 * entered, before the reader gets there.
 *
 * Why.  Arming a directory (perm.c) costs a durable commit, and until that
 * commit is in, every open in the directory still makes a permission round
 * trip (~80 us on these machines, against ~1 us for the open itself).  A
 * tree reader (tar, grep -r, a backup tool) enters each directory once and
 * opens all its files at once, well inside one commit: arming a directory
 * only when the reader arrives would save almost nothing.  So when perm.c
 * arms a directory that was not armed yet, it asks this thread to walk the
 * subtree below it, depth first in readdir order -- the order tar and find
 * walk in -- and to arm every directory it finds.  The walker reads only
 * directories, so it stays ahead of a reader that reads the files too, and
 * the reader finds the directories it enters already armed and silent.
 *
 * Why it is safe.  Arming is conservative: an armed directory is reported
 * after an unclean stop whether or not anything changed in it (perm.c has
 * the argument), so arming too much costs false positives after crashes,
 * rows in the arms table (two snapshots' worth at most) and ignore marks,
 * never a missed change.  The walk never crosses into another filesystem,
 * stops at RA_MAX_DEPTH levels and RA_MAX_DIRS directories per request (the
 * rest is armed when something opens there), and drops a request whose
 * snapshot has ended (the callback says so).
 *
 * Threads.  One walker thread.  It opens directories only: the permission
 * marks carry no FAN_ONDIR, so opening a directory makes no permission
 * event, and the notification group drops the daemon's own events.  It
 * knows nothing of the permission table: the callback registered by
 * perm.c decides which directories are new and arms them.
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
#define RA_MAX_DIRS	32768	/* directories armed per request */
#define RA_MAX_DEPTH	128	/* levels below the requested directory */
#define RA_CHUNK	64	/* child directories handed over at once */

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

/*
 * Read the names of dfd's child directories into a NUL-separated buffer;
 * returns how many, -1 on error.  Reads with getdents64 on dfd itself (no
 * second open); dfd's offset is left at the end.
 */
static int
ra_list_dirs(int dfd, char **buf, size_t *len)
{
	char			 dents[32768] __attribute__((aligned(8)));
	struct linux_dirent64	*de;
	struct stat		 st;
	size_t			 cap = 0, n, used = 0;
	long			 got, off;
	int			 count = 0;

	*buf = NULL;
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
				if ((*buf = realloc(*buf, cap)) == NULL)
					fatal("out of memory");
			}
			memcpy(*buf + used, de->d_name, n);
			used += n;
			count++;
		}
	}
	*len = used;
	return got < 0 ? -1 : count;
}

/*
 * Arm the subtree below dfd, depth first.  *budget counts down the
 * directories still allowed.  Returns -1 when the request is to stop.
 */
static int
ra_walk(struct ra_req *r, int dfd, int depth, int *budget)
{
	struct fst_handle	 hs[RA_CHUNK];
	const char		*names[RA_CHUNK];
	unsigned char		 isnew[RA_CHUNK];
	char			*buf, *p;
	size_t			 len;
	struct stat		 st;
	int			 count, i, n, cfd, rc = 0;

	if ((count = ra_list_dirs(dfd, &buf, &len)) <= 0) {
		free(buf);
		return 0;
	}
	p = buf;
	while (count > 0 && rc == 0) {
		for (n = 0; n < RA_CHUNK && count > 0; count--) {
			names[n] = p;
			p += strlen(p) + 1;
			if (handle_of_fd(dfd, names[n], 0, &hs[n]) == 0)
				n++;
		}
		if (n == 0)
			continue;
		if (*budget < n)
			n = *budget;
		if (n == 0 || ra_cb(r->fs, r->gen, hs, n, isnew) != 0) {
			rc = -1;
			break;
		}
		*budget -= n;
		for (i = 0; i < n && rc == 0; i++) {
			if (!isnew[i] || depth + 1 >= RA_MAX_DEPTH)
				continue;
			if (atomic_load(&ra_stopping)) {
				rc = -1;
				break;
			}
			cfd = openat(dfd, names[i], O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (cfd == -1)
				continue;
			if (fstat(cfd, &st) == 0 && st.st_dev == r->fs->dev)
				rc = ra_walk(r, cfd, depth + 1, budget);
			close(cfd);
		}
	}
	free(buf);
	return rc;
}

/* The walker thread: newest request first (it is where a reader is). */
static void *
ra_main(void *arg)
{
	struct ra_req		r;
	int			dfd, budget;
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

		u.fh.handle_bytes = r.h.len;
		u.fh.handle_type = r.h.type;
		memcpy(u.fh.f_handle, r.h.bytes, r.h.len);
		dfd = open_by_handle_at(r.fs->mount_fd, &u.fh, O_RDONLY |
		    O_DIRECTORY | O_CLOEXEC);
		if (dfd == -1)
			continue;
		budget = RA_MAX_DIRS;
		(void)ra_walk(&r, dfd, 0, &budget);
		close(dfd);
	}
	return NULL;
}

/*
 * Ask for the subtree below directory h of fs to be armed in generation
 * gen.  Never blocks for long; a full queue drops the request (its
 * directories are armed when opened).  The walker is woken only when it is
 * idle, and after ra_lock is released, so that it does not wake only to
 * wait for the lock; a busy walker finds the queue when it is done.  Any
 * thread.
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

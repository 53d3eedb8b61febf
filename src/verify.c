/*
 * verify.c -- `fstrack verify`: check the record against the tree.
 *
 * What it checks.  Every inode whose ctime is at or after the start of
 * snapshot N (and before the question was asked) changed in that span, so
 * the directory holding it must be among the directories `changed --since
 * N` reports (a directory whose own ctime qualifies may instead be reported
 * itself).  The walk reads every directory of every tracked filesystem
 * (or, with --sample K, K directories picked at random by random descents
 * from the mount points) and prints each entry that breaks this: a miss.
 * There should never be one.  It also reports how many reported
 * directories hold no such entry (false positives: allowed, but few).
 *
 * Why ctime and not mtime.  ctime cannot be set from user space; utimes can
 * set mtime to any value, also into the span, for an entry changed long
 * before it.  A content rewrite with its times restored still sets ctime.
 *
 * What it cannot see.  A change whose ctime is earlier than the snapshot's
 * start although it happened after it: the clock stepped back, or another
 * machine with a wrong clock wrote the filesystem.  Paths longer than
 * PATH_MAX are skipped (and counted).  Entries changed while the walk runs
 * are ignored (their ctime is after the question).  The state directory is
 * skipped: the daemon does not track itself.  A transient hard link made
 * elsewhere changes a file's ctime (its link count) with nothing else
 * changed; the daemon reports other names only when it finds them, and
 * verify names such a file as a miss: it reports what ctime shows.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "proto.h"
#include "query.h"

#define VF_JIFFY_NS	10000000	/* coarse timestamp lag, at most */

struct vf_dir {
	char	*path;
	int	 confirmed;	/* holds an entry changed in the span */
};

struct vf {
	struct vf_dir	*dirs;		/* reported directories, sorted */
	size_t		 ndirs;
	int64_t		 from_ns, to_ns;
	const char	*skip;		/* the state directory */
	uint64_t	 scanned, misses, toolong;
	int		 json, first;
	struct sbuf	 out;
};

/* Compare two reported directories by path. */
static int
vf_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vf_dir *)a)->path,
	    ((const struct vf_dir *)b)->path);
}

/* The reported directory at path, or NULL. */
static struct vf_dir *
vf_find(struct vf *v, const char *path)
{
	struct vf_dir	key;

	key.path = (char *)path;
	return bsearch(&key, v->dirs, v->ndirs, sizeof *v->dirs, vf_cmp);
}

/* Inode-change time of st in nanoseconds. */
static int64_t
vf_ctime(const struct stat *st)
{
	return (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/* Print one miss. */
static void
vf_miss(struct vf *v, const char *path, const struct stat *st)
{
	v->misses++;
	if (v->json) {
		sbuf_addstr(&v->out, v->first ? "" : ",");
		sbuf_addstr(&v->out, "{\"path\":");
		sbuf_add_json_string(&v->out, path);
		sbuf_printf(&v->out, ",\"ctime_ns\":%lld}",
		    (long long)vf_ctime(st));
		v->first = 0;
	} else
		printf("miss\t%s\n", path);
}

/*
 * Check the entries of directory path (open as dfd, which is consumed);
 * descend into subdirectories on the same device when recurse.
 */
static void
vf_dir(struct vf *v, const char *path, int dfd, int recurse, dev_t dev)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	struct vf_dir	*self = vf_find(v, path);
	char		 child[PATH_MAX];
	int		 cfd, in_span, near;
	size_t		 n;

	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;	/* gone meanwhile: a change after the question */
		n = (size_t)snprintf(child, sizeof child, "%s/%s",
		    strcmp(path, "/") ? path : "", de->d_name);
		if (n >= sizeof child) {
			v->toolong++;
			continue;
		}
		if (v->skip != NULL && strcmp(child, v->skip) == 0)
			continue;	/* the daemon's own files change always */
		v->scanned++;
		in_span = vf_ctime(&st) >= v->from_ns && vf_ctime(&st) < v->to_ns;
		/*
		 * A change just after the snapshot began can carry a ctime up
		 * to a jiffy before it (coarse timestamps, doc/kernel-facts.md):
		 * such entries are not checked for misses (they might predate
		 * the snapshot), but they do show a reported directory changed.
		 */
		near = vf_ctime(&st) >= v->from_ns - VF_JIFFY_NS &&
		    vf_ctime(&st) < v->to_ns;
		if (near && self != NULL)
			self->confirmed = 1;
		if (in_span && self == NULL &&
		    (!S_ISDIR(st.st_mode) || vf_find(v, child) == NULL))
			vf_miss(v, child, &st);
		if (S_ISDIR(st.st_mode) && near) {
			struct vf_dir *c = vf_find(v, child);

			if (c != NULL)
				c->confirmed = 1;	/* its own ctime */
		}
		if (!recurse || !S_ISDIR(st.st_mode) || st.st_dev != dev)
			continue;
		cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (cfd != -1)
			vf_dir(v, child, cfd, 1, dev);
	}
	closedir(d);
}

/* K random descents from mp: each checks every directory it passes. */
static void
vf_sample(struct vf *v, const char *mp, long k, dev_t dev)
{
	char		 path[PATH_MAX], pick[NAME_MAX + 1];
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	long		 i, seen;
	int		 fd;

	for (i = 0; i < k; i++) {
		snprintf(path, sizeof path, "%s", mp);
		for (;;) {
			if ((fd = open(path, O_RDONLY | O_DIRECTORY |
			    O_CLOEXEC)) == -1)
				break;
			vf_dir(v, path, dup(fd), 0, dev);
			if ((d = fdopendir(fd)) == NULL) {
				close(fd);
				break;
			}
			/* Reservoir-pick one subdirectory uniformly. */
			seen = 0;
			while ((de = readdir(d)) != NULL) {
				if (de->d_name[0] == '.' && (de->d_name[1] ==
				    '\0' || (de->d_name[1] == '.' &&
				    de->d_name[2] == '\0')))
					continue;
				if (fstatat(dirfd(d), de->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) == -1 ||
				    !S_ISDIR(st.st_mode) || st.st_dev != dev)
					continue;
				if (random() % ++seen == 0)
					snprintf(pick, sizeof pick, "%s",
					    de->d_name);
			}
			closedir(d);
			if (seen == 0 || strlen(path) + strlen(pick) + 2 >
			    sizeof path)
				break;
			strcat(path, strcmp(path, "/") ? "/" : "");
			strcat(path, pick);
			if (v->skip != NULL && strcmp(path, v->skip) == 0)
				break;
		}
	}
}

/* Run one SQL query returning one integer; -1 on error. */
static int64_t
vf_int(sqlite3 *db, const char *sql, int64_t arg)
{
	sqlite3_stmt	*st;
	int64_t		 v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, arg);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * Verify the record since snapshot since (cur is the current one) against
 * the tracked filesystems; asked_ns is the time just before the barrier.
 * sample 0 walks everything.  state_dir is skipped.  Returns the exit
 * status: 0 no miss, 1 a miss (or an error), 3/4 as for changed.
 */
int
query_verify(sqlite3 *db, int64_t since, int64_t cur, int64_t asked_ns,
    long sample, int json, const char *state_dir)
{
	struct vf	 v;
	sqlite3_stmt	*st;
	struct stat	 mst;
	const char	*mp;
	uint64_t	 fps = 0;
	size_t		 cap = 0, i;
	int		 rc, fd, ngaps;

	if ((rc = query_since_ok(db, since, cur, json ? Q_JSON : 0)) != 0)
		return rc;
	if ((ngaps = (int)vf_int(db, "SELECT count(*) FROM gaps WHERE "
	    "snapshot >= ?", since)) != 0) {
		fprintf(stderr, "fstrack: history incomplete since snapshot %lld "
		    "(%d gap%s, see fstrack changed): nothing to verify\n",
		    (long long)since, ngaps, ngaps == 1 ? "" : "s");
		return ngaps < 0 ? FST_EXIT_ERROR : FST_EXIT_GAP;
	}
	memset(&v, 0, sizeof v);
	v.json = json;
	v.first = 1;
	v.skip = state_dir;
	v.to_ns = asked_ns;
	v.from_ns = vf_int(db, "SELECT started_ns FROM snapshots WHERE id = ?",
	    since);
	if (v.from_ns < 0) {
		fprintf(stderr, "fstrack: no start time for snapshot %lld\n",
		    (long long)since);
		return FST_EXIT_ERROR;
	}
	if (sqlite3_prepare_v2(db, "SELECT DISTINCT d.path FROM changes c "
	    "JOIN dirs d ON d.id = c.dir_id WHERE c.snapshot >= ?", -1, &st,
	    NULL) != SQLITE_OK)
		return FST_EXIT_ERROR;
	sqlite3_bind_int64(st, 1, since);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (v.ndirs == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((v.dirs = realloc(v.dirs, cap * sizeof *v.dirs)) ==
			    NULL)
				abort();
		}
		v.dirs[v.ndirs].path = strdup((const char *)
		    sqlite3_column_text(st, 0));
		v.dirs[v.ndirs].confirmed = 0;
		v.ndirs++;
	}
	sqlite3_finalize(st);
	qsort(v.dirs, v.ndirs, sizeof *v.dirs, vf_cmp);

	sbuf_init(&v.out);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	if (sqlite3_prepare_v2(db, "SELECT mountpoint FROM filesystems WHERE "
	    "state = 'tracked' ORDER BY mountpoint", -1, &st, NULL) !=
	    SQLITE_OK)
		return FST_EXIT_ERROR;
	while (sqlite3_step(st) == SQLITE_ROW) {
		mp = (const char *)sqlite3_column_text(st, 0);
		if (stat(mp, &mst) == -1)
			continue;
		if (sample > 0)
			vf_sample(&v, mp, sample, mst.st_dev);
		else if ((fd = open(mp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) !=
		    -1)
			vf_dir(&v, mp, fd, 1, mst.st_dev);
	}
	sqlite3_finalize(st);

	for (i = 0; i < v.ndirs; i++) {
		/* Gone, or not visited by a sample: not a false positive. */
		if (!v.dirs[i].confirmed && sample == 0 &&
		    access(v.dirs[i].path, F_OK) == 0)
			fps++;
	}
	if (json)
		printf("{\"since\":%lld,\"snapshot\":%lld,\"scanned\":%llu,"
		    "\"misses\":[%s],\"reported_dirs\":%zu,"
		    "\"unchanged_reported_dirs\":%llu,\"too_long\":%llu}\n",
		    (long long)since, (long long)cur,
		    (unsigned long long)v.scanned, v.out.data ? v.out.data : "",
		    v.ndirs, (unsigned long long)fps,
		    (unsigned long long)v.toolong);
	else {
		printf("scanned\t%llu\n", (unsigned long long)v.scanned);
		printf("misses\t%llu\n", (unsigned long long)v.misses);
		printf("reported_dirs\t%zu\n", v.ndirs);
		if (sample == 0)
			printf("unchanged_reported_dirs\t%llu (%.1f%%)\n",
			    (unsigned long long)fps, v.ndirs ? 100.0 *
			    (double)fps / (double)v.ndirs : 0.0);
		if (v.toolong)
			printf("skipped_too_long\t%llu\n",
			    (unsigned long long)v.toolong);
	}
	sbuf_free(&v.out);
	for (i = 0; i < v.ndirs; i++)
		free(v.dirs[i].path);
	free(v.dirs);
	return v.misses ? FST_EXIT_ERROR : 0;
}

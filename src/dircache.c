/*
 * dircache.c -- the main thread's view of directories: file handle to
 * current path and parent, and which entries were already recorded in the
 * current snapshot.
 *
 * Deduplication happens here, before the writer: an entry whose kinds were
 * all recorded in this snapshot is not queued again, so a file written a
 * million times costs one row.  The cache is advisory: dropping it (memory
 * limit, new snapshot) only costs redundant upserts, never a lost record.
 *
 * Dedup epochs.  What was recorded is remembered per epoch, and a new
 * snapshot or a position (dircache_new_epoch, store.c POSITIONS) starts a
 * new one in O(1): the first change of an entry after a position is
 * recorded again, so the row's sequence number moves past the position
 * even though the entry was recorded in this snapshot already.
 *
 * A change to the entries of directory D also changes D's own mtime and
 * ctime, which is a metadata change of the entry D in D's parent.  That is
 * recorded too (kind "contents" on the parent's entry), once per directory
 * per snapshot, so that a consumer comparing metadata sees every directory
 * whose children's metadata changed.  Events on a directory itself (name
 * ".") are recorded on its entry in its parent for the same reason.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fstrack.h"
#include "log.h"

/*
 * Bounds of the two tables, so that the daemon's memory does not follow
 * the size of a snapshot: a directory costs about 400 bytes (two handles
 * and its path), an entry about 48, so at most ~13 MB and ~13 MB.  Past a
 * bound the table is emptied; its rows are still in the database.
 */
#define DC_MAX_DIRS	32768
#define DC_MAX_ENTRIES	262144

struct dc_dir {
	struct dc_dir		*hnext;
	struct fst_fs		*fs;
	struct fst_handle	 h;
	uint64_t		 hash;
	char			*path;		/* NULL until resolved */
	unsigned		 path_gen;
	int			 has_parent;
	struct fst_handle	 parent;
	uint64_t		 contents_epoch;
};

struct dc_entry {
	struct dc_entry		*hnext;
	struct dc_dir		*dir;
	uint64_t		 epoch;		/* mask is of this epoch */
	uint32_t		 mask;
	char			 name[];
};

static struct dc_dir	**dc_dirs;
static size_t		  dc_ndirs, dc_dirs_size;
static struct dc_entry	**dc_ents;
static size_t		  dc_nents, dc_ents_size;
static unsigned		  dc_path_gen = 1;
static int64_t		  dc_snapshot;
static uint64_t		  dc_epoch = 1;	/* 0: no entry was recorded */
static int64_t		  dc_epoch_ns;	/* now_ns() when it began */
static void		(*dc_move_hook)(struct fst_fs *, const char *);

/* Allocate the tables. */
void
dircache_init(void)
{
	dc_dirs_size = 65536;
	dc_ents_size = 262144;
	dc_dirs = calloc(dc_dirs_size, sizeof *dc_dirs);
	dc_ents = calloc(dc_ents_size, sizeof *dc_ents);
	if (dc_dirs == NULL || dc_ents == NULL)
		fatal("out of memory");
}

/* Forget every entry (new snapshot, or memory limit). */
static void
dc_clear_entries(void)
{
	struct dc_entry	*e, *n;
	size_t		 i;

	for (i = 0; i < dc_ents_size; i++) {
		for (e = dc_ents[i]; e != NULL; e = n) {
			n = e->hnext;
			free(e);
		}
		dc_ents[i] = NULL;
	}
	dc_nents = 0;
}

/* Forget every directory (and so every entry). */
static void
dc_clear_dirs(void)
{
	struct dc_dir	*d, *n;
	size_t		 i;

	dc_clear_entries();
	for (i = 0; i < dc_dirs_size; i++) {
		for (d = dc_dirs[i]; d != NULL; d = n) {
			n = d->hnext;
			free(d->path);
			free(d);
		}
		dc_dirs[i] = NULL;
	}
	dc_ndirs = 0;
}

/* Free everything. */
void
dircache_fini(void)
{
	if (dc_dirs == NULL)
		return;
	dc_clear_dirs();
	free(dc_dirs);
	free(dc_ents);
	dc_dirs = NULL;
	dc_ents = NULL;
}

/* Number of cached directories (for status). */
size_t
dircache_size(void)
{
	return dc_ndirs;
}

/* A new snapshot began: nothing is recorded in it yet. */
void
dircache_new_snapshot(int64_t snap)
{
	dc_snapshot = snap;
	dc_epoch++;
	dc_epoch_ns = now_ns();
	dc_clear_entries();
}

/*
 * A position is about to be taken: every entry is recorded again at its
 * next change, as if nothing had been recorded in this snapshot.
 */
void
dircache_new_epoch(void)
{
	dc_epoch++;
	dc_epoch_ns = now_ns();
}

/*
 * When the current epoch (snapshot or position) began, read after its
 * switch: every event of a change made at or after this time is read into
 * it (main thread, which reads the events and switches the epoch).
 */
int64_t
dircache_epoch_ns(void)
{
	return dc_epoch_ns;
}

/*
 * Tell fn about every directory rename (its new path), from the main
 * thread: the reconcile pass walks a moved subtree again (reconcile.c).
 * Registered from above, so this file names nothing of the layer above.
 */
void
dircache_set_move_hook(void (*fn)(struct fst_fs *, const char *))
{
	dc_move_hook = fn;
}

/* Find or add a directory. */
static struct dc_dir *
dc_get(struct fst_fs *fs, const struct fst_handle *h)
{
	uint64_t	 x = handle_hash(fs, h);
	struct dc_dir	*d;

	for (d = dc_dirs[x % dc_dirs_size]; d != NULL; d = d->hnext)
		if (d->hash == x && d->fs == fs && handle_equal(&d->h, h))
			return d;
	if ((d = calloc(1, sizeof *d)) == NULL)
		fatal("out of memory");
	d->fs = fs;
	d->h = *h;
	d->hash = x;
	d->hnext = dc_dirs[x % dc_dirs_size];
	dc_dirs[x % dc_dirs_size] = d;
	dc_ndirs++;
	return d;
}

/*
 * Make sure d->path and d->parent are current.  Returns 0, or -1 when the
 * directory no longer exists or cannot be reached.  Path and parent both
 * come from the directory itself, opened by handle: a path opened again
 * could be renamed away in between (directories above it move while we
 * look), and then the parent would be unknown or another directory's.
 */
static int
dc_resolve(struct dc_dir *d)
{
	char	path[PATH_MAX];
	int	fd, pfd;

	if (d->path != NULL && d->path_gen == dc_path_gen)
		return 0;
	/* O_PATH opens are invisible to fanotify: safe on our own marks. */
	if ((fd = handle_open(d->fs->mount_fd, &d->h, O_PATH | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return -1;
	if (fd_path(fd, path, sizeof path) != 0) {
		close(fd);
		return -1;
	}
	free(d->path);
	if ((d->path = strdup(path)) == NULL)
		fatal("out of memory");
	d->path_gen = dc_path_gen;
	d->has_parent = 0;
	if (!handle_equal(&d->h, &d->fs->root) &&
	    (pfd = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC)) != -1) {
		if (handle_of_fd(pfd, "", AT_EMPTY_PATH, &d->parent) == 0)
			d->has_parent = 1;
		close(pfd);
	}
	close(fd);
	return 0;
}

/*
 * Make room before an operation that may add directories: eviction happens
 * only here, never while a caller holds a directory pointer.
 */
static void
dc_make_room(void)
{
	if (dc_ndirs + 4 >= DC_MAX_DIRS)
		dc_clear_dirs();
}

/* Resolve a handle to its current path (for callers outside this file). */
int
dircache_resolve(struct fst_fs *fs, const struct fst_handle *h, char *out,
    size_t outlen)
{
	struct dc_dir	*d;

	dc_make_room();
	d = dc_get(fs, h);
	if (dc_resolve(d) != 0)
		return -1;
	snprintf(out, outlen, "%s", d->path);
	return 0;
}

/* Queue one change record for the writer. */
static void
dc_submit(struct dc_dir *d, const char *name, uint32_t kinds)
{
	store_submit(store_op_change(dc_snapshot, d->fs->id, &d->h, NULL, name,
	    kinds));
	atomic_fetch_add(&fstd.st.records_queued, 1);
}

/*
 * Record kinds on (d, name) unless already recorded in this dedup epoch.
 * Returns 1 when every kind was recorded already (a repeat), else 0.
 */
static int
dc_record_entry(struct dc_dir *d, const char *name, uint32_t kinds)
{
	uint64_t	 x;
	struct dc_entry	*e;
	size_t		 n;

	x = fnv1a(fnv1a(FNV1A_OFFSET, &d, sizeof d), name,
	    strlen(name));
	for (e = dc_ents[x % dc_ents_size]; e != NULL; e = e->hnext)
		if (e->dir == d && strcmp(e->name, name) == 0)
			break;
	if (e != NULL && e->epoch != dc_epoch) {
		e->epoch = dc_epoch;	/* recorded before: not in this epoch */
		e->mask = 0;
	}
	if (e != NULL && (e->mask & kinds) == kinds)
		return 1;
	if (e == NULL) {
		if (dc_nents >= DC_MAX_ENTRIES)
			dc_clear_entries();
		n = strlen(name) + 1;
		if ((e = calloc(1, sizeof *e + n)) == NULL)
			fatal("out of memory");
		memcpy(e->name, name, n);
		e->dir = d;
		e->epoch = dc_epoch;
		e->hnext = dc_ents[x % dc_ents_size];
		dc_ents[x % dc_ents_size] = e;
		dc_nents++;
	}
	kinds &= ~e->mask;
	e->mask |= kinds;
	dc_submit(d, name, kinds);
	return 0;
}

/* The last component of a path. */
static const char *
dc_basename(const char *path)
{
	const char	*s = strrchr(path, '/');

	return s != NULL && s[1] != '\0' ? s + 1 : path;
}

/*
 * Record that entry name of directory h changed in the ways kinds (FST_M_*).
 * name "." means the directory itself.  Returns 1 when (h, name) had every
 * one of those kinds recorded in this dedup epoch already (a repeat), else
 * 0.
 */
int
dircache_record(struct fst_fs *fs, const struct fst_handle *h,
    const char *name, uint32_t kinds)
{
	struct dc_dir	*d, *p;
	int		 resolved, repeat;

	dc_make_room();
	d = dc_get(fs, h);
	resolved = dc_resolve(d) == 0;
	if (strcmp(name, ".") == 0 && resolved && d->has_parent) {
		p = dc_get(fs, &d->parent);
		dc_record_entry(p, dc_basename(d->path), kinds | FST_M_ISDIR);
		return 0;
	}
	repeat = dc_record_entry(d, name, kinds);
	if (!(kinds & (FST_M_CREATED | FST_M_DELETED | FST_M_MOVED_FROM |
	    FST_M_MOVED_TO | FST_M_RESCANNED)) || d->contents_epoch == dc_epoch)
		return repeat;
	/* Once per epoch, and only once the parent is known. */
	if (resolved && d->has_parent) {
		d->contents_epoch = dc_epoch;
		p = dc_get(fs, &d->parent);
		dc_record_entry(p, dc_basename(d->path),
		    FST_M_CONTENTS | FST_M_ISDIR);
	}
	return repeat;
}

/*
 * A directory moved from (olddir, oldname) to (newdir, newname): rewrite the
 * stored paths of it and everything below it.
 */
void
dircache_rename(struct fst_fs *fs, const struct fst_handle *olddir,
    const char *oldname, const struct fst_handle *newdir, const char *newname)
{
	struct dc_dir	*od, *nd;
	char		 from[PATH_MAX], to[PATH_MAX];
	int		 ok;

	dc_make_room();
	od = dc_get(fs, olddir);
	nd = dc_get(fs, newdir);
	/* Paths cached before this rename may be stale now. */
	ok = dc_resolve(od) == 0;
	dc_path_gen++;
	od->path_gen = dc_path_gen;	/* od itself did not move */
	if (dc_resolve(nd) != 0)
		return;		/* refreshed from the handle at query time */
	snprintf(to, sizeof to, "%s/%s", strcmp(nd->path, "/") ?
	    nd->path : "", newname);
	/* A running walk must see the subtree where it is now. */
	if (dc_move_hook != NULL)
		dc_move_hook(fs, to);
	if (!ok)
		return;
	snprintf(from, sizeof from, "%s/%s", strcmp(od->path, "/") ?
	    od->path : "", oldname);
	store_submit(store_op_dir_move(fs->id, from, to));
}

/* A directory was removed: mark its row gone (it keeps its last path). */
void
dircache_gone(struct fst_fs *fs, const struct fst_handle *h)
{
	store_submit(store_op_dir_gone(fs->id, h));
}

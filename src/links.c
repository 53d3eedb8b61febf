/*
 * links.c -- every name of files that have more than one.
 *
 * A write through one name of a hard-linked file changes the mtime and
 * ctime that every other name shows, so every directory holding a name of
 * it has changed children.  The kernel reports the change under the name
 * it was made through only (or, for link and unlink, under no name at
 * all: an ATTRIB event carrying just the file's handle).  Linux cannot
 * list an inode's names, so we keep them: file handle -> (directory handle,
 * name) for every file with a link count above one.
 *
 * Where the names come from: the start-up walk (reconcile.c) sees every
 * entry and its link count; live create and move events with the file's
 * handle add names of files already known; a file that gains a second name
 * while we are running (link(2) reports it by handle only) is queued for a
 * search: a walk of its filesystem matching d_ino from getdents, cheap
 * because it needs no stat for other entries.  The search records every
 * name it finds, even when the count is back at one by then: a link made
 * and removed again before we read its events changed the ctime that the
 * remaining name shows, and nothing else reports that name's directory.  Queries wait for searches
 * like for the start-up walk, so an answer never lacks a name that is
 * merely not found yet.  Names are removed on delete and updated on move.
 *
 * The table is bounded (LINKS_MAX names); past it, a gap is recorded for
 * the filesystem rather than answering without the other names.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fstrack.h"
#include "log.h"

#define LINKS_MAX	2000000

struct link_name {
	struct link_name	*next;
	struct fst_handle	 dir;
	char			 name[];
};

struct link_file {
	struct link_file	*hnext;
	struct fst_fs		*fs;
	uint64_t		 hash;
	struct fst_handle	 h;
	struct link_name	*names;
};

/* An inode to search for, in a link_set. */
struct link_pending {
	struct link_pending	*next;
	struct fst_fs		*fs;
	uint64_t		 ino;
};

/*
 * A set of inodes to search for, hashed: a walker asks about every entry
 * it reads, and git alone queues one inode per object it writes (78k
 * after the first commit of a kernel tree), so a list would make a
 * search pass quadratic.
 */
struct link_set {
	struct link_pending	**tab;
	size_t			  size;		/* buckets: 0 or a power of 2 */
	size_t			  count;
};

static pthread_mutex_t	 links_lock = PTHREAD_MUTEX_INITIALIZER;
static struct link_file	**links_tab;
static size_t		 links_size = 65536, links_nnames;
static struct link_set	 links_pending, links_active;
static int		 links_full;

/* The bucket of (fs, ino) in a set of size buckets. */
static size_t
link_set_bucket(const struct fst_fs *fs, uint64_t ino, size_t size)
{
	uint64_t	x = ino * 0x9e3779b97f4a7c15ULL ^ (uintptr_t)fs;

	return (size_t)(x ^ x >> 29) & (size - 1);
}

/* Whether set s holds (fs, ino); caller holds links_lock. */
static int
link_set_has(const struct link_set *s, const struct fst_fs *fs, uint64_t ino)
{
	struct link_pending	*p;

	if (s->size == 0)
		return 0;
	for (p = s->tab[link_set_bucket(fs, ino, s->size)]; p != NULL;
	    p = p->next)
		if (p->fs == fs && p->ino == ino)
			return 1;
	return 0;
}

/* Add (fs, ino) to set s unless it is there; caller holds links_lock. */
static void
link_set_add(struct link_set *s, struct fst_fs *fs, uint64_t ino)
{
	struct link_pending	**tab, *p, *next;
	size_t			  i, b, size;

	if (link_set_has(s, fs, ino))
		return;
	if (s->count >= s->size) {	/* grow: at most one per bucket */
		size = s->size == 0 ? 64 : s->size * 2;
		if ((tab = calloc(size, sizeof *tab)) == NULL)
			fatal("out of memory");
		for (i = 0; i < s->size; i++) {
			for (p = s->tab[i]; p != NULL; p = next) {
				next = p->next;
				b = link_set_bucket(p->fs, p->ino, size);
				p->next = tab[b];
				tab[b] = p;
			}
		}
		free(s->tab);
		s->tab = tab;
		s->size = size;
	}
	if ((p = malloc(sizeof *p)) == NULL)
		fatal("out of memory");
	p->fs = fs;
	p->ino = ino;
	b = link_set_bucket(fs, ino, s->size);
	p->next = s->tab[b];
	s->tab[b] = p;
	s->count++;
}

/* Empty set s; caller holds links_lock. */
static void
link_set_clear(struct link_set *s)
{
	struct link_pending	*p, *next;
	size_t			 i;

	for (i = 0; i < s->size; i++)
		for (p = s->tab[i]; p != NULL; p = next) {
			next = p->next;
			free(p);
		}
	free(s->tab);
	memset(s, 0, sizeof *s);
}

/* Find a file; caller holds links_lock. */
static struct link_file *
links_find(struct fst_fs *fs, const struct fst_handle *h, uint64_t x)
{
	struct link_file	*f;

	if (links_tab == NULL)
		return NULL;
	for (f = links_tab[x % links_size]; f != NULL; f = f->hnext)
		if (f->hash == x && f->fs == fs && handle_equal(&f->h, h))
			return f;
	return NULL;
}

/* Remember that file h has the name (dir, name).  Any thread. */
void
links_add(struct fst_fs *fs, const struct fst_handle *h,
    const struct fst_handle *dir, const char *name)
{
	uint64_t		 x = handle_hash(fs, h);
	struct link_file	*f;
	struct link_name	*n;
	size_t			 len = strlen(name) + 1;

	pthread_mutex_lock(&links_lock);
	if (links_tab == NULL &&
	    (links_tab = calloc(links_size, sizeof *links_tab)) == NULL)
		fatal("out of memory");
	if ((f = links_find(fs, h, x)) == NULL) {
		if ((f = calloc(1, sizeof *f)) == NULL)
			fatal("out of memory");
		f->fs = fs;
		f->h = *h;
		f->hash = x;
		f->hnext = links_tab[x % links_size];
		links_tab[x % links_size] = f;
	}
	for (n = f->names; n != NULL; n = n->next)
		if (handle_equal(&n->dir, dir) && strcmp(n->name, name) == 0)
			break;
	if (n == NULL && links_nnames < LINKS_MAX) {
		if ((n = malloc(sizeof *n + len)) == NULL)
			fatal("out of memory");
		n->dir = *dir;
		memcpy(n->name, name, len);
		n->next = f->names;
		f->names = n;
		links_nnames++;
	} else if (n == NULL && !links_full) {
		links_full = 1;
		pthread_mutex_unlock(&links_lock);
		log_warnx("more than %d hard-linked names: not all of them "
		    "can be followed", LINKS_MAX);
		store_record_gap(fs, "too many hard-linked names to follow");
		return;
	}
	pthread_mutex_unlock(&links_lock);
}

/* Forget the name (dir, name) of file h, if we knew it. */
void
links_remove(struct fst_fs *fs, const struct fst_handle *h,
    const struct fst_handle *dir, const char *name)
{
	struct link_file	*f;
	struct link_name	**pp, *n;

	pthread_mutex_lock(&links_lock);
	if ((f = links_find(fs, h, handle_hash(fs, h))) != NULL) {
		for (pp = &f->names; (n = *pp) != NULL; pp = &n->next) {
			if (handle_equal(&n->dir, dir) &&
			    strcmp(n->name, name) == 0) {
				*pp = n->next;
				free(n);
				links_nnames--;
				break;
			}
		}
	}
	pthread_mutex_unlock(&links_lock);
}

/* Whether file h is known to have several names. */
int
links_known(struct fst_fs *fs, const struct fst_handle *h)
{
	int	known;

	pthread_mutex_lock(&links_lock);
	known = links_find(fs, h, handle_hash(fs, h)) != NULL;
	pthread_mutex_unlock(&links_lock);
	return known;
}

/*
 * Call cb for every known name of file h.  The names are copied first so
 * cb may take other locks.  Returns how many names there were.
 */
int
links_foreach(struct fst_fs *fs, const struct fst_handle *h,
    void (*cb)(struct fst_fs *, const struct fst_handle *, const char *,
    void *), void *arg)
{
	struct link_file	*f;
	struct link_name	*n, *copy = NULL, *c;
	int			 count = 0;
	size_t			 len;

	pthread_mutex_lock(&links_lock);
	if ((f = links_find(fs, h, handle_hash(fs, h))) != NULL) {
		for (n = f->names; n != NULL; n = n->next) {
			len = strlen(n->name) + 1;
			if ((c = malloc(sizeof *c + len)) == NULL)
				fatal("out of memory");
			c->dir = n->dir;
			memcpy(c->name, n->name, len);
			c->next = copy;
			copy = c;
		}
	}
	pthread_mutex_unlock(&links_lock);
	while ((c = copy) != NULL) {
		copy = c->next;
		cb(fs, &c->dir, c->name, arg);
		free(c);
		count++;
	}
	return count;
}

/* Queue a search for the names of inode ino on fs. */
void
links_search(struct fst_fs *fs, uint64_t ino)
{
	pthread_mutex_lock(&links_lock);
	link_set_add(&links_pending, fs, ino);
	pthread_mutex_unlock(&links_lock);
}

/*
 * Start a search pass: the queued inodes become the ones walkers look for.
 * Returns how many there are (0: nothing to search).
 */
int
links_search_begin(void)
{
	int	n;

	pthread_mutex_lock(&links_lock);
	link_set_clear(&links_active);
	links_active = links_pending;
	memset(&links_pending, 0, sizeof links_pending);
	n = (int)links_active.count;
	pthread_mutex_unlock(&links_lock);
	return n;
}

/* Whether searches are queued and not yet begun. */
int
links_search_queued(void)
{
	int	queued;

	pthread_mutex_lock(&links_lock);
	queued = links_pending.count > 0;
	pthread_mutex_unlock(&links_lock);
	return queued;
}

/* Whether the running search pass looks for anything on fs. */
int
links_search_on(const struct fst_fs *fs)
{
	struct link_pending	*p;
	size_t			 i;
	int			 found = 0;

	pthread_mutex_lock(&links_lock);
	for (i = 0; i < links_active.size && !found; i++)
		for (p = links_active.tab[i]; p != NULL && !found; p = p->next)
			found = p->fs == fs;
	pthread_mutex_unlock(&links_lock);
	return found;
}

/* Whether the running search pass looks for inode ino on fs. */
int
links_searching(struct fst_fs *fs, uint64_t ino)
{
	int	found;

	pthread_mutex_lock(&links_lock);
	found = link_set_has(&links_active, fs, ino);
	pthread_mutex_unlock(&links_lock);
	return found;
}

/* Number of names known (for status). */
size_t
links_count(void)
{
	return links_nnames;
}

/*
 * syncplan.c -- the rules of an incremental fstrack-rsync run.
 *
 * Input: every change fstrack recorded since the consumer's cursor, as
 * (directory, entry name, kinds); SRC (a real path) and the mount point of
 * the filesystem it is on.  Output: either "full sync, because ..." or the
 * list of directories, relative to SRC, that one rsync run
 *
 *	rsync -a --no-recursive --dirs --delete --files-from=LIST --from0
 *	      --ignore-missing-args SRC/ DEST
 *
 * must visit.  Each listed "DIR/." makes rsync send DIR itself (its
 * attributes) and its immediate entries (child directories as bare
 * directories, without their contents); --delete removes, in exactly those
 * directories, what the source no longer has.  Ancestors of a listed path
 * are implied directories: their attributes are sent, nothing is deleted
 * in them.  So the cost is linear in the number of listed directories.
 *
 * THE RULES, for a record of entry NAME in directory DIR, P = DIR/NAME:
 *  1. NAME is "." (a record on a directory itself, e.g. kind armed after an
 *     unclean stop): DIR is listed, and the record is also taken as one of
 *     DIR's entry in its parent (rules 2-5), so DIR's attributes and, if it
 *     is new, its whole subtree are covered.
 *  2. The only kind is "contents" (P is a directory whose entries changed,
 *     recorded on its entry in DIR): P is listed.  DIR is not: P's own
 *     "P/." carries P's attributes.
 *  3. A kind says P is new here (created, moved-to, rescanned) and P is SRC
 *     or one of its ancestors below the mount point: SRC may have been
 *     replaced by another tree, and nothing recorded says what is in it:
 *     full sync.  (The mount point itself cannot be replaced.)
 *  4. P is SRC itself (its attributes): SRC is listed.
 *  5. Otherwise DIR is listed (its entry NAME changed), and if P is new and
 *     is a directory now, P's subtree is walked and every directory in it
 *     is listed: a directory moved in from elsewhere on the filesystem is
 *     not reported itself, nor anything below it, so its contents are
 *     known only from the tree.
 * A listed directory that is not a directory now (removed, replaced by a
 * file) is dropped: its entry in its parent changed too, and the parent is
 * listed.  Records outside SRC are ignored.  The walk of a new subtree
 * stays on one filesystem with -x, as rsync then does.
 *
 * NAMES.  rsync reads --files-from lines as comments when they start with
 * '#' or ';', even with --from0, and exits 0: such an entry is written as
 * "./NAME/.".  --from0 makes newline, tab, backslash and every other byte
 * plain data; names in the list are never globbed nor taken as options.
 * rsync cuts lines longer than SYNCPLAN_MAX_ENTRY bytes without a word; a
 * directory whose entry would be longer is not listed but counted as
 * too_long, and the caller must not call such a run complete.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbformat.h"
#include "syncplan.h"

#define SP_NEW_KINDS	(FST_M_CREATED | FST_M_MOVED_TO | FST_M_RESCANNED)

struct syncplan {
	char		 *src;		/* real path, no trailing slash but "/" */
	size_t		  srclen;
	char		 *mnt;		/* mount point of src */
	int		  onefs;
	int		  srcfd;	/* O_PATH of src, for *at() */
	char		 *reason;	/* non-NULL: full sync */

	char		**set;		/* open addressing: listed and pending */
	size_t		  setcap;
	size_t		  setlen;

	char		**list;		/* the listed directories, relative */
	size_t		  nlist;
	size_t		  caplist;

	char		**newtrees;	/* new subtrees still to walk */
	size_t		  nnew;
	size_t		  capnew;

	char		**toolong;
	size_t		  ntoolong;
	size_t		  captoolong;

	struct syncplan_stats st;
};

/* A copy of s, or abort: the plan cannot be half made. */
static char *
sp_strdup(const char *s)
{
	char	*p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

/* Append s to a growable array of strings. */
static void
sp_push(char ***v, size_t *n, size_t *cap, char *s)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		if ((*v = realloc(*v, *cap * sizeof **v)) == NULL)
			abort();
	}
	(*v)[(*n)++] = s;
}

/* FNV-1a of a string. */
static uint64_t
sp_hash(const char *s)
{
	uint64_t	h = 1469598103934665603ULL;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* Insert s into the set unless present; 1 if it was new. */
static int
sp_set_add(struct syncplan *p, const char *s, char **stored)
{
	size_t	 i, j;
	char	**old;

	if (p->setlen * 2 >= p->setcap) {
		old = p->set;
		j = p->setcap;
		p->setcap = p->setcap ? p->setcap * 2 : 1024;
		if ((p->set = calloc(p->setcap, sizeof *p->set)) == NULL)
			abort();
		for (i = 0; i < j; i++) {
			size_t k;

			if (old[i] == NULL)
				continue;
			k = sp_hash(old[i]) & (p->setcap - 1);
			while (p->set[k] != NULL)
				k = (k + 1) & (p->setcap - 1);
			p->set[k] = old[i];
		}
		free(old);
	}
	i = sp_hash(s) & (p->setcap - 1);
	while (p->set[i] != NULL) {
		if (strcmp(p->set[i], s) == 0) {
			*stored = p->set[i];
			return 0;
		}
		i = (i + 1) & (p->setcap - 1);
	}
	p->set[i] = *stored = sp_strdup(s);
	p->setlen++;
	return 1;
}

/*
 * Start a plan for SRC src (a real path) on the filesystem mounted at mnt;
 * onefs: new subtrees are walked without crossing mount points.  NULL with
 * errno set if src cannot be opened.
 */
struct syncplan *
syncplan_new(const char *src, const char *mnt, int onefs)
{
	struct syncplan	*p;
	size_t		 n;

	if ((p = calloc(1, sizeof *p)) == NULL)
		abort();
	p->srcfd = -1;
	p->src = sp_strdup(src);
	n = strlen(p->src);
	while (n > 1 && p->src[n - 1] == '/')
		p->src[--n] = '\0';
	p->srclen = n;
	p->mnt = sp_strdup(mnt);
	n = strlen(p->mnt);
	while (n > 1 && p->mnt[n - 1] == '/')
		p->mnt[--n] = '\0';
	p->onefs = onefs;
	if ((p->srcfd = open(p->src, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		int e = errno;

		syncplan_free(p);
		errno = e;
		return NULL;
	}
	return p;
}

/* Free a plan and everything it holds. */
void
syncplan_free(struct syncplan *p)
{
	size_t	i;

	if (p == NULL)
		return;
	for (i = 0; i < p->setcap; i++)
		free(p->set[i]);
	for (i = 0; i < p->nnew; i++)
		free(p->newtrees[i]);
	for (i = 0; i < p->ntoolong; i++)
		free(p->toolong[i]);
	free(p->set);
	free(p->list);
	free(p->newtrees);
	free(p->toolong);
	if (p->srcfd != -1)
		close(p->srcfd);
	free(p->reason);
	free(p->src);
	free(p->mnt);
	free(p);
}

/* path relative to src ("." for src itself), or NULL if not under it. */
static const char *
sp_rel(const struct syncplan *p, const char *path)
{
	if (strcmp(path, p->src) == 0)
		return ".";
	if (p->srclen == 1)
		return path[0] == '/' && path[1] != '\0' ? path + 1 : NULL;
	if (strncmp(path, p->src, p->srclen) == 0 && path[p->srclen] == '/' &&
	    path[p->srclen + 1] != '\0')
		return path + p->srclen + 1;
	return NULL;
}

/*
 * lstat of rel (relative to src), also when rel is longer than PATH_MAX:
 * then it is opened a part of at most PATH_MAX - 1 bytes at a time.
 */
static int
sp_lstat(const struct syncplan *p, const char *rel, struct stat *st)
{
	char		*copy, *s, *cut;
	int		 fd = p->srcfd, nfd, rc;

	if (strlen(rel) < PATH_MAX)
		return fstatat(p->srcfd, rel, st, AT_SYMLINK_NOFOLLOW);
	copy = sp_strdup(rel);
	for (s = copy; strlen(s) >= PATH_MAX; s = cut + 1) {
		/* the last slash that leaves a part shorter than PATH_MAX */
		for (cut = s + PATH_MAX - 1; cut > s && *cut != '/'; cut--)
			;
		if (cut == s) {
			errno = ENAMETOOLONG;
			rc = -1;
			goto out;
		}
		*cut = '\0';
		nfd = openat(fd, s, O_PATH | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (fd != p->srcfd)
			close(fd);
		if ((fd = nfd) == -1) {
			rc = -1;
			goto out;
		}
	}
	rc = fstatat(fd, s, st, AT_SYMLINK_NOFOLLOW);
out:
	if (fd != p->srcfd && fd != -1)
		close(fd);
	free(copy);
	return rc;
}

/* Whether rel (relative to src) is a directory now, not a symlink to one. */
static int
sp_isdir(const struct syncplan *p, const char *rel)
{
	struct stat	st;

	return sp_lstat(p, rel, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Whether rsync's list cannot hold directory rel. */
static int
sp_too_long(const char *rel)
{
	return syncplan_encode(rel, NULL, 0) > SYNCPLAN_MAX_ENTRY;
}

/*
 * List rel once; 1 if it was not listed yet.  One too long for rsync is
 * set apart (and makes the run incomplete).
 */
static int
sp_list(struct syncplan *p, const char *rel)
{
	char	*s;

	if (!sp_set_add(p, rel, &s))
		return 0;
	if (sp_too_long(rel)) {
		sp_push(&p->toolong, &p->ntoolong, &p->captoolong,
		    sp_strdup(rel));
		p->st.too_long++;
		return 0;
	}
	sp_push(&p->list, &p->nlist, &p->caplist, s);
	p->st.listed++;
	return 1;
}

/* A directory the records say changed: listed if it still is one. */
static void
sp_changed_dir(struct syncplan *p, const char *path)
{
	const char	*rel;

	p->st.reported++;
	if ((rel = sp_rel(p, path)) == NULL)
		return;
	if (sp_isdir(p, rel))
		sp_list(p, rel);	/* too long: rsync cannot, say so */
	else
		p->st.gone++;
}

/* Whether path is src or one of its ancestors, strictly below the mount. */
static int
sp_replaces_src(const struct syncplan *p, const char *path)
{
	size_t	n = strlen(path), m = strlen(p->mnt);

	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n > p->srclen || strncmp(p->src, path, n) != 0 ||
	    (p->src[n] != '/' && p->src[n] != '\0'))
		return 0;
	if (n == 1 && path[0] == '/')
		return 0;		/* "/" is a mount point */
	/* below the mount point: mnt is a proper prefix of path */
	if (m == 1)
		return 1;
	return n > m && strncmp(path, p->mnt, m) == 0 && path[m] == '/';
}

/* Rules 2-5 for entry name of directory dir (not "."). */
static int
sp_entry(struct syncplan *p, const char *dir, const char *name, int64_t mask)
{
	char		*path;
	const char	*rel, *relp;
	int		 isnew = (mask & SP_NEW_KINDS) != 0;

	if (asprintf(&path, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/",
	    name) == -1)
		abort();
	if ((mask & ~(int64_t)FST_M_ISDIR) == FST_M_CONTENTS) {
		sp_changed_dir(p, path);
		free(path);
		return 0;
	}
	if (isnew && sp_replaces_src(p, path)) {
		if (asprintf(&p->reason, "%s was created or moved in: a "
		    "directory at or above %s may have been replaced", path,
		    p->src) == -1)
			abort();
		free(path);
		return 1;
	}
	if (strcmp(path, p->src) == 0) {
		sp_list(p, ".");
		free(path);
		return 0;
	}
	if ((rel = sp_rel(p, dir)) == NULL) {
		free(path);
		return 0;
	}
	sp_changed_dir(p, dir);
	if (isnew && (relp = sp_rel(p, path)) != NULL) {
		struct stat st;

		if (sp_too_long(relp) && sp_lstat(p, relp, &st) == 0)
			sp_list(p, relp);	/* counted as too long */
		else if (sp_isdir(p, relp))
			sp_push(&p->newtrees, &p->nnew, &p->capnew,
			    sp_strdup(relp));
	}
	free(path);
	return 0;
}

/*
 * Take one record: entry name of directory dir changed in the ways mask
 * (FST_M_* bits).  Returns 0, or 1 when the run must be a full sync
 * (syncplan_reason says why; later records change nothing).
 */
int
syncplan_add(struct syncplan *p, const char *dir, const char *name,
    int64_t mask)
{
	const char	*slash;
	char		*parent;
	int		 rc;

	if (p->reason != NULL)
		return 1;
	if (dir[0] != '/')
		return 0;		/* not a path: never resolved */
	if (strcmp(name, ".") != 0)
		return sp_entry(p, dir, name, mask);
	/* rule 1: the directory itself */
	sp_changed_dir(p, dir);
	if (strcmp(dir, "/") == 0)
		return 0;
	slash = strrchr(dir, '/');
	if ((parent = strndup(dir, slash == dir ? 1 : (size_t)(slash - dir)))
	    == NULL)
		abort();
	rc = sp_entry(p, parent, slash + 1, mask);
	free(parent);
	return rc;
}

/*
 * List every directory of the subtree at rel (relative to src), depth
 * first.  A directory that cannot be read is still listed: rsync then says
 * what is wrong with it.
 */
static void
sp_walk(struct syncplan *p, const char *top)
{
	char		**stack = NULL, *rel, *child;
	size_t		  n = 0, cap = 0;
	struct stat	  st;
	dev_t		  dev = 0;
	DIR		 *d;
	struct dirent	 *de;
	int		  fd;

	if (fstatat(p->srcfd, top, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISDIR(st.st_mode))
		return;
	dev = st.st_dev;
	sp_push(&stack, &n, &cap, sp_strdup(top));
	while (n > 0) {
		rel = stack[--n];
		if (sp_list(p, rel))
			p->st.in_new++;
		fd = openat(p->srcfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (fd == -1 || (d = fdopendir(fd)) == NULL) {
			if (fd != -1)
				close(fd);
			free(rel);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
			    (de->d_name[1] == '.' && de->d_name[2] == '\0')))
				continue;
			if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
				continue;
			if ((de->d_type == DT_UNKNOWN || p->onefs) &&
			    (fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISDIR(st.st_mode) ||
			    (p->onefs && st.st_dev != dev)))
				continue;
			if (asprintf(&child, "%s/%s", rel, de->d_name) == -1)
				abort();
			sp_push(&stack, &n, &cap, child);
		}
		closedir(d);
		free(rel);
	}
	free(stack);
}

/* Sort order of the list: bytes, so a directory precedes what is in it. */
static int
sp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * After the last record: walk the new subtrees and sort the list.  Returns
 * 0, or 1 when the run must be a full sync.
 */
int
syncplan_finish(struct syncplan *p)
{
	size_t	i;

	if (p->reason != NULL)
		return 1;
	for (i = 0; i < p->nnew; i++) {
		sp_walk(p, p->newtrees[i]);
		free(p->newtrees[i]);
	}
	p->nnew = 0;
	if (p->nlist > 1)	/* qsort's base may not be NULL, even for 0 */
		qsort(p->list, p->nlist, sizeof *p->list, sp_cmp);
	return 0;
}

/* Why the run must be a full sync, or NULL. */
const char *
syncplan_reason(const struct syncplan *p)
{
	return p->reason;
}

/* How many directories are listed. */
size_t
syncplan_count(const struct syncplan *p)
{
	return p->nlist;
}

/* The i-th listed directory, relative to src ("." for src itself). */
const char *
syncplan_entry(const struct syncplan *p, size_t i)
{
	return i < p->nlist ? p->list[i] : NULL;
}

/* The counts of the summary line. */
void
syncplan_stats(const struct syncplan *p, struct syncplan_stats *st)
{
	*st = p->st;
}

/* Call fn for each directory too long for rsync's list. */
void
syncplan_foreach_too_long(const struct syncplan *p,
    void (*fn)(void *, const char *), void *arg)
{
	size_t	i;

	for (i = 0; i < p->ntoolong; i++)
		fn(arg, p->toolong[i]);
}

/*
 * The --files-from line of directory rel (without its NUL) into buf when
 * it fits in len bytes with a NUL; returns its length either way.
 */
size_t
syncplan_encode(const char *rel, char *buf, size_t len)
{
	size_t	n = strlen(rel);
	int	dot = rel[0] == '#' || rel[0] == ';';
	size_t	want;

	if (strcmp(rel, ".") == 0)
		want = 1;
	else
		want = (dot ? 2 : 0) + n + 2;
	if (buf == NULL || want + 1 > len)
		return want;
	if (strcmp(rel, ".") == 0) {
		memcpy(buf, ".", 2);
		return want;
	}
	snprintf(buf, len, "%s%s/.", dot ? "./" : "", rel);
	return want;
}

/* One byte into a POSIX cksum CRC (polynomial 0x04C11DB7, MSB first). */
static uint32_t
cksum_step(uint32_t crc, unsigned char byte)
{
	int	i;

	crc ^= (uint32_t)byte << 24;
	for (i = 0; i < 8; i++)
		crc = crc & 0x80000000U ? (crc << 1) ^ 0x04C11DB7U : crc << 1;
	return crc;
}

/*
 * POSIX cksum(1) of a buffer: the hash in the default consumer name, kept
 * from the shell version so that names do not change on upgrade.
 */
static uint32_t
cksum_posix(const unsigned char *p, size_t n)
{
	uint32_t	crc = 0;
	size_t		i, len;

	for (i = 0; i < n; i++)
		crc = cksum_step(crc, p[i]);
	for (len = n; len > 0; len >>= 8)
		crc = cksum_step(crc, len & 0xff);
	return ~crc;
}

/*
 * The default consumer name: "rsync-" DEST with bytes other than letters,
 * digits, '.', '_' and '-' made '_', then '-' and the cksum of SRC NUL
 * DEST in hex; DEST is cut so that the name stays within 64 bytes.
 */
void
syncplan_default_name(const char *src, const char *dest, char *buf, size_t len)
{
	size_t		 ls = strlen(src), ld = strlen(dest), i, n;
	unsigned char	*b;
	char		 part[50];

	if ((b = malloc(ls + ld + 1)) == NULL)
		abort();
	memcpy(b, src, ls);
	b[ls] = '\0';
	memcpy(b + ls + 1, dest, ld);
	for (i = 0, n = 0; i < ld && n < sizeof part - 1; i++) {
		unsigned char c = dest[i];

		part[n++] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ?
		    (char)c : '_';
	}
	part[n] = '\0';
	snprintf(buf, len, "rsync-%s-%08x", part,
	    (unsigned)cksum_posix(b, ls + ld + 1));
	free(b);
}

/* Write the list, NUL-terminated entries, to f; 0 or -1 (errno set). */
int
syncplan_write(const struct syncplan *p, FILE *f)
{
	char	buf[SYNCPLAN_MAX_ENTRY + 1];
	size_t	i, n;

	for (i = 0; i < p->nlist; i++) {
		n = syncplan_encode(p->list[i], buf, sizeof buf);
		if (fwrite(buf, 1, n + 1, f) != n + 1)
			return -1;
	}
	return fflush(f) == 0 ? 0 : -1;
}

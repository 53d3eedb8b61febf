/*
 * fstrack-fsmonitor.c -- git's core.fsmonitor hook, protocol version 2,
 * answered from fstrackd's history.
 *
 * THE PROTOCOL (git-config(1) core.fsmonitor, githooks(5)).  git runs
 * `HOOK 2 TOKEN` in the work tree, TOKEN the token the hook gave last
 * time (kept in the index), or anything at all the first time.  The hook
 * prints a new token, a NUL, then every path, relative to the work tree,
 * that may have changed since TOKEN, each followed by a NUL (directories
 * with a trailing slash), and exits 0.  git takes every other path as
 * unchanged: it neither lstat()s its index entry nor, with
 * core.untrackedCache, reads its directory again.  A lone "/" means that
 * anything may have changed, and git checks everything itself.  So a path
 * left out is a wrong `git status`; one too many costs an lstat().
 *
 * WHAT GIT DOES WITH A PATH (2.39; later versions do no less).  "P", in
 * the index: that entry is checked again.  "P/", or "P" not in the index:
 * every index entry below P.  Either way, the untracked cache's record of
 * the directory holding P is read again, and those of the directories
 * above it when untracked files are shown "normal" (not "all") -- but not
 * P's own record: a directory is read again only if a path inside it is
 * printed.
 *
 * THE TOKEN is "fsm1:TREE:INSTANCE:POSITION".  TREE is a hash (16 hex
 * digits) of the work tree's real path and identity (device, inode,
 * birth time): a token of another tree, or of a tree replaced at the same
 * path, is not ours.  POSITION is the fstrack position the barrier of the
 * answer took: what changed after the paths printed is printed next time
 * (fstrack(1), POSITIONS).  INSTANCE is fstrackd's run at that position,
 * or "-" after a "/" that gave a new position: what changed before it is
 * lost to every later answer.
 *
 * AFTER A "/" WITH A NEW POSITION.  git takes "/" as "check the index",
 * not "forget the untracked cache": its records of directories stay
 * trusted (when the command that got "/" reads no directories, as `git
 * add` does, and writes the index), though what changed in them before
 * the new position will never be printed.  So the first answer after one
 * (INSTANCE "-") also makes git read every directory of the work tree
 * again, FSM_EMPTY_NAME in each: the cost of one status without the
 * hook's help for the untracked files, once.
 *
 * THE QUESTION is the one `fstrack changed --since POSITION -0` asks,
 * through the same client path (remote_changed_once): for root from the
 * database, for everybody else the daemon's answer, rows judged by the
 * user's own permissions (remote.c).  The hook reads the records that
 * command would print (KINDS TAB PATH NUL) through a sink.  It never waits for a start-up
 * reconcile pass (git scans faster than it would wait), only a little
 * for a search for the names of a hard-linked file (FSM_BUSY_MS), so a
 * position of a barrier comes after that pass: kinds "rescanned" and "armed", which
 * only the start-up of a run records, predate it when INSTANCE is still
 * the daemon's run, and count only otherwise.
 *
 * KINDS ARE PER SNAPSHOT.  An entry recorded after POSITION carries every
 * kind it had in its snapshot so far (fstrack(1)), some perhaps from
 * before POSITION: "created" may be old news.  The rules below are right
 * whichever kinds are old, and cost little when they are.
 *
 * WHAT IS PRINTED, for each entry P (kinds K) of the answer, W the work
 * tree:
 *  1. P is W or above it: "/" if K says that W was rescanned or armed
 *     (its own entries unknown).  Nothing otherwise: a W replaced or
 *     moved is another TREE.
 *  2. P is not below W, or one of its components below W is ".git":
 *     nothing.  git refuses such paths (verify_path), and git's own
 *     watchman hook leaves the repository out too.
 *  3. P is not a directory (now: the text of an answer does not say, and
 *     its kinds may be old news): "P".
 *  4. P is a directory, K is "contents" only: nothing.  The entries that
 *     changed in P are entries of the answer themselves.
 *  5. P is a directory moved here or rescanned: "P", "P/", then every
 *     entry below it as it is now, each directory with its slash, and in
 *     an empty directory D "D/" FSM_EMPTY_NAME.  Every directory in a
 *     subtree moved here is new at its path, and git may hold a record of
 *     another directory that had the same path before, with its untracked
 *     files; only a path inside each makes git read it again.
 *  6. Otherwise: "P" and "P/" if it was deleted or moved away (it may
 *     have been a directory), or it is a directory whose attributes
 *     changed or that was armed (entries below it may be gone or
 *     unreadable, or their files written); for a directory, if it was created
 *     (and none of those), the parent's name FSM_EMPTY_NAME: the parent
 *     is read again (showing all untracked files, git reads again only
 *     the directory of a path printed); and "P/" FSM_EMPTY_NAME if it was
 *     created or its attributes changed (read it again: see 5; made with
 *     mkdir, its own entries are entries of the answer, when new).
 *
 * WHEN "/", and which token then:
 *  - TOKEN is not ours, or fstrackd does not know its position (exit 2,
 *    3): a new position;
 *  - the history since TOKEN is incomplete (4), or the work tree was
 *    rescanned or armed (rule 1): the answer's position;
 *  - W is not on a filesystem fstrackd tracks, or one it does not track
 *    is mounted below W: no position ("-"), so the next call asks again;
 *  - fstrackd unreachable, still reconciling (5), unable to commit (6),
 *    any other failure: TOKEN itself, so that the next answer that can be
 *    given lists everything since TOKEN (more than what changed since
 *    git's own scan now, never less).
 *
 * Messages go to stderr only with -v: git shows a hook's stderr, and a
 * "/" is an answer, not an error.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/statfs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "dbformat.h"
#include "proto.h"
#include "query.h"

#define FSM_PREFIX	"fsm1:"
#define FSM_HASH_LEN	16
#define FSM_TOKEN_MAX	(sizeof FSM_PREFIX + FSM_HASH_LEN + 130 + \
			    PROTO_POSITION_MAX)
/* A name no directory needs to hold: printed to have one read again. */
#define FSM_EMPTY_NAME	".fstrack-fsmonitor"
/* How long to wait for a hard-link search, and how often to ask. */
#define FSM_BUSY_MS		1000
#define FSM_BUSY_POLL_MS	20
/* Kinds only the start-up of fstrackd records. */
#define FSM_STARTUP_KINDS	(FST_M_RESCANNED | FST_M_ARMED)

/* One run: the work tree, the token's parts, what follows the token. */
struct fsm {
	char		 wt[PATH_MAX];
	size_t		 wtlen;
	char		 tree[FSM_HASH_LEN + 1];
	char		 instance[128];		/* the token's */
	const char	*position;		/* the token's, or NULL */
	int64_t		 ignore;		/* kinds that predate it */
	struct sbuf	 pending;		/* bytes of a record, cut */
	struct sbuf	 entries;		/* of the answer: mask, path */
	struct sbuf	 out;			/* NUL-terminated paths */
	const char	*why_all;		/* not NULL: answer "/" */
	char		 why[PATH_MAX + 64];
};

static int	verbose;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: fstrack-fsmonitor [-v] [-s|--socket PATH] "
	    "VERSION TOKEN\n"
	    "(git's core.fsmonitor hook: git config core.fsmonitor "
	    "fstrack-fsmonitor)\n");
	exit(FST_EXIT_USAGE);
}

/* Say something on stderr with -v. */
static void __attribute__((format(printf, 1, 2)))
fsm_say(const char *fmt, ...)
{
	va_list	ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	fputs("fstrack-fsmonitor: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* From now on the answer is "/", because of why (formatted). */
static void __attribute__((format(printf, 2, 3)))
fsm_all(struct fsm *f, const char *fmt, ...)
{
	va_list	ap;

	if (f->why_all != NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof f->why, fmt, ap);
	va_end(ap);
	f->why_all = f->why;
}

/* Sleep ms milliseconds. */
static void
fsm_sleep(int ms)
{
	struct timespec	ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * The work tree: its real path (git runs the hook in it) and TREE, the
 * hash of that path and of the directory's identity.  0, or -1 after
 * fsm_all.
 */
static int
fsm_tree(struct fsm *f)
{
	char		cwd[PATH_MAX];
	struct statx	stx;
	uint64_t	h = FNV1A_OFFSET, id[4];

	if (getcwd(cwd, sizeof cwd) == NULL || realpath(cwd, f->wt) == NULL ||
	    statx(AT_FDCWD, ".", 0, STATX_INO | STATX_BTIME, &stx) == -1) {
		fsm_all(f, "cannot tell the work tree: %s", strerror(errno));
		snprintf(f->wt, sizeof f->wt, "?");
		return -1;
	}
	f->wtlen = strlen(f->wt);
	id[0] = ((uint64_t)stx.stx_dev_major << 32) | stx.stx_dev_minor;
	id[1] = stx.stx_ino;
	id[2] = stx.stx_mask & STATX_BTIME ? (uint64_t)stx.stx_btime.tv_sec : 0;
	id[3] = stx.stx_mask & STATX_BTIME ? stx.stx_btime.tv_nsec : 0;
	h = fnv1a(h, f->wt, f->wtlen + 1);
	h = fnv1a(h, id, sizeof id);
	snprintf(f->tree, sizeof f->tree, "%016llx", (unsigned long long)h);
	return 0;
}

/*
 * Take token apart: f->position and f->instance if it is one of ours for
 * this tree (f->position NULL otherwise).
 */
static void
fsm_parse_token(struct fsm *f, const char *token)
{
	struct proto_position	 p;
	const char		*t = token + sizeof FSM_PREFIX - 1, *c;

	f->position = NULL;
	if (strncmp(token, FSM_PREFIX, sizeof FSM_PREFIX - 1) != 0 ||
	    strncmp(t, f->tree, FSM_HASH_LEN) != 0 || t[FSM_HASH_LEN] != ':')
		return;
	t += FSM_HASH_LEN + 1;
	if ((c = strchr(t, ':')) == NULL || (size_t)(c - t) >=
	    sizeof f->instance || proto_parse_position(c + 1, &p) != 0)
		return;
	memcpy(f->instance, t, c - t);
	f->instance[c - t] = '\0';
	f->position = c + 1;
}

/*
 * Whether fstrackd tracks the filesystem of the work tree, under the
 * path it was given (its fsid is the one statfs() sees here), and every
 * filesystem mounted below it.  0, or -1 after fsm_all; *down is set when
 * fstrackd did not answer, *busy when it says it is reconciling.
 */
static int
fsm_check_tree(struct fsm *f, int *down, int *busy)
{
	struct reply	 r;
	struct statfs	 sfs;
	char		 mnt[PATH_MAX], below[PATH_MAX], fsid[40];
	const char	*v, *want;
	size_t		 n;
	int		 rc = -1;

	*down = *busy = 0;
	if (client_request("status", &r) != 0) {
		reply_free(&r);
		*down = 1;
		fsm_all(f, "fstrackd did not answer 'status'");
		return -1;
	}
	*busy = (v = reply_get(&r, "state")) != NULL &&
	    strcmp(v, "reconciling") == 0;
	if (mounts_find(f->wt, &r, mnt, sizeof mnt, below, sizeof below) !=
	    0) {
		fsm_all(f, "cannot find the mount point of '%s': %s", f->wt,
		    strerror(errno));
		goto done;
	}
	if ((v = mounts_tracked(&r, mnt)) == NULL) {
		fsm_all(f, "'%s' is on '%s', which fstrackd does not track",
		    f->wt, mnt);
		goto done;
	}
	if (below[0] != '\0') {
		fsm_all(f, "'%s' is mounted below '%s' and not tracked",
		    below, f->wt);
		goto done;
	}
	v += strlen(mnt);
	if (strstr(v, " state=tracked") == NULL) {
		fsm_all(f, "fstrackd no longer tracks '%s'", mnt);
		goto done;
	}
	if (statfs(".", &sfs) == -1) {
		fsm_all(f, "statfs '%s': %s", f->wt, strerror(errno));
		goto done;
	}
	n = (size_t)snprintf(fsid, sizeof fsid, " fsid=%08x%08x",
	    (unsigned)sfs.f_fsid.__val[0], (unsigned)sfs.f_fsid.__val[1]);
	if ((want = strstr(v, " fsid=")) == NULL ||
	    strncmp(want, fsid, n) != 0 || (want[n] != ' ' &&
	    want[n] != '\0')) {
		fsm_all(f, "'%s' here is not the filesystem fstrackd tracks "
		    "there (fsid)", mnt);
		goto done;
	}
	rc = 0;
done:
	reply_free(&r);
	return rc;
}

/* Print len bytes of rel (relative to the work tree), and a slash if dir. */
static void
fsm_put(struct fsm *f, const char *rel, size_t len, int dir)
{
	sbuf_add(&f->out, rel, len);
	sbuf_add(&f->out, dir ? "/" : "", dir ? 2 : 1);
}

/*
 * Print len bytes of rel, "/" and FSM_EMPTY_NAME: git reads directory rel
 * (the work tree if len is 0) again.
 */
static void
fsm_put_reread(struct fsm *f, const char *rel, size_t len)
{
	sbuf_add(&f->out, rel, len);
	sbuf_addstr(&f->out, len > 0 ? "/" FSM_EMPTY_NAME : FSM_EMPTY_NAME);
	sbuf_add(&f->out, "", 1);
}

/* Whether a path relative to the work tree has a component ".git". */
static int
fsm_in_git(const char *rel)
{
	const char	*c = rel, *e;

	for (;;) {
		e = strchr(c, '/');
		if ((e != NULL ? (size_t)(e - c) : strlen(c)) == 4 &&
		    strncmp(c, ".git", 4) == 0)
			return 1;
		if (e == NULL)
			return 0;
		c = e + 1;
	}
}

/*
 * Rule 5, below directory rel (relative to the work tree, printed
 * already): every entry as it is now, without following symbolic links,
 * leaving .git out.  A directory that cannot be read makes the answer
 * "/"; one that is gone or replaced since is an entry of the next answer.
 */
static void
fsm_walk(struct fsm *f, const char *rel)
{
	struct sbuf	 path;
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	size_t		 len;
	int		 fd, isdir, empty = 1;

	if ((fd = open(rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			fsm_all(f, "cannot read the new directory '%s': %s",
			    rel, strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	sbuf_init(&path);
	sbuf_addstr(&path, rel);
	sbuf_addstr(&path, "/");
	len = path.len;
	while (f->why_all == NULL && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		empty = 0;
		if (strcmp(de->d_name, ".git") == 0)
			continue;
		path.len = len;
		sbuf_addstr(&path, de->d_name);
		isdir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN)
			isdir = fstatat(fd, de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
		fsm_put(f, path.data, path.len, isdir);
		if (isdir)
			fsm_walk(f, path.data);
	}
	if (empty)
		fsm_put_reread(f, rel, strlen(rel));
	closedir(d);
	sbuf_free(&path);
}

/*
 * Every directory below rel (relative to the work tree; "" for all of
 * it), as it is now, read again by git: its name FSM_EMPTY_NAME, without
 * following symbolic links, leaving .git out.
 */
static void
fsm_reread_all(struct fsm *f, const char *rel)
{
	struct sbuf	 path;
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	size_t		 len;
	int		 fd, isdir;

	fsm_put_reread(f, rel, strlen(rel));
	if ((fd = open(rel[0] != '\0' ? rel : ".", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return;		/* gone since: its removal is recorded */
	}
	sbuf_init(&path);
	sbuf_addstr(&path, rel);
	if (path.len > 0)
		sbuf_addstr(&path, "/");
	len = path.len;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, ".git") == 0)
			continue;
		isdir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN)
			isdir = fstatat(fd, de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
		if (!isdir)
			continue;
		path.len = len;
		sbuf_addstr(&path, de->d_name);
		fsm_reread_all(f, path.data);
	}
	closedir(d);
	sbuf_free(&path);
}

/* Note an entry of the answer (its instance is not known yet). */
static void
fsm_entry(struct fsm *f, const char *path, int64_t mask)
{
	if (!mounts_path_under(path, f->wt) && !mounts_path_under(f->wt, path))
		return;			/* rules 1 and 2: never printed */
	sbuf_add(&f->entries, &mask, sizeof mask);
	sbuf_add(&f->entries, path, strlen(path) + 1);
}

/*
 * query_sink write: bytes of the answer as fstrack changed -0 prints it,
 * records KINDS TAB PATH NUL, perhaps cut anywhere.  0.
 */
static int
fsm_write(void *arg, const void *p, size_t n)
{
	struct fsm	*f = arg;
	char		*rec, *nul, *tab;
	size_t		 off = 0;

	sbuf_add(&f->pending, p, n);
	while ((nul = memchr(f->pending.data + off, '\0', f->pending.len -
	    off)) != NULL) {
		rec = f->pending.data + off;
		off = nul - f->pending.data + 1;
		if ((tab = memchr(rec, '\t', nul - rec)) != NULL)
			fsm_entry(f, tab + 1, query_parse_kinds(rec, tab - rec));
	}
	memmove(f->pending.data, f->pending.data + off, f->pending.len - off);
	f->pending.len -= off;
	return 0;
}

/* query_sink say: a message fstrack changed would print on stderr. */
static void
fsm_said(void *arg, const char *msg)
{
	(void)arg;
	fsm_say("%s", msg);
}

/*
 * One entry of the answer, by the rules at the top.  Whether it is a
 * directory is what is there now (the text of an answer does not say,
 * and a kind may be old news): one gone since may have been one.
 */
static void
fsm_rule(struct fsm *f, const char *path, int64_t mask)
{
	const char	*rel, *slash;
	size_t		 len;
	struct stat	 st;
	int		 isdir, done = 0;

	mask &= ~f->ignore;
	if (mounts_path_under(f->wt, path)) {			/* 1 */
		if (strcmp(path, f->wt) == 0 && (mask & FSM_STARTUP_KINDS))
			fsm_all(f, "the work tree was %s", mask &
			    FST_M_ARMED ? "armed" : "rescanned");
		return;
	}
	if (!mounts_path_under(path, f->wt))			/* 2 */
		return;
	rel = path + (f->wtlen == 1 ? 1 : f->wtlen + 1);
	len = strlen(rel);
	if (fsm_in_git(rel))
		return;
	if (mask == FST_M_CONTENTS)				/* 4 */
		return;
	isdir = lstat(rel, &st) == 0 && S_ISDIR(st.st_mode);
	if (isdir && (mask & (FST_M_MOVED_TO | FST_M_RESCANNED))) {	/* 5 */
		fsm_put(f, rel, len, 0);
		fsm_put(f, rel, len, 1);
		fsm_walk(f, rel);
		return;
	}
	/* 6: a directory deleted or moved away, or perhaps one (gone now) */
	if ((mask & (FST_M_DELETED | FST_M_MOVED_FROM | FST_M_ARMED)) ||
	    (isdir && (mask & FST_M_ATTRIB))) {
		fsm_put(f, rel, len, 0);
		fsm_put(f, rel, len, 1);
		done = 1;
	}
	if (!isdir) {						/* 3 */
		if (!done)
			fsm_put(f, rel, len, 0);
		return;
	}
	if ((mask & FST_M_CREATED) && !done) {
		/* "P" would do, but it is every index entry below P, too */
		slash = strrchr(rel, '/');
		fsm_put_reread(f, rel, slash != NULL ? (size_t)(slash - rel) :
		    0);
	}
	if (mask & (FST_M_CREATED | FST_M_ATTRIB))
		fsm_put_reread(f, rel, len);
}

/*
 * The rules for every entry noted, the answer's instance known: kinds
 * of the start-up are old news when the token's instance is still the
 * daemon's run.
 */
static void
fsm_rules(struct fsm *f, const char *instance)
{
	size_t	off = 0;
	int64_t	mask;

	f->ignore = instance[0] != '\0' && strcmp(instance, f->instance) == 0 ?
	    FSM_STARTUP_KINDS : 0;
	while (off < f->entries.len && f->why_all == NULL) {
		memcpy(&mask, f->entries.data + off, sizeof mask);
		off += sizeof mask;
		fsm_rule(f, f->entries.data + off, mask);
		off += strlen(f->entries.data + off) + 1;
	}
}

/* Print the answer: token, NUL, then the paths or "/". */
static int
fsm_print(const struct fsm *f, const char *token, int all)
{
	fwrite(token, 1, strlen(token) + 1, stdout);
	if (all)
		fwrite("/", 1, 2, stdout);
	else
		fwrite(f->out.data, 1, f->out.len, stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fsm_say("stdout: %s", strerror(errno));
		return 1;
	}
	return 0;
}

/*
 * Answer "/" with token, or (token NULL) with one of ours for position
 * pos and fstrackd's instance ("-" for either when unknown).
 */
static int
fsm_answer_all(struct fsm *f, const char *token, const char *pos,
    const char *instance)
{
	char	tok[FSM_TOKEN_MAX];

	if (token == NULL) {
		snprintf(tok, sizeof tok, "%s%s:%s:%s", FSM_PREFIX, f->tree,
		    instance, pos);
		token = tok;
	}
	fsm_say("everything may have changed: %s", f->why_all != NULL ?
	    f->why_all : "(no reason)");
	return fsm_print(f, token, 1);
}

/* Answer "/" with a new position (none if fstrackd cannot give one). */
static int
fsm_answer_fresh(struct fsm *f)
{
	char	pos[PROTO_POSITION_MAX];

	if (client_position(pos, sizeof pos) != 0)
		snprintf(pos, sizeof pos, "-");
	return fsm_answer_all(f, NULL, pos, "-");
}

/*
 * git's HOOK 2 TOKEN: the answer since token for the work tree f->wt.
 * Returns the exit status.
 */
static int
fsm_answer(struct fsm *f, const char *token)
{
	struct query_answer	 a;
	struct query_sink	 sink;
	struct proto_since	 since;
	struct client_at	 at;
	char			 tok[FSM_TOKEN_MAX];
	int			 rc, down, busy, waited = 0;

	fsm_parse_token(f, token);
	if (fsm_check_tree(f, &down, &busy) != 0)
		return down && f->position != NULL ?
		    fsm_answer_all(f, token, NULL, NULL) :
		    fsm_answer_all(f, NULL, "-", "-");
	if (f->position == NULL || proto_parse_since(f->position, &since) !=
	    0) {
		fsm_all(f, "'%s' is not a token of this hook for '%s'", token,
		    f->wt);
		return fsm_answer_fresh(f);
	}
	memset(&sink, 0, sizeof sink);
	sink.write = fsm_write;
	sink.say = fsm_said;
	sink.arg = f;
	memset(&a, 0, sizeof a);
	a.sink = &sink;
	/*
	 * A search for the other names of a hard-linked file (git links
	 * every object it writes, and fstrackd starts one when it reads
	 * that) is short: wait for it, a little.  Less if a pass was running
	 * before the barrier: it may be the start-up reconcile, which can
	 * take minutes.
	 */
	while ((rc = remote_changed_once(f->position, &since, CLIENT_NOWAIT |
	    CLIENT_POSITION, Q_NUL, &a, &at)) == FST_EXIT_BUSY &&
	    waited < (busy ? FSM_BUSY_MS / 4 : FSM_BUSY_MS)) {
		fsm_sleep(FSM_BUSY_POLL_MS);
		waited += FSM_BUSY_POLL_MS;
		sbuf_reset(&f->pending);
		sbuf_reset(&f->entries);
	}
	if (rc == FST_EXIT_OK)
		fsm_rules(f, at.instance);
	if (rc == FST_EXIT_OK && f->why_all == NULL &&
	    strcmp(f->instance, "-") == 0)
		fsm_reread_all(f, "");
	if (rc == FST_EXIT_OK && f->why_all == NULL) {
		snprintf(tok, sizeof tok, "%s%s:%s:%s", FSM_PREFIX, f->tree,
		    at.instance[0] != '\0' ? at.instance : "-", at.position);
		return fsm_print(f, tok, 0);
	}
	if ((rc == FST_EXIT_OK || rc == FST_EXIT_GAP) &&
	    at.position[0] != '\0') {
		fsm_all(f, "the history since %s is incomplete", f->position);
		return fsm_answer_all(f, NULL, at.position, "-");
	}
	if (rc == FST_EXIT_USAGE || rc == FST_EXIT_NOSNAPSHOT ||
	    rc == FST_EXIT_GAP) {
		fsm_all(f, "fstrackd does not know position %s (exit %d)",
		    f->position, rc);
		return fsm_answer_fresh(f);
	}
	fsm_all(f, "no answer from fstrackd (exit %d)", rc);
	return fsm_answer_all(f, token, NULL, NULL);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket",	required_argument,	NULL, 's' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct fsm	 f;
	int		 ch, null, rc;

	client_init("fstrack-fsmonitor", NULL);
	while ((ch = getopt_long(argc, argv, "s:vhV", opts, NULL)) != -1) {
		switch (ch) {
		case 's': client_init("fstrack-fsmonitor", optarg); break;
		case 'v': verbose = 1; break;
		case 'V':
			printf("fstrack-fsmonitor %s\n", PACKAGE_VERSION);
			return 0;
		default: usage();
		}
	}
	if (argc - optind != 2)
		usage();
	if (strcmp(argv[optind], "2") != 0) {
		fprintf(stderr, "fstrack-fsmonitor: hook protocol version '%s' "
		    "is not supported (only 2)\n", argv[optind]);
		return FST_EXIT_ERROR;
	}
	/* the library's messages too: only with -v */
	if (!verbose && (null = open("/dev/null", O_WRONLY | O_CLOEXEC)) != -1) {
		dup2(null, STDERR_FILENO);
		close(null);
	}
	memset(&f, 0, sizeof f);
	sbuf_init(&f.pending);
	sbuf_init(&f.entries);
	sbuf_init(&f.out);
	if (fsm_tree(&f) != 0)
		rc = fsm_answer_all(&f, NULL, "-", "-");
	else
		rc = fsm_answer(&f, argv[optind + 1]);
	sbuf_free(&f.pending);
	sbuf_free(&f.entries);
	sbuf_free(&f.out);
	return rc;
}

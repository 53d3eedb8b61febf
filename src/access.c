/*
 * access.c -- may a peer see the names in a directory?  Asked of the
 * kernel with the peer's own credentials, for fstrackd's answers to users
 * other than root (answer.c).
 *
 * THE RULE.  A listed entry is a name in a directory D, shown as
 * /A1/.../D/NAME.  The peer may see it when it could list D itself, by
 * that very path, as ls(1) would: every directory from / down to D
 * searchable (execute permission), D readable and searchable.  With search
 * permission only, one can test names one knows but not learn them, so D
 * must be readable too.  A directory's own row (".", its name in its
 * parent) is judged by the parent the same way.  The names of the
 * directories on the way are part of every path shown: they are shown
 * when each is searchable (mode 0711, say), as cd(1) can use them.
 *
 * HOW.  No path string is trusted and no permission bit is read here.
 * The checking thread takes the peer's filesystem identity -- fsuid, fsgid
 * and supplementary groups -- with the raw system calls, which change the
 * calling thread only (glibc's setgroups() changes every thread of the
 * daemon), so the kernel applies modes, ACLs and security modules exactly
 * as for the peer; moving the fsuid away from 0 also clears the
 * capabilities that bypass them (CAP_DAC_READ_SEARCH, CAP_DAC_OVERRIDE)
 * from the thread's effective set, and moving it back restores them.  As
 * the peer it walks the path one name at a time with
 * openat(O_PATH|O_DIRECTORY|O_NOFOLLOW) from / (every lookup needs search
 * permission on the directory it looks in; a symlink, or anything but a
 * directory, ends the walk: a path the peer could redirect is never
 * followed), then asks faccessat2(R_OK|X_OK, AT_EACCESS|AT_EMPTY_PATH) of
 * the directory the walk reached and of its parent, by fd.  As root again
 * it opens the directory the row is about by its file handle and compares
 * device and inode with what the walk reached: a directory moved away or
 * replaced (by another, by a symlink, by a mount) since the barrier is not
 * the row's directory, and its rows are hidden.  Nothing the peer can see
 * is lost so: the move itself is a change of the parents, listed next
 * time, and a directory moved in is listed as moved-to, which a consumer
 * copies whole (fstrack(1), CAVEATS).  Likewise a directory that is gone
 * (its handle no longer opens): its own removal is listed in its parent.
 *
 * The thread is the peer only around the walk and the two questions; the
 * database, the handles and the socket are used as root.
 *
 * THE WALK keeps the directories it opened as a stack of fds, so that a
 * listing sorted by path opens each directory once: the next question
 * pops down to the common prefix and opens only the rest.  At most
 * ACCESS_KEEP levels are kept; deeper ones are opened and closed on the
 * way, so any depth and any path length work with a bounded number of fds.
 * A walker serves one answer of one peer (answer.c): what it checked holds
 * for that answer only.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fstrack.h"
#include "log.h"

#define ACCESS_KEEP	64	/* directory levels kept open */

/* One kept level of the walk: its fd, where its name ends in the path. */
struct access_level {
	int	fd;
	size_t	end;
};

struct access_walk {
	struct access_peer	 peer;		/* groups: a copy */
	uid_t			 own_fsuid;	/* the thread's own identity */
	gid_t			 own_fsgid;
	gid_t			*own_groups;
	int			 own_ngroups;
	int			 root_fd;	/* "/" */
	struct access_level	 lv[ACCESS_KEEP];
	int			 n;		/* levels kept */
	struct sbuf		 path;		/* their names: "/a/b" */
};

/*
 * A walker for peer, in the calling thread, which must keep it to itself:
 * its identity (fsuid, fsgid, groups) is the one each check returns to.
 * NULL with errno on failure.
 */
struct access_walk *
access_walk_new(const struct access_peer *peer)
{
	struct access_walk	*w;
	int			 n;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return NULL;
	sbuf_init(&w->path);
	w->root_fd = -1;
	w->peer = *peer;
	w->peer.groups = NULL;
	if (peer->ngroups > 0 && (w->peer.groups = calloc(peer->ngroups,
	    sizeof *w->peer.groups)) == NULL)
		goto fail;
	if (peer->ngroups > 0)
		memcpy(w->peer.groups, peer->groups, peer->ngroups *
		    sizeof *peer->groups);
	w->own_fsuid = (uid_t)syscall(SYS_setfsuid, (uid_t)-1);
	w->own_fsgid = (gid_t)syscall(SYS_setfsgid, (gid_t)-1);
	if ((n = getgroups(0, NULL)) < 0 || (n > 0 && (w->own_groups =
	    calloc(n, sizeof *w->own_groups)) == NULL) ||
	    (w->own_ngroups = getgroups(n, w->own_groups)) < 0)
		goto fail;
	/* O_PATH on / needs no permission: the peer starts from there */
	if ((w->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		goto fail;
	return w;
fail:
	n = errno;
	access_walk_free(w);
	errno = n;
	return NULL;
}

/* Close the kept levels from level k up. */
static void
access_pop(struct access_walk *w, int k)
{
	while (w->n > k)
		close(w->lv[--w->n].fd);
	w->path.len = k > 0 ? w->lv[k - 1].end : 0;
	if (w->path.data != NULL)
		w->path.data[w->path.len] = '\0';
}

/* Free a walker (NULL is fine). */
void
access_walk_free(struct access_walk *w)
{
	if (w == NULL)
		return;
	access_pop(w, 0);
	if (w->root_fd != -1)
		close(w->root_fd);
	sbuf_free(&w->path);
	free(w->peer.groups);
	free(w->own_groups);
	free(w);
}

/*
 * Back to the thread's own identity.  Fatal if that fails: the thread
 * would go on reading the database and the handles as the peer.
 */
static void
access_be_self(struct access_walk *w)
{
	syscall(SYS_setfsuid, w->own_fsuid);
	syscall(SYS_setfsgid, w->own_fsgid);
	if (syscall(SYS_setgroups, (size_t)w->own_ngroups, w->own_groups) !=
	    0 || (uid_t)syscall(SYS_setfsuid, (uid_t)-1) != w->own_fsuid ||
	    (gid_t)syscall(SYS_setfsgid, (gid_t)-1) != w->own_fsgid)
		fatal("cannot take back the daemon's own filesystem identity");
}

/*
 * Take the peer's filesystem identity: groups and fsgid first (they need
 * CAP_SETGID), the fsuid last (moving it from 0 clears the capabilities
 * that bypass permission checks).  setfsuid and setfsgid say nothing when
 * they fail, so the result is read back.  0, or -1 (the thread is itself
 * again; errno EPERM when it lacks CAP_SETUID or CAP_SETGID).
 */
static int
access_be_peer(struct access_walk *w)
{
	if (syscall(SYS_setgroups, (size_t)w->peer.ngroups, w->peer.groups) !=
	    0)
		return -1;
	syscall(SYS_setfsgid, w->peer.gid);
	syscall(SYS_setfsuid, w->peer.uid);
	if ((uid_t)syscall(SYS_setfsuid, (uid_t)-1) == w->peer.uid &&
	    (gid_t)syscall(SYS_setfsgid, (gid_t)-1) == w->peer.gid)
		return 0;
	access_be_self(w);
	errno = EPERM;
	return -1;
}

/*
 * Whether the current identity may list the directory open as fd (read
 * and search): 1, 0, or -1 with errno when the kernel could not tell.
 */
static int
access_may_list(int fd)
{
	if (syscall(SYS_faccessat2, fd, "", R_OK | X_OK, AT_EACCESS |
	    AT_EMPTY_PATH) == 0)
		return 1;
	return errno == EACCES || errno == EPERM ? 0 : -1;
}

/* Whether errno after a failed step of the walk means "not reachable". */
static int
access_unreachable(int err)
{
	return err == EACCES || err == EPERM || err == ENOENT ||
	    err == ENOTDIR || err == ELOOP || err == ESTALE;
}

/*
 * The number of kept levels whose names begin path, and in *rest what
 * follows them ("" or "/name...").
 */
static int
access_common(struct access_walk *w, const char *path, const char **rest)
{
	size_t	start, len;
	int	k;

	for (k = 0; k < w->n; k++) {
		start = k > 0 ? w->lv[k - 1].end : 0;
		len = w->lv[k].end - start;
		if (strncmp(path, w->path.data + start, len) != 0 ||
		    (path[len] != '/' && path[len] != '\0'))
			break;
		path += len;
	}
	*rest = path;
	return k;
}

/*
 * Walk, as the peer, from / to the directory named by path (absolute, no
 * empty, "." or ".." name: else *self is -1 and 1 is returned).  *self and
 * *parent get the fds of the directory reached and of its parent (the
 * same for /); those not kept are in *tself and *tparent (-1 if none),
 * for the caller to close.  0 when reached, 1 when not reachable, -1 with
 * errno when the walk could not be made.
 */
static int
access_walk_path(struct access_walk *w, const char *path, int *self,
    int *parent, int *tself, int *tparent)
{
	const char	*rest, *name;
	char		 buf[NAME_MAX + 1];
	size_t		 len;
	int		 fd;

	*self = *parent = *tself = *tparent = -1;
	if (path[0] != '/')
		return 1;
	access_pop(w, access_common(w, path, &rest));
	*self = w->n > 0 ? w->lv[w->n - 1].fd : w->root_fd;
	*parent = w->n > 1 ? w->lv[w->n - 2].fd : w->root_fd;
	if (strcmp(path, "/") == 0)
		return 0;	/* / itself, its own parent */
	while (*rest == '/' && rest[1] != '\0') {
		name = rest + 1;
		len = strcspn(name, "/");
		rest = name + len;
		if (len == 0 || (len == 1 && name[0] == '.') ||
		    (len == 2 && name[0] == '.' && name[1] == '.'))
			return 1;
		if (len > NAME_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(buf, name, len);
		buf[len] = '\0';
		if ((fd = openat(*self, buf, O_PATH | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC)) == -1)
			return access_unreachable(errno) ? 1 : -1;
		if (*tself == -1 && w->n < ACCESS_KEEP) {
			sbuf_add(&w->path, name - 1, len + 1);
			w->lv[w->n].fd = fd;
			w->lv[w->n++].end = w->path.len;
		} else {
			/* deeper than kept: only the last two stay open */
			if (*tparent != -1)
				close(*tparent);
			*tparent = *tself;
			*tself = fd;
		}
		*parent = *self;
		*self = fd;
	}
	return *rest == '\0' ? 0 : 1;	/* a trailing "/": not ours */
}

/*
 * Judge, for the walker's peer, the directory that a row names by its
 * handle h (on the filesystem whose root is open as mount_fd) and by its
 * recorded path (see the top).  Returns ACCESS_SELF (the peer may list
 * it) | ACCESS_PARENT (and the directory that holds its name); 0 when the
 * peer cannot reach it by that path, or the path does not lead to it any
 * more (gone, moved, replaced); -1 with errno when it could not be judged
 * (no memory or fds, I/O, a name longer than NAME_MAX, no capability to
 * take the peer's identity).
 */
int
access_dir(struct access_walk *w, int mount_fd, const struct fst_handle *h,
    const char *path)
{
	struct stat	 want, got;
	int		 fd, self, parent, tself, tparent, rc, l1 = 0, l2 = 0;
	int		 saved;

	/* as root: the directory the row is about */
	if ((fd = handle_open(mount_fd, h, O_PATH | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return errno == ESTALE || errno == ENOENT ? 0 : -1;
	rc = fstat(fd, &want);
	saved = errno;
	close(fd);
	if (rc == -1) {
		errno = saved;
		return -1;
	}
	if (access_be_peer(w) != 0)
		return -1;
	rc = access_walk_path(w, path, &self, &parent, &tself, &tparent);
	if (rc == 0 && (fstat(self, &got) == -1 ||
	    got.st_dev != want.st_dev || got.st_ino != want.st_ino))
		rc = 1;		/* not the row's directory (any more) */
	if (rc == 0 && ((l1 = access_may_list(self)) < 0 ||
	    (l2 = access_may_list(parent)) < 0))
		rc = -1;
	saved = errno;
	if (tself != -1)
		close(tself);
	if (tparent != -1)
		close(tparent);
	access_be_self(w);
	errno = saved;
	if (rc < 0)
		return -1;
	return rc == 0 ? (l1 ? ACCESS_SELF : 0) | (l2 ? ACCESS_PARENT : 0) : 0;
}

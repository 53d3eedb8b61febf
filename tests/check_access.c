/*
 * check_access.c -- access.c: what a peer may list, asked of the kernel
 * with the peer's identity.
 *
 * As root only (it takes another identity with CAP_SETUID and CAP_SETGID,
 * and opens handles with CAP_DAC_READ_SEARCH); without root each test
 * passes trivially and says so.  The peer is uid and gid 65534 (nobody),
 * with or without a supplementary group of the test's.  A tree under
 * $TMPDIR: listable, private (0700), search-only (0711), group (0750),
 * a symlink in place of a directory, a handle that is not the path's, a
 * removed directory, malformed paths, and a chain of 100 directories
 * whose path is over twice PATH_MAX (walked with bounded fds: deeper than
 * the levels access.c keeps, none left open).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/syscall.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fstrack.h"
#include "unit.h"

#define PEER		65534
#define PEER_GROUP	54321	/* a group of the test's own */

static char	*acc_dir;
static int	 acc_mount_fd = -1;

/* Whether the tests can run here: root (with its capabilities). */
static int
acc_can_run(void)
{
	if (geteuid() == 0)
		return 1;
	fprintf(stderr, "check_access: not root: nothing to check\n");
	return 0;
}

/* Make dir/name with mode (and group, if not -1); fails the test. */
static void
acc_mkdir(const char *name, mode_t mode, gid_t gid)
{
	char	*p;

	ck_assert(asprintf(&p, "%s/%s", acc_dir, name) != -1);
	ck_assert_int_eq(mkdir(p, mode), 0);
	ck_assert_int_eq(chmod(p, mode), 0);
	if (gid != (gid_t)-1)
		ck_assert_int_eq(chown(p, 0, gid), 0);
	free(p);
}

/* The tree (see the top). */
static void
acc_setup(void)
{
	char	*p;

	if (geteuid() != 0)
		return;
	acc_dir = unit_mkdtemp();
	ck_assert_int_eq(chmod(acc_dir, 0755), 0);
	acc_mkdir("pub", 0755, -1);
	acc_mkdir("pub2", 0755, -1);
	acc_mkdir("priv", 0700, -1);
	acc_mkdir("priv/in", 0755, -1);
	acc_mkdir("so", 0711, -1);
	acc_mkdir("so/in", 0755, -1);
	acc_mkdir("grp", 0750, PEER_GROUP);
	acc_mkdir("gone", 0755, -1);
	ck_assert(asprintf(&p, "%s/link", acc_dir) != -1);
	ck_assert_int_eq(symlink("pub", p), 0);
	free(p);
	acc_mount_fd = open(acc_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(acc_mount_fd, 0);
}

static void
acc_teardown(void)
{
	if (acc_mount_fd != -1)
		close(acc_mount_fd);
	acc_mount_fd = -1;
	if (acc_dir != NULL)
		unit_rmtree(acc_dir);
	free(acc_dir);
	acc_dir = NULL;
}

/* The handle of acc_dir/name (a directory). */
static struct fst_handle
acc_handle(const char *name)
{
	struct fst_handle	 h;
	char			*p;

	ck_assert(asprintf(&p, "%s/%s", acc_dir, name) != -1);
	ck_assert_int_eq(handle_of_fd(AT_FDCWD, p, 0, &h), 0);
	free(p);
	return h;
}

/*
 * access_dir for the peer (with the test's group if grp) on the directory
 * whose handle is that of acc_dir/hname, by the path acc_dir/pname.
 */
static int
acc_judge(const char *hname, const char *pname, int grp)
{
	struct access_peer	 peer = { PEER, PEER, NULL, 0 };
	struct access_walk	*w;
	struct fst_handle	 h = acc_handle(hname);
	gid_t			 g = PEER_GROUP;
	char			*p;
	int			 v;

	if (grp) {
		peer.groups = &g;
		peer.ngroups = 1;
	}
	ck_assert_ptr_nonnull(w = access_walk_new(&peer));
	ck_assert(asprintf(&p, "%s/%s", acc_dir, pname) != -1);
	v = access_dir(w, acc_mount_fd, &h, p);
	free(p);
	access_walk_free(w);
	/* the thread is itself again, with its capabilities */
	ck_assert_int_eq((int)syscall(SYS_setfsuid, (uid_t)-1), 0);
	ck_assert_int_eq(getgroups(0, NULL), 0);
	return v;
}

START_TEST(test_access_modes)
{
	if (!acc_can_run())
		return;
	ck_assert_int_eq(acc_judge("pub", "pub", 0),
	    ACCESS_SELF | ACCESS_PARENT);
	/* reachable, not listable: its name is, its entries are not */
	ck_assert_int_eq(acc_judge("priv", "priv", 0), ACCESS_PARENT);
	/* below a directory it cannot search: nothing */
	ck_assert_int_eq(acc_judge("priv/in", "priv/in", 0), 0);
	/* search-only: reachable, its entries' names not listable */
	ck_assert_int_eq(acc_judge("so", "so", 0), ACCESS_PARENT);
	ck_assert_int_eq(acc_judge("so/in", "so/in", 0), ACCESS_SELF);
	/* a group directory: with the group only */
	ck_assert_int_eq(acc_judge("grp", "grp", 0), ACCESS_PARENT);
	ck_assert_int_eq(acc_judge("grp", "grp", 1),
	    ACCESS_SELF | ACCESS_PARENT);
}
END_TEST

/* / itself: its own parent. */
START_TEST(test_access_root)
{
	struct access_peer	 peer = { PEER, PEER, NULL, 0 };
	struct access_walk	*w;
	struct fst_handle	 h;
	int			 fd;

	if (!acc_can_run())
		return;
	ck_assert_int_ge(fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), 0);
	ck_assert_int_eq(handle_of_fd(fd, "", AT_EMPTY_PATH, &h), 0);
	ck_assert_ptr_nonnull(w = access_walk_new(&peer));
	ck_assert_int_eq(access_dir(w, fd, &h, "/"),
	    ACCESS_SELF | ACCESS_PARENT);
	access_walk_free(w);
	close(fd);
}
END_TEST

START_TEST(test_access_not_the_path)
{
	char	*p;
	int	 fd;

	if (!acc_can_run())
		return;
	/* a symlink in the directory's place is never followed */
	ck_assert_int_eq(acc_judge("pub", "link", 0), 0);
	/* the path leads to another directory than the handle's */
	ck_assert_int_eq(acc_judge("pub", "pub2", 0), 0);
	/* malformed paths */
	ck_assert_int_eq(acc_judge("pub", "pub/", 0), 0);
	ck_assert_int_eq(acc_judge("pub", "pub2/../pub", 0), 0);
	ck_assert_int_eq(acc_judge("pub", "./pub", 0), 0);
	ck_assert_int_eq(acc_judge("pub", "/pub", 0), 0);	/* "//" */
	/* a directory removed: its handle no longer opens */
	ck_assert(asprintf(&p, "%s/gone", acc_dir) != -1);
	fd = open(p, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	{
		struct access_peer	 peer = { PEER, PEER, NULL, 0 };
		struct access_walk	*w = access_walk_new(&peer);
		struct fst_handle	 h;

		ck_assert_int_eq(handle_of_fd(fd, "", AT_EMPTY_PATH, &h), 0);
		close(fd);
		ck_assert_int_eq(rmdir(p), 0);
		ck_assert_int_eq(access_dir(w, acc_mount_fd, &h, p), 0);
		access_walk_free(w);
	}
	free(p);
}
END_TEST

/* How many fds this process has open. */
static int
acc_nfds(void)
{
	DIR		*d = opendir("/proc/self/fd");
	struct dirent	*de;
	int		 n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the DIR's own */
}

/* Remove the chain of levels directories named like names[] below fd. */
static void
acc_rm_chain(int fd, char names[][101], int levels)
{
	int	fds[128], i;

	ck_assert_int_le(levels, 128);
	fds[0] = fd;
	for (i = 1; i < levels; i++) {
		fds[i] = openat(fds[i - 1], names[i - 1], O_RDONLY |
		    O_DIRECTORY | O_CLOEXEC);
		ck_assert_int_ge(fds[i], 0);
	}
	for (i = levels - 1; i >= 0; i--) {
		ck_assert_int_eq(unlinkat(fds[i], names[i], AT_REMOVEDIR), 0);
		if (i > 0)
			close(fds[i]);
	}
}

START_TEST(test_access_longer_than_path_max)
{
	struct access_peer	 peer = { PEER, PEER, NULL, 0 };
	struct access_walk	*w;
	struct fst_handle	 h, h2;
	struct sbuf		 path;
	static char		 names[100][101];
	int			 fd, top, next, i, before, levels = 100;

	if (!acc_can_run())
		return;
	sbuf_init(&path);
	sbuf_addstr(&path, acc_dir);
	sbuf_addstr(&path, "/pub");
	top = open(path.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(top, 0);
	fd = dup(top);
	for (i = 0; i < levels; i++) {
		memset(names[i], 'd', 100);
		names[i][0] = 'a' + i % 26;
		names[i][100] = '\0';
		ck_assert_int_eq(mkdirat(fd, names[i], 0755), 0);
		next = openat(fd, names[i], O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC);
		ck_assert_int_ge(next, 0);
		close(fd);
		fd = next;
		sbuf_addstr(&path, "/");
		sbuf_addstr(&path, names[i]);
		if (i == levels / 2)
			ck_assert_int_eq(handle_of_fd(fd, "", AT_EMPTY_PATH,
			    &h2), 0);
	}
	ck_assert_int_gt(path.len, 2 * PATH_MAX);
	ck_assert_int_eq(handle_of_fd(fd, "", AT_EMPTY_PATH, &h), 0);
	close(fd);
	before = acc_nfds();
	ck_assert_ptr_nonnull(w = access_walk_new(&peer));
	ck_assert_int_eq(access_dir(w, acc_mount_fd, &h, path.data),
	    ACCESS_SELF | ACCESS_PARENT);
	/* again, and the handle of one half way: not the path's */
	ck_assert_int_eq(access_dir(w, acc_mount_fd, &h, path.data),
	    ACCESS_SELF | ACCESS_PARENT);
	ck_assert_int_eq(access_dir(w, acc_mount_fd, &h2, path.data), 0);
	/* the walk keeps a bounded number of levels open */
	ck_assert_int_le(acc_nfds() - before, 64 + 2);
	access_walk_free(w);
	ck_assert_int_eq(acc_nfds(), before);
	sbuf_free(&path);
	acc_rm_chain(top, names, levels);	/* nftw cannot: too long */
	close(top);
}
END_TEST

Suite *
access_suite(void)
{
	Suite	*s = suite_create("access");
	TCase	*tc = tcase_create("access");

	tcase_add_checked_fixture(tc, acc_setup, acc_teardown);
	tcase_add_test(tc, test_access_modes);
	tcase_add_test(tc, test_access_root);
	tcase_add_test(tc, test_access_not_the_path);
	tcase_add_test(tc, test_access_longer_than_path_max);
	suite_add_tcase(s, tc);
	return s;
}

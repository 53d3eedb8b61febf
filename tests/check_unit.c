/*
 * check_unit.c -- runs every Check suite of fstrack's unit tests.
 *
 * No root needed; tests that need CAP_DAC_READ_SEARCH (open_by_handle_at),
 * or root's other capabilities (the access suite), say so and pass
 * trivially without them.  Check's fork mode (the default,
 * CK_FORK=yes) runs every test in its own process, which the store and
 * dircache tests rely on: store.c keeps its state in statics.  Select
 * suites with CK_RUN_SUITE=event|proto|config|store|dircache|syncplan|ioerr|
 * access
 * and test cases with CK_RUN_CASE.
 *
 * It links only the layers it tests (Makefile.am): libfstrackcore.a (with
 * the daemon's global state, src/fstd.c), the client library and the
 * common one -- not the fanotify groups, reconcile, control or daemon.c.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fstrack.h"
#include "log.h"
#include "unit.h"

char *
unit_mkdtemp(void)
{
	const char	*tmp = getenv("TMPDIR");
	char		*p;

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	if (asprintf(&p, "%s/fstrack-unit.XXXXXX", tmp) == -1)
		abort();
	if (mkdtemp(p) == NULL) {
		perror("mkdtemp");
		abort();
	}
	return p;
}

/*
 * Remove name in directory dfd and everything below it, by fds: a tree
 * deeper than PATH_MAX (check_syncplan makes one) cannot be removed by
 * path, as nftw() would.
 */
static void
unit_rm_at(int dfd, const char *name)
{
	struct stat	 st;
	struct dirent	*de;
	DIR		*d;
	int		 fd;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(dfd, name, 0);
		return;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd != -1 && (d = fdopendir(fd)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") != 0 &&
			    strcmp(de->d_name, "..") != 0)
				unit_rm_at(dirfd(d), de->d_name);
		closedir(d);
	} else if (fd != -1)
		close(fd);
	unlinkat(dfd, name, AT_REMOVEDIR);
}

void
unit_rmtree(const char *path)
{
	if (path != NULL)
		unit_rm_at(AT_FDCWD, path);
}

unsigned char *
unit_read_file(const char *path, size_t *lenp)
{
	unsigned char	*buf = NULL, *p;
	size_t		 len = 0, cap = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if ((p = realloc(buf, cap + 1)) == NULL)
				abort();
			buf = p;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

int
unit_write_file(const char *path, const void *data, size_t len)
{
	int	fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return -1;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return close(fd);
}

int
unit_capture_stdout(int (*fn)(void *), void *arg, char **out)
{
	char	*dir, *path;
	size_t	 len;
	int	 fd, saved, rc;

	dir = unit_mkdtemp();
	if (asprintf(&path, "%s/stdout", dir) == -1)
		abort();
	fflush(stdout);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	saved = dup(STDOUT_FILENO);
	if (fd == -1 || saved == -1 || dup2(fd, STDOUT_FILENO) == -1)
		abort();
	close(fd);
	rc = fn(arg);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	*out = (char *)unit_read_file(path, &len);
	if (*out == NULL)
		abort();
	unit_rmtree(dir);
	free(path);
	free(dir);
	return rc;
}

struct sqlite3 *
unit_db_ro(const char *path)
{
	sqlite3	*db = NULL;

	ck_assert_msg(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK, "cannot open '%s' read-only: %s", path,
	    db != NULL ? sqlite3_errmsg(db) : "?");
	sqlite3_busy_timeout(db, 5000);
	return db;
}

char *
unit_db_rows(struct sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	struct sbuf	 b;
	const char	*t;
	char		*r;
	int		 i, rc;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(db));
	sbuf_init(&b);
	sbuf_addstr(&b, "");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (i = 0; i < sqlite3_column_count(st); i++) {
			if (i > 0)
				sbuf_addstr(&b, "|");
			t = (const char *)sqlite3_column_text(st, i);
			sbuf_addstr(&b, t != NULL ? t : "NULL");
		}
		sbuf_addstr(&b, "\n");
	}
	ck_assert_msg(rc == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	r = strdup(b.data);
	sbuf_free(&b);
	return r;
}

long long
unit_db_int(struct sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	long long	 v;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(db));
	ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row", sql);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

void
unit_wait_committed(uint64_t seq)
{
	int	i;

	for (i = 0; i < 500; i++) {
		if (store_committed() >= seq)
			return;
		usleep(10000);
	}
	ck_abort_msg("the writer did not commit seq %llu within 5 s "
	    "(committed: %llu)", (unsigned long long)seq,
	    (unsigned long long)store_committed());
}

void
unit_loop_new(void)
{
	if ((fstd.loop = malloc(sizeof *fstd.loop)) == NULL ||
	    uv_loop_init(fstd.loop) != 0)
		abort();
}

void
unit_loop_free(void)
{
	if (fstd.loop == NULL)
		return;
	uv_run(fstd.loop, UV_RUN_DEFAULT);	/* complete the uv_close()s */
	ck_assert_int_eq(uv_loop_close(fstd.loop), 0);
	free(fstd.loop);
	fstd.loop = NULL;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	log_init("check_unit", 1, 0);
	sr = srunner_create(event_suite());
	srunner_add_suite(sr, proto_suite());
	srunner_add_suite(sr, config_suite());
	srunner_add_suite(sr, store_suite());
	srunner_add_suite(sr, dircache_suite());
	srunner_add_suite(sr, syncplan_suite());
	srunner_add_suite(sr, ioerr_suite());
	srunner_add_suite(sr, access_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

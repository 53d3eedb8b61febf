/*
 * check_dircache.c -- the main thread's directory cache: deduplication per
 * snapshot, the "contents" record on the parent, events on a directory
 * itself, renames, and eviction when the cache is full.
 *
 * It needs real directories and open_by_handle_at(), hence
 * CAP_DAC_READ_SEARCH: without it every test here prints a note and passes
 * without checking anything.  The records go through a real writer into a
 * temporary database and are checked there.  Fork mode only (store.c).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fstrack.h"
#include "unit.h"

static char		*tmpdir;	/* per test case, made in the parent */
static char		*top;		/* this test's tracked tree */
static char		*dbpath;
static struct fst_fs	*fs;
static struct fst_handle hT;		/* handle of top */

static void
dc_case_setup(void)
{
	tmpdir = unit_mkdtemp();
}

static void
dc_case_teardown(void)
{
	unit_rmtree(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
}

static char *
at(const char *rel)
{
	char	*p;

	if (asprintf(&p, "%s/%s", top, rel) == -1)
		abort();
	return p;
}

static struct fst_handle
handle_of(const char *rel)
{
	struct fst_handle	h;
	char			*p = at(rel);

	ck_assert_msg(handle_of_fd(AT_FDCWD, p, 0, &h) == 0,
	    "name_to_handle_at '%s': %s", p, strerror(errno));
	free(p);
	return h;
}

static void
mkdir_at(const char *rel)
{
	char	*p = at(rel);

	ck_assert_int_eq(mkdir(p, 0755), 0);
	free(p);
}

/*
 * Set up a tracked "filesystem" rooted at a fresh directory, a database and
 * a running writer.  Returns 0 when open_by_handle_at() is not permitted.
 */
static int
dc_start(void)
{
	char	 buf[PATH_MAX], err[512] = "", *d, *state;

	if (asprintf(&d, "%s/tree.XXXXXX", tmpdir) == -1)
		abort();
	ck_assert_ptr_nonnull(mkdtemp(d));
	ck_assert_ptr_nonnull(top = realpath(d, NULL));
	free(d);

	fstd.nfs = 1;
	ck_assert_ptr_nonnull(fstd.fs = fs = calloc(1, sizeof *fs));
	fs->id = 1;
	fs->mountpoint = top;
	fs->state = FS_TRACKED;
	ck_assert_int_ne(fs->mount_fd = open(top, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC), -1);
	ck_assert_int_eq(handle_of_fd(AT_FDCWD, top, 0, &fs->root), 0);
	hT = fs->root;
	if (handle_path(fs->mount_fd, &hT, buf, sizeof buf) != 0) {
		ck_assert_msg(errno == EPERM, "handle_path: %s",
		    strerror(errno));
		printf("note: open_by_handle_at needs CAP_DAC_READ_SEARCH; "
		    "dircache test skipped\n");
		return 0;
	}
	ck_assert_str_eq(buf, top);

	if (asprintf(&state, "%s/state.XXXXXX", tmpdir) == -1)
		abort();
	ck_assert_ptr_nonnull(mkdtemp(state));
	if (asprintf(&dbpath, "%s/" FSTRACK_DB_NAME, state) == -1)
		abort();
	free(state);
	fstd.db_path = dbpath;
	unit_loop_new();
	ck_assert_msg(store_open(dbpath, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(store_start(), 0);
	dircache_init();
	dircache_new_snapshot(100);
	return 1;
}

/* Wait until everything queued so far is committed. */
static void
dc_sync(void)
{
	unit_wait_committed(store_submit(store_op_sync()));
}

static void
dc_stop(void)
{
	dircache_fini();
	store_stop();
	store_close();
	unit_loop_free();
	close(fs->mount_fd);
	free(fs);
	fstd.fs = NULL;
	fstd.nfs = 0;
	free(dbpath);
	free(top);
}

static uint64_t
queued(void)
{
	return atomic_load(&fstd.st.records_queued);
}

/* The change rows, paths relative to top ("" for top itself). */
static char *
dc_rows(void)
{
	sqlite3	*ro = unit_db_ro(dbpath);
	char	 sql[512], *s;

	snprintf(sql, sizeof sql, "SELECT c.snapshot, CASE WHEN d.path = '%s' "
	    "THEN '' ELSE substr(d.path, %zu) END, c.name, printf('0x%%x', "
	    "c.mask) FROM changes c JOIN dirs d ON d.id = c.dir_id "
	    "ORDER BY 1, 2, 3", top, strlen(top) + 2);
	s = unit_db_rows(ro, sql);
	sqlite3_close(ro);
	return s;
}

START_TEST(test_dedup)
{
	struct fst_handle	hD;
	uint64_t		q0;
	char			*s;

	if (!dc_start())
		return;
	mkdir_at("D");
	hD = handle_of("D");
	q0 = queued();
	dircache_record(fs, &hD, "f", FST_M_MODIFIED);
	ck_assert_uint_eq(queued(), q0 + 1);
	dircache_record(fs, &hD, "f", FST_M_MODIFIED);	/* again: nothing */
	ck_assert_uint_eq(queued(), q0 + 1);
	dircache_record(fs, &hD, "f", FST_M_MODIFIED | FST_M_ATTRIB);
	ck_assert_uint_eq(queued(), q0 + 2);		/* a new bit */
	dircache_record(fs, &hD, "f", FST_M_ATTRIB);
	dircache_record(fs, &hD, "f", FST_M_MODIFIED);
	ck_assert_uint_eq(queued(), q0 + 2);
	dircache_record(fs, &hD, "g", FST_M_MODIFIED);	/* another entry */
	ck_assert_uint_eq(queued(), q0 + 3);

	dircache_new_snapshot(101);			/* records again */
	dircache_record(fs, &hD, "f", FST_M_MODIFIED);
	ck_assert_uint_eq(queued(), q0 + 4);
	dircache_record(fs, &hD, "f", FST_M_MODIFIED);
	ck_assert_uint_eq(queued(), q0 + 4);

	dc_sync();
	s = dc_rows();
	ck_assert_str_eq(s,
	    "100|D|f|0xc\n"
	    "100|D|g|0x4\n"
	    "101|D|f|0x4\n");
	free(s);
	/* one dirs row per directory, its path resolved from the handle */
	{
		sqlite3	*ro = unit_db_ro(dbpath);
		char	*p = at("D"), sql[PATH_MAX + 64];

		snprintf(sql, sizeof sql, "SELECT count(*) FROM dirs WHERE "
		    "path = '%s'", p);
		ck_assert_int_eq(unit_db_int(ro, sql), 1);
		ck_assert_int_eq(unit_db_int(ro, "SELECT count(*) FROM dirs"),
		    1);
		sqlite3_close(ro);
		free(p);
	}
	dc_stop();
}
END_TEST

/*
 * A position starts a new dedup epoch: an entry recorded already in this
 * snapshot is recorded again at its next change (same kinds or not), and
 * its row's sequence number moves past the position's; so does the
 * "contents" record on the parent.
 */
START_TEST(test_epoch)
{
	struct fst_handle	 hD;
	uint64_t		 q0, pos;
	sqlite3			*ro;
	char			 sql[256];
	long long		 seq_f, seq_g;

	if (!dc_start())
		return;
	mkdir_at("D");
	hD = handle_of("D");
	q0 = queued();
	dircache_record(fs, &hD, "f", FST_M_MODIFIED);
	dircache_record(fs, &hD, "g", FST_M_CREATED);	/* + contents */
	ck_assert_uint_eq(queued(), q0 + 3);
	dircache_record(fs, &hD, "f", FST_M_MODIFIED);
	ck_assert_uint_eq(queued(), q0 + 3);

	dircache_new_epoch();
	pos = store_submit(store_op_position(100));
	dircache_record(fs, &hD, "f", FST_M_MODIFIED);	/* again */
	ck_assert_uint_eq(queued(), q0 + 4);
	dircache_record(fs, &hD, "f", FST_M_MODIFIED);	/* once per epoch */
	ck_assert_uint_eq(queued(), q0 + 4);
	dircache_record(fs, &hD, "h", FST_M_CREATED);	/* + contents again */
	ck_assert_uint_eq(queued(), q0 + 6);
	dc_sync();

	ro = unit_db_ro(dbpath);
	snprintf(sql, sizeof sql, "SELECT seq FROM changes WHERE name = 'f'");
	seq_f = unit_db_int(ro, sql);
	snprintf(sql, sizeof sql, "SELECT seq FROM changes WHERE name = 'g'");
	seq_g = unit_db_int(ro, sql);
	ck_assert_int_gt(seq_f, store_position_seq(pos));
	ck_assert_int_lt(seq_g, store_position_seq(pos));
	snprintf(sql, sizeof sql, "SELECT count(*) FROM changes WHERE seq > "
	    "%lld", (long long)store_position_seq(pos));
	ck_assert_int_eq(unit_db_int(ro, sql), 3);	/* f, h, D's entry */
	ck_assert_int_eq(unit_db_int(ro, "SELECT mask FROM changes WHERE "
	    "name = 'f'"), FST_M_MODIFIED);
	sqlite3_close(ro);
	dc_stop();
}
END_TEST

START_TEST(test_contents_on_parent)
{
	struct fst_handle	hD;
	uint64_t		q0;
	char			*s;

	if (!dc_start())
		return;
	mkdir_at("D");
	hD = handle_of("D");
	q0 = queued();
	/* a create in D is also a change of D's entry in its parent */
	dircache_record(fs, &hD, "g", FST_M_CREATED);
	ck_assert_uint_eq(queued(), q0 + 2);
	/* once per directory per snapshot */
	dircache_record(fs, &hD, "h", FST_M_CREATED);
	ck_assert_uint_eq(queued(), q0 + 3);
	dircache_record(fs, &hD, "h", FST_M_DELETED);
	ck_assert_uint_eq(queued(), q0 + 4);
	dircache_record(fs, &hD, "m", FST_M_MOVED_FROM);
	ck_assert_uint_eq(queued(), q0 + 5);
	/* a change of a file's data is no change of the directory */
	dircache_record(fs, &hD, "k", FST_M_MODIFIED | FST_M_CLOSED_WRITE);
	ck_assert_uint_eq(queued(), q0 + 6);

	dircache_new_snapshot(101);
	dircache_record(fs, &hD, "k", FST_M_MODIFIED);
	ck_assert_uint_eq(queued(), q0 + 7);
	dircache_record(fs, &hD, "i", FST_M_MOVED_TO);
	ck_assert_uint_eq(queued(), q0 + 9);
	/* the top has no parent: no contents record for it */
	dircache_record(fs, &hT, "new", FST_M_CREATED);
	ck_assert_uint_eq(queued(), q0 + 10);

	dc_sync();
	s = dc_rows();
	ck_assert_str_eq(s,
	    "100||D|0x600\n"
	    "100|D|g|0x1\n"
	    "100|D|h|0x3\n"
	    "100|D|k|0x44\n"
	    "100|D|m|0x10\n"
	    "101||D|0x600\n"
	    "101||new|0x1\n"
	    "101|D|i|0x20\n"
	    "101|D|k|0x4\n");
	free(s);
	dc_stop();
}
END_TEST

START_TEST(test_dir_itself)
{
	struct fst_handle	hD;
	uint64_t		q0;
	char			*s;

	if (!dc_start())
		return;
	mkdir_at("D");
	hD = handle_of("D");
	q0 = queued();
	/* "." is the directory itself: recorded on its entry in its parent */
	dircache_record(fs, &hD, ".", FST_M_ATTRIB);
	ck_assert_uint_eq(queued(), q0 + 1);
	dircache_record(fs, &hD, ".", FST_M_ATTRIB);
	ck_assert_uint_eq(queued(), q0 + 1);
	dircache_record(fs, &hD, "x", FST_M_CREATED);	/* contents: new bit */
	ck_assert_uint_eq(queued(), q0 + 3);
	/* the top: no parent, recorded as "." */
	dircache_record(fs, &hT, ".", FST_M_ATTRIB);
	ck_assert_uint_eq(queued(), q0 + 4);
	dc_sync();
	s = dc_rows();
	ck_assert_str_eq(s,
	    "100||.|0x8\n"
	    "100||D|0x608\n"
	    "100|D|x|0x1\n");
	free(s);
	dc_stop();
}
END_TEST

START_TEST(test_rename)
{
	struct fst_handle	hD, hS, hX;
	char			*from, *to, *s, buf[PATH_MAX];

	if (!dc_start())
		return;
	mkdir_at("D");
	mkdir_at("D/sub");
	mkdir_at("Dx");
	hD = handle_of("D");
	hS = handle_of("D/sub");
	hX = handle_of("Dx");
	ck_assert_int_eq(dircache_resolve(fs, &hS, buf, sizeof buf), 0);
	s = at("D/sub");
	ck_assert_str_eq(buf, s);
	free(s);
	dircache_record(fs, &hS, "s", FST_M_CREATED);
	dircache_record(fs, &hD, "f", FST_M_MODIFIED);
	dircache_record(fs, &hX, "f", FST_M_MODIFIED);
	dc_sync();

	from = at("D");
	to = at("E");
	ck_assert_int_eq(rename(from, to), 0);
	dircache_rename(fs, &hT, "D", &hT, "E");
	/* cached paths are not trusted after a rename */
	ck_assert_int_eq(dircache_resolve(fs, &hS, buf, sizeof buf), 0);
	s = at("E/sub");
	ck_assert_str_eq(buf, s);
	free(s);
	dc_sync();
	s = dc_rows();
	ck_assert_str_eq(s,
	    "100|Dx|f|0x4\n"
	    "100|E|f|0x4\n"
	    "100|E|sub|0x600\n"
	    "100|E/sub|s|0x1\n");
	free(s);
	free(from);
	free(to);
	dc_stop();
}
END_TEST

START_TEST(test_resolve_gone)
{
	struct fst_handle	hG;
	char			buf[PATH_MAX], *p;

	if (!dc_start())
		return;
	mkdir_at("G");
	hG = handle_of("G");
	ck_assert_int_eq(dircache_resolve(fs, &hG, buf, sizeof buf), 0);
	p = at("G");
	ck_assert_int_eq(rmdir(p), 0);
	free(p);
	/* a cached path is used until a rename invalidates the cache ... */
	dircache_rename(fs, &hT, "x", &hT, "y");
	/* ... after which the removed directory does not resolve */
	ck_assert_int_eq(dircache_resolve(fs, &hG, buf, sizeof buf), -1);
	dc_stop();
}
END_TEST

/* A directory whose name ends in " (deleted)" is not a removed directory. */
START_TEST(test_resolve_deleted_suffix)
{
	struct fst_handle	hD;
	char			buf[PATH_MAX], *p, *s;

	if (!dc_start())
		return;
	mkdir_at("notes (deleted)");
	hD = handle_of("notes (deleted)");
	p = at("notes (deleted)");
	ck_assert_msg(dircache_resolve(fs, &hD, buf, sizeof buf) == 0,
	    "'%s' does not resolve", p);
	ck_assert_str_eq(buf, p);
	free(p);
	dircache_record(fs, &hD, "f", FST_M_CREATED);
	dc_sync();
	s = dc_rows();
	ck_assert_str_eq(s,
	    "100||notes (deleted)|0x600\n"
	    "100|notes (deleted)|f|0x1\n");
	free(s);
	dc_stop();
}
END_TEST

/*
 * Fill the cache with unresolvable directories of another filesystem until
 * it holds n directories.
 */
static void
fill_cache_to(size_t n)
{
	static struct fst_fs	other;
	struct fst_handle	h;
	char			buf[64];
	size_t			i;

	other.id = 99;
	other.mount_fd = -1;		/* nothing resolves: fast */
	memset(&h, 0, sizeof h);
	h.type = 1;
	h.len = 8;
	for (i = dircache_size(); i < n; i++) {
		memcpy(h.bytes, &i, sizeof i);
		ck_assert_int_eq(dircache_resolve(&other, &h, buf, sizeof buf),
		    -1);
	}
	ck_assert_uint_eq(dircache_size(), n);
}

/*
 * DC_MAX_DIRS in dircache.c is 32768, and dircache_record() makes room for
 * four directories before it starts.  When the parent lookup of
 * dircache_record() is the one that finds the cache full, the cache is
 * cleared; the entry must still be recorded with the directory's name.
 */
#define DC_MAX_DIRS_IN_SRC	32768

START_TEST(test_full_cache_contents)
{
	struct fst_handle	hD;
	char			*s;

	if (!dc_start())
		return;
	mkdir_at("Directory-with-a-long-name");
	hD = handle_of("Directory-with-a-long-name");
	fill_cache_to(DC_MAX_DIRS_IN_SRC - 4);
	/* D is the last that fits; its parent does not */
	dircache_record(fs, &hD, "f", FST_M_CREATED);
	ck_assert_msg(dircache_size() <= 2, "the cache was not evicted (%zu): "
	    "has DC_MAX_DIRS changed?", dircache_size());
	dc_sync();
	s = dc_rows();
	ck_assert_str_eq(s,
	    "100||Directory-with-a-long-name|0x600\n"
	    "100|Directory-with-a-long-name|f|0x1\n");
	free(s);
	dc_stop();
}
END_TEST

START_TEST(test_full_cache_dir_itself)
{
	struct fst_handle	hD;
	char			*s;

	if (!dc_start())
		return;
	mkdir_at("Directory-with-a-long-name");
	hD = handle_of("Directory-with-a-long-name");
	fill_cache_to(DC_MAX_DIRS_IN_SRC - 4);
	dircache_record(fs, &hD, ".", FST_M_ATTRIB);
	ck_assert_msg(dircache_size() <= 2, "the cache was not evicted (%zu): "
	    "has DC_MAX_DIRS changed?", dircache_size());
	dc_sync();
	s = dc_rows();
	ck_assert_str_eq(s, "100||Directory-with-a-long-name|0x208\n");
	free(s);
	dc_stop();
}
END_TEST

Suite *
dircache_suite(void)
{
	Suite	*s = suite_create("dircache");
	TCase	*tc;

	tc = tcase_create("record");
	tcase_add_unchecked_fixture(tc, dc_case_setup, dc_case_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_dedup);
	tcase_add_test(tc, test_epoch);
	tcase_add_test(tc, test_contents_on_parent);
	tcase_add_test(tc, test_dir_itself);
	tcase_add_test(tc, test_rename);
	tcase_add_test(tc, test_resolve_gone);
	tcase_add_test(tc, test_resolve_deleted_suffix);
	suite_add_tcase(s, tc);

	tc = tcase_create("full");
	tcase_add_unchecked_fixture(tc, dc_case_setup, dc_case_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_full_cache_contents);
	tcase_add_test(tc, test_full_cache_dir_itself);
	suite_add_tcase(s, tc);
	return s;
}

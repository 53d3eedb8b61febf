/*
 * check_store.c -- the database: creation and identity checks of
 * store_open(), the writer thread applying operations, and the client's
 * query_changed() on a database built by hand.
 *
 * store.c keeps its state in statics and can be opened, started and stopped
 * once per process: these tests rely on Check's fork mode (the default), in
 * which every test runs in a process of its own.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fstrack.h"
#include "proto.h"
#include "query.h"
#include "unit.h"

static char	*tmpdir;	/* per test case, made in the parent */

static void
st_setup(void)
{
	tmpdir = unit_mkdtemp();
}

static void
st_teardown(void)
{
	unit_rmtree(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
}

/* A new state directory; returns the database path in it. */
static char *
new_db_path(const char *tag)
{
	char	*dir, *path;

	if (asprintf(&dir, "%s/%s.XXXXXX", tmpdir, tag) == -1)
		abort();
	ck_assert_ptr_nonnull(mkdtemp(dir));
	if (asprintf(&path, "%s/" FSTRACK_DB_NAME, dir) == -1)
		abort();
	free(dir);
	return path;
}

/* Run SQL on a connection of our own; fails the test on error. */
static void
exec_sql(sqlite3 *db, const char *sql)
{
	char	*msg = NULL;

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
	    "%s: %s", sql, msg != NULL ? msg : "?");
}

/* Make an fstrack database with schema.c on a connection of our own. */
static sqlite3 *
make_fstrack_db(const char *path)
{
	sqlite3	*db;
	char	 err[512];
	int	 created;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_msg(schema_check_or_create(db, &created, err, sizeof err) ==
	    0, "schema: %s", err);
	ck_assert_int_eq(created, 1);
	return db;
}

static int
count_dir_entries(const char *path)
{
	char		*dir = strdup(path), *slash;
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL)
		n++;
	closedir(d);
	free(dir);
	return n;
}

/* store_open() refuses path and leaves it exactly as it was. */
static void
assert_refused_unchanged(const char *path)
{
	unsigned char	*before, *after;
	size_t		 n1, n2;
	struct stat	 st1, st2;
	char		 err[512] = "";
	int		 ents;

	ck_assert_ptr_nonnull(before = unit_read_file(path, &n1));
	ck_assert_int_eq(stat(path, &st1), 0);
	ents = count_dir_entries(path);

	ck_assert_int_eq(store_open(path, err, sizeof err), -1);
	ck_assert_msg(err[0] != '\0', "refusal without a reason");

	ck_assert_ptr_nonnull(after = unit_read_file(path, &n2));
	ck_assert_uint_eq(n1, n2);
	ck_assert_msg(memcmp(before, after, n1) == 0,
	    "refused database was modified (%s)", err);
	ck_assert_int_eq(stat(path, &st2), 0);
	ck_assert_uint_eq(st1.st_mode, st2.st_mode);
	ck_assert_int_eq(count_dir_entries(path), ents);
	free(before);
	free(after);
}

/* --- store_open ---------------------------------------------------- */

START_TEST(test_open_creates)
{
	char		*path = new_db_path("create"), *s, jid[40];
	sqlite3		*ro;
	struct stat	 st;
	char		 err[512] = "";

	fstd.db_path = path;
	ck_assert_msg(store_open(path, err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(strlen(fstd.journal_id), 32);

	ro = unit_db_ro(path);
	ck_assert_int_eq(unit_db_int(ro, "PRAGMA application_id"),
	    0x66737472);
	ck_assert_int_eq(unit_db_int(ro, "PRAGMA user_version"),
	    FSTRACK_SCHEMA_VERSION);
	s = unit_db_rows(ro, "PRAGMA journal_mode");
	ck_assert_str_eq(s, "wal\n");
	free(s);
	s = unit_db_rows(ro, "SELECT type, name FROM sqlite_master WHERE "
	    "type IN ('table', 'view') ORDER BY name");
	ck_assert_str_eq(s, "table|arms\nview|changed_dirs\nview|changed_entries\n"
	    "table|changes\ntable|consumers\ntable|dirs\ntable|filesystems\n"
	    "table|gaps\ntable|meta\ntable|snapshots\n");
	free(s);
	s = unit_db_rows(ro, "SELECT value || '' FROM meta WHERE key = "
	    "'journal_id'");
	ck_assert_uint_eq(strlen(s), 33);
	ck_assert_int_eq(strncmp(s, fstd.journal_id, 32), 0);
	free(s);
	ck_assert_int_eq(unit_db_int(ro, "SELECT count(*) FROM meta"), 2);
	sqlite3_close(ro);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	/* the WAL holds the same data: no more readable than the database */
	{
		char	*side;
		int	 i;

		for (i = 0; i < 2; i++) {
			if (asprintf(&side, "%s%s", path, i ? "-shm" : "-wal")
			    == -1)
				abort();
			if (stat(side, &st) == 0)
				ck_assert_msg((st.st_mode & 077) == 0,
				    "%s has mode %o", side, st.st_mode & 07777);
			free(side);
		}
	}
	store_close();

	/* Reopening keeps the database and its identity. */
	snprintf(jid, sizeof jid, "%s", fstd.journal_id);
	memset(fstd.journal_id, 0, sizeof fstd.journal_id);
	ck_assert_msg(store_open(path, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(fstd.journal_id, jid);
	ro = unit_db_ro(path);
	ck_assert_int_eq(unit_db_int(ro, "SELECT count(*) FROM meta"), 2);
	ck_assert_int_eq(unit_db_int(ro, "PRAGMA application_id"),
	    0x66737472);
	sqlite3_close(ro);
	ck_assert_int_eq(store_max_snapshot(), 0);
	store_close();
	free(path);
}
END_TEST

START_TEST(test_open_empty_file)
{
	char	*path = new_db_path("empty");
	char	 err[512] = "";
	sqlite3	*ro;

	/* an empty file is an empty database: it becomes ours */
	ck_assert_int_eq(unit_write_file(path, "", 0), 0);
	ck_assert_msg(store_open(path, err, sizeof err) == 0, "%s", err);
	ro = unit_db_ro(path);
	ck_assert_int_eq(unit_db_int(ro, "PRAGMA application_id"),
	    0x66737472);
	sqlite3_close(ro);
	store_close();
	free(path);
}
END_TEST

START_TEST(test_refuse_garbage)
{
	char		*path = new_db_path("garbage");
	unsigned char	 junk[8192];
	size_t		 i;

	for (i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	memcpy(junk, "this is not SQLite", 18);
	ck_assert_int_eq(unit_write_file(path, junk, sizeof junk), 0);
	assert_refused_unchanged(path);
	free(path);
}
END_TEST

START_TEST(test_refuse_text_file)
{
	char	*path = new_db_path("text");
	const char text[] = "important notes\n";

	ck_assert_int_eq(unit_write_file(path, text, sizeof text - 1), 0);
	assert_refused_unchanged(path);
	free(path);
}
END_TEST

START_TEST(test_refuse_foreign_app)
{
	char	*path = new_db_path("foreign");
	sqlite3	*db;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "PRAGMA application_id = 1234; CREATE TABLE t(x); "
	    "INSERT INTO t VALUES ('precious')");
	sqlite3_close(db);
	assert_refused_unchanged(path);
	free(path);
}
END_TEST

START_TEST(test_refuse_tables_without_id)
{
	char	*path = new_db_path("noid");
	sqlite3	*db;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
	sqlite3_close(db);
	assert_refused_unchanged(path);
	free(path);
}
END_TEST

START_TEST(test_refuse_newer_version)
{
	char	*path = new_db_path("newer");
	sqlite3	*db = make_fstrack_db(path);

	exec_sql(db, "PRAGMA user_version = 4");
	sqlite3_close(db);
	assert_refused_unchanged(path);
	free(path);
}
END_TEST

START_TEST(test_refuse_version_zero)
{
	char	*path = new_db_path("zero");
	sqlite3	*db = make_fstrack_db(path);

	exec_sql(db, "PRAGMA user_version = 0");
	sqlite3_close(db);
	assert_refused_unchanged(path);
	free(path);
}
END_TEST

/* Turn a current database back into version 2: no seq, no index. */
static void
make_v2(sqlite3 *db)
{
	exec_sql(db, "DROP VIEW changed_entries; DROP INDEX changes_seq; "
	    "ALTER TABLE changes DROP COLUMN seq; "
	    "ALTER TABLE gaps DROP COLUMN seq; "
	    "CREATE VIEW changed_entries AS SELECT c.snapshot AS snapshot, "
	    "c.name AS name, 'armed' AS kinds FROM changes c; "
	    "PRAGMA user_version = 2");
}

/* The columns of a table, as "name,name,...\n". */
static char *
table_columns(sqlite3 *ro, const char *t)
{
	char	sql[128];

	snprintf(sql, sizeof sql, "SELECT group_concat(name) FROM "
	    "pragma_table_info('%s')", t);
	return unit_db_rows(ro, sql);
}

/* A version 1 database (no arms table) is migrated to the current one. */
START_TEST(test_migrate_v1)
{
	char	*path = new_db_path("v1"), *s;
	sqlite3	*db = make_fstrack_db(path), *ro;
	char	 err[512] = "";

	make_v2(db);
	exec_sql(db, "DROP TABLE arms; PRAGMA user_version = 1");
	sqlite3_close(db);
	fstd.db_path = path;
	ck_assert_msg(store_open(path, err, sizeof err) == 0, "%s", err);
	store_close();
	ro = unit_db_ro(path);
	ck_assert_int_eq(unit_db_int(ro, "PRAGMA user_version"), 3);
	ck_assert_int_eq(unit_db_int(ro, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'arms'"), 1);
	s = unit_db_rows(ro, "SELECT sql LIKE '%armed%' AND sql LIKE '%seq%' "
	    "FROM sqlite_master WHERE name = 'changed_entries'");
	ck_assert_str_eq(s, "1\n");
	free(s);
	s = table_columns(ro, "changes");
	ck_assert_str_eq(s, "snapshot,dir_id,name,mask,seq\n");
	free(s);
	sqlite3_close(ro);
	free(path);
}
END_TEST

/*
 * A version 2 database keeps its rows, without sequence numbers; the
 * numbers of the new run start above nothing (1).
 */
START_TEST(test_migrate_v2)
{
	char	*path = new_db_path("v2"), *s;
	sqlite3	*db = make_fstrack_db(path), *ro;
	char	 err[512] = "";

	make_v2(db);
	exec_sql(db, "INSERT INTO changes VALUES (5, 1, 'a', 1); "
	    "INSERT INTO dirs(id, fs_id, handle, path) VALUES (1, 1, x'01', "
	    "'/m'); "
	    "INSERT INTO gaps(fs_id, snapshot, at, reason) VALUES "
	    "(1, 5, 0, 'x')");
	sqlite3_close(db);
	fstd.db_path = path;
	ck_assert_msg(store_open(path, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(store_position_seq(0), 1);
	store_close();
	ro = unit_db_ro(path);
	ck_assert_int_eq(unit_db_int(ro, "PRAGMA user_version"), 3);
	s = unit_db_rows(ro, "SELECT snapshot, dir_id, name, mask, "
	    "seq IS NULL FROM changes");
	ck_assert_str_eq(s, "5|1|a|1|1\n");
	free(s);
	s = unit_db_rows(ro, "SELECT reason, seq IS NULL FROM gaps");
	ck_assert_str_eq(s, "x|1\n");
	free(s);
	s = unit_db_rows(ro, "SELECT seq IS NULL FROM changed_entries");
	ck_assert_str_eq(s, "1\n");
	free(s);
	ck_assert_int_eq(unit_db_int(ro, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'changes_seq' AND sql LIKE '%WHERE seq IS NOT NULL%'"),
	    1);
	sqlite3_close(ro);
	free(path);
}
END_TEST

/* An fstrack database of many pages, closed. */
static void
make_big_fstrack_db(const char *path)
{
	sqlite3	*db = make_fstrack_db(path);

	exec_sql(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
	    "FROM n WHERE i < 3000) INSERT INTO meta SELECT 'k' || i, "
	    "printf('%0200d', i) FROM n");
	sqlite3_close(db);
}

START_TEST(test_refuse_truncated)
{
	char		*path = new_db_path("trunc");
	struct stat	 st;

	make_big_fstrack_db(path);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_ge(st.st_size, 40 * 4096);
	ck_assert_int_eq(truncate(path, (st.st_size / 2) & ~4095), 0);
	assert_refused_unchanged(path);
	free(path);
}
END_TEST

START_TEST(test_refuse_corrupt)
{
	char		*path = new_db_path("corrupt");
	struct stat	 st;
	unsigned char	 junk[4096 * 4];
	int		 fd;

	make_big_fstrack_db(path);
	ck_assert_int_eq(stat(path, &st), 0);
	memset(junk, 0x5a, sizeof junk);
	ck_assert_int_ne(fd = open(path, O_WRONLY), -1);
	ck_assert_int_eq(pwrite(fd, junk, sizeof junk,
	    (st.st_size / 2) & ~4095), (ssize_t)sizeof junk);
	close(fd);
	assert_refused_unchanged(path);
	free(path);
}
END_TEST

/* --- the writer ----------------------------------------------------- */

static struct fst_handle
fake_handle(unsigned char seed)
{
	struct fst_handle	h;

	memset(&h, 0, sizeof h);
	h.type = 1;
	h.len = 8;
	memset(h.bytes, seed, 8);
	h.bytes[0] = 0xf5;
	return h;
}

static uint64_t
submit_change(int64_t snap, int64_t fs_id, unsigned char hseed,
    const char *hint, const char *name, uint32_t mask)
{
	struct fst_handle	h = fake_handle(hseed);

	return store_submit(store_op_change(snap, fs_id, &h, hint, name, mask));
}

static uint64_t
submit_snapshot(int64_t id, int64_t ns)
{
	struct store_op	*op = store_op_snapshot(id, ns);

	op->durable = 1;
	return store_submit(op);
}

static uint64_t
submit_consumer(const char *name, int64_t cursor)
{
	return store_submit(store_op_consumer_set(name, cursor));
}

static uint64_t
submit_move(int64_t fs_id, const char *from, const char *to)
{
	return store_submit(store_op_dir_move(fs_id, from, to));
}

/* Open and start the store on a new database. */
static char *
writer_start(void)
{
	char	*path = new_db_path("writer");
	char	 err[512] = "";

	fstd.db_path = path;
	unit_loop_new();
	ck_assert_msg(store_open(path, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(store_start(), 0);
	return path;
}

static void
writer_stop(char *path)
{
	store_stop();
	store_close();
	unit_loop_free();
	free(path);
}

static uint64_t
submit_arm(int64_t snap, int64_t fs_id, const struct fst_handle *h)
{
	return store_submit(store_op_arm(snap, fs_id, h));
}

/*
 * Arms: only the newest two snapshots keep them; OP_PROMOTE_ARMS turns
 * those of the newest two into "armed" changes of the target snapshot
 * (skipping directories that no longer open) and empties the table;
 * OP_CLEAR_ARMS just empties it.  Real directories: opening handles needs
 * CAP_DAC_READ_SEARCH, so as non-root only the bookkeeping is checked.
 */
START_TEST(test_writer_arms)
{
	char			*path = writer_start(), *s, dir[3][512];
	struct fst_handle	 h[3], fake = fake_handle(9);
	struct fst_fs		 fs;
	sqlite3			*ro;
	uint64_t		 seq;
	int			 i, root = geteuid() == 0;

	memset(&fs, 0, sizeof fs);
	fs.id = 1;
	fs.mount_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fs.mount_fd, 0);
	fstd.fs = &fs;
	fstd.nfs = 1;
	for (i = 0; i < 3; i++) {
		snprintf(dir[i], sizeof dir[i], "%s/armdir%d", tmpdir, i);
		ck_assert_int_eq(mkdir(dir[i], 0700), 0);
		ck_assert_int_eq(handle_of_fd(AT_FDCWD, dir[i], 0, &h[i]), 0);
	}
	submit_snapshot(100, 100000000000LL);
	submit_arm(100, 1, &h[0]);
	submit_snapshot(200, 200000000000LL);
	submit_arm(200, 1, &h[1]);
	submit_arm(200, 1, &h[1]);		/* again: one row */
	submit_snapshot(300, 300000000000LL);	/* drops arms below 200 */
	submit_arm(300, 1, &h[2]);
	seq = submit_arm(300, 1, &fake);	/* opens nowhere */
	unit_wait_committed(seq);
	ro = unit_db_ro(path);
	s = unit_db_rows(ro, "SELECT snapshot, count(*) FROM arms GROUP BY "
	    "snapshot ORDER BY snapshot");
	ck_assert_str_eq(s, "200|1\n300|2\n");
	free(s);
	ck_assert_int_eq(unit_db_int(ro, "SELECT count(*) FROM changes"), 0);

	seq = store_submit(store_op_promote_arms(300));
	unit_wait_committed(seq);
	ck_assert_int_eq(unit_db_int(ro, "SELECT count(*) FROM arms"), 0);
	if (root) {
		char want[1200];

		snprintf(want, sizeof want, "300|%s|.|armed\n300|%s|.|armed\n",
		    strcmp(dir[1], dir[2]) < 0 ? dir[1] : dir[2],
		    strcmp(dir[1], dir[2]) < 0 ? dir[2] : dir[1]);
		s = unit_db_rows(ro, "SELECT snapshot, path, name, kinds FROM "
		    "changed_entries ORDER BY path");
		ck_assert_str_eq(s, want);
		free(s);
	}

	submit_arm(300, 1, &h[0]);
	seq = store_submit(store_op_clear_arms());
	unit_wait_committed(seq);
	ck_assert_int_eq(unit_db_int(ro, "SELECT count(*) FROM arms"), 0);
	sqlite3_close(ro);
	close(fs.mount_fd);
	fstd.fs = NULL;
	fstd.nfs = 0;
	writer_stop(path);
}
END_TEST

/*
 * The writer's queue is bounded: past 32768 operations store_queue_full()
 * tells readers to pause, and store_wait_room() returns once the writer
 * has worked it down; nothing queued is lost.
 */
START_TEST(test_writer_queue_bound)
{
	char		*path = new_db_path("bound"), err[512] = "", value[16];
	sqlite3		*ro;
	uint64_t	 seq = 0;
	int		 i;

	fstd.db_path = path;
	unit_loop_new();
	ck_assert_msg(store_open(path, err, sizeof err) == 0, "%s", err);
	for (i = 0; i < 40000; i++) {
		snprintf(value, sizeof value, "%d", i);
		seq = store_submit(store_op_meta("bound_test", value));
		if (i == 32766)
			ck_assert_int_eq(store_queue_full(), 0);
	}
	ck_assert_int_eq(store_queue_full(), 1);
	ck_assert_int_eq(store_start(), 0);
	store_wait_room();
	ck_assert_int_eq(store_queue_full(), 0);
	unit_wait_committed(seq);
	ro = unit_db_ro(path);
	ck_assert_int_eq(unit_db_int(ro, "SELECT CAST(value AS INTEGER) FROM "
	    "meta WHERE key = 'bound_test'"), 39999);
	sqlite3_close(ro);
	writer_stop(path);
}
END_TEST

START_TEST(test_writer_snapshot_consumer)
{
	char		*path = writer_start(), *s;
	sqlite3		*ro;
	uint64_t	 seq;
	long long	 created;

	submit_snapshot(1764112200, 1764112200123456789LL);
	submit_snapshot(1764112260, 1764112260000000001LL);
	submit_snapshot(1764112200, 1LL);	/* again: ignored */
	seq = submit_consumer("backup", 1764112200);
	ck_assert_uint_gt(seq, 0);
	unit_wait_committed(seq);

	ro = unit_db_ro(path);
	s = unit_db_rows(ro, "SELECT id, started_at, started_ns FROM snapshots "
	    "ORDER BY id");
	ck_assert_str_eq(s, "1764112200|1764112200|1764112200123456789\n"
	    "1764112260|1764112260|1764112260000000001\n");
	free(s);
	s = unit_db_rows(ro, "SELECT name, cursor, last_success IS NOT NULL, "
	    "last_success = created_at FROM consumers");
	ck_assert_str_eq(s, "backup|1764112200|1|1\n");
	free(s);
	created = unit_db_int(ro, "SELECT created_at FROM consumers");

	/* advancing keeps created_at */
	sleep(1);
	seq = submit_consumer("backup", 1764112260);
	submit_consumer("other", 5);
	unit_wait_committed(seq + 1);
	s = unit_db_rows(ro, "SELECT name, cursor FROM consumers ORDER BY name");
	ck_assert_str_eq(s, "backup|1764112260\nother|5\n");
	free(s);
	ck_assert_int_eq(unit_db_int(ro, "SELECT created_at FROM consumers "
	    "WHERE name = 'backup'"), created);
	ck_assert_int_gt(unit_db_int(ro, "SELECT last_success FROM consumers "
	    "WHERE name = 'backup'"), created);
	sqlite3_close(ro);
	ck_assert_uint_ge(store_committed(), seq + 1);
	writer_stop(path);
}
END_TEST

/* Submit a position taken in snapshot snap; returns its operation's seq. */
static uint64_t
submit_position(int64_t snap)
{
	return store_submit(store_op_position(snap));
}

/*
 * Positions (store.c, POSITIONS): rows get sequence numbers only once a
 * position was taken in their snapshot (or a later one), every re-record
 * moves the number past it, gaps always have one; the first batch reserves
 * numbers durably, and a position's own commit is not durable.
 */
START_TEST(test_writer_positions)
{
	char		*path = new_db_path("pos"), err[512] = "", *s, sql[256];
	sqlite3		*ro;
	uint64_t	 seq, pos, durable;
	int64_t		 p;

	fstd.db_path = path;
	unit_loop_new();
	ck_assert_msg(store_open(path, err, sizeof err) == 0, "%s", err);
	store_positions_init(0);	/* as daemon_init on a new database */
	ck_assert_int_eq(store_start(), 0);
	submit_change(100, 1, 0xa, "/m/a", "x", FST_M_CREATED);
	seq = submit_change(100, 1, 0xa, "/m/a", "y", FST_M_CREATED);
	unit_wait_committed(seq);
	ro = unit_db_ro(path);
	ck_assert_int_eq(unit_db_int(ro, "SELECT count(*) FROM changes WHERE "
	    "seq IS NULL"), 2);
	/* the first batch reserved numbers, durably */
	ck_assert_int_ge(atomic_load(&fstd.st.durable_commits), 1);
	ck_assert_int_ge(unit_db_int(ro, "SELECT CAST(value AS INTEGER) FROM "
	    "meta WHERE key = 'seq_limit'"), store_position_seq(seq) +
	    (1LL << 31));

	durable = atomic_load(&fstd.st.durable_commits);
	pos = submit_position(100);
	unit_wait_committed(pos);
	ck_assert_uint_eq(atomic_load(&fstd.st.durable_commits), durable);
	p = store_position_seq(pos);
	ck_assert_int_eq(unit_db_int(ro, "SELECT CAST(value AS INTEGER) FROM "
	    "meta WHERE key = 'position_snapshot'"), 100);

	submit_change(100, 1, 0xa, "/m/a", "x", FST_M_CREATED);	/* again */
	submit_change(100, 1, 0xa, "/m/a", "z", FST_M_MODIFIED);	/* new */
	submit_change(99, 1, 0xa, "/m/a", "late", FST_M_MODIFIED);	/* older */
	submit_change(101, 1, 0xa, "/m/a", "w", FST_M_MODIFIED);	/* later */
	store_record_gap(NULL, "nothing tracked: no row");
	seq = store_submit(store_op_gap(1, 100, 0, "test"));
	unit_wait_committed(seq);
	snprintf(sql, sizeof sql, "SELECT snapshot, name, seq > %lld, seq IS "
	    "NULL FROM changes ORDER BY snapshot, name", (long long)p);
	s = unit_db_rows(ro, sql);
	ck_assert_str_eq(s,
	    "99|late|1|0\n"
	    "100|x|1|0\n"
	    "100|y|NULL|1\n"
	    "100|z|1|0\n"
	    "101|w|NULL|1\n");
	free(s);
	snprintf(sql, sizeof sql, "SELECT reason, seq > %lld FROM gaps",
	    (long long)p);
	s = unit_db_rows(ro, sql);
	ck_assert_str_eq(s, "test|1\n");
	free(s);
	/* seq is the operation's number: unique, in apply order */
	ck_assert_int_eq(unit_db_int(ro, "SELECT seq FROM gaps"),
	    store_position_seq(seq));

	/* a barrier that takes a position in 101 activates 101 */
	store_submit(store_op_barrier_position(100, p, 101));
	seq = submit_change(101, 1, 0xa, "/m/a", "w", FST_M_ATTRIB);
	unit_wait_committed(seq);
	ck_assert_int_eq(unit_db_int(ro, "SELECT seq FROM changes WHERE "
	    "name = 'w'"), store_position_seq(seq));
	ck_assert_int_eq(unit_db_int(ro, "SELECT mask FROM changes WHERE "
	    "name = 'w'"), FST_M_MODIFIED | FST_M_ATTRIB);
	/* the index holds the rows with a number */
	s = unit_db_rows(ro, "EXPLAIN QUERY PLAN SELECT name FROM changes "
	    "WHERE seq > 5");
	ck_assert_msg(strstr(s, "changes_seq") != NULL, "plan: %s", s);
	free(s);
	sqlite3_close(ro);
	writer_stop(path);
}
END_TEST

/*
 * A run's numbers start above every number of the database and at its
 * reserved limit, whichever is higher (here: above the gap's; the limit
 * wins in test_writer_positions' next run, which the fork mode cannot
 * have: see root-feed.sh).
 */
START_TEST(test_seq_start)
{
	char	*path = new_db_path("seqstart"), err[512] = "";
	sqlite3	*db = make_fstrack_db(path);

	exec_sql(db, "INSERT INTO changes VALUES (1, 1, 'a', 1, 5000); "
	    "INSERT INTO gaps(fs_id, snapshot, at, reason, seq) VALUES "
	    "(1, 1, 0, 'x', 7000); INSERT INTO meta VALUES ('seq_limit', "
	    "'6000')");
	sqlite3_close(db);
	fstd.db_path = path;
	ck_assert_msg(store_open(path, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(store_position_seq(0), 7001);
	store_close();
	free(path);
}
END_TEST

START_TEST(test_writer_changes_and_views)
{
	char		*path = writer_start(), *s;
	sqlite3		*ro;
	uint64_t	 seq;
	unsigned char	 blob[4 + FST_HANDLE_MAX];
	size_t		 bloblen;
	struct fst_handle h = fake_handle(0xa);
	const void	*got;
	sqlite3_stmt	*st;

	submit_snapshot(100, 100000000000LL);
	submit_snapshot(101, 101000000000LL);
	submit_change(100, 1, 0xa, "/m/a", "x", FST_M_CREATED);
	submit_change(100, 1, 0xa, "/m/a", "x", FST_M_MODIFIED); /* merges */
	submit_change(100, 1, 0xa, NULL, ".", FST_M_ATTRIB);
	submit_change(101, 1, 0xa, "/ignored", "y", FST_M_DELETED);
	submit_change(100, 1, 0xb, "/m/a/x", "f", FST_M_MODIFIED);
	submit_change(100, 1, 0xc, "/m/ab", "g", FST_M_ATTRIB);
	submit_change(100, 1, 0xd, "/", "top", FST_M_CREATED | FST_M_ISDIR);
	submit_change(100, 1, 0xe, "/m/a/x/deep", "h", FST_M_MOVED_TO);
	/* another filesystem: same handle bytes, its own row */
	submit_change(100, 2, 0xa, "/m/a/z", "w", FST_M_CLOSED_WRITE);
	seq = submit_move(1, "/m/a", "/m/b");
	unit_wait_committed(seq);

	ro = unit_db_ro(path);
	s = unit_db_rows(ro, "SELECT fs_id, path, gone FROM dirs ORDER BY id");
	ck_assert_str_eq(s,
	    "1|/m/b|0\n"		/* moved */
	    "1|/m/b/x|0\n"		/* a descendant: moved */
	    "1|/m/ab|0\n"		/* a sibling with a common prefix: not */
	    "1|/|0\n"
	    "1|/m/b/x/deep|0\n"
	    "2|/m/a/z|0\n");		/* another filesystem: not */
	free(s);

	/* the handle is stored in the documented blob form */
	handle_to_blob(&h, blob, &bloblen);
	ck_assert_int_eq(sqlite3_prepare_v2(ro, "SELECT handle FROM dirs "
	    "WHERE id = 1", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_bytes(st, 0), (int)bloblen);
	got = sqlite3_column_blob(st, 0);
	ck_assert_mem_eq(got, blob, bloblen);
	sqlite3_finalize(st);

	s = unit_db_rows(ro, "SELECT snapshot, dir_id, name, mask FROM changes "
	    "ORDER BY snapshot, dir_id, name");
	ck_assert_str_eq(s,
	    "100|1|.|8\n"
	    "100|1|x|5\n"
	    "100|2|f|4\n"
	    "100|3|g|8\n"
	    "100|4|top|513\n"
	    "100|5|h|32\n"
	    "100|6|w|64\n"
	    "101|1|y|2\n");
	free(s);

	s = unit_db_rows(ro, "SELECT snapshot, fs_id, path, gone FROM "
	    "changed_dirs ORDER BY snapshot, fs_id, path");
	ck_assert_str_eq(s,
	    "100|1|/|0\n"
	    "100|1|/m/ab|0\n"
	    "100|1|/m/b|0\n"		/* once, though it has two changes */
	    "100|1|/m/b/x|0\n"
	    "100|1|/m/b/x/deep|0\n"
	    "100|2|/m/a/z|0\n"
	    "101|1|/m/b|0\n");
	free(s);
	ck_assert_int_eq(unit_db_int(ro, "SELECT count(DISTINCT path) FROM "
	    "changed_dirs WHERE snapshot >= 101"), 1);

	s = unit_db_rows(ro, "SELECT snapshot, fs_id, path, dir, name, mask, "
	    "kinds, gone FROM changed_entries ORDER BY snapshot, fs_id, path");
	ck_assert_str_eq(s,
	    "100|1|/m/ab/g|/m/ab|g|8|attrib|0\n"
	    "100|1|/m/b|/m/b|.|8|attrib|0\n"
	    "100|1|/m/b/x|/m/b|x|5|created,modified|0\n"
	    "100|1|/m/b/x/deep/h|/m/b/x/deep|h|32|moved-to|0\n"
	    "100|1|/m/b/x/f|/m/b/x|f|4|modified|0\n"
	    "100|1|/top|/|top|513|created|0\n"
	    "100|2|/m/a/z/w|/m/a/z|w|64|closed-write|0\n"
	    "101|1|/m/b/y|/m/b|y|2|deleted|0\n");
	free(s);
	sqlite3_close(ro);
	writer_stop(path);
}
END_TEST

START_TEST(test_writer_move_edge_cases)
{
	char			*path = writer_start(), *s;
	sqlite3			*ro;
	uint64_t		 seq;
	struct fst_handle	 h;

	submit_change(1, 1, 1, "/m/a", "n", FST_M_CREATED);
	submit_change(1, 1, 2, "/m/a/b/c", "n", FST_M_CREATED);
	submit_change(1, 1, 3, "/m/a-x", "n", FST_M_CREATED);
	submit_change(1, 1, 4, "/m/a%", "n", FST_M_CREATED);
	submit_change(1, 1, 5, "/m/aa/a", "n", FST_M_CREATED);
	submit_change(1, 1, 6, "/x/m/a", "n", FST_M_CREATED);
	submit_change(1, 1, 7, "/m/a/\xc3\xa9t\xc3\xa9", "n", FST_M_CREATED);
	/* the moved directory was gone: moving it back revives it */
	h = fake_handle(1);
	store_submit(store_op_dir_gone(1, &h));
	seq = submit_move(1, "/m/a", "/m/long/new name");
	unit_wait_committed(seq);

	ro = unit_db_ro(path);
	s = unit_db_rows(ro, "SELECT path, gone FROM dirs ORDER BY id");
	ck_assert_str_eq(s,
	    "/m/long/new name|0\n"
	    "/m/long/new name/b/c|0\n"
	    "/m/a-x|0\n"
	    "/m/a%|0\n"
	    "/m/aa/a|0\n"
	    "/x/m/a|0\n"
	    "/m/long/new name/\xc3\xa9t\xc3\xa9|0\n");
	free(s);

	/* and back, to a shorter name */
	seq = submit_move(1, "/m/long/new name", "/q");
	unit_wait_committed(seq);
	s = unit_db_rows(ro, "SELECT path FROM dirs WHERE id IN (1, 2, 7) "
	    "ORDER BY id");
	ck_assert_str_eq(s, "/q\n/q/b/c\n/q/\xc3\xa9t\xc3\xa9\n");
	free(s);
	sqlite3_close(ro);
	writer_stop(path);
}
END_TEST

START_TEST(test_writer_gone_gap_checkpoint)
{
	char			*path = writer_start(), *s;
	sqlite3			*ro;
	uint64_t		 seq;
	struct fst_handle	 h;
	struct fst_fs		 fs;
	int64_t			 snap = 0;
	char			 reason[256];

	memset(&fs, 0, sizeof fs);
	fs.mountpoint = "/m";
	snprintf(fs.fstype, sizeof fs.fstype, "ext4");
	snprintf(fs.fsid, sizeof fs.fsid, "0000000100000002");
	ck_assert_int_eq(store_fs_attach(&fs, &snap, reason, sizeof reason), 0);
	ck_assert_int_eq(fs.id, 1);
	ck_assert_int_eq(fs.is_new, 1);

	submit_change(5, fs.id, 1, "/m/d", "n", FST_M_CREATED);
	h = fake_handle(1);
	store_submit(store_op_dir_gone(fs.id, &h));
	store_submit(store_op_gap(fs.id, 5, 1764112200000000000LL,
	    "event queue overflow"));
	store_submit(store_op_checkpoint(fs.id, 2000));
	seq = store_submit(store_op_checkpoint(fs.id, 1000)); /* never back */
	unit_wait_committed(seq);

	ro = unit_db_ro(path);
	s = unit_db_rows(ro, "SELECT path, gone FROM dirs");
	ck_assert_str_eq(s, "/m/d|1\n");
	free(s);
	s = unit_db_rows(ro, "SELECT path, gone FROM changed_entries");
	ck_assert_str_eq(s, "/m/d/n|1\n");
	free(s);
	s = unit_db_rows(ro, "SELECT fs_id, snapshot, at, reason FROM gaps");
	ck_assert_str_eq(s, "1|5|1764112200|event queue overflow\n");
	free(s);
	ck_assert_int_eq(unit_db_int(ro, "SELECT checkpoint_ns FROM "
	    "filesystems WHERE id = 1"), 2000);
	sqlite3_close(ro);
	writer_stop(path);
}
END_TEST

/* --- query_changed -------------------------------------------------- */

struct qarg {
	sqlite3	*db;
	int64_t	 since, cur;
	int	 flags;
};

static int
run_query(void *p)
{
	struct qarg	*a = p;

	return query_changed(a->db, a->since, a->cur, a->flags);
}

static int
query(sqlite3 *db, int64_t since, int64_t cur, int flags, char **out)
{
	struct qarg	a = { db, since, cur, flags };

	return unit_capture_stdout(run_query, &a, out);
}

/* A database of three snapshots, 100 to 102, built by hand. */
static sqlite3 *
make_query_db(const char *path)
{
	sqlite3	*db = make_fstrack_db(path);

	exec_sql(db,
	    "INSERT INTO filesystems(id, mountpoint, fstype, fsid, added_at, "
	    "  added_snapshot) VALUES (1, '/m', 'ext4', 'f1', 0, 100);"
	    "INSERT INTO snapshots VALUES (100, 1764112200, 0), "
	    "  (101, 1764112260, 0), (102, 1764112320, 0);"
	    "INSERT INTO dirs(id, fs_id, handle, path, gone) VALUES "
	    "  (1, 1, x'0100000001', '/m', 0),"
	    "  (2, 1, x'0100000002', '/m/b', 0),"
	    "  (3, 1, x'0100000003', '/m/gone', 1),"
	    "  (4, 1, x'0100000004', '?', 0),"
	    "  (5, 1, x'0100000005', '/m/b/sub', 0);"
	    "INSERT INTO changes(snapshot, dir_id, name, mask) VALUES "
	    "  (100, 1, 'old', 1),"
	    "  (101, 1, 'z', 512),"
	    "  (101, 2, 'x', 1),"
	    "  (102, 2, 'x', 4),"
	    "  (102, 2, 'tab' || char(9) || 'nl' || char(10) || 'bs\\', 2),"
	    "  (102, 1, 'b', 1536),"
	    "  (102, 3, 'f', 2),"
	    "  (102, 4, 'lost', 1),"
	    "  (102, 5, '.', 8);");
	return db;
}

/* The JSON object of entry path in out has every one of the fields. */
static void
assert_json_entry(const char *out, const char *path, const char *f1,
    const char *f2, const char *f3, const char *f4, const char *f5)
{
	const char	*fields[] = { f1, f2, f3, f4, f5 };
	char		*key, *obj, *end;
	const char	*p;
	size_t		 i;

	if (asprintf(&key, "{\"path\":\"%s\",", path) == -1)
		abort();
	p = strstr(out, key);
	ck_assert_msg(p != NULL, "no entry %s in %s", key, out);
	obj = strdup(p);
	ck_assert_ptr_nonnull(end = strchr(obj, '}'));
	end[1] = '\0';
	for (i = 0; i < 5; i++)
		ck_assert_msg(strstr(obj, fields[i]) != NULL, "%s lacks %s",
		    obj, fields[i]);
	free(obj);
	free(key);
}

START_TEST(test_query_changed)
{
	char	*path = new_db_path("query"), *out;
	sqlite3	*w = make_query_db(path), *db;

	ck_assert_ptr_nonnull(db = query_open(path));

	ck_assert_int_eq(query(db, 102, 102, 0, &out), 0);
	ck_assert_str_eq(out,
	    "contents\t/m/b\n"
	    "attrib\t/m/b/sub\n"
	    "deleted\t/m/b/tab\\tnl\\nbs\\\\\n"
	    "modified\t/m/b/x\n"
	    "deleted\t/m/gone/f\n");
	free(out);

	/* since 101: the changes of 101 and 102 merged per entry */
	ck_assert_int_eq(query(db, 101, 102, 0, &out), 0);
	ck_assert_str_eq(out,
	    "contents\t/m/b\n"
	    "attrib\t/m/b/sub\n"
	    "deleted\t/m/b/tab\\tnl\\nbs\\\\\n"
	    "created,modified\t/m/b/x\n"
	    "deleted\t/m/gone/f\n"
	    "changed\t/m/z\n");
	free(out);

	ck_assert_int_eq(query(db, 100, 102, 0, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "created\t/m/old\n"));
	ck_assert_ptr_nonnull(strstr(out, "changed\t/m/z\n"));
	free(out);

	/* --dirs: sorted, unique, without gone or unresolved directories */
	ck_assert_int_eq(query(db, 101, 102, Q_DIRS, &out), 0);
	ck_assert_str_eq(out, "/m\n/m/b\n/m/b/sub\n");
	free(out);

	/* -0: NUL-terminated, no escaping */
	ck_assert_int_eq(query(db, 102, 102, Q_NUL, &out), 0);
	ck_assert_mem_eq(out, "contents\t/m/b\0attrib\t/m/b/sub\0"
	    "deleted\t/m/b/tab\tnl\nbs\\\0",
	    sizeof "contents\t/m/b\0attrib\t/m/b/sub\0"
	    "deleted\t/m/b/tab\tnl\nbs\\\0" - 1);
	free(out);

	ck_assert_int_eq(query(db, 102, 102, Q_JSON, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "\"complete\":true"));
	ck_assert_ptr_nonnull(strstr(out, "\"gaps\":[]"));
	assert_json_entry(out, "/m/b/x", "\"dir\":\"/m/b\"", "\"name\":\"x\"",
	    "\"kinds\":[\"modified\"]", "\"is_dir\":false", "\"gone\":false");
	assert_json_entry(out, "/m/b", "\"dir\":\"/m\"", "\"name\":\"b\"",
	    "\"kinds\":[\"contents\"]", "\"is_dir\":true", "\"gone\":false");
	assert_json_entry(out, "/m/gone/f", "\"dir\":\"/m/gone\"",
	    "\"name\":\"f\"", "\"kinds\":[\"deleted\"]", "\"gone\":true",
	    "\"is_dir\":false");
	assert_json_entry(out, "/m/b/tab\\u0009nl\\u000abs\\\\",
	    "\"name\":\"tab\\u0009nl\\u000abs\\\\\"", "\"dir\":\"/m/b\"",
	    "\"kinds\":[\"deleted\"]", "\"gone\":false", "\"is_dir\":false");
	ck_assert_ptr_null(strstr(out, "lost"));
	free(out);

	ck_assert_int_eq(query(db, 101, 102, Q_JSON | Q_DIRS, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "\"dirs\":[\"/m\",\"/m/b\","
	    "\"/m/b/sub\""));
	free(out);

	query_close(db);
	sqlite3_close(w);
	free(path);
}
END_TEST

/* --dirs lists each directory path once, in JSON as in text. */
START_TEST(test_query_dirs_unique)
{
	char	*path = new_db_path("queryu"), *out, *p;
	sqlite3	*w = make_query_db(path), *db;

	/* /m/r removed and made again: two dirs rows, one path */
	exec_sql(w, "INSERT INTO dirs(id, fs_id, handle, path, gone) VALUES "
	    "  (6, 1, x'0100000006', '/m/r', 1),"
	    "  (7, 1, x'0100000007', '/m/r', 0);"
	    "INSERT INTO changes(snapshot, dir_id, name, mask) VALUES (102, 6, 'a', 1), (102, 7, 'a', 1)");
	ck_assert_ptr_nonnull(db = query_open(path));
	ck_assert_int_eq(query(db, 102, 102, Q_DIRS, &out), 0);
	ck_assert_str_eq(out, "/m\n/m/b\n/m/b/sub\n/m/r\n");
	free(out);
	ck_assert_int_eq(query(db, 102, 102, Q_DIRS | Q_JSON, &out), 0);
	ck_assert_ptr_nonnull(p = strstr(out, "\"/m/r\""));
	ck_assert_msg(strstr(p + 1, "\"/m/r\"") == NULL,
	    "/m/r listed twice: %s", out);
	free(out);
	query_close(db);
	sqlite3_close(w);
	free(path);
}
END_TEST

/*
 * What query_changed must print (text mode): the
 * rows of changed_entries since since, by path, merged per path -- the
 * listing as an ORDER BY over the whole result would give it.
 */
static char *
expected_listing(sqlite3 *db, int64_t since)
{
	static const char *kinds[] = { "created", "deleted", "modified",
	    "attrib", "moved-from", "moved-to", "closed-write", "opened-write",
	    "rescanned", NULL, "contents", "open-at-snapshot", "armed" };
	sqlite3_stmt	*st;
	char		*buf = NULL, *prev = NULL;
	size_t		 len = 0, i;
	FILE		*f;
	int64_t		 mask = 0;
	int		 first, rc;

	ck_assert_ptr_nonnull(f = open_memstream(&buf, &len));
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT path, mask FROM "
	    "changed_entries WHERE snapshot >= ? AND dir LIKE '/%' "
	    "ORDER BY path", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, since);
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && prev != NULL &&
		    strcmp(prev, (const char *)sqlite3_column_text(st, 0)) == 0) {
			mask |= sqlite3_column_int64(st, 1);
			continue;
		}
		if (prev != NULL) {
			first = 1;
			for (i = 0; i < sizeof kinds / sizeof *kinds; i++) {
				if (kinds[i] == NULL || !(mask & (1 << i)))
					continue;
				fprintf(f, "%s%s", first ? "" : ",", kinds[i]);
				first = 0;
			}
			fprintf(f, "%s\t", first ? "changed" : "");
			for (i = 0; prev[i] != '\0'; i++)
				fputs(prev[i] == '\t' ? "\\t" : prev[i] == '\n' ?
				    "\\n" : prev[i] == '\\' ? "\\\\" :
				    (char []){ prev[i], '\0' }, f);
			fputc('\n', f);
			free(prev);
			prev = NULL;
		}
		if (rc != SQLITE_ROW)
			break;
		prev = strdup((const char *)sqlite3_column_text(st, 0));
		mask = sqlite3_column_int64(st, 1);
	}
	ck_assert_int_eq(rc, SQLITE_DONE);
	sqlite3_finalize(st);
	fclose(f);
	return buf;
}

/* Fail with the first line where got and want differ. */
static void
assert_same_lines(const char *got, const char *want)
{
	size_t	i, line = 1, bol = 0;

	for (i = 0; got[i] == want[i] && got[i] != '\0'; i++)
		if (got[i] == '\n') {
			line++;
			bol = i + 1;
		}
	ck_assert_msg(got[i] == want[i], "line %zu differs:\n got: %.200s\n"
	    "want: %.200s", line, got + bol, want + bol);
}

/*
 * The listing is ordered by full path, though entries come per directory:
 * names that sort around '/' ("a-b", "a.c", "a b", "a!" before "a/x";
 * "a0" after), "." rows (a directory's own path), directories that share
 * a path, the root directory, several snapshots of one name.
 */
START_TEST(test_query_order_by_path)
{
	char	*path = new_db_path("queryo"), *out, *want;
	sqlite3	*w = make_query_db(path), *db;

	exec_sql(w, "INSERT INTO dirs(id, fs_id, handle, path, gone) VALUES "
	    "  (10, 1, x'010000000a', '/m/a', 0),"
	    "  (11, 1, x'010000000b', '/m/a-b', 0),"
	    "  (12, 1, x'010000000c', '/m/a b', 0),"
	    "  (13, 1, x'010000000d', '/m/a/b', 0),"
	    "  (14, 1, x'010000000e', '/m/a!', 1),"
	    "  (15, 1, x'010000000f', '/m/a!', 0),"
	    "  (16, 1, x'0100000010', '/', 0),"
	    "  (17, 1, x'0100000011', '/m/a/b/c', 0);"
	    "INSERT INTO changes(snapshot, dir_id, name, mask) VALUES "
	    "  (102, 1, 'a', 1536), (102, 1, 'a-b', 512), (102, 1, 'a.c', 4),"
	    "  (102, 1, 'a b', 1), (102, 1, 'a0', 1), (102, 1, '!', 1),"
	    "  (102, 1, 'a!', 1024), (102, 10, 'x', 1), (101, 10, 'x', 4),"
	    "  (102, 10, '-y', 1), (102, 10, '.hidden', 1), (102, 10, 'b', 8),"
	    "  (102, 11, 'q', 1), (102, 12, 'r', 1), (102, 13, '.', 8),"
	    "  (101, 13, 'z', 2), (102, 14, 'k', 2), (102, 15, 'k', 1),"
	    "  (102, 16, 'etc', 8), (102, 16, '.', 8), (101, 17, '.', 4096),"
	    "  (102, 17, '-', 1), (101, 15, '.', 8)");
	ck_assert_ptr_nonnull(db = query_open(path));
	ck_assert_int_eq(query(db, 101, 102, 0, &out), 0);
	want = expected_listing(w, 101);
	assert_same_lines(out, want);
	/* a few lines spelled out, so the reference itself is checked */
	ck_assert_ptr_nonnull(strstr(out, "attrib\t/\nattrib\t/etc\n"));
	ck_assert_ptr_nonnull(strstr(out, "created,modified\t/m/a/x\n"));
	ck_assert_ptr_nonnull(strstr(out, "attrib\t/m/a/b\narmed\t/m/a/b/c\n"
	    "created\t/m/a/b/c/-\ndeleted\t/m/a/b/z\n"));
	ck_assert_ptr_nonnull(strstr(out, "created\t/m/a b\ncreated\t/m/a b/r\n"
	    "attrib,contents\t/m/a!\ncreated,deleted\t/m/a!/k\n"));
	free(out);
	free(want);
	query_close(db);
	sqlite3_close(w);
	free(path);
}
END_TEST

/*
 * The same against the reference on a random tree: names of bytes that
 * sort just below and above '/', several snapshots, "." rows, directories
 * sharing paths, some gone.
 */
START_TEST(test_query_order_random)
{
	static const char *parts[] = { "a", "b", "-", ".", " ", "!", "0", "~",
	    "\xc3\xa9", "a-", "a.", "a0" };
	char		*path = new_db_path("queryr"), *out, *want;
	char		 dirs[200][64], name[32];
	sqlite3		*w = make_query_db(path), *db;
	sqlite3_stmt	*di, *ci;
	unsigned	 seed = 12345;
	int		 i, j, k, n, p;

	ck_assert_int_eq(sqlite3_prepare_v2(w, "INSERT INTO dirs(id, fs_id, "
	    "handle, path, gone) VALUES (?1, 1, CAST(?1 AS BLOB), ?2, ?3)", -1,
	    &di, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(w, "INSERT OR IGNORE INTO changes"
	    "(snapshot, dir_id, name, mask) VALUES (?, ?, ?, ?)", -1, &ci, NULL), SQLITE_OK);
	exec_sql(w, "BEGIN");
	snprintf(dirs[0], sizeof dirs[0], "/r");
	for (i = 0; i < 200; i++) {
		if (i > 0) {
			/* a child of an earlier directory, or a repeat of one */
			p = rand_r(&seed) % i;
			n = 1 + rand_r(&seed) % 3;
			memcpy(dirs[i], dirs[p], sizeof dirs[i]);	/* p < i */
			if (rand_r(&seed) % 10 != 0 || strlen(dirs[i]) > 40) {
				strcat(dirs[i], "/");
				for (k = 0; k < n; k++)
					strcat(dirs[i], parts[rand_r(&seed) %
					    (sizeof parts / sizeof *parts)]);
			}
		}
		sqlite3_bind_int(di, 1, 1000 + i);
		sqlite3_bind_text(di, 2, dirs[i], -1, SQLITE_STATIC);
		sqlite3_bind_int(di, 3, rand_r(&seed) % 8 == 0);
		ck_assert_int_eq(sqlite3_step(di), SQLITE_DONE);
		sqlite3_reset(di);
		for (j = 0; j < 15; j++) {
			name[0] = '\0';
			n = 1 + rand_r(&seed) % 3;
			for (k = 0; k < n; k++)
				strcat(name, parts[rand_r(&seed) %
				    (sizeof parts / sizeof *parts)]);
			if (rand_r(&seed) % 15 == 0)
				snprintf(name, sizeof name, ".");
			sqlite3_bind_int(ci, 1, 100 + rand_r(&seed) % 3);
			sqlite3_bind_int(ci, 2, 1000 + i);
			sqlite3_bind_text(ci, 3, name, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int(ci, 4, 1 << (rand_r(&seed) % 13));
			ck_assert_int_eq(sqlite3_step(ci), SQLITE_DONE);
			sqlite3_reset(ci);
		}
	}
	exec_sql(w, "COMMIT");
	sqlite3_finalize(di);
	sqlite3_finalize(ci);
	ck_assert_ptr_nonnull(db = query_open(path));
	for (i = 100; i <= 102; i++) {
		ck_assert_int_eq(query(db, i, 102, 0, &out), 0);
		want = expected_listing(w, i);
		assert_same_lines(out, want);
		ck_assert_msg(strlen(out) > 1000, "too few rows: %s", out);
		free(out);
		free(want);
	}
	query_close(db);
	sqlite3_close(w);
	free(path);
}
END_TEST

START_TEST(test_query_no_such_snapshot)
{
	char	*path = new_db_path("query3"), *out;
	sqlite3	*w = make_query_db(path), *db;

	ck_assert_ptr_nonnull(db = query_open(path));
	ck_assert_int_eq(query(db, 103, 102, 0, &out), FST_EXIT_NOSNAPSHOT);
	ck_assert_str_eq(out, "");
	free(out);
	ck_assert_int_eq(query(db, 0, 102, 0, &out), FST_EXIT_NOSNAPSHOT);
	free(out);
	ck_assert_int_eq(query(db, -5, 102, Q_DIRS, &out), FST_EXIT_NOSNAPSHOT);
	free(out);
	query_close(db);
	sqlite3_close(w);
	free(path);
}
END_TEST

START_TEST(test_query_below_oldest)
{
	char	*path = new_db_path("query4"), *out;
	sqlite3	*w = make_query_db(path), *db;

	ck_assert_ptr_nonnull(db = query_open(path));
	/* older than any snapshot this database has */
	ck_assert_int_eq(query(db, 99, 102, 0, &out), FST_EXIT_GAP);
	ck_assert_str_eq(out, "");
	free(out);
	ck_assert_int_eq(query(db, 1, 102, Q_DIRS, &out), FST_EXIT_GAP);
	free(out);
	/* pruned: oldest_snapshot says history starts at 101 */
	exec_sql(w, "INSERT INTO meta VALUES ('oldest_snapshot', '101')");
	ck_assert_int_eq(query(db, 100, 102, 0, &out), FST_EXIT_GAP);
	free(out);
	ck_assert_int_eq(query(db, 101, 102, 0, &out), 0);
	free(out);
	/* or the rows of 100 were deleted by a prune */
	exec_sql(w, "DELETE FROM meta WHERE key = 'oldest_snapshot';"
	    "DELETE FROM changes WHERE snapshot < 101;"
	    "DELETE FROM snapshots WHERE id < 101");
	ck_assert_int_eq(query(db, 100, 102, 0, &out), FST_EXIT_GAP);
	free(out);
	query_close(db);
	sqlite3_close(w);
	free(path);
}
END_TEST

START_TEST(test_query_gaps)
{
	char	*path = new_db_path("queryg"), *out;
	sqlite3	*w = make_query_db(path), *db;

	exec_sql(w, "INSERT INTO gaps(fs_id, snapshot, at, reason) VALUES "
	    "(1, 101, 1764112270, 'event queue overflow')");
	ck_assert_ptr_nonnull(db = query_open(path));
	/* a gap at since or after it */
	ck_assert_int_eq(query(db, 101, 102, 0, &out), FST_EXIT_GAP);
	free(out);
	ck_assert_int_eq(query(db, 100, 102, 0, &out), FST_EXIT_GAP);
	free(out);
	/* --dirs names the gapped mount point as a line too */
	ck_assert_int_eq(query(db, 101, 102, Q_DIRS, &out), FST_EXIT_GAP);
	ck_assert_str_eq(out, "/m\n/m\n/m/b\n/m/b/sub\n");
	free(out);
	ck_assert_int_eq(query(db, 101, 102, Q_JSON, &out), FST_EXIT_GAP);
	ck_assert_ptr_nonnull(strstr(out, "\"complete\":false"));
	ck_assert_ptr_nonnull(strstr(out, "\"reason\":\"event queue overflow\""));
	free(out);
	/* a gap before since does not matter */
	ck_assert_int_eq(query(db, 102, 102, 0, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "modified\t/m/b/x\n"));
	free(out);
	query_close(db);
	sqlite3_close(w);
	free(path);
}
END_TEST

/* --- query_changed_at since a position ------------------------------- */

struct qparg {
	sqlite3			*db;
	struct query_answer	*a;
	int			 flags;
};

static int
run_query_at(void *p)
{
	struct qparg	*q = p;

	return query_changed_at(q->db, q->a, q->flags);
}

/* The answer since token (a position) with this answer's seq; its output. */
static int
query_pos(sqlite3 *db, const char *token, int64_t pos_seq,
    struct query_answer *a, int flags, char **out)
{
	static struct proto_since	s;
	struct qparg			q = { db, a, flags };

	ck_assert_int_eq(proto_parse_since(token, &s), 0);
	a->since = &s;
	a->cur = 102;
	a->pos_seq = pos_seq;
	if (a->position == NULL)
		a->position = "fst1:00000000000000aa:102:999";
	return unit_capture_stdout(run_query_at, &q, out);
}

/*
 * make_query_db with sequence numbers: in snapshot 101 rows numbered from a
 * position on, snapshot 102 without any (no position taken in it yet).
 */
static sqlite3 *
make_position_db(const char *path)
{
	sqlite3	*w = make_query_db(path);

	exec_sql(w, "INSERT INTO meta VALUES ('journal_id', "
	    "'00000000000000aabbccddeeff001122');"
	    "UPDATE changes SET seq = 50 WHERE snapshot = 101 AND name = 'z';"
	    "UPDATE changes SET seq = 60 WHERE snapshot = 101 AND name = 'x';");
	return w;
}

START_TEST(test_query_position)
{
	char			*path = new_db_path("querypos"), *out;
	sqlite3			*w = make_position_db(path), *db;
	struct query_answer	 a;
	struct query_seen	 seen = { 0 }, seen2 = { 0 };
	size_t			 n;

	ck_assert_ptr_nonnull(db = query_open(path));
	/* since (101, 55): x of 101 (60), every row of 102 (no numbers) */
	memset(&a, 0, sizeof a);
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:101:55", 999,
	    &a, 0, &out), 0);
	ck_assert_str_eq(out,
	    "contents\t/m/b\n"
	    "attrib\t/m/b/sub\n"
	    "deleted\t/m/b/tab\\tnl\\nbs\\\\\n"
	    "created,modified\t/m/b/x\n"	/* 101 and 102 merged */
	    "deleted\t/m/gone/f\n");
	free(out);
	/* since (101, 40): z (50) too */
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:101:40", 999,
	    &a, 0, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "\t/m/z\n"));
	free(out);
	/* since (102, 60): rows numbered above 60 (any snapshot), none */
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:102:60", 999,
	    &a, 0, &out), 0);
	ck_assert_str_eq(out, "");
	free(out);
	exec_sql(w, "UPDATE changes SET seq = 70 WHERE snapshot = 102 AND "
	    "name = 'b'");
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:102:60", 999,
	    &a, 0, &out), 0);
	ck_assert_str_eq(out, "contents\t/m/b\n");
	free(out);
	/* JSON: since is the token, position the answer's */
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:102:60", 999,
	    &a, Q_JSON, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "{\"since\":\"fst1:00000000000000aa:"
	    "102:60\",\"snapshot\":102,\"position\":\"fst1:00000000000000aa:"
	    "102:999\",\"gaps\":[],\"complete\":true,\"entries\":[{\"path\":"
	    "\"/m/b\","));
	free(out);
	/* --dirs */
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:101:55", 999,
	    &a, Q_DIRS, &out), 0);
	ck_assert_str_eq(out, "/m\n/m/b\n/m/b/sub\n");
	free(out);

	/* --follow: rows above the answer's position are noted, then skipped */
	a.seen = &seen;
	a.printed = &n;
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:101:40", 55,
	    &a, Q_LINES | Q_JSON, &out), 0);
	ck_assert_uint_eq(seen.n, 2);		/* x (60) and b (70) */
	ck_assert_int_eq(seen.v[0], 60);
	ck_assert_int_eq(seen.v[1], 70);
	ck_assert_ptr_nonnull(strstr(out, "\n{\"path\":\"/m/z\","));
	ck_assert_ptr_null(strstr(out, "\"entries\""));	/* a line each */
	free(out);
	a.skip = &seen;
	a.seen = &seen2;
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:101:55", 999,
	    &a, Q_LINES, &out), 0);
	/* x of 101 (60) was printed: only its 102 row is left; b (70) gone */
	ck_assert_ptr_nonnull(strstr(out, "modified\t/m/b/x\n"));
	ck_assert_ptr_null(strstr(out, "created"));
	ck_assert_ptr_null(strstr(out, "contents\t/m/b\n"));
	free(out);
	query_seen_free(&seen);
	query_seen_free(&seen2);
	query_close(db);
	sqlite3_close(w);
	free(path);
}
END_TEST

/* Positions that cannot be answered, and gaps since a position. */
START_TEST(test_query_position_refused)
{
	char			*path = new_db_path("queryposr"), *out;
	sqlite3			*w = make_position_db(path), *db;
	struct query_answer	 a;

	ck_assert_ptr_nonnull(db = query_open(path));
	memset(&a, 0, sizeof a);
	/* another database's journal: 4, in JSON too */
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000ab:101:55", 999,
	    &a, Q_JSON, &out), FST_EXIT_GAP);
	ck_assert_ptr_nonnull(strstr(out, "\"complete\":false"));
	ck_assert_ptr_nonnull(strstr(out, "\"position\":\"fst1:"));
	free(out);
	/* newer than the answer's own position, or than the snapshot: 3 */
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:101:1000", 999,
	    &a, 0, &out), FST_EXIT_NOSNAPSHOT);
	free(out);
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:103:5", 999,
	    &a, 0, &out), FST_EXIT_NOSNAPSHOT);
	free(out);
	/* an unknown snapshot: 3; a pruned one: 4 */
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:100:5", 999,
	    &a, 0, &out), 0);
	free(out);
	exec_sql(w, "DELETE FROM snapshots WHERE id = 101");
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:101:5", 999,
	    &a, 0, &out), FST_EXIT_NOSNAPSHOT);
	free(out);
	exec_sql(w, "INSERT INTO meta VALUES ('oldest_snapshot', '102')");
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:100:5", 999,
	    &a, 0, &out), FST_EXIT_GAP);
	free(out);
	exec_sql(w, "DELETE FROM meta WHERE key = 'oldest_snapshot';"
	    "INSERT INTO snapshots VALUES (101, 1764112260, 0)");
	/* gaps: numbered after the position, or in a later snapshot */
	exec_sql(w, "INSERT INTO gaps(fs_id, snapshot, at, reason, seq) VALUES "
	    "(1, 101, 1764112270, 'before', 40)");
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:101:55", 999,
	    &a, 0, &out), 0);
	free(out);
	exec_sql(w, "INSERT INTO gaps(fs_id, snapshot, at, reason, seq) VALUES "
	    "(1, 101, 1764112271, 'after', 56)");
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:101:55", 999,
	    &a, Q_DIRS, &out), FST_EXIT_GAP);
	ck_assert_ptr_nonnull(strstr(out, "/m\n"));
	free(out);
	exec_sql(w, "DELETE FROM gaps; INSERT INTO gaps(fs_id, snapshot, at, "
	    "reason) VALUES (1, 102, 1764112330, 'old daemon, later')");
	ck_assert_int_eq(query_pos(db, "fst1:00000000000000aa:101:55", 999,
	    &a, Q_JSON, &out), FST_EXIT_GAP);
	ck_assert_ptr_nonnull(strstr(out, "\"since\":\"fst1:00000000000000aa:"
	    "101:55\",\"snapshot\":102,\"at\""));
	free(out);
	query_close(db);
	sqlite3_close(w);
	free(path);
}
END_TEST


/* CONTRACT.md: "gaps":[{"mountpoint":...,"reason":...,"since":...}] */
START_TEST(test_query_json_gap_fields)
{
	char	*path = new_db_path("queryj"), *out, *g, *end;
	sqlite3	*w = make_query_db(path), *db;

	exec_sql(w, "INSERT INTO gaps(fs_id, snapshot, at, reason) VALUES "
	    "(1, 101, 1764112270, 'event queue overflow')");
	ck_assert_ptr_nonnull(db = query_open(path));
	ck_assert_int_eq(query(db, 101, 102, Q_JSON, &out), FST_EXIT_GAP);
	ck_assert_ptr_nonnull(g = strstr(out, "\"gaps\":[{"));
	ck_assert_ptr_nonnull(end = strchr(g, '}'));
	*end = '\0';
	ck_assert_ptr_nonnull(strstr(g, "\"mountpoint\":\"/m\""));
	ck_assert_ptr_nonnull(strstr(g, "\"reason\":"));
	ck_assert_msg(strstr(g, "\"since\":") != NULL,
	    "gap object without the contract's \"since\" key: %s", g);
	free(out);
	query_close(db);
	sqlite3_close(w);
	free(path);
}
END_TEST

Suite *
store_suite(void)
{
	Suite	*s = suite_create("store");
	TCase	*tc;

	tc = tcase_create("open");
	tcase_add_unchecked_fixture(tc, st_setup, st_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_open_creates);
	tcase_add_test(tc, test_open_empty_file);
	tcase_add_test(tc, test_refuse_garbage);
	tcase_add_test(tc, test_refuse_text_file);
	tcase_add_test(tc, test_refuse_foreign_app);
	tcase_add_test(tc, test_refuse_tables_without_id);
	tcase_add_test(tc, test_refuse_newer_version);
	tcase_add_test(tc, test_migrate_v2);
	tcase_add_test(tc, test_seq_start);
	tcase_add_test(tc, test_refuse_version_zero);
	tcase_add_test(tc, test_migrate_v1);
	tcase_add_test(tc, test_refuse_truncated);
	tcase_add_test(tc, test_refuse_corrupt);
	suite_add_tcase(s, tc);

	tc = tcase_create("writer");
	tcase_add_unchecked_fixture(tc, st_setup, st_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_writer_snapshot_consumer);
	tcase_add_test(tc, test_writer_positions);
	tcase_add_test(tc, test_writer_changes_and_views);
	tcase_add_test(tc, test_writer_move_edge_cases);
	tcase_add_test(tc, test_writer_gone_gap_checkpoint);
	tcase_add_test(tc, test_writer_arms);
	tcase_add_test(tc, test_writer_queue_bound);
	suite_add_tcase(s, tc);

	tc = tcase_create("query");
	tcase_add_unchecked_fixture(tc, st_setup, st_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_query_changed);
	tcase_add_test(tc, test_query_dirs_unique);
	tcase_add_test(tc, test_query_order_by_path);
	tcase_add_test(tc, test_query_order_random);
	tcase_add_test(tc, test_query_no_such_snapshot);
	tcase_add_test(tc, test_query_below_oldest);
	tcase_add_test(tc, test_query_gaps);
	tcase_add_test(tc, test_query_position);
	tcase_add_test(tc, test_query_position_refused);
	tcase_add_test(tc, test_query_json_gap_fields);
	suite_add_tcase(s, tc);
	return s;
}

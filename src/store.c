/*
 * store.c -- the database: the single writer thread and its group commits.
 *
 * ON-DISK FORMAT.  One SQLite database, STATE_DIR/fstrack.db, in WAL mode
 * (schema in schema.c, documented in fstrack-db(5)).  The unit of history is
 * a row of changes: (snapshot, dir_id, name, mask) says "entry NAME of
 * directory DIR_ID changed during SNAPSHOT in the ways MASK".  Directories
 * are identified by file handle, which survives renames; dirs.path is the
 * last known path, kept current by rename events and refreshed from the
 * handle before every query (OP_BARRIER), and dirs.gone marks a directory
 * whose handle no longer opens.  snapshots holds one row per change period;
 * filesystems.checkpoint_ns the durable checkpoint of each filesystem;
 * gaps the periods whose history is known to be incomplete.
 *
 * INVARIANTS.
 *  1. Only this thread writes.  Readers (the client, sqlite3) use their own
 *     connections; WAL means they never block it nor it them.
 *  2. Operations are applied in the order they were submitted, each batch in
 *     one transaction.  A crash keeps a prefix of the batches: everything up
 *     to some commit, nothing after it.  So a checkpoint row (OP_CHECKPOINT,
 *     submitted after the records it covers) is never durable without them.
 *  3. A batch containing a durable operation (a held opener, a snapshot,
 *     SIGTERM's final flush) commits with synchronous=FULL, which syncs the
 *     WAL and thereby every earlier batch too; other batches use NORMAL.
 *  4. committed_seq only moves forward, after COMMIT returned SQLITE_OK.
 *     Held openers are released only for sequence numbers at or below it.
 *  5. Every statement's result is checked, reads included: SQLite rolls
 *     the transaction back by itself on an I/O error, a full disk or no
 *     memory, and a statement run after that would commit alone, out of
 *     order.  A batch whose transaction is gone fails as a whole
 *     (store_commit_batch), and store_apply() may be run again on the same
 *     operation: it must not consume its request (OP_PRUNE).
 *  6. A failed commit is rolled back and retried with the same operations
 *     (plus any that arrived meanwhile) until it succeeds: a full disk or a
 *     locked database delays records, it never drops them silently (past
 *     STORE_BACKLOG_MAX queued operations they give way to a gap, queued
 *     ahead of them: store_shed_locked).  While it fails
 *     the daemon is degraded; the stall guard in perm.c keeps openers moving
 *     and the unchanged checkpoint makes the next start-up rescan cover it.
 *
 * GROUP COMMIT.  The writer takes everything queued when it wakes, so the
 * operations that arrive during one fsync share the next one: one slow
 * commit delays everyone by at most one commit, it never serialises them.
 *
 * POSITIONS (fstrack-db(5), schema version 3).  Every operation has a
 * sequence number (store_submit); in the database it is store_seq_base
 * plus that, a number that keeps growing across runs.  A row of changes
 * carries the number of its latest record (changes.seq, set on insert and
 * on every re-record), a gap its own (gaps.seq).  A position is the
 * number of an operation that the main thread submits right after it
 * drained the kernel queue and started a new dedup epoch (dircache.c):
 * every change read after it is recorded again, with a greater number, so
 * "since a position" is "seq greater than its number, or a later
 * snapshot".  Taking one writes nothing (the first one of a snapshot
 * writes one meta row) and is committed with synchronous=NORMAL: no fsync.
 *  P1. Numbers never go back, even across a crash that lost the last
 *      commits: meta seq_limit, written durably, bounds every number the
 *      run hands out or writes (store_seq_reserve), and the next run
 *      starts at it.  One durable commit per STORE_SEQ_RESERVE / 2
 *      operations at most, in practice the first batch of a run, which
 *      is durable anyway (run_state).
 *  P2. A row gets a number only if its snapshot is at most
 *      store_pos_snapshot, the newest snapshot in which a position was
 *      taken: until somebody takes one, nothing is indexed (rows without
 *      one are in snapshots later than every position, which a query
 *      since a position reads whole).  It only grows: a position op
 *      raises it, in apply order, so every row applied after a position
 *      of snapshot S with a snapshot up to S has a number.  meta
 *      position_snapshot keeps it for the next run; after an unclean stop
 *      that row may be lost, so daemon_init then takes the current
 *      snapshot instead (store_positions_init).
 */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fstrack.h"
#include "log.h"

#define STORE_BATCH_MS	20
#define STORE_UNHURRIED_MS	1

/*
 * Operations queued for the writer before the readers of events wait for
 * it (store_queue_full, store_wait_room): about 300 bytes each, so the
 * queue stays near 10 MB while the kernel keeps the rest of a burst in
 * its own (unlimited) queue.  The daemon's memory is bounded by this, not
 * by how fast files change.
 */
#define STORE_QUEUE_HIGH	32768

/*
 * While commits fail the queue may grow past STORE_QUEUE_HIGH (readers do
 * not wait then), but not past this: beyond it a record of a change, a
 * move or a removal is not kept; a gap for its filesystem and snapshot is
 * queued in its place, once (store_shed_locked).  About 336 bytes a
 * record: ~88 MB at most, instead of 3.4 GB at 10 million records.
 */
#define STORE_BACKLOG_MAX	262144

/* A failed commit is retried after 50 ms, doubling up to 1 s. */
#define STORE_RETRY_MS		50
#define STORE_RETRY_MAX_MS	1000
/* At shutdown, failed retries before the writer gives up. */
#define STORE_STOP_RETRIES	20

/* Sequence numbers reserved at once (POSITIONS, P1). */
#define STORE_SEQ_RESERVE	(1LL << 32)

static sqlite3			*store_db;
static pthread_t		 store_thread;
static int			 store_running;
static pthread_mutex_t		 store_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 store_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t		 store_room = PTHREAD_COND_INITIALIZER;
static _Atomic int		 store_failing;	/* commits fail: do not wait */
static struct store_op		*store_qhead;
static struct store_op		**store_qtail = &store_qhead;
static struct store_op		*store_done_head;
static uint64_t			 store_next_seq = 1;
static _Atomic uint64_t		 store_committed_seq;
static int			 store_stopping;
static int			 store_urgent;	/* someone waits for the queue */
static int			 store_unhurried; /* durable, nobody waits */
static int			 store_wake;	/* the writer must be woken */
static int			 store_evfd = -1;
static uv_async_t		 store_async;
static uint64_t			 store_backlog_max = STORE_BACKLOG_MAX;
static int64_t			 store_shed_untracked; /* shed_snapshot of
							  no tracked fs */
static int			 store_retry_ms = STORE_RETRY_MS;
static int			 store_retry_max_ms = STORE_RETRY_MAX_MS;
static char			 store_errbuf[256];
static int64_t			 store_seq_base = 1;	/* P1; constant */
static int64_t			 store_seq_limit;	/* writer: durable */
static int64_t			 store_pos_snapshot = INT64_MAX; /* P2 */
static pthread_mutex_t		 store_err_lock = PTHREAD_MUTEX_INITIALIZER;

enum {
	ST_DIR_FIND,
	ST_DIR_INSERT,
	ST_CHANGE,
	ST_DIR_MOVE,
	ST_DIR_GONE,
	ST_SNAPSHOT,
	ST_GAP,
	ST_CHECKPOINT,
	ST_FS_STATE,
	ST_CONSUMER_SET,
	ST_CONSUMER_DELETE,
	ST_ARM,
	ST_ARMS_TRIM,
	ST_META,
	ST_COUNT
};
static const char *store_sql[ST_COUNT] = {
	"SELECT id, gone FROM dirs WHERE fs_id = ? AND handle = ?",
	"INSERT INTO dirs(fs_id, handle, path) VALUES (?, ?, ?)",
	"INSERT INTO changes(snapshot, dir_id, name, mask, seq) VALUES "
	    "(?, ?, ?, ?, ?) ON CONFLICT(snapshot, dir_id, name) DO UPDATE "
	    "SET mask = mask | excluded.mask, seq = coalesce(excluded.seq, seq)",
	"UPDATE dirs SET path = ?3 || substr(path, length(?2) + 1), gone = 0 "
	    "WHERE fs_id = ?1 AND (path = ?2 OR "
	    "substr(path, 1, length(?2) + 1) = ?2 || '/')",
	"UPDATE dirs SET gone = 1 WHERE fs_id = ? AND handle = ?",
	"INSERT OR IGNORE INTO snapshots(id, started_at, started_ns) "
	    "VALUES (?, ?, ?)",
	"INSERT INTO gaps(fs_id, snapshot, at, reason, seq) VALUES "
	    "(?, ?, ?, ?, ?)",
	"UPDATE filesystems SET checkpoint_ns = ?1 WHERE id = ?2 AND "
	    "(checkpoint_ns IS NULL OR checkpoint_ns < ?1 OR ?3)",
	"UPDATE filesystems SET state = ? WHERE id = ?",
	"INSERT INTO consumers(name, cursor, last_success, created_at) "
	    "VALUES (?1, ?2, ?3, ?3) ON CONFLICT(name) DO UPDATE "
	    "SET cursor = excluded.cursor, last_success = excluded.last_success",
	"DELETE FROM consumers WHERE name = ?",
	"INSERT OR IGNORE INTO arms(snapshot, fs_id, handle) VALUES (?, ?, ?)",
	"DELETE FROM arms WHERE snapshot < (SELECT coalesce(max(id), 0) FROM "
	    "snapshots WHERE id < ?1)",
	"INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
	    "SET value = excluded.value",
};
static sqlite3_stmt *store_st[ST_COUNT];

/* Remember the last database error for status. */
static void
store_set_error(const char *what)
{
	pthread_mutex_lock(&store_err_lock);
	snprintf(store_errbuf, sizeof store_errbuf, "%s: %s", what,
	    sqlite3_errmsg(store_db));
	pthread_mutex_unlock(&store_err_lock);
}

/* The last database error (for status), or "". */
const char *
store_last_error(void)
{
	return store_errbuf;
}

/* Run a statement that returns no rows. */
static int
store_exec(const char *sql)
{
	char	*msg = NULL;

	if (sqlite3_exec(store_db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("database: %s: %s", sql, msg != NULL ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Size of the database file plus its WAL, in bytes. */
int64_t
store_db_size(void)
{
	struct stat	st;
	char		wal[PATH_MAX];
	int64_t		n = 0;

	if (fstd.db_path == NULL)
		return 0;
	if (stat(fstd.db_path, &st) == 0)
		n += st.st_size;
	snprintf(wal, sizeof wal, "%s-wal", fstd.db_path);
	if (stat(wal, &st) == 0)
		n += st.st_size;
	return n;
}

/*
 * Where this run's sequence numbers start (POSITIONS, P1): at the durable
 * limit of the last run, and above every number in the database (a
 * database of version 2 has no limit yet).  Nothing is reserved yet:
 * the first batch does that.
 */
static int
store_seq_start(char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	int64_t		 v = 1;

	if (sqlite3_prepare_v2(store_db, "SELECT max(1, coalesce((SELECT "
	    "CAST(value AS INTEGER) FROM meta WHERE key = 'seq_limit'), 0), "
	    "coalesce((SELECT max(seq) FROM changes WHERE seq IS NOT NULL), 0) "
	    "+ 1, coalesce((SELECT max(seq) FROM gaps), 0) + 1)", -1, &st,
	    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "sequence numbers: %s",
		    sqlite3_errmsg(store_db));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	store_seq_base = v;
	store_seq_limit = v;
	return 0;
}

/*
 * Open (or create) the database at path, check it is ours and current, and
 * prepare the statements.  Runs in the main thread before any other thread
 * exists.  On refusal err says why; the file is left as it was.
 */
int
store_open(const char *path, char *err, size_t errlen)
{
	int	created, i, flags;
	mode_t	old;

	flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX;
	old = umask(077);
	i = sqlite3_open_v2(path, &store_db, flags, NULL);
	umask(old);
	if (i != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, store_db != NULL ?
		    sqlite3_errmsg(store_db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(store_db, 1);
	sqlite3_busy_timeout(store_db, 2000);
	if (schema_check_or_create(store_db, &created, err, errlen) != 0)
		goto fail;
	if (chmod(path, 0600) == -1) {
		snprintf(err, errlen, "chmod '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (store_exec("PRAGMA journal_mode = WAL") != 0 ||
	    store_exec("PRAGMA synchronous = FULL") != 0 ||
	    store_exec("PRAGMA foreign_keys = OFF") != 0) {
		snprintf(err, errlen, "cannot set WAL mode: %s",
		    sqlite3_errmsg(store_db));
		goto fail;
	}
	for (i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(store_db, store_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &store_st[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "prepare: %s",
			    sqlite3_errmsg(store_db));
			goto fail;
		}
	}
	if (created) {
		char	sql[256];
		unsigned char rnd[16];
		int	fd;

		fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (fd == -1 || read(fd, rnd, sizeof rnd) != sizeof rnd)
			memset(rnd, 0, sizeof rnd);
		if (fd != -1)
			close(fd);
		for (i = 0; i < 16; i++)
			snprintf(fstd.journal_id + 2 * i, 3, "%02x", rnd[i]);
		snprintf(sql, sizeof sql, "INSERT INTO meta VALUES "
		    "('journal_id', '%s'), ('created_at', '%lld')",
		    fstd.journal_id, (long long)time(NULL));
		if (store_exec(sql) != 0) {
			snprintf(err, errlen, "cannot initialise database");
			goto fail;
		}
		log_info("created database '%s'", path);
	} else if (store_meta_get("journal_id", fstd.journal_id,
	    sizeof fstd.journal_id) != 0)
		fstd.journal_id[0] = '\0';
	if (store_seq_start(err, errlen) != 0)
		goto fail;
	return 0;
fail:
	for (i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(store_st[i]);
		store_st[i] = NULL;
	}
	sqlite3_close(store_db);
	store_db = NULL;
	return -1;
}

/* Read a meta value; -1 if absent. */
int
store_meta_get(const char *key, char *out, size_t outlen)
{
	sqlite3_stmt	*st;
	int		 rc = -1;

	if (sqlite3_prepare_v2(store_db, "SELECT value FROM meta WHERE key = ?",
	    -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
		snprintf(out, outlen, "%s", sqlite3_column_text(st, 0));
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/* The highest snapshot id, 0 if there is none.  Main thread, at start-up. */
int64_t
store_max_snapshot(void)
{
	sqlite3_stmt	*st;
	int64_t		 v = 0;

	if (sqlite3_prepare_v2(store_db, "SELECT coalesce(max(id), 0) FROM "
	    "snapshots", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * Find the filesystem's row by identity (UUID, else fsid) or create it, and
 * load its checkpoint.  *gap_reason is set (non-empty) when history for this
 * filesystem cannot be continued: first tracked now while snapshots already
 * exist, or another filesystem was tracked at this mount point before.
 * Main thread, at start-up.
 */
int
store_fs_attach(struct fst_fs *fs, int64_t *snapshot, char *gap_reason,
    size_t gaplen)
{
	sqlite3_stmt	*st;
	int		 rc, found = 0;
	const char	*sql;

	gap_reason[0] = '\0';
	if (fs->uuid[0] != '\0')
		sql = "SELECT id, checkpoint_ns FROM filesystems WHERE uuid = ?1 "
		    "AND fstype = ?3 ORDER BY id DESC LIMIT 1";
	else
		sql = "SELECT id, checkpoint_ns FROM filesystems WHERE uuid = '' "
		    "AND fsid = ?2 AND fstype = ?3 ORDER BY id DESC LIMIT 1";
	if (sqlite3_prepare_v2(store_db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, fs->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, fs->fsid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, fs->fstype, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		found = 1;
		fs->id = sqlite3_column_int64(st, 0);
		fs->checkpoint_ns = sqlite3_column_type(st, 1) == SQLITE_NULL ?
		    0 : sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	if (found) {
		if (sqlite3_prepare_v2(store_db, "UPDATE filesystems SET "
		    "mountpoint = ?, fsid = ?, state = 'tracked' WHERE id = ?",
		    -1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_text(st, 1, fs->mountpoint, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, fs->fsid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, fs->id);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			goto fail;
		if (fs->checkpoint_ns == 0)
			snprintf(gap_reason, gaplen, "no checkpoint was ever "
			    "written for this filesystem");
		return 0;
	}

	/* A filesystem we have not seen: is another one known here? */
	if (*snapshot > 0) {
		if (sqlite3_prepare_v2(store_db, "SELECT count(*) FROM "
		    "filesystems WHERE mountpoint = ? AND state != 'replaced'",
		    -1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_text(st, 1, fs->mountpoint, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0))
			snprintf(gap_reason, gaplen, "a different filesystem "
			    "is now mounted at %s", fs->mountpoint);
		else
			snprintf(gap_reason, gaplen, "filesystem first "
			    "tracked now");
		sqlite3_finalize(st);
		if (sqlite3_prepare_v2(store_db, "UPDATE filesystems SET state "
		    "= 'replaced' WHERE mountpoint = ?", -1, &st, NULL) !=
		    SQLITE_OK)
			goto fail;
		sqlite3_bind_text(st, 1, fs->mountpoint, -1, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(store_db, "INSERT INTO filesystems(mountpoint, "
	    "fstype, fsid, uuid, added_at, added_snapshot) VALUES "
	    "(?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, fs->mountpoint, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, fs->fstype, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, fs->fsid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, fs->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, time(NULL));
	sqlite3_bind_int64(st, 6, *snapshot);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	fs->id = sqlite3_last_insert_rowid(store_db);
	fs->checkpoint_ns = 0;
	fs->is_new = 1;
	return 0;
fail:
	log_warnx("database: %s", sqlite3_errmsg(store_db));
	return -1;
}

/*
 * Where the strings of an operation of op's type are: f[0] and f[1] point
 * to its string fields, NULL past the last one.
 */
static void
store_op_string_fields(struct store_op *op, const char **f[2])
{
	f[0] = f[1] = NULL;
	switch (op->type) {
	case OP_CHANGE:
		f[0] = &op->change.dir_path;
		f[1] = &op->change.name;
		break;
	case OP_DIR_MOVE:
		f[0] = &op->dir_move.from;
		f[1] = &op->dir_move.to;
		break;
	case OP_GAP:
		f[0] = &op->gap.reason;
		break;
	case OP_CONSUMER_SET:
		f[0] = &op->consumer_set.name;
		break;
	case OP_CONSUMER_DELETE:
		f[0] = &op->consumer_delete.name;
		break;
	case OP_META:
		f[0] = &op->meta.key;
		f[1] = &op->meta.value;
		break;
	default:
		break;
	}
}

/*
 * A copy of the operation tmpl (its type and member; the rest zero) in
 * one allocation with copies of its strings, which it owns; tmpl's
 * strings stay the caller's.  Exits when out of memory.
 */
static struct store_op *
store_op_make(struct store_op *tmpl)
{
	struct store_op	 *op;
	const char	**f[2];
	size_t		  len[2] = { 0, 0 };
	char		 *p;
	int		  i;

	store_op_string_fields(tmpl, f);
	for (i = 0; i < 2; i++)
		if (f[i] != NULL && *f[i] != NULL)
			len[i] = strlen(*f[i]) + 1;
	if ((op = malloc(sizeof *op + len[0] + len[1])) == NULL)
		fatal("out of memory");
	*op = *tmpl;
	store_op_string_fields(op, f);
	for (i = 0, p = op->strings; i < 2; p += len[i++])
		if (len[i] != 0)
			*f[i] = memcpy(p, *f[i], len[i]);
	return op;
}

/*
 * Entry name (".": the directory itself) of directory dir of filesystem
 * fs_id changed in the ways kinds (FST_M_*) during snapshot; dir_path is
 * its path if known (a hint for a new dirs row; NULL: from the handle).
 */
struct store_op *
store_op_change(int64_t snapshot, int64_t fs_id, const struct fst_handle *dir,
    const char *dir_path, const char *name, uint32_t kinds)
{
	return store_op_make(&(struct store_op){ .type = OP_CHANGE,
	    .change = { .snapshot = snapshot, .fs_id = fs_id, .dir = *dir,
	    .dir_path = dir_path, .name = name, .kinds = kinds } });
}

/* The directory at path from of filesystem fs_id, and its subtree, is at to. */
struct store_op *
store_op_dir_move(int64_t fs_id, const char *from, const char *to)
{
	return store_op_make(&(struct store_op){ .type = OP_DIR_MOVE,
	    .dir_move = { .fs_id = fs_id, .from = from, .to = to } });
}

/* Directory dir of filesystem fs_id was removed (its row keeps its path). */
struct store_op *
store_op_dir_gone(int64_t fs_id, const struct fst_handle *dir)
{
	return store_op_make(&(struct store_op){ .type = OP_DIR_GONE,
	    .dir_gone = { .fs_id = fs_id, .dir = *dir } });
}

/*
 * Snapshot id began at started_ns (a row exists already: nothing); arms
 * older than the snapshot before it go.
 */
struct store_op *
store_op_snapshot(int64_t id, int64_t started_ns)
{
	return store_op_make(&(struct store_op){ .type = OP_SNAPSHOT,
	    .snapshot = { .id = id, .started_ns = started_ns } });
}

/*
 * History of filesystem fs_id (0: of every one) is incomplete in snapshot
 * and later ones, found at at_ns, for reason.
 */
struct store_op *
store_op_gap(int64_t fs_id, int64_t snapshot, int64_t at_ns,
    const char *reason)
{
	return store_op_make(&(struct store_op){ .type = OP_GAP,
	    .gap = { .fs_id = fs_id, .snapshot = snapshot, .at_ns = at_ns,
	    .reason = reason } });
}

/*
 * Every change on filesystem fs_id before ns is recorded (by the
 * operations submitted before this one); a checkpoint never moves back.
 */
struct store_op *
store_op_checkpoint(int64_t fs_id, int64_t ns)
{
	return store_op_make(&(struct store_op){ .type = OP_CHECKPOINT,
	    .checkpoint = { .fs_id = fs_id, .ns = ns } });
}

/*
 * The checkpoint of filesystem fs_id is ns even if it was later (the clock
 * stepped back; a gap covers the time in between).
 */
struct store_op *
store_op_checkpoint_reset(int64_t fs_id, int64_t ns)
{
	return store_op_make(&(struct store_op){ .type = OP_CHECKPOINT,
	    .checkpoint = { .fs_id = fs_id, .ns = ns, .reset = 1 } });
}

/* Consumer name's cursor is snapshot cursor, it succeeded now. */
struct store_op *
store_op_consumer_set(const char *name, int64_t cursor)
{
	return store_op_make(&(struct store_op){ .type = OP_CONSUMER_SET,
	    .consumer_set = { .name = name, .cursor = cursor } });
}

/* Consumer name goes (consumer_delete.deleted says whether it existed). */
struct store_op *
store_op_consumer_delete(const char *name)
{
	return store_op_make(&(struct store_op){ .type = OP_CONSUMER_DELETE,
	    .consumer_delete = { .name = name } });
}

/*
 * History below snapshot before goes (0: what the retention policy
 * allows), except what an active consumer pins (prune.pruned_to: the
 * oldest snapshot kept, 0 if nothing went).
 */
struct store_op *
store_op_prune(int64_t before)
{
	return store_op_make(&(struct store_op){ .type = OP_PRUNE,
	    .prune = { .before = before } });
}

/*
 * A query since snapshot since (since_seq 0) or the position (since,
 * since_seq) is about to read: refresh the paths of the directories it
 * reads from their handles.
 */
struct store_op *
store_op_barrier(int64_t since, int64_t since_seq)
{
	return store_op_make(&(struct store_op){ .type = OP_BARRIER,
	    .barrier = { .since = since, .since_seq = since_seq } });
}

/*
 * store_op_barrier, and a position is taken with it in snapshot
 * position_snapshot (POSITIONS).
 */
struct store_op *
store_op_barrier_position(int64_t since, int64_t since_seq,
    int64_t position_snapshot)
{
	return store_op_make(&(struct store_op){ .type = OP_BARRIER,
	    .barrier = { .since = since, .since_seq = since_seq,
	    .take_position = 1, .position_snapshot = position_snapshot } });
}

/* Filesystem fs_id is now in state (filesystems.state). */
struct store_op *
store_op_fs_state(int64_t fs_id, enum fst_fs_state state)
{
	return store_op_make(&(struct store_op){ .type = OP_FS_STATE,
	    .fs_state = { .fs_id = fs_id, .state = state } });
}

/* Writes may follow in directory dir of filesystem fs_id in snapshot. */
struct store_op *
store_op_arm(int64_t snapshot, int64_t fs_id, const struct fst_handle *dir)
{
	return store_op_make(&(struct store_op){ .type = OP_ARM,
	    .arm = { .snapshot = snapshot, .fs_id = fs_id, .dir = *dir } });
}

/*
 * After an unclean stop: the directories armed in the newest two
 * snapshots become changes (".", armed) of snapshot into, and every arm
 * goes (promote_arms.promoted: how many).
 */
struct store_op *
store_op_promote_arms(int64_t into)
{
	return store_op_make(&(struct store_op){ .type = OP_PROMOTE_ARMS,
	    .promote_arms = { .into = into } });
}

/* Every arm goes (those of the last run died with its marks). */
struct store_op *
store_op_clear_arms(void)
{
	return store_op_make(&(struct store_op){ .type = OP_CLEAR_ARMS });
}

/* Meta key is value. */
struct store_op *
store_op_meta(const char *key, const char *value)
{
	return store_op_make(&(struct store_op){ .type = OP_META,
	    .meta = { .key = key, .value = value } });
}

/* A position is taken in snapshot (POSITIONS): its number is this op's. */
struct store_op *
store_op_position(int64_t snapshot)
{
	return store_op_make(&(struct store_op){ .type = OP_POSITION,
	    .position = { .snapshot = snapshot } });
}

/*
 * Nothing: once it is committed (durably if durable), so is everything
 * submitted before it.
 */
struct store_op *
store_op_sync(void)
{
	return store_op_make(&(struct store_op){ .type = OP_SYNC });
}

/* Free an operation (its strings are in the same allocation); NULL is fine. */
void
store_op_free(struct store_op *op)
{
	free(op);
}

/* Append op to the queue and number it.  Caller holds store_lock. */
static uint64_t
store_enqueue_locked(struct store_op *op)
{
	op->next = NULL;
	op->seq = store_next_seq++;
	if (store_qhead == NULL)
		store_wake = 1;		/* the writer may sleep on it */
	*store_qtail = op;
	store_qtail = &op->next;
	if ((op->durable && !op->unhurried) || op->done != NULL) {
		if (!store_urgent)
			store_wake = 1;
		store_urgent = 1;
	} else if (op->durable && !store_unhurried) {
		if (!store_urgent)
			store_wake = 1;	/* the batch's wait gets shorter */
		store_unhurried = 1;
	}
	atomic_fetch_add(&fstd.st.queue_depth, 1);
	return op->seq;
}

/*
 * Whether op is a record that the backlog bound may drop (OP_CHANGE,
 * OP_DIR_MOVE, OP_DIR_GONE): then *fs_id is its filesystem and *snapshot
 * its snapshot (0: none of its own).
 */
static int
store_op_is_record(const struct store_op *op, int64_t *fs_id,
    int64_t *snapshot)
{
	*snapshot = 0;
	switch (op->type) {
	case OP_CHANGE:
		*fs_id = op->change.fs_id;
		*snapshot = op->change.snapshot;
		return 1;
	case OP_DIR_MOVE:
		*fs_id = op->dir_move.fs_id;
		return 1;
	case OP_DIR_GONE:
		*fs_id = op->dir_gone.fs_id;
		return 1;
	default:
		return 0;
	}
}

/*
 * Past the backlog bound while commits fail, a record (store_op_is_record,
 * nobody waiting on its callback) is not kept:
 * unless a gap for its filesystem in its snapshot or a later one is
 * already queued, one is queued now, ahead of every later operation --
 * so no checkpoint commits without it, and a query since that snapshot
 * or earlier says "history incomplete" instead of missing the record.
 * Paths that a dropped move or removal would have fixed are refreshed
 * from the handles at the next barrier.  Returns the gap's snapshot when
 * op is to be dropped (*op_fs_id is then its filesystem, and *gap_queued
 * 1 if a gap was queued for it), 0 when it is kept.  Caller holds
 * store_lock.
 */
static int64_t
store_shed_locked(const struct store_op *op, int *gap_queued,
    int64_t *op_fs_id)
{
	struct store_op	*gap;
	struct fst_fs	*fs = NULL;
	int64_t		 snap, op_snap, fs_id, *shed;
	int		 i;

	*gap_queued = 0;
	if (!atomic_load(&store_failing) ||
	    atomic_load(&fstd.st.queue_depth) < store_backlog_max ||
	    op->done != NULL || !store_op_is_record(op, &fs_id, &op_snap))
		return 0;
	snap = atomic_load(&fstd.cur_snapshot);
	if (op_snap > snap)
		snap = op_snap;
	*op_fs_id = fs_id;
	for (i = 0; i < fstd.nfs && fs == NULL; i++)
		if (fstd.fs[i].id == fs_id)
			fs = &fstd.fs[i];
	if (fs != NULL)
		shed = &fs->shed_snapshot;
	else {		/* not a tracked filesystem: a gap for every one */
		shed = &store_shed_untracked;
		fs_id = 0;
	}
	if (*shed >= snap && *shed != 0)
		return snap;
	gap = store_op_gap(fs_id, snap, now_ns(), "records dropped while the "
	    "database could not commit (backlog full)");
	gap->durable = 1;
	store_enqueue_locked(gap);
	*shed = snap;
	*gap_queued = 1;
	return snap;
}

/*
 * Queue an operation for the writer; it is owned by the store from now on.
 * Returns its sequence number: once store_committed() reaches it, the
 * operation is in the database (durably if op->durable), or, if it was
 * dropped past the backlog bound (store_shed_locked), the gap that
 * replaces it is.  Any thread.
 */
uint64_t
store_submit(struct store_op *op)
{
	uint64_t	seq;
	int64_t		snap, fs_id = 0;
	int		gap_queued, wake;

	pthread_mutex_lock(&store_lock);
	if ((snap = store_shed_locked(op, &gap_queued, &fs_id)) != 0) {
		seq = store_next_seq - 1;
		atomic_fetch_add(&fstd.st.records_dropped, 1);
	} else
		seq = store_enqueue_locked(op);
	wake = store_wake;
	store_wake = 0;
	pthread_mutex_unlock(&store_lock);
	/* after the unlock: a writer woken under the lock would block on it */
	if (wake)
		pthread_cond_signal(&store_cond);
	if (snap != 0) {
		store_op_free(op);
		if (gap_queued)
			log_warnx("database cannot commit and %llu operations "
			    "are queued: records of filesystem %lld dropped, "
			    "gap queued in snapshot %lld",
			    (unsigned long long)store_backlog_max,
			    (long long)fs_id, (long long)snap);
	}
	return seq;
}

/*
 * Someone waits for seq after all -- a second open in a directory whose
 * unhurried arm is queued, a writer parked on it: end the writer's wait for
 * company, so that what is queued commits now.  Any thread.
 */
void
store_hurry(uint64_t seq)
{
	int	wake = 0;

	if (seq <= store_committed())
		return;
	pthread_mutex_lock(&store_lock);
	/* the queue is in seq order: is seq still in it, not in flight? */
	if (!store_urgent && store_qhead != NULL && store_qhead->seq <= seq)
		store_urgent = wake = 1;
	pthread_mutex_unlock(&store_lock);
	if (wake)
		pthread_cond_signal(&store_cond);
}

/*
 * Queue ops[0..n-1] in that order with one wake-up of the writer (a walk
 * that arms thousands of directories must not wake it thousands of times).
 * Their sequence numbers are consecutive; returns the first.  None is
 * dropped past the backlog bound (perm.c's arms go this way, and an arm
 * must not be replaced by a gap: see perm.c).  Any thread.
 */
uint64_t
store_submit_many(struct store_op **ops, int n)
{
	uint64_t	first;
	int		i, wake;

	pthread_mutex_lock(&store_lock);
	first = store_next_seq;
	for (i = 0; i < n; i++)
		store_enqueue_locked(ops[i]);
	wake = store_wake;
	store_wake = 0;
	pthread_mutex_unlock(&store_lock);
	if (wake)	/* after the unlock, as above */
		pthread_cond_signal(&store_cond);
	return first;
}

/*
 * Record that history of fs (NULL: every tracked filesystem) is incomplete
 * in the current snapshot: queries since it or earlier say so.  Any
 * thread (it only queues a durable OP_GAP).
 */
void
store_record_gap(struct fst_fs *fs, const char *reason)
{
	struct store_op	*op;
	int64_t		 snap;
	int		 i;

	for (i = 0; i < fstd.nfs; i++) {
		if (fs != NULL && &fstd.fs[i] != fs)
			continue;
		snap = atomic_load(&fstd.cur_snapshot);
		op = store_op_gap(fstd.fs[i].id, snap, now_ns(), reason);
		op->durable = 1;
		log_warnx("gap recorded for '%s' in snapshot %lld: %s",
		    fstd.fs[i].mountpoint, (long long)snap, reason);
		store_submit(op);
	}
}

/*
 * Whether the writer's queue is full: a reader of events should pause
 * (the kernel keeps them) until it has room.  Never while commits fail:
 * then records are kept in memory as before (invariant 6), and waiting
 * would only stop the daemon from saying it is degraded.  Any thread,
 * once store_start() returned.
 */
int
store_queue_full(void)
{
	return atomic_load(&fstd.st.queue_depth) >= STORE_QUEUE_HIGH &&
	    !atomic_load(&store_failing);
}

/*
 * Wait until the writer's queue has room (see store_queue_full), for
 * threads that must go on reading (a drain, a rescan walker).  Re-checks
 * every 100 ms in case commits start failing meanwhile.  Never call it
 * from the writer, nor holding a lock the writer takes.
 */
void
store_wait_room(void)
{
	struct timespec	until;

	pthread_mutex_lock(&store_lock);
	while (store_queue_full() && !store_stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&store_room, &store_lock, &until);
	}
	pthread_mutex_unlock(&store_lock);
}

/* Tests: the backlog bound while commits fail (STORE_BACKLOG_MAX). */
void
store_set_backlog_max(uint64_t n)
{
	store_backlog_max = n;
}

/*
 * Tests: retry a failed commit after first_ms, doubling up to max_ms,
 * instead of 50 ms up to 1 s.  Before store_start().
 */
void
store_set_retry(int first_ms, int max_ms)
{
	store_retry_ms = first_ms;
	store_retry_max_ms = max_ms;
}

/* The highest sequence number known to be committed. */
uint64_t
store_committed(void)
{
	return atomic_load(&store_committed_seq);
}

/*
 * The database's number of operation opseq (POSITIONS): what a position
 * taken with that operation says, once it committed.  Any thread.
 */
int64_t
store_position_seq(uint64_t opseq)
{
	return store_seq_base + (int64_t)opseq;
}

/*
 * Rows of snapshots up to snap get sequence numbers from the start of this
 * run (POSITIONS, P2).  Main thread, before store_start().
 */
void
store_positions_init(int64_t snap)
{
	store_pos_snapshot = snap;
}

/* An eventfd that becomes readable after every commit (for perm.c). */
int
store_event_fd(void)
{
	return store_evfd;
}

/* Look up or create the dirs row of a handle; 0 if it cannot be made. */
static int64_t
store_dir_id(int64_t fs_id, const struct fst_handle *h, const char *hint)
{
	sqlite3_stmt	*st;
	unsigned char	 blob[4 + FST_HANDLE_MAX];
	size_t		 bloblen;
	int64_t		 id = 0;
	char		 path[PATH_MAX];
	int		 i, rc, gone = 0;

	handle_to_blob(h, blob, &bloblen);
	st = store_st[ST_DIR_FIND];
	sqlite3_bind_int64(st, 1, fs_id);
	sqlite3_bind_blob(st, 2, blob, bloblen, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		gone = sqlite3_column_int(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return 0;	/* an I/O error is not "no such directory" */
	if (id != 0 && gone) {
		/*
		 * Something changed in a directory we thought removed: it is
		 * there (a power cut can lose the removal while the database
		 * kept it).  Its path is refreshed at the next query.
		 */
		char sql[96];

		snprintf(sql, sizeof sql, "UPDATE dirs SET gone = 0 WHERE id = "
		    "%lld", (long long)id);
		if (store_exec(sql) != 0)
			return 0;
	}
	if (id != 0)
		return id;
	if (hint == NULL) {
		hint = "?";
		for (i = 0; i < fstd.nfs; i++) {
			if (fstd.fs[i].id == fs_id &&
			    handle_path(fstd.fs[i].mount_fd, h, path,
			    sizeof path) == 0) {
				hint = path;
				break;
			}
		}
	}
	st = store_st[ST_DIR_INSERT];
	sqlite3_bind_int64(st, 1, fs_id);
	sqlite3_bind_blob(st, 2, blob, bloblen, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, hint, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		id = sqlite3_last_insert_rowid(store_db);
	sqlite3_reset(st);
	return id;
}

/* Step a prepared statement to completion and reset it. */
static int
store_step(int which)
{
	int	rc = sqlite3_step(store_st[which]);

	sqlite3_reset(store_st[which]);
	sqlite3_clear_bindings(store_st[which]);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/*
 * Refresh dirs.path from the handles of every directory changed since
 * snapshot since, or, since_seq not 0, since the position (since,
 * since_seq): the path a query prints is where the directory is now,
 * whatever renames happened and in whatever order their events came.  The
 * directories come from FST_SQL_CHANGED_PAIRS: a barrier costs a few
 * searches per directory, not a read of every change row.
 */
static int
store_refresh_paths(int64_t since, int64_t since_seq)
{
	sqlite3_stmt		*st, *up, *gone;
	struct fst_handle	 h;
	char			 path[PATH_MAX];
	int64_t			 fs_id, id;
	const char		*old;
	int			 i, rc = 0, src, mfd;

	if (sqlite3_prepare_v2(store_db, since_seq == 0 ?
	    FST_SQL_CHANGED_PAIRS "SELECT DISTINCT d.id, d.fs_id, d.handle, "
	    "d.path, d.gone FROM k JOIN dirs d ON d.id = k.d" :
	    FST_SQL_CHANGED_PAIRS "SELECT d.id, d.fs_id, d.handle, d.path, "
	    "d.gone FROM (SELECT k.d AS x FROM k UNION SELECT dir_id FROM "
	    "changes WHERE seq > ?2) JOIN dirs d ON d.id = x", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(store_db, "UPDATE dirs SET path = ?, gone = 0 "
	    "WHERE id = ?", -1, &up, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return -1;
	}
	if (sqlite3_prepare_v2(store_db, "UPDATE dirs SET gone = 1 WHERE id = ?",
	    -1, &gone, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		sqlite3_finalize(up);
		return -1;
	}
	if (since_seq == 0)
		sqlite3_bind_int64(st, 1, since);
	else {
		/* since a position: later snapshots, and later numbers */
		sqlite3_bind_int64(st, 1, since + 1);
		sqlite3_bind_int64(st, 2, since_seq);
	}
	while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		fs_id = sqlite3_column_int64(st, 1);
		if (handle_from_blob(&h, sqlite3_column_blob(st, 2),
		    sqlite3_column_bytes(st, 2)) != 0)
			continue;
		old = (const char *)sqlite3_column_text(st, 3);
		mfd = -1;
		for (i = 0; i < fstd.nfs; i++)
			if (fstd.fs[i].id == fs_id &&
			    fstd.fs[i].state == FS_TRACKED)
				mfd = fstd.fs[i].mount_fd;
		if (mfd == -1)
			continue;
		if (handle_path(mfd, &h, path, sizeof path) == 0) {
			if (old == NULL || strcmp(old, path) != 0 ||
			    sqlite3_column_int(st, 4)) {
				sqlite3_bind_text(up, 1, path, -1,
				    SQLITE_TRANSIENT);
				sqlite3_bind_int64(up, 2, id);
				if (sqlite3_step(up) != SQLITE_DONE)
					rc = -1;
				sqlite3_reset(up);
			}
		} else if ((errno == ESTALE || errno == ENOENT) &&
		    !sqlite3_column_int(st, 4)) {
			sqlite3_bind_int64(gone, 1, id);
			if (sqlite3_step(gone) != SQLITE_DONE)
				rc = -1;
			sqlite3_reset(gone);
		}
	}
	/* A read that failed is not the end of the list (stale paths). */
	if (rc == 0 && src != SQLITE_DONE)
		rc = -1;
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	sqlite3_finalize(gone);
	return rc;
}

/*
 * The integer in the first column of the first row of sql into *out, or
 * dflt when there is no row or it is NULL; -1 if the query fails (then the
 * transaction may be gone: see store_commit_batch).
 */
static int
store_query_int(const char *sql, int64_t dflt, int64_t *out)
{
	sqlite3_stmt	*st;
	int		 rc;

	*out = dflt;
	if (sqlite3_prepare_v2(store_db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Drop history no consumer needs.  before == 0 applies the retention policy
 * of the configuration; otherwise everything below snapshot before goes.
 * Active consumers (successful within consumer-idle-days) pin their cursor.
 * Any failed read fails the prune: a pin read as "none" would drop history
 * a consumer still needs.
 */
static int
store_prune(int64_t before, int64_t *pruned_to)
{
	int64_t		 cur = atomic_load(&fstd.cur_snapshot), keep, pin, v;
	int64_t		 now = time(NULL), oldest;
	char		 sql[512];

	*pruned_to = 0;
	if (before == 0) {
		/* Ids are not consecutive: keep the N newest by rank. */
		snprintf(sql, sizeof sql, "SELECT id FROM snapshots ORDER BY id "
		    "DESC LIMIT 1 OFFSET %ld", fstd.cfg.retention_snapshots - 1);
		if (store_query_int(sql, 0, &keep) != 0)
			return -1;
		if (fstd.cfg.retention_days > 0) {
			snprintf(sql, sizeof sql, "SELECT coalesce(min(id), 0) "
			    "FROM snapshots WHERE started_at >= %lld",
			    (long long)(now - fstd.cfg.retention_days * 86400));
			if (store_query_int(sql, 0, &v) != 0)
				return -1;
			if (v > keep)
				keep = v;
		}
	} else
		keep = before;
	if (keep > cur)
		keep = cur;
	snprintf(sql, sizeof sql, "SELECT min(cursor) FROM consumers WHERE "
	    "coalesce(last_success, created_at) >= %lld",
	    (long long)(now - fstd.cfg.consumer_idle_days * 86400));
	if (store_query_int(sql, 0, &pin) != 0)
		return -1;
	if (pin > 0 && pin < keep)
		keep = pin;
	if (store_query_int("SELECT coalesce(min(id), 0) FROM snapshots", 0,
	    &oldest) != 0)
		return -1;
	if (keep <= oldest)
		return 0;
	snprintf(sql, sizeof sql,
	    "DELETE FROM changes WHERE snapshot < %lld;"
	    "DELETE FROM gaps WHERE snapshot < %lld;"
	    "DELETE FROM snapshots WHERE id < %lld;"
	    "DELETE FROM dirs WHERE NOT EXISTS (SELECT 1 FROM changes "
	    "WHERE changes.dir_id = dirs.id);"
	    "INSERT INTO meta VALUES ('oldest_snapshot', '%lld') "
	    "ON CONFLICT(key) DO UPDATE SET value = excluded.value;",
	    (long long)keep, (long long)keep, (long long)keep, (long long)keep);
	if (store_exec(sql) != 0)
		return -1;
	*pruned_to = keep;
	return 0;
}

/*
 * After an unclean stop: every directory armed in the newest two snapshots
 * becomes a change (name ".", kind armed) in snapshot into; then every arm
 * row goes (arms of an earlier run are void: its marks died with it).  Why
 * the arms of the snapshot before the newest count too: an opener that
 * passed an ignore mark just before the snapshot switch flushed it may
 * install its fd after openscan's walk of /proc (perm.c).  *count gets the
 * number promoted.  A failed read fails the whole operation (it is retried
 * with its batch), like a prune's.
 */
static int
store_promote_arms(int64_t into, int64_t seq, int64_t *count)
{
	sqlite3_stmt		*st;
	struct fst_handle	 h;
	char			 path[PATH_MAX];
	int64_t			 from = 0, id, fs_id;
	int			 rc, i, mfd;

	*count = 0;
	if (sqlite3_prepare_v2(store_db, "SELECT coalesce(max(id), 0) FROM "
	    "snapshots WHERE id < ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, into);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		from = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return -1;
	if (sqlite3_prepare_v2(store_db, "SELECT fs_id, handle FROM arms "
	    "WHERE snapshot >= ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, from);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (handle_from_blob(&h, sqlite3_column_blob(st, 1),
		    sqlite3_column_bytes(st, 1)) != 0)
			continue;
		fs_id = sqlite3_column_int64(st, 0);
		for (i = 0, mfd = -1; i < fstd.nfs; i++)
			if (fstd.fs[i].id == fs_id)
				mfd = fstd.fs[i].mount_fd;
		/*
		 * A directory that no longer opens (ESTALE) was removed: the
		 * removal changed its parent, which the start-up rescan finds.
		 * Any other failure (a path longer than PATH_MAX, a filesystem
		 * not tracked in this run) still promotes, with the last path
		 * known or "?".
		 */
		if (mfd != -1 && handle_path(mfd, &h, path, sizeof path) != 0 &&
		    (errno == ESTALE || errno == ENOENT))
			continue;
		if ((id = store_dir_id(fs_id, &h, NULL)) == 0) {
			rc = SQLITE_ERROR;
			break;
		}
		sqlite3_bind_int64(store_st[ST_CHANGE], 1, into);
		sqlite3_bind_int64(store_st[ST_CHANGE], 2, id);
		sqlite3_bind_text(store_st[ST_CHANGE], 3, ".", -1, SQLITE_STATIC);
		sqlite3_bind_int64(store_st[ST_CHANGE], 4, FST_M_ARMED);
		if (into <= store_pos_snapshot)
			sqlite3_bind_int64(store_st[ST_CHANGE], 5, seq);
		if (store_step(ST_CHANGE) != 0) {
			rc = SQLITE_ERROR;
			break;
		}
		(*count)++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	return store_exec("DELETE FROM arms");
}

/*
 * A position was taken in snapshot snap: from now on rows of that
 * snapshot get sequence numbers (POSITIONS, P2), and the next run knows
 * it.
 */
static int
store_position_taken(int64_t snap)
{
	char	buf[32];

	if (snap <= store_pos_snapshot)
		return 0;
	store_pos_snapshot = snap;
	snprintf(buf, sizeof buf, "%lld", (long long)snap);
	sqlite3_bind_text(store_st[ST_META], 1, "position_snapshot", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(store_st[ST_META], 2, buf, -1, SQLITE_TRANSIENT);
	return store_step(ST_META);
}

/* filesystems.state of a state. */
static const char *
store_fs_state_name(enum fst_fs_state state)
{
	switch (state) {
	case FS_TRACKED:
		return "tracked";
	case FS_GONE:
		return "gone";
	}
	return "?";
}

/*
 * Apply one operation inside the open transaction.  It may be applied
 * again after a failed commit (invariant 5): it reads only its request,
 * and writes only its "out" fields.
 */
static int
store_apply(struct store_op *op)
{
	sqlite3_stmt	*st;
	unsigned char	 blob[4 + FST_HANDLE_MAX];
	size_t		 bloblen;
	int64_t		 id;

	switch (op->type) {
	case OP_CHANGE:
		if ((id = store_dir_id(op->change.fs_id, &op->change.dir,
		    op->change.dir_path)) == 0)
			return -1;
		st = store_st[ST_CHANGE];
		sqlite3_bind_int64(st, 1, op->change.snapshot);
		sqlite3_bind_int64(st, 2, id);
		sqlite3_bind_text(st, 3, op->change.name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, op->change.kinds);
		if (op->change.snapshot <= store_pos_snapshot)
			sqlite3_bind_int64(st, 5, store_position_seq(op->seq));
		return store_step(ST_CHANGE);
	case OP_DIR_MOVE:
		st = store_st[ST_DIR_MOVE];
		sqlite3_bind_int64(st, 1, op->dir_move.fs_id);
		sqlite3_bind_text(st, 2, op->dir_move.from, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, op->dir_move.to, -1, SQLITE_STATIC);
		return store_step(ST_DIR_MOVE);
	case OP_DIR_GONE:
		handle_to_blob(&op->dir_gone.dir, blob, &bloblen);
		st = store_st[ST_DIR_GONE];
		sqlite3_bind_int64(st, 1, op->dir_gone.fs_id);
		sqlite3_bind_blob(st, 2, blob, bloblen, SQLITE_TRANSIENT);
		return store_step(ST_DIR_GONE);
	case OP_SNAPSHOT:
		st = store_st[ST_SNAPSHOT];
		sqlite3_bind_int64(st, 1, op->snapshot.id);
		sqlite3_bind_int64(st, 2, op->snapshot.started_ns / 1000000000);
		sqlite3_bind_int64(st, 3, op->snapshot.started_ns);
		if (store_step(ST_SNAPSHOT) != 0)
			return -1;
		/* Arms matter for this snapshot and the one before only. */
		sqlite3_bind_int64(store_st[ST_ARMS_TRIM], 1, op->snapshot.id);
		return store_step(ST_ARMS_TRIM);
	case OP_ARM:
		handle_to_blob(&op->arm.dir, blob, &bloblen);
		st = store_st[ST_ARM];
		sqlite3_bind_int64(st, 1, op->arm.snapshot);
		sqlite3_bind_int64(st, 2, op->arm.fs_id);
		sqlite3_bind_blob(st, 3, blob, bloblen, SQLITE_TRANSIENT);
		return store_step(ST_ARM);
	case OP_PROMOTE_ARMS:
		return store_promote_arms(op->promote_arms.into,
		    store_position_seq(op->seq), &op->promote_arms.promoted);
	case OP_CLEAR_ARMS:
		return store_exec("DELETE FROM arms");
	case OP_META:
		st = store_st[ST_META];
		sqlite3_bind_text(st, 1, op->meta.key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, op->meta.value, -1, SQLITE_STATIC);
		return store_step(ST_META);
	case OP_GAP:
		st = store_st[ST_GAP];
		if (op->gap.fs_id != 0)
			sqlite3_bind_int64(st, 1, op->gap.fs_id);
		else
			sqlite3_bind_null(st, 1);
		sqlite3_bind_int64(st, 2, op->gap.snapshot);
		sqlite3_bind_int64(st, 3, op->gap.at_ns / 1000000000);
		sqlite3_bind_text(st, 4, op->gap.reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, store_position_seq(op->seq));
		return store_step(ST_GAP);
	case OP_CHECKPOINT:
		st = store_st[ST_CHECKPOINT];
		sqlite3_bind_int64(st, 1, op->checkpoint.ns);
		sqlite3_bind_int64(st, 2, op->checkpoint.fs_id);
		sqlite3_bind_int(st, 3, op->checkpoint.reset);
		return store_step(ST_CHECKPOINT);
	case OP_FS_STATE:
		st = store_st[ST_FS_STATE];
		sqlite3_bind_text(st, 1,
		    store_fs_state_name(op->fs_state.state), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, op->fs_state.fs_id);
		return store_step(ST_FS_STATE);
	case OP_CONSUMER_SET:
		st = store_st[ST_CONSUMER_SET];
		sqlite3_bind_text(st, 1, op->consumer_set.name, -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, op->consumer_set.cursor);
		sqlite3_bind_int64(st, 3, time(NULL));
		return store_step(ST_CONSUMER_SET);
	case OP_CONSUMER_DELETE:
		st = store_st[ST_CONSUMER_DELETE];
		sqlite3_bind_text(st, 1, op->consumer_delete.name, -1,
		    SQLITE_STATIC);
		if (store_step(ST_CONSUMER_DELETE) != 0)
			return -1;
		op->consumer_delete.deleted = sqlite3_changes(store_db) > 0;
		return 0;
	case OP_PRUNE:
		return store_prune(op->prune.before, &op->prune.pruned_to);
	case OP_BARRIER:
		if (op->barrier.take_position &&
		    store_position_taken(op->barrier.position_snapshot) != 0)
			return -1;
		return store_refresh_paths(op->barrier.since,
		    op->barrier.since_seq);
	case OP_POSITION:
		return store_position_taken(op->position.snapshot);
	case OP_SYNC:
		return 0;
	}
	return -1;
}

/*
 * Whether the batch whose last operation is last must first reserve more
 * sequence numbers (POSITIONS, P1): then it is durable, and *limit is the
 * new limit.
 */
static int
store_seq_reserve(uint64_t last, int64_t *limit)
{
	int64_t	n = store_position_seq(last);

	if (n < store_seq_limit - STORE_SEQ_RESERVE / 2)
		return 0;
	*limit = n + STORE_SEQ_RESERVE;
	return 1;
}

/*
 * Apply a batch in one transaction; 0 on COMMIT, -1 after ROLLBACK.
 * limit, if not 0, is a new seq_limit, written first (the batch is then
 * durable).
 */
static int
store_commit_batch(struct store_op *batch, int durable, int64_t limit)
{
	struct store_op	*op;
	static int	 last_sync = -1;
	char		 buf[32];

	if (last_sync != durable) {
		if (store_exec(durable ? "PRAGMA synchronous = FULL" :
		    "PRAGMA synchronous = NORMAL") != 0)
			return -1;
		last_sync = durable;
	}
	if (sqlite3_exec(store_db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		store_set_error("begin");
		return -1;
	}
	if (limit != 0) {
		snprintf(buf, sizeof buf, "%lld", (long long)limit);
		sqlite3_bind_text(store_st[ST_META], 1, "seq_limit", -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(store_st[ST_META], 2, buf, -1,
		    SQLITE_TRANSIENT);
		if (store_step(ST_META) != 0)
			goto rollback;
		if (sqlite3_get_autocommit(store_db)) {
			store_set_error("write (transaction rolled back)");
			return -1;
		}
	}
	for (op = batch; op != NULL; op = op->next) {
		if (store_apply(op) != 0)
			goto rollback;
		/*
		 * An I/O error, SQLITE_FULL or SQLITE_NOMEM in any statement,
		 * a SELECT included, rolls the whole transaction back at
		 * once; the next statements would then each commit on their
		 * own (a checkpoint without the records before it).  So the
		 * batch ends here, whatever the operation made of the error.
		 */
		if (sqlite3_get_autocommit(store_db)) {
			store_set_error("write (transaction rolled back)");
			return -1;
		}
	}
	if (sqlite3_exec(store_db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		store_set_error("commit");
		sqlite3_exec(store_db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (limit != 0)
		store_seq_limit = limit;
	return 0;
rollback:
	store_set_error("write");
	sqlite3_exec(store_db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* The writer thread: take everything queued, commit it, repeat. */
static void *
store_main(void *arg)
{
	struct store_op	*batch, *op, *next, **tail;
	uint64_t	 last, one = 1;
	int64_t		 limit;
	int		 durable, n, backoff = 0, failing = 0, stop_tries = 0;

	for (;;) {
		pthread_mutex_lock(&store_lock);
		while (store_qhead == NULL && !store_stopping)
			pthread_cond_wait(&store_cond, &store_lock);
		if (store_qhead == NULL && store_stopping) {
			pthread_mutex_unlock(&store_lock);
			break;
		}
		/*
		 * Nobody waits for these records: let more join the batch for
		 * a few milliseconds (an untar then commits a few hundred
		 * times instead of thousands).  Anything urgent -- a held
		 * opener, a snapshot, a query -- ends the wait at once; a
		 * durable op that nobody waits for (op->unhurried: a read-open's
		 * arm) shortens it to STORE_UNHURRIED_MS, so that arms of
		 * directories read one after another share a commit and the
		 * permission thread one wake-up per commit, and store_hurry()
		 * ends it when somebody turns out to wait after all.
		 * Submitters wake the writer only when that changes its wait
		 * (store_wake).
		 */
		if (!store_urgent && !store_stopping) {
			struct timespec	start, until;

			clock_gettime(CLOCK_REALTIME, &start);
			do {
				until = start;
				until.tv_nsec += 1000000L * (store_unhurried ?
				    STORE_UNHURRIED_MS : STORE_BATCH_MS);
				if (until.tv_nsec >= 1000000000L) {
					until.tv_sec++;
					until.tv_nsec -= 1000000000L;
				}
			} while (!store_urgent && !store_stopping &&
			    pthread_cond_timedwait(&store_cond, &store_lock,
			    &until) == 0);
		}
		store_urgent = 0;
		store_unhurried = 0;
		batch = store_qhead;
		store_qhead = NULL;
		store_qtail = &store_qhead;
		pthread_mutex_unlock(&store_lock);

		for (;;) {
			durable = 0;
			n = 0;
			last = 0;
			tail = &batch;
			for (op = batch; op != NULL; op = op->next) {
				durable |= op->durable;
				last = op->seq;
				n++;
				tail = &op->next;
			}
			limit = 0;
			if (store_seq_reserve(last, &limit))
				durable = 1;
			if (store_commit_batch(batch, durable, limit) == 0)
				break;
			atomic_fetch_add(&fstd.st.commit_failures, 1);
			if (!failing)
				log_warnx("database commit failed (%s); "
				    "keeping %d records in memory and retrying",
				    store_last_error(), n);
			failing = 1;
			atomic_store(&store_failing, 1);
			pthread_cond_broadcast(&store_room);
			health_set_degraded(DEGRADED_STORE, store_last_error());
			backoff = backoff == 0 ? store_retry_ms : backoff * 2;
			if (backoff > store_retry_max_ms)
				backoff = store_retry_max_ms;
			usleep(backoff * 1000);
			/* Whatever arrived meanwhile joins the retry, in order. */
			pthread_mutex_lock(&store_lock);
			*tail = store_qhead;
			store_qhead = NULL;
			store_qtail = &store_qhead;
			/* At shutdown: this many more tries, whatever came before. */
			if (store_stopping && store_qhead == NULL &&
			    ++stop_tries > STORE_STOP_RETRIES) {
				pthread_mutex_unlock(&store_lock);
				goto giveup;
			}
			pthread_mutex_unlock(&store_lock);
		}
		if (failing) {
			log_warnx("database commits work again");
			health_clear_degraded(DEGRADED_STORE);
			atomic_store(&store_failing, 0);
			failing = 0;
			backoff = 0;
		}
		atomic_fetch_add(&fstd.st.commits, 1);
		if (durable)
			atomic_fetch_add(&fstd.st.durable_commits, 1);
		atomic_fetch_sub(&fstd.st.queue_depth, n);
		atomic_store(&store_committed_seq, last);
		if (store_evfd != -1 && write(store_evfd, &one, sizeof one) < 0) {
			/* counter saturation is harmless */
		}

		pthread_mutex_lock(&store_lock);
		pthread_cond_broadcast(&store_room);
		for (op = batch; op != NULL; op = next) {
			next = op->next;
			if (op->done != NULL) {
				op->next = store_done_head;
				store_done_head = op;
			} else
				store_op_free(op);
		}
		pthread_mutex_unlock(&store_lock);
		uv_async_send(&store_async);
	}
	return NULL;
giveup:
	log_warnx("database still failing at shutdown; %d records not "
	    "written: the next start-up reconcile covers them", n);
	for (op = batch; op != NULL; op = next) {
		next = op->next;
		store_op_free(op);
	}
	return NULL;
}

/* Main thread: run the completion callbacks of committed operations. */
static void
store_async_cb(uv_async_t *a)
{
	struct store_op	*list, *op, *next, *rev = NULL;

	pthread_mutex_lock(&store_lock);
	list = store_done_head;
	store_done_head = NULL;
	pthread_mutex_unlock(&store_lock);
	for (op = list; op != NULL; op = next) {	/* restore order */
		next = op->next;
		op->next = rev;
		rev = op;
	}
	for (op = rev; op != NULL; op = next) {
		next = op->next;
		op->done(op, 0, op->arg);
		store_op_free(op);
	}
}

/* Start the writer thread. */
int
store_start(void)
{
	if ((store_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1)
		return -1;
	if (uv_async_init(fstd.loop, &store_async, store_async_cb) != 0)
		return -1;
	if (pthread_create(&store_thread, NULL, store_main, NULL) != 0)
		return -1;
	(void)pthread_setname_np(store_thread, "fstrackd-writer");
	store_running = 1;
	return 0;
}

/*
 * Commit everything queued (or give up after STORE_STOP_RETRIES failed
 * tries), stop the writer, run the last done callbacks and close what
 * store_start made.  Nothing may be submitted after it, and nobody may
 * poll store_event_fd any more (perm_stop came first).  Main thread;
 * nothing to do if not started.
 */
void
store_stop(void)
{
	if (!store_running)
		return;
	pthread_mutex_lock(&store_lock);
	store_stopping = 1;
	pthread_cond_signal(&store_cond);
	pthread_cond_broadcast(&store_room);
	pthread_mutex_unlock(&store_lock);
	pthread_join(store_thread, NULL);
	store_running = 0;
	store_async_cb(&store_async);
	uv_close((uv_handle_t *)&store_async, NULL);
	close(store_evfd);
	store_evfd = -1;
}

/*
 * Close the database store_open opened, its WAL folded into it first.
 * After store_stop (if the writer was started); nothing to do if it is
 * not open.
 */
void
store_close(void)
{
	int	i;

	for (i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(store_st[i]);
		store_st[i] = NULL;
	}
	if (store_db != NULL) {
		sqlite3_exec(store_db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL,
		    NULL, NULL);
		sqlite3_close(store_db);
		store_db = NULL;
	}
}

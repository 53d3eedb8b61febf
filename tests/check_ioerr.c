/*
 * check_ioerr.c -- the store under injected I/O errors (tests/faultvfs.c).
 *
 * Each case fails the Nth call of one kind (xWrite, xSync, xOpen,
 * xTruncate, xRead, xFileSize) on the main database or its WAL, for N = 1,
 * 2, 3, ... until the whole operation sequence runs without reaching the
 * fault, in four modes:
 *   transient  the call fails once; the writer must retry and commit
 *              everything, and the daemon must not stay degraded;
 *   cleared    it fails from the Nth call on until the writer has failed
 *              twice, then the fault goes: everything queued must commit
 *              without a restart (the daemon recovers by itself);
 *   stop       it fails from the Nth call on and store_stop() is called
 *              while it still does (the writer gives up);
 *   crash      it fails once or for good, and the process dies (_exit, no
 *              store_stop) as soon as the writer saw a failed commit and
 *              before it retried.
 * Every run is a child process (store.c keeps its state in statics); the
 * parent then opens the database without faults and checks that it passes
 * PRAGMA integrity_check and the schema checks, that every operation the
 * child saw committed (store_committed(), done callbacks) is in it, and
 * that what is in it is a prefix of the sequence (a checkpoint never
 * passes a record it does not have).  When a suffix is missing, the run
 * must not have said "stopped": the next start-up then treats the stop as
 * unclean and rescans from the checkpoint (reconcile.c), which the prefix
 * check proves is older than every missing record.
 *
 * The last case starts from a database larger than the writer's page
 * cache and counts reads from store_start() on, so that the writer's own
 * statements (directory look-ups, a barrier, a prune) read the disk.
 *
 * IOERR_STRIDE=S (S > 1; .ci/run's sanitizer stage sets it, where each
 * run costs several times as much) samples the fault positions instead of
 * running them all: every case in every mode still runs, N = 1 to
 * IO_EDGE one by one, then every Sth position (from a starting point that
 * differs from one sweep to the next), and the end of the sweep is found
 * by bisection, so the last position that still reaches the fault and
 * the first that no longer does both run (io_sweep).
 *
 * Debugging: IOERR_CASE=I runs case I only; IOERR_VERBOSE=1 prints every
 * run; IOERR_DEBUG="I MODE N PERSISTENT" runs that one run and keeps its
 * database (the directory is printed).
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "faultvfs.h"
#include "fstrack.h"
#include "query.h"
#include "unit.h"

#define IO_STEPS	8
#define IO_MAX_N	2000
#define IO_MAX_OPS	128
/* With IOERR_STRIDE: the first positions, all run (see the top). */
#define IO_EDGE		8

enum io_mode { IO_TRANSIENT, IO_CLEARED, IO_STOP, IO_CRASH, IO_MODES };
static const char *io_mode_name[IO_MODES] = {
	"transient", "cleared", "stop", "crash"
};

/* What a child run saw, in memory shared with the parent. */
struct io_shared {
	int		 open_failed;
	int		 finished;	/* store_stop() returned */
	int		 hits;		/* calls the fault failed */
	int		 calls;		/* calls it counted */
	int		 degraded_seen;	/* health said so while failing */
	int		 degraded_after;	/* still degraded at the end */
	int		 commit_failures;
	uint64_t	 committed;	/* store_committed() last seen */
	uint64_t	 submitted;	/* last sequence number submitted */
	int		 done[IO_MAX_OPS];	/* done callback ran, by seq */
	int64_t		 value[IO_MAX_OPS];	/* a prune's pruned_to */
	char		 msg[256];
};

/* One operation of the sequence, as the parent knows it. */
struct io_op {
	enum store_op_type	 type;
	int64_t			 snapshot;
	int64_t			 value;
};

static char		*tmpdir;
static char		*io_template;
static struct io_shared	*sh;
static struct io_op	 io_ops[IO_MAX_OPS];
static uint64_t		 io_nops;

/*
 * A new temporary directory per test: in /dev/shm when there is one, for
 * thousands of runs cost thousands of fsyncs (the VFS still sees them).
 */
static void
io_setup(void)
{
	if (access("/dev/shm", W_OK) == 0) {
		tmpdir = strdup("/dev/shm/fstrack-ioerr.XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	} else
		tmpdir = unit_mkdtemp();
	ck_assert_int_eq(faultvfs_install(), SQLITE_OK);
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
}

/* Remove it. */
static void
io_teardown(void)
{
	munmap(sh, sizeof *sh);
	if (getenv("IOERR_KEEP") == NULL)
		unit_rmtree(tmpdir);
	free(tmpdir);
	free(io_template);
	io_template = NULL;
	tmpdir = NULL;
}

/* Run SQL on a connection of our own; fails the test on error. */
static void
io_exec(sqlite3 *db, const char *sql)
{
	char	*msg = NULL;

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
	    "%s: %s", sql, msg != NULL ? msg : "?");
}

/* An integer from the environment, or dflt. */
static int
io_getenv_int(const char *name, int dflt)
{
	return getenv(name) != NULL ? atoi(getenv(name)) : dflt;
}

#define IO_OLD_DIRS	1000
/* more than the writer's page cache */
#define IO_BIG_DIRS	io_getenv_int("IOERR_BIG", 30000)
static int	io_dirs = IO_OLD_DIRS;
static int	io_after_open;	/* the fault counts from store_start() on */

/*
 * The database every run starts from: one filesystem, snapshots 99 and
 * 100 with io_dirs directories and a change in each (so the first
 * barrier, prune and directory look-ups have pages to read), and an idle
 * consumer (it pins nothing).
 */
static void
io_make_template(void)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	struct fst_handle h;
	unsigned char	 blob[4 + FST_HANDLE_MAX];
	size_t		 len;
	char		 err[512];
	int		 created, i;

	if (asprintf(&io_template, "%s/template.db", tmpdir) == -1)
		abort();
	ck_assert_int_eq(sqlite3_open(io_template, &db), SQLITE_OK);
	ck_assert_msg(schema_check_or_create(db, &created, err, sizeof err) ==
	    0, "schema: %s", err);
	io_exec(db, "PRAGMA journal_mode = WAL; BEGIN;"
	    "INSERT INTO filesystems(id, mountpoint, fstype, fsid, added_at, "
	    "  added_snapshot) VALUES (1, '/m', 'ext4', 'f1', 0, 99);"
	    "INSERT INTO snapshots VALUES (99, 1764112100, 0), "
	    "  (100, 1764112200, 0);"
	    "INSERT INTO consumers VALUES ('idle', 99, 0, 0);");
	ck_assert_int_eq(sqlite3_prepare_v2(db, "INSERT INTO dirs(id, fs_id, "
	    "handle, path) VALUES (?, 1, ?, '/m/old/' || ?)", -1, &st, NULL),
	    SQLITE_OK);
	memset(&h, 0, sizeof h);
	h.type = 2;
	h.len = 8;
	for (i = 1; i <= io_dirs; i++) {
		memcpy(h.bytes, &i, sizeof i);
		handle_to_blob(&h, blob, &len);
		sqlite3_bind_int(st, 1, i);
		sqlite3_bind_blob(st, 2, blob, len, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 3, i);
		ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	io_exec(db, "INSERT INTO changes(snapshot, dir_id, name, mask) "
	    "SELECT 100, id, 'old', 1 FROM dirs;"
	    "INSERT INTO changes(snapshot, dir_id, name, mask) "
	    "SELECT 99, id, 'older', 1 FROM dirs WHERE id % 10 = 0; COMMIT;");
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

/* Copy the template to a new database path. */
static char *
io_new_db(void)
{
	static int	 n;
	unsigned char	*buf;
	size_t		 len;
	char		*path;

	if (asprintf(&path, "%s/run%d.db", tmpdir, n++) == -1)
		abort();
	ck_assert_ptr_nonnull(buf = unit_read_file(io_template, &len));
	ck_assert_int_eq(unit_write_file(path, buf, len), 0);
	free(buf);
	return path;
}

/* A done callback: note that seq committed (and what a prune did). */
static void
io_done(struct store_op *op, int err, void *arg)
{
	(void)arg;
	if (err == 0 && op->seq < IO_MAX_OPS) {
		sh->done[op->seq] = 1;
		if (op->type == OP_PRUNE)
			sh->value[op->seq] = op->prune.pruned_to;
	}
}

/* A change record named after its sequence number. */
static struct store_op *
io_change(uint64_t seq, int step)
{
	struct fst_handle	 h;
	char			 path[32], name[32];
	int			 d = step % 3 + 1, old;

	memset(&h, 0, sizeof h);
	h.type = 1;
	h.len = 8;
	memset(h.bytes, d, 8);
	if (seq % 2 == 0) {	/* a directory of the template */
		old = (int)(seq * 997 % io_dirs) + 1;
		h.type = 2;
		memset(h.bytes, 0, 8);
		memcpy(h.bytes, &old, sizeof old);
	}
	snprintf(path, sizeof path, "/m/d%d", d);
	snprintf(name, sizeof name, "n%llu", (unsigned long long)seq);
	return store_op_change(100 + step, 1, &h, path, name, FST_M_CREATED);
}

/* A meta key/value operation. */
static struct store_op *
io_meta(const char *key, const char *value, int durable)
{
	struct store_op	*op = store_op_meta(key, value);

	op->durable = durable;
	return op;
}

/*
 * Remember op in o as the parent knows it: its type, and what io_present
 * looks for (a snapshot's id, a checkpoint's time, a consumer's cursor).
 */
static void
io_remember(struct io_op *o, const struct store_op *op)
{
	o->type = op->type;
	o->snapshot = op->type == OP_SNAPSHOT ? op->snapshot.id : 0;
	if (op->type == OP_CHECKPOINT)
		o->value = op->checkpoint.ns;
	else if (op->type == OP_CONSUMER_SET)
		o->value = op->consumer_set.cursor;
	else
		o->value = 0;
}

/*
 * The operations of step (0: run_state running; IO_STEPS + 1: stopped;
 * else a snapshot, three changes, a consumer, a checkpoint, a meta value,
 * and on some steps a move, a barrier, a prune).  Numbers them from
 * *seq as store_submit() will, and notes each in io_ops.
 */
static int
io_step_ops(int step, uint64_t *seq, struct store_op **ops)
{
	struct store_op	*op;
	char		 buf[32];
	int		 n = 0, j;

#define ADD(o) do { ops[n++] = (o); \
	io_remember(&io_ops[*seq], ops[n - 1]); (*seq)++; } while (0)
	if (step == 0) {
		ADD(io_meta("run_state", "running", 1));
		return n;
	}
	if (step == IO_STEPS + 1) {
		ADD(io_meta("run_state", "stopped", 1));
		return n;
	}
	op = store_op_snapshot(100 + step,
	    (1764112200LL + step) * 1000000000LL);
	op->durable = 1;
	op->done = io_done;
	ADD(op);
	ADD(io_change(*seq, step));
	if (step == 1) {
		op = store_op_barrier(99, 0);	/* reads every old change */
		op->done = io_done;
		ADD(op);
		ADD(io_change(*seq, step));
		op = store_op_prune(100);	/* snapshot 99 goes */
		op->durable = 1;
		op->done = io_done;
		ADD(op);
	}
	for (j = 0; j < 2; j++)
		ADD(io_change(*seq, step));
	if (step == 3) {
		ADD(store_op_dir_move(1, "/m/d2", "/m/e2"));
	}
	if (step == 4) {
		op = store_op_barrier(101, 0);
		op->done = io_done;
		ADD(op);
	}
	if (step == 5) {
		op = store_op_prune(100);	/* nothing left below 100 */
		op->durable = 1;
		op->done = io_done;
		ADD(op);
	}
	ADD(store_op_consumer_set("backup", 100 + step));
	ADD(store_op_checkpoint(1, (int64_t)*seq));
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)*seq);
	ADD(io_meta("step", buf, step % 2));
	io_ops[*seq - 1].value = (int64_t)(*seq - 1);
#undef ADD
	return n;
}

/* The whole sequence as the parent knows it (io_ops, io_nops). */
static void
io_plan(void)
{
	struct store_op	*ops[16];
	uint64_t	 seq = 1;
	int		 step, i, n;

	memset(io_ops, 0, sizeof io_ops);
	for (step = 0; step <= IO_STEPS + 1; step++) {
		n = io_step_ops(step, &seq, ops);
		for (i = 0; i < n; i++)
			store_op_free(ops[i]);
	}
	io_nops = seq - 1;
}

/* Child: note what the store says now. */
static void
io_note(void)
{
	sh->committed = store_committed();
	sh->hits = faultvfs_hits();
	sh->calls = faultvfs_calls();
	sh->commit_failures = (int)atomic_load(&fstd.st.commit_failures);
}

/*
 * Child: wait for seq to commit, running done callbacks, acting on the
 * mode once a commit failed.  Returns 0 when seq committed, 1 when the
 * run goes on without waiting (stop mode, failing), -1 on timeout.
 */
static int
io_wait(uint64_t seq, enum io_mode mode, int *cleared)
{
	int	i;

	for (i = 0; i < 20000; i++) {
		uv_run(fstd.loop, UV_RUN_NOWAIT);
		io_note();
		if (sh->committed >= seq)
			return 0;
		if (sh->commit_failures > 0) {
			if (mode == IO_CRASH)
				_exit(0);	/* before the writer retries */
			if (mode == IO_STOP)
				return 1;
			if (mode == IO_CLEARED && !*cleared &&
			    sh->commit_failures >= 2) {
				/* failing for good since the first failure */
				sh->degraded_seen = (health_degraded() &
				    (1 << DEGRADED_STORE)) != 0;
				faultvfs_clear();
				*cleared = 1;
			}
		}
		usleep(500);
	}
	return -1;
}

/* Child: the run itself; never returns. */
static void
io_child(const char *path, int call, int file, int n, int persistent,
    int err, enum io_mode mode)
{
	struct store_op	*ops[16];
	uint64_t	 seq = 1;
	char		 e[512];
	int		 step, k, w = 0, cleared = 0;

	memset(&fstd, 0, sizeof fstd);
	config_defaults(&fstd.cfg);
	fstd.db_path = (char *)path;
	fstd.cfg.retention_snapshots = 3;
	atomic_store(&fstd.cur_snapshot, 100);
	/* crash: the process must die before the first retry */
	store_set_retry(mode == IO_CRASH ? 60000 : 1, mode == IO_CRASH ?
	    60000 : 4);
	if (!io_after_open)
		faultvfs_set(call, file, n, persistent, err);
	if (store_open(path, e, sizeof e) != 0) {
		sh->open_failed = 1;
		io_note();
		_exit(0);
	}
	unit_loop_new();
	if (io_after_open)
		faultvfs_set(call, file, n, persistent, err);
	if (store_start() != 0)
		_exit(3);
	for (step = 0; step <= IO_STEPS + 1; step++) {
		k = io_step_ops(step, &seq, ops);
		atomic_store(&fstd.cur_snapshot, 100 + (step > IO_STEPS ?
		    IO_STEPS : step));
		store_submit_many(ops, k);
		sh->submitted = seq - 1;
		if (w != 1 && (w = io_wait(seq - 1, mode, &cleared)) < 0) {
			snprintf(sh->msg, sizeof sh->msg, "seq %llu not "
			    "committed within 10 s (committed %llu, %d "
			    "failures)", (unsigned long long)(seq - 1),
			    (unsigned long long)store_committed(),
			    sh->commit_failures);
			_exit(0);
		}
	}
	if (mode == IO_CRASH)
		_exit(0);
	store_stop();
	store_close();
	io_note();
	sh->degraded_after = (health_degraded() & (1 << DEGRADED_STORE)) != 0;
	sh->finished = 1;
	_exit(0);
}

/* Parent: one integer of the checked database, or dflt without a row. */
static long long
io_int(sqlite3 *db, const char *sql, long long dflt)
{
	sqlite3_stmt	*st;
	long long	 v = dflt;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int	io_changes[IO_MAX_OPS];	/* io_load_changes() */

/* Parent: which change records (by seq) the database has, in io_changes. */
static void
io_load_changes(sqlite3 *db)
{
	sqlite3_stmt	*st;
	unsigned	 seq;

	memset(io_changes, 0, sizeof io_changes);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT name FROM changes "
	    "WHERE snapshot > 100", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		if (sscanf((const char *)sqlite3_column_text(st, 0), "n%u",
		    &seq) == 1 && seq < IO_MAX_OPS)
			io_changes[seq]++;
	sqlite3_finalize(st);
}

/* Parent: is the effect of operation seq in the database? -1: unknowable. */
static int
io_present(sqlite3 *db, uint64_t seq)
{
	char	sql[160];

	switch (io_ops[seq].type) {
	case OP_CHANGE:
		return io_changes[seq];
	case OP_SNAPSHOT:
		snprintf(sql, sizeof sql, "SELECT count(*) FROM snapshots WHERE "
		    "id = %lld", (long long)io_ops[seq].snapshot);
		return io_int(db, sql, 0) == 1;
	case OP_CHECKPOINT:
		return io_int(db, "SELECT checkpoint_ns FROM filesystems WHERE "
		    "id = 1", 0) >= io_ops[seq].value;
	case OP_CONSUMER_SET:
		return io_int(db, "SELECT cursor FROM consumers WHERE name = "
		    "'backup'", 0) >= io_ops[seq].value;
	case OP_META:
		if (io_ops[seq].value == 0)	/* run_state */
			return -1;
		return io_int(db, "SELECT CAST(value AS INTEGER) FROM meta "
		    "WHERE key = 'step'", 0) >= io_ops[seq].value;
	default:
		return -1;
	}
}

/*
 * Parent: check the database a run left (see the top of this file).
 * what names the case in messages.
 */
static void
io_verify(const char *path, enum io_mode mode, const char *what)
{
	sqlite3		*db;
	char		 err[512], *s, *rs;
	uint64_t	 seq, cut = 0, missing = 0;
	int		 created, p, all;

	ck_assert_msg(sh->msg[0] == '\0', "%s: %s", what, sh->msg);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	s = unit_db_rows(db, "PRAGMA integrity_check");
	ck_assert_msg(strcmp(s, "ok\n") == 0, "%s: integrity_check: %s",
	    what, s);
	free(s);
	ck_assert_msg(schema_check_or_create(db, &created, err, sizeof err) ==
	    0, "%s: schema: %s", what, err);
	ck_assert_msg(!created, "%s: the database was created again", what);
	rs = unit_db_rows(db, "SELECT value FROM meta WHERE key = "
	    "'run_state'");
	io_load_changes(db);

	/* Committed (as the child saw it) means present. */
	for (seq = 1; seq <= io_nops; seq++) {
		p = io_present(db, seq);
		if (p == 1 && seq > cut)
			cut = seq;
		if (seq <= sh->committed || (seq < IO_MAX_OPS &&
		    sh->done[seq]))
			ck_assert_msg(p != 0, "%s: op %llu (type %d) reported "
			    "committed (committed %llu) but not in the "
			    "database", what, (unsigned long long)seq,
			    io_ops[seq].type,
			    (unsigned long long)sh->committed);
	}
	/* What is there is a prefix: nothing missing below the cut. */
	for (seq = 1; seq <= cut; seq++)
		ck_assert_msg(io_present(db, seq) != 0, "%s: op %llu (type %d) "
		    "missing while op %llu is in: not a prefix", what,
		    (unsigned long long)seq, io_ops[seq].type,
		    (unsigned long long)cut);
	for (seq = cut + 1; seq <= io_nops; seq++)
		if (io_ops[seq].type == OP_CHANGE && !missing)
			missing = seq;
	all = missing == 0 && strcmp(rs, "stopped\n") == 0;
	if (missing != 0)
		ck_assert_msg(strcmp(rs, "stopped\n") != 0, "%s: op %llu is "
		    "missing, yet run_state says the stop was clean", what,
		    (unsigned long long)missing);
	for (seq = 1, p = 0; seq <= io_nops; seq++) {
		if (io_ops[seq].type != OP_PRUNE || !sh->done[seq])
			continue;
		/* the first prunes snapshot 99, the second finds nothing */
		ck_assert_msg(sh->value[seq] == (p++ == 0 ? 100 : 0), "%s: "
		    "prune before 100 (op %llu) reports pruned_to %lld", what,
		    (unsigned long long)seq, (long long)sh->value[seq]);
	}
	ck_assert_msg(io_int(db, "SELECT min(id) FROM snapshots", 0) >= 99 &&
	    io_int(db, "SELECT min(id) FROM snapshots", 0) <= 100, "%s: "
	    "snapshot 100 pruned (only 'before 100' was asked)", what);
	ck_assert_msg(io_int(db, "SELECT count(*) FROM changes WHERE "
	    "snapshot = 100", 0) == io_dirs, "%s: %lld of the %d changes "
	    "of snapshot 100 left", what, io_int(db, "SELECT count(*) FROM "
	    "changes WHERE snapshot = 100", 0), io_dirs);
	if (io_int(db, "SELECT min(id) FROM snapshots", 0) == 99)
		ck_assert_msg(io_int(db, "SELECT count(*) FROM changes WHERE "
		    "snapshot = 99", 0) == io_dirs / 10, "%s: snapshot 99 "
		    "half pruned", what);

	/* Transient or cleared faults: everything, without a restart. */
	if (!sh->open_failed && (mode == IO_TRANSIENT || mode == IO_CLEARED)) {
		ck_assert_msg(sh->finished && all, "%s: not everything "
		    "committed after the fault went (finished %d, first "
		    "missing %llu, run_state %s)", what, sh->finished,
		    (unsigned long long)missing, rs);
		ck_assert_msg(!sh->degraded_after, "%s: still degraded after "
		    "the fault went", what);
		if (mode == IO_CLEARED && sh->commit_failures >= 2)
			ck_assert_msg(sh->degraded_seen, "%s: commits failed "
			    "but the store did not say degraded", what);
	}
	free(rs);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

/* Run one case in a child and check what it left. */
static void
io_run(int call, int file, int n, int persistent, int err, enum io_mode mode)
{
	char	*path = io_new_db(), what[160];
	pid_t	 pid;
	int	 status;

	memset(sh, 0, sizeof *sh);
	fflush(NULL);
	if ((pid = fork()) == 0)
		io_child(path, call, file, n, persistent, err, mode);
	ck_assert_int_ge(pid, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	snprintf(what, sizeof what, "%s %s %s%s N=%d %s", io_mode_name[mode],
	    faultvfs_call_name(call), faultvfs_file_name(file),
	    err == SQLITE_FULL ? " (SQLITE_FULL)" : "", n,
	    persistent ? "persistent" : "once");
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "%s: child status 0x%x", what, status);
	if (getenv("IOERR_KEEP") || getenv("IOERR_VERBOSE"))
		fprintf(stderr, "%s: %s, %d calls, %d hits, %d failures\n",
		    what, path, sh->calls, sh->hits, sh->commit_failures);
	io_verify(path, mode, what);
	free(path);
}

/* The cases: which call, on which file, with which error. */
static const struct io_case {
	int	call, file, err, dirs, after_open;
} io_cases[] = {
	{ FV_WRITE, FV_WAL, 0, 0, 0 },
	{ FV_WRITE, FV_WAL, SQLITE_FULL, 0, 0 },
	{ FV_WRITE, FV_MAIN, 0, 0, 0 },
	{ FV_WRITE, FV_MAIN, SQLITE_FULL, 0, 0 },
	{ FV_SYNC, FV_WAL, 0, 0, 0 },
	{ FV_SYNC, FV_MAIN, 0, 0, 0 },
	{ FV_OPEN, FV_MAIN | FV_WAL, 0, 0, 0 },
	{ FV_TRUNCATE, FV_MAIN | FV_WAL, 0, 0, 0 },
	{ FV_READ, FV_MAIN, 0, 0, 0 },
	{ FV_READ, FV_WAL, 0, 0, 0 },
	{ FV_FILESIZE, FV_MAIN | FV_WAL, 0, 0, 0 },
	/*
	 * Reads by the writer itself, of pages store_open() did not keep:
	 * ~600 per run, so N = 1..64, then every N/8th.
	 */
	{ FV_READ, FV_MAIN, 0, 1, 1 },
};
#define IO_NCASES	(int)(sizeof io_cases / sizeof io_cases[0])

/*
 * The fault position a sweep runs after n: the next one, except in the
 * big case past 64 (every n/8th: its runs are slow); with a stride
 * (IOERR_STRIDE) the next one only up to IO_EDGE, then IO_EDGE + 1 +
 * phase (0 <= phase < stride), then every stride-th or more.
 */
static int
io_next_n(int n, int big, int stride, int phase)
{
	int	step = big && n >= 64 ? n / 8 : 1;

	if (stride > 1 && n == IO_EDGE)
		return n + 1 + phase;
	if (stride > 1 && n > IO_EDGE && step < stride)
		step = stride;
	return n + step;
}

/*
 * One sweep of case c in one mode: the fault at N = 1, then at the
 * positions io_next_n() picks, until a run no longer reaches the fault;
 * if positions were skipped since the last one that did, bisection
 * between the two finds the end (a position that reaches the fault, the
 * next that does not, both run).  Returns the number of runs; *end is
 * the first position that did not reach the fault.
 */
static int
io_sweep(const struct io_case *c, int mode, int persistent, int stride,
    int phase, int *end)
{
	int	n = 1, hit = 0, miss = 0, runs = 0;

	for (;;) {
		ck_assert_msg(n < IO_MAX_N, "%s: still hitting the fault at "
		    "N=%d", faultvfs_call_name(c->call), n);
		io_run(c->call, c->file, n, persistent, c->err, mode);
		runs++;
		if (sh->hits != 0)
			hit = n;
		else
			miss = n;
		if (miss == 0)
			n = io_next_n(n, c->dirs != 0, stride, phase);
		else if (miss == hit + 1)
			break;
		else
			n = hit + (miss - hit) / 2;
	}
	*end = miss;
	return runs;
}

/*
 * One case (loop index _i) in every mode, N = 1, 2, ... until a run no
 * longer reaches the fault (or a sample of those: IOERR_STRIDE).
 */
START_TEST(test_ioerr)
{
	const struct io_case	*c = &io_cases[_i];
	int			 mode, n, r, runs = 0, persistent, sweep = 0;
	int			 stride = io_getenv_int("IOERR_STRIDE", 1);

	if (getenv("IOERR_CASE") != NULL && atoi(getenv("IOERR_CASE")) != _i)
		return;
	io_dirs = c->dirs != 0 ? IO_BIG_DIRS : IO_OLD_DIRS;
	io_after_open = c->after_open;
	io_make_template();
	io_plan();
	if (getenv("IOERR_DEBUG") != NULL) {	/* "case mode n persistent" */
		int cs, m, nn, pe;

		if (sscanf(getenv("IOERR_DEBUG"), "%d %d %d %d", &cs, &m, &nn,
		    &pe) != 4 || cs != _i)
			return;
		setenv("IOERR_KEEP", "1", 1);
		io_run(c->call, c->file, nn, pe, c->err, m);
		return;
	}
	for (mode = 0; mode < IO_MODES; mode++) {
		for (persistent = 0; persistent < 2; persistent++) {
			if (c->dirs != 0 && (mode == IO_CLEARED ||
			    mode == IO_STOP))
				continue;	/* the slow case: the two others */
			if ((mode == IO_TRANSIENT && persistent) ||
			    ((mode == IO_CLEARED || mode == IO_STOP) &&
			    !persistent))
				continue;
			r = io_sweep(c, mode, persistent, stride, stride > 1 ?
			    (_i + sweep++) % stride : 0, &n);
			runs += r;
			fprintf(stderr, "ioerr: %s %s%s %s%s: N = 1..%d, "
			    "%d runs\n", faultvfs_call_name(c->call),
			    faultvfs_file_name(c->file),
			    c->err == SQLITE_FULL ? " FULL" : "",
			    io_mode_name[mode], persistent ? " persistent" :
			    "", n, r);
		}
	}
	fprintf(stderr, "ioerr: %s %s%s: %d runs\n",
	    faultvfs_call_name(c->call), faultvfs_file_name(c->file),
	    c->err == SQLITE_FULL ? " FULL" : "", runs);
}
END_TEST

/* What io_query() runs query_changed() on. */
struct io_qarg {
	const char	*path;
	int64_t		 since, cur;
};

/* query_changed() with its output captured (and thrown away). */
static int
io_query(void *p)
{
	struct io_qarg	*a = p;
	sqlite3		*db = query_open(a->path);
	int		 rc;

	ck_assert_ptr_nonnull(db);
	rc = query_changed(db, a->since, a->cur, 0);
	query_close(db);
	return rc;
}

/*
 * Submit n changes in snapshot snap on filesystem fs_id; the last sequence
 * number.
 */
static uint64_t
io_changes_in(int64_t snap, int64_t fs_id, int n, int *first)
{
	struct fst_handle	 h;
	uint64_t		 seq = 0;
	char			 name[32];
	int			 i;

	for (i = 0; i < n; i++, (*first)++) {
		memset(&h, 0, sizeof h);
		h.type = 1;
		h.len = 8;
		memcpy(h.bytes, first, sizeof *first);
		snprintf(name, sizeof name, "n%d", *first);
		seq = store_submit(store_op_change(snap, fs_id, &h, "/m/x",
		    name, 0));
	}
	return seq;
}

/*
 * The backlog bound (1000 here, STORE_BACKLOG_MAX in the daemon): while
 * the disk is full the queue holds at most that many records; the rest are
 * dropped, replaced by one gap per filesystem and snapshot, queued ahead
 * of everything after them (the 20th filesystem too: struct fst_fs keeps
 * it; records of no tracked one get one gap for all).  Once space returns everything kept commits
 * without a restart, with the gaps, so a query since either snapshot says
 * history is incomplete (exit 4) instead of missing the dropped records.
 */
START_TEST(test_backlog_bound)
{
	char		*path, *out, err[512];
	struct store_op	*op;
	struct io_qarg	 q;
	struct fst_fs	 fs[20];
	sqlite3		*db;
	uint64_t	 seq;
	int		 i, next = 0;

	if (asprintf(&path, "%s/backlog.db", tmpdir) == -1)
		abort();
	memset(&fstd, 0, sizeof fstd);
	config_defaults(&fstd.cfg);
	fstd.db_path = path;
	memset(fs, 0, sizeof fs);	/* the records' filesystems, tracked */
	for (i = 0; i < 20; i++) {
		fs[i].id = i + 1;
		fs[i].mountpoint = "/m";
		fs[i].mount_fd = -1;
	}
	fstd.fs = fs;
	fstd.nfs = 20;
	store_set_backlog_max(1000);
	store_set_retry(1, 4);
	ck_assert_msg(store_open(path, err, sizeof err) == 0, "%s", err);
	unit_loop_new();
	ck_assert_int_eq(store_start(), 0);
	atomic_store(&fstd.cur_snapshot, 200);
	op = store_op_snapshot(200, 0);
	op->durable = 1;
	unit_wait_committed(store_submit(op));

	/* Disk full: the first record fails to commit. */
	faultvfs_set(FV_WRITE, FV_WAL, 1, 1, SQLITE_FULL);
	io_changes_in(200, 1, 1, &next);
	for (i = 0; i < 5000 && !(health_degraded() & (1 << DEGRADED_STORE));
	    i++)
		usleep(1000);
	ck_assert(health_degraded() & (1 << DEGRADED_STORE));
	io_changes_in(200, 1, 5000, &next);
	ck_assert_uint_le(atomic_load(&fstd.st.queue_depth), 1001);
	ck_assert_uint_ge(atomic_load(&fstd.st.records_dropped), 4000);
	/* a snapshot, kept, and more records in it: a second gap */
	atomic_store(&fstd.cur_snapshot, 201);
	op = store_op_snapshot(201, 0);
	op->durable = 1;
	store_submit(op);
	io_changes_in(201, 1, 3000, &next);
	/* the last of 20 filesystems gets its own; an unknown one, all */
	io_changes_in(201, 20, 10, &next);
	io_changes_in(201, 99, 10, &next);
	seq = store_submit(store_op_checkpoint(1, 777));
	ck_assert_uint_le(atomic_load(&fstd.st.queue_depth), 1006);

	/* Space returns: everything kept commits, with the gaps. */
	faultvfs_clear();
	for (i = 0; i < 10000 && store_committed() < seq; i++)
		usleep(1000);
	ck_assert_uint_ge(store_committed(), seq);
	ck_assert_int_eq(health_degraded() & (1 << DEGRADED_STORE), 0);
	store_stop();
	store_close();
	unit_loop_free();
	fstd.fs = NULL;
	fstd.nfs = 0;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	out = unit_db_rows(db, "SELECT coalesce(fs_id, 0), snapshot FROM gaps "
	    "ORDER BY id");
	ck_assert_str_eq(out, "1|200\n1|201\n20|201\n0|201\n");
	free(out);
	ck_assert_int_eq(unit_db_int(db, "SELECT count(*) FROM snapshots "
	    "WHERE id IN (200, 201)"), 2);
	ck_assert_int_le(unit_db_int(db, "SELECT count(*) FROM changes"), 1001);
	ck_assert_int_ge(unit_db_int(db, "SELECT count(*) FROM changes"), 900);
	/* every gap is ahead of the records it replaces: none after it */
	ck_assert_int_eq(unit_db_int(db, "SELECT count(*) FROM changes WHERE "
	    "snapshot = 201"), 0);
	out = unit_db_rows(db, "PRAGMA integrity_check");
	ck_assert_str_eq(out, "ok\n");
	free(out);
	sqlite3_close(db);
	q.path = path;
	q.cur = 201;
	for (q.since = 200; q.since <= 201; q.since++) {
		ck_assert_int_eq(unit_capture_stdout(io_query, &q, &out),
		    FST_EXIT_GAP);
		free(out);
	}
	free(path);
}
END_TEST

/* The suite. */
Suite *
ioerr_suite(void)
{
	Suite	*s = suite_create("ioerr");
	TCase	*tc;

	tc = tcase_create("faults");
	tcase_add_checked_fixture(tc, io_setup, io_teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, test_ioerr, 0, IO_NCASES);
	suite_add_tcase(s, tc);

	tc = tcase_create("backlog");
	tcase_add_checked_fixture(tc, io_setup, io_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_backlog_bound);
	suite_add_tcase(s, tc);
	return s;
}

/*
 * schema.c -- the database schema, its version, and the migration path.
 *
 * The database is a documented interface (fstrack-db(5)): administrators
 * query it with sqlite3.  Tables hold facts; the views changed_dirs and
 * changed_entries read as plainly as "SELECT path FROM changed_dirs WHERE
 * snapshot >= 7".
 *
 * Identity: PRAGMA application_id is 'fstr' (0x66737472) and PRAGMA
 * user_version the schema version.  A file that is not SQLite, carries
 * another application id, has tables but no id, is from a newer version or
 * fails quick_check is refused and never written: the administrator decides
 * what to do with it.  An older version is migrated forward inside one
 * transaction, one step per version, so an interrupted migration leaves the
 * old version intact.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "fstrack.h"

/* Version 1: the initial tables and the changed_dirs view. */
static const char schema_v1[] =
"CREATE TABLE meta(\n"
"  key   TEXT PRIMARY KEY,\n"
"  value TEXT\n"
");\n"
"CREATE TABLE filesystems(\n"
"  id             INTEGER PRIMARY KEY,\n"
"  mountpoint     TEXT NOT NULL,\n"
"  fstype         TEXT NOT NULL,\n"
"  fsid           TEXT NOT NULL,\n"
"  uuid           TEXT NOT NULL DEFAULT '',\n"
"  added_at       INTEGER NOT NULL,\n"
"  added_snapshot INTEGER NOT NULL,\n"
"  state          TEXT NOT NULL DEFAULT 'tracked',\n"
"  checkpoint_ns  INTEGER\n"
");\n"
"CREATE TABLE snapshots(\n"
"  id         INTEGER PRIMARY KEY,\n"
"  started_at INTEGER NOT NULL,\n"
"  started_ns INTEGER NOT NULL\n"
");\n"
"CREATE TABLE dirs(\n"
"  id     INTEGER PRIMARY KEY,\n"
"  fs_id  INTEGER NOT NULL REFERENCES filesystems(id),\n"
"  handle BLOB NOT NULL,\n"
"  path   TEXT NOT NULL,\n"
"  gone   INTEGER NOT NULL DEFAULT 0,\n"
"  UNIQUE(fs_id, handle)\n"
");\n"
"CREATE INDEX dirs_path ON dirs(fs_id, path);\n"
"CREATE TABLE changes(\n"
"  snapshot INTEGER NOT NULL,\n"
"  dir_id   INTEGER NOT NULL REFERENCES dirs(id),\n"
"  name     TEXT NOT NULL,\n"
"  mask     INTEGER NOT NULL,\n"
"  PRIMARY KEY(snapshot, dir_id, name)\n"
") WITHOUT ROWID;\n"
"CREATE INDEX changes_dir ON changes(dir_id);\n"
"CREATE TABLE gaps(\n"
"  id       INTEGER PRIMARY KEY,\n"
"  fs_id    INTEGER REFERENCES filesystems(id),\n"
"  snapshot INTEGER NOT NULL,\n"
"  at       INTEGER NOT NULL,\n"
"  reason   TEXT NOT NULL\n"
");\n"
"CREATE TABLE consumers(\n"
"  name         TEXT PRIMARY KEY,\n"
"  cursor       INTEGER NOT NULL,\n"
"  last_success INTEGER,\n"
"  created_at   INTEGER NOT NULL\n"
");\n"
"CREATE VIEW changed_dirs AS\n"
"  SELECT c.snapshot AS snapshot, d.fs_id AS fs_id, d.path AS path,\n"
"         d.gone AS gone\n"
"  FROM changes c JOIN dirs d ON d.id = c.dir_id\n"
"  GROUP BY c.snapshot, c.dir_id;\n";

/*
 * Version 2: arms (perm.c) -- directories whose opens stopped being held in
 * a snapshot.  An arm is not a change; after an unclean stop the daemon
 * turns the arms of the last two snapshots into changes of kind "armed"
 * (store.c, OP_PROMOTE_ARMS).  Only the two newest snapshots keep arms.
 */
static const char schema_v2_arms[] =
"CREATE TABLE arms(\n"
"  snapshot INTEGER NOT NULL,\n"
"  fs_id    INTEGER NOT NULL,\n"
"  handle   BLOB NOT NULL,\n"
"  PRIMARY KEY(snapshot, fs_id, handle)\n"
") WITHOUT ROWID;\n";

/*
 * Version 3: positions (fstrack-db(5)).  changes.seq is the sequence
 * number of the row's latest record, gaps.seq that of the gap: a row with a
 * greater seq than a position's was recorded after it.  A row recorded
 * before any position was taken in its snapshot has none (NULL): positions
 * cost nothing to those who never take one (store.c, POSITIONS).  The
 * index holds only the rows that have one.
 */
static const char schema_v3_seq[] =
"ALTER TABLE changes ADD COLUMN seq INTEGER;\n"
"ALTER TABLE gaps ADD COLUMN seq INTEGER;\n"
"CREATE INDEX changes_seq ON changes(seq) WHERE seq IS NOT NULL;\n";

/*
 * The columns of changed_entries up to gone (kind names by bit), and the
 * end of its definition: versions 2 and 3 differ only by seq.
 */
#define SCHEMA_ENTRIES_COLUMNS \
"  SELECT c.snapshot AS snapshot, d.fs_id AS fs_id,\n" \
"         CASE WHEN c.name = '.' THEN d.path\n" \
"              WHEN d.path = '/' THEN '/' || c.name\n" \
"              ELSE d.path || '/' || c.name END AS path,\n" \
"         d.path AS dir, c.name AS name, c.mask AS mask,\n" \
"         rtrim(\n" \
"           CASE WHEN c.mask & 1 THEN 'created,' ELSE '' END ||\n" \
"           CASE WHEN c.mask & 2 THEN 'deleted,' ELSE '' END ||\n" \
"           CASE WHEN c.mask & 4 THEN 'modified,' ELSE '' END ||\n" \
"           CASE WHEN c.mask & 8 THEN 'attrib,' ELSE '' END ||\n" \
"           CASE WHEN c.mask & 16 THEN 'moved-from,' ELSE '' END ||\n" \
"           CASE WHEN c.mask & 32 THEN 'moved-to,' ELSE '' END ||\n" \
"           CASE WHEN c.mask & 64 THEN 'closed-write,' ELSE '' END ||\n" \
"           CASE WHEN c.mask & 128 THEN 'opened-write,' ELSE '' END ||\n" \
"           CASE WHEN c.mask & 256 THEN 'rescanned,' ELSE '' END ||\n" \
"           CASE WHEN c.mask & 1024 THEN 'contents,' ELSE '' END ||\n" \
"           CASE WHEN c.mask & 2048 THEN 'open-at-snapshot,' ELSE '' END ||\n" \
"           CASE WHEN c.mask & 4096 THEN 'armed,' ELSE '' END,\n" \
"         ',') AS kinds,\n" \
"         d.gone AS gone"
#define SCHEMA_ENTRIES_FROM \
"\n  FROM changes c JOIN dirs d ON d.id = c.dir_id;\n"

/* The changed_entries view of version 2 (the step from 1 to 2 makes it). */
static const char schema_view_entries_v2[] =
"CREATE VIEW changed_entries AS\n" SCHEMA_ENTRIES_COLUMNS SCHEMA_ENTRIES_FROM;

/* The changed_entries view of the current version. */
static const char schema_view_entries[] =
"CREATE VIEW changed_entries AS\n" SCHEMA_ENTRIES_COLUMNS ", c.seq AS seq"
SCHEMA_ENTRIES_FROM;

/* Run sql, putting SQLite's message into err on failure. */
static int
schema_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char	*msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s", msg != NULL ? msg :
		    sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Read a single integer PRAGMA. */
static int
schema_pragma_int(sqlite3 *db, const char *pragma, long long *out)
{
	sqlite3_stmt	*st;
	char		 sql[64];
	int		 rc;

	snprintf(sql, sizeof sql, "PRAGMA %s", pragma);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/*
 * Version 1 to 2: the arms table, and "armed" in changed_entries.  One
 * transaction: an interrupted migration leaves version 1 intact.
 */
static int
schema_migrate_1_to_2(sqlite3 *db, char *err, size_t errlen)
{
	if (schema_exec(db, "BEGIN IMMEDIATE", err, errlen) != 0)
		return -1;
	if (schema_exec(db, schema_v2_arms, err, errlen) != 0 ||
	    schema_exec(db, "DROP VIEW changed_entries", err, errlen) != 0 ||
	    schema_exec(db, schema_view_entries_v2, err, errlen) != 0 ||
	    schema_exec(db, "PRAGMA user_version = 2", err, errlen) != 0 ||
	    schema_exec(db, "COMMIT", err, errlen) != 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

/*
 * Version 2 to 3: seq on changes and gaps, its index, and seq in
 * changed_entries.  Rows of earlier versions keep no seq: no position was
 * ever taken after them.  One transaction, as above.
 */
static int
schema_migrate_2_to_3(sqlite3 *db, char *err, size_t errlen)
{
	if (schema_exec(db, "BEGIN IMMEDIATE", err, errlen) != 0)
		return -1;
	if (schema_exec(db, schema_v3_seq, err, errlen) != 0 ||
	    schema_exec(db, "DROP VIEW changed_entries", err, errlen) != 0 ||
	    schema_exec(db, schema_view_entries, err, errlen) != 0 ||
	    schema_exec(db, "PRAGMA user_version = 3", err, errlen) != 0 ||
	    schema_exec(db, "COMMIT", err, errlen) != 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

/*
 * Check the database is ours and current, creating the schema in an empty
 * file and migrating an older one.  *created is set when the schema was
 * made now.  On refusal err says why and -1 is returned; nothing was
 * written.
 */
int
schema_check_or_create(sqlite3 *db, int *created, char *err, size_t errlen)
{
	long long	 appid, version, ntables;
	char		 sql[256];
	sqlite3_stmt	*st;
	const char	*res;
	int		 rc;

	*created = 0;
	if (schema_pragma_int(db, "application_id", &appid) != 0) {
		snprintf(err, errlen, "not an SQLite database, or unreadable: %s",
		    sqlite3_errmsg(db));
		return -1;
	}
	if (schema_pragma_int(db, "user_version", &version) != 0 ||
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master",
	    -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "unreadable: %s", sqlite3_errmsg(db));
		return -1;
	}
	rc = sqlite3_step(st);
	ntables = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen, "unreadable: %s", sqlite3_errmsg(db));
		return -1;
	}

	if (appid == 0 && ntables == 0) {
		if (schema_exec(db, "PRAGMA auto_vacuum = INCREMENTAL", err,
		    errlen) != 0)
			return -1;
		snprintf(sql, sizeof sql, "PRAGMA application_id = %d; "
		    "PRAGMA user_version = %d;", FSTRACK_APPLICATION_ID,
		    FSTRACK_SCHEMA_VERSION);
		if (schema_exec(db, "BEGIN", err, errlen) != 0)
			return -1;
		if (schema_exec(db, schema_v1, err, errlen) != 0 ||
		    schema_exec(db, schema_v2_arms, err, errlen) != 0 ||
		    schema_exec(db, schema_v3_seq, err, errlen) != 0 ||
		    schema_exec(db, schema_view_entries, err, errlen) != 0 ||
		    schema_exec(db, sql, err, errlen) != 0) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		if (schema_exec(db, "COMMIT", err, errlen) != 0)
			return -1;
		*created = 1;
		return 0;
	}
	if (appid != FSTRACK_APPLICATION_ID) {
		snprintf(err, errlen, "not an fstrack database (application_id "
		    "%lld); refusing to touch it: move it away or choose "
		    "another --state-dir", appid);
		return -1;
	}
	if (version > FSTRACK_SCHEMA_VERSION) {
		snprintf(err, errlen, "database schema version %lld is newer "
		    "than this fstrackd understands (%d): upgrade fstrack",
		    version, FSTRACK_SCHEMA_VERSION);
		return -1;
	}
	if (version < 1) {
		snprintf(err, errlen, "database has schema version %lld, "
		    "which no fstrackd wrote; refusing it", version);
		return -1;
	}

	if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "quick_check: %s", sqlite3_errmsg(db));
		return -1;
	}
	rc = sqlite3_step(st);
	res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	if (res == NULL || strcmp(res, "ok") != 0) {
		snprintf(err, errlen, "database is corrupt (%s); refusing to "
		    "write to it: keep it for inspection and start with a new "
		    "--state-dir", res != NULL ? res : sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);

	/* Migrations from version N to N+1, each in one transaction. */
	if (version == 1 && schema_migrate_1_to_2(db, err, errlen) != 0)
		return -1;
	if (version <= 2 && schema_migrate_2_to_3(db, err, errlen) != 0)
		return -1;
	return 0;
}

/*
 * query.c -- what fstrack(1) reads from the database itself.
 *
 * The daemon answers the barrier (every completed change committed, paths
 * refreshed) and names the database; the client then opens it read-only.
 * WAL readers never block the daemon's writer, and a long listing never
 * occupies the daemon.  Every answer checks first that the history it
 * reports is complete: a snapshot id that is unknown is exit 3, one whose
 * history was pruned, predates this database or crosses a gap is exit 4.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "proto.h"
#include "query.h"

static const char *query_kind_names[] = {
	"created", "deleted", "modified", "attrib", "moved-from", "moved-to",
	"closed-write", "opened-write", "rescanned", NULL, "contents",
	"open-at-snapshot", "armed"
};

/* Open the database read-only; prints why and returns NULL on failure. */
sqlite3 *
query_open(const char *path)
{
	sqlite3	*db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		fprintf(stderr, "fstrack: cannot open database '%s': %s\n",
		    path, db != NULL ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 10000);
	return db;
}

/* Close the database. */
void
query_close(sqlite3 *db)
{
	sqlite3_close(db);
}

/* Print a path as the output mode wants it. */
static void
query_put_path(struct sbuf *out, const char *path, int flags)
{
	if (flags & Q_NUL) {
		sbuf_addstr(out, path);
		sbuf_add(out, "", 1);
	} else {
		sbuf_add_escaped(out, path);
		sbuf_addstr(out, "\n");
	}
}

/* Flush an output buffer to stdout once it is large. */
static void
query_flush(struct sbuf *out, int force)
{
	if (out->len == 0 || (!force && out->len < 65536))
		return;
	fwrite(out->data, 1, out->len, stdout);
	out->len = 0;
}

/* Write the kinds of mask as a comma list or JSON array items. */
static void
query_put_kinds(struct sbuf *out, int64_t mask, int json)
{
	size_t	i;
	int	first = 1;

	for (i = 0; i < sizeof query_kind_names / sizeof *query_kind_names;
	    i++) {
		if (query_kind_names[i] == NULL || !(mask & (1 << i)))
			continue;
		if (!first)
			sbuf_addstr(out, ",");
		if (json)
			sbuf_printf(out, "\"%s\"", query_kind_names[i]);
		else
			sbuf_addstr(out, query_kind_names[i]);
		first = 0;
	}
}

/* Join a directory path and an entry name. */
static void
query_join(struct sbuf *b, const char *dir, const char *name)
{
	sbuf_reset(b);
	sbuf_addstr(b, dir);
	if (strcmp(name, ".") == 0)
		return;
	if (b->len == 0 || b->data[b->len - 1] != '/')
		sbuf_addstr(b, "/");
	sbuf_addstr(b, name);
}

/* Format a unix time as ISO 8601 UTC. */
static void
query_time(int64_t t, char *buf, size_t len)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Whether a snapshot with exactly this id is kept. */
static int
query_snapshot_exists(sqlite3 *db, int64_t id)
{
	sqlite3_stmt	*st;
	int		 found = 0;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM snapshots WHERE id = ?", -1,
	    &st, NULL) != SQLITE_OK)
		return 1;	/* cannot tell: let the query itself fail */
	sqlite3_bind_int64(st, 1, id);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

/*
 * Whether "since snapshot since" can be answered from this database: 0, or
 * the exit status (no such snapshot, or history pruned / older than this
 * database) after saying why on stderr (and, with Q_JSON, on stdout).
 */
int
query_since_ok(sqlite3 *db, int64_t since, int64_t cur, int flags)
{
	sqlite3_stmt	*st;
	int64_t		 oldest = 0;

	if (since < 1 || since > cur) {
		fprintf(stderr, "fstrack: no such snapshot %lld (the current "
		    "one is %lld)\n", (long long)since, (long long)cur);
		return FST_EXIT_NOSNAPSHOT;
	}
	if (sqlite3_prepare_v2(db, "SELECT max(coalesce((SELECT min(id) FROM "
	    "snapshots), 0), coalesce((SELECT CAST(value AS INTEGER) FROM meta "
	    "WHERE key = 'oldest_snapshot'), 0))", -1, &st, NULL) != SQLITE_OK)
		return FST_EXIT_ERROR;
	if (sqlite3_step(st) == SQLITE_ROW)
		oldest = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (since >= oldest && !query_snapshot_exists(db, since)) {
		fprintf(stderr, "fstrack: no such snapshot %lld (see fstrack "
		    "snapshots)\n", (long long)since);
		return FST_EXIT_NOSNAPSHOT;
	}
	if (since < oldest) {
		fprintf(stderr, "fstrack: history incomplete since snapshot "
		    "%lld: the oldest snapshot kept is %lld (pruned, or from "
		    "before this database): full scan required\n",
		    (long long)since, (long long)oldest);
		if (flags & Q_JSON)
			printf("{\"since\":%lld,\"snapshot\":%lld,\"complete\":"
			    "false,\"gaps\":[{\"mountpoint\":null,\"reason\":"
			    "\"history before snapshot %lld is not kept\"}]}\n",
			    (long long)since, (long long)cur, (long long)oldest);
		return FST_EXIT_GAP;
	}

	return 0;
}

/*
 * Tell every gap recorded since snapshot since on stderr and, for JSON and
 * --dirs output, into out; *ngaps is how many.  Returns 0, or -1 on a
 * database error.
 */
static int
query_gaps(sqlite3 *db, int64_t since, int flags, struct sbuf *out,
    int *ngaps)
{
	sqlite3_stmt	*st;
	char		 tbuf[32];
	int		 rc;

	*ngaps = 0;
	if (sqlite3_prepare_v2(db, "SELECT coalesce(f.mountpoint, '/'), "
	    "g.reason, g.snapshot, g.at FROM gaps g LEFT JOIN filesystems f "
	    "ON f.id = g.fs_id WHERE g.snapshot >= ? ORDER BY g.id", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *mp = (const char *)sqlite3_column_text(st, 0);
		const char *why = (const char *)sqlite3_column_text(st, 1);

		query_time(sqlite3_column_int64(st, 3), tbuf, sizeof tbuf);
		fprintf(stderr, "fstrack: history incomplete for %s since "
		    "snapshot %lld (%s, at %s): full scan required\n", mp,
		    (long long)since, why, tbuf);
		if (flags & Q_JSON) {
			sbuf_addstr(out, *ngaps ? ",{\"mountpoint\":" :
			    "{\"mountpoint\":");
			sbuf_add_json_string(out, mp);
			sbuf_addstr(out, ",\"reason\":");
			sbuf_add_json_string(out, why);
			sbuf_printf(out, ",\"since\":%lld,\"snapshot\":%lld,"
			    "\"at\":\"%s\"}", (long long)since,
			    (long long)sqlite3_column_int64(st, 2), tbuf);
		} else if (flags & Q_DIRS)
			query_put_path(out, mp, flags);
		(*ngaps)++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	return 0;
}

/*
 * fstrack changed --since since: check the history is complete, then list
 * the changes.  cur is the daemon's current snapshot.  Returns the exit
 * status.
 */
int
query_changed(sqlite3 *db, int64_t since, int64_t cur, int flags)
{
	sqlite3_stmt	*st;
	struct sbuf	 out, path, prev;
	int64_t		 mask = 0, gone = 0;
	int		 rc, ngaps = 0, first = 1, have = 0;
	const char	*sql;

	if ((rc = query_since_ok(db, since, cur, flags)) != 0)
		return rc;

	sbuf_init(&out);
	sbuf_init(&path);
	sbuf_init(&prev);
	if (flags & Q_JSON)
		sbuf_printf(&out, "{\"since\":%lld,\"snapshot\":%lld,\"gaps\":[",
		    (long long)since, (long long)cur);
	if (query_gaps(db, since, flags, &out, &ngaps) != 0)
		goto dberr;
	if (flags & Q_JSON)
		sbuf_printf(&out, "],\"complete\":%s,\"%s\":[", ngaps ?
		    "false" : "true", flags & Q_DIRS ? "dirs" : "entries");

	if (flags & Q_DIRS) {
		sql = "SELECT d.path, 0, 0, min(d.gone) FROM changes c "
		    "JOIN dirs d ON d.id = c.dir_id WHERE c.snapshot >= ? "
		    "AND d.path LIKE '/%' GROUP BY d.path ORDER BY d.path";
	} else {
		sql = "SELECT d.path, c.name, c.mask, d.gone FROM changes c "
		    "JOIN dirs d ON d.id = c.dir_id WHERE c.snapshot >= ? "
		    "AND d.path LIKE '/%' ORDER BY CASE WHEN c.name = '.' "
		    "THEN d.path WHEN d.path = '/' THEN '/' || c.name "
		    "ELSE d.path || '/' || c.name END";
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(st, 1, since);
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && (flags & Q_DIRS)) {
			const char *p = (const char *)sqlite3_column_text(st, 0);

			if (sqlite3_column_int(st, 3))
				continue;	/* removed: its parent is listed */
			if (flags & Q_JSON) {
				sbuf_addstr(&out, first ? "" : ",");
				sbuf_add_json_string(&out, p);
			} else
				query_put_path(&out, p, flags);
			first = 0;
			query_flush(&out, 0);
			continue;
		}
		if (rc == SQLITE_ROW) {
			query_join(&path, (const char *)sqlite3_column_text(st,
			    0), (const char *)sqlite3_column_text(st, 1));
			if (have && strcmp(path.data, prev.data) == 0) {
				mask |= sqlite3_column_int64(st, 2);
				gone &= sqlite3_column_int64(st, 3);
				continue;
			}
		}
		if (have) {
			if (flags & Q_JSON) {
				char *slash = strrchr(prev.data, '/');

				sbuf_addstr(&out, first ? "{\"path\":" :
				    ",{\"path\":");
				sbuf_add_json_string(&out, prev.data);
				sbuf_addstr(&out, ",\"dir\":");
				if (slash != NULL && slash != prev.data) {
					*slash = '\0';
					sbuf_add_json_string(&out, prev.data);
					*slash = '/';
				} else
					sbuf_add_json_string(&out, "/");
				sbuf_addstr(&out, ",\"name\":");
				sbuf_add_json_string(&out, slash ? slash + 1 :
				    prev.data);
				sbuf_addstr(&out, ",\"kinds\":[");
				query_put_kinds(&out, mask, 1);
				sbuf_printf(&out, "],\"is_dir\":%s,"
				    "\"gone\":%s}", mask & 0x200 ? "true" :
				    "false", gone ? "true" : "false");
			} else {
				size_t before = out.len;

				query_put_kinds(&out, mask, 0);
				if (out.len == before)
					sbuf_addstr(&out, "changed");
				sbuf_addstr(&out, "\t");
				query_put_path(&out, prev.data, flags);
			}
			first = 0;
			query_flush(&out, 0);
		}
		if (rc != SQLITE_ROW)
			break;
		sbuf_reset(&prev);
		sbuf_addstr(&prev, path.data);
		mask = sqlite3_column_int64(st, 2);
		gone = sqlite3_column_int64(st, 3);
		have = 1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto dberr;
	if (flags & Q_JSON)
		sbuf_addstr(&out, "]}\n");
	query_flush(&out, 1);
	sbuf_free(&out);
	sbuf_free(&path);
	sbuf_free(&prev);
	if (fflush(stdout) != 0) {
		perror("fstrack: stdout");
		return FST_EXIT_ERROR;
	}
	return ngaps ? FST_EXIT_GAP : FST_EXIT_OK;
dberr:
	fprintf(stderr, "fstrack: database: %s\n", sqlite3_errmsg(db));
	return FST_EXIT_ERROR;
}

/* fstrack snapshots: one line per snapshot, ID<TAB>STARTED. */
int
query_snapshots(sqlite3 *db, int json)
{
	sqlite3_stmt	*st;
	char		 tbuf[32];
	int		 rc, first = 1;

	if (sqlite3_prepare_v2(db, "SELECT id, started_at FROM snapshots "
	    "ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "fstrack: database: %s\n", sqlite3_errmsg(db));
		return FST_EXIT_ERROR;
	}
	if (json)
		printf("[");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		query_time(sqlite3_column_int64(st, 1), tbuf, sizeof tbuf);
		if (json)
			printf("%s{\"id\":%lld,\"started\":\"%s\"}", first ? "" :
			    ",", (long long)sqlite3_column_int64(st, 0), tbuf);
		else
			printf("%lld\t%s\n", (long long)sqlite3_column_int64(st,
			    0), tbuf);
		first = 0;
	}
	if (json)
		printf("]\n");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? FST_EXIT_OK : FST_EXIT_ERROR;
}

/* fstrack consumers: NAME<TAB>CURSOR<TAB>LAST_SUCCESS<TAB>LAG. */
int
query_consumers(sqlite3 *db, int64_t cur, int json)
{
	sqlite3_stmt	*st;
	char		 tbuf[32];
	int		 rc, first = 1;
	int64_t		 cursor, last;

	if (sqlite3_prepare_v2(db, "SELECT name, cursor, coalesce(last_success,"
	    " 0) FROM consumers ORDER BY name", -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "fstrack: database: %s\n", sqlite3_errmsg(db));
		return FST_EXIT_ERROR;
	}
	if (json)
		printf("[");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cursor = sqlite3_column_int64(st, 1);
		last = sqlite3_column_int64(st, 2);
		if (last != 0)
			query_time(last, tbuf, sizeof tbuf);
		else
			snprintf(tbuf, sizeof tbuf, "never");
		if (json) {
			struct sbuf b;

			sbuf_init(&b);
			sbuf_add_json_string(&b, (const char *)
			    sqlite3_column_text(st, 0));
			printf("%s{\"name\":%s,\"cursor\":%lld,"
			    "\"last_success\":\"%s\",\"lag\":%lld}",
			    first ? "" : ",", b.data, (long long)cursor, tbuf,
			    (long long)(cur - cursor));
			sbuf_free(&b);
		} else
			printf("%s\t%lld\t%s\t%lld\n",
			    sqlite3_column_text(st, 0), (long long)cursor, tbuf,
			    (long long)(cur - cursor));
		first = 0;
	}
	if (json)
		printf("]\n");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? FST_EXIT_OK : FST_EXIT_ERROR;
}

/*
 * The cursor of consumer name into *cursor: 0, FST_EXIT_NOSNAPSHOT if there
 * is no such consumer, FST_EXIT_ERROR (said on stderr) if it cannot be read.
 */
int
query_consumer_cursor(sqlite3 *db, const char *name, int64_t *cursor)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(db, "SELECT cursor FROM consumers WHERE name = ?",
	    -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "fstrack: database: %s\n", sqlite3_errmsg(db));
		return FST_EXIT_ERROR;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*cursor = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		fprintf(stderr, "fstrack: database: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? FST_EXIT_OK : rc == SQLITE_DONE ?
	    FST_EXIT_NOSNAPSHOT : FST_EXIT_ERROR;
}

/* fstrack consumer get NAME: print the cursor, exit 3 if unknown. */
int
query_consumer_get(sqlite3 *db, const char *name)
{
	int64_t	cursor;
	int	rc;

	rc = query_consumer_cursor(db, name, &cursor);
	if (rc == FST_EXIT_OK)
		printf("%lld\n", (long long)cursor);
	else if (rc == FST_EXIT_NOSNAPSHOT)
		fprintf(stderr, "fstrack: no such consumer '%s'\n", name);
	return rc;
}

/*
 * Call fn for every change recorded since snapshot since, in no particular
 * order: the directory's path, the entry's name ("." for the directory
 * itself), its kinds (FST_M_* bits) and whether the directory is gone.
 * The history must be complete: otherwise fn is never called and the exit
 * status is returned after saying why on stderr (4 for a gap).  fn
 * returning non-zero stops the walk; that value is returned.
 */
int
query_each_change(sqlite3 *db, int64_t since, int64_t cur,
    query_change_fn fn, void *arg)
{
	sqlite3_stmt	*st;
	struct sbuf	 out;
	int		 rc, ngaps, stop = 0;

	if ((rc = query_since_ok(db, since, cur, 0)) != 0)
		return rc;
	sbuf_init(&out);
	rc = query_gaps(db, since, 0, &out, &ngaps);
	sbuf_free(&out);
	if (rc != 0)
		goto dberr;
	if (ngaps != 0)
		return FST_EXIT_GAP;
	if (sqlite3_prepare_v2(db, "SELECT d.path, c.name, c.mask, d.gone "
	    "FROM changes c JOIN dirs d ON d.id = c.dir_id WHERE c.snapshot "
	    ">= ? AND d.path LIKE '/%'", -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(st, 1, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		stop = fn(arg, (const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1),
		    sqlite3_column_int64(st, 2), sqlite3_column_int(st, 3));
		if (stop != 0)
			break;
	}
	sqlite3_finalize(st);
	if (stop != 0)
		return stop;
	if (rc != SQLITE_DONE)
		goto dberr;
	return FST_EXIT_OK;
dberr:
	fprintf(stderr, "fstrack: database: %s\n", sqlite3_errmsg(db));
	return FST_EXIT_ERROR;
}

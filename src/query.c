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

#include "dbformat.h"
#include "proto.h"
#include "query.h"

static size_t	 query_nprinted;	/* records of this answer */

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

	/* One thread: SQLite's per-call mutexes would cost 5% of a listing. */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) !=
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

/* A record is complete: with Q_LINES (--follow) it goes out now. */
static void
query_record_done(struct sbuf *out, int flags)
{
	if (!(flags & Q_LINES)) {
		query_flush(out, 0);
		return;
	}
	query_flush(out, 1);
	fflush(stdout);
}

/* Free the numbers of a seen set. */
void
query_seen_free(struct query_seen *s)
{
	free(s->v);
	memset(s, 0, sizeof *s);
}

/* Note seq in s (in any order; query_seen_sort before lookups). */
static void
query_seen_add(struct query_seen *s, int64_t seq)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		if ((s->v = realloc(s->v, s->cap * sizeof *s->v)) == NULL) {
			fputs("fstrack: out of memory\n", stderr);
			exit(FST_EXIT_ERROR);
		}
	}
	s->v[s->n++] = seq;
}

static int
query_seq_cmp(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort s for query_seen_has. */
static void
query_seen_sort(struct query_seen *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof *s->v, query_seq_cmp);
}

/* Whether seq is in the sorted set s (NULL: an empty one). */
static int
query_seen_has(const struct query_seen *s, int64_t seq)
{
	return s != NULL && s->n > 0 && bsearch(&seq, s->v, s->n,
	    sizeof *s->v, query_seq_cmp) != NULL;
}

/* A row numbered seq (0: none) was printed: remember it if above a's. */
static void
query_note_printed(const struct query_answer *a, int64_t seq)
{
	if (a != NULL && a->seen != NULL && seq > a->pos_seq)
		query_seen_add(a->seen, seq);
}

/* Write the kinds of mask as a comma list or JSON array items. */
static void
query_put_kinds(struct sbuf *out, int64_t mask, int json)
{
	uint64_t	bits;
	int		i, first = 1;

	bits = (uint64_t)mask & ((1ULL << (sizeof query_kind_names /
	    sizeof *query_kind_names)) - 1);
	for (; bits != 0; bits &= bits - 1) {
		i = __builtin_ctzll(bits);
		if (query_kind_names[i] == NULL)
			continue;
		if (!first)
			sbuf_add(out, ",", 1);
		if (json)
			sbuf_add(out, "\"", 1);
		sbuf_addstr(out, query_kind_names[i]);
		if (json)
			sbuf_add(out, "\"", 1);
		first = 0;
	}
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

/* The oldest snapshot whose history is kept; -1 on a database error. */
static int64_t
query_oldest(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int64_t		 oldest = -1;

	if (sqlite3_prepare_v2(db, "SELECT max(coalesce((SELECT min(id) FROM "
	    "snapshots), 0), coalesce((SELECT CAST(value AS INTEGER) FROM meta "
	    "WHERE key = 'oldest_snapshot'), 0))", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		oldest = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return oldest;
}

/* What --since named, as a JSON value: the id, or the position's token. */
static void
query_put_since(struct sbuf *out, const struct proto_since *since)
{
	char	buf[PROTO_POSITION_MAX];

	if (!since->is_position)
		sbuf_printf(out, "%lld", since->snapshot);
	else if (proto_format_position(buf, sizeof buf, &since->pos) == 0)
		sbuf_add_json_string(out, buf);
	else
		sbuf_addstr(out, "null");
}

/* What --since named, for a message: "snapshot N" or "position P". */
static const char *
query_since_text(const struct proto_since *since, char *buf, size_t len)
{
	char	tok[PROTO_POSITION_MAX];

	if (!since->is_position)
		snprintf(buf, len, "snapshot %lld", since->snapshot);
	else if (proto_format_position(tok, sizeof tok, &since->pos) == 0)
		snprintf(buf, len, "position %s", tok);
	else
		snprintf(buf, len, "position ?");
	return buf;
}

/* An answer since snapshot since, nothing else, in *a (and *s). */
static void
query_answer_snapshot(struct query_answer *a, struct proto_since *s,
    int64_t since, int64_t cur)
{
	memset(s, 0, sizeof *s);
	memset(a, 0, sizeof *a);
	s->snapshot = since;
	a->since = s;
	a->cur = cur;
}

/*
 * The start of an answer's JSON object, up to and with the comma after
 * its position: {"since":...,"snapshot":CUR,["position":P,]
 */
static void
query_put_head(struct sbuf *out, const struct query_answer *a)
{
	sbuf_addstr(out, "{\"since\":");
	query_put_since(out, a->since);
	sbuf_printf(out, ",\"snapshot\":%lld,", (long long)a->cur);
	if (a->position != NULL) {
		sbuf_addstr(out, "\"position\":");
		sbuf_add_json_string(out, a->position);
		sbuf_addstr(out, ",");
	}
}

/*
 * The JSON object of an answer that lists nothing because history since
 * a->since is not kept (reason), on stdout.
 */
static void
query_put_unkept(const struct query_answer *a, const char *reason, int flags)
{
	struct sbuf	out;

	if (!(flags & Q_JSON))
		return;
	sbuf_init(&out);
	query_put_head(&out, a);
	sbuf_addstr(&out, "\"complete\":false,\"gaps\":[{\"mountpoint\":null,"
	    "\"reason\":");
	sbuf_add_json_string(&out, reason);
	sbuf_addstr(&out, "}]}\n");
	fputs(out.data, stdout);
	sbuf_free(&out);
}

/*
 * Whether "since snapshot a->since" can be answered from this database: 0,
 * or the exit status (no such snapshot, or history pruned / older than
 * this database) after saying why on stderr (and, with Q_JSON, on stdout).
 */
static int
query_snapshot_ok(sqlite3 *db, const struct query_answer *a, int flags)
{
	int64_t	since = a->since->snapshot, oldest;
	char	why[96];

	if (since < 1 || since > a->cur) {
		fprintf(stderr, "fstrack: no such snapshot %lld (the current "
		    "one is %lld)\n", (long long)since, (long long)a->cur);
		return FST_EXIT_NOSNAPSHOT;
	}
	if ((oldest = query_oldest(db)) < 0)
		return FST_EXIT_ERROR;
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
		snprintf(why, sizeof why, "history before snapshot %lld is not "
		    "kept", (long long)oldest);
		query_put_unkept(a, why, flags);
		return FST_EXIT_GAP;
	}
	return 0;
}

/*
 * The same for a position (proto.h): of this database (its journal id),
 * not newer than the answer's own position, its snapshot kept.
 */
static int
query_position_ok(sqlite3 *db, const struct query_answer *a, int flags)
{
	const struct proto_position	*p = &a->since->pos;
	sqlite3_stmt			*st;
	char				 journal[PROTO_JOURNAL_LEN + 1], tok[96];
	char				 why[128];
	const char			*v = NULL;
	int64_t				 oldest;

	memset(journal, '0', PROTO_JOURNAL_LEN);
	journal[PROTO_JOURNAL_LEN] = '\0';
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = "
	    "'journal_id'", -1, &st, NULL) != SQLITE_OK)
		return FST_EXIT_ERROR;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = (const char *)sqlite3_column_text(st, 0);
	if (v != NULL)
		memcpy(journal, v, strnlen(v, PROTO_JOURNAL_LEN));
	sqlite3_finalize(st);
	query_since_text(a->since, tok, sizeof tok);
	if (strcmp(journal, p->journal) != 0) {
		fprintf(stderr, "fstrack: history incomplete since %s: it is "
		    "of another database (this one's journal id begins %s): "
		    "full scan required\n", tok, journal);
		query_put_unkept(a, "the position is of another database",
		    flags);
		return FST_EXIT_GAP;
	}
	if (p->snapshot > a->cur || (a->pos_seq != 0 && p->seq > a->pos_seq)) {
		fprintf(stderr, "fstrack: no such position: %s is newer than "
		    "the current one\n", tok);
		return FST_EXIT_NOSNAPSHOT;
	}
	if ((oldest = query_oldest(db)) < 0)
		return FST_EXIT_ERROR;
	if (p->snapshot < oldest) {
		fprintf(stderr, "fstrack: history incomplete since %s: the "
		    "oldest snapshot kept is %lld (pruned): full scan "
		    "required\n", tok, (long long)oldest);
		snprintf(why, sizeof why, "history before snapshot %lld is not "
		    "kept", (long long)oldest);
		query_put_unkept(a, why, flags);
		return FST_EXIT_GAP;
	}
	if (!query_snapshot_exists(db, p->snapshot)) {
		fprintf(stderr, "fstrack: no such position: %s names an "
		    "unknown snapshot\n", tok);
		return FST_EXIT_NOSNAPSHOT;
	}
	return 0;
}

/*
 * Whether "since snapshot since" can be answered from this database: 0, or
 * the exit status after saying why on stderr (and, with Q_JSON, on stdout).
 */
int
query_since_ok(sqlite3 *db, int64_t since, int64_t cur, int flags)
{
	struct proto_since	s;
	struct query_answer	a;

	query_answer_snapshot(&a, &s, since, cur);
	return query_snapshot_ok(db, &a, flags);
}

/*
 * Tell every gap recorded since since (a snapshot: in it or later; a
 * position: numbered after it, or in a later snapshot) on stderr and, for
 * JSON and --dirs output, into out; *ngaps is how many.  Returns 0, or -1
 * on a database error.
 */
static int
query_gaps(sqlite3 *db, const struct proto_since *since, int flags,
    struct sbuf *out, int *ngaps)
{
	sqlite3_stmt	*st;
	char		 tbuf[32], what[96];
	int		 rc;

	*ngaps = 0;
	if (sqlite3_prepare_v2(db, since->is_position ?
	    "SELECT coalesce(f.mountpoint, '/'), g.reason, g.snapshot, g.at "
	    "FROM gaps g LEFT JOIN filesystems f ON f.id = g.fs_id WHERE "
	    "g.seq > ?2 OR g.snapshot > ?1 ORDER BY g.id" :
	    "SELECT coalesce(f.mountpoint, '/'), g.reason, g.snapshot, g.at "
	    "FROM gaps g LEFT JOIN filesystems f ON f.id = g.fs_id WHERE "
	    "g.snapshot >= ?1 ORDER BY g.id", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, since->snapshot);
	if (since->is_position)
		sqlite3_bind_int64(st, 2, since->pos.seq);
	query_since_text(since, what, sizeof what);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *mp = (const char *)sqlite3_column_text(st, 0);
		const char *why = (const char *)sqlite3_column_text(st, 1);

		query_time(sqlite3_column_int64(st, 3), tbuf, sizeof tbuf);
		fprintf(stderr, "fstrack: history incomplete for %s since "
		    "%s (%s, at %s): full scan required\n", mp, what, why,
		    tbuf);
		if (flags & Q_JSON) {
			sbuf_addstr(out, *ngaps ? ",{\"mountpoint\":" :
			    "{\"mountpoint\":");
			sbuf_add_json_string(out, mp);
			sbuf_addstr(out, ",\"reason\":");
			sbuf_add_json_string(out, why);
			sbuf_addstr(out, ",\"since\":");
			query_put_since(out, since);
			sbuf_printf(out, ",\"snapshot\":%lld,\"at\":\"%s\"}",
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

/* Write one listed directory. */
static void
query_put_dir(struct sbuf *out, const char *p, int flags, int first)
{
	query_nprinted++;
	if ((flags & (Q_JSON | Q_LINES)) == (Q_JSON | Q_LINES)) {
		sbuf_addstr(out, "{\"dir\":");
		sbuf_add_json_string(out, p);
		sbuf_addstr(out, "}\n");
	} else if (flags & Q_JSON) {
		sbuf_addstr(out, first ? "" : ",");
		sbuf_add_json_string(out, p);
	} else
		query_put_path(out, p, flags);
	query_record_done(out, flags);
}

/*
 * fstrack changed --dirs: every directory with a changed entry, by path,
 * each path once, removed ones left out (their parent is listed).  The
 * pairs come from FST_SQL_CHANGED_PAIRS, so the cost follows the number
 * of directories, not of entries.  Returns 0, or -1 on a database error.
 */
static int
query_list_dirs(sqlite3 *db, int64_t since, int flags, struct sbuf *out)
{
	sqlite3_stmt	*st;
	int		 rc, first = 1;

	if (sqlite3_prepare_v2(db, FST_SQL_CHANGED_PAIRS "SELECT d.path, "
	    "min(d.gone) FROM k JOIN dirs d ON d.id = k.d WHERE d.path LIKE "
	    "'/%' GROUP BY d.path ORDER BY d.path", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);

		if (sqlite3_column_int(st, 1))
			continue;	/* removed: its parent is listed */
		query_put_dir(out, p, flags, first);
		first = 0;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Write one listed entry: its full path, kinds and gone flag. */
static void
query_put_entry(struct sbuf *out, char *path, int64_t mask, int gone,
    int flags, int first)
{
	char	*slash;
	size_t	 before;

	query_nprinted++;
	if (flags & Q_JSON) {
		slash = strrchr(path, '/');
		sbuf_addstr(out, first || (flags & Q_LINES) ? "{\"path\":" :
		    ",{\"path\":");
		sbuf_add_json_string(out, path);
		sbuf_addstr(out, ",\"dir\":");
		if (slash != NULL && slash != path) {
			*slash = '\0';
			sbuf_add_json_string(out, path);
			*slash = '/';
		} else
			sbuf_add_json_string(out, "/");
		sbuf_addstr(out, ",\"name\":");
		sbuf_add_json_string(out, slash ? slash + 1 : path);
		sbuf_addstr(out, ",\"kinds\":[");
		query_put_kinds(out, mask, 1);
		sbuf_addstr(out, mask & FST_M_ISDIR ? "],\"is_dir\":true" :
		    "],\"is_dir\":false");
		sbuf_addstr(out, gone ? ",\"gone\":true}" : ",\"gone\":false}");
		if (flags & Q_LINES)
			sbuf_addstr(out, "\n");
	} else {
		before = out->len;
		query_put_kinds(out, mask, 0);
		if (out->len == before)
			sbuf_addstr(out, "changed");
		sbuf_addstr(out, "\t");
		query_put_path(out, path, flags);
	}
}

/*
 * One listed entry: handed to a->each if the answer has one (its value,
 * positive to stop the listing, is returned), else written to out.
 */
static int
query_entry(const struct query_answer *a, struct sbuf *out, char *path,
    int64_t mask, int gone, int flags, int first)
{
	if (a != NULL && a->each != NULL)
		return a->each(a->each_arg, path, mask, gone);
	query_put_entry(out, path, mask, gone, flags, first);
	query_record_done(out, flags);
	return 0;
}

/*
 * The listing is ordered by full path, as strcmp() and SQLite's BINARY
 * collation order bytes, and produced without sorting the entries: the
 * names of one (snapshot, directory) pair come in order from the primary
 * key, and a merge interleaves the pairs.  A pair's source is opened only
 * when the merge reaches its directory's path (the pairs come sorted by
 * it), which no row of the pair precedes: the row "." of a directory has
 * the directory's own path, its other rows that path plus '/'.  So the
 * sources open at once are those whose directory path is a prefix of the
 * current row's (a few), and memory stays flat however many rows there
 * are.  One source is a pair's names, or its "." row alone.
 */
struct query_src {
	sqlite3_stmt	*st;		/* the pair's names; NULL: "." only */
	struct sbuf	 key;		/* full path of the current row */
	size_t		 dirlen;	/* key's directory part, with '/' */
	int64_t		 mask;
	int64_t		 seq;		/* 0: none */
	int		 gone;
};

struct query_merge {
	sqlite3			 *db;
	struct query_src	**heap;		/* min-heap by key */
	size_t			  n, cap;
	struct query_src	**spare;	/* statements kept prepared */
	size_t			  nspare, capspare;
};

/* Whether source a's row sorts before b's. */
static int
query_src_less(const struct query_src *a, const struct query_src *b)
{
	return strcmp(a->key.data, b->key.data) < 0;
}

/* Restore the heap below position i after its key grew. */
static void
query_heap_down(struct query_merge *m, size_t i)
{
	struct query_src	*t;
	size_t			 c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= m->n)
			return;
		if (c + 1 < m->n && query_src_less(m->heap[c + 1], m->heap[c]))
			c++;
		if (!query_src_less(m->heap[c], m->heap[i]))
			return;
		t = m->heap[c];
		m->heap[c] = m->heap[i];
		m->heap[i] = t;
		i = c;
	}
}

/* Add a source with a current row to the heap. */
static void
query_heap_push(struct query_merge *m, struct query_src *s)
{
	struct query_src	*t;
	size_t			 i, p;

	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 16;
		if ((m->heap = realloc(m->heap, m->cap * sizeof *m->heap)) ==
		    NULL) {
			fputs("fstrack: out of memory\n", stderr);
			exit(FST_EXIT_ERROR);
		}
	}
	m->heap[i = m->n++] = s;
	while (i > 0 && query_src_less(m->heap[i], m->heap[p = (i - 1) / 2])) {
		t = m->heap[p];
		m->heap[p] = m->heap[i];
		m->heap[i] = t;
		i = p;
	}
}

/*
 * A source for a new pair: a spare one (its statement prepared once and
 * reset), or a new one.  NULL on a database error.
 */
static struct query_src *
query_src_get(struct query_merge *m)
{
	struct query_src	*s;

	if (m->nspare > 0)
		return m->spare[--m->nspare];
	if ((s = calloc(1, sizeof *s)) == NULL) {
		fputs("fstrack: out of memory\n", stderr);
		exit(FST_EXIT_ERROR);
	}
	sbuf_init(&s->key);
	/*
	 * The range on dir_id (one value) steers the planner to the primary
	 * key, which has mask; changes_dir would cost a search per row.
	 */
	if (sqlite3_prepare_v3(m->db, "SELECT name, mask, coalesce(seq, 0) "
	    "FROM changes WHERE "
	    "snapshot = ?1 AND dir_id >= ?2 AND dir_id <= ?2 "
	    "ORDER BY dir_id, name", -1,
	    SQLITE_PREPARE_PERSISTENT, &s->st, NULL) != SQLITE_OK) {
		sbuf_free(&s->key);
		free(s);
		return NULL;
	}
	return s;
}

/* Keep a source whose rows are used up for the next pair. */
static void
query_src_put(struct query_merge *m, struct query_src *s)
{
	sqlite3_reset(s->st);
	if (m->nspare == m->capspare) {
		m->capspare = m->capspare ? 2 * m->capspare : 16;
		if ((m->spare = realloc(m->spare, m->capspare *
		    sizeof *m->spare)) == NULL) {
			fputs("fstrack: out of memory\n", stderr);
			exit(FST_EXIT_ERROR);
		}
	}
	m->spare[m->nspare++] = s;
}

/*
 * Step a pair's names to the next row other than "." (which sorts by the
 * directory's own path: it has a source of its own).  1 with the row in
 * s->key and s->mask, 0 at the end, -1 on a database error.
 */
static int
query_src_step(struct query_src *s)
{
	const char	*name;
	int		 rc;

	while ((rc = sqlite3_step(s->st)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(s->st, 0);
		if (name == NULL || strcmp(name, ".") == 0)
			continue;
		s->key.len = s->dirlen;
		sbuf_addstr(&s->key, name);
		s->mask = sqlite3_column_int64(s->st, 1);
		s->seq = sqlite3_column_int64(s->st, 2);
		return 1;
	}
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Open the sources of the pair at the current row of pairs (snapshot,
 * dir_id, path, gone, mask of "." or NULL).  0, or -1 on a database error.
 */
static int
query_merge_open(struct query_merge *m, sqlite3_stmt *pairs)
{
	const char		*path;
	struct query_src	*s, *dot;
	int			 rc;

	path = (const char *)sqlite3_column_text(pairs, 2);
	if ((s = query_src_get(m)) == NULL)
		return -1;
	sbuf_reset(&s->key);
	sbuf_addstr(&s->key, path);
	s->gone = sqlite3_column_int(pairs, 3);
	if (sqlite3_column_type(pairs, 4) != SQLITE_NULL) {
		/* A source without statement: its one row is the ".". */
		if ((dot = calloc(1, sizeof *dot)) == NULL) {
			fputs("fstrack: out of memory\n", stderr);
			exit(FST_EXIT_ERROR);
		}
		sbuf_init(&dot->key);
		sbuf_addstr(&dot->key, path);
		dot->mask = sqlite3_column_int64(pairs, 4);
		dot->seq = sqlite3_column_int64(pairs, 5);
		dot->gone = s->gone;
		query_heap_push(m, dot);
	}
	if (s->key.len == 0 || s->key.data[s->key.len - 1] != '/')
		sbuf_addstr(&s->key, "/");
	s->dirlen = s->key.len;
	sqlite3_bind_int64(s->st, 1, sqlite3_column_int64(pairs, 0));
	sqlite3_bind_int64(s->st, 2, sqlite3_column_int64(pairs, 1));
	if ((rc = query_src_step(s)) == 1)
		query_heap_push(m, s);
	else
		query_src_put(m, s);
	return rc < 0 ? -1 : 0;
}

/* Free a source: its statement and key. */
static void
query_src_free(struct query_src *s)
{
	sqlite3_finalize(s->st);
	sbuf_free(&s->key);
	free(s);
}

/*
 * fstrack changed without --dirs: every changed entry once, by full path,
 * with the kinds of all its rows (several snapshots, or several dirs rows
 * with one path) and gone only if every row's directory is.  Returns 0, -1
 * on a database error, or what a->each returned to stop the listing.
 */
static int
query_list_entries(sqlite3 *db, int64_t since, int flags, struct sbuf *out,
    const struct query_answer *a)
{
	struct query_merge	 m;
	struct query_src	*top;
	sqlite3_stmt		*pairs;
	struct sbuf		 prev;
	int64_t			 mask = 0;
	int			 rc, more, gone = 0, have = 0, first = 1, err = 0;
	int			 stop = 0;
	size_t			 i;

	memset(&m, 0, sizeof m);
	m.db = db;
	sbuf_init(&prev);
	if (sqlite3_prepare_v2(db, FST_SQL_CHANGED_PAIRS "SELECT k.s, k.d, "
	    "d.path, d.gone, (SELECT mask FROM changes WHERE snapshot = k.s "
	    "AND dir_id = k.d AND name = '.'), (SELECT coalesce(seq, 0) FROM "
	    "changes WHERE snapshot = k.s AND dir_id = k.d AND name = '.') "
	    "FROM k JOIN dirs d ON d.id = k.d WHERE d.path LIKE '/%' ORDER BY "
	    "d.path", -1, &pairs, NULL) !=
	    SQLITE_OK)
		return -1;
	sqlite3_bind_int64(pairs, 1, since);
	if ((rc = sqlite3_step(pairs)) != SQLITE_ROW && rc != SQLITE_DONE)
		err = 1;
	more = rc == SQLITE_ROW;
	while (!err) {
		/* Open every pair that sorts before the smallest row. */
		while (more && (m.n == 0 || strcmp((const char *)
		    sqlite3_column_text(pairs, 2), m.heap[0]->key.data) <= 0)) {
			if (query_merge_open(&m, pairs) != 0) {
				err = 1;
				break;
			}
			if ((rc = sqlite3_step(pairs)) != SQLITE_ROW &&
			    rc != SQLITE_DONE)
				err = 1;
			more = rc == SQLITE_ROW;
		}
		if (err || m.n == 0)
			break;
		top = m.heap[0];
		query_note_printed(a, top->seq);
		if (have && strcmp(top->key.data, prev.data) == 0) {
			mask |= top->mask;
			gone &= top->gone;
		} else {
			if (have && (stop = query_entry(a, out, prev.data,
			    mask, gone, flags, first)) != 0)
				break;
			first &= !have;
			sbuf_reset(&prev);
			sbuf_add(&prev, top->key.data, top->key.len);
			mask = top->mask;
			gone = top->gone;
			have = 1;
		}
		rc = top->st != NULL ? query_src_step(top) : 0;
		if (rc == 1) {
			query_heap_down(&m, 0);
			continue;
		}
		m.heap[0] = m.heap[--m.n];
		query_heap_down(&m, 0);
		if (top->st != NULL)
			query_src_put(&m, top);
		else
			query_src_free(top);
		if (rc < 0)
			err = 1;
	}
	if (!err && !stop && have)
		stop = query_entry(a, out, prev.data, mask, gone, flags, first);
	sqlite3_finalize(pairs);
	for (i = 0; i < m.n; i++)
		query_src_free(m.heap[i]);
	for (i = 0; i < m.nspare; i++)
		query_src_free(m.spare[i]);
	free(m.heap);
	free(m.spare);
	sbuf_free(&prev);
	return err ? -1 : 0;
}

/* The full path of a row of changes c in directory d, as SQL. */
#define Q_SQL_FULLPATH \
	"CASE WHEN c.name = '.' THEN d.path WHEN d.path = '/' THEN '/' || " \
	"c.name ELSE d.path || '/' || c.name END"

/*
 * The rows since position (S = ?2, Q = ?1): numbered after it, and those of
 * later snapshots that have no greater number (store.c, POSITIONS P2:
 * rows of a snapshot get numbers only once a position was taken in it),
 * as "SELECT <cols> FROM changes c JOIN dirs d ..." twice, ordered by the
 * first column.  The first part reads the index changes_seq, the second
 * a range of the primary key.
 */
#define Q_SQL_SINCE_POSITION(cols) \
	"SELECT " cols " FROM changes c JOIN dirs d ON d.id = c.dir_id " \
	"WHERE c.seq > ?1 AND d.path LIKE '/%' UNION ALL SELECT " cols \
	" FROM changes c JOIN dirs d ON d.id = c.dir_id WHERE c.snapshot > " \
	"?2 AND (c.seq IS NULL OR c.seq <= ?1) AND d.path LIKE '/%' " \
	"ORDER BY 1"

/*
 * fstrack changed --since POSITION, entries or (Q_DIRS) directories: what
 * was recorded after the position, in the order of the other listings
 * (full path, bytewise), each path once with the kinds of its rows.  Rows
 * whose number is in a->skip were printed by the previous answer of
 * --follow and are left out; those printed above a->pos_seq go to
 * a->seen.  SQLite sorts (on disk if it must): what changed since a
 * position is usually little.  Returns 0, -1 on a database error, or what
 * a->each returned to stop the listing.
 */
static int
query_list_position(sqlite3 *db, const struct query_answer *a, int flags,
    struct sbuf *out)
{
	sqlite3_stmt	*st;
	struct sbuf	 prev;
	int64_t		 mask = 0, seq;
	int		 rc, gone = 0, have = 0, first = 1, stop = 0;
	const char	*key;

	sbuf_init(&prev);
	if (sqlite3_prepare_v2(db, flags & Q_DIRS ?
	    Q_SQL_SINCE_POSITION("d.path, 0, d.gone, coalesce(c.seq, 0)") :
	    Q_SQL_SINCE_POSITION(Q_SQL_FULLPATH ", c.mask, d.gone, "
	    "coalesce(c.seq, 0)"), -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, a->since->pos.seq);
	sqlite3_bind_int64(st, 2, a->since->pos.snapshot);
	for (;;) {
		rc = sqlite3_step(st);
		key = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st,
		    0) : NULL;
		if (rc == SQLITE_ROW) {
			seq = sqlite3_column_int64(st, 3);
			if (seq != 0 && query_seen_has(a->skip, seq))
				continue;	/* printed last time */
			query_note_printed(a, seq);
			if (have && strcmp(key, prev.data) == 0) {
				mask |= sqlite3_column_int64(st, 1);
				gone &= sqlite3_column_int(st, 2);
				continue;
			}
		}
		if (have && (flags & Q_DIRS)) {
			if (!gone)	/* removed: its parent is listed */
				query_put_dir(out, prev.data, flags, first);
			first &= gone;
		} else if (have && (stop = query_entry(a, out, prev.data, mask,
		    gone, flags, first)) != 0)
			break;
		else
			first &= !have;
		if (rc != SQLITE_ROW)
			break;
		sbuf_reset(&prev);
		sbuf_addstr(&prev, key);
		mask = sqlite3_column_int64(st, 1);
		gone = sqlite3_column_int(st, 2);
		have = 1;
	}
	sqlite3_finalize(st);
	sbuf_free(&prev);
	return stop != 0 ? stop : rc == SQLITE_DONE ? 0 : -1;
}

/*
 * fstrack changed: check the history since a->since is complete, then list
 * the changes (flags Q_*).  With Q_JSON the answer is one object, with its
 * position if a->position; with Q_JSON and Q_LINES (--follow) one object a
 * line per entry, and the gaps, if any, as a last line {"since", "complete":
 * false, "gaps"}.  With Q_LINES every record is flushed as it is written.
 * With a->each (entries only, not Q_DIRS) each entry goes to it instead of
 * stdout, and a positive value it returns stops the listing and is
 * returned.  Returns the exit status.
 */
int
query_changed_at(sqlite3 *db, const struct query_answer *a, int flags)
{
	struct sbuf	 out, gaps;
	int		 rc, ngaps = 0, lines = flags & Q_LINES;
	int		 json = (flags & Q_JSON) != 0;

	if ((rc = a->since->is_position ? query_position_ok(db, a, flags) :
	    query_snapshot_ok(db, a, flags)) != 0)
		return rc;
	if (a->seen != NULL)
		a->seen->n = 0;
	query_nprinted = 0;
	sbuf_init(&out);
	sbuf_init(&gaps);
	if (json && !lines) {
		query_put_head(&out, a);
		sbuf_addstr(&out, "\"gaps\":[");
	}
	/* --follow: the entries first, then the gaps that end the stream */
	if (query_gaps(db, a->since, flags, json && lines ? &gaps : &out,
	    &ngaps) != 0)
		goto dberr;
	if (json && !lines)
		sbuf_printf(&out, "],\"complete\":%s,\"%s\":[", ngaps ?
		    "false" : "true", flags & Q_DIRS ? "dirs" : "entries");
	if (lines)
		query_record_done(&out, flags);
	if (a->since->is_position)
		rc = query_list_position(db, a, flags, &out);
	else if (flags & Q_DIRS)
		rc = query_list_dirs(db, a->since->snapshot, flags, &out);
	else
		rc = query_list_entries(db, a->since->snapshot, flags, &out, a);
	if (rc < 0)
		goto dberr;
	if (rc > 0) {			/* a->each stopped the listing */
		sbuf_free(&out);
		sbuf_free(&gaps);
		return rc;
	}
	if (json && !lines)
		sbuf_addstr(&out, "]}\n");
	else if (json && ngaps) {
		sbuf_addstr(&out, "{\"since\":");
		query_put_since(&out, a->since);
		sbuf_addstr(&out, ",\"complete\":false,\"gaps\":[");
		sbuf_add(&out, gaps.data, gaps.len);
		sbuf_addstr(&out, "]}\n");
	}
	query_flush(&out, 1);
	sbuf_free(&out);
	sbuf_free(&gaps);
	if (a->seen != NULL)
		query_seen_sort(a->seen);
	if (a->printed != NULL)
		*a->printed = query_nprinted;
	if (fflush(stdout) != 0) {
		perror("fstrack: stdout");
		return FST_EXIT_ERROR;
	}
	return ngaps ? FST_EXIT_GAP : FST_EXIT_OK;
dberr:
	fprintf(stderr, "fstrack: database: %s\n", sqlite3_errmsg(db));
	sbuf_free(&out);
	sbuf_free(&gaps);
	return FST_EXIT_ERROR;
}

/*
 * fstrack changed --since since (a snapshot id), without a position: see
 * query_changed_at.  cur is the daemon's current snapshot.
 */
int
query_changed(sqlite3 *db, int64_t since, int64_t cur, int flags)
{
	struct proto_since	s;
	struct query_answer	a;

	query_answer_snapshot(&a, &s, since, cur);
	return query_changed_at(db, &a, flags);
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
	sqlite3_stmt		*st;
	struct sbuf		 out;
	struct proto_since	 s;
	struct query_answer	 a;
	int			 rc, ngaps, stop = 0;

	if ((rc = query_since_ok(db, since, cur, 0)) != 0)
		return rc;
	query_answer_snapshot(&a, &s, since, cur);
	sbuf_init(&out);
	rc = query_gaps(db, &s, 0, &out, &ngaps);
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

/*
 * query.c -- the answers of fstrack changed (and the other reads of the
 * database).
 *
 * For root, fstrack(1) runs them itself: the daemon answers the barrier
 * (every completed change committed, paths refreshed) and names the
 * database; the client then opens it read-only.  WAL readers never block
 * the daemon's writer, and a long listing never occupies the daemon.  For
 * everybody else fstrackd runs the same code in a thread of its own
 * (answer.c) with a sink (query.h): the bytes go to the peer, and every
 * row is first judged by its directory for the peer.  Every answer checks
 * first that the history it reports is complete: a snapshot id that is
 * unknown is exit 3, one whose history was pruned, predates this database
 * or crosses a gap is exit 4.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "dbformat.h"
#include "proto.h"
#include "query.h"

/* One answer being written: its output and where it goes. */
struct query_ctx {
	struct sbuf			 out;
	int				 flags;		/* Q_* */
	const struct query_answer	*a;
	const struct query_sink		*sink;		/* NULL: stdout */
	size_t				 nprinted;	/* records */
	uint64_t			 withheld;	/* rows not judged */
	int				 stopped;	/* the sink took no more */
};

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

/* Out of memory in the middle of an answer: nothing sensible is left. */
static void __attribute__((noreturn))
query_oom(void)
{
	fputs("fstrack: out of memory\n", stderr);
	exit(FST_EXIT_ERROR);
}

/* Start the answer a (flags Q_*), written where a says. */
static void
query_ctx_init(struct query_ctx *q, const struct query_answer *a, int flags)
{
	memset(q, 0, sizeof *q);
	sbuf_init(&q->out);
	q->flags = flags;
	q->a = a;
	q->sink = a != NULL ? a->sink : NULL;
}

/*
 * Say something about the answer: on stderr as "fstrack: MESSAGE", or to
 * the sink's say.
 */
static void __attribute__((format(printf, 2, 3)))
query_say(struct query_ctx *q, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		query_oom();
	va_end(ap);
	if (q->sink != NULL && q->sink->say != NULL)
		q->sink->say(q->sink->arg, msg);
	else
		fprintf(stderr, "fstrack: %s\n", msg);
	free(msg);
}

/* Print a path as the output mode wants it. */
static void
query_put_path(struct query_ctx *q, struct sbuf *out, const char *path)
{
	if (q->flags & Q_NUL) {
		sbuf_addstr(out, path);
		sbuf_add(out, "", 1);
	} else {
		sbuf_add_escaped(out, path);
		sbuf_addstr(out, "\n");
	}
}

/*
 * Hand the output to stdout or the sink once it is large (or now, with
 * force); a sink that takes no more stops the answer (q->stopped).
 */
static void
query_flush(struct query_ctx *q, int force)
{
	if (q->out.len == 0 || (!force && q->out.len < 65536))
		return;
	if (q->sink == NULL)
		fwrite(q->out.data, 1, q->out.len, stdout);
	else if (q->sink->write(q->sink->arg, q->out.data, q->out.len) != 0)
		q->stopped = 1;
	q->out.len = 0;
}

/* A record is complete: with Q_LINES (--follow) it goes out now. */
static void
query_record_done(struct query_ctx *q)
{
	if (!(q->flags & Q_LINES)) {
		query_flush(q, 0);
		return;
	}
	query_flush(q, 1);
	if (q->sink == NULL)
		fflush(stdout);
}

/*
 * Whether a row of directory dir_id may be shown (dot: the directory's
 * own row, "."): QUERY_SHOW or QUERY_HIDE, as the sink judges it (without
 * one, everything is shown); a row that could not be judged is hidden and
 * counted.  -1: stop the answer.
 */
static int
query_visible(struct query_ctx *q, int64_t dir_id, int dot)
{
	int	v;

	if (q->sink == NULL || q->sink->visible == NULL)
		return QUERY_SHOW;
	if ((v = q->sink->visible(q->sink->arg, dir_id, dot)) < 0) {
		q->stopped = 1;
		return -1;
	}
	if (v == QUERY_WITHHOLD) {
		q->withheld++;
		return QUERY_HIDE;
	}
	return v == QUERY_SHOW ? QUERY_SHOW : QUERY_HIDE;
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
		if ((s->v = realloc(s->v, s->cap * sizeof *s->v)) == NULL)
			query_oom();
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

/*
 * The kinds (FST_M_* bits) of a comma list as query_put_kinds writes it,
 * len bytes at list; names it does not know count for nothing.
 */
int64_t
query_parse_kinds(const char *list, size_t len)
{
	const char	*end = list + len, *comma;
	int64_t		 mask = 0;
	size_t		 i, n;

	for (; list < end; list = comma + 1) {
		if ((comma = memchr(list, ',', end - list)) == NULL)
			comma = end;
		n = comma - list;
		for (i = 0; i < sizeof query_kind_names /
		    sizeof *query_kind_names; i++)
			if (query_kind_names[i] != NULL &&
			    strlen(query_kind_names[i]) == n &&
			    memcmp(query_kind_names[i], list, n) == 0)
				mask |= (int64_t)1 << i;
	}
	return mask;
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
 * q->a->since is not kept (reason), written out at once.
 */
static void
query_put_unkept(struct query_ctx *q, const char *reason)
{
	if (!(q->flags & Q_JSON))
		return;
	query_put_head(&q->out, q->a);
	sbuf_addstr(&q->out, "\"complete\":false,\"gaps\":[{\"mountpoint\":"
	    "null,\"reason\":");
	sbuf_add_json_string(&q->out, reason);
	sbuf_addstr(&q->out, "}]}\n");
	query_flush(q, 1);
}

/*
 * Whether "since snapshot q->a->since" can be answered from this database:
 * 0, or the exit status (no such snapshot, or history pruned / older than
 * this database) after saying why (and, with Q_JSON, writing the answer
 * that says so).
 */
static int
query_snapshot_ok(struct query_ctx *q, sqlite3 *db)
{
	const struct query_answer	*a = q->a;
	int64_t				 since = a->since->snapshot, oldest;
	char				 why[96];

	if (since < 1 || since > a->cur) {
		query_say(q, "no such snapshot %lld (the current one is %lld)",
		    (long long)since, (long long)a->cur);
		return FST_EXIT_NOSNAPSHOT;
	}
	if ((oldest = query_oldest(db)) < 0)
		return FST_EXIT_ERROR;
	if (since >= oldest && !query_snapshot_exists(db, since)) {
		query_say(q, "no such snapshot %lld (see fstrack snapshots)",
		    (long long)since);
		return FST_EXIT_NOSNAPSHOT;
	}
	if (since < oldest) {
		query_say(q, "history incomplete since snapshot %lld: the "
		    "oldest snapshot kept is %lld (pruned, or from before this "
		    "database): full scan required", (long long)since,
		    (long long)oldest);
		snprintf(why, sizeof why, "history before snapshot %lld is not "
		    "kept", (long long)oldest);
		query_put_unkept(q, why);
		return FST_EXIT_GAP;
	}
	return 0;
}

/*
 * The same for a position (proto.h): of this database (its journal id),
 * not newer than the answer's own position, its snapshot kept.
 */
static int
query_position_ok(struct query_ctx *q, sqlite3 *db)
{
	const struct query_answer	*a = q->a;
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
		query_say(q, "history incomplete since %s: it is of another "
		    "database (this one's journal id begins %s): full scan "
		    "required", tok, journal);
		query_put_unkept(q, "the position is of another database");
		return FST_EXIT_GAP;
	}
	if (p->snapshot > a->cur || (a->pos_seq != 0 && p->seq > a->pos_seq)) {
		query_say(q, "no such position: %s is newer than the current "
		    "one", tok);
		return FST_EXIT_NOSNAPSHOT;
	}
	if ((oldest = query_oldest(db)) < 0)
		return FST_EXIT_ERROR;
	if (p->snapshot < oldest) {
		query_say(q, "history incomplete since %s: the oldest snapshot "
		    "kept is %lld (pruned): full scan required", tok,
		    (long long)oldest);
		snprintf(why, sizeof why, "history before snapshot %lld is not "
		    "kept", (long long)oldest);
		query_put_unkept(q, why);
		return FST_EXIT_GAP;
	}
	if (!query_snapshot_exists(db, p->snapshot)) {
		query_say(q, "no such position: %s names an unknown snapshot",
		    tok);
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
	struct query_ctx	q;
	int			rc;

	query_answer_snapshot(&a, &s, since, cur);
	query_ctx_init(&q, &a, flags);
	rc = query_snapshot_ok(&q, db);
	sbuf_free(&q.out);
	return rc;
}

/*
 * Tell every gap recorded since since (a snapshot: in it or later; a
 * position: numbered after it, or in a later snapshot) with query_say
 * and, for JSON and --dirs output, into out; *ngaps is how many.  Returns
 * 0, or -1 on a database error.
 */
static int
query_gaps(struct query_ctx *q, sqlite3 *db, const struct proto_since *since,
    struct sbuf *out, int *ngaps)
{
	sqlite3_stmt	*st;
	char		 tbuf[32], what[96];
	int		 rc, flags = q->flags;

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
		query_say(q, "history incomplete for %s since %s (%s, at %s): "
		    "full scan required", mp, what, why, tbuf);
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
			query_put_path(q, out, mp);
		(*ngaps)++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	return 0;
}

/* Write one listed directory. */
static void
query_put_dir(struct query_ctx *q, const char *p, int first)
{
	struct sbuf	*out = &q->out;

	q->nprinted++;
	if ((q->flags & (Q_JSON | Q_LINES)) == (Q_JSON | Q_LINES)) {
		sbuf_addstr(out, "{\"dir\":");
		sbuf_add_json_string(out, p);
		sbuf_addstr(out, "}\n");
	} else if (q->flags & Q_JSON) {
		sbuf_addstr(out, first ? "" : ",");
		sbuf_add_json_string(out, p);
	} else
		query_put_path(q, out, p);
	query_record_done(q);
}

/*
 * fstrack changed --dirs: every directory with a changed entry, by path,
 * each path once, removed ones left out (their parent is listed).  The
 * pairs come from FST_SQL_CHANGED_PAIRS, so the cost follows the number
 * of directories, not of entries.  A directory is judged (query_visible)
 * as the one whose entries changed: by its id of those not removed (there
 * can be several with one path).  Returns 0, or -1 on a database error or
 * when the answer stops.
 */
static int
query_list_dirs(struct query_ctx *q, sqlite3 *db, int64_t since)
{
	sqlite3_stmt	*st;
	int		 rc = SQLITE_DONE, first = 1;

	if (sqlite3_prepare_v2(db, FST_SQL_CHANGED_PAIRS "SELECT d.path, "
	    "min(d.gone), max(CASE WHEN d.gone = 0 THEN d.id END) FROM k JOIN "
	    "dirs d ON d.id = k.d WHERE d.path LIKE '/%' GROUP BY d.path "
	    "ORDER BY d.path", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, since);
	while (!q->stopped && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);

		if (sqlite3_column_int(st, 1))
			continue;	/* removed: its parent is listed */
		if (query_visible(q, sqlite3_column_int64(st, 2), 0) !=
		    QUERY_SHOW)
			continue;
		query_put_dir(q, p, first);
		first = 0;
	}
	sqlite3_finalize(st);
	return !q->stopped && rc == SQLITE_DONE ? 0 : -1;
}

/* Write one listed entry: its full path, kinds and gone flag. */
static void
query_put_entry(struct query_ctx *q, char *path, int64_t mask, int gone,
    int first)
{
	struct sbuf	*out = &q->out;
	char		*slash;
	size_t		 before;
	int		 flags = q->flags;

	q->nprinted++;
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
		query_put_path(q, out, path);
	}
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
	int64_t		 dir_id;
	int		 gone;
	int		 dot;		/* the directory's own row */
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
		    NULL)
			query_oom();
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
	if ((s = calloc(1, sizeof *s)) == NULL)
		query_oom();
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
		    sizeof *m->spare)) == NULL)
			query_oom();
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
	s->dir_id = sqlite3_column_int64(pairs, 1);
	if (sqlite3_column_type(pairs, 4) != SQLITE_NULL) {
		/* A source without statement: its one row is the ".". */
		if ((dot = calloc(1, sizeof *dot)) == NULL)
			query_oom();
		sbuf_init(&dot->key);
		sbuf_addstr(&dot->key, path);
		dot->mask = sqlite3_column_int64(pairs, 4);
		dot->seq = sqlite3_column_int64(pairs, 5);
		dot->gone = s->gone;
		dot->dir_id = sqlite3_column_int64(pairs, 1);
		dot->dot = 1;
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
 * with one path) and gone only if every row's directory is.  A row the
 * sink does not let the peer see (query_visible) is left out as if it
 * were not there.  Returns 0, or -1 on a database error or when the
 * answer stops.
 */
static int
query_list_entries(struct query_ctx *q, sqlite3 *db, int64_t since)
{
	struct query_merge	 m;
	struct query_src	*top;
	sqlite3_stmt		*pairs;
	struct sbuf		 prev;
	int64_t			 mask = 0;
	int			 rc, more, gone = 0, have = 0, first = 1, err = 0;
	int			 v;
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
		if (q->stopped ||
		    (v = query_visible(q, top->dir_id, top->dot)) < 0) {
			err = 1;
			break;
		}
		if (v == QUERY_HIDE)
			;	/* not for this peer: as if it were not there */
		else if (have && strcmp(top->key.data, prev.data) == 0) {
			query_note_printed(q->a, top->seq);
			mask |= top->mask;
			gone &= top->gone;
		} else {
			query_note_printed(q->a, top->seq);
			if (have) {
				query_put_entry(q, prev.data, mask, gone,
				    first);
				first = 0;
				query_record_done(q);
			}
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
	if (!err && have)
		query_put_entry(q, prev.data, mask, gone, first);
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
 * --follow and are left out, and so are those the peer may not see
 * (query_visible; with Q_DIRS every row is judged as one of its
 * directory's entries); those printed above a->pos_seq go to a->seen.
 * SQLite sorts (on disk if it must): what changed since a position is
 * usually little.  Returns 0, or -1 on a database error or when the
 * answer stops.
 */
static int
query_list_position(struct query_ctx *q, sqlite3 *db)
{
	const struct query_answer	*a = q->a;
	sqlite3_stmt			*st;
	struct sbuf			 prev;
	int64_t				 mask = 0, seq;
	int				 rc, v, gone = 0, have = 0, first = 1;
	int				 flags = q->flags;
	const char			*key;

	sbuf_init(&prev);
	if (sqlite3_prepare_v2(db, flags & Q_DIRS ?
	    Q_SQL_SINCE_POSITION("d.path, 0, d.gone, coalesce(c.seq, 0), "
	    "c.dir_id, 0") :
	    Q_SQL_SINCE_POSITION(Q_SQL_FULLPATH ", c.mask, d.gone, "
	    "coalesce(c.seq, 0), c.dir_id, c.name = '.'"), -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, a->since->pos.seq);
	sqlite3_bind_int64(st, 2, a->since->pos.snapshot);
	for (;;) {
		rc = q->stopped ? SQLITE_ABORT : sqlite3_step(st);
		key = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st,
		    0) : NULL;
		if (rc == SQLITE_ROW) {
			seq = sqlite3_column_int64(st, 3);
			if (seq != 0 && query_seen_has(a->skip, seq))
				continue;	/* printed last time */
			if ((v = query_visible(q, sqlite3_column_int64(st, 4),
			    sqlite3_column_int(st, 5))) < 0) {
				rc = SQLITE_ABORT;
				break;
			}
			if (v == QUERY_HIDE)
				continue;	/* not for this peer */
			query_note_printed(a, seq);
			if (have && strcmp(key, prev.data) == 0) {
				mask |= sqlite3_column_int64(st, 1);
				gone &= sqlite3_column_int(st, 2);
				continue;
			}
		}
		if (have && (flags & Q_DIRS)) {
			if (!gone)	/* removed: its parent is listed */
				query_put_dir(q, prev.data, first);
			first &= gone;
		} else if (have) {
			query_put_entry(q, prev.data, mask, gone, first);
			first = 0;
			query_record_done(q);
		}
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
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * fstrack changed: check the history since a->since is complete, then list
 * the changes (flags Q_*).  With Q_JSON the answer is one object, with its
 * position if a->position; with Q_JSON and Q_LINES (--follow) one object a
 * line per entry, and the gaps, if any, as a last line {"since", "complete":
 * false, "gaps"}.  With Q_LINES every record is flushed as it is written.
 * The answer goes to stdout and stderr, or to a->sink; rows the sink could
 * not judge make it incomplete (exit 4, "withheld":N in JSON).  Returns
 * the exit status.
 */
int
query_changed_at(sqlite3 *db, const struct query_answer *a, int flags)
{
	struct query_ctx q;
	struct sbuf	 gaps;
	int		 rc, ngaps = 0, lines = flags & Q_LINES;
	int		 json = (flags & Q_JSON) != 0;

	query_ctx_init(&q, a, flags);
	if ((rc = a->since->is_position ? query_position_ok(&q, db) :
	    query_snapshot_ok(&q, db)) != 0) {
		sbuf_free(&q.out);
		return q.stopped ? FST_EXIT_ERROR : rc;
	}
	if (a->seen != NULL)
		a->seen->n = 0;
	sbuf_init(&gaps);
	if (json && !lines) {
		query_put_head(&q.out, a);
		sbuf_addstr(&q.out, "\"gaps\":[");
	}
	/* --follow: the entries first, then the gaps that end the stream */
	if (query_gaps(&q, db, a->since, json && lines ? &gaps : &q.out,
	    &ngaps) != 0)
		goto dberr;
	if (json && !lines)
		sbuf_printf(&q.out, "],\"complete\":%s,\"%s\":[", ngaps ?
		    "false" : "true", flags & Q_DIRS ? "dirs" : "entries");
	if (lines)
		query_record_done(&q);
	if (a->since->is_position)
		rc = query_list_position(&q, db);
	else if (flags & Q_DIRS)
		rc = query_list_dirs(&q, db, a->since->snapshot);
	else
		rc = query_list_entries(&q, db, a->since->snapshot);
	if (rc != 0)
		goto dberr;
	if (json && !lines && q.withheld)
		sbuf_printf(&q.out, "],\"withheld\":%llu}\n",
		    (unsigned long long)q.withheld);
	else if (json && !lines)
		sbuf_addstr(&q.out, "]}\n");
	else if (json && ngaps) {
		sbuf_addstr(&q.out, "{\"since\":");
		query_put_since(&q.out, a->since);
		sbuf_addstr(&q.out, ",\"complete\":false,\"gaps\":[");
		sbuf_add(&q.out, gaps.data, gaps.len);
		sbuf_addstr(&q.out, "]}\n");
	}
	query_flush(&q, 1);
	sbuf_free(&q.out);
	sbuf_free(&gaps);
	if (q.stopped)
		return FST_EXIT_ERROR;
	if (a->seen != NULL)
		query_seen_sort(a->seen);
	if (a->printed != NULL)
		*a->printed = q.nprinted;
	if (q.sink == NULL && fflush(stdout) != 0) {
		perror("fstrack: stdout");
		return FST_EXIT_ERROR;
	}
	if (q.withheld) {
		query_say(&q, "the answer is incomplete for you: %llu row%s "
		    "left out: fstrackd could not check that you may see them "
		    "(its log says why); ask again", (unsigned long long)
		    q.withheld, q.withheld == 1 ? " was" : "s were");
		return FST_EXIT_GAP;
	}
	return ngaps ? FST_EXIT_GAP : FST_EXIT_OK;
dberr:
	if (!q.stopped)
		query_say(&q, "database: %s", sqlite3_errmsg(db));
	sbuf_free(&q.out);
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
	struct query_ctx	 q;
	struct proto_since	 s;
	struct query_answer	 a;
	int			 rc, ngaps, stop = 0;

	if ((rc = query_since_ok(db, since, cur, 0)) != 0)
		return rc;
	query_answer_snapshot(&a, &s, since, cur);
	query_ctx_init(&q, &a, 0);
	rc = query_gaps(&q, db, &s, &q.out, &ngaps);
	sbuf_free(&q.out);
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

/*
 * query.h -- the read-only queries on the database: the client's, and
 * fstrackd's answers to users other than root (the same code, through a
 * sink).
 */
#ifndef FSTRACK_QUERY_H
#define FSTRACK_QUERY_H

#include <stdint.h>

#define Q_DIRS	0x1
#define Q_NUL	0x2
#define Q_JSON	0x4
#define Q_LINES	0x8	/* --follow: JSON an entry a line, records flushed */

struct sqlite3;
struct sqlite3	*query_open(const char *);
void		 query_close(struct sqlite3 *);
int		 query_changed(struct sqlite3 *, int64_t, int64_t, int);
int		 query_since_ok(struct sqlite3 *, int64_t, int64_t, int);
int64_t		 query_parse_kinds(const char *, size_t);

/*
 * Where an answer of query_changed_at goes instead of stdout and stderr
 * (query_answer.sink; NULL: there, every row shown).  fstrackd answers
 * through one (answer.c): write takes the bytes the client would print
 * (non-zero: nobody takes them any more, stop), say each message the
 * client would print on stderr (without "fstrack: " and newline), and
 * visible judges each row by its directory (dir_id; dot: the row is the
 * directory's own, ".", listed under its parent) before it is shown:
 * QUERY_SHOW, QUERY_HIDE, QUERY_WITHHOLD (hidden because it could not be
 * judged: counted, and the answer ends incomplete, exit 4), or a negative
 * value to stop the answer.
 */
#define QUERY_HIDE	0
#define QUERY_SHOW	1
#define QUERY_WITHHOLD	2
struct query_sink {
	int	(*write)(void *, const void *, size_t);
	void	(*say)(void *, const char *);
	int	(*visible)(void *, int64_t, int);
	void	 *arg;
};

/* Sequence numbers of rows printed (--follow), sorted once complete. */
struct query_seen {
	int64_t	*v;
	size_t	 n, cap;
};
void		 query_seen_free(struct query_seen *);

/*
 * One answer of fstrack changed: since what (a snapshot id or a position),
 * the daemon's current snapshot, the position of this answer if one was
 * taken (token and number), and for --follow the rows printed already
 * (skip) and where to note the rows printed now above the position (seen),
 * how many records it printed, and where it goes (sink).
 */
struct proto_since;
struct query_answer {
	const struct proto_since	*since;
	int64_t				 cur;
	const char			*position;
	int64_t				 pos_seq;
	const struct query_seen		*skip;
	struct query_seen		*seen;
	size_t				*printed;	/* records, if not NULL */
	const struct query_sink		*sink;		/* NULL: stdout */
};
int		 query_changed_at(struct sqlite3 *, const struct query_answer *,
		    int);

/* One recorded change: directory, entry name, kinds, directory gone. */
typedef int	(*query_change_fn)(void *, const char *, const char *, int64_t,
		    int);
int		 query_each_change(struct sqlite3 *, int64_t, int64_t,
		    query_change_fn, void *);

/* verify.c */
int		 query_verify(struct sqlite3 *, int64_t, int64_t, int64_t, long,
		    int, const char *);
int		 query_snapshots(struct sqlite3 *, int);
int		 query_consumers(struct sqlite3 *, int64_t, int);
int		 query_consumer_get(struct sqlite3 *, const char *);
int		 query_consumer_cursor(struct sqlite3 *, const char *, int64_t *);

#endif

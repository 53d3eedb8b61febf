/* query.h -- the client's read-only queries on the database. */
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

/* Sequence numbers of rows printed (--follow), sorted once complete. */
struct query_seen {
	int64_t	*v;
	size_t	 n, cap;
};
void		 query_seen_free(struct query_seen *);

/*
 * An entry of an answer handed to a program instead of printed: its full
 * path, its kinds (FST_M_* bits) and whether its directory is gone.  0 to
 * go on, a positive value to stop the listing.
 */
typedef int	(*query_entry_fn)(void *, const char *, int64_t, int);

/*
 * One answer of fstrack changed: since what (a snapshot id or a position),
 * the daemon's current snapshot, the position of this answer if one was
 * taken (token and number), and for --follow the rows printed already
 * (skip) and where to note the rows printed now above the position (seen),
 * and how many records it printed; each (with each_arg), if not NULL,
 * takes the entries instead of stdout.
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
	query_entry_fn			 each;
	void				*each_arg;
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

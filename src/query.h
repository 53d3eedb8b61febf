/* query.h -- the client's read-only queries on the database. */
#ifndef FSTRACK_QUERY_H
#define FSTRACK_QUERY_H

#include <stdint.h>

#define Q_DIRS	0x1
#define Q_NUL	0x2
#define Q_JSON	0x4

struct sqlite3;
struct sqlite3	*query_open(const char *);
void		 query_close(struct sqlite3 *);
int		 query_changed(struct sqlite3 *, int64_t, int64_t, int);
int		 query_since_ok(struct sqlite3 *, int64_t, int64_t, int);

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

/*
 * client.h -- what every client program (fstrack, fstrack-rsync,
 * fstrack-fsmonitor) shares: one request to fstrackd over its control
 * socket, the barrier that precedes every read of the database, and
 * whether a tree is on a tracked filesystem.
 */
#ifndef FSTRACK_CLIENT_H
#define FSTRACK_CLIENT_H

#include <stdint.h>

#include "proto.h"

#define CLIENT_DEFAULT_SOCKET	"/run/fstrack/fstrackd.sock"

/* Reply of one request: data lines as key/value pairs. */
struct reply {
	int	 code;
	char	*msg;
	char	**keys;
	char	**values;
	int	 n;
};

/* What a barrier answered (client_barrier); strings point into r. */
struct client_answer {
	struct reply	 r;
	const char	*dbpath;
	long long	 cur;		/* the current snapshot */
	const char	*position;	/* NULL unless CLIENT_POSITION */
	long long	 pos_seq;	/* its number */
	long long	 pos_snapshot;	/* its snapshot */
	const char	*instance;	/* the daemon's run: pid.start */
};
#define CLIENT_NOWAIT	0x1	/* exit 5 while the reconcile pass runs */
#define CLIENT_POSITION	0x2	/* take a position with the barrier */
#define CLIENT_NOSCAN	0x4	/* no walk of /proc (--follow) */

struct sqlite3;

/* A data line of a reply, its value still escaped: 1 taken, 0, -1 stop. */
typedef int	(*client_line_fn)(void *, const char *, char *);

void		 client_init(const char *, const char *);
const char	*client_socket(void);
int		 client_reads_db(void);
int		 client_request(const char *, struct reply *);
int		 client_request_cb(const char *, struct reply *, client_line_fn,
		    void *);
int		 client_read_reply(int, struct reply *);
int		 client_read_reply_cb(int, struct reply *, client_line_fn,
		    void *);
void		 reply_free(struct reply *);
int		 reply_fail(struct reply *);
const char	*reply_get(const struct reply *, const char *);
struct sqlite3	*client_open_db(int64_t *, int *);
struct sqlite3	*client_barrier_open(long long, int, struct reply *, int64_t *,
		    const char **, int *);
int		 client_barrier(const char *, int, struct client_answer *);
/* Where an answer of client_changed stands: position and instance. */
struct client_at {
	char		 position[PROTO_POSITION_MAX];	/* "": none taken */
	char		 instance[128];
};
struct proto_since;
struct query_answer;
int		 client_changed(const char *, const struct proto_since *, int,
		    int, struct query_answer *, struct client_at *);
int		 client_position(char *, size_t);

/* mounts.c */
int		 mounts_path_under(const char *, const char *);
const char	*mounts_tracked(const struct reply *, const char *);
int		 mounts_find(const char *, const struct reply *, char *, size_t,
		    char *, size_t);

/* follow.c */
struct follow;
int		 follow_changed(const char *, const struct proto_since *, int,
		    int, const char *);
int		 follow_write_position(const char *, const char *);
struct follow	*follow_new(int, const char *);
int		 follow_mark(struct follow *, const char *, size_t, int);
int		 follow_end(struct follow *, int, const char *);
const char	*follow_reason(int);

/* remote.c */
int		 remote_changed(const char *, int, int, int, const char *);
struct query_sink;
int		 remote_answer(const char *, int, int, const struct query_sink *,
		    struct client_at *);
int		 remote_changed_once(const char *, const struct proto_since *,
		    int, int, struct query_answer *, struct client_at *);

#endif

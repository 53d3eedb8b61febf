/*
 * client.h -- what every client program (fstrack, fstrack-rsync) shares:
 * one request to fstrackd over its control socket, and the barrier that
 * precedes every read of the database.
 */
#ifndef FSTRACK_CLIENT_H
#define FSTRACK_CLIENT_H

#include <stdint.h>

#define CLIENT_DEFAULT_SOCKET	"/run/fstrack/fstrackd.sock"

/* Reply of one request: data lines as key/value pairs. */
struct reply {
	int	 code;
	char	*msg;
	char	**keys;
	char	**values;
	int	 n;
};

struct sqlite3;

void		 client_init(const char *, const char *);
const char	*client_socket(void);
int		 client_request(const char *, struct reply *);
int		 client_read_reply(int, struct reply *);
void		 reply_free(struct reply *);
int		 reply_fail(struct reply *);
const char	*reply_get(const struct reply *, const char *);
struct sqlite3	*client_open_db(int64_t *, int *);
struct sqlite3	*client_barrier_open(long long, int, struct reply *, int64_t *,
		    const char **, int *);

#endif

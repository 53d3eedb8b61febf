/*
 * proto.h -- the control protocol between fstrack and fstrackd.
 *
 * One request per connection on a UNIX stream socket: a single line of at
 * most PROTO_MAX_LINE bytes, words separated by single spaces.  The answer is
 * zero or more data lines "key<TAB>value" followed by exactly one final line,
 * "OK" or "ERR <code> <message>", where code is the exit status the client
 * returns.  Newline, TAB and backslash inside a value are escaped as \n, \t
 * and \\, so a value is always one line.  See doc/CONTRACT.md.
 */
#ifndef FSTRACK_PROTO_H
#define FSTRACK_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAX_LINE	4096
#define PROTO_MAX_ARGS	8

/* Exit statuses of fstrack, also the codes of ERR replies. */
#define FST_EXIT_OK		0
#define FST_EXIT_ERROR		1
#define FST_EXIT_USAGE		2
#define FST_EXIT_NOSNAPSHOT	3
#define FST_EXIT_GAP		4
#define FST_EXIT_BUSY		5
#define FST_EXIT_STORE		6	/* the daemon cannot commit now */
#define FST_EXIT_LIMIT		7	/* a per-user limit of the daemon */
#define FST_EXIT_PERM		13

/*
 * fstrack changed --follow polls every PROTO_FOLLOW_POLL_MS with a barrier
 * that takes a position, walking /proc every PROTO_FOLLOW_SCAN_EVERY-th
 * (follow.c for root, control.c for fstrackd's followers).
 */
#define PROTO_FOLLOW_POLL_MS		250
#define PROTO_FOLLOW_SCAN_EVERY		4

/*
 * A position: a point in the history finer than a snapshot, handed out by
 * fstrackd without a new snapshot and without an fsync (fstrack-db(5)).
 * Its text form, an opaque token for clients, is
 *	fst1:JOURNAL:SNAPSHOT:SEQ
 * JOURNAL the first 16 hex digits of the database's journal id, SNAPSHOT
 * the snapshot current when it was taken, SEQ the sequence number (a row
 * of changes or gaps with a greater seq was recorded after it).  Only
 * [A-Za-z0-9:._-], never digits alone: it cannot be a snapshot id.
 */
#define PROTO_POSITION_PREFIX	"fst1:"
#define PROTO_JOURNAL_LEN	16
#define PROTO_POSITION_MAX	64	/* with its NUL */
struct proto_position {
	char		journal[PROTO_JOURNAL_LEN + 1];
	long long	snapshot;
	long long	seq;
};

/* What --since names: a snapshot id, or a position (is_position). */
struct proto_since {
	int			is_position;
	long long		snapshot;	/* the position's, if one */
	struct proto_position	pos;
};

/* A growable byte buffer. */
struct sbuf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

void	 sbuf_init(struct sbuf *);
void	 sbuf_free(struct sbuf *);
void	 sbuf_add(struct sbuf *, const void *, size_t);

#define FNV1A_OFFSET	0xcbf29ce484222325ULL	/* the hash of nothing */
uint64_t fnv1a(uint64_t, const void *, size_t);
void	 sbuf_addstr(struct sbuf *, const char *);
void	 sbuf_printf(struct sbuf *, const char *, ...)
	     __attribute__((format(printf, 2, 3)));
void	 sbuf_add_escaped(struct sbuf *, const char *);
void	 sbuf_add_escaped_bytes(struct sbuf *, const void *, size_t);
void	 sbuf_add_json_string(struct sbuf *, const char *);
void	 sbuf_reset(struct sbuf *);

int	 proto_split(char *, char **, int);
void	 proto_unescape(char *);
size_t	 proto_unescape_bytes(char *);
int	 proto_valid_name(const char *);
int	 proto_parse_u64(const char *, unsigned long long *);
int	 proto_format_position(char *, size_t, const struct proto_position *);
int	 proto_parse_position(const char *, struct proto_position *);
int	 proto_parse_since(const char *, struct proto_since *);

#endif

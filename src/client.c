/*
 * client.c -- one request to fstrackd, and the barrier before a read.
 *
 * The protocol (proto.h, doc/CONTRACT.md) is one request line per
 * connection; the answer is key/value lines and a final OK or ERR line
 * whose code is the exit status a client returns.  Every client program
 * says who it is (client_init), so messages name the program the user ran.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"
#include "query.h"

#define CLIENT_TIMEOUT_MS	(24 * 3600 * 1000)

static const char	*client_prog = "fstrack";
static const char	*socket_path = CLIENT_DEFAULT_SOCKET;

static void	show_progress(void);

/*
 * Name the program for messages and choose the socket: path if not NULL,
 * else $FSTRACK_SOCKET, else the default.
 */
void
client_init(const char *prog, const char *path)
{
	const char	*env = getenv("FSTRACK_SOCKET");

	client_prog = prog;
	if (path != NULL)
		socket_path = path;
	else if (env != NULL && *env != '\0')
		socket_path = env;
	else
		socket_path = CLIENT_DEFAULT_SOCKET;
}

/* The socket requests go to. */
const char *
client_socket(void)
{
	return socket_path;
}

/* Free what a reply holds; the reply is empty afterwards. */
void
reply_free(struct reply *r)
{
	int	i;

	for (i = 0; i < r->n; i++) {
		free(r->keys[i]);
		free(r->values[i]);
	}
	free(r->keys);
	free(r->values);
	free(r->msg);
	memset(r, 0, sizeof *r);
}

/* Free a failed reply and return its exit status. */
int
reply_fail(struct reply *r)
{
	int	code = r->code;

	reply_free(r);
	return code;
}

/* Find a data value in a reply. */
const char *
reply_get(const struct reply *r, const char *key)
{
	int	i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->keys[i], key) == 0)
			return r->values[i];
	return NULL;
}

/*
 * Read a reply from fd (connected to fstrackd, the request sent) into r
 * until its final line or the end of the connection.  Lines with key
 * "waiting" are reported on stderr as they arrive.  Returns r->code: 0
 * for OK, the code of ERR (1-255), or -1 if the connection ended
 * without a final line.  fd is left open.
 */
int
client_read_reply(int fd, struct reply *r)
{
	return client_read_reply_cb(fd, r, NULL, NULL);
}

/*
 * client_read_reply, with every data line offered first to cb (if not
 * NULL) as its key and its value still escaped: cb returns 1 when it took
 * the line (it is not kept in r), 0 when r should keep it, -1 to stop
 * reading (r->code FST_EXIT_ERROR).  What was read and dealt with is not
 * kept: a stream of any length takes the memory of one line.
 */
int
client_read_reply_cb(int fd, struct reply *r, client_line_fn cb, void *arg)
{
	struct sbuf		 in;
	char			 buf[65536], *p, *nl, *tab, *end;
	ssize_t			 n;
	size_t			 off = 0;
	long			 code;
	int			 waiting = 0, waited = 0, took;
	struct pollfd		 pfd;

	memset(r, 0, sizeof *r);
	sbuf_init(&in);
	r->code = -1;
	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		n = poll(&pfd, 1, waiting ? 1000 : CLIENT_TIMEOUT_MS);
		if (n == 0 && waiting && waited++ < CLIENT_TIMEOUT_MS / 1000) {
			show_progress();
			continue;
		}
		if (n <= 0)
			break;
		n = read(fd, buf, sizeof buf);
		if (n <= 0)
			break;
		sbuf_add(&in, buf, n);
		while ((nl = memchr(in.data + off, '\n', in.len - off)) != NULL) {
			*nl = '\0';
			p = in.data + off;
			off = nl - in.data + 1;
			if (strcmp(p, "OK") == 0) {
				r->code = 0;
				goto done;
			}
			if (strncmp(p, "ERR ", 4) == 0) {
				/*
				 * The code becomes the exit status: one that
				 * is not 1-255 (exit(256) is success) is an
				 * error like any other.
				 */
				errno = 0;
				code = strtol(p + 4, &end, 10);
				r->code = end == p + 4 || errno != 0 ||
				    code < 1 || code > 255 ? FST_EXIT_ERROR :
				    (int)code;
				if ((p = strchr(p + 4, ' ')) != NULL) {
					r->msg = strdup(p + 1);
					proto_unescape(r->msg);
				}
				goto done;
			}
			if ((tab = strchr(p, '\t')) == NULL)
				continue;
			*tab++ = '\0';
			if (cb != NULL && (took = cb(arg, p, tab)) != 0) {
				if (took > 0)
					continue;
				r->code = FST_EXIT_ERROR;
				goto done;
			}
			proto_unescape(tab);
			if (strcmp(p, "waiting") == 0) {
				fprintf(stderr, "%s: waiting for the "
				    "start-up %s pass to finish\n", client_prog, tab);
				waiting = isatty(STDERR_FILENO);
			}
			r->keys = realloc(r->keys, (r->n + 1) * sizeof *r->keys);
			r->values = realloc(r->values, (r->n + 1) *
			    sizeof *r->values);
			if (r->keys == NULL || r->values == NULL)
				abort();
			r->keys[r->n] = strdup(p);
			r->values[r->n] = strdup(tab);
			r->n++;
		}
		/* what is dealt with goes: keep the partial line only */
		memmove(in.data, in.data + off, in.len - off);
		in.len -= off;
		off = 0;
	}
done:
	sbuf_free(&in);
	return r->code;
}

/*
 * Send one request and collect the reply (client_read_reply).  Returns
 * the ERR code or 0; a connection that ends without an answer is an
 * error (FST_EXIT_ERROR).
 */
int
client_request(const char *line, struct reply *r)
{
	return client_request_cb(line, r, NULL, NULL);
}

/* client_request, the reply read with client_read_reply_cb(cb, arg). */
int
client_request_cb(const char *line, struct reply *r, client_line_fn cb,
    void *arg)
{
	struct sockaddr_un	 sun;
	struct sbuf		 out;
	int			 fd, werr = 0;

	memset(r, 0, sizeof *r);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof sun.sun_path) {
		fprintf(stderr, "%s: socket path too long\n", client_prog);
		return r->code = FST_EXIT_ERROR;
	}
	strcpy(sun.sun_path, socket_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		fprintf(stderr, "%s: cannot reach fstrackd at '%s': %s\n",
		    client_prog, socket_path, strerror(errno));
		if (fd != -1)
			close(fd);
		return r->code = FST_EXIT_ERROR;
	}
	/*
	 * A daemon that refuses the connection (too many clients) answers
	 * and closes before reading: never die of SIGPIPE, read its answer.
	 */
	sbuf_init(&out);
	sbuf_add(&out, line, strlen(line));
	sbuf_add(&out, "\n", 1);
	if (send(fd, out.data, out.len, MSG_NOSIGNAL) != (ssize_t)out.len)
		werr = errno != 0 ? errno : EIO;
	sbuf_free(&out);
	client_read_reply_cb(fd, r, cb, arg);
	close(fd);
	if (r->code == -1 && werr != 0) {
		fprintf(stderr, "%s: cannot send the request to "
		    "fstrackd: %s\n", client_prog, strerror(werr));
		r->code = FST_EXIT_ERROR;
	} else if (r->code == -1 && cb != NULL) {
		fprintf(stderr, "%s: fstrackd ended the answer before its "
		    "end: it stopped, or cut off this reader (it does so to "
		    "one that takes nothing for 30 s)\n", client_prog);
		r->code = FST_EXIT_ERROR;
	} else if (r->code == -1) {
		fprintf(stderr, "%s: fstrackd closed the connection "
		    "without an answer\n", client_prog);
		r->code = FST_EXIT_ERROR;
	} else if (r->code != 0)
		fprintf(stderr, "%s: %s\n", client_prog, r->msg != NULL ? r->msg :
		    "request failed");
	return r->code;
}

/* On a terminal, while waiting for the reconcile pass: how far it got. */
static void
show_progress(void)
{
	struct reply	 r;
	const char	*scanned, *rate, *eta;

	if (client_request("status", &r) != 0)
		return;
	scanned = reply_get(&r, "reconcile_scanned");
	rate = reply_get(&r, "reconcile_per_sec");
	eta = reply_get(&r, "reconcile_eta_sec");
	fprintf(stderr, "\r%s: reconcile: %s entries scanned, %s/s%s%s%s  ",
	    client_prog, scanned ? scanned : "?", rate ? rate : "?", eta ? ", about " : "",
	    eta ? eta : "", eta ? " s left" : "");
	reply_free(&r);
}

/*
 * Run a barrier since since (a snapshot id or a position token, as the
 * user gave it) with flags CLIENT_*, into *a; the caller frees a->r.
 * Returns 0, or the exit status (said on stderr; a->r then empty).
 */
int
client_barrier(const char *since, int flags, struct client_answer *a)
{
	struct proto_position	 p;
	const char		*c;
	char			 line[PROTO_POSITION_MAX + 64];
	int			 rc;

	memset(a, 0, sizeof *a);
	snprintf(line, sizeof line, "barrier %s%s%s%s", since,
	    flags & CLIENT_NOWAIT ? " nowait" : "",
	    flags & CLIENT_POSITION ? " position" : "",
	    flags & CLIENT_NOSCAN ? " noscan" : "");
	if ((rc = client_request(line, &a->r)) != 0)
		return reply_fail(&a->r);
	a->position = reply_get(&a->r, "position");
	a->instance = reply_get(&a->r, "instance");
	if ((a->dbpath = reply_get(&a->r, "dbpath")) == NULL ||
	    (c = reply_get(&a->r, "snapshot")) == NULL ||
	    ((flags & CLIENT_POSITION) && (a->position == NULL ||
	    proto_parse_position(a->position, &p) != 0))) {
		fprintf(stderr, "%s: fstrackd's answer lacks what was asked "
		    "(an older fstrackd?)\n", client_prog);
		reply_free(&a->r);
		return FST_EXIT_ERROR;
	}
	a->cur = strtoll(c, NULL, 10);
	if (a->position != NULL) {
		a->pos_seq = p.seq;
		a->pos_snapshot = p.snapshot;
	}
	return 0;
}

/*
 * Whether this client reads the database itself: root does, unless
 * FSTRACK_VIA_SOCKET is set; everybody else asks fstrackd (remote.c).
 */
int
client_reads_db(void)
{
	const char	*env = getenv("FSTRACK_VIA_SOCKET");

	return geteuid() == 0 && (env == NULL || *env == '\0');
}

/*
 * Open the database at path read-only: NULL, with *rc the exit status,
 * after saying why (13 for a user who may not read it).
 */
static struct sqlite3 *
client_db(const char *path, int *rc)
{
	struct sqlite3	*db;

	if (geteuid() != 0 && access(path, R_OK) != 0 && errno == EACCES) {
		fprintf(stderr, "%s: only root may read fstrackd's database "
		    "'%s', which this command needs (changed, position and "
		    "status work for every user)\n", client_prog, path);
		*rc = FST_EXIT_PERM;
		return NULL;
	}
	if ((db = query_open(path)) == NULL)
		*rc = FST_EXIT_ERROR;
	return db;
}

/*
 * One answer of fstrack changed since since_arg (as the user gave it,
 * parsed into since), read from the database (root): a barrier with flags
 * CLIENT_*, then the changes listed by query_changed_at with flags Q_*
 * into a, whose since, cur and position are filled in here (the rest,
 * --follow's sets or a sink, is the caller's).  Where the answer stands
 * (its position, if one was taken, and the daemon's instance) into *at,
 * both "" if the barrier failed.  Returns the exit status.
 */
int
client_changed(const char *since_arg, const struct proto_since *since,
    int flags, int qflags, struct query_answer *a, struct client_at *at)
{
	struct client_answer	 ans;
	struct sqlite3		*db;
	int			 rc;

	memset(at, 0, sizeof *at);
	if ((rc = client_barrier(since_arg, flags, &ans)) != 0)
		return rc;
	if (ans.position != NULL)
		snprintf(at->position, sizeof at->position, "%s", ans.position);
	if (ans.instance != NULL)
		snprintf(at->instance, sizeof at->instance, "%s", ans.instance);
	if ((db = client_db(ans.dbpath, &rc)) == NULL) {
		reply_free(&ans.r);
		return rc;
	}
	a->since = since;
	a->cur = ans.cur;
	a->position = ans.position;
	a->pos_seq = ans.pos_seq;
	rc = query_changed_at(db, a, qflags);
	query_close(db);
	a->position = NULL;	/* it lived in ans.r */
	reply_free(&ans.r);
	return rc;
}

/*
 * Run a barrier since snapshot since and open the database read-only.
 * Returns it, with the reply in *r (the caller frees it), the current
 * snapshot and the database path; NULL with *rc the exit status.
 */
struct sqlite3 *
client_barrier_open(long long since, int nowait, struct reply *r, int64_t *cur,
    const char **dbp, int *rc)
{
	struct client_answer	 a;
	struct sqlite3		*db;
	char			 s[32];

	snprintf(s, sizeof s, "%lld", since);
	if ((*rc = client_barrier(s, nowait ? CLIENT_NOWAIT : 0, &a)) != 0)
		return NULL;
	if ((db = client_db(a.dbpath, rc)) == NULL) {
		reply_free(&a.r);
		return NULL;
	}
	*r = a.r;
	*dbp = a.dbpath;
	*cur = a.cur;
	return db;
}

/*
 * Take a position (cheap: no fsync, no snapshot, no barrier) and put its
 * token in buf (PROTO_POSITION_MAX bytes).  0, or the exit status.
 */
int
client_position(char *buf, size_t len)
{
	struct reply		 r;
	struct proto_position	 p;
	const char		*v;

	if (client_request("position", &r) != 0)
		return reply_fail(&r);
	if ((v = reply_get(&r, "position")) == NULL ||
	    proto_parse_position(v, &p) != 0 || strlen(v) >= len) {
		fprintf(stderr, "%s: fstrackd's answer has no position\n",
		    client_prog);
		reply_free(&r);
		return FST_EXIT_ERROR;
	}
	snprintf(buf, len, "%s", v);
	reply_free(&r);
	return 0;
}


/*
 * Ask fstrackd where its database is and open it read-only; the current
 * snapshot into *cur if not NULL.  NULL with *rc the exit status.
 */
struct sqlite3 *
client_open_db(int64_t *cur, int *rc)
{
	struct reply	 r;
	const char	*p, *s;
	struct sqlite3	*db;

	if (client_request("status", &r) != 0) {
		*rc = reply_fail(&r);
		return NULL;
	}
	if ((p = reply_get(&r, "database")) == NULL) {
		fprintf(stderr, "%s: fstrackd did not name its database\n",
		    client_prog);
		reply_free(&r);
		*rc = FST_EXIT_ERROR;
		return NULL;
	}
	if (cur != NULL)
		*cur = strtoll((s = reply_get(&r, "snapshot")) != NULL ? s :
		    "0", NULL, 10);
	if ((db = client_db(p, rc)) != NULL)
		*rc = 0;
	reply_free(&r);
	return db;
}

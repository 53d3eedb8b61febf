/*
 * control.c -- the control socket: requests from fstrack(1).
 *
 * The socket is created with umask 077 and chmod 0600 in a directory made
 * 0755: only root can connect.  Every state change additionally checks the
 * peer's uid with SO_PEERCRED, so loosening the mode later (a group, an
 * ACL) never lets others change state.  A request is one line of at most
 * PROTO_MAX_LINE bytes; anything longer, without a newline within the
 * timeout, or with unknown words, gets an ERR reply and the connection is
 * closed.  At most CONTROL_MAX_CONNS connections are served at once.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fstrack.h"
#include "log.h"

#define CONTROL_MAX_CONNS	64
#define CONTROL_TIMEOUT_MS	10000

struct ctl_conn {
	uv_pipe_t	 pipe;
	uv_timer_t	 timer;
	struct sbuf	 in;
	struct sbuf	 out;
	uid_t		 uid;
	int		 refs;		/* pipe, timer, pending operations */
	int		 closing;
	int		 answered;
	int64_t		 since;
	int64_t		 since_seq;	/* since a position: its number */
	int		 barrier_flags;	/* DAEMON_BARRIER_* */
};

static uv_pipe_t	 control_pipe;
static int		 control_open;
static int		 control_nconns;
static char		*control_path;

/* Drop a reference; free the connection when none is left. */
static void
ctl_unref(struct ctl_conn *c)
{
	if (--c->refs > 0)
		return;
	sbuf_free(&c->in);
	sbuf_free(&c->out);
	free(c);
	control_nconns--;
}

/* Close callback of the pipe and the timer. */
static void
ctl_close_cb(uv_handle_t *h)
{
	ctl_unref(h->data);
}

/* Close the connection (idempotent). */
static void
ctl_close(struct ctl_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, ctl_close_cb);
	uv_close((uv_handle_t *)&c->pipe, ctl_close_cb);
}

/* The reply has been written: close. */
static void
ctl_write_cb(uv_write_t *w, int status)
{
	struct ctl_conn	*c = w->data;

	free(w);
	ctl_close(c);
	ctl_unref(c);
}

/* Send what is in c->out, then close. */
static void
ctl_flush(struct ctl_conn *c)
{
	uv_write_t	*w;
	uv_buf_t	 b;

	c->answered = 1;
	if (c->closing)
		return;
	if ((w = malloc(sizeof *w)) == NULL)
		fatal("out of memory");
	w->data = c;
	b = uv_buf_init(c->out.data, c->out.len);
	c->refs++;
	if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, ctl_write_cb) != 0) {
		free(w);
		c->refs--;
		ctl_close(c);
	}
}

/* Finish with OK. */
static void
ctl_ok(struct ctl_conn *c)
{
	sbuf_addstr(&c->out, "OK\n");
	ctl_flush(c);
}

/* Finish with ERR code message. */
static void
ctl_err(struct ctl_conn *c, int code, const char *msg)
{
	sbuf_reset(&c->out);
	sbuf_printf(&c->out, "ERR %d ", code);
	sbuf_add_escaped(&c->out, msg);
	sbuf_addstr(&c->out, "\n");
	ctl_flush(c);
}

/* Add a "key<TAB>value" line. */
static void
ctl_kv(struct ctl_conn *c, const char *key, const char *value)
{
	sbuf_addstr(&c->out, key);
	sbuf_addstr(&c->out, "\t");
	sbuf_add_escaped(&c->out, value);
	sbuf_addstr(&c->out, "\n");
}

/* A snapshot was committed. */
static void
ctl_snapshot_done(int64_t id, int err, void *arg)
{
	struct ctl_conn	*c = arg;
	char		 buf[32];

	if (err != 0)
		ctl_err(c, FST_EXIT_ERROR, "snapshot failed");
	else {
		snprintf(buf, sizeof buf, "%lld", (long long)id);
		ctl_kv(c, "snapshot", buf);
		ctl_ok(c);
	}
	ctl_unref(c);
}

/*
 * Add the lines that say where the answer stands: the position (if one
 * was taken: seq not 0) and the daemon's instance (a follower that sees
 * it change knows the daemon restarted).
 */
static void
ctl_position_lines(struct ctl_conn *c, int64_t snap, int64_t seq)
{
	char	buf[PROTO_POSITION_MAX];

	if (seq != 0) {
		if (daemon_position_token(snap, seq, buf, sizeof buf) != 0)
			fatalx("position %lld:%lld cannot be written",
			    (long long)snap, (long long)seq);
		ctl_kv(c, "position", buf);
	}
	snprintf(buf, sizeof buf, "%d.%lld", (int)fstd.pid,
	    (long long)fstd.started_ns);
	ctl_kv(c, "instance", buf);
}

/* A position's operation committed. */
static void
ctl_position_done(int err, int64_t snap, int64_t seq, void *arg)
{
	struct ctl_conn	*c = arg;

	if (err != 0)
		ctl_err(c, FST_EXIT_ERROR, "position failed");
	else {
		ctl_position_lines(c, snap, seq);
		ctl_ok(c);
	}
	ctl_unref(c);
}

/* A barrier completed: everything before it is in the database. */
static void
ctl_barrier_done(int err, int64_t snap, int64_t seq, void *arg)
{
	struct ctl_conn	*c = arg;
	char		 buf[32];

	if (err == FST_EXIT_STORE) {
		char msg[512];

		snprintf(msg, sizeof msg, "the daemon cannot commit to its "
		    "database (%s): recent changes are held in memory, so no "
		    "complete answer can be given now; retry later",
		    store_last_error()[0] ? store_last_error() : "stalled");
		ctl_err(c, FST_EXIT_STORE, msg);
	} else if (err != 0)
		ctl_err(c, FST_EXIT_ERROR, "barrier failed");
	else {
		ctl_kv(c, "dbpath", fstd.db_path);
		snprintf(buf, sizeof buf, "%lld",
		    (long long)atomic_load(&fstd.cur_snapshot));
		ctl_kv(c, "snapshot", buf);
		ctl_position_lines(c, snap, seq);
		ctl_ok(c);
	}
	ctl_unref(c);
}

/*
 * Run the barrier for c once no reconcile or hard-link search is running.
 * The queue is drained first: an event read now can start a search whose
 * results the answer must include.  Holds a reference on c throughout.
 */
static void
ctl_barrier_start(void *arg)
{
	struct ctl_conn	*c = arg;

	notify_drain();
	if (atomic_load(&fstd.reconciling) &&
	    reconcile_wait_add(ctl_barrier_start, c) == 0)
		return;
	daemon_barrier(c->since, c->since_seq, c->barrier_flags,
	    ctl_barrier_done, c);
}

/* A store operation requested by a client committed. */
static void
ctl_op_done(struct store_op *op, int err, void *arg)
{
	struct ctl_conn	*c = arg;
	char		 buf[32];

	if (err != 0)
		ctl_err(c, FST_EXIT_ERROR, "database write failed");
	else if (op->type == OP_CONSUMER_DELETE && op->result == 0)
		ctl_err(c, FST_EXIT_NOSNAPSHOT, "no such consumer");
	else {
		if (op->type == OP_PRUNE) {
			snprintf(buf, sizeof buf, "%lld", (long long)op->value);
			ctl_kv(c, "pruned_to", buf);
		}
		ctl_ok(c);
	}
	ctl_unref(c);
}

/* Parse a snapshot id argument that must exist now. */
static int
ctl_snapshot_arg(const char *s, int64_t *out)
{
	unsigned long long	v;

	if (proto_parse_u64(s, &v) != 0 || v > INT64_MAX)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/*
 * Parse "barrier SINCE [nowait] [position] [noscan]" into c; *nowait set
 * for nowait.  0, or -1 on anything else (each word at most once).
 */
static int
ctl_barrier_args(struct ctl_conn *c, int argc, char **argv, int *nowait)
{
	struct proto_since	since;
	int			i;

	*nowait = 0;
	c->barrier_flags = 0;
	if (argc < 2 || proto_parse_since(argv[1], &since) != 0)
		return -1;
	c->since = since.snapshot;
	c->since_seq = since.is_position ? since.pos.seq : 0;
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "nowait") == 0 && !*nowait)
			*nowait = 1;
		else if (strcmp(argv[i], "position") == 0 &&
		    !(c->barrier_flags & DAEMON_BARRIER_POSITION))
			c->barrier_flags |= DAEMON_BARRIER_POSITION;
		else if (strcmp(argv[i], "noscan") == 0 &&
		    !(c->barrier_flags & DAEMON_BARRIER_NOSCAN))
			c->barrier_flags |= DAEMON_BARRIER_NOSCAN;
		else
			return -1;
	}
	return 0;
}

/* Carry out one request. */
static void
ctl_dispatch(struct ctl_conn *c, char *line)
{
	char		*argv[PROTO_MAX_ARGS];
	int		 argc, root = c->uid == 0, nowait;
	struct store_op	*op;
	struct sbuf	 sb;
	int64_t		 snap;

	argc = proto_split(line, argv, PROTO_MAX_ARGS);
	if (argc <= 0) {
		ctl_err(c, FST_EXIT_USAGE, "malformed request");
		return;
	}
	if (strcmp(argv[0], "status") == 0 && argc == 1) {
		sbuf_init(&sb);
		daemon_status(&sb);
		sbuf_add(&c->out, sb.data, sb.len);
		sbuf_free(&sb);
		ctl_ok(c);
	} else if (strcmp(argv[0], "dbpath") == 0 && argc == 1) {
		ctl_kv(c, "dbpath", fstd.db_path);
		ctl_ok(c);
	} else if (strcmp(argv[0], "snapshot") == 0 && argc == 1) {
		if (!root)
			goto denied;
		c->refs++;
		daemon_snapshot(ctl_snapshot_done, c);
	} else if (strcmp(argv[0], "position") == 0 && argc == 1) {
		c->refs++;
		daemon_position(ctl_position_done, c);
	} else if (strcmp(argv[0], "barrier") == 0) {
		if (ctl_barrier_args(c, argc, argv, &nowait) != 0)
			goto usage;
		notify_drain();
		if (atomic_load(&fstd.reconciling)) {
			if (nowait) {
				ctl_err(c, FST_EXIT_BUSY, "start-up reconcile "
				    "still running");
				return;
			}
			sbuf_addstr(&c->out, "waiting\treconcile\n");
		}
		c->refs++;
		ctl_barrier_start(c);
	} else if (strcmp(argv[0], "consumer-set") == 0 && argc == 3) {
		if (!root)
			goto denied;
		if (!proto_valid_name(argv[1]))
			goto badname;
		if (ctl_snapshot_arg(argv[2], &snap) != 0)
			goto usage;
		if (snap < fstd.first_snapshot ||
		    snap > atomic_load(&fstd.cur_snapshot)) {
			ctl_err(c, FST_EXIT_NOSNAPSHOT, "no such snapshot");
			return;
		}
		op = store_op_new(OP_CONSUMER_SET);
		op->name = strdup(argv[1]);
		op->value = snap;
		op->durable = 1;
		op->done = ctl_op_done;
		op->arg = c;
		c->refs++;
		store_submit(op);
	} else if (strcmp(argv[0], "consumer-delete") == 0 && argc == 2) {
		if (!root)
			goto denied;
		if (!proto_valid_name(argv[1]))
			goto badname;
		op = store_op_new(OP_CONSUMER_DELETE);
		op->name = strdup(argv[1]);
		op->durable = 1;
		op->done = ctl_op_done;
		op->arg = c;
		c->refs++;
		store_submit(op);
	} else if (strcmp(argv[0], "prune") == 0 && argc <= 2) {
		if (!root)
			goto denied;
		snap = 0;
		if (argc == 2 && ctl_snapshot_arg(argv[1], &snap) != 0)
			goto usage;
		op = store_op_new(OP_PRUNE);
		op->value = snap;
		op->durable = 1;
		op->done = ctl_op_done;
		op->arg = c;
		c->refs++;
		store_submit(op);
	} else
		goto usage;
	return;
usage:
	ctl_err(c, FST_EXIT_USAGE, "unknown or malformed request");
	return;
badname:
	ctl_err(c, FST_EXIT_USAGE, "consumer names are 1-64 characters of "
	    "A-Z a-z 0-9 . _ @ : + -");
	return;
denied:
	ctl_err(c, FST_EXIT_PERM, "permission denied: only root may change "
	    "state");
}

/* Buffer for libuv reads. */
static void
ctl_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char	slab[PROTO_MAX_LINE + 1];

	buf->base = slab;
	buf->len = sizeof slab;
}

/* Bytes arrived: collect one line, then dispatch it. */
static void
ctl_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ctl_conn	*c = s->data;
	char		*nl;

	if (n < 0) {
		ctl_close(c);
		return;
	}
	if (n == 0 || c->answered)
		return;
	sbuf_add(&c->in, buf->base, n);
	nl = memchr(c->in.data, '\n', c->in.len);
	if (nl == NULL) {
		if (c->in.len > PROTO_MAX_LINE) {
			uv_read_stop(s);
			ctl_err(c, FST_EXIT_USAGE, "request too long");
		}
		return;
	}
	uv_read_stop(s);
	uv_timer_stop(&c->timer);
	/* Its newline may come in the read that crossed the limit. */
	if (nl - c->in.data > PROTO_MAX_LINE) {
		ctl_err(c, FST_EXIT_USAGE, "request too long");
		return;
	}
	*nl = '\0';
	if (strlen(c->in.data) != (size_t)(nl - c->in.data)) {
		ctl_err(c, FST_EXIT_USAGE, "NUL byte in request");
		return;
	}
	ctl_dispatch(c, c->in.data);
}

/* A client took too long to send its request. */
static void
ctl_timeout_cb(uv_timer_t *t)
{
	struct ctl_conn	*c = t->data;

	if (!c->answered)
		ctl_err(c, FST_EXIT_USAGE, "timed out waiting for a request");
}

/* A new connection, its pipe and timer initialised but not yet open. */
static struct ctl_conn *
ctl_conn_new(void)
{
	struct ctl_conn	*c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		fatal("out of memory");
	sbuf_init(&c->in);
	sbuf_init(&c->out);
	uv_pipe_init(fstd.loop, &c->pipe, 0);
	uv_timer_init(fstd.loop, &c->timer);
	c->pipe.data = c->timer.data = c;
	c->refs = 2;
	control_nconns++;
	return c;
}

/* The pipe is connected: check who it is, then wait for the request. */
static void
ctl_conn_start(struct ctl_conn *c)
{
	struct ucred	 cred;
	socklen_t	 len = sizeof cred;
	uv_os_fd_t	 fd;

	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		ctl_close(c);
		return;
	}
	c->uid = cred.uid;
	if (control_nconns > CONTROL_MAX_CONNS) {
		ctl_err(c, FST_EXIT_ERROR, "too many connections");
		return;
	}
	uv_timer_start(&c->timer, ctl_timeout_cb, CONTROL_TIMEOUT_MS, 0);
	uv_read_start((uv_stream_t *)&c->pipe, ctl_alloc_cb, ctl_read_cb);
}

/* Accept a connection and check who it is. */
static void
ctl_connection_cb(uv_stream_t *server, int status)
{
	struct ctl_conn	*c;

	if (status < 0)
		return;
	c = ctl_conn_new();
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
		ctl_close(c);
		return;
	}
	ctl_conn_start(c);
}

/*
 * Serve fd, a connected UNIX stream socket, exactly as an accepted
 * connection (the fuzz tests feed requests through a socketpair).  The
 * connection owns fd from now on, unless -1 is returned (fd not usable).
 */
int
control_adopt(int fd)
{
	struct ctl_conn	*c;

	c = ctl_conn_new();
	if (uv_pipe_open(&c->pipe, fd) != 0) {
		ctl_close(c);
		return -1;
	}
	ctl_conn_start(c);
	return 0;
}

/*
 * Create the socket at path (its directory made if missing), replacing a
 * stale socket but refusing to start if another daemon answers on it.
 */
int
control_init(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un	 sun;
	char			 dir[PATH_MAX];
	mode_t			 old;
	int			 fd, rc;

	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, errlen, "socket path '%s' is too long", path);
		return -1;
	}
	snprintf(dir, sizeof dir, "%s", path);
	if (mkdir(dirname(dir), 0755) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir '%s': %s", dir, strerror(errno));
		return -1;
	}
	/* Is someone already listening? */
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1) {
		rc = connect(fd, (struct sockaddr *)&sun, sizeof sun);
		close(fd);
		if (rc == 0) {
			snprintf(err, errlen, "another fstrackd is listening "
			    "on '%s'", path);
			return -1;
		}
	}
	unlink(path);
	uv_pipe_init(fstd.loop, &control_pipe, 0);
	old = umask(077);
	rc = uv_pipe_bind(&control_pipe, path);
	umask(old);
	if (rc != 0) {
		snprintf(err, errlen, "bind '%s': %s", path, uv_strerror(rc));
		return -1;
	}
	if (chmod(path, 0600) == -1) {
		snprintf(err, errlen, "chmod '%s': %s", path, strerror(errno));
		return -1;
	}
	if ((rc = uv_listen((uv_stream_t *)&control_pipe, 64,
	    ctl_connection_cb)) != 0) {
		snprintf(err, errlen, "listen '%s': %s", path, uv_strerror(rc));
		return -1;
	}
	control_path = strdup(path);
	control_open = 1;
	return 0;
}

/*
 * Stop accepting and remove the socket (first at shutdown); connections
 * still open are closed with the loop.
 */
void
control_stop(void)
{
	if (!control_open)
		return;
	uv_close((uv_handle_t *)&control_pipe, NULL);
	unlink(control_path);
	free(control_path);
	control_open = 0;
}

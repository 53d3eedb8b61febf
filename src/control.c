/*
 * control.c -- the control socket: requests from fstrack(1).
 *
 * WHO.  The socket is mode 0666 in a directory made 0755: every local user
 * may connect.  Who the peer is, the kernel says: SO_PEERCRED (uid, gid)
 * and SO_PEERGROUPS (supplementary groups), as they were when it
 * connected.  Every state change (snapshot, consumer-set, consumer-delete,
 * prune) is refused to a peer other than root, with status 13.  A user
 * other than root has at most max-connections-per-uid connections open
 * and max-followers-per-uid `changed ... follow` streams (fstrackd.conf(5)),
 * refused beyond with status 7; at most CONTROL_MAX_CONNS connections are
 * served at once in all.
 *
 * WHAT.  A request is one line of at most PROTO_MAX_LINE bytes; anything
 * longer, without a newline within the timeout, or with unknown words,
 * gets an ERR reply and the connection is closed.  `changed` is answered
 * by the daemon itself (answer.c): the barrier here, then the query in an
 * answer thread, which streams to the peer while this loop goes on; a
 * follower (`follow`) gets a barrier and an answer every
 * PROTO_FOLLOW_POLL_MS until its answer ends the stream, the peer closes
 * its end, or the daemon stops.  While an answer thread has the
 * connection, nothing here writes to it or closes it (ctl_close waits for
 * the job to come back).
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
#include "query.h"

#define CONTROL_MAX_CONNS	64
#define CONTROL_TIMEOUT_MS	10000
#define CONTROL_MAX_GROUPS	65536	/* NGROUPS_MAX of Linux */

/* The words of a changed request that are not Q_* flags. */
#define CTL_W_FOLLOW		0x100
#define CTL_W_POSITION		0x200
#define CTL_W_NOWAIT		0x400

struct ctl_conn {
	uv_pipe_t	 pipe;
	uv_timer_t	 timer;		/* request timeout; a follower's poll */
	struct sbuf	 in;
	struct sbuf	 out;
	uid_t		 uid;
	gid_t		 gid;
	gid_t		*groups;	/* SO_PEERGROUPS */
	int		 ngroups;	/* -1: unknown */
	int		 refs;		/* pipe, timer, pending operations */
	int		 closing;
	int		 answered;
	int		 counted;	/* in the per-uid limits */
	struct ctl_conn	*prev, *next;	/* control_conns */
	int64_t		 since;
	int64_t		 since_seq;	/* since a position: its number */
	int		 barrier_flags;	/* DAEMON_BARRIER_* */
	void		(*barrier_cb)(int, int64_t, int64_t, void *);
	/* changed (answer.c) */
	struct answer_job *job;		/* running: the socket is its */
	int		 close_wanted;	/* once the job is back */
	int		 streamed;	/* the first answer has gone out */
	int		 follow;
	int		 polling;	/* a follower waits for its timer */
	int		 peer_done;	/* its peer closed its end */
	int		 qflags;	/* Q_* */
	unsigned	 polls;		/* a follower's answers so far */
	struct proto_since next_since;	/* the next answer is since */
	struct query_seen seen[2];	/* rows printed by the last two */
	int		 cur_seen;	/* seen[cur_seen]: the last one's */
};

static uv_pipe_t	 control_pipe;
static int		 control_open;
static int		 control_nconns;
static char		*control_path;
static struct ctl_conn	*control_conns;

/* Drop a reference; free the connection when none is left. */
static void
ctl_unref(struct ctl_conn *c)
{
	if (--c->refs > 0)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		control_conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	sbuf_free(&c->in);
	sbuf_free(&c->out);
	query_seen_free(&c->seen[0]);
	query_seen_free(&c->seen[1]);
	free(c->groups);
	free(c);
	control_nconns--;
}

/*
 * How many connections other than c its peer's uid has open (counted ones
 * only: past the limit checks, not closing), or only followers.
 */
static int
ctl_count(const struct ctl_conn *c, int followers)
{
	const struct ctl_conn	*p;
	int			 n = 0;

	for (p = control_conns; p != NULL; p = p->next)
		if (p != c && p->counted && !p->closing && p->uid == c->uid &&
		    (!followers || p->follow))
			n++;
	return n;
}

/* Close callback of the pipe and the timer. */
static void
ctl_close_cb(uv_handle_t *h)
{
	ctl_unref(h->data);
}

/*
 * Close the connection (idempotent); while an answer thread has it, once
 * the job is back (it is told to stop).
 */
static void
ctl_close(struct ctl_conn *c)
{
	if (c->closing)
		return;
	if (c->job != NULL) {
		c->close_wanted = 1;
		atomic_store(&c->job->cancel, 1);
		return;
	}
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

/*
 * A barrier failed with err: ERR alone, or, when a stream of answers has
 * begun (a follower), its end: the message and the status.
 */
static void
ctl_barrier_failed(struct ctl_conn *c, int err)
{
	char	msg[512], buf[32];
	int	code = err == FST_EXIT_STORE ? FST_EXIT_STORE : FST_EXIT_ERROR;

	if (err == FST_EXIT_STORE)
		snprintf(msg, sizeof msg, "the daemon cannot commit to its "
		    "database (%s): recent changes are held in memory, so no "
		    "complete answer can be given now; retry later",
		    store_last_error()[0] ? store_last_error() : "stalled");
	else
		snprintf(msg, sizeof msg, "barrier failed");
	if (!c->streamed) {
		ctl_err(c, code, msg);
		return;
	}
	sbuf_reset(&c->out);
	ctl_kv(c, "message", msg);
	snprintf(buf, sizeof buf, "%d", code);
	ctl_kv(c, "status", buf);
	ctl_ok(c);
}

/* A barrier completed: everything before it is in the database. */
static void
ctl_barrier_done(int err, int64_t snap, int64_t seq, void *arg)
{
	struct ctl_conn	*c = arg;
	char		 buf[32];

	if (err != 0)
		ctl_barrier_failed(c, err);
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
	    c->barrier_cb, c);
}

/*
 * A barrier for c, answered to cb: at once, or (and saying so) once the
 * start-up reconcile pass is done; ERR 5 instead with nowait.
 */
static void
ctl_barrier_request(struct ctl_conn *c, int nowait,
    void (*cb)(int, int64_t, int64_t, void *))
{
	notify_drain();
	if (atomic_load(&fstd.reconciling)) {
		if (nowait) {
			ctl_err(c, FST_EXIT_BUSY, "start-up reconcile still "
			    "running");
			return;
		}
		sbuf_addstr(&c->out, "waiting\treconcile\n");
	}
	c->barrier_cb = cb;
	c->refs++;
	ctl_barrier_start(c);
}

static void	ctl_changed_barrier_done(int, int64_t, int64_t, void *);

/* A follower whose peer closed its end, between two answers: the end. */
static void
ctl_follow_end(struct ctl_conn *c)
{
	sbuf_reset(&c->out);
	ctl_kv(c, "message", "the follower's peer closed its end");
	ctl_kv(c, "status", "1");
	ctl_ok(c);
}

/* A follower's next answer is due. */
static void
ctl_follow_poll_cb(uv_timer_t *t)
{
	struct ctl_conn	*c = t->data;

	c->polling = 0;
	c->since = c->next_since.snapshot;
	c->since_seq = c->next_since.pos.seq;
	c->barrier_flags = DAEMON_BARRIER_POSITION |
	    (c->polls % PROTO_FOLLOW_SCAN_EVERY ? DAEMON_BARRIER_NOSCAN : 0);
	c->barrier_cb = ctl_changed_barrier_done;
	c->refs++;
	ctl_barrier_start(c);
}

/*
 * An answer thread gave c's job back: the connection ends, or, for a
 * follower whose stream goes on, the next answer is since the position of
 * this one, PROTO_FOLLOW_POLL_MS from now.
 */
static void
ctl_changed_answered(struct answer_job *j)
{
	struct ctl_conn	*c = j->arg;
	int		 more;

	c->job = NULL;
	c->streamed = 1;
	more = c->follow && !j->cut && !j->ended && !c->close_wanted &&
	    proto_parse_since(j->position, &c->next_since) == 0;
	sbuf_free(&j->head);
	free(j);
	if (more && c->peer_done)
		ctl_follow_end(c);
	else if (!more) {
		c->answered = 1;
		c->close_wanted = 0;
		ctl_close(c);
	} else {
		c->cur_seen = !c->cur_seen;
		c->polls++;
		c->polling = 1;
		uv_timer_start(&c->timer, ctl_follow_poll_cb,
		    PROTO_FOLLOW_POLL_MS, 0);
	}
	ctl_unref(c);
}

/*
 * The barrier of a changed request completed: hand the answer to an answer
 * thread, with the peer's credentials, the position taken, and for a
 * follower the rows the last answer printed.  The barrier's reference on c
 * is the job's from now on.
 */
static void
ctl_changed_barrier_done(int err, int64_t snap, int64_t seq, void *arg)
{
	struct ctl_conn		*c = arg;
	struct answer_job	*j;
	uv_os_fd_t		 fd;

	if (c->closing) {
		ctl_unref(c);
		return;
	}
	if (err != 0 || uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0) {
		ctl_barrier_failed(c, err != 0 ? err : FST_EXIT_ERROR);
		ctl_unref(c);
		return;
	}
	if ((j = calloc(1, sizeof *j)) == NULL)
		fatal("out of memory");
	j->fd = fd;
	j->peer.uid = c->uid;
	j->peer.gid = c->gid;
	j->peer.groups = c->groups;
	j->peer.ngroups = c->ngroups;
	j->since = c->next_since;
	j->flags = c->qflags;
	j->cur = atomic_load(&fstd.cur_snapshot);
	if (seq != 0) {
		if (daemon_position_token(snap, seq, j->position,
		    sizeof j->position) != 0)
			fatalx("position %lld:%lld cannot be written",
			    (long long)snap, (long long)seq);
		j->pos_seq = seq;
	}
	j->follow = c->follow && !c->peer_done;	/* else the last one */
	if (c->follow) {
		j->skip = c->polls == 0 ? NULL : &c->seen[c->cur_seen];
		j->seen = &c->seen[!c->cur_seen];
	}
	sbuf_init(&j->head);
	if (!c->streamed) {
		if (c->out.len > 0)	/* "waiting" */
			sbuf_add(&j->head, c->out.data, c->out.len);
		sbuf_reset(&c->out);
		if (seq != 0) {
			sbuf_addstr(&j->head, "position\t");
			sbuf_addstr(&j->head, j->position);
			sbuf_addstr(&j->head, "\n");
		}
		/* the run, as a barrier says it (fstrack-fsmonitor) */
		sbuf_printf(&j->head, "instance\t%d.%lld\n", (int)fstd.pid,
		    (long long)fstd.started_ns);
	}
	j->done = ctl_changed_answered;
	j->arg = c;
	c->job = j;
	answer_submit(j);
}

/* A store operation requested by a client committed. */
static void
ctl_op_done(struct store_op *op, int err, void *arg)
{
	struct ctl_conn	*c = arg;
	char		 buf[32];

	if (err != 0)
		ctl_err(c, FST_EXIT_ERROR, "database write failed");
	else if (op->type == OP_CONSUMER_DELETE && !op->consumer_delete.deleted)
		ctl_err(c, FST_EXIT_NOSNAPSHOT, "no such consumer");
	else {
		if (op->type == OP_PRUNE) {
			daemon_prune_done(op, err, NULL);
			snprintf(buf, sizeof buf, "%lld",
			    (long long)op->prune.pruned_to);
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

/*
 * Parse "changed SINCE [dirs] [nul] [json] [follow] [position] [nowait]":
 * into c (since, the Q_* flags, the barrier's), *follow and *nowait.  0,
 * or -1 on anything else (each word at most once).
 */
static int
ctl_changed_args(struct ctl_conn *c, int argc, char **argv, int *follow,
    int *nowait)
{
	static const struct {
		const char	*word;
		int		 bit;
	} words[] = {
		{ "dirs", Q_DIRS }, { "nul", Q_NUL }, { "json", Q_JSON },
		{ "follow", CTL_W_FOLLOW }, { "position", CTL_W_POSITION },
		{ "nowait", CTL_W_NOWAIT }
	};
	size_t	k, nwords = sizeof words / sizeof words[0];
	int	i, got = 0;

	if (argc < 2 || proto_parse_since(argv[1], &c->next_since) != 0)
		return -1;
	for (i = 2; i < argc; i++) {
		for (k = 0; k < nwords && strcmp(argv[i], words[k].word); k++)
			;
		if (k == nwords || (got & words[k].bit))
			return -1;
		got |= words[k].bit;
	}
	*follow = (got & CTL_W_FOLLOW) != 0;
	*nowait = (got & CTL_W_NOWAIT) != 0;
	c->qflags = (got & (Q_DIRS | Q_NUL | Q_JSON)) | (*follow ? Q_LINES : 0);
	c->since = c->next_since.snapshot;
	c->since_seq = c->next_since.is_position ? c->next_since.pos.seq : 0;
	c->barrier_flags = (got & (Q_JSON | CTL_W_FOLLOW | CTL_W_POSITION)) ||
	    c->next_since.is_position ? DAEMON_BARRIER_POSITION : 0;
	return 0;
}

/*
 * A follower's peer closed its end: the answer being made, or the next,
 * ends the stream (with a status and OK, as always), or, between two
 * answers, a status line and OK at once.  Anything it sends is ignored.
 */
static void
ctl_follow_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ctl_conn	*c = s->data;

	if (n >= 0)
		return;
	uv_read_stop(s);
	c->peer_done = 1;
	if (c->polling) {
		c->polling = 0;
		uv_timer_stop(&c->timer);
		ctl_follow_end(c);
	}
}

static void	ctl_alloc_cb(uv_handle_t *, size_t, uv_buf_t *);

/*
 * fstrack changed, answered by the daemon (answer.c) after a barrier: to
 * anyone, each row judged for a peer other than root; a follower only
 * within the peer's uid's limit.
 */
static void
ctl_changed(struct ctl_conn *c, int argc, char **argv)
{
	char	msg[256];
	int	follow, nowait;

	if (ctl_changed_args(c, argc, argv, &follow, &nowait) != 0) {
		ctl_err(c, FST_EXIT_USAGE, "unknown or malformed request");
		return;
	}
	if (c->uid != 0 && c->ngroups < 0) {
		ctl_err(c, FST_EXIT_ERROR, "cannot tell the peer's groups "
		    "(SO_PEERGROUPS): no answer for it");
		return;
	}
	if (follow && c->uid != 0 &&
	    ctl_count(c, 1) >= fstd.cfg.max_followers_per_uid) {
		snprintf(msg, sizeof msg, "too many followers for uid %u: at "
		    "most %d at once (max-followers-per-uid in fstrackd.conf); "
		    "retry once one has ended", (unsigned)c->uid,
		    fstd.cfg.max_followers_per_uid);
		ctl_err(c, FST_EXIT_LIMIT, msg);
		return;
	}
	c->follow = follow;
	if (follow)
		uv_read_start((uv_stream_t *)&c->pipe, ctl_alloc_cb,
		    ctl_follow_read_cb);
	ctl_barrier_request(c, nowait, ctl_changed_barrier_done);
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
		ctl_barrier_request(c, nowait, ctl_barrier_done);
	} else if (strcmp(argv[0], "changed") == 0) {
		ctl_changed(c, argc, argv);
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
		op = store_op_consumer_set(argv[1], snap);
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
		op = store_op_consumer_delete(argv[1]);
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
		op = store_op_prune(snap);
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
	if ((c->next = control_conns) != NULL)
		c->next->prev = c;
	control_conns = c;
	control_nconns++;
	return c;
}

/*
 * The peer's supplementary groups, as the kernel recorded them when it
 * connected, into c (ngroups -1 if they cannot be had).
 */
static void
ctl_peer_groups(struct ctl_conn *c, int fd)
{
	socklen_t	len = 64 * sizeof *c->groups;

	for (;;) {
		if ((c->groups = realloc(c->groups, len > 0 ? len :
		    sizeof *c->groups)) == NULL)
			fatal("out of memory");
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->groups,
		    &len) == 0) {
			c->ngroups = len / sizeof *c->groups;
			return;
		}
		if (errno != ERANGE || len > CONTROL_MAX_GROUPS *
		    sizeof *c->groups) {
			c->ngroups = -1;
			return;
		}
	}
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
	c->gid = cred.gid;
	ctl_peer_groups(c, fd);
	if (control_nconns > CONTROL_MAX_CONNS) {
		ctl_err(c, FST_EXIT_ERROR, "too many connections");
		return;
	}
	if (c->uid != 0 && ctl_count(c, 0) >= fstd.cfg.max_conns_per_uid) {
		char msg[256];

		snprintf(msg, sizeof msg, "too many connections for uid %u: "
		    "at most %d at once (max-connections-per-uid in "
		    "fstrackd.conf); retry once one has ended",
		    (unsigned)c->uid, fstd.cfg.max_conns_per_uid);
		ctl_err(c, FST_EXIT_LIMIT, msg);
		return;
	}
	c->counted = 1;
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
	/* anyone may ask: control.c and answer.c judge who gets what */
	if (chmod(path, 0666) == -1) {
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

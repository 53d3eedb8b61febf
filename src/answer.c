/*
 * answer.c -- fstrackd's answers to `changed` (control.c), for peers that
 * cannot read the database: query.c's code, run by the daemon.
 *
 * WHERE.  A pool of ANSWER_THREADS threads, started before any other
 * thread, so that they alone keep CAP_SETUID and CAP_SETGID (fstrackd.c,
 * privs): access.c needs them to take a peer's filesystem identity.  Each
 * has a read-only SQLite connection of its own (WAL: readers never block
 * the writer, nor it them).  The main thread makes the barrier, then
 * hands a job over (answer_submit) and gets it back, done, through a
 * uv_async: the loop never waits for a query, however long.  A peer other
 * than root has at most ANSWER_PER_UID jobs running at once; the others
 * wait in the queue while jobs of other users go first.
 *
 * WHAT GOES OUT, while the job runs (nothing else writes to the socket
 * then): the job's head (lines control.c prepared), then what the client
 * would print, as "data" lines (the bytes escaped, NUL as \0: proto.c),
 * what it would say on stderr as "message" lines, and last, for an answer
 * of --follow that goes on, "mark<TAB>N POSITION" (N records printed),
 * else "status<TAB>RC" and "OK".  See doc/CONTRACT.md.
 *
 * WHO SEES WHAT.  For a peer other than root every row is judged by its
 * directory (access.c, with the peer's credentials as SO_PEERCRED and
 * SO_PEERGROUPS gave them when it connected), once per directory and
 * answer (a cache of at most ANSWER_CACHE_MAX verdicts, emptied when
 * full).  A row that cannot be judged (no fds, a filesystem no longer
 * tracked, ...) is withheld: counted, logged, and the answer ends with
 * status 4.  Root sees every row.
 *
 * BOUNDED.  Output is sent once ANSWER_SEND_AT bytes are pending, on the
 * non-blocking socket: when the peer does not read, the thread waits, so
 * the daemon holds at most that much (plus the kernel's socket buffer)
 * per answer.  A peer that takes nothing for ANSWER_STALL_MS is cut off,
 * and so is every answer when the daemon stops (answer_stop) or control.c
 * cancels it.
 *
 * FOR TESTS ONLY, $FSTRACK_TEST_ANSWER_DELAY_MS in the daemon's
 * environment makes every answer to a peer other than root wait that long
 * (saying so in the log) before it judges its first row, its rows already
 * read: tests/root-nonroot.sh swaps a directory meanwhile.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fstrack.h"
#include "log.h"
#include "query.h"

#define ANSWER_THREADS		4
#define ANSWER_PER_UID		2	/* jobs running for one peer uid */
#define ANSWER_SEND_AT		65536	/* bytes pending before a send */
#define ANSWER_LINE_MAX		16384	/* raw bytes in one data line */
#define ANSWER_STALL_MS		30000	/* a peer that takes nothing: cut */
#define ANSWER_CACHE_MAX	65536	/* verdicts kept in one answer */

/* A verdict of the cache: ACCESS_* bits, or that it was withheld. */
#define ANSWER_WITHHELD		0x4

/* One directory judged in this answer. */
struct answer_slot {
	int64_t	dir_id;		/* 0: empty */
	int	verdict;	/* ACCESS_*, ANSWER_WITHHELD */
};

struct answer_worker {
	pthread_t		 thread;
	int			 index;
	sqlite3			*db;
	sqlite3_stmt		*dir_st;	/* a directory's row */
	struct answer_job	*job;		/* the one running */
	struct access_walk	*walk;		/* its peer's walker */
	struct sbuf		 out;		/* lines not yet sent */
	struct answer_slot	*cache;
	size_t			 ncache, capcache;
	uint64_t		 withheld_logged;
	int			 judged;	/* rows judged in this answer */
};

static pthread_mutex_t		 answer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 answer_cond = PTHREAD_COND_INITIALIZER;
static struct answer_job	*answer_queue;		/* FIFO */
static struct answer_job	*answer_done;		/* back to main */
static struct answer_worker	 answer_workers[ANSWER_THREADS];
static uid_t			 answer_running[ANSWER_THREADS];
static int			 answer_busy[ANSWER_THREADS];
static _Atomic int		 answer_stopping;
static int			 answer_started;
static int			 answer_test_delay_ms;	/* see the top */
static uv_async_t		 answer_async;

/* Whether the job should stop now: cancelled, or the daemon stops. */
static int
answer_cancelled(struct answer_job *j)
{
	return atomic_load(&answer_stopping) || atomic_load(&j->cancel);
}

/*
 * Send what w->out holds to the job's peer, waiting while it does not
 * read, at most ANSWER_STALL_MS without progress.  0, or -1 with the job
 * cut (peer gone, too slow, cancelled); w->out is empty either way.
 */
static int
answer_send(struct answer_worker *w)
{
	struct answer_job	*j = w->job;
	struct pollfd		 pfd;
	size_t			 off = 0;
	ssize_t			 n;
	int64_t			 last = now_ns();

	while (!j->cut && off < w->out.len) {
		n = send(j->fd, w->out.data + off, w->out.len - off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += n;
			last = now_ns();
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    !answer_cancelled(j)) {
			if (now_ns() - last > (int64_t)ANSWER_STALL_MS *
			    1000000) {
				log_info("cut off a reader (uid %u) that took "
				    "nothing for %d s", (unsigned)j->peer.uid,
				    ANSWER_STALL_MS / 1000);
				j->cut = 1;
				break;
			}
			pfd.fd = j->fd;
			pfd.events = POLLOUT;
			poll(&pfd, 1, 250);
			continue;
		}
		j->cut = 1;
	}
	sbuf_reset(&w->out);
	return j->cut ? -1 : 0;
}

/* Queue one "key<TAB>value" line, value escaped; send once enough is due. */
static int
answer_line(struct answer_worker *w, const char *key, const void *p,
    size_t n)
{
	if (w->job->cut)
		return -1;
	sbuf_addstr(&w->out, key);
	sbuf_add(&w->out, "\t", 1);
	sbuf_add_escaped_bytes(&w->out, p, n);
	sbuf_add(&w->out, "\n", 1);
	return w->out.len >= ANSWER_SEND_AT ? answer_send(w) : 0;
}

/* The sink's write: the bytes the client prints, as data lines. */
static int
answer_sink_write(void *arg, const void *p, size_t n)
{
	struct answer_worker	*w = arg;
	const char		*s = p;
	size_t			 k;

	while (n > 0) {
		k = n < ANSWER_LINE_MAX ? n : ANSWER_LINE_MAX;
		if (answer_line(w, "data", s, k) != 0)
			return -1;
		s += k;
		n -= k;
	}
	return 0;
}

/* The sink's say: what the client says on stderr. */
static void
answer_sink_say(void *arg, const char *msg)
{
	answer_line(arg, "message", msg, strlen(msg));
}

/* The cache slot of dir_id: its own, or the empty one it would take. */
static struct answer_slot *
answer_slot(struct answer_worker *w, int64_t dir_id)
{
	size_t	i = (size_t)((uint64_t)dir_id * 0x9e3779b97f4a7c15ULL >> 20);

	for (i &= w->capcache - 1;; i = (i + 1) & (w->capcache - 1))
		if (w->cache[i].dir_id == dir_id || w->cache[i].dir_id == 0)
			return &w->cache[i];
}

/* Remember the verdict on dir_id for this answer. */
static void
answer_remember(struct answer_worker *w, int64_t dir_id, int verdict)
{
	struct answer_slot	*old = w->cache, *s;
	size_t			 oldcap = w->capcache, i;

	if (w->ncache + 1 > w->capcache / 2) {
		if (w->capcache >= ANSWER_CACHE_MAX) {
			memset(w->cache, 0, w->capcache * sizeof *w->cache);
			w->ncache = 0;
		} else {
			w->capcache = w->capcache ? 2 * w->capcache : 1024;
			if ((w->cache = calloc(w->capcache,
			    sizeof *w->cache)) == NULL)
				fatal("out of memory");
			w->ncache = 0;
			for (i = 0; i < oldcap; i++)
				if (old[i].dir_id != 0) {
					*answer_slot(w, old[i].dir_id) = old[i];
					w->ncache++;
				}
			free(old);
		}
	}
	s = answer_slot(w, dir_id);
	s->dir_id = dir_id;
	s->verdict = verdict;
	w->ncache++;
}

/* The root fd of the filesystem with database id fs_id; -1 if not here. */
static int
answer_mount_fd(int64_t fs_id)
{
	int	i;

	for (i = 0; i < fstd.nfs; i++)
		if (fstd.fs[i].id == fs_id)
			return fstd.fs[i].mount_fd;
	return -1;
}

/*
 * Judge directory dir_id for the job's peer (access.c): ACCESS_* bits, 0
 * for a directory that is gone, ANSWER_WITHHELD when it cannot be judged
 * (logged, once an answer), -1 on a database error.
 */
static int
answer_judge(struct answer_worker *w, int64_t dir_id)
{
	struct fst_handle	 h;
	const char		*why = NULL;
	char			*path = NULL;
	int			 rc, mfd = -1, v = 0, bad;

	/*
	 * Read the row and reset at once: a statement left stepped keeps
	 * the connection's read transaction, and the next answer would read
	 * this one's database.  Nothing but the row of dir_id is judged: a
	 * failed bind, or a row of another id, stops the answer.
	 */
	if (sqlite3_bind_int64(w->dir_st, 1, dir_id) != SQLITE_OK) {
		sqlite3_reset(w->dir_st);
		return -1;
	}
	if ((rc = sqlite3_step(w->dir_st)) == SQLITE_ROW &&
	    sqlite3_column_int64(w->dir_st, 4) != dir_id)
		rc = SQLITE_MISMATCH;
	if (rc == SQLITE_ROW && !sqlite3_column_int(w->dir_st, 3) &&
	    sqlite3_column_text(w->dir_st, 2) != NULL) {
		if ((path = strdup((const char *)sqlite3_column_text(
		    w->dir_st, 2))) == NULL)
			fatal("out of memory");
		bad = handle_from_blob(&h, sqlite3_column_blob(w->dir_st, 1),
		    sqlite3_column_bytes(w->dir_st, 1));
		mfd = answer_mount_fd(sqlite3_column_int64(w->dir_st, 0));
		if (bad)
			why = "its handle is not valid";
		else if (mfd == -1)
			why = "its filesystem is not tracked now";
	}
	sqlite3_reset(w->dir_st);
	if (path == NULL)	/* gone: its removal is its parent's row */
		return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
	if (why == NULL && (v = access_dir(w->walk, mfd, &h, path)) < 0)
		why = strerror(errno);
	if (why != NULL && w->withheld_logged++ == 0)
		log_warnx("answer for uid %u: rows of '%s' withheld: cannot "
		    "check access (%s)", (unsigned)w->job->peer.uid, path, why);
	free(path);
	return why != NULL ? ANSWER_WITHHELD : v;
}

/* The sink's visible: may the peer see a row of dir_id (see the top)? */
static int
answer_sink_visible(void *arg, int64_t dir_id, int dot)
{
	struct answer_worker	*w = arg;
	struct answer_slot	*s;
	int			 v;

	if (w->job->cut || answer_cancelled(w->job))
		return -1;
	if (w->walk == NULL)
		return QUERY_SHOW;	/* root */
	if (w->judged++ == 0 && answer_test_delay_ms > 0) {
		log_info("test: an answer for uid %u waits %d ms before its "
		    "first row", (unsigned)w->job->peer.uid,
		    answer_test_delay_ms);
		usleep(answer_test_delay_ms * 1000);
	}
	if (w->capcache > 0 && (s = answer_slot(w, dir_id))->dir_id != 0)
		v = s->verdict;
	else {
		if ((v = answer_judge(w, dir_id)) < 0)
			return -1;
		answer_remember(w, dir_id, v);
	}
	if (v & ANSWER_WITHHELD)
		return QUERY_WITHHOLD;
	return v & (dot ? ACCESS_PARENT : ACCESS_SELF) ? QUERY_SHOW :
	    QUERY_HIDE;
}

/* Open the worker's connection, once; 0, or -1 after logging why. */
static int
answer_open_db(struct answer_worker *w)
{
	if (w->db != NULL)
		return 0;
	if (sqlite3_open_v2(fstd.db_path, &w->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(w->db, "SELECT fs_id, handle, path, gone, id "
	    "FROM dirs WHERE id = ?", -1, SQLITE_PREPARE_PERSISTENT,
	    &w->dir_st, NULL) != SQLITE_OK) {
		log_warnx("database '%s': %s", fstd.db_path, w->db != NULL ?
		    sqlite3_errmsg(w->db) : "out of memory");
		sqlite3_finalize(w->dir_st);
		sqlite3_close(w->db);
		w->db = NULL;
		w->dir_st = NULL;
		return -1;
	}
	sqlite3_busy_timeout(w->db, 10000);
	return 0;
}

/* Run job j in worker w: head, the answer, its end (see the top). */
static void
answer_run(struct answer_worker *w, struct answer_job *j)
{
	struct query_sink	 sink = { answer_sink_write, answer_sink_say,
	    answer_sink_visible, w };
	struct query_answer	 a;
	size_t			 printed = 0;
	char			 buf[PROTO_POSITION_MAX + 32];

	w->job = j;
	w->withheld_logged = 0;
	w->judged = 0;
	w->ncache = 0;
	if (w->cache != NULL)
		memset(w->cache, 0, w->capcache * sizeof *w->cache);
	sbuf_reset(&w->out);
	if (j->head.len > 0)
		sbuf_add(&w->out, j->head.data, j->head.len);
	j->rc = FST_EXIT_ERROR;
	if (answer_open_db(w) != 0)
		answer_sink_say(w, "fstrackd cannot open its database");
	else if (j->peer.uid != 0 &&
	    (w->walk = access_walk_new(&j->peer)) == NULL) {
		log_warn("answer for uid %u", (unsigned)j->peer.uid);
		answer_sink_say(w, "fstrackd cannot check your access now");
	} else {
		memset(&a, 0, sizeof a);
		a.since = &j->since;
		a.cur = j->cur;
		a.position = j->position[0] != '\0' ? j->position : NULL;
		a.pos_seq = j->pos_seq;
		a.skip = j->skip;
		a.seen = j->seen;
		a.printed = &printed;
		a.sink = &sink;
		j->rc = query_changed_at(w->db, &a, j->flags);
	}
	access_walk_free(w->walk);
	w->walk = NULL;
	/* after a gap too: where to go on once the full scan is done */
	if (j->follow && (j->rc == FST_EXIT_OK || j->rc == FST_EXIT_GAP)) {
		snprintf(buf, sizeof buf, "%zu %s%s", printed, j->position,
		    j->rc != FST_EXIT_OK ? " end" : "");
		answer_line(w, "mark", buf, strlen(buf));
	}
	if (!j->follow || j->rc != FST_EXIT_OK) {
		snprintf(buf, sizeof buf, "%d", j->rc);
		answer_line(w, "status", buf, strlen(buf));
		if (!j->cut)
			sbuf_addstr(&w->out, "OK\n");
		j->ended = 1;
	}
	answer_send(w);
	w->job = NULL;
}

/*
 * The next job a worker may take: the first whose peer is root or has
 * fewer than ANSWER_PER_UID running.  answer_lock held.
 */
static struct answer_job *
answer_pick(void)
{
	struct answer_job	**pp, *j;
	int			  i, n;

	for (pp = &answer_queue; (j = *pp) != NULL; pp = &j->next) {
		for (i = n = 0; i < ANSWER_THREADS; i++)
			n += answer_busy[i] && answer_running[i] ==
			    j->peer.uid;
		if (j->peer.uid == 0 || n < ANSWER_PER_UID) {
			*pp = j->next;
			j->next = NULL;
			return j;
		}
	}
	return NULL;
}

/* A worker: take a job, run it, hand it back to main; until stopped. */
static void *
answer_thread(void *arg)
{
	struct answer_worker	*w = arg;
	struct answer_job	*j = NULL, **pp;

	pthread_mutex_lock(&answer_lock);
	for (;;) {
		while (!answer_stopping && (j = answer_pick()) == NULL)
			pthread_cond_wait(&answer_cond, &answer_lock);
		if (answer_stopping)
			break;
		answer_busy[w->index] = 1;
		answer_running[w->index] = j->peer.uid;
		pthread_mutex_unlock(&answer_lock);
		answer_run(w, j);
		pthread_mutex_lock(&answer_lock);
		answer_busy[w->index] = 0;
		for (pp = &answer_done; *pp != NULL; pp = &(*pp)->next)
			;
		*pp = j;
		/* a worker freed: a job held back for its uid may go now */
		pthread_cond_broadcast(&answer_cond);
		uv_async_send(&answer_async);
	}
	pthread_mutex_unlock(&answer_lock);
	sqlite3_finalize(w->dir_st);
	sqlite3_close(w->db);
	sbuf_free(&w->out);
	free(w->cache);
	return NULL;
}

/* Main thread: the jobs done go back to whoever submitted them. */
static void
answer_async_cb(uv_async_t *h)
{
	struct answer_job	*j, *next;

	pthread_mutex_lock(&answer_lock);
	j = answer_done;
	answer_done = NULL;
	pthread_mutex_unlock(&answer_lock);
	for (; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		j->done(j);
	}
}

/*
 * Start the workers (before any other thread: see the top).  0, or -1
 * with errno.
 */
int
answer_start(void)
{
	const char	*delay = getenv("FSTRACK_TEST_ANSWER_DELAY_MS");
	int		 i, rc;

	if (delay != NULL)
		answer_test_delay_ms = atoi(delay);
	if (uv_async_init(fstd.loop, &answer_async, answer_async_cb) != 0)
		return -1;
	for (i = 0; i < ANSWER_THREADS; i++) {
		answer_workers[i].index = i;
		sbuf_init(&answer_workers[i].out);
		if ((rc = pthread_create(&answer_workers[i].thread, NULL,
		    answer_thread, &answer_workers[i])) != 0) {
			errno = rc;
			return -1;
		}
	}
	answer_started = 1;
	return 0;
}

/*
 * Main thread: run job j (filled in by the caller, fd its peer's socket,
 * which nothing else writes to until j->done(j) is called back, on the
 * main thread).
 */
void
answer_submit(struct answer_job *j)
{
	struct answer_job	**pp;

	j->next = NULL;
	pthread_mutex_lock(&answer_lock);
	for (pp = &answer_queue; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = j;
	pthread_cond_broadcast(&answer_cond);
	pthread_mutex_unlock(&answer_lock);
}

/*
 * Stop: every running answer is cut off at its next row or send, the
 * workers are joined, and every job, done or still queued, goes back to
 * its submitter (cut unless done).
 */
void
answer_stop(void)
{
	struct answer_job	*j;
	int			 i;

	if (!answer_started)
		return;
	pthread_mutex_lock(&answer_lock);
	answer_stopping = 1;
	pthread_cond_broadcast(&answer_cond);
	pthread_mutex_unlock(&answer_lock);
	for (i = 0; i < ANSWER_THREADS; i++)
		pthread_join(answer_workers[i].thread, NULL);
	answer_async_cb(&answer_async);
	while ((j = answer_queue) != NULL) {
		answer_queue = j->next;
		j->next = NULL;
		j->cut = 1;
		j->done(j);
	}
	uv_close((uv_handle_t *)&answer_async, NULL);
	answer_started = 0;
}

/*
 * daemon.c -- what the daemon does as a whole: the run's first and last
 * records (daemon_init, daemon_stop), snapshots, query barriers, status,
 * readiness and privileges.  Main thread.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <linux/capability.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fstrack.h"
#include "log.h"

struct snapshot_req {
	void	(*cb)(int64_t, int, void *);
	void	 *arg;
	int64_t	  id;
};

struct barrier_req {
	void		(*cb)(int, int64_t, int64_t, void *);
	void		 *arg;
	uv_timer_t	  timer;
	int		  refs;		/* the store op and the timer */
	int		  answered;
	int64_t		  pos_snapshot;	/* the position taken, if any */
	int64_t		  pos_seq;	/* 0: none */
};

/* The snapshot row is durable: answer. */
static void
daemon_snapshot_done(struct store_op *op, int err, void *arg)
{
	struct snapshot_req	*r = arg;

	r->cb(r->id, err, r->arg);
	free(r);
}

/*
 * A file open for writing (or mapped shared and writable) when a snapshot
 * began or a query asked: record it, with the kind *arg.
 */
static void
daemon_carry_writer(struct fst_fs *fs, const char *path, void *arg)
{
	uint32_t		 kind = *(uint32_t *)arg;
	char			 dir[PATH_MAX];
	char			*slash;
	struct fst_handle	 h;

	snprintf(dir, sizeof dir, "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash[1] == '\0')
		return;
	*slash = '\0';
	if (handle_of_fd(AT_FDCWD, dir[0] != '\0' ? dir : "/", 0, &h) != 0)
		return;
	dircache_record(fs, &h, slash + 1, kind);
}

/*
 * A prune committed (a store done-callback, main thread): snapshots below
 * its pruned_to are gone, so status says so and consumer-set refuses them.
 */
void
daemon_prune_done(struct store_op *op, int err, void *arg)
{
	(void)arg;
	if (err == 0 && op->prune.pruned_to > fstd.first_snapshot)
		fstd.first_snapshot = op->prune.pruned_to;
}

/*
 * Start a new snapshot and call cb with its id once it is durable.
 *
 * Order matters.  Events queued before the drain belong to the old
 * snapshot; the id switches before the loop reads anything else, so every
 * change completing after the reply is read into the new one.  The
 * permission side switches generation first, so a write-open from now on is
 * held for the new snapshot; files opened for writing before that and still
 * open are found by openscan and recorded in the new snapshot in the same
 * durable commit as its row: writes through old fds are not lost.
 */
void
daemon_snapshot(void (*cb)(int64_t, int, void *), void *arg)
{
	struct snapshot_req	*r;
	struct store_op		*ops[2];
	int64_t			 id;
	uint32_t		 kind = FST_M_OPEN_AT_SNAPSHOT;

	notify_quiet_flush();	/* first: no change after the switch ignored */
	notify_drain();
	/*
	 * Ids increase by at least one and never fall behind the clock in
	 * milliseconds: a database created later always starts above every
	 * id this one handed out (unless the clock steps back).
	 */
	id = atomic_load(&fstd.cur_snapshot) + 1;
	if (id < now_ns() / 1000000)
		id = now_ns() / 1000000;
	perm_new_snapshot(id);
	atomic_store(&fstd.cur_snapshot, id);
	dircache_new_snapshot(id);
	notify_quiet_resume();
	openscan_writers(daemon_carry_writer, &kind);

	if ((r = calloc(1, sizeof *r)) == NULL)
		fatal("out of memory");
	r->cb = cb;
	r->arg = arg;
	r->id = id;
	ops[0] = store_op_snapshot(id, now_ns());
	ops[0]->durable = 1;
	ops[0]->done = daemon_snapshot_done;
	ops[0]->arg = r;
	/*
	 * The retention policy, in the same batch: the writer takes the whole
	 * queue, so the snapshot is answered only once the prune it causes is
	 * applied too ("retention-snapshots 3" never shows 4 to a client).
	 */
	ops[1] = store_op_prune(0);
	ops[1]->done = daemon_prune_done;
	store_submit_many(ops, 2);
	log_debug("snapshot %lld started", (long long)id);
}

/* Drop one reference of a barrier request. */
static void
daemon_barrier_unref(struct barrier_req *r)
{
	if (--r->refs == 0)
		free(r);
}

/* The barrier's timer handle is closed. */
static void
daemon_barrier_closed(uv_handle_t *h)
{
	daemon_barrier_unref(h->data);
}

/* The barrier's operations committed. */
static void
daemon_barrier_done(struct store_op *op, int err, void *arg)
{
	struct barrier_req	*r = arg;

	if (!r->answered) {
		r->answered = 1;
		r->cb(err, r->pos_snapshot, r->pos_seq, r->arg);
	}
	if (!uv_is_closing((uv_handle_t *)&r->timer))
		uv_close((uv_handle_t *)&r->timer, daemon_barrier_closed);
	daemon_barrier_unref(r);
}

/*
 * Every stall-timeout while a barrier waits: if the store cannot commit
 * (disk full, read-only, locked, gone), answer now with FST_EXIT_STORE
 * instead of leaving the client hanging; the records stay queued and the
 * barrier op still completes (unanswered) once commits work again.
 */
static void
daemon_barrier_timeout(uv_timer_t *t)
{
	struct barrier_req	*r = t->data;

	if (r->answered ||
	    !(health_degraded() & (1 << DEGRADED_STORE)))
		return;
	r->answered = 1;
	r->cb(FST_EXIT_STORE, 0, 0, r->arg);
	uv_timer_stop(t);
}

/*
 * BARRIER WALKS, SHARED.  A barrier's walk of /proc (openscan_writers)
 * costs the main thread milliseconds, and any local user may ask for
 * barriers (fstrack changed) back to back on several connections: walked
 * once per request, that would take the loop away from the event queue
 * (an overflow, and a rescan for everybody).  A walk that begins after a
 * request arrived serves it as well as a walk of its own: a file open for
 * writing or mapped when it asked and still open is found by the walk,
 * and one closed or unmapped in between queued its CLOSE_WRITE, which the
 * drain after the walk reads.  So the next walk may begin no sooner than
 * barrier-walk-gap ms (default 10; 0 shares nothing) and four times the
 * last walk's own length after the last one began; a request before that
 * waits for it,
 * and one walk serves every request waiting.  Walks so take at most a
 * quarter of the main thread however many ask; a request alone waits for
 * none, and one client asking in turn as fast as answers come waits about
 * three walks' length each time (bench/positions.sh: "changed").
 */
struct walk_wait {
	struct walk_wait	*next;
	int64_t			 since;
	int64_t			 since_seq;
	int			 flags;
	void			(*cb)(int, int64_t, int64_t, void *);
	void			*arg;
};

static struct walk_wait	*walk_waiting, **walk_tail = &walk_waiting;
static uv_timer_t	 walk_timer;
static int		 walk_timer_ready;
static uint64_t		 walk_last_ms;	/* uv_now() of the last walk */
static uint64_t		 walk_next_ms;	/* the next may begin at this time */

static void	daemon_barrier_run(int64_t, int64_t, int,
		    void (*)(int, int64_t, int64_t, void *), void *);

/* Walk /proc for files open for writing or mapped, at loop time now. */
static void
daemon_walk_writers(uint64_t now)
{
	uint32_t	kind = FST_M_OPENED_WRITE;
	uint64_t	t0 = uv_hrtime(), len_ms;

	walk_last_ms = now;
	atomic_fetch_add(&fstd.st.barrier_walks, 1);
	openscan_writers(daemon_carry_writer, &kind);
	len_ms = (uv_hrtime() - t0 + 999999) / 1000000;
	walk_next_ms = now + (uint64_t)fstd.cfg.barrier_walk_gap_ms;
	if (walk_next_ms < now + 4 * len_ms)
		walk_next_ms = now + 4 * len_ms;
}

/* The gap since the last walk is over: one walk for every waiting barrier. */
static void
daemon_walk_timer_cb(uv_timer_t *t)
{
	struct walk_wait	*w, *next;

	(void)t;
	w = walk_waiting;
	walk_waiting = NULL;
	walk_tail = &walk_waiting;
	daemon_walk_writers(uv_now(fstd.loop));
	for (; w != NULL; w = next) {
		next = w->next;
		daemon_barrier_run(w->since, w->since_seq, w->flags, w->cb,
		    w->arg);
		free(w);
	}
}

/*
 * Make every change whose system call returned before now visible in the
 * database, with current paths for directories changed since snapshot
 * since (since_seq 0) or since the position (since, since_seq).
 *
 * Files open for writing or mapped shared and writable right now are
 * recorded too: in an armed directory (perm.c) a file opened for writing
 * and written only through a shared mapping makes no event at all, yet
 * the answer must list it while it can still change.  DAEMON_BARRIER_NOSCAN
 * leaves that walk of /proc out (fstrack changed --follow does it only
 * every few polls); otherwise the walk may be one shared with other
 * barriers (BARRIER WALKS, SHARED).
 *
 * DAEMON_BARRIER_POSITION takes a position with the barrier (store.c,
 * POSITIONS): after the drain, a new dedup epoch, then the barrier op,
 * whose number is the position cb gets.  Nothing of it is durable: the
 * commit that answers is synchronous=NORMAL, no fsync.
 */
void
daemon_barrier(int64_t since, int64_t since_seq, int flags,
    void (*cb)(int, int64_t, int64_t, void *), void *arg)
{
	struct walk_wait	*w;
	uint64_t		 now = uv_now(fstd.loop), due;

	if (flags & DAEMON_BARRIER_NOSCAN) {
		daemon_barrier_run(since, since_seq, flags, cb, arg);
		return;
	}
	if (fstd.cfg.barrier_walk_gap_ms == 0 || (walk_waiting == NULL &&
	    (walk_last_ms == 0 || now >= walk_next_ms))) {
		daemon_walk_writers(now);
		daemon_barrier_run(since, since_seq, flags |
		    DAEMON_BARRIER_NOSCAN, cb, arg);
		return;
	}
	if ((w = calloc(1, sizeof *w)) == NULL)
		fatal("out of memory");
	w->since = since;
	w->since_seq = since_seq;
	w->flags = flags | DAEMON_BARRIER_NOSCAN;
	w->cb = cb;
	w->arg = arg;
	*walk_tail = w;
	walk_tail = &w->next;
	atomic_fetch_add(&fstd.st.barrier_walks_shared, 1);
	if (!walk_timer_ready) {
		uv_timer_init(fstd.loop, &walk_timer);
		walk_timer_ready = 1;
	}
	if (!uv_is_active((uv_handle_t *)&walk_timer)) {
		due = walk_next_ms;
		uv_timer_start(&walk_timer, daemon_walk_timer_cb,
		    due > now ? due - now : 0, 0);
	}
}

/*
 * The barrier itself, its walk of /proc done or left out (walk first: a
 * mapping dropped meanwhile queues its CLOSE_WRITE): drain, then the op
 * whose commit answers cb.
 */
static void
daemon_barrier_run(int64_t since, int64_t since_seq, int flags,
    void (*cb)(int, int64_t, int64_t, void *), void *arg)
{
	struct barrier_req	*r;
	struct store_op		*op;
	uint64_t		 seq;

	/* a position is a new epoch: as for a snapshot, nothing silenced */
	if (flags & DAEMON_BARRIER_POSITION)
		notify_quiet_flush();
	notify_drain();
	if ((r = calloc(1, sizeof *r)) == NULL)
		fatal("out of memory");
	r->cb = cb;
	r->arg = arg;
	r->refs = 2;
	uv_timer_init(fstd.loop, &r->timer);
	r->timer.data = r;
	uv_timer_start(&r->timer, daemon_barrier_timeout,
	    fstd.cfg.stall_timeout_ms, fstd.cfg.stall_timeout_ms);
	if (flags & DAEMON_BARRIER_POSITION) {
		dircache_new_epoch();
		/* the position is in the current snapshot, not in since */
		r->pos_snapshot = atomic_load(&fstd.cur_snapshot);
		op = store_op_barrier_position(since, since_seq,
		    r->pos_snapshot);
	} else
		op = store_op_barrier(since, since_seq);
	op->done = daemon_barrier_done;
	op->arg = r;
	seq = store_submit(op);
	if (flags & DAEMON_BARRIER_POSITION) {
		r->pos_seq = store_position_seq(seq);
		notify_quiet_resume();
	}
}

struct position_req {
	void	(*cb)(int, int64_t, int64_t, void *);
	void	 *arg;
	int64_t	  snapshot;
	int64_t	  seq;
};

/* The position's operation committed: answer. */
static void
daemon_position_done(struct store_op *op, int err, void *arg)
{
	struct position_req	*r = arg;

	r->cb(err, r->snapshot, r->seq, r->arg);
	free(r);
}

/*
 * Take a position (store.c, POSITIONS) and call cb with its number once
 * its operation committed.  Cheap: a drain of the kernel queue, a new
 * dedup epoch and one commit that writes nothing (the first position of a
 * snapshot writes one meta row), with synchronous=NORMAL: no fsync, no
 * walk of /proc, no snapshot, the permission side untouched.  Every
 * change read after the drain gets a greater number; changes still in the
 * kernel queue before it are read first and so come before it.
 *
 * The order is daemon_snapshot's, for the same reason: the quiet marks
 * (notify.c, QUIET FILES) go before the drain, so no change after the
 * position is silenced as a repeat of the epoch before it, and none is
 * added again before the new epoch has begun.
 */
void
daemon_position(void (*cb)(int, int64_t, int64_t, void *), void *arg)
{
	struct position_req	*r;
	struct store_op		*op;

	notify_quiet_flush();
	notify_drain();
	dircache_new_epoch();
	notify_quiet_resume();
	if ((r = calloc(1, sizeof *r)) == NULL)
		fatal("out of memory");
	r->cb = cb;
	r->arg = arg;
	r->snapshot = atomic_load(&fstd.cur_snapshot);
	op = store_op_position(r->snapshot);
	op->done = daemon_position_done;
	op->arg = r;
	r->seq = store_position_seq(store_submit(op));
}

/*
 * The token of the position numbered seq in snapshot snap (proto.h), in
 * buf of at least PROTO_POSITION_MAX bytes: 0, or -1.
 */
int
daemon_position_token(int64_t snap, int64_t seq, char *buf, size_t len)
{
	struct proto_position	p;

	memset(&p, 0, sizeof p);
	snprintf(p.journal, sizeof p.journal, "%.*s", PROTO_JOURNAL_LEN,
	    fstd.journal_id);
	while (strlen(p.journal) < PROTO_JOURNAL_LEN)
		strcat(p.journal, "0");
	p.snapshot = snap;
	p.seq = seq;
	return proto_format_position(buf, len, &p);
}

/*
 * Was the last stop clean?  meta run_state is "running" from start-up until
 * the final durable commit of a clean stop (daemon_stop) writes "stopped".
 * After anything else (SIGKILL, a crash, a power cut, a commit that failed
 * at shutdown) the directories armed in the newest two snapshots may hold
 * writes that nothing recorded (perm.c), so they become changes of kind
 * "armed" in the current snapshot -- in the same first batch that says
 * "running" again.  After a clean stop the last run's arms are void and go.
 *
 * Positions (store.c, POSITIONS P2): after a clean stop meta
 * position_snapshot names the newest snapshot in which one was taken; after
 * any other, the row saying so may be lost with the last commits, so every
 * row of the current snapshot gets a sequence number, as if one had been.
 */
static void
daemon_note_run_state(int64_t snap)
{
	struct store_op	*op;
	char		 state[32], buf[32];

	if (store_meta_get("run_state", state, sizeof state) == 0 &&
	    strcmp(state, "running") == 0) {
		log_warnx("the last stop was not clean: directories armed in "
		    "the last two snapshots are reported as changed (armed)");
		store_positions_init(snap);
		store_submit(store_op_promote_arms(snap));
	} else {	/* a clean stop: the last run's arms died with its marks */
		store_positions_init(store_meta_get("position_snapshot", buf,
		    sizeof buf) == 0 ? strtoll(buf, NULL, 10) : 0);
		store_submit(store_op_clear_arms());
	}
	op = store_op_meta("run_state", "running");
	op->durable = 1;
	store_submit(op);
}

/*
 * Start-up, once the database is open and before anything else is queued:
 * the current snapshot (numbering continues; a new database starts at the
 * clock) and the run's first records (daemon_note_run_state).
 */
void
daemon_init(void)
{
	struct store_op	*op;
	int64_t		 snap;
	char		 buf[64];

	snap = store_max_snapshot();
	if (snap < 0)
		fatalx("database '%s': cannot read snapshots", fstd.db_path);
	if (snap == 0) {
		/*
		 * Snapshot ids follow the clock in milliseconds (see
		 * daemon_snapshot), and a new database starts at the current
		 * one, so an id handed out by a lost or replaced database is
		 * below this one's first id and gets the "history incomplete"
		 * answer instead of somebody else's history.
		 */
		snap = now_ns() / 1000000;
		op = store_op_snapshot(snap, now_ns());
		op->durable = 1;
		store_submit(op);
		fstd.first_snapshot = snap;
	} else {
		if (store_meta_get("oldest_snapshot", buf, sizeof buf) == 0)
			fstd.first_snapshot = strtoll(buf, NULL, 10);
		if (fstd.first_snapshot <= 0)
			fstd.first_snapshot = 1;
	}
	atomic_store(&fstd.cur_snapshot, snap);
	daemon_note_run_state(snap);
}

/*
 * A clean stop, once every other source of records has stopped (perm_stop
 * has answered every held opener) and before the writer's last commit:
 *
 * Record every file open for writing or mapped shared and writable now, in
 * the current snapshot: such a file in an armed directory may be written
 * through its mapping while the daemon is down and unmapped before it
 * starts again, with no event and a ctime older than the last checkpoint;
 * recorded now, it stays listed.
 *
 * Then the last record, durable: everything before it is in, and the next
 * start-up knows this stop was clean (no arms to promote, perm.c).
 */
void
daemon_stop(void)
{
	struct store_op	*op;
	uint32_t	 kind = FST_M_OPENED_WRITE;

	openscan_writers(daemon_carry_writer, &kind);
	op = store_op_meta("run_state", "stopped");
	op->durable = 1;
	store_submit(op);
}

/* Rates for status, updated by daemon_status from counter deltas. */
static double
daemon_rate(uint64_t now_count, uint64_t *last_count, int64_t *last_t)
{
	int64_t	t = now_ns();
	double	r;

	if (*last_t == 0 || t - *last_t <= 0) {
		*last_t = fstd.started_ns;
		*last_count = 0;
	}
	r = (double)(now_count - *last_count) * 1e9 / (double)(t - *last_t);
	*last_count = now_count;
	*last_t = t;
	return r;
}

/* Write status as key<TAB>value lines. */
void
daemon_status(struct sbuf *sb)
{
	static uint64_t	 ev_last, cm_last;
	static int64_t	 ev_t, cm_t;
	uint64_t	 scanned, recorded;
	double		 rate, eta;
	char		 buf[64];
	const char	*state;
	int		 i;

	if (health_degraded())
		state = "degraded";
	else if (atomic_load(&fstd.reconciling))
		state = "reconciling";
	else
		state = "ready";
	sbuf_printf(sb, "version\t%s\n", PACKAGE_VERSION);
	sbuf_printf(sb, "pid\t%d\n", (int)fstd.pid);
	sbuf_printf(sb, "state\t%s\n", state);
	health_status(sb);
	sbuf_printf(sb, "durability\t%s\n", fstd.cfg.durability ==
	    DURABILITY_STRICT ? "strict" : "async");
	sbuf_addstr(sb, "database\t");
	sbuf_add_escaped(sb, fstd.db_path);
	sbuf_printf(sb, "\ndatabase_size\t%lld\n", (long long)store_db_size());
	sbuf_printf(sb, "journal_id\t%s\n", fstd.journal_id);
	sbuf_printf(sb, "snapshot\t%lld\n",
	    (long long)atomic_load(&fstd.cur_snapshot));
	sbuf_printf(sb, "oldest_snapshot\t%lld\n", (long long)fstd.first_snapshot);
	sbuf_printf(sb, "events\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.events_read));
	sbuf_printf(sb, "events_per_sec\t%.1f\n", daemon_rate(
	    atomic_load(&fstd.st.events_read), &ev_last, &ev_t));
	sbuf_printf(sb, "quiet_files\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.quiet_files));
	sbuf_printf(sb, "records\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.records_queued));
	sbuf_printf(sb, "commits\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.commits));
	sbuf_printf(sb, "commits_per_sec\t%.1f\n", daemon_rate(
	    atomic_load(&fstd.st.commits), &cm_last, &cm_t));
	sbuf_printf(sb, "durable_commits\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.durable_commits));
	sbuf_printf(sb, "commit_failures\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.commit_failures));
	sbuf_printf(sb, "queue_depth\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.queue_depth));
	sbuf_printf(sb, "records_dropped\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.records_dropped));
	sbuf_printf(sb, "perm_events\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.perm_events));
	sbuf_printf(sb, "perm_held\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.perm_held));
	sbuf_printf(sb, "perm_covered\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.perm_covered));
	sbuf_printf(sb, "perm_armed_ahead\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.perm_armed_ahead));
	sbuf_printf(sb, "perm_ahead_walks\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.perm_ahead_walks));
	sbuf_printf(sb, "perm_marks\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.perm_marks));
	sbuf_printf(sb, "perm_pending\t%llu\n",
	    (unsigned long long)perm_pending());
	sbuf_printf(sb, "perm_young\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.perm_young));
	sbuf_printf(sb, "barrier_walks\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.barrier_walks));
	sbuf_printf(sb, "barrier_walks_shared\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.barrier_walks_shared));
	sbuf_printf(sb, "links_young\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.links_young));
	sbuf_printf(sb, "perm_stalled\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.perm_stalled));
	sbuf_printf(sb, "overflows\t%llu\n",
	    (unsigned long long)atomic_load(&fstd.st.overflows));
	sbuf_printf(sb, "dirs_cached\t%zu\n", dircache_size());
	reconcile_progress(&scanned, &recorded, &rate, &eta);
	sbuf_printf(sb, "reconcile_scanned\t%llu\n",
	    (unsigned long long)scanned);
	sbuf_printf(sb, "reconcile_recorded\t%llu\n",
	    (unsigned long long)recorded);
	sbuf_printf(sb, "reconcile_per_sec\t%.0f\n", rate);
	if (eta >= 0)
		sbuf_printf(sb, "reconcile_eta_sec\t%.0f\n", eta);
	for (i = 0; i < fstd.nfs; i++) {
		struct fst_fs *fs = &fstd.fs[i];

		snprintf(buf, sizeof buf, "%lld",
		    (long long)(fs->checkpoint_ns / 1000000000));
		sbuf_addstr(sb, "filesystem\t");
		sbuf_add_escaped(sb, fs->mountpoint);
		sbuf_printf(sb, " type=%s state=%s fsid=%s uuid=%s "
		    "checkpoint=%s\n", fs->fstype,
		    fs->state == FS_TRACKED ? "tracked" : "gone", fs->fsid,
		    fs->uuid[0] ? fs->uuid : "-", buf);
	}
}

/* Tell systemd (Type=notify) something, without linking libsystemd. */
void
daemon_sd_notify(const char *msg)
{
	const char		*path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un	 sun;
	socklen_t		 len;
	int			 fd;

	if (path == NULL || *path == '\0' || strlen(path) >= sizeof sun.sun_path)
		return;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) == -1)
		log_warn("sd_notify");
	close(fd);
}

/* Set the calling thread's permitted and effective capabilities to keep. */
static int
daemon_capset(uint64_t keep)
{
	struct __user_cap_header_struct	hdr;
	struct __user_cap_data_struct	data[2];

	memset(&hdr, 0, sizeof hdr);
	memset(data, 0, sizeof data);
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	data[0].effective = data[0].permitted = (uint32_t)keep;
	data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
	return syscall(SYS_capset, &hdr, data) == -1 ? -1 : 0;
}

/*
 * What the daemon needs once its groups, marks and socket exist:
 * CAP_SYS_ADMIN (fanotify_mark when a filesystem comes back),
 * CAP_DAC_READ_SEARCH (open_by_handle_at, walking every directory),
 * CAP_LEASE (the write-open probe on files we do not own) and
 * CAP_SYS_PTRACE (reading other users' /proc/PID/fd and maps for files
 * open for writing).  The answer threads also keep CAP_SETUID and
 * CAP_SETGID, to take a peer's filesystem identity (access.c).
 */
#define DAEMON_CAPS	(1ULL << CAP_SYS_ADMIN | 1ULL << CAP_DAC_READ_SEARCH | \
			 1ULL << CAP_LEASE | 1ULL << CAP_SYS_PTRACE)
#define DAEMON_CAPS_SETID (1ULL << CAP_SETUID | 1ULL << CAP_SETGID)

/*
 * Keep only DAEMON_CAPS and DAEMON_CAPS_SETID, in the permitted, effective
 * and bounding sets, and set no_new_privs.  Called before any thread is
 * created: capabilities are per thread, and threads inherit the caller's.
 * The answer threads are started next (answer_start); then
 * daemon_drop_setid takes CAP_SETUID and CAP_SETGID from the main thread,
 * so no thread started later has them.
 */
int
daemon_drop_caps(void)
{
	uint64_t	keep = DAEMON_CAPS | DAEMON_CAPS_SETID;
	int		cap;

	for (cap = 0; cap <= 63; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1 &&
		    errno != EINVAL && errno != EPERM)
			return -1;
	}
	if (daemon_capset(keep) != 0)
		return -1;
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return 0;
}

/*
 * Take CAP_SETUID and CAP_SETGID from the permitted and effective sets of
 * the calling (main) thread, and so of every thread it starts from now on;
 * the answer threads, started before, keep them.  (They stay in its
 * bounding set, which only an execve would draw on: no_new_privs is set,
 * and the daemon runs no program.)
 */
int
daemon_drop_setid(void)
{
	return daemon_capset(DAEMON_CAPS);
}

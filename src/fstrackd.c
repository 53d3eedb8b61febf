/*
 * fstrackd.c -- the daemon's entry point: options, the order in which the
 * modules come up and go down, the event loop.
 *
 * LIFECYCLE, chrony style.  Every module has up to four steps: init (set
 * up, in the main thread, before any other thread exists), start (threads,
 * loop handles), stop (no more work; what it owes is written) and fini
 * (memory and handles freed).  main() runs every init in the order of the
 * table below, then every start in the same order, then the loop; when the
 * loop ends (SIGTERM or SIGINT; signal_cb does nothing but end it),
 * fstrackd_stop runs every stop in the reverse order, then every fini in
 * the reverse order.  That is the only shutdown path.  A
 * failure during init or start is fatal (exit 1) and runs no stop or fini:
 * the kernel closes the groups (allowing whatever is held) and the next
 * start-up reconciles.
 *
 *     module    init             start           stop           fini
 *   1 loop      uv_default_loop  -               -              (all closed)
 *   2 fsinfo    fsinfo_init      -               -              fsinfo_fini
 *   3 state     (lock)           -               -              -
 *   4 answer    -                answer_start    answer_stop    -
 *   5 store     store_open       store_start     store_stop     store_close
 *   6 daemon    daemon_init      -               daemon_stop    -
 *   7 dircache  dircache_init    -               -              dircache_fini
 *   8 perm      perm_init        perm_start      perm_stop      -
 *   9 notify    notify_init      notify_start    notify_stop    -
 *  10 track     (marks)          -               -              -
 *  11 reconcile -                reconcile_start reconcile_stop -
 *  12 control   control_init     -               control_stop   -
 *  13 privs     daemon_drop_caps -               -              -
 *  14 main      -                (ready)         (stopping)     -
 *
 * What the steps do:
 *   loop      fini: closes every handle left (connections, timers,
 *             signals), then the loop.
 *   fsinfo    probes the mount points into fstd.fs, refusing with a
 *             reason; fini closes their root fds.
 *   state     makes the state directory, resolves it, takes its flock.
 *   answer    the threads that answer `changed` for the control socket,
 *             then daemon_drop_setid; stop cuts off every answer still
 *             running and joins them.
 *   store     opens the database (refused if foreign, corrupt, newer);
 *             starts the writer; stop commits everything queued and
 *             joins the writer; fini closes the database.
 *   daemon    the snapshot id; the last run's arms promoted (unclean stop)
 *             or cleared; run_state "running".  Stop: files open for
 *             writing recorded, run_state "stopped" (durable).
 *   dircache  the cache, its move hook (reconcile_note_move).
 *   perm      (strict only) the permission group; its thread and the
 *             arm-ahead walker; stop answers every event, closes the group.
 *   notify    the notification group; polled in the loop; stop writes the
 *             last checkpoint, drains and closes the group.
 *   track     per filesystem: its notify and perm marks, store_fs_attach
 *             (its gaps, the first checkpoint of a new one).
 *   reconcile the start-up pass (walkers); stop ends them.
 *   control   the socket; stop stops accepting and removes it.
 *   privs     drops every capability the daemon does not need.
 *   main      signals, timers, READY; stop: STOPPING=1, timers stopped.
 *
 * Why this order (each line is a constraint the table satisfies):
 *  - fsinfo before state and store: a refused filesystem is reported before
 *    the state directory or a database is touched.
 *  - state before store: the lock keeps a second daemon off the database.
 *  - answer starts first of all threads, and after privs' init: its
 *    threads alone keep CAP_SETUID and CAP_SETGID (access.c takes a
 *    peer's filesystem identity with them), because the main thread drops
 *    both right after starting them, before any other thread exists.  It
 *    records nothing and only reads the database, through connections of
 *    its own, once a request comes (after control's init), so it may stop
 *    last: an answer still running then is cut off.
 *  - store before everything that records; its writer starts first of
 *    the threads that record and stops last of them: every other module
 *    queues records, and perm's thread
 *    waits for commits (parked writers) until perm_stop returns.
 *  - daemon right after store: the promotion or clearing of the last run's
 *    arms and run_state "running" are the first records queued (perm.c:
 *    after an unclean stop the arms become changes before anything else is
 *    recorded); perm_init reads the snapshot id it sets.  Its stop comes
 *    after perm_stop (every held opener answered, so its file is open and
 *    openscan finds it) and just before store_stop, so run_state "stopped"
 *    is the last durable operation of a clean stop.
 *  - dircache before the groups: events are recorded through it; it needs
 *    the snapshot id.
 *  - perm below notify: its marks hold every open on a tracked filesystem
 *    from track's init until its thread runs, so the thread starts first
 *    (right after the writer it waits for); and notify's last checkpoint
 *    and drain happen at once at SIGTERM, not after perm_stop's wait for
 *    parked writers (up to stall-timeout).  perm_stop answers every pending
 *    event before it closes the group.
 *  - track after both groups: the marks need them; the first checkpoint of
 *    a new filesystem is the time read just before its marks.
 *  - reconcile after track and the writer (reconcile.c: marks go in before
 *    the pass, so changes from then on are seen live); stopped before
 *    notify_stop, which writes the last checkpoint only if the pass had
 *    finished (else the next start-up runs it again).
 *  - control after track: a client that gets an answer knows every mark is
 *    in place; before privs: the socket and its directory are made while
 *    the daemon still has every capability; stopped first, so no request
 *    starts while the rest stops (connections still open are closed with
 *    the loop, last).
 *  - privs after every group, mark and socket exist and before any thread
 *    starts: capabilities are per thread, and threads inherit them.  It
 *    keeps CAP_SETUID and CAP_SETGID for answer's start, which drops them.
 *  - main last: READY only once everything above runs.
 * The daemon forks (daemonize) before the table, so no group or thread
 * exists in the parent.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fstrack.h"
#include "log.h"

/* One row of the lifecycle table (see the top); NULL: nothing to do. */
struct fstrackd_module {
	const char	*name;
	void		(*init)(void);
	void		(*start)(void);
	void		(*stop)(void);
	void		(*fini)(void);
};

static uv_signal_t	sig_term, sig_int, sig_hup;
static uv_timer_t	tick_timer, prune_timer;
static int		ready_fd = -1;
static int		shutting_down;

static void
usage(void)
{
	fprintf(stderr, "usage: fstrackd [-f|--foreground] [-d|--debug] "
	    "[-c|--config FILE] [--state-dir DIR]\n"
	    "                [--socket PATH] [--durability strict|async] "
	    "[--stall-timeout MS]\n"
	    "                [--merge-delay MS] [--bounded-queue] "
	    "[MOUNTPOINT...]\n");
	exit(2);
}

/* Replace a configured string with a copy of the one given. */
static void
set_string(char **field, const char *value)
{
	free(*field);
	if ((*field = strdup(value)) == NULL)
		fatal("out of memory");
}

/*
 * Options, then the configuration file, then the options again over it:
 * fstd.cfg as the daemon runs with it.  Exits 2 on a bad option, 1 when
 * the configuration cannot be loaded or names nothing to track.
 */
static void
configure(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "foreground",		no_argument,		NULL, 'f' },
		{ "debug",		no_argument,		NULL, 'd' },
		{ "config",		required_argument,	NULL, 'c' },
		{ "state-dir",		required_argument,	NULL, 'S' },
		{ "socket",		required_argument,	NULL, 's' },
		{ "durability",		required_argument,	NULL, 'D' },
		{ "stall-timeout",	required_argument,	NULL, 'T' },
		{ "bounded-queue",	no_argument,		NULL, 'Q' },
		{ "merge-delay",	required_argument,	NULL, 'M' },
		{ "help",		no_argument,		NULL, 'h' },
		{ "version",		no_argument,		NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*o_state = NULL, *o_socket = NULL, *o_dur = NULL;
	const char	*o_config = NULL;
	long		 o_stall = -1, o_merge = -1;
	int		 ch, i, o_fg = 0, o_debug = 0, o_bounded = 0;
	enum fst_durability dur;
	char		*end;

	while ((ch = getopt_long(argc, argv, "fdc:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f': o_fg = 1; break;
		case 'd': o_debug = 1; break;
		case 'c': o_config = optarg; break;
		case 'S': o_state = optarg; break;
		case 's': o_socket = optarg; break;
		case 'D':
			if (config_parse_durability(optarg, &dur) != 0) {
				fprintf(stderr, "fstrackd: --durability is "
				    "'strict' or 'async'\n");
				exit(2);
			}
			o_dur = optarg;
			break;
		case 'T':
			o_stall = strtol(optarg, &end, 10);
			if (*end != '\0' || o_stall < 10) {
				fprintf(stderr, "fstrackd: --stall-timeout "
				    "takes milliseconds (>= 10)\n");
				exit(2);
			}
			break;
		case 'Q': o_bounded = 1; break;
		case 'M':
			o_merge = strtol(optarg, &end, 10);
			if (*end != '\0' || o_merge < 0 || o_merge > 1000)
				usage();
			break;
		case 'V':
			printf("fstrackd %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage();
		}
	}
	log_init("fstrackd", 1, o_debug);

	config_defaults(&fstd.cfg);
	if (o_config != NULL)
		set_string(&fstd.cfg.config_file, o_config);
	if (config_load(&fstd.cfg, fstd.cfg.config_file, o_config != NULL) != 0)
		exit(1);
	for (i = optind; i < argc; i++)
		config_add_mount(&fstd.cfg, argv[i]);
	if (o_state != NULL)
		set_string(&fstd.cfg.state_dir, o_state);
	if (o_socket != NULL)
		set_string(&fstd.cfg.socket_path, o_socket);
	if (o_dur != NULL)
		config_parse_durability(o_dur, &fstd.cfg.durability);
	if (o_stall != -1)
		fstd.cfg.stall_timeout_ms = o_stall;
	if (o_merge != -1)
		fstd.cfg.merge_delay_ms = o_merge;
	fstd.cfg.bounded_queue = o_bounded;
	fstd.cfg.foreground = o_fg;
	fstd.cfg.debug = o_debug;
	if (fstd.cfg.nmounts == 0) {
		log_warnx("no filesystem to track: name mount points on the "
		    "command line or with 'track' in '%s'",
		    fstd.cfg.config_file);
		exit(1);
	}
}

/* Make a relative path absolute against the current directory. */
static void
absolutize(char **path)
{
	char	cwd[PATH_MAX], *abs;

	if ((*path)[0] == '/' || getcwd(cwd, sizeof cwd) == NULL)
		return;
	if (asprintf(&abs, "%s/%s", cwd, *path) == -1)
		fatal("out of memory");
	free(*path);
	*path = abs;
}

/* Fork; the parent exits once the child reports readiness or dies. */
static void
daemonize(void)
{
	int	p[2], fd;
	char	c;
	pid_t	pid;

	if (pipe2(p, O_CLOEXEC) == -1)
		fatal("pipe");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			_exit(0);
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	setsid();
	if (chdir("/") == -1)
		fatal("chdir");
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
}

/* --- 1 loop ---------------------------------------------------------- */

/* The event loop every main-thread module registers its handles with. */
static void
fstrackd_loop_init(void)
{
	fstd.loop = uv_default_loop();
}

/* Close every handle still open so uv_loop_close can succeed. */
static void
walk_close_cb(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Close what is left open (connections, timers, signals), then the loop. */
static void
fstrackd_loop_fini(void)
{
	uv_walk(fstd.loop, walk_close_cb, NULL);
	uv_run(fstd.loop, UV_RUN_DEFAULT);
	uv_loop_close(fstd.loop);
}

/* --- 3 state --------------------------------------------------------- */

/*
 * Take the state directory's lock for the daemon's lifetime: two daemons
 * writing one database would each believe their checkpoints.
 */
static void
lock_state_dir(const char *dir)
{
	char	path[PATH_MAX + 32];
	int	fd;

	snprintf(path, sizeof path, "%s/fstrackd.lock", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		fatal("open '%s'", path);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			fatalx("another fstrackd uses the state directory '%s'",
			    dir);
		fatal("flock '%s'", path);
	}
	/* fd stays open, and locked, until exit. */
}

/* Make the state directory, name it by its real path, and lock it. */
static void
fstrackd_state_init(void)
{
	char	path[PATH_MAX];

	if (mkdir(fstd.cfg.state_dir, 0700) == -1 && errno != EEXIST)
		fatal("mkdir '%s'", fstd.cfg.state_dir);
	if (realpath(fstd.cfg.state_dir, path) == NULL)
		fatal("state directory '%s'", fstd.cfg.state_dir);
	set_string(&fstd.cfg.state_dir, path);
	if (asprintf(&fstd.db_path, "%s/%s", path, FSTRACK_DB_NAME) == -1)
		fatal("out of memory");
	lock_state_dir(path);
}

/* --- 4 answer -------------------------------------------------------- */

/*
 * The answer threads, with CAP_SETUID and CAP_SETGID; then the main
 * thread, and every thread it starts from now on, goes without them.
 */
static void
fstrackd_answer_start(void)
{
	if (answer_start() != 0)
		fatal("cannot start the answer threads");
	if (daemon_drop_setid() != 0)
		log_warn("cannot drop CAP_SETUID and CAP_SETGID");
}

/* --- 5 store --------------------------------------------------------- */

/* Open the database: refused if foreign, corrupt or newer than us. */
static void
fstrackd_store_init(void)
{
	char	err[1024];

	if (store_open(fstd.db_path, err, sizeof err) != 0)
		fatalx("database '%s': %s", fstd.db_path, err);
}

/* Start the writer thread. */
static void
fstrackd_store_start(void)
{
	if (store_start() != 0)
		fatal("cannot start the writer thread");
}

/* --- 7 dircache ------------------------------------------------------ */

/* The directory cache, empty for the current snapshot. */
static void
fstrackd_dircache_init(void)
{
	dircache_init();
	dircache_set_move_hook(reconcile_note_move);
	dircache_new_snapshot(atomic_load(&fstd.cur_snapshot));
}

/* --- 8 perm (strict durability only) --------------------------------- */

/* Create the permission group. */
static void
fstrackd_perm_init(void)
{
	char	err[1024];

	if (fstd.cfg.durability == DURABILITY_STRICT &&
	    perm_init(err, sizeof err) != 0)
		fatalx("%s (use --durability async to track without holding "
		    "writers)", err);
}

/* Start answering permission events. */
static void
fstrackd_perm_start(void)
{
	if (fstd.cfg.durability == DURABILITY_STRICT && perm_start() != 0)
		fatal("cannot start the permission thread");
}

/* --- 9 notify -------------------------------------------------------- */

/*
 * Create the notification group, below the permission group in fd order.
 *
 * Why the order of the fds matters: when the daemon dies (SIGKILL, a
 * crash), the kernel releases its open files from the task's work list,
 * last queued first, and it queues them in ascending fd order: the highest
 * fd is released first.  An opener waiting for a permission event holds a
 * "user wait" on every group whose mark took part in that event, the
 * notification group too when one of its marks sits on the file (a quiet
 * mark, notify.c).  Releasing a group waits for its user waits to end.  If
 * the notification group went first, it would wait for openers that only
 * the permission group's release can let go, queued behind it: every such
 * opener and the dead daemon would hang for good (seen: root-crash-loop).
 * Released first, the permission group answers its events, the openers go
 * on, and the notification group's release follows (doc/kernel-facts.md).
 */
static void
fstrackd_notify_init(void)
{
	char	err[1024];

	if (notify_init(err, sizeof err) != 0)
		fatalx("%s", err);
	if (perm_fd_above(notify_group_fd()) != 0)
		fatal("cannot move the permission group above fd %d",
		    notify_group_fd());
}

/* --- 10 track -------------------------------------------------------- */

/*
 * Mark every filesystem in both groups and attach it to its history in
 * the database: its id and checkpoint, a gap where that history cannot be
 * continued, and a first checkpoint for one tracked for the first time.
 */
static void
fstrackd_track_init(void)
{
	char		 err[1024], gap[256];
	int64_t		 snap = atomic_load(&fstd.cur_snapshot), t_mark;
	struct store_op	*op;
	int		 i;

	t_mark = now_coarse_ns();
	for (i = 0; i < fstd.nfs; i++) {
		struct fst_fs *fs = &fstd.fs[i];

		if (notify_mark(fs, err, sizeof err) != 0)
			fatalx("%s", err);
		if (fstd.cfg.durability == DURABILITY_STRICT &&
		    perm_mark(fs, err, sizeof err) != 0)
			fatalx("%s", err);
		if (store_fs_attach(fs, &snap, gap, sizeof gap) != 0)
			fatalx("database '%s': cannot record filesystem",
			    fstd.db_path);
		if (gap[0] != '\0' && !fs->is_new)
			store_record_gap(fs, gap);
		else if (gap[0] != '\0' && snap != fstd.first_snapshot)
			store_record_gap(fs, gap);
		if (fs->is_new) {
			/*
			 * Its history starts here: no event can predate the
			 * marks, so the time read before them is a valid first
			 * checkpoint.  A crash before the first tick then
			 * reconciles from it instead of finding no checkpoint.
			 */
			op = store_op_checkpoint(fs->id, t_mark);
			op->durable = 1;
			store_submit(op);
			fs->checkpoint_ns = t_mark;
		}
	}
}

/* --- 11 reconcile ---------------------------------------------------- */

/* Start the start-up pass. */
static void
fstrackd_reconcile_start(void)
{
	reconcile_set_drain_hook(notify_drain);
	if (reconcile_start() != 0)
		fatal("cannot start the reconcile pass");
}

/* --- 12 control ------------------------------------------------------ */

/* Create the control socket. */
static void
fstrackd_control_init(void)
{
	char	err[1024];

	if (control_init(fstd.cfg.socket_path, err, sizeof err) != 0)
		fatalx("%s", err);
}

/* --- 13 privs -------------------------------------------------------- */

/* Keep only the capabilities the daemon needs from now on. */
static void
fstrackd_privs_init(void)
{
	if (daemon_drop_caps() != 0)
		log_warn("cannot drop capabilities");
}

/* --- 14 main --------------------------------------------------------- */

/* Once a second: checkpoints, and notice filesystems that went away. */
static void
tick_cb(uv_timer_t *t)
{
	int	i;

	for (i = 0; i < fstd.nfs; i++) {
		struct fst_fs *fs = &fstd.fs[i];

		if (fs->state == FS_TRACKED && !fsinfo_still_mounted(fs)) {
			notify_drain();
			fs->state = FS_GONE;
			log_warnx("'%s' is no longer mounted: not tracked any "
			    "more; a restart reconciles it from its last "
			    "checkpoint", fs->mountpoint);
			store_submit(store_op_fs_state(fs->id, FS_GONE));
		}
	}
	/* No checkpoint may pass a reconcile that has not finished. */
	if (!atomic_load(&fstd.reconciling))
		notify_checkpoint_tick(0);
}

/* Hourly: apply the retention policy. */
static void
prune_cb(uv_timer_t *t)
{
	struct store_op	*op = store_op_prune(0);

	(void)t;
	op->done = daemon_prune_done;
	store_submit(op);
}

/*
 * SIGTERM/SIGINT: end the loop; main() then stops everything in order
 * (fstrackd_stop), committing everything and writing checkpoints, and
 * exits 0.  SIGHUP: nothing to reload.
 */
static void
signal_cb(uv_signal_t *s, int signum)
{
	if (signum == SIGHUP) {
		log_info("SIGHUP: nothing to reload; restart to change "
		    "tracked filesystems");
		return;
	}
	if (shutting_down)
		return;
	shutting_down = 1;
	log_info("signal %d: committing and exiting", signum);
	uv_stop(fstd.loop);
}

/* Everything is in place: tell whoever waits. */
static void
announce_ready(void)
{
	int	fd;

	atomic_store(&fstd.ready, 1);
	daemon_sd_notify("READY=1");
	if (ready_fd != -1) {
		if (write(ready_fd, "1", 1) != 1)
			log_warn("readiness pipe");
		close(ready_fd);
		ready_fd = -1;
		log_init("fstrackd", 0, fstd.cfg.debug);
		if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) != -1) {
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
	}
	log_info("tracking %d filesystem%s, snapshot %lld, durability %s",
	    fstd.nfs, fstd.nfs == 1 ? "" : "s",
	    (long long)atomic_load(&fstd.cur_snapshot),
	    fstd.cfg.durability == DURABILITY_STRICT ? "strict" : "async");
}

/* Signals and timers in the loop, then READY. */
static void
fstrackd_main_start(void)
{
	uv_signal_init(fstd.loop, &sig_term);
	uv_signal_start(&sig_term, signal_cb, SIGTERM);
	uv_signal_init(fstd.loop, &sig_int);
	uv_signal_start(&sig_int, signal_cb, SIGINT);
	uv_signal_init(fstd.loop, &sig_hup);
	uv_signal_start(&sig_hup, signal_cb, SIGHUP);
	uv_timer_init(fstd.loop, &tick_timer);
	uv_timer_start(&tick_timer, tick_cb, 1000, 1000);
	uv_timer_init(fstd.loop, &prune_timer);
	uv_timer_start(&prune_timer, prune_cb, 3600 * 1000, 3600 * 1000);
	announce_ready();
}

/* Tell systemd the daemon is going down; no tick runs any more. */
static void
fstrackd_main_stop(void)
{
	daemon_sd_notify("STOPPING=1");
	uv_timer_stop(&tick_timer);
	uv_timer_stop(&prune_timer);
}

/* The lifecycle table (see the top): up in this order, down in reverse. */
static const struct fstrackd_module fstrackd_modules[] = {
	{ "loop", fstrackd_loop_init, NULL, NULL, fstrackd_loop_fini },
	{ "fsinfo", fsinfo_init, NULL, NULL, fsinfo_fini },
	{ "state", fstrackd_state_init, NULL, NULL, NULL },
	{ "answer", NULL, fstrackd_answer_start, answer_stop, NULL },
	{ "store", fstrackd_store_init, fstrackd_store_start, store_stop,
	    store_close },
	{ "daemon", daemon_init, NULL, daemon_stop, NULL },
	{ "dircache", fstrackd_dircache_init, NULL, NULL, dircache_fini },
	{ "perm", fstrackd_perm_init, fstrackd_perm_start, perm_stop, NULL },
	{ "notify", fstrackd_notify_init, notify_start, notify_stop, NULL },
	{ "track", fstrackd_track_init, NULL, NULL, NULL },
	{ "reconcile", NULL, fstrackd_reconcile_start, reconcile_stop, NULL },
	{ "control", fstrackd_control_init, NULL, control_stop, NULL },
	{ "privs", fstrackd_privs_init, NULL, NULL, NULL },
	{ "main", NULL, fstrackd_main_start, fstrackd_main_stop, NULL },
};
#define FSTRACKD_NMODULES \
	(int)(sizeof fstrackd_modules / sizeof fstrackd_modules[0])

/* Every init, then every start, in the table's order. */
static void
fstrackd_start(void)
{
	int	i;

	for (i = 0; i < FSTRACKD_NMODULES; i++)
		if (fstrackd_modules[i].init != NULL)
			fstrackd_modules[i].init();
	for (i = 0; i < FSTRACKD_NMODULES; i++)
		if (fstrackd_modules[i].start != NULL)
			fstrackd_modules[i].start();
}

/* The one shutdown path: every stop, then every fini, in reverse order. */
static void
fstrackd_stop(void)
{
	int	i;

	for (i = FSTRACKD_NMODULES - 1; i >= 0; i--)
		if (fstrackd_modules[i].stop != NULL)
			fstrackd_modules[i].stop();
	for (i = FSTRACKD_NMODULES - 1; i >= 0; i--)
		if (fstrackd_modules[i].fini != NULL)
			fstrackd_modules[i].fini();
}

int
main(int argc, char **argv)
{
	int	i;

	configure(argc, argv);
	if (geteuid() != 0) {
		log_warnx("fstrackd must run as root (fanotify filesystem "
		    "marks need CAP_SYS_ADMIN)");
		exit(1);
	}
	/* Relative names mean the caller's directory, not / after the fork. */
	for (i = 0; i < fstd.cfg.nmounts; i++)
		absolutize(&fstd.cfg.mounts[i]);
	absolutize(&fstd.cfg.state_dir);
	absolutize(&fstd.cfg.socket_path);

	signal(SIGPIPE, SIG_IGN);
	signal(SIGIO, SIG_IGN);		/* lease breaks (perm.c) */
	if (!fstd.cfg.foreground)
		daemonize();
	fstd.pid = getpid();
	fstd.started_ns = now_ns();

	fstrackd_start();
	uv_run(fstd.loop, UV_RUN_DEFAULT);
	fstrackd_stop();
	log_info("exiting");
	return 0;
}

/*
 * fstrackd.c -- the daemon's entry point: options, start-up order, the event
 * loop, and shutdown.
 *
 * Start-up order (reversed on the way out, chrony style):
 *   configuration -> database (refused if foreign, corrupt or newer) ->
 *   filesystems probed (refused with a reason) -> fanotify groups and marks
 *   -> control socket -> capabilities dropped -> writer, permission and
 *   reconcile threads -> READY.  A client that gets an answer from the
 *   socket therefore knows every mark is in place.
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

struct fst_daemon	fstd;

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

/* Once a second: checkpoints, and notice filesystems that went away. */
static void
tick_cb(uv_timer_t *t)
{
	struct store_op	*op;
	int		 i;

	for (i = 0; i < fstd.nfs; i++) {
		struct fst_fs *fs = &fstd.fs[i];

		if (fs->state == FS_TRACKED && !fsinfo_still_mounted(fs)) {
			notify_drain();
			fs->state = FS_GONE;
			log_warnx("'%s' is no longer mounted: not tracked any "
			    "more; a restart reconciles it from its last "
			    "checkpoint", fs->mountpoint);
			op = store_op_new(OP_FS_STATE);
			op->fs_id = fs->id;
			op->name = strdup("gone");
			store_submit(op);
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
	store_submit(store_op_new(OP_PRUNE));
}

/* Close every handle still open so uv_loop_close can succeed. */
static void
walk_close_cb(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* SIGTERM/SIGINT: commit everything, write checkpoints, exit 0. */
static void
signal_cb(uv_signal_t *s, int signum)
{
	struct store_op	*op;

	if (signum == SIGHUP) {
		log_info("SIGHUP: nothing to reload; restart to change "
		    "tracked filesystems");
		return;
	}
	if (shutting_down)
		return;
	shutting_down = 1;
	log_info("signal %d: committing and exiting", signum);
	daemon_sd_notify("STOPPING=1");
	control_fini();
	reconcile_stop();
	if (!atomic_load(&fstd.reconciling))
		notify_checkpoint_tick(1);
	notify_fini();
	perm_stop();
	daemon_record_writers();
	/*
	 * The last record, durable: everything before it is in, and the next
	 * start-up knows this stop was clean (no arms to promote, perm.c).
	 */
	op = store_op_new(OP_META);
	op->name = strdup("run_state");
	op->path = strdup("stopped");
	op->durable = 1;
	store_submit(op);
	uv_timer_stop(&tick_timer);
	uv_timer_stop(&prune_timer);
	uv_stop(fstd.loop);
}

/*
 * Was the last stop clean?  meta run_state is "running" from start-up until
 * the final durable commit of a SIGTERM writes "stopped".  After anything
 * else (SIGKILL, a crash, a power cut, a commit that failed at shutdown)
 * the directories armed in the newest two snapshots may hold writes that
 * nothing recorded (perm.c), so they become changes of kind "armed" in the
 * current snapshot -- in the same first batch that says "running" again.
 * After a clean stop the last run's arms are void and go.
 */
static void
note_run_state(int64_t snap)
{
	struct store_op	*op;
	char		 state[32];

	if (store_meta_get("run_state", state, sizeof state) == 0 &&
	    strcmp(state, "running") == 0) {
		log_warnx("the last stop was not clean: directories armed in "
		    "the last two snapshots are reported as changed (armed)");
		op = store_op_new(OP_PROMOTE_ARMS);
		op->snapshot = snap;
		store_submit(op);
	} else	/* a clean stop: the last run's arms died with its marks */
		store_submit(store_op_new(OP_CLEAR_ARMS));
	op = store_op_new(OP_META);
	op->name = strdup("run_state");
	op->path = strdup("running");
	op->durable = 1;
	store_submit(op);
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

int
main(int argc, char **argv)
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
	char		 err[1024], gap[256], path[PATH_MAX];
	const char	*o_state = NULL, *o_socket = NULL, *o_dur = NULL;
	const char	*o_config = NULL;
	long		 o_stall = -1, o_merge = -1;
	int		 ch, i, o_fg = 0, o_debug = 0, o_bounded = 0;
	enum fst_durability dur;
	int64_t		 snap, t_mark;
	struct store_op	*op;
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
	if (o_config != NULL) {
		free(fstd.cfg.config_file);
		fstd.cfg.config_file = strdup(o_config);
	}
	if (config_load(&fstd.cfg, fstd.cfg.config_file, o_config != NULL) != 0)
		exit(1);
	for (i = optind; i < argc; i++)
		config_add_mount(&fstd.cfg, argv[i]);
	if (o_state != NULL) {
		free(fstd.cfg.state_dir);
		fstd.cfg.state_dir = strdup(o_state);
	}
	if (o_socket != NULL) {
		free(fstd.cfg.socket_path);
		fstd.cfg.socket_path = strdup(o_socket);
	}
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
	fstd.loop = uv_default_loop();

	if ((fstd.fs = calloc(fstd.cfg.nmounts, sizeof *fstd.fs)) == NULL)
		fatal("out of memory");
	for (i = 0; i < fstd.cfg.nmounts; i++) {
		if (fsinfo_probe(fstd.cfg.mounts[i], &fstd.fs[fstd.nfs], err,
		    sizeof err) != 0)
			fatalx("cannot track: %s", err);
		if (fsinfo_by_fsid(&fstd.fs[fstd.nfs].kfsid) != NULL) {
			log_warnx("'%s' is the same filesystem as one already "
			    "tracked; ignoring it", fstd.fs[fstd.nfs].mountpoint);
			continue;
		}
		fstd.nfs++;
	}
	if (mkdir(fstd.cfg.state_dir, 0700) == -1 && errno != EEXIST)
		fatal("mkdir '%s'", fstd.cfg.state_dir);
	if (realpath(fstd.cfg.state_dir, path) == NULL)
		fatal("state directory '%s'", fstd.cfg.state_dir);
	free(fstd.cfg.state_dir);
	fstd.cfg.state_dir = strdup(path);
	if (asprintf(&fstd.db_path, "%s/%s", path, FSTRACK_DB_NAME) == -1)
		fatal("out of memory");
	lock_state_dir(path);
	if (store_open(fstd.db_path, err, sizeof err) != 0)
		fatalx("database '%s': %s", fstd.db_path, err);

	/* Snapshot numbering continues; a new database starts at the clock. */
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
		op = store_op_new(OP_SNAPSHOT);
		op->snapshot = snap;
		op->value = now_ns();
		op->durable = 1;
		store_submit(op);
		fstd.first_snapshot = snap;
	} else {
		if (store_meta_get("oldest_snapshot", err, sizeof err) == 0)
			fstd.first_snapshot = strtoll(err, NULL, 10);
		if (fstd.first_snapshot <= 0)
			fstd.first_snapshot = 1;
	}
	atomic_store(&fstd.cur_snapshot, snap);
	note_run_state(snap);
	dircache_init();
	dircache_set_move_hook(reconcile_note_move);
	dircache_new_snapshot(snap);

	if (notify_init(err, sizeof err) != 0)
		fatalx("%s", err);
	if (fstd.cfg.durability == DURABILITY_STRICT &&
	    perm_init(err, sizeof err) != 0)
		fatalx("%s (use --durability async to track without holding "
		    "writers)", err);
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
			op = store_op_new(OP_CHECKPOINT);
			op->fs_id = fs->id;
			op->value = t_mark;
			op->durable = 1;
			store_submit(op);
			fs->checkpoint_ns = t_mark;
		}
	}
	if (control_init(fstd.cfg.socket_path, err, sizeof err) != 0)
		fatalx("%s", err);
	if (daemon_drop_caps() != 0)
		log_warn("cannot drop capabilities");

	if (store_start() != 0)
		fatal("cannot start the writer thread");
	if (fstd.cfg.durability == DURABILITY_STRICT && perm_start() != 0)
		fatal("cannot start the permission thread");
	notify_start();
	if (reconcile_start() != 0)
		fatal("cannot start the reconcile pass");

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
	uv_run(fstd.loop, UV_RUN_DEFAULT);

	store_stop();
	uv_walk(fstd.loop, walk_close_cb, NULL);
	uv_run(fstd.loop, UV_RUN_DEFAULT);
	uv_loop_close(fstd.loop);
	dircache_fini();
	for (i = 0; i < fstd.nfs; i++) {
		close(fstd.fs[i].mount_fd);
		free(fstd.fs[i].mountpoint);
	}
	free(fstd.fs);
	log_info("exiting");
	return 0;
}

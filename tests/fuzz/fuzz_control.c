/*
 * fuzz_control.c -- libFuzzer target: the control protocol as the daemon
 * reads it.
 *
 * Each input is one client connection.  Its first byte chooses who the
 * client is and the daemon's health (bit 0: not root, when run as root;
 * bit 1: the store is degraded; bit 2: the stall guard is); the rest is
 * what the client sends, in chunks (fuzz.h), through a socketpair whose
 * other end control_adopt() serves exactly as an accepted connection.
 * The daemon runs the event loop between chunks, so each chunk is one
 * read of the real connection code (control.c), and its requests reach
 * the real dispatch, daemon.c and the store: a writer thread committing
 * to a scratch database in $TMPDIR (or /dev/shm, or /tmp), and the answer
 * threads (answer.c) answering `changed` from it.  The daemon
 * tracks no filesystem (fuzz_daemon.c): no fanotify group or mark exists,
 * no real filesystem is touched.
 *
 * After the client has sent everything it shuts down its side (which ends
 * a follower too) and reads until the daemon closes.  The answer must
 * follow the protocol (proto.h): data lines "key<TAB>value", then exactly
 * one final line, OK or ERR with a known code; no answer only when no
 * whole request came; a request longer than PROTO_MAX_LINE refused; only
 * root changes state; an answer of `changed` says its status.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fstrack.h"
#include "fuzz.h"
#include "log.h"

#define FUZZ_NOBODY		65534
#define FUZZ_WATCHDOG_MS	60000

static char		*fuzz_dir;
static uv_timer_t	 fuzz_watchdog;
static int		 fuzz_verbose;	/* $FUZZ_VERBOSE: print each answer */

/* Remove one entry of the scratch directory (nftw callback). */
static int
fuzz_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/*
 * At exit: stop the answer threads and the writer, close the loop, remove
 * the scratch database.
 */
static void
fuzz_control_fini(void)
{
	answer_stop();
	store_stop();
	store_close();
	uv_close((uv_handle_t *)&fuzz_watchdog, NULL);
	uv_run(fstd.loop, UV_RUN_DEFAULT);
	if (fuzz_dir != NULL)
		nftw(fuzz_dir, fuzz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A connection got neither an answer nor closed in time: a hang. */
static void
fuzz_watchdog_cb(uv_timer_t *t)
{
	FUZZ_CHECK(!"the daemon neither answered nor closed the connection");
}

/*
 * Set up a daemon as fstrackd's main() does, minus the filesystems: the
 * configuration's defaults (but a short retention), a new database with
 * its first snapshot (id 1, so inputs can name it), the directory cache
 * and the writer thread.
 */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*tmp = getenv("TMPDIR");
	char		 err[1024];
	struct stat	 st;
	struct store_op	*op;

	log_init("fuzz-control", 1, 0);
	fuzz_verbose = getenv("FUZZ_VERBOSE") != NULL;
	signal(SIGPIPE, SIG_IGN);
	if (tmp == NULL || *tmp == '\0')
		tmp = stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) ==
		    0 ? "/dev/shm" : "/tmp";
	if (asprintf(&fuzz_dir, "%s/fstrack-fuzz.XXXXXX", tmp) == -1 ||
	    mkdtemp(fuzz_dir) == NULL)
		fatal("scratch directory in '%s'", tmp);
	config_defaults(&fstd.cfg);
	/*
	 * Millions of inputs take a snapshot or set a consumer: with the
	 * default retention (30 days, consumers pinning history for 14) the
	 * scratch database would keep every snapshot and each prune would
	 * get slower.  Keep the ten newest, as fstrackd.conf(5) allows.
	 */
	fstd.cfg.retention_snapshots = 10;
	fstd.cfg.retention_days = 0;
	fstd.cfg.consumer_idle_days = 0;
	/* every barrier walks at once: no input waits for a shared walk */
	fstd.cfg.barrier_walk_gap_ms = 0;
	free(fstd.cfg.state_dir);
	fstd.cfg.state_dir = strdup(fuzz_dir);
	if (asprintf(&fstd.db_path, "%s/%s", fuzz_dir, FSTRACK_DB_NAME) == -1)
		fatal("out of memory");
	fstd.pid = getpid();
	fstd.started_ns = now_ns();
	if ((fstd.loop = malloc(sizeof *fstd.loop)) == NULL ||
	    uv_loop_init(fstd.loop) != 0)
		fatalx("cannot create the event loop");
	if (store_open(fstd.db_path, err, sizeof err) != 0)
		fatalx("database '%s': %s", fstd.db_path, err);
	op = store_op_snapshot(1, now_ns());
	op->durable = 1;
	store_submit(op);
	fstd.first_snapshot = 1;
	atomic_store(&fstd.cur_snapshot, 1);
	dircache_init();
	dircache_new_snapshot(1);
	if (store_start() != 0)
		fatal("cannot start the writer thread");
	if (answer_start() != 0)
		fatal("cannot start the answer threads");
	uv_timer_init(fstd.loop, &fuzz_watchdog);
	atexit(fuzz_control_fini);
	return 0;
}

/*
 * A connected socketpair; the daemon's end (sv[0]) is seen as the peer's
 * uid.  Only the calling thread changes its effective uid, for the one
 * system call that records it (the writer thread keeps root's).  Returns
 * the uid the daemon will see.
 */
static uid_t
fuzz_pair(int sv[2], int nonroot)
{
	uid_t	uid = geteuid();

	if (nonroot && uid == 0 &&
	    syscall(SYS_setresuid, -1, FUZZ_NOBODY, -1) == 0) {
		uid = FUZZ_NOBODY;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
			abort();
		if (syscall(SYS_setresuid, -1, 0, -1) != 0)
			abort();
		return uid;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	return uid;
}

/* Read what the daemon has written so far; *eof once it has closed. */
static void
fuzz_read_answer(int fd, struct sbuf *answer, int *eof)
{
	char	buf[8192];
	ssize_t	n;

	while (!*eof) {
		n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n > 0)
			sbuf_add(answer, buf, n);
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			*eof = 1;
		else if (errno == EAGAIN)
			return;
	}
}

/* Whether the request line starts with a verb that changes state. */
static int
fuzz_changes_state(const char *line)
{
	static const char *verbs[] = { "snapshot", "consumer-set",
	    "consumer-delete", "prune" };
	size_t	i, n = strcspn(line, " ");

	for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (strlen(verbs[i]) == n && strncmp(line, verbs[i], n) == 0)
			return 1;
	return 0;
}

/* The answer to what was sent follows the protocol (see the top). */
static void
fuzz_check_answer(const struct sbuf *sent, const struct sbuf *answer,
    uid_t uid)
{
	const char	*req = sent->data != NULL ? sent->data : "";
	const char	*nl, *line, *last = NULL, *tab;
	char		*end;
	size_t		 reqlen;
	long		 code;
	int		 ok;

	nl = sent->len > 0 ? memchr(req, '\n', sent->len) : NULL;
	if (answer->len == 0) {
		/* Only a request that never ended may go unanswered. */
		FUZZ_CHECK(nl == NULL && sent->len <= PROTO_MAX_LINE);
		return;
	}
	FUZZ_CHECK(answer->data[answer->len - 1] == '\n');
	FUZZ_CHECK(strlen(answer->data) == answer->len);
	for (line = answer->data; *line != '\0'; line = strchr(line, '\n') + 1) {
		if (last != NULL) {	/* the line before was a data line */
			tab = memchr(last, '\t', line - last);
			FUZZ_CHECK(tab != NULL && tab > last);
		}
		last = line;
	}
	/* last: the final line */
	ok = strcmp(last, "OK\n") == 0;
	if (!ok) {
		FUZZ_CHECK(strncmp(last, "ERR ", 4) == 0);
		code = strtol(last + 4, &end, 10);
		FUZZ_CHECK(*end == ' ');
		FUZZ_CHECK(code == FST_EXIT_ERROR || code == FST_EXIT_USAGE ||
		    code == FST_EXIT_NOSNAPSHOT || code == FST_EXIT_BUSY ||
		    code == FST_EXIT_STORE || code == FST_EXIT_LIMIT ||
		    code == FST_EXIT_PERM);
		FUZZ_CHECK(last == answer->data);	/* ERR comes alone */
	}
	if (nl == NULL) {
		/* Unanswerable: too long, or (the connection never ended). */
		FUZZ_CHECK(!ok);
		return;
	}
	reqlen = nl - req;
	if (reqlen > PROTO_MAX_LINE) {
		FUZZ_CHECK(strcmp(answer->data, "ERR 2 request too long\n") == 0);
		return;
	}
	if (memchr(req, '\0', reqlen) != NULL) {
		FUZZ_CHECK(strcmp(answer->data, "ERR 2 NUL byte in request\n") ==
		    0);
		return;
	}
	if (ok && uid != 0)
		FUZZ_CHECK(!fuzz_changes_state(req));
	/* an answer of changed ends with its status */
	if (ok && reqlen > 8 && strncmp(req, "changed ", 8) == 0)
		FUZZ_CHECK(strstr(answer->data, "\nstatus\t") != NULL ||
		    strncmp(answer->data, "status\t", 7) == 0);
	if ((reqlen == 6 && strncmp(req, "status", 6) == 0) ||
	    (reqlen == 6 && strncmp(req, "dbpath", 6) == 0))
		FUZZ_CHECK(ok);
}

/* One client connection. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_chunks	 ch;
	struct sbuf		 sent, answer;
	const uint8_t		*p;
	size_t			 n;
	ssize_t			 w;
	uid_t			 uid;
	int			 sv[2], eof = 0;

	if (size < 1)
		return 0;
	if (data[0] & 2)
		health_set_degraded(DEGRADED_STORE, "fuzz: disk full");
	else
		health_clear_degraded(DEGRADED_STORE);
	if (data[0] & 4)
		health_set_degraded(DEGRADED_STALL, "fuzz: commit stalled");
	else
		health_clear_degraded(DEGRADED_STALL);
	uid = fuzz_pair(sv, data[0] & 1);
	if (control_adopt(sv[0]) != 0)
		abort();
	uv_timer_start(&fuzz_watchdog, fuzz_watchdog_cb, FUZZ_WATCHDOG_MS, 0);
	sbuf_init(&sent);
	sbuf_init(&answer);
	fuzz_chunks_init(&ch, data + 1, size - 1);
	while (!eof && (n = fuzz_chunks_next(&ch, &p)) > 0) {
		w = send(sv[1], p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0)
			sbuf_add(&sent, p, w);
		if (w != (ssize_t)n)
			break;	/* the daemon closed, or stopped reading */
		uv_run(fstd.loop, UV_RUN_NOWAIT);
		fuzz_read_answer(sv[1], &answer, &eof);
	}
	shutdown(sv[1], SHUT_WR);
	for (;;) {
		fuzz_read_answer(sv[1], &answer, &eof);
		if (eof)
			break;
		uv_run(fstd.loop, UV_RUN_ONCE);
	}
	close(sv[1]);
	uv_timer_stop(&fuzz_watchdog);
	uv_run(fstd.loop, UV_RUN_NOWAIT);	/* the connection's close callbacks */
	if (fuzz_verbose)
		fprintf(stderr, "uid %d sent %zu bytes, answer:\n%s",
		    (int)uid, sent.len, answer.len > 0 ? answer.data : "");
	fuzz_check_answer(&sent, &answer, uid);
	sbuf_free(&sent);
	sbuf_free(&answer);
	return 0;
}

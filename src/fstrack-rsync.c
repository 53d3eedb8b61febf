/*
 * fstrack-rsync.c -- rsync only the directories that fstrack says changed.
 *
 * Every destination is a named fstrack consumer whose cursor is the
 * snapshot the last successful run started.  A run:
 *
 *   1. reads the cursor (none: full sync);
 *   2. starts a new snapshot, BEFORE it lists or copies anything: whatever
 *      changes while it works is in that snapshot or a later one, so the
 *      next run sees it again;
 *   3. reads every change since the cursor (a gap, a pruned cursor: full
 *      sync) and turns it into a list of directories (syncplan.c has the
 *      rules);
 *   4. runs one rsync, on the list or, for a full sync, on the tree;
 *   5. moves the cursor to the new snapshot only when rsync succeeded.
 *
 * RSYNC'S EXIT STATUSES.  0 is success.  24 ("some files vanished before
 * they could be transferred") counts as success too: a file is in rsync's
 * list only if it existed after the new snapshot began, so its vanishing
 * is recorded in that snapshot or a later one and the next run deletes it
 * from the destination.  Every other status, 23 ("some files/attrs were
 * not transferred": unreadable files, names too long, I/O errors) included,
 * is a failure: what was not transferred changed in the span the cursor
 * covers, so the cursor stays and the next run covers the span again.
 * Directories too long for rsync's --files-from lines make the run end with
 * 23 as well, as a plain rsync of the tree would.
 *
 * PULL.  With SRC of the form HOST:PATH the history is on HOST: the same
 * program runs there through the remote shell rsync uses (-e, $RSYNC_RSH,
 * ssh), as "fstrack-rsync --server-plan", does steps 1-3 against HOST's
 * fstrackd and prints the plan on its standard output; this side runs the
 * one rsync (which forwards the list to HOST's rsync), and on success
 * "fstrack-rsync --server-commit" moves the cursor on HOST.  The plan's
 * format is private to the two sides of one version: a header of
 * "key value" lines, values escaped as in the control protocol, then
 * "list BYTES" and the NUL-terminated entries.
 *
 * Exit status: 0 ok, rsync's status when rsync fails, 1 other errors,
 * 2 usage.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"
#include "query.h"
#include "planwire.h"
#include "syncplan.h"

#define PROG		"fstrack-rsync"
#define EXIT_PARTIAL	23	/* rsync's "partial transfer due to error" */
#define EXIT_VANISHED	24	/* rsync's "some files vanished" */

/* What the command line asked for. */
struct opts {
	const char	 *socket;
	const char	 *name;
	const char	 *remote_prog;	/* fstrack-rsync on HOST */
	int		  full;
	int		  dry;
	int		  verbose;
	int		  onefs;
	char		**ropts;	/* passed to rsync */
	int		  nropts;
	const char	 *rsh;		/* -e / --rsh, if given */
	const char	 *src;		/* as given */
	const char	 *dest;
};

static int		 verbose;
static char		 tmpdir[PATH_MAX];
static volatile pid_t	 child = -1;
static volatile sig_atomic_t caught;

/* Say something on stderr, from a va_list, ending the line. */
static void
vsay(const char *fmt, va_list ap)
{
	fprintf(stderr, PROG ": ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* Say something on stderr. */
static void __attribute__((format(printf, 1, 2)))
say(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

/* Say something when -v was given. */
#define info(...)	do { if (verbose > 0) say(__VA_ARGS__); } while (0)

/* Remove the temporary directory, if any. */
static void
cleanup(void)
{
	char	p[PATH_MAX + 16];

	if (tmpdir[0] == '\0')
		return;
	snprintf(p, sizeof p, "%s/list", tmpdir);
	unlink(p);
	rmdir(tmpdir);
	tmpdir[0] = '\0';
}

/* Say why and exit with status 1. */
static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	cleanup();
	exit(FST_EXIT_ERROR);
}

/* A usage error: say what, point at --help, exit 2. */
static void __attribute__((noreturn, format(printf, 1, 2)))
usage_err(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '" PROG " --help'.\n");
	exit(FST_EXIT_USAGE);
}

/* The --help text. */
static void
usage(void)
{
	printf(
"Usage: " PROG " [-s|--socket PATH] [--name NAME] [--full] [--dry-run] [-v]\n"
"       [--fstrack-rsync-path PROGRAM] [rsync options...] SRC/ DEST\n"
"\n"
"Sync SRC to DEST with rsync, transferring only the directories fstrackd has\n"
"seen change since the last successful run for this destination.\n"
"\n"
"  -s, --socket PATH  fstrackd control socket (default: $FSTRACK_SOCKET or\n"
"                     " CLIENT_DEFAULT_SOCKET "); with HOST:SRC, on HOST\n"
"      --name NAME    consumer name (default: derived from SRC and DEST)\n"
"      --full         full rsync regardless of history (cursor still advances)\n"
"      --dry-run      show what would be done (rsync -n); cursor untouched\n"
"                     (also -n, --list-only)\n"
"      --fstrack-rsync-path PROGRAM\n"
"                     " PROG " on HOST for HOST:SRC (default: " PROG ")\n"
"  -v                 tell what the wrapper does (rsync's own verbosity:\n"
"                     --verbose, -i, --info=...)\n"
"  -h, --help         this help\n"
"\n"
"All other options go to rsync, which always runs with -a --delete.  The last\n"
"two arguments are SRC and DEST; SRC may be HOST:PATH (fstrackd running on\n"
"HOST), DEST may be HOST:PATH.  RSYNC in the environment overrides the rsync\n"
"binary, RSYNC_RSH the remote shell.\n");
}

/*
 * Scan a cluster of rsync short options ("-avn"): note -n and -x, and stop
 * at a letter that takes an argument.  *rsh_next: the next argument is the
 * value of -e; *rsh: a value attached to -e.
 */
static void
scan_short(const char *a, struct opts *o, int *rsh_next)
{
	const char	*c;

	for (c = a + 1; *c != '\0'; c++) {
		if (*c == 'n')
			o->dry = 1;
		else if (*c == 'x')
			o->onefs = 1;
		else if (strchr("eBfTM@", *c) != NULL) {
			if (*c == 'e') {
				if (c[1] != '\0')
					o->rsh = c + 1;
				else
					*rsh_next = 1;
			}
			return;
		}
	}
}

/* Parse the command line into o; exits on --help and on usage errors. */
static void
parse_args(int argc, char **argv, struct opts *o)
{
	int	 i, n, rsh_next = 0;
	char	*a;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage();
			exit(0);
		}
	if (argc < 3)
		usage_err("need SRC and DEST");
	o->src = argv[argc - 2];
	o->dest = argv[argc - 1];
	n = argc - 2;
	if ((o->ropts = calloc(n + 1, sizeof *o->ropts)) == NULL)
		abort();
	for (i = 1; i < n; i++) {
		a = argv[i];
		if (rsh_next) {
			o->rsh = a;
			rsh_next = 0;
			o->ropts[o->nropts++] = a;
			continue;
		}
		if (strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0 ||
		    strcmp(a, "--name") == 0 ||
		    strcmp(a, "--fstrack-rsync-path") == 0) {
			if (i + 1 >= n)
				usage_err("%s needs an argument", a);
			if (a[1] == 's' || a[2] == 's')
				o->socket = argv[++i];
			else if (a[2] == 'n')
				o->name = argv[++i];
			else
				o->remote_prog = argv[++i];
		} else if (strncmp(a, "--socket=", 9) == 0)
			o->socket = a + 9;
		else if (strncmp(a, "--name=", 7) == 0)
			o->name = a + 7;
		else if (strncmp(a, "--fstrack-rsync-path=", 21) == 0)
			o->remote_prog = a + 21;
		else if (strcmp(a, "--full") == 0)
			o->full = 1;
		else if (strcmp(a, "--dry-run") == 0 || strcmp(a, "-n") == 0 ||
		    strcmp(a, "--list-only") == 0)
			o->dry = 1;
		else if (strcmp(a, "-v") == 0)
			o->verbose++;
		else if (strcmp(a, "--files-from") == 0 ||
		    strncmp(a, "--files-from=", 13) == 0 ||
		    strcmp(a, "--from0") == 0 || strcmp(a, "-0") == 0)
			usage_err("%s cannot be used with " PROG, a);
		else if (strcmp(a, "--delete-excluded") == 0)
			/* would delete everything outside the listed dirs */
			usage_err("--delete-excluded cannot be used with "
			    PROG);
		else if (strcmp(a, "--") == 0)
			usage_err("'--' is not supported; the last two "
			    "arguments are SRC and DEST");
		else {
			if (strcmp(a, "--one-file-system") == 0)
				o->onefs = 1;
			else if (strcmp(a, "-e") == 0 ||
			    strcmp(a, "--rsh") == 0)
				rsh_next = 1;
			else if (strncmp(a, "--rsh=", 6) == 0)
				o->rsh = a + 6;
			else if (a[0] == '-' && a[1] != '-' && a[1] != '\0')
				scan_short(a, o, &rsh_next);
			o->ropts[o->nropts++] = a;
		}
	}
	if (o->src[0] == '-' || o->dest[0] == '-')
		usage_err("last two arguments must be SRC and DEST (got '%s')",
		    o->src[0] == '-' ? o->src : o->dest);
	if (o->src[0] == '\0' || o->dest[0] == '\0')
		usage_err("empty SRC or DEST");
	if (strstr(o->src, "::") != NULL || strncmp(o->src, "rsync://", 8) == 0)
		usage_err("SRC must be a directory or HOST:DIRECTORY (no "
		    "rsync daemons)");
	verbose = o->verbose;
}

/*
 * Whether an rsync argument names a remote path (HOST:PATH): a colon
 * before any slash, as rsync decides.  *colon: where the colon is.
 */
static int
is_remote(const char *arg, const char **colon)
{
	const char	*c = strchr(arg, ':'), *s = strchr(arg, '/');

	if (c == NULL || (s != NULL && s < c) || c == arg)
		return 0;
	*colon = c;
	return 1;
}

/*
 * The mount point src is on into mnt; and, unless onefs, die if a
 * filesystem mounted below src is not tracked: rsync would enter it and
 * its changes are never seen.
 */
static void
check_mounts(const char *src, const struct reply *status, int onefs,
    char *mnt, size_t len)
{
	char	below[PATH_MAX];

	if (mounts_find(src, status, mnt, len, onefs ? NULL : below,
	    sizeof below) != 0) {
		if (errno == ENOENT)
			die("%s: cannot find its mount point", src);
		die("/proc/self/mountinfo: %s", strerror(errno));
	}
	if (!onefs && below[0] != '\0') {
		say("%s is mounted below %s and not tracked by fstrackd; "
		    "track it or pass -x", below, src);
		cleanup();
		exit(FST_EXIT_ERROR);
	}
}

/* The cursor of a plan as text: its number or "none". */
static const char *
cursor_str(const struct plan *pl)
{
	static char	buf[32];

	if (!pl->have_cursor)
		return "none";
	snprintf(buf, sizeof buf, "%lld", pl->cursor);
	return buf;
}

/* Collects the records of one run into its plan. */
struct collect {
	struct syncplan	*sp;
};

/* query_each_change callback: one record into the plan. */
static int
collect_change(void *arg, const char *dir, const char *name, int64_t mask,
    int gone)
{
	struct collect	*c = arg;

	(void)gone;
	syncplan_add(c->sp, dir, name, mask);
	return 0;
}

/*
 * Steps 1-3 on this machine: check that src is tracked, read the cursor,
 * start a snapshot (not for a dry run), read the changes and make the
 * plan.  name: the consumer; NULL makes one from src and dest.
 */
static void
make_plan(const struct opts *o, const char *src_arg, const char *dest,
    struct plan *pl)
{
	struct reply	 status, r;
	struct sqlite3	*db;
	struct syncplan	*sp;
	struct collect	 c;
	struct stat	 st;
	char		 src[PATH_MAX], mnt[PATH_MAX], name[80];
	const char	*s, *dbp;
	int64_t		 cur, cursor;
	int		 rc;
	FILE		*mem;

	memset(pl, 0, sizeof *pl);
	pl->snapshot = -1;
	if (stat(src_arg, &st) == -1 || !S_ISDIR(st.st_mode))
		die("%s: not a directory", src_arg);
	if (realpath(src_arg, src) == NULL)
		die("%s: cannot resolve: %s", src_arg, strerror(errno));
	pl->src = strdup(src);
	if (o->name != NULL)
		snprintf(name, sizeof name, "%s", o->name);
	else
		syncplan_default_name(src, dest, name, sizeof name);
	if (!proto_valid_name(name))
		usage_err("bad consumer name '%s' (1-64 of A-Z a-z 0-9 . _ @ "
		    ": + -)", name);

	/* is SRC tracked? */
	if (client_request("status", &status) != 0 || reply_get(&status,
	    "filesystem") == NULL) {
		reply_free(&status);
		die("'fstrack status' failed or lists no filesystem");
	}
	check_mounts(src, &status, o->onefs, mnt, sizeof mnt);
	if (mounts_tracked(&status, mnt) == NULL)
		die("%s is on %s, which fstrackd does not track (see 'fstrack "
		    "status')", src, mnt);
	reply_free(&status);

	/* the cursor, and the new snapshot */
	if (o->full) {
		pl->full = strdup("--full given");
	} else {
		if ((db = client_open_db(&cur, &rc)) == NULL)
			die("cannot read fstrackd's database");
		rc = query_consumer_cursor(db, name, &cursor);
		query_close(db);
		if (rc == FST_EXIT_OK) {
			pl->have_cursor = 1;
			pl->cursor = cursor;
		} else if (rc == FST_EXIT_NOSNAPSHOT) {
			if (asprintf(&pl->full, "no cursor for consumer %s "
			    "(first run)", name) == -1)
				abort();
		} else
			die("cannot read the cursor of consumer %s", name);
	}
	if (!o->dry) {
		if (client_request("snapshot", &r) != 0 ||
		    (s = reply_get(&r, "snapshot")) == NULL) {
			reply_free(&r);
			die("cannot start a snapshot");
		}
		pl->snapshot = strtoll(s, NULL, 10);
		reply_free(&r);
		info("consumer %s: cursor %s, new snapshot %lld", name,
		    cursor_str(pl), pl->snapshot);
	}
	if (pl->full != NULL)
		return;

	/* what changed */
	if ((sp = syncplan_new(src, mnt, o->onefs)) == NULL)
		die("%s: %s", src, strerror(errno));
	if ((db = client_barrier_open(pl->cursor, 0, &r, &cur, &dbp, &rc)) ==
	    NULL) {
		syncplan_free(sp);
		if (rc == FST_EXIT_NOSNAPSHOT) {
			if (asprintf(&pl->full, "snapshot %lld is no longer "
			    "known (pruned)", pl->cursor) == -1)
				abort();
			return;
		}
		die("'fstrack changed --since %lld' failed (exit %d)",
		    pl->cursor, rc);
	}
	c.sp = sp;
	rc = query_each_change(db, pl->cursor, cur, collect_change, &c);
	query_close(db);
	reply_free(&r);
	if (rc == FST_EXIT_GAP || rc == FST_EXIT_NOSNAPSHOT) {
		if (asprintf(&pl->full, rc == FST_EXIT_GAP ? "history "
		    "incomplete since snapshot %lld" : "snapshot %lld is no "
		    "longer known (pruned)", pl->cursor) == -1)
			abort();
		syncplan_free(sp);
		return;
	}
	if (rc != 0) {
		syncplan_free(sp);
		die("cannot read the changes since snapshot %lld", pl->cursor);
	}
	if (syncplan_finish(sp) != 0) {
		pl->full = strdup(syncplan_reason(sp));
		syncplan_free(sp);
		return;
	}
	syncplan_stats(sp, &pl->st);
	if ((mem = open_memstream(&pl->list, &pl->listlen)) == NULL ||
	    syncplan_write(sp, mem) != 0 || fclose(mem) != 0)
		die("cannot build the list: %s", strerror(errno));
	syncplan_foreach_too_long(sp, plan_add_too_long, pl);
	syncplan_free(sp);
}

/* Forward a signal to rsync; we exit once it has gone. */
static void
on_signal(int sig)
{
	caught = sig;
	if (child > 0)
		kill(child, sig);
}

/* Catch the signals that end a run, so the temporary files go too. */
static void
catch_signals(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* Exit as the signal we caught asks (128 + its number). */
static void
exit_if_caught(void)
{
	if (caught == 0)
		return;
	cleanup();
	exit(128 + caught);
}

/*
 * Run argv, its standard output to fd out (-1: ours); returns its exit
 * status (128 + signal if killed, 127 if it cannot be run).
 */
static int
run(char **argv, int out)
{
	pid_t	pid;
	int	status;

	if (verbose > 0) {
		int i;

		fprintf(stderr, PROG ": running:");
		for (i = 0; argv[i] != NULL; i++)
			fprintf(stderr, " %s", argv[i]);
		fputc('\n', stderr);
	}
	fflush(NULL);
	if ((pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		if (out != -1 && dup2(out, STDOUT_FILENO) == -1)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, PROG ": %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	child = pid;
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	child = -1;
	exit_if_caught();
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* A growable argv, and the strings it made itself (freed with it). */
struct argv {
	char	**v;
	int	  n;
	int	  cap;
	char	**own;
	int	  nown;
};

/* Append a string (not copied) to an argv. */
static void
av_add(struct argv *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 32;
		if ((a->v = realloc(a->v, a->cap * sizeof *a->v)) == NULL)
			abort();
	}
	a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

/* Append a string made with printf to an argv. */
static void __attribute__((format(printf, 2, 3)))
av_addf(struct argv *a, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		abort();
	va_end(ap);
	av_add(a, s);
	if ((a->own = realloc(a->own, (a->nown + 1) * sizeof *a->own)) == NULL)
		abort();
	a->own[a->nown++] = s;
}

/* Free an argv and the strings it made. */
static void
av_free(struct argv *a)
{
	int	i;

	for (i = 0; i < a->nown; i++)
		free(a->own[i]);
	free(a->own);
	free(a->v);
	memset(a, 0, sizeof *a);
}

/* Append s to b quoted for a POSIX shell ('...', with '\'' inside). */
static void
sh_quote(struct sbuf *b, const char *s)
{
	sbuf_addstr(b, "'");
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			sbuf_addstr(b, "'\\''");
		else
			sbuf_add(b, s, 1);
	}
	sbuf_addstr(b, "'");
}

/*
 * The remote shell command for host (user@host allowed) running the shell
 * command line cmd, split as rsync splits -e: on blanks, with '' and ""
 * quoting.
 */
static void
rsh_argv(const struct opts *o, const char *host, const char *cmd,
    struct argv *a)
{
	const char	*rsh = o->rsh, *at;
	char		*w, *p, q = 0;

	if (rsh == NULL && ((rsh = getenv("RSYNC_RSH")) == NULL ||
	    *rsh == '\0'))
		rsh = "ssh";
	if ((w = malloc(strlen(rsh) + 1)) == NULL)
		abort();
	for (p = w; ; rsh++) {
		if (*rsh == '\0' || (q == 0 && (*rsh == ' ' || *rsh == '\t'))) {
			if (p != w) {
				*p = '\0';
				av_addf(a, "%s", w);
			}
			p = w;
			if (*rsh == '\0')
				break;
			continue;
		}
		if (q == 0 && (*rsh == '\'' || *rsh == '"'))
			q = *rsh;
		else if (q != 0 && *rsh == q)
			q = 0;
		else
			*p++ = *rsh;
	}
	free(w);
	if ((at = strrchr(host, '@')) != NULL) {
		av_add(a, "-l");
		av_addf(a, "%.*s", (int)(at - host), host);
		host = at + 1;
	}
	av_addf(a, "%s", host);
	av_addf(a, "%s", cmd);
}

/*
 * The shell command line that runs fstrack-rsync on HOST in mode (the
 * --server-* option), with our socket and name.
 */
static char *
remote_cmd(const struct opts *o, const char *mode, const char *name,
    const char *arg)
{
	struct sbuf	b;

	sbuf_init(&b);
	sh_quote(&b, o->remote_prog != NULL ? o->remote_prog : PROG);
	sbuf_printf(&b, " %s", mode);
	if (o->socket != NULL) {
		sbuf_addstr(&b, " --socket ");
		sh_quote(&b, o->socket);
	}
	sbuf_addstr(&b, " --name ");
	sh_quote(&b, name);
	if (o->dry)
		sbuf_addstr(&b, " --dry-run");
	if (o->full)
		sbuf_addstr(&b, " --full");
	if (o->onefs)
		sbuf_addstr(&b, " -x");
	for (int i = 0; i < o->verbose; i++)
		sbuf_addstr(&b, " -v");
	sbuf_addstr(&b, " ");
	sh_quote(&b, arg);
	return b.data;
}

/* Run the plan step on HOST and read its answer into pl. */
static void
remote_plan(const struct opts *o, const char *host, const char *path,
    const char *name, struct plan *pl)
{
	struct argv	 a = { 0 };
	char		*buf = NULL, *cmd, p[PATH_MAX + 16];
	size_t		 len = 0, cap = 0;
	ssize_t		 n;
	int		 fd, rc;

	snprintf(p, sizeof p, "%s/plan", tmpdir);
	if ((fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1)
		die("%s: %s", p, strerror(errno));
	unlink(p);
	cmd = remote_cmd(o, "--server-plan", name, path);
	rsh_argv(o, host, cmd, &a);
	free(cmd);
	rc = run(a.v, fd);
	av_free(&a);
	if (rc != 0)
		die("the plan step on %s failed (exit %d)", host, rc);
	if (lseek(fd, 0, SEEK_SET) == -1)
		die("lseek: %s", strerror(errno));
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((buf = realloc(buf, cap)) == NULL)
				abort();
		}
		if ((n = read(fd, buf + len, cap - len)) <= 0)
			break;
		len += n;
	}
	close(fd);
	rc = plan_read(buf, len, pl);
	free(buf);
	if (rc != 0)
		die("%s on %s answered something that is not a plan (is it "
		    "the same version? see --fstrack-rsync-path)", PROG, host);
}

/* Move the cursor of consumer name to snapshot, here or on HOST. */
static void
commit(const struct opts *o, const char *host, const char *name,
    long long snapshot)
{
	struct reply	 r;
	struct argv	 a = { 0 };
	char		 line[256], num[32], *cmd;
	int		 rc;

	if (host != NULL) {
		snprintf(num, sizeof num, "%lld", snapshot);
		cmd = remote_cmd(o, "--server-commit", name, num);
		rsh_argv(o, host, cmd, &a);
		free(cmd);
		rc = run(a.v, -1);
		av_free(&a);
		if (rc != 0)
			die("moving the cursor of %s to %lld on %s failed "
			    "(exit %d)", name, snapshot, host, rc);
	} else {
		snprintf(line, sizeof line, "consumer-set %s %lld", name,
		    snapshot);
		if (client_request(line, &r) != 0) {
			reply_free(&r);
			die("'fstrack consumer set %s %lld' failed", name,
			    snapshot);
		}
		reply_free(&r);
	}
	info("cursor of %s advanced to %lld", name, snapshot);
}

/* The modes run on HOST for a pull: --server-plan and --server-commit. */
static int
server_main(int argc, char **argv)
{
	static struct opts	 o;
	static struct plan	 pl;
	struct reply	 r;
	const char	*mode = argv[1], *name = NULL, *arg = NULL;
	char		 line[256];
	unsigned long long v;
	int		 i;

	for (i = 2; i < argc; i++) {
		if ((strcmp(argv[i], "--socket") == 0 ||
		    strcmp(argv[i], "--name") == 0) && i + 1 < argc) {
			if (argv[i][2] == 's')
				o.socket = argv[++i];
			else
				name = argv[++i];
		} else if (strcmp(argv[i], "--dry-run") == 0)
			o.dry = 1;
		else if (strcmp(argv[i], "--full") == 0)
			o.full = 1;
		else if (strcmp(argv[i], "-x") == 0)
			o.onefs = 1;
		else if (strcmp(argv[i], "-v") == 0)
			verbose++;
		else if (i == argc - 1)
			arg = argv[i];
		else
			usage_err("%s: unknown argument '%s'", mode, argv[i]);
	}
	if (name == NULL || arg == NULL)
		usage_err("%s needs --name NAME and an argument", mode);
	o.name = name;
	client_init(PROG, o.socket);
	if (strcmp(mode, "--server-commit") == 0) {
		if (proto_parse_u64(arg, &v) != 0 || !proto_valid_name(name))
			usage_err("--server-commit: bad name or snapshot");
		snprintf(line, sizeof line, "consumer-set %s %llu", name, v);
		i = client_request(line, &r);
		reply_free(&r);
		return i;
	}
	make_plan(&o, arg, "", &pl);
	plan_write(&pl, stdout);
	i = fflush(stdout) == 0 ? 0 : FST_EXIT_ERROR;
	plan_free(&pl);
	return i;
}

int
main(int argc, char **argv)
{
	/* static: what they hold stays reachable when die() exits */
	static struct opts	 o;
	static struct plan	 pl;
	static struct argv	 cmd;
	static char		*host;
	const char	*colon, *rsync, *where;
	char		 name[80], listpath[PATH_MAX + 16], *t, *srcarg;
	int		 i, rc, fd;
	FILE		*f;

	if (argc >= 2 && (strcmp(argv[1], "--server-plan") == 0 ||
	    strcmp(argv[1], "--server-commit") == 0))
		return server_main(argc, argv);
	parse_args(argc, argv, &o);
	client_init(PROG, o.socket);
	catch_signals();
	atexit(cleanup);
	t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/fstrack-rsync.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		tmpdir[0] = '\0';
		die("cannot create a temporary directory: %s",
		    strerror(errno));
	}

	if (is_remote(o.src, &colon)) {
		char *path;

		if (is_remote(o.dest, &where))
			usage_err("SRC and DEST cannot both be remote");
		host = strndup(o.src, colon - o.src);
		path = strdup(colon + 1);
		if (host == NULL || path == NULL)
			abort();
		if (path[0] == '\0')
			usage_err("SRC %s names no directory", o.src);
		if (o.name != NULL)
			snprintf(name, sizeof name, "%s", o.name);
		else
			syncplan_default_name(o.src, o.dest, name, sizeof name);
		if (!proto_valid_name(name))
			usage_err("bad consumer name '%s'", name);
		o.name = name;
		remote_plan(&o, host, path, name, &pl);
		free(path);
		if (!o.dry && pl.snapshot < 1)
			die("the plan from %s started no snapshot", host);
	} else {
		make_plan(&o, o.src, o.dest, &pl);
		if (o.name != NULL)
			snprintf(name, sizeof name, "%s", o.name);
		else
			syncplan_default_name(pl.src, o.dest, name, sizeof name);
	}
	exit_if_caught();

	if (pl.full == NULL) {
		info("%zu changed directories reported, %zu to sync under %s "
		    "(%zu in new subtrees, %zu gone)", pl.st.reported,
		    pl.st.listed, pl.src, pl.st.in_new, pl.st.gone);
		if (verbose > 1) {
			size_t off;

			for (off = 0; off < pl.listlen;
			    off += strlen(pl.list + off) + 1)
				fprintf(stderr, "  %s\n", pl.list + off);
		}
	}
	for (size_t k = 0; k < pl.ntoolong; k++)
		say("%s/%s: path too long for rsync's file list; not synced",
		    pl.src, pl.toolong[k]);

	/* one rsync */
	if ((rsync = getenv("RSYNC")) == NULL || *rsync == '\0')
		rsync = "rsync";
	av_add(&cmd, rsync);
	av_add(&cmd, "-a");
	for (i = 0; i < o.nropts; i++)
		av_add(&cmd, o.ropts[i]);
	if (o.dry)
		av_add(&cmd, "-n");
	if (host != NULL)
		av_addf(&cmd, "%s:%s/", host, pl.src);
	else
		av_addf(&cmd, "%s/", pl.src);
	srcarg = cmd.v[--cmd.n];	/* goes after the options */
	rc = 0;
	if (pl.full != NULL) {
		say("full sync: %s", pl.full);
		av_add(&cmd, "--delete");
		if (isatty(STDOUT_FILENO))
			av_add(&cmd, "--info=progress2");
		av_add(&cmd, srcarg);
		av_add(&cmd, o.dest);
		rc = run(cmd.v, -1);
	} else if (pl.listlen > 0) {
		snprintf(listpath, sizeof listpath, "%s/list", tmpdir);
		if ((fd = open(listpath, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600)) == -1 || (f = fdopen(fd, "w")) == NULL ||
		    fwrite(pl.list, 1, pl.listlen, f) != pl.listlen ||
		    fclose(f) != 0)
			die("%s: %s", listpath, strerror(errno));
		av_add(&cmd, "--no-recursive");
		av_add(&cmd, "--dirs");
		av_add(&cmd, "--delete");
		av_addf(&cmd, "--files-from=%s", listpath);
		av_add(&cmd, "--from0");
		av_add(&cmd, "--ignore-missing-args");
		av_add(&cmd, srcarg);
		av_add(&cmd, o.dest);
		rc = run(cmd.v, -1);
	} else
		info("nothing changed under %s", pl.src);

	if (rc == EXIT_VANISHED) {
		say("rsync: some files vanished during the transfer; they "
		    "changed after snapshot %lld and will be synced by the "
		    "next run", pl.snapshot);
		rc = 0;
	}
	if (rc == 0 && pl.ntoolong > 0) {
		say("%zu entries could not be synced (paths too long for "
		    "rsync); cursor of %s left at %s", pl.ntoolong, name,
		    cursor_str(&pl));
		rc = EXIT_PARTIAL;
	} else if (rc != 0)
		say("rsync failed (exit %d); cursor of %s left at %s", rc, name,
		    cursor_str(&pl));
	else if (o.dry)
		info("dry run: cursor of %s left at %s", name,
		    cursor_str(&pl));
	else
		commit(&o, host, name, pl.snapshot);
	plan_free(&pl);
	av_free(&cmd);
	free(o.ropts);
	free(host);
	return rc;
}

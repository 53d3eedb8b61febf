/*
 * fstrack.c -- the command-line client.
 *
 * It needs nothing but the control socket (-s, $FSTRACK_SOCKET, or the
 * default): the daemon says where the database is, and for root listings
 * are read from it directly, read-only, so that a long answer never
 * occupies the daemon.  Every other user (who may not read the database)
 * gets `changed` from the daemon, which judges every row by the user's
 * own permissions (remote.c).  Exit statuses are fixed (fstrack(1)): 0
 * ok, 1 error, 2 usage, 3 no such snapshot or consumer, 4 history
 * incomplete (gap), 5 reconcile still running with --no-wait, 6 the
 * daemon cannot commit, 7 a per-user limit of the daemon, 13 permission
 * denied.
 */
#include "config.h"


#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"
#include "query.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: fstrack [-s|--socket PATH] COMMAND [ARGS]\n"
	    "commands:\n"
	    "  status [--json]\n"
	    "  snapshot\n"
	    "  snapshots [--json]\n"
	    "  changed --since N [--dirs] [-0] [--json] [--no-wait] [--follow] "
	    "[--position-file FILE]\n"
	    "  position\n"
	    "  verify --since N [--sample K] [--json]\n"
	    "  consumers [--json]\n"
	    "  consumer get NAME | consumer set NAME SNAPSHOT | "
	    "consumer delete NAME\n"
	    "  prune [--before N]\n");
	exit(FST_EXIT_USAGE);
}

/* Ask for the database path and open it, or exit. */
static struct sqlite3 *
open_db(int64_t *cur)
{
	struct sqlite3	*db;
	int		 rc;

	if ((db = client_open_db(cur, &rc)) == NULL)
		exit(rc);
	return db;
}

/* Parse a snapshot id argument or exit with a usage error. */
static long long
parse_snapshot(const char *s)
{
	unsigned long long	v;

	if (proto_parse_u64(s, &v) != 0 || v > (1ULL << 62)) {
		fprintf(stderr, "fstrack: '%s' is not a snapshot id\n", s);
		exit(FST_EXIT_USAGE);
	}
	return (long long)v;
}

/* fstrack status [--json] */
static int
cmd_status(int argc, char **argv)
{
	struct reply	r;
	struct sbuf	b;
	int		i, json = argc > 1 && strcmp(argv[1], "--json") == 0;
	int		nfs = 0;

	if (argc > 2 || (argc == 2 && !json))
		usage();
	if (client_request("status", &r) != 0)
		return reply_fail(&r);
	if (!json) {
		for (i = 0; i < r.n; i++)
			printf("%s: %s\n", r.keys[i], r.values[i]);
		reply_free(&r);
		return 0;
	}
	sbuf_init(&b);
	sbuf_addstr(&b, "{");
	for (i = 0; i < r.n; i++) {
		if (strcmp(r.keys[i], "filesystem") == 0)
			continue;
		sbuf_addstr(&b, b.len > 1 ? "," : "");
		sbuf_add_json_string(&b, r.keys[i]);
		sbuf_addstr(&b, ":");
		sbuf_add_json_string(&b, r.values[i]);
	}
	sbuf_addstr(&b, ",\"filesystems\":[");
	for (i = 0; i < r.n; i++) {
		if (strcmp(r.keys[i], "filesystem") != 0)
			continue;
		sbuf_addstr(&b, nfs++ ? "," : "");
		sbuf_add_json_string(&b, r.values[i]);
	}
	sbuf_addstr(&b, "]}\n");
	fputs(b.data, stdout);
	sbuf_free(&b);
	reply_free(&r);
	return 0;
}

/* fstrack snapshot */
static int
cmd_snapshot(int argc, char **argv)
{
	struct reply	 r;
	const char	*id;

	if (argc != 1)
		usage();
	if (client_request("snapshot", &r) != 0)
		return reply_fail(&r);
	if ((id = reply_get(&r, "snapshot")) == NULL) {
		reply_free(&r);
		return FST_EXIT_ERROR;
	}
	printf("%s\n", id);
	reply_free(&r);
	return fflush(stdout) == 0 ? 0 : FST_EXIT_ERROR;
}

/*
 * fstrack changed --since N|POSITION [--dirs] [-0] [--json] [--no-wait]
 *     [--follow] [--position-file FILE]
 */
static int
cmd_changed(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since",		required_argument,	NULL, 'S' },
		{ "dirs",		no_argument,		NULL, 'd' },
		{ "json",		no_argument,		NULL, 'j' },
		{ "no-wait",		no_argument,		NULL, 'n' },
		{ "null",		no_argument,		NULL, '0' },
		{ "follow",		no_argument,		NULL, 'f' },
		{ "position-file",	required_argument,	NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};
	struct query_answer	 a;
	struct proto_since	 since;
	const char		*since_arg = NULL, *posfile = NULL;
	struct client_at	 at;
	int			 ch, flags = 0, nowait = 0, follow = 0, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "0", opts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			if (proto_parse_since(optarg, &since) != 0) {
				fprintf(stderr, "fstrack: '%s' is neither a "
				    "snapshot id nor a position\n", optarg);
				exit(FST_EXIT_USAGE);
			}
			since_arg = optarg;
			break;
		case 'd': flags |= Q_DIRS; break;
		case 'j': flags |= Q_JSON; break;
		case 'n': nowait = 1; break;
		case '0': flags |= Q_NUL; break;
		case 'f': follow = 1; break;
		case 'p': posfile = optarg; break;
		default: usage();
		}
	}
	if (since_arg == NULL || optind != argc)
		usage();
	/* only root reads the database: everybody else asks fstrackd */
	if (!client_reads_db())
		return remote_changed(since_arg, flags, nowait, follow,
		    posfile);
	if (follow)
		return follow_changed(since_arg, &since, flags, nowait, posfile);
	/* a position costs nothing, but is taken only for who wants one */
	memset(&a, 0, sizeof a);
	rc = client_changed(since_arg, &since, (nowait ? CLIENT_NOWAIT : 0) |
	    ((flags & Q_JSON) || posfile != NULL || since.is_position ?
	    CLIENT_POSITION : 0), flags, &a, &at);
	/* after a gap too: where to go on once the full scan is done */
	if (posfile != NULL && at.position[0] != '\0' && (rc == 0 ||
	    rc == FST_EXIT_GAP) && follow_write_position(posfile,
	    at.position) != 0)
		rc = FST_EXIT_ERROR;
	return rc;
}

/* fstrack position: the current position, cheaply. */
static int
cmd_position(int argc, char **argv)
{
	char	pos[PROTO_POSITION_MAX];
	int	rc;

	if (argc != 1)
		usage();
	if ((rc = client_position(pos, sizeof pos)) != 0)
		return rc;
	printf("%s\n", pos);
	return fflush(stdout) == 0 ? 0 : FST_EXIT_ERROR;
}

/* fstrack verify --since N [--sample K] [--json] */
static int
cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since",	required_argument,	NULL, 'S' },
		{ "sample",	required_argument,	NULL, 'k' },
		{ "json",	no_argument,		NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	struct reply	 r;
	struct timespec	 ts;
	long long	 since = -1;
	long		 sample = 0;
	int64_t		 cur;
	int		 ch, json = 0, rc;
	char		 state[PATH_MAX], *slash, *end;
	const char	*dbp;
	struct sqlite3	*db;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'S': since = parse_snapshot(optarg); break;
		case 'k':
			sample = strtol(optarg, &end, 10);
			if (*end != '\0' || sample < 1)
				usage();
			break;
		case 'j': json = 1; break;
		default: usage();
		}
	}
	if (since < 0 || optind != argc)
		usage();
	/*
	 * Changes from now on are after the question: not checked.  The fine
	 * clock: a ctime is at most the fine time of its change, while the
	 * coarse clock can lag a just-made change's (multigrain) ctime.
	 */
	clock_gettime(CLOCK_REALTIME, &ts);
	if ((db = client_barrier_open(since, 0, &r, &cur, &dbp, &rc)) == NULL)
		return rc;
	snprintf(state, sizeof state, "%s", dbp);
	if ((slash = strrchr(state, '/')) != NULL && slash != state)
		*slash = '\0';
	rc = query_verify(db, since, cur, (int64_t)ts.tv_sec * 1000000000 +
	    ts.tv_nsec, sample, json, state);
	query_close(db);
	reply_free(&r);
	return rc;
}

/* fstrack snapshots [--json] / consumers [--json] */
static int
cmd_list(int argc, char **argv, int consumers)
{
	int		json = argc == 2 && strcmp(argv[1], "--json") == 0;
	int64_t		cur;
	struct sqlite3	*db;
	int		rc;

	if (argc > 2 || (argc == 2 && !json))
		usage();
	if ((db = open_db(&cur)) == NULL)
		return FST_EXIT_ERROR;
	rc = consumers ? query_consumers(db, cur, json) :
	    query_snapshots(db, json);
	query_close(db);
	return rc;
}

/* fstrack consumer get|set|delete NAME [SNAPSHOT] */
static int
cmd_consumer(int argc, char **argv)
{
	struct reply	 r;
	struct sqlite3	*db;
	char		 line[256];
	int		 rc;

	if (argc < 3 || !proto_valid_name(argv[2])) {
		if (argc >= 3)
			fprintf(stderr, "fstrack: bad consumer name '%s' "
			    "(1-64 of A-Z a-z 0-9 . _ @ : + -)\n", argv[2]);
		usage();
	}
	if (strcmp(argv[1], "get") == 0 && argc == 3) {
		if ((db = open_db(NULL)) == NULL)
			return FST_EXIT_ERROR;
		rc = query_consumer_get(db, argv[2]);
		query_close(db);
		return rc;
	}
	if (strcmp(argv[1], "set") == 0 && argc == 4)
		snprintf(line, sizeof line, "consumer-set %s %lld", argv[2],
		    parse_snapshot(argv[3]));
	else if (strcmp(argv[1], "delete") == 0 && argc == 3)
		snprintf(line, sizeof line, "consumer-delete %s", argv[2]);
	else
		usage();
	rc = client_request(line, &r);
	reply_free(&r);
	return rc;
}

/* fstrack prune [--before N] */
static int
cmd_prune(int argc, char **argv)
{
	struct reply	 r;
	char		 line[64];
	const char	*to;

	if (argc == 1)
		snprintf(line, sizeof line, "prune");
	else if (argc == 3 && strcmp(argv[1], "--before") == 0)
		snprintf(line, sizeof line, "prune %lld",
		    parse_snapshot(argv[2]));
	else
		usage();
	if (client_request(line, &r) != 0)
		return reply_fail(&r);
	if ((to = reply_get(&r, "pruned_to")) != NULL && strcmp(to, "0") != 0)
		printf("pruned history before snapshot %s\n", to);
	else
		printf("nothing to prune\n");
	reply_free(&r);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket",	required_argument,	NULL, 's' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int		 ch;
	const char	*cmd;

	client_init("fstrack", NULL);
	while ((ch = getopt_long(argc, argv, "+s:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 's': client_init("fstrack", optarg); break;
		case 'V': printf("fstrack %s\n", PACKAGE_VERSION); return 0;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	cmd = argv[0];
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(cmd, "snapshot") == 0)
		return cmd_snapshot(argc, argv);
	if (strcmp(cmd, "snapshots") == 0)
		return cmd_list(argc, argv, 0);
	if (strcmp(cmd, "changed") == 0)
		return cmd_changed(argc, argv);
	if (strcmp(cmd, "position") == 0)
		return cmd_position(argc, argv);
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(argc, argv);
	if (strcmp(cmd, "consumers") == 0)
		return cmd_list(argc, argv, 1);
	if (strcmp(cmd, "consumer") == 0)
		return cmd_consumer(argc, argv);
	if (strcmp(cmd, "prune") == 0)
		return cmd_prune(argc, argv);
	fprintf(stderr, "fstrack: unknown command '%s'\n", cmd);
	usage();
}

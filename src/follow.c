/*
 * follow.c -- fstrack changed --follow: what was recorded since N, then
 * every change as it is recorded, until something ends the stream.
 *
 * For root, which reads the database itself; everybody else's follower
 * runs in the daemon (control.c, answer.c: the same polls, answered
 * there), and remote.c prints what it streams with follow_mark and
 * follow_end.
 *
 * HOW.  Polling through the barrier, every FOLLOW_POLL_MS: each poll is a
 * `changed --since P` where P is the position the previous poll took
 * (store.c, POSITIONS), so the daemon does nothing for a follower between
 * polls, and the first answer (since N) and the live part are the same
 * kind of question.  A barrier drains the kernel queue and commits, so a
 * change whose system call returned before a poll is printed by that
 * poll: within FOLLOW_POLL_MS and a commit of the system call returning.
 *
 * NO GAP, NO REPEAT.  Poll k takes position P_k (a new dedup epoch in the
 * daemon, then a sequence number), then reads every row numbered above
 * P_{k-1}: everything recorded before P_k, and possibly some rows recorded
 * between P_k and the read.  Those are printed now and noted (their
 * numbers, query_answer.seen); poll k+1 reads above P_k and leaves out
 * exactly those numbers (a row recorded again has a new number and is
 * printed again).  So every record is printed once, none is left out.
 *
 * Files open for writing or mapped shared and writable are recorded by
 * the walk of /proc that a barrier makes (daemon_barrier): writes through
 * a mapping make no event.  Each such record is new to a follower, so the
 * walk is made only every FOLLOW_SCAN_EVERY polls (about once a second):
 * a file kept open for writing is printed again about once a second.
 *
 * THE END.  Never silent, never exit 0: the daemon unreachable or
 * stopped (exit 1), restarted (its instance changed; exit 1: positions
 * stay valid, so the caller resumes with --since the last position), a gap
 * recorded, queue overflows included (exit 4, the history since the last
 * position is incomplete), the database failing (1), the daemon unable to
 * commit (6).  Each says why on stderr and, with --json, in a last line
 * {"end": REASON, "status": N, "position": LAST}.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"
#include "query.h"

#define FOLLOW_POLL_MS		PROTO_FOLLOW_POLL_MS
#define FOLLOW_SCAN_EVERY	PROTO_FOLLOW_SCAN_EVERY	/* polls between
							   walks of /proc */

struct follow {
	int			 flags;		/* Q_* */
	const char		*posfile;
	char			 pos[PROTO_POSITION_MAX];	/* the last */
	char			 instance[128];
	char			 dbpath[4096];
	struct query_seen	 seen[2];
};

/*
 * Write the position to path atomically (a new file renamed over it), so
 * a reader never sees half a token.  0, or -1 after saying why.
 */
int
follow_write_position(const char *path, const char *pos)
{
	char	*tmp;
	FILE	*f;
	int	 rc = 0;

	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) == -1)
		return -1;
	if ((f = fopen(tmp, "w")) == NULL) {
		fprintf(stderr, "fstrack: cannot write '%s': %s\n", tmp,
		    strerror(errno));
		free(tmp);
		return -1;
	}
	if (fprintf(f, "%s\n", pos) < 0)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc != 0) {
		fprintf(stderr, "fstrack: cannot write '%s': %s\n", path,
		    strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

/* A follower's state, printing with flags (Q_*), posfile or NULL. */
struct follow *
follow_new(int flags, const char *posfile)
{
	struct follow	*f;

	if ((f = calloc(1, sizeof *f)) == NULL) {
		fputs("fstrack: out of memory\n", stderr);
		exit(FST_EXIT_ERROR);
	}
	f->flags = flags;
	f->posfile = posfile;
	return f;
}

/* Why a stream whose last answer had status rc ended, for follow_end. */
const char *
follow_reason(int rc)
{
	return rc == FST_EXIT_GAP ? "history is incomplete (a gap was "
	    "recorded): scan in full, then" : rc == FST_EXIT_NOSNAPSHOT ?
	    "no such snapshot or position" : "the answer failed";
}

/*
 * The stream ends with status rc for reason: say so, free f; returns rc.
 */
int
follow_end(struct follow *f, int rc, const char *reason)
{
	struct sbuf	b;

	fprintf(stderr, "fstrack: --follow ends: %s%s%s\n", reason,
	    !f->pos[0] ? "" : rc == FST_EXIT_GAP ? " resume with --since " :
	    "; resume with --since ", f->pos);
	if (f->flags & Q_JSON) {
		sbuf_init(&b);
		sbuf_addstr(&b, "{\"end\":");
		sbuf_add_json_string(&b, reason);
		sbuf_printf(&b, ",\"status\":%d,\"position\":", rc);
		if (f->pos[0])
			sbuf_add_json_string(&b, f->pos);
		else
			sbuf_addstr(&b, "null");
		sbuf_addstr(&b, "}\n");
		fputs(b.data, stdout);
		fflush(stdout);
		sbuf_free(&b);
	}
	query_seen_free(&f->seen[0]);
	query_seen_free(&f->seen[1]);
	free(f);
	return rc;
}

/*
 * An answer was printed (n records): the position it took is where a
 * resumed follower starts, in the position file and, with --json, on a
 * line of its own.  The first answer tells it even when empty.  0, or -1
 * after saying why.
 */
int
follow_mark(struct follow *f, const char *pos, size_t n, int first)
{
	snprintf(f->pos, sizeof f->pos, "%s", pos);
	if (n == 0 && !first)
		return 0;
	if (f->flags & Q_JSON) {
		printf("{\"position\":\"%s\"}\n", pos);
		if (fflush(stdout) != 0)
			return -1;
	}
	if (f->posfile != NULL && follow_write_position(f->posfile, pos) != 0)
		return -1;
	return 0;
}

/* Sleep ms milliseconds. */
static void
follow_sleep(int ms)
{
	struct timespec	ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * fstrack changed --since SINCE --follow: since_arg as the user gave it
 * (already parsed into since), flags Q_* (Q_LINES is added), nowait for
 * the first barrier, posfile or NULL.  Returns the exit status, never 0.
 */
int
follow_changed(const char *since_arg, const struct proto_since *since,
    int flags, int nowait, const char *posfile)
{
	struct follow		*f = follow_new(flags | Q_LINES, posfile);
	struct client_answer	 ans;
	struct query_answer	 a;
	struct proto_since	 next;
	struct sqlite3		*db;
	size_t			 n;
	unsigned		 poll;
	int			 rc, cur = 0;

	rc = client_barrier(since_arg, CLIENT_POSITION | (nowait ?
	    CLIENT_NOWAIT : 0), &ans);
	if (rc != 0)
		return follow_end(f, rc, "the first answer failed");
	if (ans.instance == NULL || strlen(ans.dbpath) >= sizeof f->dbpath) {
		reply_free(&ans.r);
		return follow_end(f, FST_EXIT_ERROR, "fstrackd does not name "
		    "its instance (an older fstrackd?)");
	}
	snprintf(f->instance, sizeof f->instance, "%s", ans.instance);
	snprintf(f->dbpath, sizeof f->dbpath, "%s", ans.dbpath);
	if ((db = query_open(ans.dbpath)) == NULL) {
		reply_free(&ans.r);
		return follow_end(f, FST_EXIT_ERROR, "cannot open the database");
	}
	memset(&a, 0, sizeof a);
	a.since = since;
	a.printed = &n;
	for (poll = 0;; poll++) {
		a.cur = ans.cur;
		a.position = ans.position;
		a.pos_seq = ans.pos_seq;
		a.skip = poll == 0 ? NULL : &f->seen[cur];
		a.seen = &f->seen[!cur];
		rc = query_changed_at(db, &a, f->flags);
		/* after a gap, where to go on once the full scan is done */
		if ((rc == 0 || rc == FST_EXIT_GAP) && follow_mark(f,
		    ans.position, n, poll == 0 || rc != 0) != 0)
			rc = FST_EXIT_ERROR;
		if (rc == 0 && proto_parse_since(ans.position, &next) != 0)
			rc = FST_EXIT_ERROR;
		reply_free(&ans.r);
		if (rc != 0)
			break;
		cur = !cur;
		a.since = &next;

		follow_sleep(FOLLOW_POLL_MS);
		rc = client_barrier(f->pos, CLIENT_POSITION |
		    ((poll + 1) % FOLLOW_SCAN_EVERY ? CLIENT_NOSCAN : 0), &ans);
		if (rc != 0) {
			query_close(db);
			return follow_end(f, rc, "fstrackd stopped or cannot "
			    "answer");
		}
		if (ans.instance == NULL || strcmp(ans.instance,
		    f->instance) != 0 || strcmp(ans.dbpath, f->dbpath) != 0) {
			reply_free(&ans.r);
			query_close(db);
			return follow_end(f, FST_EXIT_ERROR, "fstrackd "
			    "restarted");
		}
	}
	query_close(db);
	return follow_end(f, rc, follow_reason(rc));
}

/*
 * remote.c -- fstrack changed, answered by fstrackd: for every user but
 * root, who cannot read the database (and for root too with
 * FSTRACK_VIA_SOCKET set).
 *
 * The request is `changed SINCE [dirs] [nul] [json] [follow] [position]
 * [nowait]`.  The daemon makes the barrier, runs the query (answer.c)
 * with each row judged for the caller -- shown only if the caller could
 * list the directory it is in (access.c) -- and streams the answer
 * (doc/CONTRACT.md): "data" lines are printed as they come (flushed one
 * by one with --follow), "message" lines said on stderr, "position" is
 * the answer's position (for --position-file), a "mark" ends each answer
 * of --follow (follow_mark prints it), "status" is the exit status.  A
 * follower runs in the daemon: the connection stays open while it lasts,
 * and ends with the daemon.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "proto.h"
#include "query.h"

struct remote {
	struct follow	*follow;	/* --follow: follow.c's state */
	const struct query_sink *sink;	/* NULL: stdout and stderr */
	char		 position[PROTO_POSITION_MAX];
	char		 instance[128];
	int		 status;	/* -1 until said */
	int		 marks;		/* answers of --follow */
	int		 ended;		/* a mark said the stream ends */
	int		 failed;	/* stdout, a bad line */
};

/* A line of the answer (client_read_reply_cb): see the top. */
static int
remote_line(void *arg, const char *key, char *value)
{
	struct remote		*r = arg;
	struct proto_position	 p;
	char			*tok, *end;
	size_t			 n;

	if (strcmp(key, "data") == 0) {
		n = proto_unescape_bytes(value);
		if (r->sink != NULL) {
			if (r->sink->write(r->sink->arg, value, n) == 0)
				return 1;
			r->failed = 1;
			return -1;
		}
		if (fwrite(value, 1, n, stdout) != n || (r->follow != NULL &&
		    fflush(stdout) != 0)) {
			perror("fstrack: stdout");
			r->failed = 1;
			return -1;
		}
		return 1;
	}
	proto_unescape(value);
	if (strcmp(key, "message") == 0 && r->sink != NULL) {
		if (r->sink->say != NULL)
			r->sink->say(r->sink->arg, value);
	} else if (strcmp(key, "message") == 0)
		fprintf(stderr, "fstrack: %s\n", value);
	else if (strcmp(key, "position") == 0 &&
	    proto_parse_position(value, &p) == 0)
		snprintf(r->position, sizeof r->position, "%s", value);
	else if (strcmp(key, "instance") == 0)
		snprintf(r->instance, sizeof r->instance, "%s", value);
	else if (strcmp(key, "status") == 0)
		r->status = (int)strtol(value, NULL, 10);
	else if (strcmp(key, "mark") == 0 && r->follow != NULL) {
		/* "N POSITION", " end" after it when the stream ends */
		n = strtoul(value, &tok, 10);
		if (tok == value || *tok++ != ' ')
			goto bad;
		if ((end = strchr(tok, ' ')) != NULL) {
			if (strcmp(end, " end") != 0)
				goto bad;
			*end = '\0';
			r->ended = 1;
		}
		if (proto_parse_position(tok, &p) != 0)
			goto bad;
		if (follow_mark(r->follow, tok, n, r->marks++ == 0 ||
		    r->ended) != 0) {
			r->failed = 1;
			return -1;
		}
	} else
		return 0;	/* kept in the reply */
	return 1;
bad:
	fprintf(stderr, "fstrack: fstrackd's answer has a bad mark line\n");
	r->failed = 1;
	return -1;
}

/*
 * Ask fstrackd `changed SINCE` with the words of flags Q_* (Q_DIRS,
 * Q_NUL, Q_JSON), follow, position and nowait, its lines into r (set up
 * by the caller).  Returns the exit status of the answer.
 */
static int
remote_ask(struct remote *r, const char *since_arg, int flags, int follow,
    int position, int nowait)
{
	struct reply	 rep;
	char		*line;
	int		 rc;

	if (asprintf(&line, "changed %s%s%s%s%s%s%s", since_arg,
	    flags & Q_DIRS ? " dirs" : "", flags & Q_NUL ? " nul" : "",
	    flags & Q_JSON ? " json" : "", follow ? " follow" : "",
	    position ? " position" : "", nowait ? " nowait" : "") == -1) {
		fputs("fstrack: out of memory\n", stderr);
		return FST_EXIT_ERROR;
	}
	rc = client_request_cb(line, &rep, remote_line, r);
	free(line);
	reply_free(&rep);
	if (rc == 0 && r->status < 0) {
		fprintf(stderr, "fstrack: fstrackd's answer has no status (an "
		    "older fstrackd?)\n");
		rc = FST_EXIT_ERROR;
	} else if (rc == 0)
		rc = r->status;
	if (r->failed)
		rc = FST_EXIT_ERROR;
	return rc;
}

/*
 * fstrack changed --since since_arg, flags Q_* (Q_DIRS, Q_NUL, Q_JSON),
 * nowait, follow, posfile or NULL, asked of fstrackd.  Returns the exit
 * status (never 0 with follow).
 */
int
remote_changed(const char *since_arg, int flags, int nowait, int follow,
    const char *posfile)
{
	struct remote	 r;
	int		 rc;

	memset(&r, 0, sizeof r);
	r.status = -1;
	if (follow)
		r.follow = follow_new(flags | Q_LINES, posfile);
	rc = remote_ask(&r, since_arg, flags, follow, posfile != NULL &&
	    !follow, nowait);
	if (follow)
		return follow_end(r.follow, rc != 0 ? rc : FST_EXIT_ERROR,
		    r.status >= 0 ? follow_reason(rc) : r.marks == 0 ?
		    "the first answer failed" : "fstrackd stopped or cannot "
		    "answer");
	/* after a gap too: where to go on once the full scan is done */
	if (posfile != NULL && (rc == 0 || rc == FST_EXIT_GAP)) {
		if (r.position[0] == '\0') {
			fprintf(stderr, "fstrack: fstrackd's answer has no "
			    "position\n");
			rc = FST_EXIT_ERROR;
		} else if (follow_write_position(posfile, r.position) != 0)
			rc = FST_EXIT_ERROR;
	}
	return rc;
}

/*
 * One answer of fstrack changed since since_arg, flags Q_* (not Q_LINES),
 * nowait, asked of fstrackd with a position, its bytes and messages to
 * sink (its visible is not called: the daemon judged the rows), where it
 * stands into *at ("" for what the daemon did not say).  Returns the exit
 * status.
 */
int
remote_answer(const char *since_arg, int flags, int nowait,
    const struct query_sink *sink, struct client_at *at)
{
	struct remote	 r;
	int		 rc;

	memset(&r, 0, sizeof r);
	r.status = -1;
	r.sink = sink;
	rc = remote_ask(&r, since_arg, flags, 0, 1, nowait);
	snprintf(at->position, sizeof at->position, "%s", r.position);
	snprintf(at->instance, sizeof at->instance, "%s", r.instance);
	return rc;
}

/*
 * One answer of fstrack changed as fstrack gives it to this user: from the
 * database for root (client_changed), from the daemon for everybody else
 * (remote_answer, with a position; flags CLIENT_NOWAIT only), its bytes to
 * a->sink (NULL: stdout).  Arguments and result as for client_changed.
 */
int
remote_changed_once(const char *since_arg, const struct proto_since *since,
    int flags, int qflags, struct query_answer *a, struct client_at *at)
{
	if (client_reads_db())
		return client_changed(since_arg, since, flags, qflags, a, at);
	return remote_answer(since_arg, qflags, flags & CLIENT_NOWAIT, a->sink,
	    at);
}

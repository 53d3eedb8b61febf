/*
 * planwire.c -- the plan of an fstrack-rsync pull, on the wire.
 *
 * For "fstrack-rsync HOST:SRC/ DEST" the plan (cursor, new snapshot, why a
 * full sync, counts, the list) is made on HOST and printed on the remote
 * shell's standard output; this side reads it.  The format is private to
 * the two sides of one version:
 *
 *	fstrack-rsync-plan 1
 *	cursor N		(absent: no cursor)
 *	snapshot N		(-1: dry run, none started)
 *	src PATH
 *	full REASON		(absent: incremental)
 *	stats REPORTED LISTED IN_NEW GONE TOO_LONG
 *	toolong PATH		(zero or more)
 *	list BYTES
 *	BYTES bytes: the --files-from entries, each ended by a NUL
 *
 * Values are escaped as in the control protocol (\n, \t, \\).  What comes
 * from HOST is untrusted here: plan_read() refuses anything that does not
 * parse exactly (tests/fuzz/fuzz_plan.c holds it to that).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "planwire.h"
#include "proto.h"

/* Free what a plan holds; the plan is empty afterwards. */
void
plan_free(struct plan *pl)
{
	size_t	i;

	for (i = 0; i < pl->ntoolong; i++)
		free(pl->toolong[i]);
	free(pl->toolong);
	free(pl->list);
	free(pl->full);
	free(pl->src);
	memset(pl, 0, sizeof *pl);
}

/* Keep one path too long for rsync in the plan (arg: the plan). */
void
plan_add_too_long(void *arg, const char *rel)
{
	struct plan	*pl = arg;

	pl->toolong = realloc(pl->toolong, (pl->ntoolong + 1) *
	    sizeof *pl->toolong);
	if (pl->toolong == NULL || (pl->toolong[pl->ntoolong++] =
	    strdup(rel)) == NULL)
		abort();
}

/* Print a plan in the format plan_read() reads. */
void
plan_write(const struct plan *pl, FILE *f)
{
	struct sbuf	b;
	size_t		i;

	sbuf_init(&b);
	sbuf_printf(&b, PLAN_MAGIC "\n");
	if (pl->have_cursor)
		sbuf_printf(&b, "cursor %lld\n", pl->cursor);
	sbuf_printf(&b, "snapshot %lld\n", pl->snapshot);
	sbuf_addstr(&b, "src ");
	sbuf_add_escaped(&b, pl->src);
	sbuf_addstr(&b, "\n");
	if (pl->full != NULL) {
		sbuf_addstr(&b, "full ");
		sbuf_add_escaped(&b, pl->full);
		sbuf_addstr(&b, "\n");
	}
	sbuf_printf(&b, "stats %zu %zu %zu %zu %zu\n", pl->st.reported,
	    pl->st.listed, pl->st.in_new, pl->st.gone, pl->st.too_long);
	for (i = 0; i < pl->ntoolong; i++) {
		sbuf_addstr(&b, "toolong ");
		sbuf_add_escaped(&b, pl->toolong[i]);
		sbuf_addstr(&b, "\n");
	}
	sbuf_printf(&b, "list %zu\n", pl->listlen);
	fwrite(b.data, 1, b.len, f);
	if (pl->listlen > 0)
		fwrite(pl->list, 1, pl->listlen, f);
	sbuf_free(&b);
}

/* A number of the plan: digits only (a leading '-' where neg allows). */
static int
plan_number(const char *s, int neg, long long *out)
{
	unsigned long long	v;
	int			minus = neg && s[0] == '-';

	if (proto_parse_u64(s + minus, &v) != 0 || v > (1ULL << 62))
		return -1;
	*out = minus ? -(long long)v : (long long)v;
	return 0;
}

/* Replace *slot with a copy of v. */
static void
plan_set(char **slot, const char *v)
{
	free(*slot);
	if ((*slot = strdup(v)) == NULL)
		abort();
}

/*
 * Read a plan written by plan_write() from buf (len bytes, changed in
 * place) into pl: 0, or -1 (and pl empty) if it is not one exactly.
 */
int
plan_read(char *buf, size_t len, struct plan *pl)
{
	char		*p = buf, *end = buf + len, *nl, *v;
	long long	 n, st[5];
	int		 have_src = 0, have_snap = 0, i;

	memset(pl, 0, sizeof *pl);
	pl->snapshot = -1;
	if (len < sizeof PLAN_MAGIC || memcmp(buf, PLAN_MAGIC "\n",
	    sizeof PLAN_MAGIC) != 0)
		return -1;
	p += sizeof PLAN_MAGIC;
	while (p < end && (nl = memchr(p, '\n', end - p)) != NULL) {
		if (memchr(p, '\0', nl - p) != NULL)
			goto bad;
		*nl = '\0';
		if ((v = strchr(p, ' ')) == NULL)
			goto bad;
		*v++ = '\0';
		if (strcmp(p, "list") == 0) {
			if (plan_number(v, 0, &n) != 0 || !have_src ||
			    !have_snap || (size_t)(end - (nl + 1)) != (size_t)n ||
			    (n > 0 && nl[n] != '\0'))
				goto bad;
			if ((pl->list = malloc(n + 1)) == NULL)
				abort();
			memcpy(pl->list, nl + 1, n);
			pl->list[n] = '\0';
			pl->listlen = n;
			return 0;
		}
		proto_unescape(v);
		if (strcmp(p, "cursor") == 0) {
			if (plan_number(v, 0, &pl->cursor) != 0)
				goto bad;
			pl->have_cursor = 1;
		} else if (strcmp(p, "snapshot") == 0) {
			if (plan_number(v, 1, &pl->snapshot) != 0 ||
			    pl->snapshot < -1)
				goto bad;
			have_snap = 1;
		} else if (strcmp(p, "src") == 0) {
			if (v[0] != '/')
				goto bad;
			plan_set(&pl->src, v);
			have_src = 1;
		} else if (strcmp(p, "full") == 0)
			plan_set(&pl->full, v);
		else if (strcmp(p, "stats") == 0) {
			for (i = 0; i < 5; i++) {
				char *w = strsep(&v, " ");

				if (w == NULL || plan_number(w, 0, &st[i]) != 0)
					goto bad;
			}
			if (v != NULL)
				goto bad;
			pl->st.reported = st[0];
			pl->st.listed = st[1];
			pl->st.in_new = st[2];
			pl->st.gone = st[3];
			pl->st.too_long = st[4];
		} else if (strcmp(p, "toolong") == 0)
			plan_add_too_long(pl, v);
		else
			goto bad;
		p = nl + 1;
	}
bad:
	plan_free(pl);
	pl->snapshot = -1;
	return -1;
}

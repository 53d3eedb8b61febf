/*
 * proto.c -- framing, escaping and parsing for the control protocol, shared by
 * the daemon and the client.  Nothing here allocates without bounds checks:
 * every line from the socket is untrusted.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* Start an empty buffer. */
void
sbuf_init(struct sbuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* Release a buffer's memory; the buffer is empty afterwards. */
void
sbuf_free(struct sbuf *b)
{
	free(b->data);
	sbuf_init(b);
}

/* Forget the contents but keep the memory. */
void
sbuf_reset(struct sbuf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Make room for n more bytes plus a terminating NUL; aborts on ENOMEM. */
static void
sbuf_grow(struct sbuf *b, size_t n)
{
	size_t	 want = b->len + n + 1;
	char	*p;

	if (want <= b->cap)
		return;
	if (b->cap == 0)
		b->cap = 256;
	while (b->cap < want)
		b->cap *= 2;
	if ((p = realloc(b->data, b->cap)) == NULL)
		abort();
	b->data = p;
}

/* Append n bytes. */
void
sbuf_add(struct sbuf *b, const void *p, size_t n)
{
	sbuf_grow(b, n);
	if (n > 0)	/* p may be NULL then (an empty sbuf's data) */
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* Append a C string. */
void
sbuf_addstr(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

/* Append formatted text. */
void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sbuf_grow(b, n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
}

/* Append s with newline, TAB and backslash escaped as \n, \t and \\. */
void
sbuf_add_escaped(struct sbuf *b, const char *s)
{
	sbuf_add_escaped_bytes(b, s, strlen(s));
}

/*
 * Append the n bytes at p escaped as sbuf_add_escaped does, and a NUL
 * byte as \0: any bytes become one line of text without NUL.
 */
void
sbuf_add_escaped_bytes(struct sbuf *b, const void *p, size_t n)
{
	const char	*s = p, *end = s + n;
	const char	*run;

	while (s < end) {
		for (run = s; s < end && *s != '\n' && *s != '\t' &&
		    *s != '\\' && *s != '\0'; s++)
			;
		if (s > run)
			sbuf_add(b, run, s - run);
		if (s == end)
			return;
		switch (*s++) {
		case '\n':
			sbuf_add(b, "\\n", 2);
			break;
		case '\t':
			sbuf_add(b, "\\t", 2);
			break;
		case '\0':
			sbuf_add(b, "\\0", 2);
			break;
		default:
			sbuf_add(b, "\\\\", 2);
		}
	}
}

/* Length of the valid UTF-8 sequence at u, or 0 if it is not one. */
static size_t
utf8_len(const unsigned char *u)
{
	size_t	n, i;
	unsigned cp;

	if (u[0] < 0x80)
		return 1;
	if (u[0] >= 0xc2 && u[0] <= 0xdf) {
		n = 2;
		cp = u[0] & 0x1f;
	} else if (u[0] >= 0xe0 && u[0] <= 0xef) {
		n = 3;
		cp = u[0] & 0x0f;
	} else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
		n = 4;
		cp = u[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (u[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/*
 * Append s as a JSON string literal.  A file name is bytes, not text: a
 * byte that is not part of valid UTF-8 cannot be represented in JSON, so
 * it is written as \u00XX of the byte value (U+0080..U+00FF), which keeps
 * the output valid JSON.  Such names are ambiguous in JSON output; use
 * -0 for exact bytes.
 */
void
sbuf_add_json_string(struct sbuf *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)s, *run;
	size_t		     n;

	sbuf_add(b, "\"", 1);
	while (*u != '\0') {
		/* Printable ASCII other than " and \ goes out as it is. */
		for (run = u; *u >= 0x20 && *u < 0x7f && *u != '"' &&
		    *u != '\\'; u++)
			;
		if (u > run)
			sbuf_add(b, run, u - run);
		if (*u == '\0')
			break;
		if (*u == '"' || *u == '\\') {
			sbuf_add(b, "\\", 1);
			sbuf_add(b, u++, 1);
		} else if (*u < 0x20 || *u == 0x7f) {
			sbuf_printf(b, "\\u%04x", *u++);
		} else if ((n = utf8_len(u)) == 0) {
			sbuf_printf(b, "\\u%04x", *u++);
		} else {
			sbuf_add(b, u, n);
			u += n;
		}
	}
	sbuf_add(b, "\"", 1);
}

/*
 * Split a request line in place into at most max words separated by single
 * spaces.  Returns the number of words, or -1 if there are too many or an
 * empty word (two spaces in a row).
 */
int
proto_split(char *line, char **argv, int max)
{
	int	 argc = 0;
	char	*p = line;

	if (*p == '\0')
		return 0;
	if (*p == ' ')
		return -1;
	for (;;) {
		if (argc == max)
			return -1;
		argv[argc++] = p;
		p = strchr(p, ' ');
		if (p == NULL)
			break;
		*p++ = '\0';
		if (*p == '\0' || *p == ' ')
			return -1;
	}
	return argc;
}

/*
 * Undo the escapes in place; \0 becomes a NUL byte only with nul, unknown
 * escapes are kept literally.  Returns the length of what s now holds.
 */
static size_t
proto_unescape_in(char *s, int nul)
{
	char	*start = s, *w = s;

	for (; *s != '\0'; s++) {
		if (*s != '\\' || s[1] == '\0') {
			*w++ = *s;
			continue;
		}
		s++;
		if (*s == 'n')
			*w++ = '\n';
		else if (*s == 't')
			*w++ = '\t';
		else if (*s == '\\')
			*w++ = '\\';
		else if (*s == '0' && nul)
			*w++ = '\0';
		else {
			*w++ = '\\';
			*w++ = *s;
		}
	}
	*w = '\0';
	return w - start;
}

/* Undo sbuf_add_escaped in place; unknown escapes are kept literally. */
void
proto_unescape(char *s)
{
	proto_unescape_in(s, 0);
}

/*
 * Undo sbuf_add_escaped_bytes in place (\0 is a NUL byte); returns the
 * length of what s now holds.
 */
size_t
proto_unescape_bytes(char *s)
{
	return proto_unescape_in(s, 1);
}

/* Accept consumer names of 1-64 characters from [A-Za-z0-9._@:+-]. */
int
proto_valid_name(const char *s)
{
	size_t	n = 0;

	for (; *s != '\0'; s++, n++) {
		if (!isalnum((unsigned char)*s) && strchr("._@:+-", *s) == NULL)
			return 0;
	}
	return n >= 1 && n <= 64;
}

/* Parse a decimal unsigned integer with nothing after it; -1 on error. */
int
proto_parse_u64(const char *s, unsigned long long *out)
{
	char			*end;
	unsigned long long	 v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/*
 * Parse a decimal from *s up to the next ':' or the end, 1..2^62, no
 * leading zero; *s moves past it.  0, or -1 on anything else.
 */
static int
proto_parse_field(const char **s, long long *out)
{
	const char	*p = *s;
	long long	 v = 0;

	if (*p < '1' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > ((1LL << 62) - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (*p != '\0' && *p != ':')
		return -1;
	*out = v;
	*s = p;
	return 0;
}

/*
 * Write the token of position p into buf (PROTO_POSITION_MAX is enough).
 * 0, or -1 if p cannot be written as one (bad journal, out of range).
 */
int
proto_format_position(char *buf, size_t len, const struct proto_position *p)
{
	size_t	i;
	int	n;

	for (i = 0; i < PROTO_JOURNAL_LEN; i++)
		if (!isxdigit((unsigned char)p->journal[i]) ||
		    isupper((unsigned char)p->journal[i]))
			return -1;
	if (p->journal[i] != '\0' || p->snapshot < 1 ||
	    p->snapshot > 1LL << 62 || p->seq < 1 || p->seq > 1LL << 62)
		return -1;
	n = snprintf(buf, len, PROTO_POSITION_PREFIX "%s:%lld:%lld",
	    p->journal, p->snapshot, p->seq);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/*
 * Parse a position token exactly as proto_format_position writes it:
 * nothing before, after or in between that it would not write.  0, or -1
 * with *p untouched.
 */
int
proto_parse_position(const char *s, struct proto_position *p)
{
	struct proto_position	 r;
	size_t			 i;

	if (strncmp(s, PROTO_POSITION_PREFIX, strlen(PROTO_POSITION_PREFIX)))
		return -1;
	s += strlen(PROTO_POSITION_PREFIX);
	for (i = 0; i < PROTO_JOURNAL_LEN; i++) {
		if (!isxdigit((unsigned char)s[i]) ||
		    isupper((unsigned char)s[i]))
			return -1;
		r.journal[i] = s[i];
	}
	r.journal[i] = '\0';
	s += PROTO_JOURNAL_LEN;
	if (*s++ != ':' || proto_parse_field(&s, &r.snapshot) != 0 ||
	    *s++ != ':' || proto_parse_field(&s, &r.seq) != 0 || *s != '\0')
		return -1;
	*p = r;
	return 0;
}

/*
 * Parse what --since (or a barrier request) names: a snapshot id (a
 * decimal up to 2^62) or a position token.  0, or -1.
 */
int
proto_parse_since(const char *s, struct proto_since *out)
{
	unsigned long long	v;

	memset(out, 0, sizeof *out);
	if (proto_parse_u64(s, &v) == 0) {
		if (v > 1ULL << 62)
			return -1;
		out->snapshot = (long long)v;
		return 0;
	}
	if (proto_parse_position(s, &out->pos) != 0)
		return -1;
	out->is_position = 1;
	out->snapshot = out->pos.snapshot;
	return 0;
}

/* FNV-1a, 64 bits, of len bytes at p, continuing from h (FNV1A_OFFSET). */
uint64_t
fnv1a(uint64_t h, const void *p, size_t len)
{
	const unsigned char	*c = p;

	while (len-- > 0) {
		h ^= *c++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

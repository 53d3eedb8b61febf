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
	size_t	n;

	for (;;) {
		n = strcspn(s, "\n\t\\");
		if (n > 0)
			sbuf_add(b, s, n);
		s += n;
		switch (*s) {
		case '\0':
			return;
		case '\n':
			sbuf_add(b, "\\n", 2);
			break;
		case '\t':
			sbuf_add(b, "\\t", 2);
			break;
		default:
			sbuf_add(b, "\\\\", 2);
		}
		s++;
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

/* Undo sbuf_add_escaped in place; unknown escapes are kept literally. */
void
proto_unescape(char *s)
{
	char	*w = s;

	for (; *s != '\0'; s++) {
		if (*s != '\\' || s[1] == '\0') {
			*w++ = *s;
			continue;
		}
		s++;
		switch (*s) {
		case 'n':
			*w++ = '\n';
			break;
		case 't':
			*w++ = '\t';
			break;
		case '\\':
			*w++ = '\\';
			break;
		default:
			*w++ = '\\';
			*w++ = *s;
		}
	}
	*w = '\0';
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

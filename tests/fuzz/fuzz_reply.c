/*
 * fuzz_reply.c -- libFuzzer target: the client's reply parser
 * (client_read_reply() in client.c), fed through a socketpair.
 *
 * The first byte chooses the mode:
 *   even  the rest is raw bytes from the daemon, in chunks (fuzz.h); a
 *         SOCK_SEQPACKET pair keeps each chunk one read() of the parser.
 *         Whatever arrives, the parser must stay in bounds and its
 *         result must be one a client can act on: no answer (-1), OK
 *         (0), or an error code a process can exit with (1-255).
 *   odd   the rest describes a reply the way the daemon writes one
 *         (control.c): NUL-separated key, value, key, value, ..., and a
 *         last field "OK" or "ERR" CODE MESSAGE; it is encoded with the
 *         daemon's escaping, sent in chunks of (byte >> 1) + 1 bytes, and
 *         must be parsed back to exactly those keys, values and message.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "fuzz.h"
#include "proto.h"

#define FUZZ_MAX_CHUNKS	64

/* What the daemon would have sent, field by field (odd mode). */
struct fuzz_model {
	char	**keys;
	char	**values;
	int	  n;
	int	  err;		/* an ERR line, not OK */
	int	  code;
	char	 *msg;
};

/* Send buf (len bytes) to fd as messages of at most chunk bytes; 0 or -1. */
static int
fuzz_send_chunked(int fd, const char *buf, size_t len, size_t chunk)
{
	size_t	n;
	int	i;

	for (i = 0; len > 0; i++) {
		n = len < chunk ? len : chunk;
		if (i == FUZZ_MAX_CHUNKS - 1)
			n = len;	/* the rest in one message */
		if (send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)n)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Whether s can be a key the daemon writes: [a-z_], not empty. */
static int
fuzz_key_ok(const char *s)
{
	return *s != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyz_") ==
	    strlen(s);
}

/*
 * Build the model of an odd-mode input and the bytes the daemon would
 * send for it; 0, or -1 if the input describes no reply the daemon can
 * write (then it is not sent).
 */
static int
fuzz_model_build(const uint8_t *data, size_t size, struct fuzz_model *m,
    struct sbuf *out)
{
	char		*text, *f, *next, *end;
	char		*fields[2 * 64 + 3];
	int		 nf = 0, i;
	long		 code;

	memset(m, 0, sizeof *m);
	if ((text = malloc(size + 1)) == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	end = text + size;
	for (f = text; nf < (int)(sizeof fields / sizeof fields[0]); f = next) {
		fields[nf++] = f;
		next = f + strlen(f) + 1;
		if (next > end)
			break;
	}
	/* key/value pairs, then OK, or ERR CODE MESSAGE */
	if (nf >= 1 && strcmp(fields[nf - 1], "OK") == 0)
		nf -= 1;
	else if (nf >= 3 && strcmp(fields[nf - 3], "ERR") == 0) {
		code = strtol(fields[nf - 2], &f, 10);
		if (*fields[nf - 2] < '1' || *fields[nf - 2] > '9' ||
		    *f != '\0' || code < 1 || code > 255)
			goto bad;
		m->err = 1;
		m->code = code;
		m->msg = strdup(fields[nf - 1]);
		nf -= 3;
	} else
		goto bad;
	if (nf % 2 != 0)
		goto bad;
	m->n = nf / 2;
	m->keys = calloc(m->n + 1, sizeof *m->keys);
	m->values = calloc(m->n + 1, sizeof *m->values);
	for (i = 0; i < m->n; i++) {
		if (!fuzz_key_ok(fields[2 * i]))
			goto bad;
		m->keys[i] = strdup(fields[2 * i]);
		m->values[i] = strdup(fields[2 * i + 1]);
		/* as ctl_kv() writes it */
		sbuf_addstr(out, m->keys[i]);
		sbuf_addstr(out, "\t");
		sbuf_add_escaped(out, m->values[i]);
		sbuf_addstr(out, "\n");
	}
	if (m->err) {	/* as ctl_err() writes it */
		sbuf_printf(out, "ERR %d ", m->code);
		sbuf_add_escaped(out, m->msg);
		sbuf_addstr(out, "\n");
	} else
		sbuf_addstr(out, "OK\n");
	free(text);
	return 0;
bad:
	free(text);
	return -1;
}

/* Free a model. */
static void
fuzz_model_free(struct fuzz_model *m)
{
	int	i;

	for (i = 0; m->keys != NULL && i < m->n; i++) {
		free(m->keys[i]);
		free(m->values[i]);
	}
	free(m->keys);
	free(m->values);
	free(m->msg);
	memset(m, 0, sizeof *m);
}

/* The parsed reply is one a client can act on. */
static void
fuzz_check_reply(const struct reply *r, int code)
{
	int	i;

	FUZZ_CHECK(code == r->code);
	FUZZ_CHECK(code >= -1 && code <= 255);
	FUZZ_CHECK(r->n >= 0);
	for (i = 0; i < r->n; i++) {
		FUZZ_CHECK(r->keys[i] != NULL && r->values[i] != NULL);
		FUZZ_CHECK(reply_get(r, r->keys[i]) != NULL);
	}
	if (code <= 0)
		FUZZ_CHECK(r->msg == NULL);
}

/* Nothing to set up: the parser opens nothing. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

/* Parse one reply. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_chunks	 ch;
	struct fuzz_model	 m;
	struct reply		 r;
	struct sbuf		 out;
	const uint8_t		*p;
	size_t			 n;
	int			 sv[2], code, i, nchunks = 0, sent = 0;
	int			 big = 4 << 20;

	if (size < 1)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	/* Room for every chunk at once (root may exceed wmem_max). */
	if (setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) == -1)
		(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	sbuf_init(&out);
	memset(&m, 0, sizeof m);
	if (data[0] & 1) {
		if (fuzz_model_build(data + 1, size - 1, &m, &out) != 0) {
			fuzz_model_free(&m);
			sbuf_free(&out);
			close(sv[0]);
			close(sv[1]);
			return 0;
		}
		sent = fuzz_send_chunked(sv[1], out.data, out.len,
		    (data[0] >> 1) + 1) == 0;
	} else {
		fuzz_chunks_init(&ch, data + 1, size - 1);
		while ((n = fuzz_chunks_next(&ch, &p)) > 0) {
			if (++nchunks == FUZZ_MAX_CHUNKS) {
				n += ch.left;	/* the rest in one message */
				ch.left = 0;
			}
			if (send(sv[1], p, n, MSG_NOSIGNAL | MSG_DONTWAIT) !=
			    (ssize_t)n)
				break;
		}
	}
	close(sv[1]);
	code = client_read_reply(sv[0], &r);
	close(sv[0]);
	fuzz_check_reply(&r, code);
	if (sent) {
		/* Exactly what the daemon meant. */
		FUZZ_CHECK(code == (m.err ? m.code : 0));
		FUZZ_CHECK(r.n == m.n);
		for (i = 0; i < m.n; i++) {
			FUZZ_CHECK(strcmp(r.keys[i], m.keys[i]) == 0);
			FUZZ_CHECK(strcmp(r.values[i], m.values[i]) == 0);
		}
		if (m.err)
			FUZZ_CHECK(r.msg != NULL && strcmp(r.msg, m.msg) == 0);
	}
	reply_free(&r);
	fuzz_model_free(&m);
	sbuf_free(&out);
	return 0;
}

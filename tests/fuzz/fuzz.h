/*
 * fuzz.h -- what the fuzz targets in tests/fuzz/ share.
 *
 * Each fuzz_*.c file is one libFuzzer target: LLVMFuzzerTestOneInput()
 * feeds one input to the real code under test and checks what the code
 * promises about it (FUZZ_CHECK aborts, which libFuzzer and the replay
 * both report as a failure).  Built with clang -fsanitize=fuzzer by
 * `make fuzz`; built with the normal compiler and replay.c's main() by
 * `make check`, which replays tests/fuzz/corpus/TARGET/.
 *
 * Inputs that are sent through a socket are cut into chunks by the input
 * itself: a length byte N, then N bytes (fewer at the end of the input);
 * N = 0 ends the stream there (the rest of the input is ignored).
 */
#ifndef FSTRACK_FUZZ_H
#define FSTRACK_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* A property of the code under test does not hold: report and abort. */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: fuzz check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* The chunks of an input, as described above. */
struct fuzz_chunks {
	const uint8_t	*p;
	size_t		 left;
};

/* Start cutting len bytes at p into chunks. */
static inline void
fuzz_chunks_init(struct fuzz_chunks *c, const uint8_t *p, size_t len)
{
	c->p = p;
	c->left = len;
}

/* The next chunk into *out; its length, or 0 at the end of the stream. */
static inline size_t
fuzz_chunks_next(struct fuzz_chunks *c, const uint8_t **out)
{
	size_t	n;

	if (c->left == 0)
		return 0;
	n = c->p[0];
	c->p++;
	c->left--;
	if (n == 0) {
		c->left = 0;
		return 0;
	}
	if (n > c->left)
		n = c->left;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return n;
}

#endif

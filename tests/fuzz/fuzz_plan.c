/*
 * fuzz_plan.c -- libFuzzer target: the plan of an fstrack-rsync pull as
 * this side reads it from HOST (src/planwire.c), untrusted input.
 *
 * Whatever the input, plan_read() either refuses it and leaves the plan
 * empty, or gives a plan that holds together: an absolute SRC, a list
 * empty or ending with a NUL (and NUL-terminated one past its end), as
 * many too-long paths as it says; and written out again with
 * plan_write() and read back, the same plan.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "planwire.h"

/* Two plans say the same. */
static void
fuzz_plan_same(const struct plan *a, const struct plan *b)
{
	size_t	i;

	FUZZ_CHECK(a->have_cursor == b->have_cursor);
	FUZZ_CHECK(!a->have_cursor || a->cursor == b->cursor);
	FUZZ_CHECK(a->snapshot == b->snapshot);
	FUZZ_CHECK(strcmp(a->src, b->src) == 0);
	FUZZ_CHECK((a->full == NULL) == (b->full == NULL));
	FUZZ_CHECK(a->full == NULL || strcmp(a->full, b->full) == 0);
	FUZZ_CHECK(memcmp(&a->st, &b->st, sizeof a->st) == 0);
	FUZZ_CHECK(a->ntoolong == b->ntoolong);
	for (i = 0; i < a->ntoolong; i++)
		FUZZ_CHECK(strcmp(a->toolong[i], b->toolong[i]) == 0);
	FUZZ_CHECK(a->listlen == b->listlen);
	FUZZ_CHECK(memcmp(a->list, b->list, a->listlen) == 0);
}

/* Nothing to set up. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* Read one plan; check it holds together and survives a round trip. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct plan	 pl, again;
	char		*buf, *out = NULL;
	size_t		 outlen = 0;
	FILE		*f;

	if ((buf = malloc(len + 1)) == NULL)
		abort();
	if (len > 0)
		memcpy(buf, data, len);
	if (plan_read(buf, len, &pl) != 0) {
		FUZZ_CHECK(pl.src == NULL && pl.list == NULL &&
		    pl.toolong == NULL && pl.full == NULL);
		free(buf);
		return 0;
	}
	free(buf);
	FUZZ_CHECK(pl.src != NULL && pl.src[0] == '/');
	FUZZ_CHECK(pl.list != NULL && pl.list[pl.listlen] == '\0');
	FUZZ_CHECK(pl.listlen == 0 || pl.list[pl.listlen - 1] == '\0');
	FUZZ_CHECK(pl.snapshot >= -1);

	/* written out and read back: the same plan */
	if ((f = open_memstream(&out, &outlen)) == NULL)
		abort();
	plan_write(&pl, f);
	fclose(f);
	FUZZ_CHECK(plan_read(out, outlen, &again) == 0);
	fuzz_plan_same(&pl, &again);
	free(out);
	plan_free(&again);
	plan_free(&pl);
	return 0;
}

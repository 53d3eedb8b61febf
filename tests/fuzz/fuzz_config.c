/*
 * fuzz_config.c -- libFuzzer target: the configuration parser (config.c).
 *
 * The input is the whole of an fstrackd.conf(5).  config_load() reads it
 * from a memfd through /proc/self/fd, exactly as it reads the real file;
 * whether it accepts it or not, what it stored must be a configuration
 * the daemon can use: absolute paths, numbers within their documented
 * ranges, each mount point once.
 */
#include "config.h"

#include <sys/mman.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fstrack.h"
#include "fuzz.h"
#include "log.h"

/* What the parser stored is a configuration the daemon can use. */
static void
fuzz_config_check(const struct fst_config *c)
{
	int	i, j;

	FUZZ_CHECK(c->state_dir != NULL && c->state_dir[0] == '/');
	FUZZ_CHECK(c->socket_path != NULL && c->socket_path[0] == '/');
	FUZZ_CHECK(c->durability == DURABILITY_STRICT ||
	    c->durability == DURABILITY_ASYNC);
	FUZZ_CHECK(c->stall_timeout_ms >= 10 && c->stall_timeout_ms <= 3600000);
	FUZZ_CHECK(c->retention_snapshots >= 1);
	FUZZ_CHECK(c->retention_days >= 0 && c->retention_days <= 100000);
	FUZZ_CHECK(c->consumer_idle_days >= 0 &&
	    c->consumer_idle_days <= 100000);
	FUZZ_CHECK(c->merge_delay_ms >= 0 && c->merge_delay_ms <= 1000);
	FUZZ_CHECK(c->reconcile_margin_ms >= 0 &&
	    c->reconcile_margin_ms <= 3600000);
	FUZZ_CHECK(c->nmounts >= 0);
	for (i = 0; i < c->nmounts; i++) {
		FUZZ_CHECK(c->mounts[i] != NULL && c->mounts[i][0] == '/');
		/* No surrounding blanks and no comment survive. */
		FUZZ_CHECK(strchr(c->mounts[i], '#') == NULL);
		FUZZ_CHECK(strchr(c->mounts[i], '\n') == NULL);
		for (j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(c->mounts[i], c->mounts[j]) != 0);
	}
}

/* Log errors only as a program would, once; nothing else to set up. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz-config", 1, 0);
	return 0;
}

/* Load one configuration file. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		fd = -1;
	static char		path[64];
	struct fst_config	c;
	size_t			off = 0;
	ssize_t			n;

	if (fd == -1) {
		if ((fd = memfd_create("fuzz-config", MFD_CLOEXEC)) == -1)
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) == -1 || lseek(fd, 0, SEEK_SET) == -1)
		abort();
	while (off < size) {
		if ((n = write(fd, data + off, size - off)) <= 0)
			abort();
		off += n;
	}
	config_defaults(&c);
	(void)config_load(&c, path, 1);
	fuzz_config_check(&c);
	config_free(&c);
	return 0;
}

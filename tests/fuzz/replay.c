/*
 * replay.c -- main() for the fuzz targets built without libFuzzer (make
 * check): run every input of the target's corpus through
 * LLVMFuzzerTestOneInput once.
 *
 *   replay-TARGET [FILE|DIR...]
 *
 * Without arguments it replays $top_srcdir/tests/fuzz/corpus/TARGET (the
 * automake test environment sets top_srcdir).  An input that breaks a
 * check aborts, so the test fails; an empty corpus fails too.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET must name the target"
#endif

/* Run the file at path through the target; 0, or -1 if it cannot be read. */
static int
replay_file(const char *path)
{
	struct stat	 st;
	uint8_t		*buf;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		fprintf(stderr, "replay: '%s': %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	/* An exact-size copy, as libFuzzer gives: ASan sees any over-read. */
	if ((buf = malloc(st.st_size > 0 ? st.st_size : 1)) == NULL)
		abort();
	while (len < (size_t)st.st_size &&
	    (n = read(fd, buf + len, st.st_size - len)) > 0)
		len += n;
	close(fd);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

/* Keep only regular-looking names (no dot files). */
static int
replay_select(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

/* Replay path, a file or every file of a directory; inputs run, or -1. */
static int
replay_path(const char *path)
{
	struct dirent	**names;
	struct stat	  st;
	char		  file[4096];
	int		  i, n, count = 0;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "replay: '%s': %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path) == 0 ? 1 : -1;
	if ((n = scandir(path, &names, replay_select, alphasort)) == -1) {
		fprintf(stderr, "replay: '%s': %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
		if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
			printf("%s\n", file);
			fflush(stdout);
			if (replay_file(file) != 0)
				count = -1;
			else if (count >= 0)
				count++;
		}
		free(names[i]);
	}
	free(names);
	return count;
}

/* Replay the inputs named on the command line, or the target's corpus. */
int
main(int argc, char **argv)
{
	const char	*top = getenv("top_srcdir");
	char		 dir[4096];
	int		 i, n, total = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	if (argc < 2) {
		snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s",
		    top != NULL && *top != '\0' ? top : ".", FUZZ_TARGET);
		if ((n = replay_path(dir)) <= 0) {
			fprintf(stderr, "replay: no inputs in '%s'\n", dir);
			return 1;
		}
		total = n;
	} else {
		for (i = 1; i < argc; i++) {
			if ((n = replay_path(argv[i])) < 0)
				return 1;
			total += n;
		}
	}
	printf("replay-%s: %d inputs, no failure\n", FUZZ_TARGET, total);
	return 0;
}

/*
 * openbench.c -- open+close micro-benchmark for bench/opens.sh.
 *
 *	openbench loop DIR NFILES N r|w
 *		N open+close of DIR/f0 .. DIR/f(NFILES-1), round robin,
 *		O_RDONLY (r) or O_WRONLY (w, no truncation, nothing written).
 *		Prints: us_per_op=... total_s=...
 *	openbench first ROOT NDIRS [r|w [SUB]]
 *		one open+close of ROOT/dI[SUB]/f for I in 0..NDIRS-1 (the
 *		first open in each directory), O_WRONLY (w, the default) or
 *		O_RDONLY (r).  Prints the mean, median,
 *		99th percentile and maximum latency of one open, in us.
 *
 * Not a test: it only measures.  Built by opens.sh with cc -O2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Nanoseconds of CLOCK_MONOTONIC. */
static double
openbench_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Open and close one path or exit with a message. */
static void
openbench_open_close(const char *path, int flags)
{
	int	 fd;

	if ((fd = open(path, flags | O_CLOEXEC)) == -1) {
		fprintf(stderr, "openbench: cannot open '%s': %s\n", path,
		    strerror(errno));
		exit(1);
	}
	close(fd);
}

/* Compare two doubles for qsort. */
static int
openbench_cmp(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Round-robin open+close of NFILES files, N times. */
static int
openbench_loop(const char *dir, long nfiles, long n, int flags)
{
	char	**paths;
	double	 t0, t1;
	long	 i;

	if ((paths = calloc(nfiles, sizeof *paths)) == NULL)
		return 1;
	for (i = 0; i < nfiles; i++)
		if (asprintf(&paths[i], "%s/f%ld", dir, i) == -1)
			return 1;
	/* Warm the dentry cache outside the timed loop. */
	for (i = 0; i < nfiles; i++)
		openbench_open_close(paths[i], O_RDONLY);
	t0 = openbench_now();
	for (i = 0; i < n; i++)
		openbench_open_close(paths[i % nfiles], flags);
	t1 = openbench_now();
	printf("us_per_op=%.3f total_s=%.3f\n", (t1 - t0) / 1e3 / (double)n,
	    (t1 - t0) / 1e9);
	for (i = 0; i < nfiles; i++)
		free(paths[i]);
	free(paths);
	return 0;
}

/* First open (flags) in each of NDIRS directories. */
static int
openbench_first(const char *root, long ndirs, int flags, const char *sub)
{
	char	**paths;
	double	*lat, t0, t1, sum = 0;
	long	 i;

	if ((paths = calloc(ndirs, sizeof *paths)) == NULL ||
	    (lat = calloc(ndirs, sizeof *lat)) == NULL)
		return 1;
	for (i = 0; i < ndirs; i++)
		if (asprintf(&paths[i], "%s/d%ld%s/f", root, i, sub) == -1)
			return 1;
	for (i = 0; i < ndirs; i++) {
		t0 = openbench_now();
		openbench_open_close(paths[i], flags);
		t1 = openbench_now();
		lat[i] = (t1 - t0) / 1e3;
		sum += lat[i];
	}
	qsort(lat, ndirs, sizeof *lat, openbench_cmp);
	printf("us_mean=%.1f us_p50=%.1f us_p99=%.1f us_max=%.1f total_s=%.3f\n",
	    sum / (double)ndirs, lat[ndirs / 2], lat[(ndirs * 99) / 100],
	    lat[ndirs - 1], sum / 1e6);
	for (i = 0; i < ndirs; i++)
		free(paths[i]);
	free(paths);
	free(lat);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "loop") == 0)
		return openbench_loop(argv[2], atol(argv[3]), atol(argv[4]),
		    argv[5][0] == 'w' ? O_WRONLY : O_RDONLY);
	if (argc >= 4 && argc <= 6 && strcmp(argv[1], "first") == 0)
		return openbench_first(argv[2], atol(argv[3]), argc >= 5 &&
		    argv[4][0] == 'r' ? O_RDONLY : O_WRONLY,
		    argc == 6 ? argv[5] : "");
	fprintf(stderr, "usage: openbench loop DIR NFILES N r|w\n"
	    "       openbench first ROOT NDIRS [r|w [SUB]]\n");
	return 2;
}

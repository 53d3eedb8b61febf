/*
 * permfloor.c -- the kernel's own price of a permission listener, for
 * bench/opens.sh: the floor below which no fstrackd can go.
 *
 *	permfloor MOUNT [DIR...]
 *	permfloor -r MOUNT [DIR...]
 *	permfloor -a MOUNT
 *
 * Marks MOUNT's filesystem for FAN_OPEN_PERM as fstrackd's permission
 * group does (FAN_CLASS_CONTENT, unlimited queue), adds the same kind of
 * ignore mark fstrackd adds to an armed directory (FAN_MARK_IGNORE_SURV,
 * evictable where the kernel has it) to each DIR -- with -r to each DIR
 * and every directory below it on the same filesystem, the state strict
 * mode reaches once a tree has been read in a snapshot -- prints "ready", then
 * answers every event FAN_ALLOW and closes its fd -- nothing else: no
 * lookup of the directory, no record, no commit.  With -a it also adds
 * that ignore mark to the directory of each event's file after the
 * answer (found through /proc/self/fd), as strict mode arms a directory at
 * its first open, but with no record and no wait: the floor of bench/
 * untar.sh, where every new directory's first open is an event.  On SIGTERM or SIGINT it
 * prints to stderr
 *
 *	events=N cpu_us=T us_per_event=T/N
 *
 * where T is this process's CPU time (it is one thread).  An open in an
 * ignored DIR costs what the kernel spends evaluating the marks; an open
 * elsewhere costs the round trip: the event's fd, two wake-ups, two
 * context switches.  On the 2-vCPU VMs this project is measured on the
 * round trip alone is 15-18 us of listener CPU per event, most of it in
 * the wake-ups (perf: __wake_up and finish_task_switch).
 */

#define _GNU_SOURCE
#include <sys/fanotify.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FAN_MARK_IGNORE_SURV
#define FAN_MARK_IGNORE_SURV	(0x00000400 | FAN_MARK_IGNORED_SURV_MODIFY)
#endif
#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE	0x00000200
#endif

static volatile sig_atomic_t	stop;
static int			fan_fd = -1;

/* SIGTERM, SIGINT: finish the read in progress and report. */
static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Add fstrackd's kind of ignore mark to directory path. */
static int
ignore_dir(int fan, const char *path)
{
	unsigned int	flags = FAN_MARK_ADD | FAN_MARK_IGNORE_SURV |
			    FAN_MARK_EVICTABLE;

	if (fanotify_mark(fan, flags, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD,
	    AT_FDCWD, path) == 0)
		return 0;
	if (errno != EINVAL)
		return -1;
	return fanotify_mark(fan, flags & ~FAN_MARK_EVICTABLE, FAN_OPEN_PERM |
	    FAN_EVENT_ON_CHILD, AT_FDCWD, path);
}

/* -a: an ignore mark on the directory of the file open as fd. */
static void
ignore_parent(int fan, int fd)
{
	char	proc[64], path[PATH_MAX], *slash;
	ssize_t	len;

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if ((len = readlink(proc, path, sizeof path - 1)) <= 0)
		return;
	path[len] = '\0';
	if ((slash = strrchr(path, '/')) != NULL && slash != path) {
		*slash = '\0';
		(void)ignore_dir(fan, path);
	}
}

/* nftw callback of -r: an ignore mark on every directory. */
static int
ignore_walked(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type != FTW_D)
		return 0;
	if (ignore_dir(fan_fd, path) == -1) {
		fprintf(stderr, "permfloor: ignore mark on %s: %s\n", path,
		    strerror(errno));
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	char				 buf[8192] __attribute__((aligned(8)));
	struct fanotify_event_metadata	*md;
	struct fanotify_response	 r;
	struct sigaction		 sa;
	struct timespec			 ts;
	ssize_t				 n;
	long				 events = 0;
	double				 us;
	int				 fan, i, recurse = 0, arm = 0;

	if (argc > 1 && strcmp(argv[1], "-r") == 0) {
		recurse = 1;
		argv++;
		argc--;
	} else if (argc > 1 && strcmp(argv[1], "-a") == 0) {
		arm = 1;
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: permfloor [-r] MOUNT [DIR...] | "
		    "-a MOUNT\n");
		return 2;
	}
	fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC |
	    FAN_UNLIMITED_QUEUE, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (fan == -1 || fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
	    FAN_OPEN_PERM, AT_FDCWD, argv[1]) == -1) {
		fprintf(stderr, "permfloor: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	fan_fd = fan;
	for (i = 2; i < argc; i++)
		if (recurse) {
			if (nftw(argv[i], ignore_walked, 64, FTW_PHYS |
			    FTW_MOUNT) != 0)
				return 1;
		} else if (ignore_dir(fan, argv[i]) == -1) {
			fprintf(stderr, "permfloor: ignore mark on %s: %s\n",
			    argv[i], strerror(errno));
			return 1;
		}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;	/* no SA_RESTART: the read returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		n = read(fan, buf, sizeof buf);
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			fprintf(stderr, "permfloor: read: %s\n",
			    n == 0 ? "end of file" : strerror(errno));
			return 1;
		}
		for (md = (struct fanotify_event_metadata *)buf;
		    FAN_EVENT_OK(md, n); md = FAN_EVENT_NEXT(md, n)) {
			if (md->fd < 0)
				continue;
			r.fd = md->fd;
			r.response = FAN_ALLOW;
			if (write(fan, &r, sizeof r) != sizeof r)
				fprintf(stderr, "permfloor: answer: %s\n",
				    strerror(errno));
			if (arm)
				ignore_parent(fan, md->fd);
			close(md->fd);
			events++;
		}
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	us = ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
	fprintf(stderr, "events=%ld cpu_us=%.0f us_per_event=%.2f\n", events,
	    us, events > 0 ? us / events : 0.0);
	return 0;
}

/*
 * openscan.c -- files that are open for writing, or mapped shared and
 * writable, right now.
 *
 * Writes through a file descriptor opened before a snapshot began (or
 * before the daemon started) and stores through a shared writable mapping
 * produce no open event; mapped stores produce no event at all.  At every
 * snapshot switch and at start-up the daemon walks /proc: each such file
 * on a tracked filesystem is recorded in the new snapshot, so a consumer
 * keeps seeing it as changed for as long as it may still change.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fstrack.h"
#include "log.h"

/* Whether /proc/PID/fdinfo/FD says the fd is open for writing. */
static int
openscan_fd_writable(int piddir, const char *fd)
{
	char	path[300], buf[512];
	ssize_t	n;
	int	f;
	char	*p;
	unsigned long flags;

	snprintf(path, sizeof path, "fdinfo/%s", fd);
	if ((f = openat(piddir, path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(f, buf, sizeof buf - 1);
	close(f);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if ((p = strstr(buf, "flags:")) == NULL)
		return 0;
	flags = strtoul(p + 6, NULL, 8);
	return (flags & O_ACCMODE) != O_RDONLY;
}

/* Report every writable fd of one process that lies on a tracked fs. */
static void
openscan_fds(int piddir, openscan_cb cb, void *arg)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	struct fst_fs	*fs;
	char		 link[PATH_MAX], path[300];
	ssize_t		 n;
	int		 fdd;

	if ((fdd = openat(piddir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		return;
	if ((d = fdopendir(fdd)) == NULL) {
		close(fdd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(fdd, de->d_name, &st, 0) == -1 ||
		    !S_ISREG(st.st_mode))
			continue;
		if ((fs = fsinfo_by_dev(st.st_dev)) == NULL)
			continue;
		if (!openscan_fd_writable(piddir, de->d_name))
			continue;
		snprintf(path, sizeof path, "%s", de->d_name);
		n = readlinkat(fdd, path, link, sizeof link - 1);
		if (n <= 0 || link[0] != '/')
			continue;
		link[n] = '\0';
		cb(fs, link, arg);
	}
	closedir(d);
}

/* Report every shared writable mapping of one process on a tracked fs. */
static void
openscan_maps(int piddir, openscan_cb cb, void *arg)
{
	FILE		*f;
	char		*line = NULL, perms[8], *path;
	size_t		 cap = 0;
	unsigned	 maj, min;
	unsigned long	 ino;
	int		 fd, off;
	struct fst_fs	*fs;

	if ((fd = openat(piddir, "maps", O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		return;
	}
	while (getline(&line, &cap, f) != -1) {
		off = 0;
		if (sscanf(line, "%*s %7s %*s %x:%x %lu %n", perms, &maj, &min,
		    &ino, &off) != 4 || off == 0)
			continue;
		if (perms[1] != 'w' || perms[3] != 's' || ino == 0)
			continue;
		if ((fs = fsinfo_by_dev(makedev(maj, min))) == NULL)
			continue;
		path = line + off;
		path[strcspn(path, "\n")] = '\0';
		if (path[0] != '/')
			continue;
		cb(fs, path, arg);
	}
	free(line);
	fclose(f);
}

/*
 * Call cb(fs, path, arg) for every regular file on a tracked filesystem
 * that some process (not us) has open for writing or mapped shared and
 * writable.  Paths come from /proc and may race with renames; the caller
 * records their directories, and the notification path records the rest.
 */
int
openscan_writers(openscan_cb cb, void *arg)
{
	DIR		*proc;
	struct dirent	*de;
	int		 piddir, n = 0;

	if ((proc = opendir("/proc")) == NULL)
		return -1;
	while ((de = readdir(proc)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (atoi(de->d_name) == (int)fstd.pid)
			continue;
		piddir = openat(dirfd(proc), de->d_name, O_RDONLY |
		    O_DIRECTORY | O_CLOEXEC);
		if (piddir == -1)
			continue;
		openscan_fds(piddir, cb, arg);
		openscan_maps(piddir, cb, arg);
		close(piddir);
		n++;
	}
	closedir(proc);
	return n;
}

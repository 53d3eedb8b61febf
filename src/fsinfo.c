/*
 * fsinfo.c -- deciding whether a mount point can be tracked, and the
 * identity of its filesystem.
 *
 * A filesystem is tracked whole (FAN_MARK_FILESYSTEM), keyed in events by
 * its fsid.  Its identity in the database is the UUID from the superblock
 * where there is one (ext4, xfs, btrfs), else the fsid, so that another
 * filesystem mounted at the same place is never mistaken for the old one.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fstrack.h"
#include "log.h"

/* Wall-clock time in nanoseconds. */
int64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Coarse wall-clock time in nanoseconds.  The kernel's multigrain ctime can
 * lag CLOCK_REALTIME by up to a jiffy, never CLOCK_REALTIME_COARSE
 * (doc/kernel-facts.md), so checkpoints are taken from this clock.
 */
int64_t
now_coarse_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Undo the octal escapes of /proc/self/mountinfo in place. */
static void
fsinfo_unmangle(char *s)
{
	char	*w = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0');
			s += 3;
		} else
			*w++ = *s;
	}
	*w = '\0';
}

/* Find the mountinfo line of mount point mp: its root, fstype and source. */
static int
fsinfo_mountinfo(const char *mp, char *root, char *fstype, char *source,
    size_t len)
{
	FILE	*f;
	char	*line = NULL, *fld[12], *p, *dash;
	size_t	 cap = 0;
	int	 found = 0, n;

	if ((f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return -1;
	while (getline(&line, &cap, f) != -1) {
		line[strcspn(line, "\n")] = '\0';
		if ((dash = strstr(line, " - ")) == NULL)
			continue;
		*dash = '\0';
		n = 0;
		for (p = strtok(line, " "); p != NULL && n < 6;
		    p = strtok(NULL, " "))
			fld[n++] = p;
		if (n < 5)
			continue;
		fsinfo_unmangle(fld[4]);
		if (strcmp(fld[4], mp) != 0)
			continue;
		/* later lines win: the last mount on top is the visible one */
		fsinfo_unmangle(fld[3]);
		snprintf(root, len, "%s", fld[3]);
		p = strtok(dash + 3, " ");
		snprintf(fstype, len, "%s", p != NULL ? p : "?");
		p = strtok(NULL, " ");
		snprintf(source, len, "%s", p != NULL ? p : "");
		if (p != NULL)
			fsinfo_unmangle(source);
		found = 1;
	}
	free(line);
	fclose(f);
	return found ? 0 : -1;
}

/* Read the filesystem UUID from the superblock of a block device. */
static void
fsinfo_uuid(const char *fstype, const char *source, dev_t dev, char *out,
    size_t outlen)
{
	unsigned char	u[16];
	off_t		off;
	char		devpath[64];
	int		fd, i;
	size_t		n = 0;

	out[0] = '\0';
	if (strcmp(fstype, "ext4") == 0 || strcmp(fstype, "ext3") == 0 ||
	    strcmp(fstype, "ext2") == 0)
		off = 1024 + 0x68;
	else if (strcmp(fstype, "xfs") == 0)
		off = 32;
	else if (strcmp(fstype, "btrfs") == 0)
		off = 0x10000 + 0x20;
	else
		return;
	snprintf(devpath, sizeof devpath, "/dev/block/%u:%u", major(dev),
	    minor(dev));
	fd = open(devpath, O_RDONLY | O_CLOEXEC);
	if (fd == -1 && source[0] == '/')
		fd = open(source, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return;
	if (pread(fd, u, sizeof u, off) == (ssize_t)sizeof u) {
		for (i = 0; i < 16 && n + 3 < outlen; i++) {
			n += snprintf(out + n, outlen - n, "%02x", u[i]);
			if ((i == 3 || i == 5 || i == 7 || i == 9) && n + 2 < outlen)
				out[n++] = '-';
		}
		out[n] = '\0';
	}
	close(fd);
}

/*
 * Check that path is the root of a filesystem fstrackd can track and fill
 * in fs (mountpoint, type, fsid, uuid, dev, mount_fd).  On refusal, writes
 * why and what to do into err and returns -1.
 */
int
fsinfo_probe(const char *path, struct fst_fs *fs, char *err, size_t errlen)
{
	char			 real[PATH_MAX], root[PATH_MAX], type[PATH_MAX];
	char			 source[PATH_MAX];
	struct statx		 stx;
	struct statfs		 sfs;
	struct stat		 st;
	struct fst_handle	 h;
	int			 fd;

	memset(fs, 0, sizeof *fs);
	fs->mount_fd = -1;
	if (realpath(path, real) == NULL) {
		snprintf(err, errlen, "'%s': %s", path, strerror(errno));
		return -1;
	}
	if (statx(AT_FDCWD, real, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS,
	    &stx) == -1) {
		snprintf(err, errlen, "'%s': %s", real, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(stx.stx_mode)) {
		snprintf(err, errlen, "'%s' is not a directory", real);
		return -1;
	}
	if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
		snprintf(err, errlen, "'%s' is not a mount point: fstrackd "
		    "tracks whole filesystems; name the mount point that "
		    "holds it (see findmnt -T '%s')", real, real);
		return -1;
	}
	if (fsinfo_mountinfo(real, root, type, source, sizeof root) != 0) {
		snprintf(err, errlen, "'%s' is not in /proc/self/mountinfo; "
		    "is it a mount point?", real);
		return -1;
	}
	if (strcmp(type, "btrfs") == 0 && strcmp(root, "/") != 0) {
		snprintf(err, errlen, "'%s' is a btrfs subvolume mount (%s): "
		    "fanotify can only mark the top level of a btrfs "
		    "filesystem; mount subvolid=5 somewhere and track that",
		    real, root);
		return -1;
	}
	if (statfs(real, &sfs) == -1) {
		snprintf(err, errlen, "statfs '%s': %s", real, strerror(errno));
		return -1;
	}
	if (sfs.f_fsid.__val[0] == 0 && sfs.f_fsid.__val[1] == 0) {
		snprintf(err, errlen, "'%s' (%s) reports no filesystem id: "
		    "fanotify cannot identify its events; it cannot be "
		    "tracked", real, type);
		return -1;
	}
	if (handle_of_fd(AT_FDCWD, real, 0, &h) == -1) {
		snprintf(err, errlen, "'%s' (%s) does not support file "
		    "handles (%s): it cannot be tracked", real, type,
		    strerror(errno));
		return -1;
	}
	if ((fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		snprintf(err, errlen, "open '%s': %s", real, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	fs->mountpoint = strdup(real);
	snprintf(fs->fstype, sizeof fs->fstype, "%.31s", type);
	fs->kfsid = sfs.f_fsid;
	snprintf(fs->fsid, sizeof fs->fsid, "%08x%08x",
	    (unsigned)sfs.f_fsid.__val[0], (unsigned)sfs.f_fsid.__val[1]);
	fs->dev = st.st_dev;
	fs->root = h;
	fs->mount_fd = fd;
	fsinfo_uuid(type, source, st.st_dev, fs->uuid, sizeof fs->uuid);
	return 0;
}

/*
 * Probe every configured mount point into fstd.fs; a mount point that
 * cannot be tracked is fatal (with the reason), one naming a filesystem
 * already tracked is ignored with a warning.  Start-up, main thread.
 */
void
fsinfo_init(void)
{
	char		 err[1024];
	struct fst_fs	*fs;
	int		 i;

	if ((fstd.fs = calloc(fstd.cfg.nmounts, sizeof *fstd.fs)) == NULL)
		fatal("out of memory");
	for (i = 0; i < fstd.cfg.nmounts; i++) {
		fs = &fstd.fs[fstd.nfs];
		if (fsinfo_probe(fstd.cfg.mounts[i], fs, err, sizeof err) != 0)
			fatalx("cannot track: %s", err);
		if (fsinfo_by_fsid(&fs->kfsid) != NULL) {
			log_warnx("'%s' is the same filesystem as one already "
			    "tracked; ignoring it", fs->mountpoint);
			close(fs->mount_fd);
			free(fs->mountpoint);
			continue;
		}
		fstd.nfs++;
	}
}

/* Close the tracked filesystems' root fds and free fstd.fs. */
void
fsinfo_fini(void)
{
	int	i;

	for (i = 0; i < fstd.nfs; i++) {
		close(fstd.fs[i].mount_fd);
		free(fstd.fs[i].mountpoint);
	}
	free(fstd.fs);
	fstd.fs = NULL;
	fstd.nfs = 0;
}

/* Find the tracked filesystem an event's fsid belongs to. */
struct fst_fs *
fsinfo_by_fsid(const fsid_t *id)
{
	int	i;

	for (i = 0; i < fstd.nfs; i++)
		if (memcmp(&fstd.fs[i].kfsid, id, sizeof *id) == 0)
			return &fstd.fs[i];
	return NULL;
}

/* Find the tracked filesystem with device number dev. */
struct fst_fs *
fsinfo_by_dev(dev_t dev)
{
	int	i;

	for (i = 0; i < fstd.nfs; i++)
		if (fstd.fs[i].dev == dev)
			return &fstd.fs[i];
	return NULL;
}

/* Check that the filesystem is still mounted where it was. */
int
fsinfo_still_mounted(struct fst_fs *fs)
{
	struct statfs	sfs;
	struct stat	st;

	if (stat(fs->mountpoint, &st) == -1 || st.st_dev != fs->dev)
		return 0;
	if (statfs(fs->mountpoint, &sfs) == -1 ||
	    memcmp(&sfs.f_fsid, &fs->kfsid, sizeof sfs.f_fsid) != 0)
		return 0;
	return 1;
}

/*
 * event.c -- decoding fanotify event records and handling file handles.
 *
 * Everything read from the notification group passes through event_next(),
 * which checks every length against the buffer before touching the bytes:
 * a record that does not fit is reported as malformed, never followed.
 * Pure functions of their inputs, so the unit tests feed them byte buffers.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "fstrack.h"

/* Copy a struct file_handle found at p (len bytes available) into h. */
static int
event_copy_handle(struct fst_handle *h, const unsigned char *p, size_t avail,
    size_t *used)
{
	uint32_t	nbytes;
	int32_t		type;

	if (avail < 8)
		return -1;
	memcpy(&nbytes, p, 4);
	memcpy(&type, p + 4, 4);
	if (nbytes == 0 || nbytes > FST_HANDLE_MAX || nbytes > avail - 8)
		return -1;
	h->type = type;
	h->len = nbytes;
	memcpy(h->bytes, p + 8, nbytes);
	*used = 8 + nbytes;
	return 0;
}

/* Decode one fid info record (hdr already validated to lie in the event). */
static int
event_parse_fid(struct fst_event *ev, const unsigned char *p, size_t len)
{
	size_t			 off, used, nlen;
	const char		*name = NULL;
	struct fst_handle	*h;
	int			 type = p[0];

	switch (type) {
	case FAN_EVENT_INFO_TYPE_FID:
		h = &ev->child;
		break;
	case FAN_EVENT_INFO_TYPE_DFID:
	case FAN_EVENT_INFO_TYPE_DFID_NAME:
		h = &ev->dir;
		break;
	case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
		h = &ev->old_dir;
		break;
	case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
		h = &ev->new_dir;
		break;
	default:
		return 0;	/* unknown info types are skipped */
	}
	/* header (4) + fsid (8) + handle */
	if (len < 4 + 8)
		return -1;
	off = 4 + 8;
	if (event_copy_handle(h, p + off, len - off, &used) != 0)
		return -1;
	off += used;
	if (type != FAN_EVENT_INFO_TYPE_FID && type != FAN_EVENT_INFO_TYPE_DFID) {
		if (off >= len)
			return -1;
		nlen = strnlen((const char *)p + off, len - off);
		if (nlen == len - off || nlen == 0)
			return -1;	/* not NUL-terminated, or empty */
		name = (const char *)p + off;
	}
	memcpy(&ev->fsid, p + 4, sizeof ev->fsid);
	switch (type) {
	case FAN_EVENT_INFO_TYPE_FID:
		ev->has_child = 1;
		break;
	case FAN_EVENT_INFO_TYPE_DFID:
		ev->has_dir = 1;
		ev->name = NULL;
		break;
	case FAN_EVENT_INFO_TYPE_DFID_NAME:
		ev->has_dir = 1;
		ev->name = name;
		break;
	case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
		ev->has_rename |= 1;
		ev->old_name = name;
		break;
	case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
		ev->has_rename |= 2;
		ev->new_name = name;
		break;
	}
	return 0;
}

/*
 * Decode the event at *off in buf (len bytes) into ev and advance *off.
 * Returns 1 for an event, 0 at the end of the buffer, -1 for a malformed
 * record (after which the rest of the buffer must be dropped, because the
 * next record's position cannot be trusted).  ev points into buf.
 */
int
event_next(const void *buf, size_t len, size_t *off, struct fst_event *ev)
{
	const unsigned char			*base = buf;
	struct fanotify_event_metadata		 md;
	size_t					 pos, end, ilen;
	uint16_t				 ilen16;

	memset(ev, 0, sizeof *ev);
	ev->fd = -1;
	if (*off >= len)
		return 0;
	if (len - *off < sizeof md)
		return -1;
	memcpy(&md, base + *off, sizeof md);
	if (md.vers != FANOTIFY_METADATA_VERSION)
		return -1;
	if (md.event_len < md.metadata_len || md.metadata_len < sizeof md ||
	    md.event_len > len - *off)
		return -1;
	ev->mask = md.mask;
	ev->pid = md.pid;
	ev->fd = md.fd;
	pos = *off + md.metadata_len;
	end = *off + md.event_len;
	while (pos < end) {
		if (end - pos < 4)
			return -1;
		memcpy(&ilen16, base + pos + 2, sizeof ilen16);
		ilen = ilen16;
		if (ilen < 4 || ilen > end - pos)
			return -1;
		if (event_parse_fid(ev, base + pos, ilen) != 0)
			return -1;
		pos += ilen;
	}
	if (ev->has_rename && ev->has_rename != 3)
		return -1;
	*off = end;
	return 1;
}

/* Translate a fanotify event mask into FST_M_* kind bits. */
uint32_t
event_mask_to_kinds(uint64_t mask)
{
	uint32_t	k = 0;

	if (mask & FAN_CREATE)
		k |= FST_M_CREATED;
	if (mask & (FAN_DELETE | FAN_DELETE_SELF))
		k |= FST_M_DELETED;
	if (mask & FAN_MODIFY)
		k |= FST_M_MODIFIED;
	if (mask & FAN_ATTRIB)
		k |= FST_M_ATTRIB;
	if (mask & FAN_MOVED_FROM)
		k |= FST_M_MOVED_FROM;
	if (mask & FAN_MOVED_TO)
		k |= FST_M_MOVED_TO;
	if (mask & FAN_CLOSE_WRITE)
		k |= FST_M_CLOSED_WRITE;
	if (mask & FAN_ONDIR)
		k |= FST_M_ISDIR;
	return k;
}

/*
 * Serialise a handle as the database stores it: the handle type as 4 bytes
 * little-endian, then the opaque handle bytes.  out must hold 4 + h->len.
 */
void
handle_to_blob(const struct fst_handle *h, unsigned char *out, size_t *outlen)
{
	uint32_t	t = (uint32_t)h->type;

	out[0] = t & 0xff;
	out[1] = (t >> 8) & 0xff;
	out[2] = (t >> 16) & 0xff;
	out[3] = (t >> 24) & 0xff;
	memcpy(out + 4, h->bytes, h->len);
	*outlen = 4 + h->len;
}

/* Parse the database form of a handle; -1 if it cannot be one. */
int
handle_from_blob(struct fst_handle *h, const void *blob, size_t len)
{
	const unsigned char	*p = blob;

	if (len < 5 || len - 4 > FST_HANDLE_MAX)
		return -1;
	h->type = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 |
	    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
	h->len = len - 4;
	memcpy(h->bytes, p + 4, h->len);
	return 0;
}

/*
 * FNV-1a hash of a directory or file key: the filesystem (by address of
 * its struct, stable for the daemon's life) and the handle.  Every table
 * keyed by handle (dircache.c, perm.c, links.c) uses it.
 */
uint64_t
handle_hash(const struct fst_fs *fs, const struct fst_handle *h)
{
	uint64_t	x = 0xcbf29ce484222325ULL;
	uint32_t	i;

	x = (x ^ (uint64_t)(uintptr_t)fs) * 0x100000001b3ULL;
	x = (x ^ (uint32_t)h->type) * 0x100000001b3ULL;
	for (i = 0; i < h->len; i++)
		x = (x ^ h->bytes[i]) * 0x100000001b3ULL;
	return x;
}

/* Compare two handles for equality. */
int
handle_equal(const struct fst_handle *a, const struct fst_handle *b)
{
	return a->type == b->type && a->len == b->len &&
	    memcmp(a->bytes, b->bytes, a->len) == 0;
}

/*
 * Get the handle of path relative to dirfd (flags as for name_to_handle_at,
 * e.g. AT_EMPTY_PATH) and, when mnt is not NULL, the id of the mount it is
 * on.  Does not open anything, so it is safe on a tracked filesystem from
 * any thread.
 */
int
handle_mount_of_fd(int dirfd, const char *path, int flags,
    struct fst_handle *h, int *mnt)
{
	struct {
		struct file_handle	fh;
		unsigned char		buf[FST_HANDLE_MAX];
	} u;
	int	m;

	u.fh.handle_bytes = FST_HANDLE_MAX;
	if (name_to_handle_at(dirfd, path, &u.fh, &m, flags) == -1)
		return -1;
	h->type = u.fh.handle_type;
	h->len = u.fh.handle_bytes;
	memcpy(h->bytes, u.fh.f_handle, h->len);
	if (mnt != NULL)
		*mnt = m;
	return 0;
}

/* Get the handle of path relative to dirfd, as handle_mount_of_fd(). */
int
handle_of_fd(int dirfd, const char *path, int flags, struct fst_handle *h)
{
	return handle_mount_of_fd(dirfd, path, flags, h, NULL);
}

/*
 * Open the inode behind handle h on the filesystem of mount_fd (flags as for
 * open_by_handle_at).  Returns the fd, or -1 with errno (ESTALE: gone).
 */
int
handle_open(int mount_fd, const struct fst_handle *h, int flags)
{
	struct {
		struct file_handle	fh;
		unsigned char		buf[FST_HANDLE_MAX];
	} u;

	u.fh.handle_bytes = h->len;
	u.fh.handle_type = h->type;
	memcpy(u.fh.f_handle, h->bytes, h->len);
	return open_by_handle_at(mount_fd, &u.fh, flags);
}

/*
 * The current absolute path of the directory open as fd (from /proc, so
 * consistent at one instant).  Returns 0, or -1 with errno (ESTALE: gone).
 */
int
fd_path(int fd, char *out, size_t outlen)
{
	char		proc[64];
	ssize_t		n;
	struct stat	st, st2;

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if ((n = readlink(proc, out, outlen - 1)) < 0)
		return -1;
	if ((size_t)n == outlen - 1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	out[n] = '\0';
	if (n > 10 && strcmp(out + n - 10, " (deleted)") == 0) {
		/* Removed, or merely named so?  The name must lead to it. */
		if (fstat(fd, &st) == -1 || stat(out, &st2) == -1 ||
		    st.st_ino != st2.st_ino || st.st_dev != st2.st_dev) {
			errno = ESTALE;
			return -1;
		}
	}
	if (out[0] != '/') {
		errno = ESTALE;	/* unreachable from our root */
		return -1;
	}
	return 0;
}

/*
 * Resolve a directory handle to its current absolute path through the mount
 * fd.  O_PATH opens generate no fanotify events, so this never waits on our
 * own permission group.  Returns 0, or -1 with errno (ESTALE: gone).
 */
int
handle_path(int mount_fd, const struct fst_handle *h, char *out, size_t outlen)
{
	int	fd, rc, saved;

	if ((fd = handle_open(mount_fd, h, O_PATH | O_CLOEXEC)) == -1)
		return -1;
	rc = fd_path(fd, out, outlen);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

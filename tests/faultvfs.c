/*
 * faultvfs.c -- a fault-injecting SQLite VFS for the unit tests (see
 * faultvfs.h).
 *
 * A shim in the manner of SQLite's test_vfs.c: struct fv_file is what
 * SQLite allocates for every file, our base followed by the real VFS's own
 * file object.  Every method forwards to the real one unless the fault
 * says this call fails; a failed call does nothing at all (no partial
 * write), which is what a real EIO or ENOSPC from write(2)/fsync(2) looks
 * like to SQLite.  Only files opened as the main database or its WAL are
 * counted; temporary and statement journals pass through untouched.
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include <sqlite3.h>

#include "faultvfs.h"

struct fv_file {
	sqlite3_file	 base;
	int		 kind;		/* FV_MAIN, FV_WAL or 0 */
	sqlite3_file	*real;		/* follows this struct */
};

static sqlite3_vfs	*fv_real;
static pthread_mutex_t	 fv_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int	active, calls, files, nth, persistent, err;
	int	count, hits;
} fv;

/* Whether this call fails now, and with which code (0: it does not). */
static int
fv_fault(int call, int kind)
{
	int	rc = 0;

	pthread_mutex_lock(&fv_lock);
	if ((fv.calls & call) && (fv.files & kind)) {
		fv.count++;
		if (fv.active && (fv.count == fv.nth ||
		    (fv.persistent && fv.count > fv.nth))) {
			fv.hits++;
			rc = fv.err;
		}
	}
	pthread_mutex_unlock(&fv_lock);
	if (rc != 0 && rc != -1)
		return rc;
	if (rc == 0)
		return 0;
	switch (call) {
	case FV_WRITE:
		return SQLITE_IOERR_WRITE;
	case FV_SYNC:
		return SQLITE_IOERR_FSYNC;
	case FV_OPEN:
		return SQLITE_CANTOPEN;
	case FV_TRUNCATE:
		return SQLITE_IOERR_TRUNCATE;
	case FV_READ:
		return SQLITE_IOERR_READ;
	default:
		return SQLITE_IOERR_FSTAT;
	}
}

/* Close the real file. */
static int
fv_close(sqlite3_file *f)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xClose(p->real);
}

/* Read, unless the fault says no. */
static int
fv_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	struct fv_file	*p = (struct fv_file *)f;
	int		 rc;

	if ((rc = fv_fault(FV_READ, p->kind)) != 0)
		return rc;
	return p->real->pMethods->xRead(p->real, buf, n, off);
}

/* Write, unless the fault says no (then nothing is written). */
static int
fv_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	struct fv_file	*p = (struct fv_file *)f;
	int		 rc;

	if ((rc = fv_fault(FV_WRITE, p->kind)) != 0)
		return rc;
	return p->real->pMethods->xWrite(p->real, buf, n, off);
}

/* Truncate, unless the fault says no. */
static int
fv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct fv_file	*p = (struct fv_file *)f;
	int		 rc;

	if ((rc = fv_fault(FV_TRUNCATE, p->kind)) != 0)
		return rc;
	return p->real->pMethods->xTruncate(p->real, size);
}

/* Sync, unless the fault says no. */
static int
fv_sync(sqlite3_file *f, int flags)
{
	struct fv_file	*p = (struct fv_file *)f;
	int		 rc;

	if ((rc = fv_fault(FV_SYNC, p->kind)) != 0)
		return rc;
	return p->real->pMethods->xSync(p->real, flags);
}

/* The file's size, unless the fault says no. */
static int
fv_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct fv_file	*p = (struct fv_file *)f;
	int		 rc;

	if ((rc = fv_fault(FV_FILESIZE, p->kind)) != 0)
		return rc;
	return p->real->pMethods->xFileSize(p->real, size);
}

/* Forward a lock. */
static int
fv_lock_file(sqlite3_file *f, int level)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xLock(p->real, level);
}

/* Forward an unlock. */
static int
fv_unlock(sqlite3_file *f, int level)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xUnlock(p->real, level);
}

/* Forward a reserved-lock check. */
static int
fv_check_reserved(sqlite3_file *f, int *out)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xCheckReservedLock(p->real, out);
}

/* Forward a file control. */
static int
fv_file_control(sqlite3_file *f, int op, void *arg)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xFileControl(p->real, op, arg);
}

/* Forward the sector size. */
static int
fv_sector_size(sqlite3_file *f)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xSectorSize(p->real);
}

/* Forward the device characteristics. */
static int
fv_device_chars(sqlite3_file *f)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xDeviceCharacteristics(p->real);
}

/* Forward a map of the shared-memory index. */
static int
fv_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xShmMap(p->real, pg, pgsz, extend, pp);
}

/* Forward a shared-memory lock. */
static int
fv_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xShmLock(p->real, off, n, flags);
}

/* Forward a shared-memory barrier. */
static void
fv_shm_barrier(sqlite3_file *f)
{
	struct fv_file	*p = (struct fv_file *)f;

	p->real->pMethods->xShmBarrier(p->real);
}

/* Forward an unmap of the shared-memory index. */
static int
fv_shm_unmap(sqlite3_file *f, int del)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xShmUnmap(p->real, del);
}

/* Forward a memory-mapped fetch. */
static int
fv_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xFetch(p->real, off, n, pp);
}

/* Forward the release of a memory-mapped fetch. */
static int
fv_unfetch(sqlite3_file *f, sqlite3_int64 off, void *pg)
{
	struct fv_file	*p = (struct fv_file *)f;

	return p->real->pMethods->xUnfetch(p->real, off, pg);
}

static const sqlite3_io_methods fv_methods = {
	3,
	fv_close,
	fv_read,
	fv_write,
	fv_truncate,
	fv_sync,
	fv_file_size,
	fv_lock_file,
	fv_unlock,
	fv_check_reserved,
	fv_file_control,
	fv_sector_size,
	fv_device_chars,
	fv_shm_map,
	fv_shm_lock,
	fv_shm_barrier,
	fv_shm_unmap,
	fv_fetch,
	fv_unfetch
};

/* Open through the real VFS, unless the fault says no. */
static int
fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
    int *out)
{
	struct fv_file	*p = (struct fv_file *)f;
	int		 rc;

	(void)vfs;
	p->base.pMethods = NULL;
	p->kind = flags & SQLITE_OPEN_MAIN_DB ? FV_MAIN :
	    flags & SQLITE_OPEN_WAL ? FV_WAL : 0;
	p->real = (sqlite3_file *)(p + 1);
	if ((rc = fv_fault(FV_OPEN, p->kind)) != 0)
		return rc;
	rc = fv_real->xOpen(fv_real, name, p->real, flags, out);
	if (rc != SQLITE_OK) {
		if (p->real->pMethods != NULL)
			p->real->pMethods->xClose(p->real);
		return rc;
	}
	p->base.pMethods = &fv_methods;
	return SQLITE_OK;
}

/* Forward a delete. */
static int
fv_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	(void)vfs;
	return fv_real->xDelete(fv_real, name, sync);
}

/* Forward an access check. */
static int
fv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return fv_real->xAccess(fv_real, name, flags, out);
}

/* Forward a path name. */
static int
fv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return fv_real->xFullPathname(fv_real, name, n, out);
}

/* Forward a dlopen. */
static void *
fv_dlopen(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return fv_real->xDlOpen(fv_real, name);
}

/* Forward a dlopen error. */
static void
fv_dlerror(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	fv_real->xDlError(fv_real, n, out);
}

/* Forward a dlsym. */
static void
(*fv_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	return fv_real->xDlSym(fv_real, h, sym);
}

/* Forward a dlclose. */
static void
fv_dlclose(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	fv_real->xDlClose(fv_real, h);
}

/* Forward randomness. */
static int
fv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fv_real->xRandomness(fv_real, n, out);
}

/* Forward a sleep. */
static int
fv_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return fv_real->xSleep(fv_real, us);
}

/* Forward the current time. */
static int
fv_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return fv_real->xCurrentTime(fv_real, out);
}

/* Forward the last error. */
static int
fv_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fv_real->xGetLastError(fv_real, n, out);
}

/* Forward the current time in milliseconds. */
static int
fv_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return fv_real->xCurrentTimeInt64(fv_real, out);
}

/* Forward a system-call override. */
static int
fv_set_syscall(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr fn)
{
	(void)vfs;
	return fv_real->xSetSystemCall(fv_real, name, fn);
}

/* Forward a system-call lookup. */
static sqlite3_syscall_ptr
fv_get_syscall(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return fv_real->xGetSystemCall(fv_real, name);
}

/* Forward the system-call iteration. */
static const char *
fv_next_syscall(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return fv_real->xNextSystemCall(fv_real, name);
}

static sqlite3_vfs fv_vfs = {
	3, 0, 0, NULL, "faultvfs", NULL,
	fv_open, fv_delete, fv_access, fv_full_pathname,
	fv_dlopen, fv_dlerror, fv_dlsym, fv_dlclose,
	fv_randomness, fv_sleep, fv_current_time, fv_last_error,
	fv_current_time64, fv_set_syscall, fv_get_syscall, fv_next_syscall
};

/* Register the VFS as the process's default, wrapping the current one. */
int
faultvfs_install(void)
{
	if (fv_real != NULL)
		return SQLITE_OK;
	if ((fv_real = sqlite3_vfs_find(NULL)) == NULL)
		return SQLITE_ERROR;
	if (fv_real->iVersion < 3)
		return SQLITE_ERROR;
	fv_vfs.szOsFile = sizeof(struct fv_file) + fv_real->szOsFile;
	fv_vfs.mxPathname = fv_real->mxPathname;
	return sqlite3_vfs_register(&fv_vfs, 1);
}

/* Arm a fault (see faultvfs.h); err -1 is stored as "natural". */
void
faultvfs_set(int calls, int files, int nth, int persistent, int err)
{
	pthread_mutex_lock(&fv_lock);
	fv.calls = calls;
	fv.files = files;
	fv.nth = nth;
	fv.persistent = persistent;
	fv.err = err != 0 ? err : -1;
	fv.count = 0;
	fv.hits = 0;
	fv.active = 1;
	pthread_mutex_unlock(&fv_lock);
}

/* Disarm the fault; later calls all go through. */
void
faultvfs_clear(void)
{
	pthread_mutex_lock(&fv_lock);
	fv.active = 0;
	pthread_mutex_unlock(&fv_lock);
}

/* Calls failed by the fault since it was set. */
int
faultvfs_hits(void)
{
	int	n;

	pthread_mutex_lock(&fv_lock);
	n = fv.hits;
	pthread_mutex_unlock(&fv_lock);
	return n;
}

/* Matching calls since the fault was set. */
int
faultvfs_calls(void)
{
	int	n;

	pthread_mutex_lock(&fv_lock);
	n = fv.count;
	pthread_mutex_unlock(&fv_lock);
	return n;
}

/* A call bit's name. */
const char *
faultvfs_call_name(int call)
{
	switch (call) {
	case FV_WRITE:
		return "xWrite";
	case FV_SYNC:
		return "xSync";
	case FV_OPEN:
		return "xOpen";
	case FV_TRUNCATE:
		return "xTruncate";
	case FV_READ:
		return "xRead";
	case FV_FILESIZE:
		return "xFileSize";
	}
	return "?";
}

/* A file bit's name. */
const char *
faultvfs_file_name(int file)
{
	return file == FV_MAIN ? "db" : file == FV_WAL ? "wal" : "db+wal";
}

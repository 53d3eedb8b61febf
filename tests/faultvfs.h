/*
 * faultvfs.h -- a fault-injecting SQLite VFS for the unit tests.
 *
 * faultvfs_install() registers "faultvfs" as the default VFS of the test
 * process, wrapping the one that was the default (unix).  Every call goes
 * through to the real VFS; a fault set with faultvfs_set() makes the Nth
 * matching call (and, persistently, every later one) fail with an error
 * instead, as SQLite's own I/O-error tests do (test_devsym.c,
 * malloc/ioerr loops).  Counters are shared by every thread of the process.
 */
#ifndef FSTRACK_FAULTVFS_H
#define FSTRACK_FAULTVFS_H

/* Which calls a fault counts (one or more bits). */
#define FV_WRITE	0x01	/* xWrite */
#define FV_SYNC		0x02	/* xSync */
#define FV_OPEN		0x04	/* xOpen (of the file kinds below) */
#define FV_TRUNCATE	0x08	/* xTruncate */
#define FV_READ		0x10	/* xRead */
#define FV_FILESIZE	0x20	/* xFileSize */

/* Which files it counts (one or more bits). */
#define FV_MAIN		0x01	/* the main database file */
#define FV_WAL		0x02	/* its write-ahead log */

/* Register the VFS as the default; idempotent.  0, or an SQLite code. */
int	 faultvfs_install(void);
/*
 * From now on count the calls in calls on files in files; the nth (1 is
 * the next one) fails with err (0: the natural SQLITE_IOERR_* of the call;
 * SQLITE_FULL for "disk full"), and every one after it too if persistent.
 * Resets the counters.
 */
void	 faultvfs_set(int calls, int files, int nth, int persistent, int err);
/* No more faults (the counters keep counting until the next set). */
void	 faultvfs_clear(void);
/* How many calls failed because of the fault since it was set. */
int	 faultvfs_hits(void);
/* How many matching calls were made since the fault was set. */
int	 faultvfs_calls(void);
/* The name of a call bit and of a file bit, for messages. */
const char *faultvfs_call_name(int);
const char *faultvfs_file_name(int);

#endif

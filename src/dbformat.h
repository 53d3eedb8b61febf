/*
 * dbformat.h -- the numbers of the database format that the daemon and its
 * readers (fstrack, fstrack-rsync) share.  fstrack-db(5) documents them;
 * they are an interface for sqlite3 users too, so never renumber one.
 */
#ifndef FSTRACK_DBFORMAT_H
#define FSTRACK_DBFORMAT_H

#define FSTRACK_DB_NAME		"fstrack.db"
#define FSTRACK_APPLICATION_ID	0x66737472	/* 'fstr' */
#define FSTRACK_SCHEMA_VERSION	3

/* Bits of changes.mask (documented in fstrack-db(5); never renumber). */
#define FST_M_CREATED		0x001
#define FST_M_DELETED		0x002
#define FST_M_MODIFIED		0x004
#define FST_M_ATTRIB		0x008
#define FST_M_MOVED_FROM	0x010
#define FST_M_MOVED_TO		0x020
#define FST_M_CLOSED_WRITE	0x040
#define FST_M_OPENED_WRITE	0x080
#define FST_M_RESCANNED		0x100
#define FST_M_ISDIR		0x200
#define FST_M_CONTENTS		0x400	/* the entry is a directory whose contents changed */
#define FST_M_OPEN_AT_SNAPSHOT	0x800	/* open for writing when the snapshot began */
#define FST_M_ARMED		0x1000	/* armed when the daemon stopped uncleanly */

/*
 * The (snapshot, dir_id) pairs that have rows of changes since snapshot ?1,
 * as the common table k(s, d), for a statement to finish ("SELECT ... FROM
 * k JOIN dirs d ON d.id = k.d").  It seeks the primary key (snapshot,
 * dir_id, name) from one pair to the next, a few b-tree searches per pair:
 * the cost follows the number of directories changed, not of entries.
 * The first row (d = -1) and the last (NULL) match no directory.
 */
#define FST_SQL_CHANGED_PAIRS \
	"WITH RECURSIVE k(s, d) AS (" \
	"SELECT min(snapshot), -1 FROM changes WHERE snapshot >= ?1 " \
	"UNION ALL SELECT " \
	"coalesce((SELECT k.s FROM changes WHERE snapshot = k.s AND " \
	"dir_id > k.d LIMIT 1), (SELECT min(snapshot) FROM changes " \
	"WHERE snapshot > k.s)), " \
	"coalesce((SELECT min(dir_id) FROM changes WHERE snapshot = k.s " \
	"AND dir_id > k.d), (SELECT min(dir_id) FROM changes WHERE " \
	"snapshot = (SELECT min(snapshot) FROM changes WHERE snapshot > " \
	"k.s))) FROM k WHERE k.s IS NOT NULL) "

#endif

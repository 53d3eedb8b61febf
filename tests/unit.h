/*
 * unit.h -- shared declarations of the Check unit tests (tests/check_*.c).
 *
 * Each check_*.c file exports one suite constructor; check_unit.c runs them
 * all.  The helpers below are defined in check_unit.c.
 */
#ifndef FSTRACK_UNIT_H
#define FSTRACK_UNIT_H

#include <stddef.h>
#include <stdint.h>

#include <check.h>

Suite	*event_suite(void);
Suite	*proto_suite(void);
Suite	*config_suite(void);
Suite	*store_suite(void);
Suite	*dircache_suite(void);
Suite	*syncplan_suite(void);
Suite	*ioerr_suite(void);
Suite	*access_suite(void);

/* A fresh directory under $TMPDIR (or /tmp); the caller owns the string. */
char	*unit_mkdtemp(void);
/* Remove a directory tree; errors are ignored. */
void	 unit_rmtree(const char *);
/* Read a whole file into a malloc'ed buffer; NULL if it cannot be read. */
unsigned char *unit_read_file(const char *, size_t *);
/* Write len bytes to a new file (mode 0644); 0 or -1. */
int	 unit_write_file(const char *, const void *, size_t);
/* Run fn with stdout redirected to a temporary file; returns fn's result
 * and puts what was printed (NUL-terminated, malloc'ed) in *out. */
int	 unit_capture_stdout(int (*)(void *), void *, char **);

/* Database helpers for the store and dircache tests. */
struct sqlite3;
/* Open a database read-only (a reader like fstrack(1)); fails the test. */
struct sqlite3 *unit_db_ro(const char *);
/* Every row of sql, columns joined by '|', each row ended by '\n'. */
char	*unit_db_rows(struct sqlite3 *, const char *);
/* The integer in the first column of the first row; fails the test if none. */
long long unit_db_int(struct sqlite3 *, const char *);
/* Wait up to 5 s for the writer to commit seq; fails the test otherwise. */
void	 unit_wait_committed(uint64_t);
/* Create fstd.loop / run it until its handles are closed and free it. */
void	 unit_loop_new(void);
void	 unit_loop_free(void);

#endif

/*
 * fstd.c -- the daemon's global state (struct fst_daemon, fstrack.h).
 *
 * Defined here, below every module that reads it, so that whatever links
 * a layer of the daemon (fstrackd, the unit tests, the fuzz targets) gets
 * it with that layer and none has to define it itself.  Who writes which
 * field: the table at the top of fstrack.h.
 */
#include "config.h"

#include "fstrack.h"

struct fst_daemon	fstd;

/*
 * planwire.h -- an fstrack-rsync plan, and its wire format between the two
 * sides of a pull (HOST's "fstrack-rsync --server-plan" and this side).
 */
#ifndef FSTRACK_PLANWIRE_H
#define FSTRACK_PLANWIRE_H

#include <stddef.h>
#include <stdio.h>

#include "syncplan.h"

#define PLAN_MAGIC	"fstrack-rsync-plan 1"

/* The outcome of a run's steps 1-3, made here or on HOST. */
struct plan {
	int		 have_cursor;
	long long	 cursor;
	long long	 snapshot;	/* -1: dry run, none started */
	char		*full;		/* non-NULL: full sync, why */
	struct syncplan_stats st;
	char		*list;		/* NUL-terminated entries */
	size_t		 listlen;
	char		**toolong;
	size_t		 ntoolong;
	char		*src;		/* real path of SRC where it is */
};

void	plan_free(struct plan *);
void	plan_add_too_long(void *, const char *);
void	plan_write(const struct plan *, FILE *);
int	plan_read(char *, size_t, struct plan *);

#endif

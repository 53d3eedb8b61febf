/*
 * syncplan.h -- the rules of an incremental fstrack-rsync run: from the
 * changes fstrack recorded to the list of directories handed to rsync.
 */
#ifndef FSTRACK_SYNCPLAN_H
#define FSTRACK_SYNCPLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * rsync reads --files-from lines into a buffer of MAXPATHLEN (4096) bytes
 * and silently cuts longer ones: an entry must be shorter than this.
 */
#define SYNCPLAN_MAX_ENTRY	4095

struct syncplan;

/* What a plan holds, for the run's summary line. */
struct syncplan_stats {
	size_t	reported;	/* changed directories the records named */
	size_t	listed;		/* directories in the list */
	size_t	in_new;		/* of those, found by walking new subtrees */
	size_t	gone;		/* reported directories that no longer are */
	size_t	too_long;	/* directories rsync cannot be told about */
};

struct syncplan	*syncplan_new(const char *, const char *, int);
void		 syncplan_free(struct syncplan *);
int		 syncplan_add(struct syncplan *, const char *, const char *,
		    int64_t);
int		 syncplan_finish(struct syncplan *);
const char	*syncplan_reason(const struct syncplan *);
size_t		 syncplan_count(const struct syncplan *);
const char	*syncplan_entry(const struct syncplan *, size_t);
void		 syncplan_stats(const struct syncplan *,
		    struct syncplan_stats *);
int		 syncplan_write(const struct syncplan *, FILE *);
size_t		 syncplan_encode(const char *, char *, size_t);
void		 syncplan_default_name(const char *, const char *, char *,
		    size_t);
void		 syncplan_foreach_too_long(const struct syncplan *,
		    void (*)(void *, const char *), void *);

#endif

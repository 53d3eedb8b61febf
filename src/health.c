/*
 * health.c -- whether the daemon is degraded, why, and since when.
 *
 * Two sources can degrade the daemon, each setting and clearing only its
 * own flag: the store (commits fail: disk full, read-only, locked, gone;
 * store.c) and the stall guard (writers let by before their records are
 * durable; perm.c).  Any thread may set or clear; status (daemon.c) reads.
 * This file names no other module's functions, so the lower layers report
 * health here without calling up into daemon.c.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "fstrack.h"

#define HEALTH_SOURCES	2

static pthread_mutex_t	health_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int	health_flags;			/* bit per source */
static char		health_reason[HEALTH_SOURCES][256];	/* locked */
static time_t		health_since[HEALTH_SOURCES];		/* locked */

/* Enter the degraded state for source (DEGRADED_*), saying why. */
void
health_set_degraded(int source, const char *why)
{
	pthread_mutex_lock(&health_lock);
	snprintf(health_reason[source], sizeof health_reason[0], "%s", why);
	if (!(atomic_load(&health_flags) & (1 << source)))
		health_since[source] = time(NULL);
	atomic_fetch_or(&health_flags, 1 << source);
	pthread_mutex_unlock(&health_lock);
}

/* Leave the degraded state for source. */
void
health_clear_degraded(int source)
{
	atomic_fetch_and(&health_flags, ~(1 << source));
}

/* The sources that are degraded now, one bit each (0: healthy). */
int
health_degraded(void)
{
	return atomic_load(&health_flags);
}

/* Add a degraded_reason and a degraded_since line per degraded source. */
void
health_status(struct sbuf *sb)
{
	char	buf[64];
	int	i;

	pthread_mutex_lock(&health_lock);
	for (i = 0; i < HEALTH_SOURCES; i++) {
		if (!(atomic_load(&health_flags) & (1 << i)))
			continue;
		sbuf_addstr(sb, "degraded_reason\t");
		sbuf_add_escaped(sb, health_reason[i]);
		sbuf_addstr(sb, "\n");
		strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ",
		    gmtime(&health_since[i]));
		sbuf_printf(sb, "degraded_since\t%s\n", buf);
	}
	pthread_mutex_unlock(&health_lock);
}

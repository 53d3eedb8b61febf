/*
 * config.c -- fstrackd.conf(5): one "KEY VALUE" directive per line, '#'
 * starts a comment.  Every error names the file and line and is fatal at
 * start-up: a daemon that guesses at its configuration may track the wrong
 * filesystems.  Command-line options are applied after the file.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fstrack.h"
#include "log.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

/* Fill in the built-in defaults. */
void
config_defaults(struct fst_config *c)
{
	memset(c, 0, sizeof *c);
	c->config_file = strdup(SYSCONFDIR "/fstrack/fstrackd.conf");
	c->state_dir = strdup("/var/lib/fstrack");
	c->socket_path = strdup("/run/fstrack/fstrackd.sock");
	c->durability = DURABILITY_STRICT;
	c->stall_timeout_ms = 5000;
	c->barrier_walk_gap_ms = 10;
	c->retention_snapshots = 1000;
	c->retention_days = 30;
	c->consumer_idle_days = 14;
	c->merge_delay_ms = 5;
	c->reconcile_margin_ms = 5000;
	c->max_conns_per_uid = 8;
	c->max_followers_per_uid = 2;
}

/* Free what config_defaults and the parser allocated in c, and clear it. */
void
config_free(struct fst_config *c)
{
	int	i;

	free(c->config_file);
	free(c->state_dir);
	free(c->socket_path);
	for (i = 0; i < c->nmounts; i++)
		free(c->mounts[i]);
	free(c->mounts);
	memset(c, 0, sizeof *c);
}

/* Add a mount point unless it is already listed. */
void
config_add_mount(struct fst_config *c, const char *m)
{
	int	i;

	for (i = 0; i < c->nmounts; i++)
		if (strcmp(c->mounts[i], m) == 0)
			return;
	c->mounts = realloc(c->mounts, (c->nmounts + 1) * sizeof *c->mounts);
	if (c->mounts == NULL || (c->mounts[c->nmounts] = strdup(m)) == NULL)
		fatal("out of memory");
	c->nmounts++;
}

/* Parse "strict" or "async". */
int
config_parse_durability(const char *s, enum fst_durability *d)
{
	if (strcmp(s, "strict") == 0)
		*d = DURABILITY_STRICT;
	else if (strcmp(s, "async") == 0)
		*d = DURABILITY_ASYNC;
	else
		return -1;
	return 0;
}

/* Parse a non-negative integer within [min, max]. */
static int
config_parse_long(const char *s, long min, long max, long *out)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Replace a string option. */
static void
config_set_str(char **dst, const char *v)
{
	free(*dst);
	if ((*dst = strdup(v)) == NULL)
		fatal("out of memory");
}

/*
 * Apply one line of the file (modified in place).  Returns 0, or -1 after
 * logging "FILE:LINE: message".
 */
int
config_parse_line(struct fst_config *c, char *line, const char *file, int lineno)
{
	char	*p, *key, *val, *end;
	long	 v;

	if ((p = strchr(line, '#')) != NULL)
		*p = '\0';
	for (p = line; isspace((unsigned char)*p); p++)
		;
	end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (*p == '\0')
		return 0;
	key = p;
	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	if (*p == '\0') {
		log_warnx("%s:%d: '%s' needs a value", file, lineno, key);
		return -1;
	}
	*p++ = '\0';
	while (isspace((unsigned char)*p))
		p++;
	val = p;

	if (strcmp(key, "track") == 0) {
		if (val[0] != '/') {
			log_warnx("%s:%d: track needs an absolute path, not '%s'",
			    file, lineno, val);
			return -1;
		}
		config_add_mount(c, val);
	} else if (strcmp(key, "state-dir") == 0) {
		if (val[0] != '/')
			goto notabs;
		config_set_str(&c->state_dir, val);
	} else if (strcmp(key, "socket") == 0) {
		if (val[0] != '/')
			goto notabs;
		config_set_str(&c->socket_path, val);
	} else if (strcmp(key, "durability") == 0) {
		if (config_parse_durability(val, &c->durability) != 0) {
			log_warnx("%s:%d: durability is 'strict' or 'async', not '%s'",
			    file, lineno, val);
			return -1;
		}
	} else if (strcmp(key, "stall-timeout") == 0) {
		if (config_parse_long(val, 10, 3600000, &v) != 0)
			goto badnum;
		c->stall_timeout_ms = v;
	} else if (strcmp(key, "barrier-walk-gap") == 0) {
		if (config_parse_long(val, 0, 60000, &v) != 0)
			goto badnum;
		c->barrier_walk_gap_ms = v;
	} else if (strcmp(key, "retention-snapshots") == 0) {
		if (config_parse_long(val, 1, LONG_MAX, &v) != 0)
			goto badnum;
		c->retention_snapshots = v;
	} else if (strcmp(key, "retention-days") == 0) {
		if (config_parse_long(val, 0, 100000, &v) != 0)
			goto badnum;
		c->retention_days = v;
	} else if (strcmp(key, "consumer-idle-days") == 0) {
		if (config_parse_long(val, 0, 100000, &v) != 0)
			goto badnum;
		c->consumer_idle_days = v;
	} else if (strcmp(key, "merge-delay") == 0) {
		if (config_parse_long(val, 0, 1000, &v) != 0)
			goto badnum;
		c->merge_delay_ms = v;
	} else if (strcmp(key, "reconcile-margin") == 0) {
		if (config_parse_long(val, 0, 3600000, &v) != 0)
			goto badnum;
		c->reconcile_margin_ms = v;
	} else if (strcmp(key, "max-connections-per-uid") == 0) {
		if (config_parse_long(val, 1, 64, &v) != 0)
			goto badnum;
		c->max_conns_per_uid = v;
	} else if (strcmp(key, "max-followers-per-uid") == 0) {
		if (config_parse_long(val, 0, 64, &v) != 0)
			goto badnum;
		c->max_followers_per_uid = v;
	} else {
		log_warnx("%s:%d: unknown directive '%s'", file, lineno, key);
		return -1;
	}
	return 0;
notabs:
	log_warnx("%s:%d: %s needs an absolute path, not '%s'", file, lineno,
	    key, val);
	return -1;
badnum:
	log_warnx("%s:%d: bad number '%s' for %s", file, lineno, val, key);
	return -1;
}

/*
 * Read a configuration file.  A missing file is an error only when it was
 * named explicitly (-c); the default one is optional.
 */
int
config_load(struct fst_config *c, const char *path, int explicit)
{
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;
	int	 lineno = 0, rc = 0;

	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT && !explicit)
			return 0;
		log_warn("unable to open config '%s'", path);
		return -1;
	}
	while ((n = getline(&line, &cap, f)) != -1) {
		lineno++;
		if (strlen(line) != (size_t)n) {
			log_warnx("%s:%d: NUL byte in line", path, lineno);
			rc = -1;
			break;
		}
		if (config_parse_line(c, line, path, lineno) != 0) {
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		log_warn("error reading '%s'", path);
		rc = -1;
	}
	free(line);
	fclose(f);
	return rc;
}

/*
 * mounts.c -- which mount a path is on, and whether fstrackd tracks it.
 *
 * fstrackd marks whole filesystems and names each by the mount point it
 * was given (`filesystem` lines of the status reply: "MP type=T
 * state=S fsid=F ...").  A client that walks or watches a tree must know
 * that the tree's own filesystem is one of them, and that no untracked
 * filesystem is mounted inside it: changes there are never recorded.
 * Both come from /proc/self/mountinfo, read once.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

/* Undo mountinfo's octal escapes (\040 and the like) in place. */
static void
mounts_unescape(char *s)
{
	char	*d = s;

	while (*s != '\0') {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
			    (s[3] - '0'));
			s += 4;
		} else
			*d++ = *s++;
	}
	*d = '\0';
}

/* Whether path is dir or below it (both absolute, no trailing slash). */
int
mounts_path_under(const char *path, const char *dir)
{
	size_t	n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' ||
	    path[n] == '/');
}

/*
 * The `filesystem` value of the status reply r for mount point mp (it
 * begins "MP type="), or NULL if fstrackd does not list mp.
 */
const char *
mounts_tracked(const struct reply *r, const char *mp)
{
	size_t	n = strlen(mp);
	int	i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->keys[i], "filesystem") == 0 &&
		    strncmp(r->values[i], mp, n) == 0 &&
		    strncmp(r->values[i] + n, " type=", 6) == 0)
			return r->values[i];
	return NULL;
}

/*
 * The mount point path (a real path) is on, the longest mount point above
 * it, into mnt (len bytes); and, if below is not NULL, the first mount
 * point strictly below path that the status reply does not list, into
 * below (blen bytes; "" if there is none).  0, or -1 with errno set
 * (mountinfo unreadable, ENOENT: no mount point found).
 */
int
mounts_find(const char *path, const struct reply *status, char *mnt,
    size_t len, char *below, size_t blen)
{
	FILE	*f;
	char	*line = NULL, *fields[6], *save, *p;
	size_t	 cap = 0, best = 0;
	int	 i;

	if ((f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return -1;
	mnt[0] = '\0';
	if (below != NULL)
		below[0] = '\0';
	while (getline(&line, &cap, f) != -1) {
		line[strcspn(line, "\n")] = '\0';
		for (i = 0, p = line; i < 6; i++, p = NULL)
			if ((fields[i] = strtok_r(p, " ", &save)) == NULL)
				break;
		if (i < 5)
			continue;
		mounts_unescape(fields[4]);
		if (mounts_path_under(path, fields[4]) &&
		    strlen(fields[4]) >= best && strlen(fields[4]) < len) {
			best = strlen(fields[4]);
			snprintf(mnt, len, "%s", fields[4]);
		}
		if (below != NULL && below[0] == '\0' &&
		    mounts_path_under(fields[4], path) &&
		    strcmp(fields[4], path) != 0 &&
		    mounts_tracked(status, fields[4]) == NULL)
			snprintf(below, blen, "%s", fields[4]);
	}
	free(line);
	fclose(f);
	if (mnt[0] == '\0') {
		errno = ENOENT;
		return -1;
	}
	return 0;
}

/*
 * log.c -- messages to stderr or syslog.
 *
 * In the foreground (and under systemd, whose journal reads stderr) messages
 * go to stderr prefixed with the program name; a daemonised fstrackd logs to
 * syslog.  Messages are lowercase without a full stop, names quoted.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

static const char *log_progname = "fstrack";
static int log_to_stderr = 1;
static int log_debug_on;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* Set the program name, destination and verbosity. */
void
log_init(const char *progname, int to_stderr, int debug)
{
	log_progname = progname;
	log_to_stderr = to_stderr;
	log_debug_on = debug;
	if (!to_stderr)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

/* Turn debug messages on or off. */
void
log_set_debug(int on)
{
	log_debug_on = on;
}

/* Report whether debug messages are on. */
int
log_get_debug(void)
{
	return log_debug_on;
}

/* Write one message at a syslog priority, with an optional errno suffix. */
static void
log_vwrite(int pri, int err, const char *fmt, va_list ap)
{
	char	buf[2048];
	int	n;

	n = vsnprintf(buf, sizeof buf, fmt, ap);
	if (n < 0)
		return;
	if (err != 0 && (size_t)n < sizeof buf)
		snprintf(buf + n, sizeof buf - n, ": %s", strerror(err));
	pthread_mutex_lock(&log_lock);
	if (log_to_stderr) {
		fprintf(stderr, "%s: %s\n", log_progname, buf);
		fflush(stderr);
	} else
		syslog(pri, "%s", buf);
	pthread_mutex_unlock(&log_lock);
}

/* Warn, appending strerror(errno). */
void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	int	err = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, err, fmt, ap);
	va_end(ap);
	errno = err;
}

/* Warn without errno. */
void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, 0, fmt, ap);
	va_end(ap);
}

/* Informational message. */
void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_INFO, 0, fmt, ap);
	va_end(ap);
}

/* Debug message, shown only with -d. */
void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, 0, fmt, ap);
	va_end(ap);
}

/* Log with errno and exit 1. */
void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	err = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, err, fmt, ap);
	va_end(ap);
	exit(1);
}

/* Log and exit 1. */
void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

/* log.h -- logging in the OpenBSD style: log_warn adds errno, fatal exits. */
#ifndef FSTRACK_LOG_H
#define FSTRACK_LOG_H

#include <stdarg.h>

void	log_init(const char *, int, int);
void	log_set_debug(int);
int	log_get_debug(void);
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif

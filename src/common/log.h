/* Logging with the calling function's name.  Writes to stderr, or to the
 * file given to log_open().  Not for the hot path above LOG_DEBUG. */
#pragma once
#include <stdarg.h>

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

void log_open(const char *path, const char *prog); /* path NULL: stderr */
int log_fd(void); /* the log file's fd, or -1 when logging to stderr */
void log_msg(enum log_level lvl, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...)   log_msg(LOG_ERR, __func__, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __func__, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __func__, __VA_ARGS__)
#define log_debug(...) do { if (log_threshold >= LOG_DEBUG) log_msg(LOG_DEBUG, __func__, __VA_ARGS__); } while (0)

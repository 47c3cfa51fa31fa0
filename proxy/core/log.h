/* log — the error log (levelled, to stderr) and the access log (one line per request).
 *
 * Each line is formatted into a stack buffer and written with a single write(2), so
 * lines from different threads never interleave. log_enabled() is one load and a
 * compare: callers on hot paths test it before formatting anything.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdbool.h>

#include "config/config.h"

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* One event per line, "key=value" fields after a short message. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LOG_LEVEL_DEBUG)) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

/* Access log: "stdout", "stderr", a file path (opened O_APPEND), or NULL (off).
 * Returns 0, or -1 with errno when the file cannot be opened (the old one is kept). */
int access_log_open(const char *target, enum log_format format);
/* SIGUSR1: reopen the same target (after log rotation). */
int access_log_reopen(void);
bool access_log_enabled(void);
enum log_format access_log_format(void);
/* Writes one complete line (the caller formats it; a newline is appended). */
void access_log_write(const char *line, size_t len);
/* Closes the log for good; only once no thread writes any more (at exit). */
void access_log_close(void);

#endif

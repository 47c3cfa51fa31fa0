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
 *
 * Workers write to one fd whose number never changes while ferry runs: a new target is
 * dup2()ed over it, never closed in between (a closed number is reused at once by
 * accept4() or connect() on another thread, and a log line would go into a stranger's
 * connection). stdout and stderr themselves are never closed nor dup2()ed over.
 * Setting, reopening and closing happen on the main thread only. */

/* Start and reload: switches to target, opening it only when it differs from the
 * current one (an unchanged path keeps its open file). 0, or -1 with errno when the
 * file cannot be opened (nothing changes). */
int access_log_configure(const char *target, enum log_format format);

/* The same in two steps, so that a reload opens its file before it commits to
 * anything and switches to it only when everything else succeeded:
 * access_log_prepare() opens the target when it differs from the current one (0, or
 * -1 with errno and nothing open); access_log_commit() switches to it (0, or -1 with
 * errno when the descriptor could not be moved: the old target stays) or
 * access_log_abandon() closes what prepare opened. Main thread. */
struct access_log_change {
    bool is_changing;
    int fd;             /* owned until committed: the file opened; -1 for none */
    char *target;       /* owned until committed; NULL: off */
};
int access_log_prepare(const char *target, struct access_log_change *ch);
int access_log_commit(struct access_log_change *ch, enum log_format format);
void access_log_abandon(struct access_log_change *ch);
/* Dry runs: 0 when a reload could open target (an existing file is opened and closed
 * again; a missing one needs a writable directory), -1 with errno. Creates nothing. */
int access_log_check(const char *target);
/* SIGUSR1: reopens the current file (after log rotation); nothing for stdout, stderr
 * or off. 0, or -1 with errno (the old file stays in use). */
int access_log_reopen(void);
bool access_log_enabled(void);
enum log_format access_log_format(void);
/* Writes one complete line (the caller formats it; a newline is appended). */
void access_log_write(const char *line, size_t len);
/* At exit, once no worker can write any more: closes the fd. */
void access_log_close(void);

#endif

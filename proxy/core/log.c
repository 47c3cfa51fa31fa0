#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int min_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {
    [LOG_LEVEL_DEBUG] = "debug", [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_WARN] = "warn",   [LOG_LEVEL_ERROR] = "error",
};

void log_set_level(enum log_level level) { atomic_store(&min_level, level); }

bool log_enabled(enum log_level level) { return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed); }

static size_t format_timestamp(char *buf, size_t len)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, len - n, ".%03ldZ", now.tv_nsec / 1000000);
    return n;
}

/* Best effort: a log line that cannot be written is dropped, never retried. */
static void write_line(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char line[2048];
    size_t n = format_timestamp(line, sizeof line);
    n += (size_t)snprintf(line + n, sizeof line - n, " %s ", level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int body = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    n = body < 0 ? n : n + (size_t)body;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    write_line(STDERR_FILENO, line, n);
}

/* The fd workers write to (see log.h): stable_fd once a target was set, -1 while off.
 * stable_fd is ferry's own descriptor, never closed before exit; dup3() replaces what
 * it refers to in one step, so a racing write lands in the old target or the new one. */
static _Atomic int access_fd = -1;
static _Atomic int access_format = LOG_FORMAT_JSON;
static int stable_fd = -1;      /* owned; main thread */
static char *access_target;     /* owned; NULL when off; main thread */

static int standard_stream(const char *target)
{
    if (strcmp(target, "stdout") == 0)
        return STDOUT_FILENO;
    if (strcmp(target, "stderr") == 0)
        return STDERR_FILENO;
    return -1;
}

/* Makes stable_fd refer to what fd refers to (allocating it the first time, above the
 * standard streams). 0, or -1 with errno. */
static int point_stable_fd_at(int fd)
{
    if (stable_fd >= 0)
        return dup3(fd, stable_fd, O_CLOEXEC) < 0 ? -1 : 0;
    stable_fd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    return stable_fd < 0 ? -1 : 0;
}

/* Opens path (a file, or /dev/null) and points stable_fd at it. 0, or -1 with errno. */
static int point_stable_fd_at_path(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    int rc = point_stable_fd_at(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static void turn_off(void)
{
    atomic_store(&access_fd, -1);
    /* Let go of the file (a rotated or deleted log must not stay open); a writer that
     * loaded the fd just before writes its line to the old file or to /dev/null. */
    if (stable_fd >= 0 && point_stable_fd_at_path("/dev/null") < 0)
        log_warn("log.access off: the old file stays open: /dev/null: %s", strerror(errno));
}

static bool is_same_target(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int access_log_configure(const char *target, enum log_format format)
{
    struct access_log_change ch;
    if (access_log_prepare(target, &ch) < 0)
        return -1;
    if (access_log_commit(&ch, format) < 0) {
        int saved = errno;
        access_log_abandon(&ch);
        errno = saved;
        return -1;
    }
    return 0;
}

int access_log_prepare(const char *target, struct access_log_change *ch)
{
    ch->is_changing = !is_same_target(target, access_target);
    ch->fd = -1;
    ch->target = NULL;
    if (!ch->is_changing || !target)
        return 0;
    if (!(ch->target = strdup(target))) {
        errno = ENOMEM;
        return -1;
    }
    if (standard_stream(target) >= 0)
        return 0;
    ch->fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (ch->fd < 0) {
        int saved = errno;
        free(ch->target);
        ch->target = NULL;
        errno = saved;
        return -1;
    }
    return 0;
}

int access_log_commit(struct access_log_change *ch, enum log_format format)
{
    if (ch->is_changing) {
        if (!ch->target)
            turn_off();
        else if (point_stable_fd_at(ch->fd >= 0 ? ch->fd : standard_stream(ch->target)) < 0)
            return -1;
        if (ch->fd >= 0)
            close(ch->fd);
        free(access_target);
        access_target = ch->target;
        ch->fd = -1;
        ch->target = NULL;
        ch->is_changing = false;
    }
    atomic_store(&access_format, format);
    atomic_store(&access_fd, access_target ? stable_fd : -1);
    return 0;
}

void access_log_abandon(struct access_log_change *ch)
{
    if (ch->fd >= 0)
        close(ch->fd);
    free(ch->target);
    ch->fd = -1;
    ch->target = NULL;
    ch->is_changing = false;
}

int access_log_check(const char *target)
{
    if (!target || is_same_target(target, access_target) || standard_stream(target) >= 0)
        return 0;
    int fd = open(target, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != ENOENT)
        return -1;
    /* Not there yet: a reload would create it in its directory. */
    char dir[4096];
    const char *slash = strrchr(target, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == target ? 1 : slash - target), target);
    return access(dir, W_OK | X_OK);
}

int access_log_reopen(void)
{
    if (!access_target || standard_stream(access_target) >= 0)
        return 0;
    return point_stable_fd_at_path(access_target);
}

bool access_log_enabled(void) { return atomic_load_explicit(&access_fd, memory_order_relaxed) >= 0; }

enum log_format access_log_format(void) { return (enum log_format)atomic_load(&access_format); }

void access_log_write(const char *line, size_t len)
{
    int fd = atomic_load_explicit(&access_fd, memory_order_relaxed);
    if (fd < 0)
        return;
    char buf[4096];
    if (len > sizeof buf - 1)
        len = sizeof buf - 1;
    memcpy(buf, line, len);
    buf[len++] = '\n';
    write_line(fd, buf, len);
}

void access_log_close(void)
{
    atomic_store(&access_fd, -1);
    if (stable_fd >= 0)
        close(stable_fd);
    stable_fd = -1;
    free(access_target);
    access_target = NULL;
}

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

/* The access log target changes only at startup, reload and SIGUSR1 (main thread,
 * under access_lock); workers load the fd once per line and write to it. Closing a
 * replaced fd is not safe: a worker that loaded the number a moment before would write
 * its line into whatever socket accept4() or connect() gets that number next. So once
 * ferry owns a descriptor for the log (a file), that number stays open until exit: a
 * new target is dup3()ed onto it, which swaps the open file under concurrent writers
 * atomically, and "off" parks it on /dev/null. */
static _Atomic int access_fd = -1;    /* what workers write to; -1 = off */
static int owned_fd = -1;             /* the number ferry keeps for the log, or -1 */
static _Atomic int access_format = LOG_FORMAT_JSON;
static char *access_target;   /* owned; NULL when off */
static pthread_mutex_t access_lock = PTHREAD_MUTEX_INITIALIZER;

static int open_target(const char *target)
{
    if (strcmp(target, "stdout") == 0)
        return STDOUT_FILENO;
    if (strcmp(target, "stderr") == 0)
        return STDERR_FILENO;
    return open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void close_owned(int fd)
{
    if (fd > STDERR_FILENO)
        close(fd);
}

/* Makes fd (an opened target, or -1 for off) the log; consumes fd. Returns the fd the
 * workers are to use, or -2 with errno. Under access_lock. */
static int install_target(int fd)
{
    int source = fd;
    if (owned_fd < 0) {
        if (fd > STDERR_FILENO)
            owned_fd = fd;
        return fd;
    }
    if (fd < 0 && (source = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
        return -2;
    while (dup3(source, owned_fd, O_CLOEXEC) < 0) {
        if (errno != EINTR && errno != EBUSY) {
            int saved = errno;
            close_owned(source);
            errno = saved;
            return -2;
        }
    }
    close_owned(source);
    return fd < 0 ? -1 : owned_fd;
}

int access_log_open(const char *target, enum log_format format)
{
    int fd = -1;
    char *copy = NULL;
    if (target) {
        fd = open_target(target);
        copy = strdup(target);
        if (fd < 0 || !copy) {
            int saved = fd < 0 ? errno : ENOMEM;
            close_owned(fd);
            free(copy);
            errno = saved;
            return -1;
        }
    }
    pthread_mutex_lock(&access_lock);
    int use = install_target(fd);
    if (use == -2) {
        int saved = errno;
        pthread_mutex_unlock(&access_lock);
        free(copy);
        errno = saved;
        return -1;
    }
    atomic_store(&access_format, format);
    atomic_store(&access_fd, use);
    free(access_target);
    access_target = copy;
    pthread_mutex_unlock(&access_lock);
    return 0;
}

int access_log_reopen(void)
{
    pthread_mutex_lock(&access_lock);
    char *target = access_target ? strdup(access_target) : NULL;
    pthread_mutex_unlock(&access_lock);
    if (!target)
        return 0;
    int rc = access_log_open(target, (enum log_format)atomic_load(&access_format));
    free(target);
    return rc;
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
    pthread_mutex_lock(&access_lock);
    atomic_store(&access_fd, -1);
    close_owned(owned_fd);
    owned_fd = -1;
    free(access_target);
    access_target = NULL;
    pthread_mutex_unlock(&access_lock);
}

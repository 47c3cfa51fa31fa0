/* http access log — formatting one line per request. Pure (the caller passes the
 * wall-clock time and writes the line with access_log_write()).
 *
 * JSON (one object per line, strings escaped per RFC 8259):
 *   {"time":"2024-05-01T12:00:00.123Z","client":"::1","listener":"https",
 *    "method":"GET","path":"/x?y","proto":"HTTP/1.1","status":200,"bytes":1234,
 *    "backend":"alpha","upstream_ms":3,"total_ms":4}
 * text:
 *   2024-05-01T12:00:00.123Z ::1 https "GET /x?y HTTP/1.1" 200 1234 alpha 3 4
 * proto is "HTTP/1.0", "HTTP/1.1" or "HTTP/2.0" ("-" for a request that could not be
 * parsed).
 * backend is "-" when no backend served the request; upstream_ms is then 0.
 */
#ifndef FERRY_HTTP_ACCESS_H
#define FERRY_HTTP_ACCESS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"

struct http_access_entry {
    struct timespec time;       /* CLOCK_REALTIME when the request finished */
    const char *client;         /* borrowed, NUL-terminated */
    const char *listener;
    const char *method;         /* may be a span: method_len bytes */
    size_t method_len;
    const char *path;
    size_t path_len;
    const char *proto;          /* borrowed, NUL-terminated */
    int status;
    uint64_t bytes;             /* bytes queued to the client for this response */
    const char *backend;        /* NULL: "-" */
    int64_t upstream_ms;
    int64_t total_ms;
};

/* Formats e into buf (never more than len - 1 bytes, NUL-terminated; a long path is
 * cut so that the line stays well-formed). Returns the line length. */
size_t http_access_format(char *buf, size_t len, const struct http_access_entry *e,
                          enum log_format format);

#endif

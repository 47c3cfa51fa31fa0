#include "http/access.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Room kept free for the fields after a string, so a long path never truncates the
 * numbers and the closing brace. */
enum { TAIL_RESERVE = 200 };

struct out {
    char *buf;
    size_t len, used;       /* used < len always: room for the NUL */
};

static void put(struct out *o, const char *s, size_t n)
{
    if (n > o->len - 1 - o->used)
        n = o->len - 1 - o->used;
    memcpy(o->buf + o->used, s, n);
    o->used += n;
    o->buf[o->used] = '\0';
}

static void put_str(struct out *o, const char *s) { put(o, s, strlen(s)); }

static void put_fmt(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put_fmt(struct out *o, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Escapes s for a JSON string (json) or a double-quoted text field: '"', '\' and
 * every byte outside printable ASCII become escapes, so the line stays one line. */
static void put_escaped(struct out *o, const char *s, size_t n, bool json, size_t reserve)
{
    for (size_t i = 0; i < n; i++) {
        if (o->used + reserve + 8 >= o->len)
            return;
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(o, esc, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(esc, sizeof esc, json ? "\\u%04x" : "\\x%02x", c);
            put_str(o, esc);
        } else {
            put(o, (const char *)&c, 1);
        }
    }
}

static void put_time(struct out *o, const struct timespec *ts)
{
    struct tm tm;
    char tmp[40];
    gmtime_r(&ts->tv_sec, &tm);
    size_t n = strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tmp + n, sizeof tmp - n, ".%03ldZ", ts->tv_nsec / 1000000);
    put_str(o, tmp);
}

static void json_field(struct out *o, const char *name, const char *s, size_t n, size_t reserve)
{
    put_fmt(o, ",\"%s\":\"", name);
    put_escaped(o, s, n, true, reserve);
    put_str(o, "\"");
}

static void format_json(struct out *o, const struct http_access_entry *e)
{
    const char *backend = e->backend ? e->backend : "-";
    put_str(o, "{\"time\":\"");
    put_time(o, &e->time);
    put_str(o, "\"");
    json_field(o, "client", e->client, strlen(e->client), TAIL_RESERVE);
    json_field(o, "listener", e->listener, strlen(e->listener), TAIL_RESERVE);
    json_field(o, "method", e->method, e->method_len, TAIL_RESERVE);
    /* The path gets what is left once the backend name fits as well. */
    json_field(o, "path", e->path, e->path_len, TAIL_RESERVE + 2 * strlen(backend));
    json_field(o, "proto", e->proto, strlen(e->proto), TAIL_RESERVE);
    put_fmt(o, ",\"status\":%d,\"bytes\":%" PRIu64, e->status, e->bytes);
    json_field(o, "backend", backend, strlen(backend), 64);
    put_fmt(o, ",\"upstream_ms\":%" PRId64 ",\"total_ms\":%" PRId64 "}", e->upstream_ms,
            e->total_ms);
}

static void format_text(struct out *o, const struct http_access_entry *e)
{
    const char *backend = e->backend ? e->backend : "-";
    put_time(o, &e->time);
    put_str(o, " ");
    put_escaped(o, e->client, strlen(e->client), false, TAIL_RESERVE);
    put_str(o, " ");
    put_escaped(o, e->listener, strlen(e->listener), false, TAIL_RESERVE);
    put_str(o, " \"");
    put_escaped(o, e->method, e->method_len, false, TAIL_RESERVE);
    put_str(o, " ");
    put_escaped(o, e->path, e->path_len, false, TAIL_RESERVE + 2 * strlen(backend));
    put_str(o, " ");
    put_escaped(o, e->proto, strlen(e->proto), false, TAIL_RESERVE);
    put_fmt(o, "\" %d %" PRIu64 " ", e->status, e->bytes);
    put_escaped(o, backend, strlen(backend), false, 64);
    put_fmt(o, " %" PRId64 " %" PRId64, e->upstream_ms, e->total_ms);
}

size_t http_access_format(char *buf, size_t len, const struct http_access_entry *e,
                          enum log_format format)
{
    struct out o = { buf, len, 0 };
    if (len == 0)
        return 0;
    buf[0] = '\0';
    if (format == LOG_FORMAT_JSON)
        format_json(&o, e);
    else
        format_text(&o, e);
    return o.used;
}

/* Cookie field values (cookie.h). */
#include "http/cookie.h"

#include <string.h>

#include <event2/buffer.h>

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* The next pair at *p (before end): its name and value, trimmed. False at the end. */
static bool next_pair(const char **p, const char *end, const char **pair, size_t *pair_len,
                      const char **name, size_t *name_len, const char **value, size_t *value_len)
{
    while (*p < end && (is_space(**p) || **p == ';'))
        (*p)++;
    if (*p >= end)
        return false;
    const char *start = *p;
    const char *semi = memchr(start, ';', (size_t)(end - start));
    const char *stop = semi ? semi : end;
    *p = stop;
    while (stop > start && is_space(stop[-1]))
        stop--;
    *pair = start;
    *pair_len = (size_t)(stop - start);
    const char *eq = memchr(start, '=', (size_t)(stop - start));
    const char *name_end = eq ? eq : start;     /* a pair without "=" has no name */
    while (name_end > start && is_space(name_end[-1]))
        name_end--;
    *name = start;
    *name_len = (size_t)(name_end - start);
    const char *v = eq ? eq + 1 : stop;
    while (v < stop && is_space(*v))
        v++;
    *value = v;
    *value_len = (size_t)(stop - v);
    return true;
}

static bool is_named(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

bool http_cookie_find(const char *field, size_t len, const char *name, const char **value,
                      size_t *value_len)
{
    const char *p = field, *end = field + len, *pair, *n, *v;
    size_t pair_len, n_len, v_len;
    while (next_pair(&p, end, &pair, &pair_len, &n, &n_len, &v, &v_len)) {
        if (is_named(n, n_len, name)) {
            /* A quoted value is the same value (RFC 6265 §4.1.1). */
            if (v_len >= 2 && v[0] == '"' && v[v_len - 1] == '"') {
                v++;
                v_len -= 2;
            }
            *value = v;
            *value_len = v_len;
            return true;
        }
    }
    return false;
}

bool http_cookie_has(const char *field, size_t len, const char *name)
{
    const char *v;
    size_t v_len;
    return http_cookie_find(field, len, name, &v, &v_len);
}

int http_cookie_append_without(struct evbuffer *out, const char *field, size_t len,
                               const char *name, const char **sep)
{
    const char *p = field, *end = field + len, *pair, *n, *v;
    size_t pair_len, n_len, v_len;
    int kept = 0;
    while (next_pair(&p, end, &pair, &pair_len, &n, &n_len, &v, &v_len)) {
        if (is_named(n, n_len, name))
            continue;
        if (out && (evbuffer_add(out, *sep, strlen(*sep)) < 0 ||
                    evbuffer_add(out, pair, pair_len) < 0))
            return -1;
        *sep = "; ";
        kept++;
    }
    return kept;
}

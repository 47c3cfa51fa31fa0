#include "http/route.h"

#include <string.h>

#include "config/config.h"

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
}

static bool equal_nocase(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/* "Example.COM:8080" -> "Example.COM", "[::1]:80" -> "[::1]", "a.b." -> "a.b". */
static size_t host_name_len(const char *host, size_t len)
{
    size_t n = len;
    if (len > 0 && host[0] == '[') {
        const char *close = memchr(host, ']', len);
        n = close ? (size_t)(close - host) + 1 : len;
    } else {
        const char *colon = memchr(host, ':', len);
        if (colon)
            n = (size_t)(colon - host);
    }
    if (n > 1 && host[n - 1] == '.')
        n--;
    return n;
}

bool http_route_host_matches(const char *pattern, const char *host, size_t host_len)
{
    if (!host)
        return false;
    size_t n = host_name_len(host, host_len);
    size_t plen = strlen(pattern);
    if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
        /* ".suffix" must end the host, after at least one character of labels. */
        const char *suffix = pattern + 1;
        size_t slen = plen - 1;
        return n > slen && equal_nocase(host + n - slen, suffix, slen);
    }
    return n == plen && equal_nocase(host, pattern, n);
}

void http_route_key_of(const struct http1_request *req, struct http_route_key *key)
{
    key->host = req->host;
    key->host_len = req->host_len;
    /* "http://a.test?q" is "/?q" to the backend; the query does not route. */
    bool needs_slash = http1_path_needs_slash(req);
    key->path = needs_slash ? "/" : req->path;
    key->path_len = needs_slash ? 1 : req->path_len;
}

static bool route_matches(const struct cfg_route *r, const struct http_route_key *key)
{
    if (r->host && !http_route_host_matches(r->host, key->host, key->host_len))
        return false;
    if (r->path_prefix) {
        size_t plen = strlen(r->path_prefix);
        if (key->path_len < plen || memcmp(key->path, r->path_prefix, plen) != 0)
            return false;
    }
    return true;
}

int http_route_find(const struct cfg_route *routes, size_t n, const struct http_route_key *key)
{
    for (size_t i = 0; i < n; i++)
        if (route_matches(&routes[i], key))
            return (int)i;
    return -1;
}

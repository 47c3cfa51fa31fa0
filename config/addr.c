/* addr — socket addresses in the config: "a.b.c.d:port" or "[v6]:port".
 *
 * Numeric only (inet_pton): resolving names at load time would make `ferry -t` depend on
 * DNS and freeze an answer that may change (a backend's host name is resolved while
 * ferry runs: config/dns.c, proxy/discovery/). The single exception is
 * "localhost:port" for backends, mapped to 127.0.0.1, because dev configs use it
 * everywhere and it never needs a resolver. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"

#define HOST_MAX 64

int config_port_parse(const char *s, unsigned *port, char *why, size_t why_size)
{
    size_t n = strlen(s);
    if (n == 0) {
        snprintf(why, why_size, "missing port after \":\"");
        return -1;
    }
    if (strspn(s, "0123456789") != n) {
        snprintf(why, why_size, "port \"%s\" is not a number", s);
        return -1;
    }
    unsigned long value = n > 9 ? 1000000000ul : strtoul(s, NULL, 10);
    if (value < 1 || value > 65535) {
        snprintf(why, why_size, "port %s is out of range 1..65535", s);
        return -1;
    }
    *port = (unsigned)value;
    return 0;
}

/* Splits text into host (copied into `host`) and the port string; sets *v6. */
static int split(const char *text, char host[HOST_MAX], const char **port, bool *v6,
                 char *why, size_t why_size)
{
    const char *host_start = text, *host_end;
    *v6 = text[0] == '[';
    if (*v6) {
        host_start = text + 1;
        host_end = strchr(text, ']');
        if (!host_end) {
            snprintf(why, why_size, "missing \"]\" after the IPv6 address");
            return -1;
        }
        if (host_end[1] != ':') {
            snprintf(why, why_size, "expected \":port\" after \"]\"");
            return -1;
        }
        *port = host_end + 2;
    } else {
        host_end = strrchr(text, ':');
        if (!host_end) {
            snprintf(why, why_size, "missing \":port\" (expected host:port or [v6]:port)");
            return -1;
        }
        if (memchr(text, ':', (size_t)(host_end - text))) {
            snprintf(why, why_size, "IPv6 addresses must be in brackets, e.g. \"[::1]:8080\"");
            return -1;
        }
        *port = host_end + 1;
    }
    size_t n = (size_t)(host_end - host_start);
    if (n == 0) {
        snprintf(why, why_size, "missing host (0.0.0.0 or [::] mean every address)");
        return -1;
    }
    memcpy(host, host_start, n);    /* n < strlen(text) < HOST_MAX, checked by the caller */
    host[n] = '\0';
    return 0;
}

static int fill(const char *host, bool v6, unsigned port, unsigned flags,
                struct cfg_addr *out, char *why, size_t why_size)
{
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            snprintf(why, why_size, "\"%s\" is not a valid IPv6 address", host);
            return -1;
        }
        out->len = sizeof *sin6;
        return 0;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if ((flags & ADDR_ALLOW_LOCALHOST) && strcasecmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        snprintf(why, why_size, "\"%s\" is not a numeric IPv4 address%s", host,
                 (flags & ADDR_ALLOW_LOCALHOST) ? "" : " (no DNS lookups)");
        return -1;
    }
    out->len = sizeof *sin;
    return 0;
}

int config_addr_parse(const char *text, unsigned flags, struct cfg_addr *out,
                      char *why, size_t why_size)
{
    char host[HOST_MAX];
    const char *port_text;
    unsigned port;
    bool v6;
    memset(out, 0, sizeof *out);
    if (strlen(text) >= sizeof out->text) {
        snprintf(why, why_size, "address is too long (max %zu characters)",
                 sizeof out->text - 1);
        return -1;
    }
    if (split(text, host, &port_text, &v6, why, why_size) < 0
        || config_port_parse(port_text, &port, why, why_size) < 0
        || fill(host, v6, port, flags, out, why, why_size) < 0)
        return -1;
    snprintf(out->text, sizeof out->text, "%s", text);
    return 0;
}

bool config_addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
    if (a->sa.ss_family != b->sa.ss_family)
        return false;
    if (a->sa.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&a->sa;
        const struct sockaddr_in *y = (const struct sockaddr_in *)&b->sa;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->sa;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->sa;
    return x->sin6_port == y->sin6_port
           && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

bool walk_addr(struct walker *w, const json_t *obj, const char *key, unsigned flags,
               struct cfg_addr *out)
{
    char *text = NULL;
    char why[160];
    struct cfg_addr parsed;
    if (!walk_string(w, obj, key, false, &text))
        return false;
    bool ok = config_addr_parse(text, flags, &parsed, why, sizeof why) == 0;
    if (ok)
        *out = parsed;
    else
        walk_error_at(w, key, "\"%s\": %s", text, why);
    free(text);
    return ok;
}

bool walk_check_name(struct walker *w, const char *name)
{
    size_t n = strlen(name);
    const char *allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-";
    if (n >= 1 && n <= 64 && strspn(name, allowed) == n)
        return true;
    walk_error(w, "name must be 1..64 characters of A-Z a-z 0-9 _ . : -");
    return false;
}

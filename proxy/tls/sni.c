/* SNI: which certificate group answers a ClientHello's server name. */
#include <string.h>

#include "tls/internal.h"

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ASCII only on purpose: names on the wire are A-labels (IDN-free), and a locale
 * must not change what matches. */
static bool equal_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

static size_t length_without_dot(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

bool tls_name_matches(const char *pattern, const char *host)
{
    if (pattern == NULL || host == NULL)
        return false;
    size_t plen = length_without_dot(pattern);
    size_t hlen = length_without_dot(host);
    if (plen == 0 || hlen == 0 || memchr(host, '*', hlen) != NULL)
        return false;

    if (plen > 2 && pattern[0] == '*' && pattern[1] == '.') {
        /* The '*' stands for exactly one whole, non-empty left-most label. */
        const char *suffix = pattern + 1;   /* ".example.com" */
        size_t slen = plen - 1;
        if (memchr(suffix, '*', slen) != NULL || hlen <= slen)
            return false;
        size_t label = hlen - slen;
        return memchr(host, '.', label) == NULL
            && equal_nocase(host + label, suffix, slen);
    }
    if (memchr(pattern, '*', plen) != NULL)
        return false;   /* partial-label or non-left-most wildcards are not honoured */
    return plen == hlen && equal_nocase(pattern, host, plen);
}

static bool group_matches(const struct tls_name_group *g, const char *host, bool wildcards)
{
    for (size_t i = 0; i < g->n_names; i++) {
        bool is_wildcard = g->names[i][0] == '*';
        if (is_wildcard == wildcards && tls_name_matches(g->names[i], host))
            return true;
    }
    return false;
}

size_t tls_sni_select(const struct tls_name_group *groups, size_t n, const char *host)
{
    /* An exact name beats a wildcard wherever they appear (what nginx does), so
     * adding a "*.example.com" certificate never steals "www.example.com". */
    for (size_t g = 0; g < n; g++)
        if (group_matches(&groups[g], host, false))
            return g;
    for (size_t g = 0; g < n; g++)
        if (group_matches(&groups[g], host, true))
            return g;
    return 0;
}

int tls_sni_callback(SSL *ssl, int *alert, void *arg)
{
    const struct tls_server_state *st = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (host == NULL)
        return SSL_TLSEXT_ERR_NOACK;   /* no SNI: the default context answers */

    size_t g = tls_sni_select(st->groups, st->n_groups, host);
    /* SSL_set_SSL_CTX takes a reference on the group's context, so this connection
     * keeps it alive even after the tls_server is freed. Also called with g == 0
     * because a second ClientHello (HelloRetryRequest) may arrive here again. */
    if (SSL_set_SSL_CTX(ssl, st->groups[g].ctx) == NULL) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    /* Acknowledge even an unknown name, so the name stays readable with
     * SSL_get_servername() for routing and logs after the handshake. */
    return SSL_TLSEXT_ERR_OK;
}

/* SNI: which certificate group answers a ClientHello's server name, and under which
 * session-id context it may resume. */
#include <string.h>

#include <openssl/evp.h>

#include "tls/internal.h"

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ASCII only on purpose: names on the wire are A-labels (IDN-free), and a locale
 * must not change what matches. Callers pass NUL-terminated names and n at most their
 * length (the analyzer does not tie strlen() to the terminator hello_host_name() wrote). */
static bool equal_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i])) /* NOLINT(clang-analyzer-core.CallAndMessage) */
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

/* The host_name a ClientHello asks for, read from the raw server_name extension by
 * OpenSSL's own rules (one host_name entry that fills the list, at most 255 bytes,
 * no NUL), lower-cased into name. False when there is none, or the extension is
 * malformed: OpenSSL then fails the handshake itself. */
static bool hello_host_name(SSL *ssl, char name[TLSEXT_MAXLEN_host_name + 1])
{
    const unsigned char *ext;
    size_t len;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len) != 1 || len < 5)
        return false;
    size_t list_len = (size_t)ext[0] << 8 | ext[1];
    size_t name_len = (size_t)ext[3] << 8 | ext[4];
    if (list_len != len - 2 || ext[2] != TLSEXT_NAMETYPE_host_name || name_len != len - 5
        || name_len > TLSEXT_MAXLEN_host_name || memchr(ext + 5, '\0', name_len) != NULL)
        return false;
    for (size_t i = 0; i < name_len; i++)
        name[i] = lower((char)ext[5 + i]);
    name[name_len] = '\0';
    return true;
}

/* The listener's context extended with the name: OpenSSL's own session-id context
 * check then refuses a session made under another name (RFC 6066 §3) on every
 * resumption path. 0 ok, -1 when hashing failed. */
static int name_context(const struct tls_server_state *st, const char *name,
                        unsigned char out[TLS_SID_CTX_LEN])
{
    unsigned char material[TLS_SID_CTX_LEN + TLSEXT_MAXLEN_host_name];
    size_t name_len = strlen(name);
    memcpy(material, st->sid_ctx, TLS_SID_CTX_LEN);
    /* Hash input, not a string.
     * NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
    memcpy(material + TLS_SID_CTX_LEN, name, name_len);
    return EVP_Digest(material, TLS_SID_CTX_LEN + name_len, out, NULL, st->sha256,
                      NULL) == 1 ? 0 : -1;
}

/* Runs before OpenSSL looks for a session to resume — the servername callback runs
 * after it, too late to keep a session of one name from resuming under another. So
 * the certificate group and the session-id context are both settled here. */
int tls_sni_client_hello_cb(SSL *ssl, int *alert, void *arg)
{
    const struct tls_server_state *st = arg;
    char name[TLSEXT_MAXLEN_host_name + 1];
    unsigned char context[TLS_SID_CTX_LEN];
    bool named = hello_host_name(ssl, name);
    size_t g = named ? tls_sni_select(st->groups, st->n_groups, name) : 0;
    /* SSL_set_SSL_CTX takes a reference on the group's context, so this connection
     * keeps it alive even after the tls_server is freed. The session-id context set
     * on the SSL afterwards overrides the listener's that every group carries. A
     * second ClientHello (HelloRetryRequest) runs this again, to the same effect. */
    if (SSL_set_SSL_CTX(ssl, st->groups[g].ctx) == NULL
        || (named && name_context(st, name, context) < 0)
        || SSL_set_session_id_context(ssl, named ? context : st->sid_ctx,
                                      TLS_SID_CTX_LEN) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

int tls_sni_callback(SSL *ssl, int *alert, void *arg)
{
    /* Acknowledge even an unknown name, so OpenSSL keeps it (in a TLS 1.2 session
     * too) and SSL_get_servername() returns it for routing and logs. */
    return SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) != NULL
               ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_NOACK;
}

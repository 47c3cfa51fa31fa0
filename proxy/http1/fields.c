/* Field semantics: which headers are special, and what Content-Length,
 * Transfer-Encoding, Host and Connection say about framing (RFC 9112 §6, §9). This is
 * where request smuggling is stopped, so every ambiguity is an error. */
#include "http1/internal.h"

#include <string.h>

bool http1_token_eq(const char *s, size_t len, const char *lower)
{
    size_t i = 0;
    for (; i < len && lower[i]; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c | 0x20);
        if (c != lower[i])
            return false;
    }
    return i == len && lower[i] == '\0';
}

/* One element of a comma list, empty ones included (framing fields reject them). */
static bool next_element(const char **pos, const char *end, const char **elem,
                         size_t *elem_len)
{
    const char *p = *pos;
    if (!p)
        return false;
    while (p < end && http1_is_ows(*p))
        p++;
    const char *start = p;
    while (p < end && *p != ',')
        p++;
    const char *stop = p;
    while (stop > start && http1_is_ows(stop[-1]))
        stop--;
    *elem = start;
    *elem_len = (size_t)(stop - start);
    *pos = p < end ? p + 1 : NULL; /* past the comma, or done */
    return true;
}

bool http1_list_next(const char **pos, const char *end, const char **elem, size_t *elem_len)
{
    while (next_element(pos, end, elem, elem_len)) {
        if (*elem_len > 0)
            return true;
    }
    return false;
}

#define KNOWN(name, id, flags) { name, sizeof(name) - 1, id, flags }

void http1_classify_header(struct http1_header *h)
{
    static const struct { const char *name; size_t len; uint8_t id, flags; } known[] = {
        KNOWN("host", HTTP1_H_HOST, 0),
        KNOWN("content-length", HTTP1_H_CONTENT_LENGTH, HTTP1_HF_FRAMING),
        KNOWN("transfer-encoding", HTTP1_H_TRANSFER_ENCODING,
              HTTP1_HF_HOP_BY_HOP | HTTP1_HF_FRAMING),
        KNOWN("connection", HTTP1_H_CONNECTION, HTTP1_HF_HOP_BY_HOP),
        KNOWN("keep-alive", HTTP1_H_KEEP_ALIVE, HTTP1_HF_HOP_BY_HOP),
        KNOWN("proxy-connection", HTTP1_H_PROXY_CONNECTION, HTTP1_HF_HOP_BY_HOP),
        KNOWN("te", HTTP1_H_TE, HTTP1_HF_HOP_BY_HOP),
        KNOWN("trailer", HTTP1_H_TRAILER, HTTP1_HF_HOP_BY_HOP),
        KNOWN("upgrade", HTTP1_H_UPGRADE, HTTP1_HF_HOP_BY_HOP),
        KNOWN("expect", HTTP1_H_EXPECT, 0),
        KNOWN("x-forwarded-for", HTTP1_H_X_FORWARDED_FOR, 0),
        KNOWN("x-forwarded-proto", HTTP1_H_X_FORWARDED_PROTO, 0),
        KNOWN("x-forwarded-host", HTTP1_H_X_FORWARDED_HOST, 0),
        KNOWN("x-client-cert-subject", HTTP1_H_X_CLIENT_CERT_SUBJECT, 0),
    };
    h->id = HTTP1_H_OTHER;
    h->flags = 0;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        /* Length and first letter first: this runs for every field of every message. */
        if (known[i].len == h->name_len && known[i].name[0] == (h->name[0] | 0x20)
            && http1_token_eq(h->name, h->name_len, known[i].name)) {
            h->id = known[i].id;
            h->flags = known[i].flags;
            return;
        }
    }
}

/* Content-Length = 1*DIGIT; "5, 5" and repeated fields must agree (RFC 9110 §8.6).
 * Values stay below 2^63 so they fit an off_t. */
static int merge_content_length(struct http1_fields *f, const struct http1_header *h)
{
    const char *pos = h->value, *end = h->value + h->value_len, *elem;
    size_t len;
    while (next_element(&pos, end, &elem, &len)) {
        uint64_t v = 0;
        if (len == 0)
            return HTTP1_ERR_BAD_CONTENT_LENGTH;
        for (size_t i = 0; i < len; i++) {
            unsigned d = (unsigned char)elem[i] - '0';
            if (d > 9 || v > ((uint64_t)INT64_MAX - d) / 10)
                return HTTP1_ERR_BAD_CONTENT_LENGTH;
            v = v * 10 + d;
        }
        if (f->has_content_length && v != f->content_length)
            return HTTP1_ERR_CONTENT_LENGTH_MISMATCH;
        f->has_content_length = true;
        f->content_length = v;
    }
    return 0;
}

/* Transfer codings across all Transfer-Encoding fields, in order. */
struct codings {
    unsigned count, chunked;
    bool is_last_chunked, is_malformed;
};

static void add_codings(struct codings *c, const struct http1_header *h)
{
    const char *pos = h->value, *end = h->value + h->value_len, *elem;
    size_t len;
    while (next_element(&pos, end, &elem, &len)) {
        size_t tok = 0;
        while (tok < len && http1_is((unsigned char)elem[tok], HTTP1_C_TCHAR))
            tok++;
        bool is_chunked = http1_token_eq(elem, tok, "chunked");
        /* After the coding name only parameters may follow; chunked takes none. */
        size_t rest = tok;
        while (rest < len && http1_is_ows(elem[rest]))
            rest++;
        if (tok == 0 || (rest < len && (elem[rest] != ';' || is_chunked)))
            c->is_malformed = true;
        c->count++;
        c->chunked += is_chunked;
        c->is_last_chunked = is_chunked;
    }
}

/* RFC 9112 §6.1: chunked must be final and applied once; we decode no other coding. */
static int check_codings(const struct codings *c)
{
    if (c->is_malformed)
        return HTTP1_ERR_TE_BAD;
    if (!c->is_last_chunked)
        return HTTP1_ERR_TE_NOT_CHUNKED;
    if (c->chunked > 1)
        return HTTP1_ERR_TE_BAD;
    if (c->count > 1)
        return HTTP1_ERR_TE_UNSUPPORTED;
    return 0;
}

static void read_connection(struct http1_fields *f, const struct http1_header *h)
{
    const char *pos = h->value, *end = h->value + h->value_len, *tok;
    size_t len;
    while (http1_list_next(&pos, end, &tok, &len)) {
        if (http1_token_eq(tok, len, "close"))
            f->conn_close = true;
        else if (http1_token_eq(tok, len, "keep-alive"))
            f->conn_keep_alive = true;
        else if (http1_token_eq(tok, len, "upgrade"))
            f->conn_upgrade = true;
    }
}

static bool names_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        if ((a[i] | 0x20) != (b[i] | 0x20))
            return false;
    }
    return true;
}

/* Headers listed in Connection are hop-by-hop (RFC 9110 §7.6.1). Host and
 * Content-Length are never stripped that way: "Connection: content-length" would
 * otherwise make us forward a body without its framing. */
static void mark_connection_named(struct http1_header *headers, size_t n,
                                  const struct http1_header *conn)
{
    const char *pos = conn->value, *end = conn->value + conn->value_len, *tok;
    size_t len;
    while (http1_list_next(&pos, end, &tok, &len)) {
        for (size_t i = 0; i < n; i++) {
            struct http1_header *h = &headers[i];
            if (h->id == HTTP1_H_HOST || h->id == HTTP1_H_CONTENT_LENGTH)
                continue;
            if (names_equal(h->name, h->name_len, tok, len))
                h->flags |= HTTP1_HF_HOP_BY_HOP | HTTP1_HF_CONNECTION_NAMED;
        }
    }
}

static int check_host(struct http1_fields *f, const struct http1_header *h)
{
    if (f->has_host)
        return HTTP1_ERR_MULTIPLE_HOST;
    for (size_t i = 0; i < h->value_len; i++) {
        if (!http1_is((unsigned char)h->value[i], HTTP1_C_HOST))
            return HTTP1_ERR_BAD_HOST;
    }
    f->has_host = true;
    f->host = h;
    return 0;
}

static int read_field(struct http1_fields *f, struct codings *c, const struct http1_header *h)
{
    switch (h->id) {
    case HTTP1_H_HOST:
        return f->is_request ? check_host(f, h) : 0;
    case HTTP1_H_CONTENT_LENGTH:
        return merge_content_length(f, h);
    case HTTP1_H_TRANSFER_ENCODING:
        f->has_transfer_encoding = true;
        add_codings(c, h);
        return 0;
    case HTTP1_H_CONNECTION:
        read_connection(f, h);
        return 0;
    case HTTP1_H_UPGRADE:
        if (!f->upgrade)
            f->upgrade = h;
        return 0;
    case HTTP1_H_EXPECT:
        f->expect_continue |= http1_token_eq(h->value, h->value_len, "100-continue");
        return 0;
    default:
        return 0;
    }
}

int http1_derive_fields(struct http1_header *headers, size_t n, bool is_request,
                        int minor_version, struct http1_fields *out)
{
    struct codings c = { 0 };
    memset(out, 0, sizeof(*out));
    out->is_request = is_request;
    out->minor_version = minor_version;
    for (size_t i = 0; i < n; i++) {
        int rc = read_field(out, &c, &headers[i]);
        if (rc != 0)
            return rc;
    }
    if (out->has_transfer_encoding) {
        /* RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
         * framing; and with Content-Length as well it is the smuggling pattern. */
        if (minor_version == 0)
            return HTTP1_ERR_TE_IN_HTTP10;
        if (out->has_content_length)
            return HTTP1_ERR_CL_AND_TE;
        int rc = check_codings(&c);
        if (rc != 0)
            return rc;
    }
    if (is_request && minor_version == 1 && !out->has_host)
        return HTTP1_ERR_MISSING_HOST;
    for (size_t i = 0; i < n; i++) {
        if (headers[i].id == HTTP1_H_CONNECTION)
            mark_connection_named(headers, n, &headers[i]);
    }
    return 0;
}

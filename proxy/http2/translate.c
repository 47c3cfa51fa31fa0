/* HTTP/2 requests to HTTP/1.1 (RFC 9113 §8); responses go the other way in
 * translate_response.c. A request is checked whole before a byte of its head is
 * written, so a rejected one leaves nothing behind; the fields are walked in place
 * (twice: check, then write) and nothing is allocated for them. Character classes
 * are http1's, so both front ends accept the same bytes. */
#include "http2/translate.h"

#include <inttypes.h>
#include <string.h>

#include <event2/buffer.h>

#include "http/cookie.h"
#include "http1/internal.h"

/* What a (lower-case) field name means to the translation. */
enum field_kind {
    F_OTHER,
    F_HOST,
    F_TE,
    F_CONTENT_LENGTH,
    F_COOKIE,
    F_EXPECT,
    F_AUTHORIZATION,
    F_CONNECTION_SPECIFIC,  /* RFC 9113 §8.2.2: makes an HTTP/2 message malformed */
    F_FORWARDED_FOR,        /* the client's values go first in ferry's own */
    F_FERRY_SET,            /* ferry writes these; the client's never pass */
};

#define KIND(name, kind) { name, sizeof(name) - 1, kind }

static enum field_kind kind_of(const char *name, size_t len)
{
    static const struct { const char *name; size_t len; enum field_kind kind; } kinds[] = {
        KIND("host", F_HOST),
        KIND("te", F_TE),
        KIND("content-length", F_CONTENT_LENGTH),
        KIND("cookie", F_COOKIE),
        KIND("expect", F_EXPECT),
        KIND("authorization", F_AUTHORIZATION),
        KIND("connection", F_CONNECTION_SPECIFIC),
        KIND("keep-alive", F_CONNECTION_SPECIFIC),
        KIND("proxy-connection", F_CONNECTION_SPECIFIC),
        KIND("transfer-encoding", F_CONNECTION_SPECIFIC),
        KIND("upgrade", F_CONNECTION_SPECIFIC),
        KIND("x-forwarded-for", F_FORWARDED_FOR),
        KIND("x-forwarded-proto", F_FERRY_SET),
        KIND("x-forwarded-host", F_FERRY_SET),
        KIND("x-client-cert-subject", F_FERRY_SET),
        KIND("sec-websocket-key", F_FERRY_SET),    /* a WebSocket's: ferry's own */
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (kinds[i].len == len && memcmp(kinds[i].name, name, len) == 0)
            return kinds[i].kind;
    }
    return F_OTHER;
}

static const char *name_of(const nghttp2_nv *nv)
{
    return (const char *)nv->name;
}

static const char *value_of(const nghttp2_nv *nv)
{
    return (const char *)nv->value;
}

static bool is_pseudo(const nghttp2_nv *nv)
{
    return nv->namelen > 0 && nv->name[0] == ':';
}

static enum field_kind kind_of_nv(const nghttp2_nv *nv)
{
    return kind_of(name_of(nv), nv->namelen);
}

static bool is_token(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!http1_is((unsigned char)s[i], HTTP1_C_TCHAR))
            return false;
    }
    return len > 0;
}

/* RFC 9113 §8.2.1: a token, in lower case (HTTP/2 has no other spelling). */
static bool is_valid_name(const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (name[i] >= 'A' && name[i] <= 'Z')
            return false;
    }
    return is_token(name, len);
}

/* RFC 9113 §8.2.1 forbids NUL, CR, LF and surrounding whitespace. The other controls
 * RFC 9110 §5.5 lets a recipient reject, and ferry must: the value goes on into an
 * HTTP/1.1 head, and its backends may parse those no better than ferry would. */
static bool is_valid_value(const char *v, size_t len)
{
    if (len > 0 && (http1_is_ows(v[0]) || http1_is_ows(v[len - 1])))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!http1_is((unsigned char)v[i], HTTP1_C_FIELD))
            return false;
    }
    return true;
}

static bool is_host_byte(char c)
{
    return http1_is((unsigned char)c, HTTP1_C_HOST) && c != '[' && c != ']' && c != ':';
}

/* Where the uri-host of a[0..len) ends: after "[...]" or before the first ':'; 0 when
 * there is no valid host. */
static size_t host_end(const char *a, size_t len)
{
    if (len > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (!close || close == a + 1)
            return 0;
        for (const char *p = a + 1; p < close; p++) {
            if (!is_host_byte(*p) && *p != ':')
                return 0;
        }
        return (size_t)(close - a) + 1;
    }
    size_t n = 0;
    while (n < len && is_host_byte(a[n]))
        n++;
    return n;
}

/* uri-host [":" port] (RFC 3986 §3.2.2, RFC 9113 §8.3.1). Userinfo fails here: '@' is
 * no host byte. CONNECT's target must name the port (RFC 9113 §8.5). */
static bool is_valid_authority(const char *a, size_t len, bool needs_port)
{
    size_t n = host_end(a, len);
    if (n == 0)
        return false;
    if (n == len)
        return !needs_port;
    if (a[n] != ':' || (needs_port && n + 1 == len))
        return false;
    for (size_t i = n + 1; i < len; i++) {
        if (a[i] < '0' || a[i] > '9')
            return false;
    }
    return true;
}

/* origin-form, or "*" for OPTIONS (RFC 9113 §8.3.1), in the bytes an HTTP/1.1
 * request-target may have, since it becomes one. */
static bool is_valid_path(const char *p, size_t len, enum http1_method method)
{
    if (len == 1 && p[0] == '*')
        return method == HTTP1_METHOD_OPTIONS;
    if (len == 0 || p[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!http1_is((unsigned char)p[i], HTTP1_C_TARGET))
            return false;
    }
    return true;
}

static bool equal_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] | 0x20) : a[i];
        char y = b[i] >= 'A' && b[i] <= 'Z' ? (char)(b[i] | 0x20) : b[i];
        if (x != y)
            return false;
    }
    return true;
}

/* The header-list limits: 431 whatever else is wrong, since the front end may have
 * stopped keeping fields once the list grew too large. */
static int check_size(const nghttp2_nv *fields, size_t n, const struct http1_limits *lim)
{
    size_t bytes = 0, regular = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += h2_field_size(fields[i].namelen, fields[i].valuelen);
        if (bytes > lim->max_header_bytes)
            return H2_TRANSLATE_TOO_LARGE;
        regular += !is_pseudo(&fields[i]);
    }
    return regular > lim->max_headers ? H2_TRANSLATE_TOO_LARGE : 0;
}

/* What checking a request's fields found. */
struct request {
    const nghttp2_nv *method, *scheme, *authority, *path, *protocol, *host; /* borrowed */
    enum http1_method method_id;
    bool has_regular;
    bool has_content_length;
    uint64_t content_length;
    bool expect_continue;
};

static int read_pseudo(struct request *r, const nghttp2_nv *nv)
{
    static const char *const names[] = { ":method", ":scheme", ":authority", ":path",
                                         ":protocol" };
    const nghttp2_nv **slots[] = { &r->method, &r->scheme, &r->authority, &r->path,
                                   &r->protocol };
    if (r->has_regular)
        return H2_TRANSLATE_MALFORMED;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) != nv->namelen || memcmp(names[i], nv->name, nv->namelen) != 0)
            continue;
        if (*slots[i])
            return H2_TRANSLATE_MALFORMED;
        *slots[i] = nv;
        return 0;
    }
    /* :status, or anything else. */
    return H2_TRANSLATE_MALFORMED;
}

/* 1*DIGIT below 2^63 (it must fit an off_t); repeated fields must agree. */
static int merge_content_length(struct request *r, const char *v, size_t len)
{
    uint64_t n = 0;
    if (len == 0)
        return H2_TRANSLATE_MALFORMED;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned char)v[i] - '0';
        if (d > 9 || n > ((uint64_t)INT64_MAX - d) / 10)
            return H2_TRANSLATE_MALFORMED;
        n = n * 10 + d;
    }
    if (r->has_content_length && n != r->content_length)
        return H2_TRANSLATE_MALFORMED;
    r->has_content_length = true;
    r->content_length = n;
    return 0;
}

static int read_regular(struct request *r, const nghttp2_nv *nv)
{
    const char *v = value_of(nv);
    r->has_regular = true;
    if (!is_valid_name(name_of(nv), nv->namelen))
        return H2_TRANSLATE_MALFORMED;
    switch (kind_of_nv(nv)) {
    case F_CONNECTION_SPECIFIC:
        return H2_TRANSLATE_MALFORMED;
    case F_TE:
        return http1_token_eq(v, nv->valuelen, "trailers") ? 0 : H2_TRANSLATE_MALFORMED;
    case F_CONTENT_LENGTH:
        return merge_content_length(r, v, nv->valuelen);
    case F_HOST:
        if (r->host)
            return H2_TRANSLATE_MALFORMED;
        r->host = nv;
        return 0;
    case F_EXPECT:
        r->expect_continue |= http1_token_eq(v, nv->valuelen, "100-continue");
        return 0;
    default:
        return 0;
    }
}

static int read_fields(struct request *r, const nghttp2_nv *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const nghttp2_nv *nv = &fields[i];
        if (!is_valid_value(value_of(nv), nv->valuelen))
            return H2_TRANSLATE_MALFORMED;
        int rc = is_pseudo(nv) ? read_pseudo(r, nv) : read_regular(r, nv);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* RFC 9113 §8.3.1 (§8.5 for CONNECT): which pseudo-headers a request must have. */
static int check_pseudo(struct request *r)
{
    if (!r->method || !is_token(value_of(r->method), r->method->valuelen))
        return H2_TRANSLATE_MALFORMED;
    r->method_id = http1_method_id(value_of(r->method), r->method->valuelen);
    if (r->protocol && r->method_id != HTTP1_METHOD_CONNECT)
        return H2_TRANSLATE_MALFORMED;
    if (r->protocol && !r->authority)   /* RFC 8441 §4; :scheme and :path below */
        return H2_TRANSLATE_MALFORMED;
    if (r->method_id == HTTP1_METHOD_CONNECT && !r->protocol) {
        if (r->scheme || r->path || !r->authority)
            return H2_TRANSLATE_MALFORMED;
        return is_valid_authority(value_of(r->authority), r->authority->valuelen, true)
                   ? 0 : H2_TRANSLATE_MALFORMED;
    }
    if (!r->scheme || !r->path
        || !is_valid_path(value_of(r->path), r->path->valuelen,
                          r->protocol ? HTTP1_METHOD_GET : r->method_id))
        return H2_TRANSLATE_MALFORMED;
    if (r->authority && !is_valid_authority(value_of(r->authority), r->authority->valuelen, false))
        return H2_TRANSLATE_MALFORMED;
    return 0;
}

/* The host field must say what :authority says, or stand in for it validly. */
static int check_host(const struct request *r)
{
    const nghttp2_nv *h = r->host;
    if (!h)
        return 0;
    const nghttp2_nv *a = r->authority;
    if (a)
        return equal_nocase(value_of(h), h->valuelen, value_of(a), a->valuelen)
                   ? 0 : H2_TRANSLATE_MALFORMED;
    return is_valid_authority(value_of(h), h->valuelen, false) ? 0 : H2_TRANSLATE_MALFORMED;
}

/* Extended CONNECT (RFC 8441) stands for an HTTP/1.1 upgrade, which ferry makes
 * for WebSocket only. */
static int check_protocol(const struct request *r)
{
    if (!r->protocol)
        return 0;
    return http1_token_eq(value_of(r->protocol), r->protocol->valuelen, "websocket")
               ? 0 : H2_TRANSLATE_UNSUPPORTED;
}

static int check_request(struct request *r, const nghttp2_nv *fields, size_t n, bool end_stream)
{
    int rc = read_fields(r, fields, n);
    if (rc == 0)
        rc = check_pseudo(r);
    if (rc == 0)
        rc = check_host(r);
    /* RFC 9113 §8.1.1: the length must match the DATA, and there is none. */
    if (rc == 0 && end_stream && r->has_content_length && r->content_length > 0)
        rc = H2_TRANSLATE_MALFORMED;
    if (rc == 0)
        rc = check_protocol(r);
    return rc;
}

/* Methods whose requests need no framing when they have no content. */
static bool is_bodiless_by_default(enum http1_method m)
{
    return m == HTTP1_METHOD_GET || m == HTTP1_METHOD_HEAD || m == HTTP1_METHOD_DELETE
           || m == HTTP1_METHOD_OPTIONS || m == HTTP1_METHOD_TRACE;
}

static enum http1_body_kind framing_of(const struct request *r, bool end_stream)
{
    if (r->protocol)
        return HTTP1_BODY_UNTIL_CLOSE;  /* a WebSocket's bytes, after the upgrade */
    if (r->method_id == HTTP1_METHOD_CONNECT)
        return HTTP1_BODY_NONE; /* its DATA are the tunnel's bytes, not a body */
    if (r->has_content_length)
        return HTTP1_BODY_LENGTH;
    if (!end_stream)
        return HTTP1_BODY_CHUNKED;
    return is_bodiless_by_default(r->method_id) ? HTTP1_BODY_NONE : HTTP1_BODY_LENGTH;
}

static void fill_info(const struct request *r, bool end_stream, struct h2_request_info *info)
{
    const nghttp2_nv *authority = r->authority ? r->authority : r->host;
    info->is_websocket = r->protocol != NULL;
    info->method_id = info->is_websocket ? HTTP1_METHOD_GET : r->method_id;
    info->method = info->is_websocket ? "GET" : value_of(r->method);
    info->method_len = info->is_websocket ? 3 : r->method->valuelen;
    info->path = r->path ? value_of(r->path) : NULL;
    info->path_len = r->path ? r->path->valuelen : 0;
    info->authority = authority ? value_of(authority) : NULL;
    info->authority_len = authority ? authority->valuelen : 0;
    info->body = framing_of(r, end_stream);
    /* a WebSocket's bytes are no body, whatever a content-length said */
    info->content_length = r->has_content_length && !info->is_websocket ? r->content_length : 0;
    info->expect_continue = r->expect_continue;
}

static int add_str(struct evbuffer *out, const char *s)
{
    return evbuffer_add(out, s, strlen(s));
}

struct piece {
    const char *text;
    size_t len;
};

/* The pieces of one line, joined on the stack when it is short: an evbuffer_add costs
 * more than copying a short piece. */
static int add_pieces(struct evbuffer *out, const struct piece *pieces, size_t n)
{
    char line[512];
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += pieces[i].len;
    if (len > sizeof line) {
        for (size_t i = 0; i < n; i++)
            if (evbuffer_add(out, pieces[i].text, pieces[i].len) < 0)
                return -1;
        return 0;
    }
    for (size_t i = 0, at = 0; i < n; at += pieces[i].len, i++)
        memcpy(line + at, pieces[i].text, pieces[i].len);
    return evbuffer_add(out, line, len);
}

/* "name: value\r\n" */
static int add_line(struct evbuffer *out, const char *name, size_t name_len, const char *value,
                    size_t value_len)
{
    const struct piece line[] = { { name, name_len }, { ": ", 2 }, { value, value_len },
                                  { "\r\n", 2 } };
    return add_pieces(out, line, sizeof line / sizeof line[0]);
}

/* CONNECT has no :path; its target is the authority (RFC 9112 §3.2.3). */
static int add_request_line(struct evbuffer *out, const struct h2_request_info *info)
{
    static const char version[] = " HTTP/1.1\r\n";
    const struct piece line[] = {
        { info->method, info->method_len },
        { " ", 1 },
        { info->path ? info->path : info->authority,
          info->path ? info->path_len : info->authority_len },
        { version, sizeof version - 1 },
    };
    return add_pieces(out, line, sizeof line / sizeof line[0]);
}

static int add_host(struct evbuffer *out, const struct h2_request_info *info,
                    const struct http_request_rewrite *rw)
{
    if (info->authority)
        return add_line(out, "Host", 4, info->authority, info->authority_len);
    return rw->default_host ? add_line(out, "Host", 4, rw->default_host, strlen(rw->default_host))
                            : 0;
}

/* The cookie pairs of crumb nv, without the one named strip (NULL: all of it), each
 * after *sep; out NULL: only counted. -1 when out could not grow. */
static int add_crumb(struct evbuffer *out, const nghttp2_nv *nv, const char *strip,
                     const char **sep)
{
    if (strip)
        return http_cookie_append_without(out, value_of(nv), nv->valuelen, strip, sep);
    if (out && (add_str(out, *sep) < 0 || evbuffer_add(out, value_of(nv), nv->valuelen) < 0))
        return -1;
    *sep = "; ";
    return 1;
}

/* RFC 9113 §8.2.3: the crumbs from `from` on become one field again for HTTP/1.1
 * (without the cookie `strip`; no field when nothing is left). */
static int add_cookie(struct evbuffer *out, const nghttp2_nv *from, size_t n, const char *strip)
{
    const char *sep = "";
    int pairs = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_pseudo(&from[i]) && kind_of_nv(&from[i]) == F_COOKIE)
            pairs += add_crumb(NULL, &from[i], strip, &sep);
    if (pairs == 0)
        return 0;
    sep = "";
    if (add_str(out, "cookie: ") < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!is_pseudo(&from[i]) && kind_of_nv(&from[i]) == F_COOKIE &&
            add_crumb(out, &from[i], strip, &sep) < 0)
            return -1;
    return evbuffer_add(out, "\r\n", 2);
}

/* The fields that pass as they are, the cookie crumbs joined where the first was. */
static int add_fields(struct evbuffer *out, const nghttp2_nv *fields, size_t n,
                      const char *strip_cookie)
{
    bool has_cookie = false;
    for (size_t i = 0; i < n; i++) {
        const nghttp2_nv *nv = &fields[i];
        if (is_pseudo(nv))
            continue;
        int rc = 0;
        switch (kind_of_nv(nv)) {
        case F_COOKIE:
            if (!has_cookie)
                rc = add_cookie(out, nv, n - i, strip_cookie);
            has_cookie = true;
            break;
        case F_OTHER:
        case F_EXPECT:
        case F_AUTHORIZATION:
            rc = add_line(out, name_of(nv), nv->namelen, value_of(nv), nv->valuelen);
            break;
        default: /* ferry writes these itself, from what it checked */
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Walks the x-forwarded-for fields of a header list for http_forward_add_proxy_fields. */
struct list_cursor {
    const nghttp2_nv *fields;
    size_t n, next;
};

static bool next_forwarded_for(void *ctx, const char **value, size_t *value_len)
{
    struct list_cursor *c = ctx;
    while (c->next < c->n) {
        const nghttp2_nv *nv = &c->fields[c->next++];
        if (!is_pseudo(nv) && kind_of_nv(nv) == F_FORWARDED_FOR) {
            *value = value_of(nv);
            *value_len = nv->valuelen;
            return true;
        }
    }
    return false;
}

/* RFC 6455 §4.1: what makes the request a WebSocket upgrade for the backend. */
static int add_upgrade(struct evbuffer *out, const struct http_request_rewrite *rw)
{
    if (!rw->websocket_key)
        return -1;
    const struct piece key[] = { { "Sec-WebSocket-Key: ", 19 },
                                 { rw->websocket_key, strlen(rw->websocket_key) },
                                 { "\r\n", 2 } };
    if (add_str(out, "Connection: Upgrade\r\nUpgrade: websocket\r\n") < 0)
        return -1;
    return add_pieces(out, key, sizeof key / sizeof key[0]);
}

static int add_framing(struct evbuffer *out, const struct h2_request_info *info)
{
    if (info->body == HTTP1_BODY_LENGTH)
        return evbuffer_add_printf(out, "Content-Length: %" PRIu64 "\r\n", info->content_length) < 0
                   ? -1 : 0;
    return info->body == HTTP1_BODY_CHUNKED ? add_str(out, "Transfer-Encoding: chunked\r\n") : 0;
}

static int add_request_head(struct evbuffer *out, const nghttp2_nv *fields, size_t n,
                            const struct h2_request_info *info,
                            const struct http_request_rewrite *rw)
{
    struct list_cursor cursor = { fields, n, 0 };
    const struct http_forwarded_for prior = { next_forwarded_for, &cursor };
    if (add_request_line(out, info) < 0 || add_host(out, info, rw) < 0
        || add_fields(out, fields, n, rw->strip_cookie) < 0
        || http_forward_add_proxy_fields(out, &prior, info->authority, info->authority_len, rw) < 0
        || (info->is_websocket && add_upgrade(out, rw) < 0)
        || add_framing(out, info) < 0)
        return -1;
    return evbuffer_add(out, "\r\n", 2);
}

int h2_translate_request(const nghttp2_nv *fields, size_t n_fields, bool end_stream,
                         const struct http1_limits *lim,
                         const struct http_request_rewrite *rw, struct evbuffer *head,
                         struct h2_request_info *info)
{
    struct request r = { 0 };
    int rc = check_size(fields, n_fields, lim);
    if (rc == 0)
        rc = check_request(&r, fields, n_fields, end_stream);
    if (rc == 0 && r.path && r.path->valuelen > lim->max_target_bytes)
        rc = H2_TRANSLATE_TARGET_TOO_LONG;
    if (rc != 0)
        return rc;
    fill_info(&r, end_stream, info);
    if (!head)
        return 0;
    return add_request_head(head, fields, n_fields, info, rw) < 0 ? H2_TRANSLATE_NO_MEMORY : 0;
}

int h2_translate_request_head(const nghttp2_nv *fields, size_t n_fields,
                              const struct h2_request_info *info,
                              const struct http_request_rewrite *rw, struct evbuffer *head)
{
    return add_request_head(head, fields, n_fields, info, rw) < 0 ? H2_TRANSLATE_NO_MEMORY : 0;
}

static int check_trailer_field(const nghttp2_nv *nv)
{
    if (is_pseudo(nv) || !is_valid_name(name_of(nv), nv->namelen)
        || !is_valid_value(value_of(nv), nv->valuelen))
        return H2_TRANSLATE_MALFORMED;
    return kind_of_nv(nv) == F_CONNECTION_SPECIFIC ? H2_TRANSLATE_MALFORMED : 0;
}

/* RFC 9110 §6.5.1: framing, routing, authentication and what ferry sets itself have
 * no place in trailers; a backend that merged them into the head would trust them. */
static bool is_kept_in_trailers(const nghttp2_nv *nv)
{
    static const char forwarded[] = "x-forwarded-";
    if (nv->namelen >= sizeof(forwarded) - 1
        && memcmp(nv->name, forwarded, sizeof(forwarded) - 1) == 0)
        return false;
    switch (kind_of_nv(nv)) {
    case F_OTHER:
    case F_EXPECT:
        return true;
    default:
        return false;
    }
}

int h2_translate_request_trailers(const nghttp2_nv *fields, size_t n_fields,
                                  const struct http1_limits *lim, struct evbuffer *out)
{
    int rc = check_size(fields, n_fields, lim);
    for (size_t i = 0; i < n_fields && rc == 0; i++)
        rc = check_trailer_field(&fields[i]);
    if (rc != 0)
        return rc;
    if (evbuffer_add(out, "0\r\n", 3) < 0)
        return H2_TRANSLATE_NO_MEMORY;
    for (size_t i = 0; i < n_fields; i++) {
        const nghttp2_nv *nv = &fields[i];
        if (is_kept_in_trailers(nv)
            && add_line(out, name_of(nv), nv->namelen, value_of(nv), nv->valuelen) < 0)
            return H2_TRANSLATE_NO_MEMORY;
    }
    return evbuffer_add(out, "\r\n", 2) < 0 ? H2_TRANSLATE_NO_MEMORY : 0;
}

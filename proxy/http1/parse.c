/* Head parsing: request line, status line and header fields, in place.
 *
 * Each call re-parses from the start of the buffer (picohttpparser style) and stops at
 * the first violation. Running out of bytes anywhere yields HTTP1_INCOMPLETE, or a
 * size error when the window max_header_bytes is already full, so a prefix never
 * produces an answer the whole message would not. */
#include "http1/internal.h"

#include <limits.h>
#include <string.h>

struct scan {
    const char *p;   /* cursor */
    const char *end; /* window end: buf + min(len, max_header_bytes) */
    bool is_full;    /* the window is capped: running out means the head is too large */
};

static void scan_init(struct scan *s, const char *buf, size_t len, size_t max)
{
    if (max > INT_MAX)
        max = INT_MAX; /* the consumed count is returned as an int */
    s->p = buf;
    s->is_full = len >= max;
    s->end = buf + (s->is_full ? max : len);
}

static int need_more(const struct scan *s)
{
    return s->is_full ? HTTP1_ERR_HEAD_TOO_LARGE : HTTP1_INCOMPLETE;
}

/* Consumes CRLF; other_err when the byte at the cursor is neither CR nor LF. */
static int expect_crlf(struct scan *s, int other_err)
{
    if (s->p == s->end)
        return need_more(s);
    if (*s->p == '\n')
        return HTTP1_ERR_BARE_LF;
    if (*s->p != '\r')
        return other_err;
    if (s->p + 1 == s->end)
        return need_more(s);
    if (s->p[1] != '\n')
        return HTTP1_ERR_BARE_CR;
    s->p += 2;
    return 0;
}

/* "HTTP/" DIGIT "." DIGIT; *is_supported when it is 1.0 or 1.1. */
static int parse_version(struct scan *s, int *minor, bool *is_supported)
{
    static const char prefix[] = "HTTP/x.x";
    for (size_t i = 0; i < sizeof(prefix) - 1; i++) {
        if (s->p + i == s->end)
            return need_more(s);
        char c = s->p[i];
        bool ok = prefix[i] == 'x' ? (c >= '0' && c <= '9') : c == prefix[i];
        if (!ok)
            return HTTP1_ERR_BAD_VERSION;
    }
    *minor = s->p[7] - '0';
    *is_supported = s->p[5] == '1' && *minor <= 1;
    s->p += sizeof(prefix) - 1;
    return 0;
}

enum http1_method http1_method_id(const char *m, size_t len)
{
    static const struct { const char *name; enum http1_method id; } methods[] = {
        { "GET", HTTP1_METHOD_GET },         { "HEAD", HTTP1_METHOD_HEAD },
        { "POST", HTTP1_METHOD_POST },       { "PUT", HTTP1_METHOD_PUT },
        { "DELETE", HTTP1_METHOD_DELETE },   { "OPTIONS", HTTP1_METHOD_OPTIONS },
        { "PATCH", HTTP1_METHOD_PATCH },     { "CONNECT", HTTP1_METHOD_CONNECT },
        { "TRACE", HTTP1_METHOD_TRACE },
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        /* Methods are case-sensitive (RFC 9110 §9.1). */
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, m, len) == 0)
            return methods[i].id;
    }
    return HTTP1_METHOD_OTHER;
}

static bool is_alpha(char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* scheme "://" authority ...; scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static bool is_absolute_form(const char *t, size_t len)
{
    size_t i = 1;
    if (!is_alpha(t[0]))
        return false;
    while (i < len && (is_alpha(t[i]) || (t[i] >= '0' && t[i] <= '9') || t[i] == '+'
                       || t[i] == '-' || t[i] == '.'))
        i++;
    return len - i > 3 && memcmp(t + i, "://", 3) == 0;
}

static bool is_authority_form(const char *t, size_t len)
{
    bool has_colon = false;
    for (size_t i = 0; i < len; i++) {
        if (!http1_is((unsigned char)t[i], HTTP1_C_HOST))
            return false;
        has_colon |= t[i] == ':';
    }
    return has_colon && t[0] != ':';
}

/* An absolute-form target (RFC 9112 §3.2.2) names the host itself, which replaces
 * Host: "http" or "https" (any case; other schemes mean nothing to an HTTP origin),
 * "://", a non-empty authority up to the first '/', '?' or the end, then the path and
 * query. Userinfo ("user@") is an error (RFC 9110 §4.2.4): '@' is no host byte. */
static int split_absolute(struct http1_request *req)
{
    const char *t = req->target, *end = t + req->target_len;
    const char *colon = memchr(t, ':', req->target_len);    /* "://": is_absolute_form */
    size_t scheme_len = (size_t)(colon - t);
    if (!http1_token_eq(t, scheme_len, "http") && !http1_token_eq(t, scheme_len, "https"))
        return HTTP1_ERR_BAD_TARGET;
    const char *authority = colon + 3, *p = authority;
    for (; p < end && *p != '/' && *p != '?'; p++) {
        if (!http1_is((unsigned char)*p, HTTP1_C_HOST))
            return HTTP1_ERR_BAD_TARGET;
    }
    if (p == authority)
        return HTTP1_ERR_BAD_TARGET;
    req->host = authority;
    req->host_len = (size_t)(p - authority);
    req->path = p;
    req->path_len = (size_t)(end - p);
    return 0;
}

/* RFC 9112 §3.2: the form must fit the method. */
static int classify_target(struct http1_request *req)
{
    const char *t = req->target;
    size_t len = req->target_len;
    req->path = t;
    req->path_len = len;
    if (req->method_id == HTTP1_METHOD_CONNECT) {
        req->target_form = HTTP1_TARGET_AUTHORITY;
        return is_authority_form(t, len) ? 0 : HTTP1_ERR_BAD_TARGET;
    }
    if (t[0] == '/') {
        req->target_form = HTTP1_TARGET_ORIGIN;
        return 0;
    }
    if (len == 1 && t[0] == '*' && req->method_id == HTTP1_METHOD_OPTIONS) {
        req->target_form = HTTP1_TARGET_ASTERISK;
        return 0;
    }
    if (is_absolute_form(t, len)) {
        req->target_form = HTTP1_TARGET_ABSOLUTE;
        return split_absolute(req);
    }
    return HTTP1_ERR_BAD_TARGET;
}

/* Empty lines before a request line are ignored (RFC 9112 §2.2). */
static int skip_empty_lines(struct scan *s)
{
    while (s->p < s->end && (*s->p == '\r' || *s->p == '\n')) {
        int rc = expect_crlf(s, 0);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int parse_method(struct scan *s, struct http1_request *req)
{
    const char *start = s->p;
    while (s->p < s->end && http1_is((unsigned char)*s->p, HTTP1_C_TCHAR))
        s->p++;
    if (s->p == s->end)
        return need_more(s);
    if (s->p == start || (*s->p != ' ' && *s->p != '\r' && *s->p != '\n'))
        return HTTP1_ERR_BAD_METHOD;
    if (*s->p != ' ')
        return HTTP1_ERR_BAD_REQUEST_LINE;
    req->method = start;
    req->method_len = (size_t)(s->p - start);
    req->method_id = http1_method_id(start, req->method_len);
    s->p++;
    return 0;
}

static int parse_target(struct scan *s, const struct http1_limits *lim,
                        struct http1_request *req)
{
    const char *start = s->p;
    while (s->p < s->end && http1_is((unsigned char)*s->p, HTTP1_C_TARGET))
        s->p++;
    size_t len = (size_t)(s->p - start);
    /* A request line that fills the window is most likely a huge URI: say 414. */
    if (len > lim->max_target_bytes || (s->p == s->end && s->is_full))
        return HTTP1_ERR_TARGET_TOO_LONG;
    if (s->p == s->end)
        return HTTP1_INCOMPLETE;
    char c = *s->p;
    if (c != ' ' && c != '\r' && c != '\n')
        return HTTP1_ERR_BAD_TARGET;
    if (c != ' ' || len == 0)
        return HTTP1_ERR_BAD_REQUEST_LINE;
    req->target = start;
    req->target_len = len;
    s->p++;
    return classify_target(req);
}

static int parse_request_line(struct scan *s, const struct http1_limits *lim,
                              struct http1_request *req)
{
    bool is_supported;
    int rc = skip_empty_lines(s);
    if (rc == 0)
        rc = parse_method(s, req);
    if (rc == 0)
        rc = parse_target(s, lim, req);
    if (rc == 0)
        rc = parse_version(s, &req->minor_version, &is_supported);
    if (rc == 0)
        rc = expect_crlf(s, HTTP1_ERR_BAD_REQUEST_LINE);
    /* cppcheck-suppress uninitvar ; parse_version() sets it whenever it returns 0 */
    if (rc == 0 && !is_supported)
        rc = HTTP1_ERR_VERSION_UNSUPPORTED;
    return rc;
}

/* After a name, whitespace then ':' is the classic smuggling trick; anything else
 * there just means the name is not a token. */
static int bad_name_end(const struct scan *s, const char *name)
{
    if (s->p == name || !http1_is_ows(*s->p))
        return HTTP1_ERR_BAD_HEADER_NAME;
    const char *q = s->p;
    while (q < s->end && http1_is_ows(*q))
        q++;
    if (q == s->end)
        return need_more(s);
    return *q == ':' ? HTTP1_ERR_SPACE_BEFORE_COLON : HTTP1_ERR_BAD_HEADER_NAME;
}

static int value_end_error(const struct scan *s)
{
    switch (*s->p) {
    case '\0': return HTTP1_ERR_NUL;
    case '\n': return HTTP1_ERR_BARE_LF;
    case '\r': return s->p + 1 == s->end ? need_more(s) : HTTP1_ERR_BARE_CR;
    default: return HTTP1_ERR_BAD_HEADER_VALUE;
    }
}

/* field-line = field-name ":" OWS field-value OWS CRLF */
static int parse_field(struct scan *s, struct http1_header *h)
{
    const char *name = s->p;
    while (s->p < s->end && http1_is((unsigned char)*s->p, HTTP1_C_TCHAR))
        s->p++;
    if (s->p == s->end)
        return need_more(s);
    if (*s->p != ':' || s->p == name)
        return bad_name_end(s, name);
    h->name = name;
    h->name_len = (size_t)(s->p - name);
    s->p++;
    while (s->p < s->end && http1_is_ows(*s->p))
        s->p++;
    const char *value = s->p;
    while (s->p < s->end && http1_is((unsigned char)*s->p, HTTP1_C_FIELD))
        s->p++;
    if (s->p == s->end)
        return need_more(s);
    if (*s->p != '\r' || s->p + 1 == s->end || s->p[1] != '\n')
        return value_end_error(s);
    const char *vend = s->p;
    while (vend > value && http1_is_ows(vend[-1]))
        vend--;
    h->value = value;
    h->value_len = (size_t)(vend - value);
    s->p += 2;
    http1_classify_header(h);
    return 0;
}

/* Header lines up to and including the blank line. */
static int parse_fields(struct scan *s, const struct http1_limits *lim,
                        struct http1_header *headers, size_t *num)
{
    *num = 0;
    for (;;) {
        if (s->p == s->end)
            return need_more(s);
        char c = *s->p;
        if (c == '\r' || c == '\n')
            return expect_crlf(s, 0);
        /* Also rejects whitespace between the start line and the first field
         * (RFC 9112 §2.2), which some servers glue to the start line. */
        if (http1_is_ows(c))
            return HTTP1_ERR_OBS_FOLD;
        if (*num == lim->max_headers)
            return HTTP1_ERR_TOO_MANY_HEADERS;
        int rc = parse_field(s, &headers[*num]);
        if (rc != 0)
            return rc;
        (*num)++;
    }
}

static void apply_request_fields(struct http1_request *req, const struct http1_fields *f)
{
    bool is_11 = req->minor_version == 1;
    req->has_host = f->has_host;
    if (f->host && req->target_form != HTTP1_TARGET_ABSOLUTE) {
        req->host = f->host->value;
        req->host_len = f->host->value_len;
    }
    req->has_content_length = f->has_content_length;
    req->content_length = f->content_length;
    if (f->has_transfer_encoding)
        req->body = HTTP1_BODY_CHUNKED;
    else if (f->has_content_length)
        req->body = HTTP1_BODY_LENGTH;
    else
        req->body = HTTP1_BODY_NONE;
    req->keep_alive = !f->conn_close && (is_11 || f->conn_keep_alive);
    /* Upgrade and Expect are HTTP/1.1 features; 1.0 requests must have them ignored
     * (RFC 9110 §7.8, §10.1.1). */
    req->is_upgrade = is_11 && f->upgrade && f->conn_upgrade;
    if (req->is_upgrade) {
        req->upgrade = f->upgrade->value;
        req->upgrade_len = f->upgrade->value_len;
    }
    req->expect_continue = is_11 && f->expect_continue;
}

int http1_parse_request(const char *buf, size_t len, const struct http1_limits *lim,
                        struct http1_request *req)
{
    struct http1_header *headers = req->headers;
    struct http1_fields f;
    struct scan s;

    memset(req, 0, sizeof(*req));
    req->headers = headers;
    scan_init(&s, buf, len, lim->max_header_bytes);
    int rc = parse_request_line(&s, lim, req);
    if (rc == 0)
        rc = parse_fields(&s, lim, headers, &req->num_headers);
    if (rc == 0)
        rc = http1_derive_fields(headers, req->num_headers, true, req->minor_version, &f);
    if (rc == 0 && lim->max_body_bytes && f.has_content_length
        && f.content_length > lim->max_body_bytes)
        rc = HTTP1_ERR_BODY_TOO_LARGE;
    if (rc != 0)
        return rc;
    apply_request_fields(req, &f);
    return (int)(s.p - buf);
}

/* status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF. Servers that drop
 * the SP before an empty reason are accepted: the reason carries no meaning. */
static int parse_status_line(struct scan *s, struct http1_response *resp)
{
    bool is_supported;
    int rc = parse_version(s, &resp->minor_version, &is_supported);
    if (rc != 0)
        return rc;
    for (int i = 0; i < 4; i++) {
        if (s->p + i == s->end)
            return need_more(s);
        char c = s->p[i];
        bool ok = i == 0 ? c == ' ' : (c >= '0' && c <= '9');
        if (!ok)
            return HTTP1_ERR_BAD_STATUS_LINE;
    }
    resp->status = (s->p[1] - '0') * 100 + (s->p[2] - '0') * 10 + (s->p[3] - '0');
    s->p += 4;
    if (resp->status < 100 || resp->status > 599)
        return HTTP1_ERR_BAD_STATUS_LINE;
    if (s->p < s->end && *s->p == ' ')
        s->p++;
    else if (s->p < s->end && *s->p != '\r' && *s->p != '\n')
        return HTTP1_ERR_BAD_STATUS_LINE;
    resp->reason = s->p;
    while (s->p < s->end && http1_is((unsigned char)*s->p, HTTP1_C_FIELD))
        s->p++;
    resp->reason_len = (size_t)(s->p - resp->reason);
    if (s->p < s->end && *s->p == '\0')
        return HTTP1_ERR_NUL;
    rc = expect_crlf(s, HTTP1_ERR_BAD_STATUS_LINE);
    if (rc == 0 && !is_supported)
        rc = HTTP1_ERR_VERSION_UNSUPPORTED;
    return rc;
}

/* RFC 9112 §6.3, in order; Transfer-Encoding errors were raised already. */
static enum http1_body_kind response_body(const struct http1_response *resp,
                                          enum http1_method req_method,
                                          const struct http1_fields *f)
{
    int st = resp->status;
    if (req_method == HTTP1_METHOD_HEAD || st < 200 || st == 204 || st == 304)
        return HTTP1_BODY_NONE;
    if (req_method == HTTP1_METHOD_CONNECT && st < 300)
        return HTTP1_BODY_NONE;
    if (f->has_transfer_encoding)
        return HTTP1_BODY_CHUNKED;
    if (f->has_content_length)
        return HTTP1_BODY_LENGTH;
    return HTTP1_BODY_UNTIL_CLOSE;
}

int http1_parse_response(const char *buf, size_t len, const struct http1_limits *lim,
                         enum http1_method req_method, struct http1_response *resp)
{
    struct http1_header *headers = resp->headers;
    struct http1_fields f;
    struct scan s;

    memset(resp, 0, sizeof(*resp));
    resp->headers = headers;
    scan_init(&s, buf, len, lim->max_header_bytes);
    int rc = parse_status_line(&s, resp);
    if (rc == 0)
        rc = parse_fields(&s, lim, headers, &resp->num_headers);
    if (rc == 0)
        rc = http1_derive_fields(headers, resp->num_headers, false, resp->minor_version, &f);
    if (rc != 0)
        return rc;
    resp->has_content_length = f.has_content_length;
    resp->content_length = f.content_length;
    resp->body = response_body(resp, req_method, &f);
    resp->is_interim = resp->status < 200 && resp->status != 101;
    resp->is_upgrade = resp->status == 101;
    resp->keep_alive = !f.conn_close && (resp->minor_version == 1 || f.conn_keep_alive)
                       && resp->body != HTTP1_BODY_UNTIL_CLOSE && !resp->is_upgrade;
    return (int)(s.p - buf);
}

bool http1_head_ready(const char *buf, size_t len, size_t prev_len, size_t max_header_bytes)
{
    /* The first bytes are parsed at once so that garbage (a TLS ClientHello on a
     * plain port) is refused without waiting for a line end. */
    if (prev_len == 0 || len >= max_header_bytes)
        return true;
    size_t i = prev_len > 3 ? prev_len - 3 : 0;
    for (; i < len; i++) {
        const char *lf = memchr(buf + i, '\n', len - i);
        if (!lf)
            return false;
        i = (size_t)(lf - buf);
        if (i == 0 || buf[i - 1] != '\r')
            return true; /* bare LF: let the parser report it */
        if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return true;
    }
    return false;
}

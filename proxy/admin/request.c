#include "admin/request.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "http1/parse.h"

struct route {
    const char *path;
    enum admin_endpoint endpoint;
    enum http1_method method;
    const char *allow;
};

static const struct route routes[] = {
    { "/status", ADMIN_STATUS, HTTP1_METHOD_GET, "GET" },
    { "/metrics", ADMIN_METRICS, HTTP1_METHOD_GET, "GET" },
    { "/reload", ADMIN_RELOAD, HTTP1_METHOD_POST, "POST" },
    { "/healthz", ADMIN_HEALTHZ, HTTP1_METHOD_GET, "GET" },
    { "/config", ADMIN_CONFIG, HTTP1_METHOD_GET, "GET" },
};

static int refuse(struct admin_request *out, int status, const char *error)
{
    out->endpoint = ADMIN_NONE;
    out->status = status;
    out->error = error;
    return 1;
}

/* Constant time in the token, so that timing tells nothing of it. */
static bool has_bearer_token(const struct http1_request *req, const char *token)
{
    size_t tlen = strlen(token);
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *h = &req->headers[i];
        if (http1_token_eq(h->name, h->name_len, "authorization") &&
            h->value_len == 7 + tlen && strncasecmp(h->value, "Bearer ", 7) == 0 &&
            CRYPTO_memcmp(h->value + 7, token, tlen) == 0)
            return true;
    }
    return false;
}

static const struct http1_header *header_of(const struct http1_request *req, const char *lower)
{
    for (size_t i = 0; i < req->num_headers; i++)
        if (http1_token_eq(req->headers[i].name, req->headers[i].name_len, lower))
            return &req->headers[i];
    return NULL;
}

/* The content types a page may POST anywhere without a CORS preflight (a <form>, or
 * fetch() with mode "no-cors"), compared up to their parameters. */
static bool is_form_type(const struct http1_header *h)
{
    static const char *const types[] = { "application/x-www-form-urlencoded",
                                         "multipart/form-data", "text/plain" };
    size_t len = h->value_len;
    const char *semi = memchr(h->value, ';', len);
    if (semi)
        len = (size_t)(semi - h->value);
    while (len > 0 && (h->value[len - 1] == ' ' || h->value[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strlen(types[i]) == len && strncasecmp(types[i], h->value, len) == 0)
            return true;
    return false;
}

/* Any web page can make a local browser POST to 127.0.0.1:9901. Such a request
 * carries Origin (browsers add it to every POST) or a form's content type, and never
 * an Authorization header it was not given; curl and scripts send neither. */
static bool is_cross_site_post(const struct http1_request *req)
{
    if (req->method_id != HTTP1_METHOD_POST || header_of(req, "authorization"))
        return false;
    const struct http1_header *type = header_of(req, "content-type");
    return header_of(req, "origin") || (type && is_form_type(type));
}

static bool value_is(const char *v, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(v, want, len) == 0;
}

/* The query of POST /reload: "dry_run=1" (or 0, true, false), nothing else. A
 * parameter that is not understood must not be ignored: 400. */
static const char *parse_reload_query(const char *q, size_t len, struct admin_request *out)
{
    const char *end = q + len;
    if (len == 0)
        return "unknown query parameter";
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *item_end = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(item_end - q));
        if (!eq || !value_is(q, (size_t)(eq - q), "dry_run"))
            return "unknown query parameter";
        const char *v = eq + 1;
        size_t vlen = (size_t)(item_end - v);
        if (value_is(v, vlen, "1") || value_is(v, vlen, "true"))
            out->dry_run = true;
        else if (value_is(v, vlen, "0") || value_is(v, vlen, "false"))
            out->dry_run = false;
        else
            return "dry_run must be 1 or 0";
        q = amp ? amp + 1 : end;
    }
    return NULL;
}

static const struct route backend_routes[] = {
    { "drain", ADMIN_DRAIN, HTTP1_METHOD_POST, "POST" },
    { "enable", ADMIN_ENABLE, HTTP1_METHOD_POST, "POST" },
};

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one path segment (no "/") into out; false when it is empty, too long, or
 * has a bad %XX or one that decodes to a NUL or "/". */
static bool decode_segment(const char *s, size_t len, char out[ADMIN_MAX_SEGMENT + 1])
{
    size_t n = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0) || (hi == 2 && lo == 15))
                return false;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (n == ADMIN_MAX_SEGMENT)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

/* "/pools/NAME/backends/ADDRESS/ACTION": the action's route, the segments into out. */
static const struct route *backend_route_of(const char *path, size_t len,
                                            struct admin_request *out)
{
    static const char pools[] = "/pools/", backends[] = "/backends/";
    const char *end = path + len;
    if (len < sizeof pools - 1 || memcmp(path, pools, sizeof pools - 1) != 0)
        return NULL;
    const char *name = path + sizeof pools - 1;
    const char *name_end = memchr(name, '/', (size_t)(end - name));
    if (!name_end || (size_t)(end - name_end) < sizeof backends - 1 ||
        memcmp(name_end, backends, sizeof backends - 1) != 0)
        return NULL;
    const char *backend = name_end + sizeof backends - 1;
    const char *backend_end = memchr(backend, '/', (size_t)(end - backend));
    if (!backend_end)
        return NULL;
    const char *action = backend_end + 1;
    for (size_t i = 0; i < sizeof backend_routes / sizeof backend_routes[0]; i++) {
        const struct route *r = &backend_routes[i];
        size_t len_action = strlen(r->path);
        if (len_action == (size_t)(end - action) && memcmp(r->path, action, len_action) == 0 &&
            decode_segment(name, (size_t)(name_end - name), out->pool) &&
            decode_segment(backend, (size_t)(backend_end - backend), out->backend))
            return r;
    }
    return NULL;
}

static const struct route *route_of(const char *path, size_t len, struct admin_request *out)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strlen(routes[i].path) == len && memcmp(routes[i].path, path, len) == 0)
            return &routes[i];
    return backend_route_of(path, len, out);
}

static int decide(const struct http1_request *req, const char *token, bool enabled,
                  struct admin_request *out)
{
    if (!enabled || (token && !has_bearer_token(req, token)))
        return refuse(out, 401, "unauthorized");
    const char *query = memchr(req->path, '?', req->path_len);
    size_t path_len = query ? (size_t)(query - req->path) : req->path_len;
    const struct route *r = route_of(req->path, path_len, out);
    if (!r)
        return refuse(out, 404, "not found");
    if (req->method_id != r->method) {
        out->allow = r->allow;
        return refuse(out, 405, r->method == HTTP1_METHOD_GET ? "use GET" : "use POST");
    }
    if (query) {
        const char *why = r->endpoint == ADMIN_RELOAD
                              ? parse_reload_query(query + 1, req->path_len - path_len - 1, out)
                              : "unknown query parameter";
        if (why) {
            out->dry_run = false;
            return refuse(out, 400, why);
        }
    }
    if (is_cross_site_post(req))
        return refuse(out, 403, "cross-site request refused: send Authorization or no Origin");
    out->endpoint = r->endpoint;
    out->status = 200;
    return 1;
}

int admin_request_decide(const char *buf, size_t len, const char *token, bool enabled,
                         struct admin_request *out)
{
    struct http1_header headers[ADMIN_MAX_HEADERS];
    struct http1_limits lim = { ADMIN_MAX_HEAD, ADMIN_MAX_HEADERS, ADMIN_MAX_TARGET, 0 };
    struct http1_request req = { .headers = headers };
    memset(out, 0, sizeof *out);
    int rc = http1_parse_request(buf, len < ADMIN_MAX_HEAD ? len : ADMIN_MAX_HEAD, &lim, &req);
    if (rc == HTTP1_INCOMPLETE)
        return len >= ADMIN_MAX_HEAD ? refuse(out, 431, http1_error_str(HTTP1_ERR_HEAD_TOO_LARGE)) : 0;
    if (rc < 0)
        return refuse(out, http1_error_status(rc) == 431 ? 431 : 400, http1_error_str(rc));
    if (req.target_form != HTTP1_TARGET_ORIGIN)
        return refuse(out, 400, "the target must be a path");
    return decide(&req, token, enabled, out);
}

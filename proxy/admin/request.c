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

static const struct route *route_of(const char *path, size_t len)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strlen(routes[i].path) == len && memcmp(routes[i].path, path, len) == 0)
            return &routes[i];
    return NULL;
}

static int decide(const struct http1_request *req, const char *token, bool enabled,
                  struct admin_request *out)
{
    if (!enabled || (token && !has_bearer_token(req, token)))
        return refuse(out, 401, "unauthorized");
    const char *query = memchr(req->path, '?', req->path_len);
    size_t path_len = query ? (size_t)(query - req->path) : req->path_len;
    const struct route *r = route_of(req->path, path_len);
    if (!r)
        return refuse(out, 404, "not found");
    if (req->method_id != r->method) {
        out->allow = r->allow;
        return refuse(out, 405, r->method == HTTP1_METHOD_GET ? "use GET" : "use POST");
    }
    if (query)
        return refuse(out, 400, "unknown query parameter");
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

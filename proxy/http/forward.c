#include "http/forward.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

/* Appends every header line i of headers[0..n) for which keep[i], copying each run
 * of consecutive kept lines as one span of the original head. */
static int add_kept_lines(struct evbuffer *out, const struct http1_header *headers, size_t n,
                          const bool *keep, const char *head, size_t head_len)
{
    /* A line runs from its name to the next line's name; the last one ends where the
     * blank line (the final CRLF of the head) starts. */
    const char *blank = head + head_len - 2;
    size_t run = n;     /* first line of the current run, n = none */
    for (size_t i = 0; i <= n; i++) {
        if (i < n && keep[i]) {
            if (run == n)
                run = i;
            continue;
        }
        if (run != n) {
            const char *from = headers[run].name;
            const char *to = i < n ? headers[i].name : blank;
            if (evbuffer_add(out, from, (size_t)(to - from)) < 0)
                return -1;
            run = n;
        }
    }
    return 0;
}

static int add_str(struct evbuffer *out, const char *s) { return evbuffer_add(out, s, strlen(s)); }

static bool keep_request_field(const struct http1_request *req, const struct http1_header *h)
{
    if (h->flags & HTTP1_HF_FRAMING)
        return false;
    if (h->id == HTTP1_H_UPGRADE && req->is_upgrade)
        return true;
    if (h->flags & HTTP1_HF_HOP_BY_HOP)
        return false;
    switch (h->id) {
    case HTTP1_H_HOST:      /* replaced by the target's authority */
        return req->target_form != HTTP1_TARGET_ABSOLUTE;
    case HTTP1_H_X_FORWARDED_FOR:
    case HTTP1_H_X_FORWARDED_PROTO:
    case HTTP1_H_X_FORWARDED_HOST:
    case HTTP1_H_X_CLIENT_CERT_SUBJECT:
        return false;
    case HTTP1_H_EXPECT:
        return req->minor_version == 1;
    default:
        return true;
    }
}

/* "X-Forwarded-For: <what the client sent>, <client address>" */
static int add_forwarded_for(struct evbuffer *out, const struct http_forwarded_for *prior,
                             const char *client_addr)
{
    const char *value;
    size_t value_len;
    int rc = add_str(out, "X-Forwarded-For: ");
    while (rc == 0 && prior->next(prior->ctx, &value, &value_len)) {
        if (value_len == 0)
            continue;
        rc = evbuffer_add(out, value, value_len);
        if (rc == 0)
            rc = evbuffer_add(out, ", ", 2);
    }
    if (rc == 0)
        rc = add_str(out, client_addr);
    return rc == 0 ? evbuffer_add(out, "\r\n", 2) : rc;
}

int http_forward_add_proxy_fields(struct evbuffer *out, const struct http_forwarded_for *prior,
                                  const char *host, size_t host_len,
                                  const struct http_request_rewrite *rw)
{
    int rc = add_forwarded_for(out, prior, rw->client_addr);
    if (rc == 0)
        rc = add_str(out, rw->is_tls ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n");
    if (rc == 0 && host) {
        rc = add_str(out, "X-Forwarded-Host: ");
        if (rc == 0)
            rc = evbuffer_add(out, host, host_len);
        if (rc == 0)
            rc = evbuffer_add(out, "\r\n", 2);
    }
    if (rc == 0 && rw->cert_subject)
        rc = evbuffer_add_printf(out, "X-Client-Cert-Subject: %s\r\n", rw->cert_subject) < 0 ? -1 : 0;
    return rc;
}

/* Walks an HTTP/1.1 request's X-Forwarded-For lines, skipping those its Connection
 * field names (hop-by-hop: meant for ferry, not the backend). */
struct h1_forwarded_for {
    const struct http1_request *req;
    size_t next;
};

static bool next_h1_forwarded_for(void *ctx, const char **value, size_t *value_len)
{
    struct h1_forwarded_for *it = ctx;
    while (it->next < it->req->num_headers) {
        const struct http1_header *h = &it->req->headers[it->next++];
        if (h->id == HTTP1_H_X_FORWARDED_FOR && !(h->flags & HTTP1_HF_HOP_BY_HOP)) {
            *value = h->value;
            *value_len = h->value_len;
            return true;
        }
    }
    return false;
}

/* The target goes in origin-form: an absolute-form one without its scheme and
 * authority (which become Host), with "/" before an empty path or a bare query, or
 * as "*" for OPTIONS without either (RFC 9112 §3.2.4). */
static int add_target(struct evbuffer *out, const struct http1_request *req)
{
    if (req->target_form == HTTP1_TARGET_ABSOLUTE && req->path_len == 0 &&
        req->method_id == HTTP1_METHOD_OPTIONS)
        return evbuffer_add(out, "*", 1);
    if (http1_path_needs_slash(req) && evbuffer_add(out, "/", 1) < 0)
        return -1;
    return evbuffer_add(out, req->path, req->path_len);
}

static int add_request_line(struct evbuffer *out, const struct http1_request *req)
{
    if (evbuffer_add(out, req->method, req->method_len) < 0 || evbuffer_add(out, " ", 1) < 0 ||
        add_target(out, req) < 0)
        return -1;
    return add_str(out, " HTTP/1.1\r\n");
}

static int add_request_tail(struct evbuffer *out, const struct http1_request *req,
                            const struct http_request_rewrite *rw)
{
    int rc = 0;
    if (req->target_form == HTTP1_TARGET_ABSOLUTE) {
        rc = add_str(out, "Host: ");
        if (rc == 0)
            rc = evbuffer_add(out, req->host, req->host_len);
        if (rc == 0)
            rc = evbuffer_add(out, "\r\n", 2);
    } else if (!req->has_host && rw->default_host) {
        rc = evbuffer_add_printf(out, "Host: %s\r\n", rw->default_host) < 0 ? -1 : 0;
    }
    struct h1_forwarded_for cursor = { req, 0 };
    const struct http_forwarded_for prior = { next_h1_forwarded_for, &cursor };
    if (rc == 0)
        rc = http_forward_add_proxy_fields(out, &prior, req->host, req->host_len, rw);
    if (rc == 0 && req->body == HTTP1_BODY_LENGTH)
        rc = evbuffer_add_printf(out, "Content-Length: %" PRIu64 "\r\n", req->content_length) < 0 ? -1 : 0;
    if (rc == 0 && req->body == HTTP1_BODY_CHUNKED)
        rc = add_str(out, "Transfer-Encoding: chunked\r\n");
    if (rc == 0 && req->is_upgrade)
        rc = add_str(out, "Connection: upgrade\r\n");
    return rc == 0 ? evbuffer_add(out, "\r\n", 2) : rc;
}

int http_forward_request_head(struct evbuffer *out, const struct http1_request *req,
                              const char *head, size_t head_len,
                              const struct http_request_rewrite *rw)
{
    bool keep[req->num_headers ? req->num_headers : 1];
    for (size_t i = 0; i < req->num_headers; i++)
        keep[i] = keep_request_field(req, &req->headers[i]);
    if (add_request_line(out, req) < 0 ||
        add_kept_lines(out, req->headers, req->num_headers, keep, head, head_len) < 0)
        return -1;
    return add_request_tail(out, req, rw);
}

static bool keep_response_field(const struct http1_response *resp, const struct http1_header *h)
{
    if (h->flags & HTTP1_HF_FRAMING)
        return false;
    if (h->id == HTTP1_H_UPGRADE && resp->is_upgrade)
        return true;
    return !(h->flags & HTTP1_HF_HOP_BY_HOP);
}

static const char *const conn_lines[] = {
    [HTTP_CONN_NONE] = "",
    [HTTP_CONN_CLOSE] = "Connection: close\r\n",
    [HTTP_CONN_KEEP_ALIVE] = "Connection: keep-alive\r\n",
    [HTTP_CONN_UPGRADE] = "Connection: upgrade\r\n",
};

long http_forward_response_head(struct evbuffer *out, const struct http1_response *resp,
                                const char *head, size_t head_len,
                                const struct http_response_rewrite *rw)
{
    size_t before = evbuffer_get_length(out);
    bool keep[resp->num_headers ? resp->num_headers : 1];
    for (size_t i = 0; i < resp->num_headers; i++)
        keep[i] = keep_response_field(resp, &resp->headers[i]);
    int rc = evbuffer_add_printf(out, "HTTP/1.1 %03d ", resp->status) < 0 ? -1 : 0;
    if (rc == 0 && resp->reason_len > 0)
        rc = evbuffer_add(out, resp->reason, resp->reason_len);
    else if (rc == 0)
        rc = add_str(out, http_reason(resp->status));
    if (rc == 0)
        rc = evbuffer_add(out, "\r\n", 2);
    if (rc == 0)
        rc = add_kept_lines(out, resp->headers, resp->num_headers, keep, head, head_len);
    if (rc == 0 && rw->framing == HTTP_FRAMING_LENGTH)
        rc = evbuffer_add_printf(out, "Content-Length: %" PRIu64 "\r\n", rw->length) < 0 ? -1 : 0;
    if (rc == 0 && rw->framing == HTTP_FRAMING_CHUNKED)
        rc = add_str(out, "Transfer-Encoding: chunked\r\n");
    if (rc == 0)
        rc = add_str(out, conn_lines[rw->conn]);
    if (rc == 0)
        rc = evbuffer_add(out, "\r\n", 2);
    return rc < 0 ? -1 : (long)(evbuffer_get_length(out) - before);
}

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

long http_error_response(struct evbuffer *out, int status, enum http_conn_header conn,
                         bool is_head)
{
    char body[64];
    int body_len = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    int n = evbuffer_add_printf(out,
                                "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                                "Content-Length: %d\r\n%s\r\n%s",
                                status, http_reason(status), body_len, conn_lines[conn],
                                is_head ? "" : body);
    return n < 0 ? -1 : n;
}

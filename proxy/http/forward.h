/* http forward — the heads ferry writes: the request head sent to a backend, the
 * response head sent to a client, and ferry's own (error) responses.
 *
 * Heads are built into an evbuffer in a handful of adds: runs of header lines that
 * pass unchanged are copied as one span of the parsed head; only what ferry changes
 * (framing, Connection, X-Forwarded-*) is written fresh. No allocation per header.
 */
#ifndef FERRY_HTTP_FORWARD_H
#define FERRY_HTTP_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http1/parse.h"

struct evbuffer;

/* What the Connection header of a head ferry writes says. */
enum http_conn_header {
    HTTP_CONN_NONE,         /* nothing: HTTP/1.1 keep-alive by default */
    HTTP_CONN_CLOSE,        /* "Connection: close" */
    HTTP_CONN_KEEP_ALIVE,   /* "Connection: keep-alive" (for HTTP/1.0 clients) */
    HTTP_CONN_UPGRADE,      /* "Connection: upgrade", with the Upgrade field kept */
};

struct http_request_rewrite {
    const char *client_addr;    /* appended to X-Forwarded-For (bare address) */
    bool is_tls;                /* X-Forwarded-Proto: https, else http */
    const char *cert_subject;   /* X-Client-Cert-Subject, or NULL for none */
    const char *default_host;   /* Host for a request that has none (HTTP/1.0) */
    const char *strip_cookie;   /* a cookie the backend must not see (ferry's sticky
                                   cookie), or NULL: removed from the Cookie fields */
    const char *websocket_key;  /* HTTP/2 extended CONNECT: the Sec-WebSocket-Key of
                                   the HTTP/1.1 upgrade request ferry writes */
};

/* The client's own X-Forwarded-For values, in order: each call of next() yields one
 * (false at the end). An iterator, so each front end walks its parsed fields in place
 * (HTTP/1.1 header lines, HTTP/2 header list) without copying them. */
struct http_forwarded_for {
    bool (*next)(void *ctx, const char **value, size_t *value_len);
    void *ctx;                  /* borrowed: the front end's cursor */
};

/* Appends the fields ferry sets on every request it forwards, the same for every
 * front end: "X-Forwarded-For: " the prior values (empty ones skipped) and
 * rw->client_addr, joined with ", "; "X-Forwarded-Proto: http|https";
 * "X-Forwarded-Host: " host when host is not NULL; "X-Client-Cert-Subject: "
 * rw->cert_subject when set. Returns 0, or -1 when the evbuffer could not grow. */
int http_forward_add_proxy_fields(struct evbuffer *out, const struct http_forwarded_for *prior,
                                  const char *host, size_t host_len,
                                  const struct http_request_rewrite *rw);

/* Appends the head to send upstream for req, parsed from head[0..head_len): request
 * line as HTTP/1.1 in origin-form (an absolute-form target's authority replaces Host,
 * RFC 9112 §3.2.2: the backend sees the one name ferry routed by); hop-by-hop fields,
 * framing fields, X-Forwarded-* and X-Client-Cert-Subject removed; rw->strip_cookie
 * removed from each Cookie line (in place, the line dropped if nothing is left);
 * X-Forwarded-For (appended), -Proto, -Host and the certificate subject written;
 * framing from req->body (Content-Length or chunked); Upgrade kept with "Connection:
 * upgrade" when req->is_upgrade; Expect dropped for HTTP/1.0 clients (a 1.0 client must
 * never get 100 Continue). Returns 0, or -1 when the evbuffer could not grow. */
int http_forward_request_head(struct evbuffer *out, const struct http1_request *req,
                              const char *head, size_t head_len,
                              const struct http_request_rewrite *rw);

/* How the client-side response is delimited; ferry writes the framing field. */
enum http_framing {
    HTTP_FRAMING_NONE,      /* no body, no field (1xx, 204) */
    HTTP_FRAMING_LENGTH,    /* "Content-Length: length" (also HEAD/304 metadata) */
    HTTP_FRAMING_CHUNKED,   /* "Transfer-Encoding: chunked", body relayed verbatim */
    HTTP_FRAMING_CLOSE,     /* no field: the body ends when ferry closes */
};

struct http_response_rewrite {
    enum http_framing framing;
    uint64_t length;
    enum http_conn_header conn;
    const char *set_cookie;     /* a Set-Cookie value ferry adds (sticky sessions), or NULL */
};

/* Appends the head for the client: "HTTP/1.1 status reason", the backend's fields
 * without hop-by-hop and framing ones (Upgrade kept for 101), then rw->set_cookie,
 * framing and Connection as rw says. Returns the bytes appended, or -1 on allocation failure. */
long http_forward_response_head(struct evbuffer *out, const struct http1_response *resp,
                                const char *head, size_t head_len,
                                const struct http_response_rewrite *rw);

/* The standard reason phrase of status ("Bad Gateway"), "Unknown" when none. */
const char *http_reason(int status);

/* Appends a complete response of ferry's own (status line, short text body). A
 * response to HEAD (is_head) is the head alone, its Content-Length that of the body
 * (RFC 9110 §9.3.2): a body would be read as the start of the next response. Returns
 * the bytes appended, or -1 on allocation failure. */
long http_error_response(struct evbuffer *out, int status, enum http_conn_header conn,
                         bool is_head);

#endif

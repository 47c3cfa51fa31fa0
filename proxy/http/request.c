/* The client side of HTTP/1.x requests: reading and dispatching request heads,
 * ending requests (keep-alive or flush), flushing and lingering before close. */
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <openssl/ssl.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/worker.h"
#include "http/cookie.h"
#include "http/forward.h"
#include "http/internal.h"
#include "http/route.h"
#include "http2/h2.h"
#include "tls/tls.h"

/* Room for an X-Client-Cert-Subject value. */
enum { CERT_SUBJECT_MAX = 1024 };

/* ---- ending requests ------------------------------------------------------------ */

void http_start_flush(struct http_session *s)
{
    http_set_state(s, HS_FLUSH);
    /* A client that never reads its last response must not hold the slot forever,
     * nor by sending: only its reads of ours count. */
    http_arm_timer(s, http_cfg(s)->timeouts.client_idle_ms, HTTP_TIMER_OUTPUT);
}

void http_finish_request(struct http_session *s, bool keep_client)
{
    http_exchange_end(s->ex);
    if (!keep_client || s->draining) {
        http_start_flush(s);
        return;
    }
    http_set_state(s, HS_IDLE);
    /* Counted from the last write: the response may still be on its way out (and
     * empty lines the client sends start no request, so they do not count). */
    http_arm_timer(s, http_cfg(s)->timeouts.client_idle_ms, HTTP_TIMER_OUTPUT);
}

void http_reject(struct http_session *s, int status)
{
    struct http_exchange_request unknown = { .version = LISTEN_HTTP_1_1 };
    if (!http_hold_exchange(s))
        return;
    http_exchange_reject(s->ex, s->base.runtime, s->base.listener, &unknown, s->start_ms,
                         status, false);
}

/* ---- reading requests ------------------------------------------------------------ */

bool http_refresh_generation(struct http_session *s)
{
    struct runtime *newest = worker_runtime(s->base.worker);
    if (newest == s->base.runtime)
        return true;
    struct rt_listener *rl = runtime_listener_for(newest, s->base.listener->socket);
    if (!rl || rl->cfg->mode != MODE_HTTP)
        return false;
    runtime_ref(newest);
    runtime_unref(s->base.runtime);
    s->base.runtime = newest;
    s->base.listener = rl;
    return true;
}

static void reset_request(struct http_session *s)
{
    s->scan_len = 0;
    s->start_ms = clock_now_ms();
    s->keep_client = s->close_delimited = false;
    memset(&s->req_body, 0, sizeof s->req_body);
}

/* Empty lines between requests are allowed (RFC 9112 §2.2) and start nothing. */
static void skip_empty_lines(struct evbuffer *in)
{
    unsigned char two[2];
    while (evbuffer_copyout(in, two, 2) == 2 && two[0] == '\r' && two[1] == '\n')
        evbuffer_drain(in, 2);
}

/* The connection speaks HTTP/2 from here on (proxy/http2). */
static bool start_h2(struct http_session *s)
{
    s->is_fresh = false;
    if (h2_begin(s) < 0) {
        log_error("http listener=%s: out of memory starting HTTP/2", s->base.listener->cfg->name);
        http_close(s);
    }
    return true;
}

bool http_idle_step(struct http_session *s)
{
    if (s->is_fresh) {
        enum h2_detect d = h2_detect(s);
        if (d == H2_DETECT_MAYBE && !s->client_eof)
            return false;
        if (d == H2_DETECT_YES)
            return start_h2(s);
    }
    struct evbuffer *in = s->client_in;
    skip_empty_lines(in);
    if (evbuffer_get_length(in) == 0) {
        if (!s->client_eof && !s->draining)
            return false;
        http_start_flush(s);
        return true;
    }
    /* Its answer would only add to what the client is not reading (pipelined requests
     * ferry answers itself would queue answers without end); the client's write event
     * runs the pump again. */
    if (evbuffer_get_length(s->client_out) >= HTTP_HIGH_WATER)
        return false;
    if (!http_refresh_generation(s)) {
        log_debug("http session %p: listener gone after reload, closing", (void *)s);
        http_start_flush(s);
        return true;
    }
    reset_request(s);
    http_set_state(s, HS_HEAD);
    http_arm_timer(s, http_cfg(s)->timeouts.client_header_ms, HTTP_TIMER_FIXED);
    return true;
}

/* What write_forward_head needs: the request as parsed, in the client's input. */
struct parsed_head {
    struct http_session *s;
    const struct http1_request *req;
    const char *head;
    size_t head_len;
};

/* The head for the backend (http_exchange_request.write_head): written only for a
 * request that found a route. */
static int write_forward_head(const struct http_exchange_request *x, const char *strip_cookie,
                              struct evbuffer *out)
{
    const struct parsed_head *p = x->front;
    struct http_session *s = p->s;
    char subject[CERT_SUBJECT_MAX];
    /* The connection's own transport: a reload may have changed the listener's. */
    SSL *ssl = s->tls;
    struct http_request_rewrite rw = {
        .client_addr = s->base.peer_text,
        .is_tls = ssl != NULL,
        .default_host = s->base.listener->cfg->listen.text,
        .strip_cookie = strip_cookie,
    };
    if (ssl && tls_peer_subject(ssl, subject, sizeof subject) >= 0)
        rw.cert_subject = subject;
    return http_forward_request_head(out, p->req, p->head, p->head_len, &rw);
}

static bool name_is(const struct http1_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* http_exchange_request.find_header / find_cookie over the parsed head. */
static bool find_header(const struct http_exchange_request *x, const char *name,
                        const char **value, size_t *value_len)
{
    const struct http1_request *req = ((const struct parsed_head *)x->front)->req;
    for (size_t i = 0; i < req->num_headers; i++) {
        if (name_is(&req->headers[i], name)) {
            *value = req->headers[i].value;
            *value_len = req->headers[i].value_len;
            return true;
        }
    }
    return false;
}

static bool find_cookie(const struct http_exchange_request *x, const char *name,
                        const char **value, size_t *value_len)
{
    const struct http1_request *req = ((const struct parsed_head *)x->front)->req;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http1_header *h = &req->headers[i];
        if (name_is(h, "cookie") &&
            http_cookie_find(h->value, h->value_len, name, value, value_len))
            return true;
    }
    return false;
}

/* "Upgrade: h2c" asks to switch this connection to HTTP/2 (RFC 7540 §3.2), which RFC
 * 9113 deprecates and ferry does not do: the request is served as HTTP/1.1 and the
 * backend never sees the upgrade (HTTP2-Settings is named by Connection, so it goes
 * as a hop-by-hop field). */
static bool asks_for_h2c(const struct http1_request *req)
{
    return req->is_upgrade && http1_token_eq(req->upgrade, req->upgrade_len, "h2c");
}

/* A complete, valid request head: hand it to an exchange, which routes it and takes
 * it to a backend. `req` points into the client's input, which is drained of the head
 * only once the exchange took what it needs. */
static void dispatch(struct http_session *s, const struct http1_request *parsed,
                     const char *head, size_t head_len)
{
    s->is_fresh = false;
    struct http1_request plain = *parsed;
    plain.is_upgrade = !asks_for_h2c(parsed) && parsed->is_upgrade;
    const struct http1_request *req = &plain;
    struct http1_limits lim = http_exchange_limits(http_cfg(s), true);
    s->minor_version = req->minor_version;
    s->req_keep_alive = req->keep_alive;
    http_body_init(&s->req_body, req->body, req->content_length, &lim, false);
    struct http_exchange_request x = {
        .method = req->method_id,
        .method_text = req->method,
        .method_len = req->method_len,
        .target = req->target,
        .target_len = req->target_len,
        .body = req->body,
        .body_done = s->req_body.done,
        .is_upgrade = req->is_upgrade,
        .version = req->minor_version == 1 ? LISTEN_HTTP_1_1 : LISTEN_HTTP_1_0,
    };
    struct parsed_head parsed_head = { s, req, head, head_len };
    x.write_head = write_forward_head;
    x.find_header = find_header;
    x.find_cookie = find_cookie;
    x.front = &parsed_head;
    http_route_key_of(req, &x.route);
    if (!http_hold_exchange(s))
        return;
    http_set_state(s, HS_EXCHANGE);
    http_exchange_start(s->ex, s->base.runtime, s->base.listener, &x, s->start_ms);
    evbuffer_drain(s->client_in, head_len);
}

/* On an h2c listener a client may speak either protocol. When its first bytes are
 * neither an HTTP/1.x request line nor the HTTP/2 preface, it may be an HTTP/2 client
 * with a broken preface, which must see the connection end (RFC 9113 §3.4), not an
 * HTTP/1.1 answer it cannot read. */
static bool is_broken_preface(const struct http_session *s, int rc)
{
    bool is_start_line = rc == HTTP1_ERR_BAD_METHOD || rc == HTTP1_ERR_BAD_TARGET ||
                         rc == HTTP1_ERR_BAD_REQUEST_LINE || rc == HTTP1_ERR_BAD_VERSION ||
                         rc == HTTP1_ERR_VERSION_UNSUPPORTED;
    return s->is_fresh && is_start_line && s->base.listener->cfg->http2.h2c;
}

bool http_head_step(struct http_session *s)
{
    struct evbuffer *in = s->client_in;
    size_t max = http_cfg(s)->limits.max_header_bytes;
    size_t len = evbuffer_get_length(in);
    size_t window = len < max ? len : max;
    const char *p = window > s->scan_len ? (const char *)evbuffer_pullup(in, (ev_ssize_t)window) : NULL;
    if (!p || !http1_head_ready(p, window, s->scan_len, max)) {
        s->scan_len = window;
        if (!s->client_eof)
            return false;
        http_close(s);      /* the client gave up in the middle of a head */
        return true;
    }
    struct http1_limits lim = http_exchange_limits(http_cfg(s), true);
    struct http1_header headers[lim.max_headers];
    struct http1_request req = { .headers = headers };
    int rc = http1_parse_request(p, window, &lim, &req);
    if (rc == HTTP1_INCOMPLETE) {
        s->scan_len = window;
        if (s->client_eof)
            http_close(s);
        return s->client_eof;
    }
    if (rc < 0) {
        log_debug("http listener=%s client=%s: bad request: %s", s->base.listener->cfg->name,
                  s->base.peer_text, http1_error_str(rc));
        if (is_broken_preface(s, rc))
            http_close(s);
        else
            http_reject(s, http1_error_status(rc));
        return true;
    }
    dispatch(s, &req, p, (size_t)rc);
    return true;
}

/* HS_EXCHANGE: the exchange runs, unless the client gave up. */
bool http_request_step(struct http_session *s)
{
    /* A client that closes its side has given up on the request (nginx's "client
     * closed request"): the backend connection is freed at once, never held until a
     * timeout for nobody. */
    if (s->client_eof) {
        log_debug("http session %p: client closed during the exchange", (void *)s);
        http_close(s);
        return true;
    }
    return http_exchange_step(s->ex);
}

/* ---- flushing and closing the client ------------------------------------------- */

/* Our FIN (after close_notify on TLS) while still reading what the client sends. */
static void shut_client_write(struct http_session *s)
{
    tls_close_notify(s->tls);
    shutdown(s->client_fd, SHUT_WR);
}

/* The client said its last request was its last (Connection: close, or HTTP/1.0
 * without keep-alive), sent all of it and nothing after: it sends no more, so closing
 * at once cannot turn into a reset that destroys the response, and waiting for its
 * FIN would cost a shutdown(2), a wakeup and a read per connection (nginx closes at
 * once in this case too). */
static bool client_is_done(const struct http_session *s)
{
    return !s->req_keep_alive && s->req_body.done && !s->unread_input &&
           !(s->tls && SSL_has_pending(s->tls));
}

bool http_flush_step(struct http_session *s)
{
    size_t unread = evbuffer_get_length(s->client_in);
    s->unread_input |= unread > 0;
    evbuffer_drain(s->client_in, unread);
    if (evbuffer_get_length(s->client_out) > 0)
        return false;
    if (client_is_done(s)) {
        http_close(s);      /* session_free sends close_notify first */
        return true;
    }
    shut_client_write(s);
    if (s->client_eof) {
        http_close(s);
        return true;
    }
    http_set_state(s, HS_LINGER);
    http_arm_timer(s, HTTP_LINGER_MS, HTTP_TIMER_FIXED);
    return true;
}

bool http_linger_step(struct http_session *s)
{
    evbuffer_drain(s->client_in, evbuffer_get_length(s->client_in));
    if (!s->client_eof)
        return false;
    http_close(s);
    return true;
}


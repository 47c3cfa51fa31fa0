/* The client side of requests: reading and dispatching request heads, ending
 * requests (access log, keep-alive or flush), flushing and lingering before close. */
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/worker.h"
#include "http/access.h"
#include "http/forward.h"
#include "http/internal.h"
#include "http/route.h"
#include "runtime/backend.h"
#include "tls/tls.h"

/* Room for an X-Client-Cert-Subject value. */
enum { CERT_SUBJECT_MAX = 1024 };


/* ---- access log ---------------------------------------------------------------- */

static void note_for_log(struct http_session *s, const struct http1_request *req)
{
    s->log_method_len = 0;
    s->log_path_len = 0;
    if (!access_log_enabled())
        return;
    size_t m = req->method_len < sizeof s->log_method ? req->method_len : sizeof s->log_method;
    size_t p = req->target_len < sizeof s->log_path ? req->target_len : sizeof s->log_path;
    memcpy(s->log_method, req->method, m);
    memcpy(s->log_path, req->target, p);
    s->log_method_len = (uint8_t)m;
    s->log_path_len = (uint16_t)p;
}

/* Counts the finished request in its listener's counters (for /metrics) and writes
 * its access log line. */
void http_record_request(struct http_session *s)
{
    struct listen_socket *socket = s->base.listener->socket;
    if (s->status >= 100 && s->status <= 599)
        atomic_fetch_add_explicit(&socket->responses[s->status / 100 - 1], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&socket->bytes_out, s->bytes_out, memory_order_relaxed);
    if (!access_log_enabled())
        return;
    int64_t now = clock_now_ms();
    struct http_access_entry e = {
        .client = s->base.peer_text,
        .listener = s->base.listener->cfg->name,
        .method = s->log_method_len ? s->log_method : "-",
        .method_len = s->log_method_len ? s->log_method_len : 1,
        .path = s->log_path_len ? s->log_path : "-",
        .path_len = s->log_path_len ? s->log_path_len : 1,
        .status = s->status,
        .bytes = s->bytes_out,
        .backend = s->n_tried ? s->tried[s->n_tried - 1]->name : NULL,
        .upstream_ms = s->n_tried ? now - s->up_start_ms : 0,
        .total_ms = now - s->start_ms,
    };
    clock_gettime(CLOCK_REALTIME, &e.time);
    char line[4096];
    size_t n = http_access_format(line, sizeof line, &e, access_log_format());
    access_log_write(line, n);
}

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
    if (s->req_dispatched || s->status)
        http_record_request(s);
    if (s->up)
        http_upstream_release(s, false);
    s->req_dispatched = false;
    s->pool = NULL;
    evbuffer_drain(s->fwd_head, evbuffer_get_length(s->fwd_head));
    if (!keep_client || s->draining) {
        http_start_flush(s);
        return;
    }
    http_set_state(s, HS_IDLE);
    /* Counted from the last write: the response may still be on its way out (and
     * empty lines the client sends start no request, so they do not count). */
    http_arm_timer(s, http_cfg(s)->timeouts.client_idle_ms, HTTP_TIMER_OUTPUT);
}

void http_respond_error(struct http_session *s, int status, bool may_keep)
{
    bool keep = may_keep && s->req_dispatched && s->req_body.done && s->req_keep_alive &&
                !s->draining && !s->client_eof;
    if (s->up)
        http_upstream_release(s, false);
    enum http_conn_header conn = !keep ? HTTP_CONN_CLOSE
                                 : s->minor_version == 0 ? HTTP_CONN_KEEP_ALIVE : HTTP_CONN_NONE;
    long n = http_error_response(s->client_out, status, conn);
    s->status = status;
    if (n > 0)
        s->bytes_out += (uint64_t)n;
    http_finish_request(s, keep);
}

/* ---- reading requests ------------------------------------------------------------ */

/* An HTTP session follows reloads between requests: the newest generation, and in it
 * the listener on the same socket. False when that listener is gone. */
static bool refresh_generation(struct http_session *s)
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
    s->req_dispatched = s->body_started = s->request_counted = false;
    s->resp_started = s->keep_client = s->close_delimited = false;
    s->n_tried = 0;
    s->status = 0;
    s->bytes_out = 0;
    s->log_method_len = 0;
    s->log_path_len = 0;
    memset(&s->req_body, 0, sizeof s->req_body);
}

/* Empty lines between requests are allowed (RFC 9112 §2.2) and start nothing. */
static void skip_empty_lines(struct evbuffer *in)
{
    unsigned char two[2];
    while (evbuffer_copyout(in, two, 2) == 2 && two[0] == '\r' && two[1] == '\n')
        evbuffer_drain(in, 2);
}

bool http_idle_step(struct http_session *s)
{
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
    if (!refresh_generation(s)) {
        log_debug("http session %p: listener gone after reload, closing", (void *)s);
        http_start_flush(s);
        return true;
    }
    reset_request(s);
    http_set_state(s, HS_HEAD);
    http_arm_timer(s, http_cfg(s)->timeouts.client_header_ms, HTTP_TIMER_FIXED);
    return true;
}

static bool is_idempotent(enum http1_method m)
{
    return m == HTTP1_METHOD_GET || m == HTTP1_METHOD_HEAD || m == HTTP1_METHOD_PUT ||
           m == HTTP1_METHOD_DELETE || m == HTTP1_METHOD_OPTIONS || m == HTTP1_METHOD_TRACE;
}

static int build_forward_head(struct http_session *s, const struct http1_request *req,
                              const char *head, size_t head_len)
{
    char subject[CERT_SUBJECT_MAX];
    /* The connection's own transport: a reload may have changed the listener's. */
    SSL *ssl = s->tls;
    struct http_request_rewrite rw = {
        .client_addr = s->base.peer_text,
        .is_tls = ssl != NULL,
        .default_host = s->base.listener->cfg->listen.text,
    };
    if (ssl && tls_peer_subject(ssl, subject, sizeof subject) >= 0)
        rw.cert_subject = subject;
    evbuffer_drain(s->fwd_head, evbuffer_get_length(s->fwd_head));
    return http_forward_request_head(s->fwd_head, req, head, head_len, &rw);
}

/* A complete, valid request head: route it and hand it to the backend side. `req`
 * points into the client's input, so everything is taken from it before the drain. */
static void dispatch(struct http_session *s, const struct http1_request *req, const char *head,
                     size_t head_len)
{
    struct http1_limits lim = http_limits(s, true);
    s->method = req->method_id;
    s->minor_version = req->minor_version;
    s->req_keep_alive = req->keep_alive;
    s->req_upgrade = req->is_upgrade;
    s->is_idempotent = is_idempotent(req->method_id);
    s->req_dispatched = true;
    note_for_log(s, req);
    http_body_init(&s->req_body, req->body, req->content_length, &lim, false);

    struct rt_listener *rl = s->base.listener;
    struct http_route_key key;
    http_route_key_of(req, &key);
    int route = req->method_id == HTTP1_METHOD_CONNECT
                    ? -1 : http_route_find(rl->cfg->routes, rl->n_routes, &key);
    int rc = route >= 0 ? build_forward_head(s, req, head, head_len) : 0;
    evbuffer_drain(s->client_in, head_len);
    if (route < 0) {
        http_respond_error(s, req->method_id == HTTP1_METHOD_CONNECT ? 501 : 404, true);
        return;
    }
    if (rc < 0) {
        log_error("http listener=%s: out of memory building a request head", rl->cfg->name);
        http_close(s);
        return;
    }
    s->pool = rl->routes[route].pool;
    http_set_state(s, HS_EXCHANGE);
    http_exchange_begin(s);
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
    struct http1_limits lim = http_limits(s, true);
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
        http_respond_error(s, http1_error_status(rc), false);
        return true;
    }
    dispatch(s, &req, p, (size_t)rc);
    return true;
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


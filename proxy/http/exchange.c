/* The backend side of a request: pick a backend, take a pooled connection or open
 * one (retrying on connect failure), send the rewritten head, stream the request
 * body, read the response head, stream the response body, and give the connection
 * back to the pool when the exchange ended cleanly. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/bev.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/worker.h"
#include "http/forward.h"
#include "http/internal.h"
#include "runtime/backend.h"
#include "upstream/connect.h"
#include "upstream/pool.h"

/* What a step of the exchange did. */
enum step { STEP_NONE, STEP_PROGRESS, STEP_CHANGED /* state changed: re-dispatch */ };

static const char *const up_state_names[] = {
    [UP_NONE] = "none", [UP_CONNECTING] = "connecting", [UP_WAIT_HEAD] = "wait-head",
    [UP_BODY] = "body",
};

void http_set_up_state(struct http_session *s, enum up_state next)
{
    log_debug("http session %p upstream %s -> %s", (void *)s, up_state_names[s->up_state],
              up_state_names[next]);
    s->up_state = next;
}

static const char *listener_name(const struct http_session *s)
{
    return s->base.listener->cfg->name;
}

/* TLS connections are only reused within the generation whose client context made
 * them: a reload may have changed what a backend must prove. */
static uint64_t pool_flavor(const struct rt_pool *pool)
{
    return pool->tls ? pool->runtime->generation : 0;
}

static void take_backend(struct http_session *s, struct backend *b)
{
    s->backend = b;
    atomic_fetch_add_explicit(&b->active, 1, memory_order_relaxed);
}

static void release_backend(struct http_session *s)
{
    if (s->backend)
        atomic_fetch_sub_explicit(&s->backend->active, 1, memory_order_relaxed);
    s->backend = NULL;
}

/* Forgets the connection (pooling or freeing it); the backend stays taken. */
static void drop_connection(struct http_session *s, bool reusable)
{
    struct bufferevent *up = s->up;
    http_disown_upstream_reads(s, reusable);
    bufferevent_setcb(up, NULL, NULL, NULL, NULL);
    s->up = NULL;
    if (reusable)
        upstream_pool_put(worker_upstream_pool(s->base.worker), s->backend,
                          pool_flavor(s->pool), up, s->pool->cfg->keepalive_max_idle,
                          s->pool->cfg->keepalive_idle_timeout_ms);
    else
        bev_close(up);
    s->client_throttled = false;
    s->up_reading = false;
    s->up_connected = s->up_connect_failed = s->up_timed_out = false;
    s->up_eof = s->up_error = s->up_write_failed = false;
}

void http_upstream_release(struct http_session *s, bool reusable)
{
    if (s->up)
        drop_connection(s, reusable);
    release_backend(s);
    if (s->up_state != UP_NONE)
        http_set_up_state(s, UP_NONE);
}

static void install_connection(struct http_session *s, struct bufferevent *bev, bool reused)
{
    s->up = bev;
    s->up_reused = reused;
    s->up_reading = (bufferevent_get_enabled(bev) & EV_READ) != 0;
    s->up_scan_len = 0;
    s->up_any_byte = false;
    http_watch_upstream(s);
    /* Plain connections write through at the end of a pump round and are read by ferry
     * (session.c); a connect in progress has EV_WRITE enabled by libevent already. */
    if (upstream_is_tls(bev))
        bufferevent_enable(bev, EV_WRITE);
    else
        http_own_upstream_reads(s);
}

static bool open_connection(struct http_session *s)
{
    struct bufferevent *bev = upstream_connect(worker_base(s->base.worker), s->pool, s->backend,
                                               http_cfg(s)->timeouts.connect_ms);
    if (!bev)
        return false;
    install_connection(s, bev, false);
    http_set_up_state(s, UP_CONNECTING);
    return true;
}

/* Keep the head for a second try: only a reused connection may turn out dead before
 * answering, and only a request that is safe to repeat is repeated. */
static bool can_resend(const struct http_session *s)
{
    return s->up_reused && s->is_idempotent && !s->body_started &&
           evbuffer_get_length(s->fwd_head) > 0;
}

static void arm_wait_timer(struct http_session *s)
{
    const struct config *cfg = http_cfg(s);
    if (s->req_body.done)
        http_arm_timer(s, cfg->timeouts.upstream_response_ms, HTTP_TIMER_FIXED);
    else    /* the client is still sending: it must not stall */
        http_arm_timer(s, cfg->timeouts.client_idle_ms, HTTP_TIMER_IDLE);
}

static void send_request_head(struct http_session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->up);
    if (can_resend(s)) {
        size_t n = evbuffer_get_length(s->fwd_head);
        evbuffer_add(out, evbuffer_pullup(s->fwd_head, (ev_ssize_t)n), n);
    } else {
        evbuffer_add_buffer(out, s->fwd_head);
    }
    if (!s->request_counted) {
        atomic_fetch_add_explicit(&s->backend->requests, 1, memory_order_relaxed);
        s->request_counted = true;
    }
    http_set_up_state(s, UP_WAIT_HEAD);
    arm_wait_timer(s);
}

/* Tries backends until a connection is under way; answers 503 when none is eligible
 * at all, else the status of the last failure. */
static void start_attempt(struct http_session *s)
{
    unsigned attempts = s->pool->cfg->retries + 1;
    if (attempts > RT_MAX_ATTEMPTS)
        attempts = RT_MAX_ATTEMPTS;
    while (s->n_tried < attempts) {
        struct backend *b = rt_pool_pick(s->pool, s->tried, s->n_tried);
        if (!b)
            break;
        s->tried[s->n_tried++] = b;
        take_backend(s, b);
        struct bufferevent *bev = upstream_pool_take(worker_upstream_pool(s->base.worker), b,
                                                     pool_flavor(s->pool));
        if (bev) {
            install_connection(s, bev, true);
            send_request_head(s);
            return;
        }
        if (open_connection(s))
            return;
        log_warn("http listener=%s backend=%s/%s: cannot open a connection", listener_name(s),
                 b->pool, b->name);
        rt_pool_report_failure(s->pool, b);
        s->fail_status = 502;
        release_backend(s);
    }
    int status = s->n_tried == 0 ? 503 : s->fail_status;
    log_warn("http listener=%s pool=%s: no backend available after %zu attempts: %d",
             listener_name(s), s->pool->cfg->name, s->n_tried, status);
    http_respond_error(s, status, true);
}

void http_exchange_begin(struct http_session *s)
{
    s->n_tried = 0;
    s->fail_status = 502;
    s->up_start_ms = clock_now_ms();
    evtimer_del(s->timer);
    start_attempt(s);
}

static void connect_failed(struct http_session *s)
{
    struct backend *b = s->backend;
    log_warn("http listener=%s backend=%s/%s connect failed: %s", listener_name(s), b->pool,
             b->name, s->up_timed_out ? "timeout" : "refused or error");
    rt_pool_report_failure(s->pool, b);
    s->fail_status = s->up_timed_out ? 504 : 502;
    http_upstream_release(s, false);
    start_attempt(s);
}

static enum step connecting_step(struct http_session *s)
{
    if (s->up_connect_failed) {
        connect_failed(s);
        return STEP_CHANGED;
    }
    if (!s->up_connected)
        return STEP_NONE;
    s->up_connected = false;
    upstream_connected(s->up);
    send_request_head(s);
    return STEP_CHANGED;
}

/* The backend's side is broken (bad head, closed early, 101 out of the blue). */
static void broken_response(struct http_session *s, const char *why)
{
    struct backend *b = s->backend;
    log_warn("http listener=%s backend=%s/%s: broken response: %s", listener_name(s), b->pool,
             b->name, why);
    rt_pool_report_failure(s->pool, b);
    http_upstream_release(s, false);
    http_respond_error(s, 502, true);
}

/* The response cannot be completed: never let the client take what it got for a
 * whole response. Self-delimited framing shows the cut after a close; a
 * close-delimited body needs a reset to look broken. */
static void truncate_response(struct http_session *s)
{
    http_upstream_release(s, false);
    if (s->close_delimited)
        http_abort_client(s);
    else
        http_finish_request(s, false);
}

static void response_complete(struct http_session *s)
{
    backend_report_success(s->backend);
    /* Answered before the whole request arrived: neither connection is in a known
     * state any more. */
    bool reusable = s->req_body.done && s->resp_keep_alive && !s->up_eof &&
                    !s->up_write_failed && s->pool->cfg->keepalive_max_idle > 0 &&
                    evbuffer_get_length(bufferevent_get_input(s->up)) == 0 &&
                    evbuffer_get_length(bufferevent_get_output(s->up)) == 0;
    http_upstream_release(s, reusable);
    http_finish_request(s, s->keep_client && s->req_body.done);
}

static void resend(struct http_session *s)
{
    struct backend *b = s->backend;
    log_debug("http listener=%s backend=%s/%s: reused connection closed before answering, "
              "re-sending on a new one", listener_name(s), b->pool, b->name);
    drop_connection(s, false);
    if (open_connection(s))
        return;
    rt_pool_report_failure(s->pool, b);
    s->fail_status = 502;
    http_upstream_release(s, false);
    start_attempt(s);
}

static void upstream_closed(struct http_session *s)
{
    if (s->up_state == UP_WAIT_HEAD) {
        if (!s->up_any_byte && can_resend(s))
            resend(s);
        else
            broken_response(s, s->up_any_byte ? "closed in the middle of the response head"
                                              : "closed without a response");
        return;
    }
    if (s->resp_body.kind == HTTP1_BODY_UNTIL_CLOSE && !s->up_error) {
        s->resp_body.done = true;
        response_complete(s);
        return;
    }
    struct backend *b = s->backend;
    log_warn("http listener=%s backend=%s/%s: connection %s in the middle of the response body",
             listener_name(s), b->pool, b->name, s->up_error ? "failed" : "closed");
    rt_pool_report_failure(s->pool, b);
    truncate_response(s);
}

static enum step request_body_step(struct http_session *s)
{
    uint64_t moved;
    int rc = http_body_move(&s->req_body, s->client_in,
                            bufferevent_get_output(s->up), &moved);
    if (moved > 0 && !s->body_started) {
        s->body_started = true;
        evbuffer_drain(s->fwd_head, evbuffer_get_length(s->fwd_head));
    }
    if (rc < 0) {
        log_info("http listener=%s client=%s: bad request body: %s", listener_name(s),
                 s->base.peer_text, http1_error_str(rc));
        http_upstream_release(s, false);
        if (s->resp_started)
            http_close(s);
        else
            http_respond_error(s, http1_error_status(rc), false);
        return STEP_CHANGED;
    }
    if (s->req_body.done && s->up_state == UP_WAIT_HEAD)
        arm_wait_timer(s);
    return moved > 0 || s->req_body.done ? STEP_PROGRESS : STEP_NONE;
}

/* How the response is delimited for this client, and whether the client stays. */
static void plan_response(struct http_session *s, const struct http1_response *resp,
                          struct http_response_rewrite *rw, bool *dechunk)
{
    bool is_client_11 = s->minor_version == 1;
    *dechunk = false;
    s->close_delimited = false;
    switch (resp->body) {
    case HTTP1_BODY_NONE:
        /* HEAD and 304 keep the length of what a GET would have had. */
        rw->framing = resp->has_content_length && resp->status >= 200 && resp->status != 204
                          ? HTTP_FRAMING_LENGTH : HTTP_FRAMING_NONE;
        break;
    case HTTP1_BODY_LENGTH:
        rw->framing = HTTP_FRAMING_LENGTH;
        break;
    case HTTP1_BODY_CHUNKED:
        rw->framing = is_client_11 ? HTTP_FRAMING_CHUNKED : HTTP_FRAMING_CLOSE;
        *dechunk = !is_client_11;
        s->close_delimited = !is_client_11;
        break;
    case HTTP1_BODY_UNTIL_CLOSE:
        rw->framing = HTTP_FRAMING_CLOSE;
        s->close_delimited = true;
        break;
    }
    rw->length = resp->content_length;
    s->keep_client = s->req_keep_alive && !s->draining && !s->client_eof && !s->close_delimited;
    rw->conn = !s->keep_client ? HTTP_CONN_CLOSE
               : is_client_11 ? HTTP_CONN_NONE : HTTP_CONN_KEEP_ALIVE;
}

/* Writes the rewritten final response head to the client and consumes it from the
 * upstream input. Returns its length, or -1 after closing the session (no memory). */
static long forward_final_head(struct http_session *s, const struct http1_response *resp,
                               const char *head, size_t head_len,
                               const struct http_response_rewrite *rw)
{
    long n = http_forward_response_head(s->client_out, resp, head,
                                        head_len, rw);
    evbuffer_drain(bufferevent_get_input(s->up), head_len);
    if (n < 0)
        http_close(s);
    return n;
}

static void start_response(struct http_session *s, const struct http1_response *resp,
                           const char *head, size_t head_len)
{
    struct http_response_rewrite rw;
    bool dechunk;
    plan_response(s, resp, &rw, &dechunk);
    long n = forward_final_head(s, resp, head, head_len, &rw);
    if (n < 0)
        return;
    struct http1_limits lim = http_limits(s, false);
    http_body_init(&s->resp_body, resp->body, resp->content_length, &lim, dechunk);
    s->bytes_out += (uint64_t)n;
    s->status = resp->status;
    s->resp_started = true;
    s->resp_keep_alive = resp->keep_alive;
    http_set_up_state(s, UP_BODY);
    http_arm_response_timer(s);
}

/* 1xx before the final response (100 Continue): relayed to HTTP/1.1 clients only. */
static void forward_interim(struct http_session *s, const struct http1_response *resp,
                            const char *head, size_t head_len)
{
    struct http_response_rewrite rw = { .framing = HTTP_FRAMING_NONE, .conn = HTTP_CONN_NONE };
    if (s->minor_version == 1) {
        long n = http_forward_response_head(s->client_out, resp, head,
                                            head_len, &rw);
        if (n > 0)
            s->bytes_out += (uint64_t)n;
    }
    evbuffer_drain(bufferevent_get_input(s->up), head_len);
}

static void start_tunnel(struct http_session *s, const struct http1_response *resp,
                         const char *head, size_t head_len)
{
    struct http_response_rewrite rw = { .framing = HTTP_FRAMING_NONE, .conn = HTTP_CONN_UPGRADE };
    long n = forward_final_head(s, resp, head, head_len, &rw);
    if (n < 0)
        return;
    backend_report_success(s->backend);
    s->bytes_out += (uint64_t)n;
    s->status = 101;
    s->resp_started = true;
    http_tunnel_begin(s);
}

static enum step response_head_step(struct http_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->up);
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return STEP_NONE;
    if (!s->up_any_byte) {
        s->up_any_byte = true;      /* the backend has the request: no re-send now */
        evbuffer_drain(s->fwd_head, evbuffer_get_length(s->fwd_head));
    }
    size_t max = http_cfg(s)->limits.max_header_bytes;
    size_t window = len < max ? len : max;
    if (window <= s->up_scan_len)
        return STEP_NONE;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)window);
    if (!p || !http1_head_ready(p, window, s->up_scan_len, max)) {
        s->up_scan_len = window;
        return STEP_NONE;
    }
    struct http1_limits lim = http_limits(s, false);
    struct http1_header headers[lim.max_headers];
    struct http1_response resp = { .headers = headers };
    int rc = http1_parse_response(p, window, &lim, s->method, &resp);
    if (rc == HTTP1_INCOMPLETE) {
        s->up_scan_len = window;
        return STEP_NONE;
    }
    s->up_scan_len = 0;
    if (rc < 0)
        broken_response(s, http1_error_str(rc));
    else if (resp.is_interim)
        forward_interim(s, &resp, p, (size_t)rc);
    else if (resp.is_upgrade && !s->req_upgrade)
        broken_response(s, "101 Switching Protocols without an upgrade request");
    else if (resp.is_upgrade)
        start_tunnel(s, &resp, p, (size_t)rc);
    else
        start_response(s, &resp, p, (size_t)rc);
    return STEP_CHANGED;
}

static enum step response_body_step(struct http_session *s)
{
    uint64_t moved;
    int rc = http_body_move(&s->resp_body, bufferevent_get_input(s->up),
                            s->client_out, &moved);
    s->bytes_out += moved;
    if (rc < 0) {
        log_warn("http listener=%s backend=%s/%s: broken response body: %s", listener_name(s),
                 s->backend->pool, s->backend->name, http1_error_str(rc));
        rt_pool_report_failure(s->pool, s->backend);
        truncate_response(s);
        return STEP_CHANGED;
    }
    if (s->resp_body.done) {
        response_complete(s);
        return STEP_CHANGED;
    }
    return moved > 0 ? STEP_PROGRESS : STEP_NONE;
}

bool http_exchange_step(struct http_session *s)
{
    /* A client that closes its side has given up on the request (nginx's "client
     * closed request"): the backend connection is freed at once, never held until a
     * timeout for nobody. */
    if (s->client_eof) {
        log_debug("http session %p: client closed during the exchange", (void *)s);
        http_close(s);
        return true;
    }
    if (s->up_state == UP_CONNECTING)
        return connecting_step(s) != STEP_NONE;
    enum step r = STEP_NONE;
    /* After a failed write the body has nowhere to go: it waits (bounded) in the
     * client's input while the backend's answer is read. */
    if (!s->req_body.done && !s->up_write_failed && (r = request_body_step(s)) == STEP_CHANGED)
        return true;
    bool progressed = r == STEP_PROGRESS;
    if (s->up_state == UP_WAIT_HEAD && response_head_step(s) == STEP_CHANGED)
        return true;
    if (s->up_state == UP_BODY && (r = response_body_step(s)) == STEP_CHANGED)
        return true;
    progressed |= r == STEP_PROGRESS;
    if (s->up_eof) {
        upstream_closed(s);
        return true;
    }
    return progressed;
}

void http_arm_response_timer(struct http_session *s)
{
    const struct config *cfg = http_cfg(s);
    unsigned ms = s->client_out_full ? cfg->timeouts.client_idle_ms
                                     : cfg->timeouts.upstream_response_ms;
    http_arm_timer(s, ms, HTTP_TIMER_OUTPUT);
}

/* The client took none of its response for client_idle_ms. The backend only waited
 * for room, so no failure counts against it; the client gets a reset, which also
 * frees what the kernel holds for it (it would never read that either). */
static void client_stalled(struct http_session *s)
{
    log_info("http listener=%s client=%s: took none of the response for %u ms, closing",
             listener_name(s), s->base.peer_text, s->timer_ms);
    http_upstream_release(s, false);
    http_abort_client(s);
}

void http_exchange_timeout(struct http_session *s)
{
    struct backend *b = s->backend;
    switch (s->up_state) {
    case UP_NONE:
    case UP_CONNECTING:
        return;     /* bufferevent_socket_connect times the connect */
    case UP_WAIT_HEAD:
        if (!s->req_body.done) {
            log_info("http listener=%s client=%s: request body stalled for %u ms",
                     listener_name(s), s->base.peer_text, s->timer_ms);
            http_respond_error(s, 408, false);
            return;
        }
        log_warn("http listener=%s backend=%s/%s: no response after %u ms", listener_name(s),
                 b->pool, b->name, s->timer_ms);
        rt_pool_report_failure(s->pool, b);
        http_upstream_release(s, false);
        http_respond_error(s, 504, true);
        return;
    case UP_BODY:
        if (s->client_out_full) {
            client_stalled(s);
            return;
        }
        log_warn("http listener=%s backend=%s/%s: response body stalled for %u ms",
                 listener_name(s), b->pool, b->name, s->timer_ms);
        rt_pool_report_failure(s->pool, b);
        truncate_response(s);
        return;
    }
}

/* The backend side of a request: route it, pick a backend, take a pooled connection
 * or open one (retrying on connect failure), send the head, stream the request body,
 * read the response head, stream the response body, and give the connection back to
 * the pool when the exchange ended cleanly. The record and the upstream connection's
 * I/O are in exchange_io.c. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/bev.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/session.h"
#include "core/worker.h"
#include "http/exchange.h"
#include "http/exchange_internal.h"
#include "proxyproto/send.h"
#include "runtime/backend.h"
#include "upstream/connect.h"
#include "upstream/pool.h"

/* What a step of the exchange did. */
enum step { STEP_NONE, STEP_PROGRESS, STEP_CHANGED /* state changed: re-dispatch */ };

static const char *const up_state_names[] = {
    [UP_NONE] = "none", [UP_CONNECTING] = "connecting", [UP_WAIT_HEAD] = "wait-head",
    [UP_BODY] = "body",
};

static void set_up_state(struct http_exchange *ex, enum up_state next)
{
    log_debug("http exchange %p upstream %s -> %s", (void *)ex, up_state_names[ex->up_state],
              up_state_names[next]);
    ex->up_state = next;
}

static const char *listener_name(const struct http_exchange *ex)
{
    return ex->listener->cfg->name;
}

static const struct config *cfg_of(const struct http_exchange *ex) { return ex->runtime->cfg; }

/* Connections are only reused under the transport settings that made them: a reload
 * may have changed what a backend must prove, turned TLS on or off, or changed the
 * PROXY header that began them. */
static uint64_t pool_flavor(const struct rt_pool *pool)
{
    return pool->flavor;
}

/* A connection that began with a client's PROXY header serves that client only. */
static uintptr_t pool_owner(const struct http_exchange *ex)
{
    return ex->pool->cfg->proxy_protocol ? (uintptr_t)ex->client : 0;
}

static void release_backend(struct http_exchange *ex)
{
    if (ex->backend)
        rt_pool_release(ex->backend);
    ex->backend = NULL;
}

/* Forgets the connection (pooling or freeing it); the backend stays taken. */
static void drop_connection(struct http_exchange *ex, bool reusable)
{
    struct bufferevent *up = ex->up;
    http_exchange_disown_reads(ex, reusable);
    bufferevent_setcb(up, NULL, NULL, NULL, NULL);
    ex->up = NULL;
    if (reusable) {
        upstream_pool_put(worker_upstream_pool(ex->worker), ex->backend,
                          pool_flavor(ex->pool), pool_owner(ex), up,
                          ex->pool->cfg->keepalive_max_idle,
                          ex->pool->cfg->keepalive_idle_timeout_ms);
        if (pool_owner(ex))
            ex->client->owns_upstreams = true;
    } else {
        bev_close(up);
    }
    ex->body_throttled = false;
    ex->up_reading = false;
    ex->up_connected = ex->up_connect_failed = ex->up_timed_out = false;
    ex->up_eof = ex->up_error = ex->up_write_failed = false;
}

void http_exchange_release(struct http_exchange *ex, bool reusable)
{
    if (ex->up)
        drop_connection(ex, reusable);
    release_backend(ex);
    if (ex->up_state != UP_NONE)
        set_up_state(ex, UP_NONE);
}

/* 0, or the errno of a connection that could not even be started. */
static int open_connection(struct http_exchange *ex)
{
    uint8_t header[PROXYPROTO_WRITE_MAX];
    size_t header_len = proxyproto_session_header(ex->client, ex->pool->cfg->proxy_protocol,
                                                  header);
    struct bufferevent *bev = upstream_connect(worker_base(ex->worker), ex->pool, ex->backend,
                                               cfg_of(ex)->timeouts.connect_ms, header,
                                               header_len);
    if (!bev)
        return errno ? errno : EIO;
    http_exchange_install(ex, bev, false);
    set_up_state(ex, UP_CONNECTING);
    return 0;
}

/* A connection could not be started. Only what the backend did counts against it:
 * ferry out of descriptors or memory is ferry's trouble, which another backend would
 * share (true: give up, 503). */
static bool cannot_open(struct http_exchange *ex, int error)
{
    struct backend *b = ex->backend;
    bool is_local = upstream_error_is_local(error);
    log_warn("http listener=%s backend=%s/%s: cannot open a connection: %s%s",
             listener_name(ex), b->pool, b->name, strerror(error),
             is_local ? " (ferry's own resources: not counted against the backend)" : "");
    if (!is_local)
        rt_pool_report_failure(ex->pool, b);
    ex->fail_status = is_local ? 503 : 502;
    return is_local;
}

/* Keep the head for a second try: only a reused connection may turn out dead before
 * answering, and only a request that is safe to repeat is repeated. */
static bool can_resend(const struct http_exchange *ex)
{
    return ex->up_reused && ex->is_idempotent && !ex->body_started &&
           evbuffer_get_length(ex->fwd_head) > 0;
}

/* A WebSocket's upgrade (HTTP/2) waits for its 101 before any of its bytes go on. */
static bool holds_request_body(const struct http_exchange *ex)
{
    return ex->req_needs_upgrade && !ex->is_tunnel;
}

static void arm_wait_timer(struct http_exchange *ex)
{
    const struct config *cfg = cfg_of(ex);
    if (ex->req_done || holds_request_body(ex))
        ex->ops->set_timer(ex, cfg->timeouts.upstream_response_ms, HTTP_TIMER_FIXED);
    else    /* the client is still sending: it must not stall */
        ex->ops->set_timer(ex, cfg->timeouts.client_idle_ms, HTTP_TIMER_IDLE);
}

static void send_request_head(struct http_exchange *ex)
{
    struct evbuffer *out = bufferevent_get_output(ex->up);
    if (can_resend(ex)) {
        size_t n = evbuffer_get_length(ex->fwd_head);
        evbuffer_add(out, evbuffer_pullup(ex->fwd_head, (ev_ssize_t)n), n);
    } else {
        evbuffer_add_buffer(out, ex->fwd_head);
    }
    if (!ex->request_counted) {
        atomic_fetch_add_explicit(&ex->backend->requests, 1, memory_order_relaxed);
        ex->request_counted = true;
    }
    set_up_state(ex, UP_WAIT_HEAD);
    arm_wait_timer(ex);
}

void http_exchange_respond(struct http_exchange *ex, int status, bool may_keep)
{
    http_exchange_release(ex, false);
    ex->status = status;
    long n = ex->ops->respond(ex, status, may_keep);
    if (n > 0)
        ex->bytes_out += (uint64_t)n;
    ex->ops->finish(ex, true);
}

/* Tries backends until a connection is under way; answers 503 when none is eligible
 * at all or ferry cannot open a socket, else the status of the last failure. */
static void start_attempt(struct http_exchange *ex)
{
    unsigned attempts = ex->pool->cfg->retries + 1;
    if (attempts > RT_MAX_ATTEMPTS)
        attempts = RT_MAX_ATTEMPTS;
    while (ex->n_tried < attempts) {
        struct backend *b = rt_pool_pick(ex->pool, ex->tried, ex->n_tried, &ex->hint);
        if (!b)
            break;
        ex->tried[ex->n_tried++] = b;
        ex->backend = b;    /* rt_pool_pick reserved its slot */
        struct bufferevent *bev = upstream_pool_take(worker_upstream_pool(ex->worker), b,
                                                     pool_flavor(ex->pool), pool_owner(ex));
        if (bev) {
            http_exchange_install(ex, bev, true);
            send_request_head(ex);
            return;
        }
        int error = open_connection(ex);
        if (error == 0)
            return;
        bool is_local = cannot_open(ex, error);
        release_backend(ex);
        if (is_local)
            break;
    }
    int status = ex->n_tried == 0 ? 503 : ex->fail_status;
    log_warn("http listener=%s pool=%s: no backend available after %zu attempts: %d",
             listener_name(ex), ex->pool->cfg->name, ex->n_tried, status);
    http_exchange_respond(ex, status, true);
}

static bool is_idempotent(enum http1_method m)
{
    return m == HTTP1_METHOD_GET || m == HTTP1_METHOD_HEAD || m == HTTP1_METHOD_PUT ||
           m == HTTP1_METHOD_DELETE || m == HTTP1_METHOD_OPTIONS || m == HTTP1_METHOD_TRACE;
}

/* The record of a new request, on generation rt. */
static void begin_request(struct http_exchange *ex, struct runtime *rt, struct rt_listener *l,
                          const struct http_exchange_request *req, int64_t start_ms)
{
    runtime_ref(rt);
    ex->runtime = rt;
    ex->listener = l;
    ex->is_started = true;
    ex->is_recorded = false;
    ex->start_ms = ex->up_start_ms = start_ms;
    ex->status = 0;
    ex->bytes_out = 0;
    ex->n_tried = 0;
    ex->fail_status = 502;
    ex->pool = NULL;
    ex->req_done = ex->body_started = ex->request_counted = false;
    ex->resp_started = ex->resp_keep_alive = ex->resp_failed = false;
    ex->resp_sink = NULL;
    ex->hint = (struct rt_pick_hint){ .has_key = false };
    ex->method = req->method;
    ex->is_idempotent = is_idempotent(ex->method);
    ex->req_body_kind = req->body;
    ex->req_upgrade = req->is_upgrade;
    ex->req_needs_upgrade = req->needs_upgrade;
    ex->upgrade_accept[0] = '\0';
    ex->is_tunnel = ex->up_shut = false;
    ex->version = req->version;
    http_exchange_note_for_log(ex, req);
}

void http_exchange_reject(struct http_exchange *ex, struct runtime *rt, struct rt_listener *l,
                          const struct http_exchange_request *req, int64_t start_ms,
                          int status, bool may_keep)
{
    begin_request(ex, rt, l, req, start_ms);
    evbuffer_drain(ex->fwd_head, evbuffer_get_length(ex->fwd_head));
    http_exchange_respond(ex, status, may_keep);
}

void http_exchange_start(struct http_exchange *ex, struct runtime *rt, struct rt_listener *l,
                         const struct http_exchange_request *req, int64_t start_ms)
{
    begin_request(ex, rt, l, req, start_ms);
    ex->req_done = req->body_done;
    int route = req->method == HTTP1_METHOD_CONNECT
                    ? -1 : http_route_find(l->cfg->routes, l->n_routes, &req->route);
    if (route < 0) {
        evbuffer_drain(ex->fwd_head, evbuffer_get_length(ex->fwd_head));
        http_exchange_respond(ex, req->method == HTTP1_METHOD_CONNECT ? 501 : 404, true);
        return;
    }
    ex->pool = l->routes[route].pool;
    if (req->write_head && req->write_head(req, ex->pool->cfg->sticky.cookie, ex->fwd_head) < 0) {
        log_error("http listener=%s: out of memory building a request head", l->cfg->name);
        evbuffer_drain(ex->fwd_head, evbuffer_get_length(ex->fwd_head));
        ex->pool = NULL;
        http_exchange_respond(ex, 500, false);
        return;
    }
    http_exchange_note_affinity(ex, req);
    ex->up_start_ms = clock_now_ms();
    ex->ops->set_timer(ex, 0, HTTP_TIMER_FIXED);
    start_attempt(ex);
}

void http_exchange_count_failure(struct http_exchange *ex)
{
    if (ex->resp_failed)
        return;
    ex->resp_failed = true;
    rt_pool_report_failure(ex->pool, ex->backend);
}

static void connect_failed(struct http_exchange *ex)
{
    struct backend *b = ex->backend;
    log_warn("http listener=%s backend=%s/%s connect failed: %s", listener_name(ex), b->pool,
             b->name, ex->up_timed_out ? "timeout" : "refused or error");
    rt_pool_report_failure(ex->pool, b);
    ex->fail_status = ex->up_timed_out ? 504 : 502;
    http_exchange_release(ex, false);
    start_attempt(ex);
}

static enum step connecting_step(struct http_exchange *ex)
{
    if (ex->up_connect_failed) {
        connect_failed(ex);
        return STEP_CHANGED;
    }
    if (!ex->up_connected)
        return STEP_NONE;
    ex->up_connected = false;
    upstream_connected(ex->up);
    send_request_head(ex);
    return STEP_CHANGED;
}

/* The backend's side is broken (bad head, closed early, 101 out of the blue). */
static void broken_response(struct http_exchange *ex, const char *why)
{
    struct backend *b = ex->backend;
    log_warn("http listener=%s backend=%s/%s: broken response: %s", listener_name(ex), b->pool,
             b->name, why);
    http_exchange_count_failure(ex);
    http_exchange_respond(ex, 502, true);
}

/* The response cannot be completed: never let the client take what it got for a
 * whole response (the front end knows how to show the cut). */
static void truncate_response(struct http_exchange *ex)
{
    http_exchange_release(ex, false);
    ex->ops->finish(ex, false);
}

static void response_complete(struct http_exchange *ex)
{
    if (!ex->resp_failed)
        backend_report_success(ex->backend);
    /* Answered before the whole request arrived: neither connection is in a known
     * state any more. */
    bool reusable = ex->req_done && ex->resp_keep_alive && !ex->up_eof &&
                    !ex->up_write_failed && ex->pool->cfg->keepalive_max_idle > 0 &&
                    evbuffer_get_length(bufferevent_get_input(ex->up)) == 0 &&
                    evbuffer_get_length(bufferevent_get_output(ex->up)) == 0;
    http_exchange_release(ex, reusable);
    ex->ops->finish(ex, true);
}

static void resend(struct http_exchange *ex)
{
    struct backend *b = ex->backend;
    log_debug("http listener=%s backend=%s/%s: reused connection closed before answering, "
              "re-sending on a new one", listener_name(ex), b->pool, b->name);
    drop_connection(ex, false);
    int error = open_connection(ex);
    if (error == 0)
        return;
    bool is_local = cannot_open(ex, error);
    http_exchange_release(ex, false);
    if (is_local)
        http_exchange_respond(ex, ex->fail_status, true);
    else
        start_attempt(ex);
}

static void upstream_closed(struct http_exchange *ex)
{
    if (ex->up_state == UP_WAIT_HEAD) {
        if (!ex->up_any_byte && can_resend(ex))
            resend(ex);
        else
            broken_response(ex, ex->up_any_byte ? "closed in the middle of the response head"
                                                : "closed without a response");
        return;
    }
    if (ex->resp_body.kind == HTTP1_BODY_UNTIL_CLOSE && !ex->up_error) {
        ex->resp_body.done = true;
        response_complete(ex);
        return;
    }
    if (ex->is_tunnel) {        /* a reset ends a tunnel: the client sees one too */
        truncate_response(ex);
        return;
    }
    struct backend *b = ex->backend;
    log_warn("http listener=%s backend=%s/%s: connection %s in the middle of the response body",
             listener_name(ex), b->pool, b->name, ex->up_error ? "failed" : "closed");
    http_exchange_count_failure(ex);
    truncate_response(ex);
}

static enum step request_body_step(struct http_exchange *ex)
{
    uint64_t moved = 0;
    int rc = ex->ops->pull_body(ex, bufferevent_get_output(ex->up), &moved);
    if (moved > 0 && !ex->body_started) {
        ex->body_started = true;
        evbuffer_drain(ex->fwd_head, evbuffer_get_length(ex->fwd_head));
    }
    if (rc < 0) {
        log_info("http listener=%s client=%s: bad request body: %s", listener_name(ex),
                 ex->peer_text, http1_error_str(rc));
        if (ex->resp_started)
            truncate_response(ex);
        else
            http_exchange_respond(ex, http1_error_status(rc), false);
        return STEP_CHANGED;
    }
    if (ex->req_done && ex->up_state == UP_WAIT_HEAD)
        arm_wait_timer(ex);
    return moved > 0 || ex->req_done ? STEP_PROGRESS : STEP_NONE;
}

static void start_response(struct http_exchange *ex, const struct http1_response *resp,
                           const char *head, size_t head_len)
{
    char cookie[256];
    struct http_response_plan plan = {
        .set_cookie = http_exchange_sticky_cookie(ex, cookie, sizeof cookie) };
    http_exchange_judge_status(ex, resp->status);
    long n = ex->ops->response_head(ex, resp, head, head_len, &plan);
    evbuffer_drain(bufferevent_get_input(ex->up), head_len);
    if (n < 0)
        return;
    struct http1_limits lim = http_exchange_limits(cfg_of(ex), false);
    http_body_init(&ex->resp_body, resp->body, resp->content_length, &lim, plan.dechunk);
    ex->resp_body.trailers = plan.trailers;
    ex->resp_sink = plan.sink;
    ex->bytes_out += (uint64_t)n;
    ex->status = resp->status;
    ex->resp_started = true;
    /* After a refused upgrade the client's bytes may still be on their way (none
     * went, but the connection is not worth the doubt). */
    ex->resp_keep_alive = resp->keep_alive && !ex->req_needs_upgrade;
    set_up_state(ex, UP_BODY);
    ex->ops->set_timer(ex, cfg_of(ex)->timeouts.upstream_response_ms, HTTP_TIMER_OUTPUT);
}

/* 1xx before the final response (100 Continue): the front end relays it or not. */
static void forward_interim(struct http_exchange *ex, const struct http1_response *resp,
                            const char *head, size_t head_len)
{
    long n = ex->ops->interim(ex, resp, head, head_len);
    if (n > 0)
        ex->bytes_out += (uint64_t)n;
    evbuffer_drain(bufferevent_get_input(ex->up), head_len);
}

/* The exchange relays a tunnel its front end does not (an HTTP/2 stream): what the
 * backend sends is a body that ends when it closes, the client's bytes go on as the
 * request body, and the tunnel lives while either side moves (tcp_idle_ms). */
static void relay_tunnel(struct http_exchange *ex, const struct http_response_plan *plan)
{
    struct http1_limits lim = http_exchange_limits(cfg_of(ex), false);
    http_body_init(&ex->resp_body, HTTP1_BODY_UNTIL_CLOSE, 0, &lim, false);
    ex->resp_sink = plan->sink;
    ex->resp_keep_alive = false;
    ex->is_tunnel = true;
    set_up_state(ex, UP_BODY);
    ex->ops->set_timer(ex, cfg_of(ex)->timeouts.tcp_idle_ms, HTTP_TIMER_IDLE);
}

static void start_tunnel(struct http_exchange *ex, const struct http1_response *resp,
                         const char *head, size_t head_len)
{
    char cookie[256];   /* a WebSocket client comes back to its backend too */
    struct http_response_plan plan = {
        .set_cookie = http_exchange_sticky_cookie(ex, cookie, sizeof cookie) };
    long n = ex->ops->tunnel(ex, resp, head, head_len, &plan);
    evbuffer_drain(bufferevent_get_input(ex->up), head_len);
    if (n < 0)
        return;
    backend_report_success(ex->backend);
    ex->bytes_out += (uint64_t)n;
    ex->status = plan.sink ? 200 : 101;    /* what the client got (HTTP/2: 200) */
    ex->resp_started = true;
    http_exchange_record(ex);
    if (plan.sink)
        relay_tunnel(ex, &plan);
}

/* A backend that answers a WebSocket upgrade with a 2xx (an application without
 * WebSocket) is no broken backend: any client can ask for an upgrade, and counting
 * these would let one eject healthy backends. To the HTTP/2 client a 2xx would say
 * its tunnel is open: 502. */
static void refuse_upgrade(struct http_exchange *ex)
{
    log_info("http listener=%s backend=%s/%s: a 2xx, not 101, to a WebSocket upgrade: 502",
             listener_name(ex), ex->backend->pool, ex->backend->name);
    http_exchange_respond(ex, 502, true);
}

/* RFC 6455 §4.1: the client (ferry, when it wrote the key) fails an upgrade whose
 * accept does not answer its key. */
static bool upgrade_accepted(const struct http_exchange *ex, const struct http1_response *resp)
{
    static const char name[] = "sec-websocket-accept";
    if (!ex->upgrade_accept[0])
        return true;
    size_t want = strlen(ex->upgrade_accept);
    for (size_t i = 0; i < resp->num_headers; i++) {
        const struct http1_header *h = &resp->headers[i];
        if (h->name_len == sizeof name - 1 && strncasecmp(h->name, name, h->name_len) == 0)
            return h->value_len == want && memcmp(h->value, ex->upgrade_accept, want) == 0;
    }
    return false;
}

static void dispatch_response(struct http_exchange *ex, const struct http1_response *resp,
                              const char *head, size_t head_len)
{
    if (resp->is_interim)
        forward_interim(ex, resp, head, head_len);
    else if (resp->is_upgrade && !(ex->req_upgrade && ex->ops->tunnel))
        broken_response(ex, "101 Switching Protocols without an upgrade request");
    else if (resp->is_upgrade && !upgrade_accepted(ex, resp))
        broken_response(ex, "a 101 whose Sec-WebSocket-Accept does not answer the key");
    else if (resp->is_upgrade)
        start_tunnel(ex, resp, head, head_len);
    else if (ex->req_needs_upgrade && resp->status / 100 == 2)
        refuse_upgrade(ex);
    else
        start_response(ex, resp, head, head_len);
}

static enum step response_head_step(struct http_exchange *ex)
{
    struct evbuffer *in = bufferevent_get_input(ex->up);
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return STEP_NONE;
    if (!ex->up_any_byte) {
        ex->up_any_byte = true;     /* the backend has the request: no re-send now */
        evbuffer_drain(ex->fwd_head, evbuffer_get_length(ex->fwd_head));
    }
    size_t max = cfg_of(ex)->limits.max_header_bytes;
    size_t window = len < max ? len : max;
    if (window <= ex->up_scan_len)
        return STEP_NONE;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)window);
    if (!p || !http1_head_ready(p, window, ex->up_scan_len, max)) {
        ex->up_scan_len = window;
        return STEP_NONE;
    }
    struct http1_limits lim = http_exchange_limits(cfg_of(ex), false);
    struct http1_header headers[lim.max_headers];
    struct http1_response resp = { .headers = headers };
    int rc = http1_parse_response(p, window, &lim, ex->method, &resp);
    if (rc == HTTP1_INCOMPLETE) {
        ex->up_scan_len = window;
        return STEP_NONE;
    }
    ex->up_scan_len = 0;
    if (rc < 0)
        broken_response(ex, http1_error_str(rc));
    else
        dispatch_response(ex, &resp, p, (size_t)rc);
    return STEP_CHANGED;
}

static enum step response_body_step(struct http_exchange *ex)
{
    uint64_t moved;
    int rc = http_body_move(&ex->resp_body, bufferevent_get_input(ex->up), ex->resp_sink,
                            &moved);
    ex->bytes_out += moved;
    if (moved > 0)
        ex->ops->response_progress(ex);
    if (rc < 0) {
        log_warn("http listener=%s backend=%s/%s: broken response body: %s", listener_name(ex),
                 ex->backend->pool, ex->backend->name, http1_error_str(rc));
        http_exchange_count_failure(ex);
        truncate_response(ex);
        return STEP_CHANGED;
    }
    if (ex->resp_body.done) {
        response_complete(ex);
        return STEP_CHANGED;
    }
    return moved > 0 ? STEP_PROGRESS : STEP_NONE;
}

bool http_exchange_step(struct http_exchange *ex)
{
    if (ex->up_state == UP_NONE)
        return false;
    if (ex->up_state == UP_CONNECTING)
        return connecting_step(ex) != STEP_NONE;
    enum step r = STEP_NONE;
    /* After a failed write the body has nowhere to go: it waits (bounded) with the
     * front end while the backend's answer is read. */
    if (!ex->req_done && !ex->body_throttled && !ex->up_write_failed &&
        !holds_request_body(ex) && (r = request_body_step(ex)) == STEP_CHANGED)
        return true;
    bool progressed = r == STEP_PROGRESS;
    if (ex->up_state == UP_WAIT_HEAD && response_head_step(ex) == STEP_CHANGED)
        return true;
    if (ex->up_state == UP_BODY && (r = response_body_step(ex)) == STEP_CHANGED)
        return true;
    progressed |= r == STEP_PROGRESS;
    if (ex->up_eof) {
        upstream_closed(ex);
        return true;
    }
    return progressed;
}

void http_exchange_timeout(struct http_exchange *ex)
{
    struct backend *b = ex->backend;
    switch (ex->up_state) {
    case UP_NONE:
    case UP_CONNECTING:
        return;     /* bufferevent_socket_connect times the connect */
    case UP_WAIT_HEAD:
        if (!ex->req_done && !holds_request_body(ex)) {
            log_info("http listener=%s client=%s: request body stalled", listener_name(ex),
                     ex->peer_text);
            http_exchange_respond(ex, 408, false);
            return;
        }
        log_warn("http listener=%s backend=%s/%s: no response after %u ms", listener_name(ex),
                 b->pool, b->name, cfg_of(ex)->timeouts.upstream_response_ms);
        rt_pool_report_failure(ex->pool, b);
        http_exchange_respond(ex, 504, true);
        return;
    case UP_BODY:
        /* The client not taking the response is no fault of the backend's, nor is a
         * tunnel where neither side said anything. */
        if (ex->is_tunnel) {
            log_debug("http listener=%s client=%s: tunnel idle for %u ms", listener_name(ex),
                      ex->peer_text, cfg_of(ex)->timeouts.tcp_idle_ms);
        } else if (!ex->ops->response_room(ex)) {
            log_info("http listener=%s client=%s: response not read", listener_name(ex),
                     ex->peer_text);
        } else {
            log_warn("http listener=%s backend=%s/%s: response body stalled",
                     listener_name(ex), b->pool, b->name);
            http_exchange_count_failure(ex);
        }
        truncate_response(ex);
        return;
    }
}

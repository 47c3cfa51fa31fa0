/* An HTTP/2 stream: its header list as it arrives, the request it becomes (an
 * exchange, as for HTTP/1.1), its body both ways with flow control as back-pressure,
 * and what the exchange asks of an HTTP/2 client (struct http_exchange_ops). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/worker.h"
#include "http/forward.h"
#include "http2/internal.h"
#include "http2/translate.h"

static const struct http_exchange_ops h2_exchange_ops;

static struct h2_stream *stream_of(struct http_exchange *ex)
{
    return (struct h2_stream *)ex;  /* ex is the first member */
}

static nghttp2_session *ng_of(const struct h2_stream *st) { return st->conn->ng; }

static struct listen_socket *socket_of(const struct h2_stream *st)
{
    return st->conn->session->base.listener->socket;
}

/* ---- timer --------------------------------------------------------------------------- */

static void add_timer_event(struct h2_stream *st, int64_t now, unsigned ms)
{
    struct timeval tv = clock_tv_from_ms(ms);
    evtimer_add(st->timer, &tv);
    st->timer_due_ms = now + ms;
}

static void on_stream_timer(evutil_socket_t fd, short what, void *arg)
{
    struct h2_stream *st = arg;
    if (!st->timer_on)
        return;
    int64_t now = clock_now_ms();
    if (st->timer_deadline_ms > st->timer_due_ms && st->timer_deadline_ms > now) {
        add_timer_event(st, now, (unsigned)(st->timer_deadline_ms - now));
        return;
    }
    st->timer_expired = true;
    h2_stream_mark(st);
    h2_conn_kick(st->conn);
}

static void arm_timer(struct h2_stream *st, unsigned ms, bool on_activity)
{
    int64_t now = clock_now_ms();
    st->timer_ms = ms;
    st->timer_on = true;
    st->timer_expired = false;      /* an expiry of the deadline this one replaces */
    st->timer_on_activity = on_activity;
    st->activity_ms = now;
    st->timer_deadline_ms = now + ms;
    if (!evtimer_pending(st->timer, NULL) || st->timer_due_ms > st->timer_deadline_ms)
        add_timer_event(st, now, ms);
}

/* The timer is off; its event, if added, fires for nothing, and an expiry not yet
 * acted on (say the header deadline, in the round the headers completed) is void. */
static void stop_timer(struct h2_stream *st)
{
    st->timer_on = false;
    st->timer_expired = false;
}

/* No more callbacks of the timer (the stream ends, or the connection closes). */
static void remove_timer(struct h2_stream *st)
{
    evtimer_del(st->timer);
    st->timer_on = false;
}

/* True when the timer really expired (with on_activity: no progress for timer_ms);
 * else it is armed again for the rest. */
static bool timer_elapsed(struct h2_stream *st)
{
    if (!st->timer_on_activity)
        return true;
    int64_t now = clock_now_ms();
    int64_t idle = now - st->activity_ms;
    if (idle >= (int64_t)st->timer_ms)
        return true;
    st->timer_deadline_ms = st->activity_ms + st->timer_ms;
    add_timer_event(st, now, st->timer_ms - (unsigned)idle);
    return false;
}

/* ---- life ------------------------------------------------------------------------------ */

static void destroy(struct h2_stream *st)
{
    http_exchange_free(&st->ex);    /* a request cut short is logged here */
    free(st->fields);
    if (st->timer)
        event_free(st->timer);
    if (st->req_data)
        evbuffer_free(st->req_data);
    if (st->req_tail)
        evbuffer_free(st->req_tail);
    if (st->resp_data)
        evbuffer_free(st->resp_data);
    if (st->resp_trailers)
        evbuffer_free(st->resp_trailers);
    free(st);
}

static struct h2_stream *allocate(struct http_session *s)
{
    struct h2_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    if (http_exchange_init(&st->ex, &h2_exchange_ops, s->base.worker, &s->base) < 0 ||
        !(st->timer = evtimer_new(worker_base(s->base.worker), on_stream_timer, st))) {
        destroy(st);
        return NULL;
    }
    return st;
}

/* Closed streams a worker keeps for its connections' next ones (their buffers, events
 * and field arrays, empty), up to H2_SPARE_STREAMS: a stream costs no malloc while the
 * worker serves HTTP/2 at a steady rate. A worker cache (worker_cache): only the
 * worker's thread touches them. */
struct h2_spares {
    struct h2_stream *list;     /* owned */
    size_t n;
};

static struct h2_stream *take_spare(struct h2_spares *spares)
{
    if (!spares)
        return NULL;
    struct h2_stream *st = spares->list;
    if (st) {
        spares->list = st->next;
        spares->n--;
        st->next = NULL;
    }
    return st;
}

static void drain(struct evbuffer *buf)
{
    if (buf)
        evbuffer_drain(buf, evbuffer_get_length(buf));
}

/* st, its request ended, made as allocate() makes a stream but for the buffers it
 * allocated since (kept, empty). req_tail goes: that it exists says the request had
 * trailers. */
static void keep_spare(struct h2_spares *spares, struct h2_stream *st)
{
    drain(st->req_data);
    drain(st->resp_data);
    drain(st->resp_trailers);
    if (st->req_tail)
        evbuffer_free(st->req_tail);
    *st = (struct h2_stream){ .ex = st->ex, .fields = st->fields, .fields_cap = st->fields_cap,
                              .timer = st->timer, .req_data = st->req_data,
                              .resp_data = st->resp_data, .resp_trailers = st->resp_trailers,
                              .next = spares->list };
    spares->list = st;
    spares->n++;
}

static void free_spares(void *cache)
{
    struct h2_spares *spares = cache;
    for (struct h2_stream *st; (st = take_spare(spares));)
        destroy(st);
    free(spares);
}

/* The worker's spares; NULL when out of memory (no reuse then). */
static struct h2_spares *spares_of(struct worker *w)
{
    static const char key;      /* its address names the cache */
    return worker_cache(w, &key, sizeof(struct h2_spares), free_spares);
}

struct h2_stream *h2_stream_new(struct h2_conn *c, int32_t id)
{
    struct http_session *s = c->session;
    struct h2_stream *st = take_spare(spares_of(s->base.worker));
    if (st)
        http_exchange_reset(&st->ex, &s->base);
    else if (!(st = allocate(s)))
        return NULL;
    st->conn = c;
    st->id = id;
    st->state = H2S_HEADERS;
    st->needs_step = true;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    c->n_streams++;
    atomic_fetch_add_explicit(&socket_of(st)->h2_streams, 1, memory_order_relaxed);
    st->counted = true;
    st->start_ms = clock_now_ms();
    arm_timer(st, h2_cfg(c)->timeouts.client_header_ms, false);
    return st;
}

static void release_fields(struct h2_stream *st)
{
    for (size_t i = 0; i < st->n_fields; i++) {
        nghttp2_rcbuf_decref(st->fields[i].name);
        nghttp2_rcbuf_decref(st->fields[i].value);
    }
    st->n_fields = 0;
    st->list_bytes = 0;
    st->too_large = false;
}

void h2_stream_free(struct h2_stream *st)
{
    struct h2_conn *c = st->conn;
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    c->n_streams--;
    if (st->is_websocket)
        c->n_websockets--;
    if (st->counted)
        atomic_fetch_sub_explicit(&socket_of(st)->h2_streams, 1, memory_order_relaxed);
    c->resp_buffered -= st->resp_counted;
    release_fields(st);
    struct h2_spares *spares = spares_of(c->session->base.worker);
    if (!spares || spares->n >= H2_SPARE_STREAMS) {
        destroy(st);
        return;
    }
    http_exchange_end(&st->ex);     /* a request cut short is logged here */
    remove_timer(st);
    keep_spare(spares, st);
}

bool h2_stream_closed(struct h2_stream *st, uint32_t error_code)
{
    bool cut = !st->resp_complete;
    if (cut)
        log_debug("http2 stream %d closed before its response completed: %s", st->id,
                  nghttp2_http2_strerror(error_code));
    /* Payload received but never handed on still holds the connection's window. */
    if (st->req_data && evbuffer_get_length(st->req_data) > 0)
        nghttp2_session_consume_connection(ng_of(st), evbuffer_get_length(st->req_data));
    h2_stream_free(st);
    return cut;
}

void h2_stream_stop(struct h2_stream *st)
{
    http_exchange_stop(&st->ex);
    remove_timer(st);
}

/* ---- the header list ------------------------------------------------------------------ */

void h2_stream_add_field(struct h2_stream *st, nghttp2_rcbuf *name, nghttp2_rcbuf *value)
{
    const struct config *cfg = h2_cfg(st->conn);
    size_t name_len = nghttp2_rcbuf_get_buf(name).len, value_len = nghttp2_rcbuf_get_buf(value).len;
    st->list_bytes += h2_field_size(name_len, value_len);
    /* Past the limits nothing more is kept (an HPACK bomb decodes to nothing here): the
     * request is answered 431 once its block ends. Four pseudo-headers come on top. */
    if (st->too_large || st->list_bytes > cfg->limits.max_header_bytes ||
        st->n_fields >= (size_t)cfg->limits.max_headers + 4) {
        st->too_large = true;
        return;
    }
    if (st->n_fields == st->fields_cap) {
        size_t cap = st->fields_cap ? 2 * st->fields_cap : 16;
        struct h2_field *grown = realloc(st->fields, cap * sizeof *grown);
        if (!grown) {
            st->too_large = true;
            return;
        }
        st->fields = grown;
        st->fields_cap = cap;
    }
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    st->fields[st->n_fields++] = (struct h2_field){ name, value };
}

void h2_stream_fields_as_nv(const struct h2_stream *st, nghttp2_nv *nva)
{
    for (size_t i = 0; i < st->n_fields; i++) {
        nghttp2_vec n = nghttp2_rcbuf_get_buf(st->fields[i].name);
        nghttp2_vec v = nghttp2_rcbuf_get_buf(st->fields[i].value);
        nva[i] = (nghttp2_nv){ n.base, v.base, n.len, v.len, NGHTTP2_NV_FLAG_NONE };
    }
}

/* ---- the request ------------------------------------------------------------------------ */

static void reset_stream(struct h2_stream *st, uint32_t error_code)
{
    nghttp2_submit_rst_stream(ng_of(st), NGHTTP2_FLAG_NONE, st->id, error_code);
    st->state = H2S_DONE;
    stop_timer(st);
}

/* Checks the request's header list; its head is written once it found a route
 * (write_head). */
static int translate(struct h2_stream *st, bool end_stream, const struct http1_limits *lim,
                     struct h2_request_info *info)
{
    if (st->too_large)
        return H2_TRANSLATE_TOO_LARGE;
    nghttp2_nv nva[st->n_fields ? st->n_fields : 1];
    h2_stream_fields_as_nv(st, nva);
    struct http_request_rewrite unused = { .client_addr = "" };
    return h2_translate_request(nva, st->n_fields, end_stream, lim, &unused, NULL, info);
}

static void start_exchange(struct h2_stream *st, const struct h2_request_info *info,
                           bool end_stream)
{
    struct http_session *s = st->conn->session;
    struct http1_limits lim = http_exchange_limits(s->base.runtime->cfg, true);
    struct http_exchange_request x = {
        .method = info->method_id,
        .method_text = info->method,
        .method_len = info->method_len,
        .target = info->path ? info->path : info->authority,
        .target_len = info->path ? info->path_len : info->authority_len,
        .route = { info->authority, info->authority_len, info->path, info->path_len },
        .body = info->body,
        .body_done = end_stream,
        .is_upgrade = info->is_websocket,
        .needs_upgrade = info->is_websocket,
        .version = LISTEN_HTTP_2,
        .write_head = h2_request_write_head,
        .find_header = h2_request_find_header,
        .find_cookie = h2_request_find_cookie,
    };
    struct h2_request r = { st, info };
    x.front = &r;
    if (lim.max_body_bytes && info->body == HTTP1_BODY_LENGTH &&
        info->content_length > lim.max_body_bytes)
        http_exchange_reject(&st->ex, s->base.runtime, s->base.listener, &x, st->start_ms, 413,
                             true);
    else
        http_exchange_start(&st->ex, s->base.runtime, s->base.listener, &x, st->start_ms);
}

/* 0, or the status refusing a WebSocket: 501 when a reload turned them off (the
 * connection's SETTINGS still offer them), 503 past H2_MAX_WEBSOCKETS. */
static int admit_websocket(struct h2_stream *st)
{
    struct h2_conn *c = st->conn;
    if (!c->session->base.listener->cfg->http2.websocket)
        return 501;
    if (c->n_websockets >= H2_MAX_WEBSOCKETS) {
        log_info("http2 listener=%s client=%s: more than %d WebSockets on one connection",
                 c->session->base.listener->cfg->name, c->session->base.peer_text,
                 H2_MAX_WEBSOCKETS);
        return 503;
    }
    st->is_websocket = true;
    c->n_websockets++;
    return 0;
}

void h2_stream_dispatch(struct h2_stream *st, bool end_stream)
{
    struct http_session *s = st->conn->session;
    st->req_end = end_stream;
    h2_stream_mark(st);
    stop_timer(st);
    if (!http_refresh_generation(s)) {
        log_debug("http2 session %p: listener gone after reload, refusing stream %d", (void *)s,
                  st->id);
        release_fields(st);
        reset_stream(st, NGHTTP2_REFUSED_STREAM);
        h2_drain(s);
        return;
    }
    struct http1_limits lim = http_exchange_limits(s->base.runtime->cfg, true);
    struct h2_request_info info;
    int rc = translate(st, end_stream, &lim, &info);
    if (rc == H2_TRANSLATE_MALFORMED) {
        log_debug("http2 listener=%s client=%s: malformed request on stream %d",
                  s->base.listener->cfg->name, s->base.peer_text, st->id);
        release_fields(st);
        reset_stream(st, NGHTTP2_PROTOCOL_ERROR);
        return;
    }
    st->state = H2S_EXCHANGE;
    int status = rc == H2_TRANSLATE_TOO_LARGE ? 431
                 : rc == H2_TRANSLATE_TARGET_TOO_LONG ? 414
                 : rc == H2_TRANSLATE_UNSUPPORTED ? 501
                 : rc < 0 ? 500
                 : info.is_websocket ? admit_websocket(st) : 0;
    if (status) {
        struct http_exchange_request unknown = { .version = LISTEN_HTTP_2 };
        http_exchange_reject(&st->ex, s->base.runtime, s->base.listener, &unknown, st->start_ms,
                             status, true);
    } else {
        start_exchange(st, &info, end_stream);
    }
    release_fields(st);
}

void h2_stream_trailers(struct h2_stream *st)
{
    st->req_end = true;
    h2_stream_mark(st);
    if (st->is_websocket) {     /* RFC 9113 §8.5: a tunnel's stream carries DATA only */
        release_fields(st);
        reset_stream(st, NGHTTP2_PROTOCOL_ERROR);
        return;
    }
    if (st->state != H2S_EXCHANGE || !st->ex.is_started ||
        st->ex.req_body_kind != HTTP1_BODY_CHUNKED) {
        release_fields(st);     /* a body with a length has no room for them */
        return;
    }
    const struct config *cfg = h2_cfg(st->conn);
    struct http1_limits lim = http_exchange_limits(cfg, true);
    int rc = H2_TRANSLATE_NO_MEMORY;
    if (!st->too_large && (st->req_tail || (st->req_tail = evbuffer_new()))) {
        nghttp2_nv nva[st->n_fields ? st->n_fields : 1];
        h2_stream_fields_as_nv(st, nva);
        rc = h2_translate_request_trailers(nva, st->n_fields, &lim, st->req_tail);
    } else if (st->too_large) {
        rc = H2_TRANSLATE_TOO_LARGE;
    }
    release_fields(st);
    if (rc < 0)
        reset_stream(st, rc == H2_TRANSLATE_NO_MEMORY ? NGHTTP2_INTERNAL_ERROR
                                                      : NGHTTP2_PROTOCOL_ERROR);
}

void h2_stream_data(struct h2_stream *st, const uint8_t *data, size_t len)
{
    st->activity_ms = clock_now_ms();
    h2_stream_mark(st);
    bool wanted = st->state == H2S_EXCHANGE && st->ex.is_started && !st->ex.req_done;
    if (wanted && !st->req_data)
        st->req_data = evbuffer_new();
    if (!wanted || !st->req_data || evbuffer_add(st->req_data, data, len) < 0) {
        /* Nobody takes it (answered already, or reset): keep the windows open. */
        nghttp2_session_consume(ng_of(st), st->id, len);
        return;
    }
    st->req_received += len;
}

void h2_stream_end_of_request(struct h2_stream *st)
{
    st->req_end = true;
    h2_stream_mark(st);
}

/* ---- what the exchange asks of an HTTP/2 client ------------------------------------------ */

static void kick(struct http_exchange *ex)
{
    struct h2_stream *st = stream_of(ex);
    st->activity_ms = clock_now_ms();
    h2_stream_mark(st);
    h2_conn_kick(st->conn);
}

/* A stream's activity is any of its progress (its DATA received or sent, its
 * backend's callbacks): the client's window already bounds what it can send. */
static void set_timer(struct http_exchange *ex, unsigned ms, enum http_timer_rule rule)
{
    struct h2_stream *st = stream_of(ex);
    if (ms == 0)
        stop_timer(st);
    else
        arm_timer(st, ms, rule != HTTP_TIMER_FIXED);
}

/* The payload as fwd_head framed it (chunks when its length was not known), and the
 * window opened by what the upstream took. */
static int pull_body(struct http_exchange *ex, struct evbuffer *out, uint64_t *moved)
{
    struct h2_stream *st = stream_of(ex);
    uint64_t max = st->ex.runtime->cfg->limits.max_body_bytes;
    size_t n = st->req_data ? evbuffer_get_length(st->req_data) : 0;
    *moved = 0;
    /* A WebSocket's bytes are no body: as in an HTTP/1.1 tunnel, no limit. */
    if (max && st->req_received > max && ex->req_body_kind != HTTP1_BODY_UNTIL_CLOSE)
        return HTTP1_ERR_BODY_TOO_LARGE;
    bool chunked = ex->req_body_kind == HTTP1_BODY_CHUNKED;
    if (n > 0) {
        if (chunked)
            evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add_buffer(out, st->req_data);
        if (chunked)
            evbuffer_add(out, "\r\n", 2);
        nghttp2_session_consume(ng_of(st), st->id, n);
        *moved = n;
    }
    if (st->req_end) {
        if (chunked && st->req_tail)
            evbuffer_add_buffer(out, st->req_tail);
        else if (chunked)
            evbuffer_add(out, "0\r\n\r\n", 5);
        ex->req_done = true;
    }
    return 0;
}

/* Payload the data provider may hand on now. */
static ssize_t read_response(nghttp2_session *ng, int32_t stream_id, uint8_t *buf,
                             size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                             void *user_data);

static int submit_with_body(struct h2_stream *st, const nghttp2_nv *nva, size_t n, bool has_body)
{
    nghttp2_data_provider provider = { .source.ptr = st, .read_callback = read_response };
    if (!st->resp_data)
        st->resp_data = evbuffer_new();
    if (!st->resp_data ||
        nghttp2_submit_response(ng_of(st), st->id, nva, n, has_body ? &provider : NULL) != 0)
        return -1;
    st->resp_submitted = true;
    return 0;
}

/* The final response's HEADERS, translated by `to_h2` (a response, or a tunnel's
 * 101) with plan->set_cookie added; the body goes to resp_data. The stream is reset
 * when that fails (-1). */
static int submit_head(struct h2_stream *st, const struct http1_response *resp, size_t head_len,
                       const struct http_response_plan *plan, bool has_body,
                       int (*to_h2)(const struct http1_response *,
                                    struct h2_response_fields *))
{
    nghttp2_nv nva[resp->num_headers + 3];
    char names[head_len];
    struct h2_response_fields f = { .nva = nva, .cap = resp->num_headers + 2, .names = names,
                                    .names_cap = head_len };
    int rc = to_h2(resp, &f);
    if (rc == 0 && plan->set_cookie)
        nva[f.count++] = (nghttp2_nv){ (uint8_t *)"set-cookie", (uint8_t *)plan->set_cookie, 10,
                                       strlen(plan->set_cookie), NGHTTP2_NV_FLAG_NONE };
    if (rc < 0 || submit_with_body(st, f.nva, f.count, has_body) < 0) {
        reset_stream(st, NGHTTP2_INTERNAL_ERROR);
        return -1;
    }
    return 0;
}

static long response_head(struct http_exchange *ex, const struct http1_response *resp,
                          const char *head, size_t head_len, struct http_response_plan *plan)
{
    struct h2_stream *st = stream_of(ex);
    /* Only a chunked body has trailers. */
    bool has_trailers = resp->body == HTTP1_BODY_CHUNKED;
    if (has_trailers && !st->resp_trailers && !(st->resp_trailers = evbuffer_new())) {
        reset_stream(st, NGHTTP2_INTERNAL_ERROR);
        return -1;
    }
    if (submit_head(st, resp, head_len, plan, resp->body != HTTP1_BODY_NONE,
                    h2_translate_response) < 0)
        return -1;
    plan->sink = st->resp_data;
    plan->dechunk = true;
    plan->trailers = has_trailers ? st->resp_trailers : NULL;
    return 0;   /* header bytes are HPACK's business; the payload is counted */
}

static long interim(struct http_exchange *ex, const struct http1_response *resp,
                    const char *head, size_t head_len)
{
    struct h2_stream *st = stream_of(ex);
    nghttp2_nv nva[resp->num_headers + 2];
    char names[head_len];
    struct h2_response_fields f = { .nva = nva, .cap = resp->num_headers + 2, .names = names,
                                    .names_cap = head_len };
    if (h2_translate_response(resp, &f) == 0)
        nghttp2_submit_headers(ng_of(st), NGHTTP2_FLAG_NONE, st->id, NULL, f.nva, f.count, NULL);
    return 0;
}

/* A WebSocket's 101 (extended CONNECT, RFC 8441 §5): the client gets 200, the
 * stream stays open, and the exchange relays the backend's bytes into resp_data. */
static long tunnel(struct http_exchange *ex, const struct http1_response *resp,
                   const char *head, size_t head_len, struct http_response_plan *plan)
{
    struct h2_stream *st = stream_of(ex);
    if (submit_head(st, resp, head_len, plan, true, h2_translate_tunnel_response) < 0)
        return -1;
    plan->sink = st->resp_data;
    return 0;
}

static bool response_room(struct http_exchange *ex)
{
    struct h2_stream *st = stream_of(ex);
    struct h2_conn *c = st->conn;
    size_t held = st->resp_data ? evbuffer_get_length(st->resp_data) : 0;
    if (c->resp_buffered >= H2_CONN_BUFFER ||
        evbuffer_get_length(c->session->client_out) >= HTTP_HIGH_WATER)
        return false;
    /* Below the smaller bound the client's window does not matter (nghttp2 looks the
     * stream up to tell it). */
    return held < H2_STALLED_BUFFER ||
           (held < H2_STREAM_BUFFER &&
            nghttp2_session_get_stream_remote_window_size(c->ng, st->id) > 0);
}

/* Counts what resp_data holds now in the connection's total. */
static void count_response(struct h2_stream *st)
{
    size_t held = evbuffer_get_length(st->resp_data);
    st->conn->resp_buffered += held - st->resp_counted;
    st->resp_counted = held;
}

static void resume(struct h2_stream *st)
{
    if (!st->resp_deferred)
        return;
    st->resp_deferred = false;
    nghttp2_session_resume_data(ng_of(st), st->id);
}

static void response_progress(struct http_exchange *ex)
{
    struct h2_stream *st = stream_of(ex);
    count_response(st);
    resume(st);
}

static long respond(struct http_exchange *ex, int status, bool may_keep)
{
    struct h2_stream *st = stream_of(ex);
    char status_text[8], body[64], length[24];
    int body_len = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    snprintf(status_text, sizeof status_text, "%d", status);
    snprintf(length, sizeof length, "%d", body_len);
    nghttp2_nv nva[] = {
        { (uint8_t *)":status", (uint8_t *)status_text, 7, strlen(status_text), NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"content-type", (uint8_t *)"text/plain", 12, 10, NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"content-length", (uint8_t *)length, 14, strlen(length), NGHTTP2_NV_FLAG_NONE },
    };
    /* A response to HEAD has no content (RFC 9113 §8.1.1), only its length. */
    bool has_body = ex->method != HTTP1_METHOD_HEAD;
    if (submit_with_body(st, nva, 3, has_body) < 0 ||
        (has_body && evbuffer_add(st->resp_data, body, (size_t)body_len) < 0)) {
        reset_stream(st, NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    count_response(st);
    return has_body ? body_len : 0;
}

static void finish(struct http_exchange *ex, bool complete)
{
    struct h2_stream *st = stream_of(ex);
    if (st->state != H2S_EXCHANGE)
        return;     /* reset already */
    if (complete) {
        st->resp_end = true;
        resume(st);
        st->state = H2S_DONE;
        /* The client must take the rest in time (its window may stay shut). */
        arm_timer(st, h2_cfg(st->conn)->timeouts.client_idle_ms, true);
    } else {
        /* RFC 9113 §8.5: a tunnel whose TCP side broke (or went idle) is a CONNECT_ERROR */
        reset_stream(st, ex->is_tunnel ? NGHTTP2_CONNECT_ERROR : NGHTTP2_INTERNAL_ERROR);
    }
    http_exchange_end(ex);
}

static const struct http_exchange_ops h2_exchange_ops = {
    .kick = kick,
    .set_timer = set_timer,
    .pull_body = pull_body,
    .response_head = response_head,
    .interim = interim,
    .tunnel = tunnel,   /* extended CONNECT for a WebSocket */
    .response_room = response_room,
    .response_progress = response_progress,
    .respond = respond,
    .finish = finish,
};

/* ---- sending the response ------------------------------------------------------------ */

static int submit_trailers(struct h2_stream *st)
{
    size_t len = evbuffer_get_length(st->resp_trailers);
    const char *section = (const char *)evbuffer_pullup(st->resp_trailers, (ev_ssize_t)len);
    size_t cap = (size_t)h2_cfg(st->conn)->limits.max_headers + 1;
    nghttp2_nv nva[cap];
    char names[len];
    struct h2_response_fields f = { .nva = nva, .cap = cap, .names = names, .names_cap = len };
    if (!section || h2_translate_trailer_section(section, len, &f) < 0 || f.count == 0)
        return -1;
    return nghttp2_submit_trailer(ng_of(st), st->id, f.nva, f.count);
}

static ssize_t read_response(nghttp2_session *ng, int32_t stream_id, uint8_t *buf,
                             size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                             void *user_data)
{
    struct h2_stream *st = source->ptr;
    size_t held = evbuffer_get_length(st->resp_data);
    if (held == 0 && !st->resp_end) {
        st->resp_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = held < length ? held : length;
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == held && st->resp_end) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->resp_trailers && evbuffer_get_length(st->resp_trailers) > 2 &&
            submit_trailers(st) == 0)
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

int h2_stream_send_data(struct h2_stream *st, const uint8_t *framehd, size_t length)
{
    struct evbuffer *out = st->conn->session->client_out;
    if (evbuffer_add(out, framehd, 9) < 0 ||
        (length > 0 && evbuffer_remove_buffer(st->resp_data, out, length) != (int)length))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    count_response(st);
    st->activity_ms = clock_now_ms();
    h2_guard_useful(&st->conn->guard);
    return 0;
}

void h2_stream_sent_end(struct h2_stream *st)
{
    st->resp_complete = true;
    h2_guard_stream_completed(&st->conn->guard);
    /* Answered before the request ended: ask the client to stop sending (RFC 9113
     * §8.1), its remaining DATA would only be discarded. */
    if (!st->req_end)
        nghttp2_submit_rst_stream(ng_of(st), NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
}

/* ---- the pump ----------------------------------------------------------------------------- */

static void stream_timeout(struct h2_stream *st)
{
    struct http_session *s = st->conn->session;
    if (!timer_elapsed(st))
        return;
    switch (st->state) {
    case H2S_HEADERS:
        log_debug("http2 session %p: header block of stream %d not complete after %u ms",
                  (void *)s, st->id, st->timer_ms);
        h2_conn_terminate(st->conn, NGHTTP2_NO_ERROR);
        break;
    case H2S_EXCHANGE:
        http_exchange_timeout(&st->ex);
        break;
    case H2S_DONE:
        log_debug("http2 session %p: stream %d not read for %u ms, reset", (void *)s, st->id,
                  st->timer_ms);
        reset_stream(st, NGHTTP2_CANCEL);
        break;
    }
}

void h2_stream_mark(struct h2_stream *st) { st->needs_step = true; }

bool h2_stream_step(struct h2_stream *st)
{
    if (!st->needs_step)
        return false;
    st->needs_flush = true;
    if (st->timer_expired) {
        st->timer_expired = false;
        stream_timeout(st);
        return true;
    }
    /* Cleared first: a callback during the step (a TLS upstream calls back while we
     * write) marks the stream again. */
    st->needs_step = false;
    bool progress = st->state == H2S_EXCHANGE && http_exchange_step(&st->ex);
    if (progress)
        st->needs_step = true;
    return progress;
}

bool h2_stream_flush(struct h2_stream *st)
{
    if (!st->needs_flush)
        return false;
    st->needs_flush = false;
    bool wrote = http_exchange_flush(&st->ex);
    if (wrote)
        h2_stream_mark(st);
    return wrote;
}

void h2_stream_update_flow(struct h2_stream *st)
{
    if (st->state != H2S_EXCHANGE)
        return;
    bool was_throttled = st->ex.body_throttled;
    http_exchange_update_flow(&st->ex, false);
    if (was_throttled && !st->ex.body_throttled)
        h2_stream_mark(st);     /* the request body may move again */
}

/* An HTTP/2 connection: the nghttp2 session on the session's buffers, what arrives
 * (callbacks), what is sent (into client_out, DATA moved without copying), the
 * connection's limits and budgets, and its end. The streams are in stream.c. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/worker.h"
#include "http2/internal.h"

/* A header block (HEADERS + CONTINUATION) whose encoded size passes
 * limits.max_header_bytes by this much ends the connection (CVE-2024-27316 class: a
 * block never ended blocks every other stream). Below that, a list too large for the
 * limits is decoded and dropped, and the stream gets a 431. */
enum { H2_BLOCK_SLACK = 64 * 1024 };

static const char H2_PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
enum { H2_PREFACE_LEN = sizeof H2_PREFACE - 1 };

struct h2_conn *h2_conn_of(struct http_session *s) { return s->h2; }

const struct config *h2_cfg(const struct h2_conn *c) { return c->session->base.runtime->cfg; }

void h2_conn_kick(struct h2_conn *c) { http_kick(c->session); }

static struct listen_socket *socket_of(const struct h2_conn *c)
{
    return c->session->base.listener->socket;
}

/* ---- detection ------------------------------------------------------------------- */

static bool alpn_is_h2(SSL *ssl)
{
    const unsigned char *proto;
    unsigned len;
    SSL_get0_alpn_selected(ssl, &proto, &len);
    return len == 2 && memcmp(proto, "h2", 2) == 0;
}

enum h2_detect h2_detect(struct http_session *s)
{
    if (s->tls)
        return alpn_is_h2(s->tls) ? H2_DETECT_YES : H2_DETECT_NO;
    if (!s->base.listener->cfg->http2.h2c)
        return H2_DETECT_NO;
    unsigned char head[H2_PREFACE_LEN];
    ev_ssize_t got = evbuffer_copyout(s->client_in, head, sizeof head);
    size_t n = got > 0 ? (size_t)got : 0;
    if (memcmp(head, H2_PREFACE, n) != 0)
        return H2_DETECT_NO;
    return n == H2_PREFACE_LEN ? H2_DETECT_YES : H2_DETECT_MAYBE;
}

/* ---- what is sent ------------------------------------------------------------------ */

/* nghttp2 answers a stream beyond an acknowledged SETTINGS_MAX_CONCURRENT_STREAMS with
 * a connection error (GOAWAY), where RFC 9113 §5.1.2 asks for a stream error; ferry
 * refuses such streams itself (REFUSED_STREAM, on_begin_headers) and so does not tell
 * nghttp2 the limit: it is added to the preface SETTINGS frame as that goes out. */
static int add_stream_limit(struct h2_conn *c, struct evbuffer *out, const uint8_t *frame,
                            size_t length)
{
    uint32_t limit = c->session->base.listener->cfg->http2.max_concurrent_streams;
    uint32_t payload = ((uint32_t)frame[0] << 16 | (uint32_t)frame[1] << 8 | frame[2]) + 6;
    uint8_t head[9] = { (uint8_t)(payload >> 16), (uint8_t)(payload >> 8), (uint8_t)payload };
    uint8_t entry[6] = { 0, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint8_t)(limit >> 24),
                         (uint8_t)(limit >> 16), (uint8_t)(limit >> 8), (uint8_t)limit };
    memcpy(head + 3, frame + 3, 6);
    c->limit_sent = true;
    return evbuffer_add(out, head, 9) == 0 && evbuffer_add(out, frame + 9, length - 9) == 0 &&
           evbuffer_add(out, entry, 6) == 0 ? 0 : -1;
}

static bool is_preface_settings(const struct h2_conn *c, const uint8_t *data, size_t length)
{
    return !c->limit_sent && length >= 9 && data[3] == NGHTTP2_SETTINGS &&
           !(data[4] & NGHTTP2_FLAG_ACK);
}

/* Frames other than DATA: copied into client_out (they are small). Above the high
 * water mark nghttp2 keeps them until the client reads. */
static ssize_t on_send(nghttp2_session *ng, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    struct h2_conn *c = user_data;
    struct evbuffer *out = c->session->client_out;
    if (evbuffer_get_length(out) >= HTTP_HIGH_WATER)
        return NGHTTP2_ERR_WOULDBLOCK;
    int rc = is_preface_settings(c, data, length) ? add_stream_limit(c, out, data, length)
                                                  : evbuffer_add(out, data, length);
    return rc == 0 ? (ssize_t)length : NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* DATA: the 9-byte frame header, then the payload moved from the stream's buffer. */
static int on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user_data)
{
    struct h2_conn *c = user_data;
    if (evbuffer_get_length(c->session->client_out) >= HTTP_HIGH_WATER)
        return NGHTTP2_ERR_WOULDBLOCK;
    return h2_stream_send_data(source->ptr, framehd, length);
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    bool is_end = (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
                  (frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
    struct h2_stream *st = is_end ? nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id)
                                  : NULL;
    if (st)
        h2_stream_sent_end(st);
    return 0;
}

/* ---- what arrives ------------------------------------------------------------------ */

static struct h2_stream *stream_of(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

/* A HEADERS frame on a stream below the highest one the client opened that nghttp2
 * has no trace of (it keeps closed streams for a while): that stream was skipped, and
 * stream identifiers must grow (RFC 9113 §5.1.1). nghttp2 ignores such a frame. */
static bool is_stream_id_going_back(struct h2_conn *c, int32_t id)
{
    return (id & 1) && id <= c->max_stream_id && !nghttp2_session_find_stream(c->ng, id);
}

/* Checks the stream id of HEADERS, and counts the encoded header block against its
 * bound. */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user_data)
{
    struct h2_conn *c = user_data;
    if (hd->type == NGHTTP2_HEADERS && is_stream_id_going_back(c, hd->stream_id))
        return h2_conn_terminate(c, NGHTTP2_PROTOCOL_ERROR);
    if (hd->type == NGHTTP2_HEADERS)
        c->block_bytes = hd->length;
    else if (hd->type == NGHTTP2_CONTINUATION)
        c->block_bytes += hd->length;
    else
        return 0;
    if (c->block_bytes > (size_t)h2_cfg(c)->limits.max_header_bytes + H2_BLOCK_SLACK) {
        log_info("http2 listener=%s client=%s: header block over %zu bytes, closing",
                 c->session->base.listener->cfg->name, c->session->base.peer_text,
                 c->block_bytes);
        return h2_conn_terminate(c, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    return 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    struct h2_conn *c = user_data;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;   /* trailers: the stream exists */
    if (frame->hd.stream_id > c->max_stream_id)
        c->max_stream_id = frame->hd.stream_id;
    const struct cfg_http2 *h = &c->session->base.listener->cfg->http2;
    if (c->n_streams >= h->max_concurrent_streams) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return h2_guard_control_frame(&c->guard, clock_now_ms())
                   ? 0 : h2_conn_terminate(c, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    struct h2_stream *st = h2_stream_new(c, frame->hd.stream_id);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* out of memory: reset it */
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *user_data)
{
    struct h2_stream *st = stream_of(ng, frame->hd.stream_id);
    if (st)
        h2_stream_add_field(st, name, value);
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    struct h2_conn *c = user_data;
    struct h2_stream *st = stream_of(ng, stream_id);
    if (st)
        h2_stream_data(st, data, len);
    else
        nghttp2_session_consume(ng, stream_id, len);
    h2_guard_useful(&c->guard);
    return 0;
}

/* Frames that do no request work spend the control budget. */
static bool is_control(const nghttp2_frame *frame)
{
    switch (frame->hd.type) {
    case NGHTTP2_DATA:
        return frame->hd.length == 0 && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
    case NGHTTP2_HEADERS:
    case NGHTTP2_GOAWAY:
        return false;
    default:    /* SETTINGS, PING, PRIORITY, WINDOW_UPDATE, RST_STREAM, unknown */
        return true;
    }
}

/* 0, or what a callback returns to stop (h2_conn_terminate). */
static int on_request_frame(struct h2_conn *c, const nghttp2_frame *frame, struct h2_stream *st)
{
    bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        c->block_bytes = 0;
        h2_guard_useful(&c->guard);
        h2_stream_dispatch(st, end_stream);
    } else if (frame->hd.type == NGHTTP2_HEADERS) {
        c->block_bytes = 0;
        h2_stream_trailers(st);
    } else if (frame->hd.type == NGHTTP2_DATA && end_stream) {
        h2_stream_end_of_request(st);
    } else if (frame->hd.type == NGHTTP2_RST_STREAM && !st->resp_complete &&
               !h2_guard_client_reset(&c->guard, clock_now_ms())) {
        log_info("http2 listener=%s client=%s: too many streams reset, closing",
                 c->session->base.listener->cfg->name, c->session->base.peer_text);
        return h2_conn_terminate(c, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    struct h2_conn *c = user_data;
    if (is_control(frame) && !h2_guard_control_frame(&c->guard, clock_now_ms())) {
        log_info("http2 listener=%s client=%s: control frame flood, closing",
                 c->session->base.listener->cfg->name, c->session->base.peer_text);
        return h2_conn_terminate(c, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    struct h2_stream *st = frame->hd.stream_id ? stream_of(ng, frame->hd.stream_id) : NULL;
    return st ? on_request_frame(c, frame, st) : 0;
}

/* nghttp2 found a frame it rejects (and answered it): a protocol glitch costs as much
 * as a control frame. */
static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *frame, int error,
                            void *user_data)
{
    struct h2_conn *c = user_data;
    if (!h2_guard_control_frame(&c->guard, clock_now_ms()))
        return h2_conn_terminate(c, NGHTTP2_ENHANCE_YOUR_CALM);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct h2_stream *st = stream_of(ng, stream_id);
    if (st) {
        nghttp2_session_set_stream_user_data(ng, stream_id, NULL);
        h2_stream_closed(st, error_code);
    }
    return 0;
}

static int on_error(nghttp2_session *ng, int lib_error_code, const char *msg, size_t len,
                    void *user_data)
{
    struct h2_conn *c = user_data;
    log_debug("http2 listener=%s client=%s: %.*s", c->session->base.listener->cfg->name,
              c->session->base.peer_text, (int)len, msg);
    return 0;
}

/* ---- setting up ---------------------------------------------------------------------- */

static nghttp2_session_callbacks *callbacks_new(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_send_callback(cb, on_send);
    nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    return cb;
}

static nghttp2_session *session_new(struct h2_conn *c)
{
    nghttp2_session_callbacks *cb = callbacks_new();
    nghttp2_option *opt = NULL;
    nghttp2_session *ng = NULL;
    if (cb && nghttp2_option_new(&opt) == 0) {
        /* WINDOW_UPDATE only for what the upstream took: flow control is back-pressure. */
        nghttp2_option_set_no_auto_window_update(opt, 1);
        if (nghttp2_session_server_new2(&ng, cb, c, opt) != 0)
            ng = NULL;
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    return ng;
}

/* Our SETTINGS (the server preface) and the connection's receive window. */
static int send_settings(struct h2_conn *c)
{
    const struct cfg_http2 *h = &c->session->base.listener->cfg->http2;
    nghttp2_settings_entry iv[] = {     /* MAX_CONCURRENT_STREAMS: see add_stream_limit */
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h->initial_window_bytes },
        { NGHTTP2_SETTINGS_MAX_FRAME_SIZE, h->max_frame_bytes },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h2_cfg(c)->limits.max_header_bytes },
        /* RFC 8441: WebSocket over HTTP/2; nghttp2 then takes :protocol (last: left
         * out when off) */
        { NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1 },
    };
    size_t n = sizeof iv / sizeof iv[0] - (h->websocket ? 0 : 1);
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, n) != 0)
        return -1;
    int32_t window = h->initial_window_bytes > H2_CONN_WINDOW ? (int32_t)h->initial_window_bytes
                                                              : H2_CONN_WINDOW;
    return nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, window) == 0 ? 0 : -1;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct h2_conn *c = arg;
    c->write_due = true;
    h2_conn_kick(c);
}

bool h2_defer_client_write(struct http_session *s)
{
    struct h2_conn *c = s->h2;
    if (s->state != HS_H2 || c->write_due || evbuffer_get_length(s->client_out) == 0) {
        c->write_due = false;
        return false;
    }
    if (!event_pending(c->flush, EV_TIMEOUT, NULL))
        event_active(c->flush, EV_TIMEOUT, 1);
    return true;
}

int h2_begin(struct http_session *s)
{
    struct h2_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->session = s;
    s->h2 = c;
    h2_guard_init(&c->guard, clock_now_ms());
    c->ng = session_new(c);
    c->flush = event_new(worker_base(s->base.worker), -1, 0, on_flush, c);
    if (!c->ng || !c->flush || send_settings(c) < 0)
        return -1;
    atomic_fetch_add_explicit(&socket_of(c)->h2_connections, 1, memory_order_relaxed);
    c->counted = true;
    http_set_state(s, HS_H2);
    evtimer_del(s->timer);
    return 0;
}

/* ---- the pump ------------------------------------------------------------------------ */

/* Streams nghttp2 may still hold (a last send closes them): it must not hand their
 * pointers back, now that a freed stream can be a spare or another connection's. */
static void free_streams(struct h2_conn *c)
{
    while (c->streams) {
        if (c->ng)
            nghttp2_session_set_stream_user_data(c->ng, c->streams->id, NULL);
        h2_stream_free(c->streams);
    }
}

/* Nothing more to do on this connection: send what nghttp2 still has (its GOAWAY),
 * then flush and close as an HTTP/1.1 connection ends. */
static void finish_connection(struct h2_conn *c)
{
    free_streams(c);
    nghttp2_session_send(c->ng);
    http_start_flush(c->session);
}

int h2_conn_terminate(struct h2_conn *c, uint32_t error_code)
{
    c->goaway = c->terminated = true;
    nghttp2_session_terminate_session(c->ng, error_code);
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* Feeds client_in to nghttp2 chain by chain (nghttp2 copies what it keeps, and a
 * frame may span chains). False when the connection had to be closed. */
static bool feed_input(struct h2_conn *c, bool *fed)
{
    struct http_session *s = c->session;
    struct evbuffer *in = s->client_in;
    while (evbuffer_get_length(in) > 0 && !c->terminated && nghttp2_session_want_read(c->ng)) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t n = nghttp2_session_mem_recv(c->ng, v.iov_base, v.iov_len);
        if (n < 0 && !c->terminated) {
            log_info("http2 listener=%s client=%s: %s, closing", s->base.listener->cfg->name,
                     s->base.peer_text, nghttp2_strerror((int)n));
            http_close(s);
            return false;
        }
        evbuffer_drain(in, n < 0 ? v.iov_len : (size_t)n);
        *fed = true;
    }
    if (c->terminated || !nghttp2_session_want_read(c->ng))
        evbuffer_drain(in, evbuffer_get_length(in));
    return true;
}

/* The session timer watches the connection while it has no stream (idle) or output
 * the client has not taken (stalled); the streams' own timers cover the rest. */
static void watch_connection(struct h2_conn *c)
{
    struct http_session *s = c->session;
    bool wanted = c->n_streams == 0 || evbuffer_get_length(s->client_out) > 0;
    if (wanted && !c->timer_armed)
        http_arm_timer(s, h2_cfg(c)->timeouts.client_idle_ms, HTTP_TIMER_IDLE);
    else if (!wanted && c->timer_armed)
        evtimer_del(s->timer);
    c->timer_armed = wanted;
}

bool h2_step(struct http_session *s)
{
    struct h2_conn *c = s->h2;
    bool progress = false;
    if (!feed_input(c, &progress))
        return false;
    if (c->terminated) {
        finish_connection(c);
        return true;
    }
    if (s->client_eof) {
        log_debug("http2 session %p: client closed", (void *)s);
        http_close(s);
        return false;
    }
    for (struct h2_stream *st = c->streams, *next; st; st = next) {
        next = st->next;
        progress |= h2_stream_step(st);
    }
    if (nghttp2_session_send(c->ng) != 0) {
        http_close(s);
        return false;
    }
    if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng)) {
        finish_connection(c);
        return true;
    }
    watch_connection(c);
    return progress;
}

bool h2_flush_upstreams(struct http_session *s)
{
    bool wrote = false;
    for (struct h2_stream *st = s->h2->streams; st; st = st->next)
        wrote |= h2_stream_flush(st);
    return wrote;
}

void h2_update_flow(struct http_session *s)
{
    struct h2_conn *c = s->h2;
    for (struct h2_stream *st = c->streams; st; st = st->next)
        h2_stream_update_flow(st);
    size_t in_max = h2_cfg(c)->limits.max_header_bytes + HTTP_INPUT_SLACK;
    bool want = !s->client_eof && !s->tls_wants_write &&
                evbuffer_get_length(s->client_out) < HTTP_HIGH_WATER &&
                evbuffer_get_length(s->client_in) < in_max &&
                (s->state != HS_H2 || nghttp2_session_want_read(c->ng));
    http_client_set_reading(s, want);
}

void h2_idle_timeout(struct http_session *s)
{
    struct h2_conn *c = s->h2;
    c->timer_armed = false;
    if (c->n_streams > 0) {
        log_debug("http2 session %p: client took nothing for %u ms, closing", (void *)s,
                  s->timer_ms);
        http_close(s);
        return;
    }
    nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    finish_connection(c);
}

void h2_drain(struct http_session *s)
{
    struct h2_conn *c = s->h2;
    s->draining = true;
    if (s->state != HS_H2 || c->goaway)
        return;
    c->goaway = true;
    nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    h2_conn_kick(c);
}

void h2_stop(struct http_session *s)
{
    if (s->h2->flush)
        event_del(s->h2->flush);
    for (struct h2_stream *st = s->h2->streams; st; st = st->next)
        h2_stream_stop(st);
}

void h2_free(struct http_session *s)
{
    struct h2_conn *c = s->h2;
    if (!c)
        return;
    free_streams(c);
    if (c->flush)
        event_free(c->flush);
    nghttp2_session_del(c->ng);
    if (c->counted)
        atomic_fetch_sub_explicit(&socket_of(c)->h2_connections, 1, memory_order_relaxed);
    free(c);
    s->h2 = NULL;
}

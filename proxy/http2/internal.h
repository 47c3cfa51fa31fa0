/* Internal to proxy/http2: the connection and its streams.
 *
 * conn.c: the nghttp2 session (settings, callbacks for what arrives and what is
 * sent), the pump step, flow control, limits and budgets, drain and free.
 * stream.c: one stream: its header list, the request it becomes, its body both ways
 * and the exchange's view of it (struct http_exchange_ops).
 *
 * Memory bounds: a stream keeps at most lim.max_header_bytes of header list; its
 * request body waits in req_data only up to its flow-control window (we advertise
 * initial_window_bytes and acknowledge bytes once the upstream took them); response
 * payload waits in resp_data up to H2_STREAM_BUFFER (H2_STALLED_BUFFER while the
 * client's window for it is 0), and all streams together up to H2_CONN_BUFFER, before
 * the exchange stops reading the backend.
 */
#ifndef FERRY_HTTP2_INTERNAL_H
#define FERRY_HTTP2_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "http/exchange.h"
#include "http/internal.h"
#include "http2/translate.h"
#include "http2/guard.h"
#include "http2/h2.h"

struct event;
struct evbuffer;

enum {
    H2_STREAM_BUFFER = 128 * 1024,  /* response payload held per stream */
    H2_STALLED_BUFFER = 16 * 1024,  /* ... while the client's window for it is 0 */
    H2_CONN_BUFFER = 1024 * 1024,   /* ... by all streams of a connection */
    H2_CONN_WINDOW = 256 * 1024,    /* request payload all streams may send unacked */
    H2_SPARE_STREAMS = 512,         /* closed streams a worker keeps for reuse */
    /* WebSockets (RFC 8441) open at once on one connection: each holds a backend
     * connection for as long as it lives, where an HTTP/1.1 client connection holds
     * one at most. A browser shares a connection across tabs: room for many, not for
     * max_concurrent_streams of them. Past it: 503. */
    H2_MAX_WEBSOCKETS = 32,
};

struct h2_conn {
    struct http_session *session;   /* borrowed: the owner */
    nghttp2_session *ng;            /* owned */
    struct h2_stream *streams;      /* owned: every stream nghttp2 told us of */
    size_t n_streams;
    size_t n_websockets;            /* streams that are WebSockets (H2_MAX_WEBSOCKETS) */
    struct h2_guard guard;
    size_t resp_buffered;           /* response payload held by all streams */
    size_t block_bytes;             /* encoded bytes of the header block arriving */
    int32_t max_stream_id;          /* the highest stream the client opened */
    bool goaway;                    /* GOAWAY queued: the connection ends with its streams */
    bool terminated;                /* ended at once (GOAWAY with an error): read no more */
    bool counted;                   /* in the listener's HTTP/2 connection count */
    bool timer_armed;               /* the session timer watches the connection */
    bool limit_sent;                /* the preface SETTINGS carried our stream limit */
    struct event *flush;            /* owned: writes client_out once per loop round */
    bool write_due;                 /* the flush event ran: write now */
};

enum h2_stream_state {
    H2S_HEADERS,    /* the request's header block is arriving (client_header_ms) */
    H2S_EXCHANGE,   /* the exchange runs */
    H2S_DONE,       /* the exchange finished; what it queued is still being sent */
};

/* One header field as nghttp2 decoded it; we hold a reference on both buffers. */
struct h2_field {
    nghttp2_rcbuf *name, *value;
};

struct h2_stream {
    struct http_exchange ex;        /* the request's backend side */
    struct h2_conn *conn;           /* borrowed */
    struct h2_stream *prev, *next;
    int32_t id;
    enum h2_stream_state state;
    bool counted;                   /* in the listener's HTTP/2 stream count */
    bool is_websocket;              /* counted in conn->n_websockets */
    /* The pump steps and flushes only streams something happened to (see
     * h2_stream_mark): a step that made no progress makes none again until then. */
    bool needs_step;                /* step it in this pump round */
    bool needs_flush;               /* stepped since its upstream output was flushed */
    int64_t start_ms;               /* its HEADERS began */

    /* the header list arriving (the request's, then maybe its trailers') */
    struct h2_field *fields;        /* owned array */
    size_t n_fields, fields_cap;
    size_t list_bytes;              /* h2_field_size() of every field, kept or not */
    bool too_large;                 /* fields past the limits were not kept */

    /* timer: the header deadline, then the exchange's (ops->set_timer), then the
     * deadline for the client to take what is left. The event is re-added only for a
     * deadline earlier than the one it waits for: one that fires before the current
     * deadline (it moved on, or the timer is off) waits again or does nothing, so a
     * request costs one or two event_add instead of one per state. */
    struct event *timer;            /* owned */
    unsigned timer_ms;
    bool timer_on;                  /* a deadline is set */
    bool timer_on_activity, timer_expired;
    int64_t timer_due_ms;           /* when the event fires, while it is pending */
    int64_t timer_deadline_ms;
    int64_t activity_ms;

    /* the request body: payload received, not yet handed to the upstream */
    struct evbuffer *req_data;      /* owned */
    uint64_t req_received;          /* payload bytes, for max_body_bytes */
    bool req_end;                   /* END_STREAM arrived */
    struct evbuffer *req_tail;      /* owned: the end of a chunked body (last chunk and
                                       trailers), queued after req_data */

    /* the response */
    struct evbuffer *resp_data;     /* owned: payload waiting for the client's window */
    struct evbuffer *resp_trailers; /* owned: the backend's trailer section */
    size_t resp_counted;            /* resp_data bytes counted in conn->resp_buffered */
    bool resp_submitted;            /* HEADERS queued (with a data provider or not) */
    bool resp_end;                  /* the payload is all in resp_data */
    bool resp_deferred;             /* the data provider waits for resume_data */
    bool resp_complete;             /* END_STREAM went out */
};

/* What the exchange's callbacks (request.c) need of a stream's request: valid while
 * the exchange starts. */
struct h2_request {
    struct h2_stream *st;
    const struct h2_request_info *info;
};

/* conn.c */
struct h2_conn *h2_conn_of(struct http_session *s);
void h2_conn_kick(struct h2_conn *c);
/* Ends the connection with GOAWAY (error_code): nothing more is read, what is queued
 * is sent, then it closes. Returns NGHTTP2_ERR_CALLBACK_FAILURE, for a callback to
 * return so that nghttp2 stops at once (it would read on otherwise). */
int h2_conn_terminate(struct h2_conn *c, uint32_t error_code);
const struct config *h2_cfg(const struct h2_conn *c);

/* stream.c */
/* A spare of the worker's (struct h2_spares), or a new stream. */
struct h2_stream *h2_stream_new(struct h2_conn *c, int32_t id);
/* Ends the stream's request and keeps the stream as a spare of the worker's, or frees
 * it when the worker has enough. */
void h2_stream_free(struct h2_stream *st);
/* One field of the header block arriving; false when nghttp2 must reset the stream. */
void h2_stream_add_field(struct h2_stream *st, nghttp2_rcbuf *name, nghttp2_rcbuf *value);
/* The request's header block is complete (end_stream: no body follows). */
void h2_stream_dispatch(struct h2_stream *st, bool end_stream);
/* The trailer block is complete: the body's end. */
void h2_stream_trailers(struct h2_stream *st);
void h2_stream_data(struct h2_stream *st, const uint8_t *data, size_t len);
void h2_stream_end_of_request(struct h2_stream *st);
/* The client reset the stream, or it closed: true when the response had not
 * completed (the exchange was cut short). */
bool h2_stream_closed(struct h2_stream *st, uint32_t error_code);
/* Something happened to the stream (its backend's callback, its timer, request
 * payload, the upstream output draining or failing): the pump steps it again. */
void h2_stream_mark(struct h2_stream *st);
/* One pump step of the stream (timer, exchange), when marked; true when it made
 * progress (it stays marked). */
bool h2_stream_step(struct h2_stream *st);
/* Writes the upstream output of a stream stepped since the last flush through; true
 * when it wrote or failed (the stream is marked). */
bool h2_stream_flush(struct h2_stream *st);
void h2_stream_update_flow(struct h2_stream *st);
void h2_stream_stop(struct h2_stream *st);
/* nghttp2's send_data callback for this stream's DATA frame. */
int h2_stream_send_data(struct h2_stream *st, const uint8_t *framehd, size_t length);
/* nghttp2 sent END_STREAM on this stream. */
void h2_stream_sent_end(struct h2_stream *st);
/* The kept fields as nghttp2_nv (spans into the rcbufs, valid until they are
 * released once the request started). */
void h2_stream_fields_as_nv(const struct h2_stream *st, nghttp2_nv *nva);

/* request.c: struct http_exchange_request's callbacks; front: a struct h2_request. */
int h2_request_write_head(const struct http_exchange_request *x, const char *strip_cookie,
                          struct evbuffer *out);
bool h2_request_find_header(const struct http_exchange_request *x, const char *name,
                            const char **value, size_t *value_len);
bool h2_request_find_cookie(const struct http_exchange_request *x, const char *name,
                            const char **value, size_t *value_len);

#endif

/* http2 — the HTTP/2 front end of an http session (RFC 9113), on libnghttp2.
 *
 * A client connection on an http listener starts as HTTP/1.x; when TLS negotiated
 * ALPN "h2", or an h2c listener sees the connection preface as its first bytes, the
 * session becomes an HTTP/2 connection for good (state HS_H2). nghttp2 does the
 * framing, HPACK and stream states on bytes the session reads and writes itself
 * (core/sockio.h): its callbacks read from client_in and write to client_out, never
 * the socket. Each stream is one request, carried to a backend by an exchange
 * (http/exchange.h) exactly as an HTTP/1.1 request is; the upstream side stays
 * HTTP/1.1. See proxy/ARCHITECTURE.md, "HTTP/2".
 *
 * These are the session's hooks (http/session.c, http/request.c); everything else is
 * internal to proxy/http2.
 */
#ifndef FERRY_HTTP2_H2_H
#define FERRY_HTTP2_H2_H

#include <stdbool.h>
#include <stddef.h>

struct http_session;
struct h2_stream;

enum h2_detect {
    H2_DETECT_NO,       /* speak HTTP/1.x */
    H2_DETECT_YES,      /* speak HTTP/2 from here on */
    H2_DETECT_MAYBE,    /* h2c: the bytes so far start the preface; wait for more */
};

/* Whether a fresh connection (no request yet) speaks HTTP/2: ALPN "h2", or on an h2c
 * listener the client's preface at the start of client_in. */
enum h2_detect h2_detect(struct http_session *s);

/* Makes s an HTTP/2 connection (queues the server's SETTINGS). 0, or -1 when out of
 * memory (close the session). */
int h2_begin(struct http_session *s);

/* The pump's step in HS_H2: feeds client_in to nghttp2, runs every stream's exchange,
 * queues what nghttp2 has to send in client_out. True when it made progress. */
bool h2_step(struct http_session *s);
/* End of a pump round: whether the client output waits for the connection's flush
 * event instead of being written now. Responses of several streams that complete in
 * one event-loop round then go out as one TLS record and one write(2) (the flush
 * event runs after the round's other callbacks). */
bool h2_defer_client_write(struct http_session *s);
/* End of a pump round: writes the upstream outputs through. True when one wrote. */
bool h2_flush_upstreams(struct http_session *s);
/* Reading the client and each backend on or off, by the buffers' room. */
void h2_update_flow(struct http_session *s);
/* The session timer fired in HS_H2: no stream for client_idle_ms (idle), or output
 * waiting that the client has not taken for client_idle_ms (stalled). */
void h2_idle_timeout(struct http_session *s);
/* Graceful stop: GOAWAY with the last stream id, finish the streams in flight, close. */
void h2_drain(struct http_session *s);
/* The session is closing: no more callbacks. */
void h2_stop(struct http_session *s);
/* Frees the HTTP/2 state; requests in flight are logged as cut short. */
void h2_free(struct http_session *s);

/* Closed streams a worker keeps for its connections' next ones (their buffers, events
 * and field arrays, empty), up to a bound: a stream costs no malloc while the worker
 * serves HTTP/2 at a steady rate. Only the worker's thread touches them. */
struct h2_spares {
    struct h2_stream *list;     /* owned */
    size_t n;
};
/* Frees the spares (the worker ends; after its sessions, before its event base). */
void h2_spares_free(struct h2_spares *spares);

#endif

/* Internal to proxy/http: the HTTP session and what its parts share.
 *
 * One struct http_session per client connection, allocated once; everything a
 * request needs lives in it (no per-request or per-header allocation).
 *
 * Control flow. libevent callbacks only record what happened (a flag, the time) and
 * call http_kick(); http_kick() runs the pump, which looks at the state and the
 * buffers and does all the work. The pump is never re-entered: a callback that fires
 * inside it (a TLS upstream's bufferevent_openssl may run callbacks synchronously
 * while we write) just asks for another round. Closing marks the session HS_CLOSED and frees it from a
 * deferred event, so no callback on the stack ever sees freed memory.
 *
 * Files: session.c (lifecycle, callbacks, pump, flow control, timers), client.c (the
 * client connection: reads, TLS handshake, writes), request.c (reading and
 * dispatching HTTP/1.x requests, ending them, flush and linger), h1_exchange.c (what
 * the exchange asks of an HTTP/1.x client: response heads, body framing, errors),
 * tunnel.c (after 101), forward.c (heads), route.c (routes), access.c (access log
 * lines). The backend side of each request is an exchange (exchange.h: exchange.c,
 * exchange_io.c, exchange_record.c, body.c), shared with the HTTP/2 front end.
 */
#ifndef FERRY_HTTP_INTERNAL_H
#define FERRY_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/session.h"
#include "core/sockio.h"
#include "http/exchange.h"
#include "http1/parse.h"
#include "runtime/runtime.h"

struct bufferevent;
struct event;
struct evbuffer;
struct h2_conn;

/* After the last response: how long to read and discard what the client still sends
 * before closing, so that our close does not turn into a reset that destroys the
 * response in flight. */
enum { HTTP_LINGER_MS = 2000 };

enum hs_state {
    HS_IDLE,        /* between requests (client_idle_ms) */
    HS_HEAD,        /* a request head is arriving (client_header_ms since its 1st byte) */
    HS_EXCHANGE,    /* request dispatched: the exchange runs (see enum up_state) */
    HS_TUNNEL,      /* after 101: bytes both ways (tcp_idle_ms) */
    HS_H2,          /* an HTTP/2 connection (proxy/http2): streams, each an exchange */
    HS_FLUSH,       /* the last response is queued: write it, then shut down */
    HS_LINGER,      /* write side shut: discard input until EOF or HTTP_LINGER_MS */
    HS_CLOSED,      /* waiting for the deferred free */
};

struct http_session {
    struct session base;
    enum hs_state state;
    struct event *timer;        /* owned: the state's timeout; also runs the deferred free */
    /* The client connection: ferry reads and writes the socket itself (core/sockio.h),
     * plain or through `tls`; base.client is NULL. */
    int client_fd;              /* owned */
    struct evbuffer *client_in, *client_out;    /* owned */
    struct event *client_read;  /* owned */
    /* next read reservation (sockio_next_read_size); bounded, so that the
     * back-pressure checks of the next pump round stay meaningful */
    size_t client_read_size;
    struct event *client_write; /* owned, made on first use: armed while the socket is
                                   full or OpenSSL waits to write */
    SSL *tls;                   /* owned; TLS listeners: the handshake and the records
                                   run over the socket by ferry */
    bool busy, again;           /* pump running / another round wanted */
    bool draining;

    /* what callbacks saw */
    bool handshake_done, client_eof, client_error, timer_expired;
    bool tls_wants_write;       /* OpenSSL can go on (handshake, reading) only once the
                                   socket takes what it has to write */

    /* flow control */
    bool client_reading;        /* EV_READ enabled now */
    /* The client's output is full: read neither side (in every state: answers ferry
     * writes itself, to pipelined requests, must not pile up either). */
    bool client_out_full;

    /* timer: fires timer_ms after activity_ms, which timer_rule says what moves (an
     * output draining is seen by a write callback or at the timer's last look) */
    unsigned timer_ms;
    enum http_timer_rule timer_rule;
    int64_t activity_ms;
    size_t timer_queued;        /* bytes waiting in both outputs at the last look */

    /* the request, as HTTP/1.x frames it */
    size_t scan_len;            /* client head bytes already looked at */
    int64_t start_ms;           /* its first byte */
    int minor_version;
    bool req_keep_alive;
    struct http_body req_body;
    bool keep_client;           /* the response may leave the client connection open */
    bool close_delimited;       /* the client-side response ends with our close */
    bool client_shut, up_shut;  /* tunnel: our write side is shut */
    bool unread_input;          /* flushing: the client sent more after its last request */

    struct http_exchange *ex;   /* HTTP/1.x: the current request's backend side (one
                                   at a time: pipelined requests wait in client_in),
                                   from its dispatch to the end of the pump round that
                                   ends it; NULL between requests (the worker keeps it:
                                   http_exchange_take) */
    bool is_fresh;              /* no request parsed yet: HTTP/2 may still start (ALPN,
                                   h2c preface) */
    struct h2_conn *h2;         /* owned; HTTP/2 connections (HS_H2 and after) */
};

/* client.c: the client connection. http_client_open: 0, or -1 (the caller frees with
 * http_client_close, which leaves fd open then). http_client_close frees what was
 * made, sends close_notify first on TLS, and closes the socket once it was opened. */
int http_client_open(struct http_session *s, struct event_base *base,
                     struct rt_listener *listener, int fd);
void http_client_close(struct http_session *s);
/* No more callbacks (the session is closing). */
void http_client_stop(struct http_session *s);
void http_client_set_reading(struct http_session *s, bool want);
/* Writes the client output (end of a pump round); true: wrote or failed (*failed). */
bool http_client_write(struct http_session *s, bool *failed);

/* request.c: the client side's steps of the pump (true: progress, run again) */
bool http_idle_step(struct http_session *s);
bool http_head_step(struct http_session *s);
bool http_request_step(struct http_session *s);
bool http_flush_step(struct http_session *s);
bool http_linger_step(struct http_session *s);
/* The last response is queued: write it out, then close. */
void http_start_flush(struct http_session *s);
/* A session follows reloads between requests (HTTP/2: at each new stream): the
 * newest generation, and in it the listener on the same socket. False when that
 * listener is gone. */
bool http_refresh_generation(struct http_session *s);
/* Ferry answers a request it could not parse (or whose head did not come in time)
 * with status, then closes. */
void http_reject(struct http_session *s, int status);
/* The request is over (its response queued, or given up): end the exchange, then
 * wait for the next request or flush and close. */
void http_finish_request(struct http_session *s, bool keep_client);

/* h1_exchange.c: the HTTP/1.x front end's side of struct http_exchange_ops. */
extern const struct http_exchange_ops http_h1_exchange_ops;
/* Arms the timer of a response body for whichever side holds it up now: a client
 * whose output is full (client_idle_ms) or else the backend (upstream_response_ms). */
void http_arm_response_timer(struct http_session *s);

/* session.c */
void http_kick(struct http_session *s);
/* Makes s->ex ready for the request being dispatched (the one still held, or one the
 * worker gives). False when out of memory: the session is closed. */
bool http_hold_exchange(struct http_session *s);
void http_set_state(struct http_session *s, enum hs_state next);
void http_arm_timer(struct http_session *s, unsigned ms, enum http_timer_rule rule);
void http_close(struct http_session *s);
/* Closes at once with a reset (and on TLS without close_notify): for a response whose
 * end the client could otherwise mistake for a complete close-delimited body. */
void http_abort_client(struct http_session *s);
const struct config *http_cfg(const struct http_session *s);

/* tunnel.c */
void http_tunnel_begin(struct http_session *s);
bool http_tunnel_step(struct http_session *s);

#endif

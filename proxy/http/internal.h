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
 * client connection: reads, TLS handshake, writes), request.c
 * (reading and dispatching requests, ending them, flush and linger), exchange.c
 * (backends: pick, connect, retry, response), body.c (body streaming), tunnel.c
 * (after 101), forward.c (heads), route.c (routes), access.c (access log lines).
 */
#ifndef FERRY_HTTP_INTERNAL_H
#define FERRY_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/session.h"
#include "core/sockio.h"
#include "http1/parse.h"
#include "runtime/runtime.h"

struct bufferevent;
struct event;
struct evbuffer;

/* Back-pressure: stop reading one side once this much waits in the other side's
 * output, resume when it is down to HTTP_LOW_WATER (the tcp relay's figures). */
enum { HTTP_HIGH_WATER = 256 * 1024, HTTP_LOW_WATER = HTTP_HIGH_WATER / 2 };
/* Input read beyond limits.max_header_bytes before reading pauses (pipelined
 * requests, the start of a body). */
enum { HTTP_INPUT_SLACK = 16 * 1024 };
/* After the last response: how long to read and discard what the client still sends
 * before closing, so that our close does not turn into a reset that destroys the
 * response in flight. */
enum { HTTP_LINGER_MS = 2000 };

enum hs_state {
    HS_IDLE,        /* between requests (client_idle_ms) */
    HS_HEAD,        /* a request head is arriving (client_header_ms since its 1st byte) */
    HS_EXCHANGE,    /* request dispatched: see enum up_state */
    HS_TUNNEL,      /* after 101: bytes both ways (tcp_idle_ms) */
    HS_FLUSH,       /* the last response is queued: write it, then shut down */
    HS_LINGER,      /* write side shut: discard input until EOF or HTTP_LINGER_MS */
    HS_CLOSED,      /* waiting for the deferred free */
};

/* What restarts the session's timer (timer_ms counted from activity_ms). */
enum http_timer_rule {
    HTTP_TIMER_FIXED,   /* nothing: a deadline */
    HTTP_TIMER_IDLE,    /* any progress: bytes read from either side, an output draining */
    HTTP_TIMER_OUTPUT,  /* the response moving: bytes from the backend, an output draining.
                           Never bytes from the client: it must take what it is given,
                           and one that never reads must not hold its slot by sending */
};

enum up_state {
    UP_NONE,        /* no backend connection */
    UP_CONNECTING,  /* TCP connect (and TLS handshake) in progress */
    UP_WAIT_HEAD,   /* request head sent; waiting for the response head */
    UP_BODY,        /* final response head forwarded; streaming its body */
};

/* One message body being relayed. */
struct http_body {
    enum http1_body_kind kind;
    bool done;
    bool dechunk;               /* forward the payload only (chunked to an HTTP/1.0 client) */
    uint64_t remaining;         /* HTTP1_BODY_LENGTH */
    struct http1_chunked chunked;
};

struct http_session {
    struct session base;
    enum hs_state state;
    enum up_state up_state;
    struct event *timer;        /* owned: the state's timeout; also runs the deferred free */
    /* The client connection: ferry reads and writes the socket itself (core/sockio.h),
     * plain or through `tls`; base.client is NULL. */
    int client_fd;              /* owned */
    struct evbuffer *client_in, *client_out;    /* owned */
    struct event *client_read;  /* owned */
    /* next read reservations (sockio_next_read_size); bounded, so that the
     * back-pressure checks of the next pump round stay meaningful */
    size_t client_read_size, up_read_size;
    struct event *client_write; /* owned, made on first use: armed while the socket is
                                   full or OpenSSL waits to write */
    SSL *tls;                   /* owned; TLS listeners: the handshake and the records
                                   run over the socket by ferry */
    struct event *up_read;      /* owned; the same for plain upstream connections,
                                   re-assigned to each one (allocated once) */
    bool up_read_own;           /* up_read reads the current upstream connection */
    struct evbuffer *fwd_head;  /* owned: rewritten request head, kept while a re-send
                                   may still need it */
    bool busy, again;           /* pump running / another round wanted */
    bool draining;

    /* what callbacks saw */
    bool handshake_done, client_eof, client_error, timer_expired;
    bool tls_wants_write;       /* OpenSSL can go on (handshake, reading) only once the
                                   socket takes what it has to write */
    bool up_connected, up_connect_failed, up_timed_out, up_eof, up_error;
    /* A write to the backend failed (it reset or closed the connection, typically
     * after answering early). Not an end by itself: what it sent before stays
     * readable (Linux keeps data queued before a RST), so reading goes on and the
     * answer, or the EOF without one, decides. Nothing more is sent. */
    bool up_write_failed;

    /* flow control */
    bool client_reading, up_reading;    /* EV_READ enabled now */
    bool client_throttled;  /* the upstream's output is full: do not read the client */
    /* The client's output is full: read neither side (in every state: answers ferry
     * writes itself, to pipelined requests, must not pile up either). */
    bool client_out_full;

    /* timer: fires timer_ms after activity_ms, which timer_rule says what moves (an
     * output draining is seen by a write callback or at the timer's last look) */
    unsigned timer_ms;
    enum http_timer_rule timer_rule;
    int64_t activity_ms;
    size_t timer_queued;        /* bytes waiting in both outputs at the last look */

    /* the request */
    size_t scan_len;            /* client head bytes already looked at */
    int64_t start_ms;           /* its first byte */
    enum http1_method method;
    int minor_version;
    bool req_keep_alive, req_upgrade, is_idempotent;
    bool req_dispatched;        /* parsed and accepted: logging and backends apply */
    bool body_started;          /* request body bytes went upstream: no re-send */
    bool request_counted;       /* b->requests counted for this request */
    struct http_body req_body;

    /* the backend side */
    struct rt_pool *pool;       /* borrowed from base.runtime, for this request */
    struct backend *backend;    /* borrowed; b->active counted while set */
    struct bufferevent *up;     /* owned */
    bool up_reused;             /* came from the keep-alive pool */
    struct backend *tried[RT_MAX_ATTEMPTS];
    size_t n_tried;
    int fail_status;            /* 502 / 504 for the last failed attempt */
    size_t up_scan_len;
    bool up_any_byte;           /* the backend answered something to this request */
    bool resp_started;          /* a final response head went to the client */
    bool resp_keep_alive;       /* the backend allows reusing the connection */
    bool keep_client;           /* the response head promised the client keep-alive */
    bool close_delimited;       /* the client-side response ends with our close */
    struct http_body resp_body;
    int64_t up_start_ms;
    bool client_shut, up_shut;  /* tunnel: our write side is shut */
    bool unread_input;          /* flushing: the client sent more after its last request */

    /* access log */
    int status;
    uint64_t bytes_out;
    uint8_t log_method_len;
    uint16_t log_path_len;
    char log_method[16];
    char log_path[256];
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
/* Records what a read of ours (either side) found; false when there was nothing
 * after all (or OpenSSL must write first). The caller counts it as activity or not. */
bool http_note_read(struct http_session *s, enum sockio_result result, bool *eof, bool *error);

/* request.c: the client side's steps of the pump (true: progress, run again) */
bool http_idle_step(struct http_session *s);
bool http_head_step(struct http_session *s);
bool http_flush_step(struct http_session *s);
bool http_linger_step(struct http_session *s);
/* The last response is queued: write it out, then close. */
void http_start_flush(struct http_session *s);
/* The request ends with ferry's own response (status) instead of a backend's;
 * may_keep: the client connection may go on if nothing else forbids it. */
void http_respond_error(struct http_session *s, int status, bool may_keep);
/* The exchange is over (response complete or given up): log, then idle or flush. */
void http_finish_request(struct http_session *s, bool keep_client);
/* The access log line of the current request (once). */
void http_record_request(struct http_session *s);

/* session.c */
void http_kick(struct http_session *s);
void http_set_state(struct http_session *s, enum hs_state next);
void http_arm_timer(struct http_session *s, unsigned ms, enum http_timer_rule rule);
void http_close(struct http_session *s);
/* Turns reading of one side on or off: through ferry's own read event `own`, or
 * (own NULL) through the bufferevent. */
void http_set_reading(struct bufferevent *bev, struct event *own, bool *is_reading, bool want);
/* Closes at once with a reset (and on TLS without close_notify): for a response whose
 * end the client could otherwise mistake for a complete close-delimited body. */
void http_abort_client(struct http_session *s);
const struct config *http_cfg(const struct http_session *s);
/* Sets the session's callbacks on s->up. */
void http_watch_upstream(struct http_session *s);
/* A plain upstream connection is read by ferry itself from now on (or, for a
 * connection leaving the session, no longer). */
void http_own_upstream_reads(struct http_session *s);
void http_disown_upstream_reads(struct http_session *s, bool to_pool);
struct http1_limits http_limits(const struct http_session *s, bool for_request);

/* exchange.c */
void http_exchange_begin(struct http_session *s);
bool http_exchange_step(struct http_session *s);
void http_exchange_timeout(struct http_session *s);
/* Arms the timer of a response body for whichever side holds it up now: a client
 * whose output is full (client_idle_ms) or else the backend (upstream_response_ms). */
void http_arm_response_timer(struct http_session *s);
/* Gives the connection back to the pool (when reusable) or closes it, and the
 * backend's active count back. */
void http_upstream_release(struct http_session *s, bool reusable);
void http_set_up_state(struct http_session *s, enum up_state next);

/* body.c: moves what is available of b from in to out, *moved = bytes added to out.
 * Returns 0 (see b->done) or an HTTP1_ERR_* from the chunked decoder. */
void http_body_init(struct http_body *b, enum http1_body_kind kind, uint64_t length,
                    const struct http1_limits *lim, bool dechunk);
int http_body_move(struct http_body *b, struct evbuffer *in, struct evbuffer *out,
                   uint64_t *moved);

/* tunnel.c */
void http_tunnel_begin(struct http_session *s);
bool http_tunnel_step(struct http_session *s);

#endif

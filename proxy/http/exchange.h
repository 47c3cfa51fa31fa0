/* exchange — one HTTP request proxied to a backend, whatever protocol its client
 * speaks (proxy/ARCHITECTURE.md, "Front ends and exchanges").
 *
 * A front end (the HTTP/1.1 session, or one HTTP/2 stream) parses a request, writes
 * the HTTP/1.1 head for the backend into ex->fwd_head and calls
 * http_exchange_start(). From there the exchange owns routing, the backend pick, the
 * upstream connection (from the worker's keep-alive pool, or a new one), retries and
 * safe re-sends, reading and checking the response, the errors ferry answers itself
 * and the access-log record. It talks back to its front end only through struct
 * http_exchange_ops: only the front end knows its wire format, and the exchange
 * knows only HTTP/1.1 (to the backend).
 *
 * Control flow is the front end's pump (http/internal.h): the upstream connection's
 * callbacks only record what happened on the exchange and call ops->kick(); the pump
 * calls http_exchange_step() until it reports no progress, then http_exchange_flush()
 * and http_exchange_update_flow(). The exchange never frees its front end.
 */
#ifndef FERRY_HTTP_EXCHANGE_H
#define FERRY_HTTP_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/listen.h"
#include "http/route.h"
#include "http1/parse.h"
#include "runtime/runtime.h"

struct bufferevent;
struct event;
struct evbuffer;
struct http_exchange;
struct session;
struct worker;

/* Back-pressure: stop reading one side once this much waits in the other side's
 * output, resume when it is down to HTTP_LOW_WATER (the tcp relay's figures). */
enum { HTTP_HIGH_WATER = 256 * 1024, HTTP_LOW_WATER = HTTP_HIGH_WATER / 2 };
/* Input read beyond limits.max_header_bytes before reading pauses (pipelined
 * requests, the start of a body). */
enum { HTTP_INPUT_SLACK = 16 * 1024 };

/* Exchanges a worker keeps between requests (http_exchange_give_back): its HTTP/1.x
 * sessions' requests at their peak concurrency cost no malloc up to this many. */
enum { HTTP_SPARE_EXCHANGES = 256 };

/* What restarts a timer (ms counted from the last such activity). */
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
    bool dechunk;               /* forward the payload only (a chunked body to a client
                                   that does not take chunks) */
    uint64_t remaining;         /* HTTP1_BODY_LENGTH */
    struct http1_chunked chunked;
    struct evbuffer *trailers;  /* borrowed; dechunking: the trailer section goes here
                                   (NULL: dropped) */
};

/* body.c: moves what is available of b from in to out, *moved = bytes added to out.
 * Returns 0 (see b->done) or an HTTP1_ERR_* from the chunked decoder. */
void http_body_init(struct http_body *b, enum http1_body_kind kind, uint64_t length,
                    const struct http1_limits *lim, bool dechunk);
int http_body_move(struct http_body *b, struct evbuffer *in, struct evbuffer *out,
                   uint64_t *moved);

/* How a front end takes the backend's final response (ops->response_head). */
struct http_response_plan {
    /* in: what the exchange adds to the head */
    const char *set_cookie;     /* a Set-Cookie field value (the sticky cookie), or NULL;
                                   borrowed for the call */
    /* out: where the body goes */
    struct evbuffer *sink;      /* borrowed: the body goes here */
    bool dechunk;               /* decode a chunked body to its payload */
    struct evbuffer *trailers;  /* borrowed, with dechunk: the trailer section; NULL:
                                   dropped */
};

/* What the exchange asks of its front end. Every function gets the exchange it was
 * installed on; the front end finds itself from it. */
struct http_exchange_ops {
    /* An upstream callback recorded something: run the pump (now or when the current
     * round ends). Last thing the callback does: the pump may end the exchange. */
    void (*kick)(struct http_exchange *ex);
    /* The exchange's one timer: fire after ms (0: off) without the activity `rule`
     * counts. HTTP_TIMER_OUTPUT is the response body's: the front end may give a
     * client that holds the response up its own deadline instead. When it fires, the
     * front end calls http_exchange_timeout(). */
    void (*set_timer)(struct http_exchange *ex, unsigned ms, enum http_timer_rule rule);
    /* Moves request body bytes that are there, framed as the head in fwd_head said
     * (ex->req_body_kind), to out; *moved = bytes added. Sets ex->req_done once the
     * whole body (chunked: its end) is in out. 0, or an HTTP1_ERR_* naming what was
     * wrong with the client's body (the exchange answers it). */
    int (*pull_body)(struct http_exchange *ex, struct evbuffer *out, uint64_t *moved);
    /* The backend's final response head (not 1xx, not 101): write it for the client
     * with plan->set_cookie added, and say where the body goes (the rest of plan).
     * Returns the bytes counted as sent, or -1 when the front end gave up (no memory;
     * it closed or reset). */
    long (*response_head)(struct http_exchange *ex, const struct http1_response *resp,
                          const char *head, size_t head_len, struct http_response_plan *plan);
    /* A 1xx other than 101 (100 Continue): relay it or not. Returns bytes sent (>= 0). */
    long (*interim)(struct http_exchange *ex, const struct http1_response *resp,
                    const char *head, size_t head_len);
    /* 101 Switching Protocols to an upgrade request: the connection becomes a tunnel;
     * plan->set_cookie as for response_head. The front end relays the tunnel's bytes
     * itself (plan->sink left NULL: HTTP/1.x, the whole connection is the tunnel), or
     * the exchange goes on relaying both ways (plan->sink set: HTTP/2, one stream is
     * the tunnel): the request body raw, as pull_body gives it, and what the backend
     * sends into sink until it closes. NULL: this front end never asks for upgrades (a
     * 101 is a broken response). Returns bytes sent, or -1 as for response_head. */
    long (*tunnel)(struct http_exchange *ex, const struct http1_response *resp,
                   const char *head, size_t head_len, struct http_response_plan *plan);
    /* May more response body be read from the backend (the client side has room)? */
    bool (*response_room)(struct http_exchange *ex);
    /* Response body bytes were added to the plan's sink. */
    void (*response_progress)(struct http_exchange *ex);
    /* Ferry answers the request itself with status (no response head went out yet):
     * write that response. may_keep: the client connection may go on as far as the
     * exchange is concerned. Returns the bytes counted as sent; finish(ex, true)
     * follows. */
    long (*respond)(struct http_exchange *ex, int status, bool may_keep);
    /* The response is all queued for the client (complete), or cannot be completed
     * (truncated: the client must not take what it got for a whole response). The
     * upstream connection is released already; the front end calls
     * http_exchange_end() when it is done with the request. */
    void (*finish)(struct http_exchange *ex, bool complete);
};

/* What a front end knows of a request when it starts one. Spans are borrowed and
 * only read during http_exchange_start(). */
struct http_exchange_request {
    enum http1_method method;
    const char *method_text;
    size_t method_len;
    const char *target;         /* as the client sent it (for the log) */
    size_t target_len;
    struct http_route_key route;
    /* Writes the head for the backend into out, once the request found a route (NULL:
     * the front end wrote it into fwd_head already), without the cookie strip_cookie
     * (NULL: none; ferry's sticky cookie is for ferry only). 0, or -1 when out of
     * memory. */
    int (*write_head)(const struct http_exchange_request *req, const char *strip_cookie,
                      struct evbuffer *out);
    /* The value of the request's first header field `name` (any case), and of its
     * first cookie `name` (the exact name), for what a pool balances on (hash_key,
     * sticky). False when there is none. NULL: the request has neither. */
    bool (*find_header)(const struct http_exchange_request *req, const char *name,
                        const char **value, size_t *value_len);
    bool (*find_cookie)(const struct http_exchange_request *req, const char *name,
                        const char **value, size_t *value_len);
    void *front;                /* borrowed: what these callbacks need */
    enum http1_body_kind body;  /* how the head frames the body for the backend */
    bool body_done;             /* no body bytes will follow (none, or length 0) */
    bool is_upgrade;            /* asks for 101 (the front end supports ops->tunnel) */
    bool needs_upgrade;         /* only a 101 may succeed: a 2xx without it is a broken
                                   response (HTTP/2 extended CONNECT: a 2xx tells the
                                   client its tunnel is open) */
    enum listen_http_version version;
};

struct http_exchange {
    const struct http_exchange_ops *ops;
    struct worker *worker;          /* borrowed: event base and upstream pool */
    struct session *client;         /* borrowed: the client connection's session (its
                                       addresses, for the PROXY header to backends) */
    const char *peer_text;          /* borrowed from the session: the client's address */
    struct runtime *runtime;        /* ref while started: routes and pools */
    struct rt_listener *listener;   /* borrowed from runtime */
    bool is_started;                /* between start and end: logging applies */
    bool is_recorded;               /* the access-log line was written */
    enum up_state up_state;

    /* the request */
    enum http1_method method;
    bool is_idempotent;
    enum http1_body_kind req_body_kind;
    bool req_upgrade;               /* a 101 may answer it */
    bool req_needs_upgrade;         /* http_exchange_request.needs_upgrade */
    char upgrade_accept[32];        /* a WebSocket upgrade the front end keyed itself
                                       (HTTP/2): the Sec-WebSocket-Accept its 101 must
                                       carry (RFC 6455 §4.2.2); "" for none */
    bool is_tunnel;                 /* after a 101 the exchange relays (plan->sink) */
    bool up_shut;                   /* tunnel: our write side to the backend is shut */
    bool req_done;                  /* the whole body is in the upstream output */
    bool body_started;              /* body bytes went upstream: no re-send */
    bool request_counted;           /* b->requests counted for this request */
    struct evbuffer *fwd_head;      /* owned: the head for the backend, kept while a
                                       re-send may still need it */

    /* the backend side */
    struct rt_pool *pool;           /* borrowed from runtime */
    struct rt_pick_hint hint;       /* the request's hash key and sticky cookie */
    bool resp_failed;               /* the response counted against the backend */
    struct backend *backend;        /* borrowed; b->active counted while set */
    struct bufferevent *up;         /* owned */
    struct event *up_read;          /* owned: ferry's own read event for plain upstream
                                       connections, re-assigned to each (made once) */
    bool up_read_own;               /* up_read reads the current connection */
    size_t up_read_size;            /* next read reservation (sockio_next_read_size) */
    bool up_reused;                 /* came from the keep-alive pool */
    struct backend *tried[RT_MAX_ATTEMPTS];
    size_t n_tried;
    int fail_status;                /* 502 / 504 for the last failed attempt */
    size_t up_scan_len;
    bool up_any_byte;               /* the backend answered something */
    bool up_connected, up_connect_failed, up_timed_out, up_eof, up_error;
    /* A write to the backend failed (it reset or closed the connection, typically
     * after answering early). Not an end by itself: what it sent before stays
     * readable (Linux keeps data queued before a RST), so reading goes on and the
     * answer, or the EOF without one, decides. Nothing more is sent. */
    bool up_write_failed;
    bool up_reading;                /* EV_READ enabled now */
    bool body_throttled;            /* the upstream output is full: pull no body */

    /* the response */
    bool resp_started;              /* a final response head went to the client */
    bool resp_keep_alive;           /* the backend allows reusing the connection */
    struct http_body resp_body;
    struct evbuffer *resp_sink;     /* borrowed from the front end's plan */

    /* the record (access log, counters) */
    enum listen_http_version version;
    int64_t start_ms, up_start_ms;
    int status;
    uint64_t bytes_out;
    uint8_t log_method_len;
    uint16_t log_path_len;
    char log_method[16];
    char log_path[256];
};

/* 0, or -1 when out of memory (http_exchange_free cleans up either way). */
int http_exchange_init(struct http_exchange *ex, const struct http_exchange_ops *ops,
                       struct worker *w, struct session *client);
/* Releases everything; ends a started request first (logged 499 when nothing was
 * answered: the client went away). */
void http_exchange_free(struct http_exchange *ex);
/* Ends a started request as http_exchange_free does, and makes ex what
 * http_exchange_init makes for front end `client` (same ops and worker), keeping its
 * buffer and event: an exchange reused by another front end of the worker. */
void http_exchange_reset(struct http_exchange *ex, struct session *client);

/* For a front end that holds an exchange only while a request runs (HTTP/1.x: an idle
 * keep-alive connection holds none): one of the worker's spares (no malloc), else a
 * new one; as http_exchange_init makes it. NULL when out of memory. */
struct http_exchange *http_exchange_take(const struct http_exchange_ops *ops, struct worker *w,
                                         struct session *client);
/* Ends ex's request as http_exchange_end does and keeps ex among the worker's spares
 * (up to HTTP_SPARE_EXCHANGES; freed beyond). */
void http_exchange_give_back(struct http_exchange *ex);

/* Starts a request on generation rt (a reference is taken) and its listener l: routes
 * it (no route: 404, CONNECT: 501) and goes for a backend. start_ms is when its first
 * byte arrived. */
void http_exchange_start(struct http_exchange *ex, struct runtime *rt, struct rt_listener *l,
                         const struct http_exchange_request *req, int64_t start_ms);
/* Starts a request that ferry answers at once with status (a request the front end
 * found bad; req with method_text and target NULL when not even they are known):
 * recorded like any other. */
void http_exchange_reject(struct http_exchange *ex, struct runtime *rt, struct rt_listener *l,
                          const struct http_exchange_request *req, int64_t start_ms,
                          int status, bool may_keep);
/* Counters and the access-log line of the request, once (at the end of a response, or
 * when a tunnel opens). */
void http_exchange_record(struct http_exchange *ex);
/* The request is over for the front end: recorded (499 when nothing was answered:
 * the client went away), upstream connection and generation released. No-op when
 * not started. */
void http_exchange_end(struct http_exchange *ex);

/* One step of the backend side; true when it made progress (run again). */
bool http_exchange_step(struct http_exchange *ex);
/* The timer of ops->set_timer fired. */
void http_exchange_timeout(struct http_exchange *ex);
/* Writes the upstream output through (end of a pump round). True when it wrote or
 * failed (another round is worth it). */
bool http_exchange_flush(struct http_exchange *ex);
/* Reading the backend is on exactly when the exchange wants its bytes (a response, or
 * everything in an HTTP/1.1 tunnel) and the front end has room; also updates
 * body_throttled. */
void http_exchange_update_flow(struct http_exchange *ex, bool is_tunnel);
/* No more callbacks from the upstream connection (the front end is closing; the
 * exchange is freed later). */
void http_exchange_stop(struct http_exchange *ex);
/* Bytes waiting in the upstream output (for activity timers). */
size_t http_exchange_queued(const struct http_exchange *ex);

/* Gives the connection back to the pool (when reusable) or closes it, and the
 * backend's active count back. */
void http_exchange_release(struct http_exchange *ex, bool reusable);
/* Ferry's own answer for the current request (releases the upstream first). */
void http_exchange_respond(struct http_exchange *ex, int status, bool may_keep);

/* Limits for parsing the request (for_request) or the response. */
struct http1_limits http_exchange_limits(const struct config *cfg, bool for_request);

/* Turns reading of one side on or off: through ferry's own read event `own`, or
 * (own NULL) through the bufferevent. */
void http_set_reading(struct bufferevent *bev, struct event *own, bool *is_reading, bool want);

#endif

/* demo_backend — a small backend for the demo and the e2e tests.
 *
 * One thread, one event_base, a bufferevent per connection (TLS optional). It writes
 * its own HTTP/1.1 bytes instead of using evhttp so that tests control exactly what is
 * on the wire, including broken responses (/close-mid, /garbage, /close-delimited).
 *
 *   demo_backend --listen 127.0.0.1:PORT | --port PORT   (PORT 0: pick one)
 *                --name NAME [--mode http|echo] [--tls CERT KEY]
 *                [--health-file PATH] [--idle-ms MS] [--max-requests N]
 *
 * Prints "ready NAME ADDRESS" on stdout once listening. SIGTERM/SIGINT: exit 0 after
 * freeing everything. Routes are listed in usage() below.
 *
 * Closing: the server never close()s a socket that may still receive data, which would
 * turn the response in flight into a RST. It flushes, shuts its write side down, then
 * discards input until the peer's EOF or LINGER_MS ("lingering close"). The one
 * exception is /reject/NNN, whose point is that reset.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define MAX_HEAD            (64 * 1024)          /* larger request heads get 431 */
#define READ_HIGH_WATERMARK (256 * 1024)         /* pipelined input waiting its turn */
#define ECHO_PAUSE_AT       (1024 * 1024)        /* echo: stop reading above this */
#define ECHO_RESUME_AT      (512 * 1024)
#define STREAM_FILL_TO      (256 * 1024)         /* generated bodies: queue this much */
#define STREAM_REFILL_AT    (64 * 1024)
#define CHUNK_MAX           16384
#define ECHO_BODY_MAX       (64ULL * 1024 * 1024) /* /echo buffers the body: 413 above */
#define CHUNK_LINE_MAX      4096
#define LINGER_MS           2000
#define WS_GUID             "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum mode { MODE_HTTP, MODE_ECHO };

struct app {
    struct event_base *base;            /* owned */
    struct evconnlistener *listener;    /* owned */
    struct event *sig_term, *sig_int;   /* owned */
    SSL_CTX *ssl_ctx;                   /* owned; NULL = plaintext */
    const char *name;                   /* borrowed from argv */
    const char *health_file;            /* borrowed; NULL = always healthy */
    enum mode mode;
    unsigned idle_ms;                   /* 0 = keep idle connections forever */
    unsigned max_requests;              /* per connection; 0 = unlimited */
    struct conn *conns;                 /* owned, every open connection */
    uint64_t connections, requests, healthz, stats, active;
};

enum conn_state {
    C_HEAD,     /* waiting for a request head (idle keep-alive included) */
    C_BODY,     /* consuming the request body */
    C_SLEEP,    /* /sleep/MS: timer armed */
    C_HANG,     /* /hang: never answers */
    C_STREAM,   /* generating a response body as the socket drains */
    C_TUNNEL,   /* echo mode, or after 101: every byte back */
    C_FLUSH,    /* writing what is queued, then lingering close */
    C_LINGER,   /* write side shut; discarding input until EOF or timer */
    C_RESET,    /* /reject: close(2) once the answer is written, the body unread */
};

enum route {
    R_ROOT, R_HEALTHZ, R_ECHO, R_SHA256, R_BYTES, R_CHUNKED, R_CLOSE_DELIMITED,
    R_STATUS, R_SLEEP, R_HANG, R_CLOSE_MID, R_GARBAGE, R_HEADERS, R_WS, R_STATS,
    R_TRAILERS, R_HOP_BY_HOP, R_REJECT,
};

enum framing { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };
enum chunk_state { CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER };

struct request {
    enum route route;
    uint64_t arg;               /* N of /bytes/N, MS of /sleep/MS, NNN of /status/NNN
                                   and /reject/NNN */
    bool is_head, is_http10, keep_alive, expect_continue, wants_upgrade;
    bool has_length;
    uint64_t content_length;
    enum framing framing;
    enum chunk_state chunk;
    uint64_t remaining;         /* of the Content-Length body or the current chunk */
    uint64_t body_len;
    size_t trailer_bytes;
    EVP_MD_CTX *sha;            /* owned: /sha256 */
    struct evbuffer *body;      /* owned: /echo; /trailers: the request's trailer lines */
    char *head;                 /* owned: /headers, the head as received */
    size_t head_len;
    char ws_key[64];
};

struct conn {
    struct app *app;            /* borrowed */
    struct conn *prev, *next;
    struct bufferevent *bev;    /* owned */
    struct event *timer;        /* owned: sleep, idle or linger, by state */
    enum conn_state state;
    bool peer_eof;              /* the client shut its write side */
    bool read_paused;           /* echo back-pressure */
    unsigned served;            /* requests on this connection */
    struct request req;
    uint64_t out_remaining, out_offset;  /* C_STREAM */
    bool out_chunked;
};

static char pattern[CHUNK_MAX + 26];   /* byte i = 'a' + i % 26 */

static void process(struct conn *c);

/* ---- connection lifetime ------------------------------------------------------- */

static void request_reset(struct request *r)
{
    EVP_MD_CTX_free(r->sha);
    if (r->body != NULL)
        evbuffer_free(r->body);
    free(r->head);
    memset(r, 0, sizeof *r);
}

static struct evbuffer *conn_out(struct conn *c)
{
    return bufferevent_get_output(c->bev);
}

static struct evbuffer *conn_in(struct conn *c)
{
    return bufferevent_get_input(c->bev);
}

static void conn_free(struct conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->app->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->app->active--;
    request_reset(&c->req);
    if (c->timer != NULL)
        event_free(c->timer);
    bufferevent_free(c->bev);
    free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void arm_timer(struct conn *c, unsigned ms)
{
    if (c->timer == NULL)
        c->timer = evtimer_new(c->app->base, timer_cb, c);
    if (c->timer == NULL)
        return;
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    evtimer_add(c->timer, &tv);
}

static void disarm_timer(struct conn *c)
{
    if (c->timer != NULL)
        evtimer_del(c->timer);
}

/* Sends our FIN (after close_notify on TLS) while leaving the read side open. */
static void shut_write(struct conn *c)
{
    if (c->app->ssl_ctx != NULL) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        if (ssl != NULL && SSL_is_init_finished(ssl))
            SSL_shutdown(ssl);
        ERR_clear_error();
    }
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0)
        shutdown(fd, SHUT_WR);
}

static void start_linger(struct conn *c)
{
    shut_write(c);
    c->state = C_LINGER;
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
    evbuffer_drain(conn_in(c), evbuffer_get_length(conn_in(c)));
    arm_timer(c, LINGER_MS);
}

/* The single place that ends connections, called last in every callback so that no
 * caller touches a freed conn. */
static void settle(struct conn *c)
{
    size_t queued = evbuffer_get_length(conn_out(c));

    if (c->peer_eof && (c->state == C_HEAD || c->state == C_BODY || c->state == C_HANG))
        c->state = C_FLUSH;
    if (c->state == C_TUNNEL && c->peer_eof && queued == 0) {
        shut_write(c);
        conn_free(c);
        return;
    }
    if (c->state == C_FLUSH && queued == 0) {
        if (c->peer_eof) {
            shut_write(c);
            conn_free(c);
            return;
        }
        start_linger(c);
    }
    if ((c->state == C_LINGER && c->peer_eof) || (c->state == C_RESET && queued == 0))
        conn_free(c);
}

/* ---- responses ------------------------------------------------------------------ */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

/* content_length < 0: no Content-Length header. */
static void send_head(struct conn *c, int status, const char *extra, int64_t content_length)
{
    struct evbuffer *out = conn_out(c);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nX-Backend: %s\r\n%s", status, reason(status),
                        c->app->name, extra != NULL ? extra : "");
    if (content_length >= 0)
        evbuffer_add_printf(out, "Content-Length: %" PRId64 "\r\n", content_length);
    if (!c->req.keep_alive)
        evbuffer_add_printf(out, "Connection: close\r\n");
    else if (c->req.is_http10)
        evbuffer_add_printf(out, "Connection: keep-alive\r\n");
    evbuffer_add(out, "\r\n", 2);
}

static void send_text(struct conn *c, int status, const char *body)
{
    size_t len = strlen(body);
    send_head(c, status, "Content-Type: text/plain\r\n", (int64_t)len);
    if (!c->req.is_head)
        evbuffer_add(conn_out(c), body, len);
}

/* The response is fully queued: next request, or close. */
static void finish_response(struct conn *c)
{
    bool keep_alive = c->req.keep_alive;
    request_reset(&c->req);
    c->state = keep_alive ? C_HEAD : C_FLUSH;
    if (c->state == C_HEAD && c->app->idle_ms > 0)
        arm_timer(c, c->app->idle_ms);
}

/* Errors found while reading a request: answer and close, leaving the rest unread. */
static void reject(struct conn *c, int status)
{
    char text[64];
    snprintf(text, sizeof text, "%s\n", reason(status));
    c->req.keep_alive = false;
    send_text(c, status, text);
    finish_response(c);
}

static void fill_stream(struct conn *c)
{
    struct evbuffer *out = conn_out(c);
    while (c->out_remaining > 0 && evbuffer_get_length(out) < STREAM_FILL_TO) {
        size_t n = c->out_remaining < CHUNK_MAX ? (size_t)c->out_remaining : CHUNK_MAX;
        if (c->out_chunked)
            evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add(out, pattern + c->out_offset % 26, n);
        if (c->out_chunked)
            evbuffer_add(out, "\r\n", 2);
        c->out_offset += n;
        c->out_remaining -= n;
    }
    if (c->out_remaining == 0) {
        if (c->out_chunked)
            evbuffer_add(out, "0\r\n\r\n", 5);
        finish_response(c);
    }
}

static void start_stream(struct conn *c, uint64_t n, bool chunked)
{
    c->out_remaining = c->req.is_head ? 0 : n;
    c->out_chunked = chunked && !c->req.is_head;
    c->out_offset = 0;
    c->state = C_STREAM;
    fill_stream(c);
}

static void respond_stats(struct conn *c)
{
    struct app *a = c->app;
    char body[256];
    a->stats++;
    snprintf(body, sizeof body,
             "{\"connections\": %" PRIu64 ", \"requests\": %" PRIu64 ", \"healthz\": %" PRIu64
             ", \"stats\": %" PRIu64 ", \"active\": %" PRIu64 "}\n",
             a->connections, a->requests, a->healthz, a->stats, a->active);
    send_head(c, 200, "Content-Type: application/json\r\n", (int64_t)strlen(body));
    if (!c->req.is_head)
        evbuffer_add(conn_out(c), body, strlen(body));
}

static void respond_sha256(struct conn *c)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    char body[2 * EVP_MAX_MD_SIZE + 32];
    size_t at = 0;
    EVP_DigestFinal_ex(c->req.sha, md, &md_len);
    for (unsigned i = 0; i < md_len; i++)
        at += (size_t)snprintf(body + at, sizeof body - at, "%02x", md[i]);
    snprintf(body + at, sizeof body - at, " %" PRIu64 "\n", c->req.body_len);
    send_text(c, 200, body);
}

static void respond_ws(struct conn *c)
{
    if (!c->req.wants_upgrade) {
        send_head(c, 426, "Upgrade: websocket\r\nConnection: Upgrade\r\n", 0);
        finish_response(c);
        return;
    }
    char src[sizeof c->req.ws_key + sizeof WS_GUID];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    unsigned char accept[64];
    int n = snprintf(src, sizeof src, "%s%s", c->req.ws_key, WS_GUID);
    EVP_Digest(src, (size_t)n, md, &md_len, EVP_sha1(), NULL);
    EVP_EncodeBlock(accept, md, (int)md_len);
    evbuffer_add_printf(conn_out(c),
                        "HTTP/1.1 101 Switching Protocols\r\nX-Backend: %s\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: %s\r\n\r\n", c->app->name, accept);
    request_reset(&c->req);
    c->state = C_TUNNEL;
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_setwatermark(c->bev, EV_WRITE, ECHO_RESUME_AT, 0);
}

static void respond_status(struct conn *c)
{
    int status = (int)c->req.arg;
    char body[32];
    if (status == 204 || status == 304) {
        send_head(c, status, NULL, -1);
    } else {
        snprintf(body, sizeof body, "status %d\n", status);
        send_text(c, status, body);
    }
    finish_response(c);
}

/* Chunked, with the request's trailer lines as the body and two trailers of its own. */
static void respond_trailers(struct conn *c)
{
    struct request *r = &c->req;
    struct evbuffer *out = conn_out(c);
    size_t n = evbuffer_get_length(r->body);
    if (r->is_http10) {         /* no trailers in HTTP/1.0: close-delimited body */
        r->keep_alive = false;
        send_head(c, 200, "Content-Type: text/plain\r\n", -1);
        if (!r->is_head)
            evbuffer_add_buffer(out, r->body);
        return;
    }
    send_head(c, 200, "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                      "Trailer: X-Trailer, X-Body-Bytes\r\n", -1);
    if (r->is_head)
        return;
    if (n > 0) {
        evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add_buffer(out, r->body);
        evbuffer_add(out, "\r\n", 2);
    }
    evbuffer_add_printf(out, "0\r\nX-Trailer: done\r\nX-Body-Bytes: %" PRIu64 "\r\n\r\n",
                        r->body_len);
}

/* /reject/NNN: answers as soon as the head is in, never reads the body, and closes
 * without a lingering close, as a server refusing an upload may: the body still
 * arriving (or unread) makes the kernel reset the connection, perhaps before the
 * client read the answer. */
static void respond_reject(struct conn *c)
{
    char text[64];
    int status = (int)c->req.arg;
    snprintf(text, sizeof text, "%s\n", reason(status));
    c->req.keep_alive = false;
    send_text(c, status, text);
    request_reset(&c->req);
    c->state = C_RESET;
}

static void respond_healthz(struct conn *c)
{
    c->app->healthz++;
    bool is_down = c->app->health_file != NULL && access(c->app->health_file, F_OK) == 0;
    send_text(c, is_down ? 503 : 200, is_down ? "down\n" : "ok\n");
    finish_response(c);
}

static void respond(struct conn *c)
{
    struct request *r = &c->req;
    char text[256];

    switch (r->route) {
    case R_ROOT:
        snprintf(text, sizeof text, "%s\n", c->app->name);
        send_text(c, 200, text);
        break;
    case R_HEALTHZ:
        respond_healthz(c);
        return;
    case R_ECHO:
        send_head(c, 200, "Content-Type: application/octet-stream\r\n", (int64_t)r->body_len);
        if (!r->is_head)
            evbuffer_add_buffer(conn_out(c), r->body);
        break;
    case R_SHA256:
        respond_sha256(c);
        break;
    case R_BYTES:
        send_head(c, 200, "Content-Type: application/octet-stream\r\n", (int64_t)r->arg);
        start_stream(c, r->arg, false);
        return;
    case R_CHUNKED:
        /* HTTP/1.0 has no chunked coding: delimit by close instead. */
        if (r->is_http10) {
            r->keep_alive = false;
            send_head(c, 200, NULL, -1);
        } else {
            send_head(c, 200, "Transfer-Encoding: chunked\r\n", -1);
        }
        start_stream(c, r->arg, !r->is_http10);
        return;
    case R_CLOSE_DELIMITED:
        r->keep_alive = false;
        send_head(c, 200, NULL, -1);
        start_stream(c, r->arg, false);
        return;
    case R_STATUS:
        respond_status(c);
        return;
    case R_SLEEP:
        c->state = C_SLEEP;
        arm_timer(c, (unsigned)r->arg);
        return;
    case R_HANG:
        c->state = C_HANG;
        return;
    case R_CLOSE_MID:
        send_head(c, 200, NULL, 1000);
        evbuffer_add(conn_out(c), pattern, 10);
        r->keep_alive = false;
        break;
    case R_GARBAGE:
        evbuffer_add_printf(conn_out(c), "NOT HTTP AT ALL\r\n\r\n");
        r->keep_alive = false;
        break;
    case R_HEADERS:
        send_head(c, 200, "Content-Type: text/plain\r\n", (int64_t)r->head_len);
        if (!r->is_head)
            evbuffer_add(conn_out(c), r->head, r->head_len);
        break;
    case R_WS:
        respond_ws(c);
        return;
    case R_STATS:
        respond_stats(c);
        break;
    case R_TRAILERS:
        respond_trailers(c);
        break;
    case R_HOP_BY_HOP:
        send_head(c, 200, "Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\n"
                          "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
                          "Upgrade: h2c\r\nContent-Type: text/plain\r\n", 11);
        if (!r->is_head)
            evbuffer_add(conn_out(c), "hop-by-hop\n", 11);
        break;
    case R_REJECT:
        bufferevent_disable(c->bev, EV_READ);   /* the body stays in the kernel */
        respond_reject(c);
        return;
    }
    finish_response(c);
}

/* ---- request parsing ------------------------------------------------------------ */

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Decimal digits only, at most 15 of them; false otherwise. */
static bool parse_decimal(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 15)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool token_list_has(const char *v, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tlen && strncasecmp(v + start, token, tlen) == 0)
            return true;
    }
    return false;
}

static const struct {
    const char *path;
    enum route route;
    bool takes_number;          /* path is a prefix followed by a decimal */
} routes[] = {
    { "/healthz", R_HEALTHZ, false },          { "/echo", R_ECHO, false },
    { "/sha256", R_SHA256, false },            { "/bytes/", R_BYTES, true },
    { "/chunked/", R_CHUNKED, true },          { "/close-delimited/", R_CLOSE_DELIMITED, true },
    { "/status/", R_STATUS, true },            { "/sleep/", R_SLEEP, true },
    { "/hang", R_HANG, false },                { "/close-mid", R_CLOSE_MID, false },
    { "/garbage", R_GARBAGE, false },          { "/headers", R_HEADERS, false },
    { "/ws", R_WS, false },                    { "/__stats", R_STATS, false },
    { "/trailers", R_TRAILERS, false },        { "/hop-by-hop", R_HOP_BY_HOP, false },
    { "/reject/", R_REJECT, true },
};

/* 0, or the status to reject with. */
static int route_target(struct request *r, const char *target, size_t len)
{
    /* absolute-form: skip scheme://authority */
    const char *scheme_end = memchr(target, ':', len);
    if (scheme_end != NULL && scheme_end + 2 < target + len && scheme_end[1] == '/' &&
        scheme_end[2] == '/' && target[0] != '/') {
        const char *p = scheme_end + 3;
        const char *slash = memchr(p, '/', (size_t)(target + len - p));
        len = slash != NULL ? (size_t)(target + len - slash) : 0;
        target = slash != NULL ? slash : "/";
    }
    const char *query = memchr(target, '?', len);
    size_t path_len = query != NULL ? (size_t)(query - target) : len;

    r->route = R_ROOT;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        size_t plen = strlen(routes[i].path);
        if (!routes[i].takes_number) {
            if (path_len == plen && memcmp(target, routes[i].path, plen) == 0)
                r->route = routes[i].route;
            continue;
        }
        if (path_len < plen || memcmp(target, routes[i].path, plen) != 0)
            continue;
        if (!parse_decimal(target + plen, path_len - plen, &r->arg))
            return 400;
        r->route = routes[i].route;
        if ((r->route == R_STATUS || r->route == R_REJECT) && (r->arg < 200 || r->arg > 599))
            return 400;
        if (r->route == R_SLEEP && r->arg > 3600 * 1000)
            return 400;
    }
    return 0;
}

static int parse_request_line(struct request *r, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i >= len || line[i] != ' ')
        return 400;
    r->is_head = i == 4 && memcmp(line, "HEAD", 4) == 0;
    size_t target = ++i;
    while (i < len && (unsigned char)line[i] > 0x20 && (unsigned char)line[i] < 0x7f)
        i++;
    if (i == target || i >= len || line[i] != ' ')
        return 400;
    size_t target_len = i - target;
    i++;
    if (len - i != 8 || memcmp(line + i, "HTTP/1.", 7) != 0 ||
        (line[i + 7] != '0' && line[i + 7] != '1'))
        return 400;
    r->is_http10 = line[i + 7] == '0';
    return route_target(r, line + target, target_len);
}

struct head_flags {
    bool has_te, conn_close, conn_keep_alive, conn_upgrade, upgrade_websocket;
};

static int parse_field(struct request *r, struct head_flags *f, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && is_tchar((unsigned char)line[i]))
        i++;
    /* no name, obs-fold (leading space) or whitespace before the colon */
    if (i == 0 || i >= len || line[i] != ':')
        return 400;
    const char *name = line;
    size_t name_len = i++;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    const char *v = line + i;
    size_t vlen = len - i;
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    for (size_t k = 0; k < vlen; k++) {
        unsigned char ch = (unsigned char)v[k];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return 400;
    }
#define NAME_IS(s) (name_len == sizeof(s) - 1 && strncasecmp(name, s, name_len) == 0)
    if (NAME_IS("content-length")) {
        uint64_t cl;
        if (!parse_decimal(v, vlen, &cl) || (r->has_length && cl != r->content_length))
            return 400;
        r->has_length = true;
        r->content_length = cl;
    } else if (NAME_IS("transfer-encoding")) {
        if (f->has_te)
            return 400;
        f->has_te = true;
        if (vlen != 7 || strncasecmp(v, "chunked", 7) != 0)
            return 501;
    } else if (NAME_IS("connection")) {
        f->conn_close |= token_list_has(v, vlen, "close");
        f->conn_keep_alive |= token_list_has(v, vlen, "keep-alive");
        f->conn_upgrade |= token_list_has(v, vlen, "upgrade");
    } else if (NAME_IS("upgrade")) {
        f->upgrade_websocket |= token_list_has(v, vlen, "websocket");
    } else if (NAME_IS("sec-websocket-key")) {
        if (vlen == 0 || vlen >= sizeof r->ws_key)
            return 400;
        memcpy(r->ws_key, v, vlen);
        r->ws_key[vlen] = '\0';
    } else if (NAME_IS("expect")) {
        r->expect_continue = vlen == 12 && strncasecmp(v, "100-continue", 12) == 0;
    }
#undef NAME_IS
    return 0;
}

/* head: the request line and fields, ending with the empty line. 0 or a status. */
static int parse_head(struct request *r, const char *head, size_t len)
{
    struct head_flags f = { 0 };
    const char *p = head, *end = head + len;
    bool is_first = true;

    for (;;) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        size_t line_len = (size_t)(eol - p);
        if (line_len == 0)
            break;
        if (memchr(p, '\r', line_len) != NULL || memchr(p, '\n', line_len) != NULL ||
            memchr(p, '\0', line_len) != NULL)
            return 400;
        int status = is_first ? parse_request_line(r, p, line_len)
                              : parse_field(r, &f, p, line_len);
        if (status != 0)
            return status;
        is_first = false;
        p = eol + 2;
    }
    if (f.has_te && r->has_length)
        return 400;
    r->keep_alive = r->is_http10 ? f.conn_keep_alive && !f.conn_close : !f.conn_close;
    r->wants_upgrade = r->route == R_WS && f.conn_upgrade && f.upgrade_websocket &&
                       r->ws_key[0] != '\0';
    if (f.has_te)
        r->framing = BODY_CHUNKED;
    else if (r->has_length && r->content_length > 0)
        r->framing = BODY_LENGTH;
    r->remaining = r->content_length;
    if (r->route == R_REJECT)
        r->framing = BODY_NONE;     /* answered at once: the body is never read */
    return 0;
}

/* ---- reading requests ----------------------------------------------------------- */

/* Sets up the body sinks; 0 or a status to reject with. */
static int start_request(struct conn *c)
{
    struct request *r = &c->req;
    if (r->route == R_ECHO || r->route == R_TRAILERS) {
        if (r->route == R_ECHO && r->has_length && r->content_length > ECHO_BODY_MAX)
            return 413;
        if ((r->body = evbuffer_new()) == NULL)
            return 500;
    } else if (r->route == R_SHA256) {
        r->sha = EVP_MD_CTX_new();
        if (r->sha == NULL || EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL) != 1)
            return 500;
    }
    if (c->app->max_requests > 0 && c->served >= c->app->max_requests)
        r->keep_alive = false;
    if (r->expect_continue && r->framing != BODY_NONE && !r->is_http10)
        evbuffer_add_printf(conn_out(c), "HTTP/1.1 100 Continue\r\n\r\n");
    c->state = C_BODY;
    return 0;
}

/* Returns true when a request was started or rejected; false: need more input. */
static bool read_head(struct conn *c)
{
    struct evbuffer *in = conn_in(c);
    /* RFC 9112 §2.2: ignore empty lines before a request line. */
    while (evbuffer_get_length(in) >= 2 && memcmp(evbuffer_pullup(in, 2), "\r\n", 2) == 0)
        evbuffer_drain(in, 2);
    size_t avail = evbuffer_get_length(in);
    if (avail == 0)
        return false;
    disarm_timer(c);

    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0 || (size_t)end.pos + 4 > MAX_HEAD) {
        if (end.pos < 0 && avail <= MAX_HEAD)
            return false;
        c->app->requests++;
        reject(c, 431);
        return true;
    }
    size_t head_len = (size_t)end.pos + 4;
    const char *head = (const char *)evbuffer_pullup(in, (ev_ssize_t)head_len);
    c->app->requests++;
    c->served++;
    int status = parse_head(&c->req, head, head_len);
    if (status == 0 && c->req.route == R_HEADERS) {
        c->req.head = malloc(head_len);
        if (c->req.head == NULL) {
            status = 500;
        } else {
            memcpy(c->req.head, head, head_len);
            c->req.head_len = head_len;
        }
    }
    if (status == 0)
        status = start_request(c);
    if (status != 0) {
        reject(c, status);
        return true;
    }
    evbuffer_drain(in, head_len);
    return true;
}

/* Feeds up to n bytes of body from the input to the route's sink. 0 or a status. */
static int consume_body(struct conn *c, uint64_t n)
{
    struct request *r = &c->req;
    struct evbuffer *in = conn_in(c);
    size_t take = evbuffer_get_length(in);
    if ((uint64_t)take > n)
        take = (size_t)n;
    if (r->route == R_ECHO) {
        if (r->body_len + take > ECHO_BODY_MAX)
            return 413;
        evbuffer_remove_buffer(in, r->body, take);
    } else if (r->route == R_SHA256) {
        struct evbuffer_iovec v[16];
        size_t left = take;
        while (left > 0) {
            int count = evbuffer_peek(in, (ev_ssize_t)left, NULL, v, 16);
            size_t done = 0;
            for (int i = 0; i < count && done < left; i++) {
                size_t part = v[i].iov_len < left - done ? v[i].iov_len : left - done;
                EVP_DigestUpdate(r->sha, v[i].iov_base, part);
                done += part;
            }
            evbuffer_drain(in, done);
            left -= done;
        }
    } else {
        evbuffer_drain(in, take);
    }
    r->body_len += take;
    r->remaining -= take;
    return 0;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
        return (ch | 0x20) - 'a' + 10;
    return -1;
}

/* "1a2b[;ext]": at most 12 hex digits (no chunk of a terabyte); false if invalid. */
static bool parse_chunk_size(const char *line, size_t len, uint64_t *size)
{
    size_t i = 0;
    *size = 0;
    for (; i < len && hex_value(line[i]) >= 0; i++) {
        if (i == 12)
            return false;
        *size = *size * 16 + (uint64_t)hex_value(line[i]);
    }
    return i > 0 && (i == len || line[i] == ';' || line[i] == ' ' || line[i] == '\t');
}

/* Reads a chunk-size line or a trailer line. 1: progress, 0: need more, else a status. */
static int read_chunk_line(struct conn *c)
{
    struct request *r = &c->req;
    struct evbuffer *in = conn_in(c);
    size_t n = 0;
    char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
    if (line == NULL)
        return evbuffer_get_length(in) > CHUNK_LINE_MAX ? 400 : 0;

    int status = 1;
    if (r->chunk == CHUNK_TRAILER) {
        r->trailer_bytes += n + 2;
        if (r->trailer_bytes > MAX_HEAD)
            status = 431;
        else if (n == 0)
            r->framing = BODY_NONE;
        else if (r->route == R_TRAILERS)
            evbuffer_add_printf(r->body, "%s\r\n", line);
    } else if (parse_chunk_size(line, n, &r->remaining)) {
        r->chunk = r->remaining == 0 ? CHUNK_TRAILER : CHUNK_DATA;
    } else {
        status = 400;
    }
    free(line);
    return status;
}

/* One step of the chunked decoder. 1: progress, 0: need more input, else a status. */
static int read_chunked_step(struct conn *c)
{
    struct request *r = &c->req;
    struct evbuffer *in = conn_in(c);

    switch (r->chunk) {
    case CHUNK_SIZE:
    case CHUNK_TRAILER:
        return read_chunk_line(c);
    case CHUNK_DATA: {
        int status = consume_body(c, r->remaining);
        if (status != 0)
            return status;
        if (r->remaining > 0)
            return 0;
        r->chunk = CHUNK_DATA_END;
        return 1;
    }
    case CHUNK_DATA_END:
        if (evbuffer_get_length(in) < 2)
            return 0;
        if (memcmp(evbuffer_pullup(in, 2), "\r\n", 2) != 0)
            return 400;
        evbuffer_drain(in, 2);
        r->chunk = CHUNK_SIZE;
        return 1;
    }
    return 400;
}

/* Returns true when the body is complete (and the response started) or rejected. */
static bool read_body(struct conn *c)
{
    struct request *r = &c->req;
    for (;;) {
        int status = 0;
        if (r->framing == BODY_NONE) {
            respond(c);
            return true;
        }
        if (r->framing == BODY_LENGTH) {
            status = consume_body(c, r->remaining);
            if (status == 0 && r->remaining == 0)
                r->framing = BODY_NONE;
            else if (status == 0)
                return false;
        } else {
            status = read_chunked_step(c);
            if (status == 0)
                return false;
            if (status == 1)
                status = 0;
        }
        if (status != 0) {
            reject(c, status);
            return true;
        }
    }
}

static void echo_relay(struct conn *c)
{
    evbuffer_add_buffer(conn_out(c), conn_in(c));
    if (!c->read_paused && evbuffer_get_length(conn_out(c)) > ECHO_PAUSE_AT) {
        bufferevent_disable(c->bev, EV_READ);
        c->read_paused = true;
    }
}

/* Handles every complete request in the input, in order (pipelining). */
static void process(struct conn *c)
{
    for (;;) {
        bool progressed;
        switch (c->state) {
        case C_HEAD:
            progressed = read_head(c);
            break;
        case C_BODY:
            progressed = read_body(c);
            break;
        case C_TUNNEL:
            echo_relay(c);
            return;
        case C_LINGER:
            evbuffer_drain(conn_in(c), evbuffer_get_length(conn_in(c)));
            return;
        default:
            return;
        }
        if (!progressed)
            return;
    }
}

/* ---- callbacks ------------------------------------------------------------------ */

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    process(c);
    settle(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (c->state == C_STREAM)
        fill_stream(c);
    if (c->read_paused && evbuffer_get_length(conn_out(c)) <= ECHO_RESUME_AT) {
        c->read_paused = false;
        bufferevent_enable(c->bev, EV_READ);
    }
    process(c);
    settle(c);
}

static void event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct conn *c = arg;
    if (events & BEV_EVENT_ERROR) {
        conn_free(c);
        return;
    }
    if (events & BEV_EVENT_EOF) {
        c->peer_eof = true;
        process(c);
        settle(c);
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    switch (c->state) {
    case C_SLEEP: {
        char text[64];
        snprintf(text, sizeof text, "slept %" PRIu64 "\n", c->req.arg);
        send_text(c, 200, text);
        finish_response(c);
        process(c);
        break;
    }
    case C_HEAD:        /* --idle-ms expired on an idle keep-alive connection */
        if (evbuffer_get_length(conn_in(c)) == 0)
            c->state = C_FLUSH;
        break;
    case C_LINGER:
        conn_free(c);
        return;
    default:
        break;
    }
    settle(c);
}

static void accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
                      struct sockaddr *sa, int socklen, void *arg)
{
    struct app *a = arg;
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (a->ssl_ctx != NULL) {
        SSL *ssl = SSL_new(a->ssl_ctx);
        c->bev = ssl == NULL ? NULL
                             : bufferevent_openssl_socket_new(a->base, fd, ssl,
                                                              BUFFEREVENT_SSL_ACCEPTING,
                                                              BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL)
            SSL_free(ssl);
        else
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    c->app = a;
    c->next = a->conns;
    if (a->conns != NULL)
        a->conns->prev = c;
    a->conns = c;
    a->connections++;
    a->active++;
    c->state = a->mode == MODE_ECHO ? C_TUNNEL : C_HEAD;
    if (a->mode == MODE_HTTP) {
        bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATERMARK);
        bufferevent_setwatermark(c->bev, EV_WRITE, STREAM_REFILL_AT, 0);
        if (a->idle_ms > 0)
            arm_timer(c, a->idle_ms);
    } else {
        bufferevent_setwatermark(c->bev, EV_WRITE, ECHO_RESUME_AT, 0);
    }
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- setup ---------------------------------------------------------------------- */

static void accept_error_cb(struct evconnlistener *listener, void *arg)
{
    fprintf(stderr, "demo_backend: accept: %s\n", strerror(errno));
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct app *a = arg;
    event_base_loopbreak(a->base);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: demo_backend --listen HOST:PORT | --port PORT --name NAME\n"
            "         [--mode http|echo] [--tls CERT KEY] [--health-file PATH]\n"
            "         [--idle-ms MS] [--max-requests N]\n"
            "http routes: / /healthz /echo /sha256 /bytes/N /chunked/N /close-delimited/N\n"
            "  /status/NNN /sleep/MS /hang /close-mid /garbage /headers /ws /__stats\n"
            "  /trailers: chunked response, the body is the request's trailer lines, the\n"
            "    trailers are X-Trailer: done and X-Body-Bytes: <request body bytes>\n"
            "  /hop-by-hop: a response carrying Connection (naming X-Hop), X-Hop,\n"
            "    Keep-Alive, Proxy-Connection and Upgrade fields\n"
            "  /reject/NNN: answers NNN with Connection: close as soon as the head is in,\n"
            "    never reads the body, then closes the socket outright (no lingering\n"
            "    close): the unread body makes the kernel send a reset\n");
}

struct options {
    const char *listen, *name, *cert, *key, *health_file;
    char listen_buf[64];
    enum mode mode;
    unsigned idle_ms, max_requests;
};

static int parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(arg, "--listen") == 0 && has_value) {
            o->listen = argv[++i];
        } else if (strcmp(arg, "--port") == 0 && has_value) {
            snprintf(o->listen_buf, sizeof o->listen_buf, "127.0.0.1:%s", argv[++i]);
            o->listen = o->listen_buf;
        } else if (strcmp(arg, "--name") == 0 && has_value) {
            o->name = argv[++i];
        } else if (strcmp(arg, "--mode") == 0 && has_value) {
            const char *m = argv[++i];
            if (strcmp(m, "http") != 0 && strcmp(m, "echo") != 0)
                return -1;
            o->mode = strcmp(m, "echo") == 0 ? MODE_ECHO : MODE_HTTP;
        } else if (strcmp(arg, "--tls") == 0 && i + 2 < argc) {
            o->cert = argv[++i];
            o->key = argv[++i];
        } else if (strcmp(arg, "--health-file") == 0 && has_value) {
            o->health_file = argv[++i];
        } else if (strcmp(arg, "--idle-ms") == 0 && has_value) {
            o->idle_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(arg, "--max-requests") == 0 && has_value) {
            o->max_requests = (unsigned)strtoul(argv[++i], NULL, 10);
        } else {
            return -1;
        }
    }
    return o->listen != NULL ? 0 : -1;
}

static SSL_CTX *load_tls(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    return ctx;

fail:
    fprintf(stderr, "demo_backend: cannot load %s / %s: %s\n", cert, key,
            ERR_reason_error_string(ERR_peek_last_error()));
    SSL_CTX_free(ctx);
    return NULL;
}

/* 0, or -1 when the bound address cannot be read (said on stderr): a "ready" line
 * with an address made of uninitialised bytes would send the test elsewhere. */
static int print_ready(struct app *a)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (getsockname(evconnlistener_get_fd(a->listener), (struct sockaddr *)&ss, &len) != 0) {
        fprintf(stderr, "demo_backend: getsockname: %s\n", strerror(errno));
        return -1;
    }
    /* getsockname() filled ss: the analyzer cannot see that through glibc's
     * transparent-union address argument (_GNU_SOURCE).
     * NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        port = ntohs(s6->sin6_port);
        printf("ready %s [%s]:%u\n", a->name, host, port);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        port = ntohs(s4->sin_port);
        printf("ready %s %s:%u\n", a->name, host, port);
    }
    fflush(stdout);
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT"; port 0 asks the kernel for one, which
 * evutil_parse_sockaddr_port() refuses, so parse port 1 and zero it. */
static int parse_listen(const char *text, struct sockaddr_storage *ss, int *len)
{
    char buf[128];
    size_t n = strlen(text);
    bool wants_any_port = n >= 2 && strcmp(text + n - 2, ":0") == 0;
    snprintf(buf, sizeof buf, "%.*s%s", (int)(wants_any_port ? n - 1 : n), text,
             wants_any_port ? "1" : "");
    if (evutil_parse_sockaddr_port(buf, (struct sockaddr *)ss, len) != 0)
        return -1;
    if (wants_any_port && ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = 0;
    else if (wants_any_port)
        ((struct sockaddr_in *)ss)->sin_port = 0;
    return 0;
}

static int app_start(struct app *a, const struct options *o)
{
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    if (parse_listen(o->listen, &ss, &sslen) != 0) {
        fprintf(stderr, "demo_backend: bad listen address %s\n", o->listen);
        return -1;
    }
    if (o->cert != NULL && (a->ssl_ctx = load_tls(o->cert, o->key)) == NULL)
        return -1;
    if ((a->base = event_base_new()) == NULL)
        return -1;
    a->listener = evconnlistener_new_bind(a->base, accept_cb, a,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                          (struct sockaddr *)&ss, sslen);
    if (a->listener == NULL) {
        fprintf(stderr, "demo_backend: cannot listen on %s: %s\n", o->listen, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(a->listener, accept_error_cb);
    a->sig_term = evsignal_new(a->base, SIGTERM, signal_cb, a);
    a->sig_int = evsignal_new(a->base, SIGINT, signal_cb, a);
    if (a->sig_term == NULL || a->sig_int == NULL || evsignal_add(a->sig_term, NULL) != 0 ||
        evsignal_add(a->sig_int, NULL) != 0)
        return -1;
    return 0;
}

static void app_free(struct app *a)
{
    /* conn_free() unlinks c from c->app, which is a, so a->conns moves on (the analyzer
     * does not know that c->app == a). */
    while (a->conns != NULL)
        conn_free(a->conns); /* NOLINT(clang-analyzer-unix.Malloc) */
    if (a->listener != NULL)
        evconnlistener_free(a->listener);
    if (a->sig_term != NULL)
        event_free(a->sig_term);
    if (a->sig_int != NULL)
        event_free(a->sig_int);
    if (a->base != NULL)
        event_base_free(a->base);
    SSL_CTX_free(a->ssl_ctx);
}

int main(int argc, char **argv)
{
    struct options o = { .name = "backend", .mode = MODE_HTTP };
    if (parse_args(argc, argv, &o) != 0) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (char)('a' + i % 26);

    struct app a = { .name = o.name, .health_file = o.health_file, .mode = o.mode,
                     .idle_ms = o.idle_ms, .max_requests = o.max_requests };
    int rc = 1;
    if (app_start(&a, &o) == 0 && print_ready(&a) == 0)
        rc = event_base_dispatch(a.base) < 0 ? 1 : 0;
    app_free(&a);
    libevent_global_shutdown();
    return rc;
}

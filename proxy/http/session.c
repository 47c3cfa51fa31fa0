/* HTTP session: lifecycle, libevent callbacks, the pump, flow control and timers.
 * The client connection is in client.c, the client side of requests in request.c, the
 * backend side in exchange.c. See internal.h for the control-flow rules. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "core/bev.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/worker.h"
#include "http/internal.h"
#include "http/proxy.h"
#include "tls/tls.h"
#include "upstream/connect.h"

/* Request targets longer than this get 414 (nginx's large_client_header_buffers). */
enum { MAX_TARGET_BYTES = 8192 };

static const char *const state_names[] = {
    [HS_IDLE] = "idle", [HS_HEAD] = "head", [HS_EXCHANGE] = "exchange",
    [HS_TUNNEL] = "tunnel", [HS_FLUSH] = "flush", [HS_LINGER] = "linger",
    [HS_CLOSED] = "closed",
};

void http_set_state(struct http_session *s, enum hs_state next)
{
    log_debug("http session %p %s -> %s", (void *)s, state_names[s->state], state_names[next]);
    s->state = next;
}

const struct config *http_cfg(const struct http_session *s) { return s->base.runtime->cfg; }

struct http1_limits http_limits(const struct http_session *s, bool for_request)
{
    const struct config *cfg = http_cfg(s);
    struct http1_limits lim = {
        .max_header_bytes = cfg->limits.max_header_bytes,
        .max_headers = cfg->limits.max_headers,
        .max_target_bytes = MAX_TARGET_BYTES,
        .max_body_bytes = for_request ? cfg->limits.max_body_bytes : 0,
    };
    return lim;
}

/* ---- timer and freeing ------------------------------------------------------------ */

/* Bytes waiting in both outputs: when this moves, a peer is reading, slowly maybe,
 * but without any callback telling us (they come at the watermarks only), or the
 * pump wrote (which it notes itself, as it happens). */
static size_t queued_bytes(struct http_session *s)
{
    size_t n = evbuffer_get_length(s->client_out);
    return s->up ? n + evbuffer_get_length(bufferevent_get_output(s->up)) : n;
}

void http_arm_timer(struct http_session *s, unsigned ms, enum http_timer_rule rule)
{
    s->timer_ms = ms;
    s->timer_rule = rule;
    s->activity_ms = clock_now_ms();
    s->timer_queued = queued_bytes(s);
    struct timeval tv = clock_tv_from_ms(ms);
    evtimer_add(s->timer, &tv);
}

/* Frees what session_io_new made (any part may be missing), and closes the client
 * connection when it was opened. */
static void session_io_free(struct http_session *s)
{
    http_client_close(s);
    if (s->timer)
        event_free(s->timer);
    if (s->fwd_head)
        evbuffer_free(s->fwd_head);
}

static void session_free(struct http_session *s)
{
    if (s->req_dispatched) {
        /* Cut short (client gone, forced stop): 499 as nginx says when no status. */
        if (!s->resp_started && s->status == 0)
            s->status = 499;
        http_record_request(s);
    }
    if (s->up)
        http_upstream_release(s, false);
    if (s->up_read)
        event_free(s->up_read);
    session_io_free(s);
    session_detach(&s->base);
    free(s);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct http_session *s = arg;
    if (s->state == HS_CLOSED) {
        session_free(s);
        return;
    }
    if (s->timer_rule != HTTP_TIMER_FIXED) {
        size_t queued = queued_bytes(s);
        if (queued != s->timer_queued) {
            s->timer_queued = queued;
            s->activity_ms = clock_now_ms();
        }
        int64_t idle = clock_now_ms() - s->activity_ms;
        if (idle < (int64_t)s->timer_ms) {
            struct timeval tv = clock_tv_from_ms(s->timer_ms - (unsigned)idle);
            evtimer_add(s->timer, &tv);
            return;
        }
    }
    s->timer_expired = true;
    http_kick(s);
}

void http_close(struct http_session *s)
{
    if (s->state == HS_CLOSED)
        return;
    http_set_state(s, HS_CLOSED);
    http_client_stop(s);
    if (s->up_read)
        event_del(s->up_read);
    if (s->up) {
        bufferevent_setcb(s->up, NULL, NULL, NULL, NULL);
        bufferevent_disable(s->up, EV_READ | EV_WRITE);
    }
    /* Freed from the event loop, once every callback on the stack has returned. */
    evtimer_del(s->timer);
    event_active(s->timer, EV_TIMEOUT, 1);
}

void http_abort_client(struct http_session *s)
{
    struct linger reset = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(s->client_fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    /* No close_notify either: on TLS it would tell the client the response ended. */
    if (s->tls)
        SSL_set_quiet_shutdown(s->tls, 1);
    http_close(s);
}

/* ---- the pump ---------------------------------------------------------------------- */

static void on_timeout(struct http_session *s)
{
    switch (s->state) {
    case HS_HEAD:
        log_debug("http session %p: request head not complete after %u ms", (void *)s,
                  s->timer_ms);
        http_respond_error(s, 408, false);
        break;
    case HS_EXCHANGE:
        http_exchange_timeout(s);
        break;
    case HS_IDLE:
    case HS_TUNNEL:
    case HS_FLUSH:
    case HS_LINGER:
        http_close(s);
        break;
    case HS_CLOSED:
        break;
    }
}

void http_set_reading(struct bufferevent *bev, struct event *own, bool *is_reading, bool want)
{
    if (*is_reading == want)
        return;
    if (own && want)
        event_add(own, NULL);
    else if (own)
        event_del(own);
    else if (want)
        bufferevent_enable(bev, EV_READ);
    else
        bufferevent_disable(bev, EV_READ);
    *is_reading = want;
}

/* Throttles `*flag` (reading the side that fills `out`) by out's length. When
 * libevent may write `out` (the upstream bufferevent `bev`), a write low watermark
 * makes its write callback say when it has drained; the client's output is written
 * by ferry's own events, which run the pump anyway (bev NULL). */
static void update_throttle(struct evbuffer *out, struct bufferevent *bev, bool *flag)
{
    size_t queued = evbuffer_get_length(out);
    if (!*flag && queued >= HTTP_HIGH_WATER) {
        *flag = true;
        if (bev)
            bufferevent_setwatermark(bev, EV_WRITE, HTTP_LOW_WATER, 0);
    } else if (*flag && queued <= HTTP_LOW_WATER) {
        *flag = false;
        if (bev)
            bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    }
}

/* Reading is enabled exactly when the state wants input and the buffers have room.
 * (We bound inputs ourselves rather than with read watermarks: a TLS bufferevent of
 * libevent 2.1 suspended by its watermark can strand decrypted bytes.) */
static void update_flow(struct http_session *s)
{
    size_t in_max = http_cfg(s)->limits.max_header_bytes + HTTP_INPUT_SLACK;
    if (s->up)
        update_throttle(bufferevent_get_output(s->up), s->up, &s->client_throttled);
    bool was_full = s->client_out_full;
    update_throttle(s->client_out, NULL, &s->client_out_full);
    if (s->client_out_full != was_full && s->up_state == UP_BODY)
        http_arm_response_timer(s);     /* the other side holds the response up now */
    bool client_want = !s->client_eof && !s->client_throttled && !s->client_out_full &&
                       !s->tls_wants_write && evbuffer_get_length(s->client_in) < in_max;
    http_client_set_reading(s, client_want);
    if (!s->up)
        return;
    bool up_active = s->state == HS_TUNNEL || s->up_state == UP_WAIT_HEAD || s->up_state == UP_BODY;
    bool up_want = up_active && !s->up_eof && !s->client_out_full &&
                   evbuffer_get_length(bufferevent_get_input(s->up)) < in_max;
    http_set_reading(s->up, s->up_read_own ? s->up_read : NULL, &s->up_reading, up_want);
}

static bool step(struct http_session *s)
{
    switch (s->state) {
    case HS_IDLE: return http_idle_step(s);
    case HS_HEAD: return http_head_step(s);
    case HS_EXCHANGE: return http_exchange_step(s);
    case HS_TUNNEL: return http_tunnel_step(s);
    case HS_FLUSH: return http_flush_step(s);
    case HS_LINGER: return http_linger_step(s);
    case HS_CLOSED: return false;
    }
    return false;
}

/* Outputs are written at the end of each pump round, and a write event is armed
 * only while a socket is full: a bufferevent with EV_WRITE enabled arms it
 * (epoll_ctl) whenever data is added and disarms it when the output empties, two
 * syscalls per response and side. This is the upstream side; TLS upstream
 * bufferevents write through OpenSSL their way, once small outputs are joined.
 * Returns true when it wrote something or failed (another round is worth it). */
static bool write_through(struct bufferevent *bev, bool *failed)
{
    if (bufferevent_openssl_get_ssl(bev)) {
        sockio_join_small_output(bufferevent_get_output(bev));
        return false;
    }
    struct evbuffer *out = bufferevent_get_output(bev);
    bool is_armed = (bufferevent_get_enabled(bev) & EV_WRITE) != 0;
    if (evbuffer_get_length(out) == 0) {
        if (is_armed)   /* libevent already disarmed the event: no syscall here */
            bufferevent_disable(bev, EV_WRITE);
        return false;
    }
    if (is_armed)
        return false;   /* the socket was full: libevent writes when it drains */
    /* A socket bufferevent keeps the start of its output frozen for everyone but
     * its own write callback; we write the way that callback does. */
    evbuffer_unfreeze(out, 1);
    errno = 0;
    int n = evbuffer_write(out, bufferevent_getfd(bev));
    evbuffer_freeze(out, 1);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        *failed = true;
        return true;
    }
    if (evbuffer_get_length(out) > 0)
        bufferevent_enable(bev, EV_WRITE);
    return n > 0;
}

/* A tunnel has no answer to wait for: the write failure ends it. */
static void note_upstream_write_failed(struct http_session *s)
{
    if (s->state == HS_TUNNEL)
        s->up_eof = s->up_error = true;
    else
        s->up_write_failed = true;
}

static bool flush_outputs(struct http_session *s)
{
    bool failed = false;
    bool again = http_client_write(s, &failed);
    if (failed)
        s->client_error = true;
    if (s->up && s->up_state != UP_CONNECTING && !s->up_write_failed) {
        failed = false;
        again |= write_through(s->up, &failed);
        if (failed)
            note_upstream_write_failed(s);
    }
    if (again && s->timer_rule != HTTP_TIMER_FIXED) {
        /* Progress now: the timer's next look must not count it again later. */
        s->activity_ms = clock_now_ms();
        s->timer_queued = queued_bytes(s);
    }
    return again;
}

static void pump(struct http_session *s)
{
    for (;;) {
        if (s->client_error) {
            http_close(s);
            return;
        }
        if (s->timer_expired) {
            s->timer_expired = false;
            on_timeout(s);
        }
        while (s->state != HS_CLOSED && step(s))
            ;
        if (s->state == HS_CLOSED)
            return;
        if (!flush_outputs(s))
            break;
    }
    update_flow(s);
}

void http_kick(struct http_session *s)
{
    if (s->busy) {
        s->again = true;
        return;
    }
    s->busy = true;
    do {
        s->again = false;
        pump(s);
    } while (s->again && s->state != HS_CLOSED);
    s->busy = false;
}

/* ---- callbacks: record, then kick -------------------------------------------------- */

/* The upstream bufferevent's callbacks (libevent's reads of a TLS upstream, or its
 * write of what a full socket left over): progress under every timer rule. */
static void on_readable_or_written(struct bufferevent *bev, void *arg)
{
    struct http_session *s = arg;
    s->activity_ms = clock_now_ms();
    http_kick(s);
}

static void on_upstream_readable(evutil_socket_t fd, short what, void *arg)
{
    struct http_session *s = arg;
    size_t got, max = s->up_read_size;
    enum sockio_result result = bev_read_socket(s->up, max, &got);
    s->up_read_size = sockio_next_read_size(max, got);
    if (!http_note_read(s, result, &s->up_eof, &s->up_error))
        return;
    s->activity_ms = clock_now_ms();
    http_kick(s);
}

void http_own_upstream_reads(struct http_session *s)
{
    struct event_base *base = worker_base(s->base.worker);
    int fd = bufferevent_getfd(s->up);
    if (!s->up_read)
        s->up_read = event_new(base, fd, EV_READ | EV_PERSIST, on_upstream_readable, s);
    else
        event_assign(s->up_read, base, fd, EV_READ | EV_PERSIST, on_upstream_readable, s);
    if (!s->up_read)
        return;     /* out of memory: libevent reads this connection */
    /* A pooled connection arrives with libevent reading it. Adding our event before
     * removing libevent's keeps the fd registered in epoll throughout: no epoll_ctl
     * for the hand-over (libevent counts read events per fd). */
    bool was_reading = (bufferevent_get_enabled(s->up) & EV_READ) != 0;
    if (was_reading)
        event_add(s->up_read, NULL);
    bufferevent_disable(s->up, EV_READ);
    s->up_read_own = true;
    s->up_reading = was_reading;
}

/* Before the connection goes back to the pool (which watches it with libevent's
 * read event), hand the fd back in the same order: libevent's read first. */
void http_disown_upstream_reads(struct http_session *s, bool to_pool)
{
    if (!s->up_read_own)
        return;
    if (to_pool)
        bufferevent_enable(s->up, EV_READ);
    event_del(s->up_read);
    s->up_read_own = false;
}

static void on_upstream_event(struct bufferevent *bev, short what, void *arg)
{
    struct http_session *s = arg;
    if (s->up_state == UP_CONNECTING) {
        if (what & BEV_EVENT_CONNECTED) {
            s->up_connected = true;
        } else {
            s->up_connect_failed = true;
            s->up_timed_out = (what & BEV_EVENT_TIMEOUT) != 0;
        }
    } else if ((what & BEV_EVENT_WRITING) && !upstream_is_tls(bev)) {
        /* libevent's write of what a full socket left over (ferry reads plain
         * upstreams itself). A TLS connection is unusable after an error. */
        note_upstream_write_failed(s);
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        s->up_eof = true;
        s->up_error = !(what & BEV_EVENT_EOF) &&
                      !(upstream_is_tls(bev) &&
                        tls_error_is_dirty_eof(bufferevent_get_openssl_error(bev)));
    }
    http_kick(s);
}

void http_watch_upstream(struct http_session *s)
{
    bufferevent_setcb(s->up, on_readable_or_written, on_readable_or_written, on_upstream_event, s);
}

/* ---- session ops and start ------------------------------------------------------- */

static void op_close(struct session *base)
{
    session_free((struct http_session *)base);
}

static void op_drain(struct session *base)
{
    struct http_session *s = (struct http_session *)base;
    s->draining = true;
    if (s->state != HS_IDLE)
        return;     /* in flight: the response says Connection: close, then we close */
    if (evbuffer_get_length(s->client_out) == 0 && evbuffer_get_length(s->client_in) == 0) {
        session_free(s);
        return;
    }
    http_kick(s);
}

static const struct session_ops http_ops = { .close = op_close, .drain = op_drain };

/* The session's timer and head buffer, and the client connection. */
static int session_io_new(struct http_session *s, struct event_base *base,
                          struct rt_listener *listener, int fd)
{
    s->timer = evtimer_new(base, on_timer, s);
    s->fwd_head = evbuffer_new();
    if (!s->timer || !s->fwd_head)
        return -1;
    return http_client_open(s, base, listener, fd);
}

int http_session_start(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                       int fd, const struct sockaddr *peer)
{
    struct http_session *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->client_fd = -1;      /* not ours until the connection is open */
    if (session_io_new(s, worker_base(w), listener, fd) < 0) {
        session_io_free(s);
        free(s);
        return -1;
    }
    s->base.ops = &http_ops;
    session_attach(&s->base, w, rt, listener, NULL, peer);
    s->state = HS_IDLE;
    s->start_ms = clock_now_ms();
    http_arm_timer(s, rt->cfg->timeouts.client_idle_ms, HTTP_TIMER_FIXED);
    return 0;
}

/* HTTP session: lifecycle, the pump, flow control and timers. The client connection
 * is in client.c, the client side of requests in request.c and h1_exchange.c, the
 * backend side in the exchange (exchange.h). See internal.h for the control-flow
 * rules. */
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/worker.h"
#include "http/internal.h"
#include "http/proxy.h"
#include "http2/h2.h"
#include "tls/tls.h"
#include "upstream/pool.h"

static const char *const state_names[] = {
    [HS_IDLE] = "idle", [HS_HEAD] = "head", [HS_EXCHANGE] = "exchange",
    [HS_TUNNEL] = "tunnel", [HS_H2] = "h2", [HS_FLUSH] = "flush", [HS_LINGER] = "linger",
    [HS_CLOSED] = "closed",
};

void http_set_state(struct http_session *s, enum hs_state next)
{
    log_debug("http session %p %s -> %s", (void *)s, state_names[s->state], state_names[next]);
    s->state = next;
}

const struct config *http_cfg(const struct http_session *s) { return s->base.runtime->cfg; }

/* ---- timer and freeing ------------------------------------------------------------ */

/* Bytes waiting in both outputs: when this moves, a peer is reading, slowly maybe,
 * but without any callback telling us (they come at the watermarks only). */
static size_t queued_bytes(struct http_session *s)
{
    return evbuffer_get_length(s->client_out) + (s->ex ? http_exchange_queued(s->ex) : 0);
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
    h2_free(s);
    if (s->ex)
        http_exchange_give_back(s->ex);     /* a request cut short is logged here */
    s->ex = NULL;
    http_client_close(s);
    if (s->timer)
        event_free(s->timer);
}

static void session_free(struct http_session *s)
{
    session_io_free(s);
    if (s->base.owns_upstreams)     /* they carry this client's PROXY header */
        upstream_pool_close_owner(worker_upstream_pool(s->base.worker), (uintptr_t)&s->base);
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
    if (s->ex)
        http_exchange_stop(s->ex);
    if (s->h2)
        h2_stop(s);
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
        http_reject(s, 408);
        break;
    case HS_EXCHANGE:
        http_exchange_timeout(s->ex);
        break;
    case HS_H2:
        h2_idle_timeout(s);
        break;
    case HS_IDLE:
        if (s->tls && !s->handshake_done) {
            log_debug("http session %p: TLS handshake not done after %u ms", (void *)s,
                      s->timer_ms);
            tls_count_handshake_timeout();
        }
        http_close(s);
        break;
    case HS_TUNNEL:
    case HS_FLUSH:
    case HS_LINGER:
        http_close(s);
        break;
    case HS_CLOSED:
        break;
    }
}

/* Throttles reading the upstream by the client's output: stop at the high water
 * mark, resume at the low one. Its drain is seen by our own write events, which run
 * the pump anyway. */
static void update_throttle(struct evbuffer *out, bool *flag)
{
    size_t queued = evbuffer_get_length(out);
    if (!*flag && queued >= HTTP_HIGH_WATER)
        *flag = true;
    else if (*flag && queued <= HTTP_LOW_WATER)
        *flag = false;
}

/* Reading is enabled exactly when the state wants input and the buffers have room.
 * (We bound inputs ourselves rather than with read watermarks: a TLS bufferevent of
 * libevent 2.1 suspended by its watermark can strand decrypted bytes.) */
static void update_flow(struct http_session *s)
{
    if (s->h2) {
        h2_update_flow(s);
        return;
    }
    size_t in_max = http_cfg(s)->limits.max_header_bytes + HTTP_INPUT_SLACK;
    bool was_full = s->client_out_full;
    update_throttle(s->client_out, &s->client_out_full);
    if (s->client_out_full != was_full && s->state == HS_EXCHANGE && s->ex &&
        s->ex->up_state == UP_BODY)
        http_arm_response_timer(s);     /* the other side holds the response up now */
    if (s->ex)
        http_exchange_update_flow(s->ex, s->state == HS_TUNNEL);
    bool body_throttled = s->ex && s->ex->body_throttled;
    bool client_want = !s->client_eof && !body_throttled && !s->client_out_full &&
                       !s->tls_wants_write && evbuffer_get_length(s->client_in) < in_max;
    http_client_set_reading(s, client_want);
}

static bool step(struct http_session *s)
{
    switch (s->state) {
    case HS_IDLE: return http_idle_step(s);
    case HS_HEAD: return http_head_step(s);
    case HS_EXCHANGE: return http_request_step(s);
    case HS_TUNNEL: return http_tunnel_step(s);
    case HS_H2: return h2_step(s);
    case HS_FLUSH: return http_flush_step(s);
    case HS_LINGER: return http_linger_step(s);
    case HS_CLOSED: return false;
    }
    return false;
}

static bool flush_outputs(struct http_session *s)
{
    bool failed = false;
    bool again = !(s->h2 && h2_defer_client_write(s)) && http_client_write(s, &failed);
    if (failed)
        s->client_error = true;
    if (s->h2)
        again |= h2_flush_upstreams(s);
    else if (s->ex)
        again |= http_exchange_flush(s->ex);
    if (again && s->timer_rule != HTTP_TIMER_FIXED) {
        /* Progress now: the timer's next look must not count it again later. */
        s->activity_ms = clock_now_ms();
        s->timer_queued = queued_bytes(s);
    }
    return again;
}

bool http_hold_exchange(struct http_session *s)
{
    if (!s->ex)
        s->ex = http_exchange_take(&http_h1_exchange_ops, s->base.worker, &s->base);
    if (s->ex)
        return true;
    log_error("http listener=%s client=%s: out of memory: connection closed",
              s->base.listener->cfg->name, s->base.peer_text);
    http_close(s);
    return false;
}

/* Between requests the exchange goes back to the worker: an idle keep-alive
 * connection does not hold its ~1 KiB. Only here, at the end of a round, since the
 * request ends inside the exchange's own calls. */
static void let_go_of_exchange(struct http_session *s)
{
    if (s->ex && !s->ex->is_started && s->state != HS_TUNNEL) {
        http_exchange_give_back(s->ex);
        s->ex = NULL;
    }
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
    let_go_of_exchange(s);
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

/* ---- session ops and start ------------------------------------------------------- */

static void op_close(struct session *base)
{
    session_free((struct http_session *)base);
}

static void op_drain(struct session *base)
{
    struct http_session *s = (struct http_session *)base;
    if (s->h2) {
        h2_drain(s);
        return;
    }
    s->draining = true;
    /* In flight: the response says Connection: close, then we close. Idle while the
     * worker drains softly: the same for the next request (a close now could cross a
     * request the client is sending), else the idle timeout closes it. */
    if (s->state != HS_IDLE || worker_drains_softly(s->base.worker))
        return;
    if (evbuffer_get_length(s->client_out) == 0 && evbuffer_get_length(s->client_in) == 0) {
        session_free(s);
        return;
    }
    http_kick(s);
}

static const struct session_ops http_ops = { .close = op_close, .drain = op_drain };

/* The session's timer and the client connection. */
static int session_io_new(struct http_session *s, struct worker *w,
                          struct rt_listener *listener, int fd)
{
    struct event_base *base = worker_base(w);
    s->timer = evtimer_new(base, on_timer, s);
    if (!s->timer)
        return -1;
    return http_client_open(s, base, listener, fd);
}

int http_session_start(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                       int fd, const struct session_addrs *addrs)
{
    struct http_session *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return -1;
    }
    s->client_fd = -1;      /* not ours until the connection is open */
    if (session_io_new(s, w, listener, fd) < 0) {
        session_io_free(s);
        if (s->client_fd < 0)
            close(fd);
        free(s);
        return -1;
    }
    s->base.ops = &http_ops;
    session_attach(&s->base, w, rt, listener, NULL, addrs);
    s->base.client_fd = s->client_fd;
    s->base.client_tls = s->tls;
    s->state = HS_IDLE;
    s->is_fresh = true;
    s->start_ms = clock_now_ms();
    /* A TLS client must finish its handshake within client_header_ms (as on tcp
     * listeners): one that never does must not hold a max_connections slot for the
     * idle allowance. Done, it waits for its first request like any idle connection. */
    unsigned first_ms = s->tls ? rt->cfg->timeouts.client_header_ms
                               : rt->cfg->timeouts.client_idle_ms;
    http_arm_timer(s, first_ms, HTTP_TIMER_FIXED);
    return 0;
}

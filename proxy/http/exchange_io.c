/* The exchange's upstream connection: its callbacks, ferry's own reads of plain
 * connections, writing through at the end of a pump round, and flow control.
 * (proxy/ARCHITECTURE.md, "The HTTP session".) */
#include <errno.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "core/bev.h"
#include "core/clock.h"
#include "core/sockio.h"
#include "core/worker.h"
#include "http/exchange_internal.h"
#include "tls/tls.h"
#include "upstream/connect.h"

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

/* ---- callbacks: record, then kick ------------------------------------------------- */

/* libevent's reads of a TLS upstream, or its write of what a full socket left over. */
static void on_readable_or_written(struct bufferevent *bev, void *arg)
{
    struct http_exchange *ex = arg;
    ex->ops->kick(ex);
}

static void on_upstream_readable(evutil_socket_t fd, short what, void *arg)
{
    struct http_exchange *ex = arg;
    size_t got, max = ex->up_read_size;
    enum sockio_result result = bev_read_socket(ex->up, max, &got);
    ex->up_read_size = sockio_next_read_size(max, got);
    switch (result) {
    case SOCKIO_AGAIN:
    case SOCKIO_WANTS_WRITE:    /* plain sockets only: never */
        return;
    case SOCKIO_DATA:
        break;
    case SOCKIO_EOF:
        ex->up_eof = true;
        break;
    case SOCKIO_ERROR:
        ex->up_eof = ex->up_error = true;
        break;
    }
    ex->ops->kick(ex);
}

static void on_upstream_event(struct bufferevent *bev, short what, void *arg)
{
    struct http_exchange *ex = arg;
    if (ex->up_state == UP_CONNECTING) {
        if (what & BEV_EVENT_CONNECTED) {
            ex->up_connected = true;
        } else {
            ex->up_connect_failed = true;
            ex->up_timed_out = (what & BEV_EVENT_TIMEOUT) != 0;
        }
    } else if ((what & BEV_EVENT_WRITING) && !upstream_is_tls(bev)) {
        /* libevent's write of what a full socket left over (ferry reads plain
         * upstreams itself). A TLS connection is unusable after an error. */
        ex->up_write_failed = true;
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        ex->up_eof = true;
        ex->up_error = !(what & BEV_EVENT_EOF) &&
                       !(upstream_is_tls(bev) &&
                         tls_error_is_dirty_eof(bufferevent_get_openssl_error(bev)));
    }
    ex->ops->kick(ex);
}

/* ---- the connection --------------------------------------------------------------- */

/* A plain upstream connection is read by ferry itself from now on. */
static void own_reads(struct http_exchange *ex)
{
    struct event_base *base = worker_base(ex->worker);
    int fd = bufferevent_getfd(ex->up);
    if (!ex->up_read)
        ex->up_read = event_new(base, fd, EV_READ | EV_PERSIST, on_upstream_readable, ex);
    else
        event_assign(ex->up_read, base, fd, EV_READ | EV_PERSIST, on_upstream_readable, ex);
    if (!ex->up_read)
        return;     /* out of memory: libevent reads this connection */
    /* A pooled connection arrives with libevent reading it. Adding our event before
     * removing libevent's keeps the fd registered in epoll throughout: no epoll_ctl
     * for the hand-over (libevent counts read events per fd). */
    bool was_reading = (bufferevent_get_enabled(ex->up) & EV_READ) != 0;
    if (was_reading)
        event_add(ex->up_read, NULL);
    bufferevent_disable(ex->up, EV_READ);
    ex->up_read_own = true;
    ex->up_reading = was_reading;
}

void http_exchange_disown_reads(struct http_exchange *ex, bool to_pool)
{
    if (!ex->up_read_own)
        return;
    if (to_pool)    /* libevent's read first, as above */
        bufferevent_enable(ex->up, EV_READ);
    event_del(ex->up_read);
    ex->up_read_own = false;
}

void http_exchange_install(struct http_exchange *ex, struct bufferevent *bev, bool reused)
{
    ex->up = bev;
    ex->up_reused = reused;
    ex->up_reading = (bufferevent_get_enabled(bev) & EV_READ) != 0;
    ex->up_scan_len = 0;
    ex->up_any_byte = false;
    bufferevent_setcb(bev, on_readable_or_written, on_readable_or_written, on_upstream_event, ex);
    /* Plain connections write through at the end of a pump round and are read by ferry;
     * a connect in progress has EV_WRITE enabled by libevent already. */
    if (upstream_is_tls(bev))
        bufferevent_enable(bev, EV_WRITE);
    else
        own_reads(ex);
}

void http_exchange_stop(struct http_exchange *ex)
{
    if (ex->up_read)
        event_del(ex->up_read);
    if (ex->up) {
        bufferevent_setcb(ex->up, NULL, NULL, NULL, NULL);
        bufferevent_disable(ex->up, EV_READ | EV_WRITE);
    }
}

/* ---- writing through ------------------------------------------------------------------ */

/* Outputs are written at the end of each pump round, and a write event is armed only
 * while a socket is full: a bufferevent with EV_WRITE enabled arms it (epoll_ctl)
 * whenever data is added and disarms it when the output empties, two syscalls per
 * request. TLS upstream bufferevents write through OpenSSL their way, once small
 * outputs are joined. Returns true when it wrote something or failed. */
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
    /* A socket bufferevent keeps the start of its output frozen for everyone but its
     * own write callback; we write the way that callback does. */
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

/* A tunnel the client ended (HTTP/2 END_STREAM) passes the EOF on once the backend
 * has every byte, as the HTTP/1.1 tunnel does. TLS cannot half-close: such a tunnel
 * waits for the backend to end it. */
static void propagate_eof(struct http_exchange *ex)
{
    if (!ex->is_tunnel || !ex->req_done || ex->up_shut || upstream_is_tls(ex->up) ||
        evbuffer_get_length(bufferevent_get_output(ex->up)) > 0)
        return;
    ex->up_shut = true;
    shutdown(bufferevent_getfd(ex->up), SHUT_WR);
}

bool http_exchange_flush(struct http_exchange *ex)
{
    if (!ex->up || ex->up_state == UP_CONNECTING || ex->up_write_failed)
        return false;
    bool failed = false;
    bool again = write_through(ex->up, &failed);
    if (failed)
        ex->up_write_failed = true;
    else
        propagate_eof(ex);
    return again;
}

size_t http_exchange_queued(const struct http_exchange *ex)
{
    return ex->up ? evbuffer_get_length(bufferevent_get_output(ex->up)) : 0;
}

/* ---- flow control ------------------------------------------------------------------- */

/* Throttles the request body by the upstream output: at the high water mark a write
 * low watermark makes libevent's write callback say when it has drained. */
static void update_body_throttle(struct http_exchange *ex)
{
    size_t queued = evbuffer_get_length(bufferevent_get_output(ex->up));
    if (!ex->body_throttled && queued >= HTTP_HIGH_WATER) {
        ex->body_throttled = true;
        bufferevent_setwatermark(ex->up, EV_WRITE, HTTP_LOW_WATER, 0);
    } else if (ex->body_throttled && queued <= HTTP_LOW_WATER) {
        ex->body_throttled = false;
        bufferevent_setwatermark(ex->up, EV_WRITE, 0, 0);
    }
}

void http_exchange_update_flow(struct http_exchange *ex, bool is_tunnel)
{
    if (!ex->up)
        return;
    update_body_throttle(ex);
    size_t in_max = ex->runtime->cfg->limits.max_header_bytes + HTTP_INPUT_SLACK;
    bool is_active = is_tunnel || ex->up_state == UP_WAIT_HEAD || ex->up_state == UP_BODY;
    bool up_want = is_active && !ex->up_eof && ex->ops->response_room(ex) &&
                   evbuffer_get_length(bufferevent_get_input(ex->up)) < in_max;
    http_set_reading(ex->up, ex->up_read_own ? ex->up_read : NULL, &ex->up_reading, up_want);
}

/* Reading the PROXY header of an accepted connection (see accept.h). */
#include "proxyproto/accept.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/daemon.h"
#include "core/log.h"
#include "core/session.h"
#include "core/worker.h"
#include "proxyproto/proxyproto.h"
#include "runtime/runtime.h"

/* One connection whose header is on its way: a session of its own until then, so
 * that drain and forced stop reach it. */
struct reader {
    struct session base;
    int fd;                             /* owned until handed over */
    struct event *readable;             /* owned */
    struct event *deadline;             /* owned: client_header_ms from accept */
    size_t have;                        /* header bytes taken off the socket */
    uint8_t buf[PROXYPROTO_MAX_HEADER];
};

static void reader_free(struct reader *r)
{
    if (r->readable)
        event_free(r->readable);
    if (r->deadline)
        event_free(r->deadline);
    free(r);
}

/* Closes the connection: nothing of it reached a backend. */
static void reader_close(struct session *s)
{
    struct reader *r = (struct reader *)s;
    int fd = r->fd;
    session_detach(&r->base);
    reader_free(r);     /* its events leave epoll before the fd number can be reused */
    close(fd);
}

static void refuse(struct reader *r, const char *why)
{
    log_warn("listener=%s peer=%s: PROXY protocol: %s, closing", r->base.listener->cfg->name,
             r->base.peer_text, why);
    reader_close(&r->base);
}

/* The header was read: the listener's own session takes the socket, the generation
 * reference and the connection slot, with the header's addresses. */
static void hand_over(struct reader *r, const struct proxyproto_header *h)
{
    struct worker *w = r->base.worker;
    struct runtime *rt = r->base.runtime;
    struct rt_listener *listener = r->base.listener;
    struct session_addrs addrs = r->base.addrs;
    int fd = r->fd;
    if (!h->is_local) {
        memcpy(&addrs.peer, &h->src, sizeof addrs.peer);
        memcpy(&addrs.local, &h->dst, sizeof addrs.local);
    }
    log_debug("listener=%s peer=%s: PROXY v%d header, %s", listener->cfg->name,
              r->base.peer_text, h->version, h->is_local ? "local" : "client address taken");
    session_hand_over(&r->base);
    reader_free(r);
    session_start_fn *start = session_mode_protocol(listener->cfg->mode);
    if (!start || start(w, rt, listener, fd, &addrs) < 0) {
        if (!start)
            close(fd);
        log_error("listener %s: cannot set up connection: out of memory", listener->cfg->name);
        runtime_unref(rt);
        daemon_conn_release(worker_daemon(w));
    }
}

/* Looks at what arrived (MSG_PEEK) and takes off the socket only header bytes.
 * Returns false when the reader is gone (handed over or closed). */
static bool read_header(struct reader *r)
{
    ssize_t n = recv(r->fd, r->buf + r->have, sizeof r->buf - r->have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (n <= 0) {
        log_debug("listener=%s peer=%s: closed before its PROXY header", r->base.listener->cfg->name,
                  r->base.peer_text);
        reader_close(&r->base);
        return false;
    }
    struct proxyproto_header h;
    int rc = proxyproto_parse(r->buf, r->have + (size_t)n, &h);
    if (rc < 0 && rc != PROXYPROTO_INCOMPLETE) {
        refuse(r, proxyproto_error_str(rc));
        return false;
    }
    /* Incomplete: every byte seen is header. Complete: take exactly the rest of it. */
    size_t take = rc == PROXYPROTO_INCOMPLETE ? (size_t)n : (size_t)rc - r->have;
    if (recv(r->fd, r->buf + r->have, take, 0) != (ssize_t)take) {
        refuse(r, "the socket lost what it had");
        return false;
    }
    r->have += take;
    if (rc == PROXYPROTO_INCOMPLETE)
        return true;
    hand_over(r, &h);
    return false;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    read_header(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct reader *r = arg;
    refuse(r, r->have ? "incomplete header in time" : "no header in time");
}

/* Drain: a connection that has not even said who it is for has nothing in flight. */
static void reader_drain(struct session *s)
{
    reader_close(s);
}

static const struct session_ops reader_ops = { .close = reader_close, .drain = reader_drain };

/* With proxy_protocol_from, only the balancers listed there send a header. */
static bool expects_header(const struct cfg_listener *cfg, const struct sockaddr *peer)
{
    if (cfg->n_proxy_protocol_from == 0)
        return true;
    for (size_t i = 0; i < cfg->n_proxy_protocol_from; i++)
        if (config_cidr_contains(&cfg->proxy_protocol_from[i], peer))
            return true;
    return false;
}

int proxyproto_session_start(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                             int fd, const struct session_addrs *addrs)
{
    if (!expects_header(listener->cfg, &addrs->peer.sa)) {
        session_start_fn *start = session_mode_protocol(listener->cfg->mode);
        return start(w, rt, listener, fd, addrs);
    }
    struct event_base *base = worker_base(w);
    struct reader *r = calloc(1, sizeof *r);
    if (r) {
        r->readable = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, r);
        r->deadline = evtimer_new(base, on_deadline, r);
    }
    struct timeval tv = clock_tv_from_ms(rt->cfg->timeouts.client_header_ms);
    if (!r || !r->readable || !r->deadline || evtimer_add(r->deadline, &tv) < 0) {
        if (r)
            reader_free(r);
        close(fd);
        return -1;
    }
    r->fd = fd;
    r->base.ops = &reader_ops;
    session_attach(&r->base, w, rt, listener, NULL, addrs);
    /* The header often came with the handshake's last segment: then no event is ever
     * registered for it. */
    if (read_header(r) && event_add(r->readable, NULL) < 0)
        refuse(r, "cannot watch the socket");
    return 0;
}

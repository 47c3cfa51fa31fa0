/* The relay between two plain sockets, moved onto splice(2): each direction pipes
 * bytes socket -> pipe -> socket inside the kernel, never copying them into ferry.
 * The bufferevents stay allocated (they own the sockets) but are disabled; raw events
 * on the same fds drive the pumps. Back-pressure is the pipe itself: a direction
 * reads only while its pipe is empty, and waits for the destination to be writable
 * while it is not. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/worker.h"
#include "tcp/internal.h"

/* Bytes a pipe may hold in flight; also the most one splice call moves. */
enum { PIPE_BYTES = 256 * 1024 };

struct splice_pump {
    struct relay *relay;            /* borrowed: the owner */
    int src, dst;                   /* borrowed: the bufferevents own the sockets */
    int pipe_rd, pipe_wr;           /* owned */
    size_t in_pipe;                 /* bytes read from src, not yet written to dst */
    bool src_eof;
    _Atomic uint64_t *counter;      /* borrowed: the listener's bytes in or out */
    struct event *readable;         /* owned: src */
    struct event *writable;         /* owned: dst */
};

static void pump_free(struct splice_pump *p)
{
    if (!p)
        return;
    if (p->readable)
        event_free(p->readable);
    if (p->writable)
        event_free(p->writable);
    if (p->pipe_rd >= 0)
        close(p->pipe_rd);
    if (p->pipe_wr >= 0)
        close(p->pipe_wr);
    free(p);
}

void relay_splice_free(struct relay *r)
{
    for (int i = 0; i < 2; i++) {
        pump_free(r->pumps[i]);
        r->pumps[i] = NULL;
    }
}

static bool pump_finished(const struct splice_pump *p) { return p->src_eof && p->in_pipe == 0; }

/* Empties the pipe into dst. Returns false on a fatal error. */
static bool drain_pipe(struct splice_pump *p)
{
    while (p->in_pipe > 0) {
        ssize_t n = splice(p->pipe_rd, NULL, p->dst, NULL, p->in_pipe,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            p->in_pipe -= (size_t)n;
            atomic_fetch_add_explicit(p->counter, (uint64_t)n, memory_order_relaxed);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            event_del(p->readable);
            event_add(p->writable, NULL);
            return true;
        }
        return false;
    }
    event_del(p->writable);
    return true;
}

/* Moves what src has into the pipe and on to dst. Returns false on a fatal error. */
static bool pump(struct splice_pump *p)
{
    if (!drain_pipe(p))
        return false;
    while (p->in_pipe == 0 && !p->src_eof) {
        ssize_t n = splice(p->src, NULL, p->pipe_wr, NULL, PIPE_BYTES,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            p->in_pipe = (size_t)n;
            p->relay->last_activity_ms = clock_now_ms();
            if (!drain_pipe(p))
                return false;
        } else if (n == 0) {
            p->src_eof = true;
        } else if (errno == EAGAIN) {
            event_add(p->readable, NULL);
            return true;
        } else if (errno != EINTR) {
            return false;
        }
    }
    if (pump_finished(p)) {
        event_del(p->readable);
        shutdown(p->dst, SHUT_WR);   /* pass the EOF on: the other direction goes on */
    }
    return true;
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    struct splice_pump *p = arg;
    struct relay *r = p->relay;
    if (!pump(p)) {
        log_debug("tcp session %p splice: %s", (void *)r, strerror(errno));
        relay_close(&r->base);
        return;
    }
    if (pump_finished(r->pumps[0]) && pump_finished(r->pumps[1]))
        relay_close(&r->base);
}

static struct splice_pump *pump_new(struct relay *r, int src, int dst, _Atomic uint64_t *counter)
{
    struct splice_pump *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->relay = r;
    p->src = src;
    p->dst = dst;
    p->counter = counter;
    p->pipe_rd = p->pipe_wr = -1;
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        free(p);
        return NULL;
    }
    p->pipe_rd = fds[0];
    p->pipe_wr = fds[1];
    fcntl(p->pipe_wr, F_SETPIPE_SZ, PIPE_BYTES);   /* best effort: fewer, larger moves */
    struct event_base *base = worker_base(r->base.worker);
    p->readable = event_new(base, src, EV_READ | EV_PERSIST, on_ready, p);
    p->writable = event_new(base, dst, EV_WRITE | EV_PERSIST, on_ready, p);
    if (!p->readable || !p->writable) {
        pump_free(p);
        return NULL;
    }
    return p;
}

bool relay_splice_start(struct relay *r)
{
    int client = bufferevent_getfd(r->client.bev);
    int upstream = bufferevent_getfd(r->upstream.bev);
    struct listen_socket *socket = r->base.listener->socket;
    r->pumps[0] = pump_new(r, client, upstream, &socket->bytes_in);
    r->pumps[1] = pump_new(r, upstream, client, &socket->bytes_out);
    if (!r->pumps[0] || !r->pumps[1]) {
        relay_splice_free(r);
        return false;
    }
    bufferevent_disable(r->client.bev, EV_READ | EV_WRITE);
    bufferevent_disable(r->upstream.bev, EV_READ | EV_WRITE);
    relay_set_state(r, R_SPLICING);
    event_add(r->pumps[0]->readable, NULL);
    event_add(r->pumps[1]->readable, NULL);
    return true;
}

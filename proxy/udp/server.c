/* The udp server of one worker: reads its socket of the listener in batches, hands
 * each datagram to its client's flow (opening flows), sends the flows' replies in one
 * sendmmsg per event-loop round, and ends idle flows. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/worker.h"
#include "udp/internal.h"
#include "udp/udp.h"

/* ---- batches ----------------------------------------------------------------------- */

/* Slot k ready to receive: its whole buffer, no address or control yet. */
static void reset_slot(struct udp_batch *b, unsigned k, bool with_name, bool with_control)
{
    struct msghdr *h = &b->msgs[k].msg_hdr;
    b->iov[k].iov_base = b->bufs + (size_t)k * UDP_MAX_DATAGRAM;
    b->iov[k].iov_len = UDP_MAX_DATAGRAM;
    memset(h, 0, sizeof *h);
    h->msg_iov = &b->iov[k];
    h->msg_iovlen = 1;
    if (with_name) {
        h->msg_name = &b->addr[k];
        h->msg_namelen = sizeof b->addr[k];
    }
    if (with_control) {
        h->msg_control = b->cmsg[k];
        h->msg_controllen = sizeof b->cmsg[k];
    }
}

static int batch_init(struct udp_batch *b)
{
    b->bufs = malloc((size_t)UDP_BATCH * UDP_MAX_DATAGRAM);
    return b->bufs ? 0 : -1;
}

/* ---- replies ----------------------------------------------------------------------- */

void udp_server_flush(struct udp_server *srv)
{
    struct udp_batch *out = &srv->out;
    unsigned sent = 0;
    while (sent < out->count) {
        int n = sendmmsg(srv->fd, &out->msgs[sent], out->count - sent, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {   /* this one cannot go (buffer full, unroutable): drop it alone */
            atomic_fetch_add_explicit(&srv->socket->datagrams_dropped, 1, memory_order_relaxed);
            n = 1;
        } else {
            atomic_fetch_add_explicit(&srv->socket->datagrams_out, (uint64_t)n,
                                      memory_order_relaxed);
        }
        sent += (unsigned)n;
    }
    for (unsigned k = 0; k < out->count; k++)
        reset_slot(out, k, false, false);
    out->count = 0;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct udp_server *srv = arg;
    srv->flush_scheduled = false;
    udp_server_flush(srv);
}

/* Activated events run after those already pending in this round of the loop: every
 * flow that became readable with this one has queued its replies by then. */
void udp_server_schedule_flush(struct udp_server *srv)
{
    if (srv->flush_scheduled)
        return;
    srv->flush_scheduled = true;
    event_active(srv->flush, EV_TIMEOUT, 0);
}

/* ---- idle flows and the end of a draining server ----------------------------------- */

static void server_free(struct udp_server *srv);

/* The sweep fires at due_ms, or earlier when it was armed so already. */
static void arm_sweep_at(struct udp_server *srv, int64_t due_ms)
{
    if (srv->sweep_due_ms <= due_ms && event_pending(srv->sweep, EV_TIMEOUT, NULL))
        return;
    int64_t in = due_ms - clock_now_ms();
    struct timeval tv = clock_tv_from_ms(in > 0 ? (unsigned)in : 0);
    evtimer_add(srv->sweep, &tv);
    srv->sweep_due_ms = due_ms;
}

void udp_server_arm_sweep(struct udp_server *srv)
{
    if (srv->oldest)
        arm_sweep_at(srv, srv->oldest->last_ms + srv->min_idle_ms);
}

void udp_server_flow_gone(struct udp_server *srv)
{
    if (srv->draining && srv->n_flows == 0)
        event_active(srv->sweep, EV_TIMEOUT, 0);    /* freed once off every stack */
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct udp_server *srv = arg;
    if (srv->draining && srv->n_flows == 0) {
        server_free(srv);
        return;
    }
    srv->sweep_due_ms = INT64_MAX;
    /* Oldest first, on while a flow may be due (one of a generation with a shorter
     * idle_ms than its elders'); with one idle_ms that is exactly the due ones. */
    int64_t now = clock_now_ms(), next = INT64_MAX;
    struct udp_flow *f = srv->oldest;
    while (f && f->last_ms + srv->min_idle_ms <= now) {
        struct udp_flow *newer = f->newer;
        int64_t due = f->last_ms + f->cfg->idle_ms;
        if (due > now) {
            next = due < next ? due : next;
        } else {
            log_debug("udp flow %p idle for %lld ms: closing", (void *)f,
                      (long long)(now - f->last_ms));
            udp_flow_close(f);
            if (srv->draining && srv->n_flows == 0) {
                server_free(srv);
                return;
            }
        }
        f = newer;
    }
    if (f && f->last_ms + srv->min_idle_ms < next)
        next = f->last_ms + srv->min_idle_ms;
    if (next != INT64_MAX)
        arm_sweep_at(srv, next);
}

/* ---- datagrams from clients -------------------------------------------------------- */

/* The address a datagram was sent to, from IP_PKTINFO (wildcard listeners). */
static void destination_of(const struct msghdr *h, int family, union session_sockaddr *local)
{
    local->sa.sa_family = AF_UNSPEC;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR((struct msghdr *)h, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && family == AF_INET) {
            struct in_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof info);
            local->in = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr = info.ipi_addr };
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                   family == AF_INET6) {
            struct in6_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof info);
            local->in6 = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_addr = info.ipi6_addr };
        }
    }
}

static bool is_usable(const struct udp_server *srv, unsigned k)
{
    int family = srv->in.addr[k].sa.sa_family;
    return (family == AF_INET || family == AF_INET6) &&
           !(srv->in.msgs[k].msg_hdr.msg_flags & MSG_TRUNC);
}

/* The flow for datagram k of the batch, opened for a new client; NULL: drop it. */
static struct udp_flow *flow_of(struct udp_server *srv, unsigned k, uint64_t hash)
{
    const union session_sockaddr *client = &srv->in.addr[k];
    struct udp_flow *f = udp_table_find(srv, client, hash);
    if (f)
        return f;
    union session_sockaddr local = { .sa.sa_family = AF_UNSPEC };
    if (srv->has_pktinfo)
        destination_of(&srv->in.msgs[k].msg_hdr, client->sa.sa_family, &local);
    return udp_flow_open(srv, client, hash, &local);
}

/* Sends datagrams [first, first + n) of the batch on the flow's socket, in one
 * sendmmsg when there are several. How many went out (those the socket's full buffer
 * lost do not), or -1 when the flow failed (and was closed). */
static int forward(struct udp_server *srv, struct udp_flow *f, unsigned first, unsigned n)
{
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    for (unsigned i = 0; i < n; i++) {
        iov[i] = (struct iovec){ srv->in.iov[first + i].iov_base, srv->in.msgs[first + i].msg_len };
        msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
    }
    unsigned done = 0;
    int sent = 0;
    while (done < n) {
        int rc = sendmmsg(f->fd, msgs + done, n - done, MSG_DONTWAIT);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 && errno == ECONNREFUSED) {
            atomic_fetch_add_explicit(&srv->socket->datagrams_dropped, n - done, memory_order_relaxed);
            udp_flow_failed(f, errno);
            return -1;
        }
        if (rc <= 0) {  /* the socket's buffer is full: this one is lost, as UDP may */
            atomic_fetch_add_explicit(&srv->socket->datagrams_dropped, 1, memory_order_relaxed);
            done++;
            continue;
        }
        done += (unsigned)rc;
        sent += rc;
    }
    return sent;
}

/* Hands a received batch to the flows: runs of one client's datagrams go out together. */
static void dispatch(struct udp_server *srv, unsigned n)
{
    uint64_t hash[UDP_BATCH];
    bool usable[UDP_BATCH];
    int64_t now = clock_now_ms();
    for (unsigned k = 0; k < n; k++) {
        usable[k] = is_usable(srv, k);
        hash[k] = usable[k] ? udp_table_hash(srv, &srv->in.addr[k]) : 0;
    }
    unsigned k = 0;
    while (k < n) {
        struct udp_flow *f = usable[k] ? flow_of(srv, k, hash[k]) : NULL;
        unsigned run = 1;
        if (!f) {
            atomic_fetch_add_explicit(&srv->socket->datagrams_dropped, 1, memory_order_relaxed);
            k++;
            continue;
        }
        while (k + run < n && usable[k + run] && hash[k + run] == f->hash &&
               udp_same_client(&srv->in.addr[k + run], &f->client))
            run++;
        udp_flow_touch(f, now);
        int sent = forward(srv, f, k, run);
        if (sent > 0)       /* each expects its replies (udp.responses): not those lost */
            f->datagrams += (uint64_t)sent;
        k += run;
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct udp_server *srv = arg;
    for (int round = 0; round < UDP_READ_ROUNDS; round++) {
        for (unsigned k = 0; k < UDP_BATCH; k++)
            reset_slot(&srv->in, k, true, srv->has_pktinfo);
        int n = recvmmsg(srv->fd, srv->in.msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                log_warn("udp listener %s: recvmmsg: %s", srv->socket->addr.text, strerror(errno));
            return;
        }
        uint64_t bytes = 0;
        for (int k = 0; k < n; k++)
            bytes += srv->in.msgs[k].msg_len;
        atomic_fetch_add_explicit(&srv->socket->datagrams_in, (uint64_t)n, memory_order_relaxed);
        atomic_fetch_add_explicit(&srv->socket->bytes_in, bytes, memory_order_relaxed);
        dispatch(srv, (unsigned)n);
        if (n < UDP_BATCH)
            return;
    }
}

/* ---- the session ------------------------------------------------------------------- */

static void close_flows(struct udp_server *srv)
{
    while (srv->oldest)
        udp_flow_close(srv->oldest);
}

static void server_free(struct udp_server *srv)
{
    if (srv->out.count)
        udp_server_flush(srv);
    srv->draining = false;      /* flows closing now must not schedule another free */
    close_flows(srv);
    udp_flow_free_spares(srv);
    if (srv->readable)
        event_free(srv->readable);
    if (srv->flush)
        event_free(srv->flush);
    if (srv->sweep)
        event_free(srv->sweep);
    udp_table_free(srv);
    free(srv->in.bufs);
    free(srv->out.bufs);
    if (srv->base.worker)
        session_detach_datagram(&srv->base);
    listen_socket_unref(srv->socket);
    free(srv);
}

static void server_close(struct session *s)
{
    server_free((struct udp_server *)s);
}

/* Graceful stop: no new flows; the open ones end by their own rules (responses, idle),
 * or when drain_ms closes what is left. A soft drain (a retiring worker, or the old
 * process of a binary upgrade) also stops reading the socket: another worker or the
 * new process reads it now, and takes every datagram that arrives, new flows' too;
 * the flows here still send their replies from it. */
static void server_drain(struct session *s)
{
    struct udp_server *srv = (struct udp_server *)s;
    srv->draining = true;
    if (worker_drains_softly(s->worker))
        event_del(srv->readable);
    if (srv->n_flows == 0)
        server_free(srv);
}

static const struct session_ops server_ops = { .close = server_close, .drain = server_drain };

static bool is_wildcard(const struct cfg_addr *a)
{
    if (a->sa.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
}

/* Wildcard listeners learn each datagram's destination, to answer from it. */
static void ask_for_destinations(struct udp_server *srv)
{
    int on = 1;
    if (!is_wildcard(&srv->socket->addr))
        return;
    srv->has_pktinfo = srv->socket->addr.sa.ss_family == AF_INET
        ? setsockopt(srv->fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) == 0
        : setsockopt(srv->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on) == 0;
}

int udp_server_start(struct worker *w, struct listen_socket *socket, int fd,
                     struct session **out)
{
    struct event_base *base = worker_base(w);
    struct udp_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -1;
    listen_socket_ref(socket);
    srv->socket = socket;
    srv->fd = fd;
    srv->min_idle_ms = UINT_MAX;
    srv->sweep_due_ms = INT64_MAX;
    srv->base.ops = &server_ops;
    if (udp_table_init(srv) < 0 || batch_init(&srv->in) < 0 || batch_init(&srv->out) < 0 ||
        !(srv->readable = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, srv)) ||
        !(srv->flush = event_new(base, -1, 0, on_flush, srv)) ||
        !(srv->sweep = evtimer_new(base, on_sweep, srv)) || event_add(srv->readable, NULL) < 0) {
        server_free(srv);
        return -1;
    }
    for (unsigned k = 0; k < UDP_BATCH; k++)
        reset_slot(&srv->out, k, false, false);
    ask_for_destinations(srv);
    session_attach_datagram(&srv->base, w);
    *out = &srv->base;
    return 0;
}

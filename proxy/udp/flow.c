/* A udp flow: its backend, its connected socket, the replies it reads into the
 * server's reply batch, and its end. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/worker.h"
#include "runtime/backend.h"
#include "udp/internal.h"
#include "upstream/connect.h"

enum { SPARE_MAX = 1024 };

/* ---- the activity list ----------------------------------------------------------- */

static void list_unlink(struct udp_server *srv, struct udp_flow *f)
{
    if (f->older)
        f->older->newer = f->newer;
    else
        srv->oldest = f->newer;
    if (f->newer)
        f->newer->older = f->older;
    else
        srv->newest = f->older;
    f->older = f->newer = NULL;
}

static void list_append(struct udp_server *srv, struct udp_flow *f)
{
    f->older = srv->newest;
    f->newer = NULL;
    if (srv->newest)
        srv->newest->newer = f;
    else
        srv->oldest = f;
    srv->newest = f;
}

/* srv->min_idle_ms: the least idle_ms among the flows, which n_min_idle of them have. */
static void count_idle_in(struct udp_server *srv, unsigned idle_ms)
{
    if (idle_ms < srv->min_idle_ms) {
        srv->min_idle_ms = idle_ms;
        srv->n_min_idle = 0;
    }
    if (idle_ms == srv->min_idle_ms)
        srv->n_min_idle++;
}

/* A flow (off the list already) ends. The last one with the least idle_ms makes the
 * rest be counted again: once per generation whose flows are the shortest-lived. */
static void count_idle_out(struct udp_server *srv, unsigned idle_ms)
{
    if (idle_ms != srv->min_idle_ms || --srv->n_min_idle > 0)
        return;
    srv->min_idle_ms = UINT_MAX;
    for (const struct udp_flow *f = srv->oldest; f; f = f->newer)
        count_idle_in(srv, f->cfg->idle_ms);
}

void udp_flow_touch(struct udp_flow *f, int64_t now_ms)
{
    f->last_ms = now_ms;
    if (f->server->newest != f) {
        list_unlink(f->server, f);
        list_append(f->server, f);
    }
}

/* ---- end ----------------------------------------------------------------------------- */

static void recycle(struct udp_server *srv, struct udp_flow *f)
{
    if (srv->n_spare >= SPARE_MAX) {
        event_free(f->readable);
        free(f);
        return;
    }
    f->hash_next = srv->spare;
    srv->spare = f;
    srv->n_spare++;
}

void udp_flow_close(struct udp_flow *f)
{
    struct udp_server *srv = f->server;
    event_del(f->readable);
    close(f->fd);
    udp_table_remove(srv, f);
    list_unlink(srv, f);
    count_idle_out(srv, f->cfg->idle_ms);
    rt_pool_release(f->backend);
    atomic_fetch_sub_explicit(&srv->socket->active, 1, memory_order_relaxed);
    runtime_unref(f->runtime);
    f->runtime = NULL;
    recycle(srv, f);
    udp_server_flow_gone(srv);
}

void udp_flow_free_spares(struct udp_server *srv)
{
    while (srv->spare) {
        struct udp_flow *f = srv->spare;
        srv->spare = f->hash_next;
        event_free(f->readable);
        free(f);
    }
    srv->n_spare = 0;
}

/* ---- replies ------------------------------------------------------------------------- */

void udp_flow_failed(struct udp_flow *f, int error)
{
    struct backend *b = f->backend;
    log_debug("udp flow %p backend=%s/%s: %s", (void *)f, b->pool, b->name, strerror(error));
    if (error == ECONNREFUSED) {
        log_warn("udp backend=%s/%s refused a datagram (port unreachable)", b->pool, b->name);
        rt_pool_report_failure(f->pool, b);
    }
    udp_flow_close(f);
}

/* Replies leave from the address the client sent to: a wildcard listener names it
 * (the kernel would pick by route, and a client may drop an answer from elsewhere). */
static void set_source(struct udp_batch *out, unsigned k, const union session_sockaddr *local)
{
    struct msghdr *h = &out->msgs[k].msg_hdr;
    h->msg_control = out->cmsg[k];
    h->msg_controllen = sizeof out->cmsg[k];
    struct cmsghdr *c = CMSG_FIRSTHDR(h);
    if (local->sa.sa_family == AF_INET) {
        struct in_pktinfo info = { .ipi_spec_dst = local->in.sin_addr };
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(c), &info, sizeof info);
        h->msg_controllen = CMSG_SPACE(sizeof info);
    } else {
        struct in6_pktinfo info = { .ipi6_addr = local->in6.sin6_addr };
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(c), &info, sizeof info);
        h->msg_controllen = CMSG_SPACE(sizeof info);
    }
}

/* Queues received replies for their client; returns how many (or -1: failed, errno). */
static int read_replies(struct udp_flow *f, unsigned room)
{
    struct udp_batch *out = &f->server->out;
    struct mmsghdr *msgs = &out->msgs[out->count];
    int n = recvmmsg(f->fd, msgs, room, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return n;
    for (int i = 0; i < n; i++) {
        unsigned k = out->count + (unsigned)i;
        out->iov[k].iov_len = msgs[i].msg_len;
        out->addr[k] = f->client;
        out->msgs[k].msg_hdr.msg_name = &out->addr[k];
        out->msgs[k].msg_hdr.msg_namelen = f->client.sa.sa_family == AF_INET
                                               ? sizeof f->client.in : sizeof f->client.in6;
        out->msgs[k].msg_hdr.msg_flags = 0;
        if (f->local.sa.sa_family != AF_UNSPEC)
            set_source(out, k, &f->local);
        atomic_fetch_add_explicit(&f->server->socket->bytes_out, msgs[i].msg_len,
                                  memory_order_relaxed);
    }
    return n;
}

/* With udp.responses, each client datagram expects that many replies (nginx's
 * proxy_responses): a client that sends its next query before the answer to the
 * previous one (dnsperf, a resolver) gets both answers on the same flow. */
static uint64_t replies_expected(const struct udp_flow *f)
{
    return f->datagrams * f->cfg->responses;
}

/* How many replies this flow may still send its client (UDP_BATCH: no limit). */
static unsigned replies_allowed(const struct udp_flow *f)
{
    if (f->cfg->responses == 0)
        return UDP_BATCH;
    uint64_t left = replies_expected(f) - f->replies;
    return left < UDP_BATCH ? (unsigned)left : UDP_BATCH;
}

static void on_backend_readable(evutil_socket_t fd, short what, void *arg)
{
    struct udp_flow *f = arg;
    struct udp_server *srv = f->server;
    for (;;) {
        if (srv->out.count == UDP_BATCH)
            udp_server_flush(srv);
        unsigned room = UDP_BATCH - srv->out.count;
        unsigned allowed = replies_allowed(f);
        unsigned want = room < allowed ? room : allowed;
        int n = read_replies(f, want);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            udp_flow_failed(f, errno);
            return;
        }
        if (n <= 0)
            return;
        srv->out.count += (unsigned)n;
        f->replies += (unsigned)n;
        udp_server_schedule_flush(srv);
        udp_flow_touch(f, clock_now_ms());
        if (!f->answered) {
            f->answered = true;
            backend_report_success(f->backend);
        }
        if (f->cfg->responses && f->replies >= replies_expected(f)) {
            udp_flow_close(f);      /* as nginx's proxy_responses: the answers end it */
            return;
        }
        if ((unsigned)n < want)
            return;
    }
}

/* ---- start --------------------------------------------------------------------------- */

/* A socket connected to b (connect on UDP only sets the peer): the fd, or -1. */
static int connect_backend(const struct backend *b)
{
    int fd = socket(b->addr.sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&b->addr.sa, b->addr.len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A backend of the pool, its slot reserved (rt_pool_pick), and a socket to it, trying
 * up to retries + 1 backends. */
static int pick_backend(struct rt_pool *pool, const union session_sockaddr *client,
                        struct backend **out)
{
    struct backend *tried[RT_MAX_ATTEMPTS];
    size_t n_tried = 0;
    unsigned attempts = pool->cfg->retries + 1;
    struct rt_pick_hint hint = { .has_key = false };
    rt_pick_hint_source(pool, &client->sa, &hint);   /* every flow of a client alike */
    while (n_tried < attempts && n_tried < RT_MAX_ATTEMPTS) {
        struct backend *b = rt_pool_pick(pool, tried, n_tried, &hint);
        if (!b)
            return -1;
        tried[n_tried++] = b;
        int fd = connect_backend(b);
        if (fd >= 0) {
            *out = b;
            return fd;
        }
        int error = errno;
        rt_pool_release(b);
        log_warn("udp backend=%s/%s: cannot open a socket to it: %s", b->pool, b->name,
                 strerror(error));
        if (upstream_error_is_local(error))
            return -1;      /* ferry's own shortage: no backend to blame, none to try */
        rt_pool_report_failure(pool, b);
    }
    return -1;
}

static struct udp_flow *new_flow(struct udp_server *srv)
{
    struct udp_flow *f = srv->spare;
    if (f) {
        srv->spare = f->hash_next;
        srv->n_spare--;
        return f;
    }
    f = calloc(1, sizeof *f);
    if (f && !(f->readable = event_new(worker_base(srv->base.worker), -1, 0, NULL, NULL))) {
        free(f);
        return NULL;
    }
    return f;
}

/* A slot under max_flows (all workers count against the listener's one limit). */
static bool take_flow_slot(struct udp_server *srv, unsigned max_flows)
{
    unsigned n = atomic_load_explicit(&srv->socket->active, memory_order_relaxed);
    do {
        if (n >= max_flows)
            return false;
    } while (!atomic_compare_exchange_weak(&srv->socket->active, &n, n + 1));
    return true;
}

struct udp_flow *udp_flow_open(struct udp_server *srv, const union session_sockaddr *client,
                               uint64_t hash, const union session_sockaddr *local)
{
    struct runtime *rt = worker_runtime(srv->base.worker);
    struct rt_listener *l = runtime_listener_for(rt, srv->socket);
    if (srv->draining || !l)
        return NULL;
    if (!take_flow_slot(srv, l->cfg->udp.max_flows)) {
        atomic_fetch_add_explicit(&srv->socket->flows_dropped, 1, memory_order_relaxed);
        return NULL;
    }
    struct rt_pool *pool = l->routes[0].pool;
    struct backend *b = NULL;
    struct udp_flow *f = new_flow(srv);
    int fd = f ? pick_backend(pool, client, &b) : -1;
    if (fd < 0 || event_assign(f->readable, worker_base(srv->base.worker), fd,
                               EV_READ | EV_PERSIST, on_backend_readable, f) < 0 ||
        event_add(f->readable, NULL) < 0) {
        if (fd >= 0) {
            close(fd);
            rt_pool_release(b);
        }
        if (f)
            recycle(srv, f);
        atomic_fetch_sub_explicit(&srv->socket->active, 1, memory_order_relaxed);
        return NULL;
    }
    runtime_ref(rt);
    *f = (struct udp_flow){ .server = srv, .client = *client, .local = *local, .hash = hash,
                            .fd = fd, .readable = f->readable, .runtime = rt,
                            .cfg = &l->cfg->udp, .pool = pool, .backend = b,
                            .last_ms = clock_now_ms() };
    atomic_fetch_add_explicit(&b->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&srv->socket->accepted, 1, memory_order_relaxed);
    udp_table_insert(srv, f);
    list_append(srv, f);
    count_idle_in(srv, f->cfg->idle_ms);
    udp_server_arm_sweep(srv);
    return f;
}

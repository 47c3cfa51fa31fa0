#include "core/session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "core/bev.h"
#include "core/daemon.h"
#include "core/listen.h"
#include "core/worker.h"
#include "runtime/runtime.h"

static void format_peer(const struct sockaddr *sa, char *buf, size_t len)
{
    buf[0] = '\0';
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
}

void session_attach(struct session *s, struct worker *w, struct runtime *rt,
                    struct rt_listener *listener, struct bufferevent *client,
                    const struct session_addrs *addrs)
{
    s->worker = w;
    s->runtime = rt;
    s->listener = listener;
    s->client = client;
    s->client_fd = -1;
    s->client_tls = NULL;
    s->owns_upstreams = false;
    s->addrs = *addrs;
    format_peer(&s->addrs.peer.sa, s->peer_text, sizeof s->peer_text);
    atomic_fetch_add_explicit(&listener->socket->active, 1, memory_order_relaxed);
    worker_session_add(w, s);
}

void session_detach(struct session *s)
{
    struct worker *w = s->worker;
    atomic_fetch_sub_explicit(&s->listener->socket->active, 1, memory_order_relaxed);
    if (s->client)
        bev_close(s->client);
    s->client = NULL;
    runtime_unref(s->runtime);
    s->runtime = NULL;
    daemon_conn_release(worker_daemon(w));
    worker_session_remove(w, s);
}

void session_hand_over(struct session *s)
{
    atomic_fetch_sub_explicit(&s->listener->socket->active, 1, memory_order_relaxed);
    s->runtime = NULL;
    worker_session_remove(s->worker, s);
}

void session_attach_datagram(struct session *s, struct worker *w)
{
    s->worker = w;
    worker_session_add(w, s);
}

void session_detach_datagram(struct session *s)
{
    worker_session_remove(s->worker, s);
}

const struct sockaddr *session_local_addr(struct session *s, int fd)
{
    if (s->addrs.local.sa.sa_family == AF_UNSPEC) {
        socklen_t len = sizeof s->addrs.local;
        if (getsockname(fd, &s->addrs.local.sa, &len) < 0 ||
            (s->addrs.local.sa.sa_family != AF_INET && s->addrs.local.sa.sa_family != AF_INET6)) {
            s->addrs.local.sa.sa_family = AF_UNSPEC;
            return NULL;
        }
    }
    return &s->addrs.local.sa;
}

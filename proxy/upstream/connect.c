#include "upstream/connect.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "core/clock.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"
#include "tls/tls.h"

static struct bufferevent *new_bufferevent(struct event_base *base, struct rt_pool *pool,
                                           struct backend *b)
{
    if (!pool->tls)
        return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    SSL *ssl = tls_client_ssl_new(pool->tls, b->addr.text);
    struct bufferevent *bev = ssl ? bufferevent_openssl_socket_new(
                                        base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                        BEV_OPT_CLOSE_ON_FREE)
                                  : NULL;
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct bufferevent *upstream_connect(struct event_base *base, struct rt_pool *pool,
                                     struct backend *b, unsigned connect_ms)
{
    struct bufferevent *bev = new_bufferevent(base, pool, b);
    if (!bev) {
        errno = ENOMEM;     /* what makes SSL_new or a bufferevent fail */
        return NULL;
    }
    /* libevent applies the write timeout to the connect itself; a TLS handshake then
     * waits to read, which only the read timeout bounds (a backend that accepts and
     * never answers would otherwise hold the request forever). */
    struct timeval tv = clock_tv_from_ms(connect_ms);
    bufferevent_set_timeouts(bev, &tv, &tv);
    errno = 0;
    if (bufferevent_socket_connect(bev, (const struct sockaddr *)&b->addr.sa,
                                   (int)b->addr.len) < 0) {
        int error = errno;
        bufferevent_free(bev);
        errno = error;
        return NULL;
    }
    return bev;
}

bool upstream_error_is_local(int error)
{
    switch (error) {
    case EMFILE:        /* ferry's descriptor limit */
    case ENFILE:        /* the system's */
    case ENOBUFS:
    case ENOMEM:
    case EADDRNOTAVAIL: /* no local port left to connect from */
    case EAGAIN:
        return true;
    default:
        return false;
    }
}

void upstream_connected(struct bufferevent *bev)
{
    bufferevent_set_timeouts(bev, NULL, NULL);
    int on = 1;
    setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

bool upstream_is_tls(struct bufferevent *bev) { return bufferevent_openssl_get_ssl(bev) != NULL; }

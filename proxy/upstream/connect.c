#include "upstream/connect.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "core/clock.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"
#include "tls/tls.h"

/* NULL: out of memory (errno ENOMEM). */
static struct bufferevent *new_bufferevent(struct event_base *base, struct rt_pool *pool,
                                           struct backend *b)
{
    struct bufferevent *bev = NULL;
    SSL *ssl = NULL;
    if (!pool->tls)
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    else if ((ssl = tls_client_ssl_new(pool->tls, b->addr.text)))
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        errno = ENOMEM;
        return NULL;
    }
    if (ssl)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* Starts bev's connect to b: 0, or -1 with bev freed and errno saying why. */
static int start_connect(struct bufferevent *bev, struct backend *b)
{
    errno = 0;
    if (bufferevent_socket_connect(bev, (const struct sockaddr *)&b->addr.sa,
                                   (int)b->addr.len) == 0)
        return 0;
    /* socket(2) or connect(2) failed at once; a refusal comes as an event */
    int error = errno ? errno : EIO;
    bufferevent_free(bev);
    errno = error;
    return -1;
}

/* TLS after plain bytes: a socket bufferevent that connects and sends the preamble,
 * and OpenSSL's bufferevent filtering it, whose ClientHello queues behind. */
static struct bufferevent *connect_tls_after(struct event_base *base, struct rt_pool *pool,
                                             struct backend *b, const void *preamble,
                                             size_t len)
{
    struct bufferevent *raw = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!raw || evbuffer_add(bufferevent_get_output(raw), preamble, len) < 0) {
        if (raw)
            bufferevent_free(raw);
        errno = ENOMEM;
        return NULL;
    }
    if (start_connect(raw, b) < 0)
        return NULL;
    SSL *ssl = tls_client_ssl_new(pool->tls, b->addr.text);
    struct bufferevent *bev = ssl ? bufferevent_openssl_filter_new(
        base, raw, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        SSL_free(ssl);
        bufferevent_free(raw);
        errno = ENOMEM;
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* Plain (or TLS without preamble): one socket bufferevent connecting. */
static struct bufferevent *connect_direct(struct event_base *base, struct rt_pool *pool,
                                          struct backend *b, const void *preamble, size_t len,
                                          const struct timeval *tv)
{
    struct bufferevent *bev = new_bufferevent(base, pool, b);
    if (!bev)
        return NULL;
    bufferevent_set_timeouts(bev, tv, tv);
    if (len > 0 && evbuffer_add(bufferevent_get_output(bev), preamble, len) < 0) {
        bufferevent_free(bev);
        errno = ENOMEM;
        return NULL;
    }
    return start_connect(bev, b) < 0 ? NULL : bev;
}

struct bufferevent *upstream_connect(struct event_base *base, struct rt_pool *pool,
                                     struct backend *b, unsigned connect_ms,
                                     const void *preamble, size_t preamble_len)
{
    /* libevent applies the write timeout to the connect itself; a TLS handshake then
     * waits to read, which only the read timeout bounds (a backend that accepts and
     * never answers would otherwise hold the request forever). A filter's timeouts
     * cover its handshake, the connect included. */
    struct timeval tv = clock_tv_from_ms(connect_ms);
    if (!pool->tls || preamble_len == 0)
        return connect_direct(base, pool, b, preamble, preamble_len, &tv);
    struct bufferevent *bev = connect_tls_after(base, pool, b, preamble, preamble_len);
    if (bev)
        bufferevent_set_timeouts(bev, &tv, &tv);
    return bev;
}

bool upstream_error_is_local(int error)
{
    switch (error) {
    case EMFILE:            /* ferry's descriptor limit */
    case ENFILE:            /* the system's */
    case ENOBUFS:
    case ENOMEM:
    case EADDRNOTAVAIL:     /* no local port left to connect from */
    case EAGAIN:            /* the same, as some kernels say it */
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

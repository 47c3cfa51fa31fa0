#include "core/bev.h"

#include <errno.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "tls/tls.h"

void bev_close(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (ssl)
        tls_close_notify(ssl);
    bufferevent_free(bev);
}

enum bev_read_result bev_read_socket(struct bufferevent *bev, size_t max, size_t *got)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec[2];
    *got = 0;
    /* The socket bufferevent keeps the end of its input frozen for everyone but its
     * own read callback; append the way that callback does. */
    evbuffer_unfreeze(in, 0);
    int n_vec = evbuffer_reserve_space(in, (ev_ssize_t)max, vec, 2);
    if (n_vec <= 0) {
        evbuffer_freeze(in, 0);
        errno = ENOMEM;
        return BEV_READ_ERROR;
    }
    ssize_t n;
    do
        n = readv(bufferevent_getfd(bev), (struct iovec *)vec, n_vec);
    while (n < 0 && errno == EINTR);
    int saved = errno;
    size_t left = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < n_vec; i++) {
        size_t take = left < vec[i].iov_len ? left : vec[i].iov_len;
        vec[i].iov_len = take;
        left -= take;
    }
    evbuffer_commit_space(in, vec, n_vec);
    evbuffer_freeze(in, 0);
    errno = saved;
    if (n > 0) {
        *got = (size_t)n;
        return BEV_READ_DATA;
    }
    if (n == 0)
        return BEV_READ_EOF;
    return errno == EAGAIN || errno == EWOULDBLOCK ? BEV_READ_AGAIN : BEV_READ_ERROR;
}

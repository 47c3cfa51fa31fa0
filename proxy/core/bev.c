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

size_t bev_read_more(struct bufferevent *bev, size_t max)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec[2];
    /* The socket bufferevent keeps the end of its input frozen for everyone but its
     * own read callback; append the way that callback does. */
    evbuffer_unfreeze(in, 0);
    int n_vec = evbuffer_reserve_space(in, (ev_ssize_t)max, vec, 2);
    if (n_vec <= 0) {
        evbuffer_freeze(in, 0);
        return 0;
    }
    ssize_t n;
    do
        n = readv(bufferevent_getfd(bev), (struct iovec *)vec, n_vec);
    while (n < 0 && errno == EINTR);
    size_t got = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < n_vec; i++) {
        size_t take = got < vec[i].iov_len ? got : vec[i].iov_len;
        vec[i].iov_len = take;
        got -= take;
    }
    evbuffer_commit_space(in, vec, n_vec);
    evbuffer_freeze(in, 0);
    return n > 0 ? (size_t)n : 0;
}

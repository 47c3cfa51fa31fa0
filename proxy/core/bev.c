#include "core/bev.h"

#include <errno.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "tls/tls.h"

/* One TLS record's worth of plaintext. */
enum { TLS_RECORD_BYTES = 16384 };

void bev_close(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (ssl)
        tls_close_notify(ssl);
    bufferevent_free(bev);
}

/* The socket bufferevent keeps the end of its input frozen for everyone but its own
 * read callback (and the start of its output for its write callback); we add and
 * remove the way those callbacks do. */
static int reserve_input(struct evbuffer *in, size_t max, struct evbuffer_iovec vec[2])
{
    evbuffer_unfreeze(in, 0);
    int n_vec = evbuffer_reserve_space(in, (ev_ssize_t)max, vec, 2);
    if (n_vec <= 0) {
        evbuffer_freeze(in, 0);
        errno = ENOMEM;
    }
    return n_vec;
}

/* Commits the first `used` bytes of the reserved vectors. */
static void commit_input(struct evbuffer *in, struct evbuffer_iovec vec[], int n_vec, size_t used)
{
    for (int i = 0; i < n_vec; i++) {
        size_t take = used < vec[i].iov_len ? used : vec[i].iov_len;
        vec[i].iov_len = take;
        used -= take;
    }
    evbuffer_commit_space(in, vec, n_vec);
    evbuffer_freeze(in, 0);
}

enum bev_read_result bev_read_socket(struct bufferevent *bev, size_t max, size_t *got)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec[2];
    *got = 0;
    int n_vec = reserve_input(in, max, vec);
    if (n_vec <= 0)
        return BEV_READ_ERROR;
    ssize_t n;
    do
        n = readv(bufferevent_getfd(bev), (struct iovec *)vec, n_vec);
    while (n < 0 && errno == EINTR);
    int saved = errno;
    commit_input(in, vec, n_vec, n > 0 ? (size_t)n : 0);
    errno = saved;
    if (n > 0) {
        *got = (size_t)n;
        return BEV_READ_DATA;
    }
    if (n == 0)
        return BEV_READ_EOF;
    return errno == EAGAIN || errno == EWOULDBLOCK ? BEV_READ_AGAIN : BEV_READ_ERROR;
}

/* Why SSL_read_ex returned nothing. */
static enum bev_read_result tls_read_stopped(SSL *ssl)
{
    switch (SSL_get_error(ssl, 0)) {
    case SSL_ERROR_WANT_READ:
        return BEV_READ_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        return BEV_READ_WANTS_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return BEV_READ_EOF;
    case SSL_ERROR_SYSCALL:
        return errno == 0 ? BEV_READ_EOF : BEV_READ_ERROR;
    default:
        return tls_error_is_dirty_eof(ERR_peek_last_error()) ? BEV_READ_EOF : BEV_READ_ERROR;
    }
}

enum bev_read_result bev_read_tls(struct bufferevent *bev, SSL *ssl, size_t max, size_t *got)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec[2];
    *got = 0;
    int n_vec = reserve_input(in, max, vec);
    if (n_vec <= 0)
        return BEV_READ_ERROR;
    enum bev_read_result result = BEV_READ_DATA;
    size_t total = 0, off = 0;
    for (int i = 0; i < n_vec;) {
        size_t n = 0;
        ERR_clear_error();
        errno = 0;
        if (SSL_read_ex(ssl, (char *)vec[i].iov_base + off, vec[i].iov_len - off, &n) != 1) {
            result = tls_read_stopped(ssl);
            break;
        }
        total += n;
        off += n;
        if (off == vec[i].iov_len) {
            i++;
            off = 0;
        }
        /* Nothing buffered in OpenSSL: whatever else comes, epoll (level-triggered)
         * reports; reading on now would cost a read(2) that finds nothing. */
        if (!SSL_has_pending(ssl))
            break;
    }
    commit_input(in, vec, n_vec, total);
    *got = total;
    if (total > 0 && result == BEV_READ_AGAIN)
        return BEV_READ_DATA;
    return result;
}

bool bev_tls_holds_input(const SSL *ssl)
{
    /* Waiting for the rest of a record is the socket's business, not ours. */
    return SSL_has_pending(ssl) && !SSL_want_read(ssl);
}

void bev_join_small_output(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    size_t len = evbuffer_get_length(out);
    if (len > 0 && len <= TLS_RECORD_BYTES && evbuffer_peek(out, -1, NULL, NULL, 0) > 1)
        evbuffer_pullup(out, -1);
}

enum bev_write_result bev_write_tls(struct bufferevent *bev, SSL *ssl, size_t *written)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    enum bev_write_result result = BEV_WRITE_DONE;
    *written = 0;
    evbuffer_unfreeze(out, 1);
    bev_join_small_output(bev);
    while (evbuffer_get_length(out) > 0) {
        struct evbuffer_iovec chain;
        evbuffer_peek(out, -1, NULL, &chain, 1);
        size_t n = 0;
        ERR_clear_error();
        /* After WANT_WRITE OpenSSL wants the same bytes again: they are still at the
         * start of the output (maybe moved by a join: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
        if (SSL_write_ex(ssl, chain.iov_base, chain.iov_len, &n) != 1) {
            /* With renegotiation off, a write never waits for a read once the
             * handshake is done: WANT_READ here is a failure like any other. */
            result = SSL_get_error(ssl, 0) == SSL_ERROR_WANT_WRITE ? BEV_WRITE_AGAIN : BEV_WRITE_ERROR;
            break;
        }
        evbuffer_drain(out, n);
        *written += n;
    }
    evbuffer_freeze(out, 1);
    return result;
}

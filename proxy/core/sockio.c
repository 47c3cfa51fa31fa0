#include "core/sockio.h"

#include <errno.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <openssl/err.h>

#include "tls/tls.h"

/* One TLS record's worth of plaintext. */
enum { TLS_RECORD_BYTES = 16384 };

/* Commits the first `used` bytes of the reserved vectors. */
static void commit(struct evbuffer *in, struct evbuffer_iovec vec[], int n_vec, size_t used)
{
    for (int i = 0; i < n_vec; i++) {
        size_t take = used < vec[i].iov_len ? used : vec[i].iov_len;
        vec[i].iov_len = take;
        used -= take;
    }
    evbuffer_commit_space(in, vec, n_vec);
}

enum sockio_result sockio_read(int fd, struct evbuffer *in, size_t max, size_t *got)
{
    struct evbuffer_iovec vec[2];
    *got = 0;
    int n_vec = evbuffer_reserve_space(in, (ev_ssize_t)max, vec, 2);
    if (n_vec <= 0) {
        errno = ENOMEM;
        return SOCKIO_ERROR;
    }
    ssize_t n;
    do
        n = readv(fd, (struct iovec *)vec, n_vec);
    while (n < 0 && errno == EINTR);
    int saved = errno;
    commit(in, vec, n_vec, n > 0 ? (size_t)n : 0);
    errno = saved;
    if (n > 0) {
        *got = (size_t)n;
        return SOCKIO_DATA;
    }
    if (n == 0)
        return SOCKIO_EOF;
    return errno == EAGAIN || errno == EWOULDBLOCK ? SOCKIO_AGAIN : SOCKIO_ERROR;
}

size_t sockio_next_read_size(size_t last, size_t got)
{
    size_t block = last + SOCKIO_BLOCK_HEADER_ROOM;     /* a power of two */
    if (got >= last)
        block *= 2;
    else if (got < SOCKIO_READ_MIN)
        block /= 2;
    size_t next = block - SOCKIO_BLOCK_HEADER_ROOM;
    return next < SOCKIO_READ_MIN ? SOCKIO_READ_MIN : next > SOCKIO_READ_MAX ? SOCKIO_READ_MAX : next;
}

/* Why SSL_read_ex returned nothing. */
static enum sockio_result tls_read_stopped(SSL *ssl)
{
    switch (SSL_get_error(ssl, 0)) {
    case SSL_ERROR_WANT_READ:
        return SOCKIO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        return SOCKIO_WANTS_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return SOCKIO_EOF;
    case SSL_ERROR_SYSCALL:
        return errno == 0 ? SOCKIO_EOF : SOCKIO_ERROR;
    default:
        return tls_error_is_dirty_eof(ERR_peek_last_error()) ? SOCKIO_EOF : SOCKIO_ERROR;
    }
}

enum sockio_result sockio_read_tls(SSL *ssl, struct evbuffer *in, size_t max, size_t *got)
{
    struct evbuffer_iovec vec[2];
    *got = 0;
    int n_vec = evbuffer_reserve_space(in, (ev_ssize_t)max, vec, 2);
    if (n_vec <= 0) {
        errno = ENOMEM;
        return SOCKIO_ERROR;
    }
    enum sockio_result result = SOCKIO_DATA;
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
    commit(in, vec, n_vec, total);
    *got = total;
    if (total > 0 && result == SOCKIO_AGAIN)
        return SOCKIO_DATA;
    return result;
}

bool sockio_tls_holds_input(const SSL *ssl)
{
    /* Waiting for the rest of a record is the socket's business, not ours. */
    return SSL_has_pending(ssl) && !SSL_want_read(ssl);
}

enum sockio_result sockio_write(int fd, struct evbuffer *out, size_t *written)
{
    *written = 0;
    while (evbuffer_get_length(out) > 0) {
        errno = 0;
        int n = evbuffer_write(out, fd);
        if (n > 0) {
            *written += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? SOCKIO_AGAIN : SOCKIO_ERROR;
    }
    return SOCKIO_DATA;
}

void sockio_join_small_output(struct evbuffer *out)
{
    size_t len = evbuffer_get_length(out);
    if (len > 0 && len <= TLS_RECORD_BYTES && evbuffer_peek(out, -1, NULL, NULL, 0) > 1)
        evbuffer_pullup(out, -1);
}

enum sockio_result sockio_write_tls(SSL *ssl, struct evbuffer *out, size_t *written)
{
    *written = 0;
    sockio_join_small_output(out);
    while (evbuffer_get_length(out) > 0) {
        struct evbuffer_iovec chain;
        evbuffer_peek(out, -1, NULL, &chain, 1);
        size_t n = 0;
        ERR_clear_error();
        /* After WANT_WRITE OpenSSL wants the same bytes again: they are still at the
         * start of the output (maybe moved by a join: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
        if (SSL_write_ex(ssl, chain.iov_base, chain.iov_len, &n) != 1)
            /* With renegotiation off, a write never waits for a read once the
             * handshake is done: WANT_READ here is a failure like any other. */
            return SSL_get_error(ssl, 0) == SSL_ERROR_WANT_WRITE ? SOCKIO_AGAIN : SOCKIO_ERROR;
        evbuffer_drain(out, n);
        *written += n;
    }
    return SOCKIO_DATA;
}

/* Dirty shutdown with libevent 2.1.12 + OpenSSL 3 (design.md "Known pitfalls"): a
 * client that closes TCP without close_notify must reach the daemon as EOF, not as
 * an error, on a real bufferevent_openssl over a socket. */
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "test_tls_support.h"

static struct tt_pki pki;

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);   /* as the daemon does */
    tt_pki_open(&pki);
    tt_issue(&pki, "a", tt_key_ec(), "a.test", "DNS:a.test");
    return 0;
}

static int teardown(void **state)
{
    tt_pki_close(&pki);
    return 0;
}

/* ---- the peer: a blocking OpenSSL client on its own thread ---------------------------- */

struct peer {
    int fd;
    bool handshake;             /* false: close right after sending a partial hello */
};

static void *run_peer(void *arg)
{
    struct peer *p = arg;
    if (!p->handshake) {
        /* The first bytes of a ClientHello record, then a plain TCP close. */
        static const unsigned char partial[] = { 0x16, 0x03, 0x01, 0x00, 0x80, 0x01 };
        assert_int_equal(write(p->fd, partial, sizeof partial), (ssize_t)sizeof partial);
        close(p->fd);
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, p->fd);
    if (SSL_connect(ssl) == 1)
        SSL_write(ssl, "hello", 5);
    /* No SSL_shutdown: the TCP connection just ends. */
    shutdown(p->fd, SHUT_RDWR);
    close(p->fd);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- the server side: what the daemon sees ----------------------------------------------- */

struct seen {
    struct event_base *base;
    bool connected;
    bool eof;
    bool error;
    unsigned long ssl_err;      /* first bufferevent_get_openssl_error() */
    char data[64];
    size_t len;
};

static void on_read(struct bufferevent *bev, void *arg)
{
    struct seen *s = arg;
    s->len += bufferevent_read(bev, s->data + s->len, sizeof s->data - 1 - s->len);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct seen *s = arg;
    if (what & BEV_EVENT_CONNECTED) {
        s->connected = true;
        return;
    }
    on_read(bev, s);
    s->eof = (what & BEV_EVENT_EOF) != 0;
    s->error = (what & BEV_EVENT_ERROR) != 0;
    s->ssl_err = bufferevent_get_openssl_error(bev);
    event_base_loopexit(s->base, NULL);
}

/* Accepts one connection from a peer on `ssl` and records what libevent reports. */
static struct seen serve_one(SSL *ssl, bool peer_handshakes, bool allow_dirty)
{
    /* No TLS 1.3 tickets: the peer leaves right after its Finished, and a late
     * ticket write would turn the close into a write error. */
    SSL_set_num_tickets(ssl, 0);
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    struct seen s = { .base = event_base_new() };
    assert_non_null(s.base);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        s.base, fds[0], ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(bev);
    evutil_make_socket_nonblocking(fds[0]);
    bufferevent_openssl_set_allow_dirty_shutdown(bev, allow_dirty);
    bufferevent_setcb(bev, on_read, NULL, on_event, &s);
    bufferevent_enable(bev, EV_READ);

    struct peer p = { .fd = fds[1], .handshake = peer_handshakes };
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, run_peer, &p), 0);
    struct timeval limit = { 10, 0 };
    event_base_loopexit(s.base, &limit);
    event_base_dispatch(s.base);
    pthread_join(thread, NULL);

    if (s.eof && s.connected)
        tls_close_notify(ssl);  /* the daemon's orderly close: must not write or fail */
    bufferevent_free(bev);
    event_base_free(s.base);
    s.data[s.len] = '\0';
    return s;
}

static void test_close_without_close_notify_is_eof(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 1, "a"), NULL);
    /* Not even allow_dirty_shutdown is needed. */
    struct seen s = serve_one(tls_server_ssl_new(srv), true, false);
    assert_true(s.connected);
    assert_string_equal(s.data, "hello");
    assert_true(s.eof);
    assert_false(s.error);
    tls_server_free(srv);
}

/* Why the option is set: the same close on a context without it is an error that
 * libevent does not soften even with allow_dirty_shutdown. */
static void test_plain_openssl3_context_reports_dirty_eof_as_error(void **state)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, "a.crt"), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, "a.key", SSL_FILETYPE_PEM), 1);
    struct seen s = serve_one(SSL_new(ctx), true, true);
    assert_true(s.connected);
    assert_string_equal(s.data, "hello");
    assert_true(s.error);
    assert_true(tls_error_is_dirty_eof(s.ssl_err));
    SSL_CTX_free(ctx);
}

static void test_close_during_handshake_counts_as_closed(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 1, "a"), NULL);
    SSL *ssl = tls_server_ssl_new(srv);
    SSL_up_ref(ssl);    /* inspect it after the bufferevent is gone */
    struct seen s = serve_one(ssl, false, false);
    assert_false(s.connected);
    assert_true(s.eof);     /* EOF before BEV_EVENT_CONNECTED */

    struct tls_stats before = tls_stats_snapshot();
    assert_int_equal(tls_count_handshake_failure(ssl, s.ssl_err), TLS_FAIL_CLOSED);
    struct tls_stats after = tls_stats_snapshot();
    assert_int_equal(after.failures[TLS_FAIL_CLOSED], before.failures[TLS_FAIL_CLOSED] + 1);
    assert_int_equal(after.handshakes, before.handshakes);
    SSL_free(ssl);
    tls_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_without_close_notify_is_eof),
        cmocka_unit_test(test_plain_openssl3_context_reports_dirty_eof_as_error),
        cmocka_unit_test(test_close_during_handshake_counts_as_closed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

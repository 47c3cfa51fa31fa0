/* The HTTP session's own TLS I/O (core/sockio.h: sockio_read_tls, sockio_write_tls,
 * sockio_tls_holds_input, and the plain sockio_read / sockio_write) over a real socket pair, with the SSL made by
 * tls_server_ssl_for_socket: read-ahead, records OpenSSL holds that no socket
 * event will announce, a full socket, small outputs joined into one record, and
 * how a connection ends. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

#include <event2/buffer.h>

#include "core/sockio.h"
#include "test_tls_support.h"

static struct tt_pki pki;
static struct tls_server *srv;
static SSL_CTX *client_ctx;

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);   /* as the daemon does */
    tt_pki_open(&pki);
    tt_issue(&pki, "a", tt_key_ec(), "a.test", "DNS:a.test");
    struct tt_listener l;
    srv = tt_server(tt_listener(&l, 1, "a"), NULL);
    client_ctx = tt_client_ctx(NULL);
    return 0;
}

static int teardown(void **state)
{
    SSL_CTX_free(client_ctx);
    tls_server_free(srv);
    tt_pki_close(&pki);
    return 0;
}

/* One connection: the daemon's side (its buffers and its SSL) and a non-blocking
 * OpenSSL client, handshake done. */
struct conn {
    int fds[2];
    struct evbuffer *in, *out;
    SSL *server, *client;
};

static void conn_open(struct conn *c)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, c->fds), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fcntl(c->fds[i], F_SETFL, O_NONBLOCK), 0);
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->server = tls_server_ssl_for_socket(srv, c->fds[0]);
    assert_non_null(c->server);
    SSL_set_num_tickets(c->server, 0);      /* nothing after the handshake */
    c->client = tt_client(client_ctx, "a.test");
    SSL_set_fd(c->client, c->fds[1]);
    SSL_set_connect_state(c->client);
    bool cdone = false, sdone = false;
    for (int i = 0; i < 50 && !(cdone && sdone); i++) {
        assert_true(tt_step(c->client, &cdone, NULL));
        assert_true(tt_step(c->server, &sdone, NULL));
    }
    assert_true(cdone && sdone);
}

static void conn_close(struct conn *c)
{
    evbuffer_free(c->in);
    evbuffer_free(c->out);
    SSL_free(c->server);
    SSL_free(c->client);
    close(c->fds[0]);
    if (c->fds[1] >= 0)
        close(c->fds[1]);
}

static void client_write(struct conn *c, const void *data, size_t len)
{
    size_t n = 0;
    assert_int_equal(SSL_write_ex(c->client, data, len, &n), 1);
    assert_int_equal(n, len);
}

static bool socket_is_empty(int fd)
{
    char byte;
    return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + i / 251); }

/* Read-ahead pulls every record into OpenSSL with one read(2); a read that stops at
 * `max` leaves the rest there, where epoll cannot see it: sockio_tls_holds_input says so,
 * and the next sockio_read_tls returns it without touching the socket. */
static void test_records_read_ahead_are_held_until_read(void **state)
{
    struct conn c;
    conn_open(&c);
    unsigned char sent[5000];
    for (size_t i = 0; i < sizeof sent; i++)
        sent[i] = pattern(i);
    for (size_t off = 0; off < sizeof sent; off += 1000)
        client_write(&c, sent + off, 1000);        /* five records */

    size_t got = 0;
    assert_int_equal(sockio_read_tls(c.server, c.in, 1000, &got), SOCKIO_DATA);
    assert_true(got >= 1000 && got < sizeof sent);
    assert_true(socket_is_empty(c.fds[0]));         /* all of it is in OpenSSL now */
    assert_true(sockio_tls_holds_input(c.server));

    struct evbuffer *in = c.in;
    while (evbuffer_get_length(in) < sizeof sent) {
        assert_true(sockio_tls_holds_input(c.server));
        assert_int_equal(sockio_read_tls(c.server, c.in, 1000, &got), SOCKIO_DATA);
    }
    assert_int_equal(evbuffer_get_length(in), sizeof sent);
    assert_memory_equal(evbuffer_pullup(in, -1), sent, sizeof sent);
    assert_false(sockio_tls_holds_input(c.server));
    assert_int_equal(sockio_read_tls(c.server, c.in, 1000, &got), SOCKIO_AGAIN);
    assert_int_equal(got, 0);
    conn_close(&c);
}

/* A part of a record is the socket's business: not "held". */
static void test_a_partial_record_waits_for_the_socket(void **state)
{
    struct conn c;
    conn_open(&c);
    /* Write a record through a memory BIO, then send only its first half. */
    unsigned char raw[256];
    BIO *mem = BIO_new(BIO_s_mem());
    BIO *sock = SSL_get_wbio(c.client);
    BIO_up_ref(sock);
    SSL_set0_wbio(c.client, mem);
    client_write(&c, "hello, partial world", 20);
    int len = BIO_read(mem, raw, sizeof raw);
    assert_true(len > 20);
    SSL_set0_wbio(c.client, sock);
    assert_int_equal(write(c.fds[1], raw, (size_t)len / 2), len / 2);

    size_t got = 0;
    assert_int_equal(sockio_read_tls(c.server, c.in, 4096, &got), SOCKIO_AGAIN);
    assert_false(sockio_tls_holds_input(c.server));
    assert_int_equal(write(c.fds[1], raw + len / 2, (size_t)(len - len / 2)), len - len / 2);
    assert_int_equal(sockio_read_tls(c.server, c.in, 4096, &got), SOCKIO_DATA);
    assert_int_equal(got, 20);
    conn_close(&c);
}

/* The client reads everything it can, checking the bytes against the pattern. */
static void client_drain(struct conn *c, size_t *received)
{
    unsigned char buf[65536];
    size_t n;
    while (SSL_read_ex(c->client, buf, sizeof buf, &n) == 1)
        for (size_t i = 0; i < n; i++, (*received)++)
            assert_int_equal(buf[i], pattern(*received));
    assert_int_equal(SSL_get_error(c->client, 0), SSL_ERROR_WANT_READ);
}

/* A full socket: AGAIN with what was taken counted; once the client reads, the rest
 * goes out, byte for byte. */
static void test_a_full_socket_is_again_then_the_rest_goes_out(void **state)
{
    struct conn c;
    conn_open(&c);
    enum { TOTAL = 4 * 1024 * 1024 };
    struct evbuffer *out = c.out;
    unsigned char *data = malloc(TOTAL);
    assert_non_null(data);
    for (size_t i = 0; i < TOTAL; i++)
        data[i] = pattern(i);
    evbuffer_add(out, data, TOTAL);
    free(data);

    size_t written = 0, total_written = 0, received = 0;
    enum sockio_result r = sockio_write_tls(c.server, c.out, &written);
    assert_int_equal(r, SOCKIO_AGAIN);
    assert_true(written > 0 && written < TOTAL);
    total_written += written;
    for (int rounds = 0; r != SOCKIO_DATA; rounds++) {
        assert_true(rounds < 10000);
        client_drain(&c, &received);
        r = sockio_write_tls(c.server, c.out, &written);
        assert_int_not_equal(r, SOCKIO_ERROR);
        total_written += written;
    }
    assert_int_equal(total_written, TOTAL);
    assert_int_equal(evbuffer_get_length(out), 0);
    client_drain(&c, &received);
    assert_int_equal(received, TOTAL);
    conn_close(&c);
}

/* A response head and a small body in separate chains leave as one record. */
static void test_small_chains_are_joined_into_one_record(void **state)
{
    struct conn c;
    conn_open(&c);
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n", body[] = "ok b1\n";
    struct evbuffer *out = c.out;
    evbuffer_add_reference(out, head, sizeof head - 1, NULL, NULL);
    evbuffer_add_reference(out, body, sizeof body - 1, NULL, NULL);
    assert_int_equal(evbuffer_peek(out, -1, NULL, NULL, 0), 2);

    size_t written = 0;
    assert_int_equal(sockio_write_tls(c.server, c.out, &written), SOCKIO_DATA);
    assert_int_equal(written, sizeof head - 1 + sizeof body - 1);
    unsigned char raw[1024];
    ssize_t n = recv(c.fds[1], raw, sizeof raw, 0);
    assert_true(n > 5);
    assert_int_equal(raw[0], 0x17);                 /* application data ... */
    assert_int_equal((raw[3] << 8 | raw[4]) + 5, n); /* ... one record, nothing after */
    conn_close(&c);
}

static void test_close_notify_and_a_bare_tcp_close_are_eof(void **state)
{
    size_t got;
    struct conn c;
    conn_open(&c);
    client_write(&c, "last", 4);
    assert_int_equal(SSL_shutdown(c.client), 0);    /* close_notify sent */
    /* The data before it comes with the EOF; the next read is EOF alone. */
    enum sockio_result r = sockio_read_tls(c.server, c.in, 4096, &got);
    assert_true(r == SOCKIO_EOF || r == SOCKIO_DATA);
    if (r == SOCKIO_DATA)
        r = sockio_read_tls(c.server, c.in, 4096, &got);
    assert_int_equal(r, SOCKIO_EOF);
    assert_int_equal(evbuffer_get_length(c.in), 4);
    conn_close(&c);

    conn_open(&c);
    close(c.fds[1]);            /* no close_notify */
    c.fds[1] = -1;
    assert_int_equal(sockio_read_tls(c.server, c.in, 4096, &got), SOCKIO_EOF);
    conn_close(&c);
}

static void test_garbage_after_the_handshake_is_an_error(void **state)
{
    size_t got;
    struct conn c;
    conn_open(&c);
    static const unsigned char junk[] = { 0x17, 0x03, 0x03, 0x00, 0x20, 'n', 'o', 't', ' ',
                                          'a', ' ', 'r', 'e', 'c', 'o', 'r', 'd', '.', '.',
                                          '.', '.', '.', '.', '.', '.', '.', '.', '.', '.',
                                          '.', '.', '.', '.', '.', '.', '.', '.' };
    assert_int_equal(write(c.fds[1], junk, sizeof junk), (ssize_t)sizeof junk);
    assert_int_equal(sockio_read_tls(c.server, c.in, 4096, &got), SOCKIO_ERROR);
    assert_int_equal(got, 0);
    ERR_clear_error();
    conn_close(&c);
}

/* Plain: one readv takes what is there; a full socket is AGAIN with what was taken
 * counted, then the rest goes out once the peer reads. */
static void test_plain_read_and_write_with_a_full_socket(void **state)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fcntl(fds[i], F_SETFL, O_NONBLOCK), 0);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    size_t got = 0, written = 0;
    assert_int_equal(sockio_read(fds[0], in, 4096, &got), SOCKIO_AGAIN);
    assert_int_equal(write(fds[1], "hello", 5), 5);
    assert_int_equal(sockio_read(fds[0], in, 4096, &got), SOCKIO_DATA);
    assert_int_equal(got, 5);

    enum { TOTAL = 4 * 1024 * 1024 };
    for (size_t i = 0; i < TOTAL; i++) {
        unsigned char byte = pattern(i);
        evbuffer_add(out, &byte, 1);
    }
    size_t total = 0, received = 0;
    unsigned char buf[65536];
    enum sockio_result r = sockio_write(fds[0], out, &written);
    assert_int_equal(r, SOCKIO_AGAIN);
    assert_true(written > 0 && written < TOTAL);
    for (total = written; r != SOCKIO_DATA; total += written) {
        ssize_t n;
        while ((n = read(fds[1], buf, sizeof buf)) > 0)
            for (ssize_t i = 0; i < n; i++, received++)
                assert_int_equal(buf[i], pattern(received));
        r = sockio_write(fds[0], out, &written);
        assert_int_not_equal(r, SOCKIO_ERROR);
    }
    assert_int_equal(total, TOTAL);
    ssize_t n;
    while ((n = read(fds[1], buf, sizeof buf)) > 0)
        received += (size_t)n;
    assert_int_equal(received, TOTAL);
    close(fds[1]);
    assert_int_equal(sockio_read(fds[0], in, 4096, &got), SOCKIO_EOF);
    evbuffer_free(in);
    evbuffer_free(out);
    close(fds[0]);
}

/* The linger path sends close_notify, and the close later asks again: the second call
 * must neither send another nor read the socket waiting for the peer's alert. */
static void test_close_notify_twice_sends_once_and_reads_nothing(void **state)
{
    struct conn c;
    conn_open(&c);
    tls_close_notify(c.server);
    unsigned char raw[256];
    ssize_t alert = recv(c.fds[1], raw, sizeof raw, 0);
    assert_true(alert > 0);
    assert_int_equal(raw[0], 0x17);                 /* TLS 1.3: the alert is encrypted */
    client_write(&c, "late", 4);                    /* the client is still talking */
    tls_close_notify(c.server);
    assert_false(socket_is_empty(c.fds[0]));        /* nothing read */
    assert_true(socket_is_empty(c.fds[1]));         /* nothing sent */
    conn_close(&c);
}

/* Small messages keep small reservations; bulk transfers grow to the maximum, stay
 * there while reads are large, and small reads bring it down step by step. */
static void test_read_size_follows_what_reads_get(void **state)
{
    size_t size = SOCKIO_READ_MIN;
    assert_int_equal(sockio_next_read_size(size, 100), SOCKIO_READ_MIN);
    for (int i = 0; i < 4; i++)
        size = sockio_next_read_size(size, size);
    assert_int_equal(size, SOCKIO_READ_MAX);
    assert_int_equal(sockio_next_read_size(size, size), SOCKIO_READ_MAX);
    assert_int_equal(sockio_next_read_size(size, 40000), SOCKIO_READ_MAX);
    for (int i = 0; i < 4; i++)
        size = sockio_next_read_size(size, 100);
    assert_int_equal(size, SOCKIO_READ_MIN);
    /* a 100-byte read into an empty buffer takes a 16 KiB block, not 128 or 256 */
    struct evbuffer *in = evbuffer_new();
    struct evbuffer_iovec vec[2];
    assert_int_equal(evbuffer_reserve_space(in, SOCKIO_READ_MIN, vec, 2), 1);
    assert_true(vec[0].iov_len >= SOCKIO_READ_MIN && vec[0].iov_len < 16 * 1024);
    evbuffer_free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_read_ahead_are_held_until_read),
        cmocka_unit_test(test_a_partial_record_waits_for_the_socket),
        cmocka_unit_test(test_a_full_socket_is_again_then_the_rest_goes_out),
        cmocka_unit_test(test_small_chains_are_joined_into_one_record),
        cmocka_unit_test(test_close_notify_and_a_bare_tcp_close_are_eof),
        cmocka_unit_test(test_garbage_after_the_handshake_is_an_error),
        cmocka_unit_test(test_plain_read_and_write_with_a_full_socket),
        cmocka_unit_test(test_read_size_follows_what_reads_get),
        cmocka_unit_test(test_close_notify_twice_sends_once_and_reads_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

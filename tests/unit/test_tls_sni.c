/* SNI and resumption: a session resumes only under the server name it was made for
 * (RFC 6066 §3), on every resumption path — TLS 1.2 session ID and ticket, TLS 1.3
 * ticket and stateful PSK. */
#include "test_tls_support.h"

static struct tt_pki pki;
static struct tls_ticket_keys *keys;

static int setup(void **state)
{
    struct err err = { "" };
    tt_pki_open(&pki);
    tt_issue(&pki, "a", tt_key_ec(), "a.test", "DNS:a.test");
    tt_issue(&pki, "b", tt_key_ec(), "*.b.test", "DNS:*.b.test");
    keys = tls_ticket_keys_new(&err);
    assert_non_null(keys);
    return 0;
}

static int teardown(void **state)
{
    tls_ticket_keys_free(keys);
    tt_pki_close(&pki);
    return 0;
}

/* How a session is carried from one connection to the next. */
enum path { BY_SESSION_ID, BY_TICKET };

struct resumption {
    struct tt_listener l;
    struct tls_server *srv;
    SSL_CTX *cctx;
};

/* A listener serving a.test and *.b.test that can resume only by `path`, and a
 * client limited to `version`. */
static void open_listener(struct resumption *r, int version, enum path path)
{
    struct cfg_listener_tls *cfg = tt_listener(&r->l, 2, "a", "b");
    cfg->session_tickets = path == BY_TICKET;
    cfg->session_cache = path == BY_SESSION_ID ? 64 : 0;
    r->srv = tt_server(cfg, keys);
    r->cctx = tt_client_ctx("ca.crt");
    SSL_CTX_set_min_proto_version(r->cctx, version);
    SSL_CTX_set_max_proto_version(r->cctx, version);
}

static void close_listener(struct resumption *r)
{
    SSL_CTX_free(r->cctx);
    tls_server_free(r->srv);
}

/* A full handshake with `sni` (NULL: none); returns the client's session. */
static SSL_SESSION *session_for(struct resumption *r, const char *sni)
{
    SSL *client = tt_client(r->cctx, sni), *server = tls_server_ssl_new(r->srv);
    assert_true(tt_handshake(client, server));
    assert_false(SSL_session_reused(server));
    tt_client_read_pending(client);     /* TLS 1.3 tickets arrive after the handshake */
    SSL_SESSION *session = SSL_get1_session(client);
    assert_non_null(session);
    tt_close(client);
    tt_close(server);
    return session;
}

/* Offers `session` with `sni`. True when the server resumed it; the handshake must
 * succeed either way. The server's view of the name goes to servername ("-": none),
 * the served certificate's CN to cn. */
static bool offer(struct resumption *r, SSL_SESSION *session, const char *sni,
                  char *servername, char *cn)
{
    SSL *client = tt_client(r->cctx, sni), *server = tls_server_ssl_new(r->srv);
    assert_int_equal(SSL_set_session(client, session), 1);
    assert_true(tt_handshake(client, server));
    tt_client_read_pending(client);
    bool reused = SSL_session_reused(server);
    assert_int_equal(SSL_session_reused(client), reused);
    const char *name = SSL_get_servername(server, TLSEXT_NAMETYPE_host_name);
    snprintf(servername, 64, "%s", name ? name : "-");
    tt_served_cn(client, cn, 64);
    tt_close(client);
    tt_close(server);
    return reused;
}

static void check_resumes_only_under_its_name(int version, enum path path)
{
    struct resumption r;
    char servername[64], cn[64];
    open_listener(&r, version, path);
    SSL_SESSION *x = session_for(&r, "x.b.test");

    /* Another name under the same certificate. */
    assert_false(offer(&r, x, "y.b.test", servername, cn));
    assert_string_equal(servername, "y.b.test");
    assert_string_equal(cn, "*.b.test");
    /* A name with another certificate: a full handshake presents that one. */
    assert_false(offer(&r, x, "a.test", servername, cn));
    assert_string_equal(servername, "a.test");
    assert_string_equal(cn, "a.test");
    /* No name at all. */
    assert_false(offer(&r, x, NULL, servername, cn));
    assert_string_equal(servername, "-");
    assert_string_equal(cn, "a.test");
    /* The same name resumes; DNS names compare without case. */
    assert_true(offer(&r, x, "x.b.test", servername, cn));
    assert_string_equal(servername, "x.b.test");
    assert_true(offer(&r, x, "X.B.Test", servername, cn));
    assert_string_equal(cn, "*.b.test");

    SSL_SESSION_free(x);
    close_listener(&r);
}

static void check_nameless_clients_resume_among_themselves(int version, enum path path)
{
    struct resumption r;
    char servername[64], cn[64];
    open_listener(&r, version, path);
    SSL_SESSION *nameless = session_for(&r, NULL);
    assert_true(offer(&r, nameless, NULL, servername, cn));
    assert_string_equal(servername, "-");
    assert_false(offer(&r, nameless, "a.test", servername, cn));
    assert_string_equal(servername, "a.test");
    SSL_SESSION_free(nameless);
    close_listener(&r);
}

static void test_tls12_session_id_resumes_only_under_its_name(void **state)
{
    check_resumes_only_under_its_name(TLS1_2_VERSION, BY_SESSION_ID);
    check_nameless_clients_resume_among_themselves(TLS1_2_VERSION, BY_SESSION_ID);
}

static void test_tls12_ticket_resumes_only_under_its_name(void **state)
{
    check_resumes_only_under_its_name(TLS1_2_VERSION, BY_TICKET);
    check_nameless_clients_resume_among_themselves(TLS1_2_VERSION, BY_TICKET);
}

static void test_tls13_ticket_resumes_only_under_its_name(void **state)
{
    check_resumes_only_under_its_name(TLS1_3_VERSION, BY_TICKET);
    check_nameless_clients_resume_among_themselves(TLS1_3_VERSION, BY_TICKET);
}

/* Without tickets TLS 1.3 resumes from the session cache (stateful PSK). */
static void test_tls13_cached_session_resumes_only_under_its_name(void **state)
{
    check_resumes_only_under_its_name(TLS1_3_VERSION, BY_SESSION_ID);
    check_nameless_clients_resume_among_themselves(TLS1_3_VERSION, BY_SESSION_ID);
}

static void count_client_hellos(int write_p, int version, int content_type,
                                const void *buf, size_t len, SSL *ssl, void *arg)
{
    if (write_p && content_type == SSL3_RT_HANDSHAKE && len > 0
        && ((const unsigned char *)buf)[0] == SSL3_MT_CLIENT_HELLO)
        ++*(int *)SSL_get_app_data(ssl);
}

/* Offers a session (or none) with a key share the server does not take, so the
 * server answers HelloRetryRequest and a second ClientHello follows. */
static bool offer_after_retry(struct resumption *r, SSL_SESSION *session, const char *sni,
                              char *cn, SSL_SESSION **made)
{
    int hellos = 0;
    SSL *client = tt_client(r->cctx, sni), *server = tls_server_ssl_new(r->srv);
    assert_int_equal(SSL_set1_groups_list(client, "ffdhe2048:P-256"), 1);
    SSL_set_app_data(client, &hellos);
    SSL_set_msg_callback(client, count_client_hellos);
    if (session != NULL)
        assert_int_equal(SSL_set_session(client, session), 1);
    assert_true(tt_handshake(client, server));
    tt_client_read_pending(client);
    assert_int_equal(hellos, 2);
    bool reused = SSL_session_reused(server);
    tt_served_cn(client, cn, 64);
    if (made != NULL)
        *made = SSL_get1_session(client);
    tt_close(client);
    tt_close(server);
    return reused;
}

static void test_second_client_hello_keeps_the_name_and_its_sessions(void **state)
{
    struct resumption r;
    char cn[64];
    SSL_SESSION *x;
    open_listener(&r, TLS1_3_VERSION, BY_TICKET);
    assert_false(offer_after_retry(&r, NULL, "x.b.test", cn, &x));
    assert_string_equal(cn, "*.b.test");
    assert_true(offer_after_retry(&r, x, "x.b.test", cn, NULL));
    assert_false(offer_after_retry(&r, x, "a.test", cn, NULL));
    assert_string_equal(cn, "a.test");
    SSL_SESSION_free(x);
    close_listener(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls12_session_id_resumes_only_under_its_name),
        cmocka_unit_test(test_tls12_ticket_resumes_only_under_its_name),
        cmocka_unit_test(test_tls13_ticket_resumes_only_under_its_name),
        cmocka_unit_test(test_tls13_cached_session_resumes_only_under_its_name),
        cmocka_unit_test(test_second_client_hello_keeps_the_name_and_its_sessions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

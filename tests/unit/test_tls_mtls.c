/* Client certificates on listeners: verify_client modes, tls_peer_subject. */
#include "test_tls_support.h"

static struct tt_pki pki;

static int setup(void **state)
{
    tt_pki_open(&pki);
    tt_issue(&pki, "a", tt_key_ec(), "a.test", "DNS:a.test");
    tt_issue(&pki, "b", tt_key_ec(), "*.b.test", "DNS:*.b.test");
    tt_issue(&pki, "alice", tt_key_ec(), "alice", NULL);
    tt_issue(&pki, "doe", tt_key_ec(), "Doe, John+x", NULL);
    tt_issue_with("mallory", tt_key_ec(), "alice", NULL, pki.other_ca, pki.other_ca_key,
                  -1, 30, false);
    return 0;
}

static int teardown(void **state)
{
    tt_pki_close(&pki);
    return 0;
}

static struct tls_server *mtls_server(enum verify_client mode, size_t n_certs)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, n_certs, "a", "b");
    cfg->client_ca = (char *)"ca.crt";
    cfg->verify_client = mode;
    return tt_server(cfg, NULL);
}

/* A client presenting NAME.crt (NULL: no certificate). */
static SSL_CTX *client_with(const char *name, int version)
{
    SSL_CTX *ctx = tt_client_ctx("ca.crt");
    if (version != 0)
        SSL_CTX_set_max_proto_version(ctx, version);
    if (name != NULL) {
        char crt[64], key[64];
        snprintf(crt, sizeof crt, "%s.crt", name);
        snprintf(key, sizeof key, "%s.key", name);
        assert_int_equal(SSL_CTX_use_certificate_file(ctx, crt, SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    }
    return ctx;
}

/* Runs one handshake; returns the result and the subject tls_peer_subject gives
 * (or "-" when it returns -1). */
static bool attempt(struct tls_server *srv, SSL_CTX *cctx, const char *sni,
                    char *subject, size_t len, enum tls_failure_reason *why)
{
    SSL *client = tt_client(cctx, sni), *server = tls_server_ssl_new(srv);
    unsigned long server_err;
    bool ok = tt_handshake_err(client, server, &server_err);
    if (!ok && why != NULL)
        *why = tls_count_handshake_failure(server, server_err);
    if (tls_peer_subject(server, subject, len) < 0)
        snprintf(subject, len, "-");
    SSL_free(client);
    SSL_free(server);
    return ok;
}

static void check_required(int version)
{
    struct tls_server *srv = mtls_server(VERIFY_CLIENT_REQUIRED, 1);
    SSL_CTX *anonymous = client_with(NULL, version);
    SSL_CTX *alice = client_with("alice", version);
    SSL_CTX *mallory = client_with("mallory", version);
    char subject[256];
    enum tls_failure_reason why = TLS_FAIL_OTHER;

    assert_false(attempt(srv, anonymous, NULL, subject, sizeof subject, &why));
    assert_int_equal(why, TLS_FAIL_CERTIFICATE);
    assert_string_equal(subject, "-");

    why = TLS_FAIL_OTHER;
    assert_false(attempt(srv, mallory, NULL, subject, sizeof subject, &why));
    assert_int_equal(why, TLS_FAIL_CERTIFICATE);
    assert_string_equal(subject, "-");

    assert_true(attempt(srv, alice, NULL, subject, sizeof subject, NULL));
    assert_string_equal(subject, "CN=alice,O=ferry test");

    SSL_CTX_free(anonymous);
    SSL_CTX_free(alice);
    SSL_CTX_free(mallory);
    tls_server_free(srv);
}

static void test_required_client_certificate_tls13(void **state)
{
    check_required(TLS1_3_VERSION);
}

static void test_required_client_certificate_tls12(void **state)
{
    check_required(TLS1_2_VERSION);
}

static void test_optional_accepts_anonymous_clients(void **state)
{
    struct tls_server *srv = mtls_server(VERIFY_CLIENT_OPTIONAL, 1);
    SSL_CTX *anonymous = client_with(NULL, 0);
    SSL_CTX *alice = client_with("alice", 0);
    SSL_CTX *mallory = client_with("mallory", 0);
    char subject[256];

    assert_true(attempt(srv, anonymous, NULL, subject, sizeof subject, NULL));
    assert_string_equal(subject, "-");
    assert_true(attempt(srv, alice, NULL, subject, sizeof subject, NULL));
    assert_string_equal(subject, "CN=alice,O=ferry test");
    /* A certificate that is sent must still verify. */
    assert_false(attempt(srv, mallory, NULL, subject, sizeof subject, NULL));

    SSL_CTX_free(anonymous);
    SSL_CTX_free(alice);
    SSL_CTX_free(mallory);
    tls_server_free(srv);
}

static void test_off_never_asks_for_a_certificate(void **state)
{
    struct tls_server *srv = mtls_server(VERIFY_CLIENT_OFF, 1);
    SSL_CTX *alice = client_with("alice", 0);
    char subject[256];
    assert_true(attempt(srv, alice, NULL, subject, sizeof subject, NULL));
    assert_string_equal(subject, "-");
    SSL_CTX_free(alice);
    tls_server_free(srv);
}

static void test_sni_selected_certificate_group_verifies_clients_too(void **state)
{
    struct tls_server *srv = mtls_server(VERIFY_CLIENT_REQUIRED, 2);
    SSL_CTX *alice = client_with("alice", 0);
    SSL_CTX *mallory = client_with("mallory", 0);
    SSL_CTX *anonymous = client_with(NULL, 0);
    char subject[256];

    assert_true(attempt(srv, alice, "x.b.test", subject, sizeof subject, NULL));
    assert_string_equal(subject, "CN=alice,O=ferry test");
    assert_false(attempt(srv, mallory, "x.b.test", subject, sizeof subject, NULL));
    assert_false(attempt(srv, anonymous, "x.b.test", subject, sizeof subject, NULL));
    SSL_CTX_free(alice);
    SSL_CTX_free(mallory);
    SSL_CTX_free(anonymous);
    tls_server_free(srv);
}

static void test_client_ca_names_sent_to_clients(void **state)
{
    struct tls_server *srv = mtls_server(VERIFY_CLIENT_OPTIONAL, 1);
    SSL_CTX *cctx = client_with(NULL, TLS1_2_VERSION);
    SSL *client = tt_client(cctx, NULL), *server = tls_server_ssl_new(srv);
    assert_true(tt_handshake(client, server));
    STACK_OF(X509_NAME) *names = SSL_get_client_CA_list(client);
    assert_int_equal(sk_X509_NAME_num(names), 1);
    assert_int_equal(X509_NAME_cmp(sk_X509_NAME_value(names, 0),
                                   X509_get_subject_name(pki.ca)), 0);
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_resumed_session_keeps_verified_subject(void **state)
{
    struct err err = { "" };
    struct tls_ticket_keys *keys = tls_ticket_keys_new(&err);
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->client_ca = (char *)"ca.crt";
    cfg->verify_client = VERIFY_CLIENT_REQUIRED;
    struct tls_server *srv = tt_server(cfg, keys);
    SSL_CTX *alice = client_with("alice", 0);
    char subject[256];

    SSL *client = tt_client(alice, NULL), *server = tls_server_ssl_new(srv);
    assert_true(tt_handshake(client, server));
    tt_client_read_pending(client);
    SSL_SESSION *session = SSL_get1_session(client);
    tt_close(client);
    tt_close(server);

    client = tt_client(alice, NULL);
    server = tls_server_ssl_new(srv);
    SSL_set_session(client, session);
    assert_true(tt_handshake(client, server));
    assert_true(SSL_session_reused(server));
    assert_int_equal(tls_peer_subject(server, subject, sizeof subject), 21);
    assert_string_equal(subject, "CN=alice,O=ferry test");
    tt_close(client);
    tt_close(server);
    SSL_SESSION_free(session);
    SSL_CTX_free(alice);
    tls_server_free(srv);
    tls_ticket_keys_free(keys);
}

/* A client offering `session`; true when the handshake completed, *reused says
 * whether it resumed, subject as in attempt(). */
static bool attempt_resuming(struct tls_server *srv, SSL_CTX *cctx, SSL_SESSION *session,
                             bool *reused, char *subject, size_t len)
{
    SSL *client = tt_client(cctx, NULL), *server = tls_server_ssl_new(srv);
    assert_int_equal(SSL_set_session(client, session), 1);
    bool ok = tt_handshake(client, server);
    *reused = ok && SSL_session_reused(server);
    if (tls_peer_subject(server, subject, len) < 0)
        snprintf(subject, len, "-");
    if (ok)
        tt_client_read_pending(client);
    tt_close(client);
    tt_close(server);
    return ok;
}

/* Reloads (a new tls_server on the same ticket keys) after client_ca was rewritten
 * in place: a session verified against the old CA set must not skip verification
 * against the new one. Unchanged content keeps resuming. */
static void check_ca_content_binds_resumption(int version)
{
    struct err err = { "" };
    struct tls_ticket_keys *keys = tls_ticket_keys_new(&err);
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->client_ca = (char *)"client-ca.crt";
    cfg->verify_client = VERIFY_CLIENT_REQUIRED;
    cfg->session_cache = 0;     /* tickets are what outlives a generation */
    SSL_CTX *alice = client_with("alice", version);
    char subject[256];
    bool reused;

    tt_write_pem("client-ca.crt", pki.ca, NULL);
    struct tls_server *gen1 = tt_server(cfg, keys);
    SSL *client = tt_client(alice, NULL), *server = tls_server_ssl_new(gen1);
    assert_true(tt_handshake(client, server));
    tt_client_read_pending(client);
    SSL_SESSION *session = SSL_get1_session(client);
    tt_close(client);
    tt_close(server);

    struct tls_server *same = tt_server(cfg, keys);
    assert_true(attempt_resuming(same, alice, session, &reused, subject, sizeof subject));
    assert_true(reused);
    assert_string_equal(subject, "CN=alice,O=ferry test");

    /* Another CA added: alice still verifies, but by a full handshake. */
    tt_write_pem("client-ca.crt", pki.ca, pki.other_ca);
    struct tls_server *widened = tt_server(cfg, keys);
    assert_true(attempt_resuming(widened, alice, session, &reused, subject, sizeof subject));
    assert_false(reused);
    assert_string_equal(subject, "CN=alice,O=ferry test");

    /* The CA replaced: alice's certificate is no longer trusted at all. */
    tt_write_pem("client-ca.crt", pki.other_ca, NULL);
    struct tls_server *replaced = tt_server(cfg, keys);
    assert_false(attempt_resuming(replaced, alice, session, &reused, subject, sizeof subject));
    assert_string_equal(subject, "-");

    /* Same CA, weaker mode: a different policy too. */
    tt_write_pem("client-ca.crt", pki.ca, NULL);
    cfg->verify_client = VERIFY_CLIENT_OPTIONAL;
    struct tls_server *optional = tt_server(cfg, keys);
    assert_true(attempt_resuming(optional, alice, session, &reused, subject, sizeof subject));
    assert_false(reused);

    SSL_SESSION_free(session);
    SSL_CTX_free(alice);
    tls_server_free(gen1);
    tls_server_free(same);
    tls_server_free(widened);
    tls_server_free(replaced);
    tls_server_free(optional);
    tls_ticket_keys_free(keys);
}

static void test_ca_content_change_stops_resumption_tls13(void **state)
{
    check_ca_content_binds_resumption(TLS1_3_VERSION);
}

static void test_ca_content_change_stops_resumption_tls12(void **state)
{
    check_ca_content_binds_resumption(TLS1_2_VERSION);
}

static void test_subject_is_escaped_and_bounded(void **state)
{
    struct tls_server *srv = mtls_server(VERIFY_CLIENT_REQUIRED, 1);
    SSL_CTX *doe = client_with("doe", 0);
    SSL *client = tt_client(doe, NULL), *server = tls_server_ssl_new(srv);
    assert_true(tt_handshake(client, server));
    char subject[256];
    const char *expected = "CN=Doe\\, John\\+x,O=ferry test";
    assert_int_equal(tls_peer_subject(server, subject, sizeof subject), (int)strlen(expected));
    assert_string_equal(subject, expected);
    /* Too small a buffer is a failure, never a truncated subject. */
    assert_int_equal(tls_peer_subject(server, subject, strlen(expected)), -1);
    assert_int_equal(tls_peer_subject(server, subject, strlen(expected) + 1),
                     (int)strlen(expected));
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(doe);
    tls_server_free(srv);
}

static void test_unreadable_client_ca_is_named(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->client_ca = (char *)"nope-ca.crt";
    cfg->verify_client = VERIFY_CLIENT_REQUIRED;
    struct err err = { "" };
    assert_null(tls_server_new(cfg, MODE_HTTP, NULL, "listeners.t.tls", NULL, NULL, &err));
    assert_non_null(strstr(err.msg, "listeners.t.tls.client_ca: nope-ca.crt: cannot open"));

    cfg->client_ca = (char *)"a.key";   /* readable, but no certificate in it */
    assert_null(tls_server_new(cfg, MODE_HTTP, NULL, "listeners.t.tls", NULL, NULL, &err));
    assert_non_null(strstr(err.msg, "listeners.t.tls.client_ca: a.key: no PEM CA certificate"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_required_client_certificate_tls13),
        cmocka_unit_test(test_required_client_certificate_tls12),
        cmocka_unit_test(test_optional_accepts_anonymous_clients),
        cmocka_unit_test(test_off_never_asks_for_a_certificate),
        cmocka_unit_test(test_sni_selected_certificate_group_verifies_clients_too),
        cmocka_unit_test(test_client_ca_names_sent_to_clients),
        cmocka_unit_test(test_resumed_session_keeps_verified_subject),
        cmocka_unit_test(test_ca_content_change_stops_resumption_tls13),
        cmocka_unit_test(test_ca_content_change_stops_resumption_tls12),
        cmocka_unit_test(test_subject_is_escaped_and_bounded),
        cmocka_unit_test(test_unreadable_client_ca_is_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

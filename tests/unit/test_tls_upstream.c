/* tls_client: TLS to backends — verification by CA and name/IP, SNI, client
 * certificates, session reuse for pooled reconnections. */
#include "test_tls_support.h"

static struct tt_pki pki;

static int setup(void **state)
{
    tt_pki_open(&pki);
    tt_issue(&pki, "backend", tt_key_ec(), "backend",
             "DNS:backend.test,IP:127.0.0.1,IP:::1");
    tt_issue(&pki, "alice", tt_key_ec(), "alice", NULL);
    return 0;
}

static int teardown(void **state)
{
    tt_pki_close(&pki);
    return 0;
}

static struct tls_client *client_for(bool verify, const char *ca, const char *sni)
{
    struct cfg_pool_tls cfg = { .verify = verify, .ca = (char *)ca, .sni = (char *)sni };
    struct err err = { "" };
    struct tls_client *c = tls_client_new(&cfg, "pools.p.tls", &err);
    if (c == NULL)
        fail_msg("tls_client_new: %s", err.msg);
    return c;
}

static struct tls_server *backend_server(bool require_client_cert)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "backend");
    if (require_client_cert) {
        cfg->client_ca = (char *)"ca.crt";
        cfg->verify_client = VERIFY_CLIENT_REQUIRED;
    }
    return tt_server(cfg, NULL);
}

struct outcome {
    bool ok;
    long verify_result;         /* the client's */
    char server_name[64];       /* SNI the backend saw, "" = none */
    bool reused;
};

static struct outcome connect_to(struct tls_client *c, struct tls_server *srv,
                                 const char *backend)
{
    struct outcome o = { 0 };
    SSL *client = tls_client_ssl_new(c, backend);
    assert_non_null(client);
    SSL *server = tls_server_ssl_new(srv);
    o.ok = tt_handshake(client, server);
    o.verify_result = SSL_get_verify_result(client);
    const char *name = SSL_get_servername(server, TLSEXT_NAMETYPE_host_name);
    snprintf(o.server_name, sizeof o.server_name, "%s", name ? name : "");
    o.reused = SSL_session_reused(client);
    if (o.ok)
        tt_client_read_pending(client);   /* a real client reads the response */
    tt_close(client);
    tt_close(server);
    return o;
}

static void test_backend_verified_against_configured_ca(void **state)
{
    struct tls_server *srv = backend_server(false);
    struct tls_client *good = client_for(true, "ca.crt", NULL);
    struct tls_client *wrong = client_for(true, "other-ca.crt", NULL);
    struct tls_client *trusting = client_for(false, "other-ca.crt", NULL);

    struct outcome o = connect_to(good, srv, "127.0.0.1:8443");
    assert_true(o.ok);
    assert_int_equal(o.verify_result, X509_V_OK);
    o = connect_to(wrong, srv, "127.0.0.1:8443");
    assert_false(o.ok);
    /* The backend sends its CA too: a self-signed root we do not trust. */
    assert_int_equal(o.verify_result, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
    assert_true(connect_to(trusting, srv, "127.0.0.1:8443").ok);

    tls_client_free(good);
    tls_client_free(wrong);
    tls_client_free(trusting);
    tls_server_free(srv);
}

static void test_ip_address_of_backend_must_match(void **state)
{
    struct tls_server *srv = backend_server(false);
    struct tls_client *c = client_for(true, "ca.crt", NULL);

    assert_true(connect_to(c, srv, "[::1]:8443").ok);
    assert_true(connect_to(c, srv, "127.0.0.1").ok);
    struct outcome o = connect_to(c, srv, "127.0.0.2:8443");
    assert_false(o.ok);
    assert_int_equal(o.verify_result, X509_V_ERR_IP_ADDRESS_MISMATCH);
    /* No SNI is sent for an address. */
    assert_string_equal(connect_to(c, srv, "127.0.0.1:8443").server_name, "");

    tls_client_free(c);
    tls_server_free(srv);
}

static void test_sni_is_sent_and_verified(void **state)
{
    struct tls_server *srv = backend_server(false);
    struct tls_client *named = client_for(true, "ca.crt", "backend.test");
    struct tls_client *misnamed = client_for(true, "ca.crt", "other.test");

    struct outcome o = connect_to(named, srv, "127.0.0.2:8443");
    assert_true(o.ok);
    assert_string_equal(o.server_name, "backend.test");
    o = connect_to(misnamed, srv, "127.0.0.1:8443");
    assert_false(o.ok);
    assert_int_equal(o.verify_result, X509_V_ERR_HOSTNAME_MISMATCH);

    tls_client_free(named);
    tls_client_free(misnamed);
    tls_server_free(srv);
}

static void test_host_name_backend_verified_by_name(void **state)
{
    struct tls_server *srv = backend_server(false);
    struct tls_client *c = client_for(true, "ca.crt", NULL);
    assert_true(connect_to(c, srv, "backend.test:443").ok);
    struct outcome o = connect_to(c, srv, "elsewhere.test:443");
    assert_false(o.ok);
    assert_int_equal(o.verify_result, X509_V_ERR_HOSTNAME_MISMATCH);
    tls_client_free(c);
    tls_server_free(srv);
}

static void test_reconnection_to_same_backend_resumes(void **state)
{
    struct tls_server *srv = backend_server(false);
    struct tls_client *c = client_for(true, "ca.crt", NULL);
    struct tls_stats s0 = tls_stats_snapshot();

    assert_false(connect_to(c, srv, "127.0.0.1:8443").reused);
    assert_true(connect_to(c, srv, "127.0.0.1:8443").reused);
    assert_true(connect_to(c, srv, "127.0.0.1:8443").reused);
    /* Another backend has its own sessions. */
    assert_false(connect_to(c, srv, "[::1]:8443").reused);
    assert_true(connect_to(c, srv, "[::1]:8443").reused);

    struct tls_stats s1 = tls_stats_snapshot();
    assert_int_equal(s1.upstream_handshakes, s0.upstream_handshakes + 5);
    assert_int_equal(s1.upstream_resumed, s0.upstream_resumed + 3);
    tls_client_free(c);
    tls_server_free(srv);
}

static void test_connection_outlives_client_free(void **state)
{
    struct tls_server *srv = backend_server(false);
    struct tls_client *c = client_for(true, "ca.crt", NULL);
    SSL *client = tls_client_ssl_new(c, "127.0.0.1:8443");
    tls_client_free(c);     /* the generation goes; the upstream connection stays */

    SSL *server = tls_server_ssl_new(srv);
    assert_true(tt_handshake(client, server));
    tt_client_read_pending(client);     /* new sessions reach the (still alive) store */
    tt_close(client);
    tt_close(server);
    tls_server_free(srv);
}

static void test_client_certificate_presented_to_backend(void **state)
{
    struct tls_server *srv = backend_server(true);
    struct cfg_pool_tls cfg = { .verify = true, .ca = (char *)"ca.crt",
                                .cert = (char *)"alice.crt", .key = (char *)"alice.key" };
    struct err err = { "" };
    struct tls_client *with_cert = tls_client_new(&cfg, "pools.p.tls", &err);
    assert_non_null(with_cert);
    struct tls_client *without = client_for(true, "ca.crt", NULL);

    SSL *client = tls_client_ssl_new(with_cert, "127.0.0.1:8443");
    SSL *server = tls_server_ssl_new(srv);
    assert_true(tt_handshake(client, server));
    char subject[128];
    assert_true(tls_peer_subject(server, subject, sizeof subject) > 0);
    assert_string_equal(subject, "CN=alice,O=ferry test");
    SSL_free(client);
    SSL_free(server);
    assert_false(connect_to(without, srv, "127.0.0.1:8443").ok);

    tls_client_free(with_cert);
    tls_client_free(without);
    tls_server_free(srv);
}

static void expect_error(const struct cfg_pool_tls *cfg, const char *part1,
                         const char *part2)
{
    struct err err = { "" };
    assert_null(tls_client_new(cfg, "pools.p.tls", &err));
    if (strstr(err.msg, part1) == NULL || strstr(err.msg, part2) == NULL)
        fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err.msg, part1, part2);
}

static void test_config_errors_name_the_field(void **state)
{
    struct cfg_pool_tls missing_ca = { .verify = true, .ca = (char *)"missing.crt" };
    expect_error(&missing_ca, "pools.p.tls.ca: missing.crt:", "cannot open");
    struct cfg_pool_tls key_as_ca = { .verify = true, .ca = (char *)"alice.key" };
    expect_error(&key_as_ca, "pools.p.tls.ca: alice.key:", "no PEM CA certificate");
    struct cfg_pool_tls cert_only = { .verify = true, .cert = (char *)"alice.crt" };
    expect_error(&cert_only, "pools.p.tls:", "both cert and key");
    struct cfg_pool_tls mismatch = { .verify = true, .cert = (char *)"alice.crt",
                                     .key = (char *)"backend.key" };
    expect_error(&mismatch, "pools.p.tls.key: backend.key:", "does not match");
}

static void test_policy_and_bad_backend_strings(void **state)
{
    struct tls_client *c = client_for(true, NULL, NULL);   /* system trust store */
    assert_null(tls_client_ssl_new(c, "[::1"));
    assert_null(tls_client_ssl_new(c, ":8443"));
    SSL *ssl = tls_client_ssl_new(c, "10.0.0.5:443");
    assert_non_null(ssl);
    assert_int_equal(SSL_get_min_proto_version(ssl), TLS1_2_VERSION);
    assert_true(SSL_get_options(ssl) & SSL_OP_IGNORE_UNEXPECTED_EOF);
    assert_false(SSL_is_server(ssl));
    SSL_free(ssl);
    tls_client_free(c);
}

/* A generation built again from the same config document (a DNS change) shares the
 * contexts instead of loading the files: the shared handles verify, send SNI and
 * resume the session the original made, after the originals are gone. */
static void test_shared_handles_outlive_the_originals(void **state)
{
    struct tls_server *srv = backend_server(false);
    struct tls_client *c = client_for(true, "ca.crt", "backend.test");
    assert_true(connect_to(c, srv, "127.0.0.1:8443").ok);
    struct tls_client *client_copy = tls_client_share(c);
    struct tls_server *server_copy = tls_server_share(srv);
    assert_non_null(client_copy);
    assert_non_null(server_copy);
    tls_client_free(c);
    tls_server_free(srv);
    struct outcome o = connect_to(client_copy, server_copy, "127.0.0.1:8443");
    assert_true(o.ok);
    assert_int_equal(o.verify_result, X509_V_OK);
    assert_string_equal(o.server_name, "backend.test");
    assert_true(o.reused);
    tls_client_free(client_copy);
    tls_server_free(server_copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_verified_against_configured_ca),
        cmocka_unit_test(test_shared_handles_outlive_the_originals),
        cmocka_unit_test(test_ip_address_of_backend_must_match),
        cmocka_unit_test(test_sni_is_sent_and_verified),
        cmocka_unit_test(test_host_name_backend_verified_by_name),
        cmocka_unit_test(test_reconnection_to_same_backend_resumes),
        cmocka_unit_test(test_connection_outlives_client_free),
        cmocka_unit_test(test_client_certificate_presented_to_backend),
        cmocka_unit_test(test_config_errors_name_the_field),
        cmocka_unit_test(test_policy_and_bad_backend_strings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

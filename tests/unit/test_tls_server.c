/* tls_server: certificate selection by SNI and key type, build errors, warnings,
 * lifetimes. */
#include "test_tls_support.h"

static struct tt_pki pki;

static int setup(void **state)
{
    tt_pki_open(&pki);
    tt_issue(&pki, "a", tt_key_ec(), "a.test", "DNS:a.test");
    tt_issue(&pki, "a2", tt_key_ec(), "a.test again", "DNS:a.test");
    tt_issue(&pki, "b", tt_key_ec(), "*.b.test", "DNS:*.b.test");
    tt_issue(&pki, "xb", tt_key_ec(), "x.b.test", "DNS:x.b.test");
    tt_issue(&pki, "c-ec", tt_key_ec(), "c-ec", "DNS:c.test,DNS:www.c.test");
    /* Same names in another order and case: still the same group. */
    tt_issue(&pki, "c-rsa", tt_key_rsa(), "c-rsa", "DNS:WWW.c.test,DNS:c.test");
    tt_issue(&pki, "cn", tt_key_ec(), "cn.test", NULL);
    tt_issue_with("expired", tt_key_ec(), "a.test", "DNS:a.test", pki.ca, pki.ca_key,
                  -30, -1, false);
    tt_issue_with("future", tt_key_ec(), "a.test", "DNS:a.test", pki.ca, pki.ca_key,
                  10, 30, false);
    tt_write_text("garbage.crt", "this is not a certificate\n");
    tt_write_text("garbage.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    FILE *f = fopen("der.crt", "wb");
    assert_non_null(f);
    assert_int_equal(i2d_X509_fp(f, pki.ca), 1);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    tt_pki_close(&pki);
    return 0;
}

/* Handshake with `sni` (NULL = none) and return the served certificate's CN. */
static const char *served_for(struct tls_server *srv, SSL_CTX *cctx, const char *sni,
                              char *cn, size_t len)
{
    SSL *client = tt_client(cctx, sni);
    SSL *server = tls_server_ssl_new(srv);
    assert_non_null(server);
    assert_true(tt_handshake(client, server));
    tt_served_cn(client, cn, len);
    SSL_free(client);
    SSL_free(server);
    return cn;
}

static void test_sni_selects_certificate_by_name(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 4, "a", "b", "xb", "c-ec"), NULL);
    SSL_CTX *cctx = tt_client_ctx("ca.crt");
    char cn[64];

    assert_string_equal(served_for(srv, cctx, "a.test", cn, sizeof cn), "a.test");
    assert_string_equal(served_for(srv, cctx, "A.Test", cn, sizeof cn), "a.test");
    assert_string_equal(served_for(srv, cctx, "y.b.test", cn, sizeof cn), "*.b.test");
    assert_string_equal(served_for(srv, cctx, "www.c.test", cn, sizeof cn), "c-ec");
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_exact_name_beats_earlier_wildcard(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 3, "a", "b", "xb"), NULL);
    SSL_CTX *cctx = tt_client_ctx("ca.crt");
    char cn[64];

    assert_string_equal(served_for(srv, cctx, "x.b.test", cn, sizeof cn), "x.b.test");
    assert_string_equal(served_for(srv, cctx, "z.b.test", cn, sizeof cn), "*.b.test");
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_unknown_or_missing_name_gets_first_certificate(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 2, "b", "a"), NULL);
    SSL_CTX *cctx = tt_client_ctx(NULL);
    char cn[64];

    assert_string_equal(served_for(srv, cctx, "unknown.test", cn, sizeof cn), "*.b.test");
    assert_string_equal(served_for(srv, cctx, "deep.y.b.test", cn, sizeof cn), "*.b.test");
    assert_string_equal(served_for(srv, cctx, NULL, cn, sizeof cn), "*.b.test");
    assert_string_equal(served_for(srv, cctx, "a.test", cn, sizeof cn), "a.test");
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_common_name_used_without_san(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 2, "a", "cn"), NULL);
    SSL_CTX *cctx = tt_client_ctx(NULL);
    char cn[64];

    assert_string_equal(served_for(srv, cctx, "cn.test", cn, sizeof cn), "cn.test");
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

#define RSA_ONLY_SIGALGS \
    "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:RSA+SHA256:RSA+SHA384"

static void check_key_type_choice(int version)
{
    struct tt_listener l;
    /* RSA listed first: ECDSA is chosen for the client's abilities, not by order. */
    struct tls_server *srv = tt_server(tt_listener(&l, 3, "a", "c-rsa", "c-ec"), NULL);
    SSL_CTX *cctx = tt_client_ctx("ca.crt");
    SSL_CTX_set_min_proto_version(cctx, version);
    SSL_CTX_set_max_proto_version(cctx, version);
    char cn[64];

    SSL *client = tt_client(cctx, "c.test");
    SSL *server = tls_server_ssl_new(srv);
    assert_true(tt_handshake(client, server));
    assert_int_equal(tt_served_key_type(client), EVP_PKEY_EC);
    assert_string_equal(tt_served_cn(client, cn, sizeof cn), "c-ec");
    SSL_free(client);
    SSL_free(server);

    client = tt_client(cctx, "c.test");
    assert_int_equal(SSL_set1_sigalgs_list(client, RSA_ONLY_SIGALGS), 1);
    server = tls_server_ssl_new(srv);
    assert_true(tt_handshake(client, server));
    assert_int_equal(tt_served_key_type(client), EVP_PKEY_RSA);
    assert_string_equal(tt_served_cn(client, cn, sizeof cn), "c-rsa");
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_ecdsa_served_to_capable_clients_rsa_to_others_tls13(void **state)
{
    check_key_type_choice(TLS1_3_VERSION);
}

static void test_ecdsa_served_to_capable_clients_rsa_to_others_tls12(void **state)
{
    check_key_type_choice(TLS1_2_VERSION);
}

static void test_default_group_holds_both_key_types(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 3, "c-rsa", "a", "c-ec"), NULL);
    SSL_CTX *cctx = tt_client_ctx(NULL);
    char cn[64];

    assert_string_equal(served_for(srv, cctx, NULL, cn, sizeof cn), "c-ec");
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_connection_outlives_server_free(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 2, "a", "b"), NULL);
    SSL *server = tls_server_ssl_new(srv);
    tls_server_free(srv);   /* the generation goes; the connection stays */

    SSL_CTX *cctx = tt_client_ctx("ca.crt");
    SSL *client = tt_client(cctx, "q.b.test");
    char cn[64];
    assert_true(tt_handshake(client, server));
    assert_string_equal(tt_served_cn(client, cn, sizeof cn), "*.b.test");
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
}

/* ---- errors ------------------------------------------------------------------------ */

static void expect_error(const struct cfg_listener_tls *cfg, const char *part1,
                         const char *part2)
{
    struct err err = { "" };
    struct tls_server *srv = tls_server_new(cfg, MODE_HTTP, NULL, "listeners.t.tls",
                                            NULL, NULL, &err);
    assert_null(srv);
    if (strstr(err.msg, part1) == NULL || strstr(err.msg, part2) == NULL)
        fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err.msg, part1, part2);
}

static void test_key_not_matching_certificate_names_key_file(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    l.certs[0].key = (char *)"b.key";
    expect_error(cfg, "listeners.t.tls.certificates[0].key: b.key:", "does not match");
}

static void test_missing_file_is_named(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 2, "a", "b");
    l.certs[1].cert = (char *)"missing.crt";
    expect_error(cfg, "listeners.t.tls.certificates[1].cert: missing.crt:",
                 "No such file or directory");
}

static void test_garbage_certificate_file_is_named(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    l.certs[0].cert = (char *)"garbage.crt";
    expect_error(cfg, "listeners.t.tls.certificates[0].cert: garbage.crt:",
                 "no PEM certificate");
}

static void test_der_certificate_is_rejected(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    l.certs[0].cert = (char *)"der.crt";
    expect_error(cfg, "certificates[0].cert: der.crt:", "no PEM certificate");
}

static void test_garbage_key_file_is_named(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    l.certs[0].key = (char *)"garbage.key";
    expect_error(cfg, "listeners.t.tls.certificates[0].key: garbage.key:",
                 "no usable PEM private key");
}

static void test_bad_cipher_string_names_ciphers(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->ciphers = (char *)"NOT-A-CIPHER:ALSO-NOT";
    expect_error(cfg, "listeners.t.tls.ciphers:", "NOT-A-CIPHER");
}

static void test_unknown_ciphersuite_is_named(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->ciphersuites = (char *)"TLS_AES_128_GCM_SHA256:TLS_NOPE_SHA1";
    expect_error(cfg, "listeners.t.tls.ciphersuites:", "\"TLS_NOPE_SHA1\"");
}

static void test_two_certificates_of_one_key_type_for_same_names_rejected(void **state)
{
    struct tt_listener l;
    expect_error(tt_listener(&l, 2, "a", "a2"), "listeners.t.tls.certificates[1]:",
                 "certificates[0]");
}

static void test_verify_client_without_client_ca_rejected(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->verify_client = VERIFY_CLIENT_REQUIRED;
    expect_error(cfg, "listeners.t.tls.verify_client:", "client_ca");
}

static void test_empty_alpn_name_rejected(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    l.alpn[0] = (char *)"";
    expect_error(cfg, "listeners.t.tls.alpn[0]:", "1 to 255");
}

static void test_custom_ciphers_are_used(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->ciphers = (char *)"ECDHE-ECDSA-AES256-GCM-SHA384";
    struct tls_server *srv = tt_server(cfg, NULL);
    SSL_CTX *cctx = tt_client_ctx(NULL);
    SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
    SSL *client = tt_client(cctx, NULL), *server = tls_server_ssl_new(srv);
    assert_true(tt_handshake(client, server));
    assert_string_equal(SSL_get_cipher_name(client), "ECDHE-ECDSA-AES256-GCM-SHA384");
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

/* ---- warnings ---------------------------------------------------------------------- */

static void test_expired_certificate_is_a_warning(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 2, "b", "expired");
    struct tt_warnings w = { "", 0 };
    struct err err = { "" };
    struct tls_server *srv = tls_server_new(cfg, MODE_HTTP, NULL, "listeners.t.tls",
                                            tt_warn, &w, &err);
    assert_non_null(srv);
    assert_int_equal(w.count, 1);
    assert_non_null(strstr(w.text, "listeners.t.tls.certificates[1].cert: expired.crt: "
                                   "certificate expired on"));
    tls_server_free(srv);
}

static void test_not_yet_valid_certificate_is_a_warning(void **state)
{
    struct tt_listener l;
    struct tt_warnings w = { "", 0 };
    struct err err = { "" };
    struct tls_server *srv = tls_server_new(tt_listener(&l, 1, "future"), MODE_HTTP, NULL,
                                            "listeners.t.tls", tt_warn, &w, &err);
    assert_non_null(srv);
    assert_int_equal(w.count, 1);
    assert_non_null(strstr(w.text, "not valid before"));
    tls_server_free(srv);
}

static void test_valid_certificates_give_no_warning(void **state)
{
    struct tt_listener l;
    struct tt_warnings w = { "", 0 };
    struct err err = { "" };
    struct tls_server *srv = tls_server_new(tt_listener(&l, 2, "a", "c-rsa"), MODE_HTTP,
                                            NULL, "listeners.t.tls", tt_warn, &w, &err);
    assert_non_null(srv);
    assert_int_equal(w.count, 0);
    tls_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sni_selects_certificate_by_name),
        cmocka_unit_test(test_exact_name_beats_earlier_wildcard),
        cmocka_unit_test(test_unknown_or_missing_name_gets_first_certificate),
        cmocka_unit_test(test_common_name_used_without_san),
        cmocka_unit_test(test_ecdsa_served_to_capable_clients_rsa_to_others_tls13),
        cmocka_unit_test(test_ecdsa_served_to_capable_clients_rsa_to_others_tls12),
        cmocka_unit_test(test_default_group_holds_both_key_types),
        cmocka_unit_test(test_connection_outlives_server_free),
        cmocka_unit_test(test_key_not_matching_certificate_names_key_file),
        cmocka_unit_test(test_missing_file_is_named),
        cmocka_unit_test(test_garbage_certificate_file_is_named),
        cmocka_unit_test(test_der_certificate_is_rejected),
        cmocka_unit_test(test_garbage_key_file_is_named),
        cmocka_unit_test(test_bad_cipher_string_names_ciphers),
        cmocka_unit_test(test_unknown_ciphersuite_is_named),
        cmocka_unit_test(test_two_certificates_of_one_key_type_for_same_names_rejected),
        cmocka_unit_test(test_verify_client_without_client_ca_rejected),
        cmocka_unit_test(test_empty_alpn_name_rejected),
        cmocka_unit_test(test_custom_ciphers_are_used),
        cmocka_unit_test(test_expired_certificate_is_a_warning),
        cmocka_unit_test(test_not_yet_valid_certificate_is_a_warning),
        cmocka_unit_test(test_valid_certificates_give_no_warning),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

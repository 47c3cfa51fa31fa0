/* tls_server policy: versions, ciphers, groups, ALPN, resumption (tickets shared
 * across servers, rotation, session cache), counters. */
#include "test_tls_support.h"

static struct tt_pki pki;

static int setup(void **state)
{
    tt_pki_open(&pki);
    tt_issue(&pki, "a", tt_key_ec(), "a.test", "DNS:a.test");
    tt_issue(&pki, "r", tt_key_rsa(), "r.test", "DNS:r.test");
    return 0;
}

static int teardown(void **state)
{
    tt_pki_close(&pki);
    return 0;
}

static SSL_CTX *client_ctx_version(int min, int max)
{
    SSL_CTX *ctx = tt_client_ctx("ca.crt");
    SSL_CTX_set_min_proto_version(ctx, min);
    SSL_CTX_set_max_proto_version(ctx, max);
    return ctx;
}

/* Handshake result for one client config against srv; server error in *server_err. */
static bool connect_once(struct tls_server *srv, SSL_CTX *cctx, unsigned long *server_err,
                         SSL **client_out)
{
    SSL *client = tt_client(cctx, NULL), *server = tls_server_ssl_new(srv);
    bool ok = tt_handshake_err(client, server, server_err);
    SSL_free(server);
    if (client_out != NULL)
        *client_out = client;
    else
        SSL_free(client);
    return ok;
}

/* ---- versions and algorithms --------------------------------------------------------- */

static void test_tls11_client_is_refused_as_protocol_version(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 1, "a"), NULL);
    /* A client that could speak TLS 1.1 if the server let it. */
    SSL_CTX *cctx = client_ctx_version(TLS1_1_VERSION, TLS1_1_VERSION);
    SSL_CTX_set_security_level(cctx, 0);
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "DEFAULT:@SECLEVEL=0"), 1);

    struct tls_stats before = tls_stats_snapshot();
    unsigned long server_err;
    assert_false(connect_once(srv, cctx, &server_err, NULL));
    assert_int_equal(tls_count_handshake_failure(NULL, server_err),
                     TLS_FAIL_PROTOCOL_VERSION);
    struct tls_stats after = tls_stats_snapshot();
    assert_int_equal(after.failures[TLS_FAIL_PROTOCOL_VERSION],
                     before.failures[TLS_FAIL_PROTOCOL_VERSION] + 1);
    assert_int_equal(after.handshakes, before.handshakes);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_tls13_minimum_refuses_tls12(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->min_version = TLS_MIN_1_3;
    struct tls_server *srv = tt_server(cfg, NULL);

    SSL_CTX *old = client_ctx_version(TLS1_2_VERSION, TLS1_2_VERSION);
    unsigned long server_err;
    assert_false(connect_once(srv, old, &server_err, NULL));
    assert_int_equal(tls_count_handshake_failure(NULL, server_err),
                     TLS_FAIL_PROTOCOL_VERSION);

    SSL_CTX *new = client_ctx_version(TLS1_2_VERSION, TLS1_3_VERSION);
    SSL *client;
    assert_true(connect_once(srv, new, NULL, &client));
    assert_int_equal(SSL_version(client), TLS1_3_VERSION);
    SSL_free(client);
    SSL_CTX_free(old);
    SSL_CTX_free(new);
    tls_server_free(srv);
}

static void test_tls12_and_tls13_both_accepted_by_default(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 1, "a"), NULL);
    SSL_CTX *v12 = client_ctx_version(TLS1_2_VERSION, TLS1_2_VERSION);
    SSL_CTX *any = client_ctx_version(0, 0);
    SSL *client;

    assert_true(connect_once(srv, v12, NULL, &client));
    assert_int_equal(SSL_version(client), TLS1_2_VERSION);
    assert_string_equal(SSL_get_cipher_name(client), "ECDHE-ECDSA-AES256-GCM-SHA384");
    SSL_free(client);
    assert_true(connect_once(srv, any, NULL, &client));
    assert_int_equal(SSL_version(client), TLS1_3_VERSION);
    SSL_free(client);
    SSL_CTX_free(v12);
    SSL_CTX_free(any);
    tls_server_free(srv);
}

static void test_client_cipher_order_wins(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 1, "a"), NULL);
    SSL_CTX *cctx = client_ctx_version(TLS1_2_VERSION, TLS1_2_VERSION);
    SSL *client;

    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "ECDHE-ECDSA-CHACHA20-POLY1305:"
                                                   "ECDHE-ECDSA-AES128-GCM-SHA256"), 1);
    assert_true(connect_once(srv, cctx, NULL, &client));
    assert_string_equal(SSL_get_cipher_name(client), "ECDHE-ECDSA-CHACHA20-POLY1305");
    SSL_free(client);
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "ECDHE-ECDSA-AES128-GCM-SHA256:"
                                                   "ECDHE-ECDSA-CHACHA20-POLY1305"), 1);
    assert_true(connect_once(srv, cctx, NULL, &client));
    assert_string_equal(SSL_get_cipher_name(client), "ECDHE-ECDSA-AES128-GCM-SHA256");
    SSL_free(client);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_weak_cipher_only_client_fails_as_no_shared_cipher(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 1, "r"), NULL);
    SSL_CTX *cctx = client_ctx_version(TLS1_2_VERSION, TLS1_2_VERSION);
    /* Static RSA key exchange, CBC: valid TLS 1.2, not in the intermediate list. */
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "AES128-SHA256"), 1);
    unsigned long server_err;
    assert_false(connect_once(srv, cctx, &server_err, NULL));
    assert_int_equal(tls_count_handshake_failure(NULL, server_err),
                     TLS_FAIL_NO_SHARED_CIPHER);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_dhe_rsa_uses_ffdhe2048(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 1, "r"), NULL);
    SSL_CTX *cctx = client_ctx_version(TLS1_2_VERSION, TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "DHE-RSA-AES128-GCM-SHA256"), 1);
    SSL *client;
    assert_true(connect_once(srv, cctx, NULL, &client));
    assert_string_equal(SSL_get_cipher_name(client), "DHE-RSA-AES128-GCM-SHA256");

    /* The server's DH group is RFC 7919 ffdhe2048. */
    EVP_PKEY *server_key = NULL, *ffdhe2048 = NULL;
    assert_int_equal(SSL_get_peer_tmp_key(client, &server_key), 1);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("group", (char *)"ffdhe2048", 0),
        OSSL_PARAM_construct_end(),
    };
    assert_true(EVP_PKEY_paramgen_init(pctx) > 0);
    assert_true(EVP_PKEY_CTX_set_params(pctx, params) > 0);
    assert_true(EVP_PKEY_paramgen(pctx, &ffdhe2048) > 0);
    assert_int_equal(EVP_PKEY_parameters_eq(server_key, ffdhe2048), 1);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(ffdhe2048);
    EVP_PKEY_CTX_free(pctx);
    SSL_free(client);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_only_modern_groups_offered(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 1, "a"), NULL);
    SSL_CTX *cctx = client_ctx_version(TLS1_3_VERSION, TLS1_3_VERSION);
    SSL *client;

    assert_int_equal(SSL_CTX_set1_groups_list(cctx, "X25519"), 1);
    assert_true(connect_once(srv, cctx, NULL, &client));
    assert_int_equal(SSL_get_negotiated_group(client), NID_X25519);
    SSL_free(client);
    assert_int_equal(SSL_CTX_set1_groups_list(cctx, "P-521"), 1);
    assert_false(connect_once(srv, cctx, NULL, NULL));
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_connections_release_idle_buffers_and_refuse_renegotiation(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 1, "a"), NULL);
    SSL *server = tls_server_ssl_new(srv);
    assert_true(SSL_get_mode(server) & SSL_MODE_RELEASE_BUFFERS);
    uint64_t options = SSL_get_options(server);
    assert_true(options & SSL_OP_NO_RENEGOTIATION);
    assert_true(options & SSL_OP_NO_COMPRESSION);
    assert_true(options & SSL_OP_IGNORE_UNEXPECTED_EOF);
    assert_false(options & SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_free(server);

    /* And a TLS 1.2 client asking to renegotiate is refused — and the refusal is
     * not counted as another handshake. */
    SSL_CTX *cctx = client_ctx_version(TLS1_2_VERSION, TLS1_2_VERSION);
    SSL *client = tt_client(cctx, NULL);
    server = tls_server_ssl_new(srv);
    assert_true(tt_handshake(client, server));
    struct tls_stats before = tls_stats_snapshot();
    assert_int_equal(SSL_renegotiate(client), 1);
    char byte;
    int client_error = SSL_ERROR_NONE;
    for (int i = 0; i < 10 && client_error != SSL_ERROR_SSL; i++) {
        assert_int_not_equal(SSL_do_handshake(client), 1);
        SSL_read(server, &byte, 1);
        client_error = SSL_get_error(client, SSL_read(client, &byte, 1));
    }
    assert_int_equal(client_error, SSL_ERROR_SSL);
    ERR_clear_error();
    assert_int_equal(tls_stats_snapshot().handshakes, before.handshakes);
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

/* ---- ALPN --------------------------------------------------------------------------- */

/* Protocol negotiated when the client offers `offer` (wire format); "" = none.
 * Returns false when the handshake failed. */
static bool alpn_result(struct tls_server *srv, const char *offer, size_t offer_len,
                        char *out, size_t out_len)
{
    SSL_CTX *cctx = tt_client_ctx(NULL);
    SSL *client = tt_client(cctx, NULL), *server = tls_server_ssl_new(srv);
    if (offer_len > 0)
        assert_int_equal(SSL_set_alpn_protos(client, (const unsigned char *)offer,
                                             (unsigned)offer_len), 0);
    bool ok = tt_handshake(client, server);
    const unsigned char *proto = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(client, &proto, &len);
    snprintf(out, out_len, "%.*s", (int)len, proto ? (const char *)proto : "");
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    return ok;
}

#define OFFER(s) s, sizeof(s) - 1

static void test_http_listener_selects_http11_or_nothing(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 1, "a"), NULL);
    char got[32];

    assert_true(alpn_result(srv, OFFER("\x02h2\x08http/1.1"), got, sizeof got));
    assert_string_equal(got, "http/1.1");
    assert_true(alpn_result(srv, OFFER("\x02h2"), got, sizeof got));
    assert_string_equal(got, "");
    assert_true(alpn_result(srv, "", 0, got, sizeof got));
    assert_string_equal(got, "");
    tls_server_free(srv);
}

static struct tls_server *tcp_server(struct tt_listener *l, size_t n_alpn)
{
    struct cfg_listener_tls *cfg = tt_listener(l, 1, "a");
    l->alpn[0] = (char *)"imap";
    l->alpn[1] = (char *)"pop3";
    cfg->n_alpn = n_alpn;
    struct err err = { "" };
    struct tls_server *srv = tls_server_new(cfg, MODE_TCP, NULL, "listeners.t.tls",
                                            NULL, NULL, &err);
    if (srv == NULL)
        fail_msg("%s", err.msg);
    return srv;
}

static void test_server_order_wins_and_tcp_mismatch_is_fatal(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tcp_server(&l, 2);
    char got[32];

    assert_true(alpn_result(srv, OFFER("\x04pop3\x04imap"), got, sizeof got));
    assert_string_equal(got, "imap");
    assert_true(alpn_result(srv, OFFER("\x02h2\x04pop3"), got, sizeof got));
    assert_string_equal(got, "pop3");
    assert_false(alpn_result(srv, OFFER("\x02h2"), got, sizeof got));
    tls_server_free(srv);
}

static void test_tcp_listener_without_alpn_ignores_offers(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tcp_server(&l, 0);
    char got[32];
    assert_true(alpn_result(srv, OFFER("\x02h2"), got, sizeof got));
    assert_string_equal(got, "");
    tls_server_free(srv);
}

/* ---- resumption and counters ----------------------------------------------------------- */

static void check_ticket_survives_reload(int version)
{
    struct err err = { "" };
    struct tls_ticket_keys *keys = tls_ticket_keys_new(&err);
    struct tls_ticket_keys *other_keys = tls_ticket_keys_new(&err);
    assert_non_null(keys);
    assert_non_null(other_keys);
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->session_cache = 0;     /* only the ticket can resume */
    SSL_CTX *cctx = client_ctx_version(version, version);

    struct tls_server *gen1 = tt_server(cfg, keys);
    SSL_SESSION *session = tt_new_session(gen1, cctx);
    tls_server_free(gen1);
    struct tls_server *gen2 = tt_server(cfg, keys);
    assert_true(tt_resumes(gen2, cctx, session));
    struct tls_server *stranger = tt_server(cfg, other_keys);
    assert_false(tt_resumes(stranger, cctx, session));

    SSL_SESSION_free(session);
    SSL_CTX_free(cctx);
    tls_server_free(gen2);
    tls_server_free(stranger);
    tls_ticket_keys_free(keys);
    tls_ticket_keys_free(other_keys);
}

static void test_ticket_resumes_across_reload_tls13(void **state)
{
    check_ticket_survives_reload(TLS1_3_VERSION);
}

static void test_ticket_resumes_across_reload_tls12(void **state)
{
    check_ticket_survives_reload(TLS1_2_VERSION);
}

static void test_ticket_of_another_listener_does_not_resume(void **state)
{
    struct err err = { "" };
    struct tls_ticket_keys *keys = tls_ticket_keys_new(&err);
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    SSL_CTX *cctx = tt_client_ctx(NULL);
    struct tls_server *one = tt_server(cfg, keys);
    struct tls_server *two = tls_server_new(cfg, MODE_HTTP, keys, "listeners.other.tls",
                                            NULL, NULL, &err);
    assert_non_null(two);

    SSL_SESSION *session = tt_new_session(one, cctx);
    assert_true(tt_resumes(one, cctx, session));
    assert_false(tt_resumes(two, cctx, session));
    SSL_SESSION_free(session);
    SSL_CTX_free(cctx);
    tls_server_free(one);
    tls_server_free(two);
    tls_ticket_keys_free(keys);
}

static void test_rotation_keeps_previous_key_for_one_period(void **state)
{
    struct err err = { "" };
    struct tls_ticket_keys *keys = tls_ticket_keys_new(&err);
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->session_cache = 0;
    SSL_CTX *cctx = tt_client_ctx(NULL);
    struct tls_server *srv = tt_server(cfg, keys);

    SSL_SESSION *session = tt_new_session(srv, cctx);
    assert_int_equal(tls_ticket_keys_rotate(keys, &err), 0);
    assert_true(tt_resumes(srv, cctx, session));
    for (int i = 1; i < TLS_TICKET_KEYS_KEPT; i++)
        assert_int_equal(tls_ticket_keys_rotate(keys, &err), 0);
    assert_false(tt_resumes(srv, cctx, session));

    SSL_SESSION_free(session);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
    tls_ticket_keys_free(keys);
}

static void check_session_cache(int version, unsigned cache, bool expect_resumed)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->session_tickets = false;
    cfg->session_cache = cache;
    SSL_CTX *cctx = client_ctx_version(version, version);
    struct tls_server *srv = tt_server(cfg, NULL);
    SSL_SESSION *session = tt_new_session(srv, cctx);
    assert_int_equal(tt_resumes(srv, cctx, session), expect_resumed);
    SSL_SESSION_free(session);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void test_session_cache_resumes_without_tickets(void **state)
{
    check_session_cache(TLS1_2_VERSION, 16, true);
    check_session_cache(TLS1_3_VERSION, 16, true);
}

static void test_no_cache_and_no_tickets_never_resumes(void **state)
{
    check_session_cache(TLS1_2_VERSION, 0, false);
    check_session_cache(TLS1_3_VERSION, 0, false);
}

static void test_orderly_close_keeps_session_in_cache(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->session_tickets = false;
    SSL_CTX *cctx = client_ctx_version(TLS1_2_VERSION, TLS1_2_VERSION);
    struct tls_server *srv = tt_server(cfg, NULL);

    /* Freed without tls_close_notify (what bufferevent_free alone does): OpenSSL
     * drops the session. */
    SSL *client = tt_client(cctx, NULL), *server = tls_server_ssl_new(srv);
    assert_true(tt_handshake(client, server));
    SSL_SESSION *session = SSL_get1_session(client);
    SSL_free(server);
    SSL_free(client);
    assert_false(tt_resumes(srv, cctx, session));
    SSL_SESSION_free(session);

    session = tt_new_session(srv, cctx);
    assert_true(tt_resumes(srv, cctx, session));
    SSL_SESSION_free(session);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
}

static void check_counts(int version)
{
    struct err err = { "" };
    struct tls_ticket_keys *keys = tls_ticket_keys_new(&err);
    struct tt_listener l;
    struct tls_server *srv = tt_server(tt_listener(&l, 1, "a"), keys);
    SSL_CTX *cctx = client_ctx_version(version, version);

    struct tls_stats s0 = tls_stats_snapshot();
    SSL_SESSION *session = tt_new_session(srv, cctx);
    struct tls_stats s1 = tls_stats_snapshot();
    assert_int_equal(s1.handshakes, s0.handshakes + 1);
    assert_int_equal(s1.resumed, s0.resumed);
    assert_true(tt_resumes(srv, cctx, session));
    struct tls_stats s2 = tls_stats_snapshot();
    assert_int_equal(s2.handshakes, s1.handshakes + 1);
    assert_int_equal(s2.resumed, s1.resumed + 1);

    SSL_SESSION_free(session);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
    tls_ticket_keys_free(keys);
}

static void test_handshakes_and_resumptions_counted_once_tls13(void **state)
{
    check_counts(TLS1_3_VERSION);
}

static void test_handshakes_and_resumptions_counted_once_tls12(void **state)
{
    check_counts(TLS1_2_VERSION);
}

static void test_failure_reasons_from_error_codes(void **state)
{
    ERR_clear_error();
    unsigned long eof = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNEXPECTED_EOF_WHILE_READING);
    assert_true(tls_error_is_dirty_eof(eof));
    assert_false(tls_error_is_dirty_eof(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_NO_SHARED_CIPHER)));
    assert_false(tls_error_is_dirty_eof(0));

    assert_int_equal(tls_count_handshake_failure(NULL, eof), TLS_FAIL_CLOSED);
    assert_int_equal(tls_count_handshake_failure(NULL, 0), TLS_FAIL_CLOSED);
    /* libevent records SSL_ERROR_SYSCALL itself for a reset connection. */
    assert_int_equal(tls_count_handshake_failure(NULL, SSL_ERROR_SYSCALL), TLS_FAIL_CLOSED);
    assert_int_equal(tls_count_handshake_failure(
                         NULL, ERR_PACK(ERR_LIB_SSL, 0, SSL_R_TLSV1_ALERT_UNKNOWN_CA)),
                     TLS_FAIL_CERTIFICATE);
    assert_int_equal(tls_count_handshake_failure(
                         NULL, ERR_PACK(ERR_LIB_SSL, 0, SSL_R_BAD_PACKET_LENGTH)),
                     TLS_FAIL_OTHER);
    assert_string_equal(tls_failure_reason_name(TLS_FAIL_NO_SHARED_CIPHER), "no_shared_cipher");
    assert_string_equal(tls_failure_reason_name(TLS_FAIL_PROTOCOL_VERSION), "protocol_version");
    assert_string_equal(tls_failure_reason_name(TLS_FAIL_CERTIFICATE), "certificate");
    assert_string_equal(tls_failure_reason_name(TLS_FAIL_CLOSED), "closed");
    assert_string_equal(tls_failure_reason_name(TLS_FAIL_OTHER), "other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls11_client_is_refused_as_protocol_version),
        cmocka_unit_test(test_tls13_minimum_refuses_tls12),
        cmocka_unit_test(test_tls12_and_tls13_both_accepted_by_default),
        cmocka_unit_test(test_client_cipher_order_wins),
        cmocka_unit_test(test_weak_cipher_only_client_fails_as_no_shared_cipher),
        cmocka_unit_test(test_dhe_rsa_uses_ffdhe2048),
        cmocka_unit_test(test_only_modern_groups_offered),
        cmocka_unit_test(test_connections_release_idle_buffers_and_refuse_renegotiation),
        cmocka_unit_test(test_http_listener_selects_http11_or_nothing),
        cmocka_unit_test(test_server_order_wins_and_tcp_mismatch_is_fatal),
        cmocka_unit_test(test_tcp_listener_without_alpn_ignores_offers),
        cmocka_unit_test(test_ticket_resumes_across_reload_tls13),
        cmocka_unit_test(test_ticket_resumes_across_reload_tls12),
        cmocka_unit_test(test_ticket_of_another_listener_does_not_resume),
        cmocka_unit_test(test_rotation_keeps_previous_key_for_one_period),
        cmocka_unit_test(test_session_cache_resumes_without_tickets),
        cmocka_unit_test(test_no_cache_and_no_tickets_never_resumes),
        cmocka_unit_test(test_orderly_close_keeps_session_in_cache),
        cmocka_unit_test(test_handshakes_and_resumptions_counted_once_tls13),
        cmocka_unit_test(test_handshakes_and_resumptions_counted_once_tls12),
        cmocka_unit_test(test_failure_reasons_from_error_codes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

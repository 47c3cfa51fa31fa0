/* OCSP stapling: the response of the certificate actually served is stapled; bad
 * response files are build errors naming the file; stale ones are warnings. */
#include <openssl/ocsp.h>

#include "test_tls_support.h"

static struct tt_pki pki;

static void write_der(const char *file, OCSP_RESPONSE *resp)
{
    unsigned char *der = NULL;
    int len = i2d_OCSP_RESPONSE(resp, &der);
    assert_true(len > 0);
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(der, 1, (size_t)len, f), len);
    fclose(f);
    OPENSSL_free(der);
}

/* Writes a response signed by the CA about `leaf`. */
static void write_response(const char *file, X509 *leaf, int status, long this_days,
                           long next_days)
{
    OCSP_BASICRESP *basic = OCSP_BASICRESP_new();
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, pki.ca);
    ASN1_TIME *this_update = X509_gmtime_adj(NULL, this_days * 86400);
    ASN1_TIME *next_update = X509_gmtime_adj(NULL, next_days * 86400);
    ASN1_TIME *revoked_at = X509_gmtime_adj(NULL, -86400);
    assert_non_null(OCSP_basic_add1_status(basic, id, status, OCSP_REVOKED_STATUS_KEYCOMPROMISE,
                                           revoked_at, this_update, next_update));
    assert_int_equal(OCSP_basic_sign(basic, pki.ca, pki.ca_key, EVP_sha256(), NULL, 0), 1);
    OCSP_RESPONSE *resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic);
    write_der(file, resp);
    OCSP_RESPONSE_free(resp);
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(basic);
    ASN1_TIME_free(this_update);
    ASN1_TIME_free(next_update);
    ASN1_TIME_free(revoked_at);
}

static int setup(void **state)
{
    tt_pki_open(&pki);
    X509 *ec = tt_issue_with("c-ec", tt_key_ec(), "c-ec", "DNS:c.test", pki.ca, pki.ca_key,
                             -1, 365, true);
    X509 *rsa = tt_issue_with("c-rsa", tt_key_rsa(), "c-rsa", "DNS:c.test", pki.ca,
                              pki.ca_key, -1, 365, true);
    tt_issue(&pki, "a", tt_key_ec(), "a.test", "DNS:a.test");
    write_response("ec.der", ec, V_OCSP_CERTSTATUS_GOOD, -1, 7);
    write_response("rsa.der", rsa, V_OCSP_CERTSTATUS_GOOD, -1, 7);
    write_response("stale.der", ec, V_OCSP_CERTSTATUS_GOOD, -10, -3);
    write_response("revoked.der", ec, V_OCSP_CERTSTATUS_REVOKED, -1, 7);

    OCSP_RESPONSE *later = OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, NULL);
    write_der("trylater.der", later);
    OCSP_RESPONSE_free(later);
    tt_write_text("garbage.der", "not DER at all");
    X509_free(ec);
    X509_free(rsa);
    return 0;
}

static int teardown(void **state)
{
    tt_pki_close(&pki);
    return 0;
}

/* c-rsa (+ rsa.der) and c-ec (+ ec.der) for c.test, then a.test without a staple. */
static struct cfg_listener_tls *stapling_listener(struct tt_listener *l)
{
    struct cfg_listener_tls *cfg = tt_listener(l, 3, "c-rsa", "c-ec", "a");
    l->certs[0].ocsp_response = (char *)"rsa.der";
    l->certs[1].ocsp_response = (char *)"ec.der";
    return cfg;
}

/* Bytes stapled in a handshake (length, or -1 for none) copied to buf. */
static long stapled(struct tls_server *srv, const char *sni, const char *sigalgs,
                    bool ask, int version, unsigned char *buf, size_t size)
{
    SSL_CTX *cctx = tt_client_ctx("ca.crt");
    SSL_CTX_set_max_proto_version(cctx, version);
    SSL *client = tt_client(cctx, sni), *server = tls_server_ssl_new(srv);
    if (sigalgs != NULL)
        assert_int_equal(SSL_set1_sigalgs_list(client, sigalgs), 1);
    if (ask)
        assert_int_equal(SSL_set_tlsext_status_type(client, TLSEXT_STATUSTYPE_ocsp), 1);
    assert_true(tt_handshake(client, server));
    const unsigned char *resp = NULL;
    long len = SSL_get_tlsext_status_ocsp_resp(client, &resp);
    if (len > 0) {
        assert_true((size_t)len <= size);
        memcpy(buf, resp, (size_t)len);
    }
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    return len;
}

static bool same_as_file(const unsigned char *got, long len, const char *file)
{
    unsigned char want[8192];
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    size_t n = fread(want, 1, sizeof want, f);
    fclose(f);
    return len == (long)n && memcmp(got, want, n) == 0;
}

#define RSA_ONLY "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:RSA+SHA256"

static void check_staples(int version)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(stapling_listener(&l), NULL);
    unsigned char buf[8192];

    long len = stapled(srv, "c.test", NULL, true, version, buf, sizeof buf);
    assert_true(same_as_file(buf, len, "ec.der"));
    len = stapled(srv, "c.test", RSA_ONLY, true, version, buf, sizeof buf);
    assert_true(same_as_file(buf, len, "rsa.der"));
    tls_server_free(srv);
}

static void test_served_certificate_gets_its_own_staple_tls13(void **state)
{
    check_staples(TLS1_3_VERSION);
}

static void test_served_certificate_gets_its_own_staple_tls12(void **state)
{
    check_staples(TLS1_2_VERSION);
}

static void test_no_staple_unless_asked_or_available(void **state)
{
    struct tt_listener l;
    struct tls_server *srv = tt_server(stapling_listener(&l), NULL);
    unsigned char buf[8192];

    assert_int_equal(stapled(srv, "c.test", NULL, false, TLS1_3_VERSION, buf, sizeof buf), -1);
    assert_int_equal(stapled(srv, "a.test", NULL, true, TLS1_3_VERSION, buf, sizeof buf), -1);
    tls_server_free(srv);
}

static void expect_ocsp_error(const char *file, const char *what)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 2, "a", "c-ec");
    l.certs[1].ocsp_response = (char *)file;
    struct err err = { "" };
    assert_null(tls_server_new(cfg, MODE_HTTP, NULL, "listeners.t.tls", NULL, NULL, &err));
    char prefix[128];
    snprintf(prefix, sizeof prefix, "listeners.t.tls.certificates[1].ocsp_response: %s: ",
             file);
    if (strstr(err.msg, prefix) == NULL || strstr(err.msg, what) == NULL)
        fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err.msg, prefix, what);
}

static void test_bad_response_files_are_errors(void **state)
{
    expect_ocsp_error("missing.der", "cannot open");
    expect_ocsp_error("garbage.der", "not a DER OCSP response");
    expect_ocsp_error("c-ec.crt", "not a DER OCSP response");
    expect_ocsp_error("trylater.der", "trylater");
    expect_ocsp_error("rsa.der", "not about this certificate");
}

static void test_stale_response_is_a_warning_and_not_stapled(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "c-ec");
    l.certs[0].ocsp_response = (char *)"stale.der";
    struct tt_warnings w = { "", 0 };
    struct err err = { "" };
    struct tls_server *srv = tls_server_new(cfg, MODE_HTTP, NULL, "listeners.t.tls",
                                            tt_warn, &w, &err);
    assert_non_null(srv);
    assert_int_equal(w.count, 1);
    assert_non_null(strstr(w.text, "certificates[0].ocsp_response: stale.der: "
                                   "response is outside its validity period"));
    unsigned char buf[8192];
    assert_int_equal(stapled(srv, "c.test", NULL, true, TLS1_3_VERSION, buf, sizeof buf), -1);
    tls_server_free(srv);
}

static void test_revoked_response_is_stapled_with_a_warning(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "c-ec");
    l.certs[0].ocsp_response = (char *)"revoked.der";
    struct tt_warnings w = { "", 0 };
    struct err err = { "" };
    struct tls_server *srv = tls_server_new(cfg, MODE_HTTP, NULL, "listeners.t.tls",
                                            tt_warn, &w, &err);
    assert_non_null(srv);
    assert_non_null(strstr(w.text, "REVOKED"));
    unsigned char buf[8192];
    long len = stapled(srv, "c.test", NULL, true, TLS1_3_VERSION, buf, sizeof buf);
    assert_true(same_as_file(buf, len, "revoked.der"));
    tls_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_served_certificate_gets_its_own_staple_tls13),
        cmocka_unit_test(test_served_certificate_gets_its_own_staple_tls12),
        cmocka_unit_test(test_no_staple_unless_asked_or_available),
        cmocka_unit_test(test_bad_response_files_are_errors),
        cmocka_unit_test(test_stale_response_is_a_warning_and_not_stapled),
        cmocka_unit_test(test_revoked_response_is_stapled_with_a_warning),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

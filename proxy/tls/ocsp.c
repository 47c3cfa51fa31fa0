/* OCSP stapling. The response file (DER, as `openssl ocsp -respout` writes it) is read
 * and checked once when the generation is built; a reload reads it again. During a
 * handshake the status callback only copies bytes. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "tls/internal.h"

/* Clock skew allowed between us and the responder, in seconds. */
#define OCSP_SKEW_S 300

static void say(tls_warn_fn *warn, void *warn_arg, const char *field, const char *file,
                const char *what)
{
    if (warn == NULL)
        return;
    char msg[TLS_PATH_MAX + 512];
    snprintf(msg, sizeof msg, "%s: %s: %s", field, file, what);
    warn(warn_arg, msg);
}

static X509 *find_issuer(const struct tls_cert *c)
{
    for (int i = 0; i < sk_X509_num(c->chain); i++) {
        X509 *candidate = sk_X509_value(c->chain, i);
        if (X509_check_issued(candidate, c->leaf) == X509_V_OK)
            return candidate;
    }
    return NULL;
}

/* Checks that `basic` speaks about c's certificate and is current. Returns 1 to
 * staple, 0 to skip it (stale: warned), -1 on a fatal mismatch (*err set). */
static int check_single(const struct tls_cert *c, OCSP_BASICRESP *basic,
                        const char *field, const char *file, tls_warn_fn *warn,
                        void *warn_arg, struct err *err)
{
    X509 *issuer = find_issuer(c);
    if (issuer == NULL) {
        say(warn, warn_arg, field, file,
            "issuer not in the certificate chain, cannot check that the response "
            "matches the certificate; stapling it as is");
        return 1;
    }
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, c->leaf, issuer);
    if (id == NULL)
        return err_set_ssl(err, "%s: %s: cannot compute certificate id", field, file);
    int status, reason;
    ASN1_GENERALIZEDTIME *revoked, *this_update, *next_update;
    int found = OCSP_resp_find_status(basic, id, &status, &reason, &revoked,
                                      &this_update, &next_update);
    OCSP_CERTID_free(id);
    if (found != 1)
        return err_set(err, "%s: %s: response is not about this certificate", field, file);
    if (OCSP_check_validity(this_update, next_update, OCSP_SKEW_S, -1) != 1) {
        ERR_clear_error();
        /* A stale staple makes strict (must-staple) clients fail; none is better. */
        say(warn, warn_arg, field, file, "response is outside its validity period; "
            "not stapling it (refresh the file and reload)");
        return 0;
    }
    if (status == V_OCSP_CERTSTATUS_REVOKED)
        say(warn, warn_arg, field, file, "the responder says this certificate is REVOKED");
    return 1;
}

int tls_ocsp_load(struct tls_cert *c, const char *file, const char *field,
                  tls_warn_fn *warn, void *warn_arg, struct err *err)
{
    unsigned char *der;
    size_t len;
    if (tls_read_file(field, file, &der, &len, err) < 0)
        return -1;

    int rc = -1;
    OCSP_BASICRESP *basic = NULL;
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (resp == NULL || p != der + len) {
        err_set_ssl(err, "%s: %s: not a DER OCSP response", field, file);
        goto done;
    }
    int status = OCSP_response_status(resp);
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        err_set(err, "%s: %s: OCSP response status is \"%s\", not successful", field,
                file, OCSP_response_status_str(status));
        goto done;
    }
    basic = OCSP_response_get1_basic(resp);
    if (basic == NULL) {
        err_set_ssl(err, "%s: %s: not a basic OCSP response", field, file);
        goto done;
    }
    int usable = check_single(c, basic, field, file, warn, warn_arg, err);
    if (usable < 0)
        goto done;
    if (usable == 1) {
        c->ocsp_der = der;
        c->ocsp_len = len;
        der = NULL;
    }
    rc = 0;

done:
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    OPENSSL_free(der);
    return rc;
}

int tls_ocsp_status_cb(SSL *ssl, void *arg)
{
    const struct tls_server_state *st = arg;
    /* OpenSSL has already chosen between the RSA and ECDSA certificates here and
     * made the chosen one current. */
    X509 *served = SSL_get_certificate(ssl);
    if (served == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    for (size_t i = 0; i < st->n_staples; i++) {
        const struct tls_staple *s = &st->staples[i];
        if (s->cert != served && X509_cmp(s->cert, served) != 0)
            continue;
        unsigned char *copy = OPENSSL_memdup(s->der, s->len);
        if (copy == NULL)
            return SSL_TLSEXT_ERR_NOACK;
        /* OpenSSL takes ownership of the copy. */
        if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)s->len) != 1) {
            OPENSSL_free(copy);
            return SSL_TLSEXT_ERR_NOACK;
        }
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

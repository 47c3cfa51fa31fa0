/* Client certificates (mTLS) on listeners. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls/internal.h"

int tls_mtls_read_ca(const struct cfg_listener_tls *cfg, const char *path,
                     unsigned char **pem, size_t *len, struct err *err)
{
    *pem = NULL;
    *len = 0;
    if (cfg->verify_client == VERIFY_CLIENT_OFF)
        return 0;
    if (cfg->client_ca == NULL)
        return err_set(err, "%s.verify_client: needs client_ca (the CA that issues "
                       "client certificates)", path);
    char field[TLS_PATH_MAX];
    snprintf(field, sizeof field, "%s.client_ca", path);
    return tls_read_file(field, cfg->client_ca, pem, len, err);
}

static bool has_name(STACK_OF(X509_NAME) *names, const X509_NAME *name)
{
    for (int i = 0; i < sk_X509_NAME_num(names); i++)
        if (X509_NAME_cmp(sk_X509_NAME_value(names, i), name) == 0)
            return true;
    return false;
}

/* One PEM entry: a certificate (and/or CRL) into the trust store, which verifies the
 * chains clients send, and a new subject into `names`, which tells clients which
 * certificate to pick. 1: a certificate was added, 0: none in it, -1: no memory. */
static int add_entry(X509_STORE *store, STACK_OF(X509_NAME) *names, const X509_INFO *info)
{
    if (info->crl != NULL && X509_STORE_add_crl(store, info->crl) != 1)
        return -1;
    if (info->x509 == NULL)
        return 0;
    if (X509_STORE_add_cert(store, info->x509) != 1)
        return -1;
    const X509_NAME *subject = X509_get_subject_name(info->x509);
    if (has_name(names, subject))
        return 1;
    X509_NAME *copy = X509_NAME_dup(subject);
    if (copy == NULL || sk_X509_NAME_push(names, copy) <= 0) {
        X509_NAME_free(copy);
        return -1;
    }
    return 1;
}

/* What SSL_CTX_load_verify_file and SSL_load_client_CA_file do with the file, but
 * from the bytes that were hashed into the session-id context, so the trust a
 * session was verified under is exactly what its context names. Returns the number
 * of certificates added, -1 when out of memory. */
static int add_cas(X509_STORE *store, STACK_OF(X509_NAME) *names,
                   const unsigned char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    int n_certs = 0;
    for (int i = 0; i < sk_X509_INFO_num(infos) && n_certs >= 0; i++) {
        int added = add_entry(store, names, sk_X509_INFO_value(infos, i));
        n_certs = added < 0 ? -1 : n_certs + added;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    return n_certs;
}

int tls_mtls_setup(SSL_CTX *ctx, const struct cfg_listener_tls *cfg,
                   const unsigned char *ca_pem, size_t ca_len, const char *path,
                   struct err *err)
{
    if (cfg->verify_client == VERIFY_CLIENT_OFF)
        return 0;
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    if (names == NULL)
        return err_set(err, "%s.client_ca: out of memory", path);
    ERR_clear_error();
    int n_certs = add_cas(SSL_CTX_get_cert_store(ctx), names, ca_pem, ca_len);
    if (n_certs <= 0) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        if (n_certs < 0)
            return err_set_ssl(err, "%s.client_ca: out of memory", path);
        return err_set_ssl(err, "%s.client_ca: %s: no PEM CA certificate found", path,
                           cfg->client_ca);
    }
    SSL_CTX_set_client_CA_list(ctx, names);     /* the context owns names */

    int mode = SSL_VERIFY_PEER;
    if (cfg->verify_client == VERIFY_CLIENT_REQUIRED)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    return 0;
}

int tls_peer_subject(const SSL *ssl, char *buf, size_t len)
{
    if (ssl == NULL || buf == NULL || len == 0)
        return -1;
    /* A resumed session carries the peer certificate and the verify result of the
     * full handshake that created it. */
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return -1;

    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return -1;
    int rc = -1;
    /* XN_FLAG_RFC2253 escapes control and non-ASCII bytes, so the result is one
     * printable line. */
    if (X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) < 0)
        goto done;
    char *text;
    long n = BIO_get_mem_data(bio, &text);
    if (n < 0 || (size_t)n >= len)
        goto done;
    for (long i = 0; i < n; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            goto done;
    memcpy(buf, text, (size_t)n);
    buf[n] = '\0';
    rc = (int)n;

done:
    BIO_free(bio);
    return rc;
}

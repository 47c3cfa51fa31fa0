/* Client certificates (mTLS) on listeners. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "tls/internal.h"

int tls_mtls_setup(SSL_CTX *ctx, const struct cfg_listener_tls *cfg, const char *path,
                   struct err *err)
{
    char field[TLS_PATH_MAX];
    snprintf(field, sizeof field, "%s.client_ca", path);
    if (cfg->verify_client == VERIFY_CLIENT_OFF)
        return 0;
    if (cfg->client_ca == NULL)
        return err_set(err, "%s.verify_client: needs client_ca (the CA that issues "
                       "client certificates)", path);

    /* Read it once ourselves for a precise "cannot open" message. */
    unsigned char *data;
    size_t len;
    if (tls_read_file(field, cfg->client_ca, &data, &len, err) < 0)
        return -1;
    OPENSSL_free(data);

    ERR_clear_error();
    /* The trust store verifies the chains clients send... */
    if (SSL_CTX_load_verify_file(ctx, cfg->client_ca) != 1)
        return err_set_ssl(err, "%s: %s: no PEM CA certificate found", field,
                           cfg->client_ca);
    /* ...and the names tell clients which certificate to pick. */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca);
    if (names == NULL || sk_X509_NAME_num(names) == 0) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return err_set_ssl(err, "%s: %s: no PEM CA certificate found", field,
                           cfg->client_ca);
    }
    SSL_CTX_set_client_CA_list(ctx, names);

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

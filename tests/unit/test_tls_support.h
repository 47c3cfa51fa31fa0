/* Shared by tests/unit/test_tls_*.c: a throw-away PKI generated with the OpenSSL API
 * in a temporary directory (the test process chdir()s into it, so configs name
 * files like "a.crt"), config builders, and an in-memory handshake over a BIO pair.
 * Everything is static inline so each test uses what it needs without warnings. */
#ifndef FERRY_TEST_TLS_SUPPORT_H
#define FERRY_TEST_TLS_SUPPORT_H

#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"

/* ---- files --------------------------------------------------------------------------- */

struct tt_pki {
    char dir[64];
    char old_cwd[PATH_MAX];
    EVP_PKEY *ca_key;           /* issues every certificate below */
    X509 *ca;
    EVP_PKEY *other_ca_key;     /* an unrelated CA: "wrong CA" cases */
    X509 *other_ca;
};

static inline int tt_remove_entry(const char *path, const struct stat *sb, int flag,
                                  struct FTW *ftw)
{
    return remove(path);
}

static inline void tt_write_pem(const char *file, X509 *leaf, X509 *chain)
{
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, leaf), 1);
    if (chain != NULL)
        assert_int_equal(PEM_write_X509(f, chain), 1);
    fclose(f);
}

static inline void tt_write_key(const char *file, EVP_PKEY *key)
{
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static inline void tt_write_text(const char *file, const char *text)
{
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- certificates ---------------------------------------------------------------------- */

static inline EVP_PKEY *tt_key_ec(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static inline EVP_PKEY *tt_key_rsa(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    assert_non_null(k);
    return k;
}

static inline void tt_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for `key` with subject O=ferry test, CN=cn; san like
 * "DNS:a.test,IP:127.0.0.1" or NULL; signed by issuer/issuer_key, or self-signed
 * when issuer is NULL. Valid from now+from_days to now+to_days. */
static inline X509 *tt_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
                            EVP_PKEY *issuer_key, bool is_ca, long from_days, long to_days)
{
    static long serial = 1000;
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"ferry test",
                               -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);

    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    tt_add_ext(x, &v3, NID_subject_key_identifier, "hash");
    if (issuer != NULL)
        tt_add_ext(x, &v3, NID_authority_key_identifier, "keyid:always");
    if (is_ca) {
        tt_add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE");
        tt_add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        tt_add_ext(x, &v3, NID_basic_constraints, "CA:FALSE");
        tt_add_ext(x, &v3, NID_ext_key_usage, "serverAuth,clientAuth");
    }
    if (san != NULL)
        tt_add_ext(x, &v3, NID_subject_alt_name, san);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

/* Writes NAME.crt (leaf + CA) and NAME.key for a leaf issued by `issuer`. Returns
 * the leaf (owned by the caller) when keep is true. */
static inline X509 *tt_issue_with(const char *name, EVP_PKEY *key, const char *cn,
                                  const char *san, X509 *issuer, EVP_PKEY *issuer_key,
                                  long from_days, long to_days, bool keep)
{
    char crt[128], pem[128];
    X509 *leaf = tt_cert(key, cn, san, issuer, issuer_key, false, from_days, to_days);
    snprintf(crt, sizeof crt, "%s.crt", name);
    snprintf(pem, sizeof pem, "%s.key", name);
    tt_write_pem(crt, leaf, issuer);
    tt_write_key(pem, key);
    EVP_PKEY_free(key);
    if (keep)
        return leaf;
    X509_free(leaf);
    return NULL;
}

static inline void tt_issue(struct tt_pki *p, const char *name, EVP_PKEY *key,
                            const char *cn, const char *san)
{
    tt_issue_with(name, key, cn, san, p->ca, p->ca_key, -1, 365, false);
}

/* Creates the directory, the two CAs (ca.crt, other-ca.crt) and chdir()s there. */
static inline void tt_pki_open(struct tt_pki *p)
{
    memset(p, 0, sizeof *p);
    strcpy(p->dir, "/tmp/ferry-tls-test-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    assert_non_null(getcwd(p->old_cwd, sizeof p->old_cwd));
    assert_int_equal(chdir(p->dir), 0);
    p->ca_key = tt_key_ec();
    p->ca = tt_cert(p->ca_key, "ferry test CA", NULL, NULL, NULL, true, -1, 3650);
    tt_write_pem("ca.crt", p->ca, NULL);
    p->other_ca_key = tt_key_ec();
    p->other_ca = tt_cert(p->other_ca_key, "other CA", NULL, NULL, NULL, true, -1, 3650);
    tt_write_pem("other-ca.crt", p->other_ca, NULL);
}

static inline void tt_pki_close(struct tt_pki *p)
{
    assert_int_equal(chdir(p->old_cwd), 0);
    nftw(p->dir, tt_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    EVP_PKEY_free(p->ca_key);
    X509_free(p->ca);
    EVP_PKEY_free(p->other_ca_key);
    X509_free(p->other_ca);
}

/* ---- listener config ------------------------------------------------------------------- */

struct tt_listener {
    struct cfg_tls_certificate certs[8];
    char *alpn[4];
    struct cfg_listener_tls tls;
};

/* Defaults as config_load would produce them for an http listener. */
static inline struct cfg_listener_tls *tt_listener(struct tt_listener *l, size_t n, ...)
{
    memset(l, 0, sizeof *l);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        const char *name = va_arg(ap, const char *);
        static char files[64][2][64];
        static size_t next;
        char (*slot)[64] = files[next++ % 64];
        snprintf(slot[0], 64, "%s.crt", name);
        snprintf(slot[1], 64, "%s.key", name);
        l->certs[i].cert = slot[0];
        l->certs[i].key = slot[1];
    }
    va_end(ap);
    l->alpn[0] = (char *)"http/1.1";
    l->tls.certificates = l->certs;
    l->tls.n_certificates = n;
    l->tls.min_version = TLS_MIN_1_2;
    l->tls.alpn = l->alpn;
    l->tls.n_alpn = 1;
    l->tls.verify_client = VERIFY_CLIENT_OFF;
    l->tls.session_tickets = true;
    l->tls.session_cache = 1024;
    return &l->tls;
}

struct tt_warnings {
    char text[2048];
    int count;
};

static inline void tt_warn(void *arg, const char *msg)
{
    struct tt_warnings *w = arg;
    size_t used = strlen(w->text);
    snprintf(w->text + used, sizeof w->text - used, "%s\n", msg);
    w->count++;
}

static inline struct tls_server *tt_server(const struct cfg_listener_tls *cfg,
                                           struct tls_ticket_keys *keys)
{
    struct err err = { "" };
    struct tls_server *srv = tls_server_new(cfg, MODE_HTTP, keys, "listeners.t.tls",
                                            NULL, NULL, &err);
    if (srv == NULL)
        fail_msg("tls_server_new: %s", err.msg);
    return srv;
}

/* ---- handshakes -------------------------------------------------------------------------- */

static inline SSL_CTX *tt_client_ctx(const char *ca_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    if (ca_file != NULL) {
        assert_int_equal(SSL_CTX_load_verify_file(ctx, ca_file), 1);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}

static inline SSL *tt_client(SSL_CTX *ctx, const char *sni)
{
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    if (sni != NULL)
        assert_int_equal(SSL_set_tlsext_host_name(ssl, sni), 1);
    return ssl;
}

static inline bool tt_step(SSL *ssl, bool *done, unsigned long *error)
{
    if (*done)
        return true;
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
        *done = true;
        return true;
    }
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return true;
    if (error != NULL)
        *error = ERR_peek_error();
    ERR_clear_error();
    return false;
}

/* Connects client and server through a BIO pair and drives both handshakes. True
 * when both completed. *server_error (may be NULL) receives the server's OpenSSL
 * error when the server side failed, 0 otherwise. */
static inline bool tt_handshake_err(SSL *client, SSL *server, unsigned long *server_error)
{
    BIO *cbio = NULL, *sbio = NULL;
    assert_int_equal(BIO_new_bio_pair(&cbio, 0, &sbio, 0), 1);
    SSL_set_bio(client, cbio, cbio);
    SSL_set_bio(server, sbio, sbio);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    if (server_error != NULL)
        *server_error = 0;
    bool cdone = false, sdone = false;
    for (int i = 0; i < 50 && !(cdone && sdone); i++) {
        if (!tt_step(client, &cdone, NULL))
            return false;
        if (!tt_step(server, &sdone, server_error))
            return false;
    }
    return cdone && sdone;
}

static inline bool tt_handshake(SSL *client, SSL *server)
{
    return tt_handshake_err(client, server, NULL);
}

/* Lets the client read what followed the handshake (TLS 1.3 session tickets). */
static inline void tt_client_read_pending(SSL *client)
{
    char byte;
    ERR_clear_error();
    int r = SSL_read(client, &byte, 1);
    assert_true(r <= 0);
    assert_int_equal(SSL_get_error(client, r), SSL_ERROR_WANT_READ);
}

/* Ends a connection the way the daemon does on an orderly close. */
static inline void tt_close(SSL *ssl)
{
    tls_close_notify(ssl);
    SSL_free(ssl);
}

/* ---- resumption --------------------------------------------------------------------- */

/* The session (with its ticket, when the server issues them) of a full handshake with
 * srv, without SNI. Owned by the caller. */
static inline SSL_SESSION *tt_new_session(struct tls_server *srv, SSL_CTX *cctx)
{
    SSL *client = tt_client(cctx, NULL), *server = tls_server_ssl_new(srv);
    assert_true(tt_handshake(client, server));
    assert_false(SSL_session_reused(client));
    tt_client_read_pending(client);     /* TLS 1.3 tickets arrive after the handshake */
    SSL_SESSION *session = SSL_get1_session(client);
    assert_non_null(session);
    tt_close(client);
    tt_close(server);
    return session;
}

/* Whether a handshake with srv resumes `session`. `renewed` (may be NULL) receives
 * the session the client holds afterwards (owned by the caller). */
static inline bool tt_resumes_renewed(struct tls_server *srv, SSL_CTX *cctx,
                                      SSL_SESSION *session, SSL_SESSION **renewed)
{
    SSL *client = tt_client(cctx, NULL), *server = tls_server_ssl_new(srv);
    assert_int_equal(SSL_set_session(client, session), 1);
    assert_true(tt_handshake(client, server));
    tt_client_read_pending(client);
    bool reused = SSL_session_reused(client);
    assert_int_equal(reused, SSL_session_reused(server));
    if (renewed != NULL)
        *renewed = SSL_get1_session(client);
    tt_close(client);
    tt_close(server);
    return reused;
}

static inline bool tt_resumes(struct tls_server *srv, SSL_CTX *cctx, SSL_SESSION *session)
{
    return tt_resumes_renewed(srv, cctx, session, NULL);
}

/* CN of the certificate the server presented to `client`. */
static inline const char *tt_served_cn(SSL *client, char *buf, size_t len)
{
    X509 *peer = SSL_get0_peer_certificate(client);
    assert_non_null(peer);
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
                                          buf, (int)len) > 0);
    return buf;
}

static inline int tt_served_key_type(SSL *client)
{
    X509 *peer = SSL_get0_peer_certificate(client);
    assert_non_null(peer);
    return EVP_PKEY_get_id(X509_get0_pubkey(peer));
}

#endif

/* Loading one certificates[] entry: read the files ourselves (so an unreadable file,
 * a file in the wrong format and a key that does not match are three different,
 * precise messages), extract the names SNI matches against, warn about validity. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/internal.h"

/* Certificate chains and OCSP responses are a few KiB; anything this big is a
 * mistake (a wrong path), not a certificate. */
#define MAX_FILE_BYTES (1024 * 1024)

int tls_read_file(const char *field, const char *file, unsigned char **out, size_t *len,
                  struct err *err)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return err_set(err, "%s: %s: cannot open: %s", field, file, strerror(errno));

    unsigned char *buf = OPENSSL_malloc(MAX_FILE_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        return err_set(err, "%s: %s: out of memory", field, file);
    }
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    if (read_errno != 0) {
        OPENSSL_free(buf);
        return err_set(err, "%s: %s: cannot read: %s", field, file, strerror(read_errno));
    }
    if (n > MAX_FILE_BYTES) {
        OPENSSL_free(buf);
        return err_set(err, "%s: %s: larger than %d bytes", field, file, MAX_FILE_BYTES);
    }
    if (n == 0) {
        OPENSSL_free(buf);
        return err_set(err, "%s: %s: file is empty", field, file);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The PEM loaders would prompt on the terminal for an encrypted key; a daemon
 * must fail instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    return -1;
}

static BIO *open_pem(const char *field, const char *file, struct err *err)
{
    unsigned char *data;
    size_t len;
    if (tls_read_file(field, file, &data, &len, err) < 0)
        return NULL;
    /* A memory BIO over a copy: the caller frees only the BIO. */
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || BIO_write(bio, data, (int)len) != (int)len) {
        BIO_free(bio);
        bio = NULL;
        err_set(err, "%s: %s: out of memory", field, file);
    }
    OPENSSL_free(data);
    return bio;
}

static int load_chain(struct tls_cert *c, const char *field, const char *file,
                      struct err *err)
{
    BIO *bio = open_pem(field, file, err);
    if (bio == NULL)
        return -1;
    ERR_clear_error();
    c->leaf = PEM_read_bio_X509_AUX(bio, NULL, no_passphrase, NULL);
    if (c->leaf == NULL) {
        BIO_free(bio);
        return err_set_ssl(err, "%s: %s: no PEM certificate found", field, file);
    }
    c->chain = sk_X509_new_null();
    if (c->chain == NULL)
        goto fail_alloc;
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
        if (x == NULL)
            break;
        if (!sk_X509_push(c->chain, x)) {
            X509_free(x);
            goto fail_alloc;
        }
    }
    /* The loop ends on "no start line" at end of file; anything else is a broken
     * certificate further down the chain. */
    unsigned long e = ERR_peek_last_error();
    if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        BIO_free(bio);
        return err_set_ssl(err, "%s: %s: malformed certificate after #%d in the chain",
                           field, file, sk_X509_num(c->chain) + 1);
    }
    ERR_clear_error();
    BIO_free(bio);
    return 0;

fail_alloc:
    BIO_free(bio);
    return err_set(err, "%s: %s: out of memory", field, file);
}

static int load_key(struct tls_cert *c, const char *field, const char *file,
                    const char *cert_file, struct err *err)
{
    BIO *bio = open_pem(field, file, err);
    if (bio == NULL)
        return -1;
    ERR_clear_error();
    c->key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (c->key == NULL)
        return err_set_ssl(err, "%s: %s: no usable PEM private key (encrypted keys are "
                           "not supported)", field, file);
    if (X509_check_private_key(c->leaf, c->key) != 1) {
        ERR_clear_error();
        return err_set(err, "%s: %s: key does not match certificate %s", field, file,
                       cert_file);
    }
    return 0;
}

/* ---- names ------------------------------------------------------------------------- */

static int add_name(struct tls_cert *c, const unsigned char *s, int len)
{
    /* An embedded NUL or an empty name would let "a.test\0.evil" match "a.test". */
    if (len <= 0 || memchr(s, 0, (size_t)len) != NULL)
        return 0;
    if (s[len - 1] == '.')
        len--;
    char *name = malloc((size_t)len + 1);
    if (name == NULL)
        return -1;
    for (int i = 0; i < len; i++)
        name[i] = (char)tolower(s[i]);
    name[len] = '\0';
    char **grown = realloc(c->names, (c->n_names + 1) * sizeof *grown);
    if (grown == NULL) {
        free(name);
        return -1;
    }
    c->names = grown;
    c->names[c->n_names++] = name;
    return 0;
}

static int add_san_names(struct tls_cert *c)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int i = 0; rc == 0 && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type == GEN_DNS)
            rc = add_name(c, ASN1_STRING_get0_data(gn->d.dNSName),
                          ASN1_STRING_length(gn->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
    return rc;
}

/* RFC 6125 §6.4.4: the CN counts only when there is no DNS SAN; the last CN is the
 * most specific one. */
static int add_cn_name(struct tls_cert *c)
{
    const X509_NAME *subject = X509_get_subject_name(c->leaf);
    int pos = -1, last = -1;
    while ((pos = X509_NAME_get_index_by_NID(subject, NID_commonName, pos)) >= 0)
        last = pos;
    if (last < 0)
        return 0;
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8,
        X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last)));
    if (len < 0)
        return 0;
    int rc = add_name(c, utf8, len);
    OPENSSL_free(utf8);
    return rc;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int extract_names(struct tls_cert *c)
{
    if (add_san_names(c) < 0)
        return -1;
    if (c->n_names == 0 && add_cn_name(c) < 0)
        return -1;
    qsort(c->names, c->n_names, sizeof *c->names, compare_names);
    size_t kept = 0;
    for (size_t i = 0; i < c->n_names; i++) {
        if (kept > 0 && strcmp(c->names[kept - 1], c->names[i]) == 0)
            free(c->names[i]);
        else
            c->names[kept++] = c->names[i];
    }
    c->n_names = kept;
    return 0;
}

bool tls_cert_same_names(const struct tls_cert *a, const struct tls_cert *b)
{
    if (a->n_names != b->n_names)
        return false;
    for (size_t i = 0; i < a->n_names; i++)
        if (strcmp(a->names[i], b->names[i]) != 0)
            return false;
    return true;
}

/* ---- validity ---------------------------------------------------------------------- */

static void warn_validity(const struct tls_cert *c, const char *field, const char *file,
                          tls_warn_fn *warn, void *warn_arg)
{
    if (warn == NULL)
        return;
    const char *problem = NULL;
    const ASN1_TIME *when = NULL;
    if (X509_cmp_current_time(X509_get0_notAfter(c->leaf)) < 0) {
        problem = "certificate expired on";
        when = X509_get0_notAfter(c->leaf);
    } else if (X509_cmp_current_time(X509_get0_notBefore(c->leaf)) > 0) {
        problem = "certificate is not valid before";
        when = X509_get0_notBefore(c->leaf);
    }
    if (problem == NULL)
        return;
    char date[64] = "?";
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio != NULL && ASN1_TIME_print(bio, when)) {
        int n = BIO_read(bio, date, (int)sizeof date - 1);
        date[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
    char msg[TLS_PATH_MAX + 512];
    snprintf(msg, sizeof msg, "%s: %s: %s %s; clients will reject it", field, file,
             problem, date);
    warn(warn_arg, msg);
}

/* ---- entry points ------------------------------------------------------------------ */

int tls_cert_load(struct tls_cert *c, const struct cfg_tls_certificate *cfg,
                  const char *path, tls_warn_fn *warn, void *warn_arg, struct err *err)
{
    memset(c, 0, sizeof *c);
    char cert_field[TLS_PATH_MAX], key_field[TLS_PATH_MAX], ocsp_field[TLS_PATH_MAX];
    snprintf(cert_field, sizeof cert_field, "%s.cert", path);
    snprintf(key_field, sizeof key_field, "%s.key", path);
    snprintf(ocsp_field, sizeof ocsp_field, "%s.ocsp_response", path);

    if (cfg->cert == NULL || cfg->key == NULL) {
        err_set(err, "%s: both cert and key are required", path);
        goto fail;
    }
    if (load_chain(c, cert_field, cfg->cert, err) < 0)
        goto fail;
    if (load_key(c, key_field, cfg->key, cfg->cert, err) < 0)
        goto fail;
    if (extract_names(c) < 0) {
        err_set(err, "%s: %s: out of memory", cert_field, cfg->cert);
        goto fail;
    }
    warn_validity(c, cert_field, cfg->cert, warn, warn_arg);
    if (cfg->ocsp_response != NULL
        && tls_ocsp_load(c, cfg->ocsp_response, ocsp_field, warn, warn_arg, err) < 0)
        goto fail;
    return 0;

fail:
    tls_cert_clear(c);
    return -1;
}

void tls_cert_clear(struct tls_cert *c)
{
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    EVP_PKEY_free(c->key);
    for (size_t i = 0; i < c->n_names; i++)
        free(c->names[i]);
    free(c->names);
    OPENSSL_free(c->ocsp_der);
    memset(c, 0, sizeof *c);
}

int tls_cert_install(SSL_CTX *ctx, const struct tls_cert *c, const char *path,
                     struct err *err)
{
    /* use_certificate selects the slot of the key type; set1_chain and
     * use_PrivateKey then apply to that slot, so an RSA and an ECDSA certificate
     * each keep their own chain and key in one SSL_CTX. */
    if (SSL_CTX_use_certificate(ctx, c->leaf) != 1
        || SSL_CTX_set1_chain(ctx, c->chain) != 1
        || SSL_CTX_use_PrivateKey(ctx, c->key) != 1
        || SSL_CTX_check_private_key(ctx) != 1)
        return err_set_ssl(err, "%s: cannot use this certificate", path);
    return 0;
}

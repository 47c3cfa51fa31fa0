/* tls_server: the SSL_CTXs of one TLS listener.
 *
 * One SSL_CTX per group of certificates that cover the same names; the first
 * certificate's group is the default context every connection starts on, and the
 * ClientHello callback (sni.c) moves a connection to another group's context by its
 * server name, before OpenSSL looks for a session to resume. Every context gets the
 * same policy, because after the switch OpenSSL reads some settings from the new
 * context (certificates, ALPN and status callbacks, trust store) and others from the
 * default one (options, versions, verify mode, session cache, ticket callback). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "tls/internal.h"

/* Mozilla server-side TLS guidelines v5.7, "intermediate". */
#define INTERMEDIATE_CIPHERS \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define INTERMEDIATE_CIPHERSUITES \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define INTERMEDIATE_GROUPS "X25519:P-256:P-384"

struct tls_server {
    SSL_CTX *ctx;               /* ref: the default context; owns the callback state */
};

/* Everything apply_policy needs besides the config. */
struct build {
    const struct cfg_listener_tls *cfg;
    const char *path;
    struct tls_ticket_keys *keys;       /* borrowed: the daemon's, or st->file_keys */
    struct tls_server_state *st;        /* the callbacks' argument */
    unsigned char *client_ca;           /* owned: client_ca's bytes, read once */
    size_t client_ca_len;
};

/* ---- policy ------------------------------------------------------------------------ */

/* OpenSSL silently skips unknown TLS 1.3 suite names, so check each one made it. */
static int check_ciphersuites(SSL_CTX *ctx, const char *list, const char *field,
                              struct err *err)
{
    STACK_OF(SSL_CIPHER) *have = SSL_CTX_get_ciphers(ctx);
    char *copy = OPENSSL_strdup(list), *save = NULL;
    if (copy == NULL)
        return err_set(err, "%s: out of memory", field);
    int rc = 0;
    for (char *name = strtok_r(copy, ":", &save); name != NULL && rc == 0;
         name = strtok_r(NULL, ":", &save)) {
        bool found = false;
        for (int i = 0; !found && i < sk_SSL_CIPHER_num(have); i++)
            found = strcmp(SSL_CIPHER_standard_name(sk_SSL_CIPHER_value(have, i)), name) == 0;
        if (!found)
            rc = err_set(err, "%s: unknown TLS 1.3 ciphersuite \"%s\"", field, name);
    }
    OPENSSL_free(copy);
    return rc;
}

static int set_ciphers(SSL_CTX *ctx, const struct build *b, struct err *err)
{
    char field[TLS_PATH_MAX];
    const char *ciphers = b->cfg->ciphers ? b->cfg->ciphers : INTERMEDIATE_CIPHERS;
    const char *suites = b->cfg->ciphersuites ? b->cfg->ciphersuites
                                              : INTERMEDIATE_CIPHERSUITES;
    snprintf(field, sizeof field, "%s.ciphers", b->path);
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
        return err_set_ssl(err, "%s: no usable cipher in \"%s\"", field, ciphers);
    snprintf(field, sizeof field, "%s.ciphersuites", b->path);
    if (SSL_CTX_set_ciphersuites(ctx, suites) != 1)
        return err_set_ssl(err, "%s: invalid list \"%s\"", field, suites);
    return check_ciphersuites(ctx, suites, field, err);
}

static int set_sessions(SSL_CTX *ctx, const struct build *b, struct err *err)
{
    if (SSL_CTX_set_session_id_context(ctx, b->st->sid_ctx, TLS_SID_CTX_LEN) != 1)
        return err_set_ssl(err, "%s: cannot set session id context", b->path);
    SSL_CTX_set_timeout(ctx, TLS_SESSION_LIFETIME_S);
    if (b->cfg->session_cache == 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, b->cfg->session_cache);
    }
    if (b->cfg->session_tickets && b->keys != NULL
        && tls_ticket_keys_install(ctx, b->keys) < 0)
        return err_set_ssl(err, "%s: cannot install session ticket keys", b->path);
    return 0;
}

/* DHE-RSA suites use the RFC 7919 group, as the guidelines say; OpenSSL's automatic
 * choice would be the older RFC 3526 prime (flagged by scanners as a common prime). */
static int set_dh_group(SSL_CTX *ctx, const char *path, struct err *err)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"ffdhe2048", 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *dh = NULL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
    int ok = pctx != NULL && EVP_PKEY_paramgen_init(pctx) > 0
             && EVP_PKEY_CTX_set_params(pctx, params) > 0
             && EVP_PKEY_paramgen(pctx, &dh) > 0
             && SSL_CTX_set0_tmp_dh_pkey(ctx, dh) == 1;
    EVP_PKEY_CTX_free(pctx);
    if (!ok) {
        EVP_PKEY_free(dh);
        return err_set_ssl(err, "%s: cannot set up the ffdhe2048 DH group", path);
    }
    return 0;   /* the context owns dh */
}

static int apply_policy(SSL_CTX *ctx, const struct build *b, struct err *err)
{
    if (SSL_CTX_set_min_proto_version(ctx, (int)b->cfg->min_version) != 1)
        return err_set_ssl(err, "%s.min_version: not supported", b->path);
    uint64_t options = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                     | SSL_OP_IGNORE_UNEXPECTED_EOF;
#ifdef SSL_OP_NO_CLIENT_RENEGOTIATION
    options |= SSL_OP_NO_CLIENT_RENEGOTIATION;
#endif
    if (!b->cfg->session_tickets)
        options |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(ctx, options);
    /* Mozilla intermediate: every listed cipher is strong, so let the client pick
     * (it knows whether it has AES hardware). */
    SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle keep-alive connections give their ~34 KiB of record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

    if (set_ciphers(ctx, b, err) < 0)
        return -1;
    if (SSL_CTX_set1_groups_list(ctx, INTERMEDIATE_GROUPS) != 1)
        return err_set_ssl(err, "%s: cannot set key exchange groups", b->path);
    if (set_dh_group(ctx, b->path, err) < 0 || set_sessions(ctx, b, err) < 0)
        return -1;
    if (tls_mtls_setup(ctx, b->cfg, b->client_ca, b->client_ca_len, b->path, err) < 0)
        return -1;
    SSL_CTX_set_info_callback(ctx, tls_stats_server_info_cb);
    return 0;
}

/* ---- ALPN ---------------------------------------------------------------------------- */

static int build_alpn(struct tls_server_state *st, const struct cfg_listener_tls *cfg,
                      const char *path, struct err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < cfg->n_alpn; i++) {
        size_t n = strlen(cfg->alpn[i]);
        if (n == 0 || n > 255)
            return err_set(err, "%s.alpn[%zu]: a protocol name is 1 to 255 bytes", path, i);
        total += 1 + n;
    }
    if (total == 0)
        return 0;
    st->alpn = malloc(total);
    if (st->alpn == NULL)
        return err_set(err, "%s.alpn: out of memory", path);
    for (size_t i = 0; i < cfg->n_alpn; i++) {
        size_t n = strlen(cfg->alpn[i]);
        st->alpn[st->alpn_len++] = (unsigned char)n;
        memcpy(st->alpn + st->alpn_len, cfg->alpn[i], n);
        st->alpn_len += n;
    }
    return 0;
}

/* The client's list (wire format, validated by OpenSSL) searched for `proto`. */
static const unsigned char *offered(const unsigned char *in, unsigned in_len,
                                    const unsigned char *proto, unsigned len)
{
    for (unsigned i = 0; i < in_len && i + 1 + in[i] <= in_len; i += 1u + in[i])
        if (in[i] == len && memcmp(in + i + 1, proto, len) == 0)
            return in + i + 1;
    return NULL;
}

/* Our order wins: the first protocol of the listener's list the client offered. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *out_len,
                       const unsigned char *in, unsigned in_len, void *arg)
{
    const struct tls_server_state *st = arg;
    for (size_t i = 0; i < st->alpn_len; i += 1u + st->alpn[i]) {
        const unsigned char *hit = offered(in, in_len, st->alpn + i + 1, st->alpn[i]);
        if (hit != NULL) {
            *out = hit;
            *out_len = st->alpn[i];
            return SSL_TLSEXT_ERR_OK;
        }
    }
    /* An http listener serves HTTP/1.x to anyone (a client offering only h2 falls
     * back to HTTP/1.1); a tcp listener must not pretend to speak what it relays
     * to nobody (RFC 7301 §3.2). */
    return st->mode == MODE_HTTP ? SSL_TLSEXT_ERR_NOACK : SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* ---- certificate groups -------------------------------------------------------------- */

void tls_server_state_free(struct tls_server_state *st)
{
    for (size_t g = 0; g < st->n_groups; g++) {
        if (g > 0)
            SSL_CTX_free(st->groups[g].ctx);
        for (size_t i = 0; i < st->groups[g].n_names; i++)
            free(st->groups[g].names[i]);
        free(st->groups[g].names);
    }
    free(st->groups);
    for (size_t i = 0; i < st->n_staples; i++) {
        X509_free(st->staples[i].cert);
        OPENSSL_free(st->staples[i].der);
    }
    free(st->staples);
    free(st->alpn);
    EVP_MD_free(st->sha256);
    tls_ticket_keys_free(st->file_keys);
    free(st);
}

static int copy_names(struct tls_name_group *g, const struct tls_cert *c)
{
    g->names = calloc(c->n_names ? c->n_names : 1, sizeof *g->names);
    if (g->names == NULL)
        return -1;
    for (size_t i = 0; i < c->n_names; i++) {
        g->names[i] = strdup(c->names[i]);
        if (g->names[i] == NULL)
            return -1;
        g->n_names++;
    }
    return 0;
}

static int new_group_ctx(struct tls_name_group *g, const struct build *b,
                         struct err *err)
{
    g->ctx = SSL_CTX_new(TLS_server_method());
    if (g->ctx == NULL)
        return err_set_ssl(err, "%s: cannot create SSL context", b->path);
    if (apply_policy(g->ctx, b, err) < 0)
        return -1;
    /* Every group: after a HelloRetryRequest the second ClientHello is handled by
     * the context the first one switched to. */
    SSL_CTX_set_client_hello_cb(g->ctx, tls_sni_client_hello_cb, b->st);
    SSL_CTX_set_tlsext_servername_callback(g->ctx, tls_sni_callback);
    if (b->st->alpn_len > 0)
        SSL_CTX_set_alpn_select_cb(g->ctx, alpn_select, b->st);
    if (b->st->n_staples > 0) {
        SSL_CTX_set_tlsext_status_cb(g->ctx, tls_ocsp_status_cb);
        SSL_CTX_set_tlsext_status_arg(g->ctx, b->st);
    }
    return 0;
}

/* Group of certificate i: the group of the first earlier certificate with the same
 * names, or a new one. group_of[] maps certificates to groups. */
static size_t assign_groups(const struct tls_cert *certs, size_t n, size_t *group_of)
{
    size_t n_groups = 0;
    for (size_t i = 0; i < n; i++) {
        group_of[i] = n_groups;
        for (size_t j = 0; j < i; j++) {
            if (tls_cert_same_names(&certs[i], &certs[j])) {
                group_of[i] = group_of[j];
                break;
            }
        }
        if (group_of[i] == n_groups)
            n_groups++;
    }
    return n_groups;
}

/* An SSL_CTX holds one certificate per key type: a second RSA certificate for the
 * same names would silently replace the first. */
static int check_key_types(const struct tls_cert *certs, size_t n, const size_t *group_of,
                           const char *path, struct err *err)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (group_of[i] == group_of[j]
                && EVP_PKEY_get_id(certs[i].key) == EVP_PKEY_get_id(certs[j].key))
                return err_set(err, "%s.certificates[%zu]: same names and key type (%s) "
                               "as certificates[%zu]; only one certificate per key "
                               "type can be served for a set of names", path, i,
                               EVP_PKEY_get0_type_name(certs[i].key), j);
        }
    }
    return 0;
}

static int collect_staples(struct tls_server_state *st, struct tls_cert *certs, size_t n,
                           const char *path, struct err *err)
{
    st->staples = calloc(n, sizeof *st->staples);
    if (st->staples == NULL)
        return err_set(err, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        if (certs[i].ocsp_der == NULL)
            continue;
        struct tls_staple *s = &st->staples[st->n_staples++];
        X509_up_ref(certs[i].leaf);
        s->cert = certs[i].leaf;
        s->der = certs[i].ocsp_der;
        s->len = certs[i].ocsp_len;
        certs[i].ocsp_der = NULL;
    }
    return 0;
}

/* A session resumes only into the listener that made it and under the client
 * certificate policy it was verified with: the verify mode and the *content* of
 * client_ca (a CA file rewritten in place is another policy; the same bytes at
 * another path are not). Stable across reloads that keep both, so tickets keep
 * working; OpenSSL refuses a session (by ID or ticket, TLS 1.2 and 1.3) whose
 * context differs. A client that sends SNI gets a context derived from this one and
 * the name (sni.c), so a session also stays with its server name. */
static int compute_sid_ctx(struct build *b, struct err *err)
{
    unsigned char mode = (unsigned char)b->cfg->verify_client;
    b->st->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = b->st->sha256 != NULL && md != NULL
             && EVP_DigestInit_ex(md, b->st->sha256, NULL) == 1
             && EVP_DigestUpdate(md, "ferry|", 6) == 1
             /* with its NUL, so the path cannot run into what follows */
             && EVP_DigestUpdate(md, b->path, strlen(b->path) + 1) == 1
             && EVP_DigestUpdate(md, &mode, 1) == 1
             && (b->client_ca == NULL
                 || EVP_DigestUpdate(md, b->client_ca, b->client_ca_len) == 1)
             && EVP_DigestFinal_ex(md, b->st->sid_ctx, NULL) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : err_set_ssl(err, "%s: SHA-256 unavailable", b->path);
}

static int build_groups(struct build *b, struct tls_cert *certs, size_t n,
                        const size_t *group_of, size_t n_groups, struct err *err)
{
    struct tls_server_state *st = b->st;
    st->groups = calloc(n_groups, sizeof *st->groups);
    if (st->groups == NULL)
        return err_set(err, "%s: out of memory", b->path);
    st->n_groups = n_groups;
    for (size_t i = 0; i < n; i++) {
        struct tls_name_group *g = &st->groups[group_of[i]];
        if (g->ctx == NULL) {
            if (new_group_ctx(g, b, err) < 0)
                return -1;
            if (copy_names(g, &certs[i]) < 0)
                return err_set(err, "%s: out of memory", b->path);
        }
        char field[TLS_PATH_MAX];
        snprintf(field, sizeof field, "%s.certificates[%zu]", b->path, i);
        if (tls_cert_install(g->ctx, &certs[i], field, err) < 0)
            return -1;
    }
    return 0;
}

static int load_certificates(const struct cfg_listener_tls *cfg, const char *path,
                             struct tls_cert *certs, tls_warn_fn *warn, void *warn_arg,
                             struct err *err)
{
    for (size_t i = 0; i < cfg->n_certificates; i++) {
        char field[TLS_PATH_MAX];
        snprintf(field, sizeof field, "%s.certificates[%zu]", path, i);
        if (tls_cert_load(&certs[i], &cfg->certificates[i], field, warn, warn_arg,
                          err) < 0)
            return -1;
    }
    return 0;
}

static size_t check_ticket_keys_file(const struct cfg_listener_tls *cfg, const char *path,
                                     tls_warn_fn *report, void *arg)
{
    char field[TLS_PATH_MAX];
    struct err err = { { 0 } };
    snprintf(field, sizeof field, "%s.ticket_keys_file", path);
    struct tls_ticket_keys *keys = tls_ticket_keys_load(cfg->ticket_keys_file, field, NULL,
                                                        NULL, &err);
    if (keys == NULL) {
        report(arg, err.msg);
        return 1;
    }
    tls_ticket_keys_free(keys);
    return 0;
}

size_t tls_server_check_files(const struct cfg_listener_tls *cfg, const char *path,
                              tls_warn_fn *report, void *arg)
{
    size_t failures = 0;
    for (size_t i = 0; i < cfg->n_certificates; i++) {
        char field[TLS_PATH_MAX];
        struct tls_cert cert;
        struct err err = { { 0 } };
        snprintf(field, sizeof field, "%s.certificates[%zu]", path, i);
        if (tls_cert_load(&cert, &cfg->certificates[i], field, NULL, NULL, &err) < 0) {
            report(arg, err.msg);
            failures++;
            continue;
        }
        tls_cert_clear(&cert);
    }
    if (cfg->ticket_keys_file != NULL)
        failures += check_ticket_keys_file(cfg, path, report, arg);
    return failures;
}

/* With a ticket_keys_file every context of the server uses its keys, which the
 * server state owns; without, the daemon's. */
static int choose_ticket_keys(struct build *b, tls_warn_fn *warn, void *warn_arg,
                              struct err *err)
{
    if (b->cfg->ticket_keys_file == NULL)
        return 0;
    char field[TLS_PATH_MAX];
    snprintf(field, sizeof field, "%s.ticket_keys_file", b->path);
    b->st->file_keys = tls_ticket_keys_load(b->cfg->ticket_keys_file, field, warn, warn_arg,
                                            err);
    if (b->st->file_keys == NULL)
        return -1;
    b->keys = b->st->file_keys;
    return 0;
}

struct tls_server *tls_server_new(const struct cfg_listener_tls *cfg,
                                  enum listener_mode mode,
                                  struct tls_ticket_keys *keys,
                                  const char *path, tls_warn_fn *warn, void *warn_arg,
                                  struct err *err)
{
    size_t n = cfg->n_certificates;
    struct tls_server *srv = NULL;
    struct tls_cert *certs = NULL;
    size_t *group_of = NULL;
    struct build b = { .cfg = cfg, .path = path, .keys = keys };

    if (n == 0) {
        err_set(err, "%s.certificates: at least one certificate is required", path);
        goto fail;
    }
    certs = calloc(n, sizeof *certs);
    group_of = calloc(n, sizeof *group_of);
    b.st = calloc(1, sizeof *b.st);
    srv = calloc(1, sizeof *srv);
    if (certs == NULL || group_of == NULL || b.st == NULL || srv == NULL) {
        err_set(err, "%s: out of memory", path);
        goto fail;
    }
    b.st->mode = mode;
    if (load_certificates(cfg, path, certs, warn, warn_arg, err) < 0)
        goto fail;
    size_t n_groups = assign_groups(certs, n, group_of);
    if (check_key_types(certs, n, group_of, path, err) < 0
        || build_alpn(b.st, cfg, path, err) < 0
        || collect_staples(b.st, certs, n, path, err) < 0
        || tls_mtls_read_ca(cfg, path, &b.client_ca, &b.client_ca_len, err) < 0
        || compute_sid_ctx(&b, err) < 0
        || choose_ticket_keys(&b, warn, warn_arg, err) < 0
        || build_groups(&b, certs, n, group_of, n_groups, err) < 0)
        goto fail;

    /* From here the default context owns the state (freed with it). */
    srv->ctx = b.st->groups[0].ctx;
    if (SSL_CTX_set_ex_data(srv->ctx, tls_ex_ctx_server_state(), b.st) != 1) {
        srv->ctx = NULL;
        err_set_ssl(err, "%s: out of memory", path);
        goto fail;
    }
    b.st = NULL;
    goto done;

fail:
    if (b.st != NULL) {
        SSL_CTX *ctx0 = b.st->n_groups > 0 ? b.st->groups[0].ctx : NULL;
        tls_server_state_free(b.st);
        SSL_CTX_free(ctx0);
    }
    free(srv);
    srv = NULL;
done:
    for (size_t i = 0; certs != NULL && i < n; i++)
        tls_cert_clear(&certs[i]);
    free(certs);
    free(group_of);
    OPENSSL_free(b.client_ca);
    return srv;
}

SSL *tls_server_ssl_new(struct tls_server *srv)
{
    return SSL_new(srv->ctx);
}

SSL *tls_server_ssl_for_socket(struct tls_server *srv, int fd)
{
    SSL *ssl = tls_server_ssl_new(srv);
    if (ssl == NULL)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    SSL_set_read_ahead(ssl, 1);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ssl;
}

struct tls_server *tls_server_share(const struct tls_server *srv)
{
    struct tls_server *copy = malloc(sizeof *copy);
    if (copy == NULL || SSL_CTX_up_ref(srv->ctx) != 1) {
        free(copy);
        return NULL;
    }
    copy->ctx = srv->ctx;
    return copy;
}

void tls_server_free(struct tls_server *srv)
{
    if (srv == NULL)
        return;
    /* Live connections hold their own references on the contexts. */
    SSL_CTX_free(srv->ctx);
    free(srv);
}

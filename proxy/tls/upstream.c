/* tls_client: TLS from ferry to the backends of one pool.
 *
 * Session resumption for pooled reconnections: OpenSSL's client side keeps no
 * sessions by itself, so a small store keeps the newest session per backend address
 * (filled by the new-session callback, offered by tls_client_ssl_new). It hangs off
 * the SSL_CTX's ex_data because the callback may still fire on a connection that
 * outlives the tls_client. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/internal.h"

/* Backends per pool are few; the oldest entry is replaced beyond this. */
#define SESSION_STORE_SLOTS 64
#define HOST_MAX 256

struct stored_session {
    char *backend;              /* owned; NULL = free slot */
    SSL_SESSION *session;       /* ref */
};

struct tls_session_store {
    pthread_mutex_t lock;
    struct stored_session slots[SESSION_STORE_SLOTS];
    size_t next_victim;         /* round-robin replacement when full */
};

struct tls_client {
    SSL_CTX *ctx;               /* ref; owns the session store */
    char *sni;                  /* owned; NULL = no SNI */
    bool verify;
};

/* ---- session store ------------------------------------------------------------------- */

void tls_session_store_free(struct tls_session_store *store)
{
    for (size_t i = 0; i < SESSION_STORE_SLOTS; i++) {
        free(store->slots[i].backend);
        SSL_SESSION_free(store->slots[i].session);
    }
    pthread_mutex_destroy(&store->lock);
    free(store);
}

static struct stored_session *find_slot(struct tls_session_store *store,
                                        const char *backend)
{
    for (size_t i = 0; i < SESSION_STORE_SLOTS; i++)
        if (store->slots[i].backend && strcmp(store->slots[i].backend, backend) == 0)
            return &store->slots[i];
    return NULL;
}

static struct stored_session *claim_slot(struct tls_session_store *store,
                                         const char *backend)
{
    struct stored_session *slot = NULL;
    for (size_t i = 0; slot == NULL && i < SESSION_STORE_SLOTS; i++)
        if (store->slots[i].backend == NULL)
            slot = &store->slots[i];
    if (slot == NULL) {
        slot = &store->slots[store->next_victim];
        store->next_victim = (store->next_victim + 1) % SESSION_STORE_SLOTS;
    }
    char *copy = strdup(backend);
    if (copy == NULL)
        return NULL;
    free(slot->backend);
    SSL_SESSION_free(slot->session);
    slot->backend = copy;
    slot->session = NULL;
    return slot;
}

/* Returns 1: we keep the reference OpenSSL hands us. */
static int new_session_cb(SSL *ssl, SSL_SESSION *session)
{
    const char *backend = SSL_get_ex_data(ssl, tls_ex_ssl_backend());
    struct tls_session_store *store =
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ex_ctx_session_store());
    if (backend == NULL || store == NULL)
        return 0;
    pthread_mutex_lock(&store->lock);
    struct stored_session *slot = find_slot(store, backend);
    if (slot == NULL)
        slot = claim_slot(store, backend);
    if (slot != NULL) {
        SSL_SESSION_free(slot->session);
        slot->session = session;
    }
    pthread_mutex_unlock(&store->lock);
    return slot != NULL;
}

static void offer_session(SSL *ssl, struct tls_session_store *store, const char *backend)
{
    pthread_mutex_lock(&store->lock);
    struct stored_session *slot = find_slot(store, backend);
    if (slot != NULL && slot->session != NULL && SSL_SESSION_is_resumable(slot->session))
        SSL_set_session(ssl, slot->session);   /* takes its own reference */
    pthread_mutex_unlock(&store->lock);
}

/* ---- context --------------------------------------------------------------------------- */

static int setup_trust(SSL_CTX *ctx, const struct cfg_pool_tls *cfg, const char *path,
                       struct err *err)
{
    if (!cfg->verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return 0;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->ca == NULL) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1)
            return err_set_ssl(err, "%s.ca: cannot load the system trust store", path);
        return 0;
    }
    char field[TLS_PATH_MAX];
    snprintf(field, sizeof field, "%s.ca", path);
    unsigned char *data;
    size_t len;
    if (tls_read_file(field, cfg->ca, &data, &len, err) < 0)
        return -1;
    OPENSSL_free(data);
    ERR_clear_error();
    if (SSL_CTX_load_verify_file(ctx, cfg->ca) != 1)
        return err_set_ssl(err, "%s: %s: no PEM CA certificate found", field, cfg->ca);
    return 0;
}

static int setup_client_cert(SSL_CTX *ctx, const struct cfg_pool_tls *cfg,
                             const char *path, struct err *err)
{
    if (cfg->cert == NULL && cfg->key == NULL)
        return 0;
    struct cfg_tls_certificate entry = { .cert = cfg->cert, .key = cfg->key };
    struct tls_cert cert;
    if (tls_cert_load(&cert, &entry, path, NULL, NULL, err) < 0)
        return -1;
    int rc = tls_cert_install(ctx, &cert, path, err);
    tls_cert_clear(&cert);
    return rc;
}

static int setup_sessions(SSL_CTX *ctx, const char *path, struct err *err)
{
    struct tls_session_store *store = calloc(1, sizeof *store);
    if (store == NULL)
        return err_set(err, "%s: out of memory", path);
    if (pthread_mutex_init(&store->lock, NULL) != 0) {
        free(store);
        return err_set(err, "%s: cannot create lock", path);
    }
    if (SSL_CTX_set_ex_data(ctx, tls_ex_ctx_session_store(), store) != 1) {
        tls_session_store_free(store);
        return err_set_ssl(err, "%s: out of memory", path);
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT
                                        | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    return 0;
}

struct tls_client *tls_client_new(const struct cfg_pool_tls *cfg, const char *path,
                                  struct err *err)
{
    struct tls_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        err_set(err, "%s: out of memory", path);
        return NULL;
    }
    c->verify = cfg->verify;
    if (cfg->sni != NULL && (c->sni = strdup(cfg->sni)) == NULL) {
        err_set(err, "%s: out of memory", path);
        goto fail;
    }
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL) {
        err_set_ssl(err, "%s: cannot create SSL context", path);
        goto fail;
    }
    if (SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1) {
        err_set_ssl(err, "%s: cannot require TLS 1.2", path);
        goto fail;
    }
    /* See tls.h on dirty shutdowns; pooled idle connections release their buffers. */
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                                | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_info_callback(c->ctx, tls_stats_upstream_info_cb);
    if (setup_trust(c->ctx, cfg, path, err) < 0
        || setup_client_cert(c->ctx, cfg, path, err) < 0
        || setup_sessions(c->ctx, path, err) < 0)
        goto fail;
    return c;

fail:
    tls_client_free(c);
    return NULL;
}

struct tls_client *tls_client_share(const struct tls_client *c)
{
    struct tls_client *copy = calloc(1, sizeof *copy);
    if (copy == NULL || (c->sni && (copy->sni = strdup(c->sni)) == NULL) ||
        SSL_CTX_up_ref(c->ctx) != 1) {
        if (copy)
            free(copy->sni);
        free(copy);
        return NULL;
    }
    copy->ctx = c->ctx;
    copy->verify = c->verify;
    return copy;
}

void tls_client_free(struct tls_client *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ctx);
    free(c->sni);
    free(c);
}

/* ---- connections ------------------------------------------------------------------------ */

/* "host:port", "[v6]:port", "v6" or "host" -> host. */
static int backend_host(const char *backend, char *host, size_t size)
{
    const char *start = backend, *end;
    if (backend[0] == '[') {
        start = backend + 1;
        end = strchr(start, ']');
        if (end == NULL)
            return -1;
    } else {
        end = strchr(backend, ':');
        if (end == NULL || strchr(end + 1, ':') != NULL)
            end = backend + strlen(backend);   /* no port, or a bare IPv6 address */
    }
    size_t len = (size_t)(end - start);
    if (len == 0 || len >= size)
        return -1;
    memcpy(host, start, len);
    host[len] = '\0';
    return 0;
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int expect_identity(SSL *ssl, const struct tls_client *c, const char *host)
{
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (c->sni != NULL)
        return SSL_set1_host(ssl, c->sni) == 1 ? 0 : -1;
    if (is_ip_literal(host))
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -1;
    return SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

SSL *tls_client_ssl_new(struct tls_client *c, const char *backend)
{
    char host[HOST_MAX];
    if (backend_host(backend, host, sizeof host) < 0)
        return NULL;
    SSL *ssl = SSL_new(c->ctx);
    if (ssl == NULL)
        return NULL;
    SSL_set_connect_state(ssl);
    char *key = OPENSSL_strdup(backend);
    if (key == NULL || SSL_set_ex_data(ssl, tls_ex_ssl_backend(), key) != 1) {
        OPENSSL_free(key);
        goto fail;
    }
    if (c->sni != NULL && SSL_set_tlsext_host_name(ssl, c->sni) != 1)
        goto fail;
    if (c->verify && expect_identity(ssl, c, host) < 0)
        goto fail;
    struct tls_session_store *store =
        SSL_CTX_get_ex_data(c->ctx, tls_ex_ctx_session_store());
    if (store != NULL)
        offer_session(ssl, store, backend);
    return ssl;

fail:
    SSL_free(ssl);
    return NULL;
}

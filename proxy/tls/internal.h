/* tls/internal.h — what the tls module's .c files share. Not part of the API: callers
 * include tls/tls.h only. */
#ifndef FERRY_TLS_INTERNAL_H
#define FERRY_TLS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config/config.h"
#include "core/err.h"
#include "tls/tls.h"

/* Longest config path we build ("listeners.NAME.tls.certificates[N].ocsp_response"). */
#define TLS_PATH_MAX 320

/* ---- exdata.c: OpenSSL ex_data slots, allocated once per process ----------------- */
int tls_ex_ctx_server_state(void);  /* SSL_CTX -> struct tls_server_state (owned) */
int tls_ex_ctx_ticket_keys(void);   /* SSL_CTX -> struct tls_ticket_keys (borrowed: the
                                       daemon's, or the server state's file keys) */
int tls_ex_ctx_session_store(void); /* SSL_CTX -> struct tls_session_store (owned) */
int tls_ex_ssl_backend(void);       /* SSL -> char * backend key (owned) */
int tls_ex_ssl_counted(void);       /* SSL -> non-NULL once its handshake was counted */

/* upstream.c: per-backend client sessions of one tls_client. */
struct tls_session_store;
void tls_session_store_free(struct tls_session_store *store);

/* ---- certs.c: one certificates[] entry, loaded and checked ------------------------ */
struct tls_cert {
    X509 *leaf;                 /* owned */
    STACK_OF(X509) *chain;      /* owned; the intermediates after the leaf, maybe empty */
    EVP_PKEY *key;              /* owned */
    char **names;               /* owned; SAN dNSNames (else CN), lower-case, sorted,
                                   unique, without a trailing dot */
    size_t n_names;
    unsigned char *ocsp_der;    /* owned; NULL = nothing to staple */
    size_t ocsp_len;
};

/* Reads a whole (small) file. 0 ok (*out owned by the caller, OPENSSL_free), -1 with
 * "FIELD: FILE: reason" in *err. */
int tls_read_file(const char *field, const char *file, unsigned char **out, size_t *len,
                  struct err *err);

/* Loads cfg->cert (leaf + chain), cfg->key (must match) and cfg->ocsp_response.
 * `path` is the entry's config path; errors name path + ".cert" / ".key" /
 * ".ocsp_response" and the file. Expiry problems go to warn. 0 ok, -1 (c cleared). */
int tls_cert_load(struct tls_cert *c, const struct cfg_tls_certificate *cfg,
                  const char *path, tls_warn_fn *warn, void *warn_arg, struct err *err);
void tls_cert_clear(struct tls_cert *c);
bool tls_cert_same_names(const struct tls_cert *a, const struct tls_cert *b);
/* Certificate, chain and key into the ctx slot of the key's type. 0 ok, -1 with *err. */
int tls_cert_install(SSL_CTX *ctx, const struct tls_cert *c, const char *path,
                     struct err *err);

/* ---- ocsp.c -------------------------------------------------------------------------- */
struct tls_staple {
    X509 *cert;                 /* ref: the certificate this response is for */
    unsigned char *der;         /* owned */
    size_t len;
};

/* Reads and checks the DER response `file` for c (sets c->ocsp_der, or leaves it NULL
 * after a warning when the response is stale). 0 ok, -1 with *err naming `field`. */
int tls_ocsp_load(struct tls_cert *c, const char *file, const char *field,
                  tls_warn_fn *warn, void *warn_arg, struct err *err);
/* SSL_CTX_set_tlsext_status_cb callback; arg is the struct tls_server_state. */
int tls_ocsp_status_cb(SSL *ssl, void *arg);

/* ---- server.c / sni.c: the state behind a tls_server's callbacks -------------------- */
struct tls_name_group {
    SSL_CTX *ctx;               /* groups[0]: the default ctx, which owns the state
                                   (not a ref); others: ref */
    char **names;               /* owned copy of the group's sorted names */
    size_t n_names;
};

/* Session-id contexts are SHA-256 digests: exactly SSL_MAX_SID_CTX_LENGTH bytes. */
enum { TLS_SID_CTX_LEN = 32 };

/* Lives in the default SSL_CTX's ex_data and dies with it, so it lasts as long as any
 * SSL made from the server (every SSL holds a ref on the default ctx). */
struct tls_server_state {
    struct tls_name_group *groups;  /* owned; [0] is the first certificate's group */
    size_t n_groups;
    /* The listener's session-id context (listener + client-certificate policy): set
     * on every context, kept by clients without SNI; a client with SNI gets one
     * derived from it and the name. */
    unsigned char sid_ctx[TLS_SID_CTX_LEN];
    EVP_MD *sha256;             /* owned; fetched once, not per handshake */
    unsigned char *alpn;        /* owned; the listener's protocols, wire format */
    size_t alpn_len;
    enum listener_mode mode;
    struct tls_staple *staples; /* owned */
    size_t n_staples;
    /* owned: the keys of the listener's ticket_keys_file, which its contexts use
     * instead of the daemon's; NULL without a file. They live as long as any
     * connection made on this server, so a reload that reads the file again never
     * pulls keys from under a handshake. */
    struct tls_ticket_keys *file_keys;
};

void tls_server_state_free(struct tls_server_state *st);
/* Index of the group for SNI `host`: exact name match first, then wildcard, else 0. */
size_t tls_sni_select(const struct tls_name_group *groups, size_t n, const char *host);
/* SSL_CTX_set_client_hello_cb; arg is the struct tls_server_state. Picks the
 * certificate group and the session-id context from the ClientHello's server name,
 * before OpenSSL looks for a session to resume. */
int tls_sni_client_hello_cb(SSL *ssl, int *alert, void *arg);
/* SSL_CTX_set_tlsext_servername_callback: acknowledges the name (no argument). */
int tls_sni_callback(SSL *ssl, int *alert, void *arg);

/* ---- mtls.c ---------------------------------------------------------------------------- */
/* Reads cfg->client_ca once per build: its bytes are both what every context's
 * trust store is built from and what the session-id context hashes. *pem (owned by
 * the caller, OPENSSL_free) stays NULL when verify_client is off. 0 ok, -1 with *err
 * naming path + ".client_ca" (or ".verify_client"). */
int tls_mtls_read_ca(const struct cfg_listener_tls *cfg, const char *path,
                     unsigned char **pem, size_t *len, struct err *err);
/* The CAs in ca_pem + verify_client onto ctx. 0 ok, -1 with *err. */
int tls_mtls_setup(SSL_CTX *ctx, const struct cfg_listener_tls *cfg,
                   const unsigned char *ca_pem, size_t ca_len, const char *path,
                   struct err *err);

/* ---- tickets.c ------------------------------------------------------------------------- */
int tls_ticket_keys_install(SSL_CTX *ctx, struct tls_ticket_keys *keys);
/* The keys of a ticket_keys_file (ticket_file.h), never rotated. NULL with "FIELD:
 * FILE: reason" in *err when the file cannot be read or parsed; a file others may
 * read is loaded and reported to warn (may be NULL). */
struct tls_ticket_keys *tls_ticket_keys_load(const char *file, const char *field,
                                             tls_warn_fn *warn, void *warn_arg,
                                             struct err *err);

/* ---- stats.c --------------------------------------------------------------------------- */
void tls_stats_server_info_cb(const SSL *ssl, int where, int ret);
void tls_stats_upstream_info_cb(const SSL *ssl, int where, int ret);

#endif

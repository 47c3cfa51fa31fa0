/* Session-ticket keys. The daemon's own: random, shared by every listener of every
 * generation (so a ticket issued before a reload still resumes after it), rotated by
 * the main thread (write lock) while handshakes on worker threads read them (read
 * lock). A listener's ticket_keys_file: read once per generation that has the
 * listener, owned by its tls_server and never changed (a reload builds new ones). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tls/internal.h"
#include "tls/ticket_file.h"

_Static_assert(TLS_TICKET_FILE_MAX_KEYS >= TLS_TICKET_KEYS_KEPT, "room for the rotated keys");

struct tls_ticket_keys {
    pthread_rwlock_t lock;
    EVP_CIPHER *cipher;         /* owned; fetched once, not per handshake */
    struct tls_ticket_key keys[TLS_TICKET_FILE_MAX_KEYS];   /* [0] encrypts; all decrypt */
    size_t n_keys;
};

static int random_key(struct tls_ticket_key *k)
{
    /* RAND_priv_bytes: key material comes from the generator reserved for secrets. */
    return RAND_bytes(k->name, sizeof k->name) == 1
        && RAND_priv_bytes(k->aes, sizeof k->aes) == 1
        && RAND_priv_bytes(k->hmac, sizeof k->hmac) == 1 ? 0 : -1;
}

static struct tls_ticket_keys *keys_alloc(struct err *err)
{
    struct tls_ticket_keys *keys = calloc(1, sizeof *keys);
    if (keys == NULL) {
        err_set(err, "ticket keys: out of memory");
        return NULL;
    }
    if (pthread_rwlock_init(&keys->lock, NULL) != 0) {
        free(keys);
        err_set(err, "ticket keys: cannot create lock");
        return NULL;
    }
    keys->cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (keys->cipher == NULL) {
        err_set_ssl(err, "ticket keys: AES-256-CBC unavailable");
        tls_ticket_keys_free(keys);
        return NULL;
    }
    return keys;
}

struct tls_ticket_keys *tls_ticket_keys_new(struct err *err)
{
    struct tls_ticket_keys *keys = keys_alloc(err);
    if (keys == NULL)
        return NULL;
    if (random_key(&keys->keys[0]) < 0) {
        err_set_ssl(err, "ticket keys: no randomness");
        tls_ticket_keys_free(keys);
        return NULL;
    }
    keys->n_keys = 1;
    return keys;
}

static bool is_own_group(gid_t gid)
{
    if (gid == getegid())
        return true;
    gid_t groups[256];
    int n = getgroups(sizeof groups / sizeof groups[0], groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return true;
    return false;
}

/* Whoever can read the file can decrypt every ticket made with its keys, and with
 * it the session of every connection that resumed one: say so, as sshd would. */
static void warn_if_exposed(const char *file, const char *field, tls_warn_fn *warn,
                            void *warn_arg)
{
    struct stat st;
    if (warn == NULL || stat(file, &st) != 0)
        return;
    const char *why = tls_ticket_file_exposure(st.st_mode & 0777, is_own_group(st.st_gid));
    if (why == NULL)
        return;
    char msg[TLS_PATH_MAX + 256];
    snprintf(msg, sizeof msg, "%s: %s: mode %04o: %s; session-ticket keys should be "
             "readable by ferry alone (chmod 600, or 640 with ferry's group)", field, file,
             (unsigned)(st.st_mode & 07777), why);
    warn(warn_arg, msg);
}

struct tls_ticket_keys *tls_ticket_keys_load(const char *file, const char *field,
                                             tls_warn_fn *warn, void *warn_arg,
                                             struct err *err)
{
    unsigned char *data = NULL;
    size_t len = 0;
    if (tls_read_file(field, file, &data, &len, err) < 0)
        return NULL;
    struct tls_ticket_keys *keys = keys_alloc(err);
    if (keys != NULL) {
        struct err why = { { 0 } };
        int n = tls_ticket_file_parse(data, len, keys->keys, &why);
        if (n < 0) {
            err_set(err, "%s: %s: %s", field, file, why.msg);
            tls_ticket_keys_free(keys);
            keys = NULL;
        } else {
            keys->n_keys = (size_t)n;
            warn_if_exposed(file, field, warn, warn_arg);
        }
    }
    OPENSSL_clear_free(data, len);
    return keys;
}

int tls_ticket_keys_rotate(struct tls_ticket_keys *keys, struct err *err)
{
    struct tls_ticket_key fresh;
    if (random_key(&fresh) < 0) {
        OPENSSL_cleanse(&fresh, sizeof fresh);
        return err_set_ssl(err, "ticket keys: no randomness; keeping the current key");
    }
    pthread_rwlock_wrlock(&keys->lock);
    memmove(&keys->keys[1], &keys->keys[0],
            (TLS_TICKET_KEYS_KEPT - 1) * sizeof keys->keys[0]);
    keys->keys[0] = fresh;
    if (keys->n_keys < TLS_TICKET_KEYS_KEPT)
        keys->n_keys++;
    pthread_rwlock_unlock(&keys->lock);
    OPENSSL_cleanse(&fresh, sizeof fresh);
    return 0;
}

size_t tls_ticket_keys_export(struct tls_ticket_keys *keys, unsigned char *buf, size_t len)
{
    size_t used = 0;
    pthread_rwlock_rdlock(&keys->lock);
    if (len >= keys->n_keys * TLS_TICKET_KEY_BYTES) {
        for (size_t i = 0; i < keys->n_keys; i++) {
            tls_ticket_key_to_bytes(&keys->keys[i], buf + used, TLS_KEY_NAME_AES_HMAC);
            used += TLS_TICKET_KEY_BYTES;
        }
    }
    pthread_rwlock_unlock(&keys->lock);
    return used;
}

int tls_ticket_keys_import(struct tls_ticket_keys *keys, const unsigned char *buf, size_t len)
{
    size_t n = len / TLS_TICKET_KEY_BYTES;
    if (len % TLS_TICKET_KEY_BYTES != 0 || n == 0 || n > TLS_TICKET_KEYS_KEPT)
        return -1;
    pthread_rwlock_wrlock(&keys->lock);
    for (size_t i = 0; i < n; i++)
        tls_ticket_key_from_bytes(&keys->keys[i], buf + i * TLS_TICKET_KEY_BYTES,
                                  TLS_KEY_NAME_AES_HMAC);
    keys->n_keys = n;
    pthread_rwlock_unlock(&keys->lock);
    return 0;
}

void tls_ticket_keys_free(struct tls_ticket_keys *keys)
{
    if (keys == NULL)
        return;
    OPENSSL_cleanse(keys->keys, sizeof keys->keys);
    EVP_CIPHER_free(keys->cipher);
    pthread_rwlock_destroy(&keys->lock);
    free(keys);
}

static int init_mac(EVP_MAC_CTX *hctx, const struct tls_ticket_key *k)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_init(hctx, k->hmac, sizeof k->hmac, params) == 1 ? 0 : -1;
}

static int encrypt_ticket(struct tls_ticket_keys *keys, unsigned char *key_name,
                          unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx)
{
    const struct tls_ticket_key *k = &keys->keys[0];
    int iv_len = EVP_CIPHER_get_iv_length(keys->cipher);
    if (RAND_bytes(iv, iv_len) != 1
        || EVP_EncryptInit_ex(cctx, keys->cipher, NULL, k->aes, iv) != 1
        || init_mac(hctx, k) < 0)
        return -1;
    memcpy(key_name, k->name, sizeof k->name);
    return 1;
}

/* 1: decrypted with the current key; 2: with a previous key, so OpenSSL issues a
 * fresh ticket under the current one; 0: unknown key, full handshake. */
static int decrypt_ticket(struct tls_ticket_keys *keys, const unsigned char *key_name,
                          unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx)
{
    for (size_t i = 0; i < keys->n_keys; i++) {
        const struct tls_ticket_key *k = &keys->keys[i];
        if (CRYPTO_memcmp(key_name, k->name, sizeof k->name) != 0)
            continue;
        if (EVP_DecryptInit_ex(cctx, keys->cipher, NULL, k->aes, iv) != 1
            || init_mac(hctx, k) < 0)
            return -1;
        return i == 0 ? 1 : 2;
    }
    return 0;
}

static int ticket_key_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    /* Every context of a server carries the pointer, so whichever one SNI switched
     * the connection to finds it. */
    struct tls_ticket_keys *keys =
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ex_ctx_ticket_keys());
    if (keys == NULL)
        return -1;
    pthread_rwlock_rdlock(&keys->lock);
    int rc = enc ? encrypt_ticket(keys, key_name, iv, cctx, hctx)
                 : decrypt_ticket(keys, key_name, iv, cctx, hctx);
    pthread_rwlock_unlock(&keys->lock);
    return rc;
}

int tls_ticket_keys_install(SSL_CTX *ctx, struct tls_ticket_keys *keys)
{
    if (SSL_CTX_set_ex_data(ctx, tls_ex_ctx_ticket_keys(), keys) != 1)
        return -1;
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) == 1 ? 0 : -1;
}

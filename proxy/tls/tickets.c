/* Session-ticket keys shared by every listener of every generation, so a ticket
 * issued before a reload still resumes after it. The callback runs on worker threads
 * during handshakes (read lock); rotation runs on the main thread (write lock). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tls/internal.h"

struct ticket_key {
    unsigned char name[16];     /* sent in the ticket, finds the key on decryption */
    unsigned char aes[32];      /* AES-256-CBC */
    unsigned char hmac[32];     /* HMAC-SHA256 */
};

struct tls_ticket_keys {
    pthread_rwlock_t lock;
    EVP_CIPHER *cipher;         /* owned; fetched once, not per handshake */
    struct ticket_key keys[TLS_TICKET_KEYS_KEPT];   /* [0] encrypts; all decrypt */
    size_t n_keys;
};

static int random_key(struct ticket_key *k)
{
    /* RAND_priv_bytes: key material comes from the generator reserved for secrets. */
    return RAND_bytes(k->name, sizeof k->name) == 1
        && RAND_priv_bytes(k->aes, sizeof k->aes) == 1
        && RAND_priv_bytes(k->hmac, sizeof k->hmac) == 1 ? 0 : -1;
}

struct tls_ticket_keys *tls_ticket_keys_new(struct err *err)
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
        goto fail;
    }
    if (random_key(&keys->keys[0]) < 0) {
        err_set_ssl(err, "ticket keys: no randomness");
        goto fail;
    }
    keys->n_keys = 1;
    return keys;

fail:
    tls_ticket_keys_free(keys);
    return NULL;
}

int tls_ticket_keys_rotate(struct tls_ticket_keys *keys, struct err *err)
{
    struct ticket_key fresh;
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
            const struct ticket_key *k = &keys->keys[i];
            memcpy(buf + used, k->name, sizeof k->name);
            memcpy(buf + used + 16, k->aes, sizeof k->aes);
            memcpy(buf + used + 48, k->hmac, sizeof k->hmac);
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
    for (size_t i = 0; i < n; i++) {
        struct ticket_key *k = &keys->keys[i];
        memcpy(k->name, buf + i * TLS_TICKET_KEY_BYTES, sizeof k->name);
        memcpy(k->aes, buf + i * TLS_TICKET_KEY_BYTES + 16, sizeof k->aes);
        memcpy(k->hmac, buf + i * TLS_TICKET_KEY_BYTES + 48, sizeof k->hmac);
    }
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

static int init_mac(EVP_MAC_CTX *hctx, const struct ticket_key *k)
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
    const struct ticket_key *k = &keys->keys[0];
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
        const struct ticket_key *k = &keys->keys[i];
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

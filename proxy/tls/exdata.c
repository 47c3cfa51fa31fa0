/* OpenSSL ex_data slots of the tls module. Each slot that owns its value has a free
 * function, so the value dies exactly when the SSL_CTX or SSL carrying it does —
 * that is what keeps callback state alive for connections that outlive their
 * generation. */
#include <pthread.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "tls/internal.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int idx_server_state = -1;
static int idx_ticket_keys = -1;
static int idx_session_store = -1;
static int idx_backend = -1;
static int idx_counted = -1;

static void free_server_state(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                              long argl, void *argp)
{
    if (ptr != NULL)
        tls_server_state_free(ptr);
}

static void free_session_store(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                               long argl, void *argp)
{
    if (ptr != NULL)
        tls_session_store_free(ptr);
}

static void free_string(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                        long argl, void *argp)
{
    OPENSSL_free(ptr);
}

static void allocate(void)
{
    idx_server_state = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL,
                                               NULL, free_server_state);
    idx_ticket_keys = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL,
                                              NULL, NULL);
    idx_session_store = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL,
                                                NULL, free_session_store);
    idx_backend = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL,
                                          free_string);
    idx_counted = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, NULL);
    /* Only fails when out of memory at start-up; nothing sensible can continue. */
    if (idx_server_state < 0 || idx_ticket_keys < 0 || idx_session_store < 0
        || idx_backend < 0 || idx_counted < 0)
        abort();
}

int tls_ex_ctx_server_state(void)
{
    pthread_once(&once, allocate);
    return idx_server_state;
}

int tls_ex_ctx_ticket_keys(void)
{
    pthread_once(&once, allocate);
    return idx_ticket_keys;
}

int tls_ex_ctx_session_store(void)
{
    pthread_once(&once, allocate);
    return idx_session_store;
}

int tls_ex_ssl_backend(void)
{
    pthread_once(&once, allocate);
    return idx_backend;
}

int tls_ex_ssl_counted(void)
{
    pthread_once(&once, allocate);
    return idx_counted;
}

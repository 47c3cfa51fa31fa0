/* The end of a TLS connection. */
#include <openssl/err.h>

#include "tls/internal.h"

bool tls_error_is_dirty_eof(unsigned long ssl_err)
{
    return ERR_GET_LIB(ssl_err) == ERR_LIB_SSL
        && ERR_GET_REASON(ssl_err) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

void tls_close_notify(SSL *ssl)
{
    /* Sent already: SSL_shutdown again would wait to read the peer's alert. */
    if (ssl == NULL || !SSL_is_init_finished(ssl) || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
        return;
    if (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) {
        /* The peer is gone (close_notify or EOF): nothing to tell it. */
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        return;
    }
    /* Keep the thread's error queue as it was: a failed write here (peer reset) is
     * expected and must not be blamed on the next connection of this worker. */
    ERR_set_mark();
    if (SSL_shutdown(ssl) < 0)
        SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
    ERR_pop_to_mark();
}

/* Process-wide TLS counters. Relaxed atomics: each counter is independent and read
 * only for metrics, so no ordering between them is needed. */
#include <stdatomic.h>

#include <openssl/err.h>

#include "tls/internal.h"

static atomic_uint_fast64_t handshakes;
static atomic_uint_fast64_t resumed;
static atomic_uint_fast64_t failures[TLS_FAIL_COUNT];
static atomic_uint_fast64_t upstream_handshakes;
static atomic_uint_fast64_t upstream_resumed;

static void bump(atomic_uint_fast64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static uint64_t read_counter(atomic_uint_fast64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

/* True the first time a connection reports HANDSHAKE_DONE. OpenSSL fires it again
 * when it refuses a renegotiation attempt (and could for other post-handshake
 * messages), so a per-connection mark keeps the counters exact. */
static bool first_completion(const SSL *ssl, int where)
{
    if (!(where & SSL_CB_HANDSHAKE_DONE))
        return false;
    /* The info callback gets a const SSL; the mark is ours to set. */
    SSL *mutable_ssl = (SSL *)ssl;
    if (SSL_get_ex_data(mutable_ssl, tls_ex_ssl_counted()) != NULL)
        return false;
    static char mark;
    SSL_set_ex_data(mutable_ssl, tls_ex_ssl_counted(), &mark);
    return true;
}

void tls_stats_server_info_cb(const SSL *ssl, int where, int ret)
{
    if (!first_completion(ssl, where))
        return;
    bump(&handshakes);
    if (SSL_session_reused(ssl))
        bump(&resumed);
}

void tls_stats_upstream_info_cb(const SSL *ssl, int where, int ret)
{
    if (!first_completion(ssl, where))
        return;
    bump(&upstream_handshakes);
    if (SSL_session_reused(ssl))
        bump(&upstream_resumed);
}

static enum tls_failure_reason classify_ssl_reason(int reason)
{
    switch (reason) {
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
    case SSL_R_NO_CIPHERS_AVAILABLE:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    case SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY:
        return TLS_FAIL_NO_SHARED_CIPHER;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        return TLS_FAIL_PROTOCOL_VERSION;
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_NO_CERTIFICATES_RETURNED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return TLS_FAIL_CERTIFICATE;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return TLS_FAIL_CLOSED;
    default:
        return TLS_FAIL_OTHER;
    }
}

static enum tls_failure_reason classify(const SSL *ssl, unsigned long e)
{
    if (e == 0 && ssl != NULL && SSL_get_verify_result(ssl) != X509_V_OK)
        return TLS_FAIL_CERTIFICATE;
    /* No OpenSSL error, an errno (connection reset) or a bare SSL_ERROR_* code that
     * libevent records for I/O failures: the transport went away. */
    if (e == 0 || ERR_GET_LIB(e) == 0 || ERR_GET_LIB(e) == ERR_LIB_SYS)
        return TLS_FAIL_CLOSED;
    if (ERR_GET_LIB(e) != ERR_LIB_SSL)
        return TLS_FAIL_OTHER;
    return classify_ssl_reason(ERR_GET_REASON(e));
}

enum tls_failure_reason tls_count_handshake_failure(const SSL *ssl, unsigned long ssl_err)
{
    if (ssl_err == 0)
        ssl_err = ERR_peek_error();
    enum tls_failure_reason reason = classify(ssl, ssl_err);
    bump(&failures[reason]);
    return reason;
}

void tls_count_handshake_timeout(void) { bump(&failures[TLS_FAIL_TIMEOUT]); }

const char *tls_failure_reason_name(enum tls_failure_reason reason)
{
    switch (reason) {
    case TLS_FAIL_NO_SHARED_CIPHER: return "no_shared_cipher";
    case TLS_FAIL_PROTOCOL_VERSION: return "protocol_version";
    case TLS_FAIL_CERTIFICATE:      return "certificate";
    case TLS_FAIL_CLOSED:           return "closed";
    case TLS_FAIL_TIMEOUT:          return "timeout";
    case TLS_FAIL_OTHER:
    case TLS_FAIL_COUNT:            break;
    }
    return "other";
}

struct tls_stats tls_stats_snapshot(void)
{
    struct tls_stats s = {
        .handshakes = read_counter(&handshakes),
        .resumed = read_counter(&resumed),
        .upstream_handshakes = read_counter(&upstream_handshakes),
        .upstream_resumed = read_counter(&upstream_resumed),
    };
    for (int i = 0; i < TLS_FAIL_COUNT; i++)
        s.failures[i] = read_counter(&failures[i]);
    return s;
}

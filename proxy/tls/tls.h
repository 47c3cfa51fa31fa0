/* tls — TLS for listeners (termination) and pools (TLS to backends), OpenSSL 3.
 *
 * Everything here is built when a config generation is built and is immutable after
 * that: one struct tls_server (one SSL_CTX tree) per TLS listener, one struct
 * tls_client per TLS pool. Both are shared by all worker threads; workers only call
 * tls_server_ssl_new() / tls_server_ssl_for_socket() / tls_client_ssl_new() per
 * connection.
 *
 * Lifetimes. A tls_server/tls_client belongs to its generation and is freed with it.
 * Every SSL made from one holds OpenSSL references on the contexts and on all the
 * state its callbacks use (SNI table, ALPN list, OCSP staples, session store), so a
 * live connection stays valid after the free. The only borrowed thing is the
 * tls_ticket_keys, which the daemon owns for its whole life (it outlives every
 * generation so clients keep resuming across reloads).
 *
 * Dirty shutdown (design.md "Known pitfalls"). OpenSSL 3 reports a peer that closes
 * the TCP connection without close_notify as SSL_R_UNEXPECTED_EOF_WHILE_READING, and
 * libevent 2.1.12's bufferevent_openssl turns that into BEV_EVENT_ERROR even when
 * dirty shutdowns are allowed. We set SSL_OP_IGNORE_UNEXPECTED_EOF on server AND
 * client contexts: such a close then reads as a clean EOF (BEV_EVENT_EOF). Clients and
 * backends routinely close that way, and HTTP framing (Content-Length, chunked) still
 * detects truncated messages; a close-delimited upstream response cut by an on-path
 * attacker is indistinguishable from a complete one — exactly as with a plaintext
 * backend, and what nginx does. tls_error_is_dirty_eof() recognises the error for any
 * path that still sees it.
 *
 * Conventions (style.md §3): constructors return the object or NULL with the reason
 * in *err (naming the config path, e.g. "listeners.https.tls.certificates[0].key:
 * certs/x.key: key does not match certificate certs/x.crt").
 */
#ifndef FERRY_TLS_H
#define FERRY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config/config.h"
#include "core/err.h"
#include "tls/ticket_file.h"

/* ---- session-ticket keys (daemon-wide) -------------------------------------------
 * AES-256-CBC + HMAC-SHA256 ticket keys: one current key that encrypts new tickets and
 * TLS_TICKET_KEYS_KEPT - 1 previous keys still accepted for decryption (a ticket
 * decrypted with a previous key is renewed). Random at creation, never written to
 * disk. Installed on every server SSL_CTX of every generation whose listener has no
 * ticket_keys_file (one with a file uses the file's keys, which ferry never rotates:
 * see tls/ticket_file.h); guarded by a rwlock so workers read while the main thread
 * rotates. */
#define TLS_TICKET_KEYS_KEPT 2
/* The daemon calls tls_ticket_keys_rotate() from a timer with this period (and
 * nowhere else). A key encrypts tickets for one period and is forgotten after the
 * next, so it protects at most two periods of resumable sessions; tickets live
 * TLS_SESSION_LIFETIME_S, less than one period, so a rotation never invalidates a
 * ticket a client may still use. */
#define TLS_TICKET_ROTATE_INTERVAL_S (12 * 3600)
#define TLS_SESSION_LIFETIME_S 7200

struct tls_ticket_keys;

/* NULL on failure (no randomness / allocation), reason in *err. */
struct tls_ticket_keys *tls_ticket_keys_new(struct err *err);
/* New random current key; the old current becomes the newest previous key.
 * Thread-safe. 0 ok, -1 with *err (keys unchanged). */
int tls_ticket_keys_rotate(struct tls_ticket_keys *keys, struct err *err);
/* Only after every tls_server using the keys and every SSL made from them is gone. */
void tls_ticket_keys_free(struct tls_ticket_keys *keys);
/* Binary upgrade: the keys pass to the new process as bytes, TLS_TICKET_KEY_BYTES per
 * key (16 name, 32 AES, 32 HMAC: HAProxy's layout, which a key file's base64 lines
 * also use; kept so that binaries of different versions hand over), the current one
 * first. export: the length written
 * to buf, 0 when it is too small. import: replaces the keys; 0, or -1 (keys
 * unchanged) when len is not 1..TLS_TICKET_KEYS_KEPT whole keys. Thread-safe. */
size_t tls_ticket_keys_export(struct tls_ticket_keys *keys, unsigned char *buf, size_t len);
int tls_ticket_keys_import(struct tls_ticket_keys *keys, const unsigned char *buf, size_t len);

/* ---- listeners ------------------------------------------------------------------- */

/* Receives each non-fatal problem found while building (expired or not yet valid
 * certificate, stale OCSP response) as one complete line; the daemon logs it. */
typedef void tls_warn_fn(void *arg, const char *msg);

struct tls_server;

/* Builds the SSL_CTXs of one listener from its validated config.
 *   path   the config path of the tls object, e.g. "listeners.https.tls" (errors and
 *          warnings name e.g. path + ".certificates[1].key")
 *   mode   MODE_HTTP: ALPN mismatch continues without ALPN; MODE_TCP: ALPN mismatch
 *          (only when alpn is configured) is the RFC 7301 no_application_protocol alert
 *   keys   borrowed, may be NULL (then OpenSSL's per-context keys: tickets do not
 *          survive a reload); unused when cfg->ticket_keys_file is set: that file's
 *          keys are read now and kept by the server (an error names path +
 *          ".ticket_keys_file"; a file others may read is reported to warn)
 *   warn   may be NULL
 * Policy: Mozilla "intermediate" v5.7 unless cfg overrides ciphers/ciphersuites —
 * TLS 1.2+ (cfg->min_version may raise it to 1.3), ECDHE/DHE with AES-GCM or
 * ChaCha20, groups X25519:P-256:P-384, client cipher order, no compression, no
 * renegotiation, buffers released on idle connections.
 * Certificates: grouped by identical name sets (SAN dNSNames, else CN); a group may
 * hold one certificate per key type (RSA and ECDSA for the same names: OpenSSL serves
 * the one the client's signature algorithms allow, ECDSA first for clients that
 * prefer it). SNI picks the group with an exact name match, else one with a wildcard
 * match (a wildcard covers exactly one label), else the first certificate's group. */
struct tls_server *tls_server_new(const struct cfg_listener_tls *cfg,
                                  enum listener_mode mode,
                                  struct tls_ticket_keys *keys /* borrowed */,
                                  const char *path, tls_warn_fn *warn, void *warn_arg,
                                  struct err *err);
/* Loads each certificate (chain, key, OCSP response) of cfg on its own, and the
 * ticket keys file, and calls report() with the reason of each one that fails;
 * returns how many failed. For listing every problem at once when tls_server_new()
 * failed (it stops at the first). */
size_t tls_server_check_files(const struct cfg_listener_tls *cfg, const char *path,
                              tls_warn_fn *report, void *arg);
/* A new server-side SSL for one accepted connection (hand it to
 * bufferevent_openssl_socket_new with BUFFEREVENT_SSL_ACCEPTING); NULL on allocation
 * failure. Thread-safe. */
SSL *tls_server_ssl_new(struct tls_server *srv);
/* The same for a connection whose socket `fd` the caller reads and writes itself
 * through the SSL (core/sockio.h): accept state, read-ahead on (a record in one
 * read(2); the caller must read on while SSL_has_pending), partial writes, and
 * moving write buffers allowed. The socket stays the caller's to close. */
SSL *tls_server_ssl_for_socket(struct tls_server *srv, int fd);
/* Another handle on srv's contexts, for a generation built from the same config
 * document (a change of backends found by DNS): nothing is loaded again. Freed on its
 * own; the contexts go with the last handle. NULL when out of memory. */
struct tls_server *tls_server_share(const struct tls_server *srv);
void tls_server_free(struct tls_server *srv);

/* Writes the RFC 4514 subject of the client certificate into buf (NUL-terminated)
 * and returns its length — only when the peer sent a certificate and it verified
 * (SSL_get_verify_result == X509_V_OK). -1 otherwise, or when it does not fit. The
 * string never contains control characters (they are escaped), so it is safe for
 * an X-Client-Cert-Subject header. */
int tls_peer_subject(const SSL *ssl, char *buf, size_t len);

/* Certificate name matching used for SNI (RFC 6125): case-insensitive; one trailing
 * dot on either side ignored; "*.example.com" matches exactly one extra label
 * ("a.example.com", not "a.b.example.com" nor "example.com"); a '*' anywhere else
 * (e.g. "f*.example.com") never matches. Pure. */
bool tls_name_matches(const char *pattern, const char *host);

/* ---- counters ---------------------------------------------------------------------
 * Process-wide, updated with relaxed atomics from any thread. Completions and
 * resumptions are counted by the contexts' info callback; failures by the daemon. */
enum tls_failure_reason {
    TLS_FAIL_NO_SHARED_CIPHER,  /* no common cipher, group or signature algorithm */
    TLS_FAIL_PROTOCOL_VERSION,  /* TLS version below the minimum, or not TLS at all */
    TLS_FAIL_CERTIFICATE,       /* a certificate was missing, rejected or not trusted */
    TLS_FAIL_CLOSED,            /* the peer closed before finishing the handshake */
    TLS_FAIL_TIMEOUT,           /* not finished within timeouts.client_header_ms */
    TLS_FAIL_OTHER,
    TLS_FAIL_COUNT
};

struct tls_stats {
    uint64_t handshakes;        /* server side, completed (including resumed) */
    uint64_t resumed;           /* server side, completed by resumption */
    uint64_t failures[TLS_FAIL_COUNT];  /* server side, by reason */
    uint64_t upstream_handshakes;       /* to backends, completed */
    uint64_t upstream_resumed;          /* to backends, resumed */
};

/* The daemon calls this once when a server-side connection fails before the handshake
 * completed. `ssl_err`: for a bufferevent_openssl, the first value
 * bufferevent_get_openssl_error(bev) returns (libevent has already moved OpenSSL's
 * thread error queue into the bufferevent and hands back the most recent error
 * first); for an SSL run by ferry, ERR_peek_last_error(); or 0, and then OpenSSL's
 * queue is peeked. Returns the reason counted
 * (for the log line). */
enum tls_failure_reason tls_count_handshake_failure(const SSL *ssl, unsigned long ssl_err);
/* The same for a handshake the daemon gave up waiting for. */
void tls_count_handshake_timeout(void);
/* "no_shared_cipher", "protocol_version", "certificate", "closed", "timeout", "other". */
const char *tls_failure_reason_name(enum tls_failure_reason reason);
struct tls_stats tls_stats_snapshot(void);

/* ---- closing ----------------------------------------------------------------------- */

/* True for OpenSSL's "unexpected EOF while reading": the peer closed the TCP
 * connection without close_notify. Treat it as EOF, not as an error. */
bool tls_error_is_dirty_eof(unsigned long ssl_err);

/* Call just before freeing a TLS connection (either side: a bufferevent_openssl, or
 * an SSL ferry runs over its socket itself) that ends without a TLS error — after
 * its output drained, or when the peer closed or an idle timeout fired. Sends
 * close_notify unless the peer already closed or it was sent before, and marks the
 * shutdown done. Why it matters: libevent's bufferevent_openssl frees
 * the SSL without SSL_shutdown, and OpenSSL treats a connection freed that way as
 * failed: it evicts the session from the listener's session cache and marks a
 * client session non-resumable, so pooled upstream connections would never
 * resume. Never blocks (the socket is non-blocking; a failed write is ignored);
 * the process must ignore SIGPIPE, as for any socket write. No-op for NULL or a
 * connection whose handshake did not complete. */
void tls_close_notify(SSL *ssl);

/* ---- pools (TLS to backends) ------------------------------------------------------ */

struct tls_client;

/* TLS >= 1.2 client context for one pool. verify: the backend's chain against cfg->ca
 * (or the system store) and its name (see tls_client_ssl_new). cert/key: client
 * certificate. Sessions are kept per backend address so pooled reconnections resume.
 * `path` is the config path of the tls object, e.g. "pools.web.tls". */
struct tls_client *tls_client_new(const struct cfg_pool_tls *cfg, const char *path,
                                  struct err *err);
/* A new client-side SSL (connect state) for a connection to `backend`: "host:port",
 * "[v6]:port" or a bare host. Sends SNI cfg->sni when set. With verify, the
 * certificate must match cfg->sni when set, else the backend's host (its IP address
 * SANs for a literal address). Resumes the last session of that backend if any.
 * NULL on allocation failure. Thread-safe. */
SSL *tls_client_ssl_new(struct tls_client *client, const char *backend);
/* Another handle on client's context (and its sessions), as tls_server_share. */
struct tls_client *tls_client_share(const struct tls_client *client);
void tls_client_free(struct tls_client *client);

#endif

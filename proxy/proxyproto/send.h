/* proxyproto send — the PROXY header ferry writes before the first byte of each new
 * backend connection of a pool with `proxy_protocol` (tcp relays, HTTP exchanges), and
 * the LOCAL one of its health checks.
 */
#ifndef FERRY_PROXYPROTO_SEND_H
#define FERRY_PROXYPROTO_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "proxyproto/proxyproto.h"

struct session;

/* The header for a backend connection made for session s: its client (addrs.peer),
 * what the client reached (addrs.local, asked of the client socket once when
 * unknown) and, in v2, what ferry's TLS termination learnt (SNI, ALPN, version).
 * Bytes written into buf (PROXYPROTO_WRITE_MAX); 0 for version OFF. Addresses that
 * cannot be known make a v1 UNKNOWN or v2 AF_UNSPEC header. */
size_t proxyproto_session_header(struct session *s, enum proxy_protocol_version version,
                                 uint8_t *buf);

/* A health check's header (LOCAL, "PROXY UNKNOWN"): bytes written, 0 for OFF. */
size_t proxyproto_check_header(enum proxy_protocol_version version, uint8_t *buf);

#endif

/* proxyproto — the PROXY protocol (versions 1 and 2 of HAProxy's specification): a
 * strict parser of the header a connection begins with when a balancer in front of
 * ferry passes the client's address on, and the writer of the header ferry sends to
 * backends. Pure code: byte arrays in and out, no sockets, no allocation.
 *
 * Parser return convention (style.md §3, "parsers"):
 *     > 0                      a complete, valid header of that many bytes; *out filled.
 *                              Bytes after it are the connection's payload (not read).
 *     PROXYPROTO_INCOMPLETE    valid so far: call again with the same bytes plus more
 *                              (stateless re-parse).
 *     PROXYPROTO_ERR_*  (< -1) not a header, or one that violates the specification or
 *                              ferry's size limit; proxyproto_error_str() names it.
 * A prefix of a valid header returns PROXYPROTO_INCOMPLETE; a prefix of any input
 * returns PROXYPROTO_INCOMPLETE or the whole input's result. Every input decides
 * within PROXYPROTO_MAX_HEADER bytes.
 *
 * What counts as valid:
 *  - v1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF, single
 *    spaces, numeric addresses of the named family, decimal ports 0..65535 without
 *    leading zeros, at most 107 bytes; or "PROXY UNKNOWN" followed by anything up to
 *    the CRLF (no bare CR or LF).
 *  - v2: the 12-byte signature, version 2, command LOCAL or PROXY, a known family and
 *    transport, an address block that fits in the announced length, TLVs that fill the
 *    rest exactly (the SSL TLV's sub-TLVs too), and a matching CRC32C when one is
 *    sent. LOCAL headers' blocks are skipped unread, as the specification says.
 *    Datagram transports are refused (ferry receives the header on TCP connections).
 * `is_local` marks the headers whose addresses do not apply, and the connection's own
 * ones are used: v2 LOCAL (a health check from the balancer itself), v1 UNKNOWN, and
 * v2 PROXY for AF_UNSPEC or AF_UNIX.
 */
#ifndef FERRY_PROXYPROTO_H
#define FERRY_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
    PROXYPROTO_V1_MAX = 107,        /* the longest v1 line, CRLF included */
    PROXYPROTO_V2_FIXED = 16,       /* signature, version/command, family, length */
    /* The longest header ferry accepts: a v2 header with TLVs (client certificates'
     * names, unique IDs) of a few hundred bytes fits many times. */
    PROXYPROTO_MAX_HEADER = 4096,
    /* Room enough for any header proxyproto_write() produces. */
    PROXYPROTO_WRITE_MAX = 1024,
};

enum proxyproto_error {
    PROXYPROTO_INCOMPLETE = -1,
    PROXYPROTO_ERR_NOT_PROXY = -2,      /* starts with neither signature */
    PROXYPROTO_ERR_V1_TOO_LONG = -3,    /* no CRLF within 107 bytes */
    PROXYPROTO_ERR_V1_SYNTAX = -4,      /* fields, spaces or line ending */
    PROXYPROTO_ERR_V1_PROTOCOL = -5,    /* neither TCP4, TCP6 nor UNKNOWN */
    PROXYPROTO_ERR_V1_ADDRESS = -6,     /* not a numeric address of that family */
    PROXYPROTO_ERR_V1_PORT = -7,        /* not 0..65535, or a leading zero */
    PROXYPROTO_ERR_V2_VERSION = -8,     /* version nibble is not 2 */
    PROXYPROTO_ERR_V2_COMMAND = -9,     /* neither LOCAL nor PROXY */
    PROXYPROTO_ERR_V2_FAMILY = -10,     /* unknown family or transport, or a datagram one */
    PROXYPROTO_ERR_V2_TOO_LONG = -11,   /* longer than PROXYPROTO_MAX_HEADER */
    PROXYPROTO_ERR_V2_ADDRESS = -12,    /* the length leaves no room for the addresses */
    PROXYPROTO_ERR_V2_TLV = -13,        /* TLVs do not exactly fill the header */
    PROXYPROTO_ERR_V2_CRC = -14,        /* a CRC32C TLV that does not match */
};

/* TLV types of version 2 (specification §2.2.x). */
enum {
    PP2_TYPE_ALPN = 0x01,
    PP2_TYPE_AUTHORITY = 0x02,          /* the host name the client asked for (SNI) */
    PP2_TYPE_CRC32C = 0x03,
    PP2_TYPE_NOOP = 0x04,
    PP2_TYPE_UNIQUE_ID = 0x05,
    PP2_TYPE_SSL = 0x20,                /* client flags, verify result, then sub-TLVs */
    PP2_SUBTYPE_SSL_VERSION = 0x21,
    PP2_CLIENT_SSL = 0x01,
};

struct proxyproto_header {
    int version;                        /* 1 or 2 */
    bool is_local;                      /* use the connection's own addresses */
    struct sockaddr_storage src, dst;   /* !is_local: the client and what it reached */
    const uint8_t *tlvs;                /* v2 PROXY: borrowed from the input; NULL if none */
    size_t tlvs_len;
};

/* Parses the start of a connection's byte stream (buf: borrowed, len bytes). */
int proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto_header *out);

/* The 12 bytes a v2 header begins with (parse.c). */
extern const uint8_t proxyproto_v2_signature[12];

/* "bad v1 port" etc. for logs; "?" for a value that is no error. */
const char *proxyproto_error_str(int rc);

/* The value of the first top-level TLV of `type` in a parsed header (borrowed from
 * the input), its length in *len; NULL when there is none. */
const uint8_t *proxyproto_tlv(const struct proxyproto_header *h, uint8_t type, size_t *len);

/* What ferry knew of the client's TLS when it terminated it (v2 TLVs). */
struct proxyproto_tls {
    const char *sni;                    /* NULL: the client sent none */
    const uint8_t *alpn;                /* NULL: none negotiated */
    size_t alpn_len;
    const char *version;                /* "TLSv1.3" */
};

/* Writes the header announcing a connection from src to dst (AF_INET or AF_INET6;
 * different families are written as IPv6, the IPv4 one mapped; other families as v1
 * UNKNOWN or a v2 PROXY header for AF_UNSPEC). version 1 or 2; tls (v2 only, may be
 * NULL) adds the ALPN, AUTHORITY and SSL TLVs. Returns the bytes written, or 0 when
 * they do not fit in cap (PROXYPROTO_WRITE_MAX always fits). */
size_t proxyproto_write(uint8_t *buf, size_t cap, int version, const struct sockaddr *src,
                        const struct sockaddr *dst, const struct proxyproto_tls *tls);

/* The header of a connection that carries no client (ferry's own health checks): v1
 * "PROXY UNKNOWN", v2 LOCAL. Bytes written, 0 when cap is too small. */
size_t proxyproto_write_local(uint8_t *buf, size_t cap, int version);

/* CRC32C (Castagnoli) of len bytes, as the v2 CRC32C TLV carries it. */
uint32_t proxyproto_crc32c(const uint8_t *buf, size_t len);

#endif

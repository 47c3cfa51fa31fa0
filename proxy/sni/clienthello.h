/* sni clienthello — the server name a TLS client asks for, read from the first bytes
 * of its stream, for `tcp` listeners that route by SNI without terminating TLS.
 *
 * Pure code: no I/O, no allocation, no global state. The caller peeks at what the
 * client sent, asks this module, and relays the same bytes verbatim afterwards.
 *
 * The ClientHello may span several handshake records (RFC 8446 §5.1 allows a
 * handshake message to be fragmented); they are read in place, one payload after the
 * other, as one logical message. Every length field is checked against the bytes that
 * enclose it before anything is read, so no input makes the parser read past len.
 *
 * Return convention (style.md §3, "parsers"):
 *     CLIENTHELLO_SNI         a complete, valid ClientHello with a host_name; name holds
 *                             it, lower-cased and NUL-terminated.
 *     CLIENTHELLO_NO_SNI      a complete, valid ClientHello without a host_name.
 *     CLIENTHELLO_INCOMPLETE  valid so far: call again with the same bytes plus more
 *                             (stateless re-parse; the result only depends on the
 *                             first CLIENTHELLO_MAX_PEEK bytes, and with that many it
 *                             is never INCOMPLETE).
 *     CLIENTHELLO_NOT_TLS     the stream does not start with a TLS handshake record
 *                             (plain HTTP, SSLv2-style hello, another protocol).
 *     CLIENTHELLO_INVALID     a TLS handshake record whose ClientHello is malformed,
 *                             too large, or whose server name is not a host name.
 * A prefix of any input returns CLIENTHELLO_INCOMPLETE or the whole input's result.
 * Bytes after the ClientHello (e.g. early data) are ignored.
 */
#ifndef FERRY_SNI_CLIENTHELLO_H
#define FERRY_SNI_CLIENTHELLO_H

#include <stddef.h>

enum clienthello_result {
    CLIENTHELLO_SNI = 1,
    CLIENTHELLO_NO_SNI = 0,
    CLIENTHELLO_INCOMPLETE = -1,
    CLIENTHELLO_NOT_TLS = -2,
    CLIENTHELLO_INVALID = -3,
};

/* The largest ClientHello body (handshake header excluded) worth waiting for. Real
 * ones are 200 bytes to a few KiB (post-quantum key shares, PSK tickets, padding). */
#define CLIENTHELLO_MAX_MESSAGE 16384
/* How many bytes the caller buffers at most before asking: a ClientHello of
 * CLIENTHELLO_MAX_MESSAGE bytes plus its handshake header plus about 200 record
 * headers, so even a hello cut into many small records still fits. */
#define CLIENTHELLO_MAX_PEEK (CLIENTHELLO_MAX_MESSAGE + 4 + 1020)
/* Longest name written, without the NUL. */
#define CLIENTHELLO_MAX_NAME 255

/* Parses the start of a client's byte stream (buf: borrowed, len bytes; bytes past
 * CLIENTHELLO_MAX_PEEK are not looked at) and returns an enum clienthello_result.
 * On CLIENTHELLO_SNI, name holds the host name: 1..255 bytes of [a-z0-9-_.] in
 * non-empty labels of at most 63 bytes, no trailing dot, NUL-terminated. On every
 * other result name is the empty string. */
int clienthello_sni(const unsigned char *buf, size_t len, char name[CLIENTHELLO_MAX_NAME + 1]);

/* After CLIENTHELLO_INCOMPLETE for (buf, len): how many bytes of the stream must be
 * buffered before the result can be CLIENTHELLO_SNI or CLIENTHELLO_NO_SNI, judged
 * from the record and handshake headers seen so far; > len and <= CLIENTHELLO_MAX_PEEK
 * (CLIENTHELLO_MAX_PEEK once len has reached it). Use it as the read low watermark rather
 * than re-parsing on every read: a client that trickles a 16 KiB hello byte by byte
 * would otherwise cost O(n^2) (about half a CPU second). A malformed hello may be
 * recognised as INVALID with fewer bytes; waiting longer only delays closing it. */
size_t clienthello_bytes_needed(const unsigned char *buf, size_t len);

/* A short description of a result for logs ("malformed ClientHello"); never NULL. */
const char *clienthello_result_str(int result);

#endif

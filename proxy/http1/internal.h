/* Internal to the http1 module: character classes and the field semantics shared by
 * the request, response and chunked-trailer parsers. Not part of the public API. */
#ifndef FERRY_HTTP1_INTERNAL_H
#define FERRY_HTTP1_INTERNAL_H

#include "http1/parse.h"

#define HTTP1_C_TCHAR 0x01  /* token character (RFC 9110 §5.6.2) */
#define HTTP1_C_FIELD 0x02  /* field-value byte: VCHAR, obs-text, SP, HTAB */
#define HTTP1_C_TARGET 0x04 /* request-target byte: VCHAR except '#' */
#define HTTP1_C_HOST 0x08   /* uri-host / port byte, including ':' '[' ']' '%' */
#define HTTP1_C_HEX 0x10
#define HTTP1_C_QDTEXT 0x20 /* quoted-string text (RFC 9110 §5.6.4) */

extern const uint8_t http1_char_class[256];

static inline bool http1_is(unsigned char c, uint8_t cls)
{
    return (http1_char_class[c] & cls) != 0;
}

static inline bool http1_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Fills h->id and the hop-by-hop flag the name alone implies. */
void http1_classify_header(struct http1_header *h);

/* What the header fields say about framing and the connection (fields.c). */
struct http1_fields {
    bool is_request;
    int minor_version;
    bool has_content_length, has_transfer_encoding, has_host;
    uint64_t content_length;
    const struct http1_header *host, *upgrade;
    bool conn_close, conn_keep_alive, conn_upgrade;
    bool expect_continue;
};

/* Validates the framing fields (Content-Length, Transfer-Encoding, Host for requests)
 * and derives *out; marks headers named by Connection. 0 or HTTP1_ERR_*. */
int http1_derive_fields(struct http1_header *headers, size_t n, bool is_request,
                        int minor_version, struct http1_fields *out);

#endif

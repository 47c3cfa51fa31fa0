/* http2 translate — HTTP/2 messages to and from the HTTP/1.1 ferry speaks to
 * backends (RFC 9113 §8). Pure: no sockets, no nghttp2 session; the front end
 * (proxy/http2/session.c) hands it the decoded fields nghttp2 delivered and sends what
 * it returns. nghttp2's own HTTP messaging checks run first; these checks are ferry's
 * own as well, so that every rule is unit-tested here and no request reaches a backend
 * on the strength of a library default.
 *
 * Return convention (style.md §3): 0 ok, else an enum h2_translate_error naming why.
 */
#ifndef FERRY_HTTP2_TRANSLATE_H
#define FERRY_HTTP2_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "http/forward.h"
#include "http1/parse.h"

struct evbuffer;

enum h2_translate_error {
    H2_TRANSLATE_MALFORMED = -1,    /* stream error PROTOCOL_ERROR (RFC 9113 §8.1.1) */
    H2_TRANSLATE_TOO_LARGE = -2,    /* header list over the limits: answer 431 */
    H2_TRANSLATE_TARGET_TOO_LONG = -3, /* :path over max_target_bytes: answer 414 */
    H2_TRANSLATE_NO_MEMORY = -4,    /* the evbuffer could not grow */
    H2_TRANSLATE_UNSUPPORTED = -5,  /* extended CONNECT for a :protocol other than
                                       websocket: answer 501 */
};

/* The size of one field as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2):
 * name + value + 32. The front end sums this as fields arrive and stops keeping them
 * once the sum passes lim->max_header_bytes (the request is then answered 431). */
static inline size_t h2_field_size(size_t name_len, size_t value_len)
{
    return name_len + value_len + 32;
}

/* What the exchange needs of a request besides the head written for the backend.
 * Spans are borrowed from the fields passed in. */
struct h2_request_info {
    enum http1_method method_id;
    const char *method;
    size_t method_len;
    const char *path;           /* :path; NULL for CONNECT */
    size_t path_len;
    const char *authority;      /* :authority, else the host field; NULL if neither */
    size_t authority_len;
    enum http1_body_kind body;  /* framing of the request to the backend: NONE,
                                   LENGTH (content-length) or CHUNKED; UNTIL_CLOSE for
                                   a WebSocket (its DATA are the tunnel's bytes) */
    bool is_websocket;          /* extended CONNECT with :protocol websocket (RFC
                                   8441): method GET from here on, an upgrade for the
                                   backend */
    uint64_t content_length;    /* body == HTTP1_BODY_LENGTH */
    bool expect_continue;       /* "expect: 100-continue" */
};

/* Translates the request header list of one stream (fields in the order received;
 * `end_stream`: the HEADERS frame ended the stream, so there is no body) into the
 * HTTP/1.1 head appended to `head` and *info.
 *
 * Malformed (H2_TRANSLATE_MALFORMED): a pseudo-header other than :method, :scheme,
 * :authority, :path, :protocol; one repeated; one after a regular field; :method
 * missing or not a token; :protocol with a method other than CONNECT (RFC 8441 §4:
 * nghttp2 lets :protocol through only when ferry sent SETTINGS_ENABLE_CONNECT_PROTOCOL);
 * for methods other than CONNECT, and for CONNECT with :protocol, :scheme or :path
 * missing, or :path empty, not starting with '/' (or exactly "*" for OPTIONS) or with
 * a byte a request-target may not have (SP, CTL, '#', non-ASCII); CONNECT with
 * :protocol but without :authority; CONNECT without :protocol with :scheme or :path,
 * or without :authority, or with one that names no port; :authority with userinfo ('@') or not a valid uri-host[:port];
 * a field name that is empty, has an upper-case letter or a byte outside tchar; a
 * value with a byte other than VCHAR, obs-text, SP, HTAB (NUL, CR, LF and every other
 * control: RFC 9110 §5.5, the value goes on into an HTTP/1.1 head) or with
 * leading/trailing SP/HTAB; a connection-specific field (connection, keep-alive,
 * proxy-connection, transfer-encoding, upgrade); "te" other than "trailers"; a
 * content-length that is not 1*DIGIT (below 2^63), or several that differ, or one
 * above 0 when end_stream (RFC 9113 §8.1.1: there is no DATA to match it); more than
 * one host field; a host field that differs from :authority (compared
 * case-insensitively) or, without :authority, is not a valid uri-host[:port].
 * Unsupported (H2_TRANSLATE_UNSUPPORTED): a well-formed extended CONNECT whose
 * :protocol is not "websocket" (compared without case).
 * Too large (H2_TRANSLATE_TOO_LARGE): the sum of h2_field_size() over all fields
 * above lim->max_header_bytes, or more than lim->max_headers regular fields (each
 * cookie crumb counts). :path longer than lim->max_target_bytes: TARGET_TOO_LONG.
 * Checked in that order: TOO_LARGE first (the list may have been cut short), then
 * MALFORMED, then UNSUPPORTED, then TARGET_TOO_LONG. *info is set only on success.
 * A content-length above lim->max_body_bytes (when not 0) is not an error here: the
 * exchange answers 413 as for HTTP/1.1.
 *
 * The head: "METHOD SP :path SP HTTP/1.1" (CONNECT: "CONNECT SP :authority SP
 * HTTP/1.1"; a WebSocket's extended CONNECT: "GET SP :path SP HTTP/1.1", the upgrade
 * request of RFC 6455 §4.1 it stands for), then "Host: " :authority (else the host field, else
 * rw->default_host); the regular fields in order, except host, te,
 * content-length, the cookie crumbs (joined with "; " into one Cookie line where the
 * first crumb was, RFC 9113 §8.2.3) and the fields ferry sets itself
 * (x-forwarded-for/-proto/-host, x-client-cert-subject); then the same tail the
 * HTTP/1.1 path writes (http_forward_add_proxy_fields: X-Forwarded-For with the
 * client's x-forwarded-for values first, X-Forwarded-Proto, X-Forwarded-Host = the
 * authority, X-Client-Cert-Subject); then the framing: none for CONNECT (its DATA are
 * the tunnel's bytes), and for a WebSocket "Connection: Upgrade", "Upgrade: websocket"
 * and "Sec-WebSocket-Key: " rw->websocket_key (a client's own sec-websocket-key is
 * not passed; its sec-websocket-version, -protocol and -extensions are, as regular
 * fields); "Content-Length: N" when the request has a content-length
 * (also 0); none when end_stream and the method is GET, HEAD, DELETE, OPTIONS or
 * TRACE; "Content-Length: 0" when end_stream otherwise (some servers refuse a POST
 * without a length); else "Transfer-Encoding: chunked" (the body's length is
 * unknown: DATA frames are chunked, trailers become the chunked trailer section). Field names are written as received (lower case).
 * rw->strip_cookie (ferry's sticky cookie) is left out of the joined Cookie field.
 * On error nothing is appended to `head`, except after NO_MEMORY, which may leave
 * part of it there: discard the buffer then. With head NULL the request is only
 * checked and *info filled: h2_translate_request_head() writes it later (once the
 * request found its route, which says which cookie to strip). */
int h2_translate_request(const nghttp2_nv *fields, size_t n_fields, bool end_stream,
                         const struct http1_limits *lim,
                         const struct http_request_rewrite *rw, struct evbuffer *head,
                         struct h2_request_info *info);
/* The head of a request h2_translate_request() checked (the same fields and *info),
 * as it would have written it. 0 or H2_TRANSLATE_NO_MEMORY. */
int h2_translate_request_head(const nghttp2_nv *fields, size_t n_fields,
                              const struct h2_request_info *info,
                              const struct http_request_rewrite *rw, struct evbuffer *head);

/* The request's trailer fields (a HEADERS frame with END_STREAM after DATA) as the end
 * of a chunked body: "0\r\n", each field as "name: value\r\n", "\r\n".
 * Malformed: any pseudo-header, a connection-specific field, bad names or values (as
 * above). Too large: the limits as above. Fields a trailer must not carry (RFC 9110
 * §6.5.1) — content-length, host, te, transfer-encoding, authorization, cookie,
 * x-forwarded-*, x-client-cert-subject — are dropped, not forwarded. Errors and
 * NO_MEMORY as for the request. */
int h2_translate_request_trailers(const nghttp2_nv *fields, size_t n_fields,
                                  const struct http1_limits *lim, struct evbuffer *out);

/* Storage for one translated response header list: nva points into `names` (the
 * lower-cased names), into the parsed HTTP/1.1 head (values) and into `status` and
 * `length`. Entries have NGHTTP2_NV_FLAG_NONE: nghttp2_submit_* copies them, so the
 * storage need only outlive that call. */
struct h2_response_fields {
    nghttp2_nv *nva;            /* borrowed: capacity cap entries */
    size_t cap, count;
    char *names;                /* borrowed: capacity names_cap bytes */
    size_t names_cap;
    char status[4];
    char length[24];            /* the content-length value ferry writes */
};

/* A backend's response head (as http1_parse_response left it in resp) as an HTTP/2
 * header list: ":status" first, then the fields in order with names lower-cased,
 * without the hop-by-hop ones (Connection and what it names, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Upgrade) and the framing ones (Transfer-Encoding,
 * Content-Length); "content-length" last, written from resp->content_length when the
 * response has one (HEAD and 304 included: it describes the representation), never
 * for 1xx and 204. Values are borrowed from the parsed head (resp->headers point
 * into it). Needs cap >= resp->num_headers + 2 and names_cap >= the names' total
 * length (the head's length always suffices); -1 when that does not hold. Used for
 * 1xx too. */
int h2_translate_response(const struct http1_response *resp, struct h2_response_fields *out);
/* The 101 that opened a WebSocket for an extended CONNECT, as the client takes it
 * (RFC 8441 §5): :status 200, and the fields as h2_translate_response keeps them but
 * sec-websocket-accept (it answers the key ferry sent, not the client's). */
int h2_translate_tunnel_response(const struct http1_response *resp,
                                 struct h2_response_fields *out);

/* A chunked trailer section as the HTTP/1.1 decoder passed it (already validated:
 * "name: value\r\n" lines, then "\r\n", nothing after) as HTTP/2 trailer fields in
 * order, values with OWS trimmed and borrowed from section, names lower-cased into
 * out->names, the hop-by-hop and framing fields dropped as for the response (none
 * should be there). Needs cap >= the number of lines and names_cap >= len. -1 when
 * out is too small, or when the section is not of that shape. */
int h2_translate_trailer_section(const char *section, size_t len,
                                 struct h2_response_fields *out);

#endif

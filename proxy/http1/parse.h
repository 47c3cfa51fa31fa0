/* http1 — strict, zero-copy, incremental HTTP/1.x message parser (RFC 9112).
 *
 * Pure code: no I/O, no malloc, no global state. Everything it returns points into
 * the caller's buffer (borrowed), so the buffer must outlive the parsed result.
 * Strict where leniency lets two parsers disagree about framing: CRLF line ends only
 * (bare CR or LF is an error), no obs-fold, no whitespace before ':', one valid
 * Content-Length or a final "chunked", never both.
 *
 * Return convention (style.md §3) for the head parsers:
 *     > 0                 the head is complete and valid; the value is the number of
 *                         bytes it occupies (start line .. blank line inclusive). The
 *                         body, if any, starts right after.
 *     HTTP1_INCOMPLETE    no violation so far, but the head is not complete: call
 *                         again with the same bytes plus more (stateless re-parse).
 *     HTTP1_ERR_*  (< -1) the message violates RFC 9112 or a limit; the enum value
 *                         names the violation (http1_error_str) and the status ferry
 *                         answers a client with (http1_error_status). Close after it.
 * Bytes may arrive in any split: a proper prefix of a valid head always returns
 * HTTP1_INCOMPLETE, and a prefix of an invalid head returns HTTP1_INCOMPLETE or the
 * same error as the whole.
 *
 * Re-parsing costs O(head). To stay linear when bytes trickle in, call the parser
 * only when http1_head_ready() says a complete head (or an error) may be there.
 *
 * The chunked body decoder (http1_chunked_*) is incremental with explicit state and
 * works over non-contiguous buffers; see its comment below.
 */
#ifndef FERRY_HTTP1_PARSE_H
#define FERRY_HTTP1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum http1_error {
    HTTP1_INCOMPLETE = -1,
    HTTP1_ERR_BAD_METHOD = -2,          /* method is not a token */
    HTTP1_ERR_BAD_TARGET = -3,          /* CTL/space/non-ASCII or wrong form */
    HTTP1_ERR_TARGET_TOO_LONG = -4,     /* > lim->max_target_bytes: 414 */
    HTTP1_ERR_BAD_REQUEST_LINE = -5,    /* not "method SP target SP version CRLF" */
    HTTP1_ERR_BAD_VERSION = -6,         /* not "HTTP/" DIGIT "." DIGIT */
    HTTP1_ERR_VERSION_UNSUPPORTED = -7, /* well-formed, not 1.0/1.1: 505 */
    HTTP1_ERR_BAD_STATUS_LINE = -8,
    HTTP1_ERR_BAD_HEADER_NAME = -9,     /* empty, not a token, or no colon */
    HTTP1_ERR_SPACE_BEFORE_COLON = -10,
    HTTP1_ERR_OBS_FOLD = -11,           /* line starting with SP/HTAB */
    HTTP1_ERR_BAD_HEADER_VALUE = -12,   /* control character in a field value */
    HTTP1_ERR_NUL = -13,
    HTTP1_ERR_BARE_CR = -14,            /* CR not followed by LF */
    HTTP1_ERR_BARE_LF = -15,            /* LF not preceded by CR */
    HTTP1_ERR_TOO_MANY_HEADERS = -16,   /* > lim->max_headers fields: 431 */
    HTTP1_ERR_HEAD_TOO_LARGE = -17,     /* > lim->max_header_bytes: 431 */
    HTTP1_ERR_BAD_CONTENT_LENGTH = -18, /* not 1*DIGIT, or too large */
    HTTP1_ERR_CONTENT_LENGTH_MISMATCH = -19, /* several differing values */
    HTTP1_ERR_CL_AND_TE = -20,          /* both present: request smuggling */
    HTTP1_ERR_TE_NOT_CHUNKED = -21,     /* final coding is not chunked */
    HTTP1_ERR_TE_BAD = -22,             /* malformed list, chunked repeated/with params */
    HTTP1_ERR_TE_UNSUPPORTED = -23,     /* a coding before chunked: 501 */
    HTTP1_ERR_TE_IN_HTTP10 = -24,       /* HTTP/1.0 message with Transfer-Encoding */
    HTTP1_ERR_MISSING_HOST = -25,       /* HTTP/1.1 request without Host */
    HTTP1_ERR_MULTIPLE_HOST = -26,
    HTTP1_ERR_BAD_HOST = -27,           /* Host value is not uri-host[:port] */
    HTTP1_ERR_BODY_TOO_LARGE = -28,     /* > lim->max_body_bytes: 413 */
    HTTP1_ERR_CHUNK_SIZE = -29,         /* chunk size missing or not hex */
    HTTP1_ERR_CHUNK_SIZE_OVERFLOW = -30,/* > 16 hex digits or >= 2^63 */
    HTTP1_ERR_CHUNK_EXT = -31,          /* malformed chunk extension */
    HTTP1_ERR_CHUNK_EXT_TOO_LONG = -32, /* > HTTP1_MAX_CHUNK_EXT bytes */
    HTTP1_ERR_CHUNK_DATA_CRLF = -33,    /* chunk data not followed by CRLF */
    HTTP1_ERR_TRAILER_TOO_LARGE = -34,  /* trailer section over the head limits */
    HTTP1_ERR_TRAILER_FORBIDDEN = -35,  /* framing/routing field in trailers */
};
#define HTTP1_ERR_MIN HTTP1_ERR_TRAILER_FORBIDDEN

/* Human-readable name of a return value ("whitespace before colon in header");
 * never NULL. */
const char *http1_error_str(int err);
/* The status ferry answers a client's request with for err: 400, 413, 414, 431, 501
 * or 505 (400 for anything that is not an error). For errors in a backend's response
 * the proxy answers 502 instead. */
int http1_error_status(int err);

struct http1_limits {
    size_t max_header_bytes; /* whole head, start line to blank line: 431 */
    size_t max_headers;      /* header fields; entries in the caller's array: 431 */
    size_t max_target_bytes; /* request-target: 414 */
    uint64_t max_body_bytes; /* Content-Length or chunked payload: 413; 0 = no limit */
};
#define HTTP1_LIMITS_DEFAULT { 16384, 100, 8192, 0 }

enum http1_method {
    HTTP1_METHOD_OTHER = 0, HTTP1_METHOD_GET, HTTP1_METHOD_HEAD, HTTP1_METHOD_POST,
    HTTP1_METHOD_PUT, HTTP1_METHOD_DELETE, HTTP1_METHOD_OPTIONS, HTTP1_METHOD_PATCH,
    HTTP1_METHOD_CONNECT, HTTP1_METHOD_TRACE,
};

enum http1_target_form {
    HTTP1_TARGET_ORIGIN,    /* "/path?query" */
    HTTP1_TARGET_ABSOLUTE,  /* "http://host/path" (or https): host and path split out */
    HTTP1_TARGET_AUTHORITY, /* "host:port", CONNECT only */
    HTTP1_TARGET_ASTERISK,  /* "*", OPTIONS only */
};

enum http1_body_kind {
    HTTP1_BODY_NONE,        /* no body bytes follow the head */
    HTTP1_BODY_LENGTH,      /* exactly content_length bytes (may be 0) */
    HTTP1_BODY_CHUNKED,     /* decode with http1_chunked_step */
    HTTP1_BODY_UNTIL_CLOSE, /* response only: everything until the backend closes */
};

/* Header fields the proxy treats specially, recognised case-insensitively. */
enum http1_header_id {
    HTTP1_H_OTHER = 0, HTTP1_H_HOST, HTTP1_H_CONTENT_LENGTH, HTTP1_H_TRANSFER_ENCODING,
    HTTP1_H_CONNECTION, HTTP1_H_KEEP_ALIVE, HTTP1_H_PROXY_CONNECTION, HTTP1_H_TE,
    HTTP1_H_TRAILER, HTTP1_H_UPGRADE, HTTP1_H_EXPECT, HTTP1_H_X_FORWARDED_FOR,
    HTTP1_H_X_FORWARDED_PROTO, HTTP1_H_X_FORWARDED_HOST, HTTP1_H_X_CLIENT_CERT_SUBJECT,
};

/* http1_header.flags */
#define HTTP1_HF_HOP_BY_HOP 0x01 /* strip when forwarding (Upgrade: unless upgrading) */
#define HTTP1_HF_CONNECTION_NAMED 0x02 /* hop-by-hop because Connection lists it */
/* Content-Length / Transfer-Encoding: never copy verbatim ("5, 5" or "chunked" for an
 * HTTP/1.0 peer); write the framing from body/content_length instead. */
#define HTTP1_HF_FRAMING 0x04

struct http1_header {
    const char *name;  /* borrowed */
    size_t name_len;
    const char *value; /* borrowed; leading/trailing OWS trimmed */
    size_t value_len;
    uint8_t id;        /* enum http1_header_id */
    uint8_t flags;     /* HTTP1_HF_* */
};

struct http1_request {
    const char *method; /* borrowed */
    size_t method_len;
    enum http1_method method_id;
    const char *target; /* borrowed */
    size_t target_len;
    enum http1_target_form target_form;
    /* borrowed; the target in origin-form: the target itself, or for an absolute-form
     * target what follows its authority ("/x?q", "?q" or "", which need a "/" in
     * front: http1_path_needs_slash) */
    const char *path;
    size_t path_len;
    int minor_version;  /* 0 or 1 */
    /* Set by the caller before parsing: storage for lim->max_headers entries. */
    struct http1_header *headers; /* borrowed */
    size_t num_headers;
    bool has_host;      /* a Host field was sent (HTTP/1.1 requires one, always) */
    /* borrowed; the request's host: an absolute-form target's authority, which
     * replaces Host (RFC 9112 §3.2.2), else the Host value; NULL when neither */
    const char *host;
    size_t host_len;
    enum http1_body_kind body;
    bool has_content_length;
    uint64_t content_length; /* the (merged) Content-Length value */
    bool keep_alive;    /* 1.1 unless "close"; 1.0 only with "keep-alive" */
    bool is_upgrade;    /* 1.1, Upgrade present and Connection lists "upgrade" */
    const char *upgrade; /* borrowed; the Upgrade value when is_upgrade */
    size_t upgrade_len;
    bool expect_continue; /* 1.1 with "Expect: 100-continue" */
};

/* True when req->path is an absolute-form target's empty path or bare query: its
 * origin-form is "/" followed by it. */
static inline bool http1_path_needs_slash(const struct http1_request *req)
{
    return req->target_form == HTTP1_TARGET_ABSOLUTE &&
           (req->path_len == 0 || req->path[0] != '/');
}

struct http1_response {
    int minor_version;  /* 0 or 1 */
    int status;         /* 100..599 */
    const char *reason; /* borrowed; may be empty */
    size_t reason_len;
    /* Set by the caller before parsing: storage for lim->max_headers entries. */
    struct http1_header *headers; /* borrowed */
    size_t num_headers;
    enum http1_body_kind body; /* already accounts for HEAD/1xx/204/304/CONNECT */
    bool has_content_length; /* also for HEAD/304, where it describes no body here */
    uint64_t content_length; /* the (merged) Content-Length value */
    bool keep_alive;    /* false for close-delimited bodies and 101 */
    bool is_interim;    /* 1xx other than 101: a final response follows */
    bool is_upgrade;    /* 101 Switching Protocols: the connection becomes a tunnel */
};

/* True when the caller should (re)run the head parser on buf[0..len): on the first
 * call (prev_len 0), when the bytes added since prev_len (the length at the previous
 * call) complete a blank line or contain a bare LF, or when len reached
 * max_header_bytes. Scans only the new bytes, so waiting for a head stays linear. */
bool http1_head_ready(const char *buf, size_t len, size_t prev_len, size_t max_header_bytes);

/* Parses a request head at buf. req->headers must point to lim->max_headers entries;
 * every other field of *req is overwritten. Empty lines before the request line are
 * skipped (RFC 9112 §2.2) and counted in the return value. */
int http1_parse_request(const char *buf, size_t len, const struct http1_limits *lim,
                        struct http1_request *req);

/* Parses a response head at buf for a request made with req_method (HEAD and CONNECT
 * change the framing). resp->headers as for requests; lim->max_target_bytes unused. */
int http1_parse_response(const char *buf, size_t len, const struct http1_limits *lim,
                         enum http1_method req_method, struct http1_response *resp);

/* Iterates the elements of a comma-separated header list (RFC 9110 §5.6.1), skipping
 * empty ones. *pos starts at the value and advances (NULL once the list is used up);
 * returns false at the end.
 * Elements have OWS trimmed and point into the value (borrowed). */
bool http1_list_next(const char **pos, const char *end, const char **elem, size_t *elem_len);

/* The id of a method name (case-sensitive, RFC 9110 §9.1); HTTP1_METHOD_OTHER for
 * one ferry has no id for. */
enum http1_method http1_method_id(const char *m, size_t len);

/* Case-insensitive ASCII comparison of a span with a NUL-terminated lowercase word. */
bool http1_token_eq(const char *s, size_t len, const char *lower);

/* ---- chunked body decoder -------------------------------------------------------
 * Feed the body bytes in order, in any split, from any number of buffers:
 *
 *     rc = http1_chunked_step(&dec, p, len, &consumed, &data_len);
 *
 * Each call consumes framing bytes (chunk lines, CRLFs, trailers) and then at most one
 * run of payload: the payload is the LAST data_len bytes of the consumed ones, i.e.
 * p + consumed - data_len. Returns HTTP1_CHUNKED_MORE (call again with the bytes after
 * consumed, or with the next buffer when consumed == len), HTTP1_CHUNKED_END (the
 * message ended with the last-chunk, trailers and blank line; bytes after consumed
 * belong to the next message; further calls consume nothing), or HTTP1_ERR_*. With
 * len > 0 and MORE, consumed > 0. To relay the body verbatim forward the consumed
 * bytes; to de-chunk forward only the payload spans. After an error, later calls
 * return the same error and consume nothing: close the connection.
 * Only CRLF line ends are accepted. Trailers follow the header-field rules; those
 * naming Content-Length, Transfer-Encoding, Host, X-Forwarded-For/-Host/-Proto or
 * X-Client-Cert-Subject are refused, since a backend that merges trailers into the
 * head would see fields the proxy strips or sets. */
#define HTTP1_MAX_CHUNK_EXT 4096 /* bytes of extensions per chunk line */

enum http1_chunked_result { HTTP1_CHUNKED_MORE = 0, HTTP1_CHUNKED_END = 1 };

struct http1_chunked {
    /* Private state: initialise with http1_chunked_init, read with the accessors. */
    uint8_t state;
    int8_t error;            /* the HTTP1_ERR_* returned, repeated by later calls */
    uint8_t name_len;        /* trailer name bytes; > sizeof(name) when longer */
    uint16_t digits;         /* hex digits of the chunk size so far */
    uint32_t line_bytes;     /* extension bytes of this chunk line */
    uint64_t remaining;      /* chunk size, then payload bytes left in the chunk */
    uint64_t payload_total;  /* payload bytes of the whole body so far */
    uint64_t max_body;       /* 0 = no limit */
    size_t trailer_bytes, max_trailer_bytes;
    size_t trailers, max_trailers;
    char name[24];           /* the current trailer name, lowercased, if it fits */
};

/* Trailers are bounded by lim->max_header_bytes and lim->max_headers, the payload by
 * lim->max_body_bytes. */
void http1_chunked_init(struct http1_chunked *dec, const struct http1_limits *lim);
int http1_chunked_step(struct http1_chunked *dec, const char *p, size_t len,
                       size_t *consumed, size_t *data_len);
/* Payload bytes decoded so far. */
uint64_t http1_chunked_payload_bytes(const struct http1_chunked *dec);
/* Bytes of the trailer section consumed so far: its field lines and the final CRLF
 * (2 for a body without trailers, once it ended). They are always the last bytes
 * the decoder consumed. */
size_t http1_chunked_trailer_bytes(const struct http1_chunked *dec);

#endif

/* Names and HTTP statuses of the parser's return values. */
#include "http1/parse.h"

static const struct {
    const char *text;
    int status;
} errors[] = {
    [-HTTP1_INCOMPLETE] = { "incomplete message", 400 },
    [-HTTP1_ERR_BAD_METHOD] = { "invalid method", 400 },
    [-HTTP1_ERR_BAD_TARGET] = { "invalid request-target", 400 },
    [-HTTP1_ERR_TARGET_TOO_LONG] = { "request-target too long", 414 },
    [-HTTP1_ERR_BAD_REQUEST_LINE] = { "malformed request line", 400 },
    [-HTTP1_ERR_BAD_VERSION] = { "malformed HTTP version", 400 },
    [-HTTP1_ERR_VERSION_UNSUPPORTED] = { "HTTP version not supported", 505 },
    [-HTTP1_ERR_BAD_STATUS_LINE] = { "malformed status line", 400 },
    [-HTTP1_ERR_BAD_HEADER_NAME] = { "invalid header name", 400 },
    [-HTTP1_ERR_SPACE_BEFORE_COLON] = { "whitespace before colon in header", 400 },
    [-HTTP1_ERR_OBS_FOLD] = { "obsolete line folding", 400 },
    [-HTTP1_ERR_BAD_HEADER_VALUE] = { "control character in header value", 400 },
    [-HTTP1_ERR_NUL] = { "NUL byte in message head", 400 },
    [-HTTP1_ERR_BARE_CR] = { "CR not followed by LF", 400 },
    [-HTTP1_ERR_BARE_LF] = { "LF without CR", 400 },
    [-HTTP1_ERR_TOO_MANY_HEADERS] = { "too many header fields", 431 },
    [-HTTP1_ERR_HEAD_TOO_LARGE] = { "header section too large", 431 },
    [-HTTP1_ERR_BAD_CONTENT_LENGTH] = { "invalid Content-Length", 400 },
    [-HTTP1_ERR_CONTENT_LENGTH_MISMATCH] = { "conflicting Content-Length values", 400 },
    [-HTTP1_ERR_CL_AND_TE] = { "both Content-Length and Transfer-Encoding", 400 },
    [-HTTP1_ERR_TE_NOT_CHUNKED] = { "Transfer-Encoding does not end with chunked", 400 },
    [-HTTP1_ERR_TE_BAD] = { "malformed Transfer-Encoding", 400 },
    [-HTTP1_ERR_TE_UNSUPPORTED] = { "unsupported transfer coding", 501 },
    [-HTTP1_ERR_TE_IN_HTTP10] = { "Transfer-Encoding in an HTTP/1.0 message", 400 },
    [-HTTP1_ERR_MISSING_HOST] = { "missing Host in HTTP/1.1 request", 400 },
    [-HTTP1_ERR_MULTIPLE_HOST] = { "more than one Host", 400 },
    [-HTTP1_ERR_BAD_HOST] = { "invalid Host", 400 },
    [-HTTP1_ERR_BODY_TOO_LARGE] = { "body too large", 413 },
    [-HTTP1_ERR_CHUNK_SIZE] = { "invalid chunk size", 400 },
    [-HTTP1_ERR_CHUNK_SIZE_OVERFLOW] = { "chunk size too large", 400 },
    [-HTTP1_ERR_CHUNK_EXT] = { "malformed chunk extension", 400 },
    [-HTTP1_ERR_CHUNK_EXT_TOO_LONG] = { "chunk extensions too long", 400 },
    [-HTTP1_ERR_CHUNK_DATA_CRLF] = { "chunk data not followed by CRLF", 400 },
    [-HTTP1_ERR_TRAILER_TOO_LARGE] = { "trailer section too large", 400 },
    [-HTTP1_ERR_TRAILER_FORBIDDEN] = { "framing or routing field in trailers", 400 },
};

_Static_assert(sizeof(errors) / sizeof(errors[0]) == 1 - HTTP1_ERR_MIN,
               "every enum http1_error has a text and a status");

const char *http1_error_str(int err)
{
    if (err >= 0)
        return "ok";
    if (err < HTTP1_ERR_MIN)
        return "unknown error";
    return errors[-err].text;
}

int http1_error_status(int err)
{
    if (err >= 0 || err < HTTP1_ERR_MIN)
        return 400;
    return errors[-err].status;
}

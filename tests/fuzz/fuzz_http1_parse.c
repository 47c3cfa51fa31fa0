/* libFuzzer harness for the http1 parsers. Every input is run through:
 *   - the request parser and the response parser (GET and HEAD), with the default
 *     limits and with tiny ones, checking the invariants of a successful parse and
 *     that every prefix agrees with the whole (INCOMPLETE or the same result);
 *   - the chunked decoder (on the body when the input parses as a chunked request,
 *     else on the whole input), whole, byte by byte and in input-derived pieces,
 *     checking that all three agree on result, bytes consumed and payload.
 * Inputs are copied to exact-size heap buffers so ASan sees any over-read.
 * Built by scripts/fuzz with -fsanitize=fuzzer, and by ctest as a corpus runner. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1/parse.h"

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#define MAX_HEADERS 100
#define ALL_PREFIXES_UP_TO 160
#define SAMPLED_PREFIXES 48

static const struct http1_limits default_limits = HTTP1_LIMITS_DEFAULT;
static const struct http1_limits tiny_limits = { 96, 4, 24, 64 };

static char *copy(const uint8_t *data, size_t len)
{
    char *p = malloc(len ? len : 1);
    CHECK(p);
    memcpy(p, data, len);
    return p;
}

static bool in_head(const char *p, size_t len, const char *buf, int rc)
{
    return len == 0 || (p >= buf && p + len <= buf + rc);
}

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
           || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_headers(const struct http1_header *h, size_t n, const char *buf, int rc,
                          const struct http1_limits *lim)
{
    CHECK(n <= lim->max_headers);
    for (size_t i = 0; i < n; i++) {
        CHECK(h[i].name_len > 0 && in_head(h[i].name, h[i].name_len, buf, rc));
        CHECK(in_head(h[i].value, h[i].value_len, buf, rc));
        for (size_t j = 0; j < h[i].name_len; j++)
            CHECK(is_tchar((unsigned char)h[i].name[j]));
        for (size_t j = 0; j < h[i].value_len; j++) {
            unsigned char c = (unsigned char)h[i].value[j];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h[i].value_len) {
            CHECK(h[i].value[0] != ' ' && h[i].value[0] != '\t');
            CHECK(h[i].value[h[i].value_len - 1] != ' ' && h[i].value[h[i].value_len - 1] != '\t');
        }
    }
}

static void check_request(const struct http1_request *r, const char *buf, int rc,
                          const struct http1_limits *lim)
{
    CHECK(rc >= 16 && (size_t)rc <= lim->max_header_bytes); /* "X / HTTP/1.0" CRLF CRLF */
    CHECK(!memcmp(buf + rc - 4, "\r\n\r\n", 4));
    CHECK(r->method_len > 0 && in_head(r->method, r->method_len, buf, rc));
    CHECK(r->target_len > 0 && r->target_len <= lim->max_target_bytes);
    CHECK(in_head(r->target, r->target_len, buf, rc));
    CHECK(r->minor_version == 0 || r->minor_version == 1);
    check_headers(r->headers, r->num_headers, buf, rc, lim);
    CHECK(r->minor_version == 0 || r->has_host);
    CHECK(!r->has_host || in_head(r->host, r->host_len, buf, rc));
    CHECK(r->path_len == 0 || in_head(r->path, r->path_len, buf, rc));
    CHECK(r->target_form != HTTP1_TARGET_ABSOLUTE ||
          (r->host_len > 0 && in_head(r->host, r->host_len, buf, rc)));
    CHECK(r->body != HTTP1_BODY_UNTIL_CLOSE);
    CHECK(r->body != HTTP1_BODY_CHUNKED || (!r->has_content_length && r->minor_version == 1));
    CHECK(r->body != HTTP1_BODY_LENGTH || r->has_content_length);
    CHECK(!lim->max_body_bytes || !r->has_content_length || r->content_length <= lim->max_body_bytes);
    CHECK(r->content_length <= INT64_MAX);
    CHECK(!r->is_upgrade || (r->minor_version == 1 && r->upgrade));
    CHECK(http1_head_ready(buf, (size_t)rc, (size_t)rc - 1, lim->max_header_bytes));
}

static int parse_request(const uint8_t *data, size_t len, const struct http1_limits *lim,
                         struct http1_request *req, char **buf)
{
    static struct http1_header headers[MAX_HEADERS];
    *buf = copy(data, len);
    req->headers = headers;
    return http1_parse_request(*buf, len, lim, req);
}

/* A prefix must not produce an answer the whole would not. */
static void check_prefix(int whole, int part, size_t k)
{
    if (whole > 0 && k >= (size_t)whole)
        CHECK(part == whole);
    else
        CHECK(part == HTTP1_INCOMPLETE || part == whole);
}

static size_t prefix_at(size_t i, size_t size)
{
    return size <= ALL_PREFIXES_UP_TO ? i : i * size / SAMPLED_PREFIXES;
}

static size_t prefix_count(size_t size)
{
    return size <= ALL_PREFIXES_UP_TO ? size : SAMPLED_PREFIXES;
}

static int fuzz_request(const uint8_t *data, size_t size, const struct http1_limits *lim,
                        enum http1_body_kind *body)
{
    struct http1_request req;
    char *buf;
    int rc = parse_request(data, size, lim, &req, &buf);
    CHECK(rc > 0 || (rc < 0 && rc >= HTTP1_ERR_MIN));
    if (rc > 0)
        check_request(&req, buf, rc, lim);
    *body = req.body;
    free(buf);
    for (size_t i = 0; i < prefix_count(size); i++) {
        size_t k = prefix_at(i, size);
        struct http1_request part;
        check_prefix(rc, parse_request(data, k, lim, &part, &buf), k);
        free(buf);
    }
    return rc;
}

static void fuzz_response(const uint8_t *data, size_t size, const struct http1_limits *lim,
                          enum http1_method method)
{
    static struct http1_header headers[MAX_HEADERS];
    struct http1_response resp = { .headers = headers };
    char *buf = copy(data, size);
    int rc = http1_parse_response(buf, size, lim, method, &resp);
    CHECK(rc > 0 || (rc < 0 && rc >= HTTP1_ERR_MIN));
    if (rc > 0) {
        CHECK((size_t)rc <= lim->max_header_bytes && !memcmp(buf + rc - 4, "\r\n\r\n", 4));
        CHECK(resp.status >= 100 && resp.status <= 599);
        CHECK(in_head(resp.reason, resp.reason_len, buf, rc));
        check_headers(resp.headers, resp.num_headers, buf, rc, lim);
        CHECK(method != HTTP1_METHOD_HEAD || resp.body == HTTP1_BODY_NONE);
        CHECK(resp.body != HTTP1_BODY_UNTIL_CLOSE || !resp.keep_alive);
        CHECK(!(resp.is_interim && resp.is_upgrade));
    }
    free(buf);
    for (size_t i = 0; i < prefix_count(size); i++) {
        size_t k = prefix_at(i, size);
        struct http1_response part = { .headers = headers };
        buf = copy(data, k);
        check_prefix(rc, http1_parse_response(buf, k, lim, method, &part), k);
        free(buf);
    }
}

struct decoded {
    int rc;
    size_t consumed, payload_len;
    char *payload; /* owned, size of the input */
};

/* Decodes data in pieces of piece_len(i) bytes (the last piece takes the rest). */
static void decode(const uint8_t *data, size_t size, const struct http1_limits *lim,
                   size_t (*piece_len)(const uint8_t *, size_t, size_t), struct decoded *out)
{
    struct http1_chunked dec;
    http1_chunked_init(&dec, lim);
    out->rc = HTTP1_CHUNKED_MORE;
    out->consumed = out->payload_len = 0;
    out->payload = malloc(size ? size : 1);
    CHECK(out->payload);
    size_t start = 0;
    for (size_t i = 0; start < size && out->rc == HTTP1_CHUNKED_MORE; i++) {
        size_t plen = piece_len(data, size, i);
        if (plen > size - start || plen == 0)
            plen = size - start;
        char *piece = copy(data + start, plen);
        size_t off = 0;
        while (off < plen && out->rc == HTTP1_CHUNKED_MORE) {
            size_t n, data_len;
            out->rc = http1_chunked_step(&dec, piece + off, plen - off, &n, &data_len);
            CHECK(n <= plen - off && data_len <= n);
            CHECK(out->rc != HTTP1_CHUNKED_MORE || n > 0);
            CHECK(out->rc == HTTP1_CHUNKED_MORE || out->rc == HTTP1_CHUNKED_END
                  || (out->rc < 0 && out->rc >= HTTP1_ERR_MIN));
            memcpy(out->payload + out->payload_len, piece + off + n - data_len, data_len);
            out->payload_len += data_len;
            off += n;
        }
        out->consumed += off;
        free(piece);
        start += plen;
    }
    if (out->rc >= 0)
        CHECK(http1_chunked_payload_bytes(&dec) == out->payload_len);
    if (out->rc != HTTP1_CHUNKED_MORE) {
        /* Finished or failed: later calls repeat the result and consume nothing. */
        size_t n, data_len;
        CHECK(http1_chunked_step(&dec, "0\r\n\r\n", 5, &n, &data_len) == out->rc);
        CHECK(n == 0 && data_len == 0);
    }
    CHECK(!lim->max_body_bytes || out->payload_len <= lim->max_body_bytes);
}

static size_t whole_piece(const uint8_t *data, size_t size, size_t i)
{
    return size;
}

static size_t one_byte_piece(const uint8_t *data, size_t size, size_t i)
{
    return 1;
}

/* Piece sizes from the input itself, so the fuzzer explores splits. */
static size_t input_piece(const uint8_t *data, size_t size, size_t i)
{
    return size ? 1 + data[(i * 7) % size] % 13 : 1;
}

static void fuzz_chunked(const uint8_t *data, size_t size, const struct http1_limits *lim)
{
    struct decoded whole, part;
    size_t (*const splits[])(const uint8_t *, size_t, size_t) = { one_byte_piece, input_piece };
    decode(data, size, lim, whole_piece, &whole);
    for (size_t s = 0; s < sizeof(splits) / sizeof(splits[0]); s++) {
        decode(data, size, lim, splits[s], &part);
        CHECK(part.rc == whole.rc);
        CHECK(part.consumed == whole.consumed);
        CHECK(part.payload_len == whole.payload_len);
        CHECK(!memcmp(part.payload, whole.payload, whole.payload_len));
        free(part.payload);
    }
    CHECK(whole.rc != HTTP1_CHUNKED_END || whole.consumed >= 5); /* "0" CRLF CRLF */
    free(whole.payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct http1_limits *limits[] = { &default_limits, &tiny_limits };
    for (size_t i = 0; i < 2; i++) {
        const struct http1_limits *lim = limits[i];
        enum http1_body_kind body;
        int rc = fuzz_request(data, size, lim, &body);
        fuzz_response(data, size, lim, HTTP1_METHOD_GET);
        fuzz_response(data, size, lim, HTTP1_METHOD_HEAD);
        /* A chunked request's body, else the whole input as a body. */
        if (rc > 0 && body == HTTP1_BODY_CHUNKED)
            fuzz_chunked(data + rc, size - (size_t)rc, lim);
        else
            fuzz_chunked(data, size, lim);
    }
    return 0;
}

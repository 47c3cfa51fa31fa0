/* libFuzzer harness for the HTTP/2 translation. An input is text in three parts:
 *
 *     options line          'e': the HEADERS frame ends the stream; 't': tiny limits;
 *                           'm': a verified client certificate; 's': the sticky
 *                           cookie "srv" is stripped
 *     name: value lines     the request's header list, up to a line "--"
 *     name: value lines     its trailer fields, up to a line "--"
 *     raw bytes             a backend's HTTP/1.1 response head
 *
 * (a line without ": " is a name with an empty value). Checks:
 *   - a request translates or fails with an error the header names, and a failure
 *     writes nothing; with 's' its cookie field holds no cookie "srv"; an accepted
 *     request's head parses under ferry's strict HTTP/1.1 parser, whole, to the method, target, Host and framing the summary states (what
 *     ferry sends a backend is never ambiguous), and the summary points into the list;
 *   - trailers likewise: accepted ones are a last chunk and a trailer section that the
 *     chunked decoder accepts to the end, and that h2_translate_trailer_section turns
 *     back into fields found, in order, among those sent;
 *   - a response head that http1_parse_response accepts (GET and HEAD) translates
 *     with the documented storage into ":status" first, lower-case tokens, no
 *     connection-specific field and content-length exactly as documented; one entry
 *     less storage is refused.
 * Every name, value and head is copied to an exact-size heap buffer so ASan sees
 * any over-read. Built by scripts/fuzz with -fsanitize=fuzzer, and by ctest as a
 * corpus runner. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "http/cookie.h"

#include "http2/translate.h"

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#define MAX_FIELDS 256
#define REPARSE_HEADERS 1024

static const struct http1_limits default_limits = HTTP1_LIMITS_DEFAULT;
static const struct http1_limits tiny_limits = { 200, 4, 16, 0 };
/* For re-parsing what ferry wrote: the translation's own limits were applied already. */
static const struct http1_limits roomy_limits = { 1 << 20, REPARSE_HEADERS, 1 << 20, 0 };

struct list {
    nghttp2_nv nv[MAX_FIELDS];
    size_t n;
};

static uint8_t *copy(const void *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    CHECK(p);
    memcpy(p, data, len);
    return p;
}

static void list_free(struct list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->nv[i].name);
        free(l->nv[i].value);
    }
}

static void add_field(struct list *l, const char *line, size_t len)
{
    if (l->n == MAX_FIELDS)
        return;
    const char *sep = NULL;
    for (size_t i = 0; i + 1 < len && !sep; i++) {
        if (line[i] == ':' && line[i + 1] == ' ' && i > 0)
            sep = line + i;
    }
    size_t name_len = sep ? (size_t)(sep - line) : len;
    const char *value = sep ? sep + 2 : line + len;
    size_t value_len = (size_t)(line + len - value);
    l->nv[l->n++] = (nghttp2_nv){ copy(line, name_len), copy(value, value_len), name_len,
                                  value_len, NGHTTP2_NV_FLAG_NONE };
}

/* Reads lines from *p into l until a "--" line or the end; *p moves past them. */
static void read_list(const char **p, const char *end, struct list *l)
{
    while (*p < end) {
        const char *nl = memchr(*p, '\n', (size_t)(end - *p));
        const char *line_end = nl ? nl : end;
        size_t len = (size_t)(line_end - *p);
        const char *line = *p;
        *p = nl ? nl + 1 : end;
        if (len == 2 && line[0] == '-' && line[1] == '-')
            return;
        add_field(l, line, len);
    }
}

static bool span_in(const char *s, size_t len, const nghttp2_nv *nv)
{
    return s >= (const char *)nv->value && s + len <= (const char *)nv->value + nv->valuelen;
}

static bool points_into_list(const char *s, size_t len, const struct list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (span_in(s, len, &l->nv[i]))
            return true;
    }
    return false;
}

static bool span_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static void check_summary(const struct h2_request_info *info, const struct list *l)
{
    /* a WebSocket's extended CONNECT is a GET from here on */
    CHECK(info->is_websocket ? span_eq(info->method, info->method_len, "GET", 3)
                             : points_into_list(info->method, info->method_len, l));
    CHECK((info->path == NULL) == (info->method_id == HTTP1_METHOD_CONNECT));
    CHECK(!info->path || points_into_list(info->path, info->path_len, l));
    CHECK(!info->authority || points_into_list(info->authority, info->authority_len, l));
    CHECK(info->is_websocket ? info->body == HTTP1_BODY_UNTIL_CLOSE
                             : info->body == HTTP1_BODY_NONE || info->body == HTTP1_BODY_LENGTH
                                   || info->body == HTTP1_BODY_CHUNKED);
    CHECK(info->body == HTTP1_BODY_LENGTH || info->content_length == 0
          || info->method_id == HTTP1_METHOD_CONNECT);
}

/* What ferry sends a backend must parse, whole, to what the summary says. */
static void check_head(const char *head, size_t len, const struct h2_request_info *info,
                       const struct http_request_rewrite *rw)
{
    static struct http1_header headers[REPARSE_HEADERS];
    struct http1_request req = { .headers = headers };
    CHECK(http1_parse_request(head, len, &roomy_limits, &req) == (int)len);
    CHECK(req.minor_version == 1);
    CHECK(span_eq(req.method, req.method_len, info->method, info->method_len));
    CHECK(req.method_id == info->method_id);
    if (info->path)
        CHECK(span_eq(req.target, req.target_len, info->path, info->path_len));
    else
        CHECK(span_eq(req.target, req.target_len, info->authority, info->authority_len));
    if (info->authority)
        CHECK(span_eq(req.host, req.host_len, info->authority, info->authority_len));
    else
        CHECK(span_eq(req.host, req.host_len, rw->default_host, strlen(rw->default_host)));
    /* a WebSocket upgrade has no framing: its bytes follow the 101 */
    CHECK(req.body == (info->is_websocket ? HTTP1_BODY_NONE : info->body));
    CHECK(req.body != HTTP1_BODY_LENGTH || req.content_length == info->content_length);
    CHECK(req.expect_continue == info->expect_continue);
    CHECK(req.is_upgrade == info->is_websocket);
}

/* The joined cookie line (there is at most one) holds no cookie rw->strip_cookie. */
static void check_stripped(const char *head, size_t len, const struct http_request_rewrite *rw)
{
    static const char prefix[] = "\r\ncookie: ";
    if (!rw->strip_cookie)
        return;
    const char *line = memmem(head, len, prefix, sizeof prefix - 1);
    if (!line)
        return;
    const char *value = line + sizeof prefix - 1;
    const char *eol = memmem(value, (size_t)(head + len - value), "\r\n", 2);
    CHECK(eol);
    CHECK(!http_cookie_has(value, (size_t)(eol - value), rw->strip_cookie));
}

static void fuzz_request(const struct list *l, bool end_stream, const struct http1_limits *lim,
                         const struct http_request_rewrite *rw)
{
    struct evbuffer *buf = evbuffer_new();
    struct h2_request_info info;
    CHECK(buf);
    int rc = h2_translate_request(l->nv, l->n, end_stream, lim, rw, buf, &info);
    CHECK(rc == 0 || rc == H2_TRANSLATE_MALFORMED || rc == H2_TRANSLATE_TOO_LARGE
          || rc == H2_TRANSLATE_TARGET_TOO_LONG || rc == H2_TRANSLATE_UNSUPPORTED);
    size_t len = evbuffer_get_length(buf);
    CHECK(rc == 0 || len == 0);
    if (rc == 0) {
        check_summary(&info, l);
        CHECK(!info.path || info.path_len <= lim->max_target_bytes);
        char *head = (char *)copy(evbuffer_pullup(buf, -1), len);
        check_head(head, len, &info, rw);
        check_stripped(head, len, rw);
        free(head);
    }
    evbuffer_free(buf);
}

static bool is_lower_token(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        bool is_separator = strchr("\"(),/:;<=>?@[\\]{}", s[i]) != NULL;
        if ((s[i] >= 'A' && s[i] <= 'Z') || s[i] <= ' ' || s[i] >= 0x7f || is_separator)
            return false;
    }
    return len > 0;
}

/* Each field out of the trailer section was sent, in the same order. */
static void check_subsequence(const struct h2_response_fields *out, const struct list *sent)
{
    size_t j = 0;
    for (size_t i = 0; i < out->count; i++) {
        const nghttp2_nv *nv = &out->nva[i];
        while (j < sent->n && !(span_eq((const char *)nv->name, nv->namelen,
                                        (const char *)sent->nv[j].name, sent->nv[j].namelen)
                                && span_eq((const char *)nv->value, nv->valuelen,
                                           (const char *)sent->nv[j].value, sent->nv[j].valuelen)))
            j++;
        CHECK(j < sent->n);
        j++;
    }
}

static void check_trailer_section(const char *section, size_t len, const struct list *sent)
{
    nghttp2_nv nva[MAX_FIELDS];
    char *names = malloc(len);
    struct h2_response_fields out = { .nva = nva, .cap = MAX_FIELDS, .names = names,
                                      .names_cap = len };
    CHECK(names);
    CHECK(h2_translate_trailer_section(section, len, &out) == 0);
    for (size_t i = 0; i < out.count; i++)
        CHECK(is_lower_token(nva[i].name, nva[i].namelen));
    check_subsequence(&out, sent);
    free(names);
}

static void check_last_chunk(const char *body, size_t len, const struct list *sent)
{
    struct http1_chunked dec;
    size_t consumed, data_len;
    http1_chunked_init(&dec, &roomy_limits);
    CHECK(http1_chunked_step(&dec, body, len, &consumed, &data_len) == HTTP1_CHUNKED_END);
    CHECK(consumed == len && data_len == 0);
    CHECK(len >= 5 && memcmp(body, "0\r\n", 3) == 0);
    check_trailer_section(body + 3, len - 3, sent);
}

static void fuzz_trailers(const struct list *l, const struct http1_limits *lim)
{
    struct evbuffer *buf = evbuffer_new();
    CHECK(buf);
    int rc = h2_translate_request_trailers(l->nv, l->n, lim, buf);
    CHECK(rc == 0 || rc == H2_TRANSLATE_MALFORMED || rc == H2_TRANSLATE_TOO_LARGE);
    size_t len = evbuffer_get_length(buf);
    CHECK(rc == 0 || len == 0);
    if (rc == 0) {
        char *body = (char *)copy(evbuffer_pullup(buf, -1), len);
        check_last_chunk(body, len, l);
        free(body);
    }
    evbuffer_free(buf);
}

static bool is_connection_specific(const nghttp2_nv *nv)
{
    static const char *const names[] = { "connection", "keep-alive", "proxy-connection", "te",
                                         "trailer", "transfer-encoding", "upgrade" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (span_eq((const char *)nv->name, nv->namelen, names[i], strlen(names[i])))
            return true;
    }
    return false;
}

static void check_response_list(const struct http1_response *resp,
                                const struct h2_response_fields *out)
{
    char status[4];
    snprintf(status, sizeof(status), "%03d", resp->status);
    CHECK(out->count >= 1 && out->nva[0].namelen == 7 && !memcmp(out->nva[0].name, ":status", 7));
    CHECK(out->nva[0].valuelen == 3 && !memcmp(out->nva[0].value, status, 3));
    size_t lengths = 0;
    for (size_t i = 1; i < out->count; i++) {
        const nghttp2_nv *nv = &out->nva[i];
        CHECK(is_lower_token(nv->name, nv->namelen) && !is_connection_specific(nv));
        if (span_eq((const char *)nv->name, nv->namelen, "content-length", 14)) {
            CHECK(i == out->count - 1 && strtoull(out->length, NULL, 10) == resp->content_length);
            lengths++;
        }
    }
    CHECK(lengths == (resp->has_content_length && resp->status >= 200 && resp->status != 204));
}

static void fuzz_response(const char *data, size_t size, enum http1_method method)
{
    static struct http1_header headers[MAX_FIELDS];
    struct http1_limits lim = default_limits;
    struct http1_response resp = { .headers = headers };
    char *head = (char *)copy(data, size);
    lim.max_headers = MAX_FIELDS;
    int rc = http1_parse_response(head, size, &lim, method, &resp);
    if (rc > 0) {
        nghttp2_nv nva[MAX_FIELDS + 2];
        char *names = malloc((size_t)rc);
        struct h2_response_fields out = { .nva = nva, .cap = resp.num_headers + 1, .names = names,
                                          .names_cap = (size_t)rc };
        CHECK(names);
        CHECK(h2_translate_response(&resp, &out) == -1);
        out.cap = resp.num_headers + 2;
        CHECK(h2_translate_response(&resp, &out) == 0);
        check_response_list(&resp, &out);
        if (resp.is_upgrade) {      /* a WebSocket's 101, as an HTTP/2 client gets it */
            CHECK(h2_translate_tunnel_response(&resp, &out) == 0);
            CHECK(out.count >= 1 && out.nva[0].valuelen == 3 &&
                  memcmp(out.nva[0].value, "200", 3) == 0);
            for (size_t i = 1; i < out.count; i++)
                CHECK(!(out.nva[i].namelen == 20 &&
                        memcmp(out.nva[i].name, "sec-websocket-accept", 20) == 0));
        }
        free(names);
    }
    free(head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *nl = memchr(p, '\n', size);
    const char *options_end = nl ? nl : end;
    bool end_stream = memchr(p, 'e', (size_t)(options_end - p)) != NULL;
    bool tiny = memchr(p, 't', (size_t)(options_end - p)) != NULL;
    bool mtls = memchr(p, 'm', (size_t)(options_end - p)) != NULL;
    bool sticky = memchr(p, 's', (size_t)(options_end - p)) != NULL;
    const struct http_request_rewrite rw = {
        .client_addr = "192.0.2.1", .is_tls = true, .default_host = "ferry.test",
        .cert_subject = mtls ? "CN=client" : NULL, .strip_cookie = sticky ? "srv" : NULL,
        .websocket_key = "dGhlIHNhbXBsZSBub25jZQ==",
    };
    static struct list request, trailers;
    p = nl ? nl + 1 : end;
    request.n = trailers.n = 0;
    read_list(&p, end, &request);
    read_list(&p, end, &trailers);
    const struct http1_limits *lim = tiny ? &tiny_limits : &default_limits;
    fuzz_request(&request, end_stream, lim, &rw);
    fuzz_trailers(&trailers, lim);
    fuzz_response(p, (size_t)(end - p), HTTP1_METHOD_GET);
    fuzz_response(p, (size_t)(end - p), HTTP1_METHOD_HEAD);
    list_free(&request);
    list_free(&trailers);
    return 0;
}

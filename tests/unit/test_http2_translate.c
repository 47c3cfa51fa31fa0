/* HTTP/2 requests to HTTP/1.1 (proxy/http2/translate.c): the head a backend gets,
 * the summary the exchange gets, every rule that makes a request malformed or too
 * large, and request trailers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "http2/translate.h"

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define GET_PSEUDO NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "example.com"), \
                   NV(":path", "/")

#define TAIL(host) "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\n" \
                   "X-Forwarded-Host: " host "\r\n"

static const struct http_request_rewrite rw = {
    .client_addr = "192.0.2.1", .is_tls = true, .default_host = "ferry.test:8443",
};
static const struct http1_limits limits = HTTP1_LIMITS_DEFAULT;

static char *drain(struct evbuffer *buf)
{
    size_t n = evbuffer_get_length(buf);
    char *s = malloc(n + 1);
    evbuffer_remove(buf, s, n);
    s[n] = '\0';
    return s;
}

/* Translates a valid request and returns its head (caller frees). */
static char *translate(const nghttp2_nv *fields, size_t n, bool end_stream,
                       const struct http_request_rewrite *rewrite, struct h2_request_info *info)
{
    struct evbuffer *head = evbuffer_new();
    assert_int_equal(h2_translate_request(fields, n, end_stream, &limits, rewrite, head, info), 0);
    char *s = drain(head);
    evbuffer_free(head);
    return s;
}

static void assert_head(const nghttp2_nv *fields, size_t n, bool end_stream, const char *want)
{
    struct h2_request_info info;
    char *got = translate(fields, n, end_stream, &rw, &info);
    assert_string_equal(got, want);
    free(got);
}

/* The result of a request that must fail; checks that nothing was written. */
static int reject(const nghttp2_nv *fields, size_t n, bool end_stream,
                  const struct http1_limits *lim)
{
    struct evbuffer *head = evbuffer_new();
    struct h2_request_info info = { .method = "untouched" };
    int rc = h2_translate_request(fields, n, end_stream, lim, &rw, head, &info);
    assert_int_equal(evbuffer_get_length(head), 0);
    assert_string_equal(info.method, "untouched");
    evbuffer_free(head);
    return rc;
}

static void test_get_with_authority_becomes_origin_form_with_host(void **state)
{
    const nghttp2_nv f[] = {
        NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "example.com"),
        NV(":path", "/index.html?x=1"), NV("user-agent", "curl/8"), NV("accept", "*/*"),
    };
    assert_head(f, COUNT(f), true,
                "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nuser-agent: curl/8\r\n"
                "accept: */*\r\n" TAIL("example.com") "\r\n");
}

static void test_get_summary_points_into_the_fields(void **state)
{
    const nghttp2_nv f[] = { GET_PSEUDO, NV("expect", "100-Continue") };
    struct h2_request_info info;
    free(translate(f, COUNT(f), true, &rw, &info));
    assert_int_equal(info.method_id, HTTP1_METHOD_GET);
    assert_ptr_equal(info.method, f[0].value);
    assert_int_equal(info.method_len, 3);
    assert_ptr_equal(info.path, f[3].value);
    assert_int_equal(info.path_len, 1);
    assert_ptr_equal(info.authority, f[2].value);
    assert_int_equal(info.authority_len, 11);
    assert_int_equal(info.body, HTTP1_BODY_NONE);
    assert_true(info.expect_continue);
}

static void test_post_with_content_length_keeps_its_length(void **state)
{
    const nghttp2_nv f[] = {
        NV(":method", "POST"), NV(":scheme", "https"), NV(":authority", "example.com"),
        NV(":path", "/form"), NV("content-type", "text/plain"), NV("content-length", "12"),
    };
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), false, &rw, &info);
    assert_string_equal(got, "POST /form HTTP/1.1\r\nHost: example.com\r\ncontent-type: text/plain\r\n"
                             TAIL("example.com") "Content-Length: 12\r\n\r\n");
    assert_int_equal(info.body, HTTP1_BODY_LENGTH);
    assert_int_equal(info.content_length, 12);
    free(got);
}

static void test_post_without_length_is_chunked(void **state)
{
    const nghttp2_nv f[] = {
        NV(":method", "POST"), NV(":scheme", "https"), NV(":authority", "example.com"),
        NV(":path", "/upload"),
    };
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), false, &rw, &info);
    assert_string_equal(got, "POST /upload HTTP/1.1\r\nHost: example.com\r\n" TAIL("example.com")
                             "Transfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(info.body, HTTP1_BODY_CHUNKED);
    free(got);
}

static void test_post_ending_with_its_headers_gets_content_length_zero(void **state)
{
    const nghttp2_nv f[] = {
        NV(":method", "POST"), NV(":scheme", "https"), NV(":authority", "example.com"),
        NV(":path", "/ping"),
    };
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), true, &rw, &info);
    assert_string_equal(got, "POST /ping HTTP/1.1\r\nHost: example.com\r\n" TAIL("example.com")
                             "Content-Length: 0\r\n\r\n");
    assert_int_equal(info.body, HTTP1_BODY_LENGTH);
    assert_int_equal(info.content_length, 0);
    free(got);
}

static void test_bodiless_methods_ending_with_headers_have_no_framing(void **state)
{
    static const char *const methods[] = { "GET", "HEAD", "DELETE", "OPTIONS", "TRACE" };
    for (size_t i = 0; i < COUNT(methods); i++) {
        nghttp2_nv f[] = { GET_PSEUDO };
        f[0].value = (uint8_t *)methods[i];
        f[0].valuelen = strlen(methods[i]);
        struct h2_request_info info;
        char *got = translate(f, COUNT(f), true, &rw, &info);
        if (strstr(got, "Content-Length") || strstr(got, "Transfer-Encoding")
            || info.body != HTTP1_BODY_NONE)
            fail_msg("%s got framing: %s", methods[i], got);
        free(got);
    }
}

static void test_other_methods_ending_with_headers_get_content_length_zero(void **state)
{
    static const char *const methods[] = { "PUT", "PATCH", "PROPFIND" };
    for (size_t i = 0; i < COUNT(methods); i++) {
        nghttp2_nv f[] = { GET_PSEUDO };
        f[0].value = (uint8_t *)methods[i];
        f[0].valuelen = strlen(methods[i]);
        struct h2_request_info info;
        char *got = translate(f, COUNT(f), true, &rw, &info);
        if (!strstr(got, "\r\nContent-Length: 0\r\n") || info.body != HTTP1_BODY_LENGTH)
            fail_msg("%s: %s", methods[i], got);
        free(got);
    }
}

static void test_get_with_data_to_come_is_chunked(void **state)
{
    const nghttp2_nv f[] = { GET_PSEUDO };
    assert_head(f, COUNT(f), false, "GET / HTTP/1.1\r\nHost: example.com\r\n" TAIL("example.com")
                                     "Transfer-Encoding: chunked\r\n\r\n");
}

static void test_content_length_zero_is_written(void **state)
{
    const nghttp2_nv f[] = { GET_PSEUDO, NV("content-length", "0") };
    assert_head(f, COUNT(f), true, "GET / HTTP/1.1\r\nHost: example.com\r\n" TAIL("example.com")
                                    "Content-Length: 0\r\n\r\n");
}

static void test_equal_content_lengths_are_one(void **state)
{
    const nghttp2_nv f[] = {
        NV(":method", "PUT"), NV(":scheme", "https"), NV(":path", "/"),
        NV("content-length", "5"), NV("content-length", "005"),
    };
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), false, &rw, &info);
    assert_int_equal(info.content_length, 5);
    assert_non_null(strstr(got, "\r\nContent-Length: 5\r\n"));
    free(got);
}

static void test_largest_content_length_is_accepted(void **state)
{
    const nghttp2_nv f[] = {
        NV(":method", "PUT"), NV(":scheme", "https"), NV(":path", "/"),
        NV("content-length", "9223372036854775807"),
    };
    struct h2_request_info info;
    free(translate(f, COUNT(f), false, &rw, &info));
    assert_int_equal(info.content_length, INT64_MAX);
}

static void test_content_length_over_body_limit_is_left_to_the_exchange(void **state)
{
    struct http1_limits lim = limits;
    lim.max_body_bytes = 10;
    const nghttp2_nv f[] = {
        NV(":method", "POST"), NV(":scheme", "https"), NV(":path", "/"),
        NV("content-length", "11"),
    };
    struct evbuffer *head = evbuffer_new();
    struct h2_request_info info;
    assert_int_equal(h2_translate_request(f, COUNT(f), false, &lim, &rw, head, &info), 0);
    assert_int_equal(info.content_length, 11);
    evbuffer_free(head);
}

static void test_cookie_crumbs_are_joined_where_the_first_was(void **state)
{
    const nghttp2_nv f[] = {
        GET_PSEUDO, NV("a", "1"), NV("cookie", "s=1"), NV("b", "2"), NV("cookie", "t=2"),
        NV("cookie", "u=3"),
    };
    assert_head(f, COUNT(f), true, "GET / HTTP/1.1\r\nHost: example.com\r\na: 1\r\n"
                                    "cookie: s=1; t=2; u=3\r\nb: 2\r\n" TAIL("example.com") "\r\n");
}

/* Sticky sessions: ferry's cookie is left out of the joined field; a field left with
 * no cookie is not written at all. */
static void test_sticky_cookie_is_left_out_of_the_joined_field(void **state)
{
    struct http_request_rewrite sticky = rw;
    sticky.strip_cookie = "srv";
    const nghttp2_nv f[] = {
        GET_PSEUDO, NV("cookie", "s=1"), NV("cookie", "srv=0123456789abcdef"),
        NV("cookie", "t=2; srv=x; u=3"),
    };
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), true, &sticky, &info);
    assert_string_equal(got, "GET / HTTP/1.1\r\nHost: example.com\r\n"
                             "cookie: s=1; t=2; u=3\r\n" TAIL("example.com") "\r\n");
    free(got);
    const nghttp2_nv only[] = { GET_PSEUDO, NV("cookie", "srv=1"), NV("a", "b") };
    got = translate(only, COUNT(only), true, &sticky, &info);
    assert_string_equal(got, "GET / HTTP/1.1\r\nHost: example.com\r\na: b\r\n"
                             TAIL("example.com") "\r\n");
    free(got);
}

/* Checked first, written once the route is known: the same head as in one go. */
static void test_head_written_later_is_the_same(void **state)
{
    const nghttp2_nv f[] = { GET_PSEUDO, NV("a", "1"), NV("cookie", "s=1") };
    struct h2_request_info info;
    char *once = translate(f, COUNT(f), true, &rw, &info);
    assert_int_equal(h2_translate_request(f, COUNT(f), true, &limits, &rw, NULL, &info), 0);
    struct evbuffer *head = evbuffer_new();
    assert_int_equal(h2_translate_request_head(f, COUNT(f), &info, &rw, head), 0);
    char *later = drain(head);
    assert_string_equal(later, once);
    free(once);
    free(later);
    evbuffer_free(head);
}

static void test_forwarded_for_values_come_before_the_client(void **state)
{
    const nghttp2_nv f[] = {
        GET_PSEUDO, NV("x-forwarded-for", "203.0.113.9"), NV("a", "1"),
        NV("x-forwarded-for", "198.51.100.7, 10.0.0.1"),
    };
    assert_head(f, COUNT(f), true,
                "GET / HTTP/1.1\r\nHost: example.com\r\na: 1\r\n"
                "X-Forwarded-For: 203.0.113.9, 198.51.100.7, 10.0.0.1, 192.0.2.1\r\n"
                "X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n");
}

static void test_fields_ferry_sets_are_not_taken_from_the_client(void **state)
{
    struct http_request_rewrite mtls = rw;
    mtls.cert_subject = "CN=client,O=Dev";
    const nghttp2_nv f[] = {
        GET_PSEUDO, NV("x-forwarded-proto", "http"), NV("x-forwarded-host", "evil"),
        NV("x-client-cert-subject", "CN=forged"),
    };
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), true, &mtls, &info);
    assert_string_equal(got, "GET / HTTP/1.1\r\nHost: example.com\r\n" TAIL("example.com")
                             "X-Client-Cert-Subject: CN=client,O=Dev\r\n\r\n");
    free(got);
}

static void test_host_te_and_content_length_are_written_by_ferry(void **state)
{
    const nghttp2_nv f[] = {
        NV(":method", "PUT"), NV(":scheme", "https"), NV(":authority", "Example.com"),
        NV(":path", "/"), NV("host", "example.COM"), NV("te", "trailers"),
        NV("content-length", "3"), NV("z", "9"),
    };
    assert_head(f, COUNT(f), false, "PUT / HTTP/1.1\r\nHost: Example.com\r\nz: 9\r\n"
                                     TAIL("Example.com") "Content-Length: 3\r\n\r\n");
}

static void test_host_field_stands_in_for_a_missing_authority(void **state)
{
    const nghttp2_nv f[] = {
        NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV("host", "h.test:8443"),
    };
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), true, &rw, &info);
    assert_string_equal(got, "GET / HTTP/1.1\r\nHost: h.test:8443\r\n" TAIL("h.test:8443") "\r\n");
    assert_ptr_equal(info.authority, f[3].value);
    free(got);
}

static void test_default_host_without_authority_or_host(void **state)
{
    const nghttp2_nv f[] = { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/") };
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), true, &rw, &info);
    /* As for HTTP/1.0 clients: the default goes to the backend, no X-Forwarded-Host. */
    assert_string_equal(got, "GET / HTTP/1.1\r\nHost: ferry.test:8443\r\n"
                             "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\n\r\n");
    assert_null(info.authority);
    free(got);
}

static void test_field_names_are_written_as_received(void **state)
{
    const nghttp2_nv f[] = { GET_PSEUDO, NV("x-custom_token!", "v\tw \x80"), NV("empty", "") };
    assert_head(f, COUNT(f), true, "GET / HTTP/1.1\r\nHost: example.com\r\n"
                                    "x-custom_token!: v\tw \x80\r\nempty: \r\n" TAIL("example.com") "\r\n");
}

static void test_unknown_method_is_forwarded(void **state)
{
    const nghttp2_nv f[] = {
        NV(":method", "PROPFIND"), NV(":scheme", "https"), NV(":path", "/dav/"),
        NV(":authority", "example.com"), NV("content-length", "0"),
    };
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), true, &rw, &info);
    assert_int_equal(info.method_id, HTTP1_METHOD_OTHER);
    assert_memory_equal(got, "PROPFIND /dav/ HTTP/1.1\r\n", 25);
    free(got);
}

static void test_connect_targets_the_authority_without_framing(void **state)
{
    const nghttp2_nv f[] = { NV(":method", "CONNECT"), NV(":authority", "db.internal:5432") };
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), false, &rw, &info);
    assert_string_equal(got, "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n"
                             TAIL("db.internal:5432") "\r\n");
    assert_int_equal(info.method_id, HTTP1_METHOD_CONNECT);
    assert_null(info.path);
    assert_int_equal(info.path_len, 0);
    assert_ptr_equal(info.authority, f[1].value);
    assert_int_equal(info.body, HTTP1_BODY_NONE);
    free(got);
}

/* RFC 8441: a WebSocket's extended CONNECT goes to the backend as the HTTP/1.1
 * upgrade request it stands for, with ferry's own key. */
static void test_websocket_extended_connect_becomes_an_upgrade(void **state)
{
    const nghttp2_nv f[] = { NV(":method", "CONNECT"), NV(":protocol", "websocket"),
                             NV(":scheme", "https"), NV(":path", "/chat?room=1"),
                             NV(":authority", "ws.test"), NV("sec-websocket-version", "13"),
                             NV("sec-websocket-key", "client-sent"),
                             NV("sec-websocket-protocol", "chat") };
    struct http_request_rewrite ws = rw;
    ws.websocket_key = "dGhlIHNhbXBsZSBub25jZQ==";
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), false, &ws, &info);
    assert_string_equal(got, "GET /chat?room=1 HTTP/1.1\r\nHost: ws.test\r\n"
                             "sec-websocket-version: 13\r\nsec-websocket-protocol: chat\r\n"
                             TAIL("ws.test")
                             "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    assert_true(info.is_websocket);
    assert_int_equal(info.method_id, HTTP1_METHOD_GET);
    assert_string_equal(info.method, "GET");
    assert_int_equal(info.body, HTTP1_BODY_UNTIL_CLOSE);
    free(got);
}

static void test_extended_connect_for_another_protocol_is_unsupported(void **state)
{
    const nghttp2_nv f[] = { NV(":method", "CONNECT"), NV(":protocol", "webtransport"),
                             NV(":scheme", "https"), NV(":path", "/"),
                             NV(":authority", "ws.test") };
    assert_int_equal(reject(f, COUNT(f), false, &limits), H2_TRANSLATE_UNSUPPORTED);
    const nghttp2_nv upper[] = { NV(":method", "CONNECT"), NV(":protocol", "WebSocket"),
                                 NV(":scheme", "https"), NV(":path", "/"),
                                 NV(":authority", "ws.test") };
    struct h2_request_info info;
    struct http_request_rewrite ws = rw;
    ws.websocket_key = "k";
    free(translate(upper, COUNT(upper), false, &ws, &info));
    assert_true(info.is_websocket);
}

static void test_options_asterisk_is_forwarded(void **state)
{
    const nghttp2_nv f[] = {
        NV(":method", "OPTIONS"), NV(":scheme", "https"), NV(":authority", "example.com"),
        NV(":path", "*"),
    };
    struct h2_request_info info;
    char *got = translate(f, COUNT(f), true, &rw, &info);
    assert_string_equal(got, "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n" TAIL("example.com") "\r\n");
    assert_int_equal(info.method_id, HTTP1_METHOD_OPTIONS);
    free(got);
}

static void test_valid_authorities_are_accepted(void **state)
{
    static const char *const ok[] = {
        "example.com", "EXAMPLE.com:443", "[::1]", "[::1]:8443", "192.0.2.1:80", "h:", "xn--d1a.test",
        "a%20b",
    };
    for (size_t i = 0; i < COUNT(ok); i++) {
        nghttp2_nv f[] = { GET_PSEUDO };
        f[2].value = (uint8_t *)ok[i];
        f[2].valuelen = strlen(ok[i]);
        struct evbuffer *head = evbuffer_new();
        struct h2_request_info info;
        int rc = h2_translate_request(f, COUNT(f), true, &limits, &rw, head, &info);
        if (rc != 0)
            fail_msg("authority \"%s\" refused: %d", ok[i], rc);
        evbuffer_free(head);
    }
}

/* Every malformed request: a named case, the fields, and whether HEADERS ended it. */
struct bad_request {
    const char *what;
    bool end_stream;
    nghttp2_nv fields[10]; /* up to the first without a name */
};

static size_t field_count(const nghttp2_nv *f, size_t cap)
{
    size_t n = 0;
    while (n < cap && f[n].name)
        n++;
    return n;
}

static const struct bad_request malformed[] = {
    { "unknown pseudo-header", true, { GET_PSEUDO, NV(":foo", "x") } },
    { ":protocol with GET", true, { GET_PSEUDO, NV(":protocol", "websocket") } },
    { "extended CONNECT without :path", false,
      { NV(":method", "CONNECT"), NV(":protocol", "websocket"), NV(":scheme", "https"),
        NV(":authority", "h") } },
    { "extended CONNECT without :scheme", false,
      { NV(":method", "CONNECT"), NV(":protocol", "websocket"), NV(":path", "/"),
        NV(":authority", "h") } },
    { "extended CONNECT without :authority", false,
      { NV(":method", "CONNECT"), NV(":protocol", "websocket"), NV(":scheme", "https"),
        NV(":path", "/"), NV("host", "h") } },
    { "repeated :protocol", false,
      { NV(":method", "CONNECT"), NV(":protocol", "websocket"), NV(":protocol", "websocket"),
        NV(":scheme", "https"), NV(":path", "/"), NV(":authority", "h") } },
    { ":status in a request", true, { GET_PSEUDO, NV(":status", "200") } },
    { "upper-case pseudo-header", true, { NV(":Method", "GET"), NV(":scheme", "https"), NV(":path", "/") } },
    { "repeated :method", true, { GET_PSEUDO, NV(":method", "GET") } },
    { "repeated :scheme", true, { GET_PSEUDO, NV(":scheme", "https") } },
    { "repeated :authority", true, { GET_PSEUDO, NV(":authority", "example.com") } },
    { "repeated :path", true, { GET_PSEUDO, NV(":path", "/") } },
    { "pseudo-header after a regular field", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV("a", "1"), NV(":path", "/") } },
    { ":method missing", true, { NV(":scheme", "https"), NV(":path", "/") } },
    { ":method empty", true, { NV(":method", ""), NV(":scheme", "https"), NV(":path", "/") } },
    { ":method not a token", true, { NV(":method", "GE(T"), NV(":scheme", "https"), NV(":path", "/") } },
    { ":scheme missing", true, { NV(":method", "GET"), NV(":path", "/") } },
    { ":path missing", true, { NV(":method", "GET"), NV(":scheme", "https") } },
    { ":path empty", true, { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "") } },
    { ":path not starting with /", true, { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "a/b") } },
    { ":path absolute URI", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "https://h/") } },
    { ":path * for GET", true, { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "*") } },
    { ":path *x for OPTIONS", true, { NV(":method", "OPTIONS"), NV(":scheme", "https"), NV(":path", "*x") } },
    { ":path with a space", true, { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/a b") } },
    { ":path with a fragment", true, { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/a#b") } },
    { ":path with non-ASCII", true, { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/\xc3\xa9") } },
    { ":path with HTAB", true, { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/a\tb") } },
    { "CONNECT with :scheme", false,
      { NV(":method", "CONNECT"), NV(":scheme", "https"), NV(":authority", "h:443") } },
    { "CONNECT with :path", false,
      { NV(":method", "CONNECT"), NV(":path", "/"), NV(":authority", "h:443") } },
    { "CONNECT without :authority", false, { NV(":method", "CONNECT"), NV("host", "h:443") } },
    { "CONNECT without a port", false, { NV(":method", "CONNECT"), NV(":authority", "h") } },
    { "CONNECT with an empty port", false, { NV(":method", "CONNECT"), NV(":authority", "h:") } },
    { ":authority with userinfo", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV(":authority", "u:p@h") } },
    { ":authority empty", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV(":authority", "") } },
    { ":authority with a space", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV(":authority", "a b") } },
    { ":authority with a path", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV(":authority", "h/x") } },
    { ":authority with a bad port", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV(":authority", "h:8x") } },
    { ":authority port only", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV(":authority", ":80") } },
    { ":authority unclosed IPv6", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV(":authority", "[::1") } },
    { ":authority empty IPv6", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV(":authority", "[]") } },
    { ":authority with a bad byte in brackets", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV(":authority", "[::1@h]") } },
    { ":authority junk after IPv6", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV(":authority", "[::1]x") } },
    { "empty field name", true, { GET_PSEUDO, NV("", "x") } },
    { "upper-case field name", true, { GET_PSEUDO, NV("Accept", "*/*") } },
    { "field name with a space", true, { GET_PSEUDO, NV("a b", "x") } },
    { "field name with a colon", true, { GET_PSEUDO, NV("a:b", "x") } },
    { "field name with non-ASCII", true, { GET_PSEUDO, NV("\xc3\xa9", "x") } },
    { "value with NUL", true, { GET_PSEUDO, NV("a", "x\0y") } },
    { "value with CR", true, { GET_PSEUDO, NV("a", "x\ry") } },
    { "value with LF", true, { GET_PSEUDO, NV("a", "x\ny") } },
    { "value with another control", true, { GET_PSEUDO, NV("a", "x\x01y") } },
    { "value with DEL", true, { GET_PSEUDO, NV("a", "x\x7fy") } },
    { "value with leading SP", true, { GET_PSEUDO, NV("a", " x") } },
    { "value with trailing HTAB", true, { GET_PSEUDO, NV("a", "x\t") } },
    { "pseudo-header value with leading SP", true,
      { NV(":method", "GET"), NV(":scheme", " https"), NV(":path", "/") } },
    { "connection", true, { GET_PSEUDO, NV("connection", "close") } },
    { "keep-alive", true, { GET_PSEUDO, NV("keep-alive", "timeout=5") } },
    { "proxy-connection", true, { GET_PSEUDO, NV("proxy-connection", "keep-alive") } },
    { "transfer-encoding", false, { GET_PSEUDO, NV("transfer-encoding", "chunked") } },
    { "upgrade", true, { GET_PSEUDO, NV("upgrade", "websocket") } },
    { "te other than trailers", true, { GET_PSEUDO, NV("te", "gzip") } },
    { "te with trailers and more", true, { GET_PSEUDO, NV("te", "trailers, gzip") } },
    { "content-length empty", false, { GET_PSEUDO, NV("content-length", "") } },
    { "content-length not digits", false, { GET_PSEUDO, NV("content-length", "abc") } },
    { "content-length negative", false, { GET_PSEUDO, NV("content-length", "-1") } },
    { "content-length with a sign", false, { GET_PSEUDO, NV("content-length", "+1") } },
    { "content-length as a list", false, { GET_PSEUDO, NV("content-length", "5, 5") } },
    { "content-length of 2^63", false, { GET_PSEUDO, NV("content-length", "9223372036854775808") } },
    { "content-length overflowing 64 bits", false,
      { GET_PSEUDO, NV("content-length", "99999999999999999999") } },
    { "content-lengths that differ", false,
      { GET_PSEUDO, NV("content-length", "5"), NV("content-length", "6") } },
    { "content-length with END_STREAM", true, { GET_PSEUDO, NV("content-length", "5") } },
    { "two host fields", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV("host", "h"), NV("host", "h") } },
    { "host differing from :authority", true, { GET_PSEUDO, NV("host", "other.com") } },
    { "host differing from :authority by port", true, { GET_PSEUDO, NV("host", "example.com:443") } },
    { "host with userinfo and no :authority", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV("host", "u@h") } },
    { "host empty and no :authority", true,
      { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/"), NV("host", "") } },
};

static void test_malformed_requests_are_refused_untouched(void **state)
{
    for (size_t i = 0; i < COUNT(malformed); i++) {
        const struct bad_request *c = &malformed[i];
        int rc = reject(c->fields, field_count(c->fields, COUNT(c->fields)), c->end_stream, &limits);
        if (rc != H2_TRANSLATE_MALFORMED)
            fail_msg("%s: got %d, want MALFORMED", c->what, rc);
    }
}

static void test_te_trailers_is_case_insensitive(void **state)
{
    const nghttp2_nv f[] = { GET_PSEUDO, NV("te", "Trailers") };
    assert_head(f, COUNT(f), true, "GET / HTTP/1.1\r\nHost: example.com\r\n" TAIL("example.com") "\r\n");
}

/* The GET pseudo-headers and n fields "name: v" (caller frees). */
static nghttp2_nv *many_fields(size_t n, const char *name)
{
    const nghttp2_nv pseudo[] = { GET_PSEUDO };
    nghttp2_nv *f = calloc(n + 4, sizeof(*f));
    memcpy(f, pseudo, sizeof(pseudo));
    for (size_t i = 4; i < n + 4; i++)
        f[i] = (nghttp2_nv){ (uint8_t *)name, (uint8_t *)"v", strlen(name), 1, NGHTTP2_NV_FLAG_NONE };
    return f;
}

static void test_regular_fields_over_the_count_are_too_large(void **state)
{
    struct http1_limits lim = limits;
    lim.max_headers = 3;
    nghttp2_nv *f = many_fields(4, "f");
    struct evbuffer *head = evbuffer_new();
    struct h2_request_info info;
    assert_int_equal(h2_translate_request(f, 7, true, &lim, &rw, head, &info), 0);
    evbuffer_free(head);
    assert_int_equal(reject(f, 8, true, &lim), H2_TRANSLATE_TOO_LARGE);
    free(f);
}

static void test_each_cookie_crumb_counts_against_the_limit(void **state)
{
    struct http1_limits lim = limits;
    lim.max_headers = 3;
    nghttp2_nv *f = many_fields(4, "cookie");
    assert_int_equal(reject(f, 8, true, &lim), H2_TRANSLATE_TOO_LARGE);
    free(f);
}

static void test_header_list_over_the_byte_limit_is_too_large(void **state)
{
    const nghttp2_nv f[] = { GET_PSEUDO, NV("a", "12345") };
    size_t size = 0;
    for (size_t i = 0; i < COUNT(f); i++)
        size += h2_field_size(f[i].namelen, f[i].valuelen);
    struct http1_limits lim = limits;
    lim.max_header_bytes = size;
    struct evbuffer *head = evbuffer_new();
    struct h2_request_info info;
    assert_int_equal(h2_translate_request(f, COUNT(f), true, &lim, &rw, head, &info), 0);
    evbuffer_free(head);
    lim.max_header_bytes = size - 1;
    assert_int_equal(reject(f, COUNT(f), true, &lim), H2_TRANSLATE_TOO_LARGE);
}

static void test_field_size_counts_name_value_and_32(void **state)
{
    assert_int_equal(h2_field_size(4, 11), 47);
    assert_int_equal(h2_field_size(0, 0), 32);
}

static void test_too_large_wins_over_malformed(void **state)
{
    struct http1_limits lim = limits;
    lim.max_header_bytes = 100;
    const nghttp2_nv f[] = { NV(":path", "/"), NV("connection", "close"), NV("a", "x\ny"), GET_PSEUDO };
    assert_int_equal(reject(f, COUNT(f), true, &lim), H2_TRANSLATE_TOO_LARGE);
}

static void test_path_over_the_target_limit_is_too_long(void **state)
{
    struct http1_limits lim = limits;
    lim.max_target_bytes = 4;
    nghttp2_nv f[] = { GET_PSEUDO };
    f[3] = (nghttp2_nv)NV(":path", "/abc");
    struct evbuffer *head = evbuffer_new();
    struct h2_request_info info;
    assert_int_equal(h2_translate_request(f, COUNT(f), true, &lim, &rw, head, &info), 0);
    evbuffer_free(head);
    f[3] = (nghttp2_nv)NV(":path", "/abcd");
    assert_int_equal(reject(f, COUNT(f), true, &lim), H2_TRANSLATE_TARGET_TOO_LONG);
}

static void test_malformed_wins_over_target_too_long(void **state)
{
    struct http1_limits lim = limits;
    lim.max_target_bytes = 4;
    const nghttp2_nv f[] = {
        NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/abcdef"), NV("connection", "close"),
    };
    assert_int_equal(reject(f, COUNT(f), true, &lim), H2_TRANSLATE_MALFORMED);
}

/* ---- request trailers ---- */

static int trailers(const nghttp2_nv *f, size_t n, const struct http1_limits *lim, char **out)
{
    struct evbuffer *buf = evbuffer_new();
    int rc = h2_translate_request_trailers(f, n, lim, buf);
    *out = drain(buf);
    evbuffer_free(buf);
    return rc;
}

static void test_trailers_end_the_chunked_body(void **state)
{
    const nghttp2_nv f[] = { NV("grpc-status", "0"), NV("x-checksum", "abc") };
    char *got;
    assert_int_equal(trailers(f, COUNT(f), &limits, &got), 0);
    assert_string_equal(got, "0\r\ngrpc-status: 0\r\nx-checksum: abc\r\n\r\n");
    free(got);
}

static void test_no_trailer_fields_is_just_the_last_chunk(void **state)
{
    char *got;
    assert_int_equal(trailers(NULL, 0, &limits, &got), 0);
    assert_string_equal(got, "0\r\n\r\n");
    free(got);
}

static void test_trailers_drop_fields_a_trailer_must_not_carry(void **state)
{
    const nghttp2_nv f[] = {
        NV("content-length", "5"), NV("host", "h"), NV("te", "trailers"),
        NV("authorization", "Bearer x"), NV("cookie", "a=1"), NV("x-forwarded-for", "1.2.3.4"),
        NV("x-forwarded-proto", "http"), NV("x-forwarded-host", "h"), NV("x-forwarded-port", "1"),
        NV("x-client-cert-subject", "CN=x"),
    };
    const nghttp2_nv kept[] = { NV("x-forwarded", "kept"), NV("etag", "\"1\"") };
    char *got;
    assert_int_equal(trailers(f, COUNT(f), &limits, &got), 0);
    assert_string_equal(got, "0\r\n\r\n");
    free(got);
    assert_int_equal(trailers(kept, COUNT(kept), &limits, &got), 0);
    assert_string_equal(got, "0\r\nx-forwarded: kept\r\netag: \"1\"\r\n\r\n");
    free(got);
}

static const struct bad_request malformed_trailers[] = {
    { "pseudo-header", true, { NV("a", "1"), NV(":path", "/") } },
    { "connection", true, { NV("connection", "close") } },
    { "keep-alive", true, { NV("keep-alive", "1") } },
    { "proxy-connection", true, { NV("proxy-connection", "close") } },
    { "transfer-encoding", true, { NV("transfer-encoding", "chunked") } },
    { "upgrade", true, { NV("upgrade", "h2c") } },
    { "empty name", true, { NV("", "1") } },
    { "upper-case name", true, { NV("Grpc-Status", "0") } },
    { "name not a token", true, { NV("a b", "0") } },
    { "value with LF", true, { NV("a", "x\ny") } },
    { "value with NUL", true, { NV("a", "x\0y") } },
    { "value with trailing SP", true, { NV("a", "x ") } },
};

static void test_malformed_trailers_are_refused_untouched(void **state)
{
    for (size_t i = 0; i < COUNT(malformed_trailers); i++) {
        const struct bad_request *c = &malformed_trailers[i];
        char *got;
        int rc = trailers(c->fields, field_count(c->fields, COUNT(c->fields)), &limits, &got);
        if (rc != H2_TRANSLATE_MALFORMED || got[0])
            fail_msg("%s: got %d and \"%s\", want MALFORMED and nothing", c->what, rc, got);
        free(got);
    }
}

static void test_trailers_over_the_limits_are_too_large(void **state)
{
    const nghttp2_nv f[] = { NV("a", "1"), NV("b", "2"), NV("c", "3") };
    struct http1_limits lim = limits;
    char *got;
    lim.max_headers = 2;
    assert_int_equal(trailers(f, COUNT(f), &lim, &got), H2_TRANSLATE_TOO_LARGE);
    assert_string_equal(got, "");
    free(got);
    lim = limits;
    lim.max_header_bytes = 3 * 34 - 1;
    assert_int_equal(trailers(f, COUNT(f), &lim, &got), H2_TRANSLATE_TOO_LARGE);
    free(got);
    lim.max_header_bytes = 3 * 34;
    assert_int_equal(trailers(f, COUNT(f), &lim, &got), 0);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_with_authority_becomes_origin_form_with_host),
        cmocka_unit_test(test_websocket_extended_connect_becomes_an_upgrade),
        cmocka_unit_test(test_extended_connect_for_another_protocol_is_unsupported),
        cmocka_unit_test(test_sticky_cookie_is_left_out_of_the_joined_field),
        cmocka_unit_test(test_head_written_later_is_the_same),
        cmocka_unit_test(test_get_summary_points_into_the_fields),
        cmocka_unit_test(test_post_with_content_length_keeps_its_length),
        cmocka_unit_test(test_post_without_length_is_chunked),
        cmocka_unit_test(test_post_ending_with_its_headers_gets_content_length_zero),
        cmocka_unit_test(test_bodiless_methods_ending_with_headers_have_no_framing),
        cmocka_unit_test(test_other_methods_ending_with_headers_get_content_length_zero),
        cmocka_unit_test(test_get_with_data_to_come_is_chunked),
        cmocka_unit_test(test_content_length_zero_is_written),
        cmocka_unit_test(test_equal_content_lengths_are_one),
        cmocka_unit_test(test_largest_content_length_is_accepted),
        cmocka_unit_test(test_content_length_over_body_limit_is_left_to_the_exchange),
        cmocka_unit_test(test_cookie_crumbs_are_joined_where_the_first_was),
        cmocka_unit_test(test_forwarded_for_values_come_before_the_client),
        cmocka_unit_test(test_fields_ferry_sets_are_not_taken_from_the_client),
        cmocka_unit_test(test_host_te_and_content_length_are_written_by_ferry),
        cmocka_unit_test(test_host_field_stands_in_for_a_missing_authority),
        cmocka_unit_test(test_default_host_without_authority_or_host),
        cmocka_unit_test(test_field_names_are_written_as_received),
        cmocka_unit_test(test_unknown_method_is_forwarded),
        cmocka_unit_test(test_connect_targets_the_authority_without_framing),
        cmocka_unit_test(test_options_asterisk_is_forwarded),
        cmocka_unit_test(test_valid_authorities_are_accepted),
        cmocka_unit_test(test_malformed_requests_are_refused_untouched),
        cmocka_unit_test(test_te_trailers_is_case_insensitive),
        cmocka_unit_test(test_regular_fields_over_the_count_are_too_large),
        cmocka_unit_test(test_each_cookie_crumb_counts_against_the_limit),
        cmocka_unit_test(test_header_list_over_the_byte_limit_is_too_large),
        cmocka_unit_test(test_field_size_counts_name_value_and_32),
        cmocka_unit_test(test_too_large_wins_over_malformed),
        cmocka_unit_test(test_path_over_the_target_limit_is_too_long),
        cmocka_unit_test(test_malformed_wins_over_target_too_long),
        cmocka_unit_test(test_trailers_end_the_chunked_body),
        cmocka_unit_test(test_no_trailer_fields_is_just_the_last_chunk),
        cmocka_unit_test(test_trailers_drop_fields_a_trailer_must_not_carry),
        cmocka_unit_test(test_malformed_trailers_are_refused_untouched),
        cmocka_unit_test(test_trailers_over_the_limits_are_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

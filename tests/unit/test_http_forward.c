/* Head rewriting (proxy/http/forward.c): what reaches the backend and the client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "http/forward.h"
#include "http1/parse.h"

static const struct http_request_rewrite plain = {
    .client_addr = "192.0.2.1", .is_tls = false, .default_host = "127.0.0.1:8080",
};

/* Rewrites raw and returns the result as a NUL-terminated string (caller frees). */
static char *rewrite_request(const char *raw, const struct http_request_rewrite *rw)
{
    struct http1_header headers[64];
    struct http1_request req = { .headers = headers };
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    int rc = http1_parse_request(raw, strlen(raw), &lim, &req);
    assert_true(rc > 0);
    struct evbuffer *out = evbuffer_new();
    assert_int_equal(http_forward_request_head(out, &req, raw, (size_t)rc, rw), 0);
    size_t n = evbuffer_get_length(out);
    char *s = malloc(n + 1);
    evbuffer_remove(out, s, n);
    s[n] = '\0';
    evbuffer_free(out);
    return s;
}

static void assert_request(const char *raw, const struct http_request_rewrite *rw,
                           const char *want)
{
    char *got = rewrite_request(raw, rw);
    assert_string_equal(got, want);
    free(got);
}

static void test_request_gets_forwarded_headers_appended(void **state)
{
    assert_request("GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
                   "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
                   "X-Forwarded-Host: evil\r\nX-Client-Cert-Subject: CN=evil\r\n\r\n",
                   &plain,
                   "GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
                   "X-Forwarded-For: 203.0.113.9, 192.0.2.1\r\nX-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: example.com\r\n\r\n");
}

static void test_request_hop_by_hop_fields_are_removed(void **state)
{
    assert_request("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\n"
                   "X-Secret: s\r\nKeep-Alive: 5\r\nA: 1\r\nProxy-Connection: x\r\nTE: trailers\r\n"
                   "Trailer: X-T\r\nUpgrade: h2c\r\nB: 2\r\n\r\n",
                   &plain,
                   "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n"
                   "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\r\n");
}

static void test_request_framing_is_rewritten_from_the_parse(void **state)
{
    assert_request("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nHost: h\r\n\r\n", &plain,
                   "POST / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.1\r\n"
                   "X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\nContent-Length: 5\r\n\r\n");
    assert_request("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", &plain,
                   "POST / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.1\r\n"
                   "X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n");
}

static void test_upgrade_is_kept_when_upgrading(void **state)
{
    assert_request("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: k\r\n\r\n", &plain,
                   "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n"
                   "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n"
                   "Connection: upgrade\r\n\r\n");
}

static void test_http10_request_goes_as_11_with_host_and_without_expect(void **state)
{
    assert_request("POST /p HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
                   &plain,
                   "POST /p HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Forwarded-For: 192.0.2.1\r\n"
                   "X-Forwarded-Proto: http\r\nContent-Length: 1\r\n\r\n");
    assert_request("POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
                   &plain,
                   "POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nX-Forwarded-For: 192.0.2.1\r\n"
                   "X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\nContent-Length: 1\r\n\r\n");
}

/* RFC 9112 §3.2.2: the target's authority wins over Host and replaces it, so the
 * backend sees one name, the one ferry routed by, and an origin-form target. */
static void test_absolute_form_goes_in_origin_form_with_the_targets_host(void **state)
{
    assert_request("GET http://a.test/x?y HTTP/1.1\r\nHost: b.test\r\nAccept: */*\r\n\r\n",
                   &plain,
                   "GET /x?y HTTP/1.1\r\nAccept: */*\r\nHost: a.test\r\n"
                   "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: a.test\r\n\r\n");
    assert_request("GET https://a.test:8443?q HTTP/1.1\r\nHost: b.test\r\n\r\n", &plain,
                   "GET /?q HTTP/1.1\r\nHost: a.test:8443\r\n"
                   "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: a.test:8443\r\n\r\n");
    assert_request("OPTIONS http://a.test HTTP/1.1\r\nHost: a.test\r\n\r\n", &plain,
                   "OPTIONS * HTTP/1.1\r\nHost: a.test\r\n"
                   "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: a.test\r\n\r\n");
    /* HTTP/1.0 needs no Host: the target's, not the listener's */
    assert_request("GET http://a.test HTTP/1.0\r\n\r\n", &plain,
                   "GET / HTTP/1.1\r\nHost: a.test\r\n"
                   "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: a.test\r\n\r\n");
}

static void test_tls_request_carries_proto_and_verified_subject(void **state)
{
    struct http_request_rewrite rw = plain;
    rw.is_tls = true;
    rw.cert_subject = "CN=client,O=Dev";
    assert_request("GET / HTTP/1.1\r\nHost: h\r\nX-Client-Cert-Subject: CN=forged\r\n\r\n", &rw,
                   "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.1\r\n"
                   "X-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\n"
                   "X-Client-Cert-Subject: CN=client,O=Dev\r\n\r\n");
}

static void test_forwarded_for_named_by_connection_is_not_passed_on(void **state)
{
    assert_request("GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Forwarded-For\r\n"
                   "X-Forwarded-For: 203.0.113.9\r\n\r\n",
                   &plain,
                   "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.1\r\n"
                   "X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\r\n");
}

/* A front end's prior X-Forwarded-For values, as an array walked by the iterator. */
struct values {
    const char *const *v;
    size_t next;
};

static bool next_value(void *ctx, const char **value, size_t *value_len)
{
    struct values *it = ctx;
    if (!it->v[it->next])
        return false;
    *value = it->v[it->next++];
    *value_len = strlen(*value);
    return true;
}

static char *proxy_fields(const char *const *prior_values, const char *host,
                          const struct http_request_rewrite *rw)
{
    struct values cursor = { prior_values, 0 };
    const struct http_forwarded_for prior = { next_value, &cursor };
    struct evbuffer *out = evbuffer_new();
    assert_int_equal(http_forward_add_proxy_fields(out, &prior, host, host ? strlen(host) : 0, rw), 0);
    size_t n = evbuffer_get_length(out);
    char *s = malloc(n + 1);
    evbuffer_remove(out, s, n);
    s[n] = '\0';
    evbuffer_free(out);
    return s;
}

static void test_proxy_fields_append_client_to_prior_values_skipping_empty(void **state)
{
    const char *const prior[] = { "203.0.113.9", "", "198.51.100.7, 10.0.0.1", NULL };
    char *got = proxy_fields(prior, "example.com:8443", &plain);
    assert_string_equal(got, "X-Forwarded-For: 203.0.113.9, 198.51.100.7, 10.0.0.1, 192.0.2.1\r\n"
                             "X-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com:8443\r\n");
    free(got);
}

static void test_proxy_fields_without_host_or_prior_values(void **state)
{
    const char *const none[] = { NULL };
    struct http_request_rewrite rw = plain;
    rw.is_tls = true;
    rw.cert_subject = "CN=c";
    char *got = proxy_fields(none, NULL, &rw);
    assert_string_equal(got, "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\n"
                             "X-Client-Cert-Subject: CN=c\r\n");
    free(got);
}

static char *rewrite_response(const char *raw, enum http1_method method,
                              const struct http_response_rewrite *rw)
{
    struct http1_header headers[64];
    struct http1_response resp = { .headers = headers };
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    int rc = http1_parse_response(raw, strlen(raw), &lim, method, &resp);
    assert_true(rc > 0);
    struct evbuffer *out = evbuffer_new();
    long n = http_forward_response_head(out, &resp, raw, (size_t)rc, rw);
    assert_int_equal(n, (long)evbuffer_get_length(out));
    char *s = malloc((size_t)n + 1);
    evbuffer_remove(out, s, (size_t)n);
    s[n] = '\0';
    evbuffer_free(out);
    return s;
}

static void test_response_drops_hop_by_hop_and_writes_framing(void **state)
{
    struct http_response_rewrite rw = { HTTP_FRAMING_CHUNKED, 0, HTTP_CONN_NONE };
    char *got = rewrite_response("HTTP/1.1 200 OK\r\nA: 1\r\nTransfer-Encoding: chunked\r\n"
                                 "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nB: 2\r\n\r\n",
                                 HTTP1_METHOD_GET, &rw);
    assert_string_equal(got, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nTransfer-Encoding: chunked\r\n\r\n");
    free(got);
}

static void test_response_for_http10_client_is_close_delimited(void **state)
{
    struct http_response_rewrite rw = { HTTP_FRAMING_CLOSE, 0, HTTP_CONN_CLOSE };
    char *got = rewrite_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                                 HTTP1_METHOD_GET, &rw);
    assert_string_equal(got, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    free(got);
}

static void test_response_length_and_keepalive_for_http10(void **state)
{
    struct http_response_rewrite rw = { HTTP_FRAMING_LENGTH, 42, HTTP_CONN_KEEP_ALIVE };
    char *got = rewrite_response("HTTP/1.0 404 \r\nContent-Length: 42\r\n\r\n", HTTP1_METHOD_HEAD,
                                 &rw);
    assert_string_equal(got, "HTTP/1.1 404 Not Found\r\nContent-Length: 42\r\nConnection: keep-alive\r\n\r\n");
    free(got);
}

static void test_101_keeps_upgrade(void **state)
{
    struct http_response_rewrite rw = { HTTP_FRAMING_NONE, 0, HTTP_CONN_UPGRADE };
    char *got = rewrite_response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n",
                                 HTTP1_METHOD_GET, &rw);
    assert_string_equal(got, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Sec-WebSocket-Accept: x\r\nConnection: upgrade\r\n\r\n");
    free(got);
}

static void test_error_response_is_complete_and_closes_when_asked(void **state)
{
    struct evbuffer *out = evbuffer_new();
    long n = http_error_response(out, 502, HTTP_CONN_CLOSE, false);
    const char want[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 16\r\nConnection: close\r\n\r\n502 Bad Gateway\n";
    assert_int_equal(n, (long)sizeof want - 1);
    assert_memory_equal(evbuffer_pullup(out, -1), want, sizeof want - 1);
    evbuffer_free(out);
}

static void test_error_response_to_head_has_no_body(void **state)
{
    struct evbuffer *out = evbuffer_new();
    long n = http_error_response(out, 503, HTTP_CONN_NONE, true);
    const char want[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 24\r\n\r\n";
    assert_int_equal(n, (long)sizeof want - 1);
    assert_int_equal(evbuffer_get_length(out), sizeof want - 1);
    assert_memory_equal(evbuffer_pullup(out, -1), want, sizeof want - 1);
    evbuffer_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_gets_forwarded_headers_appended),
        cmocka_unit_test(test_request_hop_by_hop_fields_are_removed),
        cmocka_unit_test(test_request_framing_is_rewritten_from_the_parse),
        cmocka_unit_test(test_upgrade_is_kept_when_upgrading),
        cmocka_unit_test(test_http10_request_goes_as_11_with_host_and_without_expect),
        cmocka_unit_test(test_absolute_form_goes_in_origin_form_with_the_targets_host),
        cmocka_unit_test(test_tls_request_carries_proto_and_verified_subject),
        cmocka_unit_test(test_forwarded_for_named_by_connection_is_not_passed_on),
        cmocka_unit_test(test_proxy_fields_append_client_to_prior_values_skipping_empty),
        cmocka_unit_test(test_proxy_fields_without_host_or_prior_values),
        cmocka_unit_test(test_response_drops_hop_by_hop_and_writes_framing),
        cmocka_unit_test(test_response_for_http10_client_is_close_delimited),
        cmocka_unit_test(test_response_length_and_keepalive_for_http10),
        cmocka_unit_test(test_101_keeps_upgrade),
        cmocka_unit_test(test_error_response_is_complete_and_closes_when_asked),
        cmocka_unit_test(test_error_response_to_head_has_no_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Route matching (proxy/http/route.c): host exact or "*.suffix" (any depth),
 * case-insensitive, port and trailing dot ignored; path_prefix a byte prefix; first
 * match wins; absolute-form targets route by their authority. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "http/route.h"
#include "http1/parse.h"

static bool host_matches(const char *pattern, const char *host)
{
    return http_route_host_matches(pattern, host, strlen(host));
}

static void test_exact_host_ignores_case_port_and_trailing_dot(void **state)
{
    assert_true(host_matches("api.example", "api.example"));
    assert_true(host_matches("api.example", "API.Example"));
    assert_true(host_matches("api.example", "api.example:8443"));
    assert_true(host_matches("api.example", "api.example."));
    assert_true(host_matches("api.example", "api.example.:80"));
    assert_false(host_matches("api.example", "api.example.com"));
    assert_false(host_matches("api.example", "xapi.example"));
    assert_false(host_matches("api.example", "sub.api.example"));
    assert_false(host_matches("api.example", "api.exampl"));
    assert_false(host_matches("api.example", ""));
}

static void test_wildcard_matches_any_depth_but_not_the_suffix_itself(void **state)
{
    assert_true(host_matches("*.example", "a.example"));
    assert_true(host_matches("*.example", "a.b.c.example"));
    assert_true(host_matches("*.example", "A.EXAMPLE:80"));
    assert_false(host_matches("*.example", "example"));
    assert_false(host_matches("*.example", ".example"));
    assert_false(host_matches("*.example", "xexample"));
    assert_false(host_matches("*.example", "a.example.org"));
}

static void test_ipv6_literal_host_keeps_brackets_and_drops_port(void **state)
{
    assert_true(host_matches("[::1]", "[::1]:8080"));
    assert_true(host_matches("[::1]", "[::1]"));
    assert_false(host_matches("[::1]", "[::2]:8080"));
}

static void test_no_host_matches_no_host_pattern(void **state)
{
    assert_false(http_route_host_matches("a.example", NULL, 0));
}

static int find(const struct cfg_route *routes, size_t n, const char *host, const char *path)
{
    struct http_route_key key = { host, host ? strlen(host) : 0, path, strlen(path) };
    return http_route_find(routes, n, &key);
}

static void test_path_prefix_is_a_byte_prefix(void **state)
{
    struct cfg_route routes[] = { { .path_prefix = "/static/" } };
    assert_int_equal(find(routes, 1, "a", "/static/app.js"), 0);
    assert_int_equal(find(routes, 1, "a", "/static/"), 0);
    assert_int_equal(find(routes, 1, "a", "/static"), -1);
    assert_int_equal(find(routes, 1, "a", "/STATIC/app.js"), -1);
    assert_int_equal(find(routes, 1, "a", "/x/static/"), -1);
}

static void test_first_matching_route_wins(void **state)
{
    struct cfg_route routes[] = {
        { .host = "api.example", .path_prefix = "/v1/" },
        { .host = "*.example" },
        { .path_prefix = "/static/" },
        { 0 },      /* catch-all */
    };
    assert_int_equal(find(routes, 4, "api.example", "/v1/users"), 0);
    assert_int_equal(find(routes, 4, "api.example", "/v2/users"), 1);
    assert_int_equal(find(routes, 4, "www.example", "/static/x"), 1);
    assert_int_equal(find(routes, 4, "other.test", "/static/x"), 2);
    assert_int_equal(find(routes, 4, "other.test", "/"), 3);
    assert_int_equal(find(routes, 4, NULL, "/v1/users"), 3);
    assert_int_equal(find(routes, 3, "other.test", "/"), -1);
}

static void key_of(const char *raw, struct http_route_key *key, struct http1_request *req,
                   struct http1_header *headers)
{
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    req->headers = headers;
    assert_true(http1_parse_request(raw, strlen(raw), &lim, req) > 0);
    http_route_key_of(req, key);
}

static void assert_span(const char *p, size_t len, const char *want)
{
    assert_non_null(p);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
}

static void test_origin_form_routes_by_host_header(void **state)
{
    struct http1_header headers[16];
    struct http1_request req;
    struct http_route_key key;
    key_of("GET /a/b?c HTTP/1.1\r\nHost: Example.com:81\r\n\r\n", &key, &req, headers);
    assert_span(key.host, key.host_len, "Example.com:81");
    assert_span(key.path, key.path_len, "/a/b?c");
}

static void test_absolute_form_routes_by_target_authority(void **state)
{
    struct http1_header headers[16];
    struct http1_request req;
    struct http_route_key key;
    key_of("GET http://api.example:8080/v1/x?q HTTP/1.1\r\nHost: other\r\n\r\n", &key,
           &req, headers);
    assert_span(key.host, key.host_len, "api.example:8080");
    assert_span(key.path, key.path_len, "/v1/x?q");
    key_of("GET http://api.example HTTP/1.1\r\nHost: other\r\n\r\n", &key, &req, headers);
    assert_span(key.host, key.host_len, "api.example");
    assert_span(key.path, key.path_len, "/");
    key_of("GET http://api.example?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", &key, &req, headers);
    assert_span(key.host, key.host_len, "api.example");
    assert_span(key.path, key.path_len, "/");
}

static void test_http10_without_host_has_no_host(void **state)
{
    struct http1_header headers[16];
    struct http1_request req;
    struct http_route_key key;
    key_of("GET / HTTP/1.0\r\n\r\n", &key, &req, headers);
    assert_null(key.host);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_host_ignores_case_port_and_trailing_dot),
        cmocka_unit_test(test_wildcard_matches_any_depth_but_not_the_suffix_itself),
        cmocka_unit_test(test_ipv6_literal_host_keeps_brackets_and_drops_port),
        cmocka_unit_test(test_no_host_matches_no_host_pattern),
        cmocka_unit_test(test_path_prefix_is_a_byte_prefix),
        cmocka_unit_test(test_first_matching_route_wins),
        cmocka_unit_test(test_origin_form_routes_by_host_header),
        cmocka_unit_test(test_absolute_form_routes_by_target_authority),
        cmocka_unit_test(test_http10_without_host_has_no_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

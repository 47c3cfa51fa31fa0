/* What admin requests ask for (proxy/admin/request.c): routes, methods, the bearer
 * token, query strings, malformed and incomplete heads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "admin/request.h"

static struct admin_request decide(const char *raw, const char *token)
{
    struct admin_request r;
    assert_int_equal(admin_request_decide(raw, strlen(raw), token, true, &r), 1);
    return r;
}

static void test_routes_and_methods(void **state)
{
    assert_int_equal(decide("GET /status HTTP/1.1\r\nHost: a\r\n\r\n", NULL).endpoint, ADMIN_STATUS);
    assert_int_equal(decide("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", NULL).endpoint, ADMIN_METRICS);
    assert_int_equal(decide("POST /reload HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", NULL).endpoint,
                     ADMIN_RELOAD);
    struct admin_request r = decide("GET /reload HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "POST");
    r = decide("DELETE /status HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "GET");
    assert_int_equal(decide("GET /statusx HTTP/1.1\r\nHost: a\r\n\r\n", NULL).status, 404);
    assert_int_equal(decide("GET / HTTP/1.1\r\nHost: a\r\n\r\n", NULL).status, 404);
}

static void test_query_strings_are_refused(void **state)
{
    struct admin_request r = decide("POST /reload?dry_run=yes HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_int_equal(r.endpoint, ADMIN_NONE);
    assert_int_equal(r.status, 400);
    assert_false(r.dry_run);
    r = decide("POST /reload?dry_run=1&force=1 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_int_equal(r.status, 400);
    assert_false(r.dry_run);
    assert_int_equal(decide("POST /reload?dry_run HTTP/1.1\r\nHost: a\r\n\r\n", NULL).status, 400);
    assert_int_equal(decide("POST /reload? HTTP/1.1\r\nHost: a\r\n\r\n", NULL).status, 400);
    assert_int_equal(decide("GET /healthz?dry_run=1 HTTP/1.1\r\nHost: a\r\n\r\n", NULL).status, 400);
    assert_int_equal(decide("GET /status? HTTP/1.1\r\nHost: a\r\n\r\n", NULL).status, 400);
    /* an unknown path stays 404 whatever its query */
    assert_int_equal(decide("GET /nope?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", NULL).status, 404);
}

static void test_dry_run_is_the_only_parameter_of_reload(void **state)
{
    struct admin_request r = decide("POST /reload?dry_run=1 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_int_equal(r.endpoint, ADMIN_RELOAD);
    assert_true(r.dry_run);
    r = decide("POST /reload?dry_run=true HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_true(r.endpoint == ADMIN_RELOAD && r.dry_run);
    r = decide("POST /reload?dry_run=0 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_true(r.endpoint == ADMIN_RELOAD && !r.dry_run);
    r = decide("POST /reload HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_true(r.endpoint == ADMIN_RELOAD && !r.dry_run);
}

static void test_healthz_and_config(void **state)
{
    assert_int_equal(decide("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", NULL).endpoint, ADMIN_HEALTHZ);
    assert_int_equal(decide("GET /config HTTP/1.1\r\nHost: a\r\n\r\n", NULL).endpoint, ADMIN_CONFIG);
    assert_int_equal(decide("POST /healthz HTTP/1.1\r\nHost: a\r\n\r\n", NULL).status, 405);
    assert_int_equal(decide("GET /config HTTP/1.1\r\nHost: a\r\n\r\n", "t").status, 401);
}

static void test_cross_site_posts_are_refused(void **state)
{
    /* what a page elsewhere can make a browser send: Origin, or a form's type */
    assert_int_equal(decide("POST /reload HTTP/1.1\r\nHost: a\r\nOrigin: https://evil.example\r\n\r\n",
                            NULL).status, 403);
    assert_int_equal(decide("POST /reload HTTP/1.1\r\nHost: a\r\nOrigin: null\r\n\r\n", NULL).status,
                     403);
    assert_int_equal(decide("POST /reload HTTP/1.1\r\nHost: a\r\n"
                            "Content-Type: application/x-www-form-urlencoded\r\n\r\n", NULL).status, 403);
    assert_int_equal(decide("POST /reload?dry_run=1 HTTP/1.1\r\nHost: a\r\n"
                            "Content-Type: multipart/form-data; boundary=x\r\n\r\n", NULL).status, 403);
    assert_int_equal(decide("POST /reload HTTP/1.1\r\nHost: a\r\nContent-Type: Text/Plain ;charset=x\r\n\r\n",
                            NULL).status, 403);
    /* what curl and scripts send, and any request carrying the token */
    assert_int_equal(decide("POST /reload HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\r\n",
                            NULL).endpoint, ADMIN_RELOAD);
    assert_int_equal(decide("POST /reload HTTP/1.1\r\nHost: a\r\nOrigin: https://x\r\n"
                            "Authorization: Bearer t\r\n\r\n", "t").endpoint, ADMIN_RELOAD);
    /* a GET reads nothing a page could see (no CORS headers) and changes nothing */
    assert_int_equal(decide("GET /status HTTP/1.1\r\nHost: a\r\nOrigin: https://x\r\n\r\n", NULL).endpoint,
                     ADMIN_STATUS);
}

static void test_token_is_required_before_anything_else(void **state)
{
    const char *token = "s3cret";
    assert_int_equal(decide("GET /status HTTP/1.1\r\nHost: a\r\n\r\n", token).status, 401);
    assert_int_equal(decide("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", token).status, 401);
    assert_int_equal(decide("GET /status HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cre\r\n\r\n",
                            token).status, 401);
    assert_int_equal(decide("GET /status HTTP/1.1\r\nHost: a\r\nAuthorization: Basic s3cret\r\n\r\n",
                            token).status, 401);
    assert_int_equal(decide("GET /status HTTP/1.1\r\nHost: a\r\nAuthorization: bearer s3cret\r\n\r\n",
                            token).endpoint, ADMIN_STATUS);
}

static void test_api_turned_off_answers_nothing(void **state)
{
    const char *raw = "GET /status HTTP/1.1\r\nHost: a\r\n\r\n";
    struct admin_request r;
    assert_int_equal(admin_request_decide(raw, strlen(raw), NULL, false, &r), 1);
    assert_int_equal(r.status, 401);
}

static void test_malformed_incomplete_and_too_large(void **state)
{
    assert_int_equal(decide("GARBAGE\r\n\r\n", NULL).status, 400);
    assert_int_equal(decide("GET /status HTTP/1.1\r\n\r\n", NULL).status, 400);    /* no Host */
    assert_int_equal(decide("GET http://a/status HTTP/1.1\r\nHost: a\r\n\r\n", NULL).status, 400);
    struct admin_request r;
    const char *partial = "GET /status HTTP/1.1\r\nHost: a\r\n";
    assert_int_equal(admin_request_decide(partial, strlen(partial), NULL, true, &r), 0);
    static const char start[] = "GET /status HTTP/1.1\r\nX: ";
    char big[ADMIN_MAX_HEAD + 100];
    memset(big, 'x', sizeof big);
    memcpy(big, start, sizeof start - 1);    /* a head that never ends: no NUL wanted */
    assert_int_equal(admin_request_decide(big, sizeof big, NULL, true, &r), 1);
    assert_int_equal(r.status, 431);
}

static void test_drain_and_enable_name_a_backend(void **state)
{
    struct admin_request r = decide("POST /pools/web/backends/127.0.0.1:9001/drain HTTP/1.1\r\n"
                                    "Host: a\r\n\r\n", NULL);
    assert_int_equal(r.endpoint, ADMIN_DRAIN);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.pool, "web");
    assert_string_equal(r.backend, "127.0.0.1:9001");
    r = decide("POST /pools/web/backends/[::1]:80/enable HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_int_equal(r.endpoint, ADMIN_ENABLE);
    assert_string_equal(r.backend, "[::1]:80");
    /* Percent-encoded segments are decoded; a backend's name works as well. */
    r = decide("POST /pools/a%2Eb/backends/%5B::1%5d:80/drain HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_int_equal(r.endpoint, ADMIN_DRAIN);
    assert_string_equal(r.pool, "a.b");
    assert_string_equal(r.backend, "[::1]:80");
    r = decide("POST /pools/web/backends/alpha/drain HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_string_equal(r.backend, "alpha");
}

static void test_drain_takes_post_only_and_no_query(void **state)
{
    struct admin_request r = decide("GET /pools/web/backends/a/drain HTTP/1.1\r\nHost: a\r\n\r\n",
                                    NULL);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "POST");
    r = decide("POST /pools/web/backends/a/enable?now=1 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    assert_int_equal(r.status, 400);
    /* with a token, a stranger learns nothing, not even that the path exists */
    assert_int_equal(decide("POST /pools/web/backends/a/drain HTTP/1.1\r\nHost: a\r\n\r\n",
                            "t").status, 401);
}

static void test_malformed_backend_paths_are_not_found(void **state)
{
    static const char *const paths[] = {
        "/pools/web/backends/a/drainx", "/pools/web/backends/a/", "/pools/web/backends/a",
        "/pools/web/backends//drain", "/pools//backends/a/drain", "/pools/web/backend/a/drain",
        "/pools/web/backends/a/b/drain", "/pools/web/backends/%zz/drain",
        "/pools/web/backends/a%00b/drain", "/pools/web/backends/a%2fb/drain",
        "/pools/web/backends/a%2/drain", "/pools/web/backends/a%/drain", "/pools/",
        "/pools/web/backends/a/drain/",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char raw[512];
        snprintf(raw, sizeof raw, "POST %s HTTP/1.1\r\nHost: a\r\n\r\n", paths[i]);
        struct admin_request r = decide(raw, NULL);
        if (r.status != 404)
            print_message("%s: %d\n", paths[i], r.status);
        assert_int_equal(r.status, 404);
    }
    char raw[1024] = "POST /pools/web/backends/";
    size_t n = strlen(raw);
    memset(raw + n, 'x', ADMIN_MAX_SEGMENT + 1);
    strcpy(raw + n + ADMIN_MAX_SEGMENT + 1, "/drain HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(decide(raw, NULL).status, 404);
    strcpy(raw + n + ADMIN_MAX_SEGMENT, "/drain HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(decide(raw, NULL).endpoint, ADMIN_DRAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_and_methods),
        cmocka_unit_test(test_query_strings_are_refused),
        cmocka_unit_test(test_dry_run_is_the_only_parameter_of_reload),
        cmocka_unit_test(test_healthz_and_config),
        cmocka_unit_test(test_cross_site_posts_are_refused),
        cmocka_unit_test(test_token_is_required_before_anything_else),
        cmocka_unit_test(test_api_turned_off_answers_nothing),
        cmocka_unit_test(test_malformed_incomplete_and_too_large),
        cmocka_unit_test(test_drain_and_enable_name_a_backend),
        cmocka_unit_test(test_drain_takes_post_only_and_no_query),
        cmocka_unit_test(test_malformed_backend_paths_are_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

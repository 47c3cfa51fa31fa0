/* Access log lines (proxy/http/access.c): JSON that parses with every field, strings
 * escaped, long paths cut without breaking the line; the text format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "http/access.h"

static struct http_access_entry entry(const char *path)
{
    struct http_access_entry e = {
        .time = { .tv_sec = 1714564800, .tv_nsec = 123456789 },   /* 2024-05-01T12:00:00 */
        .client = "::1",
        .listener = "https",
        .method = "GET",
        .method_len = 3,
        .path = path,
        .path_len = strlen(path),
        .proto = "HTTP/1.1",
        .status = 200,
        .bytes = 1234,
        .backend = "alpha",
        .upstream_ms = 3,
        .total_ms = 4,
    };
    return e;
}

static json_t *parse_line(const char *line, size_t len)
{
    json_error_t error;
    json_t *j = json_loadb(line, len, 0, &error);
    if (!j)
        fail_msg("not JSON (%s): %s", error.text, line);
    return j;
}

static void test_json_line_has_every_field(void **state)
{
    char line[4096];
    struct http_access_entry e = entry("/x?y=1");
    size_t n = http_access_format(line, sizeof line, &e, LOG_FORMAT_JSON);
    assert_int_equal(n, strlen(line));
    json_t *j = parse_line(line, n);
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2024-05-01T12:00:00.123Z");
    assert_string_equal(json_string_value(json_object_get(j, "client")), "::1");
    assert_string_equal(json_string_value(json_object_get(j, "listener")), "https");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/x?y=1");
    assert_string_equal(json_string_value(json_object_get(j, "proto")), "HTTP/1.1");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes")), 1234);
    assert_string_equal(json_string_value(json_object_get(j, "backend")), "alpha");
    assert_int_equal(json_integer_value(json_object_get(j, "upstream_ms")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "total_ms")), 4);
    json_decref(j);
}

static void test_json_escapes_quotes_backslashes_and_control_bytes(void **state)
{
    char line[4096];
    const char path[] = "/a\"b\\c\x01\x7f\xc3\xa9";
    struct http_access_entry e = entry(path);
    size_t n = http_access_format(line, sizeof line, &e, LOG_FORMAT_JSON);
    assert_null(memchr(line, '\n', n));
    json_t *j = parse_line(line, n);
    const char *got = json_string_value(json_object_get(j, "path"));
    /* every byte comes back as the code point of the same value */
    assert_string_equal(got, "/a\"b\\c\x01\x7f\xc3\x83\xc2\xa9");
    json_decref(j);
}

static void test_json_without_backend_says_dash(void **state)
{
    char line[4096];
    struct http_access_entry e = entry("/");
    e.backend = NULL;
    e.status = 404;
    size_t n = http_access_format(line, sizeof line, &e, LOG_FORMAT_JSON);
    json_t *j = parse_line(line, n);
    assert_string_equal(json_string_value(json_object_get(j, "backend")), "-");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
    json_decref(j);
}

static void test_long_path_is_cut_and_the_line_stays_json(void **state)
{
    char path[9000];
    memset(path, '"', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    char line[1024];
    struct http_access_entry e = entry(path);
    size_t n = http_access_format(line, sizeof line, &e, LOG_FORMAT_JSON);
    assert_true(n < sizeof line);
    json_t *j = parse_line(line, n);
    assert_int_equal(json_integer_value(json_object_get(j, "total_ms")), 4);
    assert_true(strlen(json_string_value(json_object_get(j, "path"))) > 100);
    json_decref(j);
}

static void test_text_line(void **state)
{
    char line[4096];
    struct http_access_entry e = entry("/p \"q\"");
    http_access_format(line, sizeof line, &e, LOG_FORMAT_TEXT);
    assert_string_equal(line,
        "2024-05-01T12:00:00.123Z ::1 https \"GET /p \\\"q\\\" HTTP/1.1\" 200 1234 alpha 3 4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_line_has_every_field),
        cmocka_unit_test(test_json_escapes_quotes_backslashes_and_control_bytes),
        cmocka_unit_test(test_json_without_backend_says_dash),
        cmocka_unit_test(test_long_path_is_cut_and_the_line_stays_json),
        cmocka_unit_test(test_text_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

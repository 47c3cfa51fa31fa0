/* http1 request head parsing: request line, header syntax, limits, head_ready. */
#include "test_http1_util.h"

#define GET_SIMPLE "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"

static void test_parses_simple_get(void **state)
{
    struct parsed_req p;
    assert_int_equal(t_parse_req(&p, GET_SIMPLE), (int)strlen(GET_SIMPLE));
    assert_span(p.req.method, p.req.method_len, "GET");
    assert_int_equal(p.req.method_id, HTTP1_METHOD_GET);
    assert_span(p.req.target, p.req.target_len, "/index.html?q=1");
    assert_int_equal(p.req.target_form, HTTP1_TARGET_ORIGIN);
    assert_int_equal(p.req.minor_version, 1);
    assert_int_equal(p.req.num_headers, 2);
    assert_span(p.headers[0].name, p.headers[0].name_len, "Host");
    assert_span(p.headers[0].value, p.headers[0].value_len, "example.com");
    assert_int_equal(p.headers[0].id, HTTP1_H_HOST);
    assert_span(p.headers[1].name, p.headers[1].name_len, "Accept");
    assert_span(p.headers[1].value, p.headers[1].value_len, "*/*");
    assert_int_equal(p.headers[1].id, HTTP1_H_OTHER);
    assert_true(p.req.has_host);
    assert_span(p.req.host, p.req.host_len, "example.com");
    assert_int_equal(p.req.body, HTTP1_BODY_NONE);
    assert_true(p.req.keep_alive);
    assert_false(p.req.is_upgrade);
    assert_false(p.req.expect_continue);
    t_free_req(&p);
}

static void test_parses_get_at_every_split(void **state)
{
    assert_int_equal(t_req_every_split(GET_SIMPLE, strlen(GET_SIMPLE)), (int)strlen(GET_SIMPLE));
}

static void test_parses_post_with_body_at_every_split(void **state)
{
    const char *msg = "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                      "Content-Type: text/plain\r\n\r\nhello";
    int head = (int)(strlen(msg) - 5);
    assert_int_equal(t_req_every_split(msg, strlen(msg)), head);
    struct parsed_req p;
    assert_int_equal(t_parse_req(&p, msg), head);
    assert_int_equal(p.req.method_id, HTTP1_METHOD_POST);
    assert_int_equal(p.req.body, HTTP1_BODY_LENGTH);
    assert_int_equal(p.req.content_length, 5);
    assert_memory_equal(p.buf + p.rc, "hello", 5);
    t_free_req(&p);
}

static void test_valid_requests_at_every_split(void **state)
{
    static const char *const msgs[] = {
        "GET / HTTP/1.0\r\n\r\n",
        "HEAD /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "GET http://a.example/x?y HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "GET HTTPS://a.example?q HTTP/1.0\r\n\r\n",
        "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n",
        "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nExpect: 100-continue\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        const char *end = strstr(msgs[i], "\r\n\r\n");
        assert_int_equal(t_req_every_split(msgs[i], strlen(msgs[i])), end + 4 - msgs[i]);
    }
}

static void test_parses_http10_without_host(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET / HTTP/1.0\r\n\r\n") > 0);
    assert_int_equal(p.req.minor_version, 0);
    assert_false(p.req.has_host);
    assert_null(p.req.host);
    assert_false(p.req.keep_alive);
    t_free_req(&p);
}

static void test_parses_known_methods(void **state)
{
    static const struct { const char *name; enum http1_method id; } cases[] = {
        { "GET", HTTP1_METHOD_GET },       { "HEAD", HTTP1_METHOD_HEAD },
        { "POST", HTTP1_METHOD_POST },     { "PUT", HTTP1_METHOD_PUT },
        { "DELETE", HTTP1_METHOD_DELETE }, { "OPTIONS", HTTP1_METHOD_OPTIONS },
        { "PATCH", HTTP1_METHOD_PATCH },   { "TRACE", HTTP1_METHOD_TRACE },
        { "PROPFIND", HTTP1_METHOD_OTHER }, { "get", HTTP1_METHOD_OTHER },
        { "GETX", HTTP1_METHOD_OTHER },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", cases[i].name);
        struct parsed_req p;
        assert_true(t_parse_req(&p, msg) > 0);
        assert_int_equal(p.req.method_id, cases[i].id);
        assert_span(p.req.method, p.req.method_len, cases[i].name);
        t_free_req(&p);
    }
}

static void assert_absolute(const char *msg, const char *host, const char *path)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, msg) > 0);
    assert_int_equal(p.req.target_form, HTTP1_TARGET_ABSOLUTE);
    assert_span(p.req.host, p.req.host_len, host);
    assert_int_equal(p.req.path_len, strlen(path));
    assert_memory_equal(p.req.path, path, p.req.path_len);
    assert_int_equal(http1_path_needs_slash(&p.req), path[0] != '/');
    t_free_req(&p);
}

/* The target's authority is the request's host, not Host (RFC 9112 §3.2.2). */
static void test_absolute_form_target_gives_host_and_path(void **state)
{
    assert_absolute("GET http://example.com/a?b HTTP/1.1\r\nHost: other\r\n\r\n",
                    "example.com", "/a?b");
    assert_absolute("GET HTTPS://[::1]:8443 HTTP/1.1\r\nHost: other\r\n\r\n", "[::1]:8443", "");
    assert_absolute("GET http://a.example?q HTTP/1.0\r\n\r\n", "a.example", "?q");
}

static void test_absolute_form_rejects_userinfo_other_schemes_and_no_host(void **state)
{
    assert_req_error("GET http://u@a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
    assert_req_error("GET http://u:p@a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
    assert_req_error("GET ftp://a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
    assert_req_error("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
    assert_req_error("GET http://?q HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
}

static void test_parses_asterisk_form_for_options(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
    assert_int_equal(p.req.target_form, HTTP1_TARGET_ASTERISK);
    t_free_req(&p);
}

static void test_parses_authority_form_for_connect(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "CONNECT db.local:5432 HTTP/1.1\r\nHost: db.local:5432\r\n\r\n") > 0);
    assert_int_equal(p.req.method_id, HTTP1_METHOD_CONNECT);
    assert_int_equal(p.req.target_form, HTTP1_TARGET_AUTHORITY);
    t_free_req(&p);
}

static void test_skips_leading_empty_lines(void **state)
{
    const char *msg = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(t_req_every_split(msg, strlen(msg)), (int)strlen(msg));
    struct parsed_req p;
    t_parse_req(&p, msg);
    assert_int_equal(t_off(p.req.method, p.buf), 4);
    t_free_req(&p);
}

static void test_trims_ows_around_values(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET / HTTP/1.1\r\nX-A:\t a b \t\r\nHost:c\r\n\r\n") > 0);
    assert_span(p.headers[0].value, p.headers[0].value_len, "a b");
    assert_span(p.headers[1].value, p.headers[1].value_len, "c");
    t_free_req(&p);
}

static void test_keeps_empty_header_value(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:   \r\n\r\n") > 0);
    assert_int_equal(p.req.num_headers, 2);
    assert_int_equal(p.headers[1].value_len, 0);
    t_free_req(&p);
}

static void test_accepts_obs_text_in_value(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\r\n\r\n") > 0);
    assert_span(p.headers[1].value, p.headers[1].value_len, "caf\xc3\xa9");
    t_free_req(&p);
}

static void test_parses_pipelined_requests(void **state)
{
    const char *msg = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    struct parsed_req p, q;
    int first = t_parse_req(&p, msg);
    assert_int_equal(first, (int)strlen(msg) / 2);
    assert_span(p.req.target, p.req.target_len, "/1");
    assert_int_equal(t_parse_req(&q, msg + first), first);
    assert_span(q.req.target, q.req.target_len, "/2");
    t_free_req(&p);
    t_free_req(&q);
}

static void test_rejects_method_with_invalid_char(void **state)
{
    assert_req_error("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_METHOD);
}

static void test_rejects_empty_method(void **state)
{
    assert_req_error(" / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_METHOD);
}

static void test_rejects_tab_as_separator(void **state)
{
    assert_req_error("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_METHOD);
}

static void test_rejects_double_space_in_request_line(void **state)
{
    assert_req_error("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_REQUEST_LINE);
}

static void test_rejects_missing_version(void **state)
{
    assert_req_error("GET /\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_REQUEST_LINE);
}

static void test_rejects_method_only_line(void **state)
{
    assert_req_error("GET\r\n\r\n", HTTP1_ERR_BAD_REQUEST_LINE);
}

static void test_rejects_space_in_target(void **state)
{
    assert_req_error("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_VERSION);
}

static void test_rejects_ctl_in_target(void **state)
{
    assert_req_error("GET /a\x01z HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
}

static void test_rejects_del_in_target(void **state)
{
    assert_req_error("GET /a\x7fz HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
}

static void test_rejects_non_ascii_in_target(void **state)
{
    assert_req_error("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
}

static void test_rejects_fragment_in_target(void **state)
{
    assert_req_error("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
}

static void test_rejects_relative_target(void **state)
{
    assert_req_error("GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
}

static void test_rejects_asterisk_for_get(void **state)
{
    assert_req_error("GET * HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
}

static void test_rejects_connect_with_origin_form(void **state)
{
    assert_req_error("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_TARGET);
}

static void test_rejects_http2_version_505(void **state)
{
    assert_req_error("GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP1_ERR_VERSION_UNSUPPORTED);
    assert_int_equal(http1_error_status(HTTP1_ERR_VERSION_UNSUPPORTED), 505);
}

static void test_rejects_http12_version_505(void **state)
{
    assert_req_error("GET / HTTP/1.2\r\nHost: a\r\n\r\n", HTTP1_ERR_VERSION_UNSUPPORTED);
}

static void test_rejects_http09_version_505(void **state)
{
    assert_req_error("GET / HTTP/0.9\r\n\r\n", HTTP1_ERR_VERSION_UNSUPPORTED);
}

static void test_rejects_lowercase_http_version(void **state)
{
    assert_req_error("GET / http/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_VERSION);
}

static void test_rejects_truncated_version(void **state)
{
    assert_req_error("GET / HTTP/1.\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_VERSION);
}

static void test_rejects_trailing_space_after_version(void **state)
{
    assert_req_error("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_REQUEST_LINE);
}

static void test_rejects_version_with_extra_digit(void **state)
{
    assert_req_error("GET / HTTP/1.10\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_REQUEST_LINE);
}

static char *long_target_request(size_t target_len)
{
    char *msg = malloc(target_len + 64);
    assert_non_null(msg);
    strcpy(msg, "GET /");
    memset(msg + 5, 'a', target_len - 1);
    strcpy(msg + 4 + target_len, " HTTP/1.1\r\nHost: a\r\n\r\n");
    return msg;
}

static void test_rejects_target_too_long_414(void **state)
{
    struct http1_limits lim = t_limits();
    lim.max_target_bytes = 100;
    char *msg = long_target_request(101);
    struct parsed_req p;
    assert_int_equal(t_parse_req_lim(&p, msg, strlen(msg), &lim), HTTP1_ERR_TARGET_TOO_LONG);
    assert_int_equal(http1_error_status(p.rc), 414);
    t_free_req(&p);
    /* Reported as soon as the target passes the limit, before the line ends. */
    assert_int_equal(t_parse_req_lim(&p, msg, 4 + 101, &lim), HTTP1_ERR_TARGET_TOO_LONG);
    t_free_req(&p);
    free(msg);
}

static void test_accepts_target_at_limit(void **state)
{
    struct http1_limits lim = t_limits();
    lim.max_target_bytes = 100;
    char *msg = long_target_request(100);
    struct parsed_req p;
    assert_true(t_parse_req_lim(&p, msg, strlen(msg), &lim) > 0);
    assert_int_equal(p.req.target_len, 100);
    t_free_req(&p);
    free(msg);
}

static void test_rejects_request_line_filling_head_414(void **state)
{
    struct http1_limits lim = t_limits();
    lim.max_header_bytes = 64;
    char *msg = long_target_request(200);
    struct parsed_req p;
    assert_int_equal(t_parse_req_lim(&p, msg, 64, &lim), HTTP1_ERR_TARGET_TOO_LONG);
    t_free_req(&p);
    free(msg);
}

static void test_rejects_space_before_colon(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTP1_ERR_SPACE_BEFORE_COLON);
}

static void test_rejects_tab_before_colon(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 5\r\n\r\n",
                     HTTP1_ERR_SPACE_BEFORE_COLON);
}

static void test_rejects_space_inside_name(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\nX Y: 1\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME);
}

static void test_rejects_obs_fold(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n",
                     HTTP1_ERR_OBS_FOLD);
}

static void test_rejects_obs_fold_with_tab(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n\ttwo\r\n\r\n",
                     HTTP1_ERR_OBS_FOLD);
}

static void test_rejects_whitespace_before_first_header(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\n Host: a\r\n\r\n", HTTP1_ERR_OBS_FOLD);
}

static void test_rejects_bare_cr_in_value(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", HTTP1_ERR_BARE_CR);
}

static void test_rejects_bare_cr_in_request_line(void **state)
{
    assert_req_error("GET / HTTP/1.1\rHost: a\r\n\r\n", HTTP1_ERR_BARE_CR);
}

static void test_rejects_bare_cr_ending_head(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\n\rX", HTTP1_ERR_BARE_CR);
}

static void test_rejects_bare_cr_in_leading_empty_line(void **state)
{
    assert_req_error("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BARE_CR);
}

static void test_rejects_bare_lf_line_end(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", HTTP1_ERR_BARE_LF);
}

static void test_rejects_bare_lf_request_line(void **state)
{
    assert_req_error("GET / HTTP/1.1\nHost: a\n\n", HTTP1_ERR_BARE_LF);
}

static void test_rejects_bare_lf_blank_line(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\n\n", HTTP1_ERR_BARE_LF);
}

static void test_rejects_nul_in_value(void **state)
{
    const char msg[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    assert_int_equal(t_req_every_split(msg, sizeof(msg) - 1), HTTP1_ERR_NUL);
}

static void test_rejects_nul_in_name(void **state)
{
    const char msg[] = "GET / HTTP/1.1\r\nHost: a\r\nX\0: b\r\n\r\n";
    assert_int_equal(t_req_every_split(msg, sizeof(msg) - 1), HTTP1_ERR_BAD_HEADER_NAME);
}

static void test_rejects_ctl_in_value(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", HTTP1_ERR_BAD_HEADER_VALUE);
}

static void test_rejects_del_in_value(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n", HTTP1_ERR_BAD_HEADER_VALUE);
}

static void test_rejects_empty_header_name(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME);
}

static void test_rejects_header_without_colon(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME);
}

static void test_rejects_invalid_char_in_name(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\nX(Y): b\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME);
}

static char *request_with_headers(size_t n)
{
    char *msg = malloc(64 + n * 16);
    assert_non_null(msg);
    char *p = msg + sprintf(msg, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (size_t i = 1; i < n; i++)
        p += sprintf(p, "X-%zu: v\r\n", i);
    strcpy(p, "\r\n");
    return msg;
}

static void test_rejects_too_many_headers_431(void **state)
{
    struct http1_limits lim = t_limits();
    lim.max_headers = 10;
    char *msg = request_with_headers(11);
    struct parsed_req p;
    assert_int_equal(t_parse_req_lim(&p, msg, strlen(msg), &lim), HTTP1_ERR_TOO_MANY_HEADERS);
    assert_int_equal(http1_error_status(p.rc), 431);
    /* The parser never writes past lim->max_headers entries. */
    assert_null(p.headers[10].name);
    t_free_req(&p);
    free(msg);
}

static void test_accepts_max_headers_exactly(void **state)
{
    struct http1_limits lim = t_limits();
    lim.max_headers = 10;
    char *msg = request_with_headers(10);
    struct parsed_req p;
    assert_true(t_parse_req_lim(&p, msg, strlen(msg), &lim) > 0);
    assert_int_equal(p.req.num_headers, 10);
    t_free_req(&p);
    free(msg);
}

static void test_rejects_head_too_large_431(void **state)
{
    struct http1_limits lim = t_limits();
    size_t len = strlen(GET_SIMPLE);
    lim.max_header_bytes = len - 1;
    struct parsed_req p;
    assert_int_equal(t_parse_req_lim(&p, GET_SIMPLE, len, &lim), HTTP1_ERR_HEAD_TOO_LARGE);
    assert_int_equal(http1_error_status(p.rc), 431);
    t_free_req(&p);
    /* Only max_header_bytes are needed to know. */
    assert_int_equal(t_parse_req_lim(&p, GET_SIMPLE, len - 1, &lim), HTTP1_ERR_HEAD_TOO_LARGE);
    t_free_req(&p);
    assert_int_equal(t_parse_req_lim(&p, GET_SIMPLE, len - 2, &lim), HTTP1_INCOMPLETE);
    t_free_req(&p);
}

static void test_accepts_head_at_size_limit(void **state)
{
    struct http1_limits lim = t_limits();
    size_t len = strlen(GET_SIMPLE);
    lim.max_header_bytes = len;
    struct parsed_req p;
    assert_int_equal(t_parse_req_lim(&p, GET_SIMPLE, len, &lim), (int)len);
    t_free_req(&p);
}

static void test_head_ready_finds_blank_line_across_calls(void **state)
{
    const char *msg = GET_SIMPLE;
    size_t len = strlen(msg);
    for (size_t k = 2; k <= len; k++)
        assert_int_equal(http1_head_ready(msg, k, k - 1, 16384), k == len);
    assert_false(http1_head_ready(msg, len - 1, 1, 16384));
    assert_true(http1_head_ready(msg, len, 1, 16384));
}

static void test_head_ready_reports_bare_lf(void **state)
{
    const char *msg = "GET / HTTP/1.1\nHost";
    assert_false(http1_head_ready(msg, 10, 5, 16384));
    assert_true(http1_head_ready(msg, strlen(msg), 10, 16384));
}

static void test_head_ready_on_first_bytes(void **state)
{
    assert_true(http1_head_ready("\x16\x03\x01", 3, 0, 16384));
    struct parsed_req p;
    assert_int_equal(t_parse_req(&p, "\x16\x03\x01"), HTTP1_ERR_BAD_METHOD);
    t_free_req(&p);
}

static void test_head_ready_at_size_limit(void **state)
{
    assert_false(http1_head_ready("GET / HTTP/1.1\r\nHost: a", 23, 20, 24));
    assert_true(http1_head_ready("GET / HTTP/1.1\r\nHost: ab", 24, 23, 24));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_simple_get),
        cmocka_unit_test(test_parses_get_at_every_split),
        cmocka_unit_test(test_parses_post_with_body_at_every_split),
        cmocka_unit_test(test_valid_requests_at_every_split),
        cmocka_unit_test(test_parses_http10_without_host),
        cmocka_unit_test(test_parses_known_methods),
        cmocka_unit_test(test_absolute_form_target_gives_host_and_path),
        cmocka_unit_test(test_absolute_form_rejects_userinfo_other_schemes_and_no_host),
        cmocka_unit_test(test_parses_asterisk_form_for_options),
        cmocka_unit_test(test_parses_authority_form_for_connect),
        cmocka_unit_test(test_skips_leading_empty_lines),
        cmocka_unit_test(test_trims_ows_around_values),
        cmocka_unit_test(test_keeps_empty_header_value),
        cmocka_unit_test(test_accepts_obs_text_in_value),
        cmocka_unit_test(test_parses_pipelined_requests),
        cmocka_unit_test(test_rejects_method_with_invalid_char),
        cmocka_unit_test(test_rejects_empty_method),
        cmocka_unit_test(test_rejects_tab_as_separator),
        cmocka_unit_test(test_rejects_double_space_in_request_line),
        cmocka_unit_test(test_rejects_missing_version),
        cmocka_unit_test(test_rejects_method_only_line),
        cmocka_unit_test(test_rejects_space_in_target),
        cmocka_unit_test(test_rejects_ctl_in_target),
        cmocka_unit_test(test_rejects_del_in_target),
        cmocka_unit_test(test_rejects_non_ascii_in_target),
        cmocka_unit_test(test_rejects_fragment_in_target),
        cmocka_unit_test(test_rejects_relative_target),
        cmocka_unit_test(test_rejects_asterisk_for_get),
        cmocka_unit_test(test_rejects_connect_with_origin_form),
        cmocka_unit_test(test_rejects_http2_version_505),
        cmocka_unit_test(test_rejects_http12_version_505),
        cmocka_unit_test(test_rejects_http09_version_505),
        cmocka_unit_test(test_rejects_lowercase_http_version),
        cmocka_unit_test(test_rejects_truncated_version),
        cmocka_unit_test(test_rejects_trailing_space_after_version),
        cmocka_unit_test(test_rejects_version_with_extra_digit),
        cmocka_unit_test(test_rejects_target_too_long_414),
        cmocka_unit_test(test_accepts_target_at_limit),
        cmocka_unit_test(test_rejects_request_line_filling_head_414),
        cmocka_unit_test(test_rejects_space_before_colon),
        cmocka_unit_test(test_rejects_tab_before_colon),
        cmocka_unit_test(test_rejects_space_inside_name),
        cmocka_unit_test(test_rejects_obs_fold),
        cmocka_unit_test(test_rejects_obs_fold_with_tab),
        cmocka_unit_test(test_rejects_whitespace_before_first_header),
        cmocka_unit_test(test_rejects_bare_cr_in_value),
        cmocka_unit_test(test_rejects_bare_cr_in_request_line),
        cmocka_unit_test(test_rejects_bare_cr_ending_head),
        cmocka_unit_test(test_rejects_bare_cr_in_leading_empty_line),
        cmocka_unit_test(test_rejects_bare_lf_line_end),
        cmocka_unit_test(test_rejects_bare_lf_request_line),
        cmocka_unit_test(test_rejects_bare_lf_blank_line),
        cmocka_unit_test(test_rejects_nul_in_value),
        cmocka_unit_test(test_rejects_nul_in_name),
        cmocka_unit_test(test_rejects_ctl_in_value),
        cmocka_unit_test(test_rejects_del_in_value),
        cmocka_unit_test(test_rejects_empty_header_name),
        cmocka_unit_test(test_rejects_header_without_colon),
        cmocka_unit_test(test_rejects_invalid_char_in_name),
        cmocka_unit_test(test_rejects_too_many_headers_431),
        cmocka_unit_test(test_accepts_max_headers_exactly),
        cmocka_unit_test(test_rejects_head_too_large_431),
        cmocka_unit_test(test_accepts_head_at_size_limit),
        cmocka_unit_test(test_head_ready_finds_blank_line_across_calls),
        cmocka_unit_test(test_head_ready_reports_bare_lf),
        cmocka_unit_test(test_head_ready_on_first_bytes),
        cmocka_unit_test(test_head_ready_at_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

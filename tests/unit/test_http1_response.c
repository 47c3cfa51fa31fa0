/* http1 response head parsing: status line, body framing per request method and
 * status (RFC 9112 §6.3), connection semantics. */
#include "test_http1_util.h"

#define OK_CL "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\n"

static void test_parses_200_with_content_length(void **state)
{
    struct parsed_resp p;
    assert_int_equal(t_parse_resp(&p, OK_CL, HTTP1_METHOD_GET), (int)strlen(OK_CL));
    assert_int_equal(p.resp.minor_version, 1);
    assert_int_equal(p.resp.status, 200);
    assert_span(p.resp.reason, p.resp.reason_len, "OK");
    assert_int_equal(p.resp.num_headers, 2);
    assert_int_equal(p.headers[0].id, HTTP1_H_CONTENT_LENGTH);
    assert_int_equal(p.resp.body, HTTP1_BODY_LENGTH);
    assert_int_equal(p.resp.content_length, 12);
    assert_true(p.resp.keep_alive);
    assert_false(p.resp.is_interim);
    assert_false(p.resp.is_upgrade);
    t_free_resp(&p);
}

static void test_parses_response_at_every_split(void **state)
{
    assert_int_equal(t_resp_every_split(OK_CL, strlen(OK_CL), HTTP1_METHOD_GET),
                     (int)strlen(OK_CL));
    const char *chunked = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n";
    assert_int_equal(t_resp_every_split(chunked, strlen(chunked), HTTP1_METHOD_GET),
                     (int)strlen(chunked) - 3);
}

static void test_valid_responses_at_every_split(void **state)
{
    static const struct { const char *msg; enum http1_method method; } cases[] = {
        { "HTTP/1.0 200 OK\r\n\r\nbody", HTTP1_METHOD_GET },
        { "HTTP/1.1 204\r\n\r\n", HTTP1_METHOD_GET },
        { "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", HTTP1_METHOD_GET },
        { "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", HTTP1_METHOD_POST },
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
          "Connection: Upgrade\r\n\r\n\x81\x05hello", HTTP1_METHOD_GET },
        { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HTTP1_METHOD_HEAD },
        { "HTTP/1.1 200 \r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", HTTP1_METHOD_GET },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *msg = cases[i].msg, *end = strstr(msg, "\r\n\r\n");
        assert_int_equal(t_resp_every_split(msg, strlen(msg), cases[i].method), end + 4 - msg);
    }
}

static void test_parses_reason_with_spaces_and_obs_text(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 500 Internal  Server\tError \xe2\x9c\x97\r\n"
                                 "Content-Length: 0\r\n\r\n", HTTP1_METHOD_GET) > 0);
    assert_span(p.resp.reason, p.resp.reason_len, "Internal  Server\tError \xe2\x9c\x97");
    t_free_resp(&p);
}

static void test_parses_empty_reason_after_space(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 204 \r\n\r\n", HTTP1_METHOD_GET) > 0);
    assert_int_equal(p.resp.status, 204);
    assert_int_equal(p.resp.reason_len, 0);
    t_free_resp(&p);
}

static void test_parses_missing_reason_without_space(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 204\r\n\r\n", HTTP1_METHOD_GET) > 0);
    assert_int_equal(p.resp.status, 204);
    assert_int_equal(p.resp.reason_len, 0);
    t_free_resp(&p);
}

static void test_parses_chunked_response(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                             HTTP1_METHOD_GET) > 0);
    assert_int_equal(p.resp.body, HTTP1_BODY_CHUNKED);
    assert_true(p.resp.keep_alive);
    t_free_resp(&p);
}

static void test_close_delimited_response(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",
                             HTTP1_METHOD_GET) > 0);
    assert_int_equal(p.resp.body, HTTP1_BODY_UNTIL_CLOSE);
    assert_false(p.resp.keep_alive);
    t_free_resp(&p);
}

static void test_http10_response_close_delimited(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.0 200 OK\r\n\r\n", HTTP1_METHOD_GET) > 0);
    assert_int_equal(p.resp.minor_version, 0);
    assert_int_equal(p.resp.body, HTTP1_BODY_UNTIL_CLOSE);
    assert_false(p.resp.keep_alive);
    t_free_resp(&p);
}

static void test_http10_response_keep_alive_with_length(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                                 "Content-Length: 3\r\n\r\n", HTTP1_METHOD_GET) > 0);
    assert_true(p.resp.keep_alive);
    t_free_resp(&p);
    assert_true(t_parse_resp(&p, "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n",
                             HTTP1_METHOD_GET) > 0);
    assert_false(p.resp.keep_alive);
    t_free_resp(&p);
}

static void test_response_connection_close(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 200 OK\r\nConnection: close\r\n"
                                 "Content-Length: 3\r\n\r\n", HTTP1_METHOD_GET) > 0);
    assert_false(p.resp.keep_alive);
    assert_int_equal(p.resp.body, HTTP1_BODY_LENGTH);
    t_free_resp(&p);
}

static void test_head_response_has_no_body(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, OK_CL, HTTP1_METHOD_HEAD) > 0);
    assert_int_equal(p.resp.body, HTTP1_BODY_NONE);
    assert_true(p.resp.has_content_length);
    assert_int_equal(p.resp.content_length, 12);
    assert_true(p.resp.keep_alive);
    t_free_resp(&p);
}

static void test_head_response_with_chunked_has_no_body(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                             HTTP1_METHOD_HEAD) > 0);
    assert_int_equal(p.resp.body, HTTP1_BODY_NONE);
    t_free_resp(&p);
}

static void test_head_response_without_length_keeps_alive(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 200 OK\r\n\r\n", HTTP1_METHOD_HEAD) > 0);
    assert_int_equal(p.resp.body, HTTP1_BODY_NONE);
    assert_true(p.resp.keep_alive);
    t_free_resp(&p);
}

static void test_204_has_no_body(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 204 No Content\r\n\r\n", HTTP1_METHOD_DELETE) > 0);
    assert_int_equal(p.resp.body, HTTP1_BODY_NONE);
    assert_true(p.resp.keep_alive);
    t_free_resp(&p);
}

static void test_304_has_no_body_even_with_length(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
                             HTTP1_METHOD_GET) > 0);
    assert_int_equal(p.resp.body, HTTP1_BODY_NONE);
    assert_int_equal(p.resp.content_length, 99);
    t_free_resp(&p);
}

static void test_100_continue_is_interim(void **state)
{
    struct parsed_resp p;
    const char *msg = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n";
    assert_int_equal(t_parse_resp(&p, msg, HTTP1_METHOD_POST), 25);
    assert_int_equal(p.resp.status, 100);
    assert_true(p.resp.is_interim);
    assert_false(p.resp.is_upgrade);
    assert_int_equal(p.resp.body, HTTP1_BODY_NONE);
    t_free_resp(&p);
}

static void test_103_early_hints_is_interim(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
                             HTTP1_METHOD_GET) > 0);
    assert_true(p.resp.is_interim);
    assert_int_equal(p.resp.body, HTTP1_BODY_NONE);
    t_free_resp(&p);
}

static void test_101_switching_is_upgrade(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\n\r\n", HTTP1_METHOD_GET) > 0);
    assert_true(p.resp.is_upgrade);
    assert_false(p.resp.is_interim);
    assert_int_equal(p.resp.body, HTTP1_BODY_NONE);
    assert_false(p.resp.keep_alive);
    t_free_resp(&p);
}

static void test_connect_2xx_has_no_body(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 200 Connection Established\r\n\r\n",
                             HTTP1_METHOD_CONNECT) > 0);
    assert_int_equal(p.resp.body, HTTP1_BODY_NONE);
    t_free_resp(&p);
}

static void test_connect_error_has_body(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\n",
                             HTTP1_METHOD_CONNECT) > 0);
    assert_int_equal(p.resp.body, HTTP1_BODY_LENGTH);
    t_free_resp(&p);
}

static void test_response_needs_no_host(void **state)
{
    assert_true(t_resp_rc("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
                          HTTP1_METHOD_GET) > 0);
}

static void test_response_rejects_cl_and_te(void **state)
{
    assert_resp_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                      HTTP1_METHOD_GET, HTTP1_ERR_CL_AND_TE);
}

static void test_response_rejects_cl_and_te_even_for_head(void **state)
{
    assert_resp_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                      HTTP1_METHOD_HEAD, HTTP1_ERR_CL_AND_TE);
}

static void test_response_rejects_differing_cl(void **state)
{
    assert_resp_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n",
                      HTTP1_METHOD_GET, HTTP1_ERR_CONTENT_LENGTH_MISMATCH);
}

static void test_response_rejects_te_not_chunked(void **state)
{
    assert_resp_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                      HTTP1_METHOD_GET, HTTP1_ERR_TE_NOT_CHUNKED);
}

static void test_response_rejects_te_gzip_chunked(void **state)
{
    assert_resp_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                      HTTP1_METHOD_GET, HTTP1_ERR_TE_UNSUPPORTED);
}

static void test_response_rejects_te_in_http10(void **state)
{
    assert_resp_error("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                      HTTP1_METHOD_GET, HTTP1_ERR_TE_IN_HTTP10);
}

static void test_response_rejects_two_digit_status(void **state)
{
    assert_resp_error("HTTP/1.1 20 OK\r\n\r\n", HTTP1_METHOD_GET, HTTP1_ERR_BAD_STATUS_LINE);
}

static void test_response_rejects_four_digit_status(void **state)
{
    assert_resp_error("HTTP/1.1 2000 OK\r\n\r\n", HTTP1_METHOD_GET, HTTP1_ERR_BAD_STATUS_LINE);
}

static void test_response_rejects_status_600(void **state)
{
    assert_resp_error("HTTP/1.1 600 Odd\r\n\r\n", HTTP1_METHOD_GET, HTTP1_ERR_BAD_STATUS_LINE);
}

static void test_response_rejects_status_099(void **state)
{
    assert_resp_error("HTTP/1.1 099 Odd\r\n\r\n", HTTP1_METHOD_GET, HTTP1_ERR_BAD_STATUS_LINE);
}

static void test_response_rejects_reason_glued_to_status(void **state)
{
    assert_resp_error("HTTP/1.1 200OK\r\n\r\n", HTTP1_METHOD_GET, HTTP1_ERR_BAD_STATUS_LINE);
}

static void test_response_rejects_double_space_before_status(void **state)
{
    assert_resp_error("HTTP/1.1  200 OK\r\n\r\n", HTTP1_METHOD_GET, HTTP1_ERR_BAD_STATUS_LINE);
}

static void test_response_rejects_ctl_in_reason(void **state)
{
    assert_resp_error("HTTP/1.1 200 O\x01K\r\n\r\n", HTTP1_METHOD_GET, HTTP1_ERR_BAD_STATUS_LINE);
}

static void test_response_rejects_nul_in_reason(void **state)
{
    const char msg[] = "HTTP/1.1 200 O\0K\r\n\r\n";
    assert_int_equal(t_resp_every_split(msg, sizeof(msg) - 1, HTTP1_METHOD_GET), HTTP1_ERR_NUL);
}

static void test_response_rejects_short_version(void **state)
{
    assert_resp_error("HTTP/2 200 OK\r\n\r\n", HTTP1_METHOD_GET, HTTP1_ERR_BAD_VERSION);
}

static void test_response_rejects_http2_version(void **state)
{
    assert_resp_error("HTTP/2.0 200 OK\r\n\r\n", HTTP1_METHOD_GET, HTTP1_ERR_VERSION_UNSUPPORTED);
}

static void test_response_rejects_garbage_start(void **state)
{
    assert_resp_error("<html>\r\n\r\n", HTTP1_METHOD_GET, HTTP1_ERR_BAD_VERSION);
}

static void test_response_rejects_space_before_colon(void **state)
{
    assert_resp_error("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", HTTP1_METHOD_GET,
                      HTTP1_ERR_SPACE_BEFORE_COLON);
}

static void test_response_rejects_obs_fold(void **state)
{
    assert_resp_error("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", HTTP1_METHOD_GET,
                      HTTP1_ERR_OBS_FOLD);
}

static void test_response_rejects_bare_lf(void **state)
{
    assert_resp_error("HTTP/1.1 200 OK\nContent-Length: 0\n\n", HTTP1_METHOD_GET,
                      HTTP1_ERR_BARE_LF);
}

static void test_response_rejects_too_many_headers(void **state)
{
    struct http1_limits lim = t_limits();
    lim.max_headers = 2;
    const char *msg = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    struct parsed_resp p;
    assert_int_equal(t_parse_resp_lim(&p, msg, strlen(msg), &lim, HTTP1_METHOD_GET),
                     HTTP1_ERR_TOO_MANY_HEADERS);
    t_free_resp(&p);
}

static void test_response_rejects_head_too_large(void **state)
{
    struct http1_limits lim = t_limits();
    lim.max_header_bytes = 20;
    struct parsed_resp p;
    assert_int_equal(t_parse_resp_lim(&p, OK_CL, strlen(OK_CL), &lim, HTTP1_METHOD_GET),
                     HTTP1_ERR_HEAD_TOO_LARGE);
    t_free_resp(&p);
}

static void test_response_marks_hop_by_hop(void **state)
{
    struct parsed_resp p;
    assert_true(t_parse_resp(&p, "HTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\n"
                                 "Keep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
                             HTTP1_METHOD_GET) > 0);
    assert_true(p.headers[0].flags & HTTP1_HF_HOP_BY_HOP);
    assert_true(p.headers[1].flags & HTTP1_HF_CONNECTION_NAMED);
    assert_true(p.headers[2].flags & HTTP1_HF_HOP_BY_HOP);
    assert_int_equal(p.headers[3].flags, HTTP1_HF_FRAMING);
    t_free_resp(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_200_with_content_length),
        cmocka_unit_test(test_parses_response_at_every_split),
        cmocka_unit_test(test_valid_responses_at_every_split),
        cmocka_unit_test(test_parses_reason_with_spaces_and_obs_text),
        cmocka_unit_test(test_parses_empty_reason_after_space),
        cmocka_unit_test(test_parses_missing_reason_without_space),
        cmocka_unit_test(test_parses_chunked_response),
        cmocka_unit_test(test_close_delimited_response),
        cmocka_unit_test(test_http10_response_close_delimited),
        cmocka_unit_test(test_http10_response_keep_alive_with_length),
        cmocka_unit_test(test_response_connection_close),
        cmocka_unit_test(test_head_response_has_no_body),
        cmocka_unit_test(test_head_response_with_chunked_has_no_body),
        cmocka_unit_test(test_head_response_without_length_keeps_alive),
        cmocka_unit_test(test_204_has_no_body),
        cmocka_unit_test(test_304_has_no_body_even_with_length),
        cmocka_unit_test(test_100_continue_is_interim),
        cmocka_unit_test(test_103_early_hints_is_interim),
        cmocka_unit_test(test_101_switching_is_upgrade),
        cmocka_unit_test(test_connect_2xx_has_no_body),
        cmocka_unit_test(test_connect_error_has_body),
        cmocka_unit_test(test_response_needs_no_host),
        cmocka_unit_test(test_response_rejects_cl_and_te),
        cmocka_unit_test(test_response_rejects_cl_and_te_even_for_head),
        cmocka_unit_test(test_response_rejects_differing_cl),
        cmocka_unit_test(test_response_rejects_te_not_chunked),
        cmocka_unit_test(test_response_rejects_te_gzip_chunked),
        cmocka_unit_test(test_response_rejects_te_in_http10),
        cmocka_unit_test(test_response_rejects_two_digit_status),
        cmocka_unit_test(test_response_rejects_four_digit_status),
        cmocka_unit_test(test_response_rejects_status_600),
        cmocka_unit_test(test_response_rejects_status_099),
        cmocka_unit_test(test_response_rejects_reason_glued_to_status),
        cmocka_unit_test(test_response_rejects_double_space_before_status),
        cmocka_unit_test(test_response_rejects_ctl_in_reason),
        cmocka_unit_test(test_response_rejects_nul_in_reason),
        cmocka_unit_test(test_response_rejects_short_version),
        cmocka_unit_test(test_response_rejects_http2_version),
        cmocka_unit_test(test_response_rejects_garbage_start),
        cmocka_unit_test(test_response_rejects_space_before_colon),
        cmocka_unit_test(test_response_rejects_obs_fold),
        cmocka_unit_test(test_response_rejects_bare_lf),
        cmocka_unit_test(test_response_rejects_too_many_headers),
        cmocka_unit_test(test_response_rejects_head_too_large),
        cmocka_unit_test(test_response_marks_hop_by_hop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

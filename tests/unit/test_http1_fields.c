/* http1 field semantics (fields.c): Content-Length, Transfer-Encoding, Host,
 * Connection, Upgrade, Expect, and the header flags the proxy rewrites with. */
#include "test_http1_util.h"

#define REQ11(fields) "POST / HTTP/1.1\r\nHost: a\r\n" fields "\r\n"
#define REQ10(fields) "POST / HTTP/1.0\r\n" fields "\r\n"

static void test_content_length_sets_length_body(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ11("Content-Length: 42\r\n")) > 0);
    assert_int_equal(p.req.body, HTTP1_BODY_LENGTH);
    assert_true(p.req.has_content_length);
    assert_int_equal(p.req.content_length, 42);
    t_free_req(&p);
}

static void test_content_length_zero(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ11("Content-Length: 0\r\n")) > 0);
    assert_int_equal(p.req.body, HTTP1_BODY_LENGTH);
    assert_int_equal(p.req.content_length, 0);
    t_free_req(&p);
}

static void test_rejects_cl_and_te(void **state)
{
    assert_req_error(REQ11("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
                     HTTP1_ERR_CL_AND_TE);
}

static void test_rejects_te_and_cl_in_either_order(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
                     HTTP1_ERR_CL_AND_TE);
}

static void test_rejects_cl_and_te_with_unsupported_coding(void **state)
{
    /* Smuggling outranks the unsupported coding: 400, not 501. */
    assert_req_error(REQ11("Transfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n"),
                     HTTP1_ERR_CL_AND_TE);
}

static void test_merges_duplicate_identical_cl(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ11("Content-Length: 7\r\nContent-Length: 7\r\n")) > 0);
    assert_int_equal(p.req.content_length, 7);
    t_free_req(&p);
}

static void test_rejects_differing_duplicate_cl(void **state)
{
    assert_req_error(REQ11("Content-Length: 7\r\nContent-Length: 8\r\n"),
                     HTTP1_ERR_CONTENT_LENGTH_MISMATCH);
}

static void test_merges_cl_comma_list(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ11("Content-Length: 5, 5\r\n")) > 0);
    assert_int_equal(p.req.body, HTTP1_BODY_LENGTH);
    assert_int_equal(p.req.content_length, 5);
    t_free_req(&p);
}

static void test_rejects_cl_comma_list_differing(void **state)
{
    assert_req_error(REQ11("Content-Length: 5, 6\r\n"), HTTP1_ERR_CONTENT_LENGTH_MISMATCH);
}

static void test_rejects_cl_empty_list_element(void **state)
{
    assert_req_error(REQ11("Content-Length: 5,\r\n"), HTTP1_ERR_BAD_CONTENT_LENGTH);
}

static void test_rejects_cl_non_digit(void **state)
{
    assert_req_error(REQ11("Content-Length: 5a\r\n"), HTTP1_ERR_BAD_CONTENT_LENGTH);
}

static void test_rejects_cl_plus_sign(void **state)
{
    assert_req_error(REQ11("Content-Length: +5\r\n"), HTTP1_ERR_BAD_CONTENT_LENGTH);
}

static void test_rejects_cl_negative(void **state)
{
    assert_req_error(REQ11("Content-Length: -1\r\n"), HTTP1_ERR_BAD_CONTENT_LENGTH);
}

static void test_rejects_cl_hex(void **state)
{
    assert_req_error(REQ11("Content-Length: 0x10\r\n"), HTTP1_ERR_BAD_CONTENT_LENGTH);
}

static void test_rejects_cl_empty(void **state)
{
    assert_req_error(REQ11("Content-Length: \r\n"), HTTP1_ERR_BAD_CONTENT_LENGTH);
}

static void test_rejects_cl_space_inside(void **state)
{
    assert_req_error(REQ11("Content-Length: 1 2\r\n"), HTTP1_ERR_BAD_CONTENT_LENGTH);
}

static void test_rejects_cl_overflow(void **state)
{
    assert_req_error(REQ11("Content-Length: 99999999999999999999999\r\n"),
                     HTTP1_ERR_BAD_CONTENT_LENGTH);
}

static void test_rejects_cl_2_pow_63(void **state)
{
    assert_req_error(REQ11("Content-Length: 9223372036854775808\r\n"),
                     HTTP1_ERR_BAD_CONTENT_LENGTH);
}

static void test_accepts_cl_2_pow_63_minus_1(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ11("Content-Length: 9223372036854775807\r\n")) > 0);
    assert_int_equal(p.req.content_length, INT64_MAX);
    t_free_req(&p);
}

static void test_merges_cl_equal_numerically(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ11("Content-Length: 005\r\nContent-Length: 5\r\n")) > 0);
    assert_int_equal(p.req.content_length, 5);
    t_free_req(&p);
}

static void test_rejects_body_over_limit_413(void **state)
{
    struct http1_limits lim = t_limits();
    lim.max_body_bytes = 100;
    const char *ok = REQ11("Content-Length: 100\r\n"), *big = REQ11("Content-Length: 101\r\n");
    struct parsed_req p;
    assert_true(t_parse_req_lim(&p, ok, strlen(ok), &lim) > 0);
    t_free_req(&p);
    assert_int_equal(t_parse_req_lim(&p, big, strlen(big), &lim), HTTP1_ERR_BODY_TOO_LARGE);
    assert_int_equal(http1_error_status(p.rc), 413);
    t_free_req(&p);
}

static void test_te_chunked_sets_chunked_body(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ11("Transfer-Encoding: chunked\r\n")) > 0);
    assert_int_equal(p.req.body, HTTP1_BODY_CHUNKED);
    assert_false(p.req.has_content_length);
    t_free_req(&p);
}

static void test_te_chunked_is_case_insensitive(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ11("transfer-encoding:  ChUnKeD \r\n")) > 0);
    assert_int_equal(p.req.body, HTTP1_BODY_CHUNKED);
    t_free_req(&p);
}

static void test_rejects_te_gzip_chunked_501(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: gzip, chunked\r\n"), HTTP1_ERR_TE_UNSUPPORTED);
    assert_int_equal(http1_error_status(HTTP1_ERR_TE_UNSUPPORTED), 501);
}

static void test_rejects_te_chunked_gzip(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: chunked, gzip\r\n"), HTTP1_ERR_TE_NOT_CHUNKED);
}

static void test_rejects_te_chunked_chunked(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: chunked, chunked\r\n"), HTTP1_ERR_TE_BAD);
}

static void test_rejects_te_chunkedx(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: chunkedx\r\n"), HTTP1_ERR_TE_NOT_CHUNKED);
}

static void test_rejects_te_gzip_alone(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: gzip\r\n"), HTTP1_ERR_TE_NOT_CHUNKED);
}

static void test_rejects_te_fields_chunked_then_gzip(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"),
                     HTTP1_ERR_TE_NOT_CHUNKED);
}

static void test_rejects_te_fields_gzip_then_chunked_501(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
                     HTTP1_ERR_TE_UNSUPPORTED);
}

static void test_rejects_te_fields_chunked_twice(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
                     HTTP1_ERR_TE_BAD);
}

static void test_rejects_te_empty_value(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: \r\n"), HTTP1_ERR_TE_BAD);
}

static void test_rejects_te_empty_list_element(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: chunked,\r\n"), HTTP1_ERR_TE_BAD);
}

static void test_rejects_te_chunked_with_parameter(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: chunked;q=1\r\n"), HTTP1_ERR_TE_BAD);
}

static void test_rejects_te_with_space_inside_coding(void **state)
{
    assert_req_error(REQ11("Transfer-Encoding: chun ked\r\n"), HTTP1_ERR_TE_BAD);
}

static void test_rejects_te_in_http10(void **state)
{
    assert_req_error(REQ10("Transfer-Encoding: chunked\r\n"), HTTP1_ERR_TE_IN_HTTP10);
}

static void test_rejects_missing_host_http11(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", HTTP1_ERR_MISSING_HOST);
}

static void test_rejects_multiple_host(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HTTP1_ERR_MULTIPLE_HOST);
}

static void test_rejects_multiple_identical_host(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", HTTP1_ERR_MULTIPLE_HOST);
}

static void test_rejects_multiple_host_http10(void **state)
{
    assert_req_error("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", HTTP1_ERR_MULTIPLE_HOST);
}

static void test_rejects_host_with_space(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HTTP1_ERR_BAD_HOST);
}

static void test_rejects_host_with_slash(void **state)
{
    assert_req_error("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", HTTP1_ERR_BAD_HOST);
}

static void test_accepts_host_ipv6_with_port(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n") > 0);
    assert_span(p.req.host, p.req.host_len, "[::1]:8443");
    t_free_req(&p);
}

static void test_accepts_empty_host(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET / HTTP/1.1\r\nHost:\r\n\r\n") > 0);
    assert_true(p.req.has_host);
    assert_int_equal(p.req.host_len, 0);
    t_free_req(&p);
}

static bool keep_alive_of(const char *msg)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, msg) > 0);
    bool ka = p.req.keep_alive;
    t_free_req(&p);
    return ka;
}

static void test_keep_alive_default_http11(void **state)
{
    assert_true(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
}

static void test_connection_close_http11(void **state)
{
    assert_false(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
}

static void test_http10_closes_by_default(void **state)
{
    assert_false(keep_alive_of("GET / HTTP/1.0\r\n\r\n"));
}

static void test_http10_keep_alive(void **state)
{
    assert_true(keep_alive_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
}

static void test_connection_close_wins_over_keep_alive(void **state)
{
    assert_false(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n"
                               "Connection: close\r\n\r\n"));
}

static void test_connection_tokens_in_list(void **state)
{
    assert_false(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a, CLOSE ,\r\n\r\n"));
}

static void test_marks_hop_by_hop_headers(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n"
                                "Keep-Alive: 5\r\nProxy-Connection: x\r\nTE: trailers\r\n"
                                "Trailer: X\r\nUpgrade: h2c\r\nAccept: */*\r\n\r\n") > 0);
    static const uint8_t ids[] = { HTTP1_H_HOST, HTTP1_H_CONNECTION, HTTP1_H_KEEP_ALIVE,
                                   HTTP1_H_PROXY_CONNECTION, HTTP1_H_TE, HTTP1_H_TRAILER,
                                   HTTP1_H_UPGRADE, HTTP1_H_OTHER };
    assert_int_equal(p.req.num_headers, 8);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(p.headers[i].id, ids[i]);
        bool hop = i > 0 && i < 7;
        assert_int_equal(!!(p.headers[i].flags & HTTP1_HF_HOP_BY_HOP), hop);
        /* "Connection: keep-alive" also names the Keep-Alive field. */
        assert_int_equal(!!(p.headers[i].flags & HTTP1_HF_CONNECTION_NAMED), i == 2);
    }
    t_free_req(&p);
}

static void test_marks_connection_named_headers(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET / HTTP/1.1\r\nHost: a\r\nX-Secret: 1\r\n"
                                "Connection: x-secret, close\r\nX-Other: 2\r\n\r\n") > 0);
    assert_int_equal(p.headers[1].flags, HTTP1_HF_HOP_BY_HOP | HTTP1_HF_CONNECTION_NAMED);
    assert_int_equal(p.headers[3].flags, 0);
    t_free_req(&p);
}

static void test_connection_cannot_strip_host_or_content_length(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                                "Connection: host, content-length\r\n\r\n") > 0);
    assert_false(p.headers[0].flags & HTTP1_HF_HOP_BY_HOP);
    assert_false(p.headers[1].flags & HTTP1_HF_HOP_BY_HOP);
    t_free_req(&p);
}

static void test_identifies_forwarding_headers(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET / HTTP/1.1\r\nHost: a\r\nx-forwarded-for: 1.2.3.4\r\n"
                                "X-Forwarded-Proto: http\r\nX-FORWARDED-HOST: b\r\n"
                                "X-Client-Cert-Subject: CN=evil\r\n\r\n") > 0);
    assert_int_equal(p.headers[1].id, HTTP1_H_X_FORWARDED_FOR);
    assert_int_equal(p.headers[2].id, HTTP1_H_X_FORWARDED_PROTO);
    assert_int_equal(p.headers[3].id, HTTP1_H_X_FORWARDED_HOST);
    assert_int_equal(p.headers[4].id, HTTP1_H_X_CLIENT_CERT_SUBJECT);
    t_free_req(&p);
}

static void test_flags_framing_headers(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ11("Content-Length: 5, 5\r\n")) > 0);
    assert_int_equal(p.headers[1].flags, HTTP1_HF_FRAMING);
    t_free_req(&p);
    assert_true(t_parse_req(&p, REQ11("Transfer-Encoding: chunked\r\n")) > 0);
    assert_int_equal(p.headers[1].flags, HTTP1_HF_FRAMING | HTTP1_HF_HOP_BY_HOP);
    t_free_req(&p);
}

static void test_upgrade_websocket(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n") > 0);
    assert_true(p.req.is_upgrade);
    assert_span(p.req.upgrade, p.req.upgrade_len, "websocket");
    assert_true(p.req.keep_alive);
    t_free_req(&p);
}

static void test_upgrade_needs_connection_token(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n") > 0);
    assert_false(p.req.is_upgrade);
    assert_null(p.req.upgrade);
    t_free_req(&p);
}

static void test_upgrade_ignored_in_http10(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, "GET / HTTP/1.0\r\nUpgrade: websocket\r\n"
                                "Connection: upgrade\r\n\r\n") > 0);
    assert_false(p.req.is_upgrade);
    t_free_req(&p);
}

static void test_expect_100_continue(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ11("Content-Length: 10\r\nExpect: 100-Continue\r\n")) > 0);
    assert_true(p.req.expect_continue);
    assert_int_equal(p.headers[2].id, HTTP1_H_EXPECT);
    t_free_req(&p);
}

static void test_expect_ignored_in_http10(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ10("Content-Length: 10\r\nExpect: 100-continue\r\n")) > 0);
    assert_false(p.req.expect_continue);
    t_free_req(&p);
}

static void test_expect_other_value_is_not_continue(void **state)
{
    struct parsed_req p;
    assert_true(t_parse_req(&p, REQ11("Expect: 100-continuex\r\n")) > 0);
    assert_false(p.req.expect_continue);
    t_free_req(&p);
}

static void test_list_next_iterates_elements(void **state)
{
    const char *v = " a , b\t,c ";
    const char *pos = v, *elem;
    size_t len;
    assert_true(http1_list_next(&pos, v + strlen(v), &elem, &len));
    assert_span(elem, len, "a");
    assert_true(http1_list_next(&pos, v + strlen(v), &elem, &len));
    assert_span(elem, len, "b");
    assert_true(http1_list_next(&pos, v + strlen(v), &elem, &len));
    assert_span(elem, len, "c");
    assert_false(http1_list_next(&pos, v + strlen(v), &elem, &len));
    assert_false(http1_list_next(&pos, v + strlen(v), &elem, &len));
}

static void test_list_next_skips_empty_elements(void **state)
{
    const char *v = ",, x,,";
    const char *pos = v, *elem;
    size_t len;
    assert_true(http1_list_next(&pos, v + strlen(v), &elem, &len));
    assert_span(elem, len, "x");
    assert_false(http1_list_next(&pos, v + strlen(v), &elem, &len));
    pos = v;
    assert_false(http1_list_next(&pos, v, &elem, &len));
}

static void test_token_eq_is_case_insensitive_and_exact(void **state)
{
    assert_true(http1_token_eq("Keep-ALIVE", 10, "keep-alive"));
    assert_false(http1_token_eq("keep-aliv", 9, "keep-alive"));
    assert_false(http1_token_eq("keep-alives", 11, "keep-alive"));
    assert_true(http1_token_eq("", 0, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_sets_length_body),
        cmocka_unit_test(test_content_length_zero),
        cmocka_unit_test(test_rejects_cl_and_te),
        cmocka_unit_test(test_rejects_te_and_cl_in_either_order),
        cmocka_unit_test(test_rejects_cl_and_te_with_unsupported_coding),
        cmocka_unit_test(test_merges_duplicate_identical_cl),
        cmocka_unit_test(test_rejects_differing_duplicate_cl),
        cmocka_unit_test(test_merges_cl_comma_list),
        cmocka_unit_test(test_rejects_cl_comma_list_differing),
        cmocka_unit_test(test_rejects_cl_empty_list_element),
        cmocka_unit_test(test_rejects_cl_non_digit),
        cmocka_unit_test(test_rejects_cl_plus_sign),
        cmocka_unit_test(test_rejects_cl_negative),
        cmocka_unit_test(test_rejects_cl_hex),
        cmocka_unit_test(test_rejects_cl_empty),
        cmocka_unit_test(test_rejects_cl_space_inside),
        cmocka_unit_test(test_rejects_cl_overflow),
        cmocka_unit_test(test_rejects_cl_2_pow_63),
        cmocka_unit_test(test_accepts_cl_2_pow_63_minus_1),
        cmocka_unit_test(test_merges_cl_equal_numerically),
        cmocka_unit_test(test_rejects_body_over_limit_413),
        cmocka_unit_test(test_te_chunked_sets_chunked_body),
        cmocka_unit_test(test_te_chunked_is_case_insensitive),
        cmocka_unit_test(test_rejects_te_gzip_chunked_501),
        cmocka_unit_test(test_rejects_te_chunked_gzip),
        cmocka_unit_test(test_rejects_te_chunked_chunked),
        cmocka_unit_test(test_rejects_te_chunkedx),
        cmocka_unit_test(test_rejects_te_gzip_alone),
        cmocka_unit_test(test_rejects_te_fields_chunked_then_gzip),
        cmocka_unit_test(test_rejects_te_fields_gzip_then_chunked_501),
        cmocka_unit_test(test_rejects_te_fields_chunked_twice),
        cmocka_unit_test(test_rejects_te_empty_value),
        cmocka_unit_test(test_rejects_te_empty_list_element),
        cmocka_unit_test(test_rejects_te_chunked_with_parameter),
        cmocka_unit_test(test_rejects_te_with_space_inside_coding),
        cmocka_unit_test(test_rejects_te_in_http10),
        cmocka_unit_test(test_rejects_missing_host_http11),
        cmocka_unit_test(test_rejects_multiple_host),
        cmocka_unit_test(test_rejects_multiple_identical_host),
        cmocka_unit_test(test_rejects_multiple_host_http10),
        cmocka_unit_test(test_rejects_host_with_space),
        cmocka_unit_test(test_rejects_host_with_slash),
        cmocka_unit_test(test_accepts_host_ipv6_with_port),
        cmocka_unit_test(test_accepts_empty_host),
        cmocka_unit_test(test_keep_alive_default_http11),
        cmocka_unit_test(test_connection_close_http11),
        cmocka_unit_test(test_http10_closes_by_default),
        cmocka_unit_test(test_http10_keep_alive),
        cmocka_unit_test(test_connection_close_wins_over_keep_alive),
        cmocka_unit_test(test_connection_tokens_in_list),
        cmocka_unit_test(test_marks_hop_by_hop_headers),
        cmocka_unit_test(test_marks_connection_named_headers),
        cmocka_unit_test(test_connection_cannot_strip_host_or_content_length),
        cmocka_unit_test(test_identifies_forwarding_headers),
        cmocka_unit_test(test_flags_framing_headers),
        cmocka_unit_test(test_upgrade_websocket),
        cmocka_unit_test(test_upgrade_needs_connection_token),
        cmocka_unit_test(test_upgrade_ignored_in_http10),
        cmocka_unit_test(test_expect_100_continue),
        cmocka_unit_test(test_expect_ignored_in_http10),
        cmocka_unit_test(test_expect_other_value_is_not_continue),
        cmocka_unit_test(test_list_next_iterates_elements),
        cmocka_unit_test(test_list_next_skips_empty_elements),
        cmocka_unit_test(test_token_eq_is_case_insensitive_and_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

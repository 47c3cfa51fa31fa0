/* HTTP/1.1 responses and trailer sections to HTTP/2 header lists
 * (proxy/http2/translate_response.c). Lists are compared as "name: value\n" lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http2/translate.h"

#define MAX_FIELDS 32

struct storage {
    nghttp2_nv nva[MAX_FIELDS];
    char names[1024];
    struct http1_header headers[MAX_FIELDS];
    struct http1_response resp;
    struct h2_response_fields out;
    char text[2048];
};

static struct storage *storage_new(void)
{
    struct storage *s = calloc(1, sizeof(*s));
    s->out = (struct h2_response_fields){ .nva = s->nva, .cap = MAX_FIELDS, .names = s->names,
                                          .names_cap = sizeof(s->names) };
    s->resp.headers = s->headers;
    return s;
}

/* The list as text, for one comparison per test. */
static const char *list_text(struct storage *s)
{
    size_t len = 0;
    for (size_t i = 0; i < s->out.count; i++) {
        const nghttp2_nv *nv = &s->out.nva[i];
        len += (size_t)snprintf(s->text + len, sizeof(s->text) - len, "%.*s: %.*s\n",
                                (int)nv->namelen, (const char *)nv->name,
                                (int)nv->valuelen, (const char *)nv->value);
    }
    s->text[len] = '\0';
    return s->text;
}

static int parse(struct storage *s, const char *head, enum http1_method method)
{
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    lim.max_headers = MAX_FIELDS;
    int rc = http1_parse_response(head, strlen(head), &lim, method, &s->resp);
    assert_true(rc > 0);
    return rc;
}

static void assert_response(const char *head, enum http1_method method, const char *want)
{
    struct storage *s = storage_new();
    parse(s, head, method);
    assert_int_equal(h2_translate_response(&s->resp, &s->out), 0);
    assert_string_equal(list_text(s), want);
    free(s);
}

static void test_status_comes_first_and_names_are_lower_cased(void **state)
{
    assert_response("HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nX-Request-ID: 7\r\n"
                    "Content-Length: 0\r\n\r\n",
                    HTTP1_METHOD_GET,
                    ":status: 404\ncontent-type: text/html\nx-request-id: 7\ncontent-length: 0\n");
}

static void test_values_are_borrowed_from_the_head(void **state)
{
    struct storage *s = storage_new();
    const char *head = "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 1\r\n\r\n";
    parse(s, head, HTTP1_METHOD_GET);
    assert_int_equal(h2_translate_response(&s->resp, &s->out), 0);
    assert_ptr_equal(s->out.nva[0].value, s->out.status);
    assert_ptr_equal(s->out.nva[1].name, s->names);
    assert_ptr_equal(s->out.nva[1].value, head + strlen("HTTP/1.1 200 OK\r\nServer: "));
    assert_ptr_equal(s->out.nva[2].value, s->out.length);
    assert_int_equal(s->out.nva[1].flags, NGHTTP2_NV_FLAG_NONE);
    free(s);
}

static void test_repeated_fields_keep_their_order(void **state)
{
    assert_response("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nVary: Accept\r\nSet-Cookie: b=2\r\n"
                    "Content-Length: 0\r\n\r\n",
                    HTTP1_METHOD_GET,
                    ":status: 200\nset-cookie: a=1\nvary: Accept\nset-cookie: b=2\ncontent-length: 0\n");
}

static void test_hop_by_hop_fields_are_removed(void **state)
{
    assert_response("HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
                    "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
                    "Trailer: X-Sum\r\nUpgrade: h2c\r\nA: 1\r\nContent-Length: 2\r\n\r\n",
                    HTTP1_METHOD_GET, ":status: 200\na: 1\ncontent-length: 2\n");
}

/* RFC 8441 §5: the client of an extended CONNECT takes a 200; the accept answers the
 * key ferry sent, and the upgrade fields are HTTP/1.1's. */
static void test_tunnel_response_is_200_without_the_upgrade_fields(void **state)
{
    struct storage *s = storage_new();
    parse(s, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
             "Sec-WebSocket-Protocol: chat\r\nX-Backend: a\r\n\r\n", HTTP1_METHOD_GET);
    assert_int_equal(h2_translate_tunnel_response(&s->resp, &s->out), 0);
    assert_string_equal(list_text(s), ":status: 200\nsec-websocket-protocol: chat\nx-backend: a\n");
    free(s);
}

static void test_chunked_response_has_no_length(void **state)
{
    assert_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nA: 1\r\n\r\n",
                    HTTP1_METHOD_GET, ":status: 200\na: 1\n");
}

static void test_close_delimited_response_has_no_length(void **state)
{
    assert_response("HTTP/1.0 200 OK\r\nA: 1\r\n\r\n", HTTP1_METHOD_GET, ":status: 200\na: 1\n");
}

static void test_content_length_is_written_once_from_the_parse(void **state)
{
    assert_response("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n",
                    HTTP1_METHOD_GET, ":status: 200\ncontent-length: 5\n");
}

static void test_head_response_keeps_its_content_length(void **state)
{
    assert_response("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", HTTP1_METHOD_HEAD,
                    ":status: 200\ncontent-length: 1234\n");
}

static void test_304_keeps_its_content_length(void **state)
{
    assert_response("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n",
                    HTTP1_METHOD_GET, ":status: 304\netag: \"x\"\ncontent-length: 99\n");
}

static void test_204_has_no_content_length(void **state)
{
    assert_response("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", HTTP1_METHOD_GET,
                    ":status: 204\n");
}

static void test_1xx_has_no_content_length(void **state)
{
    assert_response("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nContent-Length: 0\r\n\r\n",
                    HTTP1_METHOD_GET, ":status: 103\nlink: </a.css>; rel=preload\n");
}

static void test_101_loses_upgrade_and_connection(void **state)
{
    assert_response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                    HTTP1_METHOD_GET, ":status: 101\n");
}

static void test_response_needs_room_for_every_field_and_two_more(void **state)
{
    struct storage *s = storage_new();
    parse(s, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", HTTP1_METHOD_GET);
    s->out.cap = 3;
    assert_int_equal(h2_translate_response(&s->resp, &s->out), -1);
    s->out.cap = 4;
    assert_int_equal(h2_translate_response(&s->resp, &s->out), 0);
    free(s);
}

static void test_response_needs_room_for_the_names(void **state)
{
    struct storage *s = storage_new();
    parse(s, "HTTP/1.1 200 OK\r\nAbc: 1\r\nDe: 2\r\n\r\n", HTTP1_METHOD_GET);
    s->out.names_cap = 4;
    assert_int_equal(h2_translate_response(&s->resp, &s->out), -1);
    s->out.names_cap = 5;
    assert_int_equal(h2_translate_response(&s->resp, &s->out), 0);
    assert_string_equal(list_text(s), ":status: 200\nabc: 1\nde: 2\n");
    free(s);
}

static void test_translating_again_starts_a_new_list(void **state)
{
    struct storage *s = storage_new();
    parse(s, "HTTP/1.1 100 Continue\r\nA: 1\r\n\r\n", HTTP1_METHOD_GET);
    assert_int_equal(h2_translate_response(&s->resp, &s->out), 0);
    parse(s, "HTTP/1.1 200 OK\r\nB: 2\r\nContent-Length: 0\r\n\r\n", HTTP1_METHOD_GET);
    assert_int_equal(h2_translate_response(&s->resp, &s->out), 0);
    assert_string_equal(list_text(s), ":status: 200\nb: 2\ncontent-length: 0\n");
    free(s);
}

/* ---- chunked trailer sections ---- */

static int section(struct storage *s, const char *text)
{
    return h2_translate_trailer_section(text, strlen(text), &s->out);
}

static void test_trailer_section_becomes_lower_cased_fields(void **state)
{
    struct storage *s = storage_new();
    const char *text = "Grpc-Status: 0\r\nX-Checksum: abc\r\n\r\n";
    assert_int_equal(section(s, text), 0);
    assert_string_equal(list_text(s), "grpc-status: 0\nx-checksum: abc\n");
    assert_ptr_equal(s->out.nva[1].value, text + strlen("Grpc-Status: 0\r\nX-Checksum: "));
    free(s);
}

static void test_trailer_values_have_ows_trimmed(void **state)
{
    struct storage *s = storage_new();
    assert_int_equal(section(s, "A:\t x y \t\r\nB:\r\nC:   \r\n\r\n"), 0);
    assert_string_equal(list_text(s), "a: x y\nb: \nc: \n");
    free(s);
}

static void test_trailer_section_drops_hop_by_hop_fields(void **state)
{
    struct storage *s = storage_new();
    assert_int_equal(section(s, "Connection: close\r\nKeep-Alive: 1\r\nProxy-Connection: x\r\n"
                                "TE: trailers\r\nTrailer: A\r\nUpgrade: h2c\r\n"
                                "Transfer-Encoding: chunked\r\nContent-Length: 1\r\nA: 1\r\n\r\n"),
                     0);
    assert_string_equal(list_text(s), "a: 1\n");
    free(s);
}

static void test_empty_trailer_section_has_no_fields(void **state)
{
    struct storage *s = storage_new();
    s->out.count = 7;
    assert_int_equal(section(s, "\r\n"), 0);
    assert_int_equal(s->out.count, 0);
    free(s);
}

static void test_trailer_section_needs_room(void **state)
{
    struct storage *s = storage_new();
    s->out.cap = 1;
    assert_int_equal(section(s, "A: 1\r\nB: 2\r\n\r\n"), -1);
    s->out.cap = 2;
    s->out.names_cap = 1;
    assert_int_equal(section(s, "A: 1\r\nB: 2\r\n\r\n"), -1);
    s->out.names_cap = 2;
    assert_int_equal(section(s, "A: 1\r\nB: 2\r\n\r\n"), 0);
    free(s);
}

static void test_trailer_section_of_another_shape_is_refused(void **state)
{
    static const char *const bad[] = {
        "", "A: 1\r\n", "A: 1\r\n\r\nB: 2\r\n\r\n", "A: 1\n\r\n", "A 1\r\n\r\n", ": 1\r\n\r\n",
        "A: 1\r\n\n", "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct storage *s = storage_new();
        if (section(s, bad[i]) != -1)
            fail_msg("accepted section #%zu", i);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_comes_first_and_names_are_lower_cased),
        cmocka_unit_test(test_values_are_borrowed_from_the_head),
        cmocka_unit_test(test_repeated_fields_keep_their_order),
        cmocka_unit_test(test_hop_by_hop_fields_are_removed),
        cmocka_unit_test(test_chunked_response_has_no_length),
        cmocka_unit_test(test_close_delimited_response_has_no_length),
        cmocka_unit_test(test_content_length_is_written_once_from_the_parse),
        cmocka_unit_test(test_head_response_keeps_its_content_length),
        cmocka_unit_test(test_304_keeps_its_content_length),
        cmocka_unit_test(test_204_has_no_content_length),
        cmocka_unit_test(test_tunnel_response_is_200_without_the_upgrade_fields),
        cmocka_unit_test(test_1xx_has_no_content_length),
        cmocka_unit_test(test_101_loses_upgrade_and_connection),
        cmocka_unit_test(test_response_needs_room_for_every_field_and_two_more),
        cmocka_unit_test(test_response_needs_room_for_the_names),
        cmocka_unit_test(test_translating_again_starts_a_new_list),
        cmocka_unit_test(test_trailer_section_becomes_lower_cased_fields),
        cmocka_unit_test(test_trailer_values_have_ows_trimmed),
        cmocka_unit_test(test_trailer_section_drops_hop_by_hop_fields),
        cmocka_unit_test(test_empty_trailer_section_has_no_fields),
        cmocka_unit_test(test_trailer_section_needs_room),
        cmocka_unit_test(test_trailer_section_of_another_shape_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

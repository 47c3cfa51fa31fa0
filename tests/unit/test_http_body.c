/* Body streaming (proxy/http/body.c): every split of the input gives the same output,
 * chunked bodies relayed verbatim or de-chunked, the next message left in place. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "http/internal.h"

static const char chunked[] = "5;x=y\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nT: v\r\n\r\n";
static const char next[] = "GET / HTTP/1.1\r\n";

/* Feeds input split at `at` as two separate arrivals, each its own chain (references
 * never merge), and checks what comes out and what stays. */
static void run_split(enum http1_body_kind kind, uint64_t length, bool dechunk,
                      const char *input, size_t len, size_t at, const char *want_out,
                      size_t want_left)
{
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    struct http_body b;
    http_body_init(&b, kind, length, &lim, dechunk);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    uint64_t moved, total = 0;
    evbuffer_add_reference(in, input, at, NULL, NULL);
    assert_int_equal(http_body_move(&b, in, out, &moved), 0);
    total += moved;
    evbuffer_add_reference(in, input + at, len - at, NULL, NULL);
    assert_int_equal(http_body_move(&b, in, out, &moved), 0);
    total += moved;
    assert_true(b.done);
    assert_int_equal(total, strlen(want_out));
    assert_int_equal(evbuffer_get_length(out), strlen(want_out));
    assert_memory_equal(evbuffer_pullup(out, -1), want_out, strlen(want_out));
    assert_int_equal(evbuffer_get_length(in), want_left);
    evbuffer_free(in);
    evbuffer_free(out);
}

static void test_chunked_verbatim_at_every_split(void **state)
{
    char input[256];
    snprintf(input, sizeof input, "%s%s", chunked, next);
    for (size_t at = 0; at <= strlen(input); at++)
        run_split(HTTP1_BODY_CHUNKED, 0, false, input, strlen(input), at, chunked, strlen(next));
}

static void test_chunked_dechunked_at_every_split(void **state)
{
    char input[256];
    snprintf(input, sizeof input, "%s%s", chunked, next);
    for (size_t at = 0; at <= strlen(input); at++)
        run_split(HTTP1_BODY_CHUNKED, 0, true, input, strlen(input), at, "hello world!",
                  strlen(next));
}

/* Every byte in its own chain: the decoder runs across many iovecs per pass. */
static void test_chunked_verbatim_one_chain_per_byte(void **state)
{
    char input[256];
    snprintf(input, sizeof input, "%s%s", chunked, next);
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    struct http_body b;
    http_body_init(&b, HTTP1_BODY_CHUNKED, 0, &lim, false);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    for (size_t i = 0; i < strlen(input); i++)
        evbuffer_add_reference(in, input + i, 1, NULL, NULL);
    uint64_t moved;
    assert_int_equal(http_body_move(&b, in, out, &moved), 0);
    assert_true(b.done);
    assert_int_equal(moved, strlen(chunked));
    assert_memory_equal(evbuffer_pullup(out, -1), chunked, strlen(chunked));
    assert_int_equal(evbuffer_get_length(in), strlen(next));
    evbuffer_free(in);
    evbuffer_free(out);
}

static void test_length_body_stops_at_its_end(void **state)
{
    const char input[] = "0123456789GET";
    for (size_t at = 0; at <= strlen(input); at++)
        run_split(HTTP1_BODY_LENGTH, 10, false, input, strlen(input), at, "0123456789", 3);
}

static void test_zero_length_and_none_are_done_at_once(void **state)
{
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    struct http_body b;
    http_body_init(&b, HTTP1_BODY_LENGTH, 0, &lim, false);
    assert_true(b.done);
    http_body_init(&b, HTTP1_BODY_NONE, 0, &lim, false);
    assert_true(b.done);
}

static void test_chunked_over_the_body_limit_is_413(void **state)
{
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    lim.max_body_bytes = 8;
    struct http_body b;
    http_body_init(&b, HTTP1_BODY_CHUNKED, 0, &lim, false);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    uint64_t moved;
    evbuffer_add(in, "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 25);
    int rc = http_body_move(&b, in, out, &moved);
    assert_int_equal(http1_error_status(rc), 413);
    evbuffer_free(in);
    evbuffer_free(out);
}

static void test_bad_chunk_size_is_an_error(void **state)
{
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    struct http_body b;
    http_body_init(&b, HTTP1_BODY_CHUNKED, 0, &lim, false);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    uint64_t moved;
    evbuffer_add(in, "10000000000000000\r\n", 19);
    assert_int_equal(http_body_move(&b, in, out, &moved), HTTP1_ERR_CHUNK_SIZE_OVERFLOW);
    evbuffer_free(in);
    evbuffer_free(out);
}

static void test_until_close_moves_everything(void **state)
{
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    struct http_body b;
    http_body_init(&b, HTTP1_BODY_UNTIL_CLOSE, 0, &lim, false);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    uint64_t moved;
    evbuffer_add(in, "abc", 3);
    assert_int_equal(http_body_move(&b, in, out, &moved), 0);
    assert_int_equal(moved, 3);
    assert_false(b.done);
    assert_int_equal(evbuffer_get_length(in), 0);
    evbuffer_free(in);
    evbuffer_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_verbatim_at_every_split),
        cmocka_unit_test(test_chunked_dechunked_at_every_split),
        cmocka_unit_test(test_chunked_verbatim_one_chain_per_byte),
        cmocka_unit_test(test_length_body_stops_at_its_end),
        cmocka_unit_test(test_zero_length_and_none_are_done_at_once),
        cmocka_unit_test(test_chunked_over_the_body_limit_is_413),
        cmocka_unit_test(test_bad_chunk_size_is_an_error),
        cmocka_unit_test(test_until_close_moves_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* http1 chunked body decoder: payload spans, message end, every framing violation,
 * limits, and the same result for every split of the input. */
#include "test_http1_util.h"

struct decoded {
    int rc;               /* last step result */
    size_t consumed;      /* bytes consumed over all steps */
    char payload[16384];
    size_t payload_len;
};

/* Feeds msg[0..len) to a fresh decoder in pieces ending at cuts[] (ascending, the
 * last one len), each from an exact-size heap copy; stops at END or an error. */
static void decode_cuts(const char *msg, size_t len, const size_t *cuts, size_t ncuts,
                        const struct http1_limits *lim, struct decoded *out)
{
    struct http1_chunked dec;
    http1_chunked_init(&dec, lim);
    memset(out, 0, sizeof(*out));
    out->rc = HTTP1_CHUNKED_MORE;
    size_t start = 0;
    for (size_t c = 0; c < ncuts && out->rc == HTTP1_CHUNKED_MORE; c++) {
        size_t plen = cuts[c] - start;
        char *piece = t_copy(msg + start, plen);
        size_t off = 0;
        while (off < plen && out->rc == HTTP1_CHUNKED_MORE) {
            size_t n, data;
            out->rc = http1_chunked_step(&dec, piece + off, plen - off, &n, &data);
            assert_true(n <= plen - off && data <= n);
            if (out->rc == HTTP1_CHUNKED_MORE)
                assert_true(n > 0);
            assert_true(out->payload_len + data <= sizeof(out->payload));
            memcpy(out->payload + out->payload_len, piece + off + n - data, data);
            out->payload_len += data;
            off += n;
            out->consumed += n;
        }
        free(piece);
        start = cuts[c];
    }
    if (out->rc >= 0)
        assert_int_equal(http1_chunked_payload_bytes(&dec), out->payload_len);
}

static void decode_lim(const char *msg, size_t len, const struct http1_limits *lim,
                       struct decoded *out)
{
    decode_cuts(msg, len, &len, 1, lim, out);
}

static void decode(const char *msg, struct decoded *out)
{
    struct http1_limits lim = t_limits();
    decode_lim(msg, strlen(msg), &lim, out);
}

static int decode_rc(const char *msg)
{
    static struct decoded out;
    decode(msg, &out);
    return out.rc;
}

/* Whole, byte by byte, and split in two at every offset: all agree with the whole. */
static void assert_every_split(const char *msg, size_t len, const struct decoded *whole)
{
    struct http1_limits lim = t_limits();
    static struct decoded part;
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    decode_cuts(msg, len, cuts, len, &lim, &part);
    assert_int_equal(part.rc, whole->rc);
    assert_int_equal(part.consumed, whole->consumed);
    for (size_t k = 0; k <= len; k++) {
        size_t two[2] = { k, len };
        decode_cuts(msg, len, two, 2, &lim, &part);
        assert_int_equal(part.rc, whole->rc);
        assert_int_equal(part.consumed, whole->consumed);
        assert_int_equal(part.payload_len, whole->payload_len);
        assert_memory_equal(part.payload, whole->payload, whole->payload_len);
    }
    free(cuts);
}

static void assert_decodes(const char *msg, const char *payload)
{
    static struct decoded out;
    decode(msg, &out);
    assert_int_equal(out.rc, HTTP1_CHUNKED_END);
    assert_int_equal(out.consumed, strlen(msg));
    assert_int_equal(out.payload_len, strlen(payload));
    assert_memory_equal(out.payload, payload, out.payload_len);
    assert_every_split(msg, strlen(msg), &out);
}

static void assert_chunk_error(const char *msg, size_t len, int err)
{
    struct http1_limits lim = t_limits();
    static struct decoded out;
    decode_lim(msg, len, &lim, &out);
    assert_int_equal(out.rc, err);
    assert_every_split(msg, len, &out);
}

#define assert_chunk_rejects(msg, err) assert_chunk_error((msg), strlen(msg), (err))

static void test_decodes_single_chunk(void **state)
{
    assert_decodes("5\r\nhello\r\n0\r\n\r\n", "hello");
}

static void test_decodes_multiple_chunks(void **state)
{
    assert_decodes("3\r\nabc\r\n1\r\nd\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
                   "abcd0123456789abcdef");
}

static void test_decodes_empty_body(void **state)
{
    assert_decodes("0\r\n\r\n", "");
}

static void test_decodes_uppercase_hex(void **state)
{
    char msg[64];
    static char data[0x1A + 1];
    memset(data, 'x', 0x1A);
    snprintf(msg, sizeof(msg), "1A\r\n%s\r\n0\r\n\r\n", data);
    assert_decodes(msg, data);
}

static void test_decodes_mixed_case_hex_with_leading_zeros(void **state)
{
    static char msg[300], data[0xaB + 1];
    memset(data, 'y', 0xaB);
    snprintf(msg, sizeof(msg), "000aB\r\n%s\r\n0000\r\n\r\n", data);
    assert_decodes(msg, data);
}

static void test_decodes_data_containing_crlf(void **state)
{
    assert_decodes("4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n");
}

static void test_decodes_extensions(void **state)
{
    assert_decodes("3;name\r\nabc\r\n2;a=b;c=d\r\nde\r\n1 ; x = y ;z\r\nf\r\n0;last\r\n\r\n",
                   "abcdef");
}

static void test_decodes_quoted_extension(void **state)
{
    assert_decodes("3;q=\"a; b=\\\"c\\\"\"\r\nabc\r\n0\r\n\r\n", "abc");
}

static void test_zero_chunk_with_trailers(void **state)
{
    assert_decodes("2\r\nok\r\n0\r\nChecksum: abc\r\nX-Empty:\r\n\r\n", "ok");
}

static void test_zero_chunk_with_extension_and_trailer(void **state)
{
    assert_decodes("0;final=\"yes\"\r\nServer-Timing: db;dur=53\r\n\r\n", "");
}

static void test_stops_at_message_end(void **state)
{
    const char *msg = "1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    struct http1_chunked dec;
    struct http1_limits lim = t_limits();
    size_t off = 0, n, data;
    int rc;
    http1_chunked_init(&dec, &lim);
    do {
        rc = http1_chunked_step(&dec, msg + off, strlen(msg) - off, &n, &data);
        off += n;
    } while (rc == HTTP1_CHUNKED_MORE);
    assert_int_equal(rc, HTTP1_CHUNKED_END);
    assert_int_equal(off, 11);
    assert_int_equal(http1_chunked_step(&dec, msg + off, strlen(msg) - off, &n, &data),
                     HTTP1_CHUNKED_END);
    assert_int_equal(n, 0);
    assert_int_equal(data, 0);
}

static void test_error_sticks(void **state)
{
    struct http1_chunked dec;
    struct http1_limits lim = t_limits();
    size_t n, data;
    http1_chunked_init(&dec, &lim);
    assert_int_equal(http1_chunked_step(&dec, "0\r\n\rX", 5, &n, &data), HTTP1_ERR_BARE_CR);
    assert_int_equal(n, 5);
    assert_int_equal(http1_chunked_step(&dec, "\r\n", 2, &n, &data), HTTP1_ERR_BARE_CR);
    assert_int_equal(n, 0);
    assert_int_equal(data, 0);
}

static void test_step_returns_payload_as_tail_of_consumed(void **state)
{
    const char *msg = "4\r\nabcd\r\n0\r\n\r\n";
    struct http1_chunked dec;
    struct http1_limits lim = t_limits();
    size_t n, data;
    http1_chunked_init(&dec, &lim);
    assert_int_equal(http1_chunked_step(&dec, msg, strlen(msg), &n, &data), HTTP1_CHUNKED_MORE);
    assert_int_equal(n, 7);
    assert_int_equal(data, 4);
    assert_memory_equal(msg + n - data, "abcd", 4);
    assert_int_equal(http1_chunked_step(&dec, msg + n, strlen(msg) - n, &n, &data),
                     HTTP1_CHUNKED_END);
    assert_int_equal(n, 7);
    assert_int_equal(data, 0);
}

static void test_incomplete_body_wants_more(void **state)
{
    static struct decoded out;
    decode("5\r\nhel", &out);
    assert_int_equal(out.rc, HTTP1_CHUNKED_MORE);
    assert_int_equal(out.payload_len, 3);
    decode("0\r\n", &out);
    assert_int_equal(out.rc, HTTP1_CHUNKED_MORE);
    decode("0\r\nX: y\r\n", &out);
    assert_int_equal(out.rc, HTTP1_CHUNKED_MORE);
}

static void test_accepts_largest_chunk_size(void **state)
{
    struct http1_chunked dec;
    struct http1_limits lim = t_limits();
    size_t n, data;
    http1_chunked_init(&dec, &lim);
    const char *msg = "7fffffffffffffff\r\nxy";
    assert_int_equal(http1_chunked_step(&dec, msg, strlen(msg), &n, &data), HTTP1_CHUNKED_MORE);
    assert_int_equal(n, strlen(msg));
    assert_int_equal(data, 2);
}

static void test_rejects_chunk_size_overflow(void **state)
{
    assert_chunk_rejects("8000000000000000\r\n", HTTP1_ERR_CHUNK_SIZE_OVERFLOW);
}

static void test_rejects_chunk_size_wrapping_64_bits(void **state)
{
    assert_chunk_rejects("10000000000000005\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_SIZE_OVERFLOW);
}

static void test_rejects_chunk_size_too_many_digits(void **state)
{
    assert_chunk_rejects("00000000000000001\r\na\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_SIZE_OVERFLOW);
}

static void test_rejects_invalid_hex(void **state)
{
    assert_chunk_rejects("g\r\n", HTTP1_ERR_CHUNK_SIZE);
}

static void test_rejects_hex_prefix(void **state)
{
    assert_chunk_rejects("0x5\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_SIZE);
}

static void test_rejects_negative_chunk_size(void **state)
{
    assert_chunk_rejects("-5\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_SIZE);
}

static void test_rejects_empty_chunk_size(void **state)
{
    assert_chunk_rejects("\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_SIZE);
}

static void test_rejects_space_before_chunk_size(void **state)
{
    assert_chunk_rejects(" 5\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_SIZE);
}

static void test_rejects_trailing_space_after_chunk_size(void **state)
{
    assert_chunk_rejects("5 \r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_SIZE);
}

static void test_rejects_junk_after_chunk_size(void **state)
{
    assert_chunk_rejects("5x\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_SIZE);
}

static void test_accepts_bws_before_extension(void **state)
{
    assert_decodes("5 \t;ext\r\nhello\r\n0\r\n\r\n", "hello");
}

static void test_rejects_missing_crlf_after_data(void **state)
{
    assert_chunk_rejects("5\r\nhelloX\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_DATA_CRLF);
}

static void test_rejects_data_longer_than_size(void **state)
{
    assert_chunk_rejects("3\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_DATA_CRLF);
}

static void test_rejects_lf_only_after_data(void **state)
{
    assert_chunk_rejects("5\r\nhello\n0\r\n\r\n", HTTP1_ERR_CHUNK_DATA_CRLF);
}

static void test_rejects_cr_without_lf_after_data(void **state)
{
    assert_chunk_rejects("5\r\nhello\rX0\r\n\r\n", HTTP1_ERR_CHUNK_DATA_CRLF);
}

static void test_rejects_bare_lf_in_chunk_line(void **state)
{
    assert_chunk_rejects("5\nhello\r\n0\r\n\r\n", HTTP1_ERR_BARE_LF);
}

static void test_rejects_bare_cr_in_chunk_line(void **state)
{
    assert_chunk_rejects("5\rhello\r\n0\r\n\r\n", HTTP1_ERR_BARE_CR);
}

static void test_rejects_extension_without_name(void **state)
{
    assert_chunk_rejects("5;\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_EXT);
}

static void test_rejects_extension_without_value(void **state)
{
    assert_chunk_rejects("5;a=\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_EXT);
}

static void test_rejects_extension_trailing_space(void **state)
{
    assert_chunk_rejects("5;a \r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_EXT);
}

static void test_rejects_unterminated_quoted_extension(void **state)
{
    assert_chunk_rejects("5;a=\"x\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_EXT);
}

static void test_rejects_junk_after_quoted_extension(void **state)
{
    assert_chunk_rejects("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_EXT);
}

static void test_rejects_cr_in_quoted_extension(void **state)
{
    assert_chunk_rejects("5;a=\"\\\r\"\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_EXT);
}

static void test_rejects_space_inside_extension_value(void **state)
{
    assert_chunk_rejects("5;a=b c\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_EXT);
}

static void test_rejects_ctl_in_extension(void **state)
{
    assert_chunk_rejects("5;a=b\x01\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_EXT);
}

static void test_rejects_bare_lf_in_extension(void **state)
{
    assert_chunk_rejects("5;a=b\nhello\r\n0\r\n\r\n", HTTP1_ERR_BARE_LF);
}

static char *chunk_with_extension(size_t ext_len)
{
    char *msg = malloc(ext_len + 64);
    assert_non_null(msg);
    strcpy(msg, "1;");
    memset(msg + 2, 'e', ext_len - 1);
    strcpy(msg + 1 + ext_len, "\r\nz\r\n0\r\n\r\n");
    return msg;
}

static void test_accepts_extension_at_limit(void **state)
{
    static struct decoded out;
    char *msg = chunk_with_extension(HTTP1_MAX_CHUNK_EXT);
    decode(msg, &out);
    assert_int_equal(out.rc, HTTP1_CHUNKED_END);
    free(msg);
}

static void test_rejects_extension_too_long(void **state)
{
    char *msg = chunk_with_extension(HTTP1_MAX_CHUNK_EXT + 1);
    assert_int_equal(decode_rc(msg), HTTP1_ERR_CHUNK_EXT_TOO_LONG);
    free(msg);
}

static void test_extension_limit_is_per_chunk_line(void **state)
{
    char *one = chunk_with_extension(HTTP1_MAX_CHUNK_EXT);
    size_t len = strlen(one) - 5; /* without the last-chunk */
    char *two = malloc(2 * len + 8);
    assert_non_null(two);
    /* The strcpy() below terminates two. NOLINTBEGIN(bugprone-not-null-terminated-result) */
    memcpy(two, one, len);
    memcpy(two + len, one, len);
    /* NOLINTEND(bugprone-not-null-terminated-result) */
    strcpy(two + 2 * len, "0\r\n\r\n");
    assert_int_equal(decode_rc(two), HTTP1_CHUNKED_END);
    free(one);
    free(two);
}

static void test_rejects_trailer_obs_fold(void **state)
{
    assert_chunk_rejects("0\r\nX: a\r\n b\r\n\r\n", HTTP1_ERR_OBS_FOLD);
}

static void test_rejects_trailer_space_before_colon(void **state)
{
    assert_chunk_rejects("0\r\nX : a\r\n\r\n", HTTP1_ERR_SPACE_BEFORE_COLON);
}

static void test_rejects_trailer_without_colon(void **state)
{
    assert_chunk_rejects("0\r\nX\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME);
}

static void test_rejects_trailer_empty_name(void **state)
{
    assert_chunk_rejects("0\r\n: a\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME);
}

static void test_rejects_trailer_bare_cr(void **state)
{
    assert_chunk_rejects("0\r\nX: a\rb\r\n\r\n", HTTP1_ERR_BARE_CR);
}

static void test_rejects_trailer_bare_lf(void **state)
{
    assert_chunk_rejects("0\r\nX: a\nY: b\r\n\r\n", HTTP1_ERR_BARE_LF);
}

static void test_rejects_bare_lf_after_last_chunk(void **state)
{
    assert_chunk_rejects("0\r\n\n", HTTP1_ERR_BARE_LF);
}

static void test_rejects_bare_cr_ending_trailers(void **state)
{
    assert_chunk_rejects("0\r\n\rX", HTTP1_ERR_BARE_CR);
}

static void test_rejects_trailer_nul(void **state)
{
    const char msg[] = "0\r\nX: a\0b\r\n\r\n";
    assert_chunk_error(msg, sizeof(msg) - 1, HTTP1_ERR_NUL);
}

static void test_rejects_trailer_ctl(void **state)
{
    assert_chunk_rejects("0\r\nX: a\x1b\r\n\r\n", HTTP1_ERR_BAD_HEADER_VALUE);
}

static void test_rejects_forbidden_trailer_content_length(void **state)
{
    assert_chunk_rejects("0\r\nContent-Length: 5\r\n\r\n", HTTP1_ERR_TRAILER_FORBIDDEN);
}

static void test_rejects_forbidden_trailer_transfer_encoding(void **state)
{
    assert_chunk_rejects("0\r\ntransfer-encoding: chunked\r\n\r\n", HTTP1_ERR_TRAILER_FORBIDDEN);
}

static void test_rejects_forbidden_trailer_client_cert_subject(void **state)
{
    assert_chunk_rejects("0\r\nX-Client-Cert-Subject: CN=admin\r\n\r\n",
                         HTTP1_ERR_TRAILER_FORBIDDEN);
}

static void test_accepts_trailer_name_longer_than_forbidden_ones(void **state)
{
    assert_decodes("0\r\nX-Client-Cert-Subject-And-More: 1\r\nHosts: 2\r\n\r\n", "");
}

static void test_rejects_trailers_too_large(void **state)
{
    struct http1_limits lim = t_limits();
    const char *msg = "0\r\nX: 0123456789\r\n\r\n";
    static struct decoded out;
    lim.max_header_bytes = 15;
    decode_lim(msg, strlen(msg), &lim, &out);
    assert_int_equal(out.rc, HTTP1_ERR_TRAILER_TOO_LARGE);
    lim.max_header_bytes = 17;
    decode_lim(msg, strlen(msg), &lim, &out);
    assert_int_equal(out.rc, HTTP1_CHUNKED_END);
}

static void test_rejects_too_many_trailers(void **state)
{
    struct http1_limits lim = t_limits();
    const char *msg = "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    static struct decoded out;
    lim.max_headers = 2;
    decode_lim(msg, strlen(msg), &lim, &out);
    assert_int_equal(out.rc, HTTP1_ERR_TRAILER_TOO_LARGE);
    lim.max_headers = 3;
    decode_lim(msg, strlen(msg), &lim, &out);
    assert_int_equal(out.rc, HTTP1_CHUNKED_END);
}

static void test_rejects_chunked_body_over_limit_413(void **state)
{
    struct http1_limits lim = t_limits();
    const char *msg = "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
    static struct decoded out;
    lim.max_body_bytes = 5;
    decode_lim(msg, strlen(msg), &lim, &out);
    assert_int_equal(out.rc, HTTP1_ERR_BODY_TOO_LARGE);
    assert_int_equal(out.payload_len, 3);
    lim.max_body_bytes = 6;
    decode_lim(msg, strlen(msg), &lim, &out);
    assert_int_equal(out.rc, HTTP1_CHUNKED_END);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decodes_single_chunk),
        cmocka_unit_test(test_decodes_multiple_chunks),
        cmocka_unit_test(test_decodes_empty_body),
        cmocka_unit_test(test_decodes_uppercase_hex),
        cmocka_unit_test(test_decodes_mixed_case_hex_with_leading_zeros),
        cmocka_unit_test(test_decodes_data_containing_crlf),
        cmocka_unit_test(test_decodes_extensions),
        cmocka_unit_test(test_decodes_quoted_extension),
        cmocka_unit_test(test_zero_chunk_with_trailers),
        cmocka_unit_test(test_zero_chunk_with_extension_and_trailer),
        cmocka_unit_test(test_stops_at_message_end),
        cmocka_unit_test(test_error_sticks),
        cmocka_unit_test(test_step_returns_payload_as_tail_of_consumed),
        cmocka_unit_test(test_incomplete_body_wants_more),
        cmocka_unit_test(test_accepts_largest_chunk_size),
        cmocka_unit_test(test_rejects_chunk_size_overflow),
        cmocka_unit_test(test_rejects_chunk_size_wrapping_64_bits),
        cmocka_unit_test(test_rejects_chunk_size_too_many_digits),
        cmocka_unit_test(test_rejects_invalid_hex),
        cmocka_unit_test(test_rejects_hex_prefix),
        cmocka_unit_test(test_rejects_negative_chunk_size),
        cmocka_unit_test(test_rejects_empty_chunk_size),
        cmocka_unit_test(test_rejects_space_before_chunk_size),
        cmocka_unit_test(test_rejects_trailing_space_after_chunk_size),
        cmocka_unit_test(test_rejects_junk_after_chunk_size),
        cmocka_unit_test(test_accepts_bws_before_extension),
        cmocka_unit_test(test_rejects_missing_crlf_after_data),
        cmocka_unit_test(test_rejects_data_longer_than_size),
        cmocka_unit_test(test_rejects_lf_only_after_data),
        cmocka_unit_test(test_rejects_cr_without_lf_after_data),
        cmocka_unit_test(test_rejects_bare_lf_in_chunk_line),
        cmocka_unit_test(test_rejects_bare_cr_in_chunk_line),
        cmocka_unit_test(test_rejects_extension_without_name),
        cmocka_unit_test(test_rejects_extension_without_value),
        cmocka_unit_test(test_rejects_extension_trailing_space),
        cmocka_unit_test(test_rejects_unterminated_quoted_extension),
        cmocka_unit_test(test_rejects_junk_after_quoted_extension),
        cmocka_unit_test(test_rejects_cr_in_quoted_extension),
        cmocka_unit_test(test_rejects_space_inside_extension_value),
        cmocka_unit_test(test_rejects_ctl_in_extension),
        cmocka_unit_test(test_rejects_bare_lf_in_extension),
        cmocka_unit_test(test_accepts_extension_at_limit),
        cmocka_unit_test(test_rejects_extension_too_long),
        cmocka_unit_test(test_extension_limit_is_per_chunk_line),
        cmocka_unit_test(test_rejects_trailer_obs_fold),
        cmocka_unit_test(test_rejects_trailer_space_before_colon),
        cmocka_unit_test(test_rejects_trailer_without_colon),
        cmocka_unit_test(test_rejects_trailer_empty_name),
        cmocka_unit_test(test_rejects_trailer_bare_cr),
        cmocka_unit_test(test_rejects_trailer_bare_lf),
        cmocka_unit_test(test_rejects_bare_lf_after_last_chunk),
        cmocka_unit_test(test_rejects_bare_cr_ending_trailers),
        cmocka_unit_test(test_rejects_trailer_nul),
        cmocka_unit_test(test_rejects_trailer_ctl),
        cmocka_unit_test(test_rejects_forbidden_trailer_content_length),
        cmocka_unit_test(test_rejects_forbidden_trailer_transfer_encoding),
        cmocka_unit_test(test_rejects_forbidden_trailer_client_cert_subject),
        cmocka_unit_test(test_accepts_trailer_name_longer_than_forbidden_ones),
        cmocka_unit_test(test_rejects_trailers_too_large),
        cmocka_unit_test(test_rejects_too_many_trailers),
        cmocka_unit_test(test_rejects_chunked_body_over_limit_413),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_proxyproto_parse — the strict PROXY protocol parser: valid v1 and v2 headers
 * give their addresses and length, every violation its own error, and every input is
 * judged the same at every split offset (a prefix is INCOMPLETE or the final verdict). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxyproto/proxyproto.h"

/* Parses buf whole and at every prefix: a prefix shorter than a valid header is
 * INCOMPLETE; any other prefix is INCOMPLETE or the whole input's verdict. */
static int parse_all_splits(const uint8_t *buf, size_t len, struct proxyproto_header *h)
{
    int whole = proxyproto_parse(buf, len, h);
    for (size_t cut = 0; cut < len; cut++) {
        struct proxyproto_header part;
        int rc = proxyproto_parse(buf, cut, &part);
        if (whole > 0 && cut < (size_t)whole && rc != PROXYPROTO_INCOMPLETE)
            fail_msg("prefix of %zu bytes of a valid header is not INCOMPLETE: %d", cut, rc);
        if (rc != PROXYPROTO_INCOMPLETE && rc != whole)
            fail_msg("prefix of %zu bytes: %d, whole input: %d", cut, rc, whole);
    }
    return whole;
}

static int parse_text(const char *text, struct proxyproto_header *h)
{
    return parse_all_splits((const uint8_t *)text, strlen(text), h);
}

static void assert_addr(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
    char buf[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf), ip);
        assert_int_equal(ntohs(sin->sin_port), port);
    } else {
        assert_int_equal(ss->ss_family, AF_INET6);
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        assert_string_equal(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf), ip);
        assert_int_equal(ntohs(sin6->sin6_port), port);
    }
}

/* ---- v1 ---------------------------------------------------------------------------- */

static void test_v1_tcp4(void **state)
{
    struct proxyproto_header h;
    const char *text = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET / HTTP/1.1\r\n";
    assert_int_equal(parse_text(text, &h), strlen("PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"));
    assert_int_equal(h.version, 1);
    assert_false(h.is_local);
    assert_addr(&h.src, "192.0.2.1", 56324);
    assert_addr(&h.dst, "198.51.100.7", 443);
}

static void test_v1_tcp6(void **state)
{
    struct proxyproto_header h;
    assert_int_equal(parse_text("PROXY TCP6 2001:db8::1 ::1 0 65535\r\n", &h), 36);
    assert_addr(&h.src, "2001:db8::1", 0);
    assert_addr(&h.dst, "::1", 65535);
}

static void test_v1_longest_line_is_accepted(void **state)
{
    struct proxyproto_header h;
    const char *text = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(text), PROXYPROTO_V1_MAX);
    assert_int_equal(parse_text(text, &h), PROXYPROTO_V1_MAX);
}

static void test_v1_unknown_is_local(void **state)
{
    struct proxyproto_header h;
    assert_int_equal(parse_text("PROXY UNKNOWN\r\n", &h), 15);
    assert_true(h.is_local);
    assert_int_equal(parse_text("PROXY UNKNOWN ffff:f...f:ffff 12 34\r\nx", &h), 37);
    assert_true(h.is_local);
}

struct bad {
    const char *text;
    int rc;
};

static void test_v1_violations(void **state)
{
    static const struct bad cases[] = {
        { "GET / HTTP/1.1\r\n\r\n", PROXYPROTO_ERR_NOT_PROXY },
        { "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXYPROTO_ERR_NOT_PROXY },
        { "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXYPROTO_ERR_NOT_PROXY },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", PROXYPROTO_ERR_V1_SYNTAX },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\n", PROXYPROTO_ERR_V1_SYNTAX },
        { "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", PROXYPROTO_ERR_V1_SYNTAX },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", PROXYPROTO_ERR_V1_SYNTAX },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", PROXYPROTO_ERR_V1_SYNTAX },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", PROXYPROTO_ERR_V1_SYNTAX },
        { "PROXY \r\n", PROXYPROTO_ERR_V1_SYNTAX },
        { "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXYPROTO_ERR_V1_PROTOCOL },
        { "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", PROXYPROTO_ERR_V1_PROTOCOL },
        { "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", PROXYPROTO_ERR_V1_ADDRESS },
        { "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", PROXYPROTO_ERR_V1_ADDRESS },
        { "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", PROXYPROTO_ERR_V1_ADDRESS },
        { "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", PROXYPROTO_ERR_V1_ADDRESS },
        { "PROXY TCP4 lb.example 5.6.7.8 1 2\r\n", PROXYPROTO_ERR_V1_ADDRESS },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", PROXYPROTO_ERR_V1_PORT },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", PROXYPROTO_ERR_V1_PORT },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", PROXYPROTO_ERR_V1_PORT },
        { "PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n", PROXYPROTO_ERR_V1_PORT },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct proxyproto_header h;
        int rc = parse_text(cases[i].text, &h);
        if (rc != cases[i].rc)
            fail_msg("%s: %d (%s), want %d", cases[i].text, rc, proxyproto_error_str(rc),
                     cases[i].rc);
    }
}

static void test_v1_without_crlf_within_107_bytes_is_too_long(void **state)
{
    char text[200];
    struct proxyproto_header h;
    memset(text, '1', sizeof text);
    memcpy(text, "PROXY UNKNOWN ", 14);
    text[sizeof text - 1] = '\0';
    assert_int_equal(parse_text(text, &h), PROXYPROTO_ERR_V1_TOO_LONG);
    /* the CRLF right after byte 107 */
    memcpy(text + 106, "\r\n", 3);
    assert_int_equal(parse_text(text, &h), PROXYPROTO_ERR_V1_TOO_LONG);
    memcpy(text + 105, "\r\n", 3);
    assert_int_equal(parse_text(text, &h), PROXYPROTO_V1_MAX);
}

/* ---- v2 ---------------------------------------------------------------------------- */

static const uint8_t SIG[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* A v2 header: signature, ver_cmd, fam, then `body` (len bytes), length filled in. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t len)
{
    memcpy(out, SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (len > 0)
        memcpy(out + 16, body, len);
    return 16 + len;
}

static const uint8_t TCP4_BLOCK[12] = { 192, 0, 2, 1, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb };

static void test_v2_tcp4(void **state)
{
    uint8_t buf[64];
    struct proxyproto_header h;
    size_t n = v2(buf, 0x21, 0x11, TCP4_BLOCK, sizeof TCP4_BLOCK);
    buf[n] = 'X';   /* payload after the header is not taken */
    assert_int_equal(parse_all_splits(buf, n + 1, &h), 28);
    assert_int_equal(h.version, 2);
    assert_false(h.is_local);
    assert_addr(&h.src, "192.0.2.1", 56324);
    assert_addr(&h.dst, "10.0.0.1", 443);
    assert_null(h.tlvs);
}

static void test_v2_tcp6_with_tlvs(void **state)
{
    uint8_t body[36 + 32] = { 0 };
    uint8_t buf[128];
    struct proxyproto_header h;
    body[15] = 1;                               /* src ::1 */
    body[16] = 0x20, body[17] = 0x01;           /* dst 2001:: */
    body[32] = 0x30, body[33] = 0x39;           /* sport 12345 */
    body[34] = 0x00, body[35] = 0x50;           /* dport 80 */
    static const uint8_t tlvs[] = { PP2_TYPE_ALPN, 0, 2, 'h', '2',
                                    PP2_TYPE_AUTHORITY, 0, 5, 'a', '.', 't', 'e', 's',
                                    PP2_TYPE_NOOP, 0, 0,
                                    PP2_TYPE_SSL, 0, 13, 1, 0, 0, 0, 0,
                                    PP2_SUBTYPE_SSL_VERSION, 0, 5, 'T', 'L', 'S', 'v', '1' };
    memcpy(body + 36, tlvs, sizeof tlvs);
    size_t n = v2(buf, 0x21, 0x21, body, 36 + sizeof tlvs);
    assert_int_equal(parse_all_splits(buf, n, &h), (int)n);
    assert_addr(&h.src, "::1", 12345);
    assert_addr(&h.dst, "2001::", 80);
    size_t len;
    const uint8_t *v = proxyproto_tlv(&h, PP2_TYPE_AUTHORITY, &len);
    assert_non_null(v);
    assert_int_equal(len, 5);
    assert_memory_equal(v, "a.tes", 5);
    v = proxyproto_tlv(&h, PP2_TYPE_ALPN, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(v, "h2", 2);
    assert_null(proxyproto_tlv(&h, PP2_TYPE_UNIQUE_ID, &len));
}

static void test_v2_local_ignores_its_block(void **state)
{
    uint8_t buf[64];
    struct proxyproto_header h;
    static const uint8_t junk[5] = { 0xff, 0xff, 0xff, 0, 9 };   /* not TLVs: not read */
    size_t n = v2(buf, 0x20, 0x77, junk, sizeof junk);
    assert_int_equal(parse_all_splits(buf, n, &h), (int)n);
    assert_true(h.is_local);
    n = v2(buf, 0x20, 0x00, NULL, 0);
    assert_int_equal(parse_all_splits(buf, n, &h), 16);
    assert_true(h.is_local);
}

static void test_v2_unspec_and_unix_use_the_socket(void **state)
{
    uint8_t unix_block[216] = { 0 };
    uint8_t buf[256];
    struct proxyproto_header h;
    size_t n = v2(buf, 0x21, 0x00, NULL, 0);
    assert_int_equal(parse_all_splits(buf, n, &h), 16);
    assert_true(h.is_local);
    n = v2(buf, 0x21, 0x31, unix_block, sizeof unix_block);
    assert_int_equal(parse_all_splits(buf, n, &h), (int)n);
    assert_true(h.is_local);
}

static void test_v2_crc32c(void **state)
{
    uint8_t body[12 + 7];
    uint8_t buf[64];
    struct proxyproto_header h;
    memcpy(body, TCP4_BLOCK, 12);
    memcpy(body + 12, (uint8_t[]){ PP2_TYPE_CRC32C, 0, 4, 0, 0, 0, 0 }, 7);
    size_t n = v2(buf, 0x21, 0x11, body, sizeof body);
    uint32_t crc = proxyproto_crc32c(buf, n);
    buf[n - 4] = (uint8_t)(crc >> 24), buf[n - 3] = (uint8_t)(crc >> 16);
    buf[n - 2] = (uint8_t)(crc >> 8), buf[n - 1] = (uint8_t)crc;
    assert_int_equal(parse_all_splits(buf, n, &h), (int)n);
    buf[16] ^= 1;       /* the source address changed on the way */
    assert_int_equal(parse_all_splits(buf, n, &h), PROXYPROTO_ERR_V2_CRC);
    /* the reference value of CRC32C ("123456789" -> 0xe3069283, RFC 3720 B.4) */
    assert_int_equal(proxyproto_crc32c((const uint8_t *)"123456789", 9), 0xe3069283u);
}

static void test_v2_violations(void **state)
{
    uint8_t buf[PROXYPROTO_MAX_HEADER + 64];
    uint8_t body[64] = { 0 };
    struct proxyproto_header h;
    memcpy(body, TCP4_BLOCK, 12);
    struct {
        uint8_t ver_cmd, fam;
        size_t len;
        int rc;
    } cases[] = {
        { 0x11, 0x11, 12, PROXYPROTO_ERR_V2_VERSION },
        { 0x31, 0x11, 12, PROXYPROTO_ERR_V2_VERSION },
        { 0x22, 0x11, 12, PROXYPROTO_ERR_V2_COMMAND },
        { 0x21, 0x12, 12, PROXYPROTO_ERR_V2_FAMILY },      /* UDP over IPv4 */
        { 0x21, 0x22, 36, PROXYPROTO_ERR_V2_FAMILY },      /* UDP over IPv6 */
        { 0x21, 0x41, 12, PROXYPROTO_ERR_V2_FAMILY },
        { 0x21, 0x10, 12, PROXYPROTO_ERR_V2_FAMILY },
        { 0x21, 0x11, 11, PROXYPROTO_ERR_V2_ADDRESS },
        { 0x21, 0x21, 12, PROXYPROTO_ERR_V2_ADDRESS },
        { 0x21, 0x11, 13, PROXYPROTO_ERR_V2_TLV },         /* one stray byte */
        { 0x21, 0x11, 14, PROXYPROTO_ERR_V2_TLV },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = v2(buf, cases[i].ver_cmd, cases[i].fam, body, cases[i].len);
        int rc = parse_all_splits(buf, n, &h);
        if (rc != cases[i].rc)
            fail_msg("case %zu: %d (%s), want %d", i, rc, proxyproto_error_str(rc), cases[i].rc);
    }
    /* three more bytes make the stray ones a whole (empty) TLV: valid */
    assert_int_equal(parse_all_splits(buf, v2(buf, 0x21, 0x11, body, 15), &h), 31);
    /* a TLV announcing more than is there */
    memcpy(body + 12, (uint8_t[]){ PP2_TYPE_ALPN, 0, 9, 'h', '2' }, 5);
    assert_int_equal(parse_all_splits(buf, v2(buf, 0x21, 0x11, body, 17), &h), PROXYPROTO_ERR_V2_TLV);
    /* an SSL TLV whose sub-TLVs do not fill it */
    memcpy(body + 12, (uint8_t[]){ PP2_TYPE_SSL, 0, 7, 1, 0, 0, 0, 0, 0x21, 0 }, 10);
    assert_int_equal(parse_all_splits(buf, v2(buf, 0x21, 0x11, body, 22), &h), PROXYPROTO_ERR_V2_TLV);
    /* too long for ferry: decided from the fixed part alone */
    memset(buf + 16, 0, sizeof buf - 16);
    size_t n = v2(buf, 0x21, 0x11, buf + 16, PROXYPROTO_MAX_HEADER - 15);
    assert_int_equal(proxyproto_parse(buf, 16, &h), PROXYPROTO_ERR_V2_TOO_LONG);
    assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_ERR_V2_TOO_LONG);
}

static void test_v2_largest_header_is_accepted(void **state)
{
    static uint8_t buf[PROXYPROTO_MAX_HEADER];
    uint8_t body[PROXYPROTO_MAX_HEADER - 16];
    struct proxyproto_header h;
    size_t noop = sizeof body - 12 - 3;
    memcpy(body, TCP4_BLOCK, 12);
    body[12] = PP2_TYPE_NOOP, body[13] = (uint8_t)(noop >> 8), body[14] = (uint8_t)noop;
    memset(body + 15, 0xaa, noop);
    size_t n = v2(buf, 0x21, 0x11, body, sizeof body);
    assert_int_equal(n, PROXYPROTO_MAX_HEADER);
    assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_MAX_HEADER);
}

static void test_signature_prefixes_wait_for_more(void **state)
{
    struct proxyproto_header h;
    assert_int_equal(proxyproto_parse((const uint8_t *)"", 0, &h), PROXYPROTO_INCOMPLETE);
    assert_int_equal(proxyproto_parse((const uint8_t *)"PROX", 4, &h), PROXYPROTO_INCOMPLETE);
    assert_int_equal(proxyproto_parse(SIG, 7, &h), PROXYPROTO_INCOMPLETE);
    assert_int_equal(proxyproto_parse((const uint8_t *)"\r\n\r\nX", 5, &h), PROXYPROTO_ERR_NOT_PROXY);
    assert_int_equal(proxyproto_parse((const uint8_t *)"\x16\x03\x01", 3, &h),
                     PROXYPROTO_ERR_NOT_PROXY);
    assert_string_equal(proxyproto_error_str(PROXYPROTO_ERR_V1_PORT), "bad v1 port");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_longest_line_is_accepted),
        cmocka_unit_test(test_v1_unknown_is_local),
        cmocka_unit_test(test_v1_violations),
        cmocka_unit_test(test_v1_without_crlf_within_107_bytes_is_too_long),
        cmocka_unit_test(test_v2_tcp4),
        cmocka_unit_test(test_v2_tcp6_with_tlvs),
        cmocka_unit_test(test_v2_local_ignores_its_block),
        cmocka_unit_test(test_v2_unspec_and_unix_use_the_socket),
        cmocka_unit_test(test_v2_crc32c),
        cmocka_unit_test(test_v2_violations),
        cmocka_unit_test(test_v2_largest_header_is_accepted),
        cmocka_unit_test(test_signature_prefixes_wait_for_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

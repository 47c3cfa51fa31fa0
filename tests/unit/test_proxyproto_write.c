/* test_proxyproto_write — the headers ferry sends: byte-exact v1 lines and v2 blocks,
 * mixed families mapped to IPv6, TLS TLVs, and every header read back by the parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "proxyproto/proxyproto.h"

static struct sockaddr_storage sa(const char *ip, unsigned port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    }
    return ss;
}

static size_t write_header(uint8_t *buf, int version, const char *src, unsigned sport,
                           const char *dst, unsigned dport, const struct proxyproto_tls *tls)
{
    struct sockaddr_storage s = sa(src, sport), d = sa(dst, dport);
    return proxyproto_write(buf, PROXYPROTO_WRITE_MAX, version, (struct sockaddr *)&s,
                            (struct sockaddr *)&d, tls);
}

static void test_v1_lines(void **state)
{
    uint8_t buf[PROXYPROTO_WRITE_MAX];
    size_t n = write_header(buf, 1, "192.0.2.1", 56324, "10.0.0.1", 443, NULL);
    assert_int_equal(n, strlen("PROXY TCP4 192.0.2.1 10.0.0.1 56324 443\r\n"));
    assert_memory_equal(buf, "PROXY TCP4 192.0.2.1 10.0.0.1 56324 443\r\n", n);
    n = write_header(buf, 1, "2001:db8::7", 1, "::1", 65535, NULL);
    assert_memory_equal(buf, "PROXY TCP6 2001:db8::7 ::1 1 65535\r\n", n);
}

static void test_mixed_families_are_written_as_ipv6(void **state)
{
    uint8_t buf[PROXYPROTO_WRITE_MAX];
    size_t n = write_header(buf, 1, "192.0.2.1", 5, "::1", 6, NULL);
    assert_memory_equal(buf, "PROXY TCP6 ::ffff:192.0.2.1 ::1 5 6\r\n", n);
    n = write_header(buf, 2, "::1", 5, "192.0.2.9", 6, NULL);
    struct proxyproto_header h;
    assert_int_equal(proxyproto_parse(buf, n, &h), (int)n);
    assert_int_equal(buf[13], 0x21);
    assert_int_equal(h.dst.ss_family, AF_INET6);
}

static void test_v2_tcp4_bytes(void **state)
{
    uint8_t buf[PROXYPROTO_WRITE_MAX];
    static const uint8_t want[28] = {
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
        0x21, 0x11, 0x00, 0x0c, 192, 0, 2, 1, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb };
    size_t n = write_header(buf, 2, "192.0.2.1", 56324, "10.0.0.1", 443, NULL);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
}

static void test_v2_tls_tlvs_read_back(void **state)
{
    uint8_t buf[PROXYPROTO_WRITE_MAX];
    struct proxyproto_tls tls = { .sni = "api.example.com", .alpn = (const uint8_t *)"h2",
                                  .alpn_len = 2, .version = "TLSv1.3" };
    size_t n = write_header(buf, 2, "2001:db8::1", 40000, "2001:db8::2", 443, &tls);
    struct proxyproto_header h;
    assert_int_equal(proxyproto_parse(buf, n, &h), (int)n);
    size_t len;
    const uint8_t *v = proxyproto_tlv(&h, PP2_TYPE_AUTHORITY, &len);
    assert_int_equal(len, strlen("api.example.com"));
    assert_memory_equal(v, "api.example.com", len);
    v = proxyproto_tlv(&h, PP2_TYPE_ALPN, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(v, "h2", 2);
    v = proxyproto_tlv(&h, PP2_TYPE_SSL, &len);
    assert_int_equal(len, 5 + 3 + 7);
    assert_int_equal(v[0], PP2_CLIENT_SSL);
    assert_int_equal(v[5], PP2_SUBTYPE_SSL_VERSION);
    assert_memory_equal(v + 8, "TLSv1.3", 7);
}

static void test_v2_without_sni_or_alpn(void **state)
{
    uint8_t buf[PROXYPROTO_WRITE_MAX];
    struct proxyproto_tls tls = { .version = "TLSv1.2" };
    size_t n = write_header(buf, 2, "127.0.0.1", 1, "127.0.0.2", 2, &tls);
    struct proxyproto_header h;
    size_t len;
    assert_int_equal(proxyproto_parse(buf, n, &h), (int)n);
    assert_null(proxyproto_tlv(&h, PP2_TYPE_AUTHORITY, &len));
    assert_null(proxyproto_tlv(&h, PP2_TYPE_ALPN, &len));
    assert_non_null(proxyproto_tlv(&h, PP2_TYPE_SSL, &len));
}

static void test_unknown_families(void **state)
{
    uint8_t buf[PROXYPROTO_WRITE_MAX];
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    struct sockaddr_storage d = sa("127.0.0.1", 80);
    size_t n = proxyproto_write(buf, sizeof buf, 1, (struct sockaddr *)&un, (struct sockaddr *)&d, NULL);
    assert_memory_equal(buf, "PROXY UNKNOWN\r\n", n);
    n = proxyproto_write(buf, sizeof buf, 2, (struct sockaddr *)&un, (struct sockaddr *)&d, NULL);
    struct proxyproto_header h;
    assert_int_equal(proxyproto_parse(buf, n, &h), 16);
    assert_true(h.is_local);
}

static void test_too_small_buffers_write_nothing(void **state)
{
    uint8_t buf[PROXYPROTO_WRITE_MAX];
    struct sockaddr_storage s = sa("192.0.2.1", 1), d = sa("10.0.0.1", 2);
    assert_int_equal(proxyproto_write(buf, 20, 1, (struct sockaddr *)&s, (struct sockaddr *)&d, NULL), 0);
    assert_int_equal(proxyproto_write(buf, 27, 2, (struct sockaddr *)&s, (struct sockaddr *)&d, NULL), 0);
    assert_int_equal(proxyproto_write(buf, 28, 2, (struct sockaddr *)&s, (struct sockaddr *)&d, NULL), 28);
    char long_name[300];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    struct proxyproto_tls tls = { .sni = long_name };
    assert_int_equal(proxyproto_write(buf, sizeof buf, 2, (struct sockaddr *)&s,
                                      (struct sockaddr *)&d, &tls), 0);
}

static void test_local_headers(void **state)
{
    uint8_t buf[PROXYPROTO_WRITE_MAX];
    struct proxyproto_header h;
    size_t n = proxyproto_write_local(buf, sizeof buf, 1);
    assert_memory_equal(buf, "PROXY UNKNOWN\r\n", n);
    assert_int_equal(proxyproto_parse(buf, n, &h), (int)n);
    assert_true(h.is_local);
    n = proxyproto_write_local(buf, sizeof buf, 2);
    assert_int_equal(n, 16);
    assert_int_equal(buf[12], 0x20);
    assert_int_equal(proxyproto_parse(buf, n, &h), 16);
    assert_true(h.is_local);
    assert_int_equal(proxyproto_write_local(buf, 15, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_lines),
        cmocka_unit_test(test_mixed_families_are_written_as_ipv6),
        cmocka_unit_test(test_v2_tcp4_bytes),
        cmocka_unit_test(test_v2_tls_tlvs_read_back),
        cmocka_unit_test(test_v2_without_sni_or_alpn),
        cmocka_unit_test(test_unknown_families),
        cmocka_unit_test(test_too_small_buffers_write_nothing),
        cmocka_unit_test(test_local_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

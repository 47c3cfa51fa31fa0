/* test_discovery_wire — SRV queries and answers (proxy/discovery/wire.c): the
 * query's bytes, a real answer (dnsmasq's, compressed), rcodes, answers to other questions, and every
 * kind of malformed answer, at every truncation length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "discovery/wire.h"

#define NAME "_http._tcp.api.test"

/* A growing message. */
struct msg {
    uint8_t b[4096];
    size_t n;
};

static void put(struct msg *m, const void *bytes, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    memcpy(m->b + m->n, bytes, n);
    m->n += n;
}

static void put16(struct msg *m, unsigned v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    put(m, b, 2);
}

static void put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

static void put_name(struct msg *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        uint8_t l = (uint8_t)len;
        put(m, &l, 1);
        put(m, name, len);
        name += len + (dot ? 1 : 0);
    }
    put(m, "", 1);
}

/* Header and our question; the caller adds `answers` records. */
static void begin(struct msg *m, uint16_t id, unsigned flags, unsigned answers)
{
    m->n = 0;
    put16(m, id);
    put16(m, flags);
    put16(m, 1);
    put16(m, answers);
    put16(m, 0);
    put16(m, 0);
    put_name(m, NAME);
    put16(m, 33);
    put16(m, 1);
}

/* An SRV record owned by the question's name (a pointer to offset 12). */
static void add_srv(struct msg *m, uint32_t ttl, unsigned prio, unsigned weight, unsigned port,
                    const char *target)
{
    struct msg rdata = { .n = 0 };
    put16(&rdata, prio);
    put16(&rdata, weight);
    put16(&rdata, port);
    put_name(&rdata, target);
    put16(m, 0xc00c);
    put16(m, 33);
    put16(m, 1);
    put32(m, ttl);
    put16(m, (unsigned)rdata.n);
    put(m, rdata.b, rdata.n);
}

static void test_query_bytes(void **state)
{
    uint8_t out[512];
    int n = dns_wire_srv_query(0xbeef, NAME ".", out, sizeof out);
    static const uint8_t expected[] = {
        0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
        5, '_', 'h', 't', 't', 'p', 4, '_', 't', 'c', 'p', 3, 'a', 'p', 'i', 4, 't', 'e', 's', 't', 0,
        0, 33, 0, 1,
        0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0,
    };
    assert_int_equal(n, sizeof expected);
    assert_memory_equal(out, expected, sizeof expected);
    assert_int_equal(dns_wire_srv_query(1, NAME, out, 20), -1);
    assert_int_equal(dns_wire_srv_query(1, "a..b", out, sizeof out), -1);
    assert_int_equal(dns_wire_srv_query(1, "", out, sizeof out), -1);
}

static void test_reads_records_and_least_ttl(void **state)
{
    struct msg m;
    struct dns_srv_answer a;
    begin(&m, 7, 0x8180, 3);
    add_srv(&m, 30, 0, 1, 9001, "t1.test");
    add_srv(&m, 5, 0, 3, 9002, "T2.Test");
    add_srv(&m, 60, 1, 5, 9003, "t3.test");
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 7, "_HTTP._tcp.api.test.", &a), DNS_WIRE_ANSWER);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.ttl, 5);
    assert_int_equal(a.records[1].weight, 3);
    assert_int_equal(a.records[1].port, 9002);
    assert_string_equal(a.records[1].target, "T2.Test");
    assert_int_equal(a.records[2].priority, 1);
}

/* What dnsmasq 2.90 answered to the query for NAME (id 0x1234) with two srv-host
 * lines: two SRV records (targets written out), the targets' A records in the
 * additional section (owners compressed against the targets), and its OPT record. */
static const uint8_t DNSMASQ_ANSWER[] = {
    0x12, 0x34, 0x85, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03,
    0x05, 0x5f, 0x68, 0x74, 0x74, 0x70, 0x04, 0x5f, 0x74, 0x63, 0x70, 0x03,
    0x61, 0x70, 0x69, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x21, 0x00,
    0x01, 0xc0, 0x0c, 0x00, 0x21, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x13, 0x00, 0x00, 0x00, 0x03, 0x23, 0x2a, 0x02, 0x74, 0x32, 0x03, 0x61,
    0x70, 0x69, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0xc0, 0x0c, 0x00, 0x21,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x13, 0x00, 0x00, 0x00, 0x01,
    0x23, 0x29, 0x02, 0x74, 0x31, 0x03, 0x61, 0x70, 0x69, 0x04, 0x74, 0x65,
    0x73, 0x74, 0x00, 0xc0, 0x56, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x04, 0x7f, 0x00, 0x00, 0x01, 0xc0, 0x37, 0x00, 0x01, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x04, 0x7f, 0x00, 0x00, 0x01, 0x00,
    0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static void test_reads_dnsmasqs_answer(void **state)
{
    struct dns_srv_answer a;
    assert_int_equal(dns_wire_srv_parse(DNSMASQ_ANSWER, sizeof DNSMASQ_ANSWER, 0x1234, NAME, &a),
                     DNS_WIRE_ANSWER);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.records[0].target, "t2.api.test");
    assert_int_equal(a.records[0].port, 9002);
    assert_int_equal(a.records[0].weight, 3);
    assert_string_equal(a.records[1].target, "t1.api.test");
    assert_int_equal(a.records[1].port, 9001);
    assert_int_equal(a.ttl, 1);
}

static void test_reads_a_compressed_target(void **state)
{
    struct msg m;
    struct dns_srv_answer a;
    begin(&m, 3, 0x8180, 1);
    /* Target "t9." + a pointer to "api.test" inside the question (offset 12 + 11). */
    static const uint8_t rr[] = { 0xc0, 0x0c, 0, 33, 0, 1, 0, 0, 0, 60, 0, 11,
                                  0, 2, 0, 4, 0x1f, 0x90, 2, 't', '9', 0xc0, 23 };
    put(&m, rr, sizeof rr);
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 3, NAME, &a), DNS_WIRE_ANSWER);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.records[0].target, "t9.api.test");
    assert_int_equal(a.records[0].port, 8080);
    assert_int_equal(a.records[0].priority, 2);
    assert_int_equal(a.ttl, 60);
}

static void test_every_truncation_is_refused(void **state)
{
    struct dns_srv_answer a;
    /* Up to the end of the answer section (the additional records are not read). */
    for (size_t len = 0; len < 99; len++) {
        enum dns_wire_status s = dns_wire_srv_parse(DNSMASQ_ANSWER, len, 0x1234, NAME, &a);
        /* Cut in the header or question: not an answer to us; later: malformed. Never
         * an answer with records read past the end. */
        assert_true(s == DNS_WIRE_MALFORMED || s == DNS_WIRE_NOT_OURS);
    }
}

static void test_rcodes_and_flags(void **state)
{
    struct msg m;
    struct dns_srv_answer a;
    static const struct {
        unsigned flags;
        enum dns_wire_status status;
    } cases[] = {
        { 0x8183, DNS_WIRE_NXDOMAIN }, { 0x8182, DNS_WIRE_SERVFAIL },
        { 0x8185, DNS_WIRE_REFUSED }, { 0x8181, DNS_WIRE_OTHER_RCODE },
        { 0x8380, DNS_WIRE_TRUNCATED }, { 0x0180, DNS_WIRE_NOT_OURS },  /* a query */
        { 0x8980, DNS_WIRE_NOT_OURS },                                  /* opcode 1 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        begin(&m, 9, cases[i].flags, 0);
        assert_int_equal(dns_wire_srv_parse(m.b, m.n, 9, NAME, &a), cases[i].status);
    }
    begin(&m, 9, 0x8180, 0);
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 9, NAME, &a), DNS_WIRE_ANSWER);
    assert_int_equal(a.n, 0);       /* NODATA */
}

static void test_answers_to_other_questions_are_not_ours(void **state)
{
    struct msg m;
    struct dns_srv_answer a;
    begin(&m, 9, 0x8180, 1);
    add_srv(&m, 30, 0, 1, 80, "t.test");
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 10, NAME, &a), DNS_WIRE_NOT_OURS);
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 9, "_http._tcp.other.test", &a),
                     DNS_WIRE_NOT_OURS);
    begin(&m, 9, 0x8180, 0);
    m.b[m.n - 3] = 1;   /* QTYPE A */
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 9, NAME, &a), DNS_WIRE_NOT_OURS);
}

static void test_malformed_answers(void **state)
{
    struct msg m;
    struct dns_srv_answer a;
    /* A compression loop in the target. */
    begin(&m, 9, 0x8180, 1);
    size_t rr = m.n;
    add_srv(&m, 30, 0, 1, 80, "x");
    size_t target = rr + 12 + 6;
    m.b[target] = 0xc0;
    m.b[target + 1] = (uint8_t)target;
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 9, NAME, &a), DNS_WIRE_MALFORMED);
    /* An rdlength past the end. */
    begin(&m, 9, 0x8180, 1);
    add_srv(&m, 30, 0, 1, 80, "t.test");
    m.b[rr + 11] = 200;
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 9, NAME, &a), DNS_WIRE_MALFORMED);
    /* A target that runs past its record. */
    begin(&m, 9, 0x8180, 1);
    add_srv(&m, 30, 0, 1, 80, "t.test");
    m.b[rr + 11] -= 2;
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 9, NAME, &a), DNS_WIRE_MALFORMED);
    /* A label with a dot or a control byte in it. */
    begin(&m, 9, 0x8180, 1);
    add_srv(&m, 30, 0, 1, 80, "t.test");
    m.b[target + 1] = '.';
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 9, NAME, &a), DNS_WIRE_MALFORMED);
    /* More answers announced than present. */
    begin(&m, 9, 0x8180, 2);
    add_srv(&m, 30, 0, 1, 80, "t.test");
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 9, NAME, &a), DNS_WIRE_MALFORMED);
}

static void test_too_many_records(void **state)
{
    struct msg m;
    struct dns_srv_answer a;
    begin(&m, 9, 0x8180, DNS_WIRE_SRV_MAX + 1);
    for (unsigned i = 0; i <= DNS_WIRE_SRV_MAX; i++)
        add_srv(&m, 30, 0, 1, 1000 + i, "t");
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 9, NAME, &a), DNS_WIRE_TOO_MANY);
}

static void test_ttl_with_the_top_bit_is_zero(void **state)
{
    struct msg m;
    struct dns_srv_answer a;
    begin(&m, 9, 0x8180, 2);
    add_srv(&m, 0x80000000u, 0, 1, 80, "a.test");
    add_srv(&m, 30, 0, 1, 81, "b.test");
    assert_int_equal(dns_wire_srv_parse(m.b, m.n, 9, NAME, &a), DNS_WIRE_ANSWER);
    assert_int_equal(a.ttl, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_bytes),
        cmocka_unit_test(test_reads_records_and_least_ttl),
        cmocka_unit_test(test_reads_dnsmasqs_answer),
        cmocka_unit_test(test_reads_a_compressed_target),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_rcodes_and_flags),
        cmocka_unit_test(test_answers_to_other_questions_are_not_ours),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_too_many_records),
        cmocka_unit_test(test_ttl_with_the_top_bit_is_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

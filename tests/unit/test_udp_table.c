/* test_udp_table — the flow table of a udp server (proxy/udp/table.c): flows found by
 * their exact client address and port (IPv4 and IPv6), kept through growth, removed
 * alone, and a hash that depends on the server's seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "udp/internal.h"

enum { N = 3000 };      /* several doublings of the first 256 buckets */

static union session_sockaddr client(unsigned i)
{
    union session_sockaddr a;
    memset(&a, 0, sizeof a);
    if (i % 2) {
        a.in6.sin6_family = AF_INET6;
        a.in6.sin6_addr.s6_addr[0] = 0x20;
        a.in6.sin6_addr.s6_addr[15] = (uint8_t)(i / 512);
        a.in6.sin6_port = htons((uint16_t)(1000 + i % 512));
    } else {
        a.in.sin_family = AF_INET;
        a.in.sin_addr.s_addr = htonl(0x7f000001u + i / 1024);
        a.in.sin_port = htons((uint16_t)(2000 + i % 1024));
    }
    return a;
}

static struct udp_flow *add(struct udp_server *srv, struct udp_flow *f, unsigned i)
{
    f->client = client(i);
    f->hash = udp_table_hash(srv, &f->client);
    udp_table_insert(srv, f);
    return f;
}

static void test_flows_are_found_by_exact_address_through_growth(void **state)
{
    struct udp_server srv;
    memset(&srv, 0, sizeof srv);
    assert_int_equal(udp_table_init(&srv), 0);
    struct udp_flow *flows = calloc(N, sizeof *flows);
    assert_non_null(flows);
    for (unsigned i = 0; i < N; i++)
        add(&srv, &flows[i], i);
    assert_int_equal(srv.n_flows, N);
    assert_true(srv.n_buckets >= N);
    for (unsigned i = 0; i < N; i++) {
        union session_sockaddr a = client(i);
        assert_ptr_equal(udp_table_find(&srv, &a, udp_table_hash(&srv, &a)), &flows[i]);
    }
    union session_sockaddr other = client(4);
    other.in.sin_port = htons(9);   /* same address, another port: another client */
    assert_null(udp_table_find(&srv, &other, udp_table_hash(&srv, &other)));
    for (unsigned i = 0; i < N; i += 3)
        udp_table_remove(&srv, &flows[i]);
    for (unsigned i = 0; i < N; i++) {
        union session_sockaddr a = client(i);
        struct udp_flow *f = udp_table_find(&srv, &a, udp_table_hash(&srv, &a));
        assert_ptr_equal(f, i % 3 == 0 ? NULL : &flows[i]);
    }
    assert_int_equal(srv.n_flows, N - (N + 2) / 3);
    udp_table_free(&srv);
    free(flows);
}

static void test_hash_depends_on_the_seed(void **state)
{
    struct udp_server a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.seed = 1;
    b.seed = 2;
    union session_sockaddr c = client(10);
    assert_int_not_equal(udp_table_hash(&a, &c), udp_table_hash(&b, &c));
    assert_int_equal(udp_table_hash(&a, &c), udp_table_hash(&a, &c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flows_are_found_by_exact_address_through_growth),
        cmocka_unit_test(test_hash_depends_on_the_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

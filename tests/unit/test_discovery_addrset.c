/* test_discovery_addrset — address sets of DNS answers (proxy/discovery/addrset.c):
 * order does not matter, duplicates merge, diffs and their text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "discovery/addrset.h"

/* Adds "a.b.c.d" or a v6 address with a port. */
static void add_found(struct dns_set *s, const char *host, unsigned port, unsigned weight,
                      bool backup)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (strchr(host, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, host, &in6->sin6_addr), 1);
        len = sizeof *in6;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, host, &in->sin_addr), 1);
        len = sizeof *in;
    }
    assert_int_equal(dns_set_add(s, (struct sockaddr *)&ss, len, weight, backup), 0);
}

static void add(struct dns_set *s, const char *host, unsigned port, unsigned weight)
{
    add_found(s, host, port, weight, false);
}

static const char *text_of(const struct dns_set *s, size_t i)
{
    static char buf[DNS_ADDR_TEXT_MAX];
    dns_found_text(&s->items[i], buf, sizeof buf);
    return buf;
}

static void test_order_of_the_answer_does_not_matter(void **state)
{
    struct dns_set a = { 0 }, b = { 0 };
    add(&a, "10.0.0.2", 80, 0);
    add(&a, "10.0.0.1", 80, 0);
    add(&a, "::1", 80, 0);
    add(&b, "::1", 80, 0);
    add(&b, "10.0.0.1", 80, 0);
    add(&b, "10.0.0.2", 80, 0);
    dns_set_normalize(&a);
    dns_set_normalize(&b);
    assert_true(dns_set_equal(&a, &b));
    assert_string_equal(text_of(&a, 0), "10.0.0.1:80");
    assert_string_equal(text_of(&a, 1), "10.0.0.2:80");
    assert_string_equal(text_of(&a, 2), "[::1]:80");
    dns_set_clear(&a);
    dns_set_clear(&b);
}

static void test_ports_and_weights_make_a_difference(void **state)
{
    struct dns_set a = { 0 }, b = { 0 }, c = { 0 };
    add(&a, "10.0.0.1", 80, 1);
    add(&b, "10.0.0.1", 81, 1);
    add(&c, "10.0.0.1", 80, 3);
    assert_false(dns_set_equal(&a, &b));
    assert_false(dns_set_equal(&a, &c));
    /* By address, a weight change is no added or removed address (the log says
     * "weights" for such a change). */
    char buf[64];
    dns_set_describe_change(&a, &c, buf, sizeof buf);
    assert_string_equal(buf, "");
    dns_set_clear(&a);
    dns_set_clear(&b);
    dns_set_clear(&c);
}

/* Records naming one address: the serving one wins over a backup, then the heavier,
 * in every order the answers can arrive in. */
static void test_repeated_addresses_merge_the_same_in_any_order(void **state)
{
    static const struct {
        unsigned weight;
        bool backup;
    } records[] = { { 9, true }, { 5, false }, { 7, false }, { 2, false } };
    static const int orders[][4] = { { 0, 1, 2, 3 }, { 3, 2, 1, 0 }, { 2, 0, 3, 1 },
                                     { 1, 3, 0, 2 } };
    for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
        struct dns_set s = { 0 };
        add(&s, "10.0.0.1", 80, 1);
        for (size_t i = 0; i < 4; i++)
            add_found(&s, "10.0.0.9", 80, records[orders[o][i]].weight,
                      records[orders[o][i]].backup);
        dns_set_normalize(&s);
        assert_int_equal(s.n, 2);
        assert_string_equal(text_of(&s, 1), "10.0.0.9:80");
        assert_int_equal(s.items[1].weight, 7);
        assert_false(s.items[1].backup);
        dns_set_clear(&s);
    }
}

static void test_the_change_is_described(void **state)
{
    struct dns_set old = { 0 }, now = { 0 }, empty = { 0 };
    add(&old, "127.0.0.1", 9000, 0);
    add(&old, "127.0.0.2", 9000, 0);
    add(&now, "127.0.0.3", 9000, 0);
    add(&now, "127.0.0.1", 9000, 0);
    dns_set_normalize(&old);
    dns_set_normalize(&now);
    char buf[128];
    dns_set_describe_change(&old, &now, buf, sizeof buf);
    assert_string_equal(buf, "-127.0.0.2:9000 +127.0.0.3:9000");
    dns_set_describe_change(&empty, &now, buf, sizeof buf);
    assert_string_equal(buf, "+127.0.0.1:9000 +127.0.0.3:9000");
    /* Too small a buffer: cut, still a string. */
    dns_set_describe_change(&empty, &now, buf, 10);
    assert_int_equal(strlen(buf), 9);
    dns_set_describe_change(&now, &empty, buf, sizeof buf);
    assert_string_equal(buf, "-127.0.0.1:9000 -127.0.0.3:9000");
    dns_set_clear(&old);
    dns_set_clear(&now);
}

static void test_move_hands_over_the_items(void **state)
{
    struct dns_set a = { 0 }, b = { 0 };
    add(&a, "10.0.0.1", 1, 0);
    add(&b, "10.0.0.2", 2, 0);
    add(&b, "10.0.0.3", 3, 0);
    dns_set_move(&a, &b);
    assert_int_equal(a.n, 2);
    assert_int_equal(b.n, 0);
    assert_null(b.items);
    assert_string_equal(text_of(&a, 0), "10.0.0.2:2");
    dns_set_clear(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_of_the_answer_does_not_matter),
        cmocka_unit_test(test_ports_and_weights_make_a_difference),
        cmocka_unit_test(test_repeated_addresses_merge_the_same_in_any_order),
        cmocka_unit_test(test_the_change_is_described),
        cmocka_unit_test(test_move_hands_over_the_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

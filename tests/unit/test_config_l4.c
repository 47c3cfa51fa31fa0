/* test_config_l4 — udp listeners and the PROXY protocol keys (config/l4.c): defaults,
 * accepted values, every rejected combination with its path, and CIDR matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "test_config_util.h"

#define POOL "'pools':{'p':{'backends':[{'address':'127.0.0.1:53'}]}}"
#define UDP(x) "{'listeners':{'dns':{'listen':'127.0.0.1:5353','mode':'udp','pool':'p'" x "}}," POOL "}"
#define TCP(x) "{'listeners':{'t':{'listen':'127.0.0.1:2525','mode':'tcp','pool':'p'" x "}}," POOL "}"
#define WITH_POOL(x) "{'listeners':{'t':{'listen':'127.0.0.1:2525','mode':'tcp','pool':'p'}}," \
                     "'pools':{'p':{'backends':[{'address':'127.0.0.1:25'}]" x "}}}"
#define UDP_POOL(x) "{'listeners':{'dns':{'listen':'127.0.0.1:5353','mode':'udp','pool':'p'}}," \
                    "'pools':{'p':{'backends':[{'address':'127.0.0.1:53'}]" x "}}}"

static void test_udp_listener_defaults(void **state)
{
    struct config *cfg = parse_ok(UDP(""));
    const struct cfg_listener *l = &cfg->listeners[0];
    assert_int_equal(l->mode, MODE_UDP);
    assert_string_equal(config_mode_name(l->mode), "udp");
    assert_int_equal(l->udp.idle_ms, 30000);
    assert_int_equal(l->udp.responses, 0);
    assert_int_equal(l->udp.max_flows, 65536);
    assert_false(l->proxy_protocol);
    config_free(cfg);
}

static void test_udp_settings_are_read(void **state)
{
    struct config *cfg = parse_ok(UDP(",'udp':{'idle_ms':500,'responses':1,'max_flows':10}"));
    const struct cfg_udp *u = &cfg->listeners[0].udp;
    assert_int_equal(u->idle_ms, 500);
    assert_int_equal(u->responses, 1);
    assert_int_equal(u->max_flows, 10);
    config_free(cfg);
}

static void test_udp_and_tcp_listeners_may_share_an_address(void **state)
{
    struct config *cfg = parse_ok(
        "{'listeners':{'u':{'listen':'127.0.0.1:53','mode':'udp','pool':'p'},"
        "'t':{'listen':'127.0.0.1:53','mode':'tcp','pool':'p'}}," POOL "}");
    assert_int_equal(cfg->n_listeners, 2);
    config_free(cfg);
}

static void test_udp_pool_with_tcp_health_check_is_fine(void **state)
{
    struct config *cfg = parse_ok(UDP_POOL(",'health_check':{'type':'tcp'}"));
    assert_int_equal(cfg->pools[0].health_check.type, HEALTH_CHECK_TCP);
    config_free(cfg);
}

static void test_rejects_two_udp_listeners_on_one_address(void **state)
{
    parse_bad("{'listeners':{'u':{'listen':'127.0.0.1:53','mode':'udp','pool':'p'},"
              "'v':{'listen':'127.0.0.1:53','mode':'udp','pool':'p'}}," POOL "}",
              "listeners.v.listen", "already used by listener \"u\"");
}

static void test_rejects_bad_udp_values(void **state)
{
    parse_bad(UDP(",'udp':{'idle_ms':0}"), "listeners.dns.udp.idle_ms", "0 is out of range");
    parse_bad(UDP(",'udp':{'max_flows':0}"), "listeners.dns.udp.max_flows", "0 is out of range");
    parse_bad(UDP(",'udp':{'responses':-1}"), "listeners.dns.udp.responses", "out of range");
    parse_bad(UDP(",'udp':{'idle_m':5}"), "listeners.dns.udp.idle_m", "did you mean \"idle_ms\"");
    parse_bad(UDP(",'udp':5"), "listeners.dns.udp", "expected an object");
}

static void test_rejects_udp_key_on_other_modes(void **state)
{
    parse_bad(TCP(",'udp':{'idle_ms':5}"), "listeners.t.udp", "only allowed on udp listeners");
}

static void test_rejects_what_udp_listeners_cannot_do(void **state)
{
    parse_bad(UDP(",'tls':{'certificates':[{'cert':'c','key':'k'}]}"), "listeners.dns.tls",
              "cannot terminate TLS");
    parse_bad(UDP(",'proxy_protocol':true"), "listeners.dns.proxy_protocol",
              "only allowed on tcp and http listeners");
    parse_bad("{'listeners':{'dns':{'listen':'127.0.0.1:53','mode':'udp','routes':[{'pool':'p'}]}},"
              POOL "}", "listeners.dns.routes", "take one \"pool\"");
    parse_bad(UDP(",'http2':{}"), "listeners.dns.http2", "only allowed on http listeners");
}

static void test_rejects_pools_a_udp_listener_cannot_use(void **state)
{
    parse_bad(UDP_POOL(",'health_check':{'type':'http'}"), "listeners.dns.pool",
              "http health check");
    parse_bad(UDP_POOL(",'tls':{}"), "listeners.dns.pool", "no DTLS");
    parse_bad(UDP_POOL(",'proxy_protocol':'v2'"), "listeners.dns.pool",
              "sends the PROXY protocol");
}

/* A flow picks its backend like a connection does: every algorithm, backups, slow
 * start, passive ejection, and hashing its client's address. */
static void test_udp_pool_balances_every_way(void **state)
{
    static const char *const pools[] = {
        "'backends':[{'address':'127.0.0.1:53'}],'balance':'least_conn'",
        "'backends':[{'address':'127.0.0.1:53'}],'balance':'random_two'",
        "'backends':[{'address':'127.0.0.1:53'}],'balance':'hash','hash_key':'source_ip'",
        ("'backends':[{'address':'127.0.0.1:53'},{'address':'127.0.0.1:54','backup':true,"
         "'drain':true}],'slow_start_ms':1000,'passive':{'failures':1,'eject_ms':500}"),
    };
    for (size_t i = 0; i < sizeof pools / sizeof *pools; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{'listeners':{'dns':{'listen':'127.0.0.1:5353','mode':'udp','pool':'p'}},"
                 "'pools':{'p':{%s}}}", pools[i]);
        config_free(parse_ok(text));
    }
}

/* A datagram has no header, cookie, path or server name to hash, and no cookie to
 * stick by. */
static void test_rejects_hash_keys_and_sticky_a_udp_listener_cannot_give(void **state)
{
    static const char *const keys[] = { "header:X-User", "cookie:id", "uri", "sni" };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char text[512];
        snprintf(text, sizeof text, UDP_POOL(",'balance':'hash','hash_key':'%s'"), keys[i]);
        parse_bad(text, "pools.p.hash_key",
                  "can hash \"source_ip\" only; listener \"dns\" (udp) uses this pool");
    }
    parse_bad(UDP_POOL(",'sticky':{'cookie':'s'}"), "pools.p.sticky",
              "cookies need an http listener; listener \"dns\" (udp)");
}

static void test_proxy_protocol_keys(void **state)
{
    struct config *cfg = parse_ok(
        "{'listeners':{'t':{'listen':'127.0.0.1:2525','mode':'tcp','pool':'p',"
        "'proxy_protocol':true,'proxy_protocol_from':['10.0.0.0/8','::1','192.168.1.7/32']}},"
        "'pools':{'p':{'backends':[{'address':'127.0.0.1:25'}],'proxy_protocol':'v2'},"
        "'q':{'backends':[{'address':'127.0.0.1:26'}],'proxy_protocol':'v1'},"
        "'r':{'backends':[{'address':'127.0.0.1:27'}]}}}");
    const struct cfg_listener *l = &cfg->listeners[0];
    assert_true(l->proxy_protocol);
    assert_int_equal(l->n_proxy_protocol_from, 3);
    assert_int_equal(l->proxy_protocol_from[0].family, AF_INET);
    assert_int_equal(l->proxy_protocol_from[0].prefix, 8);
    assert_int_equal(l->proxy_protocol_from[1].family, AF_INET6);
    assert_int_equal(l->proxy_protocol_from[1].prefix, 128);
    assert_int_equal(cfg->pools[config_pool_index(cfg, "p")].proxy_protocol, PROXY_PROTOCOL_V2);
    assert_int_equal(cfg->pools[config_pool_index(cfg, "q")].proxy_protocol, PROXY_PROTOCOL_V1);
    assert_int_equal(cfg->pools[config_pool_index(cfg, "r")].proxy_protocol, PROXY_PROTOCOL_OFF);
    config_free(cfg);
}

static void test_rejects_bad_proxy_protocol_values(void **state)
{
    parse_bad(TCP(",'proxy_protocol':'v1'"), "listeners.t.proxy_protocol", "expected true or false");
    parse_bad(WITH_POOL(",'proxy_protocol':'v3'"), "pools.p.proxy_protocol",
              "\"v3\" is not one of \"v1\", \"v2\"");
    parse_bad(WITH_POOL(",'proxy_protocol':true"), "pools.p.proxy_protocol", "expected a string");
    parse_bad(TCP(",'proxy_protocol_from':['10.0.0.0/8']"), "listeners.t.proxy_protocol_from",
              "needs \"proxy_protocol\": true");
    parse_bad(TCP(",'proxy_protocol':true,'proxy_protocol_from':[]"),
              "listeners.t.proxy_protocol_from", "at least 1 entry");
}

static void test_rejects_bad_cidr_blocks(void **state)
{
#define FROM(x) TCP(",'proxy_protocol':true,'proxy_protocol_from':[" x "]")
    parse_bad(FROM("'10.0.0.1/8'"), "listeners.t.proxy_protocol_from[0]", "host bits are set");
    parse_bad(FROM("'10.0.0.0/33'"), "listeners.t.proxy_protocol_from[0]", "not 0..32");
    parse_bad(FROM("'::/129'"), "listeners.t.proxy_protocol_from[0]", "not 0..128");
    parse_bad(FROM("'10.0.0.0/08'"), "listeners.t.proxy_protocol_from[0]", "not 0..32");
    parse_bad(FROM("'10.0.0.0/'"), "listeners.t.proxy_protocol_from[0]", "not 0..32");
    parse_bad(FROM("'lb.internal'"), "listeners.t.proxy_protocol_from[0]", "not a numeric IPv4");
    parse_bad(FROM("'127.0.0.1','fe80::1/ab'"), "listeners.t.proxy_protocol_from[1]", "not 0..128");
    parse_bad(FROM("5"), "listeners.t.proxy_protocol_from[0]", "expected a string");
#undef FROM
}

static struct sockaddr_storage addr_of(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(text, ':')) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
    }
    return ss;
}

static bool contains(const struct cfg_cidr *block, const char *addr)
{
    struct sockaddr_storage ss = addr_of(addr);
    return config_cidr_contains(block, (const struct sockaddr *)&ss);
}

static void test_cidr_contains(void **state)
{
    struct config *cfg = parse_ok(TCP(",'proxy_protocol':true,'proxy_protocol_from':"
                                      "['10.1.0.0/16','2001:db8::/33','0.0.0.0/0','192.168.0.128/25']"));
    const struct cfg_cidr *b = cfg->listeners[0].proxy_protocol_from;
    assert_true(contains(&b[0], "10.1.255.3"));
    assert_false(contains(&b[0], "10.2.0.0"));
    assert_true(contains(&b[0], "::ffff:10.1.2.3"));     /* v4-mapped */
    assert_false(contains(&b[0], "2001:db8::1"));
    assert_true(contains(&b[1], "2001:db8:7fff::1"));
    assert_false(contains(&b[1], "2001:db8:8000::1"));  /* bit 33 set */
    assert_false(contains(&b[1], "10.1.0.1"));
    assert_true(contains(&b[2], "203.0.113.9"));        /* /0 holds everything v4 */
    assert_true(contains(&b[3], "192.168.0.200"));
    assert_false(contains(&b[3], "192.168.0.127"));
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_udp_listener_defaults),
        cmocka_unit_test(test_udp_settings_are_read),
        cmocka_unit_test(test_udp_and_tcp_listeners_may_share_an_address),
        cmocka_unit_test(test_udp_pool_with_tcp_health_check_is_fine),
        cmocka_unit_test(test_rejects_two_udp_listeners_on_one_address),
        cmocka_unit_test(test_rejects_bad_udp_values),
        cmocka_unit_test(test_rejects_udp_key_on_other_modes),
        cmocka_unit_test(test_rejects_what_udp_listeners_cannot_do),
        cmocka_unit_test(test_rejects_pools_a_udp_listener_cannot_use),
        cmocka_unit_test(test_udp_pool_balances_every_way),
        cmocka_unit_test(test_rejects_hash_keys_and_sticky_a_udp_listener_cannot_give),
        cmocka_unit_test(test_proxy_protocol_keys),
        cmocka_unit_test(test_rejects_bad_proxy_protocol_values),
        cmocka_unit_test(test_rejects_bad_cidr_blocks),
        cmocka_unit_test(test_cidr_contains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

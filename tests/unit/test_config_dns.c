/* test_config_dns — backends found by DNS (config/dns.c): host names and "srv" in
 * backends[], "family", "resolvers" and "dns", every rejected form with its path, and
 * adding the backends found to a pool. */
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

#include <jansson.h>

#include "config/config.h"
#include "test_config_util.h"

#define LISTENER "'listeners':{'l':{'listen':'127.0.0.1:8080','pool':'p'}}"
#define BACKENDS(x) "{" LISTENER ",'pools':{'p':{'backends':[" x "]}}}"
#define TOP(x) "{" LISTENER ",'pools':{'p':{'backends':[{'address':'127.0.0.1:1'}]}}," x "}"

static void test_host_name_becomes_a_dns_entry(void **state)
{
    struct config *cfg = parse_ok(BACKENDS("{'address':'127.0.0.1:9001'},"
                                           "{'address':'API.Internal.:8080','weight':3,"
                                           "'max_connections':7,'drain':true}"));
    const struct cfg_pool *p = &cfg->pools[0];
    assert_int_equal(p->n_backends, 1);
    assert_int_equal(p->n_dns, 1);
    const struct cfg_dns_backend *d = &p->dns[0];
    assert_int_equal(d->index, 1);
    assert_false(d->is_srv);
    assert_string_equal(d->name, "api.internal");
    assert_int_equal(d->port, 8080);
    assert_int_equal(d->family, FAMILY_ANY);
    assert_int_equal(d->each.weight, 3);
    assert_int_equal(d->each.max_connections, 7);
    assert_true(d->each.drain);
    assert_null(d->each.name);
    char text[300];
    config_dns_backend_text(d, text, sizeof text);
    assert_string_equal(text, "api.internal:8080");
    config_free(cfg);
}

static void test_srv_entry_and_family(void **state)
{
    struct config *cfg = parse_ok(BACKENDS("{'srv':'_http._tcp.api.service.consul',"
                                           "'family':'ipv6','backup':true},"
                                           "{'address':'db:5432','family':'ipv4'}"));
    const struct cfg_pool *p = &cfg->pools[0];
    assert_int_equal(p->n_backends, 0);
    assert_int_equal(p->n_dns, 2);
    assert_true(p->dns[0].is_srv);
    assert_string_equal(p->dns[0].name, "_http._tcp.api.service.consul");
    assert_int_equal(p->dns[0].port, 0);
    assert_int_equal(p->dns[0].family, FAMILY_IPV6);
    assert_true(p->dns[0].each.backup);
    assert_int_equal(p->dns[1].family, FAMILY_IPV4);
    assert_string_equal(config_family_name(p->dns[1].family), "ipv4");
    config_free(cfg);
}

static void test_numeric_and_localhost_stay_addresses(void **state)
{
    struct config *cfg = parse_ok(BACKENDS("{'address':'localhost:1'},{'address':'[::1]:2'},"
                                           "{'address':'10.1.2.3:3'}"));
    assert_int_equal(cfg->pools[0].n_backends, 3);
    assert_int_equal(cfg->pools[0].n_dns, 0);
    config_free(cfg);
}

static void test_dns_defaults(void **state)
{
    struct config *cfg = parse_ok(TOP("'workers':1"));
    assert_null(cfg->dns.resolvers);
    assert_int_equal(cfg->dns.n_resolvers, 0);
    assert_int_equal(cfg->dns.min_ttl_ms, 1000);
    assert_int_equal(cfg->dns.max_ttl_ms, 300000);
    config_free(cfg);
}

static void test_resolvers_and_ttl_bounds_are_read(void **state)
{
    struct config *cfg = parse_ok(TOP("'resolvers':['127.0.0.1:8600','[::1]:53'],"
                                      "'dns':{'min_ttl_ms':500,'max_ttl_ms':60000}"));
    assert_int_equal(cfg->dns.n_resolvers, 2);
    assert_string_equal(cfg->dns.resolvers[0].text, "127.0.0.1:8600");
    assert_int_equal(cfg->dns.resolvers[1].sa.ss_family, AF_INET6);
    assert_int_equal(cfg->dns.min_ttl_ms, 500);
    assert_int_equal(cfg->dns.max_ttl_ms, 60000);
    config_free(cfg);
}

/* A DNS change builds the running config again from its document: the same config,
 * with a document of its own (a worker may free the old one meanwhile). */
static void test_config_from_document_is_the_same_config(void **state)
{
    struct config *cfg = parse_ok(TOP("'resolvers':['127.0.0.1:8600'],'dns':{'max_ttl_ms':9000}"));
    struct config_errors errs = { 0 };
    struct config *again = config_from_document(cfg, &errs);
    assert_non_null(again);
    assert_int_equal(errs.count, 0);
    assert_ptr_not_equal(again->document, cfg->document);
    assert_true(json_equal(again->document, cfg->document));
    assert_string_equal(again->path, cfg->path);
    assert_int_equal(again->dns.n_resolvers, 1);
    assert_int_equal(again->dns.max_ttl_ms, 9000);
    assert_int_equal(again->n_pools, 1);
    assert_string_equal(again->pools[0].backends[0].name, "127.0.0.1:1");
    config_free(cfg);           /* `again` does not depend on it */
    assert_string_equal(again->listeners[0].name, "l");
    config_free(again);
}

static void test_rejected_forms(void **state)
{
    static const struct {
        const char *json, *path, *phrase;
    } cases[] = {
        { BACKENDS("{'address':'web_1:80'}"), "pools.p.backends[0].address",
          "'_' cannot be in a DNS name" },
        { BACKENDS("{'address':'api..internal:80'}"), "pools.p.backends[0].address",
          "every label" },
        { BACKENDS("{'address':'api.internal'}"), "pools.p.backends[0].address",
          "missing \":port\"" },
        { BACKENDS("{'address':'api.internal:0'}"), "pools.p.backends[0].address",
          "out of range 1..65535" },
        { BACKENDS("{'address':'10.0.0.300:80'}"), "pools.p.backends[0].address",
          "not a numeric IPv4 address" },
        { BACKENDS("{'srv':'_x._tcp.a b'}"), "pools.p.backends[0].srv", "cannot be in a DNS name" },
        { BACKENDS("{'srv':'_x._tcp.a','address':'a:1'}"), "pools.p.backends[0].srv",
          "exclude each other" },
        { BACKENDS("{'weight':2}"), "pools.p.backends[0].address", "required" },
        { BACKENDS("{'srv':'_x._tcp.a','weight':2}"), "pools.p.backends[0].weight",
          "the SRV records give the weights" },
        { BACKENDS("{'address':'a.b:80','name':'x'}"), "pools.p.backends[0].name",
          "named by its address" },
        { BACKENDS("{'address':'127.0.0.1:80','family':'ipv6'}"), "pools.p.backends[0].family",
          "only used with a host name" },
        { BACKENDS("{'address':'a.b:80','family':'v4'}"), "pools.p.backends[0].family",
          "\"any\"" },
        { BACKENDS("{'address':'a.b:80'},{'address':'A.B.:80'}"), "pools.p.backends[1].address",
          "duplicates backends[0]" },
        { BACKENDS("{'srv':'_s._tcp.x'},{'address':'127.0.0.1:1'},{'srv':'_s._tcp.x'}"),
          "pools.p.backends[2].srv", "duplicates backends[0]" },
        { BACKENDS("{'address':'a.b:80','backup':true}"), "pools.p.backends",
          "at least one backend without" },
        { TOP("'resolvers':[]"), "resolvers", "at least 1" },
        { TOP("'resolvers':['dns.internal:53']"), "resolvers[0]", "a resolver is" },
        { TOP("'resolvers':['127.0.0.1']"), "resolvers[0]", "missing \":port\"" },
        { TOP("'resolvers':'127.0.0.1:53'"), "resolvers", "expected an array" },
        { TOP("'dns':{'min_ttl_ms':50}"), "dns.min_ttl_ms", "out of range 100..86400000" },
        { TOP("'dns':{'min_ttl_ms':5000,'max_ttl_ms':1000}"), "dns.max_ttl_ms",
          "less than min_ttl_ms" },
        { TOP("'dns':{'min_ttl_ms':400000}"), "dns.max_ttl_ms", "300000 (default)" },
        { TOP("'dns':{'ttl_ms':1}"), "dns.ttl_ms", "unknown key" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("case %zu: %s\n", i, cases[i].json);
        parse_bad(cases[i].json, cases[i].path, cases[i].phrase);
    }
}

static void test_errors_carry_the_line(void **state)
{
    const char *text = "{\n\"listeners\": {\"l\": {\"listen\": \"127.0.0.1:1\", \"pool\": \"p\"}},\n"
                       "\"pools\": {\"p\": {\"backends\": [\n"
                       "  {\"address\": \"127.0.0.1:2\"},\n"
                       "  {\"srv\": \"bad name\"}\n"
                       "]}}}\n";
    struct config_errors errs = { 0 };
    assert_null(config_parse(text, strlen(text), "t.json", &errs));
    assert_int_equal(errs.count, 1);
    assert_non_null(strstr(errs.messages[0], "pools.p.backends[1].srv (line 5)"));
    config_errors_clear(&errs);
}

static struct cfg_backend found(const char *addr, unsigned weight)
{
    struct cfg_backend b = { .name = (char *)addr, .weight = weight };
    char why[128];
    assert_int_equal(config_addr_parse(addr, 0, &b.address, why, sizeof why), 0);
    return b;
}

static void test_adding_found_backends_skips_known_addresses(void **state)
{
    struct config *cfg = parse_ok(BACKENDS("{'address':'127.0.0.1:9001'},{'address':'a.b:9002'}"));
    struct cfg_backend add[] = { found("127.0.0.2:9002", 4), found("127.0.0.1:9001", 1),
                                 found("127.0.0.3:9002", 2), found("127.0.0.2:9002", 1) };
    assert_int_equal(config_pool_add_backends(cfg, 0, add, 4), 2);
    const struct cfg_pool *p = &cfg->pools[0];
    assert_int_equal(p->n_backends, 3);
    assert_string_equal(p->backends[1].name, "127.0.0.2:9002");
    assert_int_equal(p->backends[1].weight, 4);
    assert_string_equal(p->backends[2].name, "127.0.0.3:9002");
    assert_ptr_not_equal(p->backends[1].name, add[0].name);     /* a copy */
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_name_becomes_a_dns_entry),
        cmocka_unit_test(test_srv_entry_and_family),
        cmocka_unit_test(test_numeric_and_localhost_stay_addresses),
        cmocka_unit_test(test_dns_defaults),
        cmocka_unit_test(test_resolvers_and_ttl_bounds_are_read),
        cmocka_unit_test(test_config_from_document_is_the_same_config),
        cmocka_unit_test(test_rejected_forms),
        cmocka_unit_test(test_errors_carry_the_line),
        cmocka_unit_test(test_adding_found_backends_skips_known_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

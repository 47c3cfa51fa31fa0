/* test_config_load — valid configs become exactly the struct they describe, defaults
 * included; the shipped examples load. Paths are relative to the project root (ctest's
 * working directory). */
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

static struct config *load_ok(const char *path)
{
    struct config_errors errs = { 0 };
    struct config *cfg = config_load(path, &errs);
    for (size_t i = 0; i < errs.count; i++)
        print_message("  unexpected: %s\n", errs.messages[i]);
    assert_int_equal(errs.count, 0);
    assert_non_null(cfg);
    return cfg;
}

static void assert_ipv4(const struct cfg_addr *a, const char *text, const char *ip, unsigned port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->sa;
    char buf[INET_ADDRSTRLEN];
    assert_string_equal(a->text, text);
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(a->len, sizeof *sin);
    assert_int_equal(ntohs(sin->sin_port), port);
    assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf), ip);
}

static void assert_ipv6(const struct cfg_addr *a, const char *text, const char *ip, unsigned port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->sa;
    char buf[INET6_ADDRSTRLEN];
    assert_string_equal(a->text, text);
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(a->len, sizeof *sin6);
    assert_int_equal(ntohs(sin6->sin6_port), port);
    assert_string_equal(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf), ip);
}

static void assert_design_globals(const struct config *cfg)
{
    assert_string_equal(cfg->path, "tests/unit/configs/design.json");
    assert_true(cfg->workers >= 1);
    assert_true(cfg->admin.enabled);
    assert_ipv4(&cfg->admin.listen, "127.0.0.1:9901", "127.0.0.1", 9901);
    assert_null(cfg->admin.token);
    assert_int_equal(cfg->log.level, LOG_LEVEL_INFO);
    assert_string_equal(cfg->log.access, "stdout");
    assert_int_equal(cfg->log.format, LOG_FORMAT_JSON);
    assert_int_equal(cfg->timeouts.connect_ms, 3000);
    assert_int_equal(cfg->timeouts.client_header_ms, 10000);
    assert_int_equal(cfg->timeouts.client_idle_ms, 60000);
    assert_int_equal(cfg->timeouts.upstream_response_ms, 30000);
    assert_int_equal(cfg->timeouts.tcp_idle_ms, 3600000);
    assert_int_equal(cfg->timeouts.drain_ms, 30000);
    assert_int_equal(cfg->timeouts.stop_grace_ms, 0);
    assert_int_equal(cfg->limits.max_connections, 20000);
    assert_int_equal(cfg->limits.max_header_bytes, 16384);
    assert_int_equal(cfg->limits.max_headers, 100);
    assert_int_equal(cfg->limits.max_body_bytes, 0);
}

static void assert_design_listeners(const struct config *cfg)
{
    assert_int_equal(cfg->n_listeners, 2);
    const struct cfg_listener *https = &cfg->listeners[0], *pg = &cfg->listeners[1];
    assert_string_equal(https->name, "https");
    assert_ipv4(&https->listen, "0.0.0.0:8443", "0.0.0.0", 8443);
    assert_int_equal(https->mode, MODE_HTTP);
    assert_non_null(https->tls);
    assert_int_equal(https->tls->n_certificates, 1);
    assert_string_equal(https->tls->certificates[0].cert, "certs/dev/localhost.crt");
    assert_string_equal(https->tls->certificates[0].key, "certs/dev/localhost.key");
    assert_null(https->tls->certificates[0].ocsp_response);
    assert_int_equal(https->tls->min_version, TLS_MIN_1_2);
    assert_int_equal(https->tls->n_alpn, 1);
    assert_string_equal(https->tls->alpn[0], "http/1.1");
    assert_int_equal(https->n_routes, 2);
    assert_string_equal(https->routes[0].host, "api.localhost");
    assert_string_equal(https->routes[0].path_prefix, "/v1/");
    assert_null(https->routes[0].sni);
    assert_int_equal(https->routes[0].pool, config_pool_index(cfg, "api"));
    assert_null(https->routes[1].host);
    assert_null(https->routes[1].path_prefix);
    assert_int_equal(https->routes[1].pool, config_pool_index(cfg, "web"));

    assert_string_equal(pg->name, "pg");
    assert_ipv4(&pg->listen, "127.0.0.1:15432", "127.0.0.1", 15432);
    assert_int_equal(pg->mode, MODE_TCP);
    assert_null(pg->tls);
    assert_int_equal(pg->n_routes, 1);
    assert_null(pg->routes[0].host);
    assert_null(pg->routes[0].sni);
    assert_int_equal(pg->routes[0].pool, config_pool_index(cfg, "db"));
}

static void assert_design_pools(const struct config *cfg)
{
    assert_int_equal(cfg->n_pools, 3);
    assert_int_equal(config_pool_index(cfg, "web"), 0);
    assert_int_equal(config_pool_index(cfg, "api"), 1);
    assert_int_equal(config_pool_index(cfg, "db"), 2);
    const struct cfg_pool *web = &cfg->pools[0], *api = &cfg->pools[1], *db = &cfg->pools[2];
    assert_int_equal(web->balance, BALANCE_ROUND_ROBIN);
    assert_int_equal(web->n_backends, 2);
    assert_ipv4(&web->backends[0].address, "127.0.0.1:9001", "127.0.0.1", 9001);
    assert_string_equal(web->backends[0].name, "127.0.0.1:9001");
    assert_int_equal(web->backends[0].weight, 1);
    assert_int_equal(web->backends[0].max_connections, 0);
    assert_int_equal(web->backends[1].weight, 2);
    assert_int_equal(web->backends[1].max_connections, 100);
    assert_int_equal(web->health_check.type, HEALTH_CHECK_HTTP);
    assert_string_equal(web->health_check.path, "/healthz");
    assert_null(web->health_check.host);
    assert_int_equal(web->health_check.n_expect_status, 1);
    assert_int_equal(web->health_check.expect_status[0], 200);
    assert_int_equal(web->health_check.interval_ms, 2000);
    assert_int_equal(web->health_check.timeout_ms, 1000);
    assert_int_equal(web->health_check.rise, 2);
    assert_int_equal(web->health_check.fall, 3);
    assert_int_equal(web->keepalive_max_idle, 32);
    assert_int_equal(web->keepalive_idle_timeout_ms, 60000);
    assert_int_equal(web->retries, 1);
    assert_null(web->tls);

    assert_int_equal(api->balance, BALANCE_LEAST_CONN);
    assert_int_equal(api->n_backends, 1);
    assert_int_equal(api->health_check.type, HEALTH_CHECK_NONE);
    assert_int_equal(api->retries, 1);
    assert_int_equal(api->keepalive_max_idle, 32);

    assert_int_equal(db->health_check.type, HEALTH_CHECK_TCP);
    assert_null(db->health_check.path);
    assert_int_equal(db->health_check.n_expect_status, 0);
    assert_int_equal(db->health_check.interval_ms, 1000);
    assert_int_equal(db->health_check.timeout_ms, 500);
    assert_int_equal(db->health_check.rise, 1);
    assert_int_equal(db->health_check.fall, 2);
}

static void test_design_example_round_trips(void **state)
{
    struct config *cfg = load_ok("tests/unit/configs/design.json");
    assert_design_globals(cfg);
    assert_design_listeners(cfg);
    assert_design_pools(cfg);
    config_free(cfg);
}

static const char MINIMAL[] =
    "{'listeners':{'l':{'listen':'127.0.0.1:8080','pool':'p'}},"
    "'pools':{'p':{'backends':[{'address':'127.0.0.1:9001'}]}}}";

static void test_minimal_config_gets_every_default(void **state)
{
    struct config *cfg = parse_ok(MINIMAL);
    assert_string_equal(cfg->path, "t.json");
    assert_true(cfg->workers >= 1 && cfg->workers <= 256);
    assert_true(cfg->admin.enabled);
    assert_ipv4(&cfg->admin.listen, "127.0.0.1:9901", "127.0.0.1", 9901);
    assert_null(cfg->admin.token);
    assert_int_equal(cfg->log.level, LOG_LEVEL_INFO);
    assert_string_equal(cfg->log.access, "stdout");
    assert_int_equal(cfg->log.format, LOG_FORMAT_JSON);
    assert_int_equal(cfg->timeouts.connect_ms, 3000);
    assert_int_equal(cfg->timeouts.tcp_idle_ms, 3600000);
    assert_int_equal(cfg->timeouts.drain_ms, 30000);
    assert_int_equal(cfg->limits.max_connections, 20000);
    assert_int_equal(cfg->limits.max_header_bytes, 16384);
    assert_int_equal(cfg->limits.max_headers, 100);
    assert_int_equal(cfg->limits.max_body_bytes, 0);
    assert_int_equal(cfg->listeners[0].mode, MODE_HTTP);
    assert_null(cfg->listeners[0].tls);
    assert_int_equal(cfg->listeners[0].n_routes, 1);
    assert_int_equal(cfg->listeners[0].routes[0].pool, 0);
    const struct cfg_pool *p = &cfg->pools[0];
    assert_int_equal(p->balance, BALANCE_ROUND_ROBIN);
    assert_int_equal(p->backends[0].weight, 1);
    assert_string_equal(p->backends[0].name, "127.0.0.1:9001");
    assert_int_equal(p->health_check.type, HEALTH_CHECK_NONE);
    assert_true(p->health_check.initial_up);
    assert_int_equal(p->keepalive_max_idle, 32);
    assert_int_equal(p->keepalive_idle_timeout_ms, 60000);
    assert_int_equal(p->retries, 1);
    assert_null(p->tls);
    assert_int_equal(p->hash_key, HASH_KEY_NONE);
    assert_null(p->sticky.cookie);
    assert_int_equal(p->slow_start_ms, 0);
    assert_int_equal(p->passive.failures, 3);
    assert_int_equal(p->passive.eject_ms, 10000);
    assert_false(p->passive.on_5xx);
    assert_false(p->backends[0].backup);
    assert_false(p->backends[0].drain);
    config_free(cfg);
}

static void test_admin_null_disables_admin(void **state)
{
    struct config *cfg = parse_ok("{'admin':null,'workers':3,'log':{'access':'off','level':'error',"
                                  "'format':'text'},"
                                  "'listeners':{'l':{'listen':'127.0.0.1:9901','pool':'p'}},"
                                  "'pools':{'p':{'backends':[{'address':'127.0.0.1:9001'}]}}}");
    assert_false(cfg->admin.enabled);
    assert_int_equal(cfg->workers, 3);
    assert_null(cfg->log.access);
    assert_int_equal(cfg->log.level, LOG_LEVEL_ERROR);
    assert_int_equal(cfg->log.format, LOG_FORMAT_TEXT);
    config_free(cfg);
}

static void test_addresses_ipv6_and_localhost(void **state)
{
    struct config *cfg = parse_ok(
        "{'admin':{'listen':'[::1]:9000','token':'t0k3n'},"
        "'listeners':{'v6':{'listen':'[::]:443','pool':'p'},'v4':{'listen':'0.0.0.0:443','pool':'p'}},"
        "'pools':{'p':{'backends':[{'address':'localhost:9001','name':'one'},"
        "{'address':'[2001:db8::5]:65535','weight':256,'max_connections':10000000}]}}}");
    assert_ipv6(&cfg->admin.listen, "[::1]:9000", "::1", 9000);
    assert_string_equal(cfg->admin.token, "t0k3n");
    assert_ipv6(&cfg->listeners[0].listen, "[::]:443", "::", 443);
    assert_ipv4(&cfg->listeners[1].listen, "0.0.0.0:443", "0.0.0.0", 443);
    assert_ipv4(&cfg->pools[0].backends[0].address, "localhost:9001", "127.0.0.1", 9001);
    assert_string_equal(cfg->pools[0].backends[0].name, "one");
    assert_ipv6(&cfg->pools[0].backends[1].address, "[2001:db8::5]:65535", "2001:db8::5", 65535);
    assert_string_equal(cfg->pools[0].backends[1].name, "[2001:db8::5]:65535");
    assert_int_equal(cfg->pools[0].backends[1].weight, 256);
    assert_int_equal(cfg->pools[0].backends[1].max_connections, 10000000);
    config_free(cfg);
}

static void test_routes_resolve_pools_and_lower_case_hosts(void **state)
{
    struct config *cfg = parse_ok(
        "{'listeners':{'h':{'listen':'127.0.0.1:1','routes':["
        "{'match':{'host':'API.Example.COM','path_prefix':'/v1'},'pool':'b'},"
        "{'match':{'host':'*.Example.com'},'pool':'a'},{'match':null,'pool':'b'}]},"
        "'t':{'listen':'127.0.0.1:2','mode':'tcp','routes':[{'match':{'sni':'DB.local'},'pool':'a'},"
        "{'pool':'b'}]}},"
        "'pools':{'a':{'backends':[{'address':'127.0.0.1:3'}]},'b':{'backends':[{'address':'127.0.0.1:4'}]},"
        "'unused':{'backends':[{'address':'127.0.0.1:5'}]}}}");
    const struct cfg_listener *h = &cfg->listeners[0], *t = &cfg->listeners[1];
    assert_int_equal(h->n_routes, 3);
    assert_string_equal(h->routes[0].host, "api.example.com");
    assert_string_equal(h->routes[0].path_prefix, "/v1");
    assert_int_equal(h->routes[0].pool, 1);
    assert_string_equal(h->routes[1].host, "*.example.com");
    assert_int_equal(h->routes[1].pool, 0);
    assert_null(h->routes[2].host);
    assert_int_equal(h->routes[2].pool, 1);
    assert_int_equal(t->mode, MODE_TCP);
    assert_string_equal(t->routes[0].sni, "db.local");
    assert_int_equal(t->routes[0].pool, 0);
    assert_null(t->routes[1].sni);
    assert_int_equal(t->routes[1].pool, 1);
    assert_int_equal(cfg->n_pools, 3);
    assert_int_equal(config_pool_index(cfg, "unused"), 2);
    assert_int_equal(config_pool_index(cfg, "nope"), -1);
    assert_int_equal(config_pool_index(cfg, NULL), -1);
    assert_int_equal(config_pool_index(NULL, "a"), -1);
    config_free(cfg);
}

static void test_listener_tls_defaults(void **state)
{
    struct config *cfg = parse_ok(
        "{'listeners':{'h':{'listen':'127.0.0.1:1','pool':'p','tls':{'certificates':[{'cert':'c','key':'k'}]}},"
        "'m':{'listen':'127.0.0.1:2','pool':'p','tls':{'certificates':[{'cert':'c','key':'k'}],"
        "'client_ca':'ca.pem','alpn':[],'ticket_keys_file':'tickets.key'}},"
        "'t':{'listen':'127.0.0.1:3','mode':'tcp','pool':'p','tls':{'certificates':[{'cert':'c','key':'k'}]}}},"
        "'pools':{'p':{'backends':[{'address':'127.0.0.1:9'}]}}}");
    const struct cfg_listener_tls *h = cfg->listeners[0].tls, *m = cfg->listeners[1].tls;
    const struct cfg_listener_tls *t = cfg->listeners[2].tls;
    assert_int_equal(h->min_version, TLS_MIN_1_2);
    assert_non_null(h->ciphers);
    assert_non_null(strstr(h->ciphers, "ECDHE-RSA-AES128-GCM-SHA256"));
    assert_null(h->ciphersuites);
    assert_int_equal(h->n_alpn, 2);
    assert_string_equal(h->alpn[0], "h2");
    assert_string_equal(h->alpn[1], "http/1.1");
    assert_null(h->client_ca);
    assert_int_equal(h->verify_client, VERIFY_CLIENT_OFF);
    assert_true(h->session_tickets);
    assert_int_equal(h->session_cache, 20480);
    assert_null(h->ticket_keys_file);
    assert_string_equal(m->client_ca, "ca.pem");
    assert_string_equal(m->ticket_keys_file, "tickets.key");
    assert_int_equal(m->verify_client, VERIFY_CLIENT_REQUIRED);
    assert_int_equal(m->n_alpn, 0);
    assert_int_equal(t->n_alpn, 0);
    assert_null(t->alpn);
    config_free(cfg);
}

static void test_listener_http2_defaults_and_values(void **state)
{
    struct config *cfg = parse_ok(
        "{'listeners':{'d':{'listen':'127.0.0.1:1','pool':'p'},"
        "'c':{'listen':'127.0.0.1:2','pool':'p','http2':{'h2c':true,'max_concurrent_streams':10000,"
        "'initial_window_bytes':2147483647,'max_frame_bytes':16777215,'websocket':false}}},"
        "'pools':{'p':{'backends':[{'address':'127.0.0.1:9'}]}}}");
    const struct cfg_http2 *d = &cfg->listeners[0].http2, *c = &cfg->listeners[1].http2;
    assert_false(d->h2c);
    assert_int_equal(d->max_concurrent_streams, 128);
    assert_int_equal(d->initial_window_bytes, 65535);
    assert_int_equal(d->max_frame_bytes, 16384);
    assert_true(d->websocket);
    assert_true(c->h2c);
    assert_false(c->websocket);
    assert_int_equal(c->max_concurrent_streams, 10000);
    assert_int_equal(c->initial_window_bytes, 2147483647);
    assert_int_equal(c->max_frame_bytes, 16777215);
    config_free(cfg);
}

static void test_pool_extras_and_boundaries(void **state)
{
    struct config *cfg = parse_ok(
        "{'limits':{'max_body_bytes':4611686018427387904,'max_header_bytes':1024,'max_headers':1000},"
        "'timeouts':{'connect_ms':86400000,'drain_ms':1,'stop_grace_ms':3600000},"
        "'listeners':{'l':{'listen':'127.0.0.1:65535','pool':'p'}},"
        "'pools':{'p':{'balance':'least_conn','retries':10,'backends':[{'address':'127.0.0.1:9'}],"
        "'health_check':{'type':'http','host':'Svc.Internal','interval_ms':100,'timeout_ms':99,'rise':100,'fall':1},"
        "'keepalive':{'max_idle':0,'idle_timeout_ms':1},"
        "'tls':{'verify':false,'sni':'svc','ca':null}}}}");
    assert_int_equal(cfg->limits.max_body_bytes, (uint64_t)1 << 62);
    assert_int_equal(cfg->limits.max_header_bytes, 1024);
    assert_int_equal(cfg->timeouts.connect_ms, 86400000);
    assert_int_equal(cfg->timeouts.drain_ms, 1);
    assert_int_equal(cfg->timeouts.stop_grace_ms, 3600000);
    const struct cfg_pool *p = &cfg->pools[0];
    assert_int_equal(p->balance, BALANCE_LEAST_CONN);
    assert_int_equal(p->retries, 10);
    assert_string_equal(p->health_check.path, "/");
    assert_string_equal(p->health_check.host, "Svc.Internal");
    assert_int_equal(p->health_check.n_expect_status, 1);
    assert_int_equal(p->health_check.expect_status[0], 200);
    assert_int_equal(p->health_check.interval_ms, 100);
    assert_int_equal(p->health_check.timeout_ms, 99);
    assert_int_equal(p->keepalive_max_idle, 0);
    assert_int_equal(p->keepalive_idle_timeout_ms, 1);
    assert_non_null(p->tls);
    assert_false(p->tls->verify);
    assert_string_equal(p->tls->sni, "svc");
    assert_null(p->tls->ca);
    assert_null(p->tls->cert);
    assert_null(p->tls->key);
    config_free(cfg);
}

static void test_balancing_and_health_keys(void **state)
{
    struct config *cfg = parse_ok(
        "{'listeners':{'l':{'listen':'127.0.0.1:1','pool':'p'},"
        "'t':{'listen':'127.0.0.1:2','mode':'tcp','pool':'q'}},"
        "'pools':{'p':{'balance':'hash','hash_key':'cookie:session_id','slow_start_ms':30000,"
        "'sticky':{'cookie':'ferry_s','ttl_s':3600},"
        "'passive':{'failures':0,'eject_ms':2500,'on_5xx':true},"
        "'backends':[{'address':'127.0.0.1:9','drain':true},{'address':'127.0.0.1:10','backup':true}],"
        "'health_check':{'type':'http','expect_body':'status: ok','initial':'down'}},"
        "'q':{'balance':'hash','hash_key':'sni','backends':[{'address':'127.0.0.1:11'}]},"
        "'r':{'balance':'random_two','backends':[{'address':'127.0.0.1:12'}]},"
        "'s':{'balance':'hash','hash_key':'header:X-Tenant','backends':[{'address':'127.0.0.1:13'}]}}}");
    const struct cfg_pool *p = &cfg->pools[0];
    assert_int_equal(p->balance, BALANCE_HASH);
    assert_int_equal(p->hash_key, HASH_KEY_COOKIE);
    assert_string_equal(p->hash_key_name, "session_id");
    assert_int_equal(p->slow_start_ms, 30000);
    assert_string_equal(p->sticky.cookie, "ferry_s");
    assert_int_equal(p->sticky.ttl_s, 3600);
    assert_int_equal(p->passive.failures, 0);
    assert_int_equal(p->passive.eject_ms, 2500);
    assert_true(p->passive.on_5xx);
    assert_true(p->backends[0].drain);
    assert_false(p->backends[0].backup);
    assert_true(p->backends[1].backup);
    assert_false(p->backends[1].drain);
    assert_string_equal(p->health_check.expect_body, "status: ok");
    assert_false(p->health_check.initial_up);
    assert_int_equal(cfg->pools[1].hash_key, HASH_KEY_SNI);
    assert_null(cfg->pools[1].hash_key_name);
    assert_int_equal(cfg->pools[2].balance, BALANCE_RANDOM_TWO);
    assert_int_equal(cfg->pools[2].hash_key, HASH_KEY_NONE);
    assert_int_equal(cfg->pools[3].hash_key, HASH_KEY_HEADER);
    assert_string_equal(cfg->pools[3].hash_key_name, "X-Tenant");
    config_free(cfg);
}

static void test_demo_example_loads(void **state)
{
    struct config *cfg = load_ok("config/examples/demo.json");
    assert_int_equal(cfg->n_listeners, 3);
    assert_string_equal(cfg->listeners[0].name, "http");
    assert_ipv4(&cfg->listeners[0].listen, "127.0.0.1:8080", "127.0.0.1", 8080);
    assert_null(cfg->listeners[0].tls);
    assert_string_equal(cfg->listeners[1].name, "https");
    assert_int_equal(cfg->listeners[1].tls->n_certificates, 2);
    assert_string_equal(cfg->listeners[1].tls->certificates[1].cert, "certs/dev/localhost-rsa.crt");
    assert_string_equal(cfg->listeners[2].name, "tcp");
    assert_int_equal(cfg->listeners[2].mode, MODE_TCP);
    assert_int_equal(cfg->n_pools, 1);
    assert_string_equal(cfg->pools[0].backends[0].name, "alpha");
    assert_string_equal(cfg->pools[0].backends[1].name, "beta");
    assert_int_equal(cfg->pools[0].health_check.type, HEALTH_CHECK_HTTP);
    assert_string_equal(cfg->pools[0].health_check.path, "/healthz");
    assert_ipv4(&cfg->admin.listen, "127.0.0.1:9901", "127.0.0.1", 9901);
    assert_string_equal(cfg->log.access, "stdout");
    assert_int_equal(cfg->log.format, LOG_FORMAT_TEXT);
    config_free(cfg);
}

static void test_full_example_loads(void **state)
{
    struct config *cfg = load_ok("config/examples/full.json");
    const struct cfg_listener_tls *tls = cfg->listeners[0].tls;
    assert_int_equal(cfg->workers, 2);
    assert_string_equal(cfg->admin.token, "s3cret-token");
    assert_int_equal(cfg->limits.max_body_bytes, 10485760);
    assert_int_equal(tls->verify_client, VERIFY_CLIENT_OPTIONAL);
    assert_string_equal(tls->ciphersuites, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384");
    assert_int_equal(cfg->listeners[3].tls->min_version, TLS_MIN_1_3);
    assert_string_equal(cfg->listeners[3].tls->alpn[0], "postgresql");
    assert_int_equal(cfg->pools[0].health_check.n_expect_status, 2);
    assert_int_equal(cfg->pools[0].health_check.expect_status[1], 204);
    assert_string_equal(cfg->pools[3].tls->cert, "certs/dev/client.crt");
    assert_int_equal(cfg->listeners[5].mode, MODE_UDP);
    assert_int_equal(cfg->listeners[5].udp.responses, 1);
    assert_true(cfg->listeners[6].proxy_protocol);
    assert_int_equal(cfg->listeners[6].n_proxy_protocol_from, 2);
    assert_int_equal(cfg->pools[5].proxy_protocol, PROXY_PROTOCOL_V2);
    assert_int_equal(cfg->dns.n_resolvers, 2);
    assert_int_equal(cfg->pools[6].n_backends, 0);
    assert_int_equal(cfg->pools[6].n_dns, 3);
    assert_true(cfg->pools[6].dns[0].is_srv);
    assert_int_equal(cfg->pools[6].dns[1].each.weight, 2);
    assert_true(cfg->pools[6].dns[2].each.backup);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_example_round_trips),
        cmocka_unit_test(test_minimal_config_gets_every_default),
        cmocka_unit_test(test_admin_null_disables_admin),
        cmocka_unit_test(test_addresses_ipv6_and_localhost),
        cmocka_unit_test(test_routes_resolve_pools_and_lower_case_hosts),
        cmocka_unit_test(test_listener_tls_defaults),
        cmocka_unit_test(test_listener_http2_defaults_and_values),
        cmocka_unit_test(test_pool_extras_and_boundaries),
        cmocka_unit_test(test_balancing_and_health_keys),
        cmocka_unit_test(test_demo_example_loads),
        cmocka_unit_test(test_full_example_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

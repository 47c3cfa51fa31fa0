/* test_config_validate — every bad value is rejected with its JSON path and a reason.
 *
 * One cmocka test per case of the table below. JSON is written with single quotes for
 * readability and converted before parsing. Each case asserts that config_parse()
 * returns NULL and that some message starts with the exact path (followed by ":" or by
 * " (line N):") and contains the key phrase. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

struct bad_case {
    const char *name;
    const char *json;           /* single quotes stand for double quotes */
    const char *path;
    const char *phrase;
};

#define LST_OK "'listen':'127.0.0.1:8080','pool':'p'"
#define POOL_OK "'backends':[{'address':'127.0.0.1:9001'}]"
#define CFG(top, lst, pool) "{" top "'listeners':{'l':{" lst "}},'pools':{'p':{" pool "}}}"
#define TOP(x) CFG(x ",", LST_OK, POOL_OK)
#define LST(x) CFG("", x, POOL_OK)
#define POOL(x) CFG("", LST_OK, x)
#define TLS(x) LST(LST_OK ",'tls':{'certificates':[{'cert':'c.pem','key':'k.pem'}]" x "}")
#define TCP_TLS(x) LST(LST_OK ",'mode':'tcp','tls':{'certificates':[{'cert':'c','key':'k'}]" x "}")
#define ROUTES(mode, x) LST("'listen':'127.0.0.1:8080','mode':'" mode "','routes':" x)
#define HC(x) POOL(POOL_OK ",'health_check':{" x "}")
#define B2(x) POOL("'backends':[{'address':'127.0.0.1:9001'},{'address':'127.0.0.1:9002'" x "}]")

static const struct bad_case CASES[] = {
    /* top level */
    { "workers_zero", TOP("'workers':0"), "workers", "0 is out of range 1..256" },
    { "workers_257", TOP("'workers':257"), "workers", "257 is out of range 1..256" },
    { "workers_bad_string", TOP("'workers':'many'"), "workers", "expected \"auto\" or an integer" },
    { "workers_float", TOP("'workers':2.5"), "workers", "got 2.5" },
    { "unknown_top_key", TOP("'listners':{}"), "listners", "unknown key (did you mean \"listeners\"?)" },
    { "unknown_key_no_hint", TOP("'zzzzzz':1"), "zzzzzz", "unknown key" },
    /* admin */
    { "admin_wrong_type", TOP("'admin':5"), "admin", "expected an object or null, got 5" },
    { "admin_listen_dns", TOP("'admin':{'listen':'localhost:9901'}"), "admin.listen", "not a numeric IPv4" },
    { "admin_token_empty", TOP("'admin':{'token':''}"), "admin.token", "must not be empty" },
    { "admin_token_space", TOP("'admin':{'token':'a b'}"), "admin.token", "visible ASCII" },
    { "admin_token_number", TOP("'admin':{'token':5}"), "admin.token", "expected a string, got 5" },
    { "admin_unknown_key", TOP("'admin':{'listne':'127.0.0.1:1'}"), "admin.listne", "did you mean \"listen\"" },
    { "admin_listen_conflict", TOP("'admin':{'listen':'127.0.0.1:8080'}"), "admin.listen", "already used by listener \"l\"" },
    /* log */
    { "log_level_bad", TOP("'log':{'level':'verbose'}"), "log.level", "\"verbose\" is not one of \"debug\", \"info\", \"warn\", \"error\"" },
    { "log_level_typo", TOP("'log':{'level':'inf'}"), "log.level", "did you mean \"info\"" },
    { "log_format_bad", TOP("'log':{'format':'yaml'}"), "log.format", "is not one of \"json\", \"text\"" },
    { "log_access_empty", TOP("'log':{'access':''}"), "log.access", "must not be empty" },
    { "log_access_null", TOP("'log':{'access':null}"), "log.access", "expected a string, got null" },
    { "log_not_object", TOP("'log':'stdout'"), "log", "expected an object, got string \"stdout\"" },
    /* timeouts */
    { "timeouts_typo", TOP("'timeouts':{'conect_ms':5}"), "timeouts.conect_ms", "unknown key (did you mean \"connect_ms\"?)" },
    { "timeouts_string", TOP("'timeouts':{'connect_ms':'3000'}"), "timeouts.connect_ms", "expected an integer, got string \"3000\"" },
    { "timeouts_float", TOP("'timeouts':{'client_header_ms':1.5}"), "timeouts.client_header_ms", "expected an integer, got 1.5" },
    { "timeouts_bool", TOP("'timeouts':{'client_idle_ms':true}"), "timeouts.client_idle_ms", "expected an integer, got true" },
    { "timeouts_zero", TOP("'timeouts':{'drain_ms':0}"), "timeouts.drain_ms", "0 is out of range 1..86400000" },
    { "timeouts_too_big", TOP("'timeouts':{'tcp_idle_ms':86400001}"), "timeouts.tcp_idle_ms", "86400001 is out of range" },
    { "timeouts_negative", TOP("'timeouts':{'upstream_response_ms':-1}"), "timeouts.upstream_response_ms", "-1 is out of range" },
    /* limits */
    { "limits_max_connections_zero", TOP("'limits':{'max_connections':0}"), "limits.max_connections", "0 is out of range 1..10000000" },
    { "limits_header_bytes_small", TOP("'limits':{'max_header_bytes':1023}"), "limits.max_header_bytes", "1023 is out of range 1024..1048576" },
    { "limits_max_headers_big", TOP("'limits':{'max_headers':1001}"), "limits.max_headers", "1001 is out of range 1..1000" },
    { "limits_body_negative", TOP("'limits':{'max_body_bytes':-1}"), "limits.max_body_bytes", "-1 is out of range 0..4611686018427387904" },
    { "limits_body_too_big", TOP("'limits':{'max_body_bytes':4611686018427387905}"), "limits.max_body_bytes", "out of range" },
    /* sections */
    { "listeners_missing", "{'pools':{'p':{" POOL_OK "}}}", "listeners", "required key is missing" },
    { "listeners_empty", "{'listeners':{},'pools':{'p':{" POOL_OK "}}}", "listeners", "at least one listener" },
    { "listeners_array", "{'listeners':[],'pools':{'p':{" POOL_OK "}}}", "listeners", "expected an object, got an array" },
    { "pools_missing", "{'listeners':{'l':{" LST_OK "}}}", "pools", "required key is missing" },
    { "pools_empty", "{'listeners':{'l':{" LST_OK "}},'pools':{}}", "pools", "at least one pool" },
    /* listeners */
    { "listener_not_object", "{'listeners':{'l':5},'pools':{'p':{" POOL_OK "}}}", "listeners.l", "expected an object, got 5" },
    { "listen_missing", LST("'pool':'p'"), "listeners.l.listen", "required key is missing" },
    { "listen_no_port", LST("'listen':'1.2.3.4','pool':'p'"), "listeners.l.listen", "missing \":port\"" },
    { "listen_port_zero", LST("'listen':'1.2.3.4:0','pool':'p'"), "listeners.l.listen", "port 0 is out of range 1..65535" },
    { "listen_unclosed_v6", LST("'listen':'[::1','pool':'p'"), "listeners.l.listen", "missing \"]\"" },
    { "listen_port_too_big", LST("'listen':'host:99999','pool':'p'"), "listeners.l.listen", "port 99999 is out of range" },
    { "listen_hostname", LST("'listen':'nohost:80','pool':'p'"), "listeners.l.listen", "\"nohost\" is not a numeric IPv4 address" },
    { "listen_localhost_refused", LST("'listen':'localhost:80','pool':'p'"), "listeners.l.listen", "not a numeric IPv4" },
    { "listen_v6_unbracketed", LST("'listen':'::1:80','pool':'p'"), "listeners.l.listen", "must be in brackets" },
    { "listen_bad_v6", LST("'listen':'[::g]:80','pool':'p'"), "listeners.l.listen", "not a valid IPv6 address" },
    { "listen_port_text", LST("'listen':'1.2.3.4:http','pool':'p'"), "listeners.l.listen", "is not a number" },
    { "listen_number", LST("'listen':8080,'pool':'p'"), "listeners.l.listen", "expected a string, got 8080" },
    { "mode_bad", LST(LST_OK ",'mode':'sctp'"), "listeners.l.mode", "\"sctp\" is not one of \"http\", \"tcp\", \"udp\"" },
    { "listener_unknown_key", LST(LST_OK ",'pools':'p'"), "listeners.l.pools", "did you mean \"pool\"" },
    { "both_pool_and_routes", LST(LST_OK ",'routes':[{'pool':'p'}]"), "listeners.l", "both \"pool\" and \"routes\"" },
    { "neither_pool_nor_routes", LST("'listen':'127.0.0.1:8080'"), "listeners.l", "needs \"pool\" or \"routes\"" },
    { "listener_name_bad", "{'listeners':{'my listener':{" LST_OK "}},'pools':{'p':{" POOL_OK "}}}",
      "listeners[\"my listener\"]", "name must be" },
    { "unknown_pool", "{'listeners':{'l':{'listen':'127.0.0.1:1','pool':'apii'}},'pools':{'api':{" POOL_OK "}}}",
      "listeners.l.pool", "unknown pool \"apii\" (did you mean \"api\"?)" },
    { "pool_reference_number", LST("'listen':'127.0.0.1:8080','pool':1"), "listeners.l.pool", "expected a string" },
    { "duplicate_listen", "{'listeners':{'a':{" LST_OK "},'b':{" LST_OK "}},'pools':{'p':{" POOL_OK "}}}",
      "listeners.b.listen", "\"127.0.0.1:8080\" is already used by listener \"a\"" },
    { "duplicate_listen_v6_spelling", "{'listeners':{'a':{'listen':'[::1]:80','pool':'p'},"
      "'b':{'listen':'[0:0::1]:80','pool':'p'}},'pools':{'p':{" POOL_OK "}}}",
      "listeners.b.listen", "already used by listener \"a\"" },
    /* routes */
    { "routes_empty", ROUTES("http", "[]"), "listeners.l.routes", "at least 1 entry" },
    { "routes_not_array", ROUTES("http", "{}"), "listeners.l.routes", "expected an array" },
    { "route_not_object", ROUTES("http", "['p']"), "listeners.l.routes[0]", "expected an object" },
    { "route_missing_pool", ROUTES("http", "[{'match':{'host':'a'}}]"), "listeners.l.routes[0].pool", "required key is missing" },
    { "route_unknown_pool", "{'listeners':{'l':{'listen':'127.0.0.1:1','routes':[{'pool':'api'},{'pool':'apii'}]}},"
      "'pools':{'api':{" POOL_OK "}}}", "listeners.l.routes[1].pool", "unknown pool \"apii\" (did you mean \"api\"?)" },
    { "route_unknown_key", ROUTES("http", "[{'pool':'p','macth':{}}]"), "listeners.l.routes[0].macth", "did you mean \"match\"" },
    { "match_unknown_key", ROUTES("http", "[{'pool':'p','match':{'hots':'a'}}]"), "listeners.l.routes[0].match.hots", "did you mean \"host\"" },
    { "path_prefix_no_slash", ROUTES("http", "[{'pool':'p','match':{'path_prefix':'v1/'}}]"),
      "listeners.l.routes[0].match.path_prefix", "must start with \"/\"" },
    { "host_with_port", ROUTES("http", "[{'pool':'p','match':{'host':'a.com:80'}}]"), "listeners.l.routes[0].match.host", "not a host name" },
    { "host_inner_wildcard", ROUTES("http", "[{'pool':'p','match':{'host':'a.*.com'}}]"), "listeners.l.routes[0].match.host", "not a host name" },
    { "host_empty", ROUTES("http", "[{'pool':'p','match':{'host':''}}]"), "listeners.l.routes[0].match.host", "must not be empty" },
    { "sni_on_http", ROUTES("http", "[{'pool':'p','match':{'sni':'a.com'}}]"),
      "listeners.l.routes[0].match.sni", "only allowed on tcp listeners without tls" },
    { "sni_on_tcp_tls", LST("'listen':'127.0.0.1:1','mode':'tcp','tls':{'certificates':[{'cert':'c','key':'k'}]},"
      "'routes':[{'pool':'p','match':{'sni':'a.com'}}]"), "listeners.l.routes[0].match.sni", "only allowed on tcp listeners without tls" },
    { "host_on_tcp", ROUTES("tcp", "[{'pool':'p','match':{'host':'a.com'}}]"), "listeners.l.routes[0].match.host", "only allowed on http listeners" },
    { "path_prefix_on_tcp", ROUTES("tcp", "[{'pool':'p','match':{'path_prefix':'/'}}]"),
      "listeners.l.routes[0].match.path_prefix", "only allowed on http listeners" },
    /* listener tls */
    { "tls_not_object", LST(LST_OK ",'tls':true"), "listeners.l.tls", "expected an object or null, got true" },
    { "tls_no_certificates", LST(LST_OK ",'tls':{}"), "listeners.l.tls.certificates", "required key is missing" },
    { "tls_certificates_empty", LST(LST_OK ",'tls':{'certificates':[]}"), "listeners.l.tls.certificates", "at least 1 entry" },
    { "tls_cert_missing_key", LST(LST_OK ",'tls':{'certificates':[{'cert':'a.crt'}]}"),
      "listeners.l.tls.certificates[0].key", "required key is missing" },
    { "tls_cert_empty", LST(LST_OK ",'tls':{'certificates':[{'cert':'','key':'k'}]}"),
      "listeners.l.tls.certificates[0].cert", "must not be empty" },
    { "tls_ocsp_number", LST(LST_OK ",'tls':{'certificates':[{'cert':'c','key':'k','ocsp_response':1}]}"),
      "listeners.l.tls.certificates[0].ocsp_response", "expected a string, got 1" },
    { "tls_min_version_bad", TLS(",'min_version':'TLS1.1'"), "listeners.l.tls.min_version", "is not one of \"TLS1.2\", \"TLS1.3\"" },
    { "alpn_h3_on_http", TLS(",'alpn':['h2','h3']"), "listeners.l.tls.alpn[1]", "\"h3\" is not supported by this listener" },
    { "alpn_not_array", TLS(",'alpn':'http/1.1'"), "listeners.l.tls.alpn", "expected an array" },
    { "alpn_entry_number", TCP_TLS(",'alpn':[1]"), "listeners.l.tls.alpn[0]", "expected a string" },
    { "verify_client_without_ca", TLS(",'verify_client':'required'"), "listeners.l.tls.verify_client", "needs \"client_ca\"" },
    { "verify_client_optional_without_ca", TLS(",'verify_client':'optional'"), "listeners.l.tls.verify_client", "needs \"client_ca\"" },
    { "verify_client_bad", TLS(",'client_ca':'ca.pem','verify_client':'sometimes'"), "listeners.l.tls.verify_client", "is not one of" },
    { "session_tickets_string", TLS(",'session_tickets':'yes'"), "listeners.l.tls.session_tickets", "expected true or false" },
    { "session_cache_negative", TLS(",'session_cache':-1"), "listeners.l.tls.session_cache", "-1 is out of range 0..10000000" },
    { "ticket_keys_file_number", TLS(",'ticket_keys_file':1"), "listeners.l.tls.ticket_keys_file", "expected a string" },
    { "ticket_keys_file_empty", TLS(",'ticket_keys_file':''"), "listeners.l.tls.ticket_keys_file", "must not be empty" },
    { "ticket_keys_file_without_tickets", TLS(",'session_tickets':false,'ticket_keys_file':'k'"),
      "listeners.l.tls.ticket_keys_file", "needs \"session_tickets\": true" },
    { "ciphers_number", TLS(",'ciphers':1"), "listeners.l.tls.ciphers", "expected a string" },
    { "tls_unknown_key", TLS(",'ciphersuite':'x'"), "listeners.l.tls.ciphersuite", "did you mean \"ciphersuites\"" },
    /* listener http2 */
    { "http2_not_object", LST(LST_OK ",'http2':true"), "listeners.l.http2", "expected an object, got true" },
    { "http2_on_tcp", LST(LST_OK ",'mode':'tcp','http2':{}"), "listeners.l.http2", "only allowed on http listeners" },
    { "http2_h2c_with_tls", TLS("},'http2':{'h2c':true"), "listeners.l.http2.h2c", "only for listeners without tls" },
    { "http2_h2c_string", LST(LST_OK ",'http2':{'h2c':'yes'}"), "listeners.l.http2.h2c", "expected true or false" },
    { "http2_streams_zero", LST(LST_OK ",'http2':{'max_concurrent_streams':0}"),
      "listeners.l.http2.max_concurrent_streams", "0 is out of range 1..10000" },
    { "http2_window_too_big", LST(LST_OK ",'http2':{'initial_window_bytes':2147483648}"),
      "listeners.l.http2.initial_window_bytes", "out of range 1..2147483647" },
    { "http2_frame_too_small", LST(LST_OK ",'http2':{'max_frame_bytes':16383}"),
      "listeners.l.http2.max_frame_bytes", "16383 is out of range 16384..16777215" },
    { "http2_unknown_key", LST(LST_OK ",'http2':{'h2':true}"), "listeners.l.http2.h2", "did you mean \"h2c\"" },
    /* pools */
    { "pool_not_object", "{'listeners':{'l':{" LST_OK "}},'pools':{'p':[]}}", "pools.p", "expected an object, got an array" },
    { "pool_unknown_key", POOL(POOL_OK ",'backend':[]"), "pools.p.backend", "did you mean \"backends\"" },
    { "backends_missing", POOL("'retries':1"), "pools.p.backends", "required key is missing" },
    { "backends_empty", POOL("'backends':[]"), "pools.p.backends", "at least 1 entry" },
    { "backend_not_object", POOL("'backends':['127.0.0.1:9001']"), "pools.p.backends[0]", "expected an object" },
    { "backend_address_missing", POOL("'backends':[{'weight':1}]"), "pools.p.backends[0].address", "required key is missing" },
    { "backend_address_bad", B2(",'weight':1},{'address':'1.2.3.4'"), "pools.p.backends[2].address", "missing \":port\"" },
    { "weight_zero", POOL("'backends':[{'address':'127.0.0.1:9001','weight':0}]"), "pools.p.backends[0].weight", "0 is out of range 1..256" },
    { "weight_257", B2(",'weight':257"), "pools.p.backends[1].weight", "257 is out of range 1..256" },
    { "weight_string", B2(",'weight':'2'"), "pools.p.backends[1].weight", "expected an integer, got string \"2\"" },
    { "weight_float", B2(",'weight':1.0"), "pools.p.backends[1].weight", "expected an integer, got 1.0" },
    { "backend_max_connections_negative", B2(",'max_connections':-5"), "pools.p.backends[1].max_connections", "-5 is out of range 0..10000000" },
    { "backend_duplicate_address", B2("},{'address':'localhost:9001'"), "pools.p.backends[2].address", "duplicates backends[0]" },
    { "backend_duplicate_name", POOL("'backends':[{'address':'127.0.0.1:1','name':'x'},{'address':'127.0.0.1:2','name':'x'}]"),
      "pools.p.backends[1].name", "\"x\" is already used by backends[0]" },
    { "backend_name_empty", B2(",'name':''"), "pools.p.backends[1].name", "must not be empty" },
    { "backend_unknown_key", B2(",'wieght':2"), "pools.p.backends[1].wieght", "did you mean \"weight\"" },
    { "balance_bad", POOL(POOL_OK ",'balance':'round-robin'"), "pools.p.balance", "did you mean \"round_robin\"" },
    { "retries_11", POOL(POOL_OK ",'retries':11"), "pools.p.retries", "11 is out of range 0..10" },
    { "keepalive_max_idle_big", POOL(POOL_OK ",'keepalive':{'max_idle':100001}"), "pools.p.keepalive.max_idle", "out of range 0..100000" },
    { "keepalive_idle_timeout_zero", POOL(POOL_OK ",'keepalive':{'idle_timeout_ms':0}"), "pools.p.keepalive.idle_timeout_ms", "out of range" },
    { "keepalive_typo", POOL(POOL_OK ",'keepalive':{'max_idel':1}"), "pools.p.keepalive.max_idel", "did you mean \"max_idle\"" },
    { "hc_type_missing", HC("'interval_ms':1000"), "pools.p.health_check.type", "required key is missing" },
    { "hc_type_bad", HC("'type':'icmp'"), "pools.p.health_check.type", "\"icmp\" is not one of \"tcp\", \"http\"" },
    { "hc_timeout_equals_interval", HC("'type':'tcp','interval_ms':2000,'timeout_ms':2000"),
      "pools.p.health_check.timeout_ms", "2000 must be less than interval_ms (2000)" },
    { "hc_default_timeout_above_interval", HC("'type':'tcp','interval_ms':500"),
      "pools.p.health_check.timeout_ms", "1000 (default) must be less than interval_ms (500)" },
    { "hc_interval_small", HC("'type':'tcp','interval_ms':99"), "pools.p.health_check.interval_ms", "99 is out of range 100..3600000" },
    { "hc_timeout_big", HC("'type':'tcp','interval_ms':3600000,'timeout_ms':600001"), "pools.p.health_check.timeout_ms", "out of range 1..600000" },
    { "hc_rise_zero", HC("'type':'tcp','rise':0"), "pools.p.health_check.rise", "0 is out of range 1..100" },
    { "hc_fall_101", HC("'type':'tcp','fall':101"), "pools.p.health_check.fall", "101 is out of range 1..100" },
    { "hc_path_no_slash", HC("'type':'http','path':'healthz'"), "pools.p.health_check.path", "must start with \"/\"" },
    { "hc_expect_status_600", HC("'type':'http','expect_status':[200,600]"), "pools.p.health_check.expect_status[1]", "600 is out of range 100..599" },
    { "hc_expect_status_string", HC("'type':'http','expect_status':['200']"), "pools.p.health_check.expect_status[0]", "expected an integer" },
    { "hc_expect_status_empty", HC("'type':'http','expect_status':[]"), "pools.p.health_check.expect_status", "at least 1 entry" },
    { "hc_path_on_tcp", HC("'type':'tcp','path':'/'"), "pools.p.health_check.path", "only used by \"http\" health checks" },
    { "hc_expect_body_on_tcp", HC("'type':'tcp','expect_body':'ok'"), "pools.p.health_check.expect_body", "only used by \"http\" health checks" },
    { "hc_expect_body_empty", HC("'type':'http','expect_body':''"), "pools.p.health_check.expect_body", "must not be empty" },
    { "hc_initial_bad", HC("'type':'tcp','initial':'maybe'"), "pools.p.health_check.initial", "\"maybe\" is not one of \"up\", \"down\"" },
    /* balancing */
    { "hash_without_key", POOL(POOL_OK ",'balance':'hash'"), "pools.p.hash_key", "required with \"balance\": \"hash\"" },
    { "hash_key_without_hash", POOL(POOL_OK ",'hash_key':'uri'"), "pools.p.hash_key", "only used with \"balance\": \"hash\"" },
    { "hash_key_unknown", POOL(POOL_OK ",'balance':'hash','hash_key':'url'"), "pools.p.hash_key", "\"url\" is not one of" },
    { "hash_key_header_bad_name", POOL(POOL_OK ",'balance':'hash','hash_key':'header:X Y'"), "pools.p.hash_key", "\"X Y\" is not a header name" },
    { "hash_key_cookie_no_name", POOL(POOL_OK ",'balance':'hash','hash_key':'cookie:'"), "pools.p.hash_key", "is not a cookie name" },
    { "hash_key_header_on_tcp", CFG("", "'listen':'127.0.0.1:8080','mode':'tcp','pool':'p'", POOL_OK ",'balance':'hash','hash_key':'header:X-User'"),
      "pools.p.hash_key", "listener \"l\" (tcp) uses this pool" },
    { "hash_key_sni_on_http", POOL(POOL_OK ",'balance':'hash','hash_key':'sni'"), "pools.p.hash_key", "listener \"l\" (http) uses this pool" },
    { "random_two_typo", POOL(POOL_OK ",'balance':'randomtwo'"), "pools.p.balance", "did you mean \"random_two\"" },
    { "sticky_on_tcp", CFG("", "'listen':'127.0.0.1:8080','mode':'tcp','pool':'p'", POOL_OK ",'sticky':{'cookie':'s'}"),
      "pools.p.sticky", "cookies need an http listener" },
    { "sticky_cookie_missing", POOL(POOL_OK ",'sticky':{'ttl_s':60}"), "pools.p.sticky.cookie", "required key is missing" },
    { "sticky_cookie_bad", POOL(POOL_OK ",'sticky':{'cookie':'a;b'}"), "pools.p.sticky.cookie", "\"a;b\" is not a cookie name" },
    { "sticky_ttl_negative", POOL(POOL_OK ",'sticky':{'cookie':'s','ttl_s':-1}"), "pools.p.sticky.ttl_s", "-1 is out of range" },
    { "sticky_unknown_key", POOL(POOL_OK ",'sticky':{'cookie':'s','ttl':1}"), "pools.p.sticky.ttl", "did you mean \"ttl_s\"" },
    { "slow_start_big", POOL(POOL_OK ",'slow_start_ms':3600001"), "pools.p.slow_start_ms", "3600001 is out of range 0..3600000" },
    { "passive_failures_101", POOL(POOL_OK ",'passive':{'failures':101}"), "pools.p.passive.failures", "101 is out of range 0..100" },
    { "passive_eject_zero", POOL(POOL_OK ",'passive':{'eject_ms':0}"), "pools.p.passive.eject_ms", "0 is out of range" },
    { "passive_on_5xx_string", POOL(POOL_OK ",'passive':{'on_5xx':'yes'}"), "pools.p.passive.on_5xx", "expected true or false" },
    { "passive_unknown_key", POOL(POOL_OK ",'passive':{'failure':1}"), "pools.p.passive.failure", "did you mean \"failures\"" },
    { "backup_string", B2(",'backup':'yes'"), "pools.p.backends[1].backup", "expected true or false" },
    { "drain_number", B2(",'drain':1"), "pools.p.backends[1].drain", "expected true or false" },
    { "only_backups", POOL("'backends':[{'address':'127.0.0.1:1','backup':true}]"), "pools.p.backends", "at least one backend without \"backup\"" },
    { "pool_tls_cert_without_key", POOL(POOL_OK ",'tls':{'cert':'c.pem'}"), "pools.p.tls.key", "required when \"cert\" is set" },
    { "pool_tls_key_without_cert", POOL(POOL_OK ",'tls':{'key':'k.pem'}"), "pools.p.tls.cert", "required when \"key\" is set" },
    { "pool_tls_verify_string", POOL(POOL_OK ",'tls':{'verify':'yes'}"), "pools.p.tls.verify", "expected true or false" },
    { "pool_name_bad", "{'listeners':{'l':{'listen':'127.0.0.1:1','pool':'a/b'}},'pools':{'a/b':{" POOL_OK "}}}",
      "pools[\"a/b\"]", "name must be" },
    /* syntax */
    { "trailing_garbage", TOP("'workers':1") " x", "test.json:1:", "end of file expected" },
    { "trailing_comma", "{'workers':1,}", "test.json:1:14", "string or '}' expected" },
    { "empty_text", "", "test.json", "empty" },
    { "blank_text", " \n\t\n", "test.json", "empty" },
    { "top_level_array", "[]", "test.json", "top level must be a JSON object" },
    { "top_level_number", "42", "test.json:1:", "'[' or '{' expected" },
    { "duplicate_json_key", "{\n  'workers': 1,\n  'workers': 2\n}", "test.json:3:11", "duplicate object key" },
    { "nul_in_string", "{'log':{'access':'a\\u0000b'}}", "test.json:1:", "\\u0000 is not allowed" },
};

static char *double_quotes(const char *s)
{
    char *out = strdup(s);
    assert_non_null(out);
    for (char *p = out; *p; p++)
        if (*p == '\'')
            *p = '"';
    return out;
}

static bool message_matches(const char *msg, const char *path, const char *phrase)
{
    size_t n = strlen(path);
    if (strncmp(msg, path, n) != 0)
        return false;
    /* A path must end where the message says it does ("pools.p" must not match
     * "pools.p.backends"); syntax-error prefixes ("file:1:") may stop mid-number. */
    char next = msg[n];
    bool boundary = next == ':' || next == ' ' || (n > 0 && path[n - 1] == ':');
    return boundary && strstr(msg + n, phrase) != NULL;
}

static void run_case(void **state)
{
    const struct bad_case *c = *state;
    struct config_errors errs = { 0 };
    char *json = double_quotes(c->json);
    struct config *cfg = config_parse(json, strlen(json), "test.json", &errs);
    bool found = false;
    assert_null(cfg);
    assert_true(errs.count > 0);
    for (size_t i = 0; i < errs.count && !found; i++)
        found = message_matches(errs.messages[i], c->path, c->phrase);
    if (!found) {
        for (size_t i = 0; i < errs.count; i++)
            print_message("  got: %s\n", errs.messages[i]);
        fail_msg("no error at \"%s\" containing \"%s\"", c->path, c->phrase);
    }
    config_errors_clear(&errs);
    free(json);
}

int main(void)
{
    enum { N = sizeof CASES / sizeof CASES[0] };
    static struct CMUnitTest tests[N];
    for (size_t i = 0; i < N; i++) {
        tests[i] = (struct CMUnitTest){ .name = CASES[i].name, .test_func = run_case,
                                        .initial_state = (void *)&CASES[i] };
    }
    return _cmocka_run_group_tests("config_validate", tests, N, NULL, NULL);
}

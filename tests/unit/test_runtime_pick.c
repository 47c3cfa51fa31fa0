/* rt_pool_pick (proxy/runtime/pick.c) over real generations built from config
 * text: what a pick reserves, and what a generation shares with the next. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "balance/balance.h"
#include "core/clock.h"
#include "proxyproto/proxyproto.h"
#include "test_runtime_util.h"

/* A pool "p" (tcp listener) with `pool_keys` (JSON members, may be "") and the
 * backends; into buf. */
static const char *pool_json(char *buf, size_t size, const char *pool_keys, const char *backends)
{
    snprintf(buf, size,
             "{\"admin\":null,\"listeners\":{\"l\":{\"listen\":\"127.0.0.1:1\",\"mode\":\"http\","
             "\"pool\":\"p\"}},\"pools\":{\"p\":{%s%s\"backends\":[%s]}}}",
             pool_keys, *pool_keys ? "," : "", backends);
    return buf;
}

#define THREE "{\"address\":\"127.0.0.1:2\",\"name\":\"a\"},{\"address\":\"127.0.0.1:3\"," \
              "\"name\":\"b\"},{\"address\":\"127.0.0.1:4\",\"name\":\"c\"}"

/* Picks once and gives the slot back: the index of the backend, -1 for none. */
static int pick_index(struct rt_pool *pool, const struct rt_pick_hint *hint)
{
    struct backend *b = rt_pool_pick(pool, NULL, 0, hint);
    if (!b)
        return -1;
    rt_pool_release(b);
    for (size_t i = 0; i < pool->n_backends; i++)
        if (pool->backends[i] == b)
            return (int)i;
    return -2;
}

/* Between the pick and the count of the connection, another worker must not see the
 * slot as free: two picks in a row, with nothing released, are two workers picking at
 * the same moment. */
static void test_pick_reserves_the_slot_it_returns(void **state)
{
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, ONE_POOL("{\"address\":\"127.0.0.1:2\","
                                               "\"max_connections\":1}"), 1);
    struct rt_pool *pool = &rt->pools[0];
    struct backend *b = rt_pool_pick(pool, NULL, 0, NULL);
    assert_non_null(b);
    assert_int_equal(atomic_load(&b->active), 1);
    assert_null(rt_pool_pick(pool, NULL, 0, NULL));
    assert_int_equal(atomic_load(&b->active), 1);
    rt_pool_release(b);
    assert_int_equal(atomic_load(&b->active), 0);
    assert_ptr_equal(rt_pool_pick(pool, NULL, 0, NULL), b);
    rt_pool_release(b);
    runtime_unref(rt);
    backend_table_free(table);
}

/* A full backend is passed over for one that has room, not answered with 503. */
static void test_full_backend_is_skipped_for_one_with_room(void **state)
{
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, ONE_POOL("{\"address\":\"127.0.0.1:2\","
                                               "\"max_connections\":2},"
                                               "{\"address\":\"127.0.0.1:3\"}"), 1);
    struct rt_pool *pool = &rt->pools[0];
    struct backend *first = pool->backends[0], *second = pool->backends[1];
    unsigned to_first = 0, to_second = 0;
    struct backend *held[10];
    for (int i = 0; i < 10; i++) {
        held[i] = rt_pool_pick(pool, NULL, 0, NULL);
        assert_non_null(held[i]);
        to_first += held[i] == first;
        to_second += held[i] == second;
    }
    assert_int_equal(to_first, 2);
    assert_int_equal(to_second, 8);
    for (int i = 0; i < 10; i++)
        rt_pool_release(held[i]);
    assert_int_equal(atomic_load(&first->active), 0);
    assert_int_equal(atomic_load(&second->active), 0);
    runtime_unref(rt);
    backend_table_free(table);
}

static void test_sticky_cookie_picks_its_backend_while_it_can(void **state)
{
    char json[1024];
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, pool_json(json, sizeof json,
                                       "\"sticky\":{\"cookie\":\"srv\"}", THREE), 1);
    runtime_publish(rt);
    struct rt_pool *pool = &rt->pools[0];
    struct rt_pick_hint hint = { .has_sticky = true, .sticky = balance_sticky_token("p", "c") };
    assert_true(hint.sticky == rt_pool_sticky_token(pool, pool->backends[2]));
    for (int k = 0; k < 10; k++)
        assert_int_equal(pick_index(pool, &hint), 2);
    /* c drains: the algorithm picks (and the exchange rewrites the cookie). */
    backend_set_drain_override(pool->backends[2], true);
    for (int k = 0; k < 10; k++)
        assert_true(pick_index(pool, &hint) < 2 && pick_index(pool, &hint) >= 0);
    backend_set_drain_override(pool->backends[2], false);
    assert_int_equal(pick_index(pool, &hint), 2);
    /* A token of no backend of this pool: as if there were no cookie. */
    hint.sticky = balance_sticky_token("other", "c");
    assert_int_equal(pick_index(pool, &hint), 0);
    runtime_unref(rt);
    backend_table_free(table);
}

static void test_hash_key_picks_the_same_backend(void **state)
{
    char json[1024];
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, pool_json(json, sizeof json,
                                       "\"balance\":\"hash\",\"hash_key\":\"header:X-User\"",
                                       THREE), 1);
    struct rt_pool *pool = &rt->pools[0];
    for (unsigned user = 0; user < 20; user++) {
        struct rt_pick_hint hint = { .has_key = true, .key = balance_hash(&user, sizeof user) };
        int first = pick_index(pool, &hint);
        assert_true(first >= 0);
        for (int k = 0; k < 5; k++)
            assert_int_equal(pick_index(pool, &hint), first);
    }
    /* Without the key: round-robin. */
    assert_int_equal(pick_index(pool, NULL), 0);
    assert_int_equal(pick_index(pool, NULL), 1);
    runtime_unref(rt);
    backend_table_free(table);
}

#define FIVE "{\"address\":\"127.0.0.1:2\",\"name\":\"a\"},{\"address\":\"127.0.0.1:3\"," \
             "\"name\":\"b\"},{\"address\":\"127.0.0.1:4\",\"name\":\"c\"}," \
             "{\"address\":\"127.0.0.1:5\",\"name\":\"d\"},{\"address\":\"127.0.0.1:6\"," \
             "\"name\":\"e\"}"

/* The pick for a client at sa, as the tcp relay, the HTTP exchange and a udp flow make
 * it: the backend's index (its slot given back). */
static int pick_for_client(struct rt_pool *pool, const void *sa)
{
    struct rt_pick_hint hint = { .has_key = false };
    rt_pick_hint_source(pool, sa, &hint);
    assert_true(hint.has_key);
    return pick_index(pool, &hint);
}

/* The client address of a PROXY header. */
static struct sockaddr_storage proxied_client(const char *header, size_t len)
{
    struct proxyproto_header h;
    assert_int_equal(proxyproto_parse((const uint8_t *)header, len, &h), (int)len);
    assert_false(h.is_local);
    return h.src;
}

/* hash on source_ip: the client's address decides, not its port nor who told it —
 * its own socket, or the PROXY header of a balancer in front (v1 or v2, IPv4 or
 * IPv4-mapped IPv6, as a ferry in front writes an IPv4 client reaching an IPv6
 * address). */
static void test_source_ip_hash_follows_the_client_address(void **state)
{
    char json[1024];
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, pool_json(json, sizeof json,
                                       "\"balance\":\"hash\",\"hash_key\":\"source_ip\"",
                                       FIVE), 1);
    struct rt_pool *pool = &rt->pools[0];
    unsigned owners = 0;
    for (unsigned c = 1; c <= 24; c++) {
        char ip[INET_ADDRSTRLEN];
        snprintf(ip, sizeof ip, "198.51.100.%u", c);
        struct sockaddr_in direct = { .sin_family = AF_INET, .sin_port = htons(40000) };
        assert_int_equal(inet_pton(AF_INET, ip, &direct.sin_addr), 1);
        int owner = pick_for_client(pool, &direct);
        assert_true(owner >= 0);
        owners |= 1u << owner;
        for (unsigned port = 1024; port < 1028; port++) {
            char line[128];
            int n = snprintf(line, sizeof line, "PROXY TCP4 %s 203.0.113.1 %u 443\r\n", ip, port);
            struct sockaddr_storage v1 = proxied_client(line, (size_t)n);
            assert_int_equal(pick_for_client(pool, &v1), owner);
            n = snprintf(line, sizeof line, "PROXY TCP6 ::ffff:%s 2001:db8::1 %u 443\r\n", ip,
                         port);
            struct sockaddr_storage mapped = proxied_client(line, (size_t)n);
            assert_int_equal(pick_for_client(pool, &mapped), owner);

            struct sockaddr_in src = direct;
            src.sin_port = htons((uint16_t)port);
            struct sockaddr_in6 dst = { .sin6_family = AF_INET6, .sin6_port = htons(443),
                                        .sin6_addr = IN6ADDR_LOOPBACK_INIT };
            uint8_t v2[PROXYPROTO_WRITE_MAX];
            size_t len = proxyproto_write(v2, sizeof v2, 2, (const struct sockaddr *)&src,
                                          (const struct sockaddr *)&dst, NULL);
            struct sockaddr_storage written = proxied_client((const char *)v2, len);
            assert_int_equal(written.ss_family, AF_INET6);
            assert_int_equal(pick_for_client(pool, &written), owner);
        }
    }
    assert_true(__builtin_popcount(owners) >= 3);   /* the key does spread clients */
    runtime_unref(rt);
    backend_table_free(table);
}

/* Other pools take no key from the client's address, nor does an address that is not
 * IPv4 or IPv6. */
static void test_source_hint_is_for_source_ip_pools_only(void **state)
{
    static const char *const keys[] = {
        "", "\"balance\":\"hash\",\"hash_key\":\"header:X-User\"",
        "\"balance\":\"least_conn\"",
    };
    struct sockaddr_in client = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc6336401) };
    char json[1024];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        struct backend_table *table = backend_table_new();
        struct runtime *rt = build_runtime(table, pool_json(json, sizeof json, keys[i], THREE), 1);
        struct rt_pick_hint hint = { .has_key = false };
        rt_pick_hint_source(&rt->pools[0], (const struct sockaddr *)&client, &hint);
        assert_false(hint.has_key);
        runtime_unref(rt);
        backend_table_free(table);
    }
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, pool_json(json, sizeof json,
                                       "\"balance\":\"hash\",\"hash_key\":\"source_ip\"",
                                       THREE), 1);
    struct sockaddr_un local = { .sun_family = AF_UNIX };
    struct rt_pick_hint hint = { .has_key = false };
    rt_pick_hint_source(&rt->pools[0], (const struct sockaddr *)&local, &hint);
    assert_false(hint.has_key);
    runtime_unref(rt);
    backend_table_free(table);
}

static void test_draining_and_backup_backends(void **state)
{
    char json[1024];
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, pool_json(json, sizeof json, "",
        "{\"address\":\"127.0.0.1:2\",\"drain\":true},{\"address\":\"127.0.0.1:3\"},"
        "{\"address\":\"127.0.0.1:4\",\"backup\":true}"), 1);
    runtime_publish(rt);
    struct rt_pool *pool = &rt->pools[0];
    assert_int_equal(backend_state(pool->backends[0]), BACKEND_DRAINING);
    for (int k = 0; k < 6; k++)
        assert_int_equal(pick_index(pool, NULL), 1);
    /* The only primary that can take requests goes down: the backup serves. */
    backend_check_down(pool->backends[1], clock_now_ms(), "test");
    for (int k = 0; k < 6; k++)
        assert_int_equal(pick_index(pool, NULL), 2);
    /* The admin API enables the drained one: the backup is idle again. */
    backend_set_drain_override(pool->backends[0], false);
    assert_int_equal(backend_state(pool->backends[0]), BACKEND_UP);
    for (int k = 0; k < 6; k++)
        assert_int_equal(pick_index(pool, NULL), 0);
    /* A reload that leaves "drain": true alone keeps what the API said; one that
     * changes it decides again. */
    runtime_publish(rt);
    assert_int_equal(backend_state(pool->backends[0]), BACKEND_UP);
    struct runtime *next = build_runtime(table, pool_json(json, sizeof json, "",
        "{\"address\":\"127.0.0.1:2\"},{\"address\":\"127.0.0.1:3\"},"
        "{\"address\":\"127.0.0.1:4\",\"backup\":true}"), 2);
    runtime_publish(next);
    backend_set_drain_override(next->pools[0].backends[0], true);
    runtime_publish(next);
    assert_int_equal(backend_state(next->pools[0].backends[0]), BACKEND_DRAINING);
    runtime_unref(rt);
    runtime_unref(next);
    backend_table_free(table);
}

/* A request that took generation 1 just before a reload removed its pool's only
 * backend still goes there (a 503 otherwise, seen in the 1000-reload soak); the newer
 * generation does not see it, and a backend drained on purpose stays out. */
static void test_a_request_caught_by_a_reload_still_reaches_removed_backends(void **state)
{
    char json[1024];
    struct backend_table *table = backend_table_new();
    struct runtime *old = build_runtime(table, pool_json(json, sizeof json, "",
                                        "{\"address\":\"127.0.0.1:2\"}"), 1);
    runtime_publish(old);
    struct runtime *rt = build_runtime(table, pool_json(json, sizeof json, "",
                                       "{\"address\":\"127.0.0.1:3\"}"), 2);
    runtime_publish(rt);
    runtime_keep_backends(rt, table);
    struct backend *removed = old->pools[0].backends[0];
    assert_int_equal(backend_state(removed), BACKEND_DRAINING);
    assert_int_equal(pick_index(&old->pools[0], NULL), 0);
    assert_int_equal(pick_index(&rt->pools[0], NULL), 0);
    assert_ptr_not_equal(rt->pools[0].backends[0], removed);
    /* Down, or drained by the admin API: not even then. */
    backend_set_drain_override(removed, true);
    assert_int_equal(pick_index(&old->pools[0], NULL), -1);
    backend_set_drain_override(removed, false);
    backend_check_down(removed, clock_now_ms(), "test");
    assert_int_equal(pick_index(&old->pools[0], NULL), -1);
    runtime_unref(old);
    runtime_unref(rt);
    backend_table_free(table);
}

/* A backend added by a reload ramps from 10% of its weight. */
static void test_added_backend_starts_slowly(void **state)
{
    char json[1024];
    struct backend_table *table = backend_table_new();
    struct runtime *old = build_runtime(table, pool_json(json, sizeof json, "\"slow_start_ms\":60000",
                                        "{\"address\":\"127.0.0.1:2\"}"), 1);
    struct runtime_deps deps = { .backends = table, .previous = old };
    struct config_errors errs = { 0 };
    pool_json(json, sizeof json, "\"slow_start_ms\":60000",
              "{\"address\":\"127.0.0.1:2\"},{\"address\":\"127.0.0.1:3\"}");
    struct config *cfg = config_parse(json, strlen(json), "t.json", &errs);
    struct err err = { { 0 } };
    struct runtime *rt = runtime_build(cfg, &deps, 2, &err);
    assert_non_null(rt);
    assert_int_equal(atomic_load(&rt->pools[0].backends[0]->up_since_ms), 0);
    assert_true(atomic_load(&rt->pools[0].backends[1]->up_since_ms) > 0);
    unsigned to_new = 0;
    for (int k = 0; k < 1100; k++)
        to_new += pick_index(&rt->pools[0], NULL) == 1;
    print_message("slow start: the added backend got %u of 1100 picks\n", to_new);
    assert_true(to_new >= 90 && to_new <= 130);
    runtime_unref(old);
    runtime_unref(rt);
    backend_table_free(table);
}

/* A reload that leaves the pool alone goes on with its rotation; one that changes its
 * backends starts a new one. */
static void test_unchanged_pool_keeps_its_rotation_across_reloads(void **state)
{
    char json[1024];
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, pool_json(json, sizeof json, "", THREE), 1);
    assert_int_equal(pick_index(&rt->pools[0], NULL), 0);
    for (uint64_t gen = 2; gen <= 4; gen++) {
        struct runtime_deps deps = { .backends = table, .previous = rt };
        struct config_errors errs = { 0 };
        struct err err = { { 0 } };
        pool_json(json, sizeof json, "", THREE);
        struct runtime *next = runtime_build(config_parse(json, strlen(json), "t", &errs), &deps,
                                             gen, &err);
        assert_ptr_equal(next->pools[0].balancer, rt->pools[0].balancer);
        runtime_unref(rt);
        rt = next;
        assert_int_equal(pick_index(&rt->pools[0], NULL), (int)(gen - 1) % 3);
    }
    struct runtime_deps deps = { .backends = table, .previous = rt };
    struct config_errors errs = { 0 };
    struct err err = { { 0 } };
    pool_json(json, sizeof json, "\"balance\":\"least_conn\"", THREE);
    struct runtime *next = runtime_build(config_parse(json, strlen(json), "t", &errs), &deps, 5,
                                         &err);
    assert_ptr_not_equal(next->pools[0].balancer, rt->pools[0].balancer);
    runtime_unref(rt);
    runtime_unref(next);
    backend_table_free(table);
}

/* Pooled connections are kept per flavor: it stays while the pool's transport stays,
 * and grows whenever TLS settings change, TLS is turned on or off, or the PROXY
 * header the connections began with changes. */
static void test_flavor_follows_the_pools_transport(void **state)
{
    static const char *const pools[] = {
        "\"tls\":{\"verify\":false}", "\"tls\":{\"verify\":false}", "",
        "\"tls\":{\"verify\":false}", "\"tls\":{\"verify\":false,\"sni\":\"x\"}", "",
        "\"proxy_protocol\":\"v1\"", "\"proxy_protocol\":\"v1\"", "\"proxy_protocol\":\"v2\"",
        "\"proxy_protocol\":\"v2\",\"tls\":{\"verify\":false}", "",
    };
    static const uint64_t want[] = { 1, 1, 3, 4, 5, 6, 7, 7, 9, 10, 11 };
    char json[1024];
    struct backend_table *table = backend_table_new();
    struct runtime *rt = NULL;
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
        struct runtime_deps deps = { .backends = table, .previous = rt };
        struct config_errors errs = { 0 };
        struct err err = { { 0 } };
        pool_json(json, sizeof json, pools[i], "{\"address\":\"127.0.0.1:2\"}");
        struct runtime *next = runtime_build(config_parse(json, strlen(json), "t", &errs), &deps,
                                             i + 1, &err);
        assert_non_null(next);
        assert_int_equal(next->pools[0].flavor, want[i]);
        runtime_unref(rt);
        rt = next;
    }
    runtime_unref(rt);
    backend_table_free(table);
}

/* Passive ejection: `failures` in a row take it out for eject_ms exactly. */
static void test_passive_ejection_lasts_eject_ms(void **state)
{
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, ONE_POOL("{\"address\":\"127.0.0.1:2\"}"), 1);
    struct backend *b = rt->pools[0].backends[0];
    int64_t t0 = 1000000;
    assert_false(backend_report_failure(b, 3, 500, t0));
    backend_report_success(b);     /* a success breaks the run */
    assert_false(backend_report_failure(b, 3, 500, t0));
    assert_false(backend_report_failure(b, 3, 500, t0));
    assert_true(backend_is_up(b));
    assert_true(backend_report_failure(b, 3, 500, t0 + 10));
    assert_false(backend_is_up(b));
    assert_true(backend_is_ejected(b));
    backend_maybe_revive(b, t0 + 509);
    assert_false(backend_is_up(b));
    backend_maybe_revive(b, t0 + 510);
    assert_true(backend_is_up(b));
    assert_int_equal(atomic_load(&b->transitions[BACKEND_DOWN]), 1);
    assert_int_equal(atomic_load(&b->transitions[BACKEND_UP]), 1);
    /* failures 0: never ejected. */
    for (int k = 0; k < 100; k++)
        assert_false(backend_report_failure(b, 0, 500, t0));
    assert_true(backend_is_up(b));
    runtime_unref(rt);
    backend_table_free(table);
}

/* A pool whose DNS names resolved to nothing yet has no backend to pick. */
static void test_pool_without_backends_picks_none(void **state)
{
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, ONE_POOL("{\"address\":\"nowhere.test:80\"}"), 1);
    assert_int_equal(rt->pools[0].n_backends, 0);
    assert_null(rt_pool_pick(&rt->pools[0], NULL, 0, NULL));
    runtime_unref(rt);
    backend_table_free(table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_without_backends_picks_none),
        cmocka_unit_test(test_pick_reserves_the_slot_it_returns),
        cmocka_unit_test(test_full_backend_is_skipped_for_one_with_room),
        cmocka_unit_test(test_sticky_cookie_picks_its_backend_while_it_can),
        cmocka_unit_test(test_hash_key_picks_the_same_backend),
        cmocka_unit_test(test_source_ip_hash_follows_the_client_address),
        cmocka_unit_test(test_source_hint_is_for_source_ip_pools_only),
        cmocka_unit_test(test_draining_and_backup_backends),
        cmocka_unit_test(test_a_request_caught_by_a_reload_still_reaches_removed_backends),
        cmocka_unit_test(test_added_backend_starts_slowly),
        cmocka_unit_test(test_unchanged_pool_keeps_its_rotation_across_reloads),
        cmocka_unit_test(test_passive_ejection_lasts_eject_ms),
        cmocka_unit_test(test_flavor_follows_the_pools_transport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

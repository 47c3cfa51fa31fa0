/* The backend table (proxy/runtime/backend.c): which backend state a generation gets
 * for each configured backend, and how long the table keeps it. */
#include "test_runtime_util.h"

/* Two spellings of one socket address are one backend: its state must not restart. */
static void expect_same_backend(const char *before, const char *after)
{
    char json_a[512], json_b[512];
    snprintf(json_a, sizeof json_a, ONE_POOL("{\"address\":\"%s\"}"), before);
    snprintf(json_b, sizeof json_b, ONE_POOL("{\"address\":\"%s\"}"), after);
    struct backend_table *table = backend_table_new();
    struct runtime *a = build_runtime(table, json_a, 1);
    struct runtime *b = build_runtime(table, json_b, 2);
    assert_ptr_equal(a->pools[0].backends[0], b->pools[0].backends[0]);
    runtime_unref(a);
    runtime_unref(b);
    backend_table_free(table);
}

static void test_backend_is_matched_by_address_not_its_text(void **state)
{
    expect_same_backend("127.0.0.1:8080", "127.0.0.1:08080");
    expect_same_backend("[::1]:8080", "[0::1]:8080");
    expect_same_backend("[::ffff:7f00:1]:80", "[::FFFF:127.0.0.1]:80");
}

#define TWO_BACKENDS ONE_POOL("{\"address\":\"127.0.0.1:2\"},{\"address\":\"127.0.0.1:3\"}")
#define FIRST_ONLY ONE_POOL("{\"address\":\"127.0.0.1:2\"}")

/* Generation `next` replaces *current, as a reload does. */
static void reload(struct backend_table *table, struct runtime **current, const char *json,
                   uint64_t next)
{
    struct runtime *rt = build_runtime(table, json, next);
    runtime_unref(*current);
    *current = rt;
    runtime_keep_backends(rt, table);
}

static void test_removed_backend_leaves_the_table_and_comes_back_fresh(void **state)
{
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, TWO_BACKENDS, 1);
    struct backend *second = rt->pools[0].backends[1];
    atomic_store(&second->requests, 5);
    assert_int_equal(backend_table_count(table), 2);
    reload(table, &rt, FIRST_ONLY, 2);
    assert_int_equal(backend_table_count(table), 1);
    reload(table, &rt, TWO_BACKENDS, 3);
    assert_int_equal(backend_table_count(table), 2);
    assert_int_equal(atomic_load(&rt->pools[0].backends[1]->requests), 0);
    assert_false(backend_is_removed(rt->pools[0].backends[1]));
    runtime_unref(rt);
    backend_table_free(table);
}

/* Something still holds the removed backend (an older generation, here): it drains
 * (the older generation picks it only when nothing else can take the request: see
 * test_runtime_pick), is never handed to a new generation, and leaves with its last
 * reference. */
static void test_removed_backend_drains_until_its_last_reference(void **state)
{
    struct backend_table *table = backend_table_new();
    struct runtime *old = build_runtime(table, TWO_BACKENDS, 1);
    struct backend *second = old->pools[0].backends[1];
    struct runtime *rt = build_runtime(table, FIRST_ONLY, 2);
    runtime_keep_backends(rt, table);
    assert_int_equal(backend_table_count(table), 2);
    assert_int_equal(backend_state(second), BACKEND_DRAINING);
    for (int i = 0; i < 4; i++) {
        struct backend *b = rt_pool_pick(&old->pools[0], NULL, 0, NULL);
        assert_ptr_equal(b, old->pools[0].backends[0]);
        rt_pool_release(b);
    }
    struct runtime *again = build_runtime(table, TWO_BACKENDS, 3);
    assert_ptr_not_equal(again->pools[0].backends[1], second);
    runtime_unref(again);
    runtime_keep_backends(rt, table);
    runtime_unref(old);
    assert_int_equal(backend_table_count(table), 1);
    runtime_unref(rt);
    backend_table_free(table);
}

/* A rejected reload built generation 2 and dropped it: what it added goes too. */
static void test_backends_of_a_rejected_generation_do_not_stay(void **state)
{
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, FIRST_ONLY, 1);
    runtime_unref(build_runtime(table, TWO_BACKENDS, 2));
    runtime_keep_backends(rt, table);
    assert_int_equal(backend_table_count(table), 1);
    runtime_unref(rt);
    backend_table_free(table);
}

static void test_table_stays_flat_across_a_thousand_reloads(void **state)
{
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, FIRST_ONLY, 1);
    for (uint64_t gen = 2; gen <= 1001; gen++) {
        char json[512];
        snprintf(json, sizeof json, ONE_POOL("{\"address\":\"127.0.0.1:2\"},"
                                             "{\"address\":\"127.0.0.1:%u\"}"),
                 (unsigned)(1000 + gen));
        reload(table, &rt, json, gen);
        assert_int_equal(backend_table_count(table), 2);
    }
    runtime_unref(rt);
    backend_table_free(table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_is_matched_by_address_not_its_text),
        cmocka_unit_test(test_removed_backend_leaves_the_table_and_comes_back_fresh),
        cmocka_unit_test(test_removed_backend_drains_until_its_last_reference),
        cmocka_unit_test(test_backends_of_a_rejected_generation_do_not_stay),
        cmocka_unit_test(test_table_stays_flat_across_a_thousand_reloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

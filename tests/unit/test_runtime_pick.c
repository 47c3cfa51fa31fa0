/* rt_pool_pick (proxy/runtime/runtime.c) over real generations built from config
 * text: what a pick reserves, and what a generation shares with the next. */
#include "test_runtime_util.h"

/* Between the pick and the count of the connection, another worker must not see the
 * slot as free: two picks in a row, with nothing released, are two workers picking at
 * the same moment. */
static void test_pick_reserves_the_slot_it_returns(void **state)
{
    struct backend_table *table = backend_table_new();
    struct runtime *rt = build_runtime(table, ONE_POOL("{\"address\":\"127.0.0.1:2\","
                                               "\"max_connections\":1}"), 1);
    struct rt_pool *pool = &rt->pools[0];
    struct backend *b = rt_pool_pick(pool, NULL, 0);
    assert_non_null(b);
    assert_int_equal(atomic_load(&b->active), 1);
    assert_null(rt_pool_pick(pool, NULL, 0));
    assert_int_equal(atomic_load(&b->active), 1);
    rt_pool_release(b);
    assert_int_equal(atomic_load(&b->active), 0);
    assert_ptr_equal(rt_pool_pick(pool, NULL, 0), b);
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
        held[i] = rt_pool_pick(pool, NULL, 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_reserves_the_slot_it_returns),
        cmocka_unit_test(test_full_backend_is_skipped_for_one_with_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

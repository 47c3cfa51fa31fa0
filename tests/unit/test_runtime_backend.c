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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_is_matched_by_address_not_its_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

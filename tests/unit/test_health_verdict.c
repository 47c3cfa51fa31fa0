/* The rise/fall rule of active health checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "health/verdict.h"

static void test_up_backend_goes_down_after_fall_failures(void **state)
{
    struct health_run run = { .up = true };
    assert_int_equal(health_observe(&run, false, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, false, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, false, 2, 3), HEALTH_WENT_DOWN);
    assert_false(run.up);
}

static void test_success_between_failures_resets_the_fall_streak(void **state)
{
    struct health_run run = { .up = true };
    health_observe(&run, false, 2, 3);
    health_observe(&run, false, 2, 3);
    assert_int_equal(health_observe(&run, true, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, false, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, false, 2, 3), HEALTH_SAME);
    assert_true(run.up);
}

static void test_down_backend_needs_rise_successes_in_a_row(void **state)
{
    struct health_run run = { .up = false };
    assert_int_equal(health_observe(&run, true, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, false, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, true, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, true, 2, 3), HEALTH_WENT_UP);
    assert_true(run.up);
}

static void test_rise_and_fall_of_one_flip_at_once(void **state)
{
    struct health_run run = { .up = true };
    assert_int_equal(health_observe(&run, false, 1, 1), HEALTH_WENT_DOWN);
    assert_int_equal(health_observe(&run, true, 1, 1), HEALTH_WENT_UP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_up_backend_goes_down_after_fall_failures),
        cmocka_unit_test(test_success_between_failures_resets_the_fall_streak),
        cmocka_unit_test(test_down_backend_needs_rise_successes_in_a_row),
        cmocka_unit_test(test_rise_and_fall_of_one_flip_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

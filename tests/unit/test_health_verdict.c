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
    assert_int_equal(health_observe(&run, run.up, false, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, run.up, false, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, run.up, false, 2, 3), HEALTH_WENT_DOWN);
    assert_false(run.up);
}

static void test_success_between_failures_resets_the_fall_streak(void **state)
{
    struct health_run run = { .up = true };
    health_observe(&run, run.up, false, 2, 3);
    health_observe(&run, run.up, false, 2, 3);
    assert_int_equal(health_observe(&run, run.up, true, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, run.up, false, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, run.up, false, 2, 3), HEALTH_SAME);
    assert_true(run.up);
}

static void test_down_backend_needs_rise_successes_in_a_row(void **state)
{
    struct health_run run = { .up = false };
    assert_int_equal(health_observe(&run, run.up, true, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, run.up, false, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, run.up, true, 2, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, run.up, true, 2, 3), HEALTH_WENT_UP);
    assert_true(run.up);
}

static void test_rise_and_fall_of_one_flip_at_once(void **state)
{
    struct health_run run = { .up = true };
    assert_int_equal(health_observe(&run, run.up, false, 1, 1), HEALTH_WENT_DOWN);
    assert_int_equal(health_observe(&run, run.up, true, 1, 1), HEALTH_WENT_UP);
}

/* A passive check took the backend down between two probes: the failures the probes
 * had counted while it was up must not count as successes towards rising. */
static void test_a_state_changed_elsewhere_restarts_the_streak(void **state)
{
    struct health_run run = { .up = true };
    health_observe(&run, true, false, 3, 3);
    health_observe(&run, true, false, 3, 3);        /* streak 2 of 3 failures */
    assert_int_equal(health_observe(&run, false, true, 3, 3), HEALTH_SAME);   /* now down */
    assert_int_equal(health_observe(&run, false, true, 3, 3), HEALTH_SAME);
    assert_int_equal(health_observe(&run, false, true, 3, 3), HEALTH_WENT_UP);
    assert_true(run.up);
    /* and the other way: brought up elsewhere, it needs `fall` failures again */
    run = (struct health_run){ .up = false };
    health_observe(&run, false, true, 2, 2);          /* streak 1 of 2 successes */
    assert_int_equal(health_observe(&run, true, false, 2, 2), HEALTH_SAME);
    assert_int_equal(health_observe(&run, true, false, 2, 2), HEALTH_WENT_DOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_up_backend_goes_down_after_fall_failures),
        cmocka_unit_test(test_success_between_failures_resets_the_fall_streak),
        cmocka_unit_test(test_down_backend_needs_rise_successes_in_a_row),
        cmocka_unit_test(test_rise_and_fall_of_one_flip_at_once),
        cmocka_unit_test(test_a_state_changed_elsewhere_restarts_the_streak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

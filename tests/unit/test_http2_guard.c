/* HTTP/2 abuse budgets (proxy/http2/guard.c), driven by a fake clock in ms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http2/guard.h"

#define T0 1000000 /* any start time: the guard only looks at differences */

/* Spends n resets at time now; returns how many were allowed. */
static int resets(struct h2_guard *g, int n, int64_t now)
{
    int allowed = 0;
    for (int i = 0; i < n; i++)
        allowed += h2_guard_client_reset(g, now);
    return allowed;
}

static int control_frames(struct h2_guard *g, int n, int64_t now)
{
    int allowed = 0;
    for (int i = 0; i < n; i++)
        allowed += h2_guard_control_frame(g, now);
    return allowed;
}

static void test_reset_burst_is_allowed_and_one_more_is_refused(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    assert_int_equal(resets(&g, H2_GUARD_RESET_BURST, T0), H2_GUARD_RESET_BURST);
    assert_false(h2_guard_client_reset(&g, T0));
}

static void test_control_burst_is_allowed_and_one_more_is_refused(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    assert_int_equal(control_frames(&g, H2_GUARD_CONTROL_BURST, T0), H2_GUARD_CONTROL_BURST);
    assert_false(h2_guard_control_frame(&g, T0));
}

static void test_buckets_are_independent(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    resets(&g, H2_GUARD_RESET_BURST, T0);
    assert_true(h2_guard_control_frame(&g, T0));
    control_frames(&g, H2_GUARD_CONTROL_BURST, T0);
    h2_guard_init(&g, T0);
    control_frames(&g, H2_GUARD_CONTROL_BURST + 1, T0);
    assert_true(h2_guard_client_reset(&g, T0));
}

static void test_resets_refill_at_their_rate(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    resets(&g, H2_GUARD_RESET_BURST, T0);
    /* 10 per second: one token every 100 ms, none before. */
    assert_false(h2_guard_client_reset(&g, T0 + 99));
    assert_true(h2_guard_client_reset(&g, T0 + 100));
    assert_false(h2_guard_client_reset(&g, T0 + 100));
    assert_int_equal(resets(&g, 20, T0 + 1100), H2_GUARD_RESET_PER_S);
}

static void test_slow_refills_add_up(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    resets(&g, H2_GUARD_RESET_BURST, T0);
    /* Ten looks 10 ms apart earn one token between them, not zero each time. */
    for (int64_t t = T0 + 10; t < T0 + 100; t += 10)
        assert_false(h2_guard_client_reset(&g, t));
    assert_true(h2_guard_client_reset(&g, T0 + 100));
}

static void test_control_frames_refill_at_their_rate(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    control_frames(&g, H2_GUARD_CONTROL_BURST, T0);
    assert_int_equal(control_frames(&g, 200, T0 + 1000), H2_GUARD_CONTROL_PER_S);
}

static void test_refill_caps_at_the_burst(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    resets(&g, 1, T0);
    control_frames(&g, 1, T0);
    int64_t later = T0 + 3600 * 1000; /* an hour idle */
    assert_int_equal(resets(&g, H2_GUARD_RESET_BURST + 1, later), H2_GUARD_RESET_BURST);
    assert_int_equal(control_frames(&g, H2_GUARD_CONTROL_BURST + 1, later),
                     H2_GUARD_CONTROL_BURST);
}

static void test_years_idle_do_not_overflow(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, 0);
    resets(&g, H2_GUARD_RESET_BURST, 0);
    assert_int_equal(resets(&g, H2_GUARD_RESET_BURST + 1, INT64_MAX), H2_GUARD_RESET_BURST);
}

static void test_clock_going_back_refills_nothing(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    resets(&g, H2_GUARD_RESET_BURST, T0);
    assert_false(h2_guard_client_reset(&g, T0 - 5000));
    assert_true(h2_guard_client_reset(&g, T0 + 100));
}

static void test_useful_work_earns_control_tokens(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    control_frames(&g, H2_GUARD_CONTROL_BURST, T0);
    /* A download: a WINDOW_UPDATE for every few DATA frames never runs dry. */
    for (int i = 0; i < 10 * H2_GUARD_CONTROL_BURST; i++) {
        h2_guard_useful(&g);
        assert_true(h2_guard_control_frame(&g, T0));
    }
    assert_false(h2_guard_control_frame(&g, T0));
}

static void test_useful_work_earns_no_reset_tokens(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    resets(&g, H2_GUARD_RESET_BURST, T0);
    for (int i = 0; i < 10; i++)
        h2_guard_useful(&g);
    assert_false(h2_guard_client_reset(&g, T0));
}

static void test_completed_stream_earns_a_reset_token(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    resets(&g, H2_GUARD_RESET_BURST, T0);
    h2_guard_stream_completed(&g);
    assert_true(h2_guard_client_reset(&g, T0));
    assert_false(h2_guard_client_reset(&g, T0));
}

static void test_completed_stream_earns_no_control_token(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    control_frames(&g, H2_GUARD_CONTROL_BURST, T0);
    h2_guard_stream_completed(&g);
    assert_false(h2_guard_control_frame(&g, T0));
}

static void test_earned_tokens_cap_at_the_burst(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    for (int i = 0; i < 5000; i++) {
        h2_guard_useful(&g);
        h2_guard_stream_completed(&g);
    }
    assert_int_equal(resets(&g, H2_GUARD_RESET_BURST + 1, T0), H2_GUARD_RESET_BURST);
    assert_int_equal(control_frames(&g, H2_GUARD_CONTROL_BURST + 1, T0),
                     H2_GUARD_CONTROL_BURST);
}

static void test_rapid_reset_attack_is_stopped_even_with_requests(void **state)
{
    struct h2_guard g;
    h2_guard_init(&g, T0);
    /* CVE-2023-44487: open (a request, useful work) and reset at once, forever. */
    int allowed = 0;
    for (int i = 0; i < 10 * H2_GUARD_RESET_BURST; i++) {
        h2_guard_useful(&g);
        if (!h2_guard_client_reset(&g, T0 + i))
            break;
        allowed++;
    }
    /* The burst, plus what 10/s refilled over the ~110 ms the attack took. */
    assert_in_range(allowed, H2_GUARD_RESET_BURST, H2_GUARD_RESET_BURST + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_burst_is_allowed_and_one_more_is_refused),
        cmocka_unit_test(test_control_burst_is_allowed_and_one_more_is_refused),
        cmocka_unit_test(test_buckets_are_independent),
        cmocka_unit_test(test_resets_refill_at_their_rate),
        cmocka_unit_test(test_slow_refills_add_up),
        cmocka_unit_test(test_control_frames_refill_at_their_rate),
        cmocka_unit_test(test_refill_caps_at_the_burst),
        cmocka_unit_test(test_years_idle_do_not_overflow),
        cmocka_unit_test(test_clock_going_back_refills_nothing),
        cmocka_unit_test(test_useful_work_earns_control_tokens),
        cmocka_unit_test(test_useful_work_earns_no_reset_tokens),
        cmocka_unit_test(test_completed_stream_earns_a_reset_token),
        cmocka_unit_test(test_completed_stream_earns_no_control_token),
        cmocka_unit_test(test_earned_tokens_cap_at_the_burst),
        cmocka_unit_test(test_rapid_reset_attack_is_stopped_even_with_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

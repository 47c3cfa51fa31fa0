/* test_discovery_policy — TTL clamping, retry backoff (growth, cap, jitter, huge
 * failure counts), SRV weight mapping and combining query outcomes
 * (proxy/discovery/policy.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "discovery/policy.h"

static void test_ttl_is_clamped_to_the_bounds(void **state)
{
    assert_int_equal(dns_refresh_ms(30, 1000, 300000), 30000);
    assert_int_equal(dns_refresh_ms(0, 1000, 300000), 1000);         /* TTL 0: not a busy loop */
    assert_int_equal(dns_refresh_ms(1, 2500, 300000), 2500);
    assert_int_equal(dns_refresh_ms(86400, 1000, 300000), 300000);
    assert_int_equal(dns_refresh_ms(UINT32_MAX, 1000, 300000), 300000);  /* no overflow */
    assert_int_equal(dns_refresh_ms(5, 5000, 5000), 5000);
}

static void test_backoff_doubles_from_min_ttl_without_jitter_at_zero(void **state)
{
    /* random = UINT32_MAX takes (almost) the whole delay: the upper edge. */
    assert_int_equal(dns_backoff_ms(1, 1000, 300000, UINT32_MAX), 999 + 1);
    unsigned top2 = dns_backoff_ms(2, 1000, 300000, UINT32_MAX);
    unsigned top3 = dns_backoff_ms(3, 1000, 300000, UINT32_MAX);
    assert_in_range(top2, 1999, 2000);
    assert_in_range(top3, 3999, 4000);
    /* random = 0: the lower edge, half of the delay, never below min_ttl_ms. */
    assert_int_equal(dns_backoff_ms(1, 1000, 300000, 0), 1000);
    assert_int_equal(dns_backoff_ms(3, 1000, 300000, 0), 2000);
}

static void test_backoff_is_capped(void **state)
{
    for (unsigned failures = 6; failures < 40; failures++) {
        unsigned hi = dns_backoff_ms(failures, 1000, 300000, UINT32_MAX);
        unsigned lo = dns_backoff_ms(failures, 1000, 300000, 0);
        assert_in_range(hi, DNS_BACKOFF_CAP_MS - 1, DNS_BACKOFF_CAP_MS);
        assert_int_equal(lo, DNS_BACKOFF_CAP_MS / 2);
    }
    /* A max_ttl_ms below the cap is the cap; a failure count that would overflow a
     * shift is fine. */
    assert_in_range(dns_backoff_ms(UINT32_MAX, 1000, 5000, UINT32_MAX), 4999, 5000);
    /* min_ttl_ms above the cap: retries are not sooner than min_ttl_ms. */
    assert_int_equal(dns_backoff_ms(9, 60000, 300000, 0), 60000);
    assert_int_equal(dns_backoff_ms(9, 60000, 300000, UINT32_MAX), 60000);
}

static void test_backoff_jitter_spreads_retries(void **state)
{
    /* Retries of processes that failed together land in different places. */
    unsigned seen[8];
    uint32_t random = 12345;
    for (size_t i = 0; i < 8; i++) {
        random = random * 1103515245u + 12345u;
        seen[i] = dns_backoff_ms(5, 1000, 300000, random);
        assert_in_range(seen[i], 8000, 16000);
    }
    unsigned distinct = 0;
    for (size_t i = 0; i < 8; i++) {
        bool repeated = false;
        for (size_t j = 0; j < i; j++)
            repeated |= seen[j] == seen[i];
        distinct += !repeated;
    }
    assert_true(distinct >= 6);
}

static void test_srv_weights(void **state)
{
    assert_int_equal(dns_srv_weight(3, 3), 3);
    assert_int_equal(dns_srv_weight(256, 256), 256);
    assert_int_equal(dns_srv_weight(0, 10), 1);
    assert_int_equal(dns_srv_weight(0, 0), 1);
    /* Scaled in proportion when the largest is over 256: 1:3 stays 1:3. */
    assert_int_equal(dns_srv_weight(65535, 65535), 256);
    assert_int_equal(dns_srv_weight(1000, 3000), 85);
    assert_int_equal(dns_srv_weight(3000, 3000), 256);
    assert_int_equal(dns_srv_weight(1, 65535), 1);      /* never 0 */
}

static void test_results_combine_to_the_worse(void **state)
{
    assert_int_equal(dns_result_worse(DNS_RESULT_OK, DNS_RESULT_NODATA), DNS_RESULT_NODATA);
    assert_int_equal(dns_result_worse(DNS_RESULT_NXDOMAIN, DNS_RESULT_NODATA), DNS_RESULT_NXDOMAIN);
    assert_int_equal(dns_result_worse(DNS_RESULT_NXDOMAIN, DNS_RESULT_TIMEOUT), DNS_RESULT_TIMEOUT);
    assert_int_equal(dns_result_worse(DNS_RESULT_SERVFAIL, DNS_RESULT_ERROR), DNS_RESULT_SERVFAIL);
    assert_int_equal(dns_result_worse(DNS_RESULT_OK, DNS_RESULT_OK), DNS_RESULT_OK);
    assert_string_equal(dns_result_name(DNS_RESULT_SERVFAIL), "servfail");
    assert_string_equal(dns_result_name(DNS_RESULT_OK), "ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl_is_clamped_to_the_bounds),
        cmocka_unit_test(test_backoff_doubles_from_min_ttl_without_jitter_at_zero),
        cmocka_unit_test(test_backoff_is_capped),
        cmocka_unit_test(test_backoff_jitter_spreads_retries),
        cmocka_unit_test(test_srv_weights),
        cmocka_unit_test(test_results_combine_to_the_worse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

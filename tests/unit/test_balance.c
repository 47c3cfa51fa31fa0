/* Unit tests for proxy/balance: exact pick sequences, exact counts, eligibility rules
 * and thread safety. The balancer is pure, so every expectation is deterministic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <cmocka.h>

#include "balance/balance.h"

#define MAX_CANDIDATES 8

/* Candidates with the given weights, all healthy, idle and unlimited. */
static void make_candidates(struct balance_candidate *c, const unsigned *weights, size_t n)
{
    memset(c, 0, n * sizeof *c);
    for (size_t i = 0; i < n; i++) {
        c[i].weight = weights[i];
        c[i].healthy = true;
    }
}

/* Picks `count` times and writes the chosen indices as letters 'a'+i into out. */
static void pick_letters(struct balancer *b, const struct balance_candidate *c, size_t n,
                         char *out, size_t count)
{
    for (size_t k = 0; k < count; k++) {
        int i = balance_pick(b, c, n);
        assert_true(i >= 0 && (size_t)i < n);
        out[k] = (char)('a' + i);
    }
    out[count] = '\0';
}

static void count_picks(struct balancer *b, const struct balance_candidate *c, size_t n,
                        size_t picks, unsigned *counts)
{
    memset(counts, 0, n * sizeof *counts);
    for (size_t k = 0; k < picks; k++) {
        int i = balance_pick(b, c, n);
        assert_true(i >= 0 && (size_t)i < n);
        counts[i]++;
    }
}

static size_t longest_run_of(const char *s, char letter)
{
    size_t best = 0, run = 0;
    for (; *s; s++) {
        run = (*s == letter) ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

static void test_algo_names_match_config_keywords(void **state)
{
    (void)state;
    assert_string_equal(balance_algo_name(BALANCE_ROUND_ROBIN), "round_robin");
    assert_string_equal(balance_algo_name(BALANCE_LEAST_CONN), "least_conn");
}

static void test_pick_rejects_count_other_than_created(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    struct balancer *b = balancer_new(BALANCE_ROUND_ROBIN, 2);
    assert_non_null(b);
    assert_int_equal(balance_pick(b, c, 3), -1);
    assert_int_equal(balance_pick(b, c, 0), -1);
    assert_int_equal(balance_pick(b, NULL, 2), -1);
    assert_int_equal(balance_pick(b, c, 2), 0);
    balancer_free(b);
    balancer_free(NULL);
}

static void test_single_candidate_always_picked(void **state)
{
    (void)state;
    const unsigned w[] = { 7 };
    struct balance_candidate c[1];
    make_candidates(c, w, 1);
    for (int algo = BALANCE_ROUND_ROBIN; algo <= BALANCE_LEAST_CONN; algo++) {
        struct balancer *b = balancer_new((enum balance_algo)algo, 1);
        assert_non_null(b);
        for (int k = 0; k < 20; k++)
            assert_int_equal(balance_pick(b, c, 1), 0);
        balancer_free(b);
    }
}

static void test_rr_equal_weights_alternate(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    struct balancer *b = balancer_new(BALANCE_ROUND_ROBIN, 2);
    char seq[16];
    pick_letters(b, c, 2, seq, 10);
    assert_string_equal(seq, "ababababab");
    balancer_free(b);
}

static void test_rr_weights_1_3_sequence_and_counts(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 3 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    struct balancer *b = balancer_new(BALANCE_ROUND_ROBIN, 2);
    char seq[16];
    pick_letters(b, c, 2, seq, 8);
    /* The light backend lands inside the cycle, not after three b's in a row. */
    assert_string_equal(seq, "babbbabb");

    unsigned counts[2];
    count_picks(b, c, 2, 100 * 4, counts);
    assert_int_equal(counts[0], 100);
    assert_int_equal(counts[1], 300);
    balancer_free(b);
}

static void test_rr_weights_5_1_1_are_smooth(void **state)
{
    (void)state;
    const unsigned w[] = { 5, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    struct balancer *b = balancer_new(BALANCE_ROUND_ROBIN, 3);
    char seq[701];
    pick_letters(b, c, 3, seq, 14);
    assert_string_equal(seq, "aabacaaaabacaa");

    /* Over many cycles: within a cycle 'a' never runs more than 2 (the naive WRR gives
     * 5); across the cycle boundary the tail "aa" meets the head "aa", so 4 is the
     * longest run there can be. b and c each come exactly once per 7 picks. */
    pick_letters(b, c, 3, seq, 700);
    assert_true(longest_run_of(seq, 'a') <= 4);
    assert_int_equal(longest_run_of(seq, 'b'), 1);
    assert_int_equal(longest_run_of(seq, 'c'), 1);
    for (size_t start = 0; start + 7 <= 700; start += 7) {
        unsigned n_a = 0, n_b = 0, n_c = 0;
        for (size_t k = start; k < start + 7; k++) {
            n_a += seq[k] == 'a';
            n_b += seq[k] == 'b';
            n_c += seq[k] == 'c';
        }
        assert_int_equal(n_a, 5);
        assert_int_equal(n_b, 1);
        assert_int_equal(n_c, 1);
    }
    balancer_free(b);
}

static void test_rr_exact_counts_over_whole_cycles(void **state)
{
    (void)state;
    const unsigned w[] = { 3, 7, 1, 5, 256 };
    const size_t n = 5, cycles = 50;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += w[i];
    struct balance_candidate c[5];
    make_candidates(c, w, n);
    struct balancer *b = balancer_new(BALANCE_ROUND_ROBIN, n);

    unsigned counts[5];
    count_picks(b, c, n, cycles * sum, counts);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(counts[i], cycles * w[i]);
    balancer_free(b);
}

static void test_rr_unhealthy_never_picked(void **state)
{
    (void)state;
    const unsigned w[] = { 10, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    c[0].healthy = false;
    struct balancer *b = balancer_new(BALANCE_ROUND_ROBIN, 3);

    unsigned counts[3];
    count_picks(b, c, 3, 1000, counts);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], 500);
    assert_int_equal(counts[2], 500);
    balancer_free(b);
}

static void test_rr_recovered_backend_gets_its_share_again(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    struct balancer *b = balancer_new(BALANCE_ROUND_ROBIN, 2);

    c[1].healthy = false;
    for (int k = 0; k < 9; k++)
        assert_int_equal(balance_pick(b, c, 2), 0);
    c[1].healthy = true;
    unsigned counts[2];
    count_picks(b, c, 2, 100, counts);
    assert_int_equal(counts[0], 50);
    assert_int_equal(counts[1], 50);
    balancer_free(b);
}

static void test_rr_excluded_skipped(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    c[1].excluded = true;
    struct balancer *b = balancer_new(BALANCE_ROUND_ROBIN, 3);
    char seq[16];
    pick_letters(b, c, 3, seq, 6);
    assert_string_equal(seq, "acacac");
    balancer_free(b);
}

static void test_rr_full_backend_skipped(void **state)
{
    (void)state;
    const unsigned w[] = { 5, 1 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    c[0].max_connections = 3;
    c[0].active = 3;
    struct balancer *b = balancer_new(BALANCE_ROUND_ROBIN, 2);
    for (int k = 0; k < 10; k++)
        assert_int_equal(balance_pick(b, c, 2), 1);

    /* One below the limit: eligible again, and max_connections 0 means no limit. The
     * skipped picks left no debt, so whole 5:1 cycles follow. */
    c[0].active = 2;
    c[1].max_connections = 0;
    c[1].active = UINT_MAX;
    unsigned counts[2];
    count_picks(b, c, 2, 60, counts);
    assert_int_equal(counts[0], 50);
    assert_int_equal(counts[1], 10);
    balancer_free(b);
}

static void test_none_eligible_returns_minus_one(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 2, 3 };
    struct balance_candidate c[3];
    for (int algo = BALANCE_ROUND_ROBIN; algo <= BALANCE_LEAST_CONN; algo++) {
        struct balancer *b = balancer_new((enum balance_algo)algo, 3);
        make_candidates(c, w, 3);
        for (size_t i = 0; i < 3; i++) {
            c[i].max_connections = 2;
            c[i].active = 2;
        }
        assert_int_equal(balance_pick(b, c, 3), -1);

        make_candidates(c, w, 3);
        c[0].healthy = false;
        c[1].excluded = true;
        c[2].max_connections = 1;
        c[2].active = 1;
        assert_int_equal(balance_pick(b, c, 3), -1);

        /* A -1 leaves no trace: the next eligible pick works normally. */
        c[2].active = 0;
        assert_int_equal(balance_pick(b, c, 3), 2);
        balancer_free(b);
    }
}

static void test_lc_picks_fewest_active(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    c[0].active = 5;
    c[1].active = 2;
    c[2].active = 9;
    struct balancer *b = balancer_new(BALANCE_LEAST_CONN, 3);
    for (int k = 0; k < 5; k++)
        assert_int_equal(balance_pick(b, c, 3), 1);
    c[1].active = 6;
    assert_int_equal(balance_pick(b, c, 3), 0);
    balancer_free(b);
}

static void test_lc_divides_load_by_weight(void **state)
{
    (void)state;
    const unsigned w[] = { 4, 1 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    struct balancer *b = balancer_new(BALANCE_LEAST_CONN, 2);

    /* 7/4 < 2/1: the heavier backend wins although it has more connections. */
    c[0].active = 7;
    c[1].active = 2;
    assert_int_equal(balance_pick(b, c, 2), 0);
    /* 9/4 > 2/1. */
    c[0].active = 9;
    assert_int_equal(balance_pick(b, c, 2), 1);

    /* Simulate connections that never finish: load follows the 4:1 weights. */
    c[0].active = 0;
    c[1].active = 0;
    for (int k = 0; k < 50; k++) {
        int i = balance_pick(b, c, 2);
        assert_true(i == 0 || i == 1);
        c[i].active++;
    }
    assert_int_equal(c[0].active, 40);
    assert_int_equal(c[1].active, 10);
    balancer_free(b);
}

static void test_lc_compares_exactly_without_overflow(void **state)
{
    (void)state;
    const unsigned w[] = { 256, 255 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    /* UINT_MAX/256 vs (UINT_MAX-1)/255: the products exceed 32 bits, and the ratios
     * differ by less than a float could tell. */
    c[0].active = UINT_MAX;
    c[1].active = UINT_MAX - 1;
    struct balancer *b = balancer_new(BALANCE_LEAST_CONN, 2);
    assert_int_equal(balance_pick(b, c, 2), 0);
    c[0].active = 256;
    c[1].active = 255;
    assert_int_equal(balance_pick(b, c, 2), 1); /* tie 1 == 1: rotation moves on */
    assert_int_equal(balance_pick(b, c, 2), 0);
    balancer_free(b);
}

static void test_lc_ties_rotate(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    struct balancer *b = balancer_new(BALANCE_LEAST_CONN, 3);
    char seq[16];
    pick_letters(b, c, 3, seq, 9);
    assert_string_equal(seq, "abcabcabc");
    balancer_free(b);
}

static void test_lc_ties_rotate_only_among_least_loaded(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1, 1, 2 };
    struct balance_candidate c[4];
    make_candidates(c, w, 4);
    c[0].active = 3;
    c[1].active = 1;
    c[2].active = 3;
    c[3].active = 2; /* 2/2 ties with b's 1/1 */
    struct balancer *b = balancer_new(BALANCE_LEAST_CONN, 4);
    char seq[16];
    pick_letters(b, c, 4, seq, 6);
    assert_string_equal(seq, "bdbdbd");
    balancer_free(b);
}

static void test_lc_skips_unhealthy_excluded_and_full(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1, 1, 1 };
    struct balance_candidate c[4];
    make_candidates(c, w, 4);
    c[0].healthy = false;
    c[1].excluded = true;
    c[2].max_connections = 4;
    c[2].active = 4;
    c[3].active = 1000;
    struct balancer *b = balancer_new(BALANCE_LEAST_CONN, 4);
    for (int k = 0; k < 8; k++)
        assert_int_equal(balance_pick(b, c, 4), 3);
    balancer_free(b);
}

struct thread_arg {
    struct balancer *b;
    const struct balance_candidate *c;
    size_t n;
    unsigned counts[MAX_CANDIDATES];
    unsigned failures;
};

#define PICKS_PER_THREAD 10000
#define THREADS 4

static void *pick_many(void *p)
{
    struct thread_arg *a = p;
    for (int k = 0; k < PICKS_PER_THREAD; k++) {
        int i = balance_pick(a->b, a->c, a->n);
        if (i < 0 || (size_t)i >= a->n)
            a->failures++;
        else
            a->counts[i]++;
    }
    return NULL;
}

/* Each pick is atomic, so whatever the interleaving the picks form one serial
 * sequence of 40000 = whole cycles: the per-backend totals are exact. */
static void run_threads(enum balance_algo algo, const unsigned *w, size_t n,
                        const unsigned *expected)
{
    struct balance_candidate c[MAX_CANDIDATES];
    make_candidates(c, w, n);
    struct balancer *b = balancer_new(algo, n);
    assert_non_null(b);
    struct thread_arg args[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        memset(&args[t], 0, sizeof args[t]);
        args[t].b = b;
        args[t].c = c;
        args[t].n = n;
        assert_int_equal(pthread_create(&threads[t], NULL, pick_many, &args[t]), 0);
    }
    unsigned totals[MAX_CANDIDATES] = { 0 };
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(args[t].failures, 0);
        for (size_t i = 0; i < n; i++)
            totals[i] += args[t].counts[i];
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(totals[i], expected[i]);
    balancer_free(b);
}

static void test_concurrent_round_robin_counts_add_up(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 2, 3, 4 };
    const unsigned expected[] = { 4000, 8000, 12000, 16000 };
    run_threads(BALANCE_ROUND_ROBIN, w, 4, expected);
}

static void test_concurrent_least_conn_counts_add_up(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1, 1, 1, 1 };
    const unsigned expected[] = { 8000, 8000, 8000, 8000, 8000 };
    run_threads(BALANCE_LEAST_CONN, w, 5, expected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_algo_names_match_config_keywords),
        cmocka_unit_test(test_pick_rejects_count_other_than_created),
        cmocka_unit_test(test_single_candidate_always_picked),
        cmocka_unit_test(test_rr_equal_weights_alternate),
        cmocka_unit_test(test_rr_weights_1_3_sequence_and_counts),
        cmocka_unit_test(test_rr_weights_5_1_1_are_smooth),
        cmocka_unit_test(test_rr_exact_counts_over_whole_cycles),
        cmocka_unit_test(test_rr_unhealthy_never_picked),
        cmocka_unit_test(test_rr_recovered_backend_gets_its_share_again),
        cmocka_unit_test(test_rr_excluded_skipped),
        cmocka_unit_test(test_rr_full_backend_skipped),
        cmocka_unit_test(test_none_eligible_returns_minus_one),
        cmocka_unit_test(test_lc_picks_fewest_active),
        cmocka_unit_test(test_lc_divides_load_by_weight),
        cmocka_unit_test(test_lc_compares_exactly_without_overflow),
        cmocka_unit_test(test_lc_ties_rotate),
        cmocka_unit_test(test_lc_ties_rotate_only_among_least_loaded),
        cmocka_unit_test(test_lc_skips_unhealthy_excluded_and_full),
        cmocka_unit_test(test_concurrent_round_robin_counts_add_up),
        cmocka_unit_test(test_concurrent_least_conn_counts_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

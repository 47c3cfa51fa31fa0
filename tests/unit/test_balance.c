/* Unit tests for proxy/balance: exact pick sequences, exact counts, eligibility rules
 * and thread safety. The balancer is pure, so every expectation is deterministic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
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
        int i = balance_pick(b, c, n, NULL);
        assert_true(i >= 0 && (size_t)i < n);
        out[k] = (char)('a' + i);
    }
    out[count] = '\0';
}

/* A balancer for n backends "b0".."b<n-1>" of weight 1, none a backup. */
static struct balancer *new_balancer(enum balance_algo algo, size_t n)
{
    struct balance_backend backends[MAX_CANDIDATES];
    char ids[MAX_CANDIDATES][24];
    assert_true(n <= MAX_CANDIDATES);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "b%zu", i);
        backends[i] = (struct balance_backend){ .id = ids[i], .weight = 1 };
    }
    return balancer_new(algo, backends, n);
}

static void count_picks(struct balancer *b, const struct balance_candidate *c, size_t n,
                        size_t picks, unsigned *counts)
{
    memset(counts, 0, n * sizeof *counts);
    for (size_t k = 0; k < picks; k++) {
        int i = balance_pick(b, c, n, NULL);
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
    assert_string_equal(balance_algo_name(BALANCE_RANDOM_TWO), "random_two");
    assert_string_equal(balance_algo_name(BALANCE_HASH), "hash");
}

static void test_pick_rejects_count_other_than_created(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    struct balancer *b = new_balancer(BALANCE_ROUND_ROBIN, 2);
    assert_non_null(b);
    assert_int_equal(balance_pick(b, c, 3, NULL), -1);
    assert_int_equal(balance_pick(b, c, 0, NULL), -1);
    assert_int_equal(balance_pick(b, NULL, 2, NULL), -1);
    assert_int_equal(balance_pick(b, c, 2, NULL), 0);
    balancer_unref(b);
    balancer_unref(NULL);
}

static void test_single_candidate_always_picked(void **state)
{
    (void)state;
    const unsigned w[] = { 7 };
    struct balance_candidate c[1];
    make_candidates(c, w, 1);
    for (int algo = BALANCE_ROUND_ROBIN; algo <= BALANCE_HASH; algo++) {
        struct balancer *b = new_balancer((enum balance_algo)algo, 1);
        assert_non_null(b);
        for (int k = 0; k < 20; k++)
            assert_int_equal(balance_pick(b, c, 1, NULL), 0);
        balancer_unref(b);
    }
}

static void test_rr_equal_weights_alternate(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    struct balancer *b = new_balancer(BALANCE_ROUND_ROBIN, 2);
    char seq[16];
    pick_letters(b, c, 2, seq, 10);
    assert_string_equal(seq, "ababababab");
    balancer_unref(b);
}

static void test_rr_weights_1_3_sequence_and_counts(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 3 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    struct balancer *b = new_balancer(BALANCE_ROUND_ROBIN, 2);
    char seq[16];
    pick_letters(b, c, 2, seq, 8);
    /* The light backend lands inside the cycle, not after three b's in a row. */
    assert_string_equal(seq, "babbbabb");

    unsigned counts[2];
    count_picks(b, c, 2, 100 * 4, counts);
    assert_int_equal(counts[0], 100);
    assert_int_equal(counts[1], 300);
    balancer_unref(b);
}

static void test_rr_weights_5_1_1_are_smooth(void **state)
{
    (void)state;
    const unsigned w[] = { 5, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    struct balancer *b = new_balancer(BALANCE_ROUND_ROBIN, 3);
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
    balancer_unref(b);
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
    struct balancer *b = new_balancer(BALANCE_ROUND_ROBIN, n);

    unsigned counts[5];
    count_picks(b, c, n, cycles * sum, counts);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(counts[i], cycles * w[i]);
    balancer_unref(b);
}

static void test_rr_unhealthy_never_picked(void **state)
{
    (void)state;
    const unsigned w[] = { 10, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    c[0].healthy = false;
    struct balancer *b = new_balancer(BALANCE_ROUND_ROBIN, 3);

    unsigned counts[3];
    count_picks(b, c, 3, 1000, counts);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], 500);
    assert_int_equal(counts[2], 500);
    balancer_unref(b);
}

static void test_rr_recovered_backend_gets_its_share_again(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    struct balancer *b = new_balancer(BALANCE_ROUND_ROBIN, 2);

    c[1].healthy = false;
    for (int k = 0; k < 9; k++)
        assert_int_equal(balance_pick(b, c, 2, NULL), 0);
    c[1].healthy = true;
    unsigned counts[2];
    count_picks(b, c, 2, 100, counts);
    assert_int_equal(counts[0], 50);
    assert_int_equal(counts[1], 50);
    balancer_unref(b);
}

static void test_rr_excluded_skipped(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    c[1].excluded = true;
    struct balancer *b = new_balancer(BALANCE_ROUND_ROBIN, 3);
    char seq[16];
    pick_letters(b, c, 3, seq, 6);
    assert_string_equal(seq, "acacac");
    balancer_unref(b);
}

static void test_rr_full_backend_skipped(void **state)
{
    (void)state;
    const unsigned w[] = { 5, 1 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    c[0].max_connections = 3;
    c[0].active = 3;
    struct balancer *b = new_balancer(BALANCE_ROUND_ROBIN, 2);
    for (int k = 0; k < 10; k++)
        assert_int_equal(balance_pick(b, c, 2, NULL), 1);

    /* One below the limit: eligible again, and max_connections 0 means no limit. The
     * skipped picks left no debt, so whole 5:1 cycles follow. */
    c[0].active = 2;
    c[1].max_connections = 0;
    c[1].active = UINT_MAX;
    unsigned counts[2];
    count_picks(b, c, 2, 60, counts);
    assert_int_equal(counts[0], 50);
    assert_int_equal(counts[1], 10);
    balancer_unref(b);
}

static void test_none_eligible_returns_minus_one(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 2, 3 };
    struct balance_candidate c[3];
    for (int algo = BALANCE_ROUND_ROBIN; algo <= BALANCE_HASH; algo++) {
        struct balancer *b = new_balancer((enum balance_algo)algo, 3);
        make_candidates(c, w, 3);
        for (size_t i = 0; i < 3; i++) {
            c[i].max_connections = 2;
            c[i].active = 2;
        }
        assert_int_equal(balance_pick(b, c, 3, NULL), -1);

        make_candidates(c, w, 3);
        c[0].healthy = false;
        c[1].excluded = true;
        c[2].max_connections = 1;
        c[2].active = 1;
        assert_int_equal(balance_pick(b, c, 3, NULL), -1);

        /* A -1 leaves no trace: the next eligible pick works normally. */
        c[2].active = 0;
        assert_int_equal(balance_pick(b, c, 3, NULL), 2);
        balancer_unref(b);
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
    struct balancer *b = new_balancer(BALANCE_LEAST_CONN, 3);
    for (int k = 0; k < 5; k++)
        assert_int_equal(balance_pick(b, c, 3, NULL), 1);
    c[1].active = 6;
    assert_int_equal(balance_pick(b, c, 3, NULL), 0);
    balancer_unref(b);
}

static void test_lc_divides_load_by_weight(void **state)
{
    (void)state;
    const unsigned w[] = { 4, 1 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    struct balancer *b = new_balancer(BALANCE_LEAST_CONN, 2);

    /* 7/4 < 2/1: the heavier backend wins although it has more connections. */
    c[0].active = 7;
    c[1].active = 2;
    assert_int_equal(balance_pick(b, c, 2, NULL), 0);
    /* 9/4 > 2/1. */
    c[0].active = 9;
    assert_int_equal(balance_pick(b, c, 2, NULL), 1);

    /* Simulate connections that never finish: load follows the 4:1 weights. */
    c[0].active = 0;
    c[1].active = 0;
    for (int k = 0; k < 50; k++) {
        int i = balance_pick(b, c, 2, NULL);
        assert_true(i == 0 || i == 1);
        c[i].active++;
    }
    assert_int_equal(c[0].active, 40);
    assert_int_equal(c[1].active, 10);
    balancer_unref(b);
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
    struct balancer *b = new_balancer(BALANCE_LEAST_CONN, 2);
    assert_int_equal(balance_pick(b, c, 2, NULL), 0);
    c[0].active = 256;
    c[1].active = 255;
    assert_int_equal(balance_pick(b, c, 2, NULL), 1); /* tie 1 == 1: rotation moves on */
    assert_int_equal(balance_pick(b, c, 2, NULL), 0);
    balancer_unref(b);
}

static void test_lc_ties_rotate(void **state)
{
    (void)state;
    const unsigned w[] = { 1, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    struct balancer *b = new_balancer(BALANCE_LEAST_CONN, 3);
    char seq[16];
    pick_letters(b, c, 3, seq, 9);
    assert_string_equal(seq, "abcabcabc");
    balancer_unref(b);
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
    struct balancer *b = new_balancer(BALANCE_LEAST_CONN, 4);
    char seq[16];
    pick_letters(b, c, 4, seq, 6);
    assert_string_equal(seq, "bdbdbd");
    balancer_unref(b);
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
    struct balancer *b = new_balancer(BALANCE_LEAST_CONN, 4);
    for (int k = 0; k < 8; k++)
        assert_int_equal(balance_pick(b, c, 4, NULL), 3);
    balancer_unref(b);
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
        int i = balance_pick(a->b, a->c, a->n, NULL);
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
    struct balancer *b = new_balancer(algo, n);
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
    balancer_unref(b);
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

/* ---- backups ------------------------------------------------------------------------ */

static struct balancer *balancer_with_backup(enum balance_algo algo)
{
    const struct balance_backend backends[] = {
        { .id = "a", .weight = 1 }, { .id = "b", .weight = 1 },
        { .id = "standby", .weight = 1, .backup = true },
    };
    return balancer_new(algo, backends, 3);
}

static void test_backup_only_when_no_other_is_eligible(void **state)
{
    const unsigned w[] = { 1000, 1000, 1000 };
    struct balance_candidate c[3];
    for (int algo = BALANCE_ROUND_ROBIN; algo <= BALANCE_HASH; algo++) {
        struct balancer *b = balancer_with_backup((enum balance_algo)algo);
        make_candidates(c, w, 3);
        for (int k = 0; k < 50; k++) {
            uint64_t key = (uint64_t)k * 7919;
            int i = balance_pick(b, c, 3, algo == BALANCE_HASH ? &key : NULL);
            assert_true(i == 0 || i == 1);
        }
        c[0].healthy = false;
        for (int k = 0; k < 20; k++)
            assert_int_equal(balance_pick(b, c, 3, NULL), 1);
        /* Full is not eligible either. */
        c[1].max_connections = 1;
        c[1].active = 1;
        for (int k = 0; k < 20; k++) {
            uint64_t key = (uint64_t)k;
            assert_int_equal(balance_pick(b, c, 3, algo == BALANCE_HASH ? &key : NULL), 2);
        }
        c[0].healthy = true;
        assert_int_equal(balance_pick(b, c, 3, NULL), 0);
        balancer_unref(b);
    }
}

/* ---- random_two ---------------------------------------------------------------------- */

static void test_random_two_follows_weights_when_idle(void **state)
{
    const unsigned w[] = { 1, 2, 3, 4 };
    struct balance_candidate c[4];
    make_candidates(c, w, 4);
    const struct balance_backend backends[] = {
        { .id = "a", .weight = 1 }, { .id = "b", .weight = 2 }, { .id = "c", .weight = 3 },
        { .id = "d", .weight = 4 },
    };
    struct balancer *b = balancer_new(BALANCE_RANDOM_TWO, backends, 4);
    unsigned counts[4];
    count_picks(b, c, 4, 100000, counts);
    /* Idle backends tie: the first draw, proportional to weight, wins. */
    for (size_t i = 0; i < 4; i++) {
        double share = counts[i] / 100000.0, want = w[i] / 10.0;
        printf("random_two idle: weight %u -> %.3f (want %.3f)\n", w[i], share, want);
        assert_true(share > want * 0.95 && share < want * 1.05);
    }
    balancer_unref(b);
}

/* Requests that never finish pile up where they are sent: the power of two choices
 * keeps the spread between the most and the least loaded small. */
static void test_random_two_evens_out_active_requests(void **state)
{
    const unsigned w[] = { 1, 1, 1, 1, 1, 1, 1, 1 };
    struct balance_candidate c[8];
    make_candidates(c, w, 8);
    struct balancer *b = new_balancer(BALANCE_RANDOM_TWO, 8);
    for (int k = 0; k < 8000; k++) {
        int i = balance_pick(b, c, 8, NULL);
        assert_true(i >= 0 && i < 8);
        c[i].active++;
    }
    unsigned lo = UINT_MAX, hi = 0;
    for (size_t i = 0; i < 8; i++) {
        lo = c[i].active < lo ? c[i].active : lo;
        hi = c[i].active > hi ? c[i].active : hi;
    }
    printf("random_two: 8000 requests over 8 backends, %u..%u each\n", lo, hi);
    assert_true(hi - lo <= 20);
    balancer_unref(b);
}

static void test_random_two_skips_the_ineligible(void **state)
{
    const unsigned w[] = { 1, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    c[0].healthy = false;
    c[2].excluded = true;
    struct balancer *b = new_balancer(BALANCE_RANDOM_TWO, 3);
    for (int k = 0; k < 100; k++)
        assert_int_equal(balance_pick(b, c, 3, NULL), 1);
    balancer_unref(b);
}

/* ---- hash ---------------------------------------------------------------------------- */

#define KEYS 1000u

static uint64_t key_of(unsigned k)
{
    char text[32];
    int len = snprintf(text, sizeof text, "user-%u", k);
    return balance_hash(text, (size_t)len);
}

/* Where each of KEYS keys goes, as backend ids. */
static void map_keys(struct balancer *b, const struct balance_candidate *c, size_t n,
                     const char *const *ids, const char **where)
{
    for (unsigned k = 0; k < KEYS; k++) {
        uint64_t key = key_of(k);
        int i = balance_pick(b, c, n, &key);
        assert_true(i >= 0 && (size_t)i < n);
        where[k] = ids[i];
    }
}

static struct balancer *hash_balancer(const char *const *ids, const unsigned *weights, size_t n)
{
    struct balance_backend backends[MAX_CANDIDATES];
    for (size_t i = 0; i < n; i++)
        backends[i] = (struct balance_backend){ .id = ids[i], .weight = weights ? weights[i] : 1 };
    return balancer_new(BALANCE_HASH, backends, n);
}

static unsigned moved(const char **before, const char **after)
{
    unsigned n = 0;
    for (unsigned k = 0; k < KEYS; k++)
        n += strcmp(before[k], after[k]) != 0;
    return n;
}

static void test_hash_same_key_same_backend(void **state)
{
    const char *ids[] = { "a", "b", "c" };
    const unsigned w[] = { 1, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    struct balancer *b = hash_balancer(ids, NULL, 3);
    for (unsigned k = 0; k < 100; k++) {
        uint64_t key = key_of(k);
        int first = balance_pick(b, c, 3, &key);
        for (int again = 0; again < 5; again++)
            assert_int_equal(balance_pick(b, c, 3, &key), first);
    }
    balancer_unref(b);
}

static void test_hash_spreads_keys_by_weight(void **state)
{
    const char *ids[] = { "a", "b", "c", "d" };
    const unsigned w[] = { 1, 1, 1, 3 };
    struct balance_candidate c[4];
    make_candidates(c, w, 4);
    struct balancer *b = hash_balancer(ids, w, 4);
    unsigned counts[4] = { 0 };
    for (unsigned k = 0; k < 60000; k++) {
        uint64_t key = balance_hash(&k, sizeof k);
        counts[balance_pick(b, c, 4, &key)]++;
    }
    for (size_t i = 0; i < 4; i++) {
        double share = counts[i] / 60000.0, want = w[i] / 6.0;
        printf("hash: weight %u -> %.3f of the keys (want %.3f)\n", w[i], share, want);
        assert_true(share > want * 0.9 && share < want * 1.1);
    }
    balancer_unref(b);
}

/* The figure: 1,000 keys over 5 backends; one removed from the list moves at
 * most 25% of the keys (ideally 20%: its own), and added back, every key returns. */
static void test_hash_remove_one_of_five_moves_few_keys_and_they_return(void **state)
{
    const char *five[] = { "b0", "b1", "b2", "b3", "b4" };
    const char *four[] = { "b0", "b1", "b3", "b4" };
    const unsigned w[] = { 1, 1, 1, 1, 1 };
    struct balance_candidate c[5];
    make_candidates(c, w, 5);
    static const char *before[KEYS], *without[KEYS], *again[KEYS];
    struct balancer *b = hash_balancer(five, NULL, 5);
    map_keys(b, c, 5, five, before);
    balancer_unref(b);
    b = hash_balancer(four, NULL, 4);
    map_keys(b, c, 4, four, without);
    balancer_unref(b);
    b = hash_balancer(five, NULL, 5);
    map_keys(b, c, 5, five, again);
    balancer_unref(b);
    unsigned own = 0;
    for (unsigned k = 0; k < KEYS; k++)
        own += strcmp(before[k], "b2") == 0;
    unsigned lost = moved(before, without);
    printf("hash remap: removing 1 of 5 backends moved %u of %u keys (%.1f%%; %u were its "
           "own); adding it back moved %u keys back, %u differ from the start\n",
           lost, KEYS, 100.0 * lost / KEYS, own, moved(without, again), moved(before, again));
    assert_true(lost <= KEYS / 4);
    assert_int_equal(moved(before, again), 0);
    /* Keys of the backends that stayed mostly stay. */
    assert_true(lost - own <= KEYS / 20);
    balancer_unref(NULL);
}

static void test_hash_add_one_to_five_moves_about_a_sixth(void **state)
{
    const char *five[] = { "b0", "b1", "b2", "b3", "b4" };
    const char *six[] = { "b0", "b1", "b2", "b3", "b4", "b5" };
    const unsigned w[] = { 1, 1, 1, 1, 1, 1 };
    struct balance_candidate c[6];
    make_candidates(c, w, 6);
    static const char *before[KEYS], *after[KEYS];
    struct balancer *b = hash_balancer(five, NULL, 5);
    map_keys(b, c, 5, five, before);
    balancer_unref(b);
    b = hash_balancer(six, NULL, 6);
    map_keys(b, c, 6, six, after);
    balancer_unref(b);
    unsigned n = moved(before, after);
    printf("hash remap: adding a 6th backend moved %u of %u keys (%.1f%%)\n", n, KEYS,
           100.0 * n / KEYS);
    assert_true(n <= KEYS / 4);
}

/* A backend that is down (or full, or tried) keeps its place: only its own keys go
 * elsewhere, and they come back when it does. */
static void test_hash_down_backend_keys_move_and_return(void **state)
{
    const char *ids[] = { "b0", "b1", "b2", "b3", "b4" };
    const unsigned w[] = { 1, 1, 1, 1, 1 };
    struct balance_candidate c[5];
    make_candidates(c, w, 5);
    static const char *before[KEYS], *down[KEYS], *back[KEYS];
    struct balancer *b = hash_balancer(ids, NULL, 5);
    map_keys(b, c, 5, ids, before);
    c[2].healthy = false;
    map_keys(b, c, 5, ids, down);
    c[2].healthy = true;
    map_keys(b, c, 5, ids, back);
    unsigned own = 0, other_moved = 0;
    for (unsigned k = 0; k < KEYS; k++) {
        own += strcmp(before[k], "b2") == 0;
        if (strcmp(before[k], "b2") != 0)
            other_moved += strcmp(before[k], down[k]) != 0;
        assert_string_not_equal(down[k], "b2");
    }
    printf("hash: b2 down moved its %u keys (%.1f%%), no other; all back when it is up\n",
           own, 100.0 * own / KEYS);
    assert_int_equal(other_moved, 0);
    assert_int_equal(moved(before, down), own);
    assert_int_equal(moved(before, back), 0);
    balancer_unref(b);
}

/* The table depends on the backends, not on the order the config lists them in. */
static void test_hash_ignores_list_order(void **state)
{
    const char *ids[] = { "b0", "b1", "b2" };
    const char *reversed[] = { "b2", "b1", "b0" };
    const unsigned w[] = { 1, 1, 1 };
    struct balance_candidate c[3];
    make_candidates(c, w, 3);
    static const char *one[KEYS], *two[KEYS];
    struct balancer *b = hash_balancer(ids, NULL, 3);
    map_keys(b, c, 3, ids, one);
    balancer_unref(b);
    b = hash_balancer(reversed, NULL, 3);
    map_keys(b, c, 3, reversed, two);
    balancer_unref(b);
    assert_int_equal(moved(one, two), 0);
}

static void test_hash_without_key_is_round_robin(void **state)
{
    const char *ids[] = { "a", "b" };
    const unsigned w[] = { 1, 1 };
    struct balance_candidate c[2];
    make_candidates(c, w, 2);
    struct balancer *b = hash_balancer(ids, NULL, 2);
    char seq[16];
    pick_letters(b, c, 2, seq, 6);
    assert_string_equal(seq, "ababab");
    balancer_unref(b);
}

/* ---- slow start ------------------------------------------------------------------------ */

static void test_ramp_weight_rises_linearly_from_ten_percent(void **state)
{
    assert_int_equal(balance_ramp_weight(2, 0, 10000), 200);
    assert_int_equal(balance_ramp_weight(2, 5000, 10000), 1100);
    assert_int_equal(balance_ramp_weight(2, 9999, 10000), 1999);
    assert_int_equal(balance_ramp_weight(2, 10000, 10000), 2000);
    assert_int_equal(balance_ramp_weight(2, 1 << 30, 10000), 2000);
    assert_int_equal(balance_ramp_weight(2, 0, 0), 2000);
    assert_int_equal(balance_ramp_weight(1, -5, 100), 100);
    assert_int_equal(balance_ramp_weight(256, 0, 3600000), 25600);
}

/* A backend at 10% of its weight gets one request in eleven beside an equal peer at
 * full weight, then its full share once the ramp is over. */
static void test_ramping_backend_gets_its_share_of_traffic(void **state)
{
    for (int algo = BALANCE_ROUND_ROBIN; algo <= BALANCE_RANDOM_TWO; algo += 2) {
        struct balance_candidate c[2] = {
            { .weight = balance_ramp_weight(1, 60000, 30000), .healthy = true },
            { .weight = balance_ramp_weight(1, 0, 30000), .healthy = true },
        };
        struct balancer *b = new_balancer((enum balance_algo)algo, 2);
        unsigned counts[2];
        count_picks(b, c, 2, 11000, counts);
        printf("%s: slow start at 10%%: %u of 11000\n", balance_algo_name(algo), counts[1]);
        assert_true(counts[1] >= 800 && counts[1] <= 1200);
        c[1].weight = balance_ramp_weight(1, 15000, 30000);     /* 55% */
        count_picks(b, c, 2, 15500, counts);
        assert_true(counts[1] >= 5000 && counts[1] <= 6000);
        c[1].weight = balance_ramp_weight(1, 30000, 30000);
        count_picks(b, c, 2, 10000, counts);
        assert_true(counts[1] >= 4700 && counts[1] <= 5300);
        balancer_unref(b);
    }
}

/* ---- carried over reloads -------------------------------------------------------------- */

static void test_balancer_fits_only_the_same_list(void **state)
{
    const struct balance_backend list[] = { { "a", 1, false }, { "b", 2, true } };
    struct balancer *b = balancer_new(BALANCE_ROUND_ROBIN, list, 2);
    assert_true(balancer_fits(b, BALANCE_ROUND_ROBIN, list, 2));
    assert_false(balancer_fits(b, BALANCE_LEAST_CONN, list, 2));
    assert_false(balancer_fits(b, BALANCE_ROUND_ROBIN, list, 1));
    const struct balance_backend heavier[] = { { "a", 2, false }, { "b", 2, true } };
    const struct balance_backend renamed[] = { { "a", 1, false }, { "c", 2, true } };
    const struct balance_backend primary[] = { { "a", 1, false }, { "b", 2, false } };
    const struct balance_backend swapped[] = { { "b", 2, true }, { "a", 1, false } };
    assert_false(balancer_fits(b, BALANCE_ROUND_ROBIN, heavier, 2));
    assert_false(balancer_fits(b, BALANCE_ROUND_ROBIN, renamed, 2));
    assert_false(balancer_fits(b, BALANCE_ROUND_ROBIN, primary, 2));
    assert_false(balancer_fits(b, BALANCE_ROUND_ROBIN, swapped, 2));
    assert_false(balancer_fits(NULL, BALANCE_ROUND_ROBIN, list, 2));
    balancer_unref(b);
}

/* ---- sticky tokens ------------------------------------------------------------------------ */

static void test_sticky_token_round_trips_and_names_no_address(void **state)
{
    uint64_t t = balance_sticky_token("web", "127.0.0.1:9001"), back;
    char text[BALANCE_STICKY_LEN + 1];
    balance_sticky_encode(t, text);
    assert_int_equal(strlen(text), BALANCE_STICKY_LEN);
    assert_null(strstr(text, "127"));
    assert_true(balance_sticky_decode(text, strlen(text), &back));
    assert_true(back == t);
    /* Upper-case hex reads the same. */
    for (char *p = text; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_true(balance_sticky_decode(text, strlen(text), &back) && back == t);
    assert_true(balance_sticky_token("web", "a") != balance_sticky_token("api", "a"));
    assert_true(balance_sticky_token("we", "ba") != balance_sticky_token("web", "a"));
    balance_sticky_encode(0, text);
    assert_string_equal(text, "0000000000000000");
}

static void test_sticky_decode_refuses_what_ferry_never_wrote(void **state)
{
    uint64_t t;
    assert_false(balance_sticky_decode("", 0, &t));
    assert_false(balance_sticky_decode("0123456789abcde", 15, &t));
    assert_false(balance_sticky_decode("0123456789abcdef0", 17, &t));
    assert_false(balance_sticky_decode("0123456789abcdeg", 16, &t));
    assert_false(balance_sticky_decode("0123456789abcd f", 16, &t));
    assert_false(balance_sticky_decode("127.0.0.1:9001xx", 16, &t));
}

static void run_threads_any(enum balance_algo algo, size_t n)
{
    const unsigned w[] = { 1, 2, 3, 4, 5 };
    struct balance_candidate c[MAX_CANDIDATES];
    make_candidates(c, w, n);
    struct balancer *b = new_balancer(algo, n);
    struct thread_arg args[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        memset(&args[t], 0, sizeof args[t]);
        args[t] = (struct thread_arg){ .b = b, .c = c, .n = n };
        assert_int_equal(pthread_create(&threads[t], NULL, pick_many, &args[t]), 0);
    }
    unsigned total = 0;
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(args[t].failures, 0);
        for (size_t i = 0; i < n; i++)
            total += args[t].counts[i];
    }
    assert_int_equal(total, THREADS * PICKS_PER_THREAD);
    balancer_unref(b);
}

static void test_concurrent_random_two_and_hash(void **state)
{
    run_threads_any(BALANCE_RANDOM_TWO, 5);
    run_threads_any(BALANCE_HASH, 5);
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
        cmocka_unit_test(test_backup_only_when_no_other_is_eligible),
        cmocka_unit_test(test_random_two_follows_weights_when_idle),
        cmocka_unit_test(test_random_two_evens_out_active_requests),
        cmocka_unit_test(test_random_two_skips_the_ineligible),
        cmocka_unit_test(test_hash_same_key_same_backend),
        cmocka_unit_test(test_hash_spreads_keys_by_weight),
        cmocka_unit_test(test_hash_remove_one_of_five_moves_few_keys_and_they_return),
        cmocka_unit_test(test_hash_add_one_to_five_moves_about_a_sixth),
        cmocka_unit_test(test_hash_down_backend_keys_move_and_return),
        cmocka_unit_test(test_hash_ignores_list_order),
        cmocka_unit_test(test_hash_without_key_is_round_robin),
        cmocka_unit_test(test_ramp_weight_rises_linearly_from_ten_percent),
        cmocka_unit_test(test_ramping_backend_gets_its_share_of_traffic),
        cmocka_unit_test(test_balancer_fits_only_the_same_list),
        cmocka_unit_test(test_sticky_token_round_trips_and_names_no_address),
        cmocka_unit_test(test_sticky_decode_refuses_what_ferry_never_wrote),
        cmocka_unit_test(test_concurrent_random_two_and_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

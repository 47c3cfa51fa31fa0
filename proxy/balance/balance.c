/* balance — smooth weighted round-robin and least_conn over a candidate snapshot.
 *
 * The balancer owns only the algorithm's memory (current weights, a cursor); the
 * candidates' live numbers belong to the caller, who snapshots them per pick. The lock
 * is held only for the scan of n candidates, never across I/O.
 */
#include "balance/balance.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

struct balancer {
    enum balance_algo algo;
    size_t n;
    pthread_mutex_t lock;
    /* round_robin: nginx's "current_weight" per candidate. Signed and 64-bit: it goes
     * negative by up to the total weight and never grows beyond it. */
    int64_t *current;           /* owned, n entries */
    /* least_conn: where the next scan starts, so that equally loaded candidates take
     * turns instead of the first one taking every tie. */
    size_t cursor;
};

static bool is_eligible(const struct balance_candidate *c)
{
    if (!c->healthy || c->excluded || c->weight == 0)
        return false;
    return c->max_connections == 0 || c->active < c->max_connections;
}

struct balancer *balancer_new(enum balance_algo algo, size_t n)
{
    struct balancer *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->algo = algo;
    b->n = n;
    /* calloc(0) may return NULL; one spare slot keeps "NULL = out of memory" true. */
    b->current = calloc(n + 1, sizeof *b->current);
    if (b->current == NULL)
        goto fail;
    if (pthread_mutex_init(&b->lock, NULL) != 0)
        goto fail;
    return b;

fail:
    free(b->current);
    free(b);
    return NULL;
}

void balancer_free(struct balancer *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b->current);
    free(b);
}

/* nginx's smooth WRR: every eligible candidate gains its weight, the richest wins and
 * pays the total. Over any window of sum(weights) picks each candidate is chosen
 * exactly `weight` times, and the winners interleave instead of arriving in bursts.
 * Ineligible candidates keep their current weight untouched, as nginx does, so a
 * backend that comes back resumes where it left off. */
static int pick_round_robin(struct balancer *b, const struct balance_candidate *c, size_t n)
{
    int best = -1;
    int64_t total = 0;

    for (size_t i = 0; i < n; i++) {
        if (!is_eligible(&c[i]))
            continue;
        b->current[i] += c[i].weight;
        total += c[i].weight;
        if (best < 0 || b->current[i] > b->current[best])
            best = (int)i;
    }
    if (best >= 0)
        b->current[best] -= total;
    return best;
}

/* true when a carries strictly less load per unit of weight than b:
 * a.active / a.weight < b.active / b.weight, without division or rounding. */
static bool is_less_loaded(const struct balance_candidate *a, const struct balance_candidate *b)
{
    return (uint64_t)a->active * b->weight < (uint64_t)b->active * a->weight;
}

/* Scans from the cursor so that among equally loaded candidates the first one found
 * is the one after the previous winner; the cursor then moves past the winner. */
static int pick_least_conn(struct balancer *b, const struct balance_candidate *c, size_t n)
{
    int best = -1;

    for (size_t k = 0; k < n; k++) {
        size_t i = (b->cursor + k) % n;
        if (!is_eligible(&c[i]))
            continue;
        if (best < 0 || is_less_loaded(&c[i], &c[best]))
            best = (int)i;
    }
    if (best >= 0)
        b->cursor = ((size_t)best + 1) % n;
    return best;
}

int balance_pick(struct balancer *b, const struct balance_candidate *c, size_t n)
{
    if (b == NULL || c == NULL || n == 0 || n != b->n || n > INT32_MAX)
        return -1;

    pthread_mutex_lock(&b->lock);
    int picked;
    switch (b->algo) {
    case BALANCE_LEAST_CONN:
        picked = pick_least_conn(b, c, n);
        break;
    case BALANCE_ROUND_ROBIN:
    default:
        picked = pick_round_robin(b, c, n);
        break;
    }
    pthread_mutex_unlock(&b->lock);
    return picked;
}

const char *balance_algo_name(enum balance_algo algo)
{
    switch (algo) {
    case BALANCE_ROUND_ROBIN:
        return "round_robin";
    case BALANCE_LEAST_CONN:
        return "least_conn";
    }
    return "unknown";
}

/* balance — the algorithms over a candidate snapshot (balance.h).
 *
 * The balancer owns only the algorithm's memory (current weights, a cursor, a random
 * generator, the lookup tables); the candidates' live numbers belong to the caller,
 * who snapshots them per pick. The lock is held only for the scan of n candidates,
 * never across I/O; a hash pick with a key reads immutable tables and takes no lock.
 */
#include "balance/balance.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balance/internal.h"

struct balancer {
    enum balance_algo algo;
    size_t n;
    _Atomic int refs;
    pthread_mutex_t lock;
    struct balance_backend *backends;   /* owned, n entries; ids owned */
    /* round_robin (and hash without a key): nginx's "current_weight" per candidate.
     * Signed and 64-bit: it goes negative by up to the total weight and never grows
     * beyond it. */
    int64_t *current;           /* owned, n entries */
    /* least_conn: where the next scan starts, so that equally loaded candidates take
     * turns instead of the first one taking every tie. */
    size_t cursor;
    uint64_t random;            /* random_two: xorshift64* state, never 0 */
    struct maglev primary, backup;  /* hash: one table per tier */
};

/* ---- life ------------------------------------------------------------------------ */

static void balancer_free(struct balancer *b)
{
    if (!b)
        return;
    for (size_t i = 0; b->backends && i < b->n; i++)
        free((char *)b->backends[i].id);
    free(b->backends);
    free(b->current);
    maglev_free(&b->primary);
    maglev_free(&b->backup);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static int copy_backends(struct balancer *b, const struct balance_backend *backends, size_t n)
{
    /* calloc(0) may return NULL; one spare slot keeps "NULL = out of memory" true. */
    b->backends = calloc(n + 1, sizeof *b->backends);
    if (!b->backends)
        return -1;
    for (size_t i = 0; i < n; i++) {
        b->backends[i] = backends[i];
        b->backends[i].id = strdup(backends[i].id ? backends[i].id : "");
        if (!b->backends[i].id)
            return -1;
    }
    return 0;
}

struct balancer *balancer_new(enum balance_algo algo, const struct balance_backend *backends,
                              size_t n)
{
    struct balancer *b = calloc(1, sizeof *b);
    if (!b || pthread_mutex_init(&b->lock, NULL) != 0) {
        free(b);
        return NULL;
    }
    b->algo = algo;
    b->n = n;
    atomic_init(&b->refs, 1);
    b->random = 0x9e3779b97f4a7c15ULL ^ n;
    b->current = calloc(n + 1, sizeof *b->current);
    if (!b->current || copy_backends(b, backends, n) < 0)
        goto fail;
    if (algo == BALANCE_HASH && (maglev_build(&b->primary, b->backends, n, false) < 0 ||
                                 maglev_build(&b->backup, b->backends, n, true) < 0))
        goto fail;
    return b;

fail:
    balancer_free(b);
    return NULL;
}

void balancer_ref(struct balancer *b) { atomic_fetch_add(&b->refs, 1); }

void balancer_unref(struct balancer *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        balancer_free(b);
}

bool balancer_fits(const struct balancer *b, enum balance_algo algo,
                   const struct balance_backend *backends, size_t n)
{
    if (!b || b->algo != algo || b->n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const struct balance_backend *x = &b->backends[i], *y = &backends[i];
        if (x->weight != y->weight || x->backup != y->backup ||
            strcmp(x->id, y->id ? y->id : "") != 0)
            return false;
    }
    return true;
}

/* ---- eligibility ----------------------------------------------------------------- */

static bool is_eligible(const struct balance_candidate *c)
{
    if (!c->healthy || c->excluded || c->weight == 0)
        return false;
    return c->max_connections == 0 || c->active < c->max_connections;
}

/* usable[i]: candidate i may be picked now. Backups only while no other backend is
 * eligible. False when nothing is usable. */
static bool find_usable(const struct balancer *b, const struct balance_candidate *c, size_t n,
                        bool *usable)
{
    bool any_primary = false, any = false;
    for (size_t i = 0; i < n && !any_primary; i++)
        any_primary = !b->backends[i].backup && is_eligible(&c[i]);
    for (size_t i = 0; i < n; i++) {
        usable[i] = is_eligible(&c[i]) && b->backends[i].backup != any_primary;
        any |= usable[i];
    }
    return any;
}

/* ---- algorithms -------------------------------------------------------------------- */

/* nginx's smooth WRR: every usable candidate gains its weight, the richest wins and
 * pays the total. Over any window of sum(weights) picks each candidate is chosen
 * exactly `weight` times, and the winners interleave instead of arriving in bursts.
 * Others keep their current weight untouched, as nginx does, so a backend that comes
 * back resumes where it left off. */
static int pick_round_robin(struct balancer *b, const struct balance_candidate *c, size_t n,
                            const bool *usable)
{
    int best = -1;
    int64_t total = 0;

    for (size_t i = 0; i < n; i++) {
        if (!usable[i])
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
static int pick_least_conn(struct balancer *b, const struct balance_candidate *c, size_t n,
                           const bool *usable)
{
    int best = -1;

    for (size_t k = 0; k < n; k++) {
        size_t i = (b->cursor + k) % n;
        if (!usable[i])
            continue;
        if (best < 0 || is_less_loaded(&c[i], &c[best]))
            best = (int)i;
    }
    if (best >= 0)
        b->cursor = ((size_t)best + 1) % n;
    return best;
}

static uint64_t next_random(struct balancer *b)
{
    uint64_t x = b->random;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    b->random = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* A usable candidate other than `skip` (-1: none), drawn with probability
 * proportional to its weight; -1 when there is none. */
static int draw_weighted(struct balancer *b, const struct balance_candidate *c, size_t n,
                         const bool *usable, int skip)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (usable[i] && (int)i != skip)
            total += c[i].weight;
    if (total == 0)
        return -1;
    uint64_t r = next_random(b) % total;
    for (size_t i = 0; i < n; i++) {
        if (!usable[i] || (int)i == skip)
            continue;
        if (r < c[i].weight)
            return (int)i;
        r -= c[i].weight;
    }
    return -1;
}

static int pick_random_two(struct balancer *b, const struct balance_candidate *c, size_t n,
                           const bool *usable)
{
    int first = draw_weighted(b, c, n, usable, -1);
    int second = first < 0 ? -1 : draw_weighted(b, c, n, usable, first);
    if (second < 0)
        return first;
    return is_less_loaded(&c[second], &c[first]) ? second : first;
}

static int pick_hash(const struct balancer *b, uint64_t key, const bool *usable,
                     bool backups)
{
    return maglev_lookup(backups ? &b->backup : &b->primary, key, usable);
}

int balance_pick(struct balancer *b, const struct balance_candidate *c, size_t n,
                 const uint64_t *key)
{
    if (b == NULL || c == NULL || n == 0 || n != b->n || n > INT32_MAX)
        return -1;
    bool usable[n];
    if (!find_usable(b, c, n, usable))
        return -1;
    if (b->algo == BALANCE_HASH && key) {
        bool backups = false;
        for (size_t i = 0; i < n && !backups; i++)
            backups = usable[i] && b->backends[i].backup;
        return pick_hash(b, *key, usable, backups);
    }

    pthread_mutex_lock(&b->lock);
    int picked;
    switch (b->algo) {
    case BALANCE_LEAST_CONN:
        picked = pick_least_conn(b, c, n, usable);
        break;
    case BALANCE_RANDOM_TWO:
        picked = pick_random_two(b, c, n, usable);
        break;
    case BALANCE_ROUND_ROBIN:
    case BALANCE_HASH:      /* a request without the key */
    default:
        picked = pick_round_robin(b, c, n, usable);
        break;
    }
    pthread_mutex_unlock(&b->lock);
    return picked;
}

/* ---- helpers ------------------------------------------------------------------------ */

/* FNV-1a over the bytes, then a finalizer (splitmix64's) so that every input bit
 * moves every output bit: keys that differ in one byte land far apart. */
uint64_t balance_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

unsigned balance_ramp_weight(unsigned weight, int64_t up_for_ms, unsigned slow_start_ms)
{
    uint64_t full = (uint64_t)weight * BALANCE_WEIGHT_UNIT;
    if (slow_start_ms == 0 || up_for_ms >= (int64_t)slow_start_ms)
        return (unsigned)full;
    if (up_for_ms < 0)
        up_for_ms = 0;
    /* 10% + 90% * up_for / slow_start, never below 1 */
    uint64_t ramped = full / 10 + full * 9 * (uint64_t)up_for_ms / (10 * (uint64_t)slow_start_ms);
    return ramped ? (unsigned)ramped : 1;
}

const char *balance_algo_name(enum balance_algo algo)
{
    switch (algo) {
    case BALANCE_ROUND_ROBIN:
        return "round_robin";
    case BALANCE_LEAST_CONN:
        return "least_conn";
    case BALANCE_RANDOM_TWO:
        return "random_two";
    case BALANCE_HASH:
        return "hash";
    }
    return "unknown";
}

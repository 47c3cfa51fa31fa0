/* rt_pool_pick and the passive health of a pool's backends (runtime.h). */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "balance/balance.h"
#include "core/clock.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"

static bool was_tried(const struct backend *b, struct backend *const *tried, size_t n_tried)
{
    for (size_t i = 0; i < n_tried; i++)
        if (tried[i] == b)
            return true;
    return false;
}

/* Reserves a slot of b: active goes up only while it stays below max (0 = no limit). */
static bool try_reserve(struct backend *b, unsigned max)
{
    if (max == 0) {
        atomic_fetch_add_explicit(&b->active, 1, memory_order_relaxed);
        return true;
    }
    unsigned n = atomic_load_explicit(&b->active, memory_order_relaxed);
    do {
        if (n >= max)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&b->active, &n, n + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

/* The weight a backend gets now: its configured one, ramped while it is in its slow
 * start. */
static unsigned effective_weight(const struct rt_pool *pool, size_t i, int64_t now)
{
    unsigned weight = pool->cfg->backends[i].weight;
    int64_t since = atomic_load_explicit(&pool->backends[i]->up_since_ms, memory_order_relaxed);
    if (pool->cfg->slow_start_ms == 0 || since == 0)
        return weight * BALANCE_WEIGHT_UNIT;
    return balance_ramp_weight(weight, now - since, pool->cfg->slow_start_ms);
}

/* The sticky cookie's backend, reserved, when it can take the request. */
static struct backend *pick_sticky(struct rt_pool *pool, const struct balance_candidate *cands,
                                   uint64_t token)
{
    for (size_t i = 0; i < pool->n_backends; i++) {
        if (pool->sticky_tokens[i] != token)
            continue;
        const struct balance_candidate *c = &cands[i];
        if (c->healthy && !c->excluded && try_reserve(pool->backends[i], c->max_connections))
            return pool->backends[i];
        return NULL;
    }
    return NULL;
}

/* Removed by a reload (in no newer generation), but up and not drained. */
static bool is_only_removed(const struct backend *b)
{
    return backend_is_removed(b) && backend_is_up(b) &&
           !atomic_load_explicit(&b->draining, memory_order_relaxed);
}

/* The candidates' snapshot. Says whether some backend is ineligible only because a
 * reload removed it. */
static bool snapshot(struct rt_pool *pool, struct backend *const *tried, size_t n_tried,
                     struct balance_candidate *cands)
{
    bool passive_only = pool->cfg->health_check.type == HEALTH_CHECK_NONE;
    int64_t now = passive_only || pool->cfg->slow_start_ms ? clock_now_ms() : 0;
    bool has_removed = false;
    for (size_t i = 0; i < pool->n_backends; i++) {
        struct backend *b = pool->backends[i];
        if (passive_only)
            backend_maybe_revive(b, now);
        cands[i] = (struct balance_candidate){
            .weight = effective_weight(pool, i, now),
            .active = atomic_load_explicit(&b->active, memory_order_relaxed),
            .max_connections = pool->cfg->backends[i].max_connections,
            .healthy = backend_takes_new(b),
            .excluded = was_tried(b, tried, n_tried),
        };
        has_removed |= !cands[i].healthy && is_only_removed(b);
    }
    return has_removed;
}

static struct backend *pick_among(struct rt_pool *pool, struct balance_candidate *cands,
                                  const struct rt_pick_hint *hint)
{
    size_t n = pool->n_backends;
    struct backend *sticky = hint && hint->has_sticky && pool->sticky_tokens
                                 ? pick_sticky(pool, cands, hint->sticky) : NULL;
    if (sticky)
        return sticky;
    const uint64_t *key = hint && hint->has_key ? &hint->key : NULL;
    /* A backend that another worker filled since the snapshot is passed over: each
     * round excludes one more, so this ends within n rounds. */
    for (size_t round = 0; round < n; round++) {
        int pick = balance_pick(pool->balancer, cands, n, key);
        if (pick < 0)
            return NULL;
        if (try_reserve(pool->backends[pick], cands[pick].max_connections))
            return pool->backends[pick];
        cands[pick].excluded = true;
    }
    return NULL;
}

/* A request that took its generation just before a reload removed the pool's
 * backends meets them draining: when nothing else can take it, they still do (new
 * requests use the newer generation, which no longer has them, so this is only ever
 * the requests caught by the reload, never new traffic). */
struct backend *rt_pool_pick(struct rt_pool *pool, struct backend *const *tried, size_t n_tried,
                             const struct rt_pick_hint *hint)
{
    if (pool->n_backends == 0)
        return NULL;        /* DNS names that resolved to nothing yet */
    struct balance_candidate cands[pool->n_backends];
    bool has_removed = snapshot(pool, tried, n_tried, cands);
    struct backend *b = pick_among(pool, cands, hint);
    if (b || !has_removed)
        return b;
    /* The same snapshot (those found full stay excluded), removed backends allowed. */
    for (size_t i = 0; i < pool->n_backends; i++)
        cands[i].healthy |= is_only_removed(pool->backends[i]);
    return pick_among(pool, cands, hint);
}

void rt_pick_hint_source(const struct rt_pool *pool, const struct sockaddr *client,
                         struct rt_pick_hint *hint)
{
    static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (pool->cfg->balance != BALANCE_HASH || pool->cfg->hash_key != HASH_KEY_SOURCE_IP)
        return;
    const unsigned char *bytes;
    size_t len;
    if (client->sa_family == AF_INET) {
        bytes = (const unsigned char *)&((const struct sockaddr_in *)client)->sin_addr;
        len = 4;
    } else if (client->sa_family == AF_INET6) {
        bytes = ((const struct sockaddr_in6 *)client)->sin6_addr.s6_addr;
        len = 16;
        if (memcmp(bytes, v4_mapped, sizeof v4_mapped) == 0) {
            bytes += sizeof v4_mapped;
            len = 4;
        }
    } else {
        return;
    }
    hint->has_key = true;
    hint->key = balance_hash(bytes, len);
}

void rt_pool_release(struct backend *b)
{
    atomic_fetch_sub_explicit(&b->active, 1, memory_order_relaxed);
}

unsigned rt_pool_eject_ms(const struct rt_pool *pool)
{
    return pool->cfg->passive.eject_ms;
}

void rt_pool_report_failure(struct rt_pool *pool, struct backend *b)
{
    backend_report_failure(b, pool->cfg->passive.failures, pool->cfg->passive.eject_ms,
                           clock_now_ms());
}

uint64_t rt_pool_sticky_token(const struct rt_pool *pool, const struct backend *b)
{
    for (size_t i = 0; pool->sticky_tokens && i < pool->n_backends; i++)
        if (pool->backends[i] == b)
            return pool->sticky_tokens[i];
    return 0;
}

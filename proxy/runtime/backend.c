#include "runtime/backend.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* A plain list: tables hold tens of backends, and lookups happen only when a
 * generation is built. */
struct table_entry {
    struct backend *backend;        /* ref */
    struct table_entry *next;
};

struct backend_table {
    pthread_mutex_t lock;
    struct table_entry *entries;
};

struct backend_table *backend_table_new(void)
{
    struct backend_table *t = calloc(1, sizeof *t);
    if (t)
        pthread_mutex_init(&t->lock, NULL);
    return t;
}

void backend_table_free(struct backend_table *t)
{
    if (!t)
        return;
    struct table_entry *e = t->entries;
    while (e) {
        struct table_entry *next = e->next;
        backend_unref(e->backend);
        free(e);
        e = next;
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static struct backend *backend_new(const char *pool, const struct cfg_backend *cfg)
{
    struct backend *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->pool = strdup(pool);
    b->name = strdup(cfg->name);
    if (!b->pool || !b->name) {
        free(b->pool);
        free(b->name);
        free(b);
        return NULL;
    }
    b->addr = cfg->address;
    atomic_init(&b->state, BACKEND_UP);
    atomic_init(&b->refs, 1);
    return b;
}

struct backend *backend_table_get(struct backend_table *t, const char *pool,
                                  const struct cfg_backend *cfg)
{
    pthread_mutex_lock(&t->lock);
    struct backend *found = NULL;
    for (struct table_entry *e = t->entries; e; e = e->next) {
        struct backend *b = e->backend;
        if (strcmp(b->pool, pool) == 0 && config_addr_equal(&b->addr, &cfg->address)) {
            found = b;
            break;
        }
    }
    if (!found) {
        struct table_entry *e = calloc(1, sizeof *e);
        found = e ? backend_new(pool, cfg) : NULL;
        if (!found) {
            free(e);
            pthread_mutex_unlock(&t->lock);
            return NULL;
        }
        e->backend = found;
        e->next = t->entries;
        t->entries = e;
    }
    backend_ref(found);
    pthread_mutex_unlock(&t->lock);
    return found;
}

void backend_ref(struct backend *b) { atomic_fetch_add(&b->refs, 1); }

void backend_unref(struct backend *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    free(b->pool);
    free(b->name);
    free(b);
}

const char *backend_state_name(enum backend_state s)
{
    switch (s) {
    case BACKEND_UP: return "up";
    case BACKEND_DOWN: return "down";
    case BACKEND_DRAINING: return "draining";
    }
    return "?";
}

bool backend_report_failure(struct backend *b, unsigned fall, int64_t now_ms)
{
    atomic_fetch_add(&b->failures, 1);
    unsigned run = atomic_fetch_add(&b->consecutive_failures, 1) + 1;
    if (run < fall)
        return false;
    int expected = BACKEND_UP;
    if (!atomic_compare_exchange_strong(&b->state, &expected, BACKEND_DOWN))
        return false;
    atomic_store(&b->down_since_ms, now_ms);
    log_warn("backend %s/%s down: %u consecutive failures (passive)", b->pool, b->name, run);
    return true;
}

void backend_report_success(struct backend *b)
{
    if (atomic_load_explicit(&b->consecutive_failures, memory_order_relaxed) != 0)
        atomic_store(&b->consecutive_failures, 0);
}

void backend_maybe_revive(struct backend *b, int64_t now_ms, int64_t retry_after_ms)
{
    if (atomic_load(&b->state) != BACKEND_DOWN ||
        now_ms - atomic_load(&b->down_since_ms) < retry_after_ms)
        return;
    int expected = BACKEND_DOWN;
    if (atomic_compare_exchange_strong(&b->state, &expected, BACKEND_UP)) {
        atomic_store(&b->consecutive_failures, 0);
        log_info("backend %s/%s back in rotation after %lld ms (passive retry)", b->pool,
                 b->name, (long long)retry_after_ms);
    }
}

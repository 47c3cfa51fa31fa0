#include "runtime/backend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* A plain list: tables hold tens of backends, and lookups happen only when a
 * generation is built. The table holds one reference on each backend it lists. */
struct table_entry {
    struct backend *backend;        /* ref */
    struct table_entry *next;
};

struct backend_table {
    pthread_mutex_t lock;
    struct table_entry *entries;
};

static void drop_entries(struct table_entry *e);

struct backend_table *backend_table_new(void)
{
    struct backend_table *t = calloc(1, sizeof *t);
    if (t)
        pthread_mutex_init(&t->lock, NULL);
    return t;
}

/* A name a rename replaced: workers may still be printing it. */
struct backend_name {
    struct backend_name *next;
    char *name;                     /* owned */
};

static void backend_free(struct backend *b)
{
    while (b->old_names) {
        struct backend_name *n = b->old_names;
        b->old_names = n->next;
        free(n->name);
        free(n);
    }
    free(b->pool);
    free(b->name);
    free(b);
}

void backend_table_free(struct backend_table *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    struct table_entry *e = t->entries;
    t->entries = NULL;
    for (struct table_entry *x = e; x; x = x->next)
        atomic_store(&x->backend->table, NULL);
    pthread_mutex_unlock(&t->lock);
    drop_entries(e);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static struct backend *backend_new(struct backend_table *t, const char *pool,
                                   const struct cfg_backend *cfg, bool initial_up)
{
    struct backend *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->pool = strdup(pool);
    atomic_init(&b->name, strdup(cfg->name));
    if (!b->pool || !b->name) {
        backend_free(b);
        return NULL;
    }
    b->addr = cfg->address;
    atomic_init(&b->table, t);
    atomic_init(&b->state, initial_up ? BACKEND_UP : BACKEND_DOWN);
    /* Down from the start: a check brings it up ("initial": "down"). */
    atomic_init(&b->eject_until_ms, initial_up ? 0 : BACKEND_CHECK_ONLY);
    if (!initial_up)
        snprintf(b->down_reason, sizeof b->down_reason,
                 "not checked yet (health_check.initial is \"down\")");
    atomic_init(&b->refs, 1);
    return b;
}

struct backend *backend_table_get(struct backend_table *t, const char *pool,
                                  const struct cfg_backend *cfg, bool initial_up, bool *is_new)
{
    pthread_mutex_lock(&t->lock);
    struct backend *found = NULL;
    for (struct table_entry *e = t->entries; e; e = e->next) {
        struct backend *b = e->backend;
        if (!backend_is_removed(b) && strcmp(b->pool, pool) == 0 &&
            config_addr_equal(&b->addr, &cfg->address)) {
            found = b;
            break;
        }
    }
    *is_new = !found;
    if (!found) {
        struct table_entry *e = calloc(1, sizeof *e);
        found = e ? backend_new(t, pool, cfg, initial_up) : NULL;
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

/* Moves *link's entry onto *gone; the caller drops the table's references with
 * drop_entries() once the lock is released (the last unref frees). */
static void unlink_entry(struct table_entry **link, struct table_entry **gone)
{
    struct table_entry *e = *link;
    *link = e->next;
    atomic_store(&e->backend->table, NULL);
    e->next = *gone;
    *gone = e;
}

/* Drops the table's references (on backends unlinked from it: backend_unref frees
 * them without coming back here, so the chain is two deep at most).
 * NOLINTNEXTLINE(misc-no-recursion) */
static void drop_entries(struct table_entry *e)
{
    while (e) {
        struct table_entry *next = e->next;
        backend_unref(e->backend);
        free(e);
        e = next;
    }
}

void backend_table_keep_only(struct backend_table *t, struct backend *const *keep, size_t n)
{
    struct table_entry *gone = NULL;
    pthread_mutex_lock(&t->lock);
    for (struct table_entry *e = t->entries; e; e = e->next)
        e->backend->is_kept = false;
    for (size_t i = 0; i < n; i++)
        keep[i]->is_kept = true;
    for (struct table_entry **link = &t->entries; *link;) {
        struct backend *b = (*link)->backend;
        if (b->is_kept) {
            link = &(*link)->next;
            continue;
        }
        bool was_removed = atomic_exchange(&b->removed, true);
        if (!was_removed && !atomic_load(&b->draining))
            atomic_fetch_add(&b->transitions[BACKEND_DRAINING], 1);
        /* Only the table holds it: nothing drains through it. */
        if (atomic_load(&b->refs) == 1) {
            unlink_entry(link, &gone);
            continue;
        }
        if (!was_removed)
            log_info("backend %s/%s removed from the config: draining", b->pool, b->name);
        link = &(*link)->next;
    }
    pthread_mutex_unlock(&t->lock);
    drop_entries(gone);
}

void backend_table_foreach(struct backend_table *t, void (*fn)(struct backend *b, void *arg),
                           void *arg)
{
    pthread_mutex_lock(&t->lock);
    for (struct table_entry *e = t->entries; e; e = e->next)
        fn(e->backend, arg);
    pthread_mutex_unlock(&t->lock);
}

size_t backend_table_count(struct backend_table *t)
{
    size_t n = 0;
    pthread_mutex_lock(&t->lock);
    for (struct table_entry *e = t->entries; e; e = e->next)
        n++;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void backend_ref(struct backend *b) { atomic_fetch_add(&b->refs, 1); }

/* A backend in the table is let go under the table's lock, so that
 * backend_table_keep_only (which unlinks a removed backend that only the table holds)
 * and this see one count: a holder that let go outside the lock could not look at the
 * backend again (another thread may have freed it in between). A removed backend whose
 * last holder besides the table lets go leaves the table here. Whoever holds a
 * reference keeps the backend in its table (nothing unlinks a backend another holds),
 * so `table` cannot change under a holder's feet. */
void backend_unref(struct backend *b)  // NOLINT(misc-no-recursion): see drop_entries
{
    if (!b)
        return;
    /* While another holder besides the table and the caller remains, letting go changes
     * nothing anyone decides on: no lock (pooled connections come and go per client). */
    int refs = atomic_load(&b->refs);
    while (refs > 2)
        if (atomic_compare_exchange_weak(&b->refs, &refs, refs - 1))
            return;
    struct backend_table *t = atomic_load(&b->table);
    if (t) {
        struct table_entry *gone = NULL;
        pthread_mutex_lock(&t->lock);
        if (atomic_fetch_sub(&b->refs, 1) == 2 && backend_is_removed(b)) {
            for (struct table_entry **link = &t->entries; *link; link = &(*link)->next) {
                if ((*link)->backend == b) {
                    unlink_entry(link, &gone);
                    break;
                }
            }
        }
        pthread_mutex_unlock(&t->lock);
        drop_entries(gone);     /* the table's reference: frees b, outside the table */
        return;
    }
    if (atomic_fetch_sub(&b->refs, 1) == 1)
        backend_free(b);
}

void backend_rename(struct backend *b, const char *name)
{
    struct backend_name *old = calloc(1, sizeof *old);
    char *copy = strdup(name);
    if (!old || !copy) {
        free(old);
        free(copy);
        return;     /* out of memory: the old name stays, which is harmless */
    }
    old->name = atomic_exchange(&b->name, copy);
    old->next = b->old_names;
    b->old_names = old;
}

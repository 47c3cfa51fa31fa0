#include "upstream/pool.h"

#include <stdbool.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/bev.h"
#include "core/clock.h"
#include "core/log.h"
#include "runtime/backend.h"

/* One bucket per backend and owner (of one flavor at a time), the table small; entries
 * are recycled so that a request/response cycle on a pooled connection mallocs
 * nothing. */
enum { TABLE_SIZE = 64, SPARE_MAX = 256 };

struct idle_conn {
    struct idle_conn *newer, *older;    /* in the bucket, newest first */
    struct bucket *bucket;              /* borrowed */
    struct bufferevent *bev;            /* owned */
};

struct bucket {
    struct bucket *next;                /* hash chain */
    struct upstream_pool *pool;         /* borrowed */
    struct backend *backend;            /* ref */
    uint64_t flavor;
    uintptr_t owner;                    /* 0: shared; else the one client it serves */
    struct idle_conn *newest, *oldest;
    size_t count;
    size_t max_idle;                    /* the pool's keepalive.max_idle at the last put */
};

struct upstream_pool {
    struct event_base *base;            /* borrowed */
    struct bucket *table[TABLE_SIZE];
    struct idle_conn *spare;            /* recycled entries, linked by `older` */
    size_t n_spare;
    struct event *trim;                 /* owned: on_trim, active while a bucket is over */
};

static void on_trim(evutil_socket_t fd, short what, void *arg);

static size_t slot_of(const struct backend *b, uintptr_t owner)
{
    uintptr_t h = (uintptr_t)b >> 4 ^ owner >> 4;
    return (size_t)((h ^ (h >> 7)) % TABLE_SIZE);
}

struct upstream_pool *upstream_pool_new(struct event_base *base)
{
    struct upstream_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base = base;
    p->trim = event_new(base, -1, 0, on_trim, p);
    if (!p->trim) {
        free(p);
        return NULL;
    }
    return p;
}

static struct bucket *find_bucket(struct upstream_pool *p, const struct backend *b,
                                  uintptr_t owner)
{
    for (struct bucket *k = p->table[slot_of(b, owner)]; k; k = k->next)
        if (k->backend == b && k->owner == owner)
            return k;
    return NULL;
}

static void unlink_conn(struct idle_conn *c)
{
    struct bucket *k = c->bucket;
    if (c->newer)
        c->newer->older = c->older;
    else
        k->newest = c->older;
    if (c->older)
        c->older->newer = c->newer;
    else
        k->oldest = c->newer;
    k->count--;
}

static void recycle(struct upstream_pool *p, struct idle_conn *c)
{
    if (p->n_spare >= SPARE_MAX) {
        free(c);
        return;
    }
    c->older = p->spare;
    p->spare = c;
    p->n_spare++;
}

/* An empty bucket of a backend that takes no new requests (it left the config, or
 * drains), or of one client, is of no more use: drop it and its reference. Shared
 * buckets of live backends stay, so the next put allocates nothing. */
static void maybe_drop_bucket(struct upstream_pool *p, struct bucket *k)
{
    if (k->count > 0 || (k->owner == 0 && backend_state(k->backend) != BACKEND_DRAINING))
        return;
    struct bucket **link = &p->table[slot_of(k->backend, k->owner)];
    while (*link != k)
        link = &(*link)->next;
    *link = k->next;
    backend_unref(k->backend);
    free(k);
}

static void close_idle(struct idle_conn *c, const char *why)
{
    struct bucket *k = c->bucket;
    log_debug("upstream pool: closing idle connection to %s/%s: %s", k->backend->pool,
              k->backend->name, why);
    unlink_conn(c);
    bev_close(c->bev);
    recycle(k->pool, c);
}

/* An idle connection must stay silent: bytes mean a confused backend. */
static void on_idle_read(struct bufferevent *bev, void *arg)
{
    struct idle_conn *c = arg;
    struct bucket *k = c->bucket;
    close_idle(c, "unexpected bytes");
    maybe_drop_bucket(k->pool, k);
}

static void on_idle_event(struct bufferevent *bev, short what, void *arg)
{
    struct idle_conn *c = arg;
    struct bucket *k = c->bucket;
    close_idle(c, (what & BEV_EVENT_TIMEOUT) ? "idle timeout"
                  : (what & BEV_EVENT_EOF) ? "closed by the backend" : "error");
    maybe_drop_bucket(k->pool, k);
}

struct bufferevent *upstream_pool_take(struct upstream_pool *p, struct backend *b,
                                       uint64_t flavor, uintptr_t owner)
{
    struct bucket *k = find_bucket(p, b, owner);
    if (!k || !k->newest || k->flavor != flavor)
        return NULL;
    struct idle_conn *c = k->newest;
    struct bufferevent *bev = c->bev;
    unlink_conn(c);
    recycle(p, c);
    maybe_drop_bucket(p, k);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_set_timeouts(bev, NULL, NULL);
    return bev;
}

static void close_all(struct bucket *k, const char *why)
{
    /* close_idle unlinks the connection from k (k->newest moves on) before recycling it;
     * the analyzer takes the recycled entry for k->newest. */
    while (k->newest)
        close_idle(k->newest, why);   // NOLINT(clang-analyzer-unix.Malloc)
}

/* The bucket for b's connections of this flavor and owner. A newer flavor replaces an
 * older one (whose connections no new request takes); a connection of an older flavor
 * than the bucket's (a request of an older generation ending) has none (NULL). */
static struct bucket *get_bucket(struct upstream_pool *p, struct backend *b, uint64_t flavor,
                                 uintptr_t owner)
{
    struct bucket *k = find_bucket(p, b, owner);
    if (k && k->flavor > flavor)
        return NULL;
    if (k && k->flavor < flavor) {
        close_all(k, "the pool's TLS settings or PROXY protocol changed");
        k->flavor = flavor;
    }
    if (k)
        return k;
    k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    size_t slot = slot_of(b, owner);
    k->pool = p;
    k->backend = b;
    backend_ref(b);
    k->flavor = flavor;
    k->owner = owner;
    k->next = p->table[slot];
    p->table[slot] = k;
    return k;
}

static struct idle_conn *new_entry(struct upstream_pool *p)
{
    struct idle_conn *c = p->spare;
    if (!c)
        return calloc(1, sizeof *c);
    p->spare = c->older;
    p->n_spare--;
    return c;
}

void upstream_pool_put(struct upstream_pool *p, struct backend *b, uint64_t flavor,
                       uintptr_t owner, struct bufferevent *bev, unsigned max_idle,
                       unsigned idle_timeout_ms)
{
    bool is_wanted = max_idle > 0 && backend_state(b) != BACKEND_DRAINING;
    struct bucket *k = is_wanted ? get_bucket(p, b, flavor, owner) : NULL;
    struct idle_conn *c = k ? new_entry(p) : NULL;
    if (!c) {
        bev_close(bev);
        return;
    }
    k->max_idle = max_idle;
    if (k->count >= max_idle && !event_pending(p->trim, EV_TIMEOUT, NULL))
        event_active(p->trim, EV_TIMEOUT, 1);
    c->bucket = k;
    c->bev = bev;
    c->newer = NULL;
    c->older = k->newest;
    if (k->newest)
        k->newest->newer = c;
    else
        k->oldest = c;
    k->newest = c;
    k->count++;
    struct timeval idle = clock_tv_from_ms(idle_timeout_ms);
    bufferevent_setwatermark(bev, EV_READ | EV_WRITE, 0, 0);
    bufferevent_setcb(bev, on_idle_read, NULL, on_idle_event, c);
    bufferevent_set_timeouts(bev, &idle, NULL);
    bufferevent_enable(bev, EV_READ);
}

/* The end of the worker's event-loop round (the event was made active during it, so
 * it runs after everything already active): buckets over their max_idle lose their
 * oldest connections. A connection released and taken again within one round, as
 * under load when responses and new requests arrive together, is never closed and
 * reopened in between. */
static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_pool *p = arg;
    for (size_t i = 0; i < TABLE_SIZE; i++)
        for (struct bucket *k = p->table[i]; k; k = k->next)
            while (k->count > k->max_idle)
                /* as in close_all(): the entry recycled is no longer k->oldest
                 * NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
                close_idle(k->oldest, "keepalive.max_idle reached");
}

void upstream_pool_close_owner(struct upstream_pool *p, uintptr_t owner)
{
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        for (struct bucket *k = p->table[i], *next; k; k = next) {
            next = k->next;
            if (k->owner != owner)
                continue;
            close_all(k, "its client left");
            maybe_drop_bucket(p, k);
        }
    }
}

void upstream_pool_sweep(struct upstream_pool *p)
{
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        for (struct bucket *k = p->table[i], *next; k; k = next) {
            next = k->next;
            if (backend_state(k->backend) != BACKEND_DRAINING)
                continue;
            close_all(k, "the backend drains");
            maybe_drop_bucket(p, k);
        }
    }
}

size_t upstream_pool_buckets(const struct upstream_pool *p)
{
    size_t n = 0;
    for (size_t i = 0; i < TABLE_SIZE; i++)
        for (const struct bucket *k = p->table[i]; k; k = k->next)
            n++;
    return n;
}

size_t upstream_pool_idle(const struct upstream_pool *p, const struct backend *b)
{
    size_t n = 0;
    for (size_t i = 0; i < TABLE_SIZE; i++)
        for (const struct bucket *k = p->table[i]; k; k = k->next)
            if (k->backend == b)
                n += k->count;
    return n;
}

void upstream_pool_free(struct upstream_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        while (p->table[i]) {
            struct bucket *k = p->table[i];
            while (k->newest) {
                struct idle_conn *c = k->newest;
                /* unlink_conn() takes c off c->bucket, which is k, so k->newest moves on
                 * (the analyzer does not know that c->bucket == k).
                 * NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
                unlink_conn(c);
                bev_close(c->bev);
                free(c);
            }
            p->table[i] = k->next;
            backend_unref(k->backend);
            free(k);
        }
    }
    while (p->spare) {
        struct idle_conn *c = p->spare;
        p->spare = c->older;
        free(c);
    }
    event_free(p->trim);
    free(p);
}

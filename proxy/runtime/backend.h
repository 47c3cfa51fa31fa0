/* backend — the live state of one backend (health, counters), shared by all workers
 * and kept across config generations.
 *
 * A backend is identified by pool name + socket address (compared parsed, not as
 * written: see config_addr_equal). The daemon owns a backend_table;
 * each generation takes a reference on the backends its pools use, so a backend that
 * still exists after a reload keeps its health and counters. One that the current
 * generation no longer has is *removed*: it is "draining" (no new requests or
 * connections) while older generations, requests and idle keep-alive connections
 * still hold it, and leaves the table with its last such reference. A backend added
 * again later is a new one: fresh state and counters.
 * All mutable fields are atomics: workers update counters, the main thread's health
 * checker updates the state.
 */
#ifndef FERRY_BACKEND_H
#define FERRY_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

enum backend_state { BACKEND_UP, BACKEND_DOWN, BACKEND_DRAINING };

struct backend {
    char *pool;                     /* owned */
    char *name;                     /* owned */
    struct cfg_addr addr;
    _Atomic int state;              /* enum backend_state */
    _Atomic unsigned active;        /* connections (tcp) or requests in flight (http) */
    _Atomic uint64_t requests;      /* connections (tcp) or requests (http) sent */
    _Atomic uint64_t failures;      /* connect failures, broken responses, timeouts */
    _Atomic unsigned consecutive_failures;
    _Atomic int64_t down_since_ms;  /* monotonic ms when passive checks marked it down */
    _Atomic bool removed;           /* not in the current generation: draining */
    _Atomic int refs;
    _Atomic(struct backend_table *) table;  /* borrowed; NULL once the table let go */
    bool is_kept;                   /* backend_table_keep_only's mark (table's lock) */
};

struct backend_table;

struct backend_table *backend_table_new(void);
/* Frees the table; backends still referenced by a generation stay valid. */
void backend_table_free(struct backend_table *t);

/* The backend for pool+address, created (up) if new; returns a new reference.
 * A removed backend is never handed out again. NULL only on allocation failure.
 * Thread-safe. */
struct backend *backend_table_get(struct backend_table *t, const char *pool,
                                  const struct cfg_backend *cfg);
/* After a reload (or a reload that failed after building): every backend of the
 * table not in keep[0..n) is removed. Those nothing else holds leave at once; the
 * others are draining until their last reference goes. */
void backend_table_keep_only(struct backend_table *t, struct backend *const *keep, size_t n);
/* Calls fn on every backend of the table (removed ones that still drain included),
 * under the table's lock: fn must not call back into the table. */
void backend_table_foreach(struct backend_table *t, void (*fn)(struct backend *b, void *arg),
                           void *arg);
/* Backends the table holds (for tests). */
size_t backend_table_count(struct backend_table *t);

void backend_ref(struct backend *b);
void backend_unref(struct backend *b);

const char *backend_state_name(enum backend_state s);
/* Health: up or down as the checks see it (draining or not). */
static inline bool backend_is_up(const struct backend *b)
{
    return atomic_load_explicit(&b->state, memory_order_relaxed) == BACKEND_UP;
}
static inline bool backend_is_removed(const struct backend *b)
{
    return atomic_load_explicit(&b->removed, memory_order_relaxed);
}
/* The state /status shows: draining once removed, else the health. */
static inline enum backend_state backend_state(const struct backend *b)
{
    return backend_is_removed(b) ? BACKEND_DRAINING
                                 : (enum backend_state)atomic_load(&b->state);
}

/* Passive health: `fall` consecutive failures mark it down; a success resets the run.
 * Without active checks a passively-downed backend is retried after `retry_after_ms`
 * (see backend_maybe_revive). Returns true when this call marked it down. */
bool backend_report_failure(struct backend *b, unsigned fall, int64_t now_ms);
void backend_report_success(struct backend *b);
/* Pools without an active health check: bring a passively-downed backend back after
 * retry_after_ms so traffic can find out whether it recovered (nginx's fail_timeout). */
void backend_maybe_revive(struct backend *b, int64_t now_ms, int64_t retry_after_ms);

#endif

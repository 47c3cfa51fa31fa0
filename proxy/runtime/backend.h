/* backend — the live state of one backend (health, counters), shared by all workers
 * and kept across config generations.
 *
 * A backend is identified by pool name + socket address (compared parsed, not as
 * written: see config_addr_equal). The daemon owns a backend_table;
 * each generation takes a reference on the backends its pools use, so a backend that
 * still exists after a reload keeps its health and counters, and one that was removed
 * lives on (as "draining") until the last generation using it is freed.
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
    _Atomic int refs;
};

struct backend_table;

struct backend_table *backend_table_new(void);
/* Frees the table; backends still referenced by a generation stay valid. */
void backend_table_free(struct backend_table *t);

/* The backend for pool+address, created (up) if new; returns a new reference.
 * NULL only on allocation failure. Thread-safe. */
struct backend *backend_table_get(struct backend_table *t, const char *pool,
                                  const struct cfg_backend *cfg);

void backend_ref(struct backend *b);
void backend_unref(struct backend *b);

const char *backend_state_name(enum backend_state s);
static inline bool backend_is_up(const struct backend *b)
{
    return atomic_load_explicit(&b->state, memory_order_relaxed) == BACKEND_UP;
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

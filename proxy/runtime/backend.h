/* backend — the live state of one backend (health, drain, counters), shared by all
 * workers and kept across config generations.
 *
 * A backend is identified by pool name + socket address (compared parsed, not as
 * written: see config_addr_equal). The daemon owns a backend_table;
 * each generation takes a reference on the backends its pools use, so a backend that
 * still exists after a reload keeps its health and counters. One that the current
 * generation no longer has is *removed*: it is "draining" (no new requests or
 * connections) while older generations, requests and idle keep-alive connections
 * still hold it, and leaves the table with its last such reference. A backend added
 * again later is a new one: fresh state and counters.
 *
 * Health is `state` (up or down); draining is apart from it: a backend drains when
 * it was removed, when the config says "drain": true, or when the admin API drained
 * it (POST .../drain, until .../enable or a reload that changes its "drain" key).
 * Every transition goes through the functions below, which count it.
 * Fields shared with workers are atomics: workers update counters and report passive
 * failures, the main thread (health checks, reloads, the admin API) the rest. Fields
 * marked "main thread" are only ever touched there.
 */
#ifndef FERRY_BACKEND_H
#define FERRY_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

/* The state /status shows. Values index transitions[]. */
enum backend_state { BACKEND_UP, BACKEND_DOWN, BACKEND_DRAINING, BACKEND_STATES };

/* What the admin API said about draining: nothing (the config decides), drain, or
 * enable. */
enum backend_drain_override { DRAIN_AS_CONFIGURED, DRAIN_FORCED, DRAIN_LIFTED };

/* Results of active checks, as counted (ferry_health_checks_total{result}). */
enum backend_check_result {
    CHECK_PASS,         /* the backend answered as expected */
    CHECK_FAIL,         /* it did not */
    CHECK_SKIPPED,      /* ferry could not probe (out of descriptors, memory) */
    CHECK_RESULTS,
};

struct backend_name;

struct backend {
    char *pool;                     /* owned */
    _Atomic(char *) name;           /* owned; a reload may rename (backend_rename) */
    struct cfg_addr addr;
    _Atomic int state;              /* BACKEND_UP or BACKEND_DOWN: health */
    _Atomic unsigned active;        /* connections (tcp), requests in flight (http), flows
                                       (udp) */
    _Atomic uint64_t requests;      /* connections (tcp) or requests (http) sent */
    _Atomic uint64_t failures;      /* connect failures, broken responses, timeouts */
    _Atomic unsigned consecutive_failures;
    _Atomic int64_t down_since_ms;  /* monotonic ms when it last went down */
    /* While down: when it may come back. BACKEND_CHECK_ONLY when an active check
     * took it down (only a check brings it back); else the end of a passive ejection.
     * Kept here, not derived from a generation's config, so that generations with and
     * without a health_check agree on it. */
    _Atomic int64_t eject_until_ms;
    _Atomic unsigned eject_run;     /* the failures that ejected it (for /status) */
    _Atomic int64_t up_since_ms;    /* when it came up or was added (slow start); 0: it
                                       was there from the start */
    _Atomic bool removed;           /* not in the current generation: draining */
    _Atomic bool draining;          /* drained by the config or the admin API */
    _Atomic uint64_t transitions[BACKEND_STATES];   /* to each state */

    /* main thread */
    bool cfg_drain;                 /* the config's "drain" as last published */
    enum backend_drain_override drain_override;
    uint64_t checks[CHECK_RESULTS];
    enum backend_check_result last_result;  /* valid once checks[] counts one */
    char last_check[160];           /* the last probe's result ("" before the first) */
    char down_reason[192];          /* why an active check took it down */
    struct backend_name *old_names; /* owned: names replaced by backend_rename, kept
                                       until the end (workers may be printing them) */

    _Atomic int refs;
    _Atomic(struct backend_table *) table;  /* borrowed; NULL once the table let go */
    bool is_kept;                   /* backend_table_keep_only's mark (table's lock) */
};

struct backend_table;

struct backend_table *backend_table_new(void);
/* Frees the table; backends still referenced by a generation stay valid. Only once
 * nothing else lets go of a backend any more (workers joined, generations released):
 * backend_unref takes the table's lock. */
void backend_table_free(struct backend_table *t);

/* The backend for pool+address; returns a new reference. A new one is up, or (with
 * initial_up false) down until a check brings it up; *is_new says it was created now.
 * A removed backend is never handed out again. NULL only on allocation failure.
 * Thread-safe. */
struct backend *backend_table_get(struct backend_table *t, const char *pool,
                                  const struct cfg_backend *cfg, bool initial_up, bool *is_new);
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

/* Main thread: the config names the backend differently now. */
void backend_rename(struct backend *b, const char *name);

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
/* Takes no new requests or connections: removed, or drained. */
static inline bool backend_is_draining(const struct backend *b)
{
    return backend_is_removed(b) || atomic_load_explicit(&b->draining, memory_order_relaxed);
}
/* May new requests go there (up and not draining)? */
static inline bool backend_takes_new(const struct backend *b)
{
    return backend_is_up(b) && !backend_is_draining(b);
}
/* The state /status shows: draining first, else the health. */
static inline enum backend_state backend_state(const struct backend *b)
{
    return backend_is_draining(b) ? BACKEND_DRAINING
                                  : (enum backend_state)atomic_load(&b->state);
}

/* ---- draining (main thread) ---------------------------------------------------------- */

/* A generation was published: its config says cfg_drain for b. A change of the
 * config's value ends what the admin API said. */
void backend_apply_config_drain(struct backend *b, bool cfg_drain);
/* POST .../drain (true) or .../enable (false). */
void backend_set_drain_override(struct backend *b, bool drain);

/* ---- health ---------------------------------------------------------------------------- */

/* eject_until_ms of a backend an active check took down: only a check ends that. */
#define BACKEND_CHECK_ONLY INT64_MAX

/* Passive health: `threshold` consecutive failures (0: never) eject it for eject_ms
 * (it is down until then); a success resets the run. Returns true when this call
 * ejected it. */
bool backend_report_failure(struct backend *b, unsigned threshold, unsigned eject_ms,
                            int64_t now_ms);
void backend_report_success(struct backend *b);
/* Pools without an active health check: a passive ejection that is over brings the
 * backend back, so that traffic finds out whether it recovered (nginx's fail_timeout).
 * A backend an active check took down stays down. */
void backend_maybe_revive(struct backend *b, int64_t now_ms);
/* Down by a passive ejection (not by a check)? */
static inline bool backend_is_ejected(const struct backend *b)
{
    return !backend_is_up(b) && atomic_load(&b->eject_until_ms) != BACKEND_CHECK_ONLY;
}

/* Active checks (main thread). The check's verdict: down until a check brings it
 * back (reason: what /status shows), or up. */
void backend_check_down(struct backend *b, int64_t now_ms, const char *reason);
void backend_check_up(struct backend *b, int64_t now_ms);
/* A passively ejected backend also fails its check: from now on only the check
 * brings it back. */
void backend_hold_for_check(struct backend *b, const char *reason);
/* Its pool has no check any more (a reload removed it): a backend a check took down
 * is retried as after a passive ejection, eject_ms from now. */
void backend_release_from_check(struct backend *b, unsigned eject_ms, int64_t now_ms);
/* Main thread: one probe's result, counted and kept for /status. */
void backend_note_check(struct backend *b, enum backend_check_result result, const char *what);

/* Why it is down, for /status: the check's reason, or the passive ejection's
 * ("3 consecutive failures (passive), back in 4200 ms"). "" when up. */
void backend_down_reason(const struct backend *b, int64_t now_ms, char *out, size_t size);

const char *backend_check_result_name(enum backend_check_result r);

#endif

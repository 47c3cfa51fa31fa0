/* backend health and drain: every change of a backend's state, counted
 * (backend.h). */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "runtime/backend.h"

const char *backend_state_name(enum backend_state s)
{
    switch (s) {
    case BACKEND_UP: return "up";
    case BACKEND_DOWN: return "down";
    case BACKEND_DRAINING: return "draining";
    case BACKEND_STATES: break;
    }
    return "?";
}

const char *backend_check_result_name(enum backend_check_result r)
{
    switch (r) {
    case CHECK_PASS: return "pass";
    case CHECK_FAIL: return "fail";
    case CHECK_SKIPPED: return "skipped";
    case CHECK_RESULTS: break;
    }
    return "?";
}

static void count_transition(struct backend *b, enum backend_state to)
{
    atomic_fetch_add_explicit(&b->transitions[to], 1, memory_order_relaxed);
}

/* ---- draining -------------------------------------------------------------------------- */

static void update_draining(struct backend *b)
{
    bool drain = b->drain_override == DRAIN_FORCED ||
                 (b->drain_override == DRAIN_AS_CONFIGURED && b->cfg_drain);
    if (atomic_exchange(&b->draining, drain) == drain)
        return;
    if (drain) {
        if (!backend_is_removed(b))
            count_transition(b, BACKEND_DRAINING);
        log_info("backend %s/%s draining: no new requests or connections", b->pool, b->name);
    } else {
        count_transition(b, backend_is_up(b) ? BACKEND_UP : BACKEND_DOWN);
        log_info("backend %s/%s enabled: takes requests again", b->pool, b->name);
    }
}

void backend_apply_config_drain(struct backend *b, bool cfg_drain)
{
    if (cfg_drain != b->cfg_drain) {
        b->cfg_drain = cfg_drain;
        b->drain_override = DRAIN_AS_CONFIGURED;    /* the config changed: it decides */
    }
    update_draining(b);
}

void backend_set_drain_override(struct backend *b, bool drain)
{
    b->drain_override = drain ? DRAIN_FORCED : DRAIN_LIFTED;
    update_draining(b);
}

/* ---- passive ----------------------------------------------------------------------------- */

bool backend_report_failure(struct backend *b, unsigned threshold, unsigned eject_ms,
                            int64_t now_ms)
{
    atomic_fetch_add(&b->failures, 1);
    unsigned run = atomic_fetch_add(&b->consecutive_failures, 1) + 1;
    if (threshold == 0 || run < threshold)
        return false;
    int expected = BACKEND_UP;
    if (!atomic_compare_exchange_strong(&b->state, &expected, BACKEND_DOWN))
        return false;
    atomic_store(&b->eject_run, run);
    atomic_store(&b->down_since_ms, now_ms);
    atomic_store(&b->eject_until_ms, now_ms + eject_ms);
    count_transition(b, BACKEND_DOWN);
    log_warn("backend %s/%s down: %u consecutive failures (passive), ejected for %u ms",
             b->pool, b->name, run, eject_ms);
    return true;
}

void backend_report_success(struct backend *b)
{
    if (atomic_load_explicit(&b->consecutive_failures, memory_order_relaxed) != 0)
        atomic_store(&b->consecutive_failures, 0);
}

void backend_maybe_revive(struct backend *b, int64_t now_ms)
{
    if (atomic_load(&b->state) != BACKEND_DOWN || now_ms < atomic_load(&b->eject_until_ms))
        return;
    int expected = BACKEND_DOWN;
    if (atomic_compare_exchange_strong(&b->state, &expected, BACKEND_UP)) {
        atomic_store(&b->consecutive_failures, 0);
        atomic_store(&b->up_since_ms, now_ms);
        count_transition(b, BACKEND_UP);
        log_info("backend %s/%s back in rotation after %lld ms (passive retry)", b->pool,
                 b->name, (long long)(now_ms - atomic_load(&b->down_since_ms)));
    }
}

/* ---- active -------------------------------------------------------------------------------- */

void backend_check_down(struct backend *b, int64_t now_ms, const char *reason)
{
    snprintf(b->down_reason, sizeof b->down_reason, "%s", reason);
    /* The end first: a generation without checks must never see it down with an
     * ejection that has run out. */
    atomic_store(&b->eject_until_ms, BACKEND_CHECK_ONLY);
    atomic_store(&b->down_since_ms, now_ms);
    if (atomic_exchange(&b->state, BACKEND_DOWN) != BACKEND_DOWN)
        count_transition(b, BACKEND_DOWN);
}

void backend_check_up(struct backend *b, int64_t now_ms)
{
    atomic_store(&b->consecutive_failures, 0);
    atomic_store(&b->up_since_ms, now_ms);
    b->down_reason[0] = '\0';
    if (atomic_exchange(&b->state, BACKEND_UP) != BACKEND_UP)
        count_transition(b, BACKEND_UP);
}

void backend_hold_for_check(struct backend *b, const char *reason)
{
    snprintf(b->down_reason, sizeof b->down_reason, "%s", reason);
    atomic_store(&b->eject_until_ms, BACKEND_CHECK_ONLY);
}

void backend_release_from_check(struct backend *b, unsigned eject_ms, int64_t now_ms)
{
    int64_t until = BACKEND_CHECK_ONLY;
    if (atomic_load(&b->state) == BACKEND_DOWN &&
        atomic_compare_exchange_strong(&b->eject_until_ms, &until, now_ms + eject_ms))
        log_info("backend %s/%s: its pool has no health_check any more; retried in %u ms",
                 b->pool, b->name, eject_ms);
}

void backend_note_check(struct backend *b, enum backend_check_result result, const char *what)
{
    b->checks[result]++;
    b->last_result = result;
    snprintf(b->last_check, sizeof b->last_check, "%s", what);
}

void backend_down_reason(const struct backend *b, int64_t now_ms, char *out, size_t size)
{
    int64_t until = atomic_load(&b->eject_until_ms);
    if (backend_is_up(b))
        snprintf(out, size, "%s", "");
    else if (until == BACKEND_CHECK_ONLY)
        snprintf(out, size, "%s", b->down_reason);
    else if (until > now_ms)
        snprintf(out, size, "%u consecutive failures (passive), ejected for %lld ms more",
                 atomic_load(&b->eject_run), (long long)(until - now_ms));
    else
        snprintf(out, size, "%u consecutive failures (passive), ejection over: %s",
                 atomic_load(&b->eject_run), "waiting for a passing check or a retry");
}

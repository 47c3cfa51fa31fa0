/* Token buckets in thousandths of a token: a rate of R tokens per second adds exactly
 * R thousandths per millisecond, so refilling needs no division and loses nothing to
 * rounding however often it runs. */
#include "http2/guard.h"

enum { MILLI = 1000 };

static void bucket_init(struct h2_guard_bucket *b, int64_t burst, int64_t now_ms)
{
    b->tokens_milli = burst * MILLI;
    b->last_ms = now_ms;
}

/* A clock that goes back (it should not: callers pass a monotonic one) refills
 * nothing; the next reading after it catches up counts from the later time. */
static void refill(struct h2_guard_bucket *b, int64_t per_s, int64_t burst, int64_t now_ms)
{
    if (now_ms <= b->last_ms)
        return;
    int64_t room = burst * MILLI - b->tokens_milli;
    int64_t elapsed = now_ms - b->last_ms;
    /* Compared before multiplying: a connection idle for ages must not overflow. */
    b->tokens_milli += elapsed > room / per_s ? room : elapsed * per_s;
    b->last_ms = now_ms;
}

static bool spend(struct h2_guard_bucket *b, int64_t per_s, int64_t burst, int64_t now_ms)
{
    refill(b, per_s, burst, now_ms);
    if (b->tokens_milli < MILLI)
        return false;
    b->tokens_milli -= MILLI;
    return true;
}

static void earn(struct h2_guard_bucket *b, int64_t burst)
{
    b->tokens_milli += MILLI;
    if (b->tokens_milli > burst * MILLI)
        b->tokens_milli = burst * MILLI;
}

void h2_guard_init(struct h2_guard *g, int64_t now_ms)
{
    bucket_init(&g->resets, H2_GUARD_RESET_BURST, now_ms);
    bucket_init(&g->control, H2_GUARD_CONTROL_BURST, now_ms);
}

bool h2_guard_client_reset(struct h2_guard *g, int64_t now_ms)
{
    return spend(&g->resets, H2_GUARD_RESET_PER_S, H2_GUARD_RESET_BURST, now_ms);
}

bool h2_guard_control_frame(struct h2_guard *g, int64_t now_ms)
{
    return spend(&g->control, H2_GUARD_CONTROL_PER_S, H2_GUARD_CONTROL_BURST, now_ms);
}

void h2_guard_useful(struct h2_guard *g)
{
    earn(&g->control, H2_GUARD_CONTROL_BURST);
}

void h2_guard_stream_completed(struct h2_guard *g)
{
    earn(&g->resets, H2_GUARD_RESET_BURST);
}

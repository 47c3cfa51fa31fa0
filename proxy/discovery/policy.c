#include "discovery/policy.h"

static const char *const RESULT_NAMES[DNS_RESULTS] = {
    "ok", "nodata", "nxdomain", "error", "servfail", "timeout",
};

const char *dns_result_name(enum dns_result r)
{
    return r < DNS_RESULTS ? RESULT_NAMES[r] : "?";
}

enum dns_result dns_result_worse(enum dns_result a, enum dns_result b)
{
    /* The enum is in that order. */
    return a > b ? a : b;
}

unsigned dns_refresh_ms(uint32_t ttl_s, unsigned min_ttl_ms, unsigned max_ttl_ms)
{
    uint64_t ms = (uint64_t)ttl_s * 1000;
    if (ms < min_ttl_ms)
        return min_ttl_ms;
    return ms > max_ttl_ms ? max_ttl_ms : (unsigned)ms;
}

unsigned dns_backoff_ms(unsigned failures, unsigned min_ttl_ms, unsigned max_ttl_ms,
                        uint32_t random)
{
    uint64_t cap = max_ttl_ms < DNS_BACKOFF_CAP_MS ? max_ttl_ms : DNS_BACKOFF_CAP_MS;
    if (cap < min_ttl_ms)
        cap = min_ttl_ms;
    uint64_t delay = min_ttl_ms;
    for (unsigned i = 1; i < failures && delay < cap; i++)
        delay *= 2;
    if (delay > cap)
        delay = cap;
    /* Equal jitter: half is fixed, half is random; never sooner than min_ttl_ms. */
    uint64_t half = delay / 2;
    uint64_t jittered = delay - half + (half * random >> 32);
    return (unsigned)(jittered < min_ttl_ms ? min_ttl_ms : jittered);
}

unsigned dns_srv_weight(unsigned weight, unsigned max_weight)
{
    if (weight == 0)
        return 1;
    if (max_weight <= 256)
        return weight;
    unsigned scaled = (unsigned)(((uint64_t)weight * 256 + max_weight / 2) / max_weight);
    return scaled < 1 ? 1 : scaled > 256 ? 256 : scaled;
}

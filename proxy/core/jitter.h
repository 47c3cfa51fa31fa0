/* jitter — a cheap pseudo-random stream (xorshift64) for spreading timers: health
 * probes, DNS retries. Not for anything an attacker could profit from guessing. */
#ifndef FERRY_JITTER_H
#define FERRY_JITTER_H

#include <stdint.h>
#include <sys/random.h>

#include "core/clock.h"

/* A state to start from (never 0: xorshift would stay there). */
static inline uint64_t jitter_seed(void)
{
    uint64_t s;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s || s == 0)
        s = (uint64_t)clock_now_ms() * 0x9e3779b97f4a7c15ULL | 1;
    return s;
}

/* The next 64 bits of the stream; advances *state. */
static inline uint64_t jitter_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

#endif

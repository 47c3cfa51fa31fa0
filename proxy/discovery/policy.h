/* policy — the rules of DNS discovery that are numbers, not I/O (pure): how long an
 * answer is trusted, how soon a failed lookup is retried, how SRV weights become
 * ferry weights, and what one lookup made of several queries amounts to.
 */
#ifndef FERRY_DISCOVERY_POLICY_H
#define FERRY_DISCOVERY_POLICY_H

#include <stdbool.h>
#include <stdint.h>

/* What one lookup of an entry came to (counted in ferry_dns_lookups_total{result}).
 * A lookup is every query an entry needs (A and AAAA; SRV, then its targets'). */
enum dns_result {
    DNS_RESULT_OK,          /* addresses found */
    DNS_RESULT_NODATA,      /* the name exists but has no record of the kind asked */
    DNS_RESULT_NXDOMAIN,    /* no such name */
    DNS_RESULT_ERROR,       /* refused, malformed or truncated answer, no socket, ... */
    DNS_RESULT_SERVFAIL,    /* the resolver failed */
    DNS_RESULT_TIMEOUT,     /* no answer */
    DNS_RESULTS,
};

/* "ok", "nodata", "nxdomain", "error", "servfail", "timeout". */
const char *dns_result_name(enum dns_result r);

/* Two queries of one lookup failed differently: the one to report (the failure
 * furthest from "the name is simply not there": timeout, then servfail, error,
 * nxdomain, nodata). DNS_RESULT_OK loses to any failure. */
enum dns_result dns_result_worse(enum dns_result a, enum dns_result b);

/* Milliseconds until an answer with this TTL (seconds) is looked up again: the TTL
 * clamped to min_ttl_ms..max_ttl_ms (min_ttl_ms <= max_ttl_ms). */
unsigned dns_refresh_ms(uint32_t ttl_s, unsigned min_ttl_ms, unsigned max_ttl_ms);

/* The longest wait between retries of a failing lookup (before jitter). */
#define DNS_BACKOFF_CAP_MS 30000u

/* Milliseconds until the retry after `failures` (>= 1) lookups in a row failed:
 * min_ttl_ms doubled per failure, capped at max_ttl_ms and DNS_BACKOFF_CAP_MS (but
 * never below min_ttl_ms), then jittered down by up to half with `random` (uniform
 * 32 bits) but not below min_ttl_ms, so that ferry processes that failed together do
 * not retry together. */
unsigned dns_backoff_ms(unsigned failures, unsigned min_ttl_ms, unsigned max_ttl_ms,
                        uint32_t random);

/* A ferry weight (1..256) for an SRV record's weight (0..65535) when the largest
 * weight among the records is max_weight: kept as it is when max_weight <= 256, else
 * scaled down in proportion (rounded, at least 1). 0 counts as 1. */
unsigned dns_srv_weight(unsigned weight, unsigned max_weight);

#endif

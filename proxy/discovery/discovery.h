/* discovery — backends found by DNS, looked up on the main thread.
 *
 * Every DNS entry of the current config (struct cfg_dns_backend: a host name with a
 * port, or an SRV name) has a *watch*: its last answer (a sorted address set), a
 * timer for the next lookup (the answer's TTL, clamped by dns.min_ttl_ms and
 * max_ttl_ms; after a failure, a jittered exponential backoff), and its counters.
 * Lookups never block: A and AAAA go through libevent's evdns, SRV through ferry's
 * own UDP queries (wire.h) to the same resolvers, all on the main event_base.
 *
 * A lookup either answers completely or changes nothing: a timeout, SERVFAIL,
 * NXDOMAIN, an empty answer or a failed target keeps the last answer (none for a name
 * that never resolved: the pool has no backends from it). When an answer differs
 * from the last one, the owner's change callback runs (once for changes that come
 * together); the daemon then builds a generation from the current config's document
 * with every watch's answer added (discovery_fill) and publishes it like a reload.
 *
 * Watches belong to the entries of the published config (discovery_follow): a reload
 * keeps the watch, hence the answer and the timer, of every entry whose pool, name,
 * port and family did not change, starts the new ones and drops the others.
 *
 * Main thread only. Every evdns request is owned by the query that made it until its
 * callback, which evdns always runs (also when the request is cancelled or evdns is
 * freed), so nothing is left behind at a reload or at exit.
 */
#ifndef FERRY_DISCOVERY_H
#define FERRY_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/err.h"
#include "discovery/addrset.h"
#include "discovery/policy.h"

struct discovery;
struct event_base;

/* An answer differs from the one before: build a generation with it. Returns 0, or
 * -1 when that failed (it is tried again later, backing off as failed lookups do). */
typedef int (*discovery_change_fn)(void *arg);

/* A discovery on `base` (borrowed). on_change may be NULL (ferry -t). NULL when out
 * of memory. */
struct discovery *discovery_new(struct event_base *base, discovery_change_fn on_change,
                                void *arg);
/* Cancels every lookup and frees everything, evdns requests included (it runs the
 * callbacks evdns still owes on `base`: call it once nothing else on base may run). */
void discovery_free(struct discovery *d);

/* cfg is the config of the published generation: watch its DNS entries (new ones are
 * looked up now), stop watching the others, and take its resolvers and TTL bounds
 * (new resolvers: every lookup starts again, answers kept). */
void discovery_follow(struct discovery *d, const struct config *cfg);
/* Adds to every pool of cfg (not yet built into a generation) the backends its DNS
 * entries resolved to, as the watches of `d` know them (entries without a watch, or
 * without an answer yet, add nothing). 0, or -1 with the reason in err. */
int discovery_fill(const struct discovery *d, struct config *cfg, struct err *err);
/* Runs base's loop until every watch has had a first answer or failure, or for
 * timeout_ms at most (at start: serve with the names resolved). */
void discovery_wait(struct discovery *d, unsigned timeout_ms);

/* ferry -t: looks up every DNS entry of cfg once (on a private loop, timeout_ms at
 * most) and calls warn with a line for each that did not resolve. Returns how many
 * did not. */
size_t discovery_check(const struct config *cfg, unsigned timeout_ms,
                       void (*warn)(void *arg, const char *line), void *arg);

/* What /status and /metrics show of one watch; valid during the callback. */
struct discovery_view {
    const char *pool;
    size_t index;                   /* the entry's place in the pool's backends[] */
    bool is_srv;
    const char *text;               /* "api.internal:8080" or the SRV name */
    enum cfg_family family;
    const struct dns_set *set;      /* the last answer (empty: none yet) */
    uint32_t ttl_s;                 /* the last answer's TTL, as the records said */
    int64_t refresh_in_ms;          /* until the next lookup (0: in flight) */
    const char *last_error;         /* "" when the last lookup succeeded or none ran */
    unsigned failures;              /* failed lookups in a row */
    const uint64_t *lookups;        /* [DNS_RESULTS], by result */
};
/* Calls fn for every watch, in config order. */
void discovery_foreach(const struct discovery *d,
                       void (*fn)(const struct discovery_view *view, void *arg), void *arg);

/* How long the daemon waits at start for the first answers (discovery_wait), and
 * ferry -t for its check. */
#define DISCOVERY_START_WAIT_MS 5000u

#endif

/* discovery internals — shared by discovery.c (the watches of a config, evdns, fill),
 * watch.c (one entry's lookups and timer) and srv.c (SRV queries over UDP). */
#ifndef FERRY_DISCOVERY_INTERNAL_H
#define FERRY_DISCOVERY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "discovery/discovery.h"
#include "discovery/wire.h"

struct event;
struct evdns_base;
struct lookup;

/* Per query and resolver: evdns's "timeout" and "attempts", and the SRV queries'. */
#define DISCOVERY_QUERY_TIMEOUT_MS 2000u
#define DISCOVERY_QUERY_ATTEMPTS 2u

struct discovery {
    struct event_base *base;        /* borrowed: the main thread's loop */
    struct evdns_base *evdns;       /* owned; NULL before the first follow */
    /* Where SRV queries go: the resolvers evdns was given. */
    struct sockaddr_storage resolvers[CFG_DNS_MAX_RESOLVERS];
    socklen_t resolver_lens[CFG_DNS_MAX_RESOLVERS];
    size_t n_resolvers;
    /* "resolvers" as last followed (n_configured 0: /etc/resolv.conf), to see a change. */
    struct cfg_addr configured[CFG_DNS_MAX_RESOLVERS];
    size_t n_configured;
    unsigned min_ttl_ms, max_ttl_ms;
    struct watch *watches;          /* owned list, in config order */
    struct event *changed;          /* owned: runs on_change once for changes together */
    discovery_change_fn on_change;  /* may be NULL */
    void *change_arg;
    unsigned change_failures;       /* on_change failed this many times in a row */
    size_t lookups_alive;           /* lookups not yet freed (abandoned ones included) */
    uint64_t random;                /* xorshift64 state for retry jitter, never 0 */
};

/* One DNS entry of the followed config. */
struct watch {
    struct watch *next;             /* the discovery's list */
    struct discovery *disc;         /* borrowed */
    char *pool;                     /* owned */
    struct cfg_dns_backend entry;   /* a copy: name owned; index as last followed */
    char text[DNS_WIRE_NAME_MAX + 8];  /* "name:port" or the SRV name */
    struct lookup *lookup;          /* shared with its queries (see watch.c); NULL when idle */
    struct event *timer;            /* owned: the next lookup */
    struct dns_set answer;          /* owned: the last answer, normalized (empty: none
                                       yet; a failure keeps the last one) */
    uint32_t ttl_s;                 /* the last answer's */
    int64_t next_lookup_ms;         /* when the timer fires */
    unsigned failures;              /* in a row */
    char last_error[256];           /* "" when the last lookup succeeded */
    uint64_t lookups[DNS_RESULTS];
};

/* ---- watch.c ---- */

/* A watch for entry `e` of pool `pool` (its first lookup starts now). NULL when out
 * of memory. */
struct watch *watch_new(struct discovery *d, const char *pool, const struct cfg_dns_backend *e);
/* Stops what is in flight and frees it (the answer goes with it). */
void watch_free(struct watch *w);
/* Abandons a lookup in flight and starts another at once (new resolvers, or a
 * stalled watch); the answer is kept. */
void watch_restart(struct watch *w);
/* Neither looking up nor waiting to (its timer could not be set: out of memory)? */
bool watch_is_stalled(const struct watch *w);
/* Does the watch look up what entry e of pool `pool` asks for? */
bool watch_matches(const struct watch *w, const char *pool, const struct cfg_dns_backend *e);
/* Has it had an answer or a failure yet? */
bool watch_is_settled(const struct watch *w);

/* ---- discovery.c ---- */

/* An answer changed: run on_change (once for changes that come together). */
void discovery_changed(struct discovery *d);
/* 32 random bits (retry jitter). */
uint32_t discovery_random(struct discovery *d);

/* ---- srv.c: SRV queries over UDP ---- */

struct srv_query;

/* The end of a query: an answer (what wire.c made of it), or none, with the reason
 * in `error` (every try timed out, or a socket error such as "Connection refused"). */
struct srv_outcome {
    bool is_answered;
    enum dns_wire_status status;    /* answered: the parser's verdict */
    const struct dns_srv_answer *answer;    /* borrowed: status DNS_WIRE_ANSWER only */
    bool timed_out;                 /* not answered: the last try timed out */
    const char *error;              /* not answered: why */
};
typedef void (*srv_query_done_fn)(void *arg, const struct srv_outcome *outcome);

/* Asks the discovery's resolvers (DISCOVERY_QUERY_ATTEMPTS tries each, in turn, each
 * DISCOVERY_QUERY_TIMEOUT_MS) for the SRV records of `name`. done runs once, from the
 * loop, after which the query frees itself. NULL (nothing started, done never runs)
 * when it cannot start, with the reason in why. */
struct srv_query *srv_query_start(struct discovery *d, const char *name, srv_query_done_fn done,
                                  void *arg, char *why, size_t why_size);
/* Stops a query before its done ran (done never runs) and frees it. */
void srv_query_cancel(struct srv_query *q);

#endif

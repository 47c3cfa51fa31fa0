/* runtime — one generation: everything built from one struct config.
 *
 * A generation is immutable once built and refcounted: the daemon holds one reference
 * to the current generation, each worker holds one to the generation it accepts new
 * connections on, and every session holds one to the generation it started on (an
 * HTTP session re-takes the newest one at the start of each request). The last unref
 * frees the generation, its config, its TLS contexts and balancer state, and drops
 * its references on listening sockets and backends (which outlive generations).
 */
#ifndef FERRY_RUNTIME_H
#define FERRY_RUNTIME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/err.h"

struct backend;
struct backend_table;
struct balancer;
struct listen_set;
struct listen_socket;
struct tls_client;
struct tls_server;
struct tls_ticket_keys;

struct rt_pool {
    const struct cfg_pool *cfg;     /* borrowed from runtime.cfg */
    struct backend **backends;      /* refs, in config order */
    size_t n_backends;
    struct balancer *balancer;      /* ref: shared with the generations before and after
                                       while the pool's backend list stays the same */
    uint64_t *sticky_tokens;        /* owned, sticky pools: each backend's cookie token */
    struct tls_client *tls;         /* owned; NULL = plaintext */
    /* The generation that first had this transport: plaintext, or TLS with these
     * settings (the same config and the same file contents), and this PROXY protocol
     * version, so that pooled connections outlive reloads that leave it alone and
     * never outlive one that changes it (upstream/pool.h); tls_fingerprint: the
     * SHA-256 of the TLS settings (zero for plaintext). */
    uint64_t flavor;
    unsigned char tls_fingerprint[32];
    struct runtime *runtime;        /* borrowed: the generation this pool belongs to */
};

struct rt_route {
    const struct cfg_route *cfg;    /* borrowed */
    struct rt_pool *pool;           /* borrowed */
};

struct rt_listener {
    const struct cfg_listener *cfg; /* borrowed */
    struct listen_socket *socket;   /* ref */
    struct tls_server *tls;         /* owned; NULL = plaintext */
    struct rt_route *routes;        /* owned array */
    size_t n_routes;
};

struct runtime {
    _Atomic int refs;
    uint64_t generation;
    struct config *cfg;             /* owned */
    struct rt_listener *listeners;  /* owned array, config order */
    size_t n_listeners;
    struct rt_pool *pools;          /* owned array, config order */
    size_t n_pools;
};

/* What a generation borrows from the daemon. */
struct runtime_deps {
    struct backend_table *backends;
    struct listen_set *sockets;     /* NULL: do not bind (ferry -t, dry runs) */
    size_t workers;                 /* worker threads running (or about to): a udp
                                       listener binds one socket for each */
    struct tls_ticket_keys *ticket_keys;
    const struct runtime *previous; /* the generation running now (NULL: none), for
                                       what carries over unchanged pools */
    /* Optional: every failure is added here (the build goes on past a listener or pool
     * that failed, so that one attempt reports every certificate, key and bind
     * problem); err still gets the first. */
    struct config_errors *errors;
    /* Dry runs (sockets NULL): an address this says is open already would be carried
     * over; any other is test-bound (listen_probe). NULL: no bind test. */
    bool (*is_open)(void *arg, const struct cfg_addr *addr, int type);
    void *is_open_arg;
    /* previous was built from the same config document (a change of backends found by
     * DNS): its TLS contexts are shared, not loaded from the files again. */
    bool shares_tls;
};

/* Builds generation `generation` from cfg (ownership of cfg passes to the runtime,
 * also on failure). Returns NULL with the reason in err (and every reason in
 * deps->errors); nothing is left behind. */
struct runtime *runtime_build(struct config *cfg, const struct runtime_deps *deps,
                              uint64_t generation, struct err *err);

/* rt became the current generation (main thread): its config's names and "drain"
 * keys apply to its backends. */
void runtime_publish(const struct runtime *rt);
/* The backend table keeps the backends of rt (the current generation) and removes the
 * others (see backend_table_keep_only): after every reload, applied or not. */
void runtime_keep_backends(const struct runtime *rt, struct backend_table *t);

void runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

/* The listener of this generation that serves `socket`, or NULL. */
struct rt_listener *runtime_listener_for(struct runtime *rt, const struct listen_socket *socket);

/* Upper bound on backends a request may try (first attempt + retries). */
enum { RT_MAX_ATTEMPTS = 11 };

/* What a request brings to its pick. */
struct rt_pick_hint {
    bool has_key;
    uint64_t key;           /* hash pools: balance_hash() of the request's hash key */
    bool has_sticky;
    uint64_t sticky;        /* sticky pools: the token of the request's cookie */
};

/* Chooses a backend of `pool` that is up, not draining, not full and not in
 * `tried[0..n_tried)` (the sticky cookie's one if it can, else by the pool's
 * algorithm; hint may be NULL), and reserves one of its max_connections slots
 * (counted in b->active) in the same atomic step, so that workers picking at the same
 * moment cannot overshoot the limit. NULL when none is eligible. Every backend
 * returned is given back with rt_pool_release() when its connection or request
 * ends. */
struct backend *rt_pool_pick(struct rt_pool *pool, struct backend *const *tried, size_t n_tried,
                             const struct rt_pick_hint *hint);
/* Hash pools on "source_ip": sets hint's key from the client's address, without its
 * port, whoever told it — the socket, a PROXY header (the session's addrs.peer), a
 * udp datagram (the flow's client) —, so that a client's connections, requests and
 * flows all go to the same backend. An IPv4 address is the same key when written as
 * IPv4-mapped IPv6 (as a PROXY header may carry it). Other pools, other families:
 * hint unchanged. */
void rt_pick_hint_source(const struct rt_pool *pool, const struct sockaddr *client,
                         struct rt_pick_hint *hint);
/* Gives back the slot rt_pool_pick() reserved. */
void rt_pool_release(struct backend *b);

/* Passive health bookkeeping for a backend of this pool. */
void rt_pool_report_failure(struct rt_pool *pool, struct backend *b);
/* How long a passive ejection lasts in this pool. */
unsigned rt_pool_eject_ms(const struct rt_pool *pool);
/* The sticky cookie token of b in this pool (0 if it has none). */
uint64_t rt_pool_sticky_token(const struct rt_pool *pool, const struct backend *b);

#endif

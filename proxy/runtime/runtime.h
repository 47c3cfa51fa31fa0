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
    struct balancer *balancer;      /* owned */
    struct tls_client *tls;         /* owned; NULL = plaintext */
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
    struct tls_ticket_keys *ticket_keys;
    /* Optional: every failure is added here (the build goes on past a listener or pool
     * that failed, so that one attempt reports every certificate, key and bind
     * problem); err still gets the first. */
    struct config_errors *errors;
    /* Dry runs (sockets NULL): an address this says is open already would be carried
     * over; any other is test-bound (listen_probe). NULL: no bind test. */
    bool (*is_open)(void *arg, const struct cfg_addr *addr);
    void *is_open_arg;
};

/* Builds generation `generation` from cfg (ownership of cfg passes to the runtime,
 * also on failure). Returns NULL with the reason in err (and every reason in
 * deps->errors); nothing is left behind. */
struct runtime *runtime_build(struct config *cfg, const struct runtime_deps *deps,
                              uint64_t generation, struct err *err);

void runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

/* The listener of this generation that serves `socket`, or NULL. */
struct rt_listener *runtime_listener_for(struct runtime *rt, const struct listen_socket *socket);

/* Upper bound on backends a request may try (first attempt + retries). */
enum { RT_MAX_ATTEMPTS = 11 };

/* Chooses a backend of `pool` that is up, not full and not in `tried[0..n_tried)`.
 * NULL when none is eligible. The caller accounts active/requests itself. */
struct backend *rt_pool_pick(struct rt_pool *pool, struct backend *const *tried, size_t n_tried);

/* Passive health bookkeeping for a backend of this pool. */
void rt_pool_report_failure(struct rt_pool *pool, struct backend *b);

#endif

#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

#include "balance/balance.h"
#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "runtime/backend.h"
#include "tls/tls.h"

/* Without active checks, a passively-downed backend gets traffic again after this. */
enum { PASSIVE_RETRY_MS = 10000, PASSIVE_FALL_DEFAULT = 3 };

static void pool_release(struct rt_pool *p)
{
    for (size_t i = 0; i < p->n_backends; i++)
        backend_unref(p->backends[i]);
    free(p->backends);
    balancer_free(p->balancer);
    tls_client_free(p->tls);
}

static void listener_release(struct rt_listener *l)
{
    listen_socket_unref(l->socket);
    tls_server_free(l->tls);
    free(l->routes);
}

static void runtime_free(struct runtime *rt)
{
    for (size_t i = 0; i < rt->n_listeners; i++)
        listener_release(&rt->listeners[i]);
    for (size_t i = 0; i < rt->n_pools; i++)
        pool_release(&rt->pools[i]);
    free(rt->listeners);
    free(rt->pools);
    config_free(rt->cfg);
    free(rt);
}

static int build_pool(struct runtime *rt, size_t index, const struct runtime_deps *deps,
                      struct err *err)
{
    const struct cfg_pool *cfg = &rt->cfg->pools[index];
    struct rt_pool *p = &rt->pools[index];
    p->cfg = cfg;
    p->runtime = rt;
    p->backends = calloc(cfg->n_backends, sizeof *p->backends);
    p->balancer = balancer_new(cfg->balance, cfg->n_backends);
    if (!p->backends || !p->balancer)
        return err_set(err, "pools.%s: out of memory", cfg->name);
    for (size_t i = 0; i < cfg->n_backends; i++) {
        p->backends[i] = backend_table_get(deps->backends, cfg->name, &cfg->backends[i]);
        if (!p->backends[i])
            return err_set(err, "pools.%s: out of memory", cfg->name);
        p->n_backends = i + 1;
    }
    if (cfg->tls) {
        char where[256];
        snprintf(where, sizeof where, "pools.%s.tls", cfg->name);
        p->tls = tls_client_new(cfg->tls, where, err);
        if (!p->tls)
            return -1;
    }
    return 0;
}

static void log_tls_warning(void *arg, const char *msg) { log_warn("%s", msg); }

/* Failures met while building: the first in `first`, each one in `all` if set. */
struct build_failures {
    struct err *first;              /* borrowed */
    struct config_errors *all;      /* borrowed; NULL: stop at the first */
    size_t count;
};

/* Notes one failure (its reason in `why`); -1 always, for `return failed(...)`. */
static int failed(struct build_failures *f, const char *why)
{
    if (f->count++ == 0)
        err_set(f->first, "%s", why);
    if (f->all)
        config_errors_add(f->all, "%s", why);
    return -1;
}

static void add_certificate_failure(void *arg, const char *msg)
{
    struct build_failures *f = arg;
    failed(f, msg);
}

/* A listener's TLS: a certificate that fails does not hide the others' problems. */
static int build_listener_tls(struct rt_listener *l, const struct runtime_deps *deps,
                              struct build_failures *f)
{
    const struct cfg_listener *cfg = l->cfg;
    char where[256];
    struct err err = { { 0 } };
    snprintf(where, sizeof where, "listeners.%s.tls", cfg->name);
    l->tls = tls_server_new(cfg->tls, cfg->mode, deps->ticket_keys, where, log_tls_warning,
                            NULL, &err);
    if (l->tls)
        return 0;
    if (f->all && tls_server_check_certificates(cfg->tls, where, add_certificate_failure, f) > 0)
        return -1;
    return failed(f, err.msg);
}

static int build_listener_socket(struct rt_listener *l, const struct runtime_deps *deps,
                                 struct build_failures *f)
{
    const struct cfg_listener *cfg = l->cfg;
    struct err err = { { 0 } };
    int rc = 0;
    if (deps->sockets)
        rc = listen_set_acquire(deps->sockets, &cfg->listen, &l->socket, &err);
    else if (deps->is_open && !deps->is_open(deps->is_open_arg, &cfg->listen))
        rc = listen_probe(&cfg->listen, &err);
    if (rc == 0)
        return 0;
    char why[sizeof err.msg + 128];
    snprintf(why, sizeof why, "listeners.%s.listen: %s", cfg->name, err.msg);
    return failed(f, why);
}

/* Both the TLS contexts and the socket are tried, so that both problems show. */
static int build_listener(struct runtime *rt, size_t index, const struct runtime_deps *deps,
                          struct build_failures *f)
{
    const struct cfg_listener *cfg = &rt->cfg->listeners[index];
    struct rt_listener *l = &rt->listeners[index];
    l->cfg = cfg;
    l->routes = calloc(cfg->n_routes, sizeof *l->routes);
    if (!l->routes) {
        char why[300];
        snprintf(why, sizeof why, "listeners.%s: out of memory", cfg->name);
        return failed(f, why);
    }
    l->n_routes = cfg->n_routes;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        l->routes[i].cfg = &cfg->routes[i];
        l->routes[i].pool = &rt->pools[cfg->routes[i].pool];
    }
    int rc = cfg->tls ? build_listener_tls(l, deps, f) : 0;
    if (rc < 0 && !f->all)
        return -1;
    return build_listener_socket(l, deps, f) < 0 ? -1 : rc;
}

struct runtime *runtime_build(struct config *cfg, const struct runtime_deps *deps,
                              uint64_t generation, struct err *err)
{
    struct runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        config_free(cfg);
        err_set(err, "out of memory");
        return NULL;
    }
    atomic_init(&rt->refs, 1);
    rt->generation = generation;
    rt->cfg = cfg;
    rt->pools = calloc(cfg->n_pools, sizeof *rt->pools);
    rt->listeners = calloc(cfg->n_listeners, sizeof *rt->listeners);
    if (!rt->pools || !rt->listeners) {
        err_set(err, "out of memory");
        goto fail;
    }
    /* n_* count what was (partly) built, so runtime_free undoes exactly that. With
     * deps->errors the build goes on after a failure, to report every one. */
    struct build_failures f = { err, deps->errors, 0 };
    for (size_t i = 0; i < cfg->n_pools; i++) {
        struct err pool_err = { { 0 } };
        rt->n_pools = i + 1;
        if (build_pool(rt, i, deps, &pool_err) < 0 && failed(&f, pool_err.msg) < 0 && !f.all)
            goto fail;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        rt->n_listeners = i + 1;
        if (build_listener(rt, i, deps, &f) < 0 && !f.all)
            goto fail;
    }
    if (f.count > 0)
        goto fail;
    return rt;
fail:
    runtime_free(rt);
    return NULL;
}

void runtime_ref(struct runtime *rt) { atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed); }

void runtime_unref(struct runtime *rt)
{
    if (rt && atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) == 1)
        runtime_free(rt);
}

struct rt_listener *runtime_listener_for(struct runtime *rt, const struct listen_socket *socket)
{
    for (size_t i = 0; i < rt->n_listeners; i++)
        if (rt->listeners[i].socket == socket)
            return &rt->listeners[i];
    return NULL;
}

static bool was_tried(const struct backend *b, struct backend *const *tried, size_t n_tried)
{
    for (size_t i = 0; i < n_tried; i++)
        if (tried[i] == b)
            return true;
    return false;
}

struct backend *rt_pool_pick(struct rt_pool *pool, struct backend *const *tried, size_t n_tried)
{
    size_t n = pool->n_backends;
    struct balance_candidate cands[n];
    bool passive_only = pool->cfg->health_check.type == HEALTH_CHECK_NONE;
    int64_t now = passive_only ? clock_now_ms() : 0;
    for (size_t i = 0; i < n; i++) {
        struct backend *b = pool->backends[i];
        if (passive_only)
            backend_maybe_revive(b, now, PASSIVE_RETRY_MS);
        cands[i] = (struct balance_candidate){
            .weight = pool->cfg->backends[i].weight,
            .active = atomic_load_explicit(&b->active, memory_order_relaxed),
            .max_connections = pool->cfg->backends[i].max_connections,
            .healthy = backend_is_up(b),
            .excluded = was_tried(b, tried, n_tried),
        };
    }
    int pick = balance_pick(pool->balancer, cands, n);
    return pick < 0 ? NULL : pool->backends[pick];
}

void rt_pool_report_failure(struct rt_pool *pool, struct backend *b)
{
    unsigned fall = pool->cfg->health_check.type == HEALTH_CHECK_NONE
                        ? PASSIVE_FALL_DEFAULT
                        : pool->cfg->health_check.fall;
    backend_report_failure(b, fall, clock_now_ms());
}

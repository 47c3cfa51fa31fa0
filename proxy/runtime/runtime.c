#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>

#include "balance/balance.h"
#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "runtime/backend.h"
#include "tls/tls.h"

static void pool_release(struct rt_pool *p)
{
    for (size_t i = 0; i < p->n_backends; i++)
        backend_unref(p->backends[i]);
    free(p->backends);
    free(p->sticky_tokens);
    balancer_unref(p->balancer);
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

/* Feeds the file's bytes (or a marker that it is unreadable) to the digest. */
static void digest_file(EVP_MD_CTX *md, const char *path)
{
    char buf[4096];
    size_t n;
    EVP_DigestUpdate(md, path ? path : "", path ? strlen(path) + 1 : 1);
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        EVP_DigestUpdate(md, "-", 1);
        return;
    }
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(md, buf, n);
    fclose(f);
}

/* What a pool's TLS connections were made under: its settings and the contents of
 * the files they name (a CA file rewritten in place is a change). */
static void fingerprint_tls(const struct cfg_pool_tls *t, unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    memset(out, 0, 32);
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return;
    }
    EVP_DigestUpdate(md, t->verify ? "v1" : "v0", 2);
    EVP_DigestUpdate(md, t->sni ? t->sni : "", t->sni ? strlen(t->sni) + 1 : 1);
    digest_file(md, t->ca);
    digest_file(md, t->cert);
    digest_file(md, t->key);
    EVP_DigestFinal_ex(md, out, NULL);
    EVP_MD_CTX_free(md);
}

static const struct rt_pool *previous_pool(const struct runtime_deps *deps, const char *name)
{
    const struct runtime *prev = deps->previous;
    for (size_t i = 0; prev && i < prev->n_pools; i++)
        if (strcmp(prev->pools[i].cfg->name, name) == 0)
            return &prev->pools[i];
    return NULL;
}

static const struct rt_listener *previous_listener(const struct runtime_deps *deps,
                                                   const char *name)
{
    const struct runtime *prev = deps->previous;
    for (size_t i = 0; prev && i < prev->n_listeners; i++)
        if (strcmp(prev->listeners[i].cfg->name, name) == 0)
            return &prev->listeners[i];
    return NULL;
}

/* Keeps the previous generation's flavor while the pool's transport is the same
 * (plaintext then, or TLS with the same settings and files, and the same PROXY
 * protocol version); a change takes this generation's number, larger than any before
 * (upstream/pool.h). */
static void set_flavor(struct rt_pool *p, const struct runtime_deps *deps, uint64_t generation)
{
    const struct rt_pool *prev = previous_pool(deps, p->cfg->name);
    if (p->cfg->tls && deps->shares_tls && prev)
        memcpy(p->tls_fingerprint, prev->tls_fingerprint, sizeof p->tls_fingerprint);
    else if (p->cfg->tls)
        fingerprint_tls(p->cfg->tls, p->tls_fingerprint);
    if (prev && (prev->cfg->tls != NULL) == (p->cfg->tls != NULL) &&
        prev->cfg->proxy_protocol == p->cfg->proxy_protocol &&
        memcmp(prev->tls_fingerprint, p->tls_fingerprint, sizeof p->tls_fingerprint) == 0)
        p->flavor = prev->flavor;
    else
        p->flavor = generation;
}

/* The previous generation's balancer when the pool's algorithm and backend list are
 * unchanged (the rotation goes on across the reload), else a new one. */
static struct balancer *pool_balancer(const struct cfg_pool *cfg, const struct runtime_deps *deps)
{
    /* A pool whose DNS names resolved to nothing yet has no backend. */
    struct balance_backend list[cfg->n_backends ? cfg->n_backends : 1];
    for (size_t i = 0; i < cfg->n_backends; i++)
        list[i] = (struct balance_backend){ .id = cfg->backends[i].name,
                                            .weight = cfg->backends[i].weight,
                                            .backup = cfg->backends[i].backup };
    const struct rt_pool *prev = previous_pool(deps, cfg->name);
    if (prev && balancer_fits(prev->balancer, cfg->balance, list, cfg->n_backends)) {
        balancer_ref(prev->balancer);
        return prev->balancer;
    }
    return balancer_new(cfg->balance, list, cfg->n_backends);
}

static int build_backends(struct rt_pool *p, const struct runtime_deps *deps, struct err *err)
{
    const struct cfg_pool *cfg = p->cfg;
    int64_t now = clock_now_ms();
    for (size_t i = 0; i < cfg->n_backends; i++) {
        bool is_new;
        p->backends[i] = backend_table_get(deps->backends, cfg->name, &cfg->backends[i],
                                           cfg->health_check.initial_up, &is_new);
        if (!p->backends[i])
            return err_set(err, "pools.%s: out of memory", cfg->name);
        p->n_backends = i + 1;
        /* Added by a reload: slow start ramps it up (those of the first generation
         * start at full weight). */
        if (is_new && deps->previous)
            atomic_store(&p->backends[i]->up_since_ms, now);
        if (p->sticky_tokens)
            p->sticky_tokens[i] = balance_sticky_token(cfg->name, cfg->backends[i].name);
    }
    return 0;
}

static int build_pool(struct runtime *rt, size_t index, const struct runtime_deps *deps,
                      struct err *err)
{
    const struct cfg_pool *cfg = &rt->cfg->pools[index];
    struct rt_pool *p = &rt->pools[index];
    p->cfg = cfg;
    p->runtime = rt;
    /* One spare element: a pool whose DNS names resolved to nothing yet has none, and
     * calloc(0) may be NULL. An array of pointers: the element is a pointer.
     * NOLINTNEXTLINE(bugprone-sizeof-expression) */
    p->backends = calloc(cfg->n_backends + 1, sizeof *p->backends);
    p->balancer = pool_balancer(cfg, deps);
    if (cfg->sticky.cookie)
        p->sticky_tokens = calloc(cfg->n_backends + 1, sizeof *p->sticky_tokens);
    if (!p->backends || !p->balancer || (cfg->sticky.cookie && !p->sticky_tokens))
        return err_set(err, "pools.%s: out of memory", cfg->name);
    if (build_backends(p, deps, err) < 0)
        return -1;
    const struct rt_pool *prev = deps->shares_tls ? previous_pool(deps, cfg->name) : NULL;
    if (cfg->tls && prev && prev->tls) {
        if (!(p->tls = tls_client_share(prev->tls)))
            return err_set(err, "pools.%s.tls: out of memory", cfg->name);
    } else if (cfg->tls) {
        char where[256];
        snprintf(where, sizeof where, "pools.%s.tls", cfg->name);
        p->tls = tls_client_new(cfg->tls, where, err);
        if (!p->tls)
            return -1;
    }
    set_flavor(p, deps, rt->generation);
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

static void add_tls_file_failure(void *arg, const char *msg)
{
    struct build_failures *f = arg;
    failed(f, msg);
}

/* A listener's TLS: a certificate that fails does not hide the others' problems. A
 * generation built from the running one's document shares its contexts instead. */
static int build_listener_tls(struct rt_listener *l, const struct runtime_deps *deps,
                              struct build_failures *f)
{
    const struct cfg_listener *cfg = l->cfg;
    char where[256];
    struct err err = { { 0 } };
    snprintf(where, sizeof where, "listeners.%s.tls", cfg->name);
    const struct rt_listener *prev = deps->shares_tls ? previous_listener(deps, cfg->name)
                                                      : NULL;
    if (prev && prev->tls) {
        l->tls = tls_server_share(prev->tls);
        snprintf(err.msg, sizeof err.msg, "%s: out of memory", where);
        return l->tls ? 0 : failed(f, err.msg);
    }
    l->tls = tls_server_new(cfg->tls, cfg->mode, deps->ticket_keys, where, log_tls_warning,
                            NULL, &err);
    if (l->tls)
        return 0;
    if (f->all && tls_server_check_files(cfg->tls, where, add_tls_file_failure, f) > 0)
        return -1;
    return failed(f, err.msg);
}

static int build_listener_socket(struct rt_listener *l, const struct runtime_deps *deps,
                                 struct build_failures *f)
{
    const struct cfg_listener *cfg = l->cfg;
    struct err err = { { 0 } };
    int rc = 0;
    int type = cfg->mode == MODE_UDP ? SOCK_DGRAM : SOCK_STREAM;
    if (deps->sockets)
        rc = listen_set_acquire(deps->sockets, &cfg->listen, type, deps->workers, &l->socket,
                                &err);
    else if (deps->is_open && !deps->is_open(deps->is_open_arg, &cfg->listen, type))
        rc = listen_probe(&cfg->listen, type, &err);
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

void runtime_keep_backends(const struct runtime *rt, struct backend_table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < rt->n_pools; i++)
        n += rt->pools[i].n_backends;
    struct backend **keep = malloc((n ? n : 1) * sizeof(struct backend *));
    if (!keep) {
        log_error("out of memory: removed backends stay in the backend table");
        return;
    }
    n = 0;
    for (size_t i = 0; i < rt->n_pools; i++)
        for (size_t j = 0; j < rt->pools[i].n_backends; j++)
            keep[n++] = rt->pools[i].backends[j];
    backend_table_keep_only(t, keep, n);
    free(keep);
}

void runtime_publish(const struct runtime *rt)
{
    for (size_t i = 0; i < rt->n_pools; i++) {
        const struct rt_pool *p = &rt->pools[i];
        for (size_t j = 0; j < p->n_backends; j++) {
            struct backend *b = p->backends[j];
            if (strcmp(b->name, p->cfg->backends[j].name) != 0)
                backend_rename(b, p->cfg->backends[j].name);
            backend_apply_config_drain(b, p->cfg->backends[j].drain);
        }
    }
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

/* pools — the "pools" section: backends, health check, keep-alive, upstream TLS. */
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

static const char *const POOL_KEYS[] = {
    "balance", "backends", "health_check", "keepalive", "retries", "tls", "proxy_protocol",
    NULL };
static const char *const BACKEND_KEYS[] = {
    "address", "weight", "name", "max_connections", NULL };
static const char *const HEALTH_KEYS[] = {
    "type", "path", "host", "expect_status", "interval_ms", "timeout_ms", "rise", "fall", NULL };
static const char *const HTTP_ONLY_HEALTH_KEYS[] = { "path", "host", "expect_status", NULL };
static const char *const KEEPALIVE_KEYS[] = { "max_idle", "idle_timeout_ms", NULL };
static const char *const POOL_TLS_KEYS[] = { "verify", "ca", "sni", "cert", "key", NULL };

/* Same order as enum balance_algo. */
static const char *const BALANCE_NAMES[] = { "round_robin", "least_conn", NULL };
static const char *const HEALTH_TYPES[] = { "tcp", "http", NULL };

static void parse_backend(struct walker *w, const json_t *v, struct cfg_backend *b)
{
    b->weight = 1;
    if (!walk_is_object(w, v))
        return;
    walk_check_keys(w, v, BACKEND_KEYS);
    bool has_address = walk_require(w, v, "address")
                       && walk_addr(w, v, "address", ADDR_ALLOW_LOCALHOST, &b->address);
    walk_uint(w, v, "weight", RANGE_WEIGHT, &b->weight);
    walk_uint(w, v, "max_connections", RANGE_BACKEND_MAX_CONN, &b->max_connections);
    walk_string(w, v, "name", false, &b->name);
    if (!b->name && has_address)
        b->name = walk_strdup(w, b->address.text);
}

/* Two backends with one address would split one server's weight and health in two. */
static void check_backend_unique(struct walker *w, const struct cfg_pool *p, size_t i)
{
    const struct cfg_backend *b = &p->backends[i];
    for (size_t j = 0; j < i; j++) {
        const struct cfg_backend *other = &p->backends[j];
        if (b->address.len && other->address.len
            && config_addr_equal(&b->address, &other->address)) {
            walk_error_at(w, "address", "\"%s\" duplicates backends[%zu] (\"%s\")",
                          b->address.text, j, other->address.text);
        } else if (b->name && other->name && strcmp(b->name, other->name) == 0) {
            walk_error_at(w, "name", "\"%s\" is already used by backends[%zu]", b->name, j);
        }
    }
}

static void parse_backends(struct walker *w, const json_t *pool, struct cfg_pool *p)
{
    const json_t *list;
    if (!walk_require(w, pool, "backends") || !(list = walk_array(w, pool, "backends", 1)))
        return;
    p->backends = walk_calloc(w, json_array_size(list), sizeof *p->backends);
    if (!p->backends)
        return;
    p->n_backends = json_array_size(list);
    walk_push(w, "backends");
    for (size_t i = 0; i < p->n_backends; i++) {
        walk_push_index(w, i);
        parse_backend(w, json_array_get(list, i), &p->backends[i]);
        check_backend_unique(w, p, i);
        walk_pop(w);
    }
    walk_pop(w);
}

static void parse_expect_status(struct walker *w, const json_t *hc_obj,
                                struct cfg_health_check *hc)
{
    const json_t *list = walk_array(w, hc_obj, "expect_status", 1);
    if (!list)
        return;
    hc->expect_status = walk_calloc(w, json_array_size(list), sizeof *hc->expect_status);
    if (!hc->expect_status)
        return;
    hc->n_expect_status = json_array_size(list);
    walk_push(w, "expect_status");
    for (size_t i = 0; i < hc->n_expect_status; i++) {
        json_int_t status;
        walk_push_index(w, i);
        if (walk_value_int(w, json_array_get(list, i), RANGE_HTTP_STATUS, &status))
            hc->expect_status[i] = (int)status;
        walk_pop(w);
    }
    walk_pop(w);
}

static void parse_health_http(struct walker *w, const json_t *o, struct cfg_health_check *hc)
{
    if (walk_string(w, o, "path", false, &hc->path) && hc->path[0] != '/')
        walk_error_at(w, "path", "\"%s\" must start with \"/\"", hc->path);
    walk_string(w, o, "host", true, &hc->host);
    parse_expect_status(w, o, hc);
    if (!hc->path)
        hc->path = walk_strdup(w, "/");
    if (!hc->expect_status && !json_object_get(o, "expect_status")) {
        hc->expect_status = walk_calloc(w, 1, sizeof *hc->expect_status);
        if (hc->expect_status) {
            hc->expect_status[0] = 200;
            hc->n_expect_status = 1;
        }
    }
}

/* A check that outlives its interval would overlap the next one. */
static void check_health_timing(struct walker *w, const json_t *o,
                                const struct cfg_health_check *hc)
{
    if (hc->timeout_ms < hc->interval_ms)
        return;
    walk_error_at(w, "timeout_ms", "%u%s must be less than interval_ms (%u%s)",
                  hc->timeout_ms, json_object_get(o, "timeout_ms") ? "" : " (default)",
                  hc->interval_ms, json_object_get(o, "interval_ms") ? "" : ", the default");
}

static void parse_health_check(struct walker *w, const json_t *pool,
                               struct cfg_health_check *hc)
{
    *hc = (struct cfg_health_check){ .type = HEALTH_CHECK_NONE, .interval_ms = 2000,
                                     .timeout_ms = 1000, .rise = 2, .fall = 3 };
    const json_t *o = walk_object(w, pool, "health_check", true);
    int type;
    if (!o)
        return;
    walk_push(w, "health_check");
    walk_check_keys(w, o, HEALTH_KEYS);
    if (walk_require(w, o, "type") && walk_enum(w, o, "type", HEALTH_TYPES, &type))
        hc->type = type == 0 ? HEALTH_CHECK_TCP : HEALTH_CHECK_HTTP;
    bool timing_ok = true;
    if (json_object_get(o, "interval_ms"))
        timing_ok &= walk_uint(w, o, "interval_ms", RANGE_HC_INTERVAL_MS, &hc->interval_ms);
    if (json_object_get(o, "timeout_ms"))
        timing_ok &= walk_uint(w, o, "timeout_ms", RANGE_HC_TIMEOUT_MS, &hc->timeout_ms);
    if (timing_ok)
        check_health_timing(w, o, hc);
    walk_uint(w, o, "rise", RANGE_HC_RISE_FALL, &hc->rise);
    walk_uint(w, o, "fall", RANGE_HC_RISE_FALL, &hc->fall);
    if (hc->type == HEALTH_CHECK_HTTP) {
        parse_health_http(w, o, hc);
    } else if (hc->type == HEALTH_CHECK_TCP) {
        for (size_t i = 0; HTTP_ONLY_HEALTH_KEYS[i]; i++)
            if (json_object_get(o, HTTP_ONLY_HEALTH_KEYS[i]))
                walk_error_at(w, HTTP_ONLY_HEALTH_KEYS[i], "only used by \"http\" health checks");
    }
    walk_pop(w);
}

static void parse_keepalive(struct walker *w, const json_t *pool, struct cfg_pool *p)
{
    const json_t *o = walk_object(w, pool, "keepalive", false);
    if (!o)
        return;
    walk_push(w, "keepalive");
    walk_check_keys(w, o, KEEPALIVE_KEYS);
    walk_uint(w, o, "max_idle", RANGE_KEEPALIVE_MAX_IDLE, &p->keepalive_max_idle);
    walk_uint(w, o, "idle_timeout_ms", RANGE_TIMEOUT_MS, &p->keepalive_idle_timeout_ms);
    walk_pop(w);
}

static void parse_pool_tls(struct walker *w, const json_t *pool, struct cfg_pool *p)
{
    const json_t *o = walk_object(w, pool, "tls", true);
    if (!o)
        return;
    walk_push(w, "tls");
    struct cfg_pool_tls *t = p->tls = walk_calloc(w, 1, sizeof *p->tls);
    if (t) {
        t->verify = true;
        walk_check_keys(w, o, POOL_TLS_KEYS);
        walk_bool(w, o, "verify", &t->verify);
        walk_string(w, o, "ca", true, &t->ca);
        walk_string(w, o, "sni", true, &t->sni);
        walk_string(w, o, "cert", true, &t->cert);
        walk_string(w, o, "key", true, &t->key);
        if (json_is_string(json_object_get(o, "cert")) != json_is_string(json_object_get(o, "key")))
            walk_error_at(w, t->cert ? "key" : "cert", "required when \"%s\" is set (a client "
                          "certificate needs its key)", t->cert ? "cert" : "key");
    }
    walk_pop(w);
}

static void parse_pool(struct walker *w, const char *name, const json_t *v, struct cfg_pool *p)
{
    p->balance = BALANCE_ROUND_ROBIN;
    p->keepalive_max_idle = 32;
    p->keepalive_idle_timeout_ms = 60000;
    p->retries = 1;
    p->health_check.type = HEALTH_CHECK_NONE;
    walk_push(w, name);
    p->name = walk_strdup(w, name);
    if (walk_is_object(w, v)) {
        int balance;
        walk_check_name(w, name);
        walk_check_keys(w, v, POOL_KEYS);
        if (walk_enum(w, v, "balance", BALANCE_NAMES, &balance))
            p->balance = (enum balance_algo)balance;
        parse_backends(w, v, p);
        parse_health_check(w, v, &p->health_check);
        parse_keepalive(w, v, p);
        walk_uint(w, v, "retries", RANGE_RETRIES, &p->retries);
        parse_pool_tls(w, v, p);
        parse_pool_l4(w, v, p);
    }
    walk_pop(w);
}

void parse_pools(struct walker *w, const json_t *root, struct config *cfg)
{
    const json_t *pools;
    const json_t *v;
    const char *name;
    size_t i = 0;
    if (!walk_require(w, root, "pools") || !(pools = walk_object(w, root, "pools", false)))
        return;
    walk_push(w, "pools");
    if (json_object_size(pools) == 0)
        walk_error(w, "needs at least one pool");
    else if ((cfg->pools = walk_calloc(w, json_object_size(pools), sizeof *cfg->pools))) {
        cfg->n_pools = json_object_size(pools);
        json_object_foreach((json_t *)pools, name, v)
            parse_pool(w, name, v, &cfg->pools[i++]);
    }
    walk_pop(w);
}

void free_pool(struct cfg_pool *p)
{
    free(p->name);
    for (size_t i = 0; i < p->n_backends; i++)
        free(p->backends[i].name);
    free(p->backends);
    free(p->health_check.path);
    free(p->health_check.host);
    free(p->health_check.expect_status);
    if (p->tls) {
        free(p->tls->ca);
        free(p->tls->sni);
        free(p->tls->cert);
        free(p->tls->key);
        free(p->tls);
    }
}

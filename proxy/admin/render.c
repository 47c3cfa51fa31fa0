#include "admin/render.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/render_dns.h"
#include "balance/balance.h"
#include "core/clock.h"
#include "core/daemon.h"
#include "core/listen.h"
#include "core/worker.h"
#include "discovery/discovery.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"
#include "tls/tls.h"

/* The share of its weight a backend gets now (below 100 during its slow start). */
static unsigned weight_percent(const struct rt_pool *p, size_t i, int64_t now)
{
    int64_t since = atomic_load(&p->backends[i]->up_since_ms);
    if (p->cfg->slow_start_ms == 0 || since == 0)
        return 100;
    return balance_ramp_weight(100, now - since, p->cfg->slow_start_ms) / BALANCE_WEIGHT_UNIT;
}

static json_t *counts_json(const _Atomic uint64_t *transitions)
{
    json_t *j = json_object();
    for (int s = 0; s < BACKEND_STATES; s++)
        json_object_set_new(j, backend_state_name((enum backend_state)s),
                            json_integer((json_int_t)atomic_load(&transitions[s])));
    return j;
}

/* The last probe's result and how many of each there were. */
static json_t *check_json(const struct backend *b)
{
    json_t *counts = json_object();
    uint64_t total = 0;
    for (int r = 0; r < CHECK_RESULTS; r++) {
        json_object_set_new(counts, backend_check_result_name((enum backend_check_result)r),
                            json_integer((json_int_t)b->checks[r]));
        total += b->checks[r];
    }
    if (total == 0)
        return json_pack("{s:n, s:n, s:o}", "result", "detail", "counts", counts);
    return json_pack("{s:s, s:s, s:o}", "result", backend_check_result_name(b->last_result),
                     "detail", b->last_check, "counts", counts);
}

static json_t *backend_json(const struct backend *b, const struct cfg_backend *cfg,
                            unsigned percent, bool is_checked)
{
    char why[192];
    backend_down_reason(b, clock_now_ms(), why, sizeof why);
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:o}", "name", b->name,
                          "address", b->addr.text, "state", backend_state_name(backend_state(b)),
                          "weight", (json_int_t)(cfg ? cfg->weight : 0), "active",
                          (json_int_t)atomic_load(&b->active), "requests",
                          (json_int_t)atomic_load(&b->requests), "failures",
                          (json_int_t)atomic_load(&b->failures), "backup", cfg && cfg->backup,
                          "weight_percent", (json_int_t)percent, "transitions",
                          counts_json(b->transitions));
    if (j && is_checked)
        json_object_set_new(j, "check", check_json(b));
    if (j && why[0])
        json_object_set_new(j, "down_reason", json_string(why));
    return j;
}

/* Backends a reload removed that still drain: listed after the pool's own, until
 * their last connection ends. */
struct removed_of_pool {
    const char *pool;
    json_t *backends;
};

static void add_if_removed(struct backend *b, void *arg)
{
    struct removed_of_pool *r = arg;
    if (backend_is_removed(b) && strcmp(b->pool, r->pool) == 0)
        json_array_append_new(r->backends, backend_json(b, NULL, 100, false));
}

static const char *const HASH_KEYS[] = {
    [HASH_KEY_NONE] = "", [HASH_KEY_SOURCE_IP] = "source_ip", [HASH_KEY_HEADER] = "header:",
    [HASH_KEY_COOKIE] = "cookie:", [HASH_KEY_URI] = "uri", [HASH_KEY_SNI] = "sni",
};

/* How the pool balances, beyond its algorithm's name. */
static void add_balancing(json_t *j, const struct cfg_pool *cfg)
{
    if (cfg->balance == BALANCE_HASH) {
        char key[160];
        snprintf(key, sizeof key, "%s%s", HASH_KEYS[cfg->hash_key],
                 cfg->hash_key_name ? cfg->hash_key_name : "");
        json_object_set_new(j, "hash_key", json_string(key));
    }
    if (cfg->sticky.cookie)
        json_object_set_new(j, "sticky", json_pack("{s:s, s:I}", "cookie", cfg->sticky.cookie,
                                                   "ttl_s", (json_int_t)cfg->sticky.ttl_s));
    if (cfg->slow_start_ms)
        json_object_set_new(j, "slow_start_ms", json_integer(cfg->slow_start_ms));
}

static json_t *pools_json(const struct runtime *rt, struct backend_table *table,
                          const struct discovery *discovery)
{
    json_t *pools = json_object();
    int64_t now = clock_now_ms();
    for (size_t i = 0; i < rt->n_pools; i++) {
        const struct rt_pool *p = &rt->pools[i];
        bool is_checked = p->cfg->health_check.type != HEALTH_CHECK_NONE;
        json_t *backends = json_array();
        for (size_t b = 0; b < p->n_backends; b++)
            json_array_append_new(backends, backend_json(p->backends[b], &p->cfg->backends[b],
                                                         weight_percent(p, b, now), is_checked));
        struct removed_of_pool removed = { p->cfg->name, backends };
        backend_table_foreach(table, add_if_removed, &removed);
        json_t *pool = json_pack("{s:s, s:o}", "balance", balance_algo_name(p->cfg->balance),
                                 "backends", backends);
        json_t *dns = render_dns_status(discovery, p->cfg->name);
        if (pool)
            add_balancing(pool, p->cfg);
        if (pool && dns)
            json_object_set_new(pool, "dns", dns);
        else
            json_decref(dns);
        json_object_set_new(pools, p->cfg->name, pool);
    }
    return pools;
}

/* udp listeners: "active" and "accepted" count flows; datagrams and drops here. */
static json_t *udp_json(const struct listen_socket *s)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I}",
                     "datagrams_in", (json_int_t)atomic_load(&s->datagrams_in),
                     "datagrams_out", (json_int_t)atomic_load(&s->datagrams_out),
                     "datagrams_dropped", (json_int_t)atomic_load(&s->datagrams_dropped),
                     "flows_active", (json_int_t)atomic_load(&s->active),
                     "flows_dropped", (json_int_t)atomic_load(&s->flows_dropped));
}

static json_t *listener_json(const struct rt_listener *l)
{
    json_t *j = json_pack("{s:s, s:s, s:b, s:I, s:I}", "listen", l->cfg->listen.text, "mode",
                          config_mode_name(l->cfg->mode), "tls", l->tls != NULL,
                          "active", (json_int_t)atomic_load(&l->socket->active), "accepted",
                          (json_int_t)atomic_load(&l->socket->accepted));
    if (j && l->cfg->mode == MODE_UDP)
        json_object_set_new(j, "udp", udp_json(l->socket));
    if (j && l->cfg->mode != MODE_UDP)
        json_object_set_new(j, "proxy_protocol", json_boolean(l->cfg->proxy_protocol));
    if (j && l->cfg->mode == MODE_HTTP)
        json_object_set_new(j, "http2", json_pack("{s:I, s:I}", "connections",
                                                  (json_int_t)atomic_load(&l->socket->h2_connections),
                                                  "streams",
                                                  (json_int_t)atomic_load(&l->socket->h2_streams)));
    return j;
}

static json_t *listeners_json(const struct runtime *rt)
{
    json_t *listeners = json_object();
    for (size_t i = 0; i < rt->n_listeners; i++)
        json_object_set_new(listeners, rt->listeners[i].cfg->name, listener_json(&rt->listeners[i]));
    return listeners;
}

char *admin_render_config(struct daemon *d)
{
    struct runtime *rt = daemon_runtime(d);
    char *text = json_dumps(rt->cfg->document, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    runtime_unref(rt);
    return text;
}

static const char *role_name(enum worker_role role)
{
    switch (role) {
    case WORKER_PARKED: return "starting";
    case WORKER_SERVING: return "serving";
    case WORKER_RETIRING: return "retiring";
    default: return "stopping";
    }
}

/* Each worker thread: what it does, the generation it accepts on (0: none), the
 * connections it accepted and holds. */
static json_t *workers_json(struct daemon *d)
{
    struct worker_info info[DAEMON_STATUS_MAX_WORKERS];
    size_t n = daemon_workers_info(d, info, DAEMON_STATUS_MAX_WORKERS);
    json_t *workers = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(workers, json_pack("{s:i, s:s, s:I, s:I, s:I}", "id", info[i].id,
                                                 "state", role_name(info[i].role), "generation",
                                                 (json_int_t)info[i].generation, "accepted",
                                                 (json_int_t)info[i].accepted, "connections",
                                                 (json_int_t)info[i].connections));
    return workers;
}

char *admin_render_status(struct daemon *d)
{
    struct runtime *rt = daemon_runtime(d);
    struct daemon_info info = daemon_info(d);
    json_t *status = json_pack("{s:I, s:s, s:I, s:I, s:o, s:o}", "generation",
                               (json_int_t)rt->generation, "config", info.config_path,
                               "uptime_s", (json_int_t)info.uptime_s, "connections",
                               (json_int_t)info.connections, "listeners", listeners_json(rt),
                               "pools", pools_json(rt, daemon_backends(d), daemon_discovery(d)));
    runtime_unref(rt);
    if (status) {
        json_object_set_new(status, "pid", json_integer(getpid()));
        json_object_set_new(status, "version", json_string(FERRY_VERSION));
        json_object_set_new(status, "state", json_string(info.is_draining ? "draining"
                                                                          : "serving"));
        json_object_set_new(status, "last_reload_ok_s", json_integer(info.last_reload_ok_s));
        json_object_set_new(status, "workers", workers_json(d));
        json_object_set_new(status, "upgrade",
                            json_pack("{s:s, s:I, s:s}", "state",
                                      info.is_upgrading ? "starting" : "idle", "failures",
                                      (json_int_t)info.upgrades_failed, "last_failure",
                                      info.upgrade_failure));
    }
    char *text = status ? json_dumps(status, JSON_COMPACT) : NULL;
    json_decref(status);
    return text;
}

/* A growing text buffer for the exposition format. */
struct text {
    char *buf;
    size_t len, cap;
    bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = t->failed ? 0 : vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (t->failed || n < 0)
            return;
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n) * 2;
        char *grown = realloc(t->buf, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

/* http listeners: responses by the request's protocol and status class, and the
 * HTTP/2 connections and streams open now. */
static void http_metrics(struct text *t, const struct runtime *rt)
{
    put(t, "# HELP ferry_http_responses_total HTTP responses sent, by request protocol and "
           "status class.\n# TYPE ferry_http_responses_total counter\n");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct rt_listener *l = &rt->listeners[i];
        for (int v = 0; v < LISTEN_HTTP_VERSIONS && l->cfg->mode == MODE_HTTP; v++)
            for (int c = 0; c < 5; c++)
                put(t, "ferry_http_responses_total{listener=\"%s\",proto=\"%s\",class=\"%dxx\"} %llu\n",
                    l->cfg->name, listen_http_version_names[v], c + 1,
                    (unsigned long long)atomic_load(&l->socket->responses[v][c]));
    }
    put(t, "# HELP ferry_http2_connections_active HTTP/2 client connections open now.\n"
           "# TYPE ferry_http2_connections_active gauge\n");
    for (size_t i = 0; i < rt->n_listeners; i++)
        if (rt->listeners[i].cfg->mode == MODE_HTTP)
            put(t, "ferry_http2_connections_active{listener=\"%s\"} %u\n",
                rt->listeners[i].cfg->name, atomic_load(&rt->listeners[i].socket->h2_connections));
    put(t, "# HELP ferry_http2_streams_active HTTP/2 streams (requests) open now.\n"
           "# TYPE ferry_http2_streams_active gauge\n");
    for (size_t i = 0; i < rt->n_listeners; i++)
        if (rt->listeners[i].cfg->mode == MODE_HTTP)
            put(t, "ferry_http2_streams_active{listener=\"%s\"} %u\n",
                rt->listeners[i].cfg->name, atomic_load(&rt->listeners[i].socket->h2_streams));
}

/* udp listeners: datagrams each way, drops, flows. */
static void udp_metrics(struct text *t, const struct runtime *rt)
{
    put(t, "# HELP ferry_udp_datagrams_total Datagrams from clients (in) and to them (out).\n"
           "# TYPE ferry_udp_datagrams_total counter\n");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct rt_listener *l = &rt->listeners[i];
        if (l->cfg->mode != MODE_UDP)
            continue;
        put(t, "ferry_udp_datagrams_total{listener=\"%s\",direction=\"in\"} %llu\n", l->cfg->name,
            (unsigned long long)atomic_load(&l->socket->datagrams_in));
        put(t, "ferry_udp_datagrams_total{listener=\"%s\",direction=\"out\"} %llu\n", l->cfg->name,
            (unsigned long long)atomic_load(&l->socket->datagrams_out));
    }
    static const struct { const char *name, *type, *help; } families[] = {
        { "ferry_udp_datagrams_dropped_total", "counter",
          "Datagrams dropped: no flow (max_flows, draining), no backend, or not sent." },
        { "ferry_udp_flows_active", "gauge", "Flows open now." },
        { "ferry_udp_flows_dropped_total", "counter", "New flows refused at max_flows." },
    };
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        put(t, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
            families[f].name, families[f].type);
        for (size_t i = 0; i < rt->n_listeners; i++) {
            const struct rt_listener *l = &rt->listeners[i];
            if (l->cfg->mode != MODE_UDP)
                continue;
            unsigned long long v = f == 0 ? atomic_load(&l->socket->datagrams_dropped)
                                   : f == 1 ? atomic_load(&l->socket->active)
                                            : atomic_load(&l->socket->flows_dropped);
            put(t, "%s{listener=\"%s\"} %llu\n", families[f].name, l->cfg->name, v);
        }
    }
}

/* http listeners: the Prometheus histogram of request durations. */
static void duration_metrics(struct text *t, const struct runtime *rt)
{
    put(t, "# HELP ferry_http_request_duration_seconds HTTP requests, from their first byte "
           "to their response's last.\n# TYPE ferry_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct rt_listener *l = &rt->listeners[i];
        if (l->cfg->mode != MODE_HTTP)
            continue;
        unsigned long long cumulative = 0;
        for (int b = 0; b <= LISTEN_DURATION_BUCKETS; b++) {
            cumulative += atomic_load_explicit(&l->socket->durations[b], memory_order_relaxed);
            if (b < LISTEN_DURATION_BUCKETS)
                put(t, "ferry_http_request_duration_seconds_bucket{listener=\"%s\",le=\"%g\"} "
                       "%llu\n", l->cfg->name, listen_duration_bounds_ms[b] / 1000.0, cumulative);
            else
                put(t, "ferry_http_request_duration_seconds_bucket{listener=\"%s\",le=\"+Inf\"} "
                       "%llu\n", l->cfg->name, cumulative);
        }
        put(t, "ferry_http_request_duration_seconds_sum{listener=\"%s\"} %.3f\n"
               "ferry_http_request_duration_seconds_count{listener=\"%s\"} %llu\n",
            l->cfg->name, atomic_load(&l->socket->durations_sum_ms) / 1000.0, l->cfg->name,
            cumulative);
    }
}

static void listener_metrics(struct text *t, const struct runtime *rt)
{
    put(t, "# HELP ferry_connections_accepted_total Client connections accepted.\n"
           "# TYPE ferry_connections_accepted_total counter\n");
    for (size_t i = 0; i < rt->n_listeners; i++)
        put(t, "ferry_connections_accepted_total{listener=\"%s\"} %llu\n", rt->listeners[i].cfg->name,
            (unsigned long long)atomic_load(&rt->listeners[i].socket->accepted));
    put(t, "# HELP ferry_connections_active Client connections open now.\n"
           "# TYPE ferry_connections_active gauge\n");
    for (size_t i = 0; i < rt->n_listeners; i++)
        put(t, "ferry_connections_active{listener=\"%s\"} %u\n", rt->listeners[i].cfg->name,
            atomic_load(&rt->listeners[i].socket->active));
    http_metrics(t, rt);
    udp_metrics(t, rt);
    duration_metrics(t, rt);
    put(t, "# HELP ferry_bytes_total Bytes from and to clients (after TLS decryption).\n"
           "# TYPE ferry_bytes_total counter\n");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct listen_socket *s = rt->listeners[i].socket;
        put(t, "ferry_bytes_total{listener=\"%s\",direction=\"in\"} %llu\n",
            rt->listeners[i].cfg->name, (unsigned long long)atomic_load(&s->bytes_in));
        put(t, "ferry_bytes_total{listener=\"%s\",direction=\"out\"} %llu\n",
            rt->listeners[i].cfg->name, (unsigned long long)atomic_load(&s->bytes_out));
    }
}

/* A label value as the exposition format wants it: backend names come from the config
 * file and may hold any character. */
static void put_label_value(struct text *t, const char *value)
{
    for (const char *p = value; *p; p++) {
        size_t plain = strcspn(p, "\\\"\n");
        if (plain > 0)
            put(t, "%.*s", (int)plain, p);
        p += plain;
        if (!*p)
            break;
        put(t, "\\%c", *p == '\n' ? 'n' : *p);
    }
}

static void put_backend_labels(struct text *t, const struct backend *b)
{
    put(t, "{pool=\"");
    put_label_value(t, b->pool);
    put(t, "\",backend=\"");
    put_label_value(t, b->name);
    put(t, "\",address=\"");
    put_label_value(t, b->addr.text);
    put(t, "\"}");
}

/* Counters by a label of their own (to="up", result="pass", ...) after the backend's. */
static void put_labelled(struct text *t, const char *metric, const struct backend *b,
                         const char *label, const char *value, unsigned long long v)
{
    put(t, "%s{pool=\"", metric);
    put_label_value(t, b->pool);
    put(t, "\",backend=\"");
    put_label_value(t, b->name);
    put(t, "\",address=\"");
    put_label_value(t, b->addr.text);
    put(t, "\",%s=\"%s\"} %llu\n", label, value, v);
}

static void backend_event_metrics(struct text *t, const struct runtime *rt)
{
    put(t, "# HELP ferry_backend_transitions_total Changes of a backend's state, by the state "
           "it went to.\n# TYPE ferry_backend_transitions_total counter\n");
    for (size_t i = 0; i < rt->n_pools; i++)
        for (size_t j = 0; j < rt->pools[i].n_backends; j++)
            for (int s = 0; s < BACKEND_STATES; s++) {
                const struct backend *b = rt->pools[i].backends[j];
                put_labelled(t, "ferry_backend_transitions_total", b, "to",
                             backend_state_name((enum backend_state)s),
                             (unsigned long long)atomic_load(&b->transitions[s]));
            }
    put(t, "# HELP ferry_health_checks_total Active health check probes, by result (skipped: "
           "ferry could not open a socket).\n# TYPE ferry_health_checks_total counter\n");
    for (size_t i = 0; i < rt->n_pools; i++) {
        if (rt->pools[i].cfg->health_check.type == HEALTH_CHECK_NONE)
            continue;
        for (size_t j = 0; j < rt->pools[i].n_backends; j++)
            for (int r = 0; r < CHECK_RESULTS; r++) {
                const struct backend *b = rt->pools[i].backends[j];
                put_labelled(t, "ferry_health_checks_total", b, "result",
                             backend_check_result_name((enum backend_check_result)r),
                             (unsigned long long)b->checks[r]);
            }
    }
}

static void backend_metrics(struct text *t, const struct runtime *rt)
{
    static const char *const names[] = { "ferry_backend_up", "ferry_backend_active",
                                         "ferry_backend_requests_total",
                                         "ferry_backend_failures_total",
                                         "ferry_backend_draining" };
    static const char *const help[] = {
        "1 when the backend is up.\n# TYPE ferry_backend_up gauge",
        "Connections or requests in flight.\n# TYPE ferry_backend_active gauge",
        "Connections or requests sent.\n# TYPE ferry_backend_requests_total counter",
        "Connect failures, broken responses, timeouts.\n# TYPE ferry_backend_failures_total counter",
        /* one string, split for width */
        "1 when the backend takes no new requests or connections (drained by the config "  // NOLINT(bugprone-suspicious-missing-comma)
        "or the admin API).\n# TYPE ferry_backend_draining gauge",
    };
    for (int m = 0; m < 5; m++) {
        put(t, "# HELP %s %s\n", names[m], help[m]);
        for (size_t i = 0; i < rt->n_pools; i++) {
            for (size_t j = 0; j < rt->pools[i].n_backends; j++) {
                const struct backend *b = rt->pools[i].backends[j];
                unsigned long long v = m == 0   ? backend_is_up(b)
                                       : m == 1 ? atomic_load(&b->active)
                                       : m == 2 ? atomic_load(&b->requests)
                                       : m == 3 ? atomic_load(&b->failures)
                                                : backend_is_draining(b);
                put(t, "%s", names[m]);
                put_backend_labels(t, b);
                put(t, " %llu\n", v);
            }
        }
    }
}

static void process_metrics(struct text *t, struct daemon *d)
{
    struct daemon_info info = daemon_info(d);
    struct tls_stats tls = tls_stats_snapshot();
    put(t, "# HELP ferry_reloads_total Config reloads.\n# TYPE ferry_reloads_total counter\n"
           "ferry_reloads_total{result=\"ok\"} %llu\nferry_reloads_total{result=\"failed\"} %llu\n",
        (unsigned long long)info.reloads_ok, (unsigned long long)info.reloads_failed);
    put(t, "# HELP ferry_tls_handshakes_total Completed TLS handshakes with clients.\n"
           "# TYPE ferry_tls_handshakes_total counter\nferry_tls_handshakes_total %llu\n"
           "# HELP ferry_tls_resumptions_total Handshakes completed by resumption.\n"
           "# TYPE ferry_tls_resumptions_total counter\nferry_tls_resumptions_total %llu\n"
           "# HELP ferry_tls_handshake_failures_total Failed TLS handshakes with clients.\n"
           "# TYPE ferry_tls_handshake_failures_total counter\n",
        (unsigned long long)tls.handshakes, (unsigned long long)tls.resumed);
    for (int r = 0; r < TLS_FAIL_COUNT; r++)
        put(t, "ferry_tls_handshake_failures_total{reason=\"%s\"} %llu\n",
            tls_failure_reason_name((enum tls_failure_reason)r),
            (unsigned long long)tls.failures[r]);
    put(t, "# HELP ferry_uptime_seconds Seconds since start.\n# TYPE ferry_uptime_seconds gauge\n"
           "ferry_uptime_seconds %lld\n", (long long)info.uptime_s);
    put(t, "# HELP ferry_config_last_reload_success_timestamp_seconds When the running "
           "generation went live (start or reload), Unix time.\n"
           "# TYPE ferry_config_last_reload_success_timestamp_seconds gauge\n"
           "ferry_config_last_reload_success_timestamp_seconds %lld\n",
        (long long)info.last_reload_ok_s);
    put(t, "# HELP ferry_build_info The running binary.\n# TYPE ferry_build_info gauge\n"
           "ferry_build_info{version=\"%s\"} 1\n", FERRY_VERSION);
    struct worker_info workers[DAEMON_STATUS_MAX_WORKERS];
    size_t n = daemon_workers_info(d, workers, DAEMON_STATUS_MAX_WORKERS);
    put(t, "# HELP ferry_worker_connections_accepted_total Connections each worker thread "
           "accepted.\n# TYPE ferry_worker_connections_accepted_total counter\n");
    for (size_t i = 0; i < n; i++)
        put(t, "ferry_worker_connections_accepted_total{worker=\"%d\"} %llu\n", workers[i].id,
            (unsigned long long)workers[i].accepted);
}

static void put_dns_labels(struct text *t, const struct discovery_view *v)
{
    put(t, "{pool=\"");
    put_label_value(t, v->pool);
    put(t, "\",name=\"");
    put_label_value(t, v->text);
    put(t, "\"");
}

static void put_dns_lookups(const struct discovery_view *v, void *arg)
{
    for (int r = 0; r < DNS_RESULTS; r++) {
        put(arg, "ferry_dns_lookups_total");
        put_dns_labels(arg, v);
        put(arg, ",result=\"%s\"} %llu\n", dns_result_name((enum dns_result)r),
            (unsigned long long)v->lookups[r]);
    }
}

static void put_dns_addresses(const struct discovery_view *v, void *arg)
{
    put(arg, "ferry_dns_addresses");
    put_dns_labels(arg, v);
    put(arg, "} %zu\n", v->set->n);
}

static void dns_metrics(struct text *t, struct daemon *d)
{
    put(t, "# HELP ferry_dns_lookups_total Lookups of backends' DNS names, by result.\n"
           "# TYPE ferry_dns_lookups_total counter\n");
    discovery_foreach(daemon_discovery(d), put_dns_lookups, t);
    put(t, "# HELP ferry_dns_addresses Addresses a backend DNS name resolved to last (the "
           "backends it gives).\n# TYPE ferry_dns_addresses gauge\n");
    discovery_foreach(daemon_discovery(d), put_dns_addresses, t);
}

char *admin_render_metrics(struct daemon *d)
{
    struct text t = { 0 };
    struct runtime *rt = daemon_runtime(d);
    put(&t, "# HELP ferry_generation Config generation serving new connections.\n"
            "# TYPE ferry_generation gauge\nferry_generation %llu\n",
        (unsigned long long)rt->generation);
    listener_metrics(&t, rt);
    backend_metrics(&t, rt);
    backend_event_metrics(&t, rt);
    runtime_unref(rt);
    process_metrics(&t, d);
    dns_metrics(&t, d);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}

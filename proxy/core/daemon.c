#include "core/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "balance/balance.h"
#include "admin/admin.h"
#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/worker.h"
#include "discovery/discovery.h"
#include "health/health.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"
#include "tls/tls.h"

struct daemon {
    struct event_base *base;            /* owned: the main thread's loop */
    char *config_path;                  /* owned */
    pthread_mutex_t runtime_lock;       /* guards `current` against concurrent readers */
    struct runtime *current;            /* ref */
    uint64_t next_generation;
    struct backend_table *backends;     /* owned */
    struct listen_set *sockets;         /* owned */
    struct tls_ticket_keys *ticket_keys;/* owned */
    struct worker **workers;            /* owned */
    size_t n_workers;
    _Atomic unsigned connections;
    _Atomic unsigned max_connections;
    _Atomic bool *waiting;              /* owned, one per worker: stopped accepting for
                                           want of a connection slot */
    _Atomic size_t n_waiting;           /* how many are set: releases look only then */
    _Atomic size_t next_waiter;         /* where the next search starts (fairness) */
    _Atomic bool draining;
    _Atomic bool stopping;
    _Atomic size_t workers_running;
    struct event *signals[5];           /* owned */
    struct event *drain_timer;          /* owned */
    struct event *worker_exit;          /* owned: activated by exiting workers */
    struct event *ticket_timer;         /* owned */
    struct admin *admin;                /* owned; NULL when admin is off */
    struct health *health;              /* owned: active checks of `current` */
    struct discovery *discovery;        /* owned: backends found by DNS for `current` */
    int64_t started_ms;
    _Atomic uint64_t reloads_ok, reloads_failed;
};

struct runtime *daemon_runtime(struct daemon *d)
{
    pthread_mutex_lock(&d->runtime_lock);
    struct runtime *rt = d->current;
    runtime_ref(rt);
    pthread_mutex_unlock(&d->runtime_lock);
    return rt;
}

bool daemon_conn_take(struct daemon *d)
{
    unsigned max = atomic_load_explicit(&d->max_connections, memory_order_relaxed);
    unsigned n = atomic_load_explicit(&d->connections, memory_order_relaxed);
    do {
        if (n >= max)
            return false;
    } while (!atomic_compare_exchange_weak(&d->connections, &n, n + 1));
    return true;
}

static void wake_workers(struct daemon *d)
{
    for (size_t i = 0; i < d->n_workers; i++)
        worker_wakeup(d->workers[i]);
}

static bool has_free_slot(struct daemon *d)
{
    return atomic_load(&d->connections) < atomic_load(&d->max_connections);
}

/* Wakes one worker that waits for a slot, if any: one freed slot is one connection to
 * accept, so waking every worker would make all but one find nothing. */
static void wake_one_waiter(struct daemon *d)
{
    size_t n = d->n_workers;
    size_t start = atomic_fetch_add_explicit(&d->next_waiter, 1, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        size_t id = (start + i) % n;
        if (atomic_load(&d->waiting[id]) && atomic_exchange(&d->waiting[id], false)) {
            atomic_fetch_sub(&d->n_waiting, 1);
            worker_wakeup(d->workers[id]);
            return;
        }
    }
}

/* The orderings below are sequentially consistent on purpose: a worker sets its flag,
 * counts itself, then looks at `connections`; a release lowers `connections`, then
 * looks at the count. One of the two sees the other, so no freed slot goes unnoticed
 * while a worker waits. */
void daemon_conn_wait(struct daemon *d, int worker_id)
{
    if (!atomic_exchange(&d->waiting[worker_id], true))
        atomic_fetch_add(&d->n_waiting, 1);
    /* A slot freed since the failed take saw no waiter: hand it on now. */
    if (has_free_slot(d))
        wake_one_waiter(d);
}

void daemon_conn_stop_waiting(struct daemon *d, int worker_id)
{
    if (atomic_exchange(&d->waiting[worker_id], false))
        atomic_fetch_sub(&d->n_waiting, 1);
}

void daemon_conn_release(struct daemon *d)
{
    atomic_fetch_sub(&d->connections, 1);
    if (atomic_load(&d->n_waiting) > 0)
        wake_one_waiter(d);
}

bool daemon_is_draining(const struct daemon *d) { return atomic_load(&d->draining); }
bool daemon_is_stopping(const struct daemon *d) { return atomic_load(&d->stopping); }

/* Event activations coalesce, so the count is kept here and only the last exit
 * wakes the main loop. */
void daemon_worker_exited(struct daemon *d)
{
    if (atomic_fetch_sub(&d->workers_running, 1) == 1)
        event_active(d->worker_exit, EV_TIMEOUT, 0);
}

static void log_generation(const struct runtime *rt)
{
    const struct config *cfg = rt->cfg;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        const char *first_pool = cfg->pools[l->routes[0].pool].name;
        log_info("listener %s listen=%s mode=%s tls=%s %s=%s", l->name, l->listen.text,
                 config_mode_name(l->mode), l->tls ? "on" : "off",
                 l->n_routes > 1 ? "routes" : "pool",
                 l->n_routes > 1 ? "several" : first_pool);
    }
    for (size_t i = 0; i < cfg->n_pools; i++) {
        const struct cfg_pool *p = &cfg->pools[i];
        char list[1024];
        size_t used = 0;
        list[0] = '\0';
        for (size_t b = 0; b < p->n_backends && used < sizeof list; b++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s=%s/w%u",
                                     b ? "," : "", p->backends[b].name,
                                     p->backends[b].address.text, p->backends[b].weight);
        static const char *const checks[] = { "none", "tcp", "http" };
        log_info("pool %s balance=%s backends=%s health_check=%s tls=%s", p->name,
                 balance_algo_name(p->balance), list, checks[p->health_check.type],
                 p->tls ? "on" : "off");
    }
}

static void restart_health(struct daemon *d)
{
    d->health = health_new(d->base, d->current, d->health);
    if (!d->health)
        log_error("out of memory: active health checks are off for generation %llu",
                  (unsigned long long)d->current->generation);
}

/* Listeners the new generation dropped stop accepting at once, even while sessions
 * of the old generation (a TCP relay, an idle keep-alive client) keep it alive. */
static void retire_dropped_listeners(struct runtime *old, struct runtime *rt)
{
    for (size_t i = 0; i < old->n_listeners; i++)
        if (!runtime_listener_for(rt, old->listeners[i].socket))
            listen_socket_retire(old->listeners[i].socket);
}

static void publish(struct daemon *d, struct runtime *rt)
{
    runtime_publish(rt);
    pthread_mutex_lock(&d->runtime_lock);
    struct runtime *old = d->current;
    d->current = rt;
    pthread_mutex_unlock(&d->runtime_lock);
    atomic_store(&d->max_connections, rt->cfg->limits.max_connections);
    log_set_level(rt->cfg->log.level);
    restart_health(d);
    discovery_follow(d->discovery, rt->cfg);
    if (old)
        retire_dropped_listeners(old, rt);
    runtime_unref(old);
}

/* Switches to the generation's access log; an unchanged target stays open as it is
 * (only SIGUSR1 reopens it), and on failure the old one stays in use. */
static int apply_access_log(const struct config *cfg, struct err *err)
{
    if (access_log_configure(cfg->log.access, cfg->log.format) < 0)
        return err_set(err, "log.access: cannot open %s: %s", cfg->log.access, strerror(errno));
    return 0;
}

static void begin_drain(struct daemon *d, const char *why)
{
    if (!d->current || atomic_exchange(&d->draining, true))
        return;
    unsigned drain_ms = d->current->cfg->timeouts.drain_ms;
    log_info("%s: draining connections=%u drain_ms=%u", why, atomic_load(&d->connections),
             drain_ms);
    struct timeval tv = clock_tv_from_ms(drain_ms);
    evtimer_add(d->drain_timer, &tv);
    listen_set_stop_accepting(d->sockets);
    health_free(d->health);
    d->health = NULL;
    wake_workers(d);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    log_warn("drain_ms elapsed: closing connections=%u", atomic_load(&d->connections));
    atomic_store(&d->stopping, true);
    wake_workers(d);
}

static void on_worker_exit(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    event_base_loopbreak(d->base);
}

static void add_error(struct config_errors *errs, const char *msg)
{
    char **grown = realloc(errs->messages, (errs->count + 1) * sizeof *grown);
    char *copy = strdup(msg);
    if (!grown || !copy) {
        free(copy);
        if (grown)
            errs->messages = grown;
        return;
    }
    errs->messages = grown;
    errs->messages[errs->count++] = copy;
}

/* A reload that changes admin.listen (or turns the API on or off) binds the new
 * address before anything is published, so that a bind failure rejects the reload. */
struct admin_change {
    bool is_moving;
    int fd;                         /* owned until committed; -1: none or off */
    struct admin *created;          /* owned until committed: the API turned on */
};

static int prepare_admin(struct daemon *d, const struct config *cfg, struct admin_change *ch,
                         struct err *err)
{
    const struct config *old = d->current->cfg;
    ch->fd = -1;
    ch->created = NULL;
    ch->is_moving = old->admin.enabled != cfg->admin.enabled ||
                    (cfg->admin.enabled &&
                     !config_addr_equal(&old->admin.listen, &cfg->admin.listen));
    if (!ch->is_moving || !cfg->admin.enabled)
        return 0;
    if (!d->admin) {
        ch->created = admin_new(d, d->base, &cfg->admin.listen, err);
        return ch->created ? 0 : -1;
    }
    ch->fd = admin_bind(&cfg->admin.listen, err);
    return ch->fd < 0 ? -1 : 0;
}

static void abandon_admin(struct admin_change *ch)
{
    if (ch->fd >= 0)
        close(ch->fd);
    admin_free(ch->created);
}

static void commit_admin(struct daemon *d, const struct config *cfg, struct admin_change *ch)
{
    if (!ch->is_moving)
        return;
    if (ch->created)
        d->admin = ch->created;
    else if (d->admin)
        admin_move(d->admin, ch->fd, cfg->admin.listen.text);
}

/* Builds a new generation from cfg (owned; NULL: it did not load) off to the side,
 * with the backends DNS found; on any failure the running one stays. shares_tls: cfg
 * is the running config's text again (a DNS change). */
static int try_reload(struct daemon *d, struct config *cfg, bool shares_tls,
                      struct config_errors *errs)
{
    if (atomic_load(&d->draining)) {
        add_error(errs, "ferry is stopping");
        config_free(cfg);
        return -1;
    }
    if (!cfg)
        return -1;
    struct err err = { { 0 } };
    if (discovery_fill(d->discovery, cfg, &err) < 0) {
        add_error(errs, err.msg);
        config_free(cfg);
        return -1;
    }
    /* Before the workers start (ferry waits for DNS answers), those it will start. */
    size_t workers = d->n_workers ? d->n_workers : d->current->cfg->workers;
    struct runtime_deps deps = { d->backends, d->sockets, workers, d->ticket_keys, d->current,
                                 shares_tls };
    struct runtime *rt = runtime_build(cfg, &deps, d->next_generation, &err);
    if (!rt) {
        add_error(errs, err.msg);
        return -1;
    }
    struct admin_change admin;
    if (prepare_admin(d, rt->cfg, &admin, &err) < 0) {
        char msg[sizeof err.msg + 16];
        snprintf(msg, sizeof msg, "admin.listen: %s", err.msg);
        add_error(errs, msg);
        runtime_unref(rt);
        return -1;
    }
    if (apply_access_log(rt->cfg, &err) < 0) {
        add_error(errs, err.msg);
        abandon_admin(&admin);
        runtime_unref(rt);
        return -1;
    }
    d->next_generation++;
    if (d->n_workers && rt->cfg->workers != d->n_workers)
        log_warn("workers: %zu running; %zu takes a restart", d->n_workers,
                 (size_t)rt->cfg->workers);
    log_generation(rt);
    commit_admin(d, rt->cfg, &admin);
    publish(d, rt);
    /* Before the workers wake: they close their idle connections to what drains. */
    runtime_keep_backends(d->current, d->backends);
    wake_workers(d);
    return 0;
}

int daemon_reload(struct daemon *d, struct config_errors *errs)
{
    int rc = try_reload(d, config_load(d->config_path, errs), false, errs);
    if (rc < 0) {
        /* A rejected generation may have added backends to the table. */
        runtime_keep_backends(d->current, d->backends);
        atomic_fetch_add(&d->reloads_failed, 1);
        for (size_t i = 0; i < errs->count; i++)
            log_error("reload rejected: %s", errs->messages[i]);
        return -1;
    }
    atomic_fetch_add(&d->reloads_ok, 1);
    log_info("reload ok generation=%llu", (unsigned long long)d->current->generation);
    return 0;
}

/* An answer from DNS changed: the running config (its text, not the file, which may
 * have changed since) is built again with the new answers, and published like a
 * reload. */
static int on_dns_change(void *arg)
{
    struct daemon *d = arg;
    struct config_errors errs = { 0 };
    const struct config *running = d->current->cfg;
    if (atomic_load(&d->draining))
        return 0;
    int rc = try_reload(d, config_parse(running->source, running->source_len, running->path,
                                        &errs), true, &errs);
    if (rc < 0) {
        runtime_keep_backends(d->current, d->backends);
        for (size_t i = 0; i < errs.count; i++)
            log_error("dns: the new answers are not in use: %s", errs.messages[i]);
    } else {
        log_info("dns: generation=%llu has the new answers",
                 (unsigned long long)d->current->generation);
    }
    config_errors_clear(&errs);
    return rc;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        begin_drain(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    case SIGHUP: {
        struct config_errors errs = { 0 };
        daemon_reload(d, &errs);
        config_errors_clear(&errs);
        break;
    }
    case SIGUSR1:
        if (access_log_reopen() < 0)
            log_error("SIGUSR1: cannot reopen the access log: %m");
        else
            log_info("SIGUSR1: access log reopened");
        break;
    }
}

static void on_ticket_rotate(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    struct err err = { { 0 } };
    if (tls_ticket_keys_rotate(d->ticket_keys, &err) < 0)
        log_error("TLS session ticket key rotation failed: %s", err.msg);
    else
        log_info("TLS session ticket keys rotated");
}

static int add_events(struct daemon *d)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        d->signals[i] = evsignal_new(d->base, sigs[i], on_signal, d);
        if (!d->signals[i] || evsignal_add(d->signals[i], NULL) < 0)
            return -1;
    }
    d->drain_timer = evtimer_new(d->base, on_drain_timeout, d);
    d->worker_exit = event_new(d->base, -1, 0, on_worker_exit, d);
    d->ticket_timer = event_new(d->base, -1, EV_PERSIST, on_ticket_rotate, d);
    if (!d->drain_timer || !d->worker_exit || !d->ticket_timer)
        return -1;
    struct timeval tv = { .tv_sec = TLS_TICKET_ROTATE_INTERVAL_S };
    return event_add(d->ticket_timer, &tv);
}

struct daemon *daemon_new(struct config *cfg)
{
    struct daemon *d = calloc(1, sizeof *d);
    if (!d) {
        config_free(cfg);
        return NULL;
    }
    pthread_mutex_init(&d->runtime_lock, NULL);
    d->started_ms = clock_now_ms();
    d->config_path = strdup(cfg->path);
    d->base = event_base_new();
    d->backends = backend_table_new();
    d->sockets = listen_set_new();
    struct err err = { { 0 } };
    d->ticket_keys = tls_ticket_keys_new(&err);
    if (!d->config_path || !d->base || !d->backends || !d->sockets || !d->ticket_keys) {
        log_error("cannot start: %s", err.msg[0] ? err.msg : "out of memory");
        config_free(cfg);
        goto fail;
    }
    /* Signal handlers first: a SIGHUP arriving once the ports listen must not kill us. */
    if (add_events(d) < 0) {
        log_error("cannot set up signal handling");
        config_free(cfg);
        goto fail;
    }
    d->discovery = discovery_new(d->base, on_dns_change, d);
    if (!d->discovery) {
        log_error("cannot start: out of memory");
        config_free(cfg);
        goto fail;
    }
    struct runtime_deps deps = { d->backends, d->sockets, cfg->workers, d->ticket_keys, NULL,
                                 false };
    d->current = runtime_build(cfg, &deps, 1, &err);
    if (!d->current) {
        log_error("%s", err.msg);
        goto fail;
    }
    d->next_generation = 2;
    runtime_publish(d->current);
    atomic_store(&d->max_connections, d->current->cfg->limits.max_connections);
    log_set_level(d->current->cfg->log.level);
    restart_health(d);
    discovery_follow(d->discovery, d->current->cfg);
    if (apply_access_log(d->current->cfg, &err) < 0) {
        log_error("%s", err.msg);
        goto fail;
    }
    if (d->current->cfg->admin.enabled) {
        d->admin = admin_new(d, d->base, &d->current->cfg->admin.listen, &err);
        if (!d->admin) {
            log_error("admin.listen: %s", err.msg);
            goto fail;
        }
    }
    log_generation(d->current);
    return d;
fail:
    daemon_free(d);
    return NULL;
}

/* Creates every worker, then starts their threads; says why when it cannot. */
static int start_workers(struct daemon *d)
{
    size_t n = d->current->cfg->workers;
    /* An array of pointers: the element is a pointer.
     * NOLINTNEXTLINE(bugprone-sizeof-expression) */
    d->workers = calloc(n, sizeof *d->workers);
    d->waiting = calloc(n, sizeof *d->waiting);
    if (!d->workers || !d->waiting) {
        log_error("cannot start workers: out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        d->workers[i] = worker_new(d, (int)i);
        if (!d->workers[i]) {
            log_error("cannot start worker %zu of %zu: out of memory or file descriptors", i, n);
            return -1;
        }
        d->n_workers = i + 1;
    }
    for (size_t i = 0; i < n; i++) {
        struct err err = { { 0 } };
        atomic_fetch_add(&d->workers_running, 1);
        if (worker_start(d->workers[i], &err) < 0) {
            atomic_fetch_sub(&d->workers_running, 1);
            log_error("cannot start worker %zu of %zu: %s", i, n, err.msg);
            return -1;
        }
    }
    return 0;
}

int daemon_run(struct daemon *d)
{
    /* Serve with the backends DNS names resolve to, not without them. */
    discovery_wait(d->discovery, DISCOVERY_START_WAIT_MS);
    if (start_workers(d) < 0) {
        /* The workers already running stop; daemon_free joins them. */
        atomic_store(&d->stopping, true);
        wake_workers(d);
        return 1;
    }
    log_info("ferry %s started workers=%zu generation=%llu", FERRY_VERSION, d->n_workers,
             (unsigned long long)d->current->generation);
    event_base_dispatch(d->base);
    log_info("stopped");
    return 0;
}

void daemon_free(struct daemon *d)
{
    if (!d)
        return;
    /* Every thread ends before any worker is freed: one still stopping may wake
     * another (daemon_conn_release), which must not have been freed yet. */
    for (size_t i = 0; i < d->n_workers; i++)
        worker_join(d->workers[i]);
    for (size_t i = 0; i < d->n_workers; i++)
        worker_free(d->workers[i]);
    free(d->workers);
    free(d->waiting);
    for (size_t i = 0; i < sizeof d->signals / sizeof d->signals[0]; i++)
        if (d->signals[i])
            event_free(d->signals[i]);
    if (d->drain_timer)
        event_free(d->drain_timer);
    if (d->worker_exit)
        event_free(d->worker_exit);
    if (d->ticket_timer)
        event_free(d->ticket_timer);
    admin_free(d->admin);
    health_free(d->health);
    /* Last on the main loop: it runs the callbacks evdns still owes. */
    discovery_free(d->discovery);
    runtime_unref(d->current);
    listen_set_free(d->sockets);
    backend_table_free(d->backends);
    tls_ticket_keys_free(d->ticket_keys);
    access_log_close();
    if (d->base)
        event_base_free(d->base);
    free(d->config_path);
    pthread_mutex_destroy(&d->runtime_lock);
    free(d);
}

struct daemon_info daemon_info(struct daemon *d)
{
    return (struct daemon_info){
        .config_path = d->config_path,
        .uptime_s = (clock_now_ms() - d->started_ms) / 1000,
        .connections = atomic_load(&d->connections),
        .reloads_ok = atomic_load(&d->reloads_ok),
        .reloads_failed = atomic_load(&d->reloads_failed),
    };
}

struct backend_table *daemon_backends(struct daemon *d) { return d->backends; }
const struct discovery *daemon_discovery(struct daemon *d) { return d->discovery; }

static struct backend *find_backend(const struct runtime *rt, const char *pool,
                                    const char *backend)
{
    struct cfg_addr addr;
    char why[128];
    bool is_addr = config_addr_parse(backend, ADDR_ALLOW_LOCALHOST, &addr, why, sizeof why) == 0;
    for (size_t i = 0; i < rt->n_pools; i++) {
        const struct rt_pool *p = &rt->pools[i];
        if (strcmp(p->cfg->name, pool) != 0)
            continue;
        for (size_t j = 0; j < p->n_backends; j++)
            if (is_addr && config_addr_equal(&p->cfg->backends[j].address, &addr))
                return p->backends[j];
        for (size_t j = 0; j < p->n_backends; j++)
            if (strcmp(p->cfg->backends[j].name, backend) == 0)
                return p->backends[j];
    }
    return NULL;
}

int daemon_set_drain(struct daemon *d, const char *pool, const char *backend, bool drain)
{
    struct backend *b = find_backend(d->current, pool, backend);
    if (!b)
        return -1;
    backend_set_drain_override(b, drain);
    wake_workers(d);
    return 0;
}

static void print_warning(void *arg, const char *line)
{
    fprintf(stderr, "warning: %s\n", line);
}

int daemon_check_config(const char *path)
{
    struct config_errors errs = { 0 };
    struct config *cfg = config_load(path, &errs);
    if (!cfg) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.messages[i]);
        config_errors_clear(&errs);
        return 1;
    }
    struct backend_table *backends = backend_table_new();
    struct err err = { { 0 } };
    struct tls_ticket_keys *keys = tls_ticket_keys_new(&err);
    struct runtime_deps deps = { backends, NULL, 0, keys, NULL, false };
    struct runtime *rt = NULL;
    if (backends && keys)
        rt = runtime_build(cfg, &deps, 1, &err);
    else
        config_free(cfg);
    int rc = rt ? 0 : 1;
    if (rt) {
        log_set_level(LOG_LEVEL_ERROR);     /* the warnings say it all */
        discovery_check(rt->cfg, DISCOVERY_START_WAIT_MS, print_warning, NULL);
    }
    if (rt)
        printf("ok\n");
    else
        fprintf(stderr, "%s\n", err.msg[0] ? err.msg : "out of memory");
    runtime_unref(rt);
    tls_ticket_keys_free(keys);
    backend_table_free(backends);
    return rc;
}

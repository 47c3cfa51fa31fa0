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
#include <jansson.h>
#include <systemd/sd-daemon.h>

#include "balance/balance.h"
#include "admin/admin.h"
#include "config/diff.h"
#include "core/clock.h"
#include "core/daemon_internal.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/worker.h"
#include "discovery/discovery.h"
#include "health/health.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"
#include "tls/tls.h"

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

/* Main thread: it alone adds and removes workers, so it reads the slots unlocked. */
static void wake_workers(struct daemon *d)
{
    for (int id = 0; id < DAEMON_MAX_WORKERS; id++)
        if (d->workers[id])
            worker_wakeup(d->workers[id]);
}

void daemon_wake_workers(struct daemon *d) { wake_workers(d); }

static bool has_free_slot(struct daemon *d)
{
    return atomic_load(&d->connections) < atomic_load(&d->max_connections);
}

/* Wakes one worker that waits for a slot, if any: one freed slot is one connection to
 * accept, so waking every worker would make all but one find nothing. */
static void wake_one_waiter(struct daemon *d)
{
    size_t n = DAEMON_MAX_WORKERS;
    size_t start = atomic_fetch_add_explicit(&d->next_waiter, 1, memory_order_relaxed);
    /* Read lock: the main thread frees retired workers under the write lock. */
    pthread_rwlock_rdlock(&d->workers_lock);
    for (size_t i = 0; i < n; i++) {
        size_t id = (start + i) % n;
        if (atomic_load(&d->waiting[id]) && atomic_exchange(&d->waiting[id], false)) {
            atomic_fetch_sub(&d->n_waiting, 1);
            if (d->workers[id])
                worker_wakeup(d->workers[id]);
            break;
        }
    }
    pthread_rwlock_unlock(&d->workers_lock);
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
bool daemon_drains_softly(const struct daemon *d) { return atomic_load(&d->drains_softly); }
bool daemon_is_stopping(const struct daemon *d) { return atomic_load(&d->stopping); }

/* Event activations coalesce: the main loop looks at every worker that ended, and
 * at the count, when it runs. */
void daemon_worker_exited(struct daemon *d)
{
    atomic_fetch_sub(&d->workers_running, 1);
    event_active(d->worker_exit, EV_TIMEOUT, 0);
}

void daemon_log_generation(const struct runtime *rt)
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

void daemon_publish(struct daemon *d, struct runtime *rt)
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

void daemon_begin_drain(struct daemon *d, const char *why, bool softly)
{
    if (!d->current || atomic_exchange(&d->draining, true))
        return;
    unsigned drain_ms = d->current->cfg->timeouts.drain_ms;
    log_info("%s: draining connections=%u drain_ms=%u", why, atomic_load(&d->connections),
             drain_ms);
    struct timeval tv = clock_tv_from_ms(drain_ms);
    evtimer_add(d->drain_timer, &tv);
    /* A handover leaves the sockets as they are: the new process accepts on them
     * (shutdown would stop its accepts too), and the workers stop watching them. */
    atomic_store(&d->drains_softly, softly);
    if (!softly) {
        sd_notify(0, "STOPPING=1");
        listen_set_stop_accepting(d->sockets);
    }
    if (softly && d->admin)
        admin_stop_accepting(d->admin);
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

/* SIGTERM/SIGINT. With timeouts.stop_grace_ms, /healthz says draining at once while
 * everything else goes on (the listeners accept), so that a load balancer that polls
 * it stops sending new connections before they would be refused; the drain begins
 * when the grace ends, or at a second signal. */
static void begin_stop(struct daemon *d, const char *why)
{
    unsigned grace_ms = d->current ? d->current->cfg->timeouts.stop_grace_ms : 0;
    bool was_announced = atomic_exchange(&d->stop_announced, true);
    upgrade_call_off(d);
    if (grace_ms == 0 || was_announced || atomic_load(&d->draining)) {
        evtimer_del(d->grace_timer);
        daemon_begin_drain(d, why, false);
        return;
    }
    log_info("%s: /healthz says draining; the listeners accept for stop_grace_ms=%u more, "
             "then ferry drains (a second signal drains at once)", why, grace_ms);
    sd_notify(0, "STOPPING=1");
    struct timeval tv = clock_tv_from_ms(grace_ms);
    evtimer_add(d->grace_timer, &tv);
}

static void on_grace_end(evutil_socket_t fd, short what, void *arg)
{
    daemon_begin_drain(arg, "stop_grace_ms elapsed", false);
}

static void on_worker_exit(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    workers_reap(d);
    if (atomic_load(&d->workers_running) == 0)
        event_base_loopbreak(d->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        begin_stop(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    case SIGUSR2:
        upgrade_start(d);
        break;
    case SIGCHLD:
        upgrade_reap(d);
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
        log_info("TLS session ticket keys rotated (listeners without ticket_keys_file; "
                 "the keys of a file change only with the file and a reload)");
}

static int add_events(struct daemon *d)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        d->signals[i] = evsignal_new(d->base, sigs[i], on_signal, d);
        if (!d->signals[i] || evsignal_add(d->signals[i], NULL) < 0)
            return -1;
    }
    d->grace_timer = evtimer_new(d->base, on_grace_end, d);
    d->drain_timer = evtimer_new(d->base, on_drain_timeout, d);
    d->worker_exit = event_new(d->base, -1, 0, on_worker_exit, d);
    d->ticket_timer = event_new(d->base, -1, EV_PERSIST, on_ticket_rotate, d);
    if (!d->grace_timer || !d->drain_timer || !d->worker_exit || !d->ticket_timer)
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
    pthread_rwlock_init(&d->workers_lock, NULL);
    d->started_ms = clock_now_ms();
    d->config_path = strdup(cfg->path);
    d->exe_path = realpath("/proc/self/exe", NULL);
    d->base = event_base_new();
    d->backends = backend_table_new();
    d->sockets = listen_set_new();
    struct err err = { { 0 } };
    d->ticket_keys = tls_ticket_keys_new(&err);
    if (!d->config_path || !d->exe_path || !d->base || !d->backends || !d->sockets || !d->ticket_keys) {
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
    /* A process started by a binary upgrade takes over the old one's sockets. */
    int admin_fd = -1;
    if (upgrade_inherit(d, cfg, &admin_fd, &err) < 0) {
        log_error("upgrade: %s", err.msg);
        config_free(cfg);
        goto fail;
    }
    if (!(d->discovery = discovery_new(d->base, daemon_rebuild_for_dns, d))) {
        log_error("cannot start: out of memory");
        config_free(cfg);
        if (admin_fd >= 0)
            close(admin_fd);
        goto fail;
    }
    struct config_errors errs = { 0 };
    struct runtime_deps deps = { .backends = d->backends, .sockets = d->sockets,
                                 .workers = cfg->workers, .ticket_keys = d->ticket_keys,
                                 .errors = &errs };
    d->current = runtime_build(cfg, &deps, 1, &err);
    listen_set_release_adopted(d->sockets);
    for (size_t i = 0; i < errs.count; i++)
        log_error("%s", errs.messages[i]);
    config_errors_clear(&errs);
    if (!d->current) {
        if (admin_fd >= 0)
            close(admin_fd);
        goto fail;
    }
    d->next_generation = 2;
    runtime_publish(d->current);
    atomic_store(&d->max_connections, d->current->cfg->limits.max_connections);
    atomic_store(&d->last_reload_ok_s, (int64_t)time(NULL));
    log_set_level(d->current->cfg->log.level);
    restart_health(d);
    discovery_follow(d->discovery, d->current->cfg);
    if (apply_access_log(d->current->cfg, &err) < 0) {
        log_error("%s", err.msg);
        if (admin_fd >= 0)
            close(admin_fd);
        goto fail;
    }
    const struct config *c = d->current->cfg;
    if (c->admin.enabled) {
        if (admin_fd < 0 && (admin_fd = admin_bind(&c->admin.listen, &err)) < 0) {
            log_error("admin.listen: %s", err.msg);
            goto fail;
        }
        if (!(d->admin = admin_new(d, d->base, admin_fd, c->admin.listen.text))) {
            log_error("admin.listen: out of memory");
            goto fail;
        }
    }
    daemon_warn_admin_exposure(c);
    daemon_log_generation(d->current);
    return d;
fail:
    daemon_free(d);
    return NULL;
}

int daemon_run(struct daemon *d)
{
    /* Serve with the backends DNS names resolve to, not without them. */
    discovery_wait(d->discovery, DISCOVERY_START_WAIT_MS);
    if (workers_start(d, d->current->cfg->workers) < 0) {
        /* The workers already running stop; daemon_free joins them. */
        atomic_store(&d->stopping, true);
        wake_workers(d);
        return 1;
    }
    log_info("ferry %s started workers=%zu generation=%llu pid=%d", FERRY_VERSION, d->n_workers,
             (unsigned long long)d->current->generation, (int)getpid());
    upgrade_announce_ready(d);
    sd_notifyf(0, "READY=1\nMAINPID=%d\nSTATUS=serving generation 1", (int)getpid());
    event_base_dispatch(d->base);
    log_info("stopped");
    return 0;
}

void daemon_free(struct daemon *d)
{
    if (!d)
        return;
    workers_free(d);
    upgrade_free(d->upgrade);
    for (size_t i = 0; i < sizeof d->signals / sizeof d->signals[0]; i++)
        if (d->signals[i])
            event_free(d->signals[i]);
    if (d->grace_timer)
        event_free(d->grace_timer);
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
    free(d->exe_path);
    pthread_mutex_destroy(&d->runtime_lock);
    pthread_rwlock_destroy(&d->workers_lock);
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
        .last_reload_ok_s = atomic_load(&d->last_reload_ok_s),
        .n_workers = d->n_workers,
        .is_draining = atomic_load(&d->stop_announced) || atomic_load(&d->draining),
        .is_upgrading = d->upgrade != NULL && !atomic_load(&d->draining),
        .upgrades_failed = atomic_load(&d->upgrades_failed),
        .upgrade_failure = d->upgrade_failure,
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


size_t daemon_workers_info(struct daemon *d, struct worker_info *out, size_t max)
{
    size_t n = 0;
    for (int id = 0; id < DAEMON_MAX_WORKERS && n < max; id++)
        if (d->workers[id])
            out[n++] = worker_info(d->workers[id]);
    return n;
}

/* Whether the running daemon listens on addr with a socket of `type` (as written in
 * its config). */
static bool is_running_address(void *arg, const struct cfg_addr *addr, int type)
{
    const json_t *doc = arg;
    const char *name;
    json_t *listener;
    json_object_foreach(json_object_get(doc, "listeners"), name, listener) {
        const char *text = json_string_value(json_object_get(listener, "listen"));
        const char *mode = json_string_value(json_object_get(listener, "mode"));
        int running_type = mode && strcmp(mode, "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM;
        if (text && strcmp(text, addr->text) == 0 && running_type == type)
            return true;
    }
    return false;
}

static void print_line(void *arg, const char *line)
{
    fprintf(arg, "%s\n", line);
}

/* The admin API moved by FILE must be able to bind. */
static void check_admin_move(const struct config *cfg, const json_t *running,
                             struct config_errors *errs)
{
    const json_t *admin = json_object_get(running, "admin");
    const char *text = json_string_value(json_object_get(admin, "listen"));
    struct err err = { { 0 } };
    if (json_is_null(admin) || !cfg->admin.enabled)
        return;
    if (strcmp(text ? text : "127.0.0.1:9901", cfg->admin.listen.text) != 0 &&
        listen_probe(&cfg->admin.listen, SOCK_STREAM, &err) < 0)
        config_errors_add(errs, "admin.listen: %s", err.msg);
}

static void print_warning(void *arg, const char *line)
{
    fprintf(stderr, "warning: %s\n", line);
}

int daemon_check_config(const char *path, const json_t *running)
{
    struct config_errors errs = { 0 };
    struct config *cfg = config_load(path, &errs);
    struct backend_table *backends = backend_table_new();
    struct err err = { { 0 } };
    struct tls_ticket_keys *keys = tls_ticket_keys_new(&err);
    struct runtime *rt = NULL;
    if (cfg && running)
        check_admin_move(cfg, running, &errs);
    if (cfg && backends && keys) {
        struct runtime_deps deps = {
            .backends = backends, .ticket_keys = keys, .errors = &errs,
            .is_open = running ? is_running_address : NULL, .is_open_arg = (void *)running,
        };
        size_t before = errs.count;
        rt = runtime_build(cfg, &deps, 1, &err);
        if (!rt && errs.count == before)
            config_errors_add(&errs, "%s", err.msg[0] ? err.msg : "out of memory");
    } else if (cfg) {
        config_free(cfg);
        config_errors_add(&errs, "%s", err.msg[0] ? err.msg : "out of memory");
    }
    int rc = rt && errs.count == 0 ? 0 : 1;
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.messages[i]);
    if (rc == 0) {
        log_set_level(LOG_LEVEL_ERROR);     /* the warnings say it all */
        discovery_check(rt->cfg, DISCOVERY_START_WAIT_MS, print_warning, NULL);
        printf("ok\n");
        json_t *diff = running ? config_diff(running, rt->cfg->document) : NULL;
        if (diff)
            config_diff_lines(diff, print_line, stdout);
        json_decref(diff);
    }
    config_errors_clear(&errs);
    runtime_unref(rt);
    tls_ticket_keys_free(keys);
    backend_table_free(backends);
    return rc;
}

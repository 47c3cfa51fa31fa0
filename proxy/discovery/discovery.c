/* discovery — the watches of the followed config, the evdns base they ask, and what
 * their answers add to a config being built (see discovery.h). Main thread. */
#include "discovery/discovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "core/clock.h"
#include "core/jitter.h"
#include "core/log.h"
#include "discovery/internal.h"

#define RESOLV_CONF "/etc/resolv.conf"

/* ---- evdns ----------------------------------------------------------------------- */

static void log_evdns(int severity, const char *msg)
{
    if (severity >= EVENT_LOG_WARN)
        log_warn("dns: evdns: %s", msg);
    else if (severity == EVENT_LOG_MSG)
        log_info("dns: evdns: %s", msg);
    else
        log_debug("dns: evdns: %s", msg);
}

/* SRV queries go where evdns sends its A/AAAA queries: the nameservers it took (from
 * "resolvers" or resolv.conf; 127.0.0.1 when that names none, as the C library does). */
static void take_evdns_nameservers(struct discovery *d, struct evdns_base *evdns)
{
    d->n_resolvers = 0;
    int n = evdns_base_count_nameservers(evdns);
    for (int i = 0; i < n && d->n_resolvers < CFG_DNS_MAX_RESOLVERS; i++) {
        int len = evdns_base_get_nameserver_addr(
            evdns, i, (struct sockaddr *)&d->resolvers[d->n_resolvers], sizeof d->resolvers[0]);
        if (len > 0 && (size_t)len <= sizeof d->resolvers[0])
            d->resolver_lens[d->n_resolvers++] = (socklen_t)len;
    }
}

static void set_option(struct evdns_base *evdns, const char *name, unsigned value)
{
    char text[16];
    snprintf(text, sizeof text, "%u", value);
    if (evdns_base_set_option(evdns, name, text) < 0)
        log_warn("dns: evdns refused option %s=%s", name, text);
}

/* An evdns base asking cfg's resolvers, or /etc/resolv.conf's; NULL when out of memory. */
static struct evdns_base *new_evdns(struct discovery *d, const struct config *cfg)
{
    struct evdns_base *evdns = evdns_base_new(d->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!evdns)
        return NULL;
    /* Before resolv.conf, whose "options timeout: attempts:" win. */
    set_option(evdns, "timeout:", DISCOVERY_QUERY_TIMEOUT_MS / 1000);
    set_option(evdns, "attempts:", DISCOVERY_QUERY_ATTEMPTS);
    for (size_t i = 0; i < cfg->dns.n_resolvers; i++) {
        const struct cfg_addr *r = &cfg->dns.resolvers[i];
        if (evdns_base_nameserver_sockaddr_add(evdns, (const struct sockaddr *)&r->sa, r->len,
                                               0) != 0)
            log_warn("dns: resolver %s cannot be used", r->text);
    }
    if (cfg->dns.n_resolvers == 0) {
        int rc = evdns_base_resolv_conf_parse(
            evdns, DNS_OPTION_NAMESERVERS | DNS_OPTION_SEARCH | DNS_OPTION_MISC, RESOLV_CONF);
        if (rc != 0)
            log_warn("dns: cannot use %s (evdns error %d): asking 127.0.0.1:53", RESOLV_CONF, rc);
    }
    take_evdns_nameservers(d, evdns);
    return evdns;
}

static bool resolvers_changed(const struct discovery *d, const struct config *cfg)
{
    if (!d->evdns || d->n_configured != cfg->dns.n_resolvers)
        return true;
    for (size_t i = 0; i < d->n_configured; i++)
        if (!config_addr_equal(&d->configured[i], &cfg->dns.resolvers[i]))
            return true;
    return false;
}

/* New resolvers: a new evdns base replaces d's. The old one goes to *old, to be freed
 * once the watches have abandoned what they asked it. false when out of memory (the
 * resolvers stay as they were). */
static bool use_resolvers(struct discovery *d, const struct config *cfg,
                          struct evdns_base **old)
{
    struct evdns_base *evdns = new_evdns(d, cfg);
    if (!evdns) {
        log_error("dns: out of memory: the resolvers stay as they were");
        return false;
    }
    *old = d->evdns;
    d->evdns = evdns;
    d->n_configured = cfg->dns.n_resolvers;
    for (size_t i = 0; i < d->n_configured; i++)
        d->configured[i] = cfg->dns.resolvers[i];
    return true;
}

/* ---- life ------------------------------------------------------------------------ */

static void on_changed(evutil_socket_t fd, short what, void *arg)
{
    struct discovery *d = arg;
    if (!d->on_change || d->on_change(d->change_arg) == 0) {
        d->change_failures = 0;
        return;
    }
    unsigned retry_ms = dns_backoff_ms(++d->change_failures, d->min_ttl_ms, d->max_ttl_ms,
                                       discovery_random(d));
    struct timeval tv = clock_tv_from_ms(retry_ms);
    evtimer_add(d->changed, &tv);
}

void discovery_changed(struct discovery *d)
{
    if (d->on_change && !event_pending(d->changed, EV_TIMEOUT, NULL))
        event_active(d->changed, EV_TIMEOUT, 0);
}

uint32_t discovery_random(struct discovery *d)
{
    return (uint32_t)(jitter_next(&d->random) >> 32);
}

struct discovery *discovery_new(struct event_base *base, discovery_change_fn on_change,
                                void *arg)
{
    struct discovery *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->base = base;
    d->on_change = on_change;
    d->change_arg = arg;
    d->random = jitter_seed();
    d->changed = event_new(base, -1, 0, on_changed, d);
    if (!d->changed) {
        free(d);
        return NULL;
    }
    evdns_set_log_fn(log_evdns);
    return d;
}

static void free_watches(struct discovery *d)
{
    while (d->watches) {
        struct watch *w = d->watches;
        d->watches = w->next;
        watch_free(w);
    }
}

void discovery_free(struct discovery *d)
{
    if (!d)
        return;
    free_watches(d);
    /* Nothing but evdns's callbacks may run below. */
    event_free(d->changed);
    if (d->evdns)
        evdns_base_free(d->evdns, 1);
    /* Run the callbacks evdns scheduled (cancelled and failed requests): each frees
     * what its query held. */
    if (d->lookups_alive)
        event_base_loop(d->base, EVLOOP_NONBLOCK);
    if (d->lookups_alive)
        log_error("dns: %zu lookup(s) still waiting for evdns at exit", d->lookups_alive);
    free(d);
}

/* ---- following a config ---------------------------------------------------------- */

/* Takes the watch of entry e out of *list (NULL if it has none). */
static struct watch *take_watch(struct watch **list, const char *pool,
                                const struct cfg_dns_backend *e)
{
    for (struct watch **p = list; *p; p = &(*p)->next) {
        if (watch_matches(*p, pool, e)) {
            struct watch *w = *p;
            *p = w->next;
            w->next = NULL;
            return w;
        }
    }
    return NULL;
}

static bool has_dns_entries(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_pools; i++)
        if (cfg->pools[i].n_dns)
            return true;
    return false;
}

void discovery_follow(struct discovery *d, const struct config *cfg)
{
    d->min_ttl_ms = cfg->dns.min_ttl_ms;
    d->max_ttl_ms = cfg->dns.max_ttl_ms;
    /* No names: no evdns base either (nor a read of /etc/resolv.conf). */
    if (!has_dns_entries(cfg)) {
        free_watches(d);
        if (d->evdns)
            evdns_base_free(d->evdns, 1);
        d->evdns = NULL;
        return;
    }
    struct evdns_base *old_evdns = NULL;
    bool new_resolvers = resolvers_changed(d, cfg) && use_resolvers(d, cfg, &old_evdns);
    struct watch *old = d->watches, **tail = &d->watches;
    d->watches = NULL;
    for (size_t i = 0; i < cfg->n_pools; i++) {
        const struct cfg_pool *p = &cfg->pools[i];
        for (size_t j = 0; j < p->n_dns; j++) {
            struct watch *w = take_watch(&old, p->name, &p->dns[j]);
            if (w && (new_resolvers || watch_is_stalled(w))) {
                watch_restart(w);   /* asks the new resolvers at once */
            } else if (!w && !(w = watch_new(d, p->name, &p->dns[j]))) {
                log_error("dns: out of memory: pools.%s.backends[%zu] is not looked up",
                          p->name, p->dns[j].index);
                continue;
            }
            w->entry.index = p->dns[j].index;
            *tail = w;
            tail = &w->next;
        }
    }
    while (old) {
        struct watch *w = old;
        old = w->next;
        log_info("dns pool=%s name=%s: no longer in the config", w->pool, w->text);
        watch_free(w);
    }
    /* Every lookup on the old base was abandoned above: its requests fail now. */
    if (old_evdns)
        evdns_base_free(old_evdns, 1);
}

/* ---- filling a config ------------------------------------------------------------- */

static const struct watch *find_watch(const struct discovery *d, const char *pool,
                                      const struct cfg_dns_backend *e)
{
    for (const struct watch *w = d->watches; w; w = w->next)
        if (watch_matches(w, pool, e))
            return w;
    return NULL;
}

/* The backends entry e's answer gives, added to pool i of cfg. */
static int fill_entry(struct config *cfg, size_t i, const struct cfg_dns_backend *e,
                      const struct watch *w, struct err *err)
{
    const struct dns_set *set = &w->answer;
    struct cfg_backend *list = calloc(set->n + 1, sizeof *list);
    if (!list)
        return err_set(err, "pools.%s: out of memory", cfg->pools[i].name);
    for (size_t k = 0; k < set->n; k++) {
        const struct dns_found *f = &set->items[k];
        struct cfg_backend *b = &list[k];
        *b = e->each;
        memcpy(&b->address.sa, &f->sa, sizeof f->sa);
        b->address.len = f->len;
        dns_found_text(f, b->address.text, sizeof b->address.text);
        b->name = b->address.text;
        if (e->is_srv) {
            b->weight = f->weight;
            b->backup = e->each.backup || f->backup;
        }
    }
    int left_out = config_pool_add_backends(cfg, i, list, set->n);
    free(list);
    if (left_out < 0)
        return err_set(err, "pools.%s: out of memory", cfg->pools[i].name);
    if (left_out > 0)
        log_info("dns pool=%s name=%s: %d address(es) found are backends of the pool already",
                 cfg->pools[i].name, w->text, left_out);
    return 0;
}

int discovery_fill(const struct discovery *d, struct config *cfg, struct err *err)
{
    for (size_t i = 0; i < cfg->n_pools; i++) {
        const struct cfg_pool *p = &cfg->pools[i];
        for (size_t j = 0; j < p->n_dns; j++) {
            const struct watch *w = find_watch(d, p->name, &p->dns[j]);
            if (w && w->answer.n > 0 && fill_entry(cfg, i, &p->dns[j], w, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* ---- waiting, checking, showing ------------------------------------------------- */

static bool is_settled(const struct discovery *d)
{
    for (const struct watch *w = d->watches; w; w = w->next)
        if (!watch_is_settled(w))
            return false;
    return true;
}

static void on_wait_over(evutil_socket_t fd, short what, void *arg) {}

void discovery_wait(struct discovery *d, unsigned timeout_ms)
{
    if (is_settled(d))
        return;
    struct event *deadline = evtimer_new(d->base, on_wait_over, NULL);
    struct timeval tv = clock_tv_from_ms(timeout_ms);
    if (!deadline || evtimer_add(deadline, &tv) < 0) {
        if (deadline)
            event_free(deadline);
        return;
    }
    while (!is_settled(d) && evtimer_pending(deadline, NULL))
        event_base_loop(d->base, EVLOOP_ONCE);
    if (!is_settled(d))
        log_warn("dns: serving before every name had an answer (waited %u ms)", timeout_ms);
    event_free(deadline);
}

struct check {
    void (*warn)(void *arg, const char *line);
    void *arg;
    size_t failed;
};

static void check_one(const struct discovery_view *v, void *arg)
{
    struct check *c = arg;
    char line[512];
    if (v->set->n > 0)
        return;
    c->failed++;
    snprintf(line, sizeof line, "pools.%s.backends[%zu] (%s): %s; ferry starts without "
             "backends from it and adds them once it resolves", v->pool, v->index, v->text,
             v->last_error[0] ? v->last_error : "no answer in time");
    c->warn(c->arg, line);
}

size_t discovery_check(const struct config *cfg, unsigned timeout_ms,
                       void (*warn)(void *arg, const char *line), void *arg)
{
    struct check c = { warn, arg, 0 };
    if (!has_dns_entries(cfg))
        return 0;
    struct event_base *base = event_base_new();
    struct discovery *d = base ? discovery_new(base, NULL, NULL) : NULL;
    if (!d) {
        warn(arg, "dns: out of memory: host names and SRV names were not checked");
        if (base)
            event_base_free(base);
        return 0;
    }
    discovery_follow(d, cfg);
    discovery_wait(d, timeout_ms);
    discovery_foreach(d, check_one, &c);
    discovery_free(d);
    event_base_free(base);
    return c.failed;
}

void discovery_foreach(const struct discovery *d,
                       void (*fn)(const struct discovery_view *view, void *arg), void *arg)
{
    int64_t now = clock_now_ms();
    for (const struct watch *w = d->watches; w; w = w->next) {
        struct discovery_view v = {
            .pool = w->pool, .index = w->entry.index, .is_srv = w->entry.is_srv,
            .text = w->text, .family = w->entry.family, .set = &w->answer,
            .ttl_s = w->ttl_s, .refresh_in_ms = w->lookup ? 0 : w->next_lookup_ms - now,
            .last_error = w->last_error, .failures = w->failures, .lookups = w->lookups,
        };
        fn(&v, arg);
    }
}

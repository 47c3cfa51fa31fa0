#include "health/health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/bev.h"
#include "core/clock.h"
#include "core/log.h"
#include "health/verdict.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"
#include "upstream/connect.h"

/* A status line longer than this is not an HTTP response worth waiting for. */
enum { MAX_STATUS_LINE = 1024 };

struct probe {
    struct health *health;          /* borrowed: the owner */
    struct rt_pool *pool;           /* borrowed from health->runtime */
    struct backend *backend;        /* borrowed from pool */
    struct event *timer;            /* owned: next probe, or the running probe's deadline */
    struct bufferevent *bev;        /* owned while a probe runs */
    struct health_run run;
};

struct health {
    struct event_base *base;        /* borrowed: the main thread's */
    struct runtime *runtime;        /* ref */
    struct probe **probes;          /* owned, each owned: a probe keeps its address when
                                       a reload hands it to the next checker */
    size_t n_probes;
};

static void schedule(struct probe *p, unsigned ms)
{
    struct timeval tv = clock_tv_from_ms(ms);
    evtimer_add(p->timer, &tv);
}

/* A passively ejected backend comes back with the first passing check once its
 * ejection is over; a failing check makes it the check's to bring back. */
static void apply_to_ejected(struct probe *p, bool ok, const char *reason)
{
    struct backend *b = p->backend;
    p->run = (struct health_run){ .up = false };
    if (!ok) {
        backend_hold_for_check(b);
        log_debug("backend %s/%s check failed while ejected: %s", b->pool, b->name, reason);
        return;
    }
    if (clock_now_ms() < atomic_load(&b->eject_until_ms))
        return;
    backend_check_up(b);
    p->run.up = true;
    log_info("backend %s/%s up: %s after its passive ejection", b->pool, b->name, reason);
}

static void apply_verdict(struct probe *p, bool ok, const char *reason)
{
    const struct cfg_health_check *hc = &p->pool->cfg->health_check;
    struct backend *b = p->backend;
    unsigned streak_before = p->run.streak;
    if (backend_is_ejected(b)) {
        apply_to_ejected(p, ok, reason);
        return;
    }
    /* Passive checks may have taken it down meanwhile: judge from the shared state. */
    switch (health_observe(&p->run, backend_is_up(b), ok, hc->rise, hc->fall)) {
    case HEALTH_WENT_UP:
        backend_check_up(b);
        log_info("backend %s/%s up: %s (%u/%u)", b->pool, b->name, reason, hc->rise, hc->rise);
        break;
    case HEALTH_WENT_DOWN:
        backend_check_down(b, clock_now_ms());
        log_warn("backend %s/%s down: %s (%u/%u)", b->pool, b->name, reason, hc->fall, hc->fall);
        break;
    case HEALTH_SAME:
        if (!ok && p->run.streak > streak_before)
            log_debug("backend %s/%s check failed: %s (%u/%u)", b->pool, b->name, reason,
                      p->run.streak, hc->fall);
        break;
    }
}

static void finish(struct probe *p, bool ok, const char *reason)
{
    if (p->bev) {
        bev_close(p->bev);      /* a TLS probe's session stays resumable */
        p->bev = NULL;
    }
    apply_verdict(p, ok, reason);
    schedule(p, p->pool->cfg->health_check.interval_ms);
}

static bool status_expected(const struct cfg_health_check *hc, int status)
{
    for (size_t i = 0; i < hc->n_expect_status; i++)
        if (hc->expect_status[i] == status)
            return true;
    return false;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct probe *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
    if (eol.pos < 0) {
        if (evbuffer_get_length(in) > MAX_STATUS_LINE)
            finish(p, false, "status line too long");
        return;
    }
    char line[MAX_STATUS_LINE + 1];
    size_t n = (size_t)eol.pos < MAX_STATUS_LINE ? (size_t)eol.pos : MAX_STATUS_LINE;
    evbuffer_copyout(in, line, n);
    line[n] = '\0';
    int status = 0;
    char reason[128];
    if (sscanf(line, "HTTP/1.%*1[01] %3d", &status) != 1) {
        finish(p, false, "not an HTTP response");
        return;
    }
    bool ok = status_expected(&p->pool->cfg->health_check, status);
    snprintf(reason, sizeof reason, "GET %s answered %d", p->pool->cfg->health_check.path, status);
    finish(p, ok, reason);
}

static void send_http_probe(struct probe *p)
{
    const struct cfg_health_check *hc = &p->pool->cfg->health_check;
    const char *host = hc->host ? hc->host : p->backend->addr.text;
    evbuffer_add_printf(bufferevent_get_output(p->bev),
                        "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ferry-health-check\r\n"
                        "Connection: close\r\n\r\n",
                        hc->path, host);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct probe *p = arg;
    if (what & BEV_EVENT_CONNECTED) {
        upstream_connected(bev);
        if (p->pool->cfg->health_check.type == HEALTH_CHECK_TCP)
            finish(p, true, "connect succeeded");
        else
            send_http_probe(p);
        return;
    }
    char reason[128];
    snprintf(reason, sizeof reason, "%s",
             (what & BEV_EVENT_TIMEOUT) ? "connect timeout"
             : (what & BEV_EVENT_EOF)   ? "closed before answering"
                                        : "connect refused or failed");
    finish(p, false, reason);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct probe *p = arg;
    const struct cfg_health_check *hc = &p->pool->cfg->health_check;
    if (p->bev) {
        char reason[64];
        snprintf(reason, sizeof reason, "no answer after %u ms", hc->timeout_ms);
        finish(p, false, reason);
        return;
    }
    p->bev = upstream_connect(p->health->base, p->pool, p->backend, hc->timeout_ms);
    if (!p->bev && upstream_error_is_local(errno)) {
        /* Ferry out of descriptors or memory: no verdict on the backend either way. */
        log_warn("backend %s/%s check skipped: cannot open a socket: %s", p->backend->pool,
                 p->backend->name, strerror(errno));
        schedule(p, hc->interval_ms);
        return;
    }
    if (!p->bev) {
        char reason[128];
        snprintf(reason, sizeof reason, "cannot connect: %s", strerror(errno));
        finish(p, false, reason);
        return;
    }
    bufferevent_setcb(p->bev, on_read, NULL, on_event, p);
    schedule(p, hc->timeout_ms);   /* the deadline for the whole probe */
}

static size_t count_probes(const struct runtime *rt)
{
    size_t n = 0;
    for (size_t i = 0; i < rt->n_pools; i++)
        if (rt->pools[i].cfg->health_check.type != HEALTH_CHECK_NONE)
            n += rt->pools[i].n_backends;
    return n;
}

static bool same_strings(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Would a probe of pool a give the same verdicts as one of pool b? */
static bool same_check(const struct rt_pool *a, const struct rt_pool *b)
{
    const struct cfg_health_check *x = &a->cfg->health_check, *y = &b->cfg->health_check;
    return x->type == y->type && same_strings(x->path, y->path) &&
           same_strings(x->host, y->host) && x->n_expect_status == y->n_expect_status &&
           (x->n_expect_status == 0 ||
            memcmp(x->expect_status, y->expect_status,
                   x->n_expect_status * sizeof *x->expect_status) == 0) &&
           x->interval_ms == y->interval_ms && x->timeout_ms == y->timeout_ms &&
           x->rise == y->rise && x->fall == y->fall && (a->tls != NULL) == (b->tls != NULL) &&
           memcmp(a->tls_fingerprint, b->tls_fingerprint, sizeof a->tls_fingerprint) == 0 &&
           strcmp(a->cfg->name, b->cfg->name) == 0;
}

/* The previous checker's probe of the same backend with the same check: a reload that
 * leaves a check alone must not restart its streak (with reloads more frequent than
 * fall x interval_ms a failing backend would never go down) nor its probe in flight.
 * Taken out of `previous`, so that freeing it stops only the others. */
static struct probe *take_over(struct health *previous, const struct rt_pool *pool,
                               const struct backend *b)
{
    for (size_t i = 0; previous && i < previous->n_probes; i++) {
        struct probe *p = previous->probes[i];
        if (p && p->backend == b && same_check(p->pool, pool)) {
            previous->probes[i] = NULL;
            return p;
        }
    }
    return NULL;
}

static struct probe *probe_new(struct health *h, struct rt_pool *pool, struct backend *b)
{
    struct probe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    *p = (struct probe){ .health = h, .pool = pool, .backend = b };
    p->timer = evtimer_new(h->base, on_timer, p);
    if (!p->timer) {
        free(p);
        return NULL;
    }
    /* Spread first probes over a few ms rather than all at once. */
    schedule(p, (unsigned)(h->n_probes % 50));
    return p;
}

static void probe_free(struct probe *p)
{
    if (!p)
        return;
    if (p->bev)
        bev_close(p->bev);
    event_free(p->timer);
    free(p);
}

/* A pool that lost its health_check (or a backend moved to a pool without one): no
 * check will bring back a backend a check took down, so it is retried as after a
 * passive ejection. */
static void release_unchecked(const struct rt_pool *pool)
{
    int64_t now = clock_now_ms();
    for (size_t j = 0; j < pool->n_backends; j++)
        backend_release_from_check(pool->backends[j], rt_pool_eject_ms(pool), now);
}

struct health *health_new(struct event_base *base, struct runtime *rt, struct health *previous)
{
    struct health *h = calloc(1, sizeof *h);
    size_t n = count_probes(rt);
    if (!h || (n && !(h->probes = calloc(n, sizeof *h->probes)))) {
        free(h);
        health_free(previous);
        return NULL;
    }
    h->base = base;
    h->runtime = rt;
    runtime_ref(rt);
    for (size_t i = 0; i < rt->n_pools; i++) {
        struct rt_pool *pool = &rt->pools[i];
        if (pool->cfg->health_check.type == HEALTH_CHECK_NONE) {
            release_unchecked(pool);
            continue;
        }
        for (size_t j = 0; j < pool->n_backends; j++) {
            struct probe *p = take_over(previous, pool, pool->backends[j]);
            if (p) {
                p->health = h;
                p->pool = pool;
            } else if (!(p = probe_new(h, pool, pool->backends[j]))) {
                health_free(h);
                health_free(previous);
                return NULL;
            }
            h->probes[h->n_probes++] = p;
        }
    }
    health_free(previous);
    return h;
}

void health_free(struct health *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_probes; i++)
        probe_free(h->probes[i]);
    free(h->probes);
    runtime_unref(h->runtime);
    free(h);
}

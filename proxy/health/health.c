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
#include "core/jitter.h"
#include "core/log.h"
#include "health/response.h"
#include "health/verdict.h"
#include "proxyproto/send.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"
#include "upstream/connect.h"

struct probe {
    struct health *health;          /* borrowed: the owner */
    struct rt_pool *pool;           /* borrowed from health->runtime */
    struct backend *backend;        /* borrowed from pool */
    struct event *timer;            /* owned: next probe, or the running probe's deadline */
    struct bufferevent *bev;        /* owned while a probe runs */
    struct health_run run;
    int64_t started_ms;             /* when the current (or last) probe began */
};

struct health {
    struct event_base *base;        /* borrowed: the main thread's */
    struct runtime *runtime;        /* ref */
    uint64_t random;                /* jitter: xorshift64 state, never 0 */
    struct probe **probes;          /* owned, each owned: a probe keeps its address when
                                       a reload hands it to the next checker */
    size_t n_probes;
};

static void schedule(struct probe *p, unsigned ms)
{
    struct timeval tv = clock_tv_from_ms(ms);
    evtimer_add(p->timer, &tv);
}

/* The next probe begins interval_ms +-10% after this one began (not after it ended:
 * a slow answer or a busy main thread must not stretch the period, and with it the
 * time a failing backend takes to go down). The +-10% are drawn anew for every probe,
 * so that probes of many backends (and of many ferry processes) do not stay in
 * step. */
static void schedule_next(struct probe *p)
{
    unsigned interval = p->pool->cfg->health_check.interval_ms;
    unsigned spread = interval / 5;     /* the width of +-10% */
    uint64_t x = jitter_next(&p->health->random);
    unsigned offset = spread ? (unsigned)(x % (spread + 1)) : 0;
    int64_t due = p->started_ms + interval - spread / 2 + offset;
    int64_t wait = due - clock_now_ms();
    schedule(p, wait > 0 ? (unsigned)wait : 0);
}

/* A passively ejected backend comes back with the first passing check once its
 * ejection is over; a failing check makes it the check's to bring back. */
static void apply_to_ejected(struct probe *p, bool ok, const char *reason)
{
    struct backend *b = p->backend;
    int64_t now = clock_now_ms();
    p->run = (struct health_run){ .up = false };
    if (!ok) {
        backend_hold_for_check(b, reason);
        log_debug("backend %s/%s check failed while ejected: %s", b->pool, b->name, reason);
        return;
    }
    if (now < atomic_load(&b->eject_until_ms))
        return;
    backend_check_up(b, now);
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
        backend_check_up(b, clock_now_ms());
        log_info("backend %s/%s up: %s (%u/%u)", b->pool, b->name, reason, hc->rise, hc->rise);
        break;
    case HEALTH_WENT_DOWN: {
        char why[192];
        snprintf(why, sizeof why, "%s (%u/%u)", reason, hc->fall, hc->fall);
        backend_check_down(b, clock_now_ms(), why);
        log_warn("backend %s/%s down: %s", b->pool, b->name, why);
        break;
    }
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
    backend_note_check(p->backend, ok ? CHECK_PASS : CHECK_FAIL, reason);
    apply_verdict(p, ok, reason);
    schedule_next(p);
}

/* Judges what the backend sent so far (eof: it will send no more). */
static void judge(struct probe *p, bool eof)
{
    struct evbuffer *in = bufferevent_get_input(p->bev);
    size_t len = evbuffer_get_length(in);
    if (len >= HEALTH_READ_MAX) {
        len = HEALTH_READ_MAX;
        eof = true;
    }
    const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
    char reason[160];
    enum health_judgement j = health_judge_response(buf ? buf : "", buf ? len : 0, eof,
                                                    &p->pool->cfg->health_check, reason,
                                                    sizeof reason);
    if (j != HEALTH_NEED_MORE)
        finish(p, j == HEALTH_PASS, reason);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    judge(arg, false);
}

static void send_http_probe(struct probe *p)
{
    const struct cfg_health_check *hc = &p->pool->cfg->health_check;
    const char *host = hc->host ? hc->host : p->backend->addr.text;
    evbuffer_add_printf(bufferevent_get_output(p->bev),
                        "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ferry-health-check\r\n"
                        "Connection: close\r\n\r\n",
                        hc->path, host);
    bufferevent_setwatermark(p->bev, EV_READ, 0, HEALTH_READ_MAX);
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
    /* The answer ends with the connection ("Connection: close"). */
    if ((what & BEV_EVENT_EOF) && p->pool->cfg->health_check.type == HEALTH_CHECK_HTTP &&
        evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
        judge(p, true);
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
    p->started_ms = clock_now_ms();
    uint8_t preamble[PROXYPROTO_WRITE_MAX];
    size_t preamble_len = proxyproto_check_header(p->pool->cfg->proxy_protocol, preamble);
    p->bev = upstream_connect(p->health->base, p->pool, p->backend, hc->timeout_ms, preamble,
                              preamble_len);
    if (!p->bev && upstream_error_is_local(errno)) {
        /* Ferry out of descriptors or memory: no verdict on the backend either way. */
        char result[160];
        snprintf(result, sizeof result, "skipped: cannot open a socket: %s", strerror(errno));
        log_warn("backend %s/%s check %s", p->backend->pool, p->backend->name, result);
        backend_note_check(p->backend, CHECK_SKIPPED, result);
        schedule_next(p);
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
           a->cfg->proxy_protocol == b->cfg->proxy_protocol &&
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
    if (!h || (n && !(h->probes = calloc(n, sizeof(struct probe *))))) {
        free(h);
        health_free(previous);
        return NULL;
    }
    h->base = base;
    h->runtime = rt;
    h->random = jitter_seed();
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
            /* probes has count_probes(rt) entries, one per backend this loop visits (the
             * analyzer does not tie the two counts).
             * NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
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

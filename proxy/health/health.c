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
#include "proxyproto/send.h"
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
    struct probe *probes;           /* owned array */
    size_t n_probes;
};

static void schedule(struct probe *p, unsigned ms)
{
    struct timeval tv = clock_tv_from_ms(ms);
    evtimer_add(p->timer, &tv);
}

static void apply_verdict(struct probe *p, bool ok, const char *reason)
{
    const struct cfg_health_check *hc = &p->pool->cfg->health_check;
    struct backend *b = p->backend;
    unsigned streak_before = p->run.streak;
    /* Passive checks may have taken it down meanwhile: judge from the shared state. */
    switch (health_observe(&p->run, backend_is_up(b), ok, hc->rise, hc->fall)) {
    case HEALTH_WENT_UP:
        atomic_store(&b->consecutive_failures, 0);
        atomic_store(&b->state, BACKEND_UP);
        log_info("backend %s/%s up: %s (%u/%u)", b->pool, b->name, reason, hc->rise, hc->rise);
        break;
    case HEALTH_WENT_DOWN:
        atomic_store(&b->state, BACKEND_DOWN);
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
    /* %3d reads at most three digits, so it cannot overflow; status_expected() checks the
     * value.
     * NOLINTNEXTLINE(cert-err34-c) */
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
    uint8_t preamble[PROXYPROTO_WRITE_MAX];
    size_t preamble_len = proxyproto_check_header(p->pool->cfg->proxy_protocol, preamble);
    p->bev = upstream_connect(p->health->base, p->pool, p->backend, hc->timeout_ms, preamble,
                              preamble_len);
    if (!p->bev) {
        int error = errno;
        char reason[96];
        snprintf(reason, sizeof reason, "cannot open a socket: %s", strerror(error));
        if (upstream_error_is_local(error)) {
            /* ferry's own shortage says nothing about the backend: no verdict */
            log_warn("backend %s/%s check skipped: %s", p->backend->pool, p->backend->name,
                     reason);
            schedule(p, hc->interval_ms);
            return;
        }
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

struct health *health_new(struct event_base *base, struct runtime *rt)
{
    struct health *h = calloc(1, sizeof *h);
    size_t n = count_probes(rt);
    if (!h || (n && !(h->probes = calloc(n, sizeof *h->probes)))) {
        free(h);
        return NULL;
    }
    h->base = base;
    h->runtime = rt;
    runtime_ref(rt);
    for (size_t i = 0; i < rt->n_pools; i++) {
        struct rt_pool *pool = &rt->pools[i];
        if (pool->cfg->health_check.type == HEALTH_CHECK_NONE)
            continue;
        for (size_t j = 0; j < pool->n_backends; j++) {
            struct probe *p = &h->probes[h->n_probes];
            /* probes has count_probes(rt) entries, one per backend this loop visits (the
             * analyzer does not tie the two counts).
             * NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
            *p = (struct probe){ .health = h, .pool = pool, .backend = pool->backends[j] };
            p->timer = evtimer_new(base, on_timer, p);
            if (!p->timer) {
                health_free(h);
                return NULL;
            }
            h->n_probes++;
            /* Spread first probes over a few ms rather than all at once. */
            schedule(p, (unsigned)(h->n_probes % 50));
        }
    }
    return h;
}

void health_free(struct health *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_probes; i++) {
        if (h->probes[i].bev)
            bev_close(h->probes[i].bev);
        event_free(h->probes[i].timer);
    }
    free(h->probes);
    runtime_unref(h->runtime);
    free(h);
}

/* watch — one DNS entry's lookups: the queries of a lookup (A and AAAA of the name;
 * or SRV, then A and AAAA of each target), what they add up to, the last answer and
 * the timer for the next lookup. Main thread.
 *
 * A lookup is shared: the watch holds it while it runs, and each A/AAAA query until
 * evdns runs its callback, which it always does (answer, timeout, cancel, or evdns
 * freed). A watch that stops a lookup (freed, new resolvers) abandons it: the SRV
 * query is cancelled at once, the evdns requests are cancelled and their callbacks,
 * finding no watch, only count down; the last one frees the lookup. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "core/clock.h"
#include "core/log.h"
#include "discovery/internal.h"

/* One A or AAAA question of a lookup. */
struct host_query {
    struct host_query *next;        /* the lookup's list */
    struct lookup *lookup;          /* borrowed: the lookup outlives its queries */
    struct evdns_request *req;      /* evdns's; NULL once the callback ran */
    bool is_v6;
    unsigned port, weight;          /* what every address found gets */
    bool backup;
    char name[DNS_WIRE_NAME_MAX];
};

struct lookup {
    struct watch *watch;            /* borrowed; NULL once finished or abandoned */
    struct discovery *disc;         /* borrowed */
    struct evdns_base *evdns;       /* borrowed: where its queries went */
    struct srv_query *srv;          /* owned while the SRV query runs */
    struct host_query *queries;     /* owned */
    unsigned pending;               /* queries whose callback has not run yet */
    struct dns_set found;           /* owned */
    uint32_t ttl;                   /* the least TTL of the answers */
    enum dns_result failure;        /* the worst failure so far; OK: none */
    char error[256];                /* what `failure` was */
    char empty[DNS_WIRE_NAME_MAX + 32]; /* a name that had no records of a kind */
};

/* ---- a lookup's life ------------------------------------------------------------ */

static struct lookup *lookup_new(struct watch *w)
{
    struct lookup *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->watch = w;
    l->disc = w->disc;
    l->evdns = w->disc->evdns;
    l->ttl = UINT32_MAX;
    w->disc->lookups_alive++;
    return l;
}

static void lookup_free(struct lookup *l)
{
    while (l->queries) {
        struct host_query *q = l->queries;
        l->queries = q->next;
        free(q);
    }
    dns_set_clear(&l->found);
    l->disc->lookups_alive--;
    free(l);
}

/* Frees it once neither its watch nor a query needs it. */
static void lookup_release(struct lookup *l)
{
    if (!l->watch && l->pending == 0 && !l->srv)
        lookup_free(l);
}

static void fail(struct lookup *l, enum dns_result result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct lookup *l, enum dns_result result, const char *fmt, ...)
{
    if (dns_result_worse(l->failure, result) == l->failure && l->failure != DNS_RESULT_OK)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(l->error, sizeof l->error, "%s: ", dns_result_name(result));
    vsnprintf(l->error + n, sizeof l->error - (size_t)n, fmt, ap);
    va_end(ap);
    l->failure = result;
}

static void note_ttl(struct lookup *l, uint32_t ttl)
{
    if (ttl < l->ttl)
        l->ttl = ttl;
}

static void schedule(struct watch *w, unsigned delay_ms)
{
    struct timeval tv = clock_tv_from_ms(delay_ms);
    w->next_lookup_ms = clock_now_ms() + delay_ms;
    if (evtimer_add(w->timer, &tv) != 0)
        log_error("dns pool=%s name=%s: out of memory: not looked up again until the next "
                  "reload", w->pool, w->text);
}

static void log_failure(const struct watch *w, unsigned retry_ms)
{
    if (w->answer.n == 0)
        log_warn("dns lookup failed pool=%s name=%s error=\"%s\": no backends from it until it "
                 "resolves; retry_ms=%u", w->pool, w->text, w->last_error, retry_ms);
    else
        log_warn("dns lookup failed pool=%s name=%s error=\"%s\": keeping its last %zu "
                 "address(es); retry_ms=%u", w->pool, w->text, w->last_error, w->answer.n,
                 retry_ms);
}

/* A lookup that failed: the last answer stays; retry with backoff. */
static void settle_failure(struct watch *w, const struct lookup *l)
{
    struct discovery *d = w->disc;
    bool is_news = w->failures == 0 || strcmp(w->last_error, l->error) != 0;
    w->failures++;
    snprintf(w->last_error, sizeof w->last_error, "%s", l->error);
    unsigned retry_ms = dns_backoff_ms(w->failures, d->min_ttl_ms, d->max_ttl_ms,
                                       discovery_random(d));
    if (is_news)
        log_failure(w, retry_ms);
    else
        log_debug("dns lookup failed again pool=%s name=%s failures=%u error=\"%s\"", w->pool,
                  w->text, w->failures, w->last_error);
    schedule(w, retry_ms);
}

/* A lookup that answered: it becomes the answer when it differs. */
static void settle_answer(struct watch *w, struct lookup *l)
{
    struct discovery *d = w->disc;
    char change[512];
    dns_set_normalize(&l->found);
    bool is_change = w->answer.n == 0 || !dns_set_equal(&w->answer, &l->found);
    if (w->failures > 0)
        log_info("dns resolves again pool=%s name=%s after %u failed lookup(s)", w->pool,
                 w->text, w->failures);
    if (is_change) {
        dns_set_describe_change(&w->answer, &l->found, change, sizeof change);
        log_info("dns answer pool=%s name=%s addresses=%zu ttl_s=%u change=\"%s\"", w->pool,
                 w->text, l->found.n, l->ttl, change[0] ? change : "weights");
        dns_set_move(&w->answer, &l->found);
    }
    w->ttl_s = l->ttl;
    w->failures = 0;
    w->last_error[0] = '\0';
    schedule(w, dns_refresh_ms(l->ttl, d->min_ttl_ms, d->max_ttl_ms));
    if (is_change)
        discovery_changed(d);
}

/* Every query of the lookup is done. */
static void finish(struct lookup *l)
{
    struct watch *w = l->watch;
    enum dns_result result = l->failure;
    if (result == DNS_RESULT_OK && l->found.n == 0) {
        result = DNS_RESULT_NODATA;
        fail(l, result, "%s", l->empty[0] ? l->empty : "no records");
    }
    w->lookup = NULL;
    l->watch = NULL;
    w->lookups[result]++;
    if (result == DNS_RESULT_OK)
        settle_answer(w, l);
    else
        settle_failure(w, l);
    lookup_release(l);
}

/* ---- A and AAAA ----------------------------------------------------------------- */

static enum dns_result result_of(int evdns_result)
{
    switch (evdns_result) {
    case DNS_ERR_NONE: return DNS_RESULT_OK;
    case DNS_ERR_NODATA: return DNS_RESULT_NODATA;
    case DNS_ERR_NOTEXIST: return DNS_RESULT_NXDOMAIN;
    case DNS_ERR_SERVERFAILED: return DNS_RESULT_SERVFAIL;
    case DNS_ERR_TIMEOUT: return DNS_RESULT_TIMEOUT;
    default: return DNS_RESULT_ERROR;
    }
}

static void add_addresses(struct lookup *l, const struct host_query *q, int count,
                          const void *addresses)
{
    for (int i = 0; i < count; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        memset(&ss, 0, sizeof ss);
        if (q->is_v6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons((uint16_t)q->port);
            memcpy(&in6->sin6_addr, (const unsigned char *)addresses + 16 * (size_t)i, 16);
            len = sizeof *in6;
        } else {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            in->sin_family = AF_INET;
            in->sin_port = htons((uint16_t)q->port);
            memcpy(&in->sin_addr, (const unsigned char *)addresses + 4 * (size_t)i, 4);
            len = sizeof *in;
        }
        if (dns_set_add(&l->found, (const struct sockaddr *)&ss, len, q->weight, q->backup) < 0)
            fail(l, DNS_RESULT_ERROR, "out of memory");
    }
}

static void on_addresses(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    struct host_query *q = arg;
    struct lookup *l = q->lookup;
    const char *kind = q->is_v6 ? "AAAA" : "A";
    q->req = NULL;
    l->pending--;
    if (l->watch) {
        enum dns_result r = result_of(result);
        if (r == DNS_RESULT_OK && count > 0) {
            add_addresses(l, q, count, addresses);
            note_ttl(l, ttl < 0 ? 0 : (uint32_t)ttl);
        } else if (r == DNS_RESULT_OK || r == DNS_RESULT_NODATA) {
            /* No record of this kind: an answer only if the other kinds have some. */
            snprintf(l->empty, sizeof l->empty, "no %s record for %s",
                     l->watch->entry.family == FAMILY_ANY ? "A or AAAA" : kind, q->name);
        } else {
            fail(l, r, "%s %s: %s", kind, q->name, evdns_err_to_string(result));
        }
        if (l->pending == 0 && !l->srv)
            finish(l);
        return;
    }
    lookup_release(l);
}

/* Asks for the addresses of `name` of the watch's family; each gets port, weight
 * and backup. A question that cannot be asked fails the lookup. */
static void ask_addresses(struct lookup *l, const char *name, unsigned port, unsigned weight,
                          bool backup)
{
    enum cfg_family family = l->watch->entry.family;
    /* A host name may use resolv.conf's search list; SRV targets are absolute. */
    int flags = l->watch->entry.is_srv ? DNS_QUERY_NO_SEARCH : 0;
    if (!l->evdns) {
        fail(l, DNS_RESULT_ERROR, "%s: no resolver (out of memory)", name);
        return;
    }
    for (int v6 = 0; v6 <= 1; v6++) {
        if ((v6 && family == FAMILY_IPV4) || (!v6 && family == FAMILY_IPV6))
            continue;
        struct host_query *q = calloc(1, sizeof *q);
        if (!q) {
            fail(l, DNS_RESULT_ERROR, "out of memory");
            return;
        }
        *q = (struct host_query){ .next = l->queries, .lookup = l, .is_v6 = v6, .port = port,
                                  .weight = weight, .backup = backup };
        snprintf(q->name, sizeof q->name, "%s", name);
        l->queries = q;
        q->req = v6 ? evdns_base_resolve_ipv6(l->evdns, name, flags, on_addresses, q)
                    : evdns_base_resolve_ipv4(l->evdns, name, flags, on_addresses, q);
        if (q->req)
            l->pending++;
        else
            fail(l, DNS_RESULT_ERROR, "%s %s: evdns cannot ask", v6 ? "AAAA" : "A", name);
    }
}

/* ---- SRV ------------------------------------------------------------------------ */

static enum dns_result result_of_srv(const struct srv_outcome *o)
{
    if (!o->is_answered)
        return o->timed_out ? DNS_RESULT_TIMEOUT : DNS_RESULT_ERROR;
    switch (o->status) {
    case DNS_WIRE_ANSWER: return o->answer->n ? DNS_RESULT_OK : DNS_RESULT_NODATA;
    case DNS_WIRE_NXDOMAIN: return DNS_RESULT_NXDOMAIN;
    case DNS_WIRE_SERVFAIL: return DNS_RESULT_SERVFAIL;
    default: return DNS_RESULT_ERROR;
    }
}

static void ask_targets(struct lookup *l, const struct dns_srv_answer *a)
{
    unsigned max_weight = 0, min_priority = UINT16_MAX;
    for (size_t i = 0; i < a->n; i++) {
        max_weight = a->records[i].weight > max_weight ? a->records[i].weight : max_weight;
        min_priority = a->records[i].priority < min_priority ? a->records[i].priority
                                                              : min_priority;
    }
    note_ttl(l, a->ttl);
    for (size_t i = 0; i < a->n; i++) {
        const struct dns_srv_record *r = &a->records[i];
        if (r->target[0])
            ask_addresses(l, r->target, r->port, dns_srv_weight(r->weight, max_weight),
                          r->priority > min_priority);
        else
            snprintf(l->empty, sizeof l->empty, "SRV %s says the service is not there "
                     "(target \".\")", l->watch->entry.name);
    }
}

static void on_srv(void *arg, const struct srv_outcome *o)
{
    struct lookup *l = arg;
    struct watch *w = l->watch;
    enum dns_result r = result_of_srv(o);
    l->srv = NULL;
    if (r == DNS_RESULT_OK) {
        ask_targets(l, o->answer);
    } else if (r == DNS_RESULT_NODATA) {
        snprintf(l->empty, sizeof l->empty, "no SRV record for %s", w->entry.name);
    } else {
        fail(l, r, "SRV %s: %s", w->entry.name,
             o->is_answered ? dns_wire_status_name(o->status) : o->error);
    }
    if (l->pending == 0)
        finish(l);
}

/* ---- the watch ------------------------------------------------------------------ */

static void start_lookup(struct watch *w)
{
    struct lookup *l = lookup_new(w);
    char why[128];
    if (!l) {
        log_error("dns pool=%s name=%s: out of memory; retry_ms=%u", w->pool, w->text,
                  w->disc->max_ttl_ms);
        schedule(w, w->disc->max_ttl_ms);
        return;
    }
    w->lookup = l;
    if (w->entry.is_srv) {
        l->srv = srv_query_start(w->disc, w->entry.name, on_srv, l, why, sizeof why);
        if (!l->srv)
            fail(l, DNS_RESULT_ERROR, "SRV %s: %s", w->entry.name, why);
    } else {
        ask_addresses(l, w->entry.name, w->entry.port, 0, false);
    }
    if (l->pending == 0 && !l->srv)
        finish(l);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    start_lookup(arg);
}

static void abandon(struct watch *w)
{
    struct lookup *l = w->lookup;
    if (!l)
        return;
    w->lookup = NULL;
    l->watch = NULL;
    srv_query_cancel(l->srv);
    l->srv = NULL;
    for (struct host_query *q = l->queries; q; q = q->next)
        if (q->req)
            evdns_cancel_request(l->evdns, q->req);
    lookup_release(l);
}

struct watch *watch_new(struct discovery *d, const char *pool, const struct cfg_dns_backend *e)
{
    struct watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->disc = d;
    w->entry = *e;
    w->entry.each.name = NULL;
    w->pool = strdup(pool);
    w->entry.name = strdup(e->name);
    w->timer = evtimer_new(d->base, on_timer, w);
    if (!w->pool || !w->entry.name || !w->timer) {
        watch_free(w);
        return NULL;
    }
    config_dns_backend_text(e, w->text, sizeof w->text);
    start_lookup(w);
    return w;
}

void watch_free(struct watch *w)
{
    if (!w)
        return;
    abandon(w);
    if (w->timer)
        event_free(w->timer);
    dns_set_clear(&w->answer);
    free(w->entry.name);
    free(w->pool);
    free(w);
}

void watch_restart(struct watch *w)
{
    abandon(w);
    evtimer_del(w->timer);
    start_lookup(w);
}

bool watch_is_stalled(const struct watch *w)
{
    return !w->lookup && !evtimer_pending(w->timer, NULL);
}

bool watch_matches(const struct watch *w, const char *pool, const struct cfg_dns_backend *e)
{
    return w->entry.is_srv == e->is_srv && w->entry.port == e->port &&
           w->entry.family == e->family && strcmp(w->entry.name, e->name) == 0 &&
           strcmp(w->pool, pool) == 0;
}

bool watch_is_settled(const struct watch *w)
{
    for (size_t i = 0; i < DNS_RESULTS; i++)
        if (w->lookups[i])
            return true;
    return false;
}

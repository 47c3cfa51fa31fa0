/* An exchange's life and record: setting it up once per front end (or taking a spare
 * one), the access-log line and the listener's counters per request, and the end of a
 * request. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/session.h"
#include "core/sockio.h"
#include "core/worker.h"
#include "http/access.h"
#include "http/exchange_internal.h"
#include "runtime/backend.h"

/* Request targets longer than this get 414 (nginx's large_client_header_buffers). */
enum { MAX_TARGET_BYTES = 8192 };

struct http1_limits http_exchange_limits(const struct config *cfg, bool for_request)
{
    struct http1_limits lim = {
        .max_header_bytes = cfg->limits.max_header_bytes,
        .max_headers = cfg->limits.max_headers,
        .max_target_bytes = MAX_TARGET_BYTES,
        .max_body_bytes = for_request ? cfg->limits.max_body_bytes : 0,
    };
    return lim;
}

/* A new exchange for client, keeping what it owns across requests (the head buffer,
 * the upstream read event). */
static struct http_exchange blank_exchange(const struct http_exchange_ops *ops,
                                           struct worker *w, struct session *client,
                                           struct evbuffer *fwd_head, struct event *up_read)
{
    return (struct http_exchange){ .ops = ops, .worker = w, .client = client,
                                   .peer_text = client->peer_text,
                                   .up_read_size = SOCKIO_READ_MIN,
                                   .fwd_head = fwd_head, .up_read = up_read };
}

int http_exchange_init(struct http_exchange *ex, const struct http_exchange_ops *ops,
                       struct worker *w, struct session *client)
{
    *ex = blank_exchange(ops, w, client, evbuffer_new(), NULL);
    return ex->fwd_head ? 0 : -1;
}

void http_exchange_reset(struct http_exchange *ex, struct session *client)
{
    http_exchange_end(ex);
    *ex = blank_exchange(ex->ops, ex->worker, client, ex->fwd_head, ex->up_read);
}

void http_exchange_free(struct http_exchange *ex)
{
    http_exchange_end(ex);
    if (ex->up_read)
        event_free(ex->up_read);
    if (ex->fwd_head)
        evbuffer_free(ex->fwd_head);
    ex->up_read = NULL;
    ex->fwd_head = NULL;
}

/* Exchanges a worker keeps for its HTTP/1.x sessions' next requests (blank, with their
 * head buffer and read event), up to HTTP_SPARE_EXCHANGES. A worker cache
 * (worker_cache): only the worker's thread touches it. */
struct spare_exchanges {
    size_t n;
    struct http_exchange *items[HTTP_SPARE_EXCHANGES];  /* owned */
};

static void free_spare_exchanges(void *cache)
{
    struct spare_exchanges *spares = cache;
    while (spares->n > 0) {
        struct http_exchange *ex = spares->items[--spares->n];
        http_exchange_free(ex);
        free(ex);
    }
    free(spares);
}

/* The worker's spares; NULL when out of memory (no reuse then). */
static struct spare_exchanges *spares_of(struct worker *w)
{
    static const char key;      /* its address names the cache */
    return worker_cache(w, &key, sizeof(struct spare_exchanges), free_spare_exchanges);
}

struct http_exchange *http_exchange_take(const struct http_exchange_ops *ops, struct worker *w,
                                         struct session *client)
{
    struct spare_exchanges *spares = spares_of(w);
    struct http_exchange *ex;
    if (spares && spares->n > 0) {
        ex = spares->items[--spares->n];
        ex->ops = ops;
        http_exchange_reset(ex, client);
        return ex;
    }
    ex = malloc(sizeof *ex);
    if (ex && http_exchange_init(ex, ops, w, client) < 0) {
        http_exchange_free(ex);
        free(ex);
        ex = NULL;
    }
    return ex;
}

void http_exchange_give_back(struct http_exchange *ex)
{
    http_exchange_end(ex);
    struct spare_exchanges *spares = spares_of(ex->worker);
    if (spares && spares->n < HTTP_SPARE_EXCHANGES) {
        spares->items[spares->n++] = ex;
        return;
    }
    http_exchange_free(ex);
    free(ex);
}

void http_exchange_note_for_log(struct http_exchange *ex, const struct http_exchange_request *req)
{
    ex->log_method_len = 0;
    ex->log_path_len = 0;
    if (!req->method_text || !access_log_enabled())
        return;
    size_t m = req->method_len < sizeof ex->log_method ? req->method_len : sizeof ex->log_method;
    size_t p = req->target_len < sizeof ex->log_path ? req->target_len : sizeof ex->log_path;
    memcpy(ex->log_method, req->method_text, m);
    memcpy(ex->log_path, req->target, p);
    ex->log_method_len = (uint8_t)m;
    ex->log_path_len = (uint16_t)p;
}

/* Counts the request in its listener's counters (for /metrics) and writes its access
 * log line. */
void http_exchange_record(struct http_exchange *ex)
{
    if (!ex->is_started || ex->is_recorded)
        return;
    ex->is_recorded = true;
    struct listen_socket *socket = ex->listener->socket;
    if (ex->status >= 100 && ex->status <= 599)
        atomic_fetch_add_explicit(&socket->responses[ex->version][ex->status / 100 - 1], 1,
                                  memory_order_relaxed);
    atomic_fetch_add_explicit(&socket->bytes_out, ex->bytes_out, memory_order_relaxed);
    int64_t now = clock_now_ms();
    listen_socket_observe_ms(socket, now - ex->start_ms);
    if (!access_log_enabled())
        return;
    struct http_access_entry e = {
        .client = ex->peer_text,
        .listener = ex->listener->cfg->name,
        .method = ex->log_method_len ? ex->log_method : "-",
        .method_len = ex->log_method_len ? ex->log_method_len : 1,
        .path = ex->log_path_len ? ex->log_path : "-",
        .path_len = ex->log_path_len ? ex->log_path_len : 1,
        .proto = ex->log_method_len ? listen_http_version_names[ex->version] : "-",
        .status = ex->status,
        .bytes = ex->bytes_out,
        .backend = ex->n_tried ? ex->tried[ex->n_tried - 1]->name : NULL,
        .upstream_ms = ex->n_tried ? now - ex->up_start_ms : 0,
        .total_ms = now - ex->start_ms,
    };
    clock_gettime(CLOCK_REALTIME, &e.time);
    char line[4096];
    size_t n = http_access_format(line, sizeof line, &e, access_log_format());
    access_log_write(line, n);
}

void http_exchange_end(struct http_exchange *ex)
{
    if (!ex->is_started)
        return;
    /* Cut short (client gone, forced stop): 499 as nginx says when no status. */
    if (!ex->resp_started && ex->status == 0)
        ex->status = 499;
    http_exchange_record(ex);
    http_exchange_release(ex, false);
    evbuffer_drain(ex->fwd_head, evbuffer_get_length(ex->fwd_head));
    ex->is_started = false;
    ex->pool = NULL;
    runtime_unref(ex->runtime);
    ex->runtime = NULL;
    ex->listener = NULL;
}

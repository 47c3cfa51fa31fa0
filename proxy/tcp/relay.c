#include "tcp/relay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "balance/balance.h"
#include "core/bev.h"
#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/session.h"
#include "core/worker.h"
#include "http/route.h"
#include "proxyproto/send.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"
#include "sni/clienthello.h"
#include "tcp/internal.h"
#include "tls/tls.h"
#include "upstream/connect.h"

static void connect_next(struct relay *r);

static const char *const state_names[] = { "peeking", "connecting", "relaying", "splicing", "closed" };

void relay_set_state(struct relay *r, enum relay_state next)
{
    log_debug("tcp session %p %s -> %s", (void *)r, state_names[r->state], state_names[next]);
    r->state = next;
}

static struct end *other_end(struct relay *r, struct end *e)
{
    return e == &r->client ? &r->upstream : &r->client;
}

static void release_backend(struct relay *r)
{
    if (r->backend)
        rt_pool_release(r->backend);
    r->backend = NULL;
}

void relay_close(struct session *s)
{
    struct relay *r = (struct relay *)s;
    relay_set_state(r, R_CLOSED);
    relay_splice_free(r);
    release_backend(r);
    if (r->upstream.bev)
        bev_close(r->upstream.bev);
    if (r->idle_timer)
        event_free(r->idle_timer);
    session_detach(&r->base);
    free(r);
}

/* Both directions finished and flushed: nothing more can happen. */
static bool is_finished(struct relay *r)
{
    return r->client.read_eof && r->upstream.read_eof &&
           evbuffer_get_length(bufferevent_get_output(r->client.bev)) == 0 &&
           evbuffer_get_length(bufferevent_get_output(r->upstream.bev)) == 0;
}

/* `to` has everything `from` will ever send: pass the EOF on. TLS cannot half-close
 * (close_notify ends the whole connection), so there the session simply ends. */
static void propagate_eof(struct relay *r, struct end *to)
{
    if (to->write_shut || evbuffer_get_length(bufferevent_get_output(to->bev)) > 0)
        return;
    to->write_shut = true;
    if (upstream_is_tls(to->bev))
        to->read_eof = other_end(r, to)->read_eof = true;
    else
        shutdown(bufferevent_getfd(to->bev), SHUT_WR);
}

static bool buffers_empty(const struct end *e)
{
    return evbuffer_get_length(bufferevent_get_input(e->bev)) == 0 &&
           evbuffer_get_length(bufferevent_get_output(e->bev)) == 0;
}

/* Splicing takes over from the bufferevents only at a moment when they hold nothing,
 * so no byte can be reordered; half-closed relays stay where they are. */
static bool can_splice(struct relay *r)
{
    return r->state == R_RELAYING && !r->client.read_eof && !r->upstream.read_eof &&
           !upstream_is_tls(r->client.bev) && !upstream_is_tls(r->upstream.bev) &&
           buffers_empty(&r->client) && buffers_empty(&r->upstream);
}

/* Returns false when the session was closed. */
static bool check_progress(struct relay *r)
{
    if (r->client.read_eof)
        propagate_eof(r, &r->upstream);
    if (r->upstream.read_eof)
        propagate_eof(r, &r->client);
    if (is_finished(r)) {
        relay_close(&r->base);
        return false;
    }
    if (!r->splice_tried && can_splice(r)) {
        r->splice_tried = true;     /* out of pipes: the buffered relay goes on */
        relay_splice_start(r);
    }
    return true;
}

static void forward(struct relay *r, struct end *from)
{
    struct end *to = other_end(r, from);
    struct evbuffer *out = bufferevent_get_output(to->bev);
    struct evbuffer *in = bufferevent_get_input(from->bev);
    struct listen_socket *socket = r->base.listener->socket;
    atomic_fetch_add_explicit(from == &r->client ? &socket->bytes_in : &socket->bytes_out,
                              evbuffer_get_length(in), memory_order_relaxed);
    evbuffer_add_buffer(out, in);
    if (evbuffer_get_length(out) >= RELAY_HIGH_WATER) {
        if (!from->throttled) {
            from->throttled = true;
            bufferevent_disable(from->bev, EV_READ);
        }
        /* also when early bytes were throttled before `to` existed */
        bufferevent_setwatermark(to->bev, EV_WRITE, RELAY_LOW_WATER, 0);
    }
}

static struct end *end_of(struct relay *r, struct bufferevent *bev)
{
    return bev == r->client.bev ? &r->client : &r->upstream;
}

static void arm_idle_timer(struct relay *r, unsigned ms)
{
    struct timeval tv = clock_tv_from_ms(ms);
    evtimer_add(r->idle_timer, &tv);
}

/* Before the upstream is connected, client bytes wait in the client's input, up to
 * RELAY_HIGH_WATER. Reading is paused with bufferevent_disable rather than a read
 * watermark: a TLS bufferevent suspended by a watermark can leave decrypted bytes
 * inside OpenSSL that nothing reads once it resumes (libevent 2.1). */
static void hold_early_bytes(struct relay *r)
{
    if (evbuffer_get_length(bufferevent_get_input(r->client.bev)) >= RELAY_HIGH_WATER &&
        !r->client.throttled) {
        r->client.throttled = true;
        bufferevent_disable(r->client.bev, EV_READ);
    }
}

/* The route for a ClientHello's server name (or for no name): the first route whose
 * `sni` matches, else the first without one. */
static const struct rt_route *route_for_sni(const struct rt_listener *l, const char *name)
{
    for (size_t i = 0; i < l->n_routes; i++) {
        const char *pattern = l->routes[i].cfg->sni;
        if (!pattern || (name && http_route_host_matches(pattern, name, strlen(name))))
            return &l->routes[i];
    }
    return NULL;
}

/* Hash pools on "sni": the server name the client asked for (none or an empty one:
 * no key). */
static void set_sni_key(struct relay *r, const char *name)
{
    const struct cfg_pool *cfg = r->pool->cfg;
    if (cfg->balance != BALANCE_HASH || cfg->hash_key != HASH_KEY_SNI || !name || !*name)
        return;
    r->hint.has_key = true;
    r->hint.key = balance_hash(name, strlen(name));
}

/* R_PEEKING: look at the ClientHello without consuming it; the bytes are relayed to
 * the chosen backend as they are (TLS passthrough). */
static void peek_client_hello(struct relay *r)
{
    struct evbuffer *in = bufferevent_get_input(r->client.bev);
    size_t len = evbuffer_get_length(in);
    if (len > CLIENTHELLO_MAX_PEEK)
        len = CLIENTHELLO_MAX_PEEK;
    const unsigned char *buf = evbuffer_pullup(in, (ssize_t)len);
    char name[CLIENTHELLO_MAX_NAME + 1];
    int rc = clienthello_sni(buf, len, name);
    if (rc == CLIENTHELLO_INCOMPLETE) {
        /* Come back only once enough bytes for a verdict can be there: a hello
         * trickled byte by byte must not be re-parsed on every byte (O(n^2)). This is
         * a plain socket, so a read low-watermark is safe here. */
        size_t needed = clienthello_bytes_needed(buf, len);
        log_debug("tcp session %p ClientHello incomplete: %zu bytes, waiting for %zu",
                  (void *)r, len, needed);
        bufferevent_setwatermark(r->client.bev, EV_READ, needed, 0);
        return;
    }
    bufferevent_setwatermark(r->client.bev, EV_READ, 0, 0);
    const struct rt_route *route = route_for_sni(r->base.listener, rc == CLIENTHELLO_SNI ? name : NULL);
    log_debug("tcp session %p ClientHello: %s %s -> %s", (void *)r, clienthello_result_str(rc),
              name, route ? route->pool->cfg->name : "no route");
    if (!route) {
        log_warn("tcp listener=%s: no route for SNI \"%s\" (%s), closing client",
                 r->base.listener->cfg->name, name, clienthello_result_str(rc));
        relay_close(&r->base);
        return;
    }
    r->pool = route->pool;
    rt_pick_hint_source(r->pool, &r->base.addrs.peer.sa, &r->hint);
    if (rc == CLIENTHELLO_SNI)
        set_sni_key(r, name);
    relay_set_state(r, R_CONNECTING);
    hold_early_bytes(r);
    arm_idle_timer(r, r->idle_ms);
    connect_next(r);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct relay *r = arg;
    r->last_activity_ms = clock_now_ms();
    if (r->state == R_PEEKING)
        peek_client_hello(r);
    else if (r->state != R_RELAYING)
        hold_early_bytes(r);
    else
        forward(r, end_of(r, bev));
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct relay *r = arg;
    struct end *to = end_of(r, bev);
    struct end *from = other_end(r, to);
    if (from->throttled) {
        from->throttled = false;
        bufferevent_setwatermark(to->bev, EV_WRITE, 0, 0);
        if (!from->read_eof)
            bufferevent_enable(from->bev, EV_READ);
    }
    check_progress(r);
}

static void on_connected(struct relay *r)
{
    upstream_connected(r->upstream.bev);
    backend_report_success(r->backend);
    relay_set_state(r, R_RELAYING);
    forward(r, &r->client);
    bufferevent_enable(r->upstream.bev, EV_READ | EV_WRITE);
    check_progress(r);
}

static void on_connect_failed(struct relay *r, short what)
{
    struct backend *b = r->backend;
    log_warn("tcp listener=%s backend=%s/%s connect failed: %s", r->base.listener->cfg->name,
             b->pool, b->name, (what & BEV_EVENT_TIMEOUT) ? "timeout" : "refused or error");
    rt_pool_report_failure(r->pool, b);
    release_backend(r);
    bufferevent_free(r->upstream.bev);
    r->upstream.bev = NULL;
    connect_next(r);
}

static void on_upstream_event(struct bufferevent *bev, short what, void *arg)
{
    struct relay *r = arg;
    if (r->state == R_CONNECTING) {
        if (what & BEV_EVENT_CONNECTED)
            on_connected(r);
        else
            on_connect_failed(r, what);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        r->upstream.read_eof = true;
        forward(r, &r->upstream);
        check_progress(r);
        return;
    }
    relay_close(&r->base);
}

static bool is_handshaking(const struct relay *r)
{
    return r->base.listener->tls && !r->handshake_done;
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct relay *r = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* TLS handshake done: only now is the client worth a backend connection, and
         * the idle allowance replaces the handshake deadline. */
        r->handshake_done = true;
        r->last_activity_ms = clock_now_ms();
        arm_idle_timer(r, r->idle_ms);
        set_sni_key(r, SSL_get_servername(bufferevent_openssl_get_ssl(bev),
                                          TLSEXT_NAMETYPE_host_name));
        connect_next(r);
        return;
    }
    if (r->state == R_PEEKING) {
        relay_close(&r->base);     /* gone (or broken) before its ClientHello was whole */
        return;
    }
    bool handshaking = is_handshaking(r);
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !handshaking) {
        r->client.read_eof = true;
        if (r->state == R_RELAYING) {
            forward(r, &r->client);
            check_progress(r);
        }
        return;
    }
    if (handshaking)
        tls_count_handshake_failure(bufferevent_openssl_get_ssl(bev),
                                    bufferevent_get_openssl_error(bev));
    relay_close(&r->base);
}

static void connect_next(struct relay *r)
{
    unsigned attempts = r->pool->cfg->retries + 1;
    struct event_base *base = worker_base(r->base.worker);
    uint8_t header[PROXYPROTO_WRITE_MAX];
    size_t header_len = proxyproto_session_header(&r->base, r->pool->cfg->proxy_protocol, header);
    while (r->n_tried < attempts && r->n_tried < RT_MAX_ATTEMPTS) {
        struct backend *b = rt_pool_pick(r->pool, r->tried, r->n_tried, &r->hint);
        if (!b)
            break;
        r->tried[r->n_tried++] = b;
        r->upstream.bev = upstream_connect(base, r->pool, b, r->base.runtime->cfg->timeouts.connect_ms,
                                           header, header_len);
        if (!r->upstream.bev) {
            int error = errno;
            bool is_local = upstream_error_is_local(error);
            rt_pool_release(b);
            log_warn("tcp listener=%s backend=%s/%s: cannot open a connection: %s%s",
                     r->base.listener->cfg->name, b->pool, b->name, strerror(error),
                     is_local ? " (ferry's own resources: not counted against the backend)"
                              : "");
            if (is_local)
                break;  /* another backend would fare no better */
            rt_pool_report_failure(r->pool, b);
            continue;
        }
        r->backend = b;     /* rt_pool_pick reserved its slot */
        atomic_fetch_add_explicit(&b->requests, 1, memory_order_relaxed);
        bufferevent_setcb(r->upstream.bev, on_read, on_write, on_upstream_event, r);
        return;
    }
    log_warn("tcp listener=%s pool=%s: no backend reachable after %zu attempts, closing client",
             r->base.listener->cfg->name, r->pool->cfg->name, r->n_tried);
    relay_close(&r->base);
}

static void on_idle_timer(evutil_socket_t fd, short what, void *arg)
{
    struct relay *r = arg;
    if (r->state == R_PEEKING || is_handshaking(r)) {
        log_debug("tcp session %p: no %s in time, closing", (void *)r,
                  r->state == R_PEEKING ? "ClientHello" : "TLS handshake");
        if (r->state != R_PEEKING)
            tls_count_handshake_timeout();
        relay_close(&r->base);
        return;
    }
    int64_t idle = clock_now_ms() - r->last_activity_ms;
    if (idle >= (int64_t)r->idle_ms) {
        log_debug("tcp session %p idle for %lld ms: closing", (void *)r, (long long)idle);
        relay_close(&r->base);
        return;
    }
    struct timeval tv = clock_tv_from_ms(r->idle_ms - (unsigned)idle);
    evtimer_add(r->idle_timer, &tv);
}

/* Drain: a relay has no request boundary to stop at; it runs until done or drain_ms. */
static void relay_drain(struct session *s) { (void)s; }

static const struct session_ops relay_ops = { .close = relay_close, .drain = relay_drain };

/* Peek at the ClientHello first: to route by its server name, or to hash on it (a
 * listener that terminates TLS learns the name from its own handshake). */
static bool needs_sni(const struct rt_listener *l)
{
    for (size_t i = 0; i < l->n_routes; i++)
        if (l->routes[i].cfg->sni)
            return true;
    const struct cfg_pool *pool = l->routes[0].pool->cfg;
    return !l->tls && pool->balance == BALANCE_HASH && pool->hash_key == HASH_KEY_SNI;
}

/* The client: a socket bufferevent, or libevent's bufferevent_openssl on a TLS
 * listener (HTTP sessions do their own I/O: see core/sockio.h). Owns fd; NULL with fd
 * closed on failure. */
static struct bufferevent *client_bufferevent_new(struct event_base *base,
                                                  struct rt_listener *listener, int fd)
{
    SSL *ssl = listener->tls ? tls_server_ssl_new(listener->tls) : NULL;
    struct bufferevent *bev = NULL;
    if (!listener->tls)
        bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    else if (ssl)
        bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    /* A client that closes without close_notify has simply gone (see ARCHITECTURE.md). */
    if (ssl)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

int tcp_session_start(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                      int fd, const struct session_addrs *addrs)
{
    struct bufferevent *client = client_bufferevent_new(worker_base(w), listener, fd);
    struct relay *r = client ? calloc(1, sizeof *r) : NULL;
    if (r)
        r->idle_timer = evtimer_new(worker_base(w), on_idle_timer, r);
    if (!r || !r->idle_timer) {
        free(r);
        if (client)
            bufferevent_free(client);   /* closes fd */
        return -1;
    }
    r->base.ops = &relay_ops;
    session_attach(&r->base, w, rt, listener, client, addrs);
    r->base.client_fd = bufferevent_getfd(client);
    r->base.client_tls = bufferevent_openssl_get_ssl(client);
    r->client.bev = client;
    r->idle_ms = rt->cfg->timeouts.tcp_idle_ms;
    r->last_activity_ms = clock_now_ms();
    bufferevent_setcb(client, on_read, on_write, on_client_event, r);
    bufferevent_enable(client, EV_READ | EV_WRITE);
    if (needs_sni(listener)) {
        r->state = R_PEEKING;
        arm_idle_timer(r, rt->cfg->timeouts.client_header_ms);
        return 0;
    }
    r->state = R_CONNECTING;
    r->pool = listener->routes[0].pool;
    rt_pick_hint_source(r->pool, &r->base.addrs.peer.sa, &r->hint);
    if (listener->tls) {
        /* Until its handshake is done a client gets client_header_ms, not the idle
         * allowance: connections that never finish one must not hold the slots of
         * max_connections (shared with every listener) for tcp_idle_ms. */
        arm_idle_timer(r, rt->cfg->timeouts.client_header_ms);
        return 0;
    }
    arm_idle_timer(r, r->idle_ms);
    connect_next(r);
    return 0;
}

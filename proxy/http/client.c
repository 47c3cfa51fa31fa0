/* The HTTP session's client connection: a socket, two evbuffers and ferry's own
 * events, with TLS run by ferry over the socket on TLS listeners (core/sockio.h,
 * proxy/ARCHITECTURE.md). The read event reads (and drives the handshake); the pump
 * writes at the end of each round; the write event is armed only while the socket is
 * full or OpenSSL waits to write. */
#include <stdatomic.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/sockio.h"
#include "core/worker.h"
#include "http/internal.h"
#include "tls/tls.h"

static void client_set_reading(struct http_session *s, bool want)
{
    http_set_reading(NULL, s->client_read, &s->client_reading, want);
}

void http_client_set_reading(struct http_session *s, bool want)
{
    client_set_reading(s, want);
    /* Records OpenSSL read ahead but has not returned raise no epoll event. */
    if (s->tls && s->client_reading && sockio_tls_holds_input(s->tls))
        event_active(s->client_read, EV_READ, 1);
}

/* ---- writing ------------------------------------------------------------------------ */

static void on_client_writable(evutil_socket_t fd, short what, void *arg);

/* Arms the one-shot write event, made on first use: most connections never fill
 * their socket, and an idle one should not carry it. False: out of memory. */
static bool arm_client_write(struct http_session *s)
{
    if (!s->client_write)
        s->client_write = event_new(worker_base(s->base.worker), s->client_fd, EV_WRITE,
                                    on_client_writable, s);
    return s->client_write && event_add(s->client_write, NULL) == 0;
}

static bool client_write_armed(const struct http_session *s)
{
    return s->client_write && event_pending(s->client_write, EV_WRITE, NULL);
}

bool http_client_write(struct http_session *s, bool *failed)
{
    if ((s->tls && !s->handshake_done) || evbuffer_get_length(s->client_out) == 0 ||
        client_write_armed(s))
        return false;
    size_t written;
    enum sockio_result result = s->tls ? sockio_write_tls(s->tls, s->client_out, &written)
                                       : sockio_write(s->client_fd, s->client_out, &written);
    if (result == SOCKIO_AGAIN && !arm_client_write(s))
        result = SOCKIO_ERROR;
    if (result == SOCKIO_ERROR) {
        ERR_clear_error();
        *failed = true;
        return true;
    }
    return written > 0;
}

/* ---- reading -------------------------------------------------------------------------- */

/* OpenSSL must write before it can read on (handshake or a post-handshake message):
 * wait for the socket to take it. Reading pauses meanwhile; else input still arriving
 * would wake us in a loop that cannot progress. The pump turns reading back on. */
static void wait_until_writable(struct http_session *s)
{
    s->tls_wants_write = true;
    client_set_reading(s, false);
    if (!arm_client_write(s)) {
        s->client_error = true;
        http_kick(s);
    }
}

/* Records what a read found; false when there was nothing after all (or OpenSSL must
 * write first). */
static bool note_read(struct http_session *s, enum sockio_result result, bool *eof, bool *error)
{
    switch (result) {
    case SOCKIO_AGAIN:
        return false;
    case SOCKIO_WANTS_WRITE:
        wait_until_writable(s);
        return false;
    case SOCKIO_DATA:
        break;
    case SOCKIO_EOF:
        *eof = true;
        break;
    case SOCKIO_ERROR:
        *eof = *error = true;
        break;
    }
    return true;
}

/* Runs the server side of the TLS handshake on. True once it is complete (the first
 * request may already be buffered: read on); false while it waits for the socket,
 * or after it failed (counted, and the session closes). */
static bool client_handshake(struct http_session *s)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(s->tls);
    if (rc == 1) {
        s->handshake_done = true;
        /* the handshake's deadline (client_header_ms) gives way to the idle one */
        http_arm_timer(s, http_cfg(s)->timeouts.client_idle_ms, HTTP_TIMER_FIXED);
        return true;
    }
    switch (SSL_get_error(s->tls, rc)) {
    case SSL_ERROR_WANT_READ:   /* the read event is on: nothing can stop it yet */
        return false;
    case SSL_ERROR_WANT_WRITE:
        wait_until_writable(s);
        return false;
    default: {
        enum tls_failure_reason why = tls_count_handshake_failure(s->tls, ERR_peek_last_error());
        log_debug("http listener=%s client=%s: TLS handshake failed: %s",
                  s->base.listener->cfg->name, s->base.peer_text, tls_failure_reason_name(why));
        ERR_clear_error();
        s->client_error = true;
        http_kick(s);
        return false;
    }
    }
}

/* Readable: read it ourselves, plain (one readv, no FIONREAD probe) or through the
 * SSL (read-ahead: one read(2) per record or more). */
static void on_client_readable(evutil_socket_t fd, short what, void *arg)
{
    struct http_session *s = arg;
    if (s->tls && !s->handshake_done && !client_handshake(s))
        return;
    size_t got, max = s->client_read_size;
    enum sockio_result result = s->tls ? sockio_read_tls(s->tls, s->client_in, max, &got)
                                       : sockio_read(s->client_fd, s->client_in, max, &got);
    s->client_read_size = sockio_next_read_size(max, got);
    if (got > 0)    /* also when OpenSSL then wants to write: the bytes are in */
        atomic_fetch_add_explicit(&s->base.listener->socket->bytes_in, got, memory_order_relaxed);
    bool eof = false, error = false;
    if (!note_read(s, result, &eof, &error))
        return;
    if (s->timer_rule == HTTP_TIMER_IDLE)
        s->activity_ms = clock_now_ms();
    if (error && s->tls)
        ERR_clear_error();
    s->client_eof |= eof;
    s->client_error |= error;
    http_kick(s);
}

/* The socket took what was waiting: the rest of the output, or what OpenSSL had to
 * write before it could read on. */
static void on_client_writable(evutil_socket_t fd, short what, void *arg)
{
    struct http_session *s = arg;
    s->activity_ms = clock_now_ms();
    if (s->tls_wants_write) {
        s->tls_wants_write = false;
        on_client_readable(fd, EV_READ, s);
    }
    http_kick(s);
}

/* ---- opening and closing ---------------------------------------------------------- */

int http_client_open(struct http_session *s, struct event_base *base,
                     struct rt_listener *listener, int fd)
{
    s->client_in = evbuffer_new();
    s->client_out = evbuffer_new();
    s->client_read = event_new(base, fd, EV_READ | EV_PERSIST, on_client_readable, s);
    if (!s->client_in || !s->client_out || !s->client_read)
        return -1;
    if (listener->tls && !(s->tls = tls_server_ssl_for_socket(listener->tls, fd)))
        return -1;
    s->client_fd = fd;
    s->client_read_size = SOCKIO_READ_MIN;
    client_set_reading(s, true);
    return 0;
}

void http_client_stop(struct http_session *s)
{
    client_set_reading(s, false);
    if (s->client_write)
        event_del(s->client_write);
}

void http_client_close(struct http_session *s)
{
    tls_close_notify(s->tls);       /* while the socket is still open */
    if (s->client_in)
        evbuffer_free(s->client_in);
    if (s->client_out)
        evbuffer_free(s->client_out);
    if (s->client_read)
        event_free(s->client_read);
    if (s->client_write)
        event_free(s->client_write);
    SSL_free(s->tls);
    if (s->client_fd >= 0)
        close(s->client_fd);
}

/* After 101 Switching Protocols: the session relays raw bytes both ways, like the
 * tcp relay (same back-pressure through update_flow, half-close propagation, idle
 * timeout timeouts.tcp_idle_ms). The exchange logs the request when the tunnel opens and
 * releases the upstream connection when the session ends. */
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "core/log.h"
#include "http/internal.h"
#include "upstream/connect.h"

void http_tunnel_begin(struct http_session *s)
{
    http_set_state(s, HS_TUNNEL);
    s->client_shut = s->up_shut = false;
    http_arm_timer(s, http_cfg(s)->timeouts.tcp_idle_ms, HTTP_TIMER_IDLE);
}

/* A side's output will get nothing more from the other side: pass the EOF on once it
 * is flushed. TLS cannot half-close (close_notify ends the connection), so there the
 * tunnel ends as a whole. */
static void propagate_eof(struct http_session *s, struct evbuffer *out, int fd, bool is_tls,
                          bool *shut)
{
    if (*shut || evbuffer_get_length(out) > 0)
        return;
    *shut = true;
    if (is_tls)
        s->client_eof = s->ex->up_eof = true;
    else
        shutdown(fd, SHUT_WR);
}

bool http_tunnel_step(struct http_session *s)
{
    if (s->ex->up_error || s->ex->up_write_failed) {     /* no answer to wait for here */
        http_close(s);
        return true;
    }
    struct evbuffer *up_in = bufferevent_get_input(s->ex->up), *up_out = bufferevent_get_output(s->ex->up);
    size_t moved = evbuffer_get_length(s->client_in) + evbuffer_get_length(up_in);
    evbuffer_add_buffer(up_out, s->client_in);
    evbuffer_add_buffer(s->client_out, up_in);
    if (s->client_eof)
        propagate_eof(s, up_out, bufferevent_getfd(s->ex->up), upstream_is_tls(s->ex->up), &s->up_shut);
    if (s->ex->up_eof)
        propagate_eof(s, s->client_out, s->client_fd, s->tls != NULL, &s->client_shut);
    if (s->client_eof && s->ex->up_eof && evbuffer_get_length(s->client_out) == 0 &&
        evbuffer_get_length(up_out) == 0) {
        log_debug("http session %p: tunnel finished", (void *)s);
        http_close(s);
        return true;
    }
    return moved > 0;
}

/* After 101 Switching Protocols: the session relays raw bytes both ways, like the
 * tcp relay (same back-pressure through update_flow, half-close propagation, idle
 * timeout timeouts.tcp_idle_ms). The request is logged when the tunnel opens. */
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "core/log.h"
#include "http/internal.h"
#include "upstream/connect.h"

void http_tunnel_begin(struct http_session *s)
{
    http_set_state(s, HS_TUNNEL);
    http_record_request(s);
    s->req_dispatched = false;
    s->client_shut = s->up_shut = false;
    http_arm_timer(s, http_cfg(s)->timeouts.tcp_idle_ms, true);
}

/* `to` will get nothing more from the other side: pass the EOF on once its output is
 * flushed. TLS cannot half-close (close_notify ends the connection), so there the
 * tunnel ends as a whole. */
static void propagate_eof(struct http_session *s, struct bufferevent *to, bool to_is_tls,
                          bool *shut)
{
    if (*shut || evbuffer_get_length(bufferevent_get_output(to)) > 0)
        return;
    *shut = true;
    if (to_is_tls)
        s->client_eof = s->up_eof = true;
    else
        shutdown(bufferevent_getfd(to), SHUT_WR);
}

bool http_tunnel_step(struct http_session *s)
{
    struct bufferevent *client = s->base.client, *up = s->up;
    if (s->up_error) {
        http_close(s);
        return true;
    }
    struct evbuffer *c_in = bufferevent_get_input(client), *u_in = bufferevent_get_input(up);
    size_t moved = evbuffer_get_length(c_in) + evbuffer_get_length(u_in);
    evbuffer_add_buffer(bufferevent_get_output(up), c_in);
    evbuffer_add_buffer(bufferevent_get_output(client), u_in);
    if (s->client_eof)
        propagate_eof(s, up, upstream_is_tls(up), &s->up_shut);
    if (s->up_eof)
        propagate_eof(s, client, s->tls != NULL, &s->client_shut);
    if (s->client_eof && s->up_eof &&
        evbuffer_get_length(bufferevent_get_output(client)) == 0 &&
        evbuffer_get_length(bufferevent_get_output(up)) == 0) {
        log_debug("http session %p: tunnel finished", (void *)s);
        http_close(s);
        return true;
    }
    return moved > 0;
}

/* protocols — which session each listener starts. The one place that knows every
 * protocol, so that core (worker.c) knows none and new ones plug in here. */
#include "core/session.h"
#include "http/proxy.h"
#include "proxyproto/accept.h"
#include "tcp/relay.h"
#include "udp/udp.h"

session_start_fn *session_mode_protocol(enum listener_mode mode)
{
    switch (mode) {
    case MODE_HTTP: return http_session_start;
    case MODE_TCP: return tcp_session_start;
    case MODE_UDP: return NULL;     /* no connections: see session_datagram_protocol */
    }
    return NULL;
}

session_start_fn *session_protocol(const struct cfg_listener *l)
{
    return l->proxy_protocol ? proxyproto_session_start : session_mode_protocol(l->mode);
}

datagram_start_fn *session_datagram_protocol(enum listener_mode mode)
{
    return mode == MODE_UDP ? udp_server_start : NULL;
}

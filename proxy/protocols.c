/* protocols — which session each listener mode starts. The one place that knows
 * every protocol, so that core (worker.c) knows none and new ones plug in here. */
#include "core/session.h"
#include "http/proxy.h"
#include "tcp/relay.h"

session_start_fn *session_protocol(enum listener_mode mode)
{
    switch (mode) {
    case MODE_HTTP: return http_session_start;
    case MODE_TCP: return tcp_session_start;
    }
    return NULL;
}

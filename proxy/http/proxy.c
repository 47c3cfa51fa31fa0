#include "http/proxy.h"

#include "core/log.h"

int http_session_start(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                       struct bufferevent *client, const struct sockaddr *peer,
                       socklen_t peer_len)
{
    log_warn("http listeners are not implemented yet");
    return -1;
}

/* http proxy — an `http` listener's session: parse requests, route, balance, forward
 * with keep-alive on both sides, stream bodies, upgrade to a tunnel on 101.
 */
#ifndef FERRY_HTTP_PROXY_H
#define FERRY_HTTP_PROXY_H

#include <sys/socket.h>

struct bufferevent;
struct rt_listener;
struct runtime;
struct worker;

/* Same contract as tcp_session_start(): 0 = the session owns client, rt and the
 * connection slot; -1 = nothing taken. */
int http_session_start(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                       struct bufferevent *client, const struct sockaddr *peer,
                       socklen_t peer_len);

#endif

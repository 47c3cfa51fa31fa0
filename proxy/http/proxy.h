/* http proxy — an `http` listener's session: parse requests, route, balance, forward
 * with keep-alive on both sides, stream bodies, upgrade to a tunnel on 101.
 */
#ifndef FERRY_HTTP_PROXY_H
#define FERRY_HTTP_PROXY_H

#include <sys/socket.h>

struct rt_listener;
struct runtime;
struct session_addrs;
struct worker;

/* A session_start_fn (core/session.h) for http listeners. */
int http_session_start(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                       int fd, const struct session_addrs *addrs);

#endif

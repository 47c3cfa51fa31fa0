/* http proxy — an `http` listener's session: parse requests, route, balance, forward
 * with keep-alive on both sides, stream bodies, upgrade to a tunnel on 101.
 */
#ifndef FERRY_HTTP_PROXY_H
#define FERRY_HTTP_PROXY_H

#include <sys/socket.h>

struct rt_listener;
struct runtime;
struct worker;

/* fd: the accepted client socket (non-blocking). Like tcp_session_start(): 0 = the
 * session owns fd, rt and the connection slot; -1 = nothing taken (fd still open). */
int http_session_start(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                       int fd, const struct sockaddr *peer);

#endif

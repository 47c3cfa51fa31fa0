/* tcp relay — a `tcp` listener's session: pick a backend, connect (trying the next
 * one on failure, up to `retries`), then copy bytes both ways with back-pressure,
 * half-close propagation and an idle timeout.
 */
#ifndef FERRY_TCP_RELAY_H
#define FERRY_TCP_RELAY_H

#include <sys/socket.h>

struct bufferevent;
struct rt_listener;
struct runtime;
struct worker;

/* Takes over client (owned), rt (a reference) and the connection slot on success
 * (0). On -1 it has taken nothing and the caller undoes. */
int tcp_session_start(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                      struct bufferevent *client, const struct sockaddr *peer);

#endif

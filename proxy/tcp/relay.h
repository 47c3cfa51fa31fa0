/* tcp relay — a `tcp` listener's session: pick a backend, connect (trying the next
 * one on failure, up to `retries`), then copy bytes both ways with back-pressure,
 * half-close propagation and an idle timeout.
 */
#ifndef FERRY_TCP_RELAY_H
#define FERRY_TCP_RELAY_H

#include <sys/socket.h>

struct rt_listener;
struct runtime;
struct session_addrs;
struct worker;

/* A session_start_fn (core/session.h) for tcp listeners. */
int tcp_session_start(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                      int fd, const struct session_addrs *addrs);

#endif

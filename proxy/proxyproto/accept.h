/* proxyproto accept — listeners with `proxy_protocol: true`: read the PROXY header a
 * connection begins with, then start the listener's own session on the same socket
 * with the header's addresses (the client's, not the balancer's).
 *
 * The header is read without taking a byte of what follows: MSG_PEEK, then exactly
 * the header's length (bytes that cannot end the header are taken as they come, so a
 * trickled header never spins on a readable socket). A connection that sends no valid
 * header within timeouts.client_header_ms, or anything else first, is closed. With
 * `proxy_protocol_from`, only peers in those blocks must (and may) send one; the
 * others are served as direct clients without reading a header.
 */
#ifndef FERRY_PROXYPROTO_ACCEPT_H
#define FERRY_PROXYPROTO_ACCEPT_H

struct rt_listener;
struct runtime;
struct session_addrs;
struct worker;

/* A session_start_fn (core/session.h) for listeners that expect a PROXY header. */
int proxyproto_session_start(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                             int fd, const struct session_addrs *addrs);

#endif

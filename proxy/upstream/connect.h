/* upstream connect — open a connection to a backend: a bufferevent (TLS when the pool
 * says so) with the connect timeout armed. Shared by the tcp relay and http sessions.
 */
#ifndef FERRY_UPSTREAM_CONNECT_H
#define FERRY_UPSTREAM_CONNECT_H

#include <stdbool.h>
#include <stddef.h>

struct backend;
struct bufferevent;
struct event_base;
struct rt_pool;

/* A bufferevent connecting to b, or NULL with errno saying why (socket or TLS setup
 * failed, or connect(2) failed at once; nothing left behind). BEV_EVENT_CONNECTED, or
 * ERROR / TIMEOUT after connect_ms, follows. preamble (borrowed, copied; may be NULL)
 * goes first on the wire: a PROXY protocol header, before even the TLS handshake of a
 * TLS pool (whose connection is then a bufferevent_openssl filter over a socket
 * bufferevent, the one way libevent lets plain bytes precede the handshake). */
struct bufferevent *upstream_connect(struct event_base *base, struct rt_pool *pool,
                                     struct backend *b, unsigned connect_ms,
                                     const void *preamble, size_t preamble_len);

/* Did a failed upstream_connect() fail for want of ferry's own resources (descriptors,
 * memory, buffers, local ports) rather than because of the backend? Such a failure
 * says nothing about the backend and must not count against it. */
bool upstream_error_is_local(int error);

/* After BEV_EVENT_CONNECTED: clears the connect timeout and sets TCP_NODELAY. */
void upstream_connected(struct bufferevent *bev);

/* Is this bufferevent TLS (no TCP half-close possible)? */
bool upstream_is_tls(struct bufferevent *bev);

#endif

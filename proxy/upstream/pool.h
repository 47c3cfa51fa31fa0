/* upstream pool — a worker's idle keep-alive connections to backends.
 *
 * One pool per worker (single-threaded: only that worker's thread touches it). Idle
 * connections are kept per backend (and owner, below), of one `flavor` at a time (the
 * generation whose transport settings made them, see rt_pool.flavor: a reload that
 * changes TLS settings, turns TLS on or off, or changes the PROXY protocol version,
 * never reuses a connection made under the old ones). Flavors only grow: a newer one
 * closes the connections of the older, and a connection of an older one coming back is
 * closed. So a backend has at most one shared bucket per worker, however many reloads
 * went by. Reuse is LIFO (the warmest connection first). max_idle is enforced at the
 * end of the worker's event-loop round: a bucket that went over it then loses its
 * oldest connections, so connections released and taken again within one round (many
 * responses and new requests arriving together) are not closed and reopened.
 * Connections to a backend that drains are not kept.
 *
 * While idle a connection is watched: any byte or EOF from the backend, an error, or
 * idle_timeout_ms without use closes it at once, so a connection the backend closed
 * is never handed out again (one closed in the very last moment can still be; the
 * HTTP session retries such a request itself, see ../shared/design.md).
 *
 * A connection that began with a PROXY protocol header speaks for one client: it has
 * an `owner` (the client connection's session; 0 = shared) and is handed out to that
 * owner only, in a bucket of its own. The owner's idle connections are closed when it
 * goes (upstream_pool_close_owner), and its empty buckets are dropped at once.
 */
#ifndef FERRY_UPSTREAM_POOL_H
#define FERRY_UPSTREAM_POOL_H

#include <stddef.h>
#include <stdint.h>

struct backend;
struct bufferevent;
struct event_base;
struct upstream_pool;

/* NULL on allocation failure. */
struct upstream_pool *upstream_pool_new(struct event_base *base /* borrowed */);
/* Closes every idle connection; the event_base must still exist. */
void upstream_pool_free(struct upstream_pool *p);

/* An idle connection to b of this flavor and owner, or NULL. The caller owns it from
 * now on: its callbacks are cleared, its timeouts off, input empty. EV_READ stays
 * enabled (the caller is about to read the response; toggling it costs two syscalls). */
struct bufferevent *upstream_pool_take(struct upstream_pool *p, struct backend *b,
                                       uint64_t flavor, uintptr_t owner);

/* Hands bev (owned, connected to b, no request in flight, nothing buffered) to the
 * pool; it is closed instead when max_idle is 0 or memory is short. */
void upstream_pool_put(struct upstream_pool *p, struct backend *b, uint64_t flavor,
                       uintptr_t owner, struct bufferevent *bev, unsigned max_idle,
                       unsigned idle_timeout_ms);

/* Closes every idle connection of this owner (its client connection ended). */
void upstream_pool_close_owner(struct upstream_pool *p, uintptr_t owner);

/* Closes the idle connections to backends that drain (removed by a reload, or
 * drained by the admin API) and lets go of them. */
void upstream_pool_sweep(struct upstream_pool *p);

/* Idle connections held for b, for tests and metrics. */
size_t upstream_pool_idle(const struct upstream_pool *p, const struct backend *b);
/* Buckets the pool keeps: one per backend it has idle connections to (or had), plus
 * one per owner and backend while that owner has any (for tests). */
size_t upstream_pool_buckets(const struct upstream_pool *p);

#endif

/* worker — one thread, one event_base, the sessions it accepted.
 *
 * Workers share the stream listening sockets: each watches every one of its generation
 * (EPOLLEXCLUSIVE: a new connection wakes one worker) and accepts in batches. At the
 * connection limit a worker stops accepting until the daemon wakes it for a freed slot.
 * A datagram listener has a socket per worker instead, served by a session of its
 * protocol that the worker starts once and keeps while its generations have the socket.
 * The main thread talks to a worker only by publishing state
 * (the current generation, the drain flag) and activating the worker's wakeup event;
 * everything a worker owns is touched only by its own thread.
 */
#ifndef FERRY_WORKER_H
#define FERRY_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct daemon;
struct event_base;
struct runtime;
struct session;
struct upstream_pool;
struct worker;

/* What the daemon wants of a worker (worker_set_role). */
enum worker_role {
    WORKER_PARKED,      /* started for a reload not yet published: accepts nothing */
    WORKER_SERVING,     /* accepts on the current generation */
    WORKER_RETIRING,    /* `workers` went down: accepts nothing more; its sessions finish
                           (idle HTTP/1.x ones at their next response), the rest is closed
                           after timeouts.drain_ms; then its loop ends */
    WORKER_STOPPED,     /* close everything now and end (a reload that failed) */
};

struct worker *worker_new(struct daemon *d, int id, enum worker_role role);
/* Starts the thread: 0, or -1 with the reason in err. */
int worker_start(struct worker *w, struct err *err);
/* Waits for the thread to end; it must have been asked to stop (drain or forced
 * stop). Returns at once when it never started. */
void worker_join(struct worker *w);
/* Frees a worker whose thread has ended (worker_join) or never started. A worker that
 * is still running reaches the others (a freed connection slot wakes a waiting one),
 * so every worker is joined before any is freed. */
void worker_free(struct worker *w);

/* Thread-safe: asks the worker to look at the daemon's state again (new generation,
 * resume accepting, drain, forced stop). */
void worker_wakeup(struct worker *w);
/* Thread-safe: sets the role and wakes the worker to act on it. */
void worker_set_role(struct worker *w, enum worker_role role);
/* Thread-safe, before the role or generation change that makes it matter: the
 * worker's place among the serving ones (0..workers-1, by id), which decides the
 * sockets of a udp listener's group it reads; -1 while it serves nothing. */
void worker_set_rank(struct worker *w, int rank);

/* Thread-safe counters and state, for /status and /metrics. */
struct worker_info {
    int id;
    enum worker_role role;
    uint64_t generation;        /* the generation it accepts on; 0 when it does not accept */
    uint64_t accepted;          /* connections it accepted */
    size_t connections;         /* open now */
    bool has_exited;            /* its loop ended: worker_join will not wait */
};
struct worker_info worker_info(struct worker *w);

/* Its thread: the drain under way is soft (a handover to a new binary, or this worker
 * retiring): an HTTP/1.x session idle between requests is not closed at once, but
 * answers its next request with Connection: close, or ends at its idle timeout. */
bool worker_drains_softly(const struct worker *w);

struct event_base *worker_base(struct worker *w);
struct daemon *worker_daemon(struct worker *w);
/* The newest generation this worker has seen (borrowed; runtime_ref to keep it).
 * HTTP sessions move to it at the start of each request. */
struct runtime *worker_runtime(struct worker *w);
/* This worker's idle upstream keep-alive connections (borrowed; its thread only). */
struct upstream_pool *worker_upstream_pool(struct worker *w);

/* What a protocol keeps per worker beyond its sessions (say, spare objects for reuse),
 * so that core need not know it. Its thread only. The cache kept under key (the
 * address of something of the caller's), made zeroed (size bytes) on first use; it
 * lives until the worker ends, when free_fn(cache) runs (after its sessions, before
 * its event base) and frees it. NULL when out of memory. */
typedef void worker_cache_free_fn(void *cache);
void *worker_cache(struct worker *w, const void *key, size_t size,
                   worker_cache_free_fn *free_fn);

void worker_session_add(struct worker *w, struct session *s);
void worker_session_remove(struct worker *w, struct session *s);

#endif

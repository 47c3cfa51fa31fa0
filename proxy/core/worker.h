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

#include "core/err.h"

struct daemon;
struct event_base;
struct runtime;
struct session;
struct upstream_pool;
struct worker;

struct worker *worker_new(struct daemon *d, int id);
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

struct event_base *worker_base(struct worker *w);
struct daemon *worker_daemon(struct worker *w);
/* The newest generation this worker has seen (borrowed; runtime_ref to keep it).
 * HTTP sessions move to it at the start of each request. */
struct runtime *worker_runtime(struct worker *w);
/* This worker's idle upstream keep-alive connections (borrowed; its thread only). */
struct upstream_pool *worker_upstream_pool(struct worker *w);

void worker_session_add(struct worker *w, struct session *s);
void worker_session_remove(struct worker *w, struct session *s);

#endif

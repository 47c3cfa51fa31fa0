/* health — active checks of the current generation's backends, on the main thread.
 *
 * Each backend of a pool with a health_check gets a probe every interval_ms: a TCP
 * connect ("tcp") or a GET of `path` whose status must be in expect_status ("http"),
 * over TLS when the pool speaks TLS, bounded by timeout_ms. The rise/fall verdict sets
 * the backend's shared state (workers read it with atomics). A reload replaces the
 * checker with one for the new generation; backend state itself lives in the backend
 * table, so it carries over.
 */
#ifndef FERRY_HEALTH_H
#define FERRY_HEALTH_H

struct event_base;
struct health;
struct runtime;

/* Starts checking rt's pools (takes a reference on rt). NULL on allocation failure. */
struct health *health_new(struct event_base *base, struct runtime *rt);
/* Stops every probe and drops the reference. NULL is fine. */
void health_free(struct health *h);

#endif

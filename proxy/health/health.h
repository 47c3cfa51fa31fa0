/* health — active checks of the current generation's backends, on the main thread.
 *
 * Each backend of a pool with a health_check gets a probe interval_ms +-10% after the
 * last one began: a TCP connect ("tcp") or a GET of `path` whose status must be in
 * expect_status and whose body must hold expect_body ("http", health/response.h), over
 * TLS when the pool speaks TLS, bounded by timeout_ms. The rise/fall verdict sets the
 * backend's shared state (workers read it with atomics); a passive ejection ends with
 * the first passing probe after it (runtime/backend.h). A probe ferry cannot even
 * start for want of its own resources is skipped, not failed. A reload replaces the
 * checker with one for the new generation, which takes over every probe whose check
 * did not change (same pool, backend, check settings and TLS settings): its streak,
 * its timer and its probe in flight go on as if there had been no reload. Backend
 * state itself lives in the backend table, so it carries over too.
 */
#ifndef FERRY_HEALTH_H
#define FERRY_HEALTH_H

struct event_base;
struct health;
struct runtime;

/* Starts checking rt's pools (takes a reference on rt), taking over the unchanged
 * probes of `previous` (the checker of the generation before, or NULL), which is
 * freed in any case. NULL on allocation failure. */
struct health *health_new(struct event_base *base, struct runtime *rt, struct health *previous);
/* Stops every probe and drops the reference. NULL is fine. */
void health_free(struct health *h);

#endif

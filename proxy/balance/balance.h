/* balance — choose a backend from a pool. Pure: no I/O, no clock.
 *
 * The caller takes a snapshot of each backend (weight, health, live active count,
 * limit) into an array of struct balance_candidate and asks balance_pick() for an
 * index. A struct balancer holds the algorithm's own state (smooth-WRR current
 * weights, the least_conn tie-break cursor); it is shared by all workers of one
 * generation, so balance_pick() takes an internal lock.
 *
 * Algorithms:
 *  - BALANCE_ROUND_ROBIN: smooth weighted round-robin (nginx's algorithm): every pick
 *    adds each eligible candidate's weight to its current weight, takes the largest,
 *    and subtracts the total. Weights 5:1:1 give a a b a c a a, never a a a a a b c.
 *  - BALANCE_LEAST_CONN: smallest active/weight (compared exactly by cross-multiplying);
 *    ties broken round-robin.
 * Eligible = healthy, not excluded, and below max_connections (0 = unlimited).
 */
#ifndef FERRY_BALANCE_H
#define FERRY_BALANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

struct balance_candidate {
    unsigned weight;            /* >= 1 */
    unsigned active;            /* live connections/requests across all workers */
    unsigned max_connections;   /* 0 = unlimited */
    bool healthy;               /* false: down or draining */
    bool excluded;              /* already tried for this request (retries) */
};

struct balancer;

/* `n` candidates will be passed to every balance_pick(); NULL on allocation failure. */
struct balancer *balancer_new(enum balance_algo algo, size_t n);
void balancer_free(struct balancer *b);

/* Index of the chosen candidate, or -1 when none is eligible (all down, excluded
 * or full). `n` must equal the count given to balancer_new(). Thread-safe. */
int balance_pick(struct balancer *b, const struct balance_candidate *c, size_t n);

const char *balance_algo_name(enum balance_algo algo);

#endif

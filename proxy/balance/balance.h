/* balance — choose a backend from a pool. Pure: no I/O, no clock.
 *
 * A struct balancer is built for one list of backends (their identities, configured
 * weights, backup flags) and holds the algorithm's own state: smooth-WRR current
 * weights, the least_conn cursor, random_two's generator, hash's lookup tables. It
 * is shared by all workers of a generation, and by the next generation when a reload
 * leaves the pool's algorithm and backend list as they were (balancer_fits), so that
 * a reload does not restart the rotation. For each pick the caller takes a snapshot
 * of each backend (effective weight, health, live active count, limit) into an array
 * of struct balance_candidate, in the order the balancer was built with, and asks for
 * an index.
 *
 * Algorithms:
 *  - BALANCE_ROUND_ROBIN: smooth weighted round-robin (nginx's algorithm): every pick
 *    adds each eligible candidate's weight to its current weight, takes the largest,
 *    and subtracts the total. Weights 5:1:1 give a a b a c a a, never a a a a a b c.
 *  - BALANCE_LEAST_CONN: smallest active/weight (compared exactly by cross-multiplying);
 *    ties broken round-robin.
 *  - BALANCE_RANDOM_TWO: the power of two choices: two different candidates drawn at
 *    random with probability proportional to weight, the one with fewer active
 *    requests per unit of weight wins. Nearly least_conn's balance without its herd
 *    behaviour (every worker choosing the same least loaded backend at once).
 *  - BALANCE_HASH: consistent hashing (Maglev, see maglev.c): a request's key always
 *    maps to the same backend while the backend list stays the same; removing one of
 *    N backends moves about 1/N of the keys, weights are honoured. A key whose backend
 *    cannot take it (down, draining, full, already tried) goes to the next choice in
 *    the lookup table, and comes back when its backend does. Without a key, the pick
 *    is round-robin.
 * Eligible = healthy, not excluded, weight > 0 and below max_connections (0 =
 * unlimited). Backup backends are candidates only while no other backend is eligible.
 */
#ifndef FERRY_BALANCE_H
#define FERRY_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* A backend as the balancer is built for it (fixed for the balancer's life). */
struct balance_backend {
    const char *id;             /* borrowed during balancer_new: what hashing places
                                   (the backend's name); copied */
    unsigned weight;            /* configured, >= 1 */
    bool backup;
};

struct balance_candidate {
    unsigned weight;            /* effective weight now (balance_ramp_weight) */
    unsigned active;            /* live connections/requests across all workers */
    unsigned max_connections;   /* 0 = unlimited */
    bool healthy;               /* false: down or draining */
    bool excluded;              /* already tried for this request (retries) */
};

struct balancer;

/* A balancer for backends[0..n) with `algo`; one reference. NULL on allocation
 * failure. */
struct balancer *balancer_new(enum balance_algo algo, const struct balance_backend *backends,
                              size_t n);
void balancer_ref(struct balancer *b);
void balancer_unref(struct balancer *b);

/* Was b built for this very algorithm and backend list (same order, ids, weights and
 * backup flags)? Then a new generation may go on with it. */
bool balancer_fits(const struct balancer *b, enum balance_algo algo,
                   const struct balance_backend *backends, size_t n);

/* Index of the chosen candidate, or -1 when none is eligible (all down, excluded
 * or full). `n` must equal the count given to balancer_new(). key: the request's hash
 * key (balance_hash of its bytes) for BALANCE_HASH, NULL when the request has none
 * (ignored by the other algorithms). Thread-safe. */
int balance_pick(struct balancer *b, const struct balance_candidate *c, size_t n,
                 const uint64_t *key);

/* 64-bit hash of data (for keys, and for ids in the lookup table). */
uint64_t balance_hash(const void *data, size_t len);

/* Effective weights are configured weights times BALANCE_WEIGHT_UNIT, so that slow
 * start can ramp them in fine steps. */
enum { BALANCE_WEIGHT_UNIT = 1000 };
/* The effective weight of a backend of configured `weight` that came up up_for_ms ago
 * in a pool with slow_start_ms (0: no ramp): from 10% rising linearly to 100% at
 * slow_start_ms. */
unsigned balance_ramp_weight(unsigned weight, int64_t up_for_ms, unsigned slow_start_ms);

const char *balance_algo_name(enum balance_algo algo);

/* ---- sticky sessions (sticky.c) ----------------------------------------------------
 * The cookie names the backend that served a client by a token: 16 hex digits of a
 * hash of the pool's and the backend's names. Opaque (it shows no address), the same
 * in every generation and every ferry process, so sessions survive reloads and
 * restarts; renaming a backend moves its sessions. */
enum { BALANCE_STICKY_LEN = 16 };

uint64_t balance_sticky_token(const char *pool, const char *backend);
/* Writes the token as BALANCE_STICKY_LEN lower-case hex digits and a NUL. */
void balance_sticky_encode(uint64_t token, char out[BALANCE_STICKY_LEN + 1]);
/* Reads a cookie value; false unless it is exactly BALANCE_STICKY_LEN hex digits. */
bool balance_sticky_decode(const char *value, size_t len, uint64_t *token);

#endif

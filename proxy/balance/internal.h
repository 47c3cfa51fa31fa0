/* Internal to proxy/balance: the Maglev lookup table hash balancing uses. */
#ifndef FERRY_BALANCE_INTERNAL_H
#define FERRY_BALANCE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance/balance.h"

/* Maglev's lookup table (Eisenbud et al., NSDI 2016) for the backends of one tier
 * (the backups, or the others): `size` slots, a prime of at least 100 per backend
 * (65537, 256 KiB, for any number of backends up to 655), each holding a backend's
 * index in the balancer's list. Each backend fills slots in the order of its own
 * permutation of the table, derived from a hash of its id, taking turns with the
 * others in proportion to its weight; the table's content therefore depends only on
 * the set of (id, weight) pairs, not on the order of the list, and a backend added or
 * removed changes only about 1/N of the slots. Built once, read without locks. */
struct maglev {
    uint32_t *slots;            /* owned; NULL when the tier is empty */
    uint32_t size;
};

/* Builds the table of backends[i] whose backup flag is `backup`. 0, or -1 when out
 * of memory. An empty tier gives an empty table (0). */
int maglev_build(struct maglev *m, const struct balance_backend *backends, size_t n, bool backup);
void maglev_free(struct maglev *m);

/* The backend for key: the first usable one from the key's slot on. -1 when none of
 * the table is usable (usable[i] for each backend index i). */
int maglev_lookup(const struct maglev *m, uint64_t key, const bool *usable);

#endif

/* Maglev consistent hashing: the lookup table (balance/internal.h). */
#include <stdlib.h>
#include <string.h>

#include "balance/internal.h"

enum { SLOTS_PER_BACKEND = 100 };
#define EMPTY UINT32_MAX

/* The table's size must not follow the number of backends closely: a backend added
 * or removed would change it, and with it every key's slot. So it is 65537 (Envoy's
 * default too) up to 655 backends, and grows in steps of about twice beyond that. */
static const uint32_t PRIMES[] = { 65537, 131071, 262139, 524287, 1048573 };

struct member {
    uint32_t index;             /* in the balancer's list */
    uint64_t hash;              /* of its id: orders the members and places them */
    uint32_t offset, skip, next;
    uint64_t credit;            /* weight earned and not yet spent on a slot */
    unsigned weight;
    const char *id;             /* borrowed */
};

static int by_hash(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return strcmp(x->id, y->id);
}

static uint32_t table_size(size_t members)
{
    size_t want = members * SLOTS_PER_BACKEND;
    size_t n = sizeof PRIMES / sizeof PRIMES[0];
    for (size_t i = 0; i < n; i++)
        if (PRIMES[i] >= want)
            return PRIMES[i];
    return PRIMES[n - 1];
}

/* The next slot of m's permutation that is still empty (a full cycle: size is prime
 * and skip < size, so every slot comes up within size steps). */
static uint32_t next_free(const struct maglev *t, struct member *m)
{
    for (;;) {
        uint32_t slot = (uint32_t)(((uint64_t)m->offset + (uint64_t)m->next * m->skip) % t->size);
        m->next++;
        if (t->slots[slot] == EMPTY)
            return slot;
    }
}

/* Rounds of turns: in each, a backend earns its weight and takes one slot for every
 * max_weight it has earned, so the heaviest takes one slot per round and the others
 * in proportion. */
static void populate(struct maglev *t, struct member *members, size_t count)
{
    unsigned max_weight = 1;
    for (size_t i = 0; i < count; i++)
        if (members[i].weight > max_weight)
            max_weight = members[i].weight;
    uint32_t filled = 0;
    while (filled < t->size) {
        for (size_t i = 0; i < count && filled < t->size; i++) {
            struct member *m = &members[i];
            m->credit += m->weight;
            while (m->credit >= max_weight && filled < t->size) {
                m->credit -= max_weight;
                t->slots[next_free(t, m)] = m->index;
                filled++;
            }
        }
    }
}

int maglev_build(struct maglev *t, const struct balance_backend *backends, size_t n, bool backup)
{
    size_t count = 0;
    t->slots = NULL;
    t->size = 0;
    for (size_t i = 0; i < n; i++)
        count += backends[i].backup == backup;
    if (count == 0)
        return 0;
    struct member *members = calloc(count, sizeof *members);
    t->size = table_size(count);
    t->slots = malloc(t->size * sizeof *t->slots);
    if (!members || !t->slots) {
        free(members);
        maglev_free(t);
        return -1;
    }
    count = 0;
    for (size_t i = 0; i < n; i++) {
        if (backends[i].backup != backup)
            continue;
        struct member *m = &members[count++];
        size_t len = strlen(backends[i].id);
        m->index = (uint32_t)i;
        m->id = backends[i].id;
        m->weight = backends[i].weight ? backends[i].weight : 1;
        m->hash = balance_hash(backends[i].id, len);
        /* Two independent numbers from one id: the hash of the id and of its hash. */
        uint64_t second = balance_hash(&m->hash, sizeof m->hash);
        m->offset = (uint32_t)(m->hash % t->size);
        m->skip = (uint32_t)(second % (t->size - 1)) + 1;
    }
    qsort(members, count, sizeof *members, by_hash);
    memset(t->slots, 0xff, t->size * sizeof *t->slots);
    populate(t, members, count);
    free(members);
    return 0;
}

void maglev_free(struct maglev *t)
{
    free(t->slots);
    t->slots = NULL;
    t->size = 0;
}

int maglev_lookup(const struct maglev *t, uint64_t key, const bool *usable)
{
    if (t->size == 0)
        return -1;
    uint32_t start = (uint32_t)(key % t->size);
    for (uint32_t k = 0; k < t->size; k++) {
        uint32_t index = t->slots[(start + k) % t->size];
        if (usable[index])
            return (int)index;
    }
    return -1;
}

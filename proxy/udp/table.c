/* The flow table of a udp server: flows by client address, chained in a power-of-two
 * array of buckets that doubles when flows outnumber buckets (bounded by max_flows).
 * The hash is keyed by a random seed per server, so clients cannot aim their source
 * ports at one chain. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "udp/internal.h"

enum { FIRST_BUCKETS = 256 };

int udp_table_init(struct udp_server *srv)
{
    srv->buckets = calloc(FIRST_BUCKETS, sizeof(struct udp_flow *));
    if (!srv->buckets)
        return -1;
    srv->n_buckets = FIRST_BUCKETS;
    if (getrandom(&srv->seed, sizeof srv->seed, GRND_NONBLOCK) != sizeof srv->seed)
        srv->seed = (uint64_t)(uintptr_t)srv ^ 0x9e3779b97f4a7c15u;
    return 0;
}

void udp_table_free(struct udp_server *srv)
{
    free(srv->buckets);
    srv->buckets = NULL;
    srv->n_buckets = 0;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdu;
    return h ^ (h >> 33);
}

uint64_t udp_table_hash(const struct udp_server *srv, const union session_sockaddr *addr)
{
    uint64_t h = srv->seed;
    if (addr->sa.sa_family == AF_INET)
        return mix(mix(h, addr->in.sin_addr.s_addr), addr->in.sin_port);
    uint64_t words[2];
    memcpy(words, &addr->in6.sin6_addr, sizeof words);
    return mix(mix(mix(h, words[0]), words[1]), addr->in6.sin6_port);
}

bool udp_same_client(const union session_sockaddr *a, const union session_sockaddr *b)
{
    if (a->sa.sa_family != b->sa.sa_family)
        return false;
    if (a->sa.sa_family == AF_INET)
        return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
    return a->in6.sin6_port == b->in6.sin6_port &&
           memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof a->in6.sin6_addr) == 0;
}

struct udp_flow *udp_table_find(const struct udp_server *srv, const union session_sockaddr *addr,
                                uint64_t hash)
{
    for (struct udp_flow *f = srv->buckets[hash & (srv->n_buckets - 1)]; f; f = f->hash_next)
        if (f->hash == hash && udp_same_client(&f->client, addr))
            return f;
    return NULL;
}

/* Doubles the buckets; on allocation failure the chains just grow longer. */
static void grow(struct udp_server *srv)
{
    size_t n = srv->n_buckets * 2;
    struct udp_flow **buckets = calloc(n, sizeof(struct udp_flow *));
    if (!buckets)
        return;
    for (size_t i = 0; i < srv->n_buckets; i++) {
        for (struct udp_flow *f = srv->buckets[i], *next; f; f = next) {
            next = f->hash_next;
            f->hash_next = buckets[f->hash & (n - 1)];
            buckets[f->hash & (n - 1)] = f;
        }
    }
    free(srv->buckets);
    srv->buckets = buckets;
    srv->n_buckets = n;
}

void udp_table_insert(struct udp_server *srv, struct udp_flow *f)
{
    if (srv->n_flows >= srv->n_buckets)
        grow(srv);
    struct udp_flow **head = &srv->buckets[f->hash & (srv->n_buckets - 1)];
    f->hash_next = *head;
    *head = f;
    srv->n_flows++;
}

void udp_table_remove(struct udp_server *srv, struct udp_flow *f)
{
    for (struct udp_flow **p = &srv->buckets[f->hash & (srv->n_buckets - 1)]; *p; p = &(*p)->hash_next) {
        if (*p == f) {
            *p = f->hash_next;
            f->hash_next = NULL;
            srv->n_flows--;
            return;
        }
    }
}

/* addrset — what one DNS entry resolved to, as a set (pure).
 *
 * An entry's answer is a set of socket addresses (port included), each with the
 * weight and backup flag its backend gets. Sets are kept sorted (family, address,
 * port) without duplicates, so that two answers listing the same addresses in another
 * order are equal, and the backends built from them come in the same order (the
 * pool's balancer carries over when nothing changed).
 */
#ifndef FERRY_DISCOVERY_ADDRSET_H
#define FERRY_DISCOVERY_ADDRSET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* "[ffff:...:ffff]:65535" and a NUL. */
#define DNS_ADDR_TEXT_MAX 64

struct dns_found {
    struct sockaddr_storage sa; /* AF_INET or AF_INET6, with the port */
    socklen_t len;
    unsigned weight;            /* SRV: from the record; host names: 0 (the entry's) */
    bool backup;                /* SRV: a priority after the lowest one */
};

struct dns_set {
    struct dns_found *items;    /* owned */
    size_t n;
    size_t cap;
};

/* Adds an address (a copy of sa, len bytes); 0, or -1 when out of memory. */
int dns_set_add(struct dns_set *s, const struct sockaddr *sa, socklen_t len, unsigned weight,
                bool backup);
/* Sorts and merges repeated addresses (SRV records naming one target twice, or two
 * targets with one address): the one kept is not backup if either was not, and has
 * the larger weight among those, so the result does not depend on answer order. */
void dns_set_normalize(struct dns_set *s);
/* Same addresses, weights and backup flags (both normalized)? */
bool dns_set_equal(const struct dns_set *a, const struct dns_set *b);
/* Moves from's items into to (whose old items are freed); from is left empty. */
void dns_set_move(struct dns_set *to, struct dns_set *from);
void dns_set_clear(struct dns_set *s);

/* How two normalized sets differ, by address (weights aside), as text for the log:
 * "-127.0.0.2:80 +127.0.0.3:80" ("" for none; truncated to fit). */
void dns_set_describe_change(const struct dns_set *old, const struct dns_set *now, char *buf,
                             size_t size);

/* "127.0.0.1:80" or "[::1]:80". */
void dns_found_text(const struct dns_found *f, char *buf, size_t size);
/* Orders two addresses as the set does (<0, 0, >0). */
int dns_found_cmp(const struct dns_found *a, const struct dns_found *b);

#endif

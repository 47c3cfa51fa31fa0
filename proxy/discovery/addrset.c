#include "discovery/addrset.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dns_set_add(struct dns_set *s, const struct sockaddr *sa, socklen_t len, unsigned weight,
                bool backup)
{
    if (len > sizeof s->items[0].sa)
        return -1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        struct dns_found *grown = realloc(s->items, cap * sizeof *grown);
        if (!grown)
            return -1;
        s->items = grown;
        s->cap = cap;
    }
    struct dns_found *f = &s->items[s->n++];
    memset(f, 0, sizeof *f);
    memcpy(&f->sa, sa, len);
    f->len = len;
    f->weight = weight;
    f->backup = backup;
    return 0;
}

static const void *address_bytes(const struct dns_found *f, size_t *len, unsigned *port)
{
    if (f->sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&f->sa;
        *len = sizeof in->sin_addr;
        *port = ntohs(in->sin_port);
        return &in->sin_addr;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&f->sa;
    *len = sizeof in6->sin6_addr;
    *port = ntohs(in6->sin6_port);
    return &in6->sin6_addr;
}

int dns_found_cmp(const struct dns_found *a, const struct dns_found *b)
{
    if (a->sa.ss_family != b->sa.ss_family)
        return a->sa.ss_family < b->sa.ss_family ? -1 : 1;
    size_t len_a, len_b;
    unsigned port_a, port_b;
    const void *x = address_bytes(a, &len_a, &port_a);
    const void *y = address_bytes(b, &len_b, &port_b);
    int c = memcmp(x, y, len_a);
    if (c != 0)
        return c;
    return port_a < port_b ? -1 : port_a > port_b;
}

/* Insertion sort: answers hold a few dozen addresses at most. */
static void sort(struct dns_set *s)
{
    for (size_t i = 1; i < s->n; i++) {
        struct dns_found f = s->items[i];
        size_t j = i;
        for (; j > 0 && dns_found_cmp(&s->items[j - 1], &f) > 0; j--)
            s->items[j] = s->items[j - 1];
        s->items[j] = f;
    }
}

/* Of two records for one address, the one that serves (not backup), then the heavier:
 * the same whatever order the answers came in. */
static bool outranks(const struct dns_found *a, const struct dns_found *b)
{
    if (a->backup != b->backup)
        return !a->backup;
    return a->weight > b->weight;
}

void dns_set_normalize(struct dns_set *s)
{
    sort(s);
    size_t kept = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (kept > 0 && dns_found_cmp(&s->items[kept - 1], &s->items[i]) == 0) {
            if (outranks(&s->items[i], &s->items[kept - 1]))
                s->items[kept - 1] = s->items[i];
        } else {
            s->items[kept++] = s->items[i];
        }
    }
    s->n = kept;
}

bool dns_set_equal(const struct dns_set *a, const struct dns_set *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (dns_found_cmp(&a->items[i], &b->items[i]) != 0 ||
            a->items[i].weight != b->items[i].weight || a->items[i].backup != b->items[i].backup)
            return false;
    return true;
}

void dns_set_move(struct dns_set *to, struct dns_set *from)
{
    free(to->items);
    *to = *from;
    *from = (struct dns_set){ 0 };
}

void dns_set_clear(struct dns_set *s)
{
    free(s->items);
    *s = (struct dns_set){ 0 };
}

/* Walks both sorted sets in step: fn sees each address with where it is. */
static void merge_walk(const struct dns_set *old, const struct dns_set *now,
                       void (*fn)(const struct dns_found *f, int where, void *arg), void *arg)
{
    size_t i = 0, j = 0;
    while (i < old->n || j < now->n) {
        int c = i == old->n ? 1 : j == now->n ? -1 : dns_found_cmp(&old->items[i], &now->items[j]);
        if (c < 0)
            fn(&old->items[i++], -1, arg);
        else if (c > 0)
            fn(&now->items[j++], 1, arg);
        else {
            fn(&now->items[j++], 0, arg);
            i++;
        }
    }
}

struct text {
    char *buf;
    size_t size, used;
};

static void describe(const struct dns_found *f, int where, void *arg)
{
    struct text *t = arg;
    char addr[DNS_ADDR_TEXT_MAX];
    if (where == 0 || t->used >= t->size)
        return;
    dns_found_text(f, addr, sizeof addr);
    int n = snprintf(t->buf + t->used, t->size - t->used, "%s%c%s", t->used ? " " : "",
                     where > 0 ? '+' : '-', addr);
    t->used = n < 0 ? t->size : t->used + (size_t)n;
}

void dns_set_describe_change(const struct dns_set *old, const struct dns_set *now, char *buf,
                             size_t size)
{
    struct text t = { buf, size, 0 };
    if (size)
        buf[0] = '\0';
    merge_walk(old, now, describe, &t);
}

void dns_found_text(const struct dns_found *f, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    size_t len;
    unsigned port;
    const void *bytes = address_bytes(f, &len, &port);
    if (!inet_ntop(f->sa.ss_family, bytes, host, sizeof host))
        snprintf(host, sizeof host, "?");
    snprintf(buf, size, f->sa.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

/* admin render_dns — what /status and /metrics show of backends found by DNS: each
 * pool's DNS entries (name, addresses, TTL, last error, lookups by result) and the
 * ferry_dns_* metrics. */
#ifndef FERRY_ADMIN_RENDER_DNS_H
#define FERRY_ADMIN_RENDER_DNS_H

#include <jansson.h>
#include <stdio.h>

struct discovery;

/* The "dns" array of pool `pool`: one object per DNS entry, in config order; NULL
 * when the pool has none. */
json_t *render_dns_status(const struct discovery *d, const char *pool);
/* Writes the ferry_dns_* metric families to out. */
void render_dns_metrics(const struct discovery *d, FILE *out);

#endif

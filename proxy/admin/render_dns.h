/* admin render_dns — what /status shows of backends found by DNS: each pool's DNS
 * entries (name, addresses, TTL, last error, lookups by result). render.c writes the
 * ferry_dns_* metrics. */
#ifndef FERRY_ADMIN_RENDER_DNS_H
#define FERRY_ADMIN_RENDER_DNS_H

#include <jansson.h>

struct discovery;

/* The "dns" array of pool `pool`: one object per DNS entry, in config order; NULL
 * when the pool has none. */
json_t *render_dns_status(const struct discovery *d, const char *pool);

#endif

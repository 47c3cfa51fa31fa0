/* l4 — the keys of L4 beyond TCP: udp listeners (`udp`), the PROXY protocol received
 * by listeners (`proxy_protocol`, `proxy_protocol_from`) and sent to pools
 * (`pools.NAME.proxy_protocol`). Called by listeners.c and pools.c once a listener's
 * mode, tls and pool are known. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

static const char *const UDP_KEYS[] = { "idle_ms", "responses", "max_flows", NULL };
/* Same order as enum proxy_protocol_version, from V1 on. */
static const char *const PROXY_VERSION_NAMES[] = { "v1", "v2", NULL };
static const char *const MODE_NAMES[] = { "http", "tcp", "udp", NULL };

const char *config_mode_name(enum listener_mode mode)
{
    return mode <= MODE_UDP ? MODE_NAMES[mode] : "?";
}

/* ---- CIDR blocks ---------------------------------------------------------------- */

/* "a.b.c.d[/n]" or "v6[/n]"; 0, or -1 with the reason in why. */
static int parse_cidr(const char *text, struct cfg_cidr *out, char *why, size_t why_size)
{
    char host[64];
    const char *slash = strchr(text, '/');
    size_t host_len = slash ? (size_t)(slash - text) : strlen(text);
    if (host_len == 0 || host_len >= sizeof host) {
        snprintf(why, why_size, "expected an address or address/prefix");
        return -1;
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    memset(out, 0, sizeof *out);
    out->family = strchr(host, ':') ? AF_INET6 : AF_INET;
    unsigned max = out->family == AF_INET ? 32 : 128;
    if (inet_pton(out->family, host, out->addr) != 1) {
        snprintf(why, why_size, "\"%s\" is not a numeric IPv%c address", host,
                 out->family == AF_INET ? '4' : '6');
        return -1;
    }
    out->prefix = max;
    if (slash) {
        const char *digits = slash + 1;
        size_t n = strlen(digits);
        if (n == 0 || n > 3 || strspn(digits, "0123456789") != n || (n > 1 && digits[0] == '0')
            || (out->prefix = (unsigned)strtoul(digits, NULL, 10)) > max) {
            snprintf(why, why_size, "prefix \"/%s\" is not 0..%u", digits, max);
            return -1;
        }
    }
    for (unsigned bit = out->prefix; bit < max; bit++) {
        if (out->addr[bit / 8] & (0x80u >> (bit % 8))) {
            snprintf(why, why_size, "host bits are set after /%u (the block starts lower)",
                     out->prefix);
            return -1;
        }
    }
    return 0;
}

static bool prefix_matches(const unsigned char *block, const unsigned char *addr, unsigned bits)
{
    size_t whole = bits / 8;
    if (memcmp(block, addr, whole) != 0)
        return false;
    unsigned rest = bits % 8;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (block[whole] & mask) == (addr[whole] & mask);
}

bool config_cidr_contains(const struct cfg_cidr *block, const struct sockaddr *sa)
{
    static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        return block->family == AF_INET &&
               prefix_matches(block->addr, (const unsigned char *)&sin->sin_addr, block->prefix);
    }
    if (sa->sa_family != AF_INET6)
        return false;
    const unsigned char *a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (block->family == AF_INET6)
        return prefix_matches(block->addr, a6, block->prefix);
    return memcmp(a6, v4_mapped, sizeof v4_mapped) == 0 &&
           prefix_matches(block->addr, a6 + 12, block->prefix);
}

/* ---- listeners ------------------------------------------------------------------ */

static void parse_udp(struct walker *w, const json_t *lst, struct cfg_listener *l)
{
    l->udp = (struct cfg_udp){ .idle_ms = 30000, .responses = 0, .max_flows = 65536 };
    const json_t *o = walk_object(w, lst, "udp", false);
    if (!o)
        return;
    if (l->mode != MODE_UDP) {
        walk_error_at(w, "udp", "only allowed on udp listeners (\"mode\": \"udp\")");
        return;
    }
    walk_push(w, "udp");
    walk_check_keys(w, o, UDP_KEYS);
    walk_uint(w, o, "idle_ms", RANGE_TIMEOUT_MS, &l->udp.idle_ms);
    walk_uint(w, o, "responses", RANGE_UDP_RESPONSES, &l->udp.responses);
    walk_uint(w, o, "max_flows", RANGE_UDP_MAX_FLOWS, &l->udp.max_flows);
    walk_pop(w);
}

/* What a udp listener's pool can do: datagrams to plain addresses, checked by tcp
 * connects or not at all. */
static void check_udp_pool(struct walker *w, const struct cfg_pool *p)
{
    if (p->health_check.type == HEALTH_CHECK_HTTP)
        walk_error(w, "pool \"%s\" has an http health check; a udp listener's pool may use "
                   "\"tcp\" checks (DNS servers listen on both) or none", p->name);
    if (p->tls)
        walk_error(w, "pool \"%s\" has tls; a udp listener's pool cannot (no DTLS)", p->name);
    if (p->proxy_protocol != PROXY_PROTOCOL_OFF)
        walk_error(w, "pool \"%s\" sends the PROXY protocol, which udp listeners do not",
                   p->name);
}

static void check_udp_listener(struct walker *w, const json_t *v, const struct config *cfg,
                               const struct cfg_listener *l)
{
    if (json_object_get(v, "tls"))
        walk_error_at(w, "tls", "udp listeners cannot terminate TLS (DTLS is not supported)");
    if (json_object_get(v, "routes"))
        walk_error_at(w, "routes", "udp listeners take one \"pool\"");
    if (json_object_get(v, "proxy_protocol"))
        walk_error_at(w, "proxy_protocol", "only allowed on tcp and http listeners");
    if (l->n_routes == 1 && l->routes[0].pool < cfg->n_pools && json_object_get(v, "pool")) {
        walk_push(w, "pool");
        check_udp_pool(w, &cfg->pools[l->routes[0].pool]);
        walk_pop(w);
    }
}

static void parse_proxy_from(struct walker *w, const json_t *v, struct cfg_listener *l)
{
    const json_t *list = walk_array(w, v, "proxy_protocol_from", 1);
    if (!list)
        return;
    if (!l->proxy_protocol)
        walk_error_at(w, "proxy_protocol_from", "needs \"proxy_protocol\": true");
    l->proxy_protocol_from = walk_calloc(w, json_array_size(list), sizeof *l->proxy_protocol_from);
    if (!l->proxy_protocol_from)
        return;
    l->n_proxy_protocol_from = json_array_size(list);
    walk_push(w, "proxy_protocol_from");
    for (size_t i = 0; i < l->n_proxy_protocol_from; i++) {
        char *text = NULL;
        char why[128];
        walk_push_index(w, i);
        if (walk_value_string(w, json_array_get(list, i), &text) &&
            parse_cidr(text, &l->proxy_protocol_from[i], why, sizeof why) < 0)
            walk_error(w, "\"%s\": %s", text, why);
        free(text);
        walk_pop(w);
    }
    walk_pop(w);
}

void parse_listener_l4(struct walker *w, const json_t *v, const struct config *cfg,
                       struct cfg_listener *l)
{
    parse_udp(w, v, l);
    if (l->mode == MODE_UDP) {
        check_udp_listener(w, v, cfg, l);
        return;
    }
    walk_bool(w, v, "proxy_protocol", &l->proxy_protocol);
    parse_proxy_from(w, v, l);
}

void free_listener_l4(struct cfg_listener *l)
{
    free(l->proxy_protocol_from);
}

/* ---- pools ---------------------------------------------------------------------- */

void parse_pool_l4(struct walker *w, const json_t *pool, struct cfg_pool *p)
{
    int version;
    p->proxy_protocol = PROXY_PROTOCOL_OFF;
    if (json_is_false(json_object_get(pool, "proxy_protocol")))
        return;     /* explicitly off */
    if (walk_enum(w, pool, "proxy_protocol", PROXY_VERSION_NAMES, &version))
        p->proxy_protocol = version == 0 ? PROXY_PROTOCOL_V1 : PROXY_PROTOCOL_V2;
}

/* dns — the keys of backends found by DNS: a backend "address" that names a host,
 * "srv" and "family" (pools.c asks parse_backend_target), the top-level "resolvers"
 * and "dns", and adding what the lookups found to a pool before a generation is built.
 * Nothing here looks anything up: `ferry -t` and a start never fail for a name that
 * does not resolve (it may come later); proxy/discovery/ does the lookups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

static const char *const DNS_KEYS[] = { "min_ttl_ms", "max_ttl_ms", NULL };
/* Same order as enum cfg_family. */
static const char *const FAMILY_NAMES[] = { "any", "ipv4", "ipv6", NULL };

#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63

const char *config_family_name(enum cfg_family family)
{
    return family <= FAMILY_IPV6 ? FAMILY_NAMES[family] : "?";
}

void config_dns_backend_text(const struct cfg_dns_backend *e, char *buf, size_t size)
{
    if (e->is_srv)
        snprintf(buf, size, "%s", e->name);
    else
        snprintf(buf, size, "%s:%u", e->name, e->port);
}

/* ---- names --------------------------------------------------------------------- */

static bool is_name_char(char c, bool allow_underscore)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || (allow_underscore && c == '_');
}

/* A DNS name of labels (letters, digits, '-'; '_' too in SRV names), one final dot
 * allowed. 0, or -1 with the reason in why. */
static int check_dns_name(const char *name, bool allow_underscore, char *why, size_t why_size)
{
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_NAME_MAX) {
        snprintf(why, why_size, "a DNS name has 1..%d characters", DNS_NAME_MAX);
        return -1;
    }
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || name[i] == '.') {
            if (label == 0 || label > DNS_LABEL_MAX) {
                snprintf(why, why_size, "every label (between dots) of a DNS name has 1..%d "
                         "characters", DNS_LABEL_MAX);
                return -1;
            }
            label = 0;
        } else if (!is_name_char(name[i], allow_underscore)) {
            snprintf(why, why_size, "'%c' cannot be in a DNS name (letters, digits, '-'%s)",
                     name[i], allow_underscore ? ", '_'" : "");
            return -1;
        } else {
            label++;
        }
    }
    return 0;
}

/* Lower case, without a final dot (owned), or NULL when out of memory. */
static char *canonical_name(struct walker *w, const char *name)
{
    char *copy = walk_strdup(w, name);
    size_t len = copy ? strlen(copy) : 0;
    if (len > 0 && copy[len - 1] == '.')
        copy[len - 1] = '\0';
    for (char *p = copy; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return copy;
}

/* Is the host of "host:port" meant as a name? Numeric ones ("10.0.0.300:80"), IPv6
 * and malformed text keep config_addr_parse's reason. */
static bool names_a_host(const char *text)
{
    const char *colon = strrchr(text, ':');
    if (text[0] == '[' || !colon || memchr(text, ':', (size_t)(colon - text)))
        return false;
    for (const char *p = text; p < colon; p++)
        if (*p != '.' && (*p < '0' || *p > '9'))
            return true;
    return false;
}

/* "name:port" of a backend: 0, or -1 with the reason in why. */
static int parse_host_port(struct walker *w, const char *text, struct cfg_dns_backend *dns,
                           char *why, size_t why_size)
{
    const char *colon = strrchr(text, ':');
    char host[DNS_NAME_MAX + 2];
    size_t n = (size_t)(colon - text);
    if (n >= sizeof host) {
        snprintf(why, why_size, "a DNS name has 1..%d characters", DNS_NAME_MAX);
        return -1;
    }
    memcpy(host, text, n);
    host[n] = '\0';
    if (check_dns_name(host, false, why, why_size) < 0 ||
        config_port_parse(colon + 1, &dns->port, why, why_size) < 0)
        return -1;
    dns->name = canonical_name(w, host);
    return 0;
}

static void parse_address(struct walker *w, const json_t *v, struct cfg_addr *address,
                          struct cfg_dns_backend *dns, enum backend_kind *kind)
{
    char *text = NULL;
    char why[160];
    if (!walk_string(w, v, "address", false, &text))
        return;
    if (config_addr_parse(text, ADDR_ALLOW_LOCALHOST, address, why, sizeof why) == 0)
        *kind = BACKEND_STATIC;
    else if (names_a_host(text) && parse_host_port(w, text, dns, why, sizeof why) == 0)
        *kind = dns->name ? BACKEND_DNS : BACKEND_INVALID;
    else
        walk_error_at(w, "address", "\"%s\": %s", text, why);
    free(text);
}

static void parse_srv(struct walker *w, const json_t *v, struct cfg_dns_backend *dns,
                      enum backend_kind *kind)
{
    char *text = NULL;
    char why[160];
    if (!walk_string(w, v, "srv", false, &text))
        return;
    if (check_dns_name(text, true, why, sizeof why) < 0) {
        walk_error_at(w, "srv", "\"%s\": %s", text, why);
    } else {
        dns->is_srv = true;
        dns->name = canonical_name(w, text);
        *kind = dns->name ? BACKEND_DNS : BACKEND_INVALID;
    }
    free(text);
}

enum backend_kind parse_backend_target(struct walker *w, const json_t *v,
                                       struct cfg_addr *address, struct cfg_dns_backend *dns)
{
    enum backend_kind kind = BACKEND_INVALID;
    bool has_address = json_object_get(v, "address") != NULL;
    bool has_srv = json_object_get(v, "srv") != NULL;
    int family;
    if (has_address && has_srv) {
        walk_error_at(w, "srv", "\"address\" and \"srv\" exclude each other");
        return kind;
    }
    if (!has_srv && walk_require(w, v, "address"))
        parse_address(w, v, address, dns, &kind);
    else if (has_srv)
        parse_srv(w, v, dns, &kind);
    if (walk_enum(w, v, "family", FAMILY_NAMES, &family)) {
        dns->family = (enum cfg_family)family;
        if (kind == BACKEND_STATIC)
            walk_error_at(w, "family", "only used with a host name or \"srv\" (the address "
                          "is numeric)");
    }
    if (kind == BACKEND_DNS && json_object_get(v, "name"))
        walk_error_at(w, "name", "a backend found by DNS is named by its address (one name "
                      "cannot name every address found)");
    if (kind == BACKEND_DNS && dns->is_srv && json_object_get(v, "weight"))
        walk_error_at(w, "weight", "the SRV records give the weights");
    return kind;
}

void free_dns_backend(struct cfg_dns_backend *dns)
{
    free(dns->name);
    free(dns->each.name);
}

/* ---- top level ----------------------------------------------------------------- */

static void parse_resolvers(struct walker *w, const json_t *root, struct config *cfg)
{
    char why[160];
    const json_t *list = json_object_get(root, "resolvers");
    if (!list)
        return;
    if (json_is_array(list) && json_array_size(list) > CFG_DNS_MAX_RESOLVERS) {
        walk_error_at(w, "resolvers", "%zu addresses: at most %d", json_array_size(list),
                      CFG_DNS_MAX_RESOLVERS);
        return;
    }
    if (!(list = walk_array(w, root, "resolvers", 1)))
        return;
    cfg->dns.resolvers = walk_calloc(w, json_array_size(list), sizeof *cfg->dns.resolvers);
    if (!cfg->dns.resolvers)
        return;
    cfg->dns.n_resolvers = json_array_size(list);
    walk_push(w, "resolvers");
    for (size_t i = 0; i < cfg->dns.n_resolvers; i++) {
        char *text = NULL;
        walk_push_index(w, i);
        if (walk_value_string(w, json_array_get(list, i), &text) &&
            config_addr_parse(text, 0, &cfg->dns.resolvers[i], why, sizeof why) < 0)
            walk_error(w, "\"%s\": %s (a resolver is \"ip:port\", e.g. \"127.0.0.1:53\")",
                       text, why);
        free(text);
        walk_pop(w);
    }
    walk_pop(w);
}

void parse_dns_settings(struct walker *w, const json_t *root, struct config *cfg)
{
    cfg->dns.min_ttl_ms = 1000;
    cfg->dns.max_ttl_ms = 300000;
    parse_resolvers(w, root, cfg);
    const json_t *o = walk_object(w, root, "dns", false);
    if (!o)
        return;
    walk_push(w, "dns");
    walk_check_keys(w, o, DNS_KEYS);
    bool ok = walk_uint(w, o, "min_ttl_ms", RANGE_DNS_TTL_MS, &cfg->dns.min_ttl_ms) ||
              !json_object_get(o, "min_ttl_ms");
    ok &= walk_uint(w, o, "max_ttl_ms", RANGE_DNS_TTL_MS, &cfg->dns.max_ttl_ms) ||
          !json_object_get(o, "max_ttl_ms");
    if (ok && cfg->dns.min_ttl_ms > cfg->dns.max_ttl_ms)
        walk_error_at(w, "max_ttl_ms", "%u%s is less than min_ttl_ms (%u%s)",
                      cfg->dns.max_ttl_ms, json_object_get(o, "max_ttl_ms") ? "" : " (default)",
                      cfg->dns.min_ttl_ms, json_object_get(o, "min_ttl_ms") ? "" : ", the default");
    walk_pop(w);
}

/* ---- backends found ------------------------------------------------------------ */

static bool pool_has(const struct cfg_pool *p, const struct cfg_backend *b)
{
    for (size_t i = 0; i < p->n_backends; i++)
        if (config_addr_equal(&p->backends[i].address, &b->address) ||
            strcmp(p->backends[i].name, b->name) == 0)
            return true;
    return false;
}

int config_pool_add_backends(struct config *cfg, size_t pool, const struct cfg_backend *add,
                             size_t n)
{
    struct cfg_pool *p = &cfg->pools[pool];
    size_t before = p->n_backends;
    struct cfg_backend *grown = realloc(p->backends, (before + n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    p->backends = grown;
    int left_out = 0;
    for (size_t i = 0; i < n; i++) {
        if (pool_has(p, &add[i])) {
            left_out++;
            continue;
        }
        struct cfg_backend *b = &p->backends[p->n_backends];
        *b = add[i];
        if (!(b->name = strdup(add[i].name))) {
            while (p->n_backends > before)
                free(p->backends[--p->n_backends].name);
            return -1;
        }
        p->n_backends++;
    }
    return left_out;
}

/* pools — the "pools" section: backends, health check, keep-alive, upstream TLS
 * (backends found by DNS: dns.c). */
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

static const char *const POOL_KEYS[] = {
    "balance", "hash_key", "backends", "sticky", "slow_start_ms", "passive", "health_check",
    "keepalive", "retries", "tls", "proxy_protocol", NULL };
static const char *const BACKEND_KEYS[] = {
    "address", "srv", "family", "weight", "name", "max_connections", "backup", "drain", NULL };
static const char *const HEALTH_KEYS[] = {
    "type", "path", "host", "expect_status", "expect_body", "interval_ms", "timeout_ms",
    "rise", "fall", "initial", NULL };
static const char *const HTTP_ONLY_HEALTH_KEYS[] = {
    "path", "host", "expect_status", "expect_body", NULL };
static const char *const PASSIVE_KEYS[] = { "failures", "eject_ms", "on_5xx", NULL };
static const char *const STICKY_KEYS[] = { "cookie", "ttl_s", NULL };
static const char *const KEEPALIVE_KEYS[] = { "max_idle", "idle_timeout_ms", NULL };
static const char *const POOL_TLS_KEYS[] = { "verify", "ca", "sni", "cert", "key", NULL };

/* Same order as enum balance_algo. */
static const char *const BALANCE_NAMES[] = { "round_robin", "least_conn", "random_two", "hash",
                                             NULL };
static const char *const HEALTH_TYPES[] = { "tcp", "http", NULL };
static const char *const INITIAL_STATES[] = { "up", "down", NULL };
/* The bodies the checker reads: expect_body must fit. */
enum { EXPECT_BODY_MAX = 4096 };

/* What every entry of backends[] says besides where the backend is; for an entry
 * found by DNS, what each address found gets. */
static void parse_backend_settings(struct walker *w, const json_t *v, struct cfg_backend *b)
{
    b->weight = 1;
    walk_uint(w, v, "weight", RANGE_WEIGHT, &b->weight);
    walk_uint(w, v, "max_connections", RANGE_BACKEND_MAX_CONN, &b->max_connections);
    walk_bool(w, v, "backup", &b->backup);
    walk_bool(w, v, "drain", &b->drain);
    walk_string(w, v, "name", false, &b->name);
}

/* The entry parsed so far: where it went. */
struct entry_place {
    bool is_dns;
    size_t slot;                /* index into backends[] or dns[] */
};

/* Two backends with one address would split one server's weight and health in two;
 * two entries of one name would look it up twice for the same addresses. */
static void check_entry_unique(struct walker *w, const struct cfg_pool *p,
                               const struct entry_place *places, size_t i)
{
    for (size_t j = 0; j < i; j++) {
        if (places[j].is_dns != places[i].is_dns)
            continue;
        if (places[i].is_dns) {
            const struct cfg_dns_backend *d = &p->dns[places[i].slot];
            const struct cfg_dns_backend *other = &p->dns[places[j].slot];
            if (d->is_srv == other->is_srv && d->port == other->port &&
                strcmp(d->name, other->name) == 0)
                walk_error_at(w, d->is_srv ? "srv" : "address", "\"%s\" duplicates "
                              "backends[%zu]", d->name, j);
            continue;
        }
        const struct cfg_backend *b = &p->backends[places[i].slot];
        const struct cfg_backend *other = &p->backends[places[j].slot];
        if (config_addr_equal(&b->address, &other->address))
            walk_error_at(w, "address", "\"%s\" duplicates backends[%zu] (\"%s\")",
                          b->address.text, j, other->address.text);
        else if (b->name && other->name && strcmp(b->name, other->name) == 0)
            walk_error_at(w, "name", "\"%s\" is already used by backends[%zu]", b->name, j);
    }
}

/* Entry i of backends[]: a backend, an entry found by DNS, or nothing (reported).
 * Returns whether it is a backup. */
static bool parse_backend(struct walker *w, const json_t *v, struct cfg_pool *p,
                          struct entry_place *places, size_t i)
{
    struct cfg_backend b = { .weight = 1 };
    struct cfg_dns_backend dns = { .index = i };
    struct cfg_addr address;
    if (!walk_is_object(w, v))
        return false;
    walk_check_keys(w, v, BACKEND_KEYS);
    enum backend_kind kind = parse_backend_target(w, v, &address, &dns);
    parse_backend_settings(w, v, &b);
    if (kind == BACKEND_STATIC) {
        b.address = address;
        if (!b.name)
            b.name = walk_strdup(w, address.text);
        places[i] = (struct entry_place){ .is_dns = false, .slot = p->n_backends };
        p->backends[p->n_backends++] = b;
    } else if (kind == BACKEND_DNS) {
        dns.each = b;
        places[i] = (struct entry_place){ .is_dns = true, .slot = p->n_dns };
        p->dns[p->n_dns++] = dns;
    } else {
        free(b.name);
        free(dns.name);
        return false;
    }
    check_entry_unique(w, p, places, i);
    return b.backup;
}

static void parse_backends(struct walker *w, const json_t *pool, struct cfg_pool *p)
{
    const json_t *list;
    if (!walk_require(w, pool, "backends") || !(list = walk_array(w, pool, "backends", 1)))
        return;
    size_t n = json_array_size(list);
    struct entry_place *places = walk_calloc(w, n, sizeof *places);
    p->backends = walk_calloc(w, n, sizeof *p->backends);
    p->dns = walk_calloc(w, n, sizeof *p->dns);
    if (!places || !p->backends || !p->dns) {
        free(places);
        return;
    }
    walk_push(w, "backends");
    size_t n_backup = 0;
    for (size_t i = 0; i < n; i++) {
        walk_push_index(w, i);
        n_backup += parse_backend(w, json_array_get(list, i), p, places, i);
        walk_pop(w);
    }
    if (p->n_backends + p->n_dns == n && n_backup == n)
        walk_error(w, "needs at least one backend without \"backup\" (backups serve only "
                      "when no other backend can)");
    walk_pop(w);
    free(places);
}

static void parse_expect_status(struct walker *w, const json_t *hc_obj,
                                struct cfg_health_check *hc)
{
    const json_t *list = walk_array(w, hc_obj, "expect_status", 1);
    if (!list)
        return;
    hc->expect_status = walk_calloc(w, json_array_size(list), sizeof *hc->expect_status);
    if (!hc->expect_status)
        return;
    hc->n_expect_status = json_array_size(list);
    walk_push(w, "expect_status");
    for (size_t i = 0; i < hc->n_expect_status; i++) {
        json_int_t status;
        walk_push_index(w, i);
        if (walk_value_int(w, json_array_get(list, i), RANGE_HTTP_STATUS, &status))
            hc->expect_status[i] = (int)status;
        walk_pop(w);
    }
    walk_pop(w);
}

static void parse_health_http(struct walker *w, const json_t *o, struct cfg_health_check *hc)
{
    if (walk_string(w, o, "path", false, &hc->path) && hc->path[0] != '/')
        walk_error_at(w, "path", "\"%s\" must start with \"/\"", hc->path);
    walk_string(w, o, "host", true, &hc->host);
    if (walk_string(w, o, "expect_body", false, &hc->expect_body) &&
        strlen(hc->expect_body) > EXPECT_BODY_MAX)
        walk_error_at(w, "expect_body", "%zu bytes: the checker looks at the first %d bytes "
                      "of the body only", strlen(hc->expect_body), EXPECT_BODY_MAX);
    parse_expect_status(w, o, hc);
    if (!hc->path)
        hc->path = walk_strdup(w, "/");
    if (!hc->expect_status && !json_object_get(o, "expect_status")) {
        hc->expect_status = walk_calloc(w, 1, sizeof *hc->expect_status);
        if (hc->expect_status) {
            hc->expect_status[0] = 200;
            hc->n_expect_status = 1;
        }
    }
}

/* A check that outlives its interval would overlap the next one. */
static void check_health_timing(struct walker *w, const json_t *o,
                                const struct cfg_health_check *hc)
{
    if (hc->timeout_ms < hc->interval_ms)
        return;
    walk_error_at(w, "timeout_ms", "%u%s must be less than interval_ms (%u%s)",
                  hc->timeout_ms, json_object_get(o, "timeout_ms") ? "" : " (default)",
                  hc->interval_ms, json_object_get(o, "interval_ms") ? "" : ", the default");
}

static void parse_health_check(struct walker *w, const json_t *pool,
                               struct cfg_health_check *hc)
{
    *hc = (struct cfg_health_check){ .type = HEALTH_CHECK_NONE, .interval_ms = 2000,
                                     .timeout_ms = 1000, .rise = 2, .fall = 3,
                                     .initial_up = true };
    const json_t *o = walk_object(w, pool, "health_check", true);
    int type, initial;
    if (!o)
        return;
    walk_push(w, "health_check");
    walk_check_keys(w, o, HEALTH_KEYS);
    if (walk_require(w, o, "type") && walk_enum(w, o, "type", HEALTH_TYPES, &type))
        hc->type = type == 0 ? HEALTH_CHECK_TCP : HEALTH_CHECK_HTTP;
    bool timing_ok = true;
    if (json_object_get(o, "interval_ms"))
        timing_ok &= walk_uint(w, o, "interval_ms", RANGE_HC_INTERVAL_MS, &hc->interval_ms);
    if (json_object_get(o, "timeout_ms"))
        timing_ok &= walk_uint(w, o, "timeout_ms", RANGE_HC_TIMEOUT_MS, &hc->timeout_ms);
    if (timing_ok)
        check_health_timing(w, o, hc);
    walk_uint(w, o, "rise", RANGE_HC_RISE_FALL, &hc->rise);
    walk_uint(w, o, "fall", RANGE_HC_RISE_FALL, &hc->fall);
    if (walk_enum(w, o, "initial", INITIAL_STATES, &initial))
        hc->initial_up = initial == 0;
    if (hc->type == HEALTH_CHECK_HTTP) {
        parse_health_http(w, o, hc);
    } else if (hc->type == HEALTH_CHECK_TCP) {
        for (size_t i = 0; HTTP_ONLY_HEALTH_KEYS[i]; i++)
            if (json_object_get(o, HTTP_ONLY_HEALTH_KEYS[i]))
                walk_error_at(w, HTTP_ONLY_HEALTH_KEYS[i], "only used by \"http\" health checks");
    }
    walk_pop(w);
}

static void parse_passive(struct walker *w, const json_t *pool, struct cfg_pool *p)
{
    p->passive = (struct cfg_passive){ .failures = 3, .eject_ms = 10000, .on_5xx = false };
    const json_t *o = walk_object(w, pool, "passive", false);
    if (!o)
        return;
    walk_push(w, "passive");
    walk_check_keys(w, o, PASSIVE_KEYS);
    walk_uint(w, o, "failures", RANGE_PASSIVE_FAILURES, &p->passive.failures);
    walk_uint(w, o, "eject_ms", RANGE_EJECT_MS, &p->passive.eject_ms);
    walk_bool(w, o, "on_5xx", &p->passive.on_5xx);
    walk_pop(w);
}

/* RFC 9110 token: a header name; also what RFC 6265 allows as a cookie name. */
static bool is_token(const char *s)
{
    const char *extra = "!#$%&'*+-.^_`|~";
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              strchr(extra, *s)))
            return false;
    return true;
}

static void parse_sticky(struct walker *w, const json_t *pool, struct cfg_pool *p)
{
    const json_t *o = walk_object(w, pool, "sticky", true);
    if (!o)
        return;
    walk_push(w, "sticky");
    walk_check_keys(w, o, STICKY_KEYS);
    if (walk_require(w, o, "cookie") && walk_string(w, o, "cookie", false, &p->sticky.cookie) &&
        !is_token(p->sticky.cookie))
        walk_error_at(w, "cookie", "\"%s\" is not a cookie name (letters, digits and "
                      "!#$%%&'*+-.^_`|~)", p->sticky.cookie);
    walk_uint(w, o, "ttl_s", RANGE_STICKY_TTL_S, &p->sticky.ttl_s);
    walk_pop(w);
}

/* "source_ip", "uri", "sni", "header:NAME" or "cookie:NAME". */
static void parse_hash_key(struct walker *w, const json_t *pool, struct cfg_pool *p)
{
    static const struct { const char *text; enum hash_key_kind kind; } plain[] = {
        { "source_ip", HASH_KEY_SOURCE_IP }, { "uri", HASH_KEY_URI }, { "sni", HASH_KEY_SNI },
    };
    char *text = NULL;
    if (!json_object_get(pool, "hash_key")) {
        if (p->balance == BALANCE_HASH)
            walk_error_at(w, "hash_key", "required with \"balance\": \"hash\" (\"source_ip\", "
                          "\"header:NAME\", \"cookie:NAME\", \"uri\" or \"sni\")");
        return;
    }
    if (!walk_string(w, pool, "hash_key", false, &text))
        return;
    const char *colon = strchr(text, ':');
    enum hash_key_kind kind = HASH_KEY_NONE;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (strcmp(text, plain[i].text) == 0)
            kind = plain[i].kind;
    if (colon && (size_t)(colon - text) == 6 && strncmp(text, "header", 6) == 0)
        kind = HASH_KEY_HEADER;
    else if (colon && (size_t)(colon - text) == 6 && strncmp(text, "cookie", 6) == 0)
        kind = HASH_KEY_COOKIE;
    p->hash_key = kind;
    if (colon && (kind == HASH_KEY_HEADER || kind == HASH_KEY_COOKIE)) {
        if (is_token(colon + 1))
            p->hash_key_name = walk_strdup(w, colon + 1);
        else
            walk_error_at(w, "hash_key", "\"%s\": \"%s\" is not a %s name", text, colon + 1,
                          p->hash_key == HASH_KEY_HEADER ? "header" : "cookie");
    } else if (p->hash_key == HASH_KEY_NONE) {
        walk_error_at(w, "hash_key", "\"%s\" is not one of \"source_ip\", \"header:NAME\", "
                      "\"cookie:NAME\", \"uri\", \"sni\"", text);
    }
    if (p->balance != BALANCE_HASH)
        walk_error_at(w, "hash_key", "only used with \"balance\": \"hash\"");
    free(text);
}

static void parse_keepalive(struct walker *w, const json_t *pool, struct cfg_pool *p)
{
    const json_t *o = walk_object(w, pool, "keepalive", false);
    if (!o)
        return;
    walk_push(w, "keepalive");
    walk_check_keys(w, o, KEEPALIVE_KEYS);
    walk_uint(w, o, "max_idle", RANGE_KEEPALIVE_MAX_IDLE, &p->keepalive_max_idle);
    walk_uint(w, o, "idle_timeout_ms", RANGE_TIMEOUT_MS, &p->keepalive_idle_timeout_ms);
    walk_pop(w);
}

static void parse_pool_tls(struct walker *w, const json_t *pool, struct cfg_pool *p)
{
    const json_t *o = walk_object(w, pool, "tls", true);
    if (!o)
        return;
    walk_push(w, "tls");
    struct cfg_pool_tls *t = p->tls = walk_calloc(w, 1, sizeof *p->tls);
    if (t) {
        t->verify = true;
        walk_check_keys(w, o, POOL_TLS_KEYS);
        walk_bool(w, o, "verify", &t->verify);
        walk_string(w, o, "ca", true, &t->ca);
        walk_string(w, o, "sni", true, &t->sni);
        walk_string(w, o, "cert", true, &t->cert);
        walk_string(w, o, "key", true, &t->key);
        if (json_is_string(json_object_get(o, "cert")) != json_is_string(json_object_get(o, "key")))
            walk_error_at(w, t->cert ? "key" : "cert", "required when \"%s\" is set (a client "
                          "certificate needs its key)", t->cert ? "cert" : "key");
    }
    walk_pop(w);
}

static void parse_pool(struct walker *w, const char *name, const json_t *v, struct cfg_pool *p)
{
    p->balance = BALANCE_ROUND_ROBIN;
    p->keepalive_max_idle = 32;
    p->keepalive_idle_timeout_ms = 60000;
    p->retries = 1;
    p->health_check.type = HEALTH_CHECK_NONE;
    p->health_check.initial_up = true;
    p->passive = (struct cfg_passive){ .failures = 3, .eject_ms = 10000, .on_5xx = false };
    walk_push(w, name);
    p->name = walk_strdup(w, name);
    if (walk_is_object(w, v)) {
        int balance;
        walk_check_name(w, name);
        walk_check_keys(w, v, POOL_KEYS);
        if (walk_enum(w, v, "balance", BALANCE_NAMES, &balance))
            p->balance = (enum balance_algo)balance;
        parse_hash_key(w, v, p);
        parse_backends(w, v, p);
        parse_sticky(w, v, p);
        walk_uint(w, v, "slow_start_ms", RANGE_SLOW_START_MS, &p->slow_start_ms);
        parse_passive(w, v, p);
        parse_health_check(w, v, &p->health_check);
        parse_keepalive(w, v, p);
        walk_uint(w, v, "retries", RANGE_RETRIES, &p->retries);
        parse_pool_tls(w, v, p);
        parse_pool_l4(w, v, p);
    }
    walk_pop(w);
}

void parse_pools(struct walker *w, const json_t *root, struct config *cfg)
{
    const json_t *pools;
    const json_t *v;
    const char *name;
    size_t i = 0;
    if (!walk_require(w, root, "pools") || !(pools = walk_object(w, root, "pools", false)))
        return;
    walk_push(w, "pools");
    if (json_object_size(pools) == 0)
        walk_error(w, "needs at least one pool");
    else if ((cfg->pools = walk_calloc(w, json_object_size(pools), sizeof *cfg->pools))) {
        cfg->n_pools = json_object_size(pools);
        json_object_foreach((json_t *)pools, name, v)
            parse_pool(w, name, v, &cfg->pools[i++]);
    }
    walk_pop(w);
}

void free_pool(struct cfg_pool *p)
{
    free(p->name);
    for (size_t i = 0; i < p->n_backends; i++)
        free(p->backends[i].name);
    free(p->backends);
    for (size_t i = 0; i < p->n_dns; i++)
        free_dns_backend(&p->dns[i]);
    free(p->dns);
    free(p->health_check.path);
    free(p->health_check.host);
    free(p->health_check.expect_status);
    free(p->health_check.expect_body);
    free(p->hash_key_name);
    free(p->sticky.cookie);
    if (p->tls) {
        free(p->tls->ca);
        free(p->tls->sni);
        free(p->tls->cert);
        free(p->tls->key);
        free(p->tls);
    }
}

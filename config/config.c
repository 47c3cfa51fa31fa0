/* config — load a JSON file, validate it in one pass, build the typed struct config.
 *
 * Layout of the module: this file (entry points, top-level sections), listeners.c,
 * pools.c, addr.c (socket addresses), walk.c (path stack, errors, typed accessors),
 * json_pos.c (line numbers for error messages).
 *
 * Integer ranges (single source: the RANGE_* table in config_internal.h):
 *   workers                     "auto" or 1..256         ("auto" = online CPUs, capped)
 *   ports in addresses          1..65535
 *   timeouts.*                  1..86400000 ms
 *   limits.max_connections      1..10000000
 *   limits.max_header_bytes     1024..1048576
 *   limits.max_headers          1..1000
 *   limits.max_body_bytes       0..2^62                  (0 = unlimited)
 *   backends[].weight           1..256
 *   backends[].max_connections  0..10000000              (0 = unlimited)
 *   retries                     0..10
 *   keepalive.max_idle          0..100000
 *   keepalive.idle_timeout_ms   1..86400000
 *   health_check.rise / fall    1..100
 *   health_check.interval_ms    100..3600000
 *   health_check.timeout_ms     1..600000                (and < interval_ms)
 *   health_check.expect_status  100..599 each
 *   tls.session_cache           0..10000000              (0 = off)
 *   dns.min_ttl_ms / max_ttl_ms 100..86400000            (min <= max)
 *   resolvers                   1..16 addresses
 *
 * null means "absent / off" for optional things whose absence has a meaning: admin,
 * admin.token, listener and pool tls, health_check, match, match.*, client_ca,
 * ticket_keys_file, ocsp_response and the pool tls strings. Elsewhere null is a type error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config_internal.h"

/* A config is a few KB; this only stops `ferry -c /dev/zero` from eating memory. */
#define CONFIG_MAX_BYTES (16u << 20)

static const char *const TOP_KEYS[] = {
    "workers", "admin", "log", "timeouts", "limits", "resolvers", "dns", "listeners", "pools",
    NULL };
static const char *const ADMIN_KEYS[] = { "listen", "token", NULL };
static const char *const LOG_KEYS[] = { "level", "access", "format", NULL };
static const char *const TIMEOUT_KEYS[] = {
    "connect_ms", "client_header_ms", "client_idle_ms", "upstream_response_ms",
    "tcp_idle_ms", "drain_ms", "stop_grace_ms", NULL };
static const char *const LIMIT_KEYS[] = {
    "max_connections", "max_header_bytes", "max_headers", "max_body_bytes", NULL };

/* Same order as the enums. */
static const char *const LEVEL_NAMES[] = { "debug", "info", "warn", "error", NULL };
static const char *const FORMAT_NAMES[] = { "json", "text", NULL };

/* ---- top-level sections -------------------------------------------------------- */

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

static void parse_workers(struct walker *w, const json_t *root, struct config *cfg)
{
    const json_t *v = json_object_get(root, "workers");
    json_int_t n;
    cfg->workers = online_cpus();
    if (!v || (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0))
        return;
    walk_push(w, "workers");
    if (json_is_integer(v)) {
        if (walk_value_int(w, v, RANGE_WORKERS, &n))
            cfg->workers = (unsigned)n;
    } else {
        char got[96];
        walk_describe(v, got, sizeof got);
        walk_error(w, "expected \"auto\" or an integer 1..256, got %s", got);
    }
    walk_pop(w);
}

/* The token travels in an Authorization header: visible ASCII, no spaces. */
static void check_token(struct walker *w, const char *token)
{
    for (const char *p = token; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f) {
            walk_error_at(w, "token", "must be visible ASCII without spaces "
                          "(null disables authentication)");
            return;
        }
    }
}

static void parse_admin(struct walker *w, const json_t *root, struct config *cfg)
{
    char why[160];
    cfg->admin.enabled = !json_is_null(json_object_get(root, "admin"));
    if (config_addr_parse("127.0.0.1:9901", 0, &cfg->admin.listen, why, sizeof why) < 0)
        walk_error(w, "internal error: default admin address: %s", why);
    const json_t *o = walk_object(w, root, "admin", true);
    if (!o)
        return;
    walk_push(w, "admin");
    walk_check_keys(w, o, ADMIN_KEYS);
    walk_addr(w, o, "listen", 0, &cfg->admin.listen);
    if (walk_string(w, o, "token", true, &cfg->admin.token) && cfg->admin.token)
        check_token(w, cfg->admin.token);
    walk_pop(w);
}

static void parse_log(struct walker *w, const json_t *root, struct config *cfg)
{
    int value;
    cfg->log.level = LOG_LEVEL_INFO;
    cfg->log.format = LOG_FORMAT_JSON;
    cfg->log.access = walk_strdup(w, "stdout");
    const json_t *o = walk_object(w, root, "log", false);
    if (!o)
        return;
    walk_push(w, "log");
    walk_check_keys(w, o, LOG_KEYS);
    if (walk_enum(w, o, "level", LEVEL_NAMES, &value))
        cfg->log.level = (enum log_level)value;
    if (walk_enum(w, o, "format", FORMAT_NAMES, &value))
        cfg->log.format = (enum log_format)value;
    if (walk_string(w, o, "access", false, &cfg->log.access)
        && strcmp(cfg->log.access, "off") == 0) {
        free(cfg->log.access);
        cfg->log.access = NULL;
    }
    walk_pop(w);
}

static void parse_timeouts(struct walker *w, const json_t *root, struct config *cfg)
{
    /* Same order as TIMEOUT_KEYS, whose last one (stop_grace_ms: 0 is off) is not a
     * deadline. */
    unsigned *fields[] = {
        &cfg->timeouts.connect_ms, &cfg->timeouts.client_header_ms,
        &cfg->timeouts.client_idle_ms, &cfg->timeouts.upstream_response_ms,
        &cfg->timeouts.tcp_idle_ms, &cfg->timeouts.drain_ms };
    static const unsigned defaults[] = { 3000, 10000, 60000, 30000, 3600000, 30000 };
    enum { N_DEADLINES = sizeof defaults / sizeof defaults[0] };
    _Static_assert(sizeof fields / sizeof fields[0] == N_DEADLINES, "a default per field");
    _Static_assert(sizeof TIMEOUT_KEYS / sizeof TIMEOUT_KEYS[0] == N_DEADLINES + 2,
                   "TIMEOUT_KEYS: the deadlines, stop_grace_ms, NULL");
    for (size_t i = 0; i < N_DEADLINES; i++)
        *fields[i] = defaults[i];
    cfg->timeouts.stop_grace_ms = 0;
    const json_t *o = walk_object(w, root, "timeouts", false);
    if (!o)
        return;
    walk_push(w, "timeouts");
    walk_check_keys(w, o, TIMEOUT_KEYS);
    for (size_t i = 0; i < N_DEADLINES; i++)
        walk_uint(w, o, TIMEOUT_KEYS[i], RANGE_TIMEOUT_MS, fields[i]);
    walk_uint(w, o, "stop_grace_ms", RANGE_STOP_GRACE_MS, &cfg->timeouts.stop_grace_ms);
    walk_pop(w);
}

static void parse_limits(struct walker *w, const json_t *root, struct config *cfg)
{
    cfg->limits.max_connections = 20000;
    cfg->limits.max_header_bytes = 16384;
    cfg->limits.max_headers = 100;
    cfg->limits.max_body_bytes = 0;
    const json_t *o = walk_object(w, root, "limits", false);
    if (!o)
        return;
    walk_push(w, "limits");
    walk_check_keys(w, o, LIMIT_KEYS);
    walk_uint(w, o, "max_connections", RANGE_MAX_CONNECTIONS, &cfg->limits.max_connections);
    walk_uint(w, o, "max_header_bytes", RANGE_MAX_HEADER_BYTES, &cfg->limits.max_header_bytes);
    walk_uint(w, o, "max_headers", RANGE_MAX_HEADERS, &cfg->limits.max_headers);
    walk_u64(w, o, "max_body_bytes", RANGE_MAX_BODY_BYTES, &cfg->limits.max_body_bytes);
    walk_pop(w);
}

/* The admin API binds like a listener; sharing an address would fail at bind time. */
static void check_admin_address(struct walker *w, const struct config *cfg)
{
    if (!cfg->admin.enabled)
        return;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        if (l->mode != MODE_UDP && l->listen.len &&
            config_addr_equal(&l->listen, &cfg->admin.listen)) {
            walk_push(w, "admin");
            walk_error_at(w, "listen", "\"%s\" is already used by listener \"%s\"",
                          cfg->admin.listen.text, l->name);
            walk_pop(w);
        }
    }
}

static bool is_http_key(enum hash_key_kind k)
{
    return k == HASH_KEY_HEADER || k == HASH_KEY_COOKIE || k == HASH_KEY_URI;
}

/* Why a listener of this mode cannot give the pool's hash key, or NULL when it can:
 * headers, cookies and paths only in http, the server name only in tcp, and a udp
 * flow has nothing but its client's address. */
static const char *hash_key_misfit(enum listener_mode mode, enum hash_key_kind k)
{
    switch (mode) {
    case MODE_TCP:
        return is_http_key(k) ? "http listeners have headers, cookies and paths only" : NULL;
    case MODE_UDP:
        return k != HASH_KEY_NONE && k != HASH_KEY_SOURCE_IP
                   ? "a udp listener's flows can hash \"source_ip\" only" : NULL;
    case MODE_HTTP:
        break;
    }
    return k == HASH_KEY_SNI ? "the server name is hashed for tcp listeners only" : NULL;
}

/* What a pool asks of its requests must be there in every listener that uses it. One
 * error per pool and key. */
static void check_pool_use(struct walker *w, const struct config *cfg, size_t pool,
                           bool reported[2])
{
    const struct cfg_pool *p = &cfg->pools[pool];
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        bool uses = false;
        for (size_t r = 0; r < l->n_routes; r++)
            uses |= l->routes[r].pool == pool;
        if (!uses)
            continue;
        const char *misfit = hash_key_misfit(l->mode, p->hash_key);
        walk_push(w, "pools");
        walk_push(w, p->name);
        if (misfit && !reported[0]) {
            reported[0] = true;
            walk_error_at(w, "hash_key", "%s; listener \"%s\" (%s) uses this pool", misfit,
                          l->name, config_mode_name(l->mode));
        }
        if (l->mode != MODE_HTTP && p->sticky.cookie && !reported[1]) {
            reported[1] = true;
            walk_error_at(w, "sticky", "cookies need an http listener; listener \"%s\" (%s) "
                          "uses this pool", l->name, config_mode_name(l->mode));
        }
        walk_pop(w);
        walk_pop(w);
    }
}

static void check_pools_use(struct walker *w, const struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_pools; i++) {
        bool reported[2] = { false, false };
        check_pool_use(w, cfg, i, reported);
    }
}

/* ---- entry points -------------------------------------------------------------- */

static bool is_blank(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
            return false;
    return true;
}

static void walk_document(struct walker *w, const json_t *root, struct config *cfg)
{
    walk_check_keys(w, root, TOP_KEYS);
    parse_workers(w, root, cfg);
    parse_admin(w, root, cfg);
    parse_log(w, root, cfg);
    parse_timeouts(w, root, cfg);
    parse_limits(w, root, cfg);
    parse_dns_settings(w, root, cfg);
    parse_pools(w, root, cfg);          /* before listeners: routes resolve pool names */
    parse_listeners(w, root, cfg);
    check_admin_address(w, cfg);
    check_pools_use(w, cfg);
}

/* The config root says (root borrowed; the config takes its own reference). text:
 * the raw document for line numbers in messages, or NULL. */
static struct config *walk_root(json_t *root, const char *text, size_t len, const char *path,
                                struct config_errors *errs)
{
    struct walker w = { .text = text, .len = len, .errs = errs, .scan_budget = WALK_SCAN_BUDGET };
    struct config *cfg = calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->path = strdup(path))) {
        config_errors_add(errs, "%s: out of memory", path);
        config_free(cfg);
        return NULL;
    }
    walk_document(&w, root, cfg);
    if (w.n_errors > 0) {
        config_free(cfg);
        return NULL;
    }
    cfg->document = json_incref(root);
    return cfg;
}

struct config *config_parse(const char *text, size_t len, const char *path,
                            struct config_errors *errs)
{
    json_error_t jerr;
    struct config *cfg = NULL;
    json_t *root = NULL;
    path = path ? path : "<config>";
    if (is_blank(text, len)) {
        config_errors_add(errs, "%s: the file is empty (expected a JSON object)", path);
        return NULL;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        config_errors_add(errs, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (json_is_object(root))
        cfg = walk_root(root, text, len, path, errs);
    else
        config_errors_add(errs, "%s: the top level must be a JSON object, not an array", path);
    json_decref(root);
    return cfg;
}

struct config *config_from_document(const struct config *cfg, struct config_errors *errs)
{
    /* A copy, not a reference: the running generation's config may be freed on a
     * worker thread while this one is built, and jansson's reference counts are not
     * for sharing across threads. */
    json_t *copy = json_deep_copy(cfg->document);
    if (!copy) {
        config_errors_add(errs, "%s: out of memory", cfg->path);
        return NULL;
    }
    struct config *built = walk_root(copy, NULL, 0, cfg->path, errs);
    json_decref(copy);
    return built;
}

/* Reads the whole file; NULL with an error added. Owned result, NUL-terminated. */
static char *read_file(const char *path, size_t *len, struct config_errors *errs)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, used = 0;
    if (!f) {
        config_errors_add(errs, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (used + 1 >= cap) {
            char *grown = cap < CONFIG_MAX_BYTES ? realloc(buf, cap ? cap * 2 : 8192) : NULL;
            if (!grown) {
                config_errors_add(errs, "cannot read %s: %s", path, cap < CONFIG_MAX_BYTES
                                  ? "out of memory" : "larger than 16 MiB");
                goto fail;
            }
            buf = grown;
            cap = cap ? cap * 2 : 8192;
        }
        size_t n = fread(buf + used, 1, cap - used - 1, f);
        used += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        config_errors_add(errs, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    buf[used] = '\0';
    *len = used;
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

struct config *config_load(const char *path, struct config_errors *errs)
{
    size_t len;
    char *text = read_file(path, &len, errs);
    if (!text)
        return NULL;
    struct config *cfg = config_parse(text, len, path, errs);
    free(text);
    return cfg;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    json_decref(cfg->document);
    free(cfg->dns.resolvers);
    free(cfg->admin.token);
    free(cfg->log.access);
    for (size_t i = 0; i < cfg->n_listeners; i++)
        free_listener(&cfg->listeners[i]);
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->n_pools; i++)
        free_pool(&cfg->pools[i]);
    free(cfg->pools);
    free(cfg);
}

void config_errors_clear(struct config_errors *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->count; i++)
        free(errs->messages[i]);
    free(errs->messages);
    errs->messages = NULL;
    errs->count = 0;
}

int config_pool_index(const struct config *cfg, const char *name)
{
    if (!cfg || !name)
        return -1;
    for (size_t i = 0; i < cfg->n_pools; i++)
        if (cfg->pools[i].name && strcmp(cfg->pools[i].name, name) == 0)
            return (int)i;
    return -1;
}

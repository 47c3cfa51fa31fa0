/* config_internal — what the files of the config module share; not part of the API.
 *
 * The validator is one pass over the jansson document. A `struct walker` carries the
 * JSON path of the value being looked at (a stack of keys and array indices) and the
 * error list; every error is reported through it, so each message starts with the path
 * (and, when the position scanner finds it, the line of the value in the raw text).
 *
 * Conventions of the helpers below: a `walk_*` function that reads obj[key] pushes `key`
 * on the path itself, returns true when it stored a value in *out, and false when the key
 * is absent (nothing reported, *out keeps its default) or the value is wrong (reported).
 */
#ifndef FERRY_CONFIG_INTERNAL_H
#define FERRY_CONFIG_INTERNAL_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* Deeper than any path of the schema (listeners.x.routes[0].match.host is 6); unknown
 * keys are reported at their own level and never descended into. */
#define WALK_MAX_DEPTH 16

struct walk_seg {
    const char *key;            /* borrowed (document or literal); NULL = array index */
    size_t index;
};

struct walker {
    const char *text;           /* borrowed: the raw document, for line numbers; may be NULL */
    size_t len;
    struct walk_seg segs[WALK_MAX_DEPTH];
    size_t depth;               /* may exceed WALK_MAX_DEPTH; extra segments are not kept */
    struct config_errors *errs; /* borrowed */
    size_t n_errors;            /* counted even when a message could not be allocated */
    size_t scan_budget;         /* bytes json_pos_line() may still scan; see WALK_SCAN_BUDGET */
};

/* Each line lookup re-scans the text, so thousands of errors in a huge file would cost
 * quadratic time. Past this many scanned bytes, messages go without "(line N)". */
#define WALK_SCAN_BUDGET (64u << 20)

/* Range of every integer key, as "min, max" argument pairs for walk_uint()/walk_u64().
 * Chosen wide enough for any real deployment, narrow enough to catch unit mistakes
 * (seconds written as ms, a port in a weight) and to keep every value in `unsigned`.
 *                                 min, max              default / note */
#define RANGE_WORKERS             1, 256                /* "auto"      */
/*      ports in addresses:           1..65535              (addr.c)    */
#define RANGE_TIMEOUT_MS          1, 86400000           /* 1 ms..1 day; also keepalive idle */
#define RANGE_STOP_GRACE_MS       0, 3600000            /* 0 = off; up to an hour */
#define RANGE_MAX_CONNECTIONS     1, 10000000           /* 20000       */
#define RANGE_MAX_HEADER_BYTES    1024, 1048576         /* 16384       */
#define RANGE_MAX_HEADERS         1, 1000               /* 100         */
#define RANGE_MAX_BODY_BYTES      0, 4611686018427387904LL /* 0 = unlimited; 2^62 */
#define RANGE_WEIGHT              1, 256                /* 1           */
#define RANGE_BACKEND_MAX_CONN    0, 10000000           /* 0 = unlimited */
#define RANGE_RETRIES             0, 10                 /* 1           */
#define RANGE_KEEPALIVE_MAX_IDLE  0, 100000             /* 32          */
#define RANGE_HC_RISE_FALL        1, 100                /* 2 / 3       */
#define RANGE_HC_INTERVAL_MS      100, 3600000          /* 2000        */
#define RANGE_HC_TIMEOUT_MS       1, 600000             /* 1000, and < interval_ms */
#define RANGE_HTTP_STATUS         100, 599              /* expect_status: [200] */
#define RANGE_SLOW_START_MS       0, 3600000            /* 0 = off; up to an hour */
#define RANGE_PASSIVE_FAILURES    0, 100                /* 3, 0 = off  */
#define RANGE_EJECT_MS            1, 86400000           /* 10000       */
#define RANGE_STICKY_TTL_S        0, 315360000          /* 0 = session cookie; 10 years */
#define RANGE_SESSION_CACHE       0, 10000000           /* 20480, 0 = off */
#define RANGE_H2_STREAMS          1, 10000              /* 128         */
#define RANGE_H2_WINDOW           1, 2147483647         /* 65535 (RFC 9113 §6.9.1) */
#define RANGE_H2_FRAME            16384, 16777215       /* 16384 (RFC 9113 §6.5.2) */
#define RANGE_UDP_RESPONSES       0, 1000000            /* 0 = a flow ends by idle_ms only */
#define RANGE_UDP_MAX_FLOWS       1, 10000000           /* 65536       */
#define RANGE_DNS_TTL_MS          100, 86400000         /* dns.min_ttl_ms 1000, max_ttl_ms 300000 */

/* walk.c: path and errors */
void walk_push(struct walker *w, const char *key);
void walk_push_index(struct walker *w, size_t index);
void walk_pop(struct walker *w);
/* Reports an error at the current path: "PATH (line N): message". */
void walk_error(struct walker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports an error at the current path extended by `key` (for missing keys and the like). */
void walk_error_at(struct walker *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends a message not tied to a path (file and syntax errors). */
void config_errors_add(struct config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes the current path ("pools.web.backends[1]") into buf, truncating. */
void walk_format_path(const struct walker *w, char *buf, size_t size);

/* walk.c: did-you-mean. Returns the candidate closest to `word` (edit distance <= 2,
 * transpositions count 1), or NULL. `candidates` has n entries (NULL entries skipped). */
const char *walk_suggest(const char *word, const char *const *candidates, size_t n);
size_t walk_count(const char *const *null_terminated);

/* walk.c: values at the current path (no push) */
bool walk_value_int(struct walker *w, const json_t *v, json_int_t min, json_int_t max,
                    json_int_t *out);
bool walk_value_string(struct walker *w, const json_t *v, char **out /* owned */);

/* walk.c: members, obj[key] (push/pop done inside) */
bool walk_uint(struct walker *w, const json_t *obj, const char *key, json_int_t min,
               json_int_t max, unsigned *out);
bool walk_u64(struct walker *w, const json_t *obj, const char *key, json_int_t min,
              json_int_t max, uint64_t *out);
bool walk_bool(struct walker *w, const json_t *obj, const char *key, bool *out);
/* Non-empty string, copied into *out (owned; a previous value is freed). With
 * `nullable`, JSON null is accepted and stores NULL. */
bool walk_string(struct walker *w, const json_t *obj, const char *key, bool nullable,
                 char **out);
/* One of `names` (NULL-terminated); *out = its index. */
bool walk_enum(struct walker *w, const json_t *obj, const char *key,
               const char *const *names, int *out);
/* Reports "expected an object, got ..." unless v is an object. */
bool walk_is_object(struct walker *w, const json_t *v);
/* obj[key] if it is an object; NULL when absent, null (only with `nullable`) or wrong. */
const json_t *walk_object(struct walker *w, const json_t *obj, const char *key, bool nullable);
/* obj[key] if it is an array with at least `min_items` entries; NULL otherwise. */
const json_t *walk_array(struct walker *w, const json_t *obj, const char *key,
                         size_t min_items);
/* Reports "required key is missing" when obj has no `key`; returns whether it is there. */
bool walk_require(struct walker *w, const json_t *obj, const char *key);
/* Reports every key of obj not in `allowed` (NULL-terminated), with a suggestion. */
void walk_check_keys(struct walker *w, const json_t *obj, const char *const *allowed);
/* strdup that reports "out of memory" at the current path. */
char *walk_strdup(struct walker *w, const char *s);
/* calloc that reports "out of memory" at the current path. */
void *walk_calloc(struct walker *w, size_t n, size_t size);
/* Short rendering of a value for messages: "string \"abc\"", "1.5", "null", "an object". */
void walk_describe(const json_t *v, char *buf, size_t size);

/* addr.c (config_addr_parse and config_addr_equal are in config.h) */
bool walk_addr(struct walker *w, const json_t *obj, const char *key, unsigned flags,
               struct cfg_addr *out);
/* Listener and pool names: 1..64 of [A-Za-z0-9_.:-] (they go into logs and metrics). */
bool walk_check_name(struct walker *w, const char *name);
/* "port": 1..5 digits, 1..65535; 0, or -1 with the reason in why. */
int config_port_parse(const char *text, unsigned *port, char *why, size_t why_size);

/* json_pos.c: line (1-based) of the value at segs[0..n) in text, or of its deepest
 * existing ancestor; 0 when not even the first segment is found. */
unsigned json_pos_line(const char *text, size_t len, const struct walk_seg *segs, size_t n);

/* listeners.c / pools.c: section parsers (walker positioned at the section's parent). */
void parse_pools(struct walker *w, const json_t *root, struct config *cfg);
void parse_listeners(struct walker *w, const json_t *root, struct config *cfg);
void free_listener(struct cfg_listener *l);
void free_pool(struct cfg_pool *p);

/* l4.c: udp listeners and the PROXY protocol keys. parse_listener_l4 runs once the
 * listener's mode and pool are parsed; parse_pool_l4 reads pools.NAME.proxy_protocol. */
void parse_listener_l4(struct walker *w, const json_t *v, const struct config *cfg,
                       struct cfg_listener *l);
void free_listener_l4(struct cfg_listener *l);
void parse_pool_l4(struct walker *w, const json_t *pool, struct cfg_pool *p);

/* dns.c: backends found by DNS. parse_backend_target reads a backend's "address" or
 * "srv" (and "family"): a numeric address (or localhost) fills *address, a host name
 * or "srv" fills *dns (name, port, family; the caller owns dns->name), anything else
 * is reported. parse_dns_settings reads "resolvers" and "dns". */
enum backend_kind { BACKEND_INVALID, BACKEND_STATIC, BACKEND_DNS };
enum backend_kind parse_backend_target(struct walker *w, const json_t *v,
                                       struct cfg_addr *address, struct cfg_dns_backend *dns);
void free_dns_backend(struct cfg_dns_backend *dns);
void parse_dns_settings(struct walker *w, const json_t *root, struct config *cfg);

#endif

/* config — the JSON config file turned into a validated, typed, immutable struct.
 *
 * config_load() parses with jansson (duplicate keys rejected), walks the document once,
 * collects *every* error (each naming its JSON path, e.g.
 * "pools.web.backends[1].weight: 300 is out of range 1..256", or "line:column" for syntax
 * errors) and either returns a complete struct config or NULL with the errors filled in.
 * Nothing downstream reads JSON or re-checks types: a struct config is always valid.
 * All strings and arrays inside are owned by the struct and freed by config_free().
 */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_format { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };
enum listener_mode { MODE_HTTP, MODE_TCP, MODE_UDP };
/* The PROXY protocol header ferry writes to a pool's backends. */
enum proxy_protocol_version { PROXY_PROTOCOL_OFF, PROXY_PROTOCOL_V1, PROXY_PROTOCOL_V2 };
enum balance_algo { BALANCE_ROUND_ROBIN, BALANCE_LEAST_CONN, BALANCE_RANDOM_TWO, BALANCE_HASH };
/* What "hash" balancing hashes (pools.NAME.hash_key). */
enum hash_key_kind {
    HASH_KEY_NONE,          /* not a hash pool */
    HASH_KEY_SOURCE_IP,     /* the client's address (without its port; the one a PROXY
                               header names, a udp flow's client) */
    HASH_KEY_HEADER,        /* "header:NAME": the value of a request header (http) */
    HASH_KEY_COOKIE,        /* "cookie:NAME": the value of a request cookie (http) */
    HASH_KEY_URI,           /* the request path without its query (http) */
    HASH_KEY_SNI,           /* the TLS server name the client asked for (tcp) */
};
enum health_check_type { HEALTH_CHECK_NONE, HEALTH_CHECK_TCP, HEALTH_CHECK_HTTP };
enum verify_client { VERIFY_CLIENT_OFF, VERIFY_CLIENT_OPTIONAL, VERIFY_CLIENT_REQUIRED };
/* Values are the TLS wire versions, equal to OpenSSL's TLS1_2_VERSION / TLS1_3_VERSION. */
enum tls_min_version { TLS_MIN_1_2 = 0x0303, TLS_MIN_1_3 = 0x0304 };

/* A socket address as written ("127.0.0.1:80", "[::1]:80", "0.0.0.0:8443"), resolved
 * numerically (no DNS at load time). */
struct cfg_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[64];              /* as written in the file */
};

struct cfg_tls_certificate {
    char *cert;                 /* PEM file, full chain */
    char *key;                  /* PEM private key */
    char *ocsp_response;        /* DER file or NULL */
};

struct cfg_listener_tls {
    struct cfg_tls_certificate *certificates;   /* >= 1; the first is the default */
    size_t n_certificates;
    enum tls_min_version min_version;           /* default TLS_MIN_1_2 */
    char *ciphers;              /* TLS <= 1.2 cipher list; default Mozilla intermediate */
    char *ciphersuites;         /* TLS 1.3 suites; default OpenSSL's */
    char **alpn;                /* default {"h2", "http/1.1"} for http, none for tcp */
    size_t n_alpn;
    char *client_ca;            /* PEM file or NULL (mTLS off) */
    enum verify_client verify_client;  /* default OFF, REQUIRED when client_ca is set */
    bool session_tickets;       /* default true */
    unsigned session_cache;     /* server-side cache entries, default 20480; 0 = off */
    char *ticket_keys_file;     /* session-ticket keys shared by a fleet (first encrypts,
                                   all decrypt); NULL: the daemon's own rotated keys */
};

struct cfg_route {
    char *host;                 /* lower-case exact host or "*.suffix"; NULL = any */
    char *path_prefix;          /* NULL = any */
    char *sni;                  /* tcp listeners without tls: ClientHello SNI; NULL = any */
    size_t pool;                /* index into config.pools */
};

/* HTTP/2 on an http listener ("h2" in tls.alpn, or h2c). */
struct cfg_http2 {
    bool h2c;                   /* plain listeners: HTTP/2 with prior knowledge; default false */
    unsigned max_concurrent_streams;    /* default 128 */
    unsigned initial_window_bytes;      /* default 65535 */
    unsigned max_frame_bytes;           /* default 16384 */
    bool websocket;             /* WebSocket over HTTP/2 (RFC 8441 extended CONNECT,
                                   SETTINGS_ENABLE_CONNECT_PROTOCOL); default true */
};

/* An address block ("10.0.0.0/8", "::1/128"; a bare address is a host). */
struct cfg_cidr {
    int family;                 /* AF_INET or AF_INET6 */
    unsigned char addr[16];     /* network byte order; host bits are zero */
    unsigned prefix;            /* 0..32 or 0..128 */
};

/* udp listeners: how flows (a client address:port) live. */
struct cfg_udp {
    unsigned idle_ms;           /* a flow ends after this without a datagram; default 30000 */
    unsigned responses;         /* replies each client datagram expects: a flow ends once
                                   it got them all; 0 = it ends by idle_ms only (default) */
    unsigned max_flows;         /* flows at once per listener; new ones are dropped beyond;
                                   default 65536 */
};

struct cfg_listener {
    char *name;
    struct cfg_addr listen;
    enum listener_mode mode;
    struct cfg_udp udp;         /* udp listeners; defaults when the key is absent */
    bool proxy_protocol;        /* every connection starts with a PROXY v1/v2 header */
    struct cfg_cidr *proxy_protocol_from;   /* NULL = every peer sends one; else only
                                               these peers (others are direct clients) */
    size_t n_proxy_protocol_from;
    struct cfg_listener_tls *tls;  /* NULL = plaintext */
    struct cfg_http2 http2;     /* http listeners; defaults when the key is absent */
    struct cfg_route *routes;   /* a bare "pool" key becomes one catch-all route */
    size_t n_routes;
};

struct cfg_backend {
    char *name;                 /* default: the address text (found by DNS: always it) */
    struct cfg_addr address;
    unsigned weight;            /* 1..256, default 1 */
    unsigned max_connections;   /* 0 = unlimited */
    bool backup;                /* used only when no other backend is eligible */
    bool drain;                 /* no new requests or connections (in-flight ones finish) */
};

/* Which records a host name's lookups ask for (backends[].family). */
enum cfg_family { FAMILY_ANY, FAMILY_IPV4, FAMILY_IPV6 };

/* A backends[] entry whose addresses come from DNS: "address": "name:port" (the A
 * and AAAA records of name, each address with that port) or "srv": "_svc._proto.name"
 * (its SRV records: targets, ports, weights, priorities; then the targets' A and
 * AAAA records). proxy/discovery/ resolves it and adds what it found to the pool's
 * backends (config_pool_add_backends) before a generation is built. */
struct cfg_dns_backend {
    size_t index;               /* its place in the pool's backends[] as written */
    bool is_srv;
    char *name;                 /* the host or SRV name: lower case, no final dot */
    unsigned port;              /* host names: the port written; srv: 0 (records say) */
    enum cfg_family family;     /* default FAMILY_ANY: A and AAAA */
    struct cfg_backend each;    /* weight (host names only: SRV records give theirs),
                                   max_connections, backup and drain of every address
                                   found; name and address unused */
};

struct cfg_health_check {
    enum health_check_type type;   /* NONE when the key is absent */
    char *path;                 /* http: default "/" */
    char *host;                 /* http: Host header; NULL = the backend address */
    int *expect_status;         /* http: default {200} */
    size_t n_expect_status;
    unsigned interval_ms;       /* default 2000 */
    unsigned timeout_ms;        /* default 1000 */
    unsigned rise;              /* default 2 */
    unsigned fall;              /* default 3 */
    char *expect_body;          /* http: a substring the first 4 KiB of the body must
                                   hold; NULL = any */
    bool initial_up;            /* "initial": the state of a backend first seen (at start,
                                   or added by a reload); default "up" */
};

/* Passive ejection: failures seen by traffic take a backend out for a while. */
struct cfg_passive {
    unsigned failures;          /* consecutive ones that eject; default 3, 0 = off */
    unsigned eject_ms;          /* default 10000 */
    bool on_5xx;                /* a 5xx response counts as a failure; default false */
};

/* Sticky sessions (http pools): a cookie names the backend that served the first
 * response. */
struct cfg_sticky {
    char *cookie;               /* its name; NULL = off */
    unsigned ttl_s;             /* Max-Age; 0 = a session cookie (default) */
};

struct cfg_pool_tls {
    bool verify;                /* default true */
    char *ca;                   /* PEM file; NULL = system store */
    char *sni;                  /* NULL = none sent */
    char *cert;                 /* client certificate (optional, with key) */
    char *key;
};

struct cfg_pool {
    char *name;
    enum balance_algo balance;  /* default round_robin */
    enum hash_key_kind hash_key;    /* BALANCE_HASH only (required there) */
    char *hash_key_name;        /* HASH_KEY_HEADER / HASH_KEY_COOKIE: the name */
    /* The entries with an address, in file order; then, once config_pool_add_backends
     * ran, those found by DNS. At least one entry (of either kind) is not a backup;
     * a pool whose DNS names resolved to nothing yet may have none. */
    struct cfg_backend *backends;
    size_t n_backends;
    struct cfg_dns_backend *dns;    /* the entries resolved by DNS, in file order */
    size_t n_dns;
    struct cfg_sticky sticky;
    unsigned slow_start_ms;     /* a backend coming up ramps its weight from 10% over
                                   this long; 0 = off (default) */
    struct cfg_passive passive;
    struct cfg_health_check health_check;
    unsigned keepalive_max_idle;        /* default 32; 0 = no upstream keep-alive */
    unsigned keepalive_idle_timeout_ms; /* default 60000 */
    unsigned retries;           /* default 1 */
    struct cfg_pool_tls *tls;   /* NULL = plaintext to backends */
    enum proxy_protocol_version proxy_protocol; /* header sent on every new backend
                                                   connection; default OFF */
};

struct json_t;

/* "resolvers" takes at most this many addresses. */
#define CFG_DNS_MAX_RESOLVERS 16

struct config {
    char *path;                 /* the file it was loaded from */
    struct json_t *document;    /* owned (a jansson reference): the file as parsed, for
                                   comparing generations (config/diff.h) */
    unsigned workers;           /* resolved: "auto" = online CPUs; >= 1 */
    struct {
        bool enabled;           /* false when "admin" is null */
        struct cfg_addr listen; /* default 127.0.0.1:9901 */
        char *token;            /* NULL = no auth */
    } admin;
    struct {
        enum log_level level;   /* default info */
        char *access;           /* "stdout", "stderr" or a path; NULL = off */
        enum log_format format; /* default json */
    } log;
    struct {
        unsigned connect_ms, client_header_ms, client_idle_ms,
                 upstream_response_ms, tcp_idle_ms, drain_ms;
        unsigned stop_grace_ms; /* SIGTERM/SIGINT: /healthz 503 this long before the
                                   drain; default 0 */
    } timeouts;
    struct {
        unsigned max_connections;   /* default 20000 */
        unsigned max_header_bytes;  /* default 16384 */
        unsigned max_headers;       /* default 100 */
        uint64_t max_body_bytes;    /* default 0 = unlimited */
    } limits;
    struct cfg_listener *listeners;
    size_t n_listeners;
    struct cfg_pool *pools;
    size_t n_pools;
    struct {
        struct cfg_addr *resolvers; /* "resolvers"; NULL = the nameservers of
                                       /etc/resolv.conf */
        size_t n_resolvers;
        unsigned min_ttl_ms;        /* a record's TTL is clamped to these; 1000 */
        unsigned max_ttl_ms;        /* 300000 */
    } dns;
};

/* Every problem found in one pass, each a complete human-readable line. */
struct config_errors {
    char **messages;            /* owned */
    size_t count;
};

/* Loads and validates FILE. Returns an owned config, or NULL with errs filled
 * (including "cannot open FILE: reason"). errs must be zero-initialised. */
struct config *config_load(const char *path, struct config_errors *errs);

/* Same, from text already in memory; `path` is used for messages and config.path. */
struct config *config_parse(const char *text, size_t len, const char *path,
                            struct config_errors *errs);

/* A new config from cfg's document: what config_parse of the same text gave, without
 * reading the file again (a change of backends found by DNS builds a generation from
 * the running config this way). NULL with errs filled when out of memory. */
struct config *config_from_document(const struct config *cfg, struct config_errors *errs);

void config_free(struct config *cfg);
void config_errors_clear(struct config_errors *errs);
/* Appends one complete message (printf-style). */
void config_errors_add(struct config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

enum addr_flags { ADDR_ALLOW_LOCALHOST = 1 };
/* Parses "a.b.c.d:port" or "[v6]:port" (numeric only; with ADDR_ALLOW_LOCALHOST also
 * "localhost:port"); returns 0, or -1 with the reason in why. */
int config_addr_parse(const char *text, unsigned flags, struct cfg_addr *out,
                      char *why, size_t why_size);
/* Same socket address (family, address, port), however it was written:
 * "127.0.0.1:08080" and "127.0.0.1:8080", "[::1]:80" and "[0::1]:80" are equal. */
bool config_addr_equal(const struct cfg_addr *a, const struct cfg_addr *b);

/* Adds backends found by DNS to pool `pool` of a config not yet built into a
 * generation: copies of add[0..n), names included. One whose address or name the pool
 * has already (a backend written with that address, or one an earlier entry found)
 * is left out. Returns how many were left out, or -1 when out of memory (then nothing
 * was added). */
int config_pool_add_backends(struct config *cfg, size_t pool, const struct cfg_backend *add,
                             size_t n);
/* How the entry is written: "api.internal:8080" or the SRV name. */
void config_dns_backend_text(const struct cfg_dns_backend *e, char *buf, size_t size);
/* "any", "ipv4", "ipv6". */
const char *config_family_name(enum cfg_family family);

/* "http", "tcp", "udp". */
const char *config_mode_name(enum listener_mode mode);

/* Does the block hold this address (AF_INET or AF_INET6; an IPv4-mapped IPv6 address
 * matches IPv4 blocks)? */
bool config_cidr_contains(const struct cfg_cidr *block, const struct sockaddr *sa);

/* Index of the pool named `name`, or -1. */
int config_pool_index(const struct config *cfg, const char *name);

#endif

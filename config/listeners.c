/* listeners — the "listeners" section: address, mode, TLS termination, routes.
 * Runs after parse_pools(), so pool references resolve to indices right here. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

static const char *const LISTENER_KEYS[] = { "listen", "mode", "tls", "http2", "pool",
                                              "routes", "udp", "proxy_protocol",
                                              "proxy_protocol_from", NULL };
static const char *const HTTP2_KEYS[] = { "h2c", "max_concurrent_streams",
                                          "initial_window_bytes", "max_frame_bytes",
                                          "websocket", NULL };
static const char *const ROUTE_KEYS[] = { "match", "pool", NULL };
static const char *const MATCH_KEYS[] = { "host", "path_prefix", "sni", NULL };
static const char *const TLS_KEYS[] = {
    "certificates", "min_version", "ciphers", "ciphersuites", "alpn", "client_ca",
    "verify_client", "session_tickets", "session_cache", "ticket_keys_file", NULL };
static const char *const CERT_KEYS[] = { "cert", "key", "ocsp_response", NULL };

/* Same order as the enums they map to. */
static const char *const MODE_NAMES[] = { "http", "tcp", "udp", NULL };
static const char *const VERIFY_NAMES[] = { "off", "optional", "required", NULL };
static const char *const MIN_VERSION_NAMES[] = { "TLS1.2", "TLS1.3", NULL };

/* Mozilla "intermediate" (TLS 1.2 part): forward secrecy and AEAD only. */
static const char MOZILLA_INTERMEDIATE[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

/* ---- tls ----------------------------------------------------------------------- */

static void parse_certificate(struct walker *w, const json_t *v, struct cfg_tls_certificate *c)
{
    if (!walk_is_object(w, v))
        return;
    walk_check_keys(w, v, CERT_KEYS);
    if (walk_require(w, v, "cert"))
        walk_string(w, v, "cert", false, &c->cert);
    if (walk_require(w, v, "key"))
        walk_string(w, v, "key", false, &c->key);
    walk_string(w, v, "ocsp_response", true, &c->ocsp_response);
}

static void parse_certificates(struct walker *w, const json_t *o, struct cfg_listener_tls *t)
{
    const json_t *list;
    if (!walk_require(w, o, "certificates") || !(list = walk_array(w, o, "certificates", 1)))
        return;
    t->certificates = walk_calloc(w, json_array_size(list), sizeof *t->certificates);
    if (!t->certificates)
        return;
    t->n_certificates = json_array_size(list);
    walk_push(w, "certificates");
    for (size_t i = 0; i < t->n_certificates; i++) {
        walk_push_index(w, i);
        parse_certificate(w, json_array_get(list, i), &t->certificates[i]);
        walk_pop(w);
    }
    walk_pop(w);
}

/* An http listener speaks HTTP/1.1 and HTTP/2 only, so advertising anything else
 * would make a client talk a protocol we then fail to parse. */
static void check_alpn_entry(struct walker *w, const char *proto, enum listener_mode mode)
{
    if (strlen(proto) > 255)
        walk_error(w, "protocol names are 1..255 bytes");
    else if (mode == MODE_HTTP && strcmp(proto, "http/1.1") != 0 && strcmp(proto, "h2") != 0)
        walk_error(w, "\"%s\" is not supported by this listener (http listeners speak "
                   "\"h2\" and \"http/1.1\")", proto);
}

/* What an http listener offers when tls.alpn is absent: HTTP/2 first. */
static void default_http_alpn(struct walker *w, struct cfg_listener_tls *t)
{
    static const char *const protos[] = { "h2", "http/1.1" };
    t->alpn = walk_calloc(w, 2, sizeof *t->alpn);
    for (size_t i = 0; t->alpn && i < 2; i++)
        if ((t->alpn[i] = walk_strdup(w, protos[i])))
            t->n_alpn = i + 1;
}

static void parse_alpn(struct walker *w, const json_t *o, struct cfg_listener_tls *t,
                       enum listener_mode mode)
{
    const json_t *list = walk_array(w, o, "alpn", 0);
    if (!json_object_get(o, "alpn") && mode == MODE_HTTP) {
        default_http_alpn(w, t);
        return;
    }
    if (!list || json_array_size(list) == 0)
        return;
    if (!(t->alpn = walk_calloc(w, json_array_size(list), sizeof *t->alpn)))
        return;
    t->n_alpn = json_array_size(list);
    walk_push(w, "alpn");
    for (size_t i = 0; i < t->n_alpn; i++) {
        walk_push_index(w, i);
        if (walk_value_string(w, json_array_get(list, i), &t->alpn[i]))
            check_alpn_entry(w, t->alpn[i], mode);
        walk_pop(w);
    }
    walk_pop(w);
}

static void parse_verify_client(struct walker *w, const json_t *o, struct cfg_listener_tls *t)
{
    int verify;
    t->verify_client = t->client_ca ? VERIFY_CLIENT_REQUIRED : VERIFY_CLIENT_OFF;
    if (!walk_enum(w, o, "verify_client", VERIFY_NAMES, &verify))
        return;
    t->verify_client = (enum verify_client)verify;
    if (t->verify_client != VERIFY_CLIENT_OFF && !t->client_ca)
        walk_error_at(w, "verify_client", "\"%s\" needs \"client_ca\" (the CA that signs "
                      "client certificates)", VERIFY_NAMES[verify]);
}

static void parse_ticket_keys_file(struct walker *w, const json_t *o, struct cfg_listener_tls *t)
{
    if (walk_string(w, o, "ticket_keys_file", true, &t->ticket_keys_file)
        && t->ticket_keys_file && !t->session_tickets)
        walk_error_at(w, "ticket_keys_file", "needs \"session_tickets\": true (the keys "
                      "only encrypt session tickets)");
}

static void parse_listener_tls(struct walker *w, const json_t *lst, struct cfg_listener *l)
{
    const json_t *o = walk_object(w, lst, "tls", true);
    int version;
    if (!o)
        return;
    walk_push(w, "tls");
    struct cfg_listener_tls *t = l->tls = walk_calloc(w, 1, sizeof *l->tls);
    if (t) {
        t->min_version = TLS_MIN_1_2;
        t->session_tickets = true;
        t->session_cache = 20480;
        walk_check_keys(w, o, TLS_KEYS);
        parse_certificates(w, o, t);
        if (walk_enum(w, o, "min_version", MIN_VERSION_NAMES, &version))
            t->min_version = version == 0 ? TLS_MIN_1_2 : TLS_MIN_1_3;
        if (!walk_string(w, o, "ciphers", false, &t->ciphers) && !t->ciphers)
            t->ciphers = walk_strdup(w, MOZILLA_INTERMEDIATE);
        walk_string(w, o, "ciphersuites", false, &t->ciphersuites);
        parse_alpn(w, o, t, l->mode);
        walk_string(w, o, "client_ca", true, &t->client_ca);
        parse_verify_client(w, o, t);
        walk_bool(w, o, "session_tickets", &t->session_tickets);
        walk_uint(w, o, "session_cache", RANGE_SESSION_CACHE, &t->session_cache);
        parse_ticket_keys_file(w, o, t);
    }
    walk_pop(w);
}

/* ---- http2 --------------------------------------------------------------------- */

static void parse_http2(struct walker *w, const json_t *lst, struct cfg_listener *l)
{
    struct cfg_http2 *h = &l->http2;
    h->max_concurrent_streams = 128;
    h->initial_window_bytes = 65535;
    h->max_frame_bytes = 16384;
    h->websocket = true;
    const json_t *o = walk_object(w, lst, "http2", false);
    if (!o)
        return;
    if (l->mode != MODE_HTTP) {
        walk_error_at(w, "http2", "only allowed on http listeners");
        return;
    }
    walk_push(w, "http2");
    walk_check_keys(w, o, HTTP2_KEYS);
    walk_bool(w, o, "h2c", &h->h2c);
    if (h->h2c && l->tls)
        walk_error_at(w, "h2c", "only for listeners without tls (with tls, HTTP/2 is "
                      "negotiated by \"h2\" in tls.alpn)");
    walk_uint(w, o, "max_concurrent_streams", RANGE_H2_STREAMS, &h->max_concurrent_streams);
    walk_uint(w, o, "initial_window_bytes", RANGE_H2_WINDOW, &h->initial_window_bytes);
    walk_uint(w, o, "max_frame_bytes", RANGE_H2_FRAME, &h->max_frame_bytes);
    walk_bool(w, o, "websocket", &h->websocket);
    walk_pop(w);
}

/* ---- routes -------------------------------------------------------------------- */

static void resolve_pool(struct walker *w, const json_t *v, const struct config *cfg,
                         size_t *out)
{
    char *name = NULL;
    if (!walk_value_string(w, v, &name))
        return;
    int index = config_pool_index(cfg, name);
    if (index >= 0) {
        *out = (size_t)index;
    } else if (cfg->n_pools > 0) {     /* else "pools" itself is already reported */
        const char **names = calloc(cfg->n_pools, sizeof *names);
        for (size_t i = 0; names && i < cfg->n_pools; i++)
            names[i] = cfg->pools[i].name;
        const char *hint = names ? walk_suggest(name, names, cfg->n_pools) : NULL;
        if (hint)
            walk_error(w, "unknown pool \"%s\" (did you mean \"%s\"?)", name, hint);
        else
            walk_error(w, "unknown pool \"%s\"", name);
        free(names);
    }
    free(name);
}

/* Lower-cases in place; accepts "name", "*.suffix" and "[v6]". */
static bool is_host_pattern(char *host)
{
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    size_t n = strlen(host);
    if (host[0] == '[') {
        struct in6_addr a;
        char inner[64];
        if (n < 3 || n - 2 >= sizeof inner || host[n - 1] != ']')
            return false;
        memcpy(inner, host + 1, n - 2);
        inner[n - 2] = '\0';
        return inet_pton(AF_INET6, inner, &a) == 1;
    }
    const char *name = strncmp(host, "*.", 2) == 0 ? host + 2 : host;
    size_t len = strlen(name);
    return len > 0 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789.-_") == len;
}

static void parse_match_host(struct walker *w, const json_t *m, const char *key, char **out)
{
    if (walk_string(w, m, key, true, out) && *out && !is_host_pattern(*out))
        walk_error_at(w, key, "\"%s\" is not a host name, \"*.suffix\" or \"[v6]\" "
                      "(no port, no scheme)", *out);
}

static void parse_match(struct walker *w, const json_t *route, const struct cfg_listener *l,
                        struct cfg_route *r)
{
    const json_t *m = walk_object(w, route, "match", true);
    if (!m)
        return;
    walk_push(w, "match");
    walk_check_keys(w, m, MATCH_KEYS);
    parse_match_host(w, m, "host", &r->host);
    if (walk_string(w, m, "path_prefix", true, &r->path_prefix) && r->path_prefix
        && r->path_prefix[0] != '/')
        walk_error_at(w, "path_prefix", "\"%s\" must start with \"/\"", r->path_prefix);
    parse_match_host(w, m, "sni", &r->sni);
    if (l->mode != MODE_HTTP) {
        if (json_object_get(m, "host"))
            walk_error_at(w, "host", "only allowed on http listeners (use \"sni\" for tcp)");
        if (json_object_get(m, "path_prefix"))
            walk_error_at(w, "path_prefix", "only allowed on http listeners");
    }
    if (json_object_get(m, "sni") && (l->mode != MODE_TCP || l->tls))
        walk_error_at(w, "sni", "only allowed on tcp listeners without tls%s",
                      l->mode == MODE_HTTP ? " (use \"host\" on http listeners)" : "");
    walk_pop(w);
}

static void parse_route(struct walker *w, const json_t *v, const struct config *cfg,
                        const struct cfg_listener *l, struct cfg_route *r)
{
    if (!walk_is_object(w, v))
        return;
    walk_check_keys(w, v, ROUTE_KEYS);
    if (walk_require(w, v, "pool")) {
        walk_push(w, "pool");
        resolve_pool(w, json_object_get(v, "pool"), cfg, &r->pool);
        walk_pop(w);
    }
    parse_match(w, v, l, r);
}

static void parse_routes(struct walker *w, const json_t *lst, const struct config *cfg,
                         struct cfg_listener *l)
{
    const json_t *list = walk_array(w, lst, "routes", 1);
    if (!list || !(l->routes = walk_calloc(w, json_array_size(list), sizeof *l->routes)))
        return;
    l->n_routes = json_array_size(list);
    walk_push(w, "routes");
    for (size_t i = 0; i < l->n_routes; i++) {
        walk_push_index(w, i);
        parse_route(w, json_array_get(list, i), cfg, l, &l->routes[i]);
        walk_pop(w);
    }
    walk_pop(w);
}

/* A bare "pool" is one catch-all route, so the runtime has a single routing path. */
static void parse_target(struct walker *w, const json_t *v, const struct config *cfg,
                         struct cfg_listener *l)
{
    const json_t *pool = json_object_get(v, "pool");
    const json_t *routes = json_object_get(v, "routes");
    if (pool && routes) {
        walk_error(w, "has both \"pool\" and \"routes\"; keep one");
    } else if (!pool && !routes) {
        walk_error(w, "needs \"pool\" or \"routes\"");
    } else if (routes) {
        parse_routes(w, v, cfg, l);
    } else if ((l->routes = walk_calloc(w, 1, sizeof *l->routes))) {
        l->n_routes = 1;
        walk_push(w, "pool");
        resolve_pool(w, pool, cfg, &l->routes[0].pool);
        walk_pop(w);
    }
}

/* ---- listeners ----------------------------------------------------------------- */

/* A udp and a tcp (or http) listener may share an address: they are different sockets
 * (DNS listens on both). */
static bool is_same_socket(const struct cfg_listener *a, const struct cfg_listener *b)
{
    return (a->mode == MODE_UDP) == (b->mode == MODE_UDP) && a->listen.len && b->listen.len &&
           config_addr_equal(&a->listen, &b->listen);
}

static void parse_listener(struct walker *w, const char *name, const json_t *v,
                           const struct config *cfg, struct cfg_listener *l)
{
    int mode;
    l->mode = MODE_HTTP;
    l->name = walk_strdup(w, name);
    if (!walk_is_object(w, v))
        return;
    walk_check_name(w, name);
    walk_check_keys(w, v, LISTENER_KEYS);
    if (walk_require(w, v, "listen"))
        walk_addr(w, v, "listen", 0, &l->listen);
    if (walk_enum(w, v, "mode", MODE_NAMES, &mode))
        l->mode = (enum listener_mode)mode;
    parse_listener_tls(w, v, l);
    parse_http2(w, v, l);
    parse_target(w, v, cfg, l);
    parse_listener_l4(w, v, cfg, l);
}

static void check_listen_unique(struct walker *w, const struct config *cfg, size_t i)
{
    const struct cfg_listener *l = &cfg->listeners[i];
    for (size_t j = 0; j < i && l->listen.len; j++) {
        const struct cfg_listener *other = &cfg->listeners[j];
        if (is_same_socket(l, other)) {
            walk_error_at(w, "listen", "\"%s\" is already used by listener \"%s\"",
                          l->listen.text, other->name);
            return;
        }
    }
}

void parse_listeners(struct walker *w, const json_t *root, struct config *cfg)
{
    const json_t *listeners;
    const json_t *v;
    const char *name;
    size_t i = 0;
    if (!walk_require(w, root, "listeners")
        || !(listeners = walk_object(w, root, "listeners", false)))
        return;
    walk_push(w, "listeners");
    if (json_object_size(listeners) == 0)
        walk_error(w, "needs at least one listener");
    else if ((cfg->listeners = walk_calloc(w, json_object_size(listeners),
                                           sizeof *cfg->listeners))) {
        cfg->n_listeners = json_object_size(listeners);
        json_object_foreach((json_t *)listeners, name, v) {
            walk_push(w, name);
            parse_listener(w, name, v, cfg, &cfg->listeners[i]);
            check_listen_unique(w, cfg, i++);
            walk_pop(w);
        }
    }
    walk_pop(w);
}

void free_listener(struct cfg_listener *l)
{
    free(l->name);
    if (l->tls) {
        for (size_t i = 0; i < l->tls->n_certificates; i++) {
            free(l->tls->certificates[i].cert);
            free(l->tls->certificates[i].key);
            free(l->tls->certificates[i].ocsp_response);
        }
        free(l->tls->certificates);
        free(l->tls->ciphers);
        free(l->tls->ciphersuites);
        for (size_t i = 0; i < l->tls->n_alpn; i++)
            free(l->tls->alpn[i]);
        free(l->tls->alpn);
        free(l->tls->client_ca);
        free(l->tls->ticket_keys_file);
        free(l->tls);
    }
    for (size_t i = 0; i < l->n_routes; i++) {
        free(l->routes[i].host);
        free(l->routes[i].path_prefix);
        free(l->routes[i].sni);
    }
    free(l->routes);
    free_listener_l4(l);
}

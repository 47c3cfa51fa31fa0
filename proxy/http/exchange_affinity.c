/* What ties a request to a backend beyond the pool's algorithm: its hash key and
 * sticky cookie, taken when it starts; the sticky cookie of its response; and whether
 * its status counts against the backend (passive.on_5xx). */
#include <stdio.h>
#include <string.h>

#include "balance/balance.h"
#include "core/session.h"
#include "http/exchange_internal.h"
#include "runtime/backend.h"

/* The path without its query: what "uri" hashes. */
static size_t path_only(const char *path, size_t len)
{
    const char *query = path ? memchr(path, '?', len) : NULL;
    return query ? (size_t)(query - path) : len;
}

/* What the request's pick needs of it (rt_pick_hint), taken now: a retry picks again
 * after the front end's request is gone. An empty key counts as none. */
void http_exchange_note_affinity(struct http_exchange *ex, const struct http_exchange_request *req)
{
    const struct cfg_pool *cfg = ex->pool->cfg;
    const char *v = NULL;
    size_t len = 0;
    bool has = false;
    ex->hint = (struct rt_pick_hint){ .has_key = false };
    switch (cfg->balance == BALANCE_HASH ? cfg->hash_key : HASH_KEY_NONE) {
    case HASH_KEY_SOURCE_IP:    /* the session's peer: a PROXY header's, when it had one */
        rt_pick_hint_source(ex->pool, &ex->client->addrs.peer.sa, &ex->hint);
        break;
    case HASH_KEY_HEADER:
        has = req->find_header && req->find_header(req, cfg->hash_key_name, &v, &len);
        break;
    case HASH_KEY_COOKIE:
        has = req->find_cookie && req->find_cookie(req, cfg->hash_key_name, &v, &len);
        break;
    case HASH_KEY_URI:
        v = req->route.path;
        len = path_only(v, req->route.path_len);
        has = v != NULL;
        break;
    case HASH_KEY_SNI:     /* tcp listeners only (config.c) */
    case HASH_KEY_NONE:
        break;
    }
    if (has && len > 0) {
        ex->hint.has_key = true;
        ex->hint.key = balance_hash(v, len);
    }
    if (cfg->sticky.cookie && req->find_cookie &&
        req->find_cookie(req, cfg->sticky.cookie, &v, &len))
        ex->hint.has_sticky = balance_sticky_decode(v, len, &ex->hint.sticky);
}

/* The sticky cookie naming the backend that answers, unless the request's cookie
 * already named it: into buf, or NULL. */
const char *http_exchange_sticky_cookie(const struct http_exchange *ex, char *buf, size_t size)
{
    const struct cfg_sticky *sticky = &ex->pool->cfg->sticky;
    if (!sticky->cookie)
        return NULL;
    uint64_t token = rt_pool_sticky_token(ex->pool, ex->backend);
    if (ex->hint.has_sticky && ex->hint.sticky == token)
        return NULL;
    char value[BALANCE_STICKY_LEN + 1];
    balance_sticky_encode(token, value);
    int n = snprintf(buf, size, "%s=%s; Path=/; HttpOnly%s", sticky->cookie, value,
                     ex->listener->tls ? "; Secure" : "");
    if (n > 0 && sticky->ttl_s && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, "; Max-Age=%u", sticky->ttl_s);
    return buf;
}

/* passive.on_5xx: a 5xx from the backend counts against it, as a failure would. */
void http_exchange_judge_status(struct http_exchange *ex, int status)
{
    if (status >= 500 && ex->pool->cfg->passive.on_5xx)
        http_exchange_count_failure(ex);
}

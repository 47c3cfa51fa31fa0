/* http route — which route of an http listener serves a request. Pure: no I/O.
 *
 * Matching (design.md): routes are tried in order and the first match wins.
 *   match.host         exact, or "*.suffix" matching any number of labels before
 *                      ".suffix" (never "suffix" itself); case-insensitive; the port
 *                      and one trailing dot of the request's host are ignored.
 *   match.path_prefix  a byte prefix of the request path (origin-form target).
 * A route without host (or without path_prefix) matches any host (or path).
 */
#ifndef FERRY_HTTP_ROUTE_H
#define FERRY_HTTP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "http1/parse.h"

struct cfg_route;

/* Where a request goes: the authority and the path its target names. For an
 * absolute-form target the host comes from the target (RFC 9112 §3.2.2), else from
 * the Host header. Spans point into the request (borrowed); host may be NULL. */
struct http_route_key {
    const char *host;
    size_t host_len;
    const char *path;
    size_t path_len;
};

/* Builds the key of a parsed request. */
void http_route_key_of(const struct http1_request *req, struct http_route_key *key);

/* Does pattern (lower-case host or "*.suffix") match host (as sent: any case, maybe
 * ":port" or a trailing dot)? */
bool http_route_host_matches(const char *pattern, const char *host, size_t host_len);

/* Index of the first of routes[0..n) that matches key, or -1 (404). */
int http_route_find(const struct cfg_route *routes, size_t n, const struct http_route_key *key);

#endif

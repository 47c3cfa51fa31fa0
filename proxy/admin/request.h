/* admin request — what an admin API request asks for, decided from its bytes alone:
 * the head parsed (strictly, as any HTTP/1.1 request), the endpoint, the method, the
 * bearer token and the query string. Pure (no I/O, no daemon): unit-tested and fuzzed
 * (tests/fuzz/fuzz_admin_request.c). admin.c answers what it says.
 */
#ifndef FERRY_ADMIN_REQUEST_H
#define FERRY_ADMIN_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

/* The admin API takes small requests only. */
enum { ADMIN_MAX_HEAD = 8192, ADMIN_MAX_HEADERS = 32, ADMIN_MAX_TARGET = 2048 };
/* A pool name or backend address (or name) in a path, decoded. */
enum { ADMIN_MAX_SEGMENT = 255 };

enum admin_endpoint {
    ADMIN_NONE,         /* answer `status` with `error` */
    ADMIN_STATUS,       /* GET /status */
    ADMIN_METRICS,      /* GET /metrics */
    ADMIN_RELOAD,       /* POST /reload (dry_run: POST /reload?dry_run=1) */
    ADMIN_HEALTHZ,      /* GET /healthz */
    ADMIN_CONFIG,       /* GET /config */
    ADMIN_DRAIN,        /* POST /pools/NAME/backends/ADDRESS/drain */
    ADMIN_ENABLE,       /* POST /pools/NAME/backends/ADDRESS/enable */
};

struct admin_request {
    enum admin_endpoint endpoint;
    int status;         /* ADMIN_NONE: 400, 401, 403, 404, 405 or 431 */
    const char *error;  /* ADMIN_NONE: why, a short static text for the JSON body */
    const char *allow;  /* 405: the methods the resource takes (RFC 9110 §15.5.6) */
    bool dry_run;       /* ADMIN_RELOAD: build and compare only, apply nothing */
    /* ADMIN_DRAIN, ADMIN_ENABLE: the path's segments, percent-decoded ("%5B::1%5D:80"
     * is "[::1]:80"); which backend they name is the daemon's to find. */
    char pool[ADMIN_MAX_SEGMENT + 1];
    char backend[ADMIN_MAX_SEGMENT + 1];
};

/* Decides buf[0..len) (at most ADMIN_MAX_HEAD bytes are looked at). `token`: the
 * bearer token every request must carry, NULL for none; `enabled`: false when a reload
 * turned the API off (every request is then unauthorized). Returns 1 with *out set,
 * or 0 when the head is not complete yet (call again with more bytes).
 * Order: a malformed head is 400 (431 when too large); an unauthorized request 401
 * (before anything else about it is told); an unknown path 404 (also a segment of
 * /pools/NAME/backends/ADDRESS/... that is empty, too long or badly percent-encoded:
 * no pool or backend has such a name); a wrong method 405; a query string 400, except
 * "dry_run=1" (or 0, true, false) on /reload (a parameter that is ignored would make a
 * question change something); a POST without Authorization that carries Origin or a
 * form content type (what a web page can make a browser send) 403. */
int admin_request_decide(const char *buf, size_t len, const char *token, bool enabled,
                         struct admin_request *out);

#endif

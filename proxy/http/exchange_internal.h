/* Internal to the exchange (exchange.c, exchange_io.c, exchange_record.c,
 * exchange_affinity.c). */
#ifndef FERRY_HTTP_EXCHANGE_INTERNAL_H
#define FERRY_HTTP_EXCHANGE_INTERNAL_H

#include "http/exchange.h"

/* exchange_io.c: bev (owned from now on) becomes the exchange's upstream connection:
 * callbacks set, and a plain connection read by ferry's own event from now on. */
void http_exchange_install(struct http_exchange *ex, struct bufferevent *bev, bool reused);
/* Before a connection leaves the exchange: hand its reads back to libevent (to_pool:
 * the keep-alive pool watches it) or just stop them. */
void http_exchange_disown_reads(struct http_exchange *ex, bool to_pool);

/* exchange_affinity.c: the request's hash key and sticky cookie (ex->hint), taken
 * when it starts, once ex->pool is set; a retry picks again after the front end's
 * request is gone. An empty key counts as none. */
void http_exchange_note_affinity(struct http_exchange *ex, const struct http_exchange_request *req);
/* The Set-Cookie value naming ex->backend (it answers), into buf; NULL when the pool
 * is not sticky or the request's cookie named that backend already. */
const char *http_exchange_sticky_cookie(const struct http_exchange *ex, char *buf, size_t size);
/* passive.on_5xx: a 5xx from the backend counts against it, as a failure would
 * (http_exchange_count_failure). */
void http_exchange_judge_status(struct http_exchange *ex, int status);

/* exchange.c: the response counts against its backend, once (ex->resp_failed): a 5xx
 * counted by on_5xx whose body then breaks is one failure, not two. */
void http_exchange_count_failure(struct http_exchange *ex);

/* exchange_record.c: copies what the access log line needs of req (no method: "-"). */
void http_exchange_note_for_log(struct http_exchange *ex, const struct http_exchange_request *req);

#endif

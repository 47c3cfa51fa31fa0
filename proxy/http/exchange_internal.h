/* Internal to the exchange (exchange.c, exchange_io.c, exchange_record.c). */
#ifndef FERRY_HTTP_EXCHANGE_INTERNAL_H
#define FERRY_HTTP_EXCHANGE_INTERNAL_H

#include "http/exchange.h"

/* exchange_io.c: bev (owned from now on) becomes the exchange's upstream connection:
 * callbacks set, and a plain connection read by ferry's own event from now on. */
void http_exchange_install(struct http_exchange *ex, struct bufferevent *bev, bool reused);
/* Before a connection leaves the exchange: hand its reads back to libevent (to_pool:
 * the keep-alive pool watches it) or just stop them. */
void http_exchange_disown_reads(struct http_exchange *ex, bool to_pool);

/* exchange_record.c: copies what the access log line needs of req (no method: "-"). */
void http_exchange_note_for_log(struct http_exchange *ex, const struct http_exchange_request *req);

#endif

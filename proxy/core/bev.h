/* bev — ending a connection's bufferevent, and ferry's own reads into one. */
#ifndef FERRY_BEV_H
#define FERRY_BEV_H

#include <stddef.h>

#include "core/sockio.h"

struct bufferevent;

/* Frees bev and closes its socket; a TLS connection whose handshake finished first
 * sends close_notify, so OpenSSL keeps its session resumable (libevent frees the SSL
 * without SSL_shutdown, which OpenSSL counts as a failed session). */
void bev_close(struct bufferevent *bev);

/* sockio_read into the input of plain socket bufferevent bev (whose own read event
 * is off): one readv of up to `max` bytes instead of libevent's 4 KiB steps. */
enum sockio_result bev_read_socket(struct bufferevent *bev, size_t max, size_t *got);

#endif

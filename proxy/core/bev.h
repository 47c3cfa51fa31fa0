/* bev — ending a connection's bufferevent. */
#ifndef FERRY_BEV_H
#define FERRY_BEV_H

#include <stddef.h>

struct bufferevent;

/* Frees bev and closes its socket; a TLS connection whose handshake finished first
 * sends close_notify, so OpenSSL keeps its session resumable (libevent frees the SSL
 * without SSL_shutdown, which OpenSSL counts as a failed session). */
void bev_close(struct bufferevent *bev);

/* libevent 2.1 reads a socket at most 4096 bytes per readv, after a FIONREAD probe:
 * two syscalls per 4 KiB. For plain socket bufferevents ferry reads itself, straight
 * into the bufferevent's input, with one readv of up to `max` bytes.
 * Returns BEV_READ_DATA (*got bytes added), BEV_READ_EOF, BEV_READ_AGAIN (nothing
 * yet) or BEV_READ_ERROR (errno says why). */
enum bev_read_result { BEV_READ_DATA, BEV_READ_EOF, BEV_READ_AGAIN, BEV_READ_ERROR };
enum bev_read_result bev_read_socket(struct bufferevent *bev, size_t max, size_t *got);

#endif

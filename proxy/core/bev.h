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
 * two syscalls per 4 KiB of a large body. Called from a read callback on a plain
 * socket bufferevent whose input just grew by a full 4096 bytes, this reads up to
 * `max` more bytes in one readv straight into its input. EOF and errors are left for
 * libevent's next read to report. Returns the bytes added. */
size_t bev_read_more(struct bufferevent *bev, size_t max);

#endif

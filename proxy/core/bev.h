/* bev — ending a connection's bufferevent. */
#ifndef FERRY_BEV_H
#define FERRY_BEV_H

struct bufferevent;

/* Frees bev and closes its socket; a TLS connection whose handshake finished first
 * sends close_notify, so OpenSSL keeps its session resumable (libevent frees the SSL
 * without SSL_shutdown, which OpenSSL counts as a failed session). */
void bev_close(struct bufferevent *bev);

#endif

/* bev — ferry's own I/O on a bufferevent's socket, and ending a bufferevent.
 *
 * libevent 2.1 reads a socket at most 4096 bytes per readv, after a FIONREAD probe
 * (two syscalls per 4 KiB), and its bufferevent_openssl reads TLS in 4 KiB steps
 * without read-ahead (two read(2) per record) and arms its write event for every
 * response (two epoll_ctl). The HTTP session therefore uses a plain socket
 * bufferevent as a pair of buffers and reads and writes the socket itself with
 * these functions, from its own events. */
#ifndef FERRY_BEV_H
#define FERRY_BEV_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct bufferevent;

/* Frees bev and closes its socket; a TLS connection whose handshake finished first
 * sends close_notify, so OpenSSL keeps its session resumable (libevent frees the SSL
 * without SSL_shutdown, which OpenSSL counts as a failed session). */
void bev_close(struct bufferevent *bev);

/* Reads into the input of socket bufferevent bev: one readv of up to `max` bytes
 * (bev_read_socket), or through `ssl` (bev_read_tls: record by record until OpenSSL
 * has nothing buffered, at most `max` bytes — read-ahead on, so a small record costs
 * one read(2)). Returns BEV_READ_DATA (*got bytes added), BEV_READ_EOF,
 * BEV_READ_AGAIN (nothing yet), BEV_READ_WANTS_WRITE (TLS only: OpenSSL must write
 * before it can read on; wait until the socket is writable) or BEV_READ_ERROR (errno
 * or OpenSSL's error queue says why). EOF and ERROR may come with *got > 0: the bytes
 * read before are in the input. */
enum bev_read_result { BEV_READ_DATA, BEV_READ_EOF, BEV_READ_AGAIN, BEV_READ_WANTS_WRITE,
                       BEV_READ_ERROR };
enum bev_read_result bev_read_socket(struct bufferevent *bev, size_t max, size_t *got);
enum bev_read_result bev_read_tls(struct bufferevent *bev, SSL *ssl, size_t max, size_t *got);
/* True when OpenSSL holds input no socket event will announce (records it read ahead
 * but has not returned yet, e.g. after a read stopped at `max`): call bev_read_tls
 * again without waiting for epoll. */
bool bev_tls_holds_input(const SSL *ssl);

/* Writes bev's output through `ssl` until it is empty (BEV_WRITE_DONE) or the socket
 * is full (BEV_WRITE_AGAIN: call again once it is writable); *written = bytes taken.
 * Outputs of one record or less made of several chains are joined first, so that a
 * response head and a small body go out as one record and one write(2). */
enum bev_write_result { BEV_WRITE_DONE, BEV_WRITE_AGAIN, BEV_WRITE_ERROR };
enum bev_write_result bev_write_tls(struct bufferevent *bev, SSL *ssl, size_t *written);

/* The joining above, for a bufferevent_openssl (which writes each chain of its
 * output as its own record and write(2)). */
void bev_join_small_output(struct bufferevent *bev);

#endif

/* sockio — ferry's own I/O between a socket and evbuffers, plain or through OpenSSL.
 *
 * libevent 2.1 reads a socket at most 4096 bytes per readv, after a FIONREAD probe
 * (two syscalls per 4 KiB), and its bufferevent_openssl reads TLS in 4 KiB steps
 * without read-ahead (two read(2) per record) and arms its write event for every
 * response (two epoll_ctl). The HTTP session therefore keeps its client connection as
 * a socket and two evbuffers and moves the bytes with these functions, from its own
 * events (see proxy/ARCHITECTURE.md). Plain upstream bufferevents are read the same
 * way (core/bev.h). */
#ifndef FERRY_SOCKIO_H
#define FERRY_SOCKIO_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct evbuffer;

/* Reads into `in`: one readv of up to `max` bytes (sockio_read), or through `ssl`
 * (sockio_read_tls: record by record until OpenSSL has nothing buffered, at most
 * `max` bytes — read-ahead on, so a small record costs one read(2)). Returns
 * SOCKIO_DATA (*got bytes added), SOCKIO_EOF, SOCKIO_AGAIN (nothing yet),
 * SOCKIO_WANTS_WRITE (TLS only: OpenSSL must write before it can read on; wait until
 * the socket is writable) or SOCKIO_ERROR (errno or OpenSSL's error queue says why).
 * EOF, ERROR and WANTS_WRITE may come with *got > 0: the bytes read before are in
 * `in`. */
enum sockio_result { SOCKIO_DATA, SOCKIO_EOF, SOCKIO_AGAIN, SOCKIO_WANTS_WRITE, SOCKIO_ERROR };
enum sockio_result sockio_read(int fd, struct evbuffer *in, size_t max, size_t *got);
enum sockio_result sockio_read_tls(SSL *ssl, struct evbuffer *in, size_t max, size_t *got);

/* How much the next read of a connection should reserve, given the last reservation
 * (start with SOCKIO_READ_MIN) and what that read got. libevent allocates a buffer
 * block for each reservation that does not fit the last block, rounded up to a power
 * of two, and blocks move whole from one side's buffer to the other's: small messages
 * must get small blocks, bulk transfers large ones (fewer reads). Doubles after a
 * read that filled its reservation, up to SOCKIO_READ_MAX; halves after a read that
 * the minimum would have held (the tail of a response: the next one still starts
 * large), down to SOCKIO_READ_MIN. Every size leaves room for libevent's block
 * header, so blocks are exactly 16 KiB .. 256 KiB. */
enum { SOCKIO_BLOCK_HEADER_ROOM = 256,
       SOCKIO_READ_MIN = 16 * 1024 - SOCKIO_BLOCK_HEADER_ROOM,
       SOCKIO_READ_MAX = 256 * 1024 - SOCKIO_BLOCK_HEADER_ROOM };
size_t sockio_next_read_size(size_t last, size_t got);

/* True when OpenSSL holds input no socket event will announce (records it read ahead
 * but has not returned yet, e.g. after a read stopped at `max`): call sockio_read_tls
 * again without waiting for epoll. */
bool sockio_tls_holds_input(const SSL *ssl);

/* Writes `out` to the socket until it is empty (SOCKIO_DATA, also for nothing to
 * write) or the socket is full (SOCKIO_AGAIN: call again once it is writable), or
 * fails (SOCKIO_ERROR); *written = bytes taken. Through `ssl`, outputs of one record
 * or less made of several chains are joined first, so that a response head and a
 * small body go out as one record and one write(2). */
enum sockio_result sockio_write(int fd, struct evbuffer *out, size_t *written);
enum sockio_result sockio_write_tls(SSL *ssl, struct evbuffer *out, size_t *written);

/* The joining above, for a bufferevent_openssl's output (which writes each chain of
 * its output as its own record and write(2)). */
void sockio_join_small_output(struct evbuffer *out);

#endif

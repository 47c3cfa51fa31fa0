/* Internal to proxy/tcp: the relay session and what relay.c and splice.c share. */
#ifndef FERRY_TCP_INTERNAL_H
#define FERRY_TCP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/session.h"
#include "runtime/runtime.h"

/* Back-pressure: stop reading a side once this much waits for the other side's
 * socket, resume when half of it has been written. */
enum { RELAY_HIGH_WATER = 256 * 1024, RELAY_LOW_WATER = RELAY_HIGH_WATER / 2 };

enum relay_state {
    R_PEEKING,      /* routes by SNI: waiting for the ClientHello (client_header_ms) */
    R_CONNECTING,   /* backend chosen, connecting (TLS listeners: the handshake
                       first, within client_header_ms) */
    R_RELAYING,     /* bufferevents copy both ways */
    R_SPLICING,     /* plain both sides: splice(2) pumps */
    R_CLOSED,
};

/* One direction's end: the bufferevent and what has happened to its stream. */
struct end {
    struct bufferevent *bev;        /* client: owned by session base; upstream: owned */
    bool read_eof;                  /* the peer sent EOF */
    bool write_shut;                /* we sent EOF (shutdown SHUT_WR) */
    bool throttled;                 /* reading paused: the other side is full */
};

struct splice_pump;

struct relay {
    struct session base;
    enum relay_state state;
    struct rt_pool *pool;           /* borrowed from base.runtime */
    struct backend *backend;        /* borrowed from pool; active counted while set */
    struct backend *tried[RT_MAX_ATTEMPTS];
    size_t n_tried;
    struct rt_pick_hint hint;       /* hash pools: the client's address or server name */
    struct end client, upstream;
    struct event *idle_timer;       /* owned */
    int64_t last_activity_ms;
    unsigned idle_ms;
    bool handshake_done;            /* TLS listeners: client handshake completed */
    struct splice_pump *pumps[2];   /* owned in R_SPLICING: client->upstream, back */
    bool splice_tried;              /* moving onto splice(2) was attempted (once) */
};

void relay_set_state(struct relay *r, enum relay_state next);
/* Frees the relay and everything it owns; touch nothing of it afterwards. */
void relay_close(struct session *s);

/* Plain sockets on both sides and every buffer empty: move the relay onto splice(2)
 * (zero-copy through a pipe per direction). False when it cannot (no pipes), and the
 * bufferevent relay simply goes on. */
bool relay_splice_start(struct relay *r);
void relay_splice_free(struct relay *r);

#endif

/* session — what every client connection has in common, whatever its mode.
 *
 * Mode-specific sessions (tcp relay, http) embed struct session as their first member.
 * The worker that accepted the connection owns the session and keeps it on a list so
 * that drain and shutdown can reach it. Rule (style.md §4): a session is freed only by
 * its own code, and a callback that frees it touches nothing afterwards.
 */
#ifndef FERRY_SESSION_H
#define FERRY_SESSION_H

#include <stdbool.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "config/config.h"

struct bufferevent;
struct runtime;
struct rt_listener;
struct session;
struct worker;

struct session_ops {
    /* Free everything now (forced stop, or drain timeout). */
    void (*close)(struct session *s);
    /* Drain began: close if idle (between requests), else finish what is in flight. */
    void (*drain)(struct session *s);
};

struct session {
    const struct session_ops *ops;
    struct worker *worker;              /* borrowed: the owner */
    struct session *prev, *next;        /* the worker's list */
    struct runtime *runtime;            /* ref: generation in use */
    struct rt_listener *listener;       /* borrowed from runtime */
    struct bufferevent *client;         /* owned; NULL for an HTTP session, which keeps
                                           its client socket itself */
    char peer_text[INET6_ADDRSTRLEN];   /* the client's bare address, as
                                           X-Forwarded-For wants it */
};

/* Starts the session of one accepted, non-blocking socket on a listener of
 * generation rt. The socket is the session's in every case (closed on failure); on
 * success (0) the session also holds the reference on rt and the connection slot the
 * worker took for it; on -1 the worker gives those back. */
typedef int session_start_fn(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                             int fd, const struct sockaddr *peer);

/* The start function of a listener mode (proxy/protocols.c): core starts sessions
 * through it and knows no protocol. NULL for a mode nothing serves. */
session_start_fn *session_protocol(enum listener_mode mode);

/* Links s into its worker and takes the connection slot accounting over. */
void session_attach(struct session *s, struct worker *w, struct runtime *rt,
                    struct rt_listener *listener, struct bufferevent *client,
                    const struct sockaddr *peer);
/* Unlinks s, frees the client bufferevent if any (closing the socket), drops the runtime
 * reference and gives the connection slot back. Does not free s itself. */
void session_detach(struct session *s);

#endif

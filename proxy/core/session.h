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
struct listen_socket;
struct runtime;
struct rt_listener;
struct session;
struct worker;

/* An IPv4 or IPv6 socket address (AF_UNSPEC: not known). */
union session_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

/* Where a client connection comes from and what it reached, as ferry tells everyone
 * (X-Forwarded-For, the access log, balancing, the PROXY header it sends on): the
 * socket's addresses, or those of the PROXY protocol header the connection began with. */
struct session_addrs {
    union session_sockaddr peer;        /* the client */
    union session_sockaddr local;       /* AF_UNSPEC: the socket's own (getsockname when
                                           needed, see session_local_addr) */
};

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
    struct session_addrs addrs;
    char peer_text[INET6_ADDRSTRLEN];   /* addrs.peer's bare address, as
                                           X-Forwarded-For wants it */
    /* Views of the client connection (owned by the mode's session, which sets them)
     * for what needs its socket or TLS: the PROXY header ferry sends on. */
    int client_fd;                      /* -1 until set */
    struct ssl_st *client_tls;          /* NULL: plaintext (or not yet set) */
    /* The worker's keep-alive pool holds idle backend connections that carry this
     * client's PROXY header (owner: this session): close them when it ends. */
    bool owns_upstreams;
};

/* Starts the session of one accepted, non-blocking socket on a listener of
 * generation rt, from the client at addrs (copied). The socket is the session's in
 * every case (closed on failure); on success (0) the session also holds the reference
 * on rt and the connection slot the worker took for it; on -1 the worker gives those
 * back. */
typedef int session_start_fn(struct worker *w, struct runtime *rt, struct rt_listener *listener,
                             int fd, const struct session_addrs *addrs);

/* A datagram listener has no connections to accept: each worker serves its own socket
 * of the listener (fd, borrowed from `socket`) with one session that lives as long as
 * the worker's generations have the listener. 0 with *out set (the session is on the
 * worker's list and holds no connection slot), or -1 (nothing made). */
typedef int datagram_start_fn(struct worker *w, struct listen_socket *socket, int fd,
                              struct session **out);

/* proxy/protocols.c, the one place that knows every protocol: core starts sessions
 * through these and knows none. NULL for what nothing serves. */
/* A connection accepted on listener l: the PROXY protocol reader when l expects a
 * header first, else the session of l's mode. */
session_start_fn *session_protocol(const struct cfg_listener *l);
/* The session of a mode for a connection whose PROXY header was read. */
session_start_fn *session_mode_protocol(enum listener_mode mode);
/* The server of a datagram listener's socket on one worker. */
datagram_start_fn *session_datagram_protocol(enum listener_mode mode);

/* Links s into its worker and takes the connection slot accounting over. */
void session_attach(struct session *s, struct worker *w, struct runtime *rt,
                    struct rt_listener *listener, struct bufferevent *client,
                    const struct session_addrs *addrs);
/* Unlinks s, frees the client bufferevent if any (closing the socket), drops the runtime
 * reference and gives the connection slot back. Does not free s itself. */
void session_detach(struct session *s);
/* Unlinks s without closing anything: its runtime reference and connection slot pass
 * to the caller (which starts the connection's next session with them). */
void session_hand_over(struct session *s);

/* A datagram server's session (no connection, no slot): linked and unlinked only. */
void session_attach_datagram(struct session *s, struct worker *w);
void session_detach_datagram(struct session *s);

/* What the client reached (addrs.local), asking the client socket fd once when the
 * connection did not say: NULL when that fails. */
const struct sockaddr *session_local_addr(struct session *s, int fd);

#endif

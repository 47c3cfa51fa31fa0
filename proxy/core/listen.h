/* listen — listening sockets, owned by the daemon and carried across generations.
 *
 * A listen_socket is identified by its type and socket address, compared parsed
 * ("127.0.0.1:080" is "127.0.0.1:80"). Reload asks the set for the addresses of the new
 * config: an address that is already open is handed back (the same fd, never closed and
 * re-bound, so no connection attempt is refused), a new one is bound. Sockets no
 * generation uses any more are closed when the last reference goes. Per-address
 * counters live here so they survive reloads.
 *
 * A stream (tcp, http) listener is one socket that every worker accepts on. A
 * datagram (udp) listener is one socket per worker, all bound to the address with
 * SO_REUSEPORT: the kernel hashes each client address:port to one of them, so a flow
 * always reaches the same worker (proxy/ARCHITECTURE.md, "UDP").
 */
#ifndef FERRY_LISTEN_H
#define FERRY_LISTEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/err.h"

/* The HTTP versions counted apart; their names are what access logs and metrics say. */
enum listen_http_version { LISTEN_HTTP_1_0, LISTEN_HTTP_1_1, LISTEN_HTTP_2, LISTEN_HTTP_VERSIONS };
extern const char *const listen_http_version_names[LISTEN_HTTP_VERSIONS];

/* The upper bounds of the request-duration histogram: Prometheus' default buckets,
 * 5 ms to 10 s. */
enum { LISTEN_DURATION_BUCKETS = 11 };
extern const unsigned listen_duration_bounds_ms[LISTEN_DURATION_BUCKETS];

struct listen_socket {
    struct cfg_addr addr;
    int type;                       /* SOCK_STREAM or SOCK_DGRAM */
    int fd;                         /* stream: the socket; datagram: fds[0] */
    int *fds;                       /* datagram: owned, one socket per worker */
    size_t n_fds;                   /* 1 for stream sockets */
    _Atomic int refs;
    _Atomic uint64_t accepted;      /* connections accepted (udp: flows started) since
                                       the socket opened */
    _Atomic unsigned active;        /* connections (udp: flows) open now */
    /* udp: datagrams from clients (in) and to them (out); dropped: datagrams that found
     * no backend, no flow (at max_flows, draining) or did not fit; flows_dropped: new
     * flows refused at max_flows */
    _Atomic uint64_t datagrams_in, datagrams_out, datagrams_dropped, flows_dropped;
    /* http: responses sent, by the request's HTTP version (enum listen_http_version)
     * and status class 1xx..5xx */
    _Atomic uint64_t responses[LISTEN_HTTP_VERSIONS][5];
    _Atomic unsigned h2_connections, h2_streams;    /* http: HTTP/2 ones open now */
    _Atomic uint64_t bytes_in;      /* from clients */
    _Atomic uint64_t bytes_out;     /* to clients */
    /* http: request durations, from the request's first byte to its response's last
     * (ms, the coarse monotonic clock): a count per bucket of listen_duration_bounds_ms
     * (not cumulative), the last one above every bound; and their sum */
    _Atomic uint64_t durations[LISTEN_DURATION_BUCKETS + 1];
    _Atomic uint64_t durations_sum_ms;
};

/* Counts one request duration (ms) in the socket's histogram. Thread-safe. */
void listen_socket_observe_ms(struct listen_socket *ls, int64_t ms);

/* A non-blocking listening TCP socket on addr (SO_REUSEADDR, IPv6 only for an IPv6
 * address): the fd, or -1 with the reason in *err. */
int listen_bind(const struct cfg_addr *addr, int backlog, struct err *err);

struct listen_set;

struct listen_set *listen_set_new(void);
void listen_set_free(struct listen_set *set);

/* Non-blocking UDP sockets on addr, n of them in one SO_REUSEPORT group (IPv6 only for
 * an IPv6 address), into fds: 0, or -1 with the reason in *err (nothing left open). An
 * address another socket holds is refused, as for TCP, although SO_REUSEPORT alone
 * would let the group join that socket's. */
int listen_bind_datagram(const struct cfg_addr *addr, size_t n, int *fds, struct err *err);

/* The socket of `type` (SOCK_STREAM, or SOCK_DGRAM with `workers` sockets) for
 * `addr`, bound now or carried over; a new reference. -1 on failure with the reason
 * (e.g. "127.0.0.1:80: Address already in use") in err. */
int listen_set_acquire(struct listen_set *set, const struct cfg_addr *addr, int type,
                       size_t workers, struct listen_socket **out, struct err *err);

/* Dry runs: whether a socket of `type` on addr is open in the set (a reload would
 * carry it over). */
bool listen_set_has(struct listen_set *set, const struct cfg_addr *addr, int type);
/* Dry runs: binds a socket of `type` to addr and closes it at once, never listening
 * (no connection is taken): 0 when a reload could listen there, or -1 with the reason
 * ("127.0.0.1:80: cannot listen: Address already in use"). */
int listen_probe(const struct cfg_addr *addr, int type, struct err *err);

/* Binary upgrade: a listening socket of `type` inherited from the old process (fd
 * owned from now on) joins the set as if it had been bound, so that building the
 * first generation finds it by address instead of binding; the datagram sockets of
 * one address (the old process's SO_REUSEPORT group, one per worker) make one entry. The set keeps one reference on
 * it until listen_set_release_adopted(), after that first build: an inherited address
 * the new config does not use is closed then. 0, or -1 when out of memory. */
int listen_set_adopt(struct listen_set *set, int fd, const struct cfg_addr *addr, int type);
void listen_set_release_adopted(struct listen_set *set);
/* Up to max of the sockets open now (borrowed: main thread, while no reload runs). */
size_t listen_set_sockets(struct listen_set *set, struct listen_socket **out, size_t max);

/* Graceful stop: refuse new connections on every stream socket (shutdown SHUT_RD)
 * while the sessions already accepted finish. Datagram sockets stay as they are: their
 * servers stop taking new flows themselves (shutdown would make them readable forever). */
void listen_set_stop_accepting(struct listen_set *set);

/* A reload dropped this address while older sessions still hold its generation:
 * refuse new connections now (shutdown SHUT_RD) and forget the address, so that a
 * later reload that adds it again binds a fresh socket. A datagram socket stays known
 * (its workers stop serving it): binding a fresh group beside one still open would
 * split its clients between the two. */
void listen_socket_retire(struct listen_socket *ls);

void listen_socket_ref(struct listen_socket *ls);
/* Dropping the last reference closes the socket and removes it from its set. */
void listen_socket_unref(struct listen_socket *ls);

#endif

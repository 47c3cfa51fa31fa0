/* listen — listening sockets, owned by the daemon and carried across generations.
 *
 * A listen_socket is identified by its address text. Reload asks the set for the
 * addresses of the new config: an address that is already open is handed back (the
 * same fd, never closed and re-bound, so no connection attempt is refused), a new one
 * is bound. Sockets no generation uses any more are closed when the last reference
 * goes. Per-address counters live here so they survive reloads.
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
    int fd;
    _Atomic int refs;
    _Atomic uint64_t accepted;      /* connections accepted since the socket opened */
    _Atomic unsigned active;        /* connections open now */
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

/* The socket for `addr`, bound now or carried over; a new reference. -1 on failure
 * with the reason (e.g. "127.0.0.1:80: Address already in use") in err. */
int listen_set_acquire(struct listen_set *set, const struct cfg_addr *addr,
                       struct listen_socket **out, struct err *err);

/* Dry runs: whether addr is open in the set (a reload would carry it over). */
bool listen_set_has(struct listen_set *set, const struct cfg_addr *addr);
/* Dry runs: binds a socket to addr and closes it at once, never listening (no
 * connection is taken): 0 when a reload could listen there, or -1 with the reason
 * ("127.0.0.1:80: cannot listen: Address already in use"). */
int listen_probe(const struct cfg_addr *addr, struct err *err);

/* Binary upgrade: a listening socket inherited from the old process (fd owned from
 * now on) joins the set as if it had been bound, so that building the first
 * generation finds it by address instead of binding. The set keeps one reference on
 * it until listen_set_release_adopted(), after that first build: an inherited address
 * the new config does not use is closed then. 0, or -1 when out of memory. */
int listen_set_adopt(struct listen_set *set, int fd, const struct cfg_addr *addr);
void listen_set_release_adopted(struct listen_set *set);
/* Up to max of the sockets open now (borrowed: main thread, while no reload runs). */
size_t listen_set_sockets(struct listen_set *set, struct listen_socket **out, size_t max);

/* Graceful stop: refuse new connections on every socket (shutdown SHUT_RD) while the
 * sessions already accepted finish. */
void listen_set_stop_accepting(struct listen_set *set);

/* A reload dropped this address while older sessions still hold its generation:
 * refuse new connections now (shutdown SHUT_RD) and forget the address, so that a
 * later reload that adds it again binds a fresh socket. */
void listen_socket_retire(struct listen_socket *ls);

void listen_socket_ref(struct listen_socket *ls);
/* Dropping the last reference closes the socket and removes it from its set. */
void listen_socket_unref(struct listen_socket *ls);

#endif

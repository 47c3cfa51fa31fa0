/* Internal to proxy/udp: the per-worker server, its flows, and what server.c,
 * flow.c and table.c share. */
#ifndef FERRY_UDP_INTERNAL_H
#define FERRY_UDP_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/session.h"
#include "runtime/runtime.h"

enum {
    UDP_BATCH = 32,             /* datagrams per recvmmsg / sendmmsg */
    UDP_MAX_DATAGRAM = 65536,   /* every UDP payload fits (65,507 IPv4, 65,527 IPv6) */
    UDP_READ_ROUNDS = 4,        /* batches per wake-up before other events get a turn */
    UDP_CMSG_SPACE = 64,        /* room for one IP_PKTINFO / IPV6_PKTINFO */
};

struct udp_server;

/* One client address:port. Recycled with its event: no allocation per flow once the
 * server has seen as many at once. */
struct udp_flow {
    struct udp_flow *hash_next;         /* table chain */
    struct udp_flow *older, *newer;     /* the server's list, least recently active first */
    struct udp_server *server;          /* borrowed */
    union session_sockaddr client;      /* the key */
    union session_sockaddr local;       /* the address the client sent to (wildcard
                                           listeners: from IP_PKTINFO), AF_UNSPEC if not */
    uint64_t hash;
    int fd;                             /* owned: connected to the backend */
    struct event *readable;             /* owned, kept when recycled */
    struct runtime *runtime;            /* ref: the generation the flow started on */
    const struct cfg_udp *cfg;          /* borrowed from runtime */
    struct rt_pool *pool;               /* borrowed from runtime */
    struct backend *backend;            /* borrowed; holds the slot rt_pool_pick
                                           reserved for the flow (rt_pool_release) */
    uint64_t datagrams;                 /* from the client so far */
    uint64_t replies;                   /* reply datagrams so far */
    bool answered;                      /* the backend's success was reported */
    int64_t last_ms;                    /* last datagram either way */
};

/* Datagrams received in one batch, or replies waiting for one sendmmsg. */
struct udp_batch {
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    union session_sockaddr addr[UDP_BATCH];
    uint8_t cmsg[UDP_BATCH][UDP_CMSG_SPACE];
    uint8_t *bufs;                      /* owned: UDP_BATCH * UDP_MAX_DATAGRAM */
    unsigned count;                     /* replies: queued */
};

struct udp_server {
    struct session base;                /* runtime and listener stay NULL: each flow
                                           holds its own generation */
    struct listen_socket *socket;       /* ref */
    int fd;                             /* borrowed from socket: this worker's */
    bool has_pktinfo;                   /* wildcard address: replies name their source */
    bool draining;
    bool flush_scheduled;               /* `flush` is active for this round */
    uint64_t seed;                      /* of the flow table's hash */
    struct event *readable;             /* owned: the listener socket */
    struct event *flush;                /* owned: sends the replies at the end of a round */
    struct event *sweep;                /* owned: idle flows; also the deferred free */
    /* flows */
    struct udp_flow **buckets;          /* owned */
    size_t n_buckets, n_flows;
    struct udp_flow *oldest, *newest;   /* by last activity */
    unsigned min_idle_ms;               /* the least idle_ms of the flows'
                                           generations (UINT_MAX without flows): after
                                           a reload changed idle_ms the list is not in
                                           deadline order, but no flow is due before
                                           oldest->last_ms + min_idle_ms */
    size_t n_min_idle;                  /* flows whose idle_ms is min_idle_ms */
    int64_t sweep_due_ms;               /* when `sweep` fires; INT64_MAX: not armed */
    struct udp_flow *spare;             /* recycled, linked by hash_next */
    size_t n_spare;
    struct udp_batch in, out;
};

/* table.c: flows by client address (buckets grow with the flows). */
int udp_table_init(struct udp_server *srv);
void udp_table_free(struct udp_server *srv);
uint64_t udp_table_hash(const struct udp_server *srv, const union session_sockaddr *addr);
struct udp_flow *udp_table_find(const struct udp_server *srv, const union session_sockaddr *addr,
                                uint64_t hash);
/* The same client address and port (IPv4 or IPv6). */
bool udp_same_client(const union session_sockaddr *a, const union session_sockaddr *b);
/* Links f (hash and client set); grows the buckets first when they are few. */
void udp_table_insert(struct udp_server *srv, struct udp_flow *f);
void udp_table_remove(struct udp_server *srv, struct udp_flow *f);

/* flow.c */
/* The flow of a new client (the worker's newest generation, a backend picked and a
 * socket connected to it), or NULL with the datagram to be dropped (counted). */
struct udp_flow *udp_flow_open(struct udp_server *srv, const union session_sockaddr *client,
                               uint64_t hash, const union session_sockaddr *local);
/* Ends a flow: its socket closed, its generation and backend released. */
void udp_flow_close(struct udp_flow *f);
/* The backend refused (ICMP port unreachable: a passive failure) or the flow's socket
 * broke (errno `error`): the flow ends. */
void udp_flow_failed(struct udp_flow *f, int error);
/* A datagram went either way: the flow is the most recently active one. */
void udp_flow_touch(struct udp_flow *f, int64_t now_ms);
/* Frees the recycled flows (the server is going). */
void udp_flow_free_spares(struct udp_server *srv);

/* server.c */
/* Replies are queued; they leave at the end of the event-loop round. */
void udp_server_schedule_flush(struct udp_server *srv);
/* Sends what is queued now (the batch is full). */
void udp_server_flush(struct udp_server *srv);
/* The sweep timer is armed while there are flows. */
void udp_server_arm_sweep(struct udp_server *srv);
/* A flow closed: a draining server with none left frees itself (deferred). */
void udp_server_flow_gone(struct udp_server *srv);

#endif

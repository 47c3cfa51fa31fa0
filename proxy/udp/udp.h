/* udp — a `udp` listener: datagrams relayed between clients and the backends of its
 * pool, by flow (proxy/ARCHITECTURE.md, "UDP").
 *
 * A flow is one client address:port. Its first datagram picks a backend (the pool's
 * balancer) and opens the flow's own socket, connected to that backend; the flow's
 * later datagrams go out on it, and what the backend sends back on it goes to the
 * client from the listener's socket. A flow ends after udp.idle_ms without a datagram
 * either way, once it got udp.responses replies for each of its datagrams when that is
 * > 0 (nginx's proxy_responses), or when the backend refuses (ICMP port unreachable: a
 * passive failure). At udp.max_flows flows (per listener, all workers) a new client's
 * datagrams are dropped and counted. Datagrams pass whole, one for one, up to 65,535
 * bytes.
 *
 * Each worker serves its own SO_REUSEPORT socket of the listener with one session
 * (struct udp_server): it receives with recvmmsg, sends replies with sendmmsg at the
 * end of each event-loop round, and allocates nothing per datagram.
 */
#ifndef FERRY_UDP_H
#define FERRY_UDP_H

struct listen_socket;
struct session;
struct worker;

/* A datagram_start_fn (core/session.h) for udp listeners. */
int udp_server_start(struct worker *w, struct listen_socket *socket, int fd,
                     struct session **out);

#endif

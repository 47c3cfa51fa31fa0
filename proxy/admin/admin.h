/* admin — the admin API on admin.listen, served by the main thread.
 *
 *   GET  /status    200 JSON: generation, listeners, pools and backends (design.md)
 *   GET  /metrics   200 Prometheus text exposition
 *   POST /reload    200 {"ok":true,"generation":N} or 400 {"ok":false,"errors":[...]}
 *   POST /pools/NAME/backends/ADDRESS/drain, .../enable
 *                   200 {"ok":true}, or 404 when the current generation has no such
 *                   pool or backend (ADDRESS compared parsed, or the backend's name)
 *   POST /reload?dry_run=1
 *                   200 {"ok":true,"generation":N,"diff":{...}} (N: the generation still
 *                   running; config/diff.h) or 400 as above; nothing is applied
 *   GET  /healthz   200 {"status":"serving"}, 503 {"status":"draining"}
 *   GET  /config    200: the running generation's config document, as parsed
 * A POST without Authorization that carries Origin or a form content type is 403
 * (what a web page can make a local browser send).
 * With admin.token set every request needs "Authorization: Bearer TOKEN", else 401.
 * One request per connection (responses carry Connection: close): the API is for
 * operators and scrapers, not for traffic. Its descriptors count against the same
 * RLIMIT_NOFILE as the traffic's, so it serves at most 16 connections at once (more
 * wait in the kernel backlog until one closes), gives each 5 s from accept to send
 * its request and read the answer, and pauses accepting for 100 ms when accept(2)
 * runs out of descriptors or memory.
 */
#ifndef FERRY_ADMIN_H
#define FERRY_ADMIN_H

#include "config/config.h"
#include "core/err.h"

struct admin;
struct daemon;
struct event_base;

/* Serves the API on fd, a listening socket from admin_bind() or inherited at a binary
 * upgrade (owned from now on, also when NULL is returned: out of memory). */
struct admin *admin_new(struct daemon *d, struct event_base *base, int fd,
                        const char *listen_text);
void admin_free(struct admin *a);
/* The listening socket (borrowed, for handing to a new binary), -1 when off. */
int admin_fd(const struct admin *a);
/* A handover to a new binary: new connections go to the new process, which accepts
 * on the same socket; those open here finish. */
void admin_stop_accepting(struct admin *a);

/* Reload moves the API to a new admin.listen in two steps, so that a failure changes
 * nothing: admin_bind() opens the new listening socket (the fd, or -1 with the reason in
 * err); admin_move() switches to it (fd owned; -1: admin turned off) and closes the old
 * one. Connections already open finish where they are. */
int admin_bind(const struct cfg_addr *listen, struct err *err);
void admin_move(struct admin *a, int fd, const char *listen_text);

#endif

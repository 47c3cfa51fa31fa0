/* srv — SRV queries over UDP on the main loop: one connected socket per try (a fresh
 * source port and id each time), the resolvers taken in turn, the answer read by
 * wire.c. An answer to another question, or from another address, is ignored (the
 * connected socket takes datagrams from its resolver only). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "discovery/internal.h"

struct srv_query {
    struct discovery *disc;         /* borrowed */
    char name[DNS_WIRE_NAME_MAX];
    srv_query_done_fn done;
    void *arg;
    int fd;                         /* owned: the current try's socket; -1 between tries */
    struct event *event;            /* owned: read or timeout of the current try */
    int64_t deadline_ms;            /* the current try's end, however much arrives */
    uint16_t id;
    unsigned tries, max_tries;
    char last_error[128];           /* why the last try failed */
    struct dns_srv_answer answer;
};

static void close_try(struct srv_query *q)
{
    if (q->event) {
        event_free(q->event);
        q->event = NULL;
    }
    if (q->fd >= 0) {
        close(q->fd);
        q->fd = -1;
    }
}

void srv_query_cancel(struct srv_query *q)
{
    if (!q)
        return;
    close_try(q);
    free(q);
}

static void finish(struct srv_query *q, const struct srv_outcome *outcome)
{
    close_try(q);
    q->done(q->arg, outcome);
    free(q);
}

static void on_event(evutil_socket_t fd, short what, void *arg);

/* Waits for the answer until the try's deadline: datagrams that are not the answer
 * do not push it back (a persistent event's timeout would restart at each). */
static int wait_for_answer(struct srv_query *q)
{
    int64_t left = q->deadline_ms - clock_now_ms();
    struct timeval tv = clock_tv_from_ms(left > 0 ? (unsigned)left : 0);
    return event_add(q->event, &tv);
}

/* Sends the next try; -1 with last_error set when no socket could be made. */
static int send_try(struct srv_query *q)
{
    struct discovery *d = q->disc;
    size_t r = q->tries % d->n_resolvers;
    uint8_t packet[DNS_WIRE_NAME_MAX + 64];
    q->tries++;
    if (getrandom(&q->id, sizeof q->id, 0) != (ssize_t)sizeof q->id)
        q->id = (uint16_t)discovery_random(d);
    int len = dns_wire_srv_query(q->id, q->name, packet, sizeof packet);
    q->fd = socket(d->resolvers[r].ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (len < 0 || q->fd < 0 ||
        connect(q->fd, (const struct sockaddr *)&d->resolvers[r], d->resolver_lens[r]) < 0 ||
        send(q->fd, packet, (size_t)len, 0) != len) {
        snprintf(q->last_error, sizeof q->last_error, "cannot send the query: %s",
                 len < 0 ? "not a DNS name" : strerror(errno));
        close_try(q);
        return -1;
    }
    q->deadline_ms = clock_now_ms() + DISCOVERY_QUERY_TIMEOUT_MS;
    q->event = event_new(d->base, q->fd, EV_READ, on_event, q);
    if (!q->event || wait_for_answer(q) < 0) {
        snprintf(q->last_error, sizeof q->last_error, "out of memory");
        close_try(q);
        return -1;
    }
    return 0;
}

/* The current try failed: the next one, or the end. */
static void next_try(struct srv_query *q, bool timed_out)
{
    close_try(q);
    while (q->tries < q->max_tries)
        if (send_try(q) == 0)
            return;
    struct srv_outcome outcome = { .is_answered = false, .timed_out = timed_out,
                                   .error = q->last_error };
    finish(q, &outcome);
}

/* The resolver failed, not the name: SERVFAIL, REFUSED, another error code, or an
 * answer that cannot be read. (NXDOMAIN, no records and a truncated answer are the
 * name's.) */
static bool is_server_failure(enum dns_wire_status s)
{
    return s == DNS_WIRE_SERVFAIL || s == DNS_WIRE_REFUSED || s == DNS_WIRE_OTHER_RCODE ||
           s == DNS_WIRE_MALFORMED;
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    struct srv_query *q = arg;
    uint8_t buf[DNS_WIRE_UDP_SIZE + 512];
    if (what & EV_TIMEOUT) {
        snprintf(q->last_error, sizeof q->last_error, "no answer within %u ms (%u tries)",
                 DISCOVERY_QUERY_TIMEOUT_MS, q->tries);
        next_try(q, true);
        return;
    }
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
        /* ECONNREFUSED: an ICMP "port unreachable" (nothing listens there). */
        snprintf(q->last_error, sizeof q->last_error, "%s", strerror(errno));
        next_try(q, false);
        return;
    }
    enum dns_wire_status s = n < 0 ? DNS_WIRE_NOT_OURS      /* nothing to read after all */
                             : dns_wire_srv_parse(buf, (size_t)n, q->id, q->name, &q->answer);
    if (s == DNS_WIRE_NOT_OURS) {
        if (wait_for_answer(q) < 0) {
            snprintf(q->last_error, sizeof q->last_error, "out of memory");
            next_try(q, false);
        }
        return;
    }
    if (is_server_failure(s) && q->tries < q->max_tries) {
        /* as evdns does for addresses: another resolver may know */
        snprintf(q->last_error, sizeof q->last_error, "%s", dns_wire_status_name(s));
        next_try(q, false);
        return;
    }
    struct srv_outcome outcome = { .is_answered = true, .status = s, .answer = &q->answer,
                                   .error = "" };
    finish(q, &outcome);
}

struct srv_query *srv_query_start(struct discovery *d, const char *name, srv_query_done_fn done,
                                  void *arg, char *why, size_t why_size)
{
    struct srv_query *q = calloc(1, sizeof *q);
    if (!q || d->n_resolvers == 0 || strlen(name) >= sizeof q->name) {
        snprintf(why, why_size, "%s", !q ? "out of memory" : d->n_resolvers == 0
                                      ? "no resolver to ask" : "name too long");
        free(q);
        return NULL;
    }
    q->disc = d;
    snprintf(q->name, sizeof q->name, "%s", name);
    q->done = done;
    q->arg = arg;
    q->fd = -1;
    q->max_tries = DISCOVERY_QUERY_ATTEMPTS * (unsigned)d->n_resolvers;
    while (q->tries < q->max_tries)
        if (send_try(q) == 0)
            return q;
    snprintf(why, why_size, "%s", q->last_error);
    free(q);
    return NULL;
}

#include "core/listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *const listen_http_version_names[LISTEN_HTTP_VERSIONS] = {
    [LISTEN_HTTP_1_0] = "HTTP/1.0", [LISTEN_HTTP_1_1] = "HTTP/1.1", [LISTEN_HTTP_2] = "HTTP/2.0",
};

const unsigned listen_duration_bounds_ms[LISTEN_DURATION_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
};

void listen_socket_observe_ms(struct listen_socket *ls, int64_t ms)
{
    size_t i = 0;
    while (i < LISTEN_DURATION_BUCKETS && ms > (int64_t)listen_duration_bounds_ms[i])
        i++;
    atomic_fetch_add_explicit(&ls->durations[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ls->durations_sum_ms, ms > 0 ? (uint64_t)ms : 0,
                              memory_order_relaxed);
}

struct listen_set {
    pthread_mutex_t lock;
    struct set_entry *entries;
};

struct set_entry {
    struct listen_socket socket;
    struct listen_set *set;         /* borrowed: removes itself on last unref */
    bool is_adopted;                /* inherited at a binary upgrade: the set holds a
                                       reference until the first generation is built */
    struct set_entry *next;
};

enum { LISTEN_BACKLOG = 4096 };

struct listen_set *listen_set_new(void)
{
    struct listen_set *set = calloc(1, sizeof *set);
    if (set)
        pthread_mutex_init(&set->lock, NULL);
    return set;
}

/* Every socket must have been released by now; what is left is closed. */
void listen_set_free(struct listen_set *set)
{
    if (!set)
        return;
    struct set_entry *e = set->entries;
    while (e) {
        struct set_entry *next = e->next;
        close(e->socket.fd);
        free(e);
        e = next;
    }
    pthread_mutex_destroy(&set->lock);
    free(set);
}

int listen_bind(const struct cfg_addr *addr, int backlog, struct err *err)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set(err, "%s: socket: %s", addr->text, strerror(errno));
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (addr->sa.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->len) < 0 ||
        listen(fd, backlog) < 0) {
        int saved = errno;
        close(fd);
        return err_set(err, "%s: cannot listen: %s", addr->text, strerror(saved));
    }
    return fd;
}

int listen_set_acquire(struct listen_set *set, const struct cfg_addr *addr,
                       struct listen_socket **out, struct err *err)
{
    pthread_mutex_lock(&set->lock);
    for (struct set_entry *e = set->entries; e; e = e->next) {
        if (strcmp(e->socket.addr.text, addr->text) == 0) {
            listen_socket_ref(&e->socket);
            pthread_mutex_unlock(&set->lock);
            *out = &e->socket;
            return 0;
        }
    }
    pthread_mutex_unlock(&set->lock);

    int fd = listen_bind(addr, LISTEN_BACKLOG, err);
    if (fd < 0)
        return -1;
    struct set_entry *e = calloc(1, sizeof *e);
    if (!e) {
        close(fd);
        return err_set(err, "%s: out of memory", addr->text);
    }
    e->socket.addr = *addr;
    e->socket.fd = fd;
    atomic_init(&e->socket.refs, 1);
    e->set = set;
    pthread_mutex_lock(&set->lock);
    e->next = set->entries;
    set->entries = e;
    pthread_mutex_unlock(&set->lock);
    *out = &e->socket;
    return 0;
}

bool listen_set_has(struct listen_set *set, const struct cfg_addr *addr)
{
    bool found = false;
    pthread_mutex_lock(&set->lock);
    for (struct set_entry *e = set->entries; e && !found; e = e->next)
        found = strcmp(e->socket.addr.text, addr->text) == 0;
    pthread_mutex_unlock(&set->lock);
    return found;
}

int listen_probe(const struct cfg_addr *addr, struct err *err)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set(err, "%s: socket: %s", addr->text, strerror(errno));
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (addr->sa.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    int rc = bind(fd, (const struct sockaddr *)&addr->sa, addr->len);
    int saved = errno;
    close(fd);
    if (rc < 0)
        return err_set(err, "%s: cannot listen: %s", addr->text, strerror(saved));
    return 0;
}

int listen_set_adopt(struct listen_set *set, int fd, const struct cfg_addr *addr)
{
    struct set_entry *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->socket.addr = *addr;
    e->socket.fd = fd;
    atomic_init(&e->socket.refs, 1);
    e->set = set;
    e->is_adopted = true;
    pthread_mutex_lock(&set->lock);
    e->next = set->entries;
    set->entries = e;
    pthread_mutex_unlock(&set->lock);
    return 0;
}

void listen_set_release_adopted(struct listen_set *set)
{
    for (;;) {
        struct listen_socket *adopted = NULL;
        pthread_mutex_lock(&set->lock);
        for (struct set_entry *e = set->entries; e && !adopted; e = e->next) {
            if (e->is_adopted) {
                e->is_adopted = false;
                adopted = &e->socket;
            }
        }
        pthread_mutex_unlock(&set->lock);
        if (!adopted)
            return;
        listen_socket_unref(adopted);
    }
}

size_t listen_set_sockets(struct listen_set *set, struct listen_socket **out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&set->lock);
    for (struct set_entry *e = set->entries; e; e = e->next)
        if (n < max)
            out[n++] = &e->socket;
    pthread_mutex_unlock(&set->lock);
    return n;
}

void listen_set_stop_accepting(struct listen_set *set)
{
    pthread_mutex_lock(&set->lock);
    for (struct set_entry *e = set->entries; e; e = e->next)
        shutdown(e->socket.fd, SHUT_RD);
    pthread_mutex_unlock(&set->lock);
}

static void unlink_entry(struct set_entry *entry)
{
    struct listen_set *set = entry->set;
    pthread_mutex_lock(&set->lock);
    for (struct set_entry **p = &set->entries; *p; p = &(*p)->next) {
        if (*p == entry) {
            *p = entry->next;
            break;
        }
    }
    entry->next = NULL;
    pthread_mutex_unlock(&set->lock);
}

void listen_socket_retire(struct listen_socket *ls)
{
    unlink_entry((struct set_entry *)ls);   /* socket is the first member */
    shutdown(ls->fd, SHUT_RD);
}

void listen_socket_ref(struct listen_socket *ls) { atomic_fetch_add(&ls->refs, 1); }

void listen_socket_unref(struct listen_socket *ls)
{
    if (!ls || atomic_fetch_sub(&ls->refs, 1) != 1)
        return;
    struct set_entry *entry = (struct set_entry *)ls;   /* socket is the first member */
    unlink_entry(entry);
    close(ls->fd);
    free(entry);
}

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

static void close_socket(struct listen_socket *ls)
{
    for (size_t i = 0; i < ls->n_fds; i++)
        close(ls->fds[i]);
    free(ls->fds);
}

/* Every socket must have been released by now; what is left is closed. */
void listen_set_free(struct listen_set *set)
{
    if (!set)
        return;
    struct set_entry *e = set->entries;
    while (e) {
        struct set_entry *next = e->next;
        close_socket(&e->socket);
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

static int new_datagram_socket(const struct cfg_addr *addr, bool reuseport, struct err *err)
{
    int fd = socket(addr->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set(err, "%s: socket: %s", addr->text, strerror(errno));
    int on = 1;
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    if (addr->sa.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->len) < 0) {
        int saved = errno;
        close(fd);
        return err_set(err, "%s: cannot bind: %s", addr->text, strerror(saved));
    }
    return fd;
}

int listen_bind_datagram(const struct cfg_addr *addr, size_t n, int *fds, struct err *err)
{
    /* A plain bind fails when anyone holds the address, an SO_REUSEPORT group of the
     * same user included, which the group's own binds would silently join. */
    int probe = new_datagram_socket(addr, false, err);
    if (probe < 0)
        return -1;
    close(probe);
    for (size_t i = 0; i < n; i++) {
        fds[i] = new_datagram_socket(addr, true, err);
        if (fds[i] < 0) {
            while (i-- > 0)
                close(fds[i]);
            return -1;
        }
    }
    return 0;
}

/* The sockets of a new entry: 0, or -1 with nothing left open. */
static int bind_entry(struct listen_socket *ls, const struct cfg_addr *addr, int type,
                      size_t workers, struct err *err)
{
    ls->n_fds = type == SOCK_DGRAM ? (workers ? workers : 1) : 1;
    ls->fds = calloc(ls->n_fds, sizeof *ls->fds);
    if (!ls->fds)
        return err_set(err, "%s: out of memory", addr->text);
    if (type == SOCK_DGRAM ? listen_bind_datagram(addr, ls->n_fds, ls->fds, err) < 0
                           : (ls->fds[0] = listen_bind(addr, LISTEN_BACKLOG, err)) < 0) {
        free(ls->fds);
        return -1;
    }
    ls->fd = ls->fds[0];
    return 0;
}

int listen_set_acquire(struct listen_set *set, const struct cfg_addr *addr, int type,
                       size_t workers, struct listen_socket **out, struct err *err)
{
    pthread_mutex_lock(&set->lock);
    for (struct set_entry *e = set->entries; e; e = e->next) {
        if (e->socket.type == type && config_addr_equal(&e->socket.addr, addr)) {
            listen_socket_ref(&e->socket);
            pthread_mutex_unlock(&set->lock);
            *out = &e->socket;
            return 0;
        }
    }
    pthread_mutex_unlock(&set->lock);

    struct set_entry *e = calloc(1, sizeof *e);
    if (!e)
        return err_set(err, "%s: out of memory", addr->text);
    if (bind_entry(&e->socket, addr, type, workers, err) < 0) {
        free(e);
        return -1;
    }
    e->socket.addr = *addr;
    e->socket.type = type;
    atomic_init(&e->socket.refs, 1);
    e->set = set;
    pthread_mutex_lock(&set->lock);
    e->next = set->entries;
    set->entries = e;
    pthread_mutex_unlock(&set->lock);
    *out = &e->socket;
    return 0;
}

bool listen_set_has(struct listen_set *set, const struct cfg_addr *addr, int type)
{
    bool found = false;
    pthread_mutex_lock(&set->lock);
    for (struct set_entry *e = set->entries; e && !found; e = e->next)
        found = e->socket.type == type && config_addr_equal(&e->socket.addr, addr);
    pthread_mutex_unlock(&set->lock);
    return found;
}

int listen_probe(const struct cfg_addr *addr, int type, struct err *err)
{
    if (type == SOCK_DGRAM) {
        int fd = new_datagram_socket(addr, false, err);
        if (fd < 0)
            return -1;
        close(fd);
        return 0;
    }
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

/* An adopted datagram entry for addr, to which another socket of its group joins. */
static struct set_entry *adopted_group(struct listen_set *set, const struct cfg_addr *addr)
{
    for (struct set_entry *e = set->entries; e; e = e->next)
        if (e->is_adopted && e->socket.type == SOCK_DGRAM &&
            config_addr_equal(&e->socket.addr, addr))
            return e;
    return NULL;
}

int listen_set_adopt(struct listen_set *set, int fd, const struct cfg_addr *addr, int type)
{
    pthread_mutex_lock(&set->lock);
    struct set_entry *group = type == SOCK_DGRAM ? adopted_group(set, addr) : NULL;
    if (group) {
        int *fds = realloc(group->socket.fds, (group->socket.n_fds + 1) * sizeof *fds);
        if (fds) {
            fds[group->socket.n_fds++] = fd;
            group->socket.fds = fds;
            group->socket.fd = fds[0];
        }
        pthread_mutex_unlock(&set->lock);
        return fds ? 0 : -1;
    }
    pthread_mutex_unlock(&set->lock);
    struct set_entry *e = calloc(1, sizeof *e);
    int *fds = malloc(sizeof *fds);
    if (!e || !fds) {
        free(e);
        free(fds);
        return -1;
    }
    fds[0] = fd;
    e->socket.addr = *addr;
    e->socket.type = type;
    e->socket.fd = fd;
    e->socket.fds = fds;
    e->socket.n_fds = 1;
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
        if (e->socket.type == SOCK_STREAM)
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
    if (ls->type != SOCK_STREAM)
        return;
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
    close_socket(ls);
    free(entry);
}

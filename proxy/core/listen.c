#include "core/listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *const listen_http_version_names[LISTEN_HTTP_VERSIONS] = {
    [LISTEN_HTTP_1_0] = "HTTP/1.0", [LISTEN_HTTP_1_1] = "HTTP/1.1", [LISTEN_HTTP_2] = "HTTP/2.0",
};

struct listen_set {
    pthread_mutex_t lock;
    struct set_entry *entries;
};

struct set_entry {
    struct listen_socket socket;
    struct listen_set *set;         /* borrowed: removes itself on last unref */
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

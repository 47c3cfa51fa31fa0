#include "core/worker.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/daemon.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/session.h"
#include "runtime/runtime.h"
#include "upstream/pool.h"

/* Accepting more than this per wakeup would starve the sessions already open. */
enum { ACCEPT_BATCH = 64, ACCEPT_RETRY_MS = 100 };

/* One socket of a datagram listener's SO_REUSEPORT group that a worker reads. */
struct datagram_server {
    int fd;                         /* borrowed from the listen_socket */
    struct session *session;        /* borrowed (in the session list) */
};

/* A listening socket of the worker's generation: a stream one is accepted on here; a
 * datagram one is served by sessions of its protocol (no accept), which live on
 * across generations that keep the socket. */
struct watch {
    struct worker *worker;          /* borrowed */
    struct listen_socket *socket;   /* ref */
    struct event *event;            /* owned; stream sockets */
    /* datagram sockets: the sockets of the group this worker reads, and their servers */
    struct datagram_server *servers;    /* owned array */
    size_t n_servers;
};

struct worker_cache_entry {
    const void *key;
    void *cache;                    /* owned: free_fn frees it */
    worker_cache_free_fn *free_fn;
    struct worker_cache_entry *next;
};

struct worker {
    struct daemon *daemon;          /* borrowed */
    int id;
    _Atomic int role;               /* enum worker_role: set by the daemon, then a wakeup */
    _Atomic int rank;               /* worker_set_rank() */
    _Atomic uint64_t generation;    /* of `runtime` while accepting; 0 otherwise */
    _Atomic uint64_t accepted;      /* connections this worker accepted */
    _Atomic size_t connections;     /* its sessions now (n_sessions, for other threads) */
    _Atomic bool exited;            /* its loop ended: the daemon may join it */
    pthread_t thread;
    bool started;
    struct event_base *base;        /* owned; only this worker's thread touches it */
    int wakeup_fd;                  /* owned eventfd: other threads write to wake us */
    struct event *wakeup;           /* owned: reads wakeup_fd */
    int base_epoll_fd;              /* borrowed: libevent's epoll instance of `base`;
                                       -1 when not found (see make_exclusive) */
    struct event *accept_retry;     /* owned: resumes accepting after EMFILE */
    struct runtime *runtime;        /* ref: generation for new connections */
    struct watch *watches;          /* owned array, one per listening socket */
    size_t n_watches;
    bool accepting;
    bool draining;
    bool drains_softly;             /* idle HTTP/1.x connections stay until their next
                                       response (Connection: close) or their idle timeout */
    struct event *retire_deadline;  /* owned: a retiring worker's drain_ms */
    struct session *sessions;       /* list of live sessions */
    size_t n_sessions;
    struct upstream_pool *upstream_pool;    /* owned: idle keep-alive backend connections */
    struct worker_cache_entry *caches;      /* owned: worker_keep_cache() */
};

/* Frees watches; datagram servers are sessions and live on (see switch_generation). */
static void free_watches(struct watch *watches, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (watches[i].event)
            event_free(watches[i].event);
        free(watches[i].servers);
        listen_socket_unref(watches[i].socket);
    }
    free(watches);
}

static void unwatch_all(struct worker *w)
{
    free_watches(w->watches, w->n_watches);
    w->watches = NULL;
    w->n_watches = 0;
    w->accepting = false;
}

/* A new connection should wake one worker that waits for it, not all of them; epoll
 * does that for a socket added with EPOLLEXCLUSIVE, which libevent 2.1 cannot ask for.
 * The flag must be in the epoll instance the thread sleeps in: in an instance nested
 * in it, the kernel wakes every worker anyway (ep_poll_callback counts an exclusive
 * wake-up as delivered only when a thread waits on that very instance). So after
 * libevent added the listening socket to its own instance (EPOLLIN, the fd as data),
 * the registration is replaced by the same one plus EPOLLEXCLUSIVE (epoll takes the
 * flag on ADD only). libevent later removes it as usual (EPOLL_CTL_DEL). */
static void make_exclusive(struct worker *w, struct watch *watch)
{
    int fd = watch->socket->fd;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = fd };
    if (w->base_epoll_fd < 0 || epoll_ctl(w->base_epoll_fd, EPOLL_CTL_DEL, fd, NULL) < 0)
        return;     /* not where we expect it: libevent's registration stays */
    if (epoll_ctl(w->base_epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0)
        return;
    log_warn("worker %d: listener %s: EPOLLEXCLUSIVE: %s", w->id, watch->socket->addr.text,
             strerror(errno));
    ev.events = EPOLLIN;
    epoll_ctl(w->base_epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static void set_accepting(struct worker *w, bool on)
{
    if (w->accepting == on)
        return;
    atomic_store(&w->generation, on ? w->runtime->generation : 0);
    for (size_t i = 0; i < w->n_watches; i++) {
        if (!w->watches[i].event)
            continue;       /* a datagram socket: its server reads it */
        if (!on)
            event_del(w->watches[i].event);
        else if (event_add(w->watches[i].event, NULL) == 0)
            make_exclusive(w, &w->watches[i]);
    }
    w->accepting = on;
}

/* Accepting again after a wakeup: no longer one of the daemon's slot waiters. */
static void resume_accepting(struct worker *w)
{
    daemon_conn_stop_waiting(w->daemon, w->id);
    set_accepting(w, true);
}

static void tune_client_socket(int fd)
{
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

/* The session for one accepted socket, by the listener's protocol: 0, or -1 with the
 * socket closed. */
static int open_session(struct worker *w, struct rt_listener *rl, int fd,
                        const struct session_addrs *addrs)
{
    session_start_fn *start = session_protocol(rl->cfg);
    if (!start) {
        close(fd);
        return -1;
    }
    return start(w, w->runtime, rl, fd, addrs);
}

static void start_session(struct worker *w, struct listen_socket *ls, int fd,
                          const struct session_addrs *addrs)
{
    struct rt_listener *rl = runtime_listener_for(w->runtime, ls);
    if (!rl) {
        close(fd);
        daemon_conn_release(w->daemon);
        return;
    }
    atomic_fetch_add_explicit(&ls->accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
    runtime_ref(w->runtime);
    if (open_session(w, rl, fd, addrs) < 0) {
        log_error("listener %s: cannot set up connection: out of memory", ls->addr.text);
        runtime_unref(w->runtime);
        daemon_conn_release(w->daemon);
    }
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    if (!w->draining)
        set_accepting(w, true);
}

static void on_accept_error(struct worker *w, struct watch *watch, int error)
{
    switch (error) {
    case EAGAIN:
    case EINTR:
    case ECONNABORTED:
        return;
    case EINVAL:        /* shut down: graceful stop, or a reload retired it */
        event_del(watch->event);
        return;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM: {
        /* Out of descriptors or memory: the socket stays readable, so stop watching
         * for a moment instead of spinning; pending clients wait in the backlog. */
        log_warn("listener %s: accept: %s; pausing accepts for %d ms", watch->socket->addr.text,
                 strerror(error), ACCEPT_RETRY_MS);
        set_accepting(w, false);
        struct timeval tv = clock_tv_from_ms(ACCEPT_RETRY_MS);
        evtimer_add(w->accept_retry, &tv);
        return;
    }
    default:
        log_warn("listener %s: accept: %s", watch->socket->addr.text, strerror(error));
    }
}

/* A slot is reserved before each accept4: when none is left, new connections wait in
 * the kernel backlog and this worker waits until the daemon wakes it for a freed slot. */
static void on_acceptable(evutil_socket_t fd, short what, void *arg)
{
    struct watch *watch = arg;
    struct worker *w = watch->worker;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (!daemon_conn_take(w->daemon)) {
            set_accepting(w, false);
            daemon_conn_wait(w->daemon, w->id);
            return;
        }
        struct session_addrs addrs = { .local.sa.sa_family = AF_UNSPEC };
        socklen_t peer_len = sizeof addrs.peer;
        int cfd = accept4(fd, &addrs.peer.sa, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            int error = errno;
            daemon_conn_release(w->daemon);
            on_accept_error(w, watch, error);
            return;
        }
        tune_client_socket(cfd);
        start_session(w, watch->socket, cfd, &addrs);
    }
}

/* The server this worker already runs on fd (taken out of the previous generation's
 * watches), or NULL. */
static struct session *take_server(struct watch *old, size_t n_old,
                                   const struct listen_socket *socket, int fd)
{
    for (size_t i = 0; i < n_old; i++) {
        if (old[i].socket != socket)
            continue;
        for (size_t k = 0; k < old[i].n_servers; k++) {
            struct session *taken = old[i].servers[k].session;
            if (old[i].servers[k].fd == fd && taken) {
                old[i].servers[k].session = NULL;
                return taken;
            }
        }
    }
    return NULL;
}

/* The servers of a datagram socket's group: with `serving` workers, the worker of
 * rank i reads every socket j with j mod serving = i, so that no socket is left unread
 * when workers retire, and none is read by two workers (whose flow tables would split
 * a client's datagrams between two backends' sockets): with more workers than sockets,
 * the workers of rank n and above read none. A worker without a rank (parked) reads
 * none. */
static int serve_datagram(struct worker *w, struct watch *watch, const struct cfg_listener *cfg,
                          struct watch *old, size_t n_old)
{
    const struct listen_socket *ls = watch->socket;
    int rank = atomic_load(&w->rank);
    size_t serving = w->runtime->cfg->workers, id = (size_t)rank;
    if (rank < 0 || serving == 0 || id >= ls->n_fds)
        return 0;
    watch->servers = calloc((ls->n_fds - id + serving - 1) / serving, sizeof *watch->servers);
    if (!watch->servers)
        return -1;
    datagram_start_fn *start = session_datagram_protocol(cfg->mode);
    for (size_t j = id; j < ls->n_fds; j += serving) {
        struct datagram_server *ds = &watch->servers[watch->n_servers];
        ds->fd = ls->fds[j];
        ds->session = take_server(old, n_old, ls, ds->fd);
        if (!ds->session && (!start || start(w, watch->socket, ds->fd, &ds->session) < 0)) {
            log_error("worker %d: listener %s: cannot serve %s: out of memory", w->id,
                      cfg->name, ls->addr.text);
            return -1;
        }
        watch->n_servers++;
    }
    return 0;
}

/* Watches every socket of the worker's generation; `old` are the previous
 * generation's watches, whose datagram servers carry over. -1 when a socket could not
 * be watched (out of memory): the others are watched all the same, so that on a
 * reload one listener's trouble does not take the rest down with it. */
static int watch_generation(struct worker *w, struct watch *old, size_t n_old)
{
    size_t n = w->runtime->n_listeners;
    w->watches = calloc(n, sizeof *w->watches);
    if (!w->watches)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct watch *watch = &w->watches[i];
        watch->worker = w;
        watch->socket = w->runtime->listeners[i].socket;
        listen_socket_ref(watch->socket);
        w->n_watches = i + 1;
        if (watch->socket->type == SOCK_DGRAM) {
            if (serve_datagram(w, watch, w->runtime->listeners[i].cfg, old, n_old) < 0)
                rc = -1;
            continue;
        }
        watch->event = event_new(w->base, watch->socket->fd, EV_READ | EV_PERSIST,
                                 on_acceptable, watch);
        if (!watch->event)
            rc = -1;
    }
    return rc;
}

/* Picks up a new generation: new connections use it from now on. A datagram listener
 * the new generation dropped stops at once: its servers and flows go (a datagram
 * service has no connections to finish); so does a server on a socket of the group
 * that another worker reads now that `workers` changed. */
static void switch_generation(struct worker *w)
{
    struct runtime *rt = daemon_runtime(w->daemon);
    if (rt == w->runtime) {
        runtime_unref(rt);
        return;
    }
    set_accepting(w, false);
    struct watch *old = w->watches;
    size_t n_old = w->n_watches;
    w->watches = NULL;
    w->n_watches = 0;
    runtime_unref(w->runtime);
    w->runtime = rt;
    if (watch_generation(w, old, n_old) < 0)
        log_error("worker %d: out of memory watching listeners", w->id);
    for (size_t i = 0; i < n_old; i++)
        for (size_t k = 0; k < old[i].n_servers; k++)
            if (old[i].servers[k].session)
                old[i].servers[k].session->ops->close(old[i].servers[k].session);
    free_watches(old, n_old);
}

static void maybe_finish(struct worker *w)
{
    if (w->draining && w->n_sessions == 0)
        event_base_loopbreak(w->base);
}

static void close_all_sessions(struct worker *w)
{
    while (w->sessions)
        w->sessions->ops->close(w->sessions);
}

/* A worker that no longer accepts still moves to the newest generation, so that the
 * next request of a keep-alive connection it finishes follows the config. */
static void follow_generation(struct worker *w)
{
    struct runtime *rt = daemon_runtime(w->daemon);
    runtime_unref(w->runtime);
    w->runtime = rt;
}

/* Once this worker stopped watching its sockets, the connections whose wake-up came to
 * it (EPOLLEXCLUSIVE wakes one watcher) would wait in the backlog until another
 * connection wakes a worker that still accepts (of this process, or of the new binary
 * in a handover). It takes them itself, and they end after their first response. */
static void accept_pending(struct worker *w)
{
    for (size_t i = 0; i < w->n_watches; i++)
        if (w->watches[i].event)
            on_acceptable(w->watches[i].socket->fd, EV_READ, &w->watches[i]);
    daemon_conn_stop_waiting(w->daemon, w->id);
}

/* softly: the process hands over to a new binary, or this worker retires; else a
 * graceful stop (idle connections close now). */
static void start_drain(struct worker *w, bool softly)
{
    w->draining = true;
    w->drains_softly = softly;
    daemon_conn_stop_waiting(w->daemon, w->id);
    set_accepting(w, false);
    if (softly)
        accept_pending(w);
    unwatch_all(w);
    /* drain() may close the session, unlinking it: walk with a saved next. */
    for (struct session *s = w->sessions, *next; s; s = next) {
        next = s->next;
        s->ops->drain(s);
    }
    maybe_finish(w);
}

static void stop_now(struct worker *w)
{
    close_all_sessions(w);
    event_base_loopbreak(w->base);
}

/* A retiring worker's sessions have had timeouts.drain_ms: what is left is closed. */
static void on_retire_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    log_info("worker %d: retiring: drain_ms elapsed, closing connections=%zu", w->id,
             w->n_sessions);
    stop_now(w);
}

static void start_retiring(struct worker *w)
{
    log_info("worker %d: retiring: stops accepting, connections=%zu finish", w->id,
             w->n_sessions);
    struct timeval tv = clock_tv_from_ms(w->runtime->cfg->timeouts.drain_ms);
    evtimer_add(w->retire_deadline, &tv);
    start_drain(w, true);
}

static void on_wakeup(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    uint64_t count;
    if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN)
        log_warn("worker %d: reading its wakeup eventfd: %s", w->id, strerror(errno));
    if (daemon_is_stopping(w->daemon) || atomic_load(&w->role) == WORKER_STOPPED) {
        stop_now(w);
        return;
    }
    if (w->draining) {
        if (!daemon_is_draining(w->daemon))
            follow_generation(w);
        return;
    }
    if (daemon_is_draining(w->daemon)) {
        start_drain(w, daemon_drains_softly(w->daemon));
        return;
    }
    switch (atomic_load(&w->role)) {
    case WORKER_PARKED:
        return;
    case WORKER_RETIRING:
        follow_generation(w);
        start_retiring(w);
        return;
    default:
        switch_generation(w);
        /* A reload or the admin API may have made backends drain: their idle
         * connections are of no more use. */
        upstream_pool_sweep(w->upstream_pool);
        resume_accepting(w);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];      /* the kernel's limit; "ferry-w3" in top -H and /proc/PID/task */
    snprintf(name, sizeof name, "ferry-w%d", w->id);
    pthread_setname_np(pthread_self(), name);
    if (atomic_load(&w->role) == WORKER_SERVING)
        set_accepting(w, true);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    close_all_sessions(w);
    unwatch_all(w);
    atomic_store(&w->exited, true);
    daemon_worker_exited(w->daemon);
    return NULL;
}

/* Other threads reach a worker only through its eventfd, so its base needs none of
 * libevent's locks (a lock and unlock around every event_add, event_del and loop
 * turn: ~2% of a worker's cycles under keep-alive load). */
static struct event_base *unlocked_base_new(void)
{
    struct event_config *cfg = event_config_new();
    if (!cfg)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

/* Whether /proc says that epfd is an epoll instance watching fd ("tfd: FD" in its
 * fdinfo). Read from /proc only: the descriptors themselves, which other threads use,
 * are not touched. */
static bool epoll_watches(int epfd, int fd)
{
    char path[64], target[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", epfd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0 || (size_t)n != strlen("anon_inode:[eventpoll]") ||
        memcmp(target, "anon_inode:[eventpoll]", (size_t)n) != 0)
        return false;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
    FILE *info = fopen(path, "re");
    if (!info)
        return false;
    bool found = false;
    char line[256];
    while (!found && fgets(line, sizeof line, info)) {
        char *end;
        found = strncmp(line, "tfd:", 4) == 0 && strtol(line + 4, &end, 10) == fd &&
                end != line + 4;
    }
    fclose(info);
    return found;
}

/* The epoll instance of libevent's epoll backend for a base: the only one in the
 * process that holds our fresh wakeup eventfd. */
static int find_base_epoll(struct event_base *base, int wakeup_fd)
{
    if (strcmp(event_base_get_method(base), "epoll") != 0)
        return -1;
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return -1;
    int found = -1;
    for (struct dirent *e; found < 0 && (e = readdir(dir));) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (end != e->d_name && *end == '\0' && fd != wakeup_fd &&
            epoll_watches((int)fd, wakeup_fd))
            found = (int)fd;
    }
    closedir(dir);
    return found;
}

struct worker *worker_new(struct daemon *d, int id, enum worker_role role)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->daemon = d;
    w->id = id;
    atomic_init(&w->role, role);
    /* At start the serving workers are 0..n-1; later ranks come from workers_commit. */
    atomic_init(&w->rank, role == WORKER_SERVING ? id : -1);
    w->base = unlocked_base_new();
    w->wakeup_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->runtime = daemon_runtime(d);
    if (!w->base || w->wakeup_fd < 0 ||
        !(w->wakeup = event_new(w->base, w->wakeup_fd, EV_READ | EV_PERSIST, on_wakeup, w)) ||
        event_add(w->wakeup, NULL) < 0 ||
        !(w->accept_retry = evtimer_new(w->base, on_accept_retry, w)) ||
        !(w->retire_deadline = evtimer_new(w->base, on_retire_deadline, w)) ||
        !(w->upstream_pool = upstream_pool_new(w->base)) || watch_generation(w, NULL, 0) < 0) {
        worker_free(w);
        return NULL;
    }
    w->base_epoll_fd = find_base_epoll(w->base, w->wakeup_fd);
    if (w->base_epoll_fd < 0)
        log_warn("worker %d: libevent's epoll instance not found: every worker wakes for "
                 "every new connection", w->id);
    return w;
}

int worker_start(struct worker *w, struct err *err)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0)
        return err_set(err, "pthread_create: %s", strerror(rc));
    w->started = true;
    return 0;
}

void worker_join(struct worker *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = false;
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    close_all_sessions(w);      /* a worker that never ran still has datagram servers */
    unwatch_all(w);
    if (w->wakeup)
        event_free(w->wakeup);
    if (w->wakeup_fd >= 0)
        close(w->wakeup_fd);
    if (w->accept_retry)
        event_free(w->accept_retry);
    if (w->retire_deadline)
        event_free(w->retire_deadline);
    runtime_unref(w->runtime);
    upstream_pool_free(w->upstream_pool);
    while (w->caches) {
        struct worker_cache_entry *e = w->caches;
        w->caches = e->next;
        e->free_fn(e->cache);
        free(e);
    }
    if (w->base)
        event_base_free(w->base);
    free(w);
}

void worker_wakeup(struct worker *w)
{
    uint64_t one = 1;
    /* EAGAIN: the counter is full, so a wakeup is pending anyway. */
    if (write(w->wakeup_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("worker %d: cannot wake it: %s", w->id, strerror(errno));
}

void worker_set_rank(struct worker *w, int rank) { atomic_store(&w->rank, rank); }

void worker_set_role(struct worker *w, enum worker_role role)
{
    atomic_store(&w->role, role);
    worker_wakeup(w);
}

struct worker_info worker_info(struct worker *w)
{
    int role = atomic_load(&w->role);
    return (struct worker_info){
        .id = w->id,
        .role = (enum worker_role)role,
        .generation = atomic_load(&w->generation),
        .accepted = atomic_load_explicit(&w->accepted, memory_order_relaxed),
        .connections = atomic_load_explicit(&w->connections, memory_order_relaxed),
        .has_exited = atomic_load(&w->exited),
    };
}

bool worker_drains_softly(const struct worker *w) { return w->drains_softly; }

struct event_base *worker_base(struct worker *w) { return w->base; }

struct daemon *worker_daemon(struct worker *w) { return w->daemon; }

struct runtime *worker_runtime(struct worker *w) { return w->runtime; }

struct upstream_pool *worker_upstream_pool(struct worker *w) { return w->upstream_pool; }

void *worker_cache(struct worker *w, const void *key, size_t size,
                   worker_cache_free_fn *free_fn)
{
    for (struct worker_cache_entry *e = w->caches; e; e = e->next)
        if (e->key == key)
            return e->cache;
    struct worker_cache_entry *e = malloc(sizeof *e);
    void *cache = calloc(1, size);
    if (!e || !cache) {
        free(e);
        free(cache);
        return NULL;
    }
    *e = (struct worker_cache_entry){ key, cache, free_fn, w->caches };
    w->caches = e;
    return cache;
}

void worker_session_add(struct worker *w, struct session *s)
{
    s->prev = NULL;
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    w->n_sessions++;
    atomic_store_explicit(&w->connections, w->n_sessions, memory_order_relaxed);
}

void worker_session_remove(struct worker *w, struct session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    w->n_sessions--;
    atomic_store_explicit(&w->connections, w->n_sessions, memory_order_relaxed);
    maybe_finish(w);
}

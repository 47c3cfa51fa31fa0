/* The daemon's worker threads: started at start, and by a reload that raises
 * `workers` (parked until the generation is published, so that a reload that fails
 * changes nothing); retired by a reload that lowers it (they stop accepting, their
 * sessions finish, then the main thread joins and frees them). Main thread only. */
#include <stdbool.h>
#include <stdlib.h>

#include "core/daemon_internal.h"
#include "core/log.h"
#include "core/worker.h"

static int free_id(struct daemon *d)
{
    for (int id = 0; id < DAEMON_MAX_WORKERS; id++)
        if (!d->workers[id])
            return id;
    return -1;
}

/* A new worker in a free slot (not started): its id, or -1. */
static int add_worker(struct daemon *d, enum worker_role role)
{
    int id = free_id(d);
    struct worker *w = id < 0 ? NULL : worker_new(d, id, role);
    if (!w)
        return -1;
    pthread_rwlock_wrlock(&d->workers_lock);
    d->workers[id] = w;
    atomic_store(&d->waiting[id], false);
    pthread_rwlock_unlock(&d->workers_lock);
    return id;
}

static void remove_worker(struct daemon *d, int id)
{
    struct worker *w = d->workers[id];
    pthread_rwlock_wrlock(&d->workers_lock);
    d->workers[id] = NULL;
    pthread_rwlock_unlock(&d->workers_lock);
    worker_free(w);
}

static int start(struct daemon *d, int id, struct err *err)
{
    atomic_fetch_add(&d->workers_running, 1);
    if (worker_start(d->workers[id], err) == 0)
        return 0;
    atomic_fetch_sub(&d->workers_running, 1);
    return -1;
}

int workers_start(struct daemon *d, size_t n)
{
    int ids[DAEMON_MAX_WORKERS];
    for (size_t i = 0; i < n; i++) {
        ids[i] = add_worker(d, WORKER_SERVING);
        if (ids[i] < 0) {
            log_error("cannot start worker %zu of %zu: out of memory or file descriptors", i, n);
            return -1;
        }
        d->n_workers = i + 1;
    }
    for (size_t i = 0; i < n; i++) {
        struct err err = { { 0 } };
        if (start(d, ids[i], &err) < 0) {
            log_error("cannot start worker %zu of %zu: %s", i, n, err.msg);
            return -1;
        }
    }
    return 0;
}

static bool has_role(struct daemon *d, int id, enum worker_role role)
{
    return d->workers[id] && worker_info(d->workers[id]).role == role;
}

int workers_prepare(struct daemon *d, size_t n, struct err *err)
{
    for (size_t running = d->n_workers; running < n; running++) {
        int id = add_worker(d, WORKER_PARKED);
        if (id < 0) {
            err_set(err, "workers: cannot start worker %zu of %zu: out of memory or file "
                    "descriptors", running, n);
            workers_abandon(d);
            return -1;
        }
        struct err why = { { 0 } };
        if (start(d, id, &why) < 0) {
            remove_worker(d, id);
            err_set(err, "workers: cannot start worker %zu of %zu: %s", running, n, why.msg);
            workers_abandon(d);
            return -1;
        }
    }
    return 0;
}

void workers_abandon(struct daemon *d)
{
    for (int id = 0; id < DAEMON_MAX_WORKERS; id++) {
        if (!has_role(d, id, WORKER_PARKED))
            continue;
        worker_set_role(d->workers[id], WORKER_STOPPED);
        worker_join(d->workers[id]);
        remove_worker(d, id);
    }
}

void workers_commit(struct daemon *d, size_t n)
{
    bool serves[DAEMON_MAX_WORKERS] = { false };
    size_t serving = 0, before = d->n_workers;
    for (int id = 0; id < DAEMON_MAX_WORKERS; id++) {
        serves[id] = has_role(d, id, WORKER_PARKED) || has_role(d, id, WORKER_SERVING);
        serving += serves[id];
    }
    /* The newest ones retire first: worker 0 is the one that runs longest. */
    for (int id = DAEMON_MAX_WORKERS - 1; id >= 0 && serving > n; id--) {
        if (serves[id]) {
            serves[id] = false;
            serving--;
        }
    }
    /* Ranks first: the role change wakes a worker, which then watches the new
     * generation's sockets by its rank. */
    int rank = 0;
    for (int id = 0; id < DAEMON_MAX_WORKERS; id++)
        if (d->workers[id] && !has_role(d, id, WORKER_RETIRING))
            worker_set_rank(d->workers[id], serves[id] ? rank++ : -1);
    for (int id = 0; id < DAEMON_MAX_WORKERS; id++) {
        if (serves[id] && has_role(d, id, WORKER_PARKED))
            worker_set_role(d->workers[id], WORKER_SERVING);
        else if (!serves[id] && has_role(d, id, WORKER_SERVING))
            worker_set_role(d->workers[id], WORKER_RETIRING);
    }
    if (before != serving)
        log_info("workers: %zu serving (was %zu)", serving, before);
    d->n_workers = serving;
}

void workers_reap(struct daemon *d)
{
    for (int id = 0; id < DAEMON_MAX_WORKERS; id++) {
        if (!d->workers[id])
            continue;
        struct worker_info info = worker_info(d->workers[id]);
        if (info.role != WORKER_RETIRING || !info.has_exited)
            continue;
        worker_join(d->workers[id]);
        remove_worker(d, id);
        log_info("worker %d: retired", id);
    }
}

void workers_free(struct daemon *d)
{
    /* Every thread ends before any worker is freed: one still stopping may wake
     * another (daemon_conn_release), which must not have been freed yet. */
    for (int id = 0; id < DAEMON_MAX_WORKERS; id++)
        if (d->workers[id])
            worker_join(d->workers[id]);
    for (int id = 0; id < DAEMON_MAX_WORKERS; id++)
        if (d->workers[id])
            remove_worker(d, id);
}

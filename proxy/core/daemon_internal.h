/* daemon internals — shared by the files of the main thread: daemon.c (generations,
 * signals, drain, connection slots), workers.c (starting and retiring worker
 * threads), upgrade.c (handing the listening sockets to a new binary). Nothing
 * outside proxy/core/ includes this.
 */
#ifndef FERRY_DAEMON_INTERNAL_H
#define FERRY_DAEMON_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/daemon.h"
#include "core/err.h"

struct event;
struct event_base;
struct runtime;

/* config.c bounds `workers` to this. */
enum { DAEMON_MAX_WORKERS = 256 };

struct daemon {
    struct event_base *base;            /* owned: the main thread's loop */
    char *config_path;                  /* owned */
    pthread_mutex_t runtime_lock;       /* guards `current` against concurrent readers */
    struct runtime *current;            /* ref */
    uint64_t next_generation;
    struct backend_table *backends;     /* owned */
    struct listen_set *sockets;         /* owned */
    struct tls_ticket_keys *ticket_keys;/* owned */
    /* Worker slots by id (thread ferry-wID): serving, parked (started for a reload not
     * yet published) and retiring ones; NULL is a free id. The main thread adds and
     * frees workers under the write lock; worker threads read the slots under the read
     * lock (waking a waiting worker). */
    struct worker *workers[DAEMON_MAX_WORKERS];     /* owned */
    pthread_rwlock_t workers_lock;
    size_t n_workers;                   /* serving ones */
    _Atomic unsigned connections;
    _Atomic unsigned max_connections;
    _Atomic bool waiting[DAEMON_MAX_WORKERS];   /* by id: stopped accepting for want of
                                                   a connection slot */
    _Atomic size_t n_waiting;           /* how many are set: releases look only then */
    _Atomic size_t next_waiter;         /* where the next search starts (fairness) */
    _Atomic bool stop_announced;        /* SIGTERM/SIGINT came: /healthz says draining
                                           (during stop_grace_ms, before `draining`) */
    _Atomic bool draining;
    _Atomic bool drains_softly;         /* the drain is a handover to a new binary */
    _Atomic bool stopping;
    _Atomic size_t workers_running;
    struct event *signals[6];           /* owned */
    struct event *grace_timer;          /* owned: the end of stop_grace_ms */
    struct event *drain_timer;          /* owned */
    struct event *worker_exit;          /* owned: activated by exiting workers */
    struct event *ticket_timer;         /* owned */
    struct admin *admin;                /* owned; NULL when admin is off */
    struct health *health;              /* owned: active checks of `current` */
    struct discovery *discovery;        /* owned: backends found by DNS for `current` */
    struct upgrade *upgrade;            /* owned: a new binary starting; NULL when none */
    char *exe_path;                     /* owned: this binary as started (what SIGUSR2
                                           runs: a package upgrade replaces the file) */
    _Atomic uint64_t upgrades_failed;
    char upgrade_failure[160];          /* why the last upgrade failed; main thread */
    int64_t started_ms;
    _Atomic int64_t last_reload_ok_s;   /* wall clock of the last generation that went
                                           live (start or reload) */
    _Atomic uint64_t reloads_ok, reloads_failed;
};

void daemon_wake_workers(struct daemon *d);
/* Makes rt the current generation (the reference passes to the daemon). */
void daemon_publish(struct daemon *d, struct runtime *rt);
/* discovery's change callback (reload.c): the running config's document is built
 * again with the new DNS answers and published like a reload. 0, or -1 (logged). */
int daemon_rebuild_for_dns(void *daemon);
void daemon_log_generation(const struct runtime *rt);
/* Logs a warning when the admin API listens beyond loopback without a token. */
void daemon_warn_admin_exposure(const struct config *cfg);
/* Stops accepting and drains; softly: a handover to a new binary (the sockets stay
 * open for it, idle keep-alive connections finish at their next response). */
void daemon_begin_drain(struct daemon *d, const char *why, bool softly);

/* ---- workers.c ---- */

/* Starts `n` serving workers (at start): 0, or -1 with the reason logged. */
int workers_start(struct daemon *d, size_t n);
/* Reload, before anything is applied: starts what `n` workers need beyond those
 * serving, parked (0, or -1 with the reason in err and nothing left running). */
int workers_prepare(struct daemon *d, size_t n, struct err *err);
/* After the generation was published: the parked workers serve, and serving ones
 * beyond `n` retire. */
void workers_commit(struct daemon *d, size_t n);
/* A failed reload: the parked workers stop and are freed. */
void workers_abandon(struct daemon *d);
/* A worker's loop ended: joins and frees the retired ones that are done. */
void workers_reap(struct daemon *d);
/* At exit: joins every thread, then frees every worker. */
void workers_free(struct daemon *d);

/* ---- upgrade.c ---- */

struct upgrade;

/* SIGUSR2: starts this binary again (exe_path) with the listening sockets, the admin
 * socket and the TLS ticket keys; once it says it serves, this process drains. */
void upgrade_start(struct daemon *d);
/* A process started by an upgrade: the environment names what the old one passed.
 * Adopts the sockets into d->sockets and the ticket keys; returns the inherited admin
 * socket (owned, -1 if none) through *admin_fd. 0, or -1 with the reason in err. */
int upgrade_inherit(struct daemon *d, const struct config *cfg, int *admin_fd, struct err *err);
/* The new process serves: tells the old one to drain (no-op when not an upgrade). */
void upgrade_announce_ready(struct daemon *d);
/* A stop began: an upgrade whose new process does not serve yet fails (killed), so
 * that no new process takes over from one told to stop. */
void upgrade_call_off(struct daemon *d);
/* SIGCHLD: a new binary that ended before it served fails the upgrade. */
void upgrade_reap(struct daemon *d);
void upgrade_free(struct upgrade *u);

#endif

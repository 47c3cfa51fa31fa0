/* daemon — the main thread: owns the current generation, the workers, the listening
 * sockets, the backend table and the TLS ticket keys; handles signals and drain.
 */
#ifndef FERRY_DAEMON_H
#define FERRY_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

struct backend_table;
struct daemon;
struct discovery;
struct json_t;
struct runtime;
struct worker_info;

/* Takes ownership of cfg. Binds every listener; NULL (reason logged) on failure. */
struct daemon *daemon_new(struct config *cfg);
/* Runs until a graceful stop completes; returns the process exit code. */
int daemon_run(struct daemon *d);
void daemon_free(struct daemon *d);

/* --- for workers (thread-safe) --- */

/* A new reference to the current generation. */
struct runtime *daemon_runtime(struct daemon *d);
/* Reserves a connection slot under limits.max_connections; false when full. */
bool daemon_conn_take(struct daemon *d);
/* Gives a slot back; wakes one worker waiting for a slot, if any. */
void daemon_conn_release(struct daemon *d);
/* A worker found no slot free and stopped accepting: it is woken (worker_wakeup) when
 * one frees, one waiting worker per freed slot. */
void daemon_conn_wait(struct daemon *d, int worker_id);
/* The worker accepts again for another reason (woken for a reload, say). */
void daemon_conn_stop_waiting(struct daemon *d, int worker_id);
bool daemon_is_draining(const struct daemon *d);
/* The drain is a handover to a new binary (or none): see worker_drains_softly(). */
bool daemon_drains_softly(const struct daemon *d);
bool daemon_is_stopping(const struct daemon *d);
/* A worker's event loop ended (it drained or was stopped). */
void daemon_worker_exited(struct daemon *d);

/* --- for the admin API (main thread) --- */

struct daemon_info {
    const char *config_path;        /* borrowed */
    int64_t uptime_s;
    unsigned connections;           /* client connections open now */
    uint64_t reloads_ok, reloads_failed;
    int64_t last_reload_ok_s;       /* wall clock (Unix seconds) of the last generation
                                       that went live, at start or by a reload */
    size_t n_workers;               /* serving (retiring ones not counted) */
    bool is_draining;               /* stopping, or handing over to a new binary */
    bool is_upgrading;              /* a new binary was started and does not serve yet */
    uint64_t upgrades_failed;
    const char *upgrade_failure;    /* borrowed: why the last one failed, "" if none */
};
struct daemon_info daemon_info(struct daemon *d);
/* The backend state table (borrowed), for what /status shows of removed backends. */
struct backend_table *daemon_backends(struct daemon *d);
/* Backends found by DNS (main thread: /status, /metrics). */
const struct discovery *daemon_discovery(struct daemon *d);

/* POST /pools/POOL/backends/BACKEND/drain (drain true) or /enable: BACKEND is the
 * backend's address (compared parsed) or name in the current generation's pool. 0,
 * or -1 when there is no such pool or backend. Wakes the workers, which close their
 * idle connections to a backend that drains. */
int daemon_set_drain(struct daemon *d, const char *pool, const char *backend, bool drain);

/* Up to max workers, serving and retiring, by id. */
enum { DAEMON_STATUS_MAX_WORKERS = 256 };
size_t daemon_workers_info(struct daemon *d, struct worker_info *out, size_t max);

/* SIGHUP and POST /reload: re-read the config file and switch to a new generation.
 * 0 on success; -1 with every reason in errs (the running generation is unchanged:
 * nothing of the new one, not the access log nor the admin address nor the worker
 * count, takes effect unless all of it does). */
int daemon_reload(struct daemon *d, struct config_errors *errs);
/* POST /reload?dry_run=1: everything daemon_reload builds, tried and thrown away
 * (new listen addresses test-bound, the access log checked, no thread started).
 * 0 with *diff (a new reference, config/diff.h) against the running generation, or
 * -1 with every reason in errs. */
int daemon_reload_dry_run(struct daemon *d, struct config_errors *errs, struct json_t **diff);

/* ferry -t: validates FILE, including what only building a generation checks
 * (certificates, keys), and prints "ok" or every error; returns the exit code.
 * `running` (ferry -t --diff: the running daemon's config, from GET /config; may be
 * NULL): addresses it does not listen on are test-bound, and after "ok" come the
 * lines of what a reload to FILE would change. */
int daemon_check_config(const char *path, const struct json_t *running);

#endif

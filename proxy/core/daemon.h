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
struct runtime;

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
bool daemon_is_stopping(const struct daemon *d);
/* A worker's event loop ended (it drained or was stopped). */
void daemon_worker_exited(struct daemon *d);

/* --- for the admin API (main thread) --- */

struct daemon_info {
    const char *config_path;        /* borrowed */
    int64_t uptime_s;
    unsigned connections;           /* client connections open now */
    uint64_t reloads_ok, reloads_failed;
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

/* SIGHUP and POST /reload: re-read the config file and switch to a new generation.
 * 0 on success; -1 with every reason in errs (the running generation is unchanged). */
int daemon_reload(struct daemon *d, struct config_errors *errs);

/* ferry -t: validates FILE, including what only building a generation checks
 * (certificates, keys). Prints "ok" or every error; returns the exit code. */
int daemon_check_config(const char *path);

#endif

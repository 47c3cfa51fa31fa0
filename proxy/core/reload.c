/* Reload: everything a new generation needs — the config, its TLS contexts, its
 * listening sockets, the admin socket, the access log file, the worker threads — is
 * built beside the running one first; only when all of it succeeded is any of it
 * applied, in steps that cannot fail. A dry run builds the same but binds nothing
 * (new addresses are test-bound), opens nothing for good and starts no thread; it
 * says what a reload would change. A change of DNS answers is a reload of the
 * running config's document (not the file) with the new answers. Main thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/admin.h"
#include "config/diff.h"
#include "core/daemon_internal.h"
#include "core/listen.h"
#include "core/log.h"
#include "discovery/discovery.h"
#include "runtime/runtime.h"

/* A reload that changes admin.listen (or turns the API on or off) binds the new
 * address before anything is published, so that a bind failure rejects the reload. */
struct admin_change {
    bool is_moving;
    int fd;                         /* owned until committed; -1: none or off */
};

/* What a generation is built from. */
enum reload_kind {
    RELOAD_FILE,            /* SIGHUP, POST /reload: the config file */
    RELOAD_DRY_RUN,         /* POST /reload?dry_run=1: the file, nothing kept */
    RELOAD_DNS,             /* new DNS answers: the running config's document, whose
                               TLS contexts are shared */
};

/* What one reload prepared: applied together, or abandoned together. */
struct reload {
    struct runtime *rt;             /* owned until published */
    struct admin_change admin;
    struct access_log_change log;
    bool has_workers;               /* workers_prepare() started what `workers` needs */
};

static int prepare_admin(struct daemon *d, const struct config *cfg, bool dry_run,
                         struct admin_change *ch, struct err *err)
{
    const struct config *old = d->current->cfg;
    ch->fd = -1;
    ch->is_moving = old->admin.enabled != cfg->admin.enabled ||
                    (cfg->admin.enabled &&
                     !config_addr_equal(&old->admin.listen, &cfg->admin.listen));
    if (!ch->is_moving || !cfg->admin.enabled)
        return 0;
    if (dry_run)
        return listen_probe(&cfg->admin.listen, SOCK_STREAM, err);
    ch->fd = admin_bind(&cfg->admin.listen, err);
    return ch->fd < 0 ? -1 : 0;
}

static void commit_admin(struct daemon *d, const struct config *cfg, struct admin_change *ch)
{
    if (!ch->is_moving)
        return;
    if (!d->admin && ch->fd >= 0)
        d->admin = admin_new(d, d->base, ch->fd, cfg->admin.listen.text);
    else if (d->admin)
        admin_move(d->admin, ch->fd, cfg->admin.listen.text);
    ch->fd = -1;
}

static void abandon(struct daemon *d, struct reload *r)
{
    if (r->has_workers)
        workers_abandon(d);
    access_log_abandon(&r->log);
    if (r->admin.fd >= 0)
        close(r->admin.fd);
    runtime_unref(r->rt);
    r->rt = NULL;
}

static bool is_open_in(void *arg, const struct cfg_addr *addr, int type)
{
    return listen_set_has(arg, addr, type);
}

/* Builds everything (a dry run: tries everything), with the backends DNS found, and
 * collects every error. 0, or -1 with errs filled and nothing left behind. */
static int prepare(struct daemon *d, struct reload *r, enum reload_kind kind,
                   struct config_errors *errs)
{
    bool dry_run = kind == RELOAD_DRY_RUN;
    memset(r, 0, sizeof *r);
    r->admin.fd = -1;
    r->log.fd = -1;
    if (atomic_load(&d->draining)) {
        config_errors_add(errs, "ferry is stopping");
        return -1;
    }
    if (d->upgrade && !dry_run) {
        config_errors_add(errs, "a binary upgrade is under way");
        return -1;
    }
    struct config *cfg = kind == RELOAD_DNS ? config_from_document(d->current->cfg, errs)
                                            : config_load(d->config_path, errs);
    if (!cfg)
        return -1;
    size_t before = errs->count, workers = cfg->workers;
    struct err err = { { 0 } };
    if (discovery_fill(d->discovery, cfg, &err) < 0)
        config_errors_add(errs, "%s", err.msg);
    if (prepare_admin(d, cfg, dry_run, &r->admin, &err) < 0)
        config_errors_add(errs, "admin.listen: %s", err.msg);
    char *access = cfg->log.access ? strdup(cfg->log.access) : NULL;
    struct runtime_deps deps = {
        .backends = d->backends, .sockets = dry_run ? NULL : d->sockets,
        .workers = workers, .ticket_keys = d->ticket_keys, .previous = d->current,
        .errors = errs,
        .is_open = dry_run ? is_open_in : NULL, .is_open_arg = d->sockets,
        .shares_tls = kind == RELOAD_DNS,
    };
    size_t before_build = errs->count;
    r->rt = runtime_build(cfg, &deps, d->next_generation, &err);
    if (!r->rt && errs->count == before_build)
        config_errors_add(errs, "%s", err.msg);
    /* Before the workers start (while ferry waits for its first DNS answers),
     * daemon_run starts those of the generation it then has. */
    if (r->rt && !dry_run && errs->count == before && d->n_workers > 0) {
        if (workers_prepare(d, workers, &err) < 0)
            config_errors_add(errs, "%s", err.msg);
        else
            r->has_workers = true;
    }
    /* Opening may create the file: only when nothing else failed. */
    bool may_open = !dry_run && errs->count == before;
    if (may_open ? access_log_prepare(access, &r->log) < 0 : access_log_check(access) < 0)
        config_errors_add(errs, "log.access: cannot open %s: %s", access, strerror(errno));
    free(access);
    if (errs->count > before) {
        abandon(d, r);
        return -1;
    }
    return 0;
}

static void log_diff_line(void *arg, const char *line)
{
    log_info("%s: %s", (const char *)arg, line);
}

/* Anyone who reaches the address can reload or read the config. */
void daemon_warn_admin_exposure(const struct config *cfg)
{
    const struct sockaddr *sa = (const struct sockaddr *)&cfg->admin.listen.sa;
    bool is_loopback =
        (sa->sa_family == AF_INET &&
         (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127) ||
        (sa->sa_family == AF_INET6 &&
         IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr));
    if (cfg->admin.enabled && !cfg->admin.token && !is_loopback)
        log_warn("admin.listen %s is not a loopback address and admin.token is not set: "
                 "anyone who reaches it can reload ferry and read its config",
                 cfg->admin.listen.text);
}

/* Applies what prepare() built; nothing here can make the reload fail. */
static void commit(struct daemon *d, struct reload *r)
{
    struct runtime *rt = r->rt;
    json_t *diff = config_diff(d->current->cfg->document, rt->cfg->document);
    d->next_generation++;
    daemon_log_generation(rt);
    if (diff)
        config_diff_lines(diff, log_diff_line, "reload");
    json_decref(diff);
    daemon_warn_admin_exposure(rt->cfg);
    commit_admin(d, rt->cfg, &r->admin);
    if (access_log_commit(&r->log, rt->cfg->log.format) < 0) {
        log_error("log.access: cannot switch to %s: %s; the old target stays in use",
                  rt->cfg->log.access, strerror(errno));
        access_log_abandon(&r->log);
    }
    daemon_publish(d, rt);
    if (r->has_workers)
        workers_commit(d, rt->cfg->workers);
    /* Before the workers wake: they close their idle connections to what drains. */
    runtime_keep_backends(d->current, d->backends);
    daemon_wake_workers(d);
    r->rt = NULL;
}

int daemon_reload(struct daemon *d, struct config_errors *errs)
{
    struct reload r;
    if (prepare(d, &r, RELOAD_FILE, errs) < 0) {
        /* A rejected generation may have added backends to the table. */
        runtime_keep_backends(d->current, d->backends);
        atomic_fetch_add(&d->reloads_failed, 1);
        for (size_t i = 0; i < errs->count; i++)
            log_error("reload rejected: %s", errs->messages[i]);
        return -1;
    }
    commit(d, &r);
    atomic_store(&d->last_reload_ok_s, (int64_t)time(NULL));
    atomic_fetch_add(&d->reloads_ok, 1);
    log_info("reload ok generation=%llu", (unsigned long long)d->current->generation);
    return 0;
}

int daemon_reload_dry_run(struct daemon *d, struct config_errors *errs, json_t **diff)
{
    struct reload r;
    *diff = NULL;
    int rc = prepare(d, &r, RELOAD_DRY_RUN, errs);
    if (rc == 0) {
        *diff = config_diff(d->current->cfg->document, r.rt->cfg->document);
        abandon(d, &r);
    }
    /* The generation tried may have added backends to the table. */
    runtime_keep_backends(d->current, d->backends);
    if (rc < 0) {
        log_info("reload dry run: %zu error(s)", errs->count);
        return -1;
    }
    if (!*diff) {
        config_errors_add(errs, "out of memory");
        return -1;
    }
    log_info("reload dry run: ok");
    return 0;
}

int daemon_rebuild_for_dns(void *daemon)
{
    struct daemon *d = daemon;
    struct config_errors errs = { 0 };
    struct reload r;
    if (atomic_load(&d->draining))
        return 0;
    int rc = prepare(d, &r, RELOAD_DNS, &errs);
    if (rc == 0) {
        commit(d, &r);
        log_info("dns: generation=%llu has the new answers",
                 (unsigned long long)d->current->generation);
    } else {
        /* A rejected generation may have added backends to the table. */
        runtime_keep_backends(d->current, d->backends);
        for (size_t i = 0; i < errs.count; i++)
            log_error("dns: the new answers are not in use: %s", errs.messages[i]);
    }
    config_errors_clear(&errs);
    return rc;
}

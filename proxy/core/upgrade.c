/* Hot binary upgrade (SIGUSR2): this process starts its binary again — the file at
 * the path it was started from, which a package upgrade has replaced — handing it
 * every listening socket and the admin socket by descriptor inheritance, named in
 * FERRY_LISTEN_FDS ("FD=listen:ADDRESS,FD=udp:ADDRESS,FD=admin:ADDRESS", as systemd's
 * LISTEN_FDS names sockets; a udp listener's SO_REUSEPORT group is one item per
 * socket), and the TLS ticket keys through a socketpair named in
 * FERRY_UPGRADE_FD. The new process loads the config, accepts on the same sockets
 * (nothing is closed or re-bound, so no connection attempt is refused), and writes
 * "ready" on the socketpair; only then does this one stop accepting and drain
 * softly (keep-alive connections end at their next response), and exit. A new
 * process that exits, closes the socketpair or says nothing for UPGRADE_TIMEOUT_MS
 * fails the upgrade: this process goes on serving as if nothing happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <systemd/sd-daemon.h>

#include "admin/admin.h"
#include "core/clock.h"
#include "core/daemon_internal.h"
#include "core/listen.h"
#include "core/log.h"
#include "runtime/runtime.h"
#include "tls/tls.h"

extern char **environ;

#define ENV_FDS "FERRY_LISTEN_FDS"
#define ENV_CHANNEL "FERRY_UPGRADE_FD"

enum {
    UPGRADE_TIMEOUT_MS = 60000,
    MAX_PASSED = 1024,                  /* sockets handed over */
    KEYS_MAX = TLS_TICKET_KEYS_KEPT * TLS_TICKET_KEY_BYTES,
};

struct upgrade {
    struct daemon *daemon;          /* borrowed */
    pid_t pid;                      /* the new process; 0 in the new process itself */
    int channel;                    /* owned: our end of the socketpair; -1 once done */
    bool is_ready;                  /* the new process serves: we drain */
    struct event *readable;         /* owned: the channel */
    struct event *deadline;         /* owned */
};

void upgrade_free(struct upgrade *u)
{
    if (!u)
        return;
    if (u->readable)
        event_free(u->readable);
    if (u->deadline)
        event_free(u->deadline);
    if (u->channel >= 0)
        close(u->channel);
    free(u);
}

static void close_channel(struct upgrade *u)
{
    if (u->readable)
        event_del(u->readable);
    if (u->deadline)
        event_del(u->deadline);
    if (u->channel >= 0)
        close(u->channel);
    u->channel = -1;
}

/* Ends the upgrade as failed (why: what the new process did) and kills the new
 * process if it still runs. */
static void give_up(struct daemon *d, const char *why)
{
    struct upgrade *u = d->upgrade;
    snprintf(d->upgrade_failure, sizeof d->upgrade_failure, "new process %d %s", (int)u->pid,
             why);
    atomic_fetch_add(&d->upgrades_failed, 1);
    close_channel(u);
    /* Still running (it said nothing in time): it must not serve beside us. */
    if (kill(u->pid, 0) == 0)
        kill(u->pid, SIGKILL);
    upgrade_free(u);
    d->upgrade = NULL;
}

/* The upgrade failed: this process serves on, and a later SIGUSR2 may try again. */
static void fail(struct daemon *d, const char *why)
{
    log_error("upgrade failed: new process %d %s; this process (%d) goes on serving",
              (int)d->upgrade->pid, why, (int)getpid());
    give_up(d, why);
}

void upgrade_call_off(struct daemon *d)
{
    struct upgrade *u = d->upgrade;
    if (!u || u->pid <= 0 || u->is_ready)     /* pid 0: we are the new process */
        return;
    log_warn("upgrade called off: ferry is stopping; new process %d, not serving yet, is "
             "killed", (int)u->pid);
    give_up(d, "was called off: ferry is stopping");
}

static void describe_status(int status, char *why, size_t len)
{
    if (WIFEXITED(status))
        snprintf(why, len, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(why, len, "was killed by signal %d", WTERMSIG(status));
}

/* The channel closed: the process is exiting, most likely. Its status, if it comes
 * within 1 s (it is reaped here, SIGCHLD finds nothing then). */
static void exit_reason(pid_t pid, char *why, size_t len)
{
    snprintf(why, len, "closed the channel before it served");
    for (int i = 0; i < 100; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            describe_status(status, why, len);
            return;
        }
        struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

static void on_channel(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    struct upgrade *u = d->upgrade;
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0 || strncmp(buf, "ready", 5) != 0) {
        char why[64];
        exit_reason(u->pid, why, sizeof why);
        fail(d, why);
        return;
    }
    u->is_ready = true;
    close_channel(u);
    log_info("upgrade: new process %d serves; this one (%d) drains", (int)u->pid,
             (int)getpid());
    sd_notifyf(0, "MAINPID=%d\nSTATUS=handed over to %d", (int)u->pid, (int)u->pid);
    daemon_begin_drain(d, "upgrade", true);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    fail(arg, "did not say it serves within 60 s");
}

void upgrade_reap(struct daemon *d)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct upgrade *u = d->upgrade;
        if (!u || pid != u->pid || u->is_ready)
            continue;
        char why[64];
        describe_status(status, why, sizeof why);
        fail(d, why);
    }
}

/* ---- the old process ------------------------------------------------------------ */

struct handover {
    int fds[MAX_PASSED];
    size_t n;
    char *names;                    /* owned: the FERRY_LISTEN_FDS value */
    size_t names_len, names_cap;
};

static int add_socket(struct handover *h, int fd, const char *kind, const char *addr)
{
    char item[128];
    int len = snprintf(item, sizeof item, "%s%d=%s:%s", h->n ? "," : "", fd, kind, addr);
    if (h->n == MAX_PASSED || len < 0 || (size_t)len >= sizeof item)
        return -1;
    if (h->names_len + (size_t)len + 1 > h->names_cap) {
        size_t cap = (h->names_cap + (size_t)len + 1) * 2;
        char *grown = realloc(h->names, cap);
        if (!grown)
            return -1;
        h->names = grown;
        h->names_cap = cap;
    }
    memcpy(h->names + h->names_len, item, (size_t)len + 1);
    h->names_len += (size_t)len;
    h->fds[h->n++] = fd;
    return 0;
}

static int collect_sockets(struct daemon *d, struct handover *h)
{
    struct listen_socket *sockets[MAX_PASSED];
    size_t n = listen_set_sockets(d->sockets, sockets, MAX_PASSED);
    for (size_t i = 0; i < n; i++) {
        const struct listen_socket *ls = sockets[i];
        for (size_t k = 0; k < ls->n_fds; k++)
            if (add_socket(h, ls->fds[k], ls->type == SOCK_DGRAM ? "udp" : "listen",
                           ls->addr.text) < 0)
                return -1;
    }
    if (d->admin && admin_fd(d->admin) >= 0 &&
        add_socket(h, admin_fd(d->admin), "admin", d->current->cfg->admin.listen.text) < 0)
        return -1;
    return 0;
}

/* This environment without our variables, plus `extra` (NULL-terminated). */
static char **child_environment(char *const *extra, size_t n_extra)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + n_extra + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], ENV_FDS "=", strlen(ENV_FDS) + 1) != 0 &&
            strncmp(environ[i], ENV_CHANNEL "=", strlen(ENV_CHANNEL) + 1) != 0)
            env[used++] = environ[i];
    for (size_t i = 0; i < n_extra; i++)
        env[used++] = extra[i];
    return env;
}

/* Between fork and exec only async-signal-safe calls: every descriptor but the
 * handed-over ones is closed by exec. */
static void exec_child(const char *exe, char *const argv[], char *const env[],
                       const struct handover *h, int channel)
{
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    for (size_t i = 0; i < h->n; i++)
        fcntl(h->fds[i], F_SETFD, 0);
    fcntl(channel, F_SETFD, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(exe, argv, env);
    _exit(127);
}

/* Writes the ticket keys on our end before the child runs: they wait in the
 * socketpair until it reads them. */
static int send_keys(struct daemon *d, int channel)
{
    unsigned char keys[KEYS_MAX];
    size_t len = tls_ticket_keys_export(d->ticket_keys, keys, sizeof keys);
    uint32_t n = (uint32_t)len;
    int rc = write(channel, &n, sizeof n) == (ssize_t)sizeof n &&
             write(channel, keys, len) == (ssize_t)len ? 0 : -1;
    OPENSSL_cleanse(keys, sizeof keys);
    return rc;
}

static pid_t spawn(struct daemon *d, int channel_child, struct handover *h)
{
    char fds_var[32 + 1] = ENV_FDS "=";
    char channel_var[64];
    snprintf(channel_var, sizeof channel_var, ENV_CHANNEL "=%d", channel_child);
    char *fds_env = malloc(strlen(fds_var) + h->names_len + 1);
    if (!fds_env)
        return -1;
    sprintf(fds_env, "%s%s", fds_var, h->names ? h->names : "");
    char *extra[] = { fds_env, channel_var };
    char **env = child_environment(extra, 2);
    char *argv[] = { d->exe_path, (char *)"-c", d->config_path, NULL };
    pid_t pid = env ? fork() : -1;
    if (pid == 0)
        exec_child(d->exe_path, argv, env, h, channel_child);
    free(env);
    free(fds_env);
    return pid;
}

void upgrade_start(struct daemon *d)
{
    /* Nor during stop_grace_ms: the new binary would serve on, and the stop be lost. */
    if (d->upgrade || atomic_load(&d->draining) || atomic_load(&d->stop_announced)) {
        log_warn("SIGUSR2: %s; ignored", d->upgrade ? "an upgrade is under way" : "ferry is stopping");
        return;
    }
    struct handover h = { .n = 0 };
    int sv[2] = { -1, -1 };
    struct upgrade *u = calloc(1, sizeof *u);
    if (!u || collect_sockets(d, &h) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || send_keys(d, sv[0]) < 0) {
        log_error("upgrade failed: cannot prepare the handover: %s", strerror(errno));
        goto fail;
    }
    u->daemon = d;
    u->channel = sv[0];
    u->readable = event_new(d->base, sv[0], EV_READ | EV_PERSIST, on_channel, d);
    u->deadline = evtimer_new(d->base, on_deadline, d);
    struct timeval tv = clock_tv_from_ms(UPGRADE_TIMEOUT_MS);
    if (!u->readable || !u->deadline || event_add(u->readable, NULL) < 0 ||
        evtimer_add(u->deadline, &tv) < 0) {
        log_error("upgrade failed: out of memory");
        goto fail;
    }
    u->pid = spawn(d, sv[1], &h);
    if (u->pid < 0) {
        log_error("upgrade failed: cannot start %s: %s", d->exe_path, strerror(errno));
        goto fail;
    }
    close(sv[1]);
    free(h.names);
    d->upgrade = u;
    log_info("upgrade: started %s as process %d with %zu sockets", d->exe_path, (int)u->pid, h.n);
    return;
fail:
    if (sv[1] >= 0)
        close(sv[1]);
    if (u && u->channel < 0 && sv[0] >= 0)
        close(sv[0]);
    upgrade_free(u);
    free(h.names);
}

/* ---- the new process ------------------------------------------------------------ */

/* A listening TCP socket, and its address as the kernel has it. */
/* fd is a socket of `type` bound to an address (a stream socket: listening), which
 * goes into addr. */
static int check_socket(int fd, int type, struct cfg_addr *addr)
{
    int listening = 0, actual = 0;
    socklen_t len = sizeof listening, type_len = sizeof actual;
    struct stat st;
    addr->len = sizeof addr->sa;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &actual, &type_len) < 0 || actual != type ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
        listening != (type == SOCK_STREAM) ||
        getsockname(fd, (struct sockaddr *)&addr->sa, &addr->len) < 0)
        return -1;
    return 0;
}

/* One "FD=KIND:ADDRESS" item of FERRY_LISTEN_FDS. */
static int adopt_item(struct daemon *d, const struct config *cfg, char *item, int *admin_fd,
                      struct err *err)
{
    char *eq = strchr(item, '='), *colon = eq ? strchr(eq + 1, ':') : NULL;
    char *end;
    long fd = eq ? strtol(item, &end, 10) : -1;
    struct cfg_addr addr = { .len = 0 };
    if (!colon || end != eq || fd < 3 || fd > 1 << 20)
        return err_set(err, ENV_FDS ": cannot read \"%s\"", item);
    *colon = '\0';
    const char *kind = eq + 1, *text = colon + 1;
    int type = strcmp(kind, "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM;
    if (check_socket((int)fd, type, &addr) < 0 || strlen(text) >= sizeof addr.text)
        return err_set(err, ENV_FDS ": descriptor %ld (%s) is not a listening socket", fd, text);
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    snprintf(addr.text, sizeof addr.text, "%s", text);
    if (strcmp(kind, "admin") == 0) {
        if (cfg->admin.enabled && strcmp(cfg->admin.listen.text, text) == 0 && *admin_fd < 0)
            *admin_fd = (int)fd;
        else
            close((int)fd);
        return 0;
    }
    if (listen_set_adopt(d->sockets, (int)fd, &addr, type) < 0) {
        close((int)fd);
        return err_set(err, "out of memory");
    }
    return 0;
}

static int receive_keys(struct daemon *d, int channel, struct err *err)
{
    uint32_t n = 0;
    unsigned char keys[KEYS_MAX];
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(channel, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc = -1;
    if (read(channel, &n, sizeof n) != (ssize_t)sizeof n || n > sizeof keys ||
        read(channel, keys, n) != (ssize_t)n)
        err_set(err, "cannot read the TLS ticket keys from the old process");
    else if (tls_ticket_keys_import(d->ticket_keys, keys, n) < 0)
        err_set(err, "the old process sent %u bytes of TLS ticket keys", n);
    else
        rc = 0;
    OPENSSL_cleanse(keys, sizeof keys);
    return rc;
}

int upgrade_inherit(struct daemon *d, const struct config *cfg, int *admin_fd, struct err *err)
{
    *admin_fd = -1;
    const char *channel_text = getenv(ENV_CHANNEL), *fds_text = getenv(ENV_FDS);
    if (!channel_text)
        return 0;
    char *end;
    long channel_fd = strtol(channel_text, &end, 10);
    if (end == channel_text || *end || channel_fd < 3 || channel_fd > INT_MAX)
        return err_set(err, ENV_CHANNEL ": not a descriptor: \"%s\"", channel_text);
    int channel = (int)channel_fd;
    char *list = strdup(fds_text ? fds_text : "");
    unsetenv(ENV_CHANNEL);
    unsetenv(ENV_FDS);
    d->upgrade = calloc(1, sizeof *d->upgrade);
    if (!list || !d->upgrade) {
        free(list);
        close(channel);
        return err_set(err, "out of memory");
    }
    d->upgrade->daemon = d;
    d->upgrade->channel = channel;
    fcntl(channel, F_SETFD, FD_CLOEXEC);
    int rc = receive_keys(d, channel, err);
    char *save = NULL;
    for (char *item = strtok_r(list, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save))
        rc = adopt_item(d, cfg, item, admin_fd, err);
    free(list);
    if (rc == 0)
        log_info("upgrade: taking over from process %d", (int)getppid());
    return rc;
}

void upgrade_announce_ready(struct daemon *d)
{
    struct upgrade *u = d->upgrade;
    if (!u || u->pid != 0)
        return;
    if (write(u->channel, "ready\n", 6) != 6)
        log_warn("upgrade: cannot tell the old process that this one serves: %s",
                 strerror(errno));
    upgrade_free(u);
    d->upgrade = NULL;
}

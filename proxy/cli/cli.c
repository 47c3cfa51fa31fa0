/* The commands that talk to a running ferry through its admin API. Each exits 0 only
 * when what it was asked for happened, so that deploy scripts can trust it. */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/admin_client.h"
#include "config/diff.h"
#include "core/clock.h"
#include "core/daemon.h"

enum { CALL_TIMEOUT_MS = 30000, SERVE_WAIT_MS = 10000, POLL_MS = 50 };

static int unreachable(const char *cmd, const struct admin_target *t, const struct admin_reply *r)
{
    fprintf(stderr, "ferry %s: %s (is ferry running?)\n", cmd, r->error);
    if (t->file_error[0])
        fprintf(stderr, "ferry %s: the admin address is the default: %s\n", cmd, t->file_error);
    return CLI_UNREACHABLE;
}

/* The target named by FILE; false (after saying why) when the API is off. */
static bool target_of(const char *cmd, const char *path, struct admin_target *t)
{
    admin_target_from_file(path, t);
    if (!t->is_enabled)
        fprintf(stderr, "ferry %s: %s turns the admin API off (\"admin\": null); use signals\n",
                cmd, path);
    return t->is_enabled;
}

static json_t *call_json(const struct admin_target *t, const char *method, const char *path,
                         struct admin_reply *r)
{
    if (admin_call(t, method, path, CALL_TIMEOUT_MS, r) < 0)
        return NULL;
    json_t *j = json_loads(r->body, 0, NULL);
    if (!j)
        snprintf(r->error, sizeof r->error, "%s %s answered %d: %.200s", method, path,
                 r->status, r->body);
    return j;
}

static void print_line(void *arg, const char *line)
{
    fprintf(arg, "  %s\n", line);
}

static void print_errors(const char *cmd, const json_t *body)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(body, "errors"), i, e)
        fprintf(stderr, "  %s\n", json_string_value(e));
    if (!json_array_size(json_object_get(body, "errors")))
        fprintf(stderr, "  %s\n", json_string_value(json_object_get(body, "error")));
    (void)cmd;
}

/* Whether every serving worker accepts on generation >= want. */
static bool is_serving(const json_t *status, json_int_t want)
{
    size_t i;
    json_t *w;
    if (json_integer_value(json_object_get(status, "generation")) < want)
        return false;
    json_array_foreach(json_object_get(status, "workers"), i, w) {
        const char *state = json_string_value(json_object_get(w, "state"));
        if (state && strcmp(state, "retiring") != 0 &&
            json_integer_value(json_object_get(w, "generation")) < want)
            return false;
    }
    return true;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

/* Polls GET /status until check() says yes (1), or no for good (-1), or the time is
 * up (0). */
static int poll_status(const struct admin_target *t, int timeout_ms,
                       int (*check)(const json_t *status, void *arg), void *arg)
{
    int64_t deadline = clock_now_ms() + timeout_ms;
    for (;;) {
        struct admin_reply r;
        json_t *st = call_json(t, "GET", "/status", &r);
        int verdict = st ? check(st, arg) : 0;
        json_decref(st);
        admin_reply_clear(&r);
        if (verdict != 0)
            return verdict;
        if (clock_now_ms() >= deadline)
            return 0;
        sleep_ms(POLL_MS);
    }
}

static int check_generation(const json_t *status, void *arg)
{
    return is_serving(status, *(json_int_t *)arg) ? 1 : 0;
}

int cli_reload(const char *path)
{
    struct admin_target t;
    struct admin_reply r;
    if (!target_of("reload", path, &t))
        return CLI_FAILED;
    /* The dry run says what will change (and rejects a broken file before anything
     * is tried); the reload itself decides. */
    json_t *dry = call_json(&t, "POST", "/reload?dry_run=1", &r);
    if (!dry) {
        int rc = r.status ? CLI_FAILED : unreachable("reload", &t, &r);
        if (r.status)
            fprintf(stderr, "ferry reload: %s\n", r.error);
        admin_reply_clear(&r);
        return rc;
    }
    admin_reply_clear(&r);
    if (!json_is_true(json_object_get(dry, "ok"))) {
        fprintf(stderr, "ferry reload: %s rejected, nothing changed:\n", path);
        print_errors("reload", dry);
        json_decref(dry);
        return CLI_FAILED;
    }
    json_int_t before = json_integer_value(json_object_get(dry, "generation"));
    json_t *done = call_json(&t, "POST", "/reload", &r);
    if (!done || !json_is_true(json_object_get(done, "ok"))) {
        fprintf(stderr, "ferry reload: %s rejected, nothing changed:\n", path);
        if (done)
            print_errors("reload", done);
        else
            fprintf(stderr, "  %s\n", r.error);
        admin_reply_clear(&r);
        json_decref(dry);
        json_decref(done);
        return CLI_FAILED;
    }
    admin_reply_clear(&r);
    json_int_t generation = json_integer_value(json_object_get(done, "generation"));
    json_decref(done);
    if (poll_status(&t, SERVE_WAIT_MS, check_generation, &generation) != 1) {
        fprintf(stderr, "ferry reload: generation %lld was published, but not every worker "
                "serves it after %d ms\n", (long long)generation, SERVE_WAIT_MS);
        json_decref(dry);
        return CLI_FAILED;
    }
    printf("reloaded: generation %lld serves\n", (long long)generation);
    if (generation != before + 1)
        printf("(another reload ran meanwhile: the changes below are against generation "
               "%lld)\n", (long long)before);
    config_diff_lines(json_object_get(dry, "diff"), print_line, stdout);
    json_decref(dry);
    return CLI_OK;
}

int cli_status(const char *path)
{
    struct admin_target t;
    struct admin_reply r;
    if (!target_of("status", path, &t))
        return CLI_FAILED;
    json_t *st = call_json(&t, "GET", "/status", &r);
    if (!st) {
        int rc = r.status ? CLI_FAILED : unreachable("status", &t, &r);
        if (r.status)
            fprintf(stderr, "ferry status: %s\n", r.error);
        admin_reply_clear(&r);
        return rc;
    }
    admin_reply_clear(&r);
    const char *state = json_string_value(json_object_get(st, "state"));
    printf("ferry %s pid %lld: %s, generation %lld, up %lld s, %lld connections, %zu workers\n",
           json_string_value(json_object_get(st, "version")),
           (long long)json_integer_value(json_object_get(st, "pid")), state ? state : "?",
           (long long)json_integer_value(json_object_get(st, "generation")),
           (long long)json_integer_value(json_object_get(st, "uptime_s")),
           (long long)json_integer_value(json_object_get(st, "connections")),
           json_array_size(json_object_get(st, "workers")));
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(st, "listeners"), name, v)
        printf("  listener %s %s %s: %lld active, %lld accepted\n", name,
               json_string_value(json_object_get(v, "listen")),
               json_string_value(json_object_get(v, "mode")),
               (long long)json_integer_value(json_object_get(v, "active")),
               (long long)json_integer_value(json_object_get(v, "accepted")));
    json_object_foreach(json_object_get(st, "pools"), name, v) {
        size_t i;
        json_t *b;
        json_array_foreach(json_object_get(v, "backends"), i, b)
            printf("  backend %s/%s %s: %lld active, %lld requests, %lld failures\n", name,
                   json_string_value(json_object_get(b, "address")),
                   json_string_value(json_object_get(b, "state")),
                   (long long)json_integer_value(json_object_get(b, "active")),
                   (long long)json_integer_value(json_object_get(b, "requests")),
                   (long long)json_integer_value(json_object_get(b, "failures")));
    }
    int rc = state && strcmp(state, "serving") == 0 ? CLI_OK : CLI_FAILED;
    json_decref(st);
    return rc;
}

int cli_check_diff(const char *path)
{
    struct admin_target t;
    struct admin_reply r;
    if (!target_of("-t --diff", path, &t))
        return CLI_FAILED;
    json_t *running = call_json(&t, "GET", "/config", &r);
    if (!running) {
        fprintf(stderr, "ferry -t --diff: cannot read the running config: %s\n", r.error);
        admin_reply_clear(&r);
        return CLI_FAILED;
    }
    admin_reply_clear(&r);
    int rc = daemon_check_config(path, running);
    json_decref(running);
    return rc;
}

struct upgrade_wait {
    json_int_t old_pid;
    json_int_t failures;            /* before the signal */
    char failure[256];
};

static int check_upgrade(const json_t *status, void *arg)
{
    struct upgrade_wait *w = arg;
    const json_t *up = json_object_get(status, "upgrade");
    if (json_integer_value(json_object_get(status, "pid")) != w->old_pid)
        return 1;
    if (json_integer_value(json_object_get(up, "failures")) > w->failures) {
        snprintf(w->failure, sizeof w->failure, "%s",
                 json_string_value(json_object_get(up, "last_failure")));
        return -1;
    }
    return 0;
}

int cli_upgrade(const char *path)
{
    struct admin_target t;
    struct admin_reply r;
    if (!target_of("upgrade", path, &t))
        return CLI_FAILED;
    json_t *st = call_json(&t, "GET", "/status", &r);
    if (!st) {
        int rc = r.status ? CLI_FAILED : unreachable("upgrade", &t, &r);
        admin_reply_clear(&r);
        return rc;
    }
    admin_reply_clear(&r);
    const char *state = json_string_value(json_object_get(st, "state"));
    if (state && strcmp(state, "draining") == 0) {
        /* It would ignore SIGUSR2: say so now rather than after waiting 90 s. */
        fprintf(stderr, "ferry upgrade: ferry is stopping (/status says draining); nothing "
                "done\n");
        json_decref(st);
        return CLI_FAILED;
    }
    struct upgrade_wait w = {
        .old_pid = json_integer_value(json_object_get(st, "pid")),
        .failures = json_integer_value(json_object_get(json_object_get(st, "upgrade"), "failures")),
    };
    json_decref(st);
    if (w.old_pid <= 1 || kill((pid_t)w.old_pid, SIGUSR2) < 0) {
        fprintf(stderr, "ferry upgrade: cannot signal process %lld: %s\n", (long long)w.old_pid,
                strerror(errno));
        return CLI_FAILED;
    }
    int verdict = poll_status(&t, 90000, check_upgrade, &w);
    if (verdict != 1) {
        fprintf(stderr, "ferry upgrade: %s; process %lld goes on serving\n",
                verdict < 0 ? w.failure : "the new process did not serve within 90 s",
                (long long)w.old_pid);
        return CLI_FAILED;
    }
    printf("upgraded: process %lld hands over and drains\n", (long long)w.old_pid);
    return CLI_OK;
}

#include "admin/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include "admin/render.h"
#include "admin/request.h"
#include "core/clock.h"
#include "core/daemon.h"
#include "core/listen.h"
#include "core/log.h"
#include "http1/parse.h"
#include "runtime/runtime.h"

/* Requests are small (admin/request.h). The API's descriptors come out of the same RLIMIT_NOFILE as the traffic's, so it holds at
 * most ADMIN_MAX_CONNS connections, each for at most ADMIN_TIMEOUT_MS from accept. */
enum {
    ADMIN_TIMEOUT_MS = 5000,
    ADMIN_MAX_CONNS = 16,
    ADMIN_BACKLOG = 64,
    ADMIN_ACCEPT_RETRY_MS = 100,
};

struct admin {
    struct daemon *daemon;          /* borrowed */
    struct event_base *base;        /* borrowed: the main thread's */
    int fd;                         /* owned: listening socket */
    struct event *accept_event;     /* owned; NULL while the API is off */
    struct event *accept_retry;     /* owned: ends an accept pause */
    bool accept_paused;             /* accept failed for want of descriptors or memory */
    bool is_handed_over;            /* a new binary accepts on the socket now */
    struct admin_conn *conns;       /* live connections */
    size_t n_conns;
};

struct admin_conn {
    struct admin *admin;            /* borrowed */
    struct bufferevent *bev;        /* owned */
    struct event *deadline;         /* owned: ADMIN_TIMEOUT_MS after accept */
    size_t scanned;                 /* head bytes already looked at */
    bool responded;
    struct admin_conn *prev, *next;
};

/* Accepting stops at ADMIN_MAX_CONNS and during a pause: new connections wait in the
 * kernel backlog (as for limits.max_connections), never accept-then-close.
 * -1 when the event could not be added. */
static int update_accepting(struct admin *a)
{
    if (!a->accept_event)
        return 0;
    if (!a->accept_paused && !a->is_handed_over && a->n_conns < ADMIN_MAX_CONNS)
        return event_add(a->accept_event, NULL);
    return event_del(a->accept_event);
}

static void conn_free(struct admin_conn *c)
{
    struct admin *a = c->admin;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    event_free(c->deadline);
    free(c);
    a->n_conns--;
    update_accepting(a);
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* extra: more header lines, each ending in CRLF ("" for none). */
static void respond_with(struct admin_conn *c, int status, const char *type, const char *extra,
                         const char *body)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t len = strlen(body);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
                        status, reason_of(status), type, len, extra);
    evbuffer_add(out, body, len);
    c->responded = true;
    bufferevent_disable(c->bev, EV_READ);
}

static void respond(struct admin_conn *c, int status, const char *type, const char *body)
{
    respond_with(c, status, type, status == 401 ? "WWW-Authenticate: Bearer\r\n" : "", body);
}

/* RFC 9110 15.5.6: a 405 must say which methods the resource takes. */
static void respond_method_not_allowed(struct admin_conn *c, const char *allow)
{
    char extra[64], body[64];
    snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
    snprintf(body, sizeof body, "{\"error\":\"use %s\"}", allow);
    respond_with(c, 405, "application/json", extra, body);
}

static void respond_json(struct admin_conn *c, int status, char *body /* owned */)
{
    respond(c, body ? status : 500, "application/json", body ? body : "{\"ok\":false}");
    free(body);
}

static char *reload_body(struct daemon *d, bool dry_run)
{
    struct config_errors errs = { 0 };
    json_t *body, *diff = NULL;
    int rc = dry_run ? daemon_reload_dry_run(d, &errs, &diff) : daemon_reload(d, &errs);
    if (rc == 0) {
        /* A dry run names the generation it compared with: the one still running. */
        struct runtime *rt = daemon_runtime(d);
        body = json_pack("{s:b, s:I}", "ok", 1, "generation", (json_int_t)rt->generation);
        runtime_unref(rt);
        if (body && diff)
            json_object_set_new(body, "diff", diff);
        else
            json_decref(diff);
    } else {
        json_t *list = json_array();
        for (size_t i = 0; i < errs.count; i++)
            json_array_append_new(list, json_string(errs.messages[i]));
        body = json_pack("{s:b, s:o}", "ok", 0, "errors", list);
    }
    config_errors_clear(&errs);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

static void respond_drain(struct admin_conn *c, const struct admin_request *req)
{
    bool drain = req->endpoint == ADMIN_DRAIN;
    if (daemon_set_drain(c->admin->daemon, req->pool, req->backend, drain) == 0) {
        log_info("admin: %s %s/%s", drain ? "drain" : "enable", req->pool, req->backend);
        respond(c, 200, "application/json", "{\"ok\":true}");
        return;
    }
    char why[2 * ADMIN_MAX_SEGMENT + 64];
    snprintf(why, sizeof why, "no backend \"%s\" in pool \"%s\"", req->backend, req->pool);
    json_t *body = json_pack("{s:b, s:s}", "ok", 0, "error", why);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    respond_json(c, 404, text);
}

/* Answers what admin_request_decide() made of the request. */
static void dispatch(struct admin_conn *c, const struct admin_request *req)
{
    struct daemon *d = c->admin->daemon;
    char body[160];
    char *text;
    switch (req->endpoint) {
    case ADMIN_NONE:
        if (req->status == 405) {
            respond_method_not_allowed(c, req->allow);
            return;
        }
        snprintf(body, sizeof body, "{\"error\":\"%s\"}", req->error);
        respond(c, req->status, "application/json", body);
        return;
    case ADMIN_STATUS:
        respond_json(c, 200, admin_render_status(d));
        return;
    case ADMIN_METRICS:
        text = admin_render_metrics(d);
        respond(c, text ? 200 : 500, "text/plain; version=0.0.4", text ? text : "");
        free(text);
        return;
    case ADMIN_RELOAD:
        text = reload_body(d, req->dry_run);
        respond_json(c, text && strstr(text, "\"ok\":true") ? 200 : 400, text);
        return;
    case ADMIN_DRAIN:
    case ADMIN_ENABLE:
        respond_drain(c, req);
        return;
    case ADMIN_HEALTHZ:
        if (daemon_info(d).is_draining)
            respond(c, 503, "application/json", "{\"status\":\"draining\"}");
        else
            respond(c, 200, "application/json", "{\"status\":\"serving\"}");
        return;
    case ADMIN_CONFIG:
        respond_json(c, 200, admin_render_config(d));
        return;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct admin_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    if (c->responded)
        return;
    size_t window = len < ADMIN_MAX_HEAD ? len : ADMIN_MAX_HEAD;
    const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)window);
    if (!http1_head_ready(buf, window, c->scanned, ADMIN_MAX_HEAD)) {
        c->scanned = window;
        return;
    }
    c->scanned = window;
    /* A connection accepted before a reload turned the API off gets nothing more. */
    struct runtime *rt = daemon_runtime(c->admin->daemon);
    struct admin_request req;
    int decided = admin_request_decide(buf, window, rt->cfg->admin.token,
                                       rt->cfg->admin.enabled, &req);
    runtime_unref(rt);
    if (decided)
        dispatch(c, &req);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct admin_conn *c = arg;
    if (c->responded)
        conn_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    conn_free(arg);
}

/* One absolute deadline for the whole exchange, request and response: bufferevent
 * timeouts restart on every byte, so a client trickling a byte every few seconds
 * would keep its descriptor for hours. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    log_debug("admin connection %p: not done within %d ms, closing", arg, ADMIN_TIMEOUT_MS);
    conn_free(arg);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct admin *a = arg;
    a->accept_paused = false;
    update_accepting(a);
}

/* Out of descriptors or memory the listening socket stays readable: without a pause
 * the main loop would spin on it. Pending clients wait in the backlog meanwhile. */
static void on_accept_error(struct admin *a, int error)
{
    switch (error) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM: {
        log_warn("admin: accept: %s; pausing accepts for %d ms", strerror(error),
                 ADMIN_ACCEPT_RETRY_MS);
        a->accept_paused = true;
        update_accepting(a);
        struct timeval tv = clock_tv_from_ms(ADMIN_ACCEPT_RETRY_MS);
        evtimer_add(a->accept_retry, &tv);
        return;
    }
    default:    /* EAGAIN, ECONNABORTED, EINTR: the next wakeup tries again */
        return;
    }
}

/* cfd (owned) becomes a connection with its deadline running. -1: out of memory,
 * cfd closed. */
static int start_conn(struct admin *a, int cfd)
{
    struct admin_conn *c = calloc(1, sizeof *c);
    struct bufferevent *bev = c ? bufferevent_socket_new(a->base, cfd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        free(c);
        close(cfd);
        return -1;
    }
    struct timeval tv = clock_tv_from_ms(ADMIN_TIMEOUT_MS);
    c->deadline = evtimer_new(a->base, on_deadline, c);
    if (!c->deadline || evtimer_add(c->deadline, &tv) < 0) {
        if (c->deadline)
            event_free(c->deadline);
        bufferevent_free(bev);     /* closes cfd */
        free(c);
        return -1;
    }
    c->admin = a;
    c->bev = bev;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->n_conns++;
    bufferevent_setwatermark(bev, EV_READ, 0, ADMIN_MAX_HEAD);
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    return 0;
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct admin *a = arg;
    /* cppcheck-suppress nullPointer ; gnu.cfg wrongly has accept4's addrlen non-null */
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
        on_accept_error(a, errno);
        return;
    }
    if (start_conn(a, cfd) == 0)
        update_accepting(a);
}

int admin_bind(const struct cfg_addr *listen_addr, struct err *err)
{
    return listen_bind(listen_addr, ADMIN_BACKLOG, err);
}

/* fd (owned by a from now on, also on failure) becomes the listening socket. */
static int start_accepting(struct admin *a, int fd)
{
    a->fd = fd;
    a->accept_event = event_new(a->base, fd, EV_READ | EV_PERSIST, on_accept, a);
    if (!a->accept_event || update_accepting(a) < 0)
        return -1;
    return 0;
}

static void stop_accepting(struct admin *a)
{
    if (a->accept_event)
        event_free(a->accept_event);
    a->accept_event = NULL;
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
}

struct admin *admin_new(struct daemon *d, struct event_base *base, int fd,
                        const char *listen_text)
{
    struct admin *a = calloc(1, sizeof *a);
    if (!a) {
        close(fd);
        return NULL;
    }
    a->daemon = d;
    a->base = base;
    a->fd = -1;
    a->accept_retry = evtimer_new(base, on_accept_retry, a);
    if (!a->accept_retry) {
        close(fd);
        goto fail;
    }
    if (start_accepting(a, fd) < 0)
        goto fail;
    log_info("admin listen=%s", listen_text);
    return a;
fail:
    admin_free(a);
    return NULL;
}

int admin_fd(const struct admin *a) { return a->accept_event ? a->fd : -1; }

void admin_stop_accepting(struct admin *a)
{
    a->is_handed_over = true;
    update_accepting(a);
}

void admin_move(struct admin *a, int fd, const char *listen_text)
{
    stop_accepting(a);
    if (fd < 0) {
        log_info("admin off");
        return;
    }
    if (start_accepting(a, fd) < 0) {
        stop_accepting(a);
        log_error("admin listen=%s: out of memory; the admin API is off", listen_text);
        return;
    }
    log_info("admin listen=%s", listen_text);
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    stop_accepting(a);
    /* conn_free() unlinks c from c->admin, which is a, so a->conns moves on (the analyzer
     * does not know that c->admin == a). */
    while (a->conns)
        conn_free(a->conns); /* NOLINT(clang-analyzer-unix.Malloc) */
    if (a->accept_retry)
        event_free(a->accept_retry);
    free(a);
}

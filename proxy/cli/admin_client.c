#include "cli/admin_client.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "config/config.h"
#include "core/clock.h"

enum { CLIENT_MAX_RESPONSE = 16 << 20 };

void admin_target_from_file(const char *path, struct admin_target *t)
{
    json_error_t jerr;
    snprintf(t->listen, sizeof t->listen, "127.0.0.1:9901");
    t->token[0] = '\0';
    t->file_error[0] = '\0';
    t->is_enabled = true;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(t->file_error, sizeof t->file_error, "%s:%d:%d: %s", path, jerr.line,
                 jerr.column, jerr.text);
        return;
    }
    const json_t *admin = json_object_get(root, "admin");
    t->is_enabled = !json_is_null(admin);
    const char *listen = json_string_value(json_object_get(admin, "listen"));
    const char *token = json_string_value(json_object_get(admin, "token"));
    if (listen)
        snprintf(t->listen, sizeof t->listen, "%s", listen);
    if (token)
        snprintf(t->token, sizeof t->token, "%s", token);
    json_decref(root);
}

/* The status code of an HTTP/1.x status line, or -1. */
static int status_of(const char *resp)
{
    static const char prefix[] = "HTTP/1.";
    if (strncmp(resp, prefix, sizeof prefix - 1) != 0 || !isdigit((unsigned char)resp[7]) ||
        resp[8] != ' ')
        return -1;
    char *end;
    long status = strtol(resp + 9, &end, 10);
    return end == resp + 12 && status >= 100 && status <= 999 && (*end == ' ' || *end == '\r')
               ? (int)status : -1;
}

/* A wildcard address (0.0.0.0, ::) is reached on loopback. */
static void wildcard_to_loopback(struct cfg_addr *a)
{
    if (a->sa.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&a->sa;
        if (in->sin_addr.s_addr == htonl(INADDR_ANY))
            in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (a->sa.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->sa;
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
            in6->sin6_addr = in6addr_loopback;
    }
}

/* "127.0.0.1:9901", "[::1]:9901", "0.0.0.0:9901" (reached on loopback): the admin
 * address as the config writes it. */
static int connect_to(const char *listen, int timeout_ms, struct admin_reply *r)
{
    struct cfg_addr addr;
    char why[128];
    if (config_addr_parse(listen, ADDR_ALLOW_LOCALHOST, &addr, why, sizeof why) < 0)
        return snprintf(r->error, sizeof r->error, "bad address %s: %s", listen, why), -1;
    wildcard_to_loopback(&addr);
    int fd = socket(addr.sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rc = fd < 0 ? -1 : connect(fd, (const struct sockaddr *)&addr.sa, addr.len);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int err = 0;
        socklen_t len = sizeof err;
        if (poll(&p, 1, timeout_ms) != 1)
            err = ETIMEDOUT;
        else
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err ? -1 : 0;
        errno = err;
    }
    if (rc < 0) {
        snprintf(r->error, sizeof r->error, "cannot connect to %s: %s", listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* 0 when fd is ready before the deadline; else -1 with errno ETIMEDOUT (so that the
 * caller's message says so rather than the EAGAIN that led here). */
static int wait_for(int fd, short events, int64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = events };
    int64_t left = deadline - clock_now_ms();
    if (left > 0 && poll(&p, 1, (int)left) == 1)
        return 0;
    errno = ETIMEDOUT;
    return -1;
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN && wait_for(fd, POLLOUT, deadline) == 0)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until the server closes (the admin API answers Connection: close). */
static char *read_all(int fd, size_t *len, int64_t deadline)
{
    size_t cap = 8192, used = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (used + 1 == cap) {
            char *grown = cap < CLIENT_MAX_RESPONSE ? realloc(buf, cap * 2) : NULL;
            if (!grown) {
                errno = cap < CLIENT_MAX_RESPONSE ? ENOMEM : EMSGSIZE;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + used, cap - used - 1, 0);
        if (n < 0 && errno == EAGAIN && wait_for(fd, POLLIN, deadline) == 0)
            continue;
        if (n < 0)
            break;
        if (n == 0) {
            buf[used] = '\0';
            *len = used;
            return buf;
        }
        used += (size_t)n;
    }
    free(buf);
    return NULL;
}

int admin_call(const struct admin_target *t, const char *method, const char *path,
               int timeout_ms, struct admin_reply *r)
{
    memset(r, 0, sizeof *r);
    int64_t deadline = clock_now_ms() + timeout_ms;
    int fd = connect_to(t->listen, timeout_ms, r);
    if (fd < 0)
        return -1;
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: ferry\r\nUser-Agent: ferry/%s\r\n%s%s%s"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n",
                     method, path, FERRY_VERSION, t->token[0] ? "Authorization: Bearer " : "",
                     t->token, t->token[0] ? "\r\n" : "");
    size_t len = 0;
    char *resp = NULL;
    if (n < 0 || (size_t)n >= sizeof head || send_all(fd, head, (size_t)n, deadline) < 0 ||
        !(resp = read_all(fd, &len, deadline))) {
        snprintf(r->error, sizeof r->error, "%s %s: no answer from %s: %s", method, path,
                 t->listen, errno ? strerror(errno) : "closed");
        close(fd);
        return -1;
    }
    close(fd);
    char *body = strstr(resp, "\r\n\r\n");
    r->status = status_of(resp);
    if (r->status < 0 || !body) {
        snprintf(r->error, sizeof r->error, "%s %s: not an HTTP answer from %s", method, path,
                 t->listen);
        free(resp);
        return -1;
    }
    r->body = strdup(body + 4);
    free(resp);
    if (!r->body)
        return snprintf(r->error, sizeof r->error, "out of memory"), -1;
    return 0;
}

void admin_reply_clear(struct admin_reply *r)
{
    free(r->body);
    r->body = NULL;
}

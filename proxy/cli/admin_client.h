/* admin client — the command line's side of the admin API (ferry reload, status,
 * upgrade, -t --diff): one blocking HTTP/1.1 request per call, bounded in time.
 */
#ifndef FERRY_CLI_ADMIN_CLIENT_H
#define FERRY_CLI_ADMIN_CLIENT_H

#include <stdbool.h>

/* Where the running daemon's API is, as the config file says. */
struct admin_target {
    char listen[128];           /* "127.0.0.1:9901" by default */
    char token[512];            /* "" for none */
    bool is_enabled;            /* false: "admin": null */
    char file_error[512];       /* the file could not be read as JSON ("" if it could):
                                   the defaults are used */
};

/* Reads admin.listen and admin.token from FILE; only the JSON is needed (a file with
 * other errors still names the daemon to report them). */
void admin_target_from_file(const char *path, struct admin_target *t);

struct admin_reply {
    int status;
    char *body;                 /* owned, NUL-terminated */
    char error[640];            /* why the call failed */
};

/* 0 with r->status and r->body, or -1 with r->error (the daemon cannot be reached or
 * did not answer within timeout_ms). admin_reply_clear() in both cases. */
int admin_call(const struct admin_target *t, const char *method, const char *path,
               int timeout_ms, struct admin_reply *r);
void admin_reply_clear(struct admin_reply *r);

#endif

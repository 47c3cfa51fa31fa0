/* err — the reason a setup function failed, for the caller to log or report.
 * Convention (style.md §3): setup functions return 0 on success, -1 on failure with
 * the reason written into a caller-provided struct err. */
#ifndef FERRY_ERR_H
#define FERRY_ERR_H

struct err {
    char msg[512];
};

/* printf-style; always returns -1 so callers can `return err_set(e, ...)`. */
int err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends the OpenSSL error queue (most recent first) to e->msg and clears it. */
int err_set_ssl(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

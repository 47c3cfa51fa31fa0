#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

int err_set(struct err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int err_set_ssl(struct err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);

    unsigned long code = ERR_peek_last_error();
    if (code != 0) {
        size_t used = strlen(e->msg);
        char reason[256];
        ERR_error_string_n(code, reason, sizeof reason);
        snprintf(e->msg + used, sizeof e->msg - used, ": %s", reason);
    }
    ERR_clear_error();
    return -1;
}

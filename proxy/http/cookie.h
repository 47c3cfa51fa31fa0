/* http cookie — reading and editing Cookie field values (RFC 6265 §4.2.1:
 * "name=value" pairs separated by ";" and optional spaces). Pure: no I/O, no
 * allocation; tolerant of what browsers send (empty pairs, spaces around "="), since a
 * cookie ferry cannot read is simply not there for it. */
#ifndef FERRY_HTTP_COOKIE_H
#define FERRY_HTTP_COOKIE_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

/* The value of the first cookie named `name` (case-sensitive, as RFC 6265 compares)
 * in a Cookie field value; false when there is none. *value points into `field`. */
bool http_cookie_find(const char *field, size_t len, const char *name, const char **value,
                      size_t *value_len);

/* Does the field hold a cookie named `name`? */
bool http_cookie_has(const char *field, size_t len, const char *name);

/* Appends the pairs of `field` other than those named `name` to out, each preceded by
 * *sep (which becomes "; " after the first pair). Returns the number of pairs
 * appended (out NULL: only counted), or -1 when out could not grow. */
int http_cookie_append_without(struct evbuffer *out, const char *field, size_t len,
                               const char *name, const char **sep);

#endif

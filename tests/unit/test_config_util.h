/* Shared by the test_config_*.c tests: config text written with single quotes (they
 * stand for double quotes), parsed as ferry parses a file. */
#ifndef TEST_CONFIG_UTIL_H
#define TEST_CONFIG_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"

/* A copy of s with every ' as " (owned by the caller). */
static inline char *double_quotes(const char *s)
{
    char *out = strdup(s);
    assert_non_null(out);
    for (char *p = out; *p; p++)
        if (*p == '\'')
            *p = '"';
    return out;
}

/* Must parse without an error. */
static inline struct config *parse_ok(const char *text)
{
    struct config_errors errs = { 0 };
    char *json = double_quotes(text);
    struct config *cfg = config_parse(json, strlen(json), "t.json", &errs);
    for (size_t i = 0; i < errs.count; i++)
        print_message("  unexpected: %s\n", errs.messages[i]);
    assert_int_equal(errs.count, 0);
    assert_non_null(cfg);
    free(json);
    return cfg;
}

/* Must fail with a message that starts with `path` and contains `phrase`. */
static inline void parse_bad(const char *text, const char *path, const char *phrase)
{
    struct config_errors errs = { 0 };
    char *json = double_quotes(text);
    assert_null(config_parse(json, strlen(json), "t.json", &errs));
    bool found = false;
    for (size_t i = 0; i < errs.count && !found; i++)
        found = strncmp(errs.messages[i], path, strlen(path)) == 0 &&
                strchr(": (", errs.messages[i][strlen(path)]) &&
                strstr(errs.messages[i], phrase);
    for (size_t i = 0; i < errs.count && !found; i++)
        print_message("  got: %s\n", errs.messages[i]);
    assert_true(found);
    config_errors_clear(&errs);
    free(json);
}

#endif

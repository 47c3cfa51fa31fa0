/* Shared by the test_runtime_*.c tests: generations built from config text, as the
 * daemon builds them (no listening sockets). */
#ifndef TEST_RUNTIME_UTIL_H
#define TEST_RUNTIME_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"

static inline struct runtime *build_runtime(struct backend_table *table, const char *json,
                                            uint64_t generation)
{
    struct config_errors errs = { 0 };
    struct config *cfg = config_parse(json, strlen(json), "test.json", &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.messages[i]);
    config_errors_clear(&errs);
    assert_non_null(cfg);
    struct err err = { { 0 } };
    struct runtime_deps deps = { .backends = table };
    struct runtime *rt = runtime_build(cfg, &deps, generation, &err);
    if (!rt)
        fprintf(stderr, "%s\n", err.msg);
    assert_non_null(rt);
    return rt;
}

/* A tcp listener in front of pool "p" with the given backends (JSON objects). */
#define ONE_POOL(backends) \
    "{\"admin\":null,\"listeners\":{\"l\":{\"listen\":\"127.0.0.1:1\",\"mode\":\"tcp\"," \
    "\"pool\":\"p\"}},\"pools\":{\"p\":{\"backends\":[" backends "]}}}"

#endif

/* fuzz_config_load — the config loader on arbitrary text: JSON text becomes either a
 * complete, valid struct config and no error, or NULL and at least one error line; it
 * never crashes, reads past the input (the input is copied into a buffer of exactly
 * its size, with no terminating NUL) or leaks (LeakSanitizer at exit under libFuzzer,
 * and every corpus run under ctest's ASan build).
 *
 * A config that loads is checked against what config.h promises: at least one
 * listener and one pool, every backend's weight in 1..256, every route pointing at an
 * existing pool, every address resolved (a family and a length). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): the check must hold in every build type, NDEBUG or not. */
#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static void check_addr(const struct cfg_addr *a)
{
    CHECK(a->sa.ss_family == AF_INET || a->sa.ss_family == AF_INET6);
    CHECK(a->len > 0 && a->len <= sizeof a->sa);
    CHECK(memchr(a->text, '\0', sizeof a->text) != NULL);
}

static void check_config(const struct config *cfg)
{
    CHECK(cfg->path && cfg->workers >= 1);
    CHECK(cfg->n_listeners >= 1 && cfg->n_pools >= 1);
    if (cfg->admin.enabled)
        check_addr(&cfg->admin.listen);
    for (size_t i = 0; i < cfg->n_pools; i++) {
        const struct cfg_pool *p = &cfg->pools[i];
        CHECK(p->name && p->n_backends >= 1);
        CHECK(config_pool_index(cfg, p->name) == (int)i);
        for (size_t b = 0; b < p->n_backends; b++) {
            CHECK(p->backends[b].name);
            CHECK(p->backends[b].weight >= 1 && p->backends[b].weight <= 256);
            check_addr(&p->backends[b].address);
        }
        if (p->health_check.type == HEALTH_CHECK_HTTP)
            CHECK(p->health_check.path && p->health_check.n_expect_status >= 1);
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        CHECK(l->name);
        check_addr(&l->listen);
        for (size_t r = 0; r < l->n_routes; r++)
            CHECK(l->routes[r].pool < cfg->n_pools);
        if (l->tls)
            CHECK(l->tls->n_certificates >= 1 && l->tls->certificates[0].cert &&
                   l->tls->certificates[0].key);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    struct config_errors errs = { 0 };
    if (!text)
        return 0;
    memcpy(text, data, size);
    struct config *cfg = config_parse(text, size, "fuzz.json", &errs);
    if (cfg) {
        CHECK(errs.count == 0);
        check_config(cfg);
    } else {
        CHECK(errs.count >= 1);
        for (size_t i = 0; i < errs.count; i++)
            CHECK(errs.messages[i] && errs.messages[i][0] != '\0');
    }
    config_free(cfg);
    config_errors_clear(&errs);
    free(text);
    return 0;
}

/* The backend table (proxy/runtime/backend.c) when a removed backend's last holder
 * lets go on one thread while a reload prunes the table on another: the backend leaves
 * the table exactly once and nobody touches it after it is freed (ASan would say). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "runtime/backend.h"

enum { ROUNDS = 100000 };

struct race {
    pthread_barrier_t go, done;
    struct backend *held;           /* the holder's reference, given back by the thread */
    bool stop;
};

/* A worker's side: drops its reference (say, its last pooled connection closed) at the
 * same moment as the main thread prunes the table. */
static void *holder(void *arg)
{
    struct race *r = arg;
    for (;;) {
        pthread_barrier_wait(&r->go);
        if (r->stop)
            return NULL;
        backend_unref(r->held);
        pthread_barrier_wait(&r->done);
    }
}

static void test_last_holder_and_prune_race(void **state)
{
    struct cfg_backend cfg = { .name = "b1", .weight = 1 };
    strcpy(cfg.address.text, "127.0.0.1:1");
    struct backend_table *table = backend_table_new();
    struct race r = { .stop = false };
    pthread_t thread;
    pthread_barrier_init(&r.go, NULL, 2);
    pthread_barrier_init(&r.done, NULL, 2);
    assert_int_equal(pthread_create(&thread, NULL, holder, &r), 0);
    for (int i = 0; i < ROUNDS; i++) {
        bool is_new;
        r.held = backend_table_get(table, "web", &cfg, true, &is_new);
        assert_non_null(r.held);
        assert_true(is_new);
        backend_table_keep_only(table, NULL, 0);    /* a reload removed it: draining */
        assert_int_equal(backend_table_count(table), 1);
        pthread_barrier_wait(&r.go);
        backend_table_keep_only(table, NULL, 0);    /* the next reload, meanwhile */
        pthread_barrier_wait(&r.done);
        assert_int_equal(backend_table_count(table), 0);
    }
    r.stop = true;
    pthread_barrier_wait(&r.go);
    pthread_join(thread, NULL);
    pthread_barrier_destroy(&r.go);
    pthread_barrier_destroy(&r.done);
    backend_table_free(table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_holder_and_prune_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

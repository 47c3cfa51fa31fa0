/* The per-worker keep-alive pool (proxy/upstream/pool.c), driven with socketpairs and
 * a real event_base: LIFO reuse, max_idle, flavors, and idle connections dropped at
 * once when the peer closes them or they time out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config/config.h"
#include "runtime/backend.h"
#include "upstream/pool.h"

struct fixture {
    struct event_base *base;
    struct backend_table *table;
    struct backend *backend;        /* ref */
    struct upstream_pool *pool;
};

static int setup(void **state)
{
    static struct fixture f;
    struct cfg_backend cfg = { .name = "b1", .weight = 1 };
    strcpy(cfg.address.text, "127.0.0.1:1");
    f.base = event_base_new();
    f.table = backend_table_new();
    f.backend = backend_table_get(f.table, "web", &cfg);
    f.pool = upstream_pool_new(f.base);
    *state = &f;
    return f.base && f.table && f.backend && f.pool ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    upstream_pool_free(f->pool);
    backend_unref(f->backend);
    backend_table_free(f->table);
    event_base_free(f->base);
    return 0;
}

/* One end as a bufferevent (owned by the caller), the other end's fd in *peer. */
static struct bufferevent *connection(struct fixture *f, int *peer)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    *peer = sv[1];
    struct bufferevent *bev = bufferevent_socket_new(f->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(bev);
    return bev;
}

static void run_loop_briefly(struct fixture *f)
{
    for (int i = 0; i < 5; i++)
        event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static void test_take_returns_the_most_recent_connection(void **state)
{
    struct fixture *f = *state;
    int p1, p2;
    struct bufferevent *a = connection(f, &p1), *b = connection(f, &p2);
    upstream_pool_put(f->pool, f->backend, 0, 0, a, 4, 60000);
    upstream_pool_put(f->pool, f->backend, 0, 0, b, 4, 60000);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 2);
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 0, 0), b);
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 0, 0), a);
    assert_null(upstream_pool_take(f->pool, f->backend, 0, 0));
    bufferevent_free(a);
    bufferevent_free(b);
    close(p1);
    close(p2);
}

static void test_max_idle_closes_the_oldest(void **state)
{
    struct fixture *f = *state;
    int p[3];
    struct bufferevent *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = connection(f, &p[i]);
        upstream_pool_put(f->pool, f->backend, 0, 0, c[i], 2, 60000);
    }
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 2);
    /* the oldest one was closed (libevent closes freed sockets from the loop) */
    run_loop_briefly(f);
    char byte;
    assert_int_equal(read(p[0], &byte, 1), 0);
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 0, 0), c[2]);
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 0, 0), c[1]);
    bufferevent_free(c[1]);
    bufferevent_free(c[2]);
    for (int i = 0; i < 3; i++)
        close(p[i]);
}

static void test_zero_max_idle_keeps_nothing(void **state)
{
    struct fixture *f = *state;
    int p;
    upstream_pool_put(f->pool, f->backend, 0, 0, connection(f, &p), 0, 60000);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 0);
    close(p);
}

static void test_flavors_are_kept_apart(void **state)
{
    struct fixture *f = *state;
    int p;
    struct bufferevent *bev = connection(f, &p);
    upstream_pool_put(f->pool, f->backend, 7, 0, bev, 4, 60000);
    assert_null(upstream_pool_take(f->pool, f->backend, 0, 0));
    assert_null(upstream_pool_take(f->pool, f->backend, 8, 0));
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 7, 0), bev);
    bufferevent_free(bev);
    close(p);
}

/* A connection that carries one client's PROXY header goes to that client only, and
 * is closed when the client leaves. */
static void test_owned_connections_serve_their_owner_only(void **state)
{
    struct fixture *f = *state;
    int p, q;
    struct bufferevent *mine = connection(f, &p);
    upstream_pool_put(f->pool, f->backend, 0, 0x1000, mine, 4, 60000);
    upstream_pool_put(f->pool, f->backend, 0, 0x2000, connection(f, &q), 4, 60000);
    assert_null(upstream_pool_take(f->pool, f->backend, 0, 0));
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 0, 0x1000), mine);
    assert_null(upstream_pool_take(f->pool, f->backend, 0, 0x1000));
    upstream_pool_put(f->pool, f->backend, 0, 0x1000, mine, 4, 60000);
    upstream_pool_close_owner(f->pool, 0x2000);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 1);
    char byte;
    run_loop_briefly(f);
    assert_int_equal(read(q, &byte, 1), 0);     /* the backend saw it closed */
    upstream_pool_close_owner(f->pool, 0x1000);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 0);
    close(p);
    close(q);
}

static void test_connection_closed_by_peer_is_dropped_at_once(void **state)
{
    struct fixture *f = *state;
    int p;
    upstream_pool_put(f->pool, f->backend, 0, 0, connection(f, &p), 4, 60000);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 1);
    close(p);
    run_loop_briefly(f);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 0);
    assert_null(upstream_pool_take(f->pool, f->backend, 0, 0));
}

static void test_bytes_from_an_idle_peer_drop_the_connection(void **state)
{
    struct fixture *f = *state;
    int p;
    upstream_pool_put(f->pool, f->backend, 0, 0, connection(f, &p), 4, 60000);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 1);
    assert_int_equal(write(p, "x", 1), 1);
    run_loop_briefly(f);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 0);
    close(p);
}

static void test_idle_timeout_drops_the_connection(void **state)
{
    struct fixture *f = *state;
    int p;
    upstream_pool_put(f->pool, f->backend, 0, 0, connection(f, &p), 4, 20);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 1);
    struct timeval later = { 0, 100 * 1000 };
    event_base_loopexit(f->base, &later);
    event_base_dispatch(f->base);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 0);
    close(p);
}

static void test_draining_backend_is_not_pooled(void **state)
{
    struct fixture *f = *state;
    int p;
    atomic_store(&f->backend->state, BACKEND_DRAINING);
    upstream_pool_put(f->pool, f->backend, 0, 0, connection(f, &p), 4, 60000);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 0);
    atomic_store(&f->backend->state, BACKEND_UP);
    close(p);
}

static void test_free_closes_idle_connections(void **state)
{
    struct fixture *f = *state;
    int p;
    upstream_pool_put(f->pool, f->backend, 0, 0, connection(f, &p), 4, 60000);
    upstream_pool_free(f->pool);
    f->pool = upstream_pool_new(f->base);
    run_loop_briefly(f);
    char byte;
    assert_int_equal(read(p, &byte, 1), 0);
    close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_take_returns_the_most_recent_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_idle_closes_the_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_max_idle_keeps_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flavors_are_kept_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owned_connections_serve_their_owner_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_closed_by_peer_is_dropped_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_from_an_idle_peer_drop_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout_drops_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_draining_backend_is_not_pooled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_closes_idle_connections, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The per-worker keep-alive pool (proxy/upstream/pool.c), driven with socketpairs and
 * a real event_base: LIFO reuse, max_idle, flavors, owners, and idle connections
 * dropped at once when the peer closes them or they time out. */
#include <errno.h>
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
    bool is_new;
    f.backend = backend_table_get(f.table, "web", &cfg, true, &is_new);
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

/* Three connections into a pool that keeps two, oldest first. */
static void put_three_over_max_idle_two(struct fixture *f, struct bufferevent *c[3], int p[3])
{
    for (int i = 0; i < 3; i++) {
        c[i] = connection(f, &p[i]);
        upstream_pool_put(f->pool, f->backend, 0, 0, c[i], 2, 60000);
    }
}

static void test_max_idle_closes_the_oldest(void **state)
{
    struct fixture *f = *state;
    int p[3];
    struct bufferevent *c[3];
    put_three_over_max_idle_two(f, c, p);
    /* max_idle holds from the end of the event-loop round on */
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 3);
    run_loop_briefly(f);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 2);
    char byte;
    assert_int_equal(read(p[0], &byte, 1), 0);      /* the oldest one was closed */
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 0, 0), c[2]);
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 0, 0), c[1]);
    bufferevent_free(c[1]);
    bufferevent_free(c[2]);
    for (int i = 0; i < 3; i++)
        close(p[i]);
}

/* Under load responses free connections and new requests take them in the same round:
 * none of them is closed and reopened in between. */
static void test_a_connection_taken_again_within_the_round_stays_open(void **state)
{
    struct fixture *f = *state;
    int p[3];
    struct bufferevent *c[3];
    put_three_over_max_idle_two(f, c, p);
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 0, 0), c[2]);
    run_loop_briefly(f);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 2);
    for (int i = 0; i < 3; i++) {   /* every peer still connected, nothing to read */
        char byte;
        assert_int_equal(recv(p[i], &byte, 1, MSG_DONTWAIT), -1);
        assert_int_equal(errno, EAGAIN);
    }
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 0, 0), c[1]);
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 0, 0), c[0]);
    for (int i = 0; i < 3; i++) {
        bufferevent_free(c[i]);
        close(p[i]);
    }
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

static void assert_closed(struct fixture *f, int peer)
{
    run_loop_briefly(f);
    char byte;
    assert_int_equal(read(peer, &byte, 1), 0);
}

/* A reload that changes TLS settings: what the old ones made is of no more use. */
static void test_a_newer_flavor_replaces_the_older(void **state)
{
    struct fixture *f = *state;
    int p1, p2;
    struct bufferevent *old = connection(f, &p1), *new = connection(f, &p2);
    upstream_pool_put(f->pool, f->backend, 7, 0, old, 4, 60000);
    upstream_pool_put(f->pool, f->backend, 8, 0, new, 4, 60000);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 1);
    assert_int_equal(upstream_pool_buckets(f->pool), 1);
    assert_closed(f, p1);
    assert_null(upstream_pool_take(f->pool, f->backend, 7, 0));
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 8, 0), new);
    bufferevent_free(new);
    close(p1);
    close(p2);
}

/* A request of an older generation ending after the reload: its connection is closed,
 * not kept beside the newer ones. */
static void test_a_connection_of_an_older_flavor_is_closed(void **state)
{
    struct fixture *f = *state;
    int p1, p2;
    struct bufferevent *new = connection(f, &p1);
    upstream_pool_put(f->pool, f->backend, 8, 0, new, 4, 60000);
    upstream_pool_put(f->pool, f->backend, 7, 0, connection(f, &p2), 4, 60000);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 1);
    assert_closed(f, p2);
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 8, 0), new);
    bufferevent_free(new);
    close(p1);
    close(p2);
}

/* Memory and the cost of finding a bucket stay flat however many reloads went by. */
static void test_a_thousand_flavors_keep_one_bucket(void **state)
{
    struct fixture *f = *state;
    for (uint64_t flavor = 1; flavor <= 1000; flavor++) {
        int p;
        upstream_pool_put(f->pool, f->backend, flavor, 0, connection(f, &p), 4, 60000);
        run_loop_briefly(f);
        close(p);
    }
    run_loop_briefly(f);
    assert_int_equal(upstream_pool_buckets(f->pool), 1);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 0);
}

static void test_sweep_closes_connections_to_draining_backends(void **state)
{
    struct fixture *f = *state;
    int p;
    upstream_pool_put(f->pool, f->backend, 0, 0, connection(f, &p), 4, 60000);
    upstream_pool_sweep(f->pool);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 1);
    atomic_store(&f->backend->removed, true);
    upstream_pool_sweep(f->pool);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 0);
    assert_int_equal(upstream_pool_buckets(f->pool), 0);
    assert_closed(f, p);
    atomic_store(&f->backend->removed, false);
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

/* A client's bucket is of no use once it holds nothing: many clients coming and going
 * leave no bucket behind, while the shared one stays for the next put. */
static void test_an_owner_bucket_goes_with_its_last_connection(void **state)
{
    struct fixture *f = *state;
    int p, q;
    struct bufferevent *mine = connection(f, &p);
    upstream_pool_put(f->pool, f->backend, 0, 0x1000, mine, 4, 60000);
    upstream_pool_put(f->pool, f->backend, 0, 0, connection(f, &q), 4, 60000);
    assert_int_equal(upstream_pool_buckets(f->pool), 2);
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 0, 0x1000), mine);
    assert_int_equal(upstream_pool_buckets(f->pool), 1);
    close(q);
    run_loop_briefly(f);        /* the shared connection closed by its peer */
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 0);
    assert_int_equal(upstream_pool_buckets(f->pool), 1);
    bufferevent_free(mine);
    close(p);
}

/* A reload that changes the PROXY protocol (or TLS) of the pool: a client's own
 * connections of the older flavor are closed too, and its bucket goes on. */
static void test_an_owner_bucket_takes_a_newer_flavor(void **state)
{
    struct fixture *f = *state;
    int p1, p2;
    struct bufferevent *new = connection(f, &p2);
    upstream_pool_put(f->pool, f->backend, 7, 0x1000, connection(f, &p1), 4, 60000);
    upstream_pool_put(f->pool, f->backend, 8, 0x1000, new, 4, 60000);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 1);
    assert_int_equal(upstream_pool_buckets(f->pool), 1);
    assert_closed(f, p1);
    assert_null(upstream_pool_take(f->pool, f->backend, 7, 0x1000));
    assert_null(upstream_pool_take(f->pool, f->backend, 8, 0));
    assert_ptr_equal(upstream_pool_take(f->pool, f->backend, 8, 0x1000), new);
    bufferevent_free(new);
    close(p1);
    close(p2);
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
    atomic_store(&f->backend->removed, true);
    upstream_pool_put(f->pool, f->backend, 0, 0, connection(f, &p), 4, 60000);
    assert_int_equal(upstream_pool_idle(f->pool, f->backend), 0);
    atomic_store(&f->backend->removed, false);
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
        cmocka_unit_test_setup_teardown(test_a_connection_taken_again_within_the_round_stays_open,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_max_idle_keeps_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flavors_are_kept_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_newer_flavor_replaces_the_older, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_connection_of_an_older_flavor_is_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_thousand_flavors_keep_one_bucket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_closes_connections_to_draining_backends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owned_connections_serve_their_owner_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_owner_bucket_goes_with_its_last_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_owner_bucket_takes_a_newer_flavor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_closed_by_peer_is_dropped_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_from_an_idle_peer_drop_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout_drops_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_draining_backend_is_not_pooled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_closes_idle_connections, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

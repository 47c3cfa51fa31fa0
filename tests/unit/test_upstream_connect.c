/* Opening a backend connection (proxy/upstream/connect.c): a socket ferry cannot
 * open for lack of descriptors is reported as ferry's own shortage, which counts
 * against no backend; a refusal is the backend's and comes later, as an event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config/config.h"
#include "runtime/backend.h"
#include "runtime/runtime.h"
#include "upstream/connect.h"

enum { SPARE_FDS = 64 };

struct fixture {
    struct event_base *base;
    struct backend_table *table;
    struct backend *backend;        /* ref: 127.0.0.1, a port nobody listens on */
    struct rt_pool pool;            /* plaintext */
};

/* A loopback port that was free a moment ago. */
static unsigned short closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static int setup(void **state)
{
    static struct fixture f;
    struct cfg_backend cfg = { .name = "b1", .weight = 1 };
    struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.address.sa;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin->sin_port = htons(closed_port());
    cfg.address.len = sizeof *sin;
    strcpy(cfg.address.text, "127.0.0.1:closed");
    f.base = event_base_new();
    f.table = backend_table_new();
    bool is_new;
    f.backend = backend_table_get(f.table, "web", &cfg, true, &is_new);
    *state = &f;
    return f.base && f.table && f.backend ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    backend_unref(f->backend);
    backend_table_free(f->table);
    event_base_free(f->base);
    return 0;
}

static void test_no_descriptor_left_is_a_local_failure(void **state)
{
    struct fixture *f = *state;
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    /* Take every descriptor under a lowered limit. */
    int highest = dup(0);
    assert_true(highest >= 0);
    struct rlimit low = { .rlim_cur = (rlim_t)highest + SPARE_FDS, .rlim_max = saved.rlim_max };
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int taken[SPARE_FDS];
    int n = 0;
    while (n < SPARE_FDS && (taken[n] = dup(0)) >= 0)
        n++;
    assert_int_equal(errno, EMFILE);

    errno = 0;
    struct bufferevent *bev = upstream_connect(f->base, &f->pool, f->backend, 1000, NULL, 0);
    int error = errno;

    for (int i = 0; i < n; i++)
        close(taken[i]);
    close(highest);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    assert_null(bev);
    assert_int_equal(error, EMFILE);
    assert_true(upstream_error_is_local(error));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    *(short *)arg = what;
}

static void test_a_refusal_comes_later_as_an_event(void **state)
{
    struct fixture *f = *state;
    struct bufferevent *bev = upstream_connect(f->base, &f->pool, f->backend, 1000, NULL, 0);
    assert_non_null(bev);
    short what = 0;
    bufferevent_setcb(bev, NULL, NULL, on_event, &what);
    for (int i = 0; i < 100 && what == 0; i++)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_true(what & BEV_EVENT_ERROR);
    bufferevent_free(bev);
}

static void test_what_a_backend_does_is_not_local(void **state)
{
    (void)state;
    int backend_errors[] = { ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, ECONNRESET,
                             EIO };
    for (size_t i = 0; i < sizeof backend_errors / sizeof backend_errors[0]; i++)
        assert_false(upstream_error_is_local(backend_errors[i]));
    int shortages[] = { EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL };
    for (size_t i = 0; i < sizeof shortages / sizeof shortages[0]; i++)
        assert_true(upstream_error_is_local(shortages[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_descriptor_left_is_a_local_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_refusal_comes_later_as_an_event, setup, teardown),
        cmocka_unit_test(test_what_a_backend_does_is_not_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

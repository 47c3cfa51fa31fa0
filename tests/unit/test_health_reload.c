/* Active checks (proxy/health/health.c) across generations, on a real event loop with
 * real sockets: what one generation's checker decides, every generation's picks
 * respect. */
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "health/health.h"
#include "test_runtime_util.h"

/* A port nothing listens on: connecting to it is refused at once. */
static unsigned closed_port(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* Runs the loop until b's state is `want` or 3 s went by. */
static void run_until_state(struct event_base *base, const struct backend *b,
                            enum backend_state want)
{
    int64_t deadline = clock_now_ms() + 3000;
    while (backend_state(b) != want && clock_now_ms() < deadline) {
        struct timeval tick = { 0, 10 * 1000 };
        event_base_loopexit(base, &tick);
        event_base_dispatch(base);
    }
    assert_int_equal(backend_state(b), want);
}

/* Two configs of pool "p" with one backend on a closed port: without a health check
 * (passive) and with a tcp check that takes it down at once (checked). */
static void passive_and_checked(char passive[512], char checked[768])
{
    unsigned port = closed_port();
    snprintf(passive, 512, ONE_POOL("{\"address\":\"127.0.0.1:%u\"}"), port);
    snprintf(checked, 768,
             "{\"admin\":null,\"listeners\":{\"l\":{\"listen\":\"127.0.0.1:1\",\"mode\":\"tcp\","
             "\"pool\":\"p\"}},\"pools\":{\"p\":{\"backends\":[{\"address\":\"127.0.0.1:%u\"}],"
             "\"health_check\":{\"type\":\"tcp\",\"interval_ms\":100,\"timeout_ms\":50,"
             "\"rise\":1,\"fall\":1}}}}", port);
}

/* A reload added a health_check to a pool: the new generation's check takes the
 * backend down, and the old generation (still serving requests in flight, which may
 * retry) must not bring it back as if a passive retry were due. */
static void test_down_by_the_check_stays_down_for_an_older_passive_generation(void **state)
{
    char passive[512], checked[768];
    passive_and_checked(passive, checked);
    struct backend_table *table = backend_table_new();
    struct event_base *base = event_base_new();
    struct runtime *old = build_runtime(table, passive, 1);
    struct runtime *rt = build_runtime(table, checked, 2);
    struct backend *b = rt->pools[0].backends[0];
    struct health *h = health_new(base, rt, NULL);
    assert_non_null(h);
    run_until_state(base, b, BACKEND_DOWN);
    assert_null(rt_pool_pick(&old->pools[0], NULL, 0, NULL));
    assert_null(rt_pool_pick(&rt->pools[0], NULL, 0, NULL));
    assert_int_equal(backend_state(b), BACKEND_DOWN);
    health_free(h);
    runtime_unref(old);
    runtime_unref(rt);
    event_base_free(base);
    backend_table_free(table);
}

/* The reverse: a reload removed the pool's health_check. No check will bring the
 * backend back any more, so it is retried as after a passive ejection, not kept down
 * for good. */
static void test_down_by_a_check_that_went_away_is_retried_later(void **state)
{
    char passive[512], checked[768];
    passive_and_checked(passive, checked);
    struct backend_table *table = backend_table_new();
    struct event_base *base = event_base_new();
    struct runtime *rt = build_runtime(table, checked, 1);
    struct backend *b = rt->pools[0].backends[0];
    struct health *h = health_new(base, rt, NULL);
    run_until_state(base, b, BACKEND_DOWN);
    assert_true(atomic_load(&b->eject_until_ms) == BACKEND_CHECK_ONLY);
    struct runtime *next = build_runtime(table, passive, 2);
    int64_t now = clock_now_ms();
    h = health_new(base, next, h);
    int64_t until = atomic_load(&b->eject_until_ms);
    assert_true(until >= now + (int64_t)rt_pool_eject_ms(&next->pools[0]) - 50);
    assert_true(until <= clock_now_ms() + (int64_t)rt_pool_eject_ms(&next->pools[0]));
    assert_null(rt_pool_pick(&next->pools[0], NULL, 0, NULL));
    health_free(h);
    runtime_unref(rt);
    runtime_unref(next);
    event_base_free(base);
    backend_table_free(table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_down_by_the_check_stays_down_for_an_older_passive_generation),
        cmocka_unit_test(test_down_by_a_check_that_went_away_is_retried_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Judging an http check's answer (proxy/health/response.c): status, expect_body in the
 * first 4 KiB whatever the framing, and answers that are broken or cut short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "health/response.h"

static int ok_statuses[] = { 200, 204 };

static struct cfg_health_check check(const char *expect_body)
{
    return (struct cfg_health_check){ .type = HEALTH_CHECK_HTTP, .path = "/healthz",
                                       .expect_status = ok_statuses, .n_expect_status = 2,
                                       .expect_body = (char *)expect_body };
}

static enum health_judgement judge(const char *answer, bool eof, const char *expect_body,
                                   char *reason)
{
    struct cfg_health_check hc = check(expect_body);
    return health_judge_response(answer, strlen(answer), eof, &hc, reason, 160);
}

static void test_status_decides_without_expect_body(void **state)
{
    char reason[160];
    assert_int_equal(judge("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false, NULL, reason),
                     HEALTH_PASS);
    assert_string_equal(reason, "GET /healthz answered 200");
    assert_int_equal(judge("HTTP/1.1 503 Service Unavailable\r\n\r\n", false, NULL, reason),
                     HEALTH_FAIL);
    assert_string_equal(reason, "GET /healthz answered 503");
    assert_int_equal(judge("HTTP/1.0 204 No Content\r\n\r\n", false, NULL, reason), HEALTH_PASS);
}

static void test_head_arriving_in_pieces_waits(void **state)
{
    char reason[160];
    assert_int_equal(judge("HTTP/1.1 200 OK\r\nX: y\r\n", false, NULL, reason), HEALTH_NEED_MORE);
    assert_int_equal(judge("HTTP/1.1 2", false, NULL, reason), HEALTH_NEED_MORE);
    assert_int_equal(judge("HTTP/1.1 200 OK\r\nX: y\r\n", true, NULL, reason), HEALTH_FAIL);
    assert_string_equal(reason, "GET /healthz: closed before a whole response head");
}

static void test_broken_answers_fail(void **state)
{
    char reason[160];
    assert_int_equal(judge("SSH-2.0-OpenSSH\r\n\r\n", false, NULL, reason), HEALTH_FAIL);
    assert_non_null(strstr(reason, "GET /healthz: "));
    assert_int_equal(judge("", true, NULL, reason), HEALTH_FAIL);
    assert_int_equal(judge("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", true,
                           "ok", reason), HEALTH_FAIL);
    assert_string_equal(reason, "GET /healthz answered 200 with broken chunks");
}

static void test_expect_body_with_a_length(void **state)
{
    char reason[160];
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{\"status\":\"ok\"}\n";
    assert_int_equal(judge(ok, false, "\"ok\"", reason), HEALTH_PASS);
    assert_string_equal(reason, "GET /healthz answered 200 with \"\"ok\"\" in its body");
    assert_int_equal(judge(ok, false, "degraded", reason), HEALTH_FAIL);
    assert_string_equal(reason, "GET /healthz answered 200 without \"degraded\" in its body");
    /* Half the body: wait, unless the backend closed. */
    const char *half = "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{\"stat";
    assert_int_equal(judge(half, false, "ok", reason), HEALTH_NEED_MORE);
    assert_int_equal(judge(half, true, "ok", reason), HEALTH_FAIL);
    /* The status comes first: a 503 fails without a look at the body. */
    assert_int_equal(judge("HTTP/1.1 503 x\r\nContent-Length: 100\r\n\r\nok", false, "ok", reason),
                     HEALTH_FAIL);
    assert_string_equal(reason, "GET /healthz answered 503");
}

static void test_expect_body_chunked_and_until_close(void **state)
{
    char reason[160];
    const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "3\r\nsta\r\n6\r\ntus ok\r\n0\r\n\r\n";
    assert_int_equal(judge(chunked, false, "status ok", reason), HEALTH_PASS);
    assert_int_equal(judge("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsta\r\n",
                           false, "status ok", reason), HEALTH_NEED_MORE);
    const char *close = "HTTP/1.0 200 OK\r\n\r\nall good";
    assert_int_equal(judge(close, false, "good", reason), HEALTH_NEED_MORE);
    assert_int_equal(judge(close, true, "good", reason), HEALTH_PASS);
}

/* Only the first 4 KiB are looked at: a word beyond them is not found, and the
 * judgement does not wait for a long body to end. */
static void test_expect_body_looks_at_the_first_4_kib(void **state)
{
    char reason[160];
    size_t body = HEALTH_BODY_MAX + 100;
    char *answer = malloc(200 + body);
    int head = sprintf(answer, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body + 1000);
    memset(answer + head, 'x', body);
    memcpy(answer + head + HEALTH_BODY_MAX + 10, "MARK", 4);
    memcpy(answer + head + HEALTH_BODY_MAX - 4, "NEAR", 4);
    answer[head + body] = '\0';
    assert_int_equal(judge(answer, false, "MARK", reason), HEALTH_FAIL);
    assert_int_equal(judge(answer, false, "NEAR", reason), HEALTH_PASS);
    free(answer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_decides_without_expect_body),
        cmocka_unit_test(test_head_arriving_in_pieces_waits),
        cmocka_unit_test(test_broken_answers_fail),
        cmocka_unit_test(test_expect_body_with_a_length),
        cmocka_unit_test(test_expect_body_chunked_and_until_close),
        cmocka_unit_test(test_expect_body_looks_at_the_first_4_kib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* http1 error names and the HTTP status each error maps to. */
#include "test_http1_util.h"

static void test_error_status_mapping(void **state)
{
    assert_int_equal(http1_error_status(HTTP1_ERR_SPACE_BEFORE_COLON), 400);
    assert_int_equal(http1_error_status(HTTP1_ERR_CL_AND_TE), 400);
    assert_int_equal(http1_error_status(HTTP1_ERR_BODY_TOO_LARGE), 413);
    assert_int_equal(http1_error_status(HTTP1_ERR_TARGET_TOO_LONG), 414);
    assert_int_equal(http1_error_status(HTTP1_ERR_TOO_MANY_HEADERS), 431);
    assert_int_equal(http1_error_status(HTTP1_ERR_HEAD_TOO_LARGE), 431);
    assert_int_equal(http1_error_status(HTTP1_ERR_TE_UNSUPPORTED), 501);
    assert_int_equal(http1_error_status(HTTP1_ERR_VERSION_UNSUPPORTED), 505);
    assert_int_equal(http1_error_status(-1000), 400);
}

static void test_error_str_names_every_error(void **state)
{
    for (int e = HTTP1_INCOMPLETE; e >= HTTP1_ERR_MIN; e--) {
        const char *s = http1_error_str(e);
        assert_non_null(s);
        assert_true(strlen(s) > 5);
        int status = http1_error_status(e);
        assert_true(status == 400 || status == 413 || status == 414 || status == 431
                    || status == 501 || status == 505);
    }
    assert_string_equal(http1_error_str(HTTP1_ERR_OBS_FOLD), "obsolete line folding");
    assert_string_equal(http1_error_str(-1000), "unknown error");
}

static void test_error_str_for_non_errors(void **state)
{
    assert_string_equal(http1_error_str(HTTP1_INCOMPLETE), "incomplete message");
    assert_string_equal(http1_error_str(7), "ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_status_mapping),
        cmocka_unit_test(test_error_str_names_every_error),
        cmocka_unit_test(test_error_str_for_non_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

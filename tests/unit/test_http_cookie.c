/* Cookie field values (proxy/http/cookie.c): finding a cookie, and leaving one out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "http/cookie.h"

static void assert_found(const char *field, const char *name, const char *want)
{
    const char *v;
    size_t len;
    assert_true(http_cookie_find(field, strlen(field), name, &v, &len));
    assert_int_equal(len, strlen(want));
    assert_memory_equal(v, want, len);
}

static void assert_absent(const char *field, const char *name)
{
    const char *v;
    size_t len;
    assert_false(http_cookie_find(field, strlen(field), name, &v, &len));
    assert_false(http_cookie_has(field, strlen(field), name));
}

static void test_find_reads_what_browsers_send(void **state)
{
    assert_found("srv=abc", "srv", "abc");
    assert_found("a=1; srv=abc; b=2", "srv", "abc");
    assert_found("a=1;srv=abc;b=2", "srv", "abc");
    assert_found("  a=1 ;  srv = abc  ; b=2", "srv", "abc");
    assert_found("srv=\"abc\"", "srv", "abc");
    assert_found("srv=", "srv", "");
    assert_found("srv=1; srv=2", "srv", "1");       /* the first one */
    assert_found(";; srv=x ;;", "srv", "x");
    assert_found("a=b=c", "a", "b=c");
}

static void test_find_matches_the_whole_name_exactly(void **state)
{
    assert_absent("", "srv");
    assert_absent("srvx=1; xsrv=2", "srv");
    assert_absent("SRV=1", "srv");
    assert_absent("srv", "srv");        /* no "=": not a name */
    assert_absent("a=srv=1", "srv");
}

static char *without(const char *field, const char *name, int *kept)
{
    struct evbuffer *out = evbuffer_new();
    const char *sep = "";
    *kept = http_cookie_append_without(out, field, strlen(field), name, &sep);
    size_t n = evbuffer_get_length(out);
    char *s = calloc(1, n + 1);
    evbuffer_remove(out, s, n);
    evbuffer_free(out);
    return s;
}

static void test_append_without_leaves_one_cookie_out(void **state)
{
    int kept;
    char *s = without("a=1; srv=abc; b=2", "srv", &kept);
    assert_string_equal(s, "a=1; b=2");
    assert_int_equal(kept, 2);
    free(s);
    s = without("srv=1;srv=2", "srv", &kept);
    assert_string_equal(s, "");
    assert_int_equal(kept, 0);
    free(s);
    s = without(" x = 1 ;srvx=2", "srv", &kept);
    assert_string_equal(s, "x = 1; srvx=2");
    assert_int_equal(kept, 2);
    free(s);
    const char *sep = "";
    assert_int_equal(http_cookie_append_without(NULL, "a=1; srv=2", 10, "srv", &sep), 1);
}

/* Several fields joined: the separator carries over from one to the next. */
static void test_append_without_joins_several_fields(void **state)
{
    struct evbuffer *out = evbuffer_new();
    const char *sep = "";
    assert_int_equal(http_cookie_append_without(out, "srv=1", 5, "srv", &sep), 0);
    assert_int_equal(http_cookie_append_without(out, "a=1", 3, "srv", &sep), 1);
    assert_int_equal(http_cookie_append_without(out, "b=2; srv=3", 10, "srv", &sep), 1);
    size_t n = evbuffer_get_length(out);
    assert_int_equal(n, 8);
    assert_memory_equal(evbuffer_pullup(out, -1), "a=1; b=2", 8);
    evbuffer_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_reads_what_browsers_send),
        cmocka_unit_test(test_find_matches_the_whole_name_exactly),
        cmocka_unit_test(test_append_without_leaves_one_cookie_out),
        cmocka_unit_test(test_append_without_joins_several_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

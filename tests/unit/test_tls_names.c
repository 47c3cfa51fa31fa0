/* tls_name_matches: certificate name vs SNI host name (RFC 6125). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tls/tls.h"

static void test_exact_name_matches(void **state)
{
    assert_true(tls_name_matches("a.test", "a.test"));
    assert_false(tls_name_matches("a.test", "b.test"));
    assert_false(tls_name_matches("a.test", "a.test.evil"));
    assert_false(tls_name_matches("a.test", "xa.test"));
}

static void test_matching_ignores_case(void **state)
{
    assert_true(tls_name_matches("a.test", "A.TeSt"));
    assert_true(tls_name_matches("WWW.Example.COM", "www.example.com"));
    assert_true(tls_name_matches("*.example.com", "WWW.EXAMPLE.COM"));
}

static void test_wildcard_matches_exactly_one_label(void **state)
{
    assert_true(tls_name_matches("*.example.com", "a.example.com"));
    assert_false(tls_name_matches("*.example.com", "a.b.example.com"));
    assert_false(tls_name_matches("*.example.com", "example.com"));
    assert_false(tls_name_matches("*.example.com", ".example.com"));
    assert_false(tls_name_matches("*.example.com", "aexample.com"));
}

static void test_partial_label_wildcards_never_match(void **state)
{
    assert_false(tls_name_matches("f*.example.com", "foo.example.com"));
    assert_false(tls_name_matches("*oo.example.com", "foo.example.com"));
    assert_false(tls_name_matches("a.*.example.com", "a.b.example.com"));
    assert_false(tls_name_matches("*", "localhost"));
    assert_false(tls_name_matches("*.", "a."));
    assert_false(tls_name_matches("*.*.example.com", "a.b.example.com"));
}

static void test_trailing_dot_is_ignored(void **state)
{
    assert_true(tls_name_matches("a.test", "a.test."));
    assert_true(tls_name_matches("a.test.", "a.test"));
    assert_true(tls_name_matches("*.b.test", "x.b.test."));
    assert_false(tls_name_matches("a.test", "a.test.."));
}

static void test_host_with_star_or_empty_never_matches(void **state)
{
    assert_false(tls_name_matches("*.example.com", "*.example.com"));
    assert_false(tls_name_matches("a.test", ""));
    assert_false(tls_name_matches("", "a.test"));
    assert_false(tls_name_matches("a.test", "."));
    assert_false(tls_name_matches(NULL, "a.test"));
    assert_false(tls_name_matches("a.test", NULL));
}

static void test_idn_names_compare_as_ascii_labels(void **state)
{
    assert_true(tls_name_matches("xn--bcher-kva.test", "XN--BCHER-KVA.test"));
    assert_true(tls_name_matches("*.xn--bcher-kva.test", "www.xn--bcher-kva.test"));
    /* A U-label is not folded: bytes above 0x7f compare exactly. */
    assert_false(tls_name_matches("b\xc3\xbc" "cher.test", "B\xc3\x9c" "CHER.test"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_name_matches),
        cmocka_unit_test(test_matching_ignores_case),
        cmocka_unit_test(test_wildcard_matches_exactly_one_label),
        cmocka_unit_test(test_partial_label_wildcards_never_match),
        cmocka_unit_test(test_trailing_dot_is_ignored),
        cmocka_unit_test(test_host_with_star_or_empty_never_matches),
        cmocka_unit_test(test_idn_names_compare_as_ascii_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

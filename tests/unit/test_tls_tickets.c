/* Session-ticket keys handed to a new binary (proxy/tls/tickets.c): what one process
 * exports another imports whole, and bytes that are not whole keys change nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "tls/tls.h"

static void test_keys_exported_by_one_are_the_keys_of_the_other(void **state)
{
    struct err err;
    struct tls_ticket_keys *old = tls_ticket_keys_new(&err), *fresh = tls_ticket_keys_new(&err);
    assert_non_null(old);
    assert_non_null(fresh);
    assert_int_equal(tls_ticket_keys_rotate(old, &err), 0);     /* a current and a previous */
    unsigned char a[TLS_TICKET_KEYS_KEPT * TLS_TICKET_KEY_BYTES];
    unsigned char b[sizeof a];
    size_t len = tls_ticket_keys_export(old, a, sizeof a);
    assert_int_equal(len, TLS_TICKET_KEYS_KEPT * TLS_TICKET_KEY_BYTES);
    assert_int_not_equal(tls_ticket_keys_export(fresh, b, sizeof b), len);
    assert_int_equal(tls_ticket_keys_import(fresh, a, len), 0);
    assert_int_equal(tls_ticket_keys_export(fresh, b, sizeof b), len);
    assert_memory_equal(a, b, len);
    assert_int_equal(tls_ticket_keys_export(old, a, len - 1), 0);     /* too small */
    tls_ticket_keys_free(old);
    tls_ticket_keys_free(fresh);
}

static void test_bytes_that_are_not_whole_keys_change_nothing(void **state)
{
    struct err err;
    struct tls_ticket_keys *keys = tls_ticket_keys_new(&err);
    assert_non_null(keys);
    unsigned char before[TLS_TICKET_KEYS_KEPT * TLS_TICKET_KEY_BYTES], after[sizeof before];
    unsigned char junk[(TLS_TICKET_KEYS_KEPT + 1) * TLS_TICKET_KEY_BYTES];
    memset(junk, 7, sizeof junk);
    size_t len = tls_ticket_keys_export(keys, before, sizeof before);
    assert_int_equal(tls_ticket_keys_import(keys, junk, 0), -1);
    assert_int_equal(tls_ticket_keys_import(keys, junk, TLS_TICKET_KEY_BYTES + 1), -1);
    assert_int_equal(tls_ticket_keys_import(keys, junk, sizeof junk), -1);
    assert_int_equal(tls_ticket_keys_export(keys, after, sizeof after), len);
    assert_memory_equal(before, after, len);
    tls_ticket_keys_free(keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_exported_by_one_are_the_keys_of_the_other),
        cmocka_unit_test(test_bytes_that_are_not_whole_keys_change_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* What a new config changes against a running one (config/diff.c): listeners, routes,
 * pools, backends and settings added, removed and changed, with the keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/diff.h"

static json_t *doc(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    assert_non_null(j);
    return j;
}

/* The diff of two documents, compared with the expected JSON. */
static void assert_diff(const char *old_text, const char *new_text, const char *want_text)
{
    json_t *old_doc = doc(old_text), *new_doc = doc(new_text), *want = doc(want_text);
    json_t *got = config_diff(old_doc, new_doc);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS);
        fail_msg("diff %s", g);
        free(g);
    }
    json_decref(got);
    json_decref(want);
    json_decref(old_doc);
    json_decref(new_doc);
}

#define BASE \
    "{\"workers\": 2, \"timeouts\": {\"drain_ms\": 1000}," \
    " \"listeners\": {\"web\": {\"listen\": \"127.0.0.1:80\", \"pool\": \"p\"}," \
    "                 \"api\": {\"listen\": \"127.0.0.1:81\", \"routes\": [" \
    "                      {\"match\": {\"host\": \"a\"}, \"pool\": \"p\"}," \
    "                      {\"match\": {\"host\": \"b\", \"path_prefix\": \"/v1/\"}, \"pool\": \"q\"}," \
    "                      {\"pool\": \"p\"}]}}," \
    " \"pools\": {\"p\": {\"backends\": [{\"address\": \"127.0.0.1:1\"}, {\"address\": \"127.0.0.1:2\"}]}," \
    "           \"q\": {\"balance\": \"least_conn\", \"backends\": [{\"address\": \"127.0.0.1:3\"}]}}}"

#define NOTHING \
    "{\"listeners\": {\"added\": [], \"removed\": [], \"changed\": {}}," \
    " \"pools\": {\"added\": [], \"removed\": [], \"changed\": {}}," \
    " \"routes\": {}, \"backends\": {}, \"settings\": []}"

static void test_same_document_is_no_change(void **state)
{
    assert_diff(BASE, BASE, NOTHING);
    json_t *d = doc(BASE), *diff = config_diff(d, d);
    assert_true(config_diff_is_empty(diff));
    json_decref(diff);
    json_decref(d);
}

static void test_listeners_added_removed_and_changed_keys(void **state)
{
    assert_diff("{\"listeners\": {\"a\": {\"listen\": \"1.1.1.1:1\", \"pool\": \"p\"},"
                "                 \"b\": {\"listen\": \"1.1.1.1:2\", \"pool\": \"p\"}}}",
                "{\"listeners\": {\"a\": {\"listen\": \"1.1.1.1:9\", \"pool\": \"p\", \"tls\": {}},"
                "                 \"c\": {\"listen\": \"1.1.1.1:3\", \"pool\": \"p\"}}}",
                "{\"listeners\": {\"added\": [\"c\"], \"removed\": [\"b\"],"
                "                 \"changed\": {\"a\": [\"listen\", \"tls\"]}},"
                " \"pools\": {\"added\": [], \"removed\": [], \"changed\": {}},"
                " \"routes\": {}, \"backends\": {}, \"settings\": []}");
}

static void test_routes_are_named_by_their_match(void **state)
{
    const char *changed =
        "{\"workers\": 2, \"timeouts\": {\"drain_ms\": 1000},"
        " \"listeners\": {\"web\": {\"listen\": \"127.0.0.1:80\", \"pool\": \"q\"},"
        "                 \"api\": {\"listen\": \"127.0.0.1:81\", \"routes\": ["
        "                      {\"match\": {\"path_prefix\": \"/v1/\", \"host\": \"b\"}, \"pool\": \"p\"},"
        "                      {\"match\": {\"host\": \"c\"}, \"pool\": \"p\"},"
        "                      {\"pool\": \"p\"}]}},"
        " \"pools\": {\"p\": {\"backends\": [{\"address\": \"127.0.0.1:1\"}, {\"address\": \"127.0.0.1:2\"}]},"
        "           \"q\": {\"balance\": \"least_conn\", \"backends\": [{\"address\": \"127.0.0.1:3\"}]}}}";
    assert_diff(BASE, changed,
                "{\"listeners\": {\"added\": [], \"removed\": [],"
                "                 \"changed\": {\"web\": [\"pool\"], \"api\": [\"routes\"]}},"
                " \"pools\": {\"added\": [], \"removed\": [], \"changed\": {}},"
                " \"routes\": {\"web\": {\"added\": [], \"removed\": [], \"changed\": {\"*\": [\"pool\"]}},"
                "              \"api\": {\"added\": [\"host=c\"], \"removed\": [\"host=a\"],"
                "                        \"changed\": {\"host=b path_prefix=/v1/\": [\"pool\"]}}},"
                " \"backends\": {}, \"settings\": []}");
}

static void test_routes_moved_are_reordered(void **state)
{
    assert_diff("{\"listeners\": {\"l\": {\"routes\": [{\"match\": {\"host\": \"a\"}, \"pool\": \"p\"},"
                "                                   {\"pool\": \"p\"}]}}}",
                "{\"listeners\": {\"l\": {\"routes\": [{\"pool\": \"p\"},"
                "                                   {\"match\": {\"host\": \"a\"}, \"pool\": \"p\"}]}}}",
                "{\"listeners\": {\"added\": [], \"removed\": [], \"changed\": {\"l\": [\"routes\"]}},"
                " \"pools\": {\"added\": [], \"removed\": [], \"changed\": {}},"
                " \"routes\": {\"l\": {\"added\": [], \"removed\": [], \"changed\": {},"
                "                      \"reordered\": true}},"
                " \"backends\": {}, \"settings\": []}");
}

static void test_pools_and_backends_by_address(void **state)
{
    const char *changed =
        "{\"workers\": 2, \"timeouts\": {\"drain_ms\": 1000},"
        " \"listeners\": {\"web\": {\"listen\": \"127.0.0.1:80\", \"pool\": \"p\"},"
        "                 \"api\": {\"listen\": \"127.0.0.1:81\", \"routes\": ["
        "                      {\"match\": {\"host\": \"a\"}, \"pool\": \"p\"},"
        "                      {\"match\": {\"host\": \"b\", \"path_prefix\": \"/v1/\"}, \"pool\": \"q\"},"
        "                      {\"pool\": \"p\"}]}},"
        " \"pools\": {\"p\": {\"balance\": \"round_robin\", \"backends\": ["
        "                     {\"address\": \"127.0.0.1:2\", \"weight\": 3}, {\"address\": \"127.0.0.1:4\"}]},"
        "           \"q\": {\"balance\": \"least_conn\", \"backends\": [{\"address\": \"127.0.0.1:3\"}]},"
        "           \"r\": {\"backends\": [{\"address\": \"127.0.0.1:5\"}]}}}";
    assert_diff(BASE, changed,
                "{\"listeners\": {\"added\": [], \"removed\": [], \"changed\": {}},"
                " \"pools\": {\"added\": [\"r\"], \"removed\": [],"
                "             \"changed\": {\"p\": [\"backends\", \"balance\"]}},"
                " \"routes\": {},"
                " \"backends\": {\"p\": {\"added\": [\"127.0.0.1:4\"], \"removed\": [\"127.0.0.1:1\"],"
                "                        \"changed\": {\"127.0.0.1:2\": [\"weight\"]}}},"
                " \"settings\": []}");
}

static void test_settings_one_level_down(void **state)
{
    assert_diff("{\"workers\": 2, \"timeouts\": {\"drain_ms\": 1000, \"connect_ms\": 5},"
                " \"listeners\": {}, \"pools\": {}}",
                "{\"workers\": 1, \"timeouts\": {\"drain_ms\": 2000, \"connect_ms\": 5},"
                " \"log\": {\"access\": \"off\"}, \"listeners\": {}, \"pools\": {}}",
                "{\"listeners\": {\"added\": [], \"removed\": [], \"changed\": {}},"
                " \"pools\": {\"added\": [], \"removed\": [], \"changed\": {}},"
                " \"routes\": {}, \"backends\": {},"
                " \"settings\": [\"log\", \"timeouts.drain_ms\", \"workers\"]}");
}

struct lines {
    char text[2048];
};

static void collect(void *arg, const char *line)
{
    struct lines *l = arg;
    strncat(l->text, line, sizeof l->text - strlen(l->text) - 2);
    strcat(l->text, "\n");
}

static void test_lines_for_people(void **state)
{
    json_t *a = doc("{\"workers\": 1, \"listeners\": {\"web\": {\"pool\": \"p\"}},"
                    " \"pools\": {\"p\": {\"backends\": [{\"address\": \"x:1\"}]}}}");
    json_t *b = doc("{\"workers\": 2, \"listeners\": {\"web\": {\"pool\": \"p\"}, \"w2\": {\"pool\": \"p\"}},"
                    " \"pools\": {\"p\": {\"backends\": [{\"address\": \"x:1\", \"weight\": 2}]}}}");
    json_t *d = config_diff(a, b);
    struct lines l = { { 0 } };
    config_diff_lines(d, collect, &l);
    assert_string_equal(l.text, "listener added: w2\n"
                                "pool changed: p: backends\n"
                                "backend changed: p/x:1: weight\n"
                                "setting changed: workers\n");
    json_decref(d);
    d = config_diff(a, a);
    memset(&l, 0, sizeof l);
    config_diff_lines(d, collect, &l);
    assert_string_equal(l.text, "no changes\n");
    json_decref(d);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_document_is_no_change),
        cmocka_unit_test(test_listeners_added_removed_and_changed_keys),
        cmocka_unit_test(test_routes_are_named_by_their_match),
        cmocka_unit_test(test_routes_moved_are_reordered),
        cmocka_unit_test(test_pools_and_backends_by_address),
        cmocka_unit_test(test_settings_one_level_down),
        cmocka_unit_test(test_lines_for_people),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

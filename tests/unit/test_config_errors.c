/* test_config_errors — how errors are collected and reported: all at once, with paths
 * and line numbers, from files that are missing, unreadable, empty or malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static char *double_quotes(const char *s)
{
    char *out = strdup(s);
    assert_non_null(out);
    for (char *p = out; *p; p++)
        if (*p == '\'')
            *p = '"';
    return out;
}

/* Parses (single quotes allowed) and expects failure; caller clears errs. */
static void parse_bad(const char *text, struct config_errors *errs)
{
    char *json = double_quotes(text);
    assert_null(config_parse(json, strlen(json), "t.json", errs));
    free(json);
}

static bool has_message(const struct config_errors *errs, const char *exact)
{
    for (size_t i = 0; i < errs->count; i++)
        if (strcmp(errs->messages[i], exact) == 0)
            return true;
    for (size_t i = 0; i < errs->count; i++)
        print_message("  got: %s\n", errs->messages[i]);
    return false;
}

static void test_reports_three_independent_errors(void **state)
{
    struct config_errors errs = { 0 };
    parse_bad("{'timeouts':{'conect_ms':5},"
              "'listeners':{'l':{'listen':'127.0.0.1:1','pool':'apii'}},"
              "'pools':{'api':{'backends':[{'address':'127.0.0.1:2','weight':0}]}}}", &errs);
    assert_int_equal(errs.count, 3);
    assert_true(has_message(&errs, "timeouts.conect_ms (line 1): unknown key (did you mean \"connect_ms\"?)"));
    assert_true(has_message(&errs, "pools.api.backends[0].weight (line 1): 0 is out of range 1..256"));
    assert_true(has_message(&errs, "listeners.l.pool (line 1): unknown pool \"apii\" (did you mean \"api\"?)"));
    config_errors_clear(&errs);
}

static void test_reports_every_bad_backend(void **state)
{
    struct config_errors errs = { 0 };
    parse_bad("{'listeners':{'l':{'listen':'127.0.0.1:1','pool':'p'}},'pools':{'p':{'backends':["
              "{'address':'127.0.0.1:2','weight':0},{'address':'127.0.0.1:3','weight':0},"
              "{'address':'127.0.0.1:4','weight':0},{'address':'127.0.0.1:5','weight':0}]}}}", &errs);
    assert_int_equal(errs.count, 4);
    assert_true(has_message(&errs, "pools.p.backends[3].weight (line 1): 0 is out of range 1..256"));
    config_errors_clear(&errs);
}

static const char MULTILINE[] =
    "{\n"
    "  'listeners': {\n"
    "    'web': { 'listen': '127.0.0.1:8080', 'pool': 'web' }\n"
    "  },\n"
    "  'pools': {\n"
    "    'web': {\n"
    "      'backends': [\n"
    "        { 'address': '127.0.0.1:9001', 'name': 'tricky \\\" } ] { [ , :' },\n"
    "        { 'address': '127.0.0.1:9002',\n"
    "          'weight': 300 }\n"
    "      ],\n"
    "      'health_check': { 'type': 'tcp',\n"
    "                        'interval_ms': 50 }\n"
    "    }\n"
    "  }\n"
    "}\n";

static void test_error_has_line_of_value(void **state)
{
    struct config_errors errs = { 0 };
    parse_bad(MULTILINE, &errs);
    assert_int_equal(errs.count, 2);
    assert_true(has_message(&errs, "pools.web.backends[1].weight (line 10): 300 is out of range 1..256"));
    assert_true(has_message(&errs, "pools.web.health_check.interval_ms (line 13): 50 is out of range 100..3600000"));
    config_errors_clear(&errs);
}

/* stop_grace_ms may be 0 (no grace), unlike the deadlines beside it, and at most an
 * hour. */
static void test_stop_grace_ms_range(void **state)
{
    struct config_errors errs = { 0 };
    parse_bad("{'timeouts':{'stop_grace_ms':3600001,'drain_ms':0},"
              "'listeners':{'l':{'listen':'127.0.0.1:1','pool':'p'}},"
              "'pools':{'p':{'backends':[{'address':'127.0.0.1:2'}]}}}", &errs);
    assert_int_equal(errs.count, 2);
    assert_true(has_message(&errs, "timeouts.stop_grace_ms (line 1): 3600001 is out of range 0..3600000"));
    assert_true(has_message(&errs, "timeouts.drain_ms (line 1): 0 is out of range 1..86400000"));
    config_errors_clear(&errs);
}

/* The scanner decodes keys as jansson does, so an escaped key is still found. */
static void test_line_found_through_escaped_keys(void **state)
{
    struct config_errors errs = { 0 };
    parse_bad("{'listeners':{'l':{'listen':'127.0.0.1:1','pool':'p\\u00e9'}},\n"
              "'pools':{'p\\u00e9':{\n"
              "'backends':[{'address':'127.0.0.1:2'}]}}}", &errs);
    assert_int_equal(errs.count, 1);
    assert_true(has_message(&errs, "pools[\"p\xc3\xa9\"] (line 2): name must be 1..64 characters "
                            "of A-Z a-z 0-9 _ . : -"));
    config_errors_clear(&errs);
}

static void test_missing_key_points_at_parent_line(void **state)
{
    struct config_errors errs = { 0 };
    parse_bad("{\n'listeners':{\n'l':{'pool':'p'}},\n"
              "'pools':{'p':{'backends':[{'address':'127.0.0.1:2'}]}}}", &errs);
    assert_int_equal(errs.count, 1);
    assert_true(has_message(&errs, "listeners.l.listen (line 3): required key is missing"));
    config_errors_clear(&errs);
}

static void test_required_top_level_keys_have_no_line(void **state)
{
    struct config_errors errs = { 0 };
    parse_bad("{}", &errs);
    assert_int_equal(errs.count, 2);
    assert_true(has_message(&errs, "pools: required key is missing"));
    assert_true(has_message(&errs, "listeners: required key is missing"));
    config_errors_clear(&errs);
}

static void test_alpn_name_length_limit(void **state)
{
    char long_name[300];
    char json[1024];
    struct config_errors errs = { 0 };
    const char *fmt = "{\"listeners\":{\"l\":{\"listen\":\"127.0.0.1:1\",\"mode\":\"tcp\",\"pool\":\"p\","
                      "\"tls\":{\"certificates\":[{\"cert\":\"c\",\"key\":\"k\"}],\"alpn\":[\"%s\"]}}},"
                      "\"pools\":{\"p\":{\"backends\":[{\"address\":\"127.0.0.1:2\"}]}}}";
    memset(long_name, 'a', 255);
    long_name[255] = '\0';
    snprintf(json, sizeof json, fmt, long_name);
    struct config *cfg = config_parse(json, strlen(json), "t.json", &errs);
    assert_non_null(cfg);
    assert_int_equal(cfg->listeners[0].tls->n_alpn, 1);
    assert_int_equal(strlen(cfg->listeners[0].tls->alpn[0]), 255);
    config_free(cfg);

    long_name[255] = 'a';
    long_name[256] = '\0';
    snprintf(json, sizeof json, fmt, long_name);
    assert_null(config_parse(json, strlen(json), "t.json", &errs));
    assert_true(has_message(&errs, "listeners.l.tls.alpn[0] (line 1): protocol names are 1..255 bytes"));
    config_errors_clear(&errs);
}

static void test_missing_file(void **state)
{
    struct config_errors errs = { 0 };
    assert_null(config_load("tests/unit/configs/does-not-exist.json", &errs));
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.messages[0],
                        "cannot open tests/unit/configs/does-not-exist.json: No such file or directory");
    config_errors_clear(&errs);
}

static void test_directory_is_unreadable(void **state)
{
    struct config_errors errs = { 0 };
    assert_null(config_load("tests/unit/configs", &errs));
    assert_int_equal(errs.count, 1);
    assert_non_null(strstr(errs.messages[0], "tests/unit/configs"));
    assert_non_null(strstr(errs.messages[0], "Is a directory"));
    config_errors_clear(&errs);
}

/* Writes text to a fresh temporary file; returns its path (static buffer). */
static const char *temp_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/ferry-config-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_syntax_error_from_file_names_file_line_column(void **state)
{
    struct config_errors errs = { 0 };
    const char *path = temp_file("{\n  \"workers\": 1,\n  \"workers\": 2\n}\n");
    char expected[160];
    assert_null(config_load(path, &errs));
    snprintf(expected, sizeof expected, "%s:3:11: duplicate object key near '\"workers\"'", path);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.messages[0], expected);
    config_errors_clear(&errs);
    unlink(path);
}

static void test_empty_file(void **state)
{
    struct config_errors errs = { 0 };
    const char *path = temp_file("");
    char expected[160];
    assert_null(config_load(path, &errs));
    snprintf(expected, sizeof expected, "%s: the file is empty (expected a JSON object)", path);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.messages[0], expected);
    config_errors_clear(&errs);
    unlink(path);
}

static void test_trailing_garbage_in_file(void **state)
{
    struct config_errors errs = { 0 };
    const char *path = temp_file("{\"listeners\":{}}\n}\n");
    char expected[160];
    assert_null(config_load(path, &errs));
    snprintf(expected, sizeof expected, "%s:2:1: end of file expected near '}'", path);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.messages[0], expected);
    config_errors_clear(&errs);
    unlink(path);
}

static void test_errors_accumulate_and_clear(void **state)
{
    struct config_errors errs = { 0 };
    parse_bad("{'workers':0,'listeners':{},'pools':{}}", &errs);
    assert_int_equal(errs.count, 3);
    parse_bad("[]", &errs);
    assert_int_equal(errs.count, 4);
    config_errors_clear(&errs);
    assert_int_equal(errs.count, 0);
    assert_null(errs.messages);
    config_errors_clear(&errs);
    config_errors_clear(NULL);
    config_free(NULL);
}

static void test_unknown_pool_without_close_name_has_no_hint(void **state)
{
    struct config_errors errs = { 0 };
    parse_bad("{'listeners':{'l':{'listen':'127.0.0.1:1','pool':'database'}},"
              "'pools':{'web':{'backends':[{'address':'127.0.0.1:2'}]}}}", &errs);
    assert_int_equal(errs.count, 1);
    assert_true(has_message(&errs, "listeners.l.pool (line 1): unknown pool \"database\""));
    config_errors_clear(&errs);
}

/* A broken "pools" is reported once, not again by every reference to it. */
static void test_broken_pools_section_does_not_cascade(void **state)
{
    struct config_errors errs = { 0 };
    parse_bad("{'listeners':{'a':{'listen':'127.0.0.1:1','pool':'p'},"
              "'b':{'listen':'127.0.0.1:2','pool':'q'}},'pools':[]}", &errs);
    assert_int_equal(errs.count, 1);
    assert_true(has_message(&errs, "pools (line 1): expected an object, got an array"));
    config_errors_clear(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reports_three_independent_errors),
        cmocka_unit_test(test_reports_every_bad_backend),
        cmocka_unit_test(test_error_has_line_of_value),
        cmocka_unit_test(test_stop_grace_ms_range),
        cmocka_unit_test(test_line_found_through_escaped_keys),
        cmocka_unit_test(test_missing_key_points_at_parent_line),
        cmocka_unit_test(test_required_top_level_keys_have_no_line),
        cmocka_unit_test(test_alpn_name_length_limit),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_directory_is_unreadable),
        cmocka_unit_test(test_syntax_error_from_file_names_file_line_column),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_trailing_garbage_in_file),
        cmocka_unit_test(test_errors_accumulate_and_clear),
        cmocka_unit_test(test_unknown_pool_without_close_name_has_no_hint),
        cmocka_unit_test(test_broken_pools_section_does_not_cascade),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

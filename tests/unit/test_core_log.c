/* test_core_log — the access log's descriptor across reloads and reopens.
 *
 * Workers load the access log's fd once per line and write to it while the main thread
 * may switch the target. The number a worker loaded must keep naming the log: were it
 * closed, the next socket could get that number and receive a log line. These tests
 * find the number the log writes to in /proc/self/fd and check what it names after
 * each switch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

struct dir {
    char path[64];
    char a[128], b[128], rotated[128];
};

static int setup(void **state)
{
    struct dir *d = calloc(1, sizeof *d);
    assert_non_null(d);
    strcpy(d->path, "/tmp/ferry-test-log-XXXXXX");
    assert_non_null(mkdtemp(d->path));
    snprintf(d->a, sizeof d->a, "%s/a.log", d->path);
    snprintf(d->b, sizeof d->b, "%s/b.log", d->path);
    snprintf(d->rotated, sizeof d->rotated, "%s/a.log.1", d->path);
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct dir *d = *state;
    access_log_close();
    unlink(d->a);
    unlink(d->b);
    unlink(d->rotated);
    rmdir(d->path);
    free(d);
    return 0;
}

/* The path fd names now, "" when fd is not open. */
static const char *fd_target(int fd)
{
    static char link[PATH_MAX];
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, link, sizeof link - 1);
    link[n < 0 ? 0 : n] = '\0';
    return link;
}

/* The one descriptor of this process that names path, or -1. */
static int fd_naming(const char *path)
{
    int found = -1;
    for (int fd = 0; fd < 1024; fd++) {
        if (strcmp(fd_target(fd), path) == 0) {
            assert_int_equal(found, -1);
            found = fd;
        }
    }
    return found;
}

static void assert_file_holds(const char *path, const char *text)
{
    char buf[256] = { 0 };
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    assert_int_equal(n, strlen(text));
    assert_string_equal(buf, text);
}

static void test_new_target_takes_over_the_number_writers_hold(void **state)
{
    struct dir *d = *state;
    assert_int_equal(access_log_open(d->a, LOG_FORMAT_JSON), 0);
    int held = fd_naming(d->a);
    assert_true(held > STDERR_FILENO);
    access_log_write("one", 3);

    assert_int_equal(access_log_open(d->b, LOG_FORMAT_TEXT), 0);
    assert_string_equal(fd_target(held), d->b);
    assert_int_equal(fd_naming(d->a), -1);          /* the old file is let go */
    int other = open("/dev/null", O_RDONLY);
    assert_true(other >= 0 && other != held);
    close(other);
    access_log_write("two", 3);
    assert_int_equal(access_log_format(), LOG_FORMAT_TEXT);
    assert_file_holds(d->a, "one\n");
    assert_file_holds(d->b, "two\n");
}

static void test_reopen_after_rotation_keeps_the_number(void **state)
{
    struct dir *d = *state;
    assert_int_equal(access_log_open(d->a, LOG_FORMAT_JSON), 0);
    int held = fd_naming(d->a);
    access_log_write("old", 3);
    assert_int_equal(rename(d->a, d->rotated), 0);
    assert_int_equal(access_log_reopen(), 0);
    assert_string_equal(fd_target(held), d->a);
    access_log_write("new", 3);
    assert_file_holds(d->rotated, "old\n");
    assert_file_holds(d->a, "new\n");
}

static void test_off_parks_the_number_until_a_file_comes_back(void **state)
{
    struct dir *d = *state;
    assert_int_equal(access_log_open(d->a, LOG_FORMAT_JSON), 0);
    int held = fd_naming(d->a);
    assert_int_equal(access_log_open(NULL, LOG_FORMAT_JSON), 0);
    assert_false(access_log_enabled());
    assert_string_equal(fd_target(held), "/dev/null");
    access_log_write("dropped", 7);

    assert_int_equal(access_log_open("stderr", LOG_FORMAT_JSON), 0);
    assert_true(access_log_enabled());
    assert_string_equal(fd_target(held), fd_target(STDERR_FILENO));

    assert_int_equal(access_log_open(d->b, LOG_FORMAT_JSON), 0);
    assert_string_equal(fd_target(held), d->b);
    access_log_write("back", 4);
    assert_file_holds(d->a, "");
    assert_file_holds(d->b, "back\n");
}

static void test_failed_open_keeps_the_running_log(void **state)
{
    struct dir *d = *state;
    char missing[192];
    snprintf(missing, sizeof missing, "%s/no/such/dir.log", d->path);
    assert_int_equal(access_log_open(d->a, LOG_FORMAT_JSON), 0);
    int held = fd_naming(d->a);
    assert_int_equal(access_log_open(missing, LOG_FORMAT_TEXT), -1);
    assert_string_equal(fd_target(held), d->a);
    assert_int_equal(access_log_format(), LOG_FORMAT_JSON);
    access_log_write("kept", 4);
    assert_file_holds(d->a, "kept\n");
}

static void test_close_releases_the_number(void **state)
{
    struct dir *d = *state;
    assert_int_equal(access_log_open(d->a, LOG_FORMAT_JSON), 0);
    int held = fd_naming(d->a);
    access_log_close();
    assert_false(access_log_enabled());
    assert_string_equal(fd_target(held), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_target_takes_over_the_number_writers_hold,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_rotation_keeps_the_number, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_off_parks_the_number_until_a_file_comes_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_open_keeps_the_running_log, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_releases_the_number, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

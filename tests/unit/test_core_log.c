/* The access log's fd (proxy/core/log.c): workers load it and write later, so the
 * number they use must stay open and mean the access log across every reopen and
 * retarget; an unchanged target is not reopened; stdout and stderr are left alone. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"

struct paths {
    char dir[64];
    char log[128];      /* the configured target */
    char moved[128];    /* where "rotation" moves it */
    char other[128];
};

static int setup(void **state)
{
    struct paths *p = calloc(1, sizeof *p);
    assert_non_null(p);
    strcpy(p->dir, "/tmp/test_core_log-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->log, sizeof p->log, "%s/access.log", p->dir);
    snprintf(p->moved, sizeof p->moved, "%s/access.log.1", p->dir);
    snprintf(p->other, sizeof p->other, "%s/other.log", p->dir);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct paths *p = *state;
    access_log_close();
    unlink(p->log);
    unlink(p->moved);
    unlink(p->other);
    rmdir(p->dir);
    free(p);
    return 0;
}

/* What a process-wide fd number refers to, as the kernel names it. */
static void fd_target(int fd, char *buf, size_t len)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, len - 1);
    buf[n < 0 ? 0 : n] = '\0';
}

/* The fd (other than the standard streams) that refers to path: the one a worker that
 * loaded the access log's fd would write to. */
static int fd_of(const char *path)
{
    for (int fd = STDERR_FILENO + 1; fd < 1024; fd++) {
        char target[PATH_MAX];
        fd_target(fd, target, sizeof target);
        if (strcmp(target, path) == 0)
            return fd;
    }
    fail_msg("no fd refers to %s", path);
    return -1;
}

static void assert_same_file(int a, int b)
{
    struct stat sa, sb;
    assert_int_equal(fstat(a, &sa), 0);
    assert_int_equal(fstat(b, &sb), 0);
    assert_true(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

static void write_line(const char *line) { access_log_write(line, strlen(line)); }

static void assert_file_is(const char *path, const char *want)
{
    char got[256] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = '\0';
    fclose(f);
    assert_string_equal(got, want);
}

static void test_reopen_points_the_writers_fd_at_the_new_file(void **state)
{
    struct paths *p = *state;
    assert_int_equal(access_log_configure(p->log, LOG_FORMAT_JSON), 0);
    int writers_fd = fd_of(p->log);
    assert_int_equal(rename(p->log, p->moved), 0);

    assert_int_equal(access_log_reopen(), 0);

    /* Still open, so no socket another thread makes now can get its number... */
    char target[PATH_MAX];
    fd_target(writers_fd, target, sizeof target);
    assert_string_equal(target, p->log);
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sock >= 0 && sock != writers_fd);
    close(sock);
    /* ...and a line goes to the new file. */
    write_line("after");
    assert_file_is(p->log, "after\n");
    assert_file_is(p->moved, "");
}

static void test_configuring_the_same_path_keeps_the_open_file(void **state)
{
    struct paths *p = *state;
    assert_int_equal(access_log_configure(p->log, LOG_FORMAT_JSON), 0);
    write_line("one");
    assert_int_equal(rename(p->log, p->moved), 0);

    assert_int_equal(access_log_configure(p->log, LOG_FORMAT_TEXT), 0);
    write_line("two");

    assert_int_equal(access(p->log, F_OK), -1);
    assert_file_is(p->moved, "one\ntwo\n");
    assert_int_equal(access_log_format(), LOG_FORMAT_TEXT);
}

static void test_a_new_path_reuses_the_writers_fd(void **state)
{
    struct paths *p = *state;
    assert_int_equal(access_log_configure(p->log, LOG_FORMAT_JSON), 0);
    int writers_fd = fd_of(p->log);

    assert_int_equal(access_log_configure(p->other, LOG_FORMAT_JSON), 0);

    assert_int_equal(fd_of(p->other), writers_fd);
    write_line("other");
    assert_file_is(p->other, "other\n");
    assert_file_is(p->log, "");
}

static void test_switching_to_stdout_stderr_and_off_keeps_the_fd_and_the_streams(void **state)
{
    struct paths *p = *state;
    struct stat out_before, err_before, out_after, err_after;
    assert_int_equal(fstat(STDOUT_FILENO, &out_before), 0);
    assert_int_equal(fstat(STDERR_FILENO, &err_before), 0);
    assert_int_equal(access_log_configure(p->log, LOG_FORMAT_JSON), 0);
    int writers_fd = fd_of(p->log);

    assert_int_equal(access_log_configure("stdout", LOG_FORMAT_JSON), 0);
    assert_true(access_log_enabled());
    assert_same_file(writers_fd, STDOUT_FILENO);
    assert_int_equal(access_log_reopen(), 0);
    assert_same_file(writers_fd, STDOUT_FILENO);

    assert_int_equal(access_log_configure("stderr", LOG_FORMAT_JSON), 0);
    assert_same_file(writers_fd, STDERR_FILENO);

    assert_int_equal(access_log_configure(NULL, LOG_FORMAT_JSON), 0);
    assert_false(access_log_enabled());
    char target[PATH_MAX];
    fd_target(writers_fd, target, sizeof target);
    assert_string_equal(target, "/dev/null");      /* still open, the file let go */

    assert_int_equal(access_log_configure(p->other, LOG_FORMAT_JSON), 0);
    assert_true(access_log_enabled());
    assert_int_equal(fd_of(p->other), writers_fd);
    write_line("back");
    assert_file_is(p->other, "back\n");

    assert_int_equal(fstat(STDOUT_FILENO, &out_after), 0);
    assert_int_equal(fstat(STDERR_FILENO, &err_after), 0);
    assert_true(out_before.st_ino == out_after.st_ino && out_before.st_dev == out_after.st_dev);
    assert_true(err_before.st_ino == err_after.st_ino && err_before.st_dev == err_after.st_dev);
}

static void test_a_path_that_cannot_be_opened_changes_nothing(void **state)
{
    struct paths *p = *state;
    assert_int_equal(access_log_configure(p->log, LOG_FORMAT_JSON), 0);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/no/such/dir.log", p->dir);

    errno = 0;
    assert_int_equal(access_log_configure(missing, LOG_FORMAT_TEXT), -1);
    assert_int_equal(errno, ENOENT);

    write_line("kept");
    assert_file_is(p->log, "kept\n");
    assert_int_equal(access_log_format(), LOG_FORMAT_JSON);
    /* still the old target: configuring it again does not reopen it */
    assert_int_equal(rename(p->log, p->moved), 0);
    assert_int_equal(access_log_configure(p->log, LOG_FORMAT_JSON), 0);
    assert_int_equal(access(p->log, F_OK), -1);
}

/* A reload opens the new file first and switches to it only at its commit. */
static void test_prepare_opens_commit_switches_abandon_leaves_all_as_it_was(void **state)
{
    struct paths *p = *state;
    assert_int_equal(access_log_configure(p->log, LOG_FORMAT_JSON), 0);
    int writers_fd = fd_of(p->log);
    struct access_log_change ch;
    assert_int_equal(access_log_prepare(p->other, &ch), 0);
    assert_true(ch.is_changing);
    write_line("before");
    access_log_abandon(&ch);
    write_line("abandoned");
    assert_file_is(p->log, "before\nabandoned\n");
    assert_file_is(p->other, "");

    assert_int_equal(access_log_prepare(p->other, &ch), 0);
    write_line("still old");
    assert_int_equal(access_log_commit(&ch, LOG_FORMAT_TEXT), 0);
    write_line("new");
    assert_file_is(p->log, "before\nabandoned\nstill old\n");
    assert_file_is(p->other, "new\n");
    assert_int_equal(fd_of(p->other), writers_fd);
    assert_int_equal(access_log_format(), LOG_FORMAT_TEXT);

    /* the same target: nothing to open, the commit only sets the format */
    assert_int_equal(access_log_prepare(p->other, &ch), 0);
    assert_false(ch.is_changing);
    assert_int_equal(ch.fd, -1);
    assert_int_equal(access_log_commit(&ch, LOG_FORMAT_JSON), 0);
    assert_int_equal(access_log_format(), LOG_FORMAT_JSON);
}

static void test_check_creates_nothing(void **state)
{
    struct paths *p = *state;
    char missing_dir[160];
    snprintf(missing_dir, sizeof missing_dir, "%s/no/such/dir.log", p->dir);
    assert_int_equal(access_log_check(p->log), 0);
    assert_int_equal(access(p->log, F_OK), -1);
    errno = 0;
    assert_int_equal(access_log_check(missing_dir), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(access_log_check("stdout"), 0);
    assert_int_equal(access_log_check(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reopen_points_the_writers_fd_at_the_new_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configuring_the_same_path_keeps_the_open_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_new_path_reuses_the_writers_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_switching_to_stdout_stderr_and_off_keeps_the_fd_and_the_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_path_that_cannot_be_opened_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_opens_commit_switches_abandon_leaves_all_as_it_was, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_creates_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

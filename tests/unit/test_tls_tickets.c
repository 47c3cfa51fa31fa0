/* Session-ticket keys (proxy/tls/tickets.c). Handed to a new binary: what one process
 * exports another imports whole, and bytes that are not whole keys change nothing.
 * Read from a listener's ticket_keys_file: servers (processes) with the same file
 * resume each other's sessions; the first key encrypts and every key decrypts; the
 * daemon's rotation leaves them alone; a ticket still resumes only on its listener;
 * a missing or broken file fails the listener, naming the key. */
#include "test_tls_support.h"

#include "tls/ticket_file.h"

static struct tt_pki pki;

static int setup(void **state)
{
    tt_pki_open(&pki);
    tt_issue(&pki, "a", tt_key_ec(), "localhost", "DNS:localhost");
    return 0;
}

static int teardown(void **state)
{
    tt_pki_close(&pki);
    return 0;
}

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

/* ---- ticket_keys_file ------------------------------------------------------------ */

/* Writes the keys `ids` (each a distinct 80-byte key) into `file`, first to last. */
static void write_keys(const char *file, const int *ids, size_t n)
{
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        unsigned char raw[TLS_TICKET_KEY_BYTES];
        for (int b = 0; b < TLS_TICKET_KEY_BYTES; b++)
            raw[b] = (unsigned char)(ids[i] * 31 + b * 7 + 3);
        assert_int_equal(fwrite(raw, sizeof raw, 1, f), 1);
    }
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(file, 0600), 0);
}

#define WRITE_KEYS(file, ...) \
    write_keys(file, (const int[]){ __VA_ARGS__ }, sizeof (int[]){ __VA_ARGS__ } / sizeof (int))

/* A server of listener `path` on the keys of `file` (the daemon's keys `keys` unused
 * but present, as in ferry). */
static struct tls_server *file_server(struct tt_listener *l, const char *file,
                                      struct tls_ticket_keys *keys, const char *path)
{
    struct cfg_listener_tls *cfg = tt_listener(l, 1, "a");
    cfg->session_cache = 0;     /* only a ticket can resume */
    cfg->ticket_keys_file = (char *)file;
    struct err err = { "" };
    struct tls_server *srv = tls_server_new(cfg, MODE_HTTP, keys, path, NULL, NULL, &err);
    if (srv == NULL)
        fail_msg("tls_server_new: %s", err.msg);
    return srv;
}

static SSL_CTX *client_ctx(int version)
{
    SSL_CTX *ctx = tt_client_ctx(NULL);
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    return ctx;
}

static void check_one_file_serves_two_processes(int version)
{
    struct err err = { "" };
    struct tls_ticket_keys *own_a = tls_ticket_keys_new(&err), *own_b = tls_ticket_keys_new(&err);
    struct tt_listener la, lb;
    SSL_CTX *cctx = client_ctx(version);
    WRITE_KEYS("fleet.key", 1);
    struct tls_server *a = file_server(&la, "fleet.key", own_a, "listeners.t.tls");
    struct tls_server *b = file_server(&lb, "fleet.key", own_b, "listeners.t.tls");

    SSL_SESSION *from_a = tt_new_session(a, cctx), *from_b = tt_new_session(b, cctx);
    assert_true(tt_resumes(b, cctx, from_a));
    assert_true(tt_resumes(a, cctx, from_b));
    tls_server_free(a);
    tls_server_free(b);
    /* without the file each has its own keys */
    a = tt_server(tt_listener(&la, 1, "a"), own_a);
    b = tt_server(tt_listener(&lb, 1, "a"), own_b);
    SSL_SESSION *own = tt_new_session(a, cctx);
    assert_false(tt_resumes(b, cctx, own));

    SSL_SESSION_free(from_a);
    SSL_SESSION_free(from_b);
    SSL_SESSION_free(own);
    SSL_CTX_free(cctx);
    tls_server_free(a);
    tls_server_free(b);
    tls_ticket_keys_free(own_a);
    tls_ticket_keys_free(own_b);
}

static void test_one_key_file_serves_two_processes_tls13(void **state)
{
    check_one_file_serves_two_processes(TLS1_3_VERSION);
}

static void test_one_key_file_serves_two_processes_tls12(void **state)
{
    check_one_file_serves_two_processes(TLS1_2_VERSION);
}

/* A rotation: the new key first, the old one second. */
static void check_first_key_encrypts_every_key_decrypts(int version)
{
    struct tt_listener l1, l21, l2;
    SSL_CTX *cctx = client_ctx(version);
    WRITE_KEYS("k1.key", 1);
    WRITE_KEYS("k21.key", 2, 1);
    WRITE_KEYS("k2.key", 2);
    struct tls_server *old = file_server(&l1, "k1.key", NULL, "listeners.t.tls");
    struct tls_server *rotated = file_server(&l21, "k21.key", NULL, "listeners.t.tls");
    struct tls_server *only_new = file_server(&l2, "k2.key", NULL, "listeners.t.tls");

    SSL_SESSION *before = tt_new_session(old, cctx), *renewed = NULL;
    assert_true(tt_resumes_renewed(rotated, cctx, before, &renewed));  /* key 2 of 2 */
    SSL_SESSION *after = tt_new_session(rotated, cctx);
    assert_true(tt_resumes(only_new, cctx, after));         /* made with the first key */
    assert_false(tt_resumes(old, cctx, after));             /* not with the second */
    assert_true(tt_resumes(only_new, cctx, renewed));       /* renewed under the first */
    assert_false(tt_resumes(only_new, cctx, before));       /* the old key is gone */

    SSL_SESSION_free(before);
    SSL_SESSION_free(renewed);
    SSL_SESSION_free(after);
    SSL_CTX_free(cctx);
    tls_server_free(old);
    tls_server_free(rotated);
    tls_server_free(only_new);
}

static void test_first_key_encrypts_every_key_decrypts_tls13(void **state)
{
    check_first_key_encrypts_every_key_decrypts(TLS1_3_VERSION);
}

static void test_first_key_encrypts_every_key_decrypts_tls12(void **state)
{
    check_first_key_encrypts_every_key_decrypts(TLS1_2_VERSION);
}

static void test_the_daemons_rotation_leaves_file_keys_alone(void **state)
{
    struct err err = { "" };
    struct tls_ticket_keys *own = tls_ticket_keys_new(&err);
    struct tt_listener l;
    SSL_CTX *cctx = tt_client_ctx(NULL);
    WRITE_KEYS("fleet.key", 1);
    struct tls_server *srv = file_server(&l, "fleet.key", own, "listeners.t.tls");
    SSL_SESSION *session = tt_new_session(srv, cctx);
    for (int i = 0; i < TLS_TICKET_KEYS_KEPT; i++)
        assert_int_equal(tls_ticket_keys_rotate(own, &err), 0);
    assert_true(tt_resumes(srv, cctx, session));
    SSL_SESSION_free(session);
    SSL_CTX_free(cctx);
    tls_server_free(srv);
    tls_ticket_keys_free(own);
}

/* The session-id context (listener, client-certificate policy, server name) still
 * decides, whatever the key. */
static void test_a_file_ticket_resumes_only_on_its_listener(void **state)
{
    struct tt_listener l1, l2;
    SSL_CTX *cctx = tt_client_ctx(NULL);
    WRITE_KEYS("fleet.key", 1);
    struct tls_server *one = file_server(&l1, "fleet.key", NULL, "listeners.t.tls");
    struct tls_server *two = file_server(&l2, "fleet.key", NULL, "listeners.other.tls");
    SSL_SESSION *session = tt_new_session(one, cctx);
    assert_true(tt_resumes(one, cctx, session));
    assert_false(tt_resumes(two, cctx, session));
    SSL_SESSION_free(session);
    SSL_CTX_free(cctx);
    tls_server_free(one);
    tls_server_free(two);
}

static void assert_listener_fails(const char *file, const char *why)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->ticket_keys_file = (char *)file;
    struct err err = { "" };
    assert_null(tls_server_new(cfg, MODE_HTTP, NULL, "listeners.t.tls", NULL, NULL, &err));
    if (strstr(err.msg, why) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", err.msg, why);
    struct tt_warnings reported = { "", 0 };
    assert_int_equal(tls_server_check_files(cfg, "listeners.t.tls", tt_warn, &reported), 1);
    assert_non_null(strstr(reported.text, why));
}

static void test_a_missing_or_broken_file_fails_the_listener(void **state)
{
    assert_listener_fails("missing.key",
                          "listeners.t.tls.ticket_keys_file: missing.key: cannot open: No such file");
    tt_write_text("broken.key", "not base64 at all\n");
    assert_listener_fails("broken.key",
                          "listeners.t.tls.ticket_keys_file: broken.key: line 1: not base64");
}

static void test_a_file_others_may_read_is_warned_about(void **state)
{
    struct tt_listener l;
    struct cfg_listener_tls *cfg = tt_listener(&l, 1, "a");
    cfg->ticket_keys_file = (char *)"fleet.key";
    WRITE_KEYS("fleet.key", 1);
    for (int pass = 0; pass < 2; pass++) {
        struct tt_warnings warnings = { "", 0 };
        struct err err = { "" };
        struct tls_server *srv = tls_server_new(cfg, MODE_HTTP, NULL, "listeners.t.tls",
                                                tt_warn, &warnings, &err);
        assert_non_null(srv);
        tls_server_free(srv);
        if (pass == 0) {
            assert_int_equal(warnings.count, 0);
            assert_int_equal(chmod("fleet.key", 0644), 0);
        } else {
            assert_int_equal(warnings.count, 1);
            assert_non_null(strstr(warnings.text, "listeners.t.tls.ticket_keys_file: "
                                                  "fleet.key: mode 0644: others may access it"));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_exported_by_one_are_the_keys_of_the_other),
        cmocka_unit_test(test_bytes_that_are_not_whole_keys_change_nothing),
        cmocka_unit_test(test_one_key_file_serves_two_processes_tls13),
        cmocka_unit_test(test_one_key_file_serves_two_processes_tls12),
        cmocka_unit_test(test_first_key_encrypts_every_key_decrypts_tls13),
        cmocka_unit_test(test_first_key_encrypts_every_key_decrypts_tls12),
        cmocka_unit_test(test_the_daemons_rotation_leaves_file_keys_alone),
        cmocka_unit_test(test_a_file_ticket_resumes_only_on_its_listener),
        cmocka_unit_test(test_a_missing_or_broken_file_fails_the_listener),
        cmocka_unit_test(test_a_file_others_may_read_is_warned_about),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* The session-ticket key file (proxy/tls/ticket_file.c): nginx's binary keys and
 * HAProxy's base64 lines, 80 bytes a key laid out as each of them lays it out (name /
 * HMAC / AES for nginx, name / AES / HMAC for HAProxy), and every way a
 * file can be wrong; which permission bits expose it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "tls/ticket_file.h"

/* Key i of a test: every byte differs from every other key's, and the three parts
 * differ from one another, so a mix-up of keys or of parts shows. */
static void make_key(unsigned char raw[TLS_TICKET_KEY_BYTES], int i)
{
    for (int b = 0; b < TLS_TICKET_KEY_BYTES; b++)
        raw[b] = (unsigned char)(i * 97 + b * 3 + 1);
}

/* Key i as read from a layout with the HMAC secret at hmac_at and the AES key at aes_at
 * (the name first in both). */
static void assert_key_laid_out(const struct tls_ticket_key *key, int i, int hmac_at, int aes_at)
{
    unsigned char raw[TLS_TICKET_KEY_BYTES];
    make_key(raw, i);
    assert_memory_equal(key->name, raw, 16);
    assert_memory_equal(key->hmac, raw + hmac_at, 32);
    assert_memory_equal(key->aes, raw + aes_at, 32);
}

/* Key i as read from nginx's binary layout (name, HMAC, AES). */
static void assert_key_is(const struct tls_ticket_key *key, int i)
{
    assert_key_laid_out(key, i, 16, 48);
}

/* Key i as read from HAProxy's layout (name, AES, HMAC: its struct tls_sess_key_256),
 * which its base64 lines carry. */
static void assert_haproxy_key_is(const struct tls_ticket_key *key, int i)
{
    assert_key_laid_out(key, i, 48, 16);
}

/* Base64 of key i (108 characters and a NUL). */
static void key_line(char out[112], int i, size_t bytes)
{
    unsigned char raw[TLS_TICKET_KEY_BYTES * 2];
    for (size_t b = 0; b < bytes; b++)
        raw[b] = (unsigned char)(i * 97 + (int)b * 3 + 1);
    assert_true(EVP_EncodeBlock((unsigned char *)out, raw, (int)bytes) > 0);
}

static int parse(const void *data, size_t len, struct tls_ticket_key *keys, struct err *err)
{
    memset(err, 0, sizeof *err);
    return tls_ticket_file_parse(data, len, keys, err);
}

static void assert_refused(const void *data, size_t len, const char *why)
{
    struct tls_ticket_key keys[TLS_TICKET_FILE_MAX_KEYS];
    struct err err;
    assert_int_equal(parse(data, len, keys, &err), -1);
    if (strstr(err.msg, why) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", err.msg, why);
}

/* ---- binary (nginx) ---------------------------------------------------------------- */

static void test_binary_keys_in_file_order(void **state)
{
    unsigned char data[3 * TLS_TICKET_KEY_BYTES];
    for (int i = 0; i < 3; i++)
        make_key(data + i * TLS_TICKET_KEY_BYTES, i);
    struct tls_ticket_key keys[TLS_TICKET_FILE_MAX_KEYS];
    struct err err;
    assert_int_equal(parse(data, TLS_TICKET_KEY_BYTES, keys, &err), 1);    /* nginx */
    assert_key_is(&keys[0], 0);
    assert_int_equal(parse(data, sizeof data, keys, &err), 3);
    for (int i = 0; i < 3; i++)
        assert_key_is(&keys[i], i);
}

static void test_binary_of_the_wrong_length_is_refused(void **state)
{
    unsigned char data[2 * TLS_TICKET_KEY_BYTES];
    make_key(data, 0);
    make_key(data + TLS_TICKET_KEY_BYTES, 1);
    assert_refused(data, 79, "79 bytes: not a whole number of 80-byte keys");
    assert_refused(data, 81, "81 bytes: not a whole number");
    assert_refused(data, 159, "159 bytes");
    assert_refused(data, 48, "48 bytes: an AES-128 key; ferry takes 80-byte keys only");
}

static void test_binary_with_too_many_keys_is_refused(void **state)
{
    unsigned char data[(TLS_TICKET_FILE_MAX_KEYS + 1) * TLS_TICKET_KEY_BYTES];
    for (int i = 0; i <= TLS_TICKET_FILE_MAX_KEYS; i++)
        make_key(data + i * TLS_TICKET_KEY_BYTES, i);
    struct tls_ticket_key keys[TLS_TICKET_FILE_MAX_KEYS];
    struct err err;
    assert_int_equal(parse(data, sizeof data - TLS_TICKET_KEY_BYTES, keys, &err),
                     TLS_TICKET_FILE_MAX_KEYS);
    assert_refused(data, sizeof data, "more than 8 keys");
}

/* ---- text (HAProxy) ---------------------------------------------------------------- */

static void test_base64_lines_are_the_same_keys(void **state)
{
    char a[112], b[112], text[400];
    key_line(a, 0, TLS_TICKET_KEY_BYTES);
    key_line(b, 1, TLS_TICKET_KEY_BYTES);
    assert_int_equal(strlen(a), 108);
    /* CRLF, blanks around a line, empty lines and no final newline are all fine */
    snprintf(text, sizeof text, "\n  %s \r\n\r\n\t%s", a, b);
    struct tls_ticket_key keys[TLS_TICKET_FILE_MAX_KEYS];
    struct err err;
    assert_int_equal(parse(text, strlen(text), keys, &err), 2);
    assert_haproxy_key_is(&keys[0], 0);
    assert_haproxy_key_is(&keys[1], 1);
}

static void test_base64_line_of_the_wrong_length_names_its_line(void **state)
{
    char good[112], short_key[112], text[400];
    key_line(good, 0, TLS_TICKET_KEY_BYTES);
    key_line(short_key, 1, 60);
    snprintf(text, sizeof text, "%s\n\n%s\n", good, short_key);
    assert_refused(text, strlen(text), "line 3: 60 bytes; a key is 80 bytes");
    key_line(short_key, 1, 48);
    snprintf(text, sizeof text, "%s\n", short_key);
    assert_refused(text, strlen(text), "line 1: 48 bytes: an AES-128 key");
}

static void test_bad_base64_is_refused(void **state)
{
    char line[112], text[400];
    key_line(line, 0, TLS_TICKET_KEY_BYTES);
    const size_t len = strlen(line);
    struct { size_t at; char c; } damage[] = {
        { 5, '*' },         /* outside the alphabet */
        { 5, '=' },         /* padding in the middle */
        { 5, ' ' },         /* a blank inside the line */
        { 5, '-' },         /* the URL-safe alphabet is another encoding */
    };
    for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
        snprintf(text, sizeof text, "%s\n%s\n", line, line);
        text[len + 1 + damage[i].at] = damage[i].c;
        assert_refused(text, strlen(text), "line 2: not base64");
    }
    /* unpadded: not a multiple of four characters */
    snprintf(text, sizeof text, "%.*s\n", (int)len - 1, line);
    assert_refused(text, strlen(text), "line 1: not base64");
    /* three '=' */
    snprintf(text, sizeof text, "%.*s===\n", (int)len - 3, line);
    assert_refused(text, strlen(text), "line 1: not base64");
}

static void test_text_with_too_many_keys_is_refused(void **state)
{
    char line[112], text[(TLS_TICKET_FILE_MAX_KEYS + 1) * 112];
    size_t used = 0;
    for (int i = 0; i <= TLS_TICKET_FILE_MAX_KEYS; i++) {
        key_line(line, i, TLS_TICKET_KEY_BYTES);
        used += (size_t)snprintf(text + used, sizeof text - used, "%s\n", line);
    }
    assert_refused(text, used, "more than 8 keys");
    struct tls_ticket_key keys[TLS_TICKET_FILE_MAX_KEYS];
    struct err err;
    assert_int_equal(parse(text, used - 109, keys, &err), TLS_TICKET_FILE_MAX_KEYS);
}

/* ---- either ------------------------------------------------------------------------ */

static void test_empty_file_is_refused(void **state)
{
    assert_refused("", 0, "file is empty");
    assert_refused("\n\r\n  \n", 6, "holds no key");
}

static void test_two_keys_with_one_name_are_refused(void **state)
{
    unsigned char data[2 * TLS_TICKET_KEY_BYTES];
    make_key(data, 0);
    make_key(data + TLS_TICKET_KEY_BYTES, 1);
    memcpy(data + TLS_TICKET_KEY_BYTES, data, 16);
    assert_refused(data, sizeof data, "keys 1 and 2 have the same name");
}

/* ---- permissions ------------------------------------------------------------------- */

static void test_exposure_by_permission_bits(void **state)
{
    assert_null(tls_ticket_file_exposure(0600, false));
    assert_null(tls_ticket_file_exposure(0400, false));
    assert_null(tls_ticket_file_exposure(0640, true));      /* ferry's own group reads */
    assert_null(tls_ticket_file_exposure(0440, true));      /* Kubernetes' fsGroup */
    assert_string_equal(tls_ticket_file_exposure(0640, false),
                        "its group, which is not ferry's, may read it");
    assert_string_equal(tls_ticket_file_exposure(0660, true), "its group may change it");
    assert_string_equal(tls_ticket_file_exposure(0644, true), "others may access it");
    assert_string_equal(tls_ticket_file_exposure(0602, true), "others may access it");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_keys_in_file_order),
        cmocka_unit_test(test_binary_of_the_wrong_length_is_refused),
        cmocka_unit_test(test_binary_with_too_many_keys_is_refused),
        cmocka_unit_test(test_base64_lines_are_the_same_keys),
        cmocka_unit_test(test_base64_line_of_the_wrong_length_names_its_line),
        cmocka_unit_test(test_bad_base64_is_refused),
        cmocka_unit_test(test_text_with_too_many_keys_is_refused),
        cmocka_unit_test(test_empty_file_is_refused),
        cmocka_unit_test(test_two_keys_with_one_name_are_refused),
        cmocka_unit_test(test_exposure_by_permission_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

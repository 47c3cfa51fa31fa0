/* Fuzzes the session-ticket key file parser (proxy/tls/ticket_file.c) on any bytes.
 * Checks: no crash or over-read; a verdict of -1 with a reason, or 1 to
 * TLS_TICKET_FILE_MAX_KEYS keys; the same verdict and keys again; and the keys read,
 * written back in both forms (binary in nginx's layout, base64 lines in HAProxy's),
 * parse to the same keys. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tls/ticket_file.h"

enum { LINE_MAX_CHARS = 4 * ((TLS_TICKET_KEY_BYTES + 2) / 3) + 1 };

/* The 80 bytes of key as a binary file (nginx: name, HMAC, AES) or a base64 line
 * (HAProxy: name, AES, HMAC) lays it out. */
static void key_bytes(const struct tls_ticket_key *key, bool haproxy, unsigned char *raw)
{
    memcpy(raw, key->name, sizeof key->name);
    memcpy(raw + (haproxy ? 48 : 16), key->hmac, sizeof key->hmac);
    memcpy(raw + (haproxy ? 16 : 48), key->aes, sizeof key->aes);
}

static void expect_keys(const void *data, size_t len, const struct tls_ticket_key *keys,
                        int n)
{
    struct tls_ticket_key got[TLS_TICKET_FILE_MAX_KEYS];
    struct err err = { { 0 } };
    if (tls_ticket_file_parse(data, len, got, &err) != n
        || memcmp(got, keys, (size_t)n * sizeof *keys) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tls_ticket_key keys[TLS_TICKET_FILE_MAX_KEYS];
    struct err err = { { 0 } };
    int n = tls_ticket_file_parse(data, size, keys, &err);
    if (n == -1) {
        if (err.msg[0] == '\0')
            abort();
        return 0;
    }
    if (n < 1 || n > TLS_TICKET_FILE_MAX_KEYS)
        abort();
    expect_keys(data, size, keys, n);

    unsigned char binary[TLS_TICKET_FILE_MAX_KEYS * TLS_TICKET_KEY_BYTES];
    unsigned char text[TLS_TICKET_FILE_MAX_KEYS * (LINE_MAX_CHARS + 1)];
    size_t text_len = 0;
    for (int i = 0; i < n; i++) {
        unsigned char line[TLS_TICKET_KEY_BYTES];
        key_bytes(&keys[i], true, line);
        text_len += (size_t)EVP_EncodeBlock(text + text_len, line, TLS_TICKET_KEY_BYTES);
        text[text_len++] = '\n';
        key_bytes(&keys[i], false, binary + (size_t)i * TLS_TICKET_KEY_BYTES);
    }
    expect_keys(text, text_len, keys, n);
    /* Random keys are binary; keys made only of printable bytes and blanks read as
     * text (ticket_file.h). */
    bool text_only = true;
    for (size_t i = 0; i < (size_t)n * TLS_TICKET_KEY_BYTES; i++) {
        unsigned char c = binary[i];
        text_only = text_only && ((c >= 0x20 && c <= 0x7e) || c == '\t' || c == '\r'
                                  || c == '\n');
    }
    if (!text_only)
        expect_keys(binary, (size_t)n * TLS_TICKET_KEY_BYTES, keys, n);
    return 0;
}

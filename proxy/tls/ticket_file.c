/* The session-ticket key file's two forms (see ticket_file.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "tls/ticket_file.h"

/* ---- base64 (RFC 4648 §4, padded) ------------------------------------------------ */

static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* What `text` decodes to, in bytes: the standard alphabet in groups of four, '='
 * only as the padding of the last group. -1 when it is not such base64 (OpenSSL's
 * decoder, which does the decoding, would skip blanks and not check the padding). */
static long base64_decoded_length(const unsigned char *text, size_t len)
{
    if (len == 0 || len % 4 != 0)
        return -1;
    size_t pad = text[len - 1] != '=' ? 0 : text[len - 2] != '=' ? 1 : 2;
    for (size_t i = 0; i < len - pad; i++)
        if (base64_value(text[i]) < 0)
            return -1;
    return (long)(len / 4 * 3 - pad);
}

/* ---- keys ------------------------------------------------------------------------- */

void tls_ticket_key_from_bytes(struct tls_ticket_key *key,
                               const unsigned char raw[TLS_TICKET_KEY_BYTES],
                               enum tls_ticket_key_layout layout)
{
    bool hmac_first = layout == TLS_KEY_NAME_HMAC_AES;
    memcpy(key->name, raw, sizeof key->name);
    memcpy(key->hmac, raw + (hmac_first ? 16 : 48), sizeof key->hmac);
    memcpy(key->aes, raw + (hmac_first ? 48 : 16), sizeof key->aes);
}

void tls_ticket_key_to_bytes(const struct tls_ticket_key *key,
                             unsigned char raw[TLS_TICKET_KEY_BYTES],
                             enum tls_ticket_key_layout layout)
{
    bool hmac_first = layout == TLS_KEY_NAME_HMAC_AES;
    memcpy(raw, key->name, sizeof key->name);
    memcpy(raw + (hmac_first ? 16 : 48), key->hmac, sizeof key->hmac);
    memcpy(raw + (hmac_first ? 48 : 16), key->aes, sizeof key->aes);
}

/* `where` starts the message: "line 2: " or "". */
static int wrong_size(struct err *err, const char *where, size_t bytes)
{
    if (bytes == 48)
        return err_set(err, "%s48 bytes: an AES-128 key; ferry takes 80-byte keys only "
                       "(make one with: openssl rand 80)", where);
    return err_set(err, "%s%zu bytes; a key is %d bytes (16 name, 32 HMAC, 32 AES)", where,
                   bytes, TLS_TICKET_KEY_BYTES);
}

static int too_many(struct err *err)
{
    return err_set(err, "more than %d keys (keep the one that encrypts, the next and the "
                   "previous one)", TLS_TICKET_FILE_MAX_KEYS);
}

static int parse_binary(const unsigned char *data, size_t len, struct tls_ticket_key *keys,
                        struct err *err)
{
    if (len % TLS_TICKET_KEY_BYTES != 0) {
        if (len == 48)
            return wrong_size(err, "", len);
        return err_set(err, "%zu bytes: not a whole number of %d-byte keys", len,
                       TLS_TICKET_KEY_BYTES);
    }
    size_t n = len / TLS_TICKET_KEY_BYTES;
    if (n > TLS_TICKET_FILE_MAX_KEYS)
        return too_many(err);
    for (size_t i = 0; i < n; i++)
        tls_ticket_key_from_bytes(&keys[i], data + i * TLS_TICKET_KEY_BYTES,
                                  TLS_KEY_NAME_HMAC_AES);
    return (int)n;
}

static int parse_line(const unsigned char *text, size_t len, size_t line,
                      struct tls_ticket_key *key, struct err *err)
{
    char where[32];
    snprintf(where, sizeof where, "line %zu: ", line);
    long bytes = base64_decoded_length(text, len);
    if (bytes < 0)
        return err_set(err, "%snot base64", where);
    if (bytes != TLS_TICKET_KEY_BYTES)
        return wrong_size(err, where, (size_t)bytes);
    unsigned char raw[TLS_TICKET_KEY_BYTES + 2];   /* EVP_DecodeBlock: padding too */
    EVP_DecodeBlock(raw, text, (int)len);
    tls_ticket_key_from_bytes(key, raw, TLS_KEY_NAME_AES_HMAC);
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

static bool is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int parse_text(const unsigned char *data, size_t len, struct tls_ticket_key *keys,
                      struct err *err)
{
    size_t n = 0, line = 0;
    for (size_t pos = 0; pos < len;) {
        const unsigned char *newline = memchr(data + pos, '\n', len - pos);
        size_t end = newline ? (size_t)(newline - data) : len;
        size_t start = pos;
        pos = end + 1;
        line++;
        while (start < end && is_blank(data[start]))
            start++;
        while (end > start && is_blank(data[end - 1]))
            end--;
        if (start == end)
            continue;
        if (n == TLS_TICKET_FILE_MAX_KEYS)
            return too_many(err);
        if (parse_line(data + start, end - start, line, &keys[n], err) < 0)
            return -1;
        n++;
    }
    if (n == 0)
        return err_set(err, "holds no key");
    return (int)n;
}

static bool is_text(const unsigned char *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((data[i] < 0x20 || data[i] > 0x7e) && !is_blank(data[i]))
            return false;
    return true;
}

static int check_names_differ(const struct tls_ticket_key *keys, int n, struct err *err)
{
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++)
            if (CRYPTO_memcmp(keys[i].name, keys[j].name, sizeof keys[i].name) == 0)
                return err_set(err, "keys %d and %d have the same name (their first 16 "
                               "bytes): tickets of the second could not be decrypted",
                               j + 1, i + 1);
    return n;
}

int tls_ticket_file_parse(const unsigned char *data, size_t len,
                          struct tls_ticket_key keys[TLS_TICKET_FILE_MAX_KEYS],
                          struct err *err)
{
    if (len == 0)
        return err_set(err, "file is empty");
    int n = is_text(data, len) ? parse_text(data, len, keys, err)
                               : parse_binary(data, len, keys, err);
    return n < 0 ? -1 : check_names_differ(keys, n, err);
}

const char *tls_ticket_file_exposure(unsigned mode, bool group_is_ours)
{
    if (mode & 0007)
        return "others may access it";
    if (mode & 0020)
        return "its group may change it";
    if ((mode & 0040) && !group_is_ours)
        return "its group, which is not ferry's, may read it";
    return NULL;
}

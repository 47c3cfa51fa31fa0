/* libFuzzer harness for the ClientHello SNI parser. Every input is run:
 *   - as a client's stream: the result is one of the five, a returned name is a valid
 *     lower-case host name and any other result leaves name empty, nothing at or past
 *     CLIENTHELLO_MAX_PEEK bytes is INCOMPLETE, and every prefix gives INCOMPLETE or
 *     the same result and name; after INCOMPLETE, clienthello_bytes_needed() is more
 *     than was given and no more than the shortest prefix that parses successfully;
 *   - when that stream opens with a whole ClientHello in one record: re-cut into
 *     records of input-derived sizes, which must not change the result or the name;
 *   - as the body of a ClientHello, wrapped in a handshake header and a record, whole
 *     and cut into records, which must agree (this reaches the body parser directly).
 * Inputs are copied to exact-size heap buffers so ASan sees any over-read.
 * Built by scripts/fuzz with -fsanitize=fuzzer, and by ctest as a corpus runner. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sni/clienthello.h"

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#define ALL_PREFIXES_UP_TO 300
#define SAMPLED_PREFIXES 64

struct outcome {
    int rc;
    char name[CLIENTHELLO_MAX_NAME + 1];
};

static bool is_valid_name(const char *name)
{
    size_t len = strlen(name), label = 0;
    if (len == 0 || len > CLIENTHELLO_MAX_NAME || name[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789-_", name[i]) || ++label > 63) {
            return false;
        }
    }
    return true;
}

static struct outcome parse(const uint8_t *data, size_t len)
{
    struct outcome o;
    uint8_t *copy = len ? malloc(len) : NULL;
    CHECK(len == 0 || copy);
    if (len)
        memcpy(copy, data, len);
    memset(o.name, 0x7f, sizeof o.name);
    o.rc = clienthello_sni(copy, len, o.name);
    free(copy);
    CHECK(o.rc >= CLIENTHELLO_INVALID && o.rc <= CLIENTHELLO_SNI);
    CHECK(clienthello_result_str(o.rc) != NULL);
    if (o.rc == CLIENTHELLO_SNI)
        CHECK(is_valid_name(o.name));
    else
        CHECK(o.name[0] == '\0');
    CHECK(len < CLIENTHELLO_MAX_PEEK || o.rc != CLIENTHELLO_INCOMPLETE);
    return o;
}

static size_t bytes_needed(const uint8_t *data, size_t len)
{
    uint8_t *copy = len ? malloc(len) : NULL;
    CHECK(len == 0 || copy);
    if (len)
        memcpy(copy, data, len);
    size_t needed = clienthello_bytes_needed(copy, len);
    free(copy);
    CHECK(needed <= CLIENTHELLO_MAX_PEEK);
    CHECK(needed > len || len >= CLIENTHELLO_MAX_PEEK);
    return needed;
}

/* The shortest prefix that gives the whole input's (final) result. */
static size_t shortest_final(const uint8_t *data, size_t size)
{
    size_t lo = 0, hi = size; /* parse(hi) is final, parse(lo - 1) is not */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (parse(data, mid).rc == CLIENTHELLO_INCOMPLETE)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool same(const struct outcome *a, const struct outcome *b)
{
    return a->rc == b->rc && strcmp(a->name, b->name) == 0;
}

static void check_prefixes(const uint8_t *data, size_t size, const struct outcome *whole)
{
    size_t n = size <= ALL_PREFIXES_UP_TO ? size : SAMPLED_PREFIXES;
    size_t success_at = whole->rc >= 0 ? shortest_final(data, size) : SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t k = size <= ALL_PREFIXES_UP_TO ? i : i * size / SAMPLED_PREFIXES;
        struct outcome part = parse(data, k);
        CHECK(part.rc == CLIENTHELLO_INCOMPLETE || same(&part, whole));
        if (part.rc == CLIENTHELLO_INCOMPLETE)
            CHECK(bytes_needed(data, k) <= success_at);
    }
}

/* Writes msg (a handshake message) as records of 1 + sizes[i % n] % 61 bytes,
 * with the record version of the first record; returns the bytes written. */
static size_t cut_into_records(const uint8_t *msg, size_t len, uint8_t version,
                               const uint8_t *sizes, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t from = 0, i = 0; from < len; i++) {
        size_t take = n ? 1 + (size_t)sizes[i % n] % 61 : len;
        if (take > len - from)
            take = len - from;
        out[o] = 22;
        out[o + 1] = 3;
        out[o + 2] = version;
        out[o + 3] = (uint8_t)(take >> 8);
        out[o + 4] = (uint8_t)take;
        memcpy(out + o + 5, msg + from, take);
        o += 5 + take;
        from += take;
    }
    return o;
}

/* The stream starts with a complete ClientHello inside its first record. */
static void check_refragmented(const uint8_t *data, size_t size, const struct outcome *whole)
{
    if (whole->rc < 0 || size < 9)
        return;
    size_t record = (size_t)data[3] << 8 | data[4];
    size_t msg = 4 + ((size_t)data[6] << 16 | (size_t)data[7] << 8 | data[8]);
    if (msg > record || 5 + msg > size)
        return;
    uint8_t *out = malloc(6 * msg);
    CHECK(out);
    size_t n = cut_into_records(data + 5, msg, data[2], data + 5, msg, out);
    struct outcome part = parse(out, n);
    CHECK(n >= CLIENTHELLO_MAX_PEEK || same(&part, whole));
    free(out);
}

/* The input as a ClientHello body, in one record and in many. */
static void check_wrapped(const uint8_t *data, size_t size)
{
    if (size > CLIENTHELLO_MAX_MESSAGE)
        return;
    uint8_t *msg = malloc(4 + size), *out = malloc(6 * (4 + size));
    CHECK(msg && out);
    msg[0] = 1;
    msg[1] = (uint8_t)(size >> 16);
    msg[2] = (uint8_t)(size >> 8);
    msg[3] = (uint8_t)size;
    memcpy(msg + 4, data, size);
    size_t n = cut_into_records(msg, 4 + size, 3, NULL, 0, out);
    struct outcome one = parse(out, n);
    CHECK(one.rc != CLIENTHELLO_NOT_TLS && one.rc != CLIENTHELLO_INCOMPLETE);
    n = cut_into_records(msg, 4 + size, 1, data, size, out);
    struct outcome many = parse(out, n);
    CHECK(n >= CLIENTHELLO_MAX_PEEK || same(&one, &many));
    free(out);
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole = parse(data, size);
    check_prefixes(data, size, &whole);
    check_refragmented(data, size, &whole);
    check_wrapped(data, size);
    return 0;
}

/* sni clienthello — reads the server_name of a ClientHello (RFC 8446 §4.1.2,
 * RFC 6066 §3) straight out of the record layer, without copying the message. */
#include <stdbool.h>
#include <string.h>

#include "sni/clienthello.h"

#define RECORD_HEADER 5
#define RECORD_MAX_PAYLOAD (16384 + 2048) /* TLSCiphertext bound, the loosest one */
#define CONTENT_HANDSHAKE 22
#define HANDSHAKE_HEADER 4
#define HANDSHAKE_CLIENT_HELLO 1
#define RANDOM_BYTES 32
#define SESSION_ID_MAX 32
#define EXTENSION_SERVER_NAME 0
#define NAME_TYPE_HOST 0
#define LABEL_MAX 63

/* Internal steps return GO_ON, or a negative enum clienthello_result that ends the
 * parse (INCOMPLETE, NOT_TLS or INVALID). */
#define GO_ON 0

/* The handshake bytes of the stream: the payloads of consecutive handshake records,
 * read in place one after the other. */
struct reader {
    const unsigned char *buf; /* borrowed */
    size_t len;               /* bytes of buf that may be read */
    size_t pos;               /* next unread byte of buf */
    size_t record_left;       /* payload bytes of the current record not read yet */
};

static size_t record_payload_len(const unsigned char *header)
{
    return (size_t)header[3] << 8 | header[4];
}

enum header_check { HEADER_OK, HEADER_PARTIAL, HEADER_NOT_HANDSHAKE, HEADER_BAD_LENGTH };

/* Judges a record header of which only `avail` bytes (possibly fewer than 5) have
 * arrived, so a stream that is not TLS is recognised from its first byte. */
static enum header_check check_record_header(const unsigned char *h, size_t avail,
                                             size_t *payload_len)
{
    if (avail >= 1 && h[0] != CONTENT_HANDSHAKE)
        return HEADER_NOT_HANDSHAKE;
    if (avail >= 2 && h[1] != 3)
        return HEADER_NOT_HANDSHAKE;
    if (avail >= 3 && (h[2] < 1 || h[2] > 4)) /* record versions TLS 1.0 .. 1.3 */
        return HEADER_NOT_HANDSHAKE;
    if (avail < RECORD_HEADER)
        return HEADER_PARTIAL;
    *payload_len = record_payload_len(h);
    /* Empty handshake fragments are forbidden (RFC 8446 §5.1). */
    if (*payload_len == 0 || *payload_len > RECORD_MAX_PAYLOAD)
        return HEADER_BAD_LENGTH;
    return HEADER_OK;
}

/* Steps over the header of the record at r->pos. What is wrong with the first one
 * says the stream is not TLS; with a later one, that the hello is broken. */
static int enter_record(struct reader *r)
{
    size_t payload_len = 0;
    if (r->pos == r->len) /* buf may be NULL when len is 0 */
        return CLIENTHELLO_INCOMPLETE;
    switch (check_record_header(r->buf + r->pos, r->len - r->pos, &payload_len)) {
    case HEADER_OK:
        r->pos += RECORD_HEADER;
        r->record_left = payload_len;
        return GO_ON;
    case HEADER_PARTIAL:
        return CLIENTHELLO_INCOMPLETE;
    case HEADER_NOT_HANDSHAKE:
        return r->pos == 0 ? CLIENTHELLO_NOT_TLS : CLIENTHELLO_INVALID;
    case HEADER_BAD_LENGTH:
        break;
    }
    return CLIENTHELLO_INVALID;
}

/* Copies the next n handshake bytes to out, or skips them when out is NULL. */
static int read_bytes(struct reader *r, unsigned char *out, size_t n)
{
    while (n > 0) {
        if (r->record_left == 0) {
            int rc = enter_record(r);
            if (rc != GO_ON)
                return rc;
        }
        size_t take = n < r->record_left ? n : r->record_left;
        if (take > r->len - r->pos)
            take = r->len - r->pos;
        if (take == 0)
            return CLIENTHELLO_INCOMPLETE;
        if (out) {
            memcpy(out, r->buf + r->pos, take);
            out += take;
        }
        r->pos += take;
        r->record_left -= take;
        n -= take;
    }
    return GO_ON;
}

/* Reads a big-endian integer of `width` (1..3) bytes out of the *left bytes that
 * remain of the enclosing structure. */
static int read_uint(struct reader *r, size_t *left, size_t width, size_t *value)
{
    unsigned char b[3];
    if (*left < width)
        return CLIENTHELLO_INVALID;
    int rc = read_bytes(r, b, width);
    if (rc != GO_ON)
        return rc;
    *left -= width;
    *value = 0;
    for (size_t i = 0; i < width; i++)
        *value = *value << 8 | b[i];
    return GO_ON;
}

/* Reads the length prefix of a vector and moves that many bytes of the enclosing
 * structure's budget (*left) into the vector's own (*inner). Judged before any byte
 * of the vector is read, so a length that overruns its container is INVALID at once
 * rather than INCOMPLETE forever. */
static int open_vector(struct reader *r, size_t *left, size_t width, size_t *inner)
{
    int rc = read_uint(r, left, width, inner);
    if (rc != GO_ON)
        return rc;
    if (*inner > *left)
        return CLIENTHELLO_INVALID;
    *left -= *inner;
    return GO_ON;
}

static int skip(struct reader *r, size_t *left, size_t n)
{
    if (n > *left)
        return CLIENTHELLO_INVALID;
    *left -= n;
    return read_bytes(r, NULL, n);
}

/* A DNS host name as SNI carries it (RFC 6066 §3: no trailing dot, ASCII only):
 * non-empty labels of letters, digits, '-' and '_' (which config accepts in route
 * names, and which internal names use), at most 63 bytes each. Lower-cases name. */
static bool make_host_name(char *name, size_t len)
{
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (c >= 'A' && c <= 'Z')
            name[i] = c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
        if (++label > LABEL_MAX)
            return false;
    }
    return label > 0;
}

/* The server_name extension's data: a non-empty ServerNameList. Every entry is read
 * as type + 2-byte length + bytes; there must be at most one host_name (RFC 6066). */
static int parse_server_name(struct reader *r, size_t ext_len, char *name, bool *found)
{
    size_t list;
    int rc = open_vector(r, &ext_len, 2, &list);
    if (rc != GO_ON)
        return rc;
    if (ext_len != 0 || list == 0)
        return CLIENTHELLO_INVALID;
    while (list > 0) {
        size_t type, n;
        if ((rc = read_uint(r, &list, 1, &type)) != GO_ON
            || (rc = open_vector(r, &list, 2, &n)) != GO_ON)
            return rc;
        if (type != NAME_TYPE_HOST) {
            if ((rc = read_bytes(r, NULL, n)) != GO_ON)
                return rc;
            continue;
        }
        if (*found || n == 0 || n > CLIENTHELLO_MAX_NAME)
            return CLIENTHELLO_INVALID;
        if ((rc = read_bytes(r, (unsigned char *)name, n)) != GO_ON)
            return rc;
        name[n] = '\0';
        if (!make_host_name(name, n))
            return CLIENTHELLO_INVALID;
        *found = true;
    }
    return GO_ON;
}

/* The extensions vector, which must fill the rest of the message exactly. */
static int parse_extensions(struct reader *r, size_t *msg_left, char *name, bool *found)
{
    size_t block;
    bool seen_server_name = false;
    int rc = open_vector(r, msg_left, 2, &block);
    if (rc != GO_ON)
        return rc;
    if (*msg_left != 0)
        return CLIENTHELLO_INVALID;
    while (block > 0) {
        size_t type, ext_len;
        if ((rc = read_uint(r, &block, 2, &type)) != GO_ON
            || (rc = open_vector(r, &block, 2, &ext_len)) != GO_ON)
            return rc;
        if (type != EXTENSION_SERVER_NAME) {
            rc = read_bytes(r, NULL, ext_len);
        } else if (seen_server_name) {
            rc = CLIENTHELLO_INVALID; /* duplicate extension (RFC 8446 §4.2) */
        } else {
            seen_server_name = true;
            rc = parse_server_name(r, ext_len, name, found);
        }
        if (rc != GO_ON)
            return rc;
    }
    return GO_ON;
}

/* The ClientHello fields before the extensions, which are only bounds-checked. */
static int parse_hello_fixed(struct reader *r, size_t *left)
{
    size_t version, n;
    int rc;
    if ((rc = read_uint(r, left, 2, &version)) != GO_ON)
        return rc;
    if (version >> 8 != 3) /* legacy_version: SSL 3.0 .. TLS 1.2 */
        return CLIENTHELLO_INVALID;
    if ((rc = skip(r, left, RANDOM_BYTES)) != GO_ON)
        return rc;
    if ((rc = open_vector(r, left, 1, &n)) != GO_ON)
        return rc;
    if (n > SESSION_ID_MAX)
        return CLIENTHELLO_INVALID;
    if ((rc = read_bytes(r, NULL, n)) != GO_ON
        || (rc = open_vector(r, left, 2, &n)) != GO_ON)
        return rc;
    if (n == 0 || n % 2 != 0) /* cipher_suites: 2-byte entries, at least one */
        return CLIENTHELLO_INVALID;
    if ((rc = read_bytes(r, NULL, n)) != GO_ON
        || (rc = open_vector(r, left, 1, &n)) != GO_ON)
        return rc;
    if (n == 0) /* compression_methods: at least "null" */
        return CLIENTHELLO_INVALID;
    return read_bytes(r, NULL, n);
}

/* name: at least CLIENTHELLO_MAX_NAME + 1 bytes, written when a host_name is found. */
static int parse_hello(struct reader *r, char *name)
{
    unsigned char header[HANDSHAKE_HEADER];
    int rc = read_bytes(r, header, sizeof header);
    if (rc != GO_ON)
        return rc;
    if (header[0] != HANDSHAKE_CLIENT_HELLO)
        return CLIENTHELLO_INVALID;
    size_t left = (size_t)header[1] << 16 | (size_t)header[2] << 8 | header[3];
    if (left > CLIENTHELLO_MAX_MESSAGE)
        return CLIENTHELLO_INVALID;
    if ((rc = parse_hello_fixed(r, &left)) != GO_ON)
        return rc;
    bool found = false;
    /* Extensions are optional before TLS 1.3: a hello may end after compression. */
    if (left > 0 && (rc = parse_extensions(r, &left, name, &found)) != GO_ON)
        return rc;
    return found ? CLIENTHELLO_SNI : CLIENTHELLO_NO_SNI;
}

int clienthello_sni(const unsigned char *buf, size_t len, char name[CLIENTHELLO_MAX_NAME + 1])
{
    /* Only the first CLIENTHELLO_MAX_PEEK bytes count, so that any longer input gets
     * the same answer as its prefix of that size, and that answer is final. */
    struct reader r = { buf, len < CLIENTHELLO_MAX_PEEK ? len : CLIENTHELLO_MAX_PEEK, 0, 0 };
    char found[CLIENTHELLO_MAX_NAME + 1];
    int rc = parse_hello(&r, found);
    if (rc == CLIENTHELLO_INCOMPLETE && len >= CLIENTHELLO_MAX_PEEK)
        rc = CLIENTHELLO_INVALID;
    if (rc == CLIENTHELLO_SNI)
        memcpy(name, found, strlen(found) + 1);
    else
        name[0] = '\0';
    return rc;
}

/* A lower bound, from the headers alone: the rest of the message might come in the
 * record being read (or the next one) without further record headers. */
size_t clienthello_bytes_needed(const unsigned char *buf, size_t len)
{
    if (len >= CLIENTHELLO_MAX_PEEK)
        return CLIENTHELLO_MAX_PEEK;
    unsigned char header[HANDSHAKE_HEADER];
    size_t pos = 0, have = 0, header_got = 0, want = HANDSHAKE_HEADER, needed;
    for (;;) {
        if (len - pos < RECORD_HEADER) {
            needed = pos + RECORD_HEADER + (want - have);
            break;
        }
        size_t n = record_payload_len(buf + pos), arrived = len - pos - RECORD_HEADER;
        for (size_t i = 0; i < n && i < arrived && header_got < HANDSHAKE_HEADER; i++)
            header[header_got++] = buf[pos + RECORD_HEADER + i];
        if (header_got == HANDSHAKE_HEADER)
            want = HANDSHAKE_HEADER + ((size_t)header[1] << 16 | (size_t)header[2] << 8
                                       | header[3]);
        if (have + n >= want) {
            needed = pos + RECORD_HEADER + (want - have);
            break;
        }
        if (arrived < n) { /* this record, then another header and the rest */
            needed = pos + 2 * RECORD_HEADER + (want - have);
            break;
        }
        have += n;
        pos += RECORD_HEADER + n;
    }
    if (needed <= len)
        needed = len + 1;
    return needed < CLIENTHELLO_MAX_PEEK ? needed : CLIENTHELLO_MAX_PEEK;
}

const char *clienthello_result_str(int result)
{
    switch (result) {
    case CLIENTHELLO_SNI:
        return "ClientHello with server name";
    case CLIENTHELLO_NO_SNI:
        return "ClientHello without server name";
    case CLIENTHELLO_INCOMPLETE:
        return "incomplete ClientHello";
    case CLIENTHELLO_NOT_TLS:
        return "not a TLS handshake";
    case CLIENTHELLO_INVALID:
        return "malformed ClientHello";
    }
    return "unknown ClientHello result";
}

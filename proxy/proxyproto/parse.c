/* The PROXY protocol parser (see proxyproto.h for what is accepted). Every length is
 * checked against the bytes that hold it before anything is read. */
#include "proxyproto/proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

const uint8_t proxyproto_v2_signature[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                              0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
static const char V1_PREFIX[] = "PROXY ";

enum { V1_FIELD_MAX = 48 };     /* longer than any address or port */

/* v2 command, family and transport nibbles. */
enum { CMD_LOCAL = 0x0, CMD_PROXY = 0x1 };
enum { FAM_UNSPEC = 0x00, FAM_TCP4 = 0x11, FAM_TCP6 = 0x21, FAM_UNIX_STREAM = 0x31 };
enum { TCP4_BLOCK = 12, TCP6_BLOCK = 36, UNIX_BLOCK = 216 };

/* ---- CRC32C ------------------------------------------------------------------------ */

uint32_t proxyproto_crc32c(const uint8_t *buf, size_t len)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        crc ^= buf[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* ---- version 1 --------------------------------------------------------------------- */

/* The next space-separated field of line[*pos..end) into field (NUL-terminated);
 * false when empty or too long. *pos ends on the separator (or end). */
static bool next_field(const char *line, size_t end, size_t *pos, char field[V1_FIELD_MAX])
{
    size_t start = *pos, n = 0;
    while (*pos < end && line[*pos] != ' ')
        (*pos)++;
    n = *pos - start;
    if (n == 0 || n >= V1_FIELD_MAX)
        return false;
    memcpy(field, line + start, n);
    field[n] = '\0';
    return true;
}

static bool parse_port(const char *text, uint16_t *port)
{
    size_t n = strlen(text);
    if (n == 0 || n > 5 || strspn(text, "0123456789") != n || (n > 1 && text[0] == '0'))
        return false;
    unsigned long value = 0;
    for (size_t i = 0; i < n; i++)
        value = value * 10 + (unsigned long)(text[i] - '0');
    if (value > 65535)
        return false;
    *port = (uint16_t)value;
    return true;
}

static bool fill_address(int family, const char *text, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        return inet_pton(AF_INET, text, &sin->sin_addr) == 1;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1;
}

/* "TCP4 a b p q" after "PROXY ", line[0..end) without the CRLF. */
static int parse_v1_fields(const char *line, size_t end, struct proxyproto_header *out)
{
    char proto[V1_FIELD_MAX], src[V1_FIELD_MAX], dst[V1_FIELD_MAX];
    char sport_text[V1_FIELD_MAX], dport_text[V1_FIELD_MAX];
    size_t pos = sizeof V1_PREFIX - 1;
    if (!next_field(line, end, &pos, proto))
        return PROXYPROTO_ERR_V1_SYNTAX;
    if (strcmp(proto, "UNKNOWN") == 0) {
        out->is_local = true;   /* whatever follows is to be ignored */
        return 0;
    }
    int family = strcmp(proto, "TCP4") == 0 ? AF_INET : strcmp(proto, "TCP6") == 0 ? AF_INET6 : 0;
    if (!family)
        return PROXYPROTO_ERR_V1_PROTOCOL;
    char *fields[] = { src, dst, sport_text, dport_text };
    for (size_t i = 0; i < 4; i++) {
        if (pos >= end || line[pos] != ' ')
            return PROXYPROTO_ERR_V1_SYNTAX;
        pos++;
        if (!next_field(line, end, &pos, fields[i]))
            return PROXYPROTO_ERR_V1_SYNTAX;
    }
    if (pos != end)
        return PROXYPROTO_ERR_V1_SYNTAX;
    uint16_t sport, dport;
    if (!parse_port(sport_text, &sport) || !parse_port(dport_text, &dport))
        return PROXYPROTO_ERR_V1_PORT;
    if (!fill_address(family, src, sport, &out->src) || !fill_address(family, dst, dport, &out->dst))
        return PROXYPROTO_ERR_V1_ADDRESS;
    return 0;
}

static int parse_v1(const uint8_t *buf, size_t len, struct proxyproto_header *out)
{
    size_t limit = len < PROXYPROTO_V1_MAX ? len : PROXYPROTO_V1_MAX;
    for (size_t i = 0; i < limit; i++) {
        if (buf[i] == '\n')
            return PROXYPROTO_ERR_V1_SYNTAX;        /* a bare LF */
        if (buf[i] != '\r')
            continue;
        if (i + 1 >= len)
            return PROXYPROTO_INCOMPLETE;
        if (buf[i + 1] != '\n' || i + 2 > PROXYPROTO_V1_MAX)
            return buf[i + 1] != '\n' ? PROXYPROTO_ERR_V1_SYNTAX : PROXYPROTO_ERR_V1_TOO_LONG;
        out->version = 1;
        int rc = parse_v1_fields((const char *)buf, i, out);
        return rc < 0 ? rc : (int)(i + 2);
    }
    return len >= PROXYPROTO_V1_MAX ? PROXYPROTO_ERR_V1_TOO_LONG : PROXYPROTO_INCOMPLETE;
}

/* ---- version 2 --------------------------------------------------------------------- */

/* TLVs packed in buf[0..len): each type, 16-bit length, value, exactly to the end. */
static bool tlvs_fill(const uint8_t *buf, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        if (len - pos < 3)
            return false;
        size_t value_len = (size_t)buf[pos + 1] << 8 | buf[pos + 2];
        if (len - pos - 3 < value_len)
            return false;
        pos += 3 + value_len;
    }
    return true;
}

/* Structure of every TLV, the SSL one's sub-TLVs, and a CRC32C computed over the
 * whole header with its own value zeroed. */
static int check_tlvs(const uint8_t *header, size_t header_len, size_t tlv_start)
{
    const uint8_t *tlvs = header + tlv_start;
    size_t len = header_len - tlv_start;
    if (!tlvs_fill(tlvs, len))
        return PROXYPROTO_ERR_V2_TLV;
    for (size_t pos = 0; pos < len;) {
        uint8_t type = tlvs[pos];
        size_t value_len = (size_t)tlvs[pos + 1] << 8 | tlvs[pos + 2];
        const uint8_t *value = tlvs + pos + 3;
        if (type == PP2_TYPE_SSL && (value_len < 5 || !tlvs_fill(value + 5, value_len - 5)))
            return PROXYPROTO_ERR_V2_TLV;
        if (type == PP2_TYPE_CRC32C) {
            uint8_t copy[PROXYPROTO_MAX_HEADER];
            if (value_len != 4)
                return PROXYPROTO_ERR_V2_TLV;
            memcpy(copy, header, header_len);
            memset(copy + tlv_start + pos + 3, 0, 4);
            uint32_t sent = (uint32_t)value[0] << 24 | (uint32_t)value[1] << 16 |
                            (uint32_t)value[2] << 8 | value[3];
            if (proxyproto_crc32c(copy, header_len) != sent)
                return PROXYPROTO_ERR_V2_CRC;
        }
        pos += 3 + value_len;
    }
    return 0;
}

static void fill_v2_addresses(const uint8_t *block, uint8_t family, struct proxyproto_header *out)
{
    memset(&out->src, 0, sizeof out->src);
    memset(&out->dst, 0, sizeof out->dst);
    if (family == FAM_TCP4) {
        struct sockaddr_in *src = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *dst = (struct sockaddr_in *)&out->dst;
        src->sin_family = dst->sin_family = AF_INET;
        memcpy(&src->sin_addr, block, 4);
        memcpy(&dst->sin_addr, block + 4, 4);
        memcpy(&src->sin_port, block + 8, 2);
        memcpy(&dst->sin_port, block + 10, 2);
        return;
    }
    struct sockaddr_in6 *src = (struct sockaddr_in6 *)&out->src;
    struct sockaddr_in6 *dst = (struct sockaddr_in6 *)&out->dst;
    src->sin6_family = dst->sin6_family = AF_INET6;
    memcpy(&src->sin6_addr, block, 16);
    memcpy(&dst->sin6_addr, block + 16, 16);
    memcpy(&src->sin6_port, block + 32, 2);
    memcpy(&dst->sin6_port, block + 34, 2);
}

/* The fixed part, as far as it has arrived: 0 when nothing is wrong so far. */
static int check_v2_fixed(const uint8_t *buf, size_t len)
{
    if (len > 12 && buf[12] >> 4 != 2)
        return PROXYPROTO_ERR_V2_VERSION;
    if (len > 12 && (buf[12] & 0x0f) != CMD_LOCAL && (buf[12] & 0x0f) != CMD_PROXY)
        return PROXYPROTO_ERR_V2_COMMAND;
    if (len > 13 && (buf[12] & 0x0f) == CMD_PROXY && buf[13] != FAM_UNSPEC &&
        buf[13] != FAM_TCP4 && buf[13] != FAM_TCP6 && buf[13] != FAM_UNIX_STREAM)
        return PROXYPROTO_ERR_V2_FAMILY;
    if (len >= PROXYPROTO_V2_FIXED &&
        PROXYPROTO_V2_FIXED + ((size_t)buf[14] << 8 | buf[15]) > PROXYPROTO_MAX_HEADER)
        return PROXYPROTO_ERR_V2_TOO_LONG;
    return 0;
}

static int parse_v2(const uint8_t *buf, size_t len, struct proxyproto_header *out)
{
    int rc = check_v2_fixed(buf, len);
    if (rc < 0)
        return rc;
    if (len < PROXYPROTO_V2_FIXED)
        return PROXYPROTO_INCOMPLETE;
    size_t total = PROXYPROTO_V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);
    if (len < total)
        return PROXYPROTO_INCOMPLETE;
    out->version = 2;
    if ((buf[12] & 0x0f) == CMD_LOCAL) {
        out->is_local = true;   /* the block is the balancer's business: not read */
        return (int)total;
    }
    uint8_t family = buf[13];
    size_t block = family == FAM_TCP4 ? TCP4_BLOCK : family == FAM_TCP6 ? TCP6_BLOCK
                   : family == FAM_UNIX_STREAM ? UNIX_BLOCK : 0;
    if (total - PROXYPROTO_V2_FIXED < block)
        return PROXYPROTO_ERR_V2_ADDRESS;
    rc = check_tlvs(buf, total, PROXYPROTO_V2_FIXED + block);
    if (rc < 0)
        return rc;
    out->is_local = family == FAM_UNSPEC || family == FAM_UNIX_STREAM;
    if (!out->is_local)
        fill_v2_addresses(buf + PROXYPROTO_V2_FIXED, family, out);
    if (total > PROXYPROTO_V2_FIXED + block) {
        out->tlvs = buf + PROXYPROTO_V2_FIXED + block;
        out->tlvs_len = total - PROXYPROTO_V2_FIXED - block;
    }
    return (int)total;
}

/* ---- entry points ------------------------------------------------------------------ */

static bool is_prefix_of(const uint8_t *buf, size_t len, const void *sig, size_t sig_len)
{
    return memcmp(buf, sig, len < sig_len ? len : sig_len) == 0;
}

int proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto_header *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return PROXYPROTO_INCOMPLETE;
    if (is_prefix_of(buf, len, proxyproto_v2_signature, sizeof proxyproto_v2_signature))
        return len < sizeof proxyproto_v2_signature ? PROXYPROTO_INCOMPLETE : parse_v2(buf, len, out);
    if (is_prefix_of(buf, len, V1_PREFIX, sizeof V1_PREFIX - 1))
        return len < sizeof V1_PREFIX - 1 ? PROXYPROTO_INCOMPLETE : parse_v1(buf, len, out);
    return PROXYPROTO_ERR_NOT_PROXY;
}

const char *proxyproto_error_str(int rc)
{
    switch (rc) {
    case PROXYPROTO_INCOMPLETE: return "incomplete header";
    case PROXYPROTO_ERR_NOT_PROXY: return "no PROXY protocol header";
    case PROXYPROTO_ERR_V1_TOO_LONG: return "v1 line longer than 107 bytes";
    case PROXYPROTO_ERR_V1_SYNTAX: return "bad v1 syntax";
    case PROXYPROTO_ERR_V1_PROTOCOL: return "bad v1 protocol (TCP4, TCP6 or UNKNOWN)";
    case PROXYPROTO_ERR_V1_ADDRESS: return "bad v1 address";
    case PROXYPROTO_ERR_V1_PORT: return "bad v1 port";
    case PROXYPROTO_ERR_V2_VERSION: return "bad v2 version";
    case PROXYPROTO_ERR_V2_COMMAND: return "bad v2 command";
    case PROXYPROTO_ERR_V2_FAMILY: return "bad v2 family or transport";
    case PROXYPROTO_ERR_V2_TOO_LONG: return "v2 header longer than 4096 bytes";
    case PROXYPROTO_ERR_V2_ADDRESS: return "v2 header too short for its addresses";
    case PROXYPROTO_ERR_V2_TLV: return "bad v2 TLV";
    case PROXYPROTO_ERR_V2_CRC: return "v2 CRC32C mismatch";
    }
    return "?";
}

const uint8_t *proxyproto_tlv(const struct proxyproto_header *h, uint8_t type, size_t *len)
{
    for (size_t pos = 0; h->tlvs && pos + 3 <= h->tlvs_len;) {
        size_t value_len = (size_t)h->tlvs[pos + 1] << 8 | h->tlvs[pos + 2];
        if (h->tlvs[pos] == type) {
            *len = value_len;
            return h->tlvs + pos + 3;
        }
        pos += 3 + value_len;
    }
    *len = 0;
    return NULL;
}

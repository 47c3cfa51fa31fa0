#include "discovery/wire.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

enum {
    HEADER_SIZE = 12,
    TYPE_CNAME = 5,
    TYPE_SRV = 33,
    TYPE_OPT = 41,
    CLASS_IN = 1,
    FLAG_QR = 0x8000,
    FLAG_TC = 0x0200,
    FLAG_RD = 0x0100,
    OPCODE_MASK = 0x7800,
    RCODE_MASK = 0x000f,
    LABEL_MAX = 63,
    NAME_WIRE_MAX = 255,
    POINTER_HOPS_MAX = 32,
};

/* RFC 2181 §8: a TTL with the top bit set is read as 0. */
#define TTL_MAX 0x7fffffffu

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Writes name as labels at out; returns the bytes written, or -1. */
static int put_name(const char *name, uint8_t *out, size_t size)
{
    size_t len = strlen(name), used = 0;
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len + 2 > NAME_WIRE_MAX || len + 2 > size)
        return -1;
    for (size_t start = 0; start < len;) {
        const char *dot = memchr(name + start, '.', len - start);
        size_t label = (dot ? (size_t)(dot - name) : len) - start;
        if (label == 0 || label > LABEL_MAX)
            return -1;
        out[used++] = (uint8_t)label;
        memcpy(out + used, name + start, label);
        used += label;
        start += label + 1;
    }
    out[used++] = 0;
    return (int)used;
}

int dns_wire_srv_query(uint16_t id, const char *name, uint8_t *out, size_t size)
{
    static const uint8_t opt[] = { 0, 0, TYPE_OPT, DNS_WIRE_UDP_SIZE >> 8, DNS_WIRE_UDP_SIZE & 0xff,
                                   0, 0, 0, 0, 0, 0 };
    if (size < HEADER_SIZE)
        return -1;
    memset(out, 0, HEADER_SIZE);
    put16(out, id);
    put16(out + 2, FLAG_RD);
    put16(out + 4, 1);              /* one question */
    put16(out + 10, 1);             /* the OPT record */
    int n = put_name(name, out + HEADER_SIZE, size - HEADER_SIZE);
    size_t used = HEADER_SIZE + (size_t)(n < 0 ? 0 : n);
    if (n < 0 || used + 4 + sizeof opt > size)
        return -1;
    put16(out + used, TYPE_SRV);
    put16(out + used + 2, CLASS_IN);
    memcpy(out + used + 4, opt, sizeof opt);
    return (int)(used + 4 + sizeof opt);
}

/* ---- reading ------------------------------------------------------------------- */

static bool is_label_char(uint8_t c) { return c > ' ' && c < 0x7f && c != '.'; }

/* Reads the (possibly compressed) name at *off into text ("" for the root), and moves
 * *off past it. false when malformed. */
static bool read_name(const uint8_t *msg, size_t len, size_t *off, char *text, size_t size)
{
    size_t pos = *off, used = 0, wire = 0;
    unsigned hops = 0;
    bool jumped = false;
    for (;;) {
        if (pos >= len)
            return false;
        uint8_t label = msg[pos];
        if ((label & 0xc0) == 0xc0) {
            if (pos + 1 >= len || ++hops > POINTER_HOPS_MAX)
                return false;
            if (!jumped)
                *off = pos + 2;
            jumped = true;
            pos = (size_t)(label & 0x3f) << 8 | msg[pos + 1];
            continue;
        }
        if (label & 0xc0)
            return false;           /* 0x40 and 0x80: extended label types, unused */
        pos++;
        if (label == 0)
            break;
        wire += label + 1u;
        if (pos + label > len || wire + 1 > NAME_WIRE_MAX || used + label + 2 > size)
            return false;
        if (used)
            text[used++] = '.';
        for (size_t i = 0; i < label; i++) {
            if (!is_label_char(msg[pos + i]))
                return false;
            text[used++] = (char)msg[pos + i];
        }
        pos += label;
    }
    if (!jumped)
        *off = pos;
    text[used] = '\0';
    return true;
}

static bool same_name(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (lb > 0 && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* The question must be ours; *off moves past it. */
static bool is_our_question(const uint8_t *msg, size_t len, size_t *off, const char *name)
{
    char qname[DNS_WIRE_NAME_MAX];
    if (get16(msg + 4) != 1 || !read_name(msg, len, off, qname, sizeof qname) ||
        *off + 4 > len)
        return false;
    bool ours = same_name(qname, name) && get16(msg + *off) == TYPE_SRV &&
                get16(msg + *off + 2) == CLASS_IN;
    *off += 4;
    return ours;
}

static enum dns_wire_status rcode_status(unsigned rcode)
{
    switch (rcode) {
    case 0: return DNS_WIRE_ANSWER;
    case 2: return DNS_WIRE_SERVFAIL;
    case 3: return DNS_WIRE_NXDOMAIN;
    case 5: return DNS_WIRE_REFUSED;
    default: return DNS_WIRE_OTHER_RCODE;
    }
}

static enum dns_wire_status read_srv(const uint8_t *msg, size_t len, size_t rdata, size_t rdlen,
                                     struct dns_srv_answer *out)
{
    if (out->n == DNS_WIRE_SRV_MAX)
        return DNS_WIRE_TOO_MANY;
    struct dns_srv_record *r = &out->records[out->n];
    size_t off = rdata + 6;
    if (rdlen < 7)
        return DNS_WIRE_MALFORMED;
    r->priority = (uint16_t)get16(msg + rdata);
    r->weight = (uint16_t)get16(msg + rdata + 2);
    r->port = (uint16_t)get16(msg + rdata + 4);
    /* The target must lie within the record (a pointer may lead before it). */
    if (!read_name(msg, rdata + rdlen, &off, r->target, sizeof r->target) || off != rdata + rdlen)
        return DNS_WIRE_MALFORMED;
    out->n++;
    return DNS_WIRE_ANSWER;
}

/* The answer section's records, from *off. */
static enum dns_wire_status read_answers(const uint8_t *msg, size_t len, size_t off,
                                         struct dns_srv_answer *out)
{
    unsigned count = get16(msg + 6);
    char owner[DNS_WIRE_NAME_MAX];
    for (unsigned i = 0; i < count; i++) {
        if (!read_name(msg, len, &off, owner, sizeof owner) || off + 10 > len)
            return DNS_WIRE_MALFORMED;
        unsigned type = get16(msg + off), rclass = get16(msg + off + 2);
        uint32_t ttl = get32(msg + off + 4);
        size_t rdlen = get16(msg + off + 8), rdata = off + 10;
        if (rdata + rdlen > len)
            return DNS_WIRE_MALFORMED;
        off = rdata + rdlen;
        if (rclass != CLASS_IN || (type != TYPE_SRV && type != TYPE_CNAME))
            continue;
        if (type == TYPE_SRV) {
            enum dns_wire_status s = read_srv(msg, len, rdata, rdlen, out);
            if (s != DNS_WIRE_ANSWER)
                return s;
        }
        ttl = ttl > TTL_MAX ? 0 : ttl;
        out->ttl = ttl < out->ttl ? ttl : out->ttl;
    }
    return DNS_WIRE_ANSWER;
}

enum dns_wire_status dns_wire_srv_parse(const uint8_t *msg, size_t len, uint16_t id,
                                        const char *name, struct dns_srv_answer *out)
{
    out->n = 0;
    out->ttl = TTL_MAX;
    if (len < HEADER_SIZE)
        return DNS_WIRE_MALFORMED;
    unsigned flags = get16(msg + 2);
    size_t off = HEADER_SIZE;
    if (get16(msg) != id || !(flags & FLAG_QR) || (flags & OPCODE_MASK) ||
        !is_our_question(msg, len, &off, name))
        return DNS_WIRE_NOT_OURS;
    if (flags & FLAG_TC)
        return DNS_WIRE_TRUNCATED;
    enum dns_wire_status status = rcode_status(flags & RCODE_MASK);
    if (status != DNS_WIRE_ANSWER)
        return status;
    status = read_answers(msg, len, off, out);
    if (out->n == 0)
        out->ttl = 0;
    return status;
}

const char *dns_wire_status_name(enum dns_wire_status status)
{
    static const char *const names[] = { "answer", "nxdomain", "servfail", "refused",
                                         "error code", "truncated", "too many records",
                                         "malformed", "not ours" };
    return status <= DNS_WIRE_NOT_OURS ? names[status] : "?";
}

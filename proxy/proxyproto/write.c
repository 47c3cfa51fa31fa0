/* The PROXY protocol writer: the header ferry puts before the first byte of a backend
 * connection (see proxyproto.h). */
#include "proxyproto/proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>


/* Both addresses as one family: IPv4 ones are mapped into IPv6 when the other is
 * IPv6. False when either is neither. */
static bool same_family(const struct sockaddr *src, const struct sockaddr *dst,
                        struct sockaddr_in6 *src6, struct sockaddr_in6 *dst6, int *family)
{
    const struct sockaddr *in[2] = { src, dst };
    struct sockaddr_in6 *out[2] = { src6, dst6 };
    for (int i = 0; i < 2; i++)
        if (in[i]->sa_family != AF_INET && in[i]->sa_family != AF_INET6)
            return false;
    *family = src->sa_family == dst->sa_family ? src->sa_family : AF_INET6;
    for (int i = 0; i < 2 && *family == AF_INET6; i++) {
        if (in[i]->sa_family == AF_INET6) {
            memcpy(out[i], in[i], sizeof *out[i]);
            continue;
        }
        const struct sockaddr_in *sin = (const struct sockaddr_in *)in[i];
        memset(out[i], 0, sizeof *out[i]);
        out[i]->sin6_family = AF_INET6;
        out[i]->sin6_port = sin->sin_port;
        out[i]->sin6_addr.s6_addr[10] = out[i]->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&out[i]->sin6_addr.s6_addr[12], &sin->sin_addr, 4);
    }
    return true;
}

static size_t write_v1(uint8_t *buf, size_t cap, const struct sockaddr *src,
                       const struct sockaddr *dst)
{
    struct sockaddr_in6 src6 = { 0 }, dst6 = { 0 };
    int family;
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
    int n;
    if (!same_family(src, dst, &src6, &dst6, &family)) {
        n = snprintf((char *)buf, cap, "PROXY UNKNOWN\r\n");
    } else if (family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)src;
        const struct sockaddr_in *d = (const struct sockaddr_in *)dst;
        inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
        inet_ntop(AF_INET, &d->sin_addr, b, sizeof b);
        n = snprintf((char *)buf, cap, "PROXY TCP4 %s %s %u %u\r\n", a, b, ntohs(s->sin_port),
                     ntohs(d->sin_port));
    } else {
        inet_ntop(AF_INET6, &src6.sin6_addr, a, sizeof a);
        inet_ntop(AF_INET6, &dst6.sin6_addr, b, sizeof b);
        n = snprintf((char *)buf, cap, "PROXY TCP6 %s %s %u %u\r\n", a, b,
                     ntohs(src6.sin6_port), ntohs(dst6.sin6_port));
    }
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* A growing v2 header; `failed` once something did not fit. */
struct out {
    uint8_t *buf;
    size_t cap, len;
    bool failed;
};

static void put(struct out *o, const void *data, size_t n)
{
    if (o->failed || o->cap - o->len < n) {
        o->failed = true;
        return;
    }
    memcpy(o->buf + o->len, data, n);
    o->len += n;
}

static void put_tlv_head(struct out *o, uint8_t type, size_t len)
{
    uint8_t head[3] = { type, (uint8_t)(len >> 8), (uint8_t)len };
    put(o, head, sizeof head);
}

static void put_tlv(struct out *o, uint8_t type, const void *value, size_t len)
{
    if (len > 255) {    /* SNI and ALPN names never are; refuse rather than cut */
        o->failed = true;
        return;
    }
    put_tlv_head(o, type, len);
    put(o, value, len);
}

static void put_tls_tlvs(struct out *o, const struct proxyproto_tls *tls)
{
    if (tls->alpn && tls->alpn_len > 0)
        put_tlv(o, PP2_TYPE_ALPN, tls->alpn, tls->alpn_len);
    if (tls->sni)
        put_tlv(o, PP2_TYPE_AUTHORITY, tls->sni, strlen(tls->sni));
    size_t version_len = tls->version ? strlen(tls->version) : 0;
    if (version_len == 0 || version_len > 64)
        return;
    /* client: TLS; verify: 0 (no client certificate was asked to be verified here) */
    uint8_t ssl[5] = { PP2_CLIENT_SSL, 0, 0, 0, 0 };
    put_tlv_head(o, PP2_TYPE_SSL, sizeof ssl + 3 + version_len);
    put(o, ssl, sizeof ssl);
    put_tlv(o, PP2_SUBTYPE_SSL_VERSION, tls->version, version_len);
}

static void put_addresses(struct out *o, const struct sockaddr *src, const struct sockaddr *dst)
{
    struct sockaddr_in6 src6 = { 0 }, dst6 = { 0 };
    int family;
    uint8_t fam;
    if (!same_family(src, dst, &src6, &dst6, &family)) {
        fam = 0x00;     /* AF_UNSPEC: the receiver uses its own addresses */
        put(o, &fam, 1);
        put(o, "\0\0", 2);
        return;
    }
    fam = family == AF_INET ? 0x11 : 0x21;
    put(o, &fam, 1);
    put(o, family == AF_INET ? "\0\x0c" : "\0\x24", 2);
    if (family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)src;
        const struct sockaddr_in *d = (const struct sockaddr_in *)dst;
        put(o, &s->sin_addr, 4);
        put(o, &d->sin_addr, 4);
        put(o, &s->sin_port, 2);
        put(o, &d->sin_port, 2);
        return;
    }
    put(o, &src6.sin6_addr, 16);
    put(o, &dst6.sin6_addr, 16);
    put(o, &src6.sin6_port, 2);
    put(o, &dst6.sin6_port, 2);
}

static size_t write_v2(uint8_t *buf, size_t cap, const struct sockaddr *src,
                       const struct sockaddr *dst, const struct proxyproto_tls *tls)
{
    struct out o = { .buf = buf, .cap = cap };
    uint8_t version_command = 0x21;     /* version 2, PROXY */
    put(&o, proxyproto_v2_signature, sizeof proxyproto_v2_signature);
    put(&o, &version_command, 1);
    put_addresses(&o, src, dst);
    if (tls)
        put_tls_tlvs(&o, tls);
    if (o.failed)
        return 0;
    size_t rest = o.len - PROXYPROTO_V2_FIXED;
    buf[14] = (uint8_t)(rest >> 8);
    buf[15] = (uint8_t)rest;
    return o.len;
}

size_t proxyproto_write(uint8_t *buf, size_t cap, int version, const struct sockaddr *src,
                        const struct sockaddr *dst, const struct proxyproto_tls *tls)
{
    return version == 1 ? write_v1(buf, cap, src, dst) : write_v2(buf, cap, src, dst, tls);
}

size_t proxyproto_write_local(uint8_t *buf, size_t cap, int version)
{
    static const char v1[] = "PROXY UNKNOWN\r\n";
    if (version == 1) {
        if (cap < sizeof v1 - 1)
            return 0;
        memcpy(buf, v1, sizeof v1 - 1);
        return sizeof v1 - 1;
    }
    if (cap < PROXYPROTO_V2_FIXED)
        return 0;
    memcpy(buf, proxyproto_v2_signature, sizeof proxyproto_v2_signature);
    buf[12] = 0x20;     /* version 2, LOCAL */
    buf[13] = buf[14] = buf[15] = 0;
    return PROXYPROTO_V2_FIXED;
}

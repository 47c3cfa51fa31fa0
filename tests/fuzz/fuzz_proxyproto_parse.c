/* Fuzzes the PROXY protocol parser (proxy/proxyproto/parse.c) on any bytes, and the
 * writer on what it accepted. Checks: no crash or over-read; a verdict that is
 * INCOMPLETE, a named error, or a length within the input and the size limit; the
 * same verdict again; every prefix INCOMPLETE or that verdict (shorter than a valid
 * header: INCOMPLETE); TLV lookups inside the header; and a header written back (v1
 * and v2) from the addresses read parses to the same addresses. */
#include <stdlib.h>
#include <string.h>

#include "proxyproto/proxyproto.h"

static bool same_addresses(const struct proxyproto_header *a, const struct proxyproto_header *b)
{
    return a->is_local == b->is_local &&
           memcmp(&a->src, &b->src, sizeof a->src) == 0 &&
           memcmp(&a->dst, &b->dst, sizeof a->dst) == 0;
}

static void check_prefixes(const uint8_t *data, size_t size, int whole)
{
    /* every cut for short inputs, a spread of them for long ones */
    size_t step = size <= 256 ? 1 : size / 97 + 1;
    for (size_t cut = 0; cut < size; cut += step) {
        struct proxyproto_header h;
        int rc = proxyproto_parse(data, cut, &h);
        if (rc != PROXYPROTO_INCOMPLETE && rc != whole)
            abort();
        if (whole > 0 && cut < (size_t)whole && rc != PROXYPROTO_INCOMPLETE)
            abort();
    }
}

static void check_tlvs(const struct proxyproto_header *h, const uint8_t *data, int len)
{
    for (unsigned type = 0; type < 256; type += 17) {
        size_t n;
        const uint8_t *v = proxyproto_tlv(h, (uint8_t)type, &n);
        if (v && (v < data || v + n > data + len))
            abort();
    }
}

static void check_round_trip(const struct proxyproto_header *h)
{
    for (int version = 1; version <= 2; version++) {
        uint8_t buf[PROXYPROTO_WRITE_MAX];
        struct proxyproto_header again;
        size_t n = proxyproto_write(buf, sizeof buf, version, (const struct sockaddr *)&h->src,
                                    (const struct sockaddr *)&h->dst, NULL);
        if (n == 0 || proxyproto_parse(buf, n, &again) != (int)n || !same_addresses(h, &again))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxyproto_header h, h2;
    int rc = proxyproto_parse(data, size, &h);
    if (rc == 0 || rc > (int)size || rc > PROXYPROTO_MAX_HEADER ||
        (rc < 0 && strcmp(proxyproto_error_str(rc), "?") == 0))
        abort();
    if (proxyproto_parse(data, size, &h2) != rc || (rc > 0 && !same_addresses(&h, &h2)))
        abort();
    check_prefixes(data, size, rc);
    if (rc <= 0)
        return 0;
    if (h.version != 1 && h.version != 2)
        abort();
    check_tlvs(&h, data, rc);
    if (!h.is_local)
        check_round_trip(&h);
    return 0;
}

/* HTTP/1.1 responses and trailers to HTTP/2 header lists (RFC 9113 §8); requests go
 * the other way in translate.c. The lists point into the parsed head and into the
 * caller's storage; nothing is allocated. */
#include "http2/translate.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "http1/internal.h"

static void set_nv(nghttp2_nv *nv, const char *name, size_t name_len, const char *value,
                   size_t value_len)
{
    /* nghttp2 takes non-const pointers but only reads them when a list is submitted. */
    nv->name = (uint8_t *)name;
    nv->namelen = name_len;
    nv->value = (uint8_t *)value;
    nv->valuelen = value_len;
    nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* Appends a field with its name lower-cased into out->names; -1 when out is full. */
static int add_lowered(struct h2_response_fields *out, size_t *names_used, const char *name,
                       size_t name_len, const char *value, size_t value_len)
{
    if (out->count == out->cap || out->names_cap - *names_used < name_len)
        return -1;
    char *lower = out->names + *names_used;
    for (size_t i = 0; i < name_len; i++)
        lower[i] = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] | 0x20) : name[i];
    *names_used += name_len;
    set_nv(&out->nva[out->count++], lower, name_len, value, value_len);
    return 0;
}

/* Hop-by-hop fields (those Connection names included) and framing do not exist in
 * HTTP/2 (RFC 9113 §8.2.2); the parser already flagged them. */
static bool is_dropped(const struct http1_header *h)
{
    return (h->flags & (HTTP1_HF_HOP_BY_HOP | HTTP1_HF_FRAMING)) != 0;
}

static void add_status(struct h2_response_fields *out, int status)
{
    out->status[0] = (char)('0' + status / 100 % 10);
    out->status[1] = (char)('0' + status / 10 % 10);
    out->status[2] = (char)('0' + status % 10);
    out->status[3] = '\0';
    set_nv(&out->nva[out->count++], ":status", 7, out->status, 3);
}

/* The length describes the representation for HEAD and 304 too (RFC 9110 §8.6); 1xx
 * and 204 must not carry one. */
static bool has_length_field(const struct http1_response *resp)
{
    return resp->has_content_length && resp->status >= 200 && resp->status != 204;
}

int h2_translate_response(const struct http1_response *resp, struct h2_response_fields *out)
{
    size_t names_used = 0;
    if (out->cap < resp->num_headers + 2)
        return -1;
    out->count = 0;
    add_status(out, resp->status);
    for (size_t i = 0; i < resp->num_headers; i++) {
        const struct http1_header *h = &resp->headers[i];
        if (!is_dropped(h)
            && add_lowered(out, &names_used, h->name, h->name_len, h->value, h->value_len) < 0)
            return -1;
    }
    if (has_length_field(resp)) {
        int len = snprintf(out->length, sizeof(out->length), "%" PRIu64, resp->content_length);
        set_nv(&out->nva[out->count++], "content-length", 14, out->length, (size_t)len);
    }
    return 0;
}

int h2_translate_tunnel_response(const struct http1_response *resp,
                                 struct h2_response_fields *out)
{
    static const char accept[] = "sec-websocket-accept";
    if (h2_translate_response(resp, out) < 0)
        return -1;
    memcpy(out->status, "200", 4);  /* what the first entry, :status, points at */
    size_t kept = 1;
    for (size_t i = 1; i < out->count; i++) {
        const nghttp2_nv *nv = &out->nva[i];
        if (nv->namelen != sizeof accept - 1 || memcmp(nv->name, accept, nv->namelen) != 0)
            out->nva[kept++] = *nv;
    }
    out->count = kept;
    return 0;
}

/* One "name: value\r\n" line of a trailer section at *p, OWS trimmed off the value;
 * *p moves past it. False at the blank line or when the line is not of that shape. */
static bool next_trailer_line(const char **p, const char *end, struct http1_header *h)
{
    const char *lf = memchr(*p, '\n', (size_t)(end - *p));
    if (!lf || lf == *p || lf[-1] != '\r' || lf - 1 == *p)
        return false;
    const char *colon = memchr(*p, ':', (size_t)(lf - 1 - *p));
    if (!colon || colon == *p)
        return false;
    const char *v = colon + 1, *v_end = lf - 1;
    while (v < v_end && http1_is_ows(*v))
        v++;
    while (v_end > v && http1_is_ows(v_end[-1]))
        v_end--;
    h->name = *p;
    h->name_len = (size_t)(colon - *p);
    h->value = v;
    h->value_len = (size_t)(v_end - v);
    *p = lf + 1;
    return true;
}

int h2_translate_trailer_section(const char *section, size_t len,
                                 struct h2_response_fields *out)
{
    const char *p = section, *end = section + len;
    size_t names_used = 0;
    struct http1_header h;
    out->count = 0;
    while (next_trailer_line(&p, end, &h)) {
        http1_classify_header(&h);
        if (!is_dropped(&h)
            && add_lowered(out, &names_used, h.name, h.name_len, h.value, h.value_len) < 0)
            return -1;
    }
    /* Only the blank line may be left. */
    return end - p == 2 && p[0] == '\r' && p[1] == '\n' ? 0 : -1;
}

/* Body streaming: moves message bodies between evbuffers as they arrive, never
 * buffering a whole body and never copying what libevent can move by chains. */
#include <string.h>

#include <event2/buffer.h>

#include "http/exchange.h"

/* Chains looked at per decoder pass when relaying chunked bodies verbatim. */
enum { PEEK_VECS = 16 };

void http_body_init(struct http_body *b, enum http1_body_kind kind, uint64_t length,
                    const struct http1_limits *lim, bool dechunk)
{
    memset(b, 0, sizeof *b);
    b->kind = kind;
    b->remaining = length;
    b->dechunk = dechunk;
    if (kind == HTTP1_BODY_CHUNKED)
        http1_chunked_init(&b->chunked, lim);
    b->done = kind == HTTP1_BODY_NONE || (kind == HTTP1_BODY_LENGTH && length == 0);
}

/* Verbatim: run the decoder over the chains to find where the body ends, then move
 * exactly that many bytes in one go. */
static int move_chunked_verbatim(struct http_body *b, struct evbuffer *in,
                                 struct evbuffer *out, uint64_t *moved)
{
    while (!b->done && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[PEEK_VECS];
        int n = evbuffer_peek(in, -1, NULL, v, PEEK_VECS);
        if (n > PEEK_VECS)
            n = PEEK_VECS;
        size_t total = 0;
        for (int i = 0; i < n && !b->done; i++) {
            const char *p = v[i].iov_base;
            size_t left = v[i].iov_len;
            while (left > 0 && !b->done) {
                size_t consumed, data_len;
                int rc = http1_chunked_step(&b->chunked, p, left, &consumed, &data_len);
                if (rc < 0)
                    return rc;
                b->done = rc == HTTP1_CHUNKED_END;
                p += consumed;
                left -= consumed;
                total += consumed;
            }
        }
        if (total == 0)
            break;
        evbuffer_remove_buffer(in, out, total);
        *moved += total;
    }
    return 0;
}

/* De-chunking: forward only the payload runs; drop the framing, except the trailer
 * section when b->trailers wants it. */
static int move_chunked_payload(struct http_body *b, struct evbuffer *in, struct evbuffer *out,
                                uint64_t *moved)
{
    while (!b->done && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t consumed, data_len;
        size_t trailer_before = http1_chunked_trailer_bytes(&b->chunked);
        int rc = http1_chunked_step(&b->chunked, v.iov_base, v.iov_len, &consumed, &data_len);
        if (rc < 0)
            return rc;
        b->done = rc == HTTP1_CHUNKED_END;
        /* Trailer bytes end what was consumed (no payload follows them). */
        size_t trailer = b->trailers ? http1_chunked_trailer_bytes(&b->chunked) - trailer_before : 0;
        evbuffer_drain(in, consumed - data_len - trailer);
        if (trailer > 0)
            evbuffer_remove_buffer(in, b->trailers, trailer);
        if (data_len > 0)
            evbuffer_remove_buffer(in, out, data_len);
        *moved += data_len;
    }
    return 0;
}

int http_body_move(struct http_body *b, struct evbuffer *in, struct evbuffer *out,
                   uint64_t *moved)
{
    *moved = 0;
    if (b->done)
        return 0;
    size_t avail = evbuffer_get_length(in);
    switch (b->kind) {
    case HTTP1_BODY_NONE:
        b->done = true;
        return 0;
    case HTTP1_BODY_LENGTH: {
        size_t n = b->remaining < avail ? (size_t)b->remaining : avail;
        if (n > 0)
            evbuffer_remove_buffer(in, out, n);
        b->remaining -= n;
        b->done = b->remaining == 0;
        *moved = n;
        return 0;
    }
    case HTTP1_BODY_UNTIL_CLOSE:
        evbuffer_add_buffer(out, in);
        *moved = avail;
        return 0;
    case HTTP1_BODY_CHUNKED:
        return b->dechunk ? move_chunked_payload(b, in, out, moved)
                          : move_chunked_verbatim(b, in, out, moved);
    }
    return 0;
}

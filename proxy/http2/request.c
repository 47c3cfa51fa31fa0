/* What the exchange asks of an HTTP/2 request as it starts (struct
 * http_exchange_request): the HTTP/1.1 head once the request found its route, and the
 * fields a pool balances on. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/listen.h"
#include "http/cookie.h"
#include "http/forward.h"
#include "http2/internal.h"
#include "http2/translate.h"
#include "tls/tls.h"

/* Room for an X-Client-Cert-Subject value; a Sec-WebSocket-Key (16 bytes in base64). */
enum { CERT_SUBJECT_MAX = 1024, WEBSOCKET_KEY_TEXT = 25 };

/* RFC 6455 §4.1: a nonce of 16 random bytes, base64-encoded. */
static int websocket_key(char out[WEBSOCKET_KEY_TEXT])
{
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, nonce, sizeof nonce);
    return 0;
}

/* RFC 6455 §4.2.2: the accept a server answers key with, base64(SHA-1(key GUID)). */
static int websocket_accept(const char *key, char *out, size_t size)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char text[WEBSOCKET_KEY_TEXT + sizeof guid];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    int n = snprintf(text, sizeof text, "%s%s", key, guid);
    if (n < 0 || (size_t)n >= sizeof text ||
        EVP_Digest(text, (size_t)n, md, &md_len, EVP_sha1(), NULL) != 1 ||
        size < 4 * ((md_len + 2) / 3) + 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
    return 0;
}

/* http_exchange_request.write_head: the HTTP/1.1 head of the checked request. */
int h2_request_write_head(const struct http_exchange_request *x, const char *strip_cookie,
                          struct evbuffer *out)
{
    const struct h2_request *r = x->front;
    struct http_session *s = r->st->conn->session;
    char subject[CERT_SUBJECT_MAX];
    struct http_request_rewrite rw = {
        .client_addr = s->base.peer_text,
        .is_tls = s->tls != NULL,
        .default_host = s->base.listener->cfg->listen.text,
        .strip_cookie = strip_cookie,
    };
    if (s->tls && tls_peer_subject(s->tls, subject, sizeof subject) >= 0)
        rw.cert_subject = subject;
    char key[WEBSOCKET_KEY_TEXT];
    if (r->info->is_websocket) {
        struct http_exchange *ex = &r->st->ex;
        if (websocket_key(key) < 0 ||
            websocket_accept(key, ex->upgrade_accept, sizeof ex->upgrade_accept) < 0)
            return -1;
        rw.websocket_key = key;
    }
    nghttp2_nv nva[r->st->n_fields ? r->st->n_fields : 1];
    h2_stream_fields_as_nv(r->st, nva);
    return h2_translate_request_head(nva, r->st->n_fields, r->info, &rw, out) == 0 ? 0 : -1;
}

/* Field names arrive in lower case (RFC 9113 §8.2.1): compared without case. */
static bool field_is(const struct h2_field *f, const char *name)
{
    nghttp2_vec n = nghttp2_rcbuf_get_buf(f->name);
    return n.len == strlen(name) && strncasecmp((const char *)n.base, name, n.len) == 0;
}

bool h2_request_find_header(const struct http_exchange_request *x, const char *name,
                            const char **value, size_t *value_len)
{
    const struct h2_request *r = x->front;
    for (size_t i = 0; i < r->st->n_fields; i++) {
        if (field_is(&r->st->fields[i], name)) {
            nghttp2_vec v = nghttp2_rcbuf_get_buf(r->st->fields[i].value);
            *value = (const char *)v.base;
            *value_len = v.len;
            return true;
        }
    }
    /* Host is :authority in HTTP/2. */
    if (strcasecmp(name, "host") == 0 && r->info->authority) {
        *value = r->info->authority;
        *value_len = r->info->authority_len;
        return true;
    }
    return false;
}

/* Each cookie crumb is a field of its own (RFC 9113 §8.2.3). */
bool h2_request_find_cookie(const struct http_exchange_request *x, const char *name,
                            const char **value, size_t *value_len)
{
    const struct h2_request *r = x->front;
    for (size_t i = 0; i < r->st->n_fields; i++) {
        if (!field_is(&r->st->fields[i], "cookie"))
            continue;
        nghttp2_vec v = nghttp2_rcbuf_get_buf(r->st->fields[i].value);
        if (http_cookie_find((const char *)v.base, v.len, name, value, value_len))
            return true;
    }
    return false;
}

/* The headers ferry sends to backends (see send.h). */
#include "proxyproto/send.h"

#include <openssl/ssl.h>

#include "core/session.h"

size_t proxyproto_session_header(struct session *s, enum proxy_protocol_version version,
                                 uint8_t *buf)
{
    if (version == PROXY_PROTOCOL_OFF)
        return 0;
    /* An address that cannot be known (the client socket just failed) is said as the
     * specification allows: v1 UNKNOWN, v2 AF_UNSPEC; the backend uses its own. */
    static const struct sockaddr unknown = { .sa_family = AF_UNSPEC };
    const struct sockaddr *local = session_local_addr(s, s->client_fd);
    if (!local)
        local = &unknown;
    struct proxyproto_tls tls = { 0 };
    SSL *ssl = s->client_tls;
    if (ssl && version == PROXY_PROTOCOL_V2) {
        const unsigned char *alpn = NULL;
        unsigned alpn_len = 0;
        SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
        tls.alpn = alpn;
        tls.alpn_len = alpn_len;
        tls.sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        tls.version = SSL_get_version(ssl);
    }
    return proxyproto_write(buf, PROXYPROTO_WRITE_MAX, version == PROXY_PROTOCOL_V1 ? 1 : 2,
                            &s->addrs.peer.sa, local, ssl ? &tls : NULL);
}

size_t proxyproto_check_header(enum proxy_protocol_version version, uint8_t *buf)
{
    if (version == PROXY_PROTOCOL_OFF)
        return 0;
    return proxyproto_write_local(buf, PROXYPROTO_WRITE_MAX, version == PROXY_PROTOCOL_V1 ? 1 : 2);
}

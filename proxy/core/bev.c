#include "core/bev.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "tls/tls.h"

void bev_close(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (ssl)
        tls_close_notify(ssl);
    bufferevent_free(bev);
}

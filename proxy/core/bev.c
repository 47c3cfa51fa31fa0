#include "core/bev.h"

#include <event2/buffer.h>
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

enum sockio_result bev_read_socket(struct bufferevent *bev, size_t max, size_t *got)
{
    /* The socket bufferevent keeps the end of its input frozen for everyone but its
     * own read callback; append the way that callback does. */
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_unfreeze(in, 0);
    enum sockio_result result = sockio_read(bufferevent_getfd(bev), in, max, got);
    evbuffer_freeze(in, 0);
    return result;
}

/* Sticky sessions: the token a cookie carries to name a backend (balance.h). */
#include <string.h>

#include "balance/balance.h"

uint64_t balance_sticky_token(const char *pool, const char *backend)
{
    /* "pool\0backend": no two (pool, backend) pairs give the same bytes. */
    size_t p = strlen(pool), b = strlen(backend);
    char buf[p + 1 + b];
    memcpy(buf, pool, p);
    buf[p] = '\0';
    memcpy(buf + p + 1, backend, b);
    return balance_hash(buf, sizeof buf);
}

void balance_sticky_encode(uint64_t token, char out[BALANCE_STICKY_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = BALANCE_STICKY_LEN - 1; i >= 0; i--) {
        out[i] = digits[token & 0xf];
        token >>= 4;
    }
    out[BALANCE_STICKY_LEN] = '\0';
}

bool balance_sticky_decode(const char *value, size_t len, uint64_t *token)
{
    uint64_t t = 0;
    if (len != BALANCE_STICKY_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = value[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            return false;
        t = t << 4 | d;
    }
    *token = t;
    return true;
}

/* Fuzzes what the admin API makes of a request (proxy/admin/request.c): any bytes,
 * with or without a required token (chosen by the first byte). Checks: no crash or
 * leak, a decision only for a whole head, an endpoint only with status 200, never an
 * endpoint without the token when one is required, and a 405 always names its
 * methods. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/request.h"

static const char TOKEN[] = "fuzz-token";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *token = data[0] & 1 ? TOKEN : NULL;
    bool enabled = (data[0] & 2) == 0;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    struct admin_request r;
    int decided = admin_request_decide(buf, len, token, enabled, &r);
    if (decided != 0 && decided != 1)
        abort();
    if (!decided)
        return 0;
    if (r.endpoint != ADMIN_NONE && r.status != 200)
        abort();
    if (r.endpoint == ADMIN_NONE && (r.status < 400 || r.status > 499 || !r.error))
        abort();
    if (r.endpoint != ADMIN_NONE && (!enabled || (token && !memmem(buf, len, TOKEN, strlen(TOKEN)))))
        abort();
    if (r.status == 405 && !r.allow)
        abort();
    return 0;
}

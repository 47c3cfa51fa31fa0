/* Fuzzes the SRV answer parser (proxy/discovery/wire.c) on any bytes. The input is
 * read as the answer to the query for _http._tcp.api.test whose id is the input's
 * first two bytes (so seeds that are real answers stay answers). Checks: no crash or over-read; a known status; the
 * same status and records again; an answer's records within DNS_WIRE_SRV_MAX, each
 * target a NUL-terminated name of printable characters without empty labels that a
 * query can be built for. */
#include <stdlib.h>
#include <string.h>

#include "discovery/wire.h"

#define NAME "_http._tcp.api.test"

static void check_target(const char *target)
{
    size_t len = strnlen(target, DNS_WIRE_NAME_MAX);
    uint8_t query[DNS_WIRE_NAME_MAX + 64];
    if (len == DNS_WIRE_NAME_MAX || len > 253)
        abort();
    if (len == 0)
        return;
    for (size_t i = 0; i < len; i++)
        if (target[i] <= ' ' || target[i] >= 0x7f ||
            (target[i] == '.' && (i == 0 || i + 1 == len || target[i + 1] == '.')))
            abort();
    if (dns_wire_srv_query(1, target, query, sizeof query) < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dns_srv_answer a, again;
    uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
    enum dns_wire_status s = dns_wire_srv_parse(data, size, id, NAME, &a);
    if (s > DNS_WIRE_NOT_OURS || dns_wire_srv_parse(data, size, id, NAME, &again) != s)
        abort();
    if (s == DNS_WIRE_ANSWER) {
        if (a.n > DNS_WIRE_SRV_MAX || a.n != again.n || a.ttl != again.ttl ||
            memcmp(a.records, again.records, a.n * sizeof a.records[0]) != 0)
            abort();
        for (size_t i = 0; i < a.n; i++)
            check_target(a.records[i].target);
    }
    return 0;
}

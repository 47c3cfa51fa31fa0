/* wire — SRV queries and answers in DNS wire format (RFC 1035, RFC 2782) (pure; the
 * answer parser is fuzzed).
 *
 * libevent 2.1's evdns asks for A, AAAA and PTR records only, so SRV lookups are
 * ferry's own: one question, recursion desired, an EDNS0 OPT record offering
 * DNS_WIRE_UDP_SIZE bytes (answers with many targets fit without TCP). The parser
 * accepts only the answer to the question asked (same id, name, type and class),
 * reads every SRV record of the answer section, and refuses anything malformed:
 * lengths past the end, compression loops, names over 255 bytes, labels that are not
 * printable.
 */
#ifndef FERRY_DISCOVERY_WIRE_H
#define FERRY_DISCOVERY_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define DNS_WIRE_UDP_SIZE 1232          /* the DNS flag day 2020 figure */
#define DNS_WIRE_NAME_MAX 256           /* 253 characters, a NUL, room to spare */
#define DNS_WIRE_SRV_MAX 64             /* records read from one answer */

struct dns_srv_record {
    uint16_t priority, weight, port;
    char target[DNS_WIRE_NAME_MAX];     /* without the final dot; "" = "." (no service) */
};

struct dns_srv_answer {
    struct dns_srv_record records[DNS_WIRE_SRV_MAX];
    size_t n;
    uint32_t ttl;                       /* the least TTL of the records (and CNAMEs) read */
};

enum dns_wire_status {
    DNS_WIRE_ANSWER,        /* NOERROR: the records (none: the name has no SRV records) */
    DNS_WIRE_NXDOMAIN,
    DNS_WIRE_SERVFAIL,
    DNS_WIRE_REFUSED,
    DNS_WIRE_OTHER_RCODE,   /* FORMERR, NOTIMP, ... */
    DNS_WIRE_TRUNCATED,     /* TC set: the answer did not fit DNS_WIRE_UDP_SIZE */
    DNS_WIRE_TOO_MANY,      /* more than DNS_WIRE_SRV_MAX records */
    DNS_WIRE_MALFORMED,
    DNS_WIRE_NOT_OURS,      /* another id or question: not the answer (ignore it) */
};

/* Writes the query for the SRV records of `name` (no final dot needed) into out;
 * returns its length, or -1 when name is not a valid DNS name or out is too small. */
int dns_wire_srv_query(uint16_t id, const char *name, uint8_t *out, size_t size);

/* Reads msg[0..len) as the answer to that query. */
enum dns_wire_status dns_wire_srv_parse(const uint8_t *msg, size_t len, uint16_t id,
                                        const char *name, struct dns_srv_answer *out);

/* "nxdomain", "truncated", ... for messages. */
const char *dns_wire_status_name(enum dns_wire_status status);

#endif

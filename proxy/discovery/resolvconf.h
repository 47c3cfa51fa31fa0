/* resolvconf — the nameservers of a resolv.conf text (pure).
 *
 * Host names are looked up by evdns, which reads /etc/resolv.conf itself (nameservers,
 * search domains, options); SRV queries are ferry's own (wire.h) and go to the same
 * nameservers, read here.
 */
#ifndef FERRY_DISCOVERY_RESOLVCONF_H
#define FERRY_DISCOVERY_RESOLVCONF_H

#include <stddef.h>
#include <sys/socket.h>

/* The addresses of the "nameserver ADDRESS" lines of text, in order, with port 53
 * (at most max; lines that do not parse are skipped). Returns how many were found. */
size_t dns_resolv_conf_nameservers(const char *text, struct sockaddr_storage *out,
                                   socklen_t *lens, size_t max);

#endif

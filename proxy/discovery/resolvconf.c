#include "discovery/resolvconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define DNS_PORT 53

/* One address (an IPv6 one may carry "%scope", which is dropped); 0 or -1. */
static int parse_nameserver(const char *word, size_t len, struct sockaddr_storage *out,
                            socklen_t *out_len)
{
    char text[INET6_ADDRSTRLEN + 16];
    const char *scope = memchr(word, '%', len);
    if (scope)
        len = (size_t)(scope - word);
    if (len == 0 || len >= sizeof text)
        return -1;
    memcpy(text, word, len);
    text[len] = '\0';
    memset(out, 0, sizeof *out);
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(DNS_PORT);
        *out_len = sizeof *in;
        return 0;
    }
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(DNS_PORT);
        *out_len = sizeof *in6;
        return 0;
    }
    return -1;
}

static size_t skip_blanks(const char *line, size_t i, size_t end)
{
    while (i < end && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return i;
}

size_t dns_resolv_conf_nameservers(const char *text, struct sockaddr_storage *out,
                                   socklen_t *lens, size_t max)
{
    static const char KEYWORD[] = "nameserver";
    size_t found = 0;
    for (const char *line = text; *line && found < max;) {
        const char *newline = strchr(line, '\n');
        size_t end = newline ? (size_t)(newline - line) : strlen(line);
        size_t i = skip_blanks(line, 0, end);
        size_t k = sizeof KEYWORD - 1;
        if (end - i > k && strncmp(line + i, KEYWORD, k) == 0 &&
            (line[i + k] == ' ' || line[i + k] == '\t')) {
            size_t start = skip_blanks(line, i + k, end), stop = start;
            while (stop < end && line[stop] != ' ' && line[stop] != '\t' && line[stop] != '\r' &&
                   line[stop] != '#' && line[stop] != ';')
                stop++;
            if (parse_nameserver(line + start, stop - start, &out[found], &lens[found]) == 0)
                found++;
        }
        line += newline ? end + 1 : end;
    }
    return found;
}

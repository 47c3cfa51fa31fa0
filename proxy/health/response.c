/* Judging an http check's answer (response.h). */
#include "health/response.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "http1/parse.h"

enum { MAX_HEADERS = 64 };

static bool status_expected(const struct cfg_health_check *hc, int status)
{
    for (size_t i = 0; i < hc->n_expect_status; i++)
        if (hc->expect_status[i] == status)
            return true;
    return false;
}

/* The first HEALTH_BODY_MAX bytes of a chunked body into out; *complete when the
 * body ended or out is full. False when the chunks are broken. */
static bool dechunk(const char *p, size_t len, char *out, size_t *out_len, bool *complete)
{
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    struct http1_chunked dec;
    http1_chunked_init(&dec, &lim);
    *out_len = 0;
    *complete = false;
    while (len > 0 && *out_len < HEALTH_BODY_MAX) {
        size_t consumed, data_len;
        int rc = http1_chunked_step(&dec, p, len, &consumed, &data_len);
        if (rc < 0)
            return false;
        size_t take = data_len < HEALTH_BODY_MAX - *out_len ? data_len : HEALTH_BODY_MAX - *out_len;
        memcpy(out + *out_len, p + consumed - data_len, take);
        *out_len += take;
        p += consumed;
        len -= consumed;
        if (rc == HTTP1_CHUNKED_END) {
            *complete = true;
            return true;
        }
    }
    *complete = *out_len >= HEALTH_BODY_MAX;
    return true;
}

/* The body bytes to look in, once there are enough of them (NULL: wait for more). */
static const char *body_of(const struct http1_response *resp, const char *body, size_t avail,
                           bool eof, char *scratch, size_t *body_len, bool *broken)
{
    bool complete;
    *broken = false;
    switch (resp->body) {
    case HTTP1_BODY_NONE:
        *body_len = 0;
        return body;
    case HTTP1_BODY_LENGTH: {
        uint64_t want = resp->content_length < HEALTH_BODY_MAX ? resp->content_length
                                                                : HEALTH_BODY_MAX;
        *body_len = avail < want ? avail : (size_t)want;
        return avail >= want || eof ? body : NULL;
    }
    case HTTP1_BODY_CHUNKED:
        if (!dechunk(body, avail, scratch, body_len, &complete)) {
            *broken = true;
            return NULL;
        }
        return complete || eof ? scratch : NULL;
    case HTTP1_BODY_UNTIL_CLOSE:
        *body_len = avail < HEALTH_BODY_MAX ? avail : HEALTH_BODY_MAX;
        return avail >= HEALTH_BODY_MAX || eof ? body : NULL;
    }
    return NULL;
}

static bool contains(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (n > len)
        return false;
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

enum health_judgement health_judge_response(const char *buf, size_t len, bool eof,
                                            const struct cfg_health_check *hc, char *reason,
                                            size_t reason_size)
{
    struct http1_header headers[MAX_HEADERS];
    struct http1_response resp = { .headers = headers };
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    lim.max_headers = MAX_HEADERS;
    int rc = http1_parse_response(buf, len, &lim, HTTP1_METHOD_GET, &resp);
    if (rc == HTTP1_INCOMPLETE && !eof)
        return HEALTH_NEED_MORE;
    if (rc < 0) {
        snprintf(reason, reason_size, "GET %s: %s", hc->path,
                 rc == HTTP1_INCOMPLETE ? "closed before a whole response head"
                                        : http1_error_str(rc));
        return HEALTH_FAIL;
    }
    if (!status_expected(hc, resp.status)) {
        snprintf(reason, reason_size, "GET %s answered %d", hc->path, resp.status);
        return HEALTH_FAIL;
    }
    if (!hc->expect_body) {
        snprintf(reason, reason_size, "GET %s answered %d", hc->path, resp.status);
        return HEALTH_PASS;
    }
    char scratch[HEALTH_BODY_MAX];
    size_t body_len;
    bool broken;
    const char *body = body_of(&resp, buf + rc, len - (size_t)rc, eof, scratch, &body_len, &broken);
    if (broken) {
        snprintf(reason, reason_size, "GET %s answered %d with broken chunks", hc->path,
                 resp.status);
        return HEALTH_FAIL;
    }
    if (!body)
        return HEALTH_NEED_MORE;
    bool found = contains(body, body_len, hc->expect_body);
    snprintf(reason, reason_size, "GET %s answered %d %s \"%.40s\" in its body", hc->path,
             resp.status, found ? "with" : "without", hc->expect_body);
    return found ? HEALTH_PASS : HEALTH_FAIL;
}

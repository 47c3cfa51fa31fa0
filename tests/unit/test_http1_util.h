/* Shared helpers for the http1 parser tests (included by each test_http1_*.c).
 *
 * Every parse runs on an exact-size heap copy of the input, so ASan reports any read
 * past the bytes the parser was given. Split helpers re-run the parser on every prefix
 * and check the streaming contract: a prefix of a valid head is HTTP1_INCOMPLETE, a
 * prefix of an invalid one is HTTP1_INCOMPLETE or the same error. */
#ifndef TEST_HTTP1_UTIL_H
#define TEST_HTTP1_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http1/parse.h"

#define T_MAX_HEADERS 32

struct parsed_req {
    int rc;
    char *buf; /* owned: exact-size copy the fields point into */
    struct http1_request req;
    struct http1_header headers[T_MAX_HEADERS];
};

struct parsed_resp {
    int rc;
    char *buf; /* owned */
    struct http1_response resp;
    struct http1_header headers[T_MAX_HEADERS];
};

static inline struct http1_limits t_limits(void)
{
    struct http1_limits lim = HTTP1_LIMITS_DEFAULT;
    lim.max_headers = T_MAX_HEADERS;
    return lim;
}

static inline char *t_copy(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

static inline int t_parse_req_lim(struct parsed_req *p, const char *s, size_t len,
                                  const struct http1_limits *lim)
{
    memset(p, 0, sizeof(*p));
    p->buf = t_copy(s, len);
    p->req.headers = p->headers;
    p->rc = http1_parse_request(p->buf, len, lim, &p->req);
    return p->rc;
}

static inline int t_parse_req(struct parsed_req *p, const char *s)
{
    struct http1_limits lim = t_limits();
    return t_parse_req_lim(p, s, strlen(s), &lim);
}

static inline int t_parse_resp_lim(struct parsed_resp *p, const char *s, size_t len,
                                   const struct http1_limits *lim, enum http1_method m)
{
    memset(p, 0, sizeof(*p));
    p->buf = t_copy(s, len);
    p->resp.headers = p->headers;
    p->rc = http1_parse_response(p->buf, len, lim, m, &p->resp);
    return p->rc;
}

static inline int t_parse_resp(struct parsed_resp *p, const char *s, enum http1_method m)
{
    struct http1_limits lim = t_limits();
    return t_parse_resp_lim(p, s, strlen(s), &lim, m);
}

static inline void t_free_req(struct parsed_req *p)
{
    free(p->buf);
    p->buf = NULL;
}

static inline void t_free_resp(struct parsed_resp *p)
{
    free(p->buf);
    p->buf = NULL;
}

/* Parses s and frees it: for tests that only need the return value. */
static inline int t_req_rc(const char *s)
{
    struct parsed_req p;
    int rc = t_parse_req(&p, s);
    t_free_req(&p);
    return rc;
}

static inline int t_resp_rc(const char *s, enum http1_method m)
{
    struct parsed_resp p;
    int rc = t_parse_resp(&p, s, m);
    t_free_resp(&p);
    return rc;
}

/* Offset of a borrowed pointer in its buffer, -1 for NULL, so results of parses of
 * different copies can be compared. */
static inline long t_off(const char *ptr, const char *buf)
{
    return ptr ? (long)(ptr - buf) : -1;
}

static inline void t_assert_same_headers(const struct http1_header *a, const char *abuf,
                                         const struct http1_header *b, const char *bbuf,
                                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t_off(a[i].name, abuf), t_off(b[i].name, bbuf));
        assert_int_equal(a[i].name_len, b[i].name_len);
        assert_int_equal(t_off(a[i].value, abuf), t_off(b[i].value, bbuf));
        assert_int_equal(a[i].value_len, b[i].value_len);
        assert_int_equal(a[i].id, b[i].id);
        assert_int_equal(a[i].flags, b[i].flags);
    }
}

static inline void t_assert_same_req(const struct parsed_req *a, const struct parsed_req *b)
{
    assert_int_equal(a->rc, b->rc);
    if (a->rc <= 0)
        return;
    const struct http1_request *x = &a->req, *y = &b->req;
    assert_int_equal(t_off(x->method, a->buf), t_off(y->method, b->buf));
    assert_int_equal(x->method_len, y->method_len);
    assert_int_equal(x->method_id, y->method_id);
    assert_int_equal(t_off(x->target, a->buf), t_off(y->target, b->buf));
    assert_int_equal(x->target_len, y->target_len);
    assert_int_equal(x->target_form, y->target_form);
    assert_int_equal(t_off(x->path, a->buf), t_off(y->path, b->buf));
    assert_int_equal(x->path_len, y->path_len);
    assert_int_equal(x->minor_version, y->minor_version);
    assert_int_equal(x->num_headers, y->num_headers);
    t_assert_same_headers(a->headers, a->buf, b->headers, b->buf, x->num_headers);
    assert_int_equal(t_off(x->host, a->buf), t_off(y->host, b->buf));
    assert_int_equal(x->host_len, y->host_len);
    assert_int_equal(x->body, y->body);
    assert_int_equal(x->content_length, y->content_length);
    assert_int_equal(x->keep_alive, y->keep_alive);
    assert_int_equal(x->is_upgrade, y->is_upgrade);
    assert_int_equal(x->expect_continue, y->expect_continue);
}

static inline void t_assert_same_resp(const struct parsed_resp *a, const struct parsed_resp *b)
{
    assert_int_equal(a->rc, b->rc);
    if (a->rc <= 0)
        return;
    const struct http1_response *x = &a->resp, *y = &b->resp;
    assert_int_equal(x->status, y->status);
    assert_int_equal(t_off(x->reason, a->buf), t_off(y->reason, b->buf));
    assert_int_equal(x->reason_len, y->reason_len);
    assert_int_equal(x->num_headers, y->num_headers);
    t_assert_same_headers(a->headers, a->buf, b->headers, b->buf, x->num_headers);
    assert_int_equal(x->body, y->body);
    assert_int_equal(x->content_length, y->content_length);
    assert_int_equal(x->keep_alive, y->keep_alive);
    assert_int_equal(x->is_interim, y->is_interim);
    assert_int_equal(x->is_upgrade, y->is_upgrade);
}

/* Parses s whole, then every prefix; returns the whole result. */
static inline int t_req_every_split(const char *s, size_t len)
{
    struct http1_limits lim = t_limits();
    struct parsed_req whole, part;
    int rc = t_parse_req_lim(&whole, s, len, &lim);
    for (size_t k = 0; k < len; k++) {
        t_parse_req_lim(&part, s, k, &lim);
        if (rc > 0 && k >= (size_t)rc)
            t_assert_same_req(&whole, &part);
        else if (part.rc != HTTP1_INCOMPLETE)
            assert_int_equal(part.rc, rc);
        t_free_req(&part);
    }
    t_free_req(&whole);
    return rc;
}

static inline int t_resp_every_split(const char *s, size_t len, enum http1_method m)
{
    struct http1_limits lim = t_limits();
    struct parsed_resp whole, part;
    int rc = t_parse_resp_lim(&whole, s, len, &lim, m);
    for (size_t k = 0; k < len; k++) {
        t_parse_resp_lim(&part, s, k, &lim, m);
        if (rc > 0 && k >= (size_t)rc)
            t_assert_same_resp(&whole, &part);
        else if (part.rc != HTTP1_INCOMPLETE)
            assert_int_equal(part.rc, rc);
        t_free_resp(&part);
    }
    t_free_resp(&whole);
    return rc;
}

/* Request errors: the whole message and every prefix agree. */
#define assert_req_error(msg, err) assert_int_equal(t_req_every_split((msg), strlen(msg)), (err))
#define assert_resp_error(msg, m, err) \
    assert_int_equal(t_resp_every_split((msg), strlen(msg), (m)), (err))

static inline bool t_span_eq(const char *p, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(p, s, len) == 0;
}

#define assert_span(p, len, s) assert_true(t_span_eq((p), (len), (s)))

#endif

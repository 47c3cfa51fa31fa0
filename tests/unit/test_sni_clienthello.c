/* sni clienthello: real ClientHellos from OpenSSL (over memory BIOs) and synthetic
 * ones from a builder that remembers where every length field is, so each can be
 * corrupted. Every input is handed over in an exact-size heap copy, so ASan reports
 * any read past len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/ssl.h>

#include "sni/clienthello.h"

#define BUF_MAX 32768

/* ---- calling the parser ----------------------------------------------------------- */

static int sni(const unsigned char *in, size_t len, char name[256])
{
    unsigned char *copy = len ? malloc(len) : NULL;
    assert_true(len == 0 || copy != NULL);
    if (len)
        memcpy(copy, in, len);
    memset(name, 'x', 256);
    int rc = clienthello_sni(copy, len, name);
    free(copy);
    if (rc != CLIENTHELLO_SNI)
        assert_string_equal(name, "");
    return rc;
}

static void assert_result(const unsigned char *in, size_t len, int want, const char *want_name)
{
    char name[256];
    assert_int_equal(sni(in, len, name), want);
    assert_string_equal(name, want_name ? want_name : "");
}

/* Every proper prefix is INCOMPLETE (or, for a bad input, already the same verdict);
 * the whole gives want. */
static void assert_every_split(const unsigned char *in, size_t len, int want,
                               const char *want_name)
{
    char name[256];
    bool is_error = want < CLIENTHELLO_INCOMPLETE;
    for (size_t k = 0; k < len; k++) {
        int rc = sni(in, k, name);
        if (rc != CLIENTHELLO_INCOMPLETE && !(is_error && rc == want))
            fail_msg("prefix of %zu/%zu bytes: %d (%s)", k, len, rc, clienthello_result_str(rc));
    }
    assert_result(in, len, want, want_name);
}

/* ---- real hellos from OpenSSL ------------------------------------------------------ */

struct ossl_opts {
    const char *sni;          /* NULL: none */
    int max_version;          /* 0: library default (TLS 1.3) */
    unsigned max_fragment;    /* 0: default record size */
    bool long_alpn;           /* make the hello over 1 KiB */
};

/* The client's first flight; returns its length. */
static size_t openssl_hello(const struct ossl_opts *o, unsigned char *out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    if (o->max_version)
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, o->max_version), 1);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    assert_true(rbio && wbio);
    SSL_set_bio(ssl, rbio, wbio); /* ssl owns both */
    if (o->sni)
        assert_int_equal(SSL_set_tlsext_host_name(ssl, o->sni), 1);
    if (o->max_fragment)
        assert_int_equal(SSL_set_max_send_fragment(ssl, o->max_fragment), 1);
    if (o->long_alpn) {
        unsigned char alpn[1200];
        for (size_t i = 0; i < sizeof alpn; i += 24) {
            alpn[i] = 23;
            memset(alpn + i + 1, 'a' + (int)(i / 24) % 26, 23);
        }
        assert_int_equal(SSL_set_alpn_protos(ssl, alpn, sizeof alpn), 0);
    }
    assert_int_equal(SSL_connect(ssl), -1);
    assert_int_equal(SSL_get_error(ssl, -1), SSL_ERROR_WANT_READ);
    char *data;
    long n = BIO_get_mem_data(wbio, &data);
    assert_true(n > 0 && n <= BUF_MAX);
    memcpy(out, data, (size_t)n);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return (size_t)n;
}

static size_t record_len(const unsigned char *header)
{
    return (size_t)header[3] << 8 | header[4];
}

/* Re-cuts the payload of a one-record hello into records ending at the given payload
 * offsets (ascending), or into 1-byte records when cuts is NULL; returns the new
 * length. */
static size_t refragment(const unsigned char *in, size_t len, const size_t *cuts, size_t n_cuts,
                         unsigned char *out)
{
    size_t payload = len - 5, from = 0, o = 0;
    if (!cuts)
        n_cuts = payload - 1;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t to = i < n_cuts ? (cuts ? cuts[i] : i + 1) : payload;
        memcpy(out + o, in, 3);
        out[o + 3] = (unsigned char)((to - from) >> 8);
        out[o + 4] = (unsigned char)(to - from);
        memcpy(out + o + 5, in + 5 + from, to - from);
        o += 5 + to - from;
        from = to;
    }
    return o;
}

static void test_openssl_hellos_at_every_split(void **state)
{
    static unsigned char in[BUF_MAX];
    const int versions[] = { 0, TLS1_3_VERSION, TLS1_2_VERSION };
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        struct ossl_opts o = { .sni = "api.internal-1.example", .max_version = versions[i] };
        size_t len = openssl_hello(&o, in);
        assert_every_split(in, len, CLIENTHELLO_SNI, "api.internal-1.example");
    }
}

static void test_openssl_hello_without_sni(void **state)
{
    static unsigned char in[BUF_MAX];
    size_t len = openssl_hello(&(struct ossl_opts){ 0 }, in);
    assert_every_split(in, len, CLIENTHELLO_NO_SNI, NULL);
}

static void test_openssl_uppercase_sni_is_lowercased(void **state)
{
    static unsigned char in[BUF_MAX];
    size_t len = openssl_hello(&(struct ossl_opts){ .sni = "WWW.Example.COM" }, in);
    assert_non_null(memmem(in, len, "WWW.Example.COM", 15)); /* sent as given */
    assert_result(in, len, CLIENTHELLO_SNI, "www.example.com");
}

static void test_openssl_longest_name(void **state)
{
    static unsigned char in[BUF_MAX];
    char name[256];
    for (size_t i = 0; i < 255; i++)
        name[i] = i % 64 == 63 ? '.' : 'a' + (char)(i % 26);
    name[255] = '\0';
    size_t len = openssl_hello(&(struct ossl_opts){ .sni = name }, in);
    assert_result(in, len, CLIENTHELLO_SNI, name);
}

static void test_openssl_hello_fragmented_by_openssl(void **state)
{
    static unsigned char in[BUF_MAX];
    struct ossl_opts o = { .sni = "frag.example", .max_fragment = 512, .long_alpn = true };
    size_t len = openssl_hello(&o, in);
    assert_true(len > 1100 && record_len(in) == 512); /* at least 3 records */
    assert_every_split(in, len, CLIENTHELLO_SNI, "frag.example");
}

static void test_openssl_hello_in_two_records_cut_anywhere(void **state)
{
    static unsigned char in[BUF_MAX], out[BUF_MAX];
    size_t len = openssl_hello(&(struct ossl_opts){ .sni = "two.example" }, in);
    assert_int_equal(record_len(in), len - 5);
    for (size_t cut = 1; cut < len - 5; cut++) {
        size_t n = refragment(in, len, &cut, 1, out);
        assert_int_equal(n, len + 5);
        assert_result(out, n, CLIENTHELLO_SNI, "two.example");
    }
}

static void test_openssl_hello_in_one_byte_records(void **state)
{
    static unsigned char in[BUF_MAX], out[BUF_MAX];
    size_t len = openssl_hello(&(struct ossl_opts){ .sni = "bytes.example" }, in);
    size_t n = refragment(in, len, NULL, 0, out);
    assert_int_equal(n, 6 * (len - 5));
    assert_every_split(out, n, CLIENTHELLO_SNI, "bytes.example");
}

static void test_bytes_after_the_hello_are_ignored(void **state)
{
    static unsigned char in[BUF_MAX];
    size_t len = openssl_hello(&(struct ossl_opts){ .sni = "early.example" }, in);
    static const unsigned char early[] = { 23, 3, 3, 0, 3, 'a', 'b', 'c' };
    memcpy(in + len, early, sizeof early);
    assert_result(in, len + sizeof early, CLIENTHELLO_SNI, "early.example");
    memset(in + len, 0xee, CLIENTHELLO_MAX_PEEK); /* more than the peek limit */
    assert_result(in, len + CLIENTHELLO_MAX_PEEK, CLIENTHELLO_SNI, "early.example");
}

/* Once the handshake header is in, the whole hello's length is known; with two
 * records, from the first byte of the first one. */
static void test_bytes_needed_from_headers(void **state)
{
    static unsigned char in[BUF_MAX], out[BUF_MAX];
    size_t len = openssl_hello(&(struct ossl_opts){ .sni = "example.com" }, in);
    for (size_t k = 0; k < len; k++)
        assert_int_equal(clienthello_bytes_needed(in, k), k < 9 ? 9 : len);
    assert_int_equal(clienthello_bytes_needed(in, len), len + 1); /* always more */
    size_t cut = 40, n = refragment(in, len, &cut, 1, out);
    for (size_t k = 9; k < n; k++)
        assert_int_equal(clienthello_bytes_needed(out, k), n);
}

/* A caller that waits for clienthello_bytes_needed() between parses. */
static size_t parses_until_done(const unsigned char *in, size_t len, int want, const char *name)
{
    char got[256];
    size_t avail = 0, parses = 0;
    int rc;
    while ((rc = sni(in, avail, got)) == CLIENTHELLO_INCOMPLETE) {
        size_t needed = clienthello_bytes_needed(in, avail);
        assert_true(needed > avail && needed <= len && needed <= CLIENTHELLO_MAX_PEEK);
        avail = needed;
        parses++;
    }
    assert_int_equal(rc, want);
    assert_string_equal(got, name ? name : "");
    return parses + 1;
}

static void test_trickled_hello_costs_few_parses(void **state)
{
    static unsigned char in[BUF_MAX], out[BUF_MAX];
    size_t len = openssl_hello(&(struct ossl_opts){ .sni = "slow.example" }, in);
    assert_int_equal(parses_until_done(in, len, CLIENTHELLO_SNI, "slow.example"), 3);
    size_t n = refragment(in, len, NULL, 0, out); /* 1-byte records */
    size_t parses = parses_until_done(out, n, CLIENTHELLO_SNI, "slow.example");
    assert_true(parses < 60);
    assert_true(parses < n / 20);
}

/* ---- synthetic hellos --------------------------------------------------------------- */

struct spec {
    const char *name;            /* host_name; NULL: no server_name extension */
    size_t name_len;             /* 0: strlen(name) */
    const unsigned char *list;   /* raw ServerNameList (replaces name) */
    size_t list_len;
    bool sni_last;               /* server_name after the other extensions */
    bool sni_twice;
    bool no_extensions;
    bool byte_after_extensions;  /* inside the message */
    int session_id_len;          /* -1: 0 bytes; 0: 32 */
    int cipher_bytes;            /* -1: 0 bytes; 0: 6 */
    int compression_len;         /* -1: 0 bytes; 0: 1 */
    size_t padding;              /* extra bytes in the padding extension */
};

struct hello {
    unsigned char b[BUF_MAX];
    size_t len;
    size_t fields[16], widths[16], n_fields; /* every length field, outermost first */
};

static void put(struct hello *h, const void *p, size_t n)
{
    assert_true(h->len + n <= sizeof h->b);
    memcpy(h->b + h->len, p, n);
    h->len += n;
}

static void put_uint(struct hello *h, size_t v, size_t width)
{
    for (size_t i = width; i-- > 0;)
        h->b[h->len++] = (unsigned char)(v >> (8 * i));
}

/* Starts a length-prefixed part; end_len() fills in its length. */
static size_t begin_len(struct hello *h, size_t width)
{
    h->fields[h->n_fields] = h->len;
    h->widths[h->n_fields++] = width;
    put_uint(h, 0, width);
    return h->len;
}

static void end_len(struct hello *h, size_t start, size_t width)
{
    size_t v = h->len - start, at = start - width;
    for (size_t i = width; i-- > 0; v >>= 8)
        h->b[at + i] = (unsigned char)v;
}

static int spec_len(int v, int fallback)
{
    return v < 0 ? 0 : v ? v : fallback;
}

static void put_server_name(struct hello *h, const struct spec *s)
{
    put_uint(h, 0, 2);
    size_t ext = begin_len(h, 2);
    if (s->list) {
        put(h, s->list, s->list_len);
    } else {
        size_t list = begin_len(h, 2);
        put_uint(h, 0, 1);
        size_t name = begin_len(h, 2);
        put(h, s->name, s->name_len ? s->name_len : strlen(s->name));
        end_len(h, name, 2);
        end_len(h, list, 2);
    }
    end_len(h, ext, 2);
}

static void put_extensions(struct hello *h, const struct spec *s)
{
    size_t block = begin_len(h, 2);
    bool has_sni = s->name || s->list;
    if (has_sni && !s->sni_last)
        put_server_name(h, s);
    put_uint(h, 0x002b, 2); /* supported_versions: TLS 1.3, 1.2 */
    size_t ext = begin_len(h, 2);
    put(h, "\x04\x03\x04\x03\x03", 5); /* opaque to the parser: not a tracked field */
    end_len(h, ext, 2);
    if (has_sni && (s->sni_last || s->sni_twice))
        put_server_name(h, s);
    put_uint(h, 0x0015, 2); /* padding, last: the hello ends with a zero byte */
    static const unsigned char zeros[8192];
    ext = begin_len(h, 2);
    put(h, zeros, 3 + s->padding);
    end_len(h, ext, 2);
    end_len(h, block, 2);
}

static void build(struct hello *h, const struct spec *s)
{
    static const unsigned char record[] = { 22, 3, 1 };
    unsigned char fill[64];
    memset(h, 0, sizeof *h);
    memset(fill, 0x5a, sizeof fill);
    put(h, record, sizeof record);
    size_t rec = begin_len(h, 2);
    put_uint(h, 1, 1);
    size_t msg = begin_len(h, 3);
    put_uint(h, 0x0303, 2);
    put(h, fill, 32);
    size_t v = begin_len(h, 1);
    put(h, fill, (size_t)spec_len(s->session_id_len, 32));
    end_len(h, v, 1);
    v = begin_len(h, 2);
    put(h, fill, (size_t)spec_len(s->cipher_bytes, 6));
    end_len(h, v, 2);
    v = begin_len(h, 1);
    put(h, "\0\0\0\0", (size_t)spec_len(s->compression_len, 1));
    end_len(h, v, 1);
    if (!s->no_extensions)
        put_extensions(h, s);
    if (s->byte_after_extensions)
        put_uint(h, 0, 1);
    end_len(h, msg, 3);
    end_len(h, rec, 2);
}

static void assert_spec(const struct spec *s, int want, const char *want_name)
{
    static struct hello h;
    build(&h, s);
    assert_every_split(h.b, h.len, want, want_name);
}

static void test_synthetic_hello_at_every_split(void **state)
{
    assert_spec(&(struct spec){ .name = "synthetic.example" }, CLIENTHELLO_SNI,
                "synthetic.example");
}

static void test_sni_after_other_extensions(void **state)
{
    assert_spec(&(struct spec){ .name = "late.example", .sni_last = true }, CLIENTHELLO_SNI,
                "late.example");
}

static void test_hello_without_server_name(void **state)
{
    assert_spec(&(struct spec){ 0 }, CLIENTHELLO_NO_SNI, NULL);
    assert_spec(&(struct spec){ .no_extensions = true }, CLIENTHELLO_NO_SNI, NULL);
    assert_spec(&(struct spec){ .no_extensions = true, .session_id_len = -1 },
                CLIENTHELLO_NO_SNI, NULL);
}

static void test_synthetic_hello_in_three_records_cut_anywhere(void **state)
{
    static struct hello h;
    static unsigned char out[BUF_MAX];
    build(&h, &(struct spec){ .name = "three.example" });
    size_t payload = h.len - 5;
    for (size_t a = 1; a < payload; a++) {
        for (size_t b = a + 1; b < payload; b++) {
            size_t cuts[2] = { a, b };
            size_t n = refragment(h.b, h.len, cuts, 2, out);
            assert_result(out, n, CLIENTHELLO_SNI, "three.example");
        }
    }
}

static void set_field(struct hello *h, size_t i, size_t v)
{
    for (size_t k = h->widths[i]; k-- > 0; v >>= 8)
        h->b[h->fields[i] + k] = (unsigned char)v;
}

static size_t get_field(const struct hello *h, size_t i)
{
    size_t v = 0;
    for (size_t k = 0; k < h->widths[i]; k++)
        v = v << 8 | h->b[h->fields[i] + k];
    return v;
}

/* Field 0 is the record length: one byte too many does not matter (the message is
 * complete before the record is, and the rest of the record is not looked at), one
 * too few turns the hello's last (zero) byte into a bogus record header. Every other
 * length field, wrong by one either way or at its maximum, makes the hello INVALID. */
static void test_every_length_field_corrupted(void **state)
{
    static struct hello good, bad;
    build(&good, &(struct spec){ .name = "fields.example" });
    assert_int_equal(good.n_fields, 11);
    for (size_t i = 0; i < good.n_fields; i++) {
        size_t v = get_field(&good, i), max = ((size_t)1 << (8 * good.widths[i])) - 1;
        const size_t wrong[] = { v + 1, v - 1, max };
        for (size_t w = 0; w < 3; w++) {
            bad = good;
            set_field(&bad, i, wrong[w]);
            bool harmless = i == 0 && w == 0;
            int want = harmless ? CLIENTHELLO_SNI : CLIENTHELLO_INVALID;
            char name[256];
            int rc = sni(bad.b, bad.len, name);
            if (rc != want)
                fail_msg("field %zu (at %zu) = %zu: %d, want %d", i, good.fields[i],
                         wrong[w], rc, want);
            assert_every_split(bad.b, bad.len, want, harmless ? "fields.example" : NULL);
        }
    }
}

static void test_rejects_bad_fixed_fields(void **state)
{
    assert_spec(&(struct spec){ .name = "a", .session_id_len = 33 }, CLIENTHELLO_INVALID, NULL);
    assert_spec(&(struct spec){ .name = "a", .cipher_bytes = 5 }, CLIENTHELLO_INVALID, NULL);
    assert_spec(&(struct spec){ .name = "a", .cipher_bytes = -1 }, CLIENTHELLO_INVALID, NULL);
    assert_spec(&(struct spec){ .name = "a", .compression_len = -1 }, CLIENTHELLO_INVALID, NULL);
    assert_spec(&(struct spec){ .name = "a", .session_id_len = -1, .cipher_bytes = 2,
                                .compression_len = 4 }, CLIENTHELLO_SNI, "a");
}

static void test_rejects_byte_after_extensions(void **state)
{
    assert_spec(&(struct spec){ .name = "a.example", .byte_after_extensions = true },
                CLIENTHELLO_INVALID, NULL);
}

static void test_rejects_wrong_handshake_type_and_version(void **state)
{
    static struct hello h;
    build(&h, &(struct spec){ .name = "a.example" });
    h.b[5] = 2; /* ServerHello */
    assert_every_split(h.b, h.len, CLIENTHELLO_INVALID, NULL);
    build(&h, &(struct spec){ .name = "a.example" });
    h.b[9] = 2; /* legacy_version 0x0203 */
    assert_every_split(h.b, h.len, CLIENTHELLO_INVALID, NULL);
}

#define LIST(bytes) .list = (bytes), .list_len = sizeof(bytes)

static void test_rejects_duplicate_server_name_extension(void **state)
{
    static const unsigned char other_type[] = { 0, 5, 7, 0, 2, 'x', 'y' };
    assert_spec(&(struct spec){ .name = "a.example", .sni_twice = true }, CLIENTHELLO_INVALID,
                NULL);
    /* Also when neither copy holds a host_name. */
    assert_spec(&(struct spec){ LIST(other_type), .sni_twice = true }, CLIENTHELLO_INVALID, NULL);
}

static void test_server_name_lists(void **state)
{
    static const unsigned char empty[] = { 0, 0 };
    static const unsigned char two_hosts[] = { 0, 8, 0, 0, 1, 'a', 0, 0, 1, 'b' };
    static const unsigned char other_type[] = { 0, 5, 7, 0, 2, 'x', 'y' };
    static const unsigned char other_then_host[] = { 0, 9, 7, 0, 2, 'x', 'y', 0, 0, 1, 'B' };
    static const unsigned char list_too_short[] = { 0, 3, 0, 0, 1, 'a' };
    static const unsigned char truncated_entry[] = { 0, 2, 0, 0 };
    /* Bytes after the list, shaped like a padding extension that spans the 16 bytes of
     * extensions that follow: read as a header by a parser that loses its place. */
    static const unsigned char bytes_after_list[] = { 0, 4, 0, 0, 1, 'a', 0, 0x15, 0, 12 };
    assert_spec(&(struct spec){ LIST(empty) }, CLIENTHELLO_INVALID, NULL);
    assert_spec(&(struct spec){ .list = empty, .list_len = 0 }, CLIENTHELLO_INVALID, NULL);
    assert_spec(&(struct spec){ LIST(two_hosts) }, CLIENTHELLO_INVALID, NULL);
    assert_spec(&(struct spec){ LIST(other_type) }, CLIENTHELLO_NO_SNI, NULL);
    assert_spec(&(struct spec){ LIST(other_then_host) }, CLIENTHELLO_SNI, "b");
    assert_spec(&(struct spec){ LIST(list_too_short) }, CLIENTHELLO_INVALID, NULL);
    assert_spec(&(struct spec){ LIST(truncated_entry) }, CLIENTHELLO_INVALID, NULL);
    assert_spec(&(struct spec){ LIST(bytes_after_list) }, CLIENTHELLO_INVALID, NULL);
}

static void test_rejects_invalid_names(void **state)
{
    static const char *const bad[] = {
        "", "a b", "a\tb", "-.", ".example", "a..b", "example.com.", ".", "*.example.com",
        "a/b", "a:443", "[::1]", "caf\xc3\xa9.example", "a\x7f", "a@b",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", /* 64 */
    };
    static const unsigned char empty_name[] = { 0, 3, 0, 0, 0 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct spec s = { .name = bad[i], .name_len = strlen(bad[i]) };
        if (s.name_len == 0) { /* an empty host_name, not "use strlen" */
            s.list = empty_name;
            s.list_len = sizeof empty_name;
        }
        assert_spec(&s, CLIENTHELLO_INVALID, NULL);
    }
    assert_spec(&(struct spec){ .name = "a\0b", .name_len = 3 }, CLIENTHELLO_INVALID, NULL);
    assert_spec(&(struct spec){ .name = "a\0", .name_len = 2 }, CLIENTHELLO_INVALID, NULL);
}

static void test_rejects_name_over_255_bytes(void **state)
{
    char name[300];
    for (size_t i = 0; i < 256; i++)
        name[i] = i % 32 == 31 ? '.' : 'a';
    assert_spec(&(struct spec){ .name = name, .name_len = 256 }, CLIENTHELLO_INVALID, NULL);
    name[255] = '\0'; /* 255 bytes, labels of 31 */
    assert_spec(&(struct spec){ .name = name }, CLIENTHELLO_SNI, name);
}

static void test_accepts_host_name_characters(void **state)
{
    static const char *const names[][2] = {
        { "localhost", "localhost" }, { "A-1.B_2.example", "a-1.b_2.example" },
        { "127.0.0.1", "127.0.0.1" }, { "x", "x" }, { "ZZ", "zz" },
        { "xn--caf-dma.example", "xn--caf-dma.example" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_spec(&(struct spec){ .name = names[i][0] }, CLIENTHELLO_SNI, names[i][1]);
}

/* ---- record layer ------------------------------------------------------------------ */

static void test_not_tls(void **state)
{
    static const struct { const char *bytes; size_t len; } inputs[] = {
#define BYTES(s) { (s), sizeof(s) - 1 }
        BYTES("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        BYTES("G"),
        BYTES("\x80\x2e\x01\x03\x01\x00\x15"),       /* SSLv2-style ClientHello */
        BYTES("\x15\x03\x03\x00\x02\x02\x28"),       /* alert record */
        BYTES("\x17\x03\x03\x00\x01\x00"),           /* application data */
        BYTES("\x16\x03\x00\x00\x04\x01\x00\x00\x00"), /* SSL 3.0 record version */
        BYTES("\x16\x03\x05\x00\x04\x01\x00\x00\x00"), /* beyond TLS 1.3 */
        BYTES("\x16\x02\x01\x00\x04\x01\x00\x00\x00"),
#undef BYTES
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        assert_every_split((const unsigned char *)inputs[i].bytes, inputs[i].len,
                           CLIENTHELLO_NOT_TLS, NULL);
}

static void test_empty_and_header_only_are_incomplete(void **state)
{
    static const unsigned char header[] = { 22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3 };
    assert_result(NULL, 0, CLIENTHELLO_INCOMPLETE, NULL);
    for (size_t k = 1; k <= sizeof header; k++)
        assert_result(header, k, CLIENTHELLO_INCOMPLETE, NULL);
}

static void test_record_size_limit(void **state)
{
    static const unsigned char largest[] = { 22, 3, 1, 0x48, 0x00, 1, 0, 0x10, 0x00 };
    static const unsigned char too_large[] = { 22, 3, 1, 0x48, 0x01, 1, 0, 0x10, 0x00 };
    static const unsigned char empty[] = { 22, 3, 1, 0, 0, 22, 3, 1, 0, 4, 1, 0, 0, 0 };
    assert_result(largest, sizeof largest, CLIENTHELLO_INCOMPLETE, NULL);
    assert_every_split(too_large, sizeof too_large, CLIENTHELLO_INVALID, NULL);
    assert_every_split(empty, sizeof empty, CLIENTHELLO_INVALID, NULL);
}

static void test_message_size_limit(void **state)
{
    static const unsigned char largest[] = { 22, 3, 1, 0x40, 0x04, 1, 0, 0x40, 0x00, 3, 3 };
    static const unsigned char too_large[] = { 22, 3, 1, 0x40, 0x05, 1, 0, 0x40, 0x01, 3, 3 };
    static const unsigned char huge[] = { 22, 3, 1, 0x40, 0x05, 1, 0xff, 0xff, 0xff, 3, 3 };
    assert_result(largest, sizeof largest, CLIENTHELLO_INCOMPLETE, NULL);
    assert_every_split(too_large, sizeof too_large, CLIENTHELLO_INVALID, NULL);
    assert_every_split(huge, sizeof huge, CLIENTHELLO_INVALID, NULL);
}

static void test_rejects_bad_continuation_record(void **state)
{
    static struct hello h;
    static unsigned char out[BUF_MAX];
    build(&h, &(struct spec){ .name = "cont.example" });
    size_t cut = 40, second = 5 + cut;
    const unsigned char patches[][2] = { { 0, 21 }, { 0, 23 }, { 2, 5 }, { 1, 2 } };
    for (size_t i = 0; i < sizeof patches / sizeof patches[0]; i++) {
        size_t n = refragment(h.b, h.len, &cut, 1, out);
        out[second + patches[i][0]] = patches[i][1];
        assert_every_split(out, n, CLIENTHELLO_INVALID, NULL);
    }
    /* A zero-length record in the middle. */
    size_t cuts[2] = { cut, cut };
    size_t n = refragment(h.b, h.len, cuts, 2, out);
    assert_every_split(out, n, CLIENTHELLO_INVALID, NULL);
}

static void test_peek_limit_is_final(void **state)
{
    static struct hello h;
    static unsigned char out[6 * BUF_MAX];
    /* 4 KiB hello in 1-byte records: 24 KiB, more than CLIENTHELLO_MAX_PEEK. */
    build(&h, &(struct spec){ .name = "big.example", .padding = 4000 });
    size_t n = refragment(h.b, h.len, NULL, 0, out);
    assert_true(n > CLIENTHELLO_MAX_PEEK);
    assert_result(out, CLIENTHELLO_MAX_PEEK - 1, CLIENTHELLO_INCOMPLETE, NULL);
    assert_result(out, CLIENTHELLO_MAX_PEEK, CLIENTHELLO_INVALID, NULL);
    assert_result(out, n, CLIENTHELLO_INVALID, NULL);
    /* The same hello in one record fits. */
    assert_result(h.b, h.len, CLIENTHELLO_SNI, "big.example");
}

static void test_result_strings(void **state)
{
    assert_string_equal(clienthello_result_str(CLIENTHELLO_NOT_TLS), "not a TLS handshake");
    assert_string_equal(clienthello_result_str(CLIENTHELLO_INVALID), "malformed ClientHello");
    assert_string_equal(clienthello_result_str(42), "unknown ClientHello result");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openssl_hellos_at_every_split),
        cmocka_unit_test(test_openssl_hello_without_sni),
        cmocka_unit_test(test_openssl_uppercase_sni_is_lowercased),
        cmocka_unit_test(test_openssl_longest_name),
        cmocka_unit_test(test_openssl_hello_fragmented_by_openssl),
        cmocka_unit_test(test_openssl_hello_in_two_records_cut_anywhere),
        cmocka_unit_test(test_openssl_hello_in_one_byte_records),
        cmocka_unit_test(test_bytes_after_the_hello_are_ignored),
        cmocka_unit_test(test_bytes_needed_from_headers),
        cmocka_unit_test(test_trickled_hello_costs_few_parses),
        cmocka_unit_test(test_synthetic_hello_at_every_split),
        cmocka_unit_test(test_sni_after_other_extensions),
        cmocka_unit_test(test_hello_without_server_name),
        cmocka_unit_test(test_synthetic_hello_in_three_records_cut_anywhere),
        cmocka_unit_test(test_every_length_field_corrupted),
        cmocka_unit_test(test_rejects_bad_fixed_fields),
        cmocka_unit_test(test_rejects_byte_after_extensions),
        cmocka_unit_test(test_rejects_wrong_handshake_type_and_version),
        cmocka_unit_test(test_rejects_duplicate_server_name_extension),
        cmocka_unit_test(test_server_name_lists),
        cmocka_unit_test(test_rejects_invalid_names),
        cmocka_unit_test(test_rejects_name_over_255_bytes),
        cmocka_unit_test(test_accepts_host_name_characters),
        cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_empty_and_header_only_are_incomplete),
        cmocka_unit_test(test_record_size_limit),
        cmocka_unit_test(test_message_size_limit),
        cmocka_unit_test(test_rejects_bad_continuation_record),
        cmocka_unit_test(test_peek_limit_is_final),
        cmocka_unit_test(test_result_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Incremental chunked body decoder (RFC 9112 §7.1).
 *
 * A byte-at-a-time state machine for the framing (chunk lines, CRLFs, trailers) and a
 * bulk skip over payload, so any split of the input gives the same result and the
 * payload is never copied. */
#include "http1/internal.h"

#include <string.h>

enum chunked_state {
    CS_SIZE_FIRST,      /* first hex digit of a chunk size */
    CS_SIZE,            /* more hex digits, then ';', BWS or CR */
    CS_SIZE_BWS,        /* BWS after the size: only ';' may follow */
    CS_EXT_NAME_START,  /* after ';': BWS, then an extension name */
    CS_EXT_NAME,
    CS_EXT_NAME_BWS,    /* BWS after a name: '=' or ';' */
    CS_EXT_VALUE_START, /* after '=': BWS, then a token or a quoted-string */
    CS_EXT_TOKEN,
    CS_EXT_QUOTED,
    CS_EXT_QUOTED_ESC,  /* after a backslash in a quoted-string */
    CS_EXT_VALUE_END,   /* right after a closing quote */
    CS_EXT_VALUE_BWS,   /* BWS after a value: only ';' may follow */
    CS_LINE_LF,         /* CR ended the chunk line */
    CS_DATA,
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TRAILER_START,   /* a trailer field or the final blank line */
    CS_TRAILER_NAME,
    CS_TRAILER_VALUE,
    CS_TRAILER_LF,
    CS_END_LF,
    CS_DONE,
    CS_FAILED,          /* an error was returned; dec->error repeats it */
};

#define MAX_SIZE_DIGITS 16

_Static_assert(HTTP1_ERR_MIN >= INT8_MIN, "errors fit struct http1_chunked.error");

void http1_chunked_init(struct http1_chunked *dec, const struct http1_limits *lim)
{
    memset(dec, 0, sizeof(*dec));
    dec->state = CS_SIZE_FIRST;
    dec->max_body = lim->max_body_bytes;
    dec->max_trailer_bytes = lim->max_header_bytes;
    dec->max_trailers = lim->max_headers;
}

uint64_t http1_chunked_payload_bytes(const struct http1_chunked *dec)
{
    return dec->payload_total;
}

size_t http1_chunked_trailer_bytes(const struct http1_chunked *dec)
{
    return dec->trailer_bytes;
}

static int add_size_digit(struct http1_chunked *dec, unsigned char c)
{
    unsigned v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
    /* Sizes stay below 2^63 so they fit an off_t and never wrap a sum. */
    if (++dec->digits > MAX_SIZE_DIGITS || dec->remaining > ((uint64_t)INT64_MAX >> 4))
        return HTTP1_ERR_CHUNK_SIZE_OVERFLOW;
    dec->remaining = dec->remaining << 4 | v;
    return 0;
}

/* The chunk line is complete: a payload follows, or the last-chunk's trailers. */
static int end_chunk_line(struct http1_chunked *dec)
{
    if (dec->remaining == 0) {
        dec->state = CS_TRAILER_START;
        return 0;
    }
    if (dec->max_body && dec->remaining > dec->max_body - dec->payload_total)
        return HTTP1_ERR_BODY_TOO_LARGE;
    dec->state = CS_DATA;
    return 0;
}

static int count_ext_byte(struct http1_chunked *dec)
{
    return ++dec->line_bytes > HTTP1_MAX_CHUNK_EXT ? HTTP1_ERR_CHUNK_EXT_TOO_LONG : 0;
}

/* A separator inside a chunk line: ';' starts an extension, BWS moves to bws_state,
 * CR ends the line where that is allowed (may_end). */
static int ext_separator(struct http1_chunked *dec, unsigned char c, int bws_state,
                         bool may_end)
{
    if (c == ';')
        dec->state = CS_EXT_NAME_START;
    else if (http1_is_ows((char)c))
        dec->state = (uint8_t)bws_state;
    else if (c == '\r' && may_end)
        dec->state = CS_LINE_LF;
    else
        return HTTP1_ERR_CHUNK_EXT;
    return 0;
}

/* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] ) */
static int ext_byte(struct http1_chunked *dec, unsigned char c)
{
    bool is_tchar = http1_is(c, HTTP1_C_TCHAR);
    switch (dec->state) {
    case CS_SIZE_BWS:
    case CS_EXT_VALUE_BWS:
        return ext_separator(dec, c, dec->state, false);
    case CS_EXT_NAME_START:
        if (is_tchar)
            dec->state = CS_EXT_NAME;
        return is_tchar || http1_is_ows((char)c) ? 0 : HTTP1_ERR_CHUNK_EXT;
    case CS_EXT_NAME:
    case CS_EXT_NAME_BWS:
        if (c == '=') {
            dec->state = CS_EXT_VALUE_START;
            return 0;
        }
        if (is_tchar && dec->state == CS_EXT_NAME)
            return 0;
        return ext_separator(dec, c, CS_EXT_NAME_BWS, dec->state == CS_EXT_NAME);
    case CS_EXT_VALUE_START:
        if (c == '"')
            dec->state = CS_EXT_QUOTED;
        else if (is_tchar)
            dec->state = CS_EXT_TOKEN;
        return c == '"' || is_tchar || http1_is_ows((char)c) ? 0 : HTTP1_ERR_CHUNK_EXT;
    case CS_EXT_TOKEN:
        return is_tchar ? 0 : ext_separator(dec, c, CS_EXT_VALUE_BWS, true);
    case CS_EXT_QUOTED:
        if (c == '"')
            dec->state = CS_EXT_VALUE_END;
        else if (c == '\\')
            dec->state = CS_EXT_QUOTED_ESC;
        else if (!http1_is(c, HTTP1_C_QDTEXT))
            return HTTP1_ERR_CHUNK_EXT;
        return 0;
    case CS_EXT_QUOTED_ESC:
        dec->state = CS_EXT_QUOTED;
        return http1_is(c, HTTP1_C_FIELD) ? 0 : HTTP1_ERR_CHUNK_EXT;
    default: /* CS_EXT_VALUE_END */
        return ext_separator(dec, c, CS_EXT_VALUE_BWS, true);
    }
}

/* chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; last-chunk has size 0. */
static int line_byte(struct http1_chunked *dec, unsigned char c)
{
    if (c == '\n' && dec->state != CS_LINE_LF)
        return HTTP1_ERR_BARE_LF;
    switch (dec->state) {
    case CS_SIZE_FIRST:
        if (!http1_is(c, HTTP1_C_HEX))
            return HTTP1_ERR_CHUNK_SIZE;
        dec->state = CS_SIZE;
        return add_size_digit(dec, c);
    case CS_SIZE:
        if (http1_is(c, HTTP1_C_HEX))
            return add_size_digit(dec, c);
        if (c != '\r' && c != ';' && !http1_is_ows((char)c))
            return HTTP1_ERR_CHUNK_SIZE;
        ext_separator(dec, c, CS_SIZE_BWS, true);
        return c == '\r' ? 0 : count_ext_byte(dec);
    case CS_SIZE_BWS:
        /* "1 \r\n": BWS is only allowed before an extension's ';'. */
        if (c != ';' && !http1_is_ows((char)c))
            return HTTP1_ERR_CHUNK_SIZE;
        break;
    case CS_LINE_LF:
        return c == '\n' ? end_chunk_line(dec) : HTTP1_ERR_BARE_CR;
    default:
        break;
    }
    int rc = c == '\r' ? 0 : count_ext_byte(dec);
    return rc != 0 ? rc : ext_byte(dec, c);
}

/* Trailers, fields the proxy strips or sets in the head could be smuggled in past it,
 * should a backend merge them into the header section (RFC 9110 §6.5.1). */
static bool is_forbidden_trailer(const struct http1_chunked *dec)
{
    static const char *const names[] = {
        "content-length", "transfer-encoding", "host", "x-client-cert-subject",
        "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
    };
    if (dec->name_len > sizeof(dec->name))
        return false;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) == dec->name_len && memcmp(names[i], dec->name, dec->name_len) == 0)
            return true;
    }
    return false;
}

static int trailer_name_byte(struct http1_chunked *dec, unsigned char c)
{
    if (http1_is(c, HTTP1_C_TCHAR)) {
        if (dec->name_len < sizeof(dec->name))
            dec->name[dec->name_len] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
        if (dec->name_len <= sizeof(dec->name))
            dec->name_len++;
        dec->state = CS_TRAILER_NAME;
        return 0;
    }
    if (c == ':' && dec->state == CS_TRAILER_NAME) {
        dec->state = CS_TRAILER_VALUE;
        return is_forbidden_trailer(dec) ? HTTP1_ERR_TRAILER_FORBIDDEN : 0;
    }
    if (http1_is_ows((char)c) && dec->state == CS_TRAILER_NAME)
        return HTTP1_ERR_SPACE_BEFORE_COLON;
    return HTTP1_ERR_BAD_HEADER_NAME;
}

/* trailer-section = *( field-line CRLF ) CRLF, with the same rules as the head. */
static int trailer_byte(struct http1_chunked *dec, unsigned char c)
{
    if (++dec->trailer_bytes > dec->max_trailer_bytes)
        return HTTP1_ERR_TRAILER_TOO_LARGE;
    if (c == '\n' && dec->state != CS_TRAILER_LF && dec->state != CS_END_LF)
        return HTTP1_ERR_BARE_LF;
    switch (dec->state) {
    case CS_TRAILER_START:
        if (c == '\r') {
            dec->state = CS_END_LF;
            return 0;
        }
        if (http1_is_ows((char)c))
            return HTTP1_ERR_OBS_FOLD;
        if (++dec->trailers > dec->max_trailers)
            return HTTP1_ERR_TRAILER_TOO_LARGE;
        dec->name_len = 0;
        return trailer_name_byte(dec, c);
    case CS_TRAILER_NAME:
        return trailer_name_byte(dec, c);
    case CS_TRAILER_VALUE:
        if (c == '\r')
            dec->state = CS_TRAILER_LF;
        else if (!http1_is(c, HTTP1_C_FIELD))
            return c == '\0' ? HTTP1_ERR_NUL : HTTP1_ERR_BAD_HEADER_VALUE;
        return 0;
    case CS_TRAILER_LF:
        dec->state = CS_TRAILER_START;
        return c == '\n' ? 0 : HTTP1_ERR_BARE_CR;
    default: /* CS_END_LF */
        dec->state = CS_DONE;
        return c == '\n' ? 0 : HTTP1_ERR_BARE_CR;
    }
}

/* The CRLF that must follow each chunk's data. */
static int data_end_byte(struct http1_chunked *dec, unsigned char c)
{
    if (dec->state == CS_DATA_CR) {
        dec->state = CS_DATA_LF;
        return c == '\r' ? 0 : HTTP1_ERR_CHUNK_DATA_CRLF;
    }
    dec->state = CS_SIZE_FIRST;
    dec->digits = 0;
    dec->line_bytes = 0;
    return c == '\n' ? 0 : HTTP1_ERR_CHUNK_DATA_CRLF;
}

static int framing_byte(struct http1_chunked *dec, unsigned char c)
{
    if (dec->state >= CS_TRAILER_START && dec->state <= CS_END_LF)
        return trailer_byte(dec, c);
    if (dec->state == CS_DATA_CR || dec->state == CS_DATA_LF)
        return data_end_byte(dec, c);
    return line_byte(dec, c);
}

int http1_chunked_step(struct http1_chunked *dec, const char *p, size_t len,
                       size_t *consumed, size_t *data_len)
{
    size_t i = 0;
    *data_len = 0;
    *consumed = 0;
    if (dec->state == CS_FAILED)
        return dec->error;
    while (i < len && dec->state != CS_DATA && dec->state != CS_DONE) {
        int rc = framing_byte(dec, (unsigned char)p[i++]);
        if (rc != 0) {
            /* Errors stick: the state machine may have moved on past the bad byte. */
            dec->state = CS_FAILED;
            dec->error = (int8_t)rc;
            *consumed = i;
            return rc;
        }
    }
    if (i < len && dec->state == CS_DATA) {
        size_t n = len - i < dec->remaining ? len - i : (size_t)dec->remaining;
        dec->remaining -= n;
        dec->payload_total += n;
        if (dec->remaining == 0)
            dec->state = CS_DATA_CR;
        i += n;
        *data_len = n;
    }
    *consumed = i;
    return dec->state == CS_DONE ? HTTP1_CHUNKED_END : HTTP1_CHUNKED_MORE;
}

/* json_pos — finds the line of a value in the raw JSON text, given its path.
 *
 * jansson keeps no positions for values, only for syntax errors. Error messages are
 * much easier to act on with a line number, so when one is reported we re-scan the
 * text (already accepted by jansson, but every step is bounds-checked anyway) following
 * the path. Only done per error, so nothing is kept in memory for valid files. */
#include <stdint.h>
#include <string.h>

#include "config/config_internal.h"

struct scan {
    const char *p, *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* At the opening quote; leaves s->p after the closing quote. */
static bool skip_string(struct scan *s)
{
    for (s->p++; s->p < s->end; s->p++) {
        if (*s->p == '\\')
            s->p++;
        else if (*s->p == '"') {
            s->p++;
            return true;
        }
    }
    return false;
}

/* Skips one value of any kind: containers by depth counting (strings skipped whole),
 * scalars up to the next delimiter. */
static bool skip_value(struct scan *s)
{
    size_t depth = 0;
    do {
        if (s->p >= s->end)
            return false;
        char c = *s->p;
        if (c == '"') {
            if (!skip_string(s))
                return false;
        } else if (c == '{' || c == '[') {
            depth++;
            s->p++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return false;
            depth--;
            s->p++;
        } else if (depth == 0) {
            while (s->p < s->end && !strchr(",}] \t\r\n", *s->p))
                s->p++;
            return true;
        } else {
            s->p++;
        }
    } while (depth > 0);
    return true;
}

static int hex4(const char *p, const char *end)
{
    int v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes one escape at s->p (just after the backslash) into out; returns its length. */
static size_t unescape(struct scan *s, char out[4])
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = strchr(from, *s->p);
    if (*s->p != 'u') {
        s->p++;
        out[0] = hit ? to[hit - from] : '?';
        return 1;
    }
    int hi = hex4(s->p + 1, s->end);
    if (hi < 0)
        return 0;
    s->p += 5;
    uint32_t cp = (uint32_t)hi;
    if (hi >= 0xd800 && hi < 0xdc00 && s->end - s->p >= 6 && s->p[0] == '\\' && s->p[1] == 'u') {
        int lo = hex4(s->p + 2, s->end);
        if (lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + (((uint32_t)hi - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
            s->p += 6;
        }
    }
    return utf8_encode(cp, out);
}

/* At the opening quote of a key: consumes it and says whether it decodes to `key`. */
static bool key_equals(struct scan *s, const char *key)
{
    size_t klen = strlen(key), at = 0;
    bool same = true;
    s->p++;
    while (s->p < s->end && *s->p != '"') {
        char buf[4];
        size_t n = 1;
        if (*s->p == '\\') {
            s->p++;
            if (s->p >= s->end || (n = unescape(s, buf)) == 0)
                return false;
        } else {
            buf[0] = *s->p++;
        }
        if (same && (at + n > klen || memcmp(key + at, buf, n) != 0))
            same = false;
        at += n;
    }
    if (s->p >= s->end)
        return false;
    s->p++;
    return same && at == klen;
}

/* Moves s->p to the value of member `key` of the object at s->p. */
static bool find_member(struct scan *s, const char *key)
{
    if (s->p >= s->end || *s->p != '{')
        return false;
    s->p++;
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"')
            return false;
        bool match = key_equals(s, key);
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return false;
        s->p++;
        skip_ws(s);
        if (match)
            return true;
        if (!skip_value(s))
            return false;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ',')
            return false;
        s->p++;
    }
}

/* Moves s->p to element `index` of the array at s->p. */
static bool find_element(struct scan *s, size_t index)
{
    if (s->p >= s->end || *s->p != '[')
        return false;
    s->p++;
    skip_ws(s);
    for (size_t i = 0; i < index; i++) {
        if (s->p >= s->end || *s->p == ']' || !skip_value(s))
            return false;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ',')
            return false;
        s->p++;
        skip_ws(s);
    }
    return s->p < s->end && *s->p != ']';
}

unsigned json_pos_line(const char *text, size_t len, const struct walk_seg *segs, size_t n)
{
    struct scan s = { text, text + len };
    const char *found = NULL;
    skip_ws(&s);
    for (size_t i = 0; i < n; i++) {
        bool ok = segs[i].key ? find_member(&s, segs[i].key) : find_element(&s, segs[i].index);
        if (!ok)
            break;
        found = s.p;
    }
    if (!found)
        return 0;
    unsigned line = 1;
    for (const char *p = text; p < found; p++)
        line += *p == '\n';
    return line;
}

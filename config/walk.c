/* walk — the validator's path stack, error list and typed accessors.
 *
 * Every accessor reports its own errors at the path it was given, so section parsers
 * read like the schema and never format a message about types or ranges themselves. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

/* ---- path ---------------------------------------------------------------------- */

void walk_push(struct walker *w, const char *key)
{
    if (w->depth < WALK_MAX_DEPTH)
        w->segs[w->depth] = (struct walk_seg){ .key = key };
    w->depth++;
}

void walk_push_index(struct walker *w, size_t index)
{
    if (w->depth < WALK_MAX_DEPTH)
        w->segs[w->depth] = (struct walk_seg){ .key = NULL, .index = index };
    w->depth++;
}

void walk_pop(struct walker *w)
{
    if (w->depth > 0)
        w->depth--;
}

/* A key that is a plain word is written `a.b`; anything else as `a["x.y"]`, so the
 * path stays unambiguous when names contain dots or brackets. */
static bool is_plain_key(const char *key)
{
    if (*key == '\0')
        return false;
    for (const char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != ':')
            return false;
    return true;
}

static size_t append(char *buf, size_t size, size_t used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t append(char *buf, size_t size, size_t used, const char *fmt, ...)
{
    if (used >= size)
        return used;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
    return n < 0 ? used : used + (size_t)n;
}

static size_t append_quoted(char *buf, size_t size, size_t used, const char *s)
{
    used = append(buf, size, used, "[\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == '"' || *p == '\\' || *p == 0x7f)
            used = append(buf, size, used, "\\x%02x", *p);
        else
            used = append(buf, size, used, "%c", *p);
    }
    return append(buf, size, used, "\"]");
}

void walk_format_path(const struct walker *w, char *buf, size_t size)
{
    size_t used = 0;
    size_t n = w->depth < WALK_MAX_DEPTH ? w->depth : WALK_MAX_DEPTH;
    if (size > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const struct walk_seg *s = &w->segs[i];
        if (!s->key)
            used = append(buf, size, used, "[%zu]", s->index);
        else if (!is_plain_key(s->key))
            used = append_quoted(buf, size, used, s->key);
        else
            used = append(buf, size, used, "%s%s", i ? "." : "", s->key);
    }
}

/* ---- errors -------------------------------------------------------------------- */

static void add_message(struct config_errors *errs, char *msg /* owned */)
{
    char **grown = msg ? realloc(errs->messages, (errs->count + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(msg);
        return;
    }
    errs->messages = grown;
    errs->messages[errs->count++] = msg;
}

static char *vformat(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

void config_errors_add(struct config_errors *errs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_message(errs, vformat(fmt, ap));
    va_end(ap);
}

static void verror(struct walker *w, const char *fmt, va_list ap)
{
    char path[512];
    char *body = vformat(fmt, ap);
    w->n_errors++;
    if (!body)
        return;
    walk_format_path(w, path, sizeof path);
    size_t n = w->depth < WALK_MAX_DEPTH ? w->depth : WALK_MAX_DEPTH;
    unsigned line = 0;
    if (w->text && n > 0 && w->scan_budget >= w->len) {
        w->scan_budget -= w->len;
        line = json_pos_line(w->text, w->len, w->segs, n);
    }
    if (path[0] == '\0')
        config_errors_add(w->errs, "%s", body);
    else if (line > 0)
        config_errors_add(w->errs, "%s (line %u): %s", path, line, body);
    else
        config_errors_add(w->errs, "%s: %s", path, body);
    free(body);
}

void walk_error(struct walker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(w, fmt, ap);
    va_end(ap);
}

void walk_error_at(struct walker *w, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    walk_push(w, key);
    verror(w, fmt, ap);
    walk_pop(w);
    va_end(ap);
}

char *walk_strdup(struct walker *w, const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        walk_error(w, "out of memory");
    return copy;
}

void *walk_calloc(struct walker *w, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        walk_error(w, "out of memory");
    return p;
}

/* ---- did you mean -------------------------------------------------------------- */

#define SUGGEST_MAX_LEN 64

/* Optimal string alignment distance (Levenshtein plus adjacent transposition). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];   /* distances <= 64 */
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned char)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned char)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            unsigned best = d[i - 1][j - 1] + (unsigned)(a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1u < best)
                best = d[i - 1][j] + 1u;
            if (d[i][j - 1] + 1u < best)
                best = d[i][j - 1] + 1u;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && d[i - 2][j - 2] + 1u < best)
                best = d[i - 2][j - 2] + 1u;
            d[i][j] = (unsigned char)best;
        }
    }
    return d[la][lb];
}

const char *walk_suggest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_distance = 3;
    if (strlen(word) > SUGGEST_MAX_LEN)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!candidates[i] || strlen(candidates[i]) > SUGGEST_MAX_LEN)
            continue;
        size_t dist = edit_distance(word, candidates[i]);
        if (dist < best_distance) {
            best = candidates[i];
            best_distance = dist;
        }
    }
    return best;
}

size_t walk_count(const char *const *null_terminated)
{
    size_t n = 0;
    while (null_terminated[n])
        n++;
    return n;
}

/* ---- values -------------------------------------------------------------------- */

void walk_describe(const json_t *v, char *buf, size_t size)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: snprintf(buf, size, "an object"); break;
    case JSON_ARRAY: snprintf(buf, size, "an array"); break;
    case JSON_STRING: {
        const char *s = json_string_value(v);
        int max = 40;
        snprintf(buf, size, "string \"%.*s%s\"", max, s, strlen(s) > (size_t)max ? "..." : "");
        break;
    }
    case JSON_INTEGER: snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL:
        /* Keep it visibly a real ("1.0", not "1"): "expected an integer, got 1" would
         * read as nonsense. */
        snprintf(buf, size, "%.15g", json_real_value(v));
        if (!strpbrk(buf, ".eEin"))
            snprintf(buf + strlen(buf), size - strlen(buf), ".0");
        break;
    case JSON_TRUE: snprintf(buf, size, "true"); break;
    case JSON_FALSE: snprintf(buf, size, "false"); break;
    case JSON_NULL: snprintf(buf, size, "null"); break;
    }
}

static void type_error(struct walker *w, const char *expected, const json_t *v)
{
    char got[96];
    walk_describe(v, got, sizeof got);
    walk_error(w, "expected %s, got %s", expected, got);
}

bool walk_value_int(struct walker *w, const json_t *v, json_int_t min, json_int_t max,
                    json_int_t *out)
{
    if (!json_is_integer(v)) {
        type_error(w, "an integer", v);
        return false;
    }
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        walk_error(w, "%" JSON_INTEGER_FORMAT " is out of range %" JSON_INTEGER_FORMAT
                   "..%" JSON_INTEGER_FORMAT, n, min, max);
        return false;
    }
    *out = n;
    return true;
}

bool walk_value_string(struct walker *w, const json_t *v, char **out)
{
    if (!json_is_string(v)) {
        type_error(w, "a string", v);
        return false;
    }
    if (json_string_length(v) == 0) {
        walk_error(w, "must not be empty");
        return false;
    }
    char *copy = walk_strdup(w, json_string_value(v));
    if (!copy)
        return false;
    free(*out);
    *out = copy;
    return true;
}

/* ---- members ------------------------------------------------------------------- */

bool walk_uint(struct walker *w, const json_t *obj, const char *key, json_int_t min,
               json_int_t max, unsigned *out)
{
    uint64_t wide;
    if (!walk_u64(w, obj, key, min, max, &wide))
        return false;
    *out = (unsigned)wide;
    return true;
}

bool walk_u64(struct walker *w, const json_t *obj, const char *key, json_int_t min,
              json_int_t max, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    json_int_t n;
    if (!v)
        return false;
    walk_push(w, key);
    bool ok = walk_value_int(w, v, min, max, &n);
    walk_pop(w);
    if (ok)
        *out = (uint64_t)n;
    return ok;
}

bool walk_bool(struct walker *w, const json_t *obj, const char *key, bool *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return false;
    if (!json_is_boolean(v)) {
        walk_push(w, key);
        type_error(w, "true or false", v);
        walk_pop(w);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

bool walk_string(struct walker *w, const json_t *obj, const char *key, bool nullable,
                 char **out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return false;
    if (nullable && json_is_null(v)) {
        free(*out);
        *out = NULL;
        return true;
    }
    walk_push(w, key);
    bool ok = walk_value_string(w, v, out);
    walk_pop(w);
    return ok;
}

static void enum_error(struct walker *w, const char *value, const char *const *names)
{
    char list[256];
    size_t used = 0;
    for (size_t i = 0; names[i]; i++)
        used = append(list, sizeof list, used, "%s\"%s\"", i ? ", " : "", names[i]);
    const char *hint = walk_suggest(value, names, walk_count(names));
    if (hint)
        walk_error(w, "\"%s\" is not one of %s (did you mean \"%s\"?)", value, list, hint);
    else
        walk_error(w, "\"%s\" is not one of %s", value, list);
}

bool walk_enum(struct walker *w, const json_t *obj, const char *key,
               const char *const *names, int *out)
{
    const json_t *v = json_object_get(obj, key);
    bool ok = false;
    if (!v)
        return false;
    walk_push(w, key);
    if (!json_is_string(v)) {
        type_error(w, "a string", v);
    } else {
        for (int i = 0; names[i] && !ok; i++) {
            if (strcmp(json_string_value(v), names[i]) == 0) {
                *out = i;
                ok = true;
            }
        }
        if (!ok)
            enum_error(w, json_string_value(v), names);
    }
    walk_pop(w);
    return ok;
}

bool walk_is_object(struct walker *w, const json_t *v)
{
    if (json_is_object(v))
        return true;
    type_error(w, "an object", v);
    return false;
}

const json_t *walk_object(struct walker *w, const json_t *obj, const char *key, bool nullable)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || (nullable && json_is_null(v)))
        return NULL;
    if (json_is_object(v))
        return v;
    walk_push(w, key);
    type_error(w, nullable ? "an object or null" : "an object", v);
    walk_pop(w);
    return NULL;
}

const json_t *walk_array(struct walker *w, const json_t *obj, const char *key,
                         size_t min_items)
{
    const json_t *v = json_object_get(obj, key);
    const json_t *result = NULL;
    if (!v)
        return NULL;
    walk_push(w, key);
    if (!json_is_array(v))
        type_error(w, "an array", v);
    else if (json_array_size(v) < min_items)
        walk_error(w, "needs at least %zu entr%s", min_items, min_items == 1 ? "y" : "ies");
    else
        result = v;
    walk_pop(w);
    return result;
}

bool walk_require(struct walker *w, const json_t *obj, const char *key)
{
    if (json_object_get(obj, key))
        return true;
    walk_error_at(w, key, "required key is missing");
    return false;
}

void walk_check_keys(struct walker *w, const json_t *obj, const char *const *allowed)
{
    const char *key;
    const json_t *v;
    size_t n = walk_count(allowed);
    json_object_foreach((json_t *)obj, key, v) {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (known)
            continue;
        const char *hint = walk_suggest(key, allowed, n);
        if (hint)
            walk_error_at(w, key, "unknown key (did you mean \"%s\"?)", hint);
        else
            walk_error_at(w, key, "unknown key");
    }
}

#include "config/diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The strings of `array` sorted, as a new array (the input reference is taken). */
static json_t *sorted(json_t *array)
{
    size_t n = json_array_size(array);
    const char **names = calloc(n ? n : 1, sizeof *names);
    json_t *out = json_array();
    if (!names || !out) {
        free(names);
        json_decref(array);
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        names[i] = json_string_value(json_array_get(array, i));
    qsort(names, n, sizeof *names, compare_strings);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, json_string(names[i]));
    free(names);
    json_decref(array);
    return out;
}

static const json_t *member(const json_t *obj, const char *key)
{
    return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

/* Keys whose values differ between two objects (one side missing counts), sorted;
 * `skip` is left out. Two non-objects that differ: ["*"]. */
static json_t *changed_keys(const json_t *a, const json_t *b, const char *skip)
{
    json_t *keys = json_array();
    if (!json_is_object(a) || !json_is_object(b)) {
        if (!json_equal((json_t *)a, (json_t *)b))
            json_array_append_new(keys, json_string("*"));
        return keys;
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)a, key, value) {
        if ((!skip || strcmp(key, skip) != 0) && !json_equal(value, json_object_get(b, key)))
            json_array_append_new(keys, json_string(key));
    }
    json_object_foreach((json_t *)b, key, value) {
        if ((!skip || strcmp(key, skip) != 0) && !json_object_get(a, key))
            json_array_append_new(keys, json_string(key));
    }
    return sorted(keys);
}

/* {"added", "removed", "changed"} between two objects of named things, and the names
 * present on both sides (in `common`, borrowed keys of new_obj). */
static json_t *named_diff(const json_t *old_obj, const json_t *new_obj, json_t *common)
{
    json_t *added = json_array(), *removed = json_array(), *changed = json_object();
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)new_obj, name, value) {
        const json_t *before = member(old_obj, name);
        if (!before) {
            json_array_append_new(added, json_string(name));
            continue;
        }
        json_array_append_new(common, json_string(name));
        json_t *keys = changed_keys(before, value, NULL);
        if (json_array_size(keys) > 0)
            json_object_set_new(changed, name, keys);
        else
            json_decref(keys);
    }
    json_object_foreach((json_t *)old_obj, name, value) {
        if (!member(new_obj, name))
            json_array_append_new(removed, json_string(name));
    }
    return json_pack("{s:o, s:o, s:o}", "added", sorted(added), "removed", sorted(removed),
                     "changed", changed);
}

/* ---- items of a list (routes, backends) named by a key ----------------------------- */

/* A list of objects as {NAME: object} in list order; a name seen again gets " (2)". */
static json_t *index_items(const json_t *list, void (*name_of)(const json_t *, char *, size_t))
{
    json_t *items = json_object();
    size_t i;
    json_t *item;
    json_array_foreach((json_t *)list, i, item) {
        char name[512], unique[540];
        name_of(item, name, sizeof name);
        snprintf(unique, sizeof unique, "%s", name);
        for (int n = 2; json_object_get(items, unique); n++)
            snprintf(unique, sizeof unique, "%s (%d)", name, n);
        json_object_set(items, unique, item);
    }
    return items;
}

static void append(char *buf, size_t size, const char *fmt, const char *a, const char *b)
{
    size_t used = strlen(buf);
    if (used < size)
        snprintf(buf + used, size - used, fmt, a, b);
}

/* "host=api.example.com path_prefix=/v1/", keys sorted; "*" without a match. */
static void route_name(const json_t *route, char *buf, size_t size)
{
    const json_t *match = member(route, "match");
    buf[0] = '\0';
    json_t *keys = json_array();
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)(json_is_object(match) ? match : NULL), key, value)
        if (!json_is_null(value))
            json_array_append_new(keys, json_string(key));
    keys = sorted(keys);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        const json_t *v = json_object_get(match, json_string_value(k));
        char *dumped = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        append(buf, size, i ? " %s=%s" : "%s=%s", json_string_value(k),
               dumped ? dumped : json_string_value(v) ? json_string_value(v) : "?");
        free(dumped);
    }
    json_decref(keys);
    if (!buf[0])
        snprintf(buf, size, "*");
}

static void backend_name(const json_t *backend, char *buf, size_t size)
{
    static const char *const keys[] = { "address", "srv", "name" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = json_string_value(member(backend, keys[i]));
        if (v) {
            snprintf(buf, size, "%s", v);
            return;
        }
    }
    snprintf(buf, size, "?");
}

/* A listener's routes; a bare "pool" key is one route without a match. */
static json_t *routes_of(const json_t *listener)
{
    const json_t *routes = member(listener, "routes");
    if (json_is_array(routes))
        return json_incref((json_t *)routes);
    const json_t *pool = member(listener, "pool");
    return pool ? json_pack("[{s:O}]", "pool", pool) : json_array();
}

/* True when the items both sides have are not in the same relative order. */
static bool is_reordered(const json_t *old_items, const json_t *new_items)
{
    const char *old_key = NULL, *new_key = NULL;
    void *old_it = json_object_iter((json_t *)old_items);
    void *new_it = json_object_iter((json_t *)new_items);
    for (;;) {
        while (old_it && !json_object_get(new_items, old_key = json_object_iter_key(old_it)))
            old_it = json_object_iter_next((json_t *)old_items, old_it);
        while (new_it && !json_object_get(old_items, new_key = json_object_iter_key(new_it)))
            new_it = json_object_iter_next((json_t *)new_items, new_it);
        if (!old_it || !new_it)
            return false;
        if (strcmp(old_key, new_key) != 0)
            return true;
        old_it = json_object_iter_next((json_t *)old_items, old_it);
        new_it = json_object_iter_next((json_t *)new_items, new_it);
    }
}

/* The items diff of two lists, or NULL when nothing changed. */
static json_t *list_diff(const json_t *old_list, const json_t *new_list,
                         void (*name_of)(const json_t *, char *, size_t), const char *skip,
                         bool order_matters)
{
    json_t *old_items = index_items(old_list, name_of), *new_items = index_items(new_list, name_of);
    json_t *added = json_array(), *removed = json_array(), *changed = json_object();
    const char *name;
    json_t *value;
    json_object_foreach(new_items, name, value) {
        const json_t *before = json_object_get(old_items, name);
        if (!before) {
            json_array_append_new(added, json_string(name));
            continue;
        }
        json_t *keys = changed_keys(before, value, skip);
        if (json_array_size(keys) > 0)
            json_object_set_new(changed, name, keys);
        else
            json_decref(keys);
    }
    json_object_foreach(old_items, name, value) {
        if (!json_object_get(new_items, name))
            json_array_append_new(removed, json_string(name));
    }
    bool reordered = order_matters && is_reordered(old_items, new_items);
    json_decref(old_items);
    json_decref(new_items);
    if (!json_array_size(added) && !json_array_size(removed) && !json_object_size(changed) &&
        !reordered) {
        json_decref(added);
        json_decref(removed);
        json_decref(changed);
        return NULL;
    }
    json_t *d = json_pack("{s:o, s:o, s:o}", "added", sorted(added), "removed", sorted(removed),
                          "changed", changed);
    if (d && reordered)
        json_object_set_new(d, "reordered", json_true());
    return d;
}

/* {CONTAINER: list diff} for the containers (listeners, pools) on both sides. */
static json_t *nested_diff(const json_t *old_obj, const json_t *new_obj, const json_t *common,
                           json_t *(*list_of)(const json_t *),
                           void (*name_of)(const json_t *, char *, size_t), const char *skip,
                           bool order_matters)
{
    json_t *out = json_object();
    size_t i;
    json_t *name;
    json_array_foreach((json_t *)common, i, name) {
        const char *n = json_string_value(name);
        json_t *old_list = list_of(member(old_obj, n)), *new_list = list_of(member(new_obj, n));
        json_t *d = list_diff(old_list, new_list, name_of, skip, order_matters);
        if (d)
            json_object_set_new(out, n, d);
        json_decref(old_list);
        json_decref(new_list);
    }
    return out;
}

static json_t *backends_of(const json_t *pool)
{
    const json_t *backends = member(pool, "backends");
    return json_is_array(backends) ? json_incref((json_t *)backends) : json_array();
}

/* Top-level keys besides listeners and pools, one level down for objects. */
static json_t *settings_diff(const json_t *old_doc, const json_t *new_doc)
{
    json_t *out = json_array();
    json_t *keys = changed_keys(old_doc, new_doc, NULL);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        const char *key = json_string_value(k);
        if (strcmp(key, "listeners") == 0 || strcmp(key, "pools") == 0)
            continue;
        const json_t *a = member(old_doc, key), *b = member(new_doc, key);
        if (!json_is_object(a) || !json_is_object(b)) {
            json_array_append_new(out, json_string(key));
            continue;
        }
        json_t *sub = changed_keys(a, b, NULL);
        size_t j;
        json_t *s;
        json_array_foreach(sub, j, s) {
            char path[512];
            snprintf(path, sizeof path, "%s.%s", key, json_string_value(s));
            json_array_append_new(out, json_string(path));
        }
        json_decref(sub);
    }
    json_decref(keys);
    return out;
}

json_t *config_diff(const json_t *old_doc, const json_t *new_doc)
{
    const json_t *old_listeners = member(old_doc, "listeners");
    const json_t *new_listeners = member(new_doc, "listeners");
    const json_t *old_pools = member(old_doc, "pools"), *new_pools = member(new_doc, "pools");
    json_t *common_listeners = json_array(), *common_pools = json_array();
    json_t *diff = json_pack(
        "{s:o, s:o, s:o}", "listeners", named_diff(old_listeners, new_listeners, common_listeners),
        "pools", named_diff(old_pools, new_pools, common_pools), "settings",
        settings_diff(old_doc, new_doc));
    if (diff) {
        json_object_set_new(diff, "routes",
                            nested_diff(old_listeners, new_listeners, common_listeners,
                                        routes_of, route_name, "match", true));
        json_object_set_new(diff, "backends",
                            nested_diff(old_pools, new_pools, common_pools, backends_of,
                                        backend_name, NULL, false));
    }
    json_decref(common_listeners);
    json_decref(common_pools);
    return diff;
}

static bool named_is_empty(const json_t *d)
{
    return !json_array_size(member(d, "added")) && !json_array_size(member(d, "removed")) &&
           !json_object_size(member(d, "changed"));
}

bool config_diff_is_empty(const json_t *diff)
{
    return named_is_empty(member(diff, "listeners")) && named_is_empty(member(diff, "pools")) &&
           !json_object_size(member(diff, "routes")) &&
           !json_object_size(member(diff, "backends")) &&
           !json_array_size(member(diff, "settings"));
}

/* ---- lines for people ------------------------------------------------------------- */

struct printer {
    config_diff_line_fn *line;
    void *arg;
};

/* "KEY, KEY" into buf. */
static void join(const json_t *keys, char *buf, size_t size)
{
    size_t i;
    json_t *k;
    buf[0] = '\0';
    json_array_foreach((json_t *)keys, i, k)
        append(buf, size, "%s%s", i ? ", " : "", json_string_value(k));
}

/* what: "listener"; within: "web: " or "" (prefix of every name). */
static void print_named(const struct printer *p, const json_t *d, const char *what,
                        const char *within)
{
    static const char *const lists[] = { "added", "removed" };
    char text[1536], keys[1024];
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *name;
        json_array_foreach(member(d, lists[l]), i, name) {
            snprintf(text, sizeof text, "%s %s: %s%s", what, lists[l], within,
                     json_string_value(name));
            p->line(p->arg, text);
        }
    }
    const char *name;
    json_t *changed;
    json_object_foreach((json_t *)member(d, "changed"), name, changed) {
        join(changed, keys, sizeof keys);
        snprintf(text, sizeof text, "%s changed: %s%s: %s", what, within, name, keys);
        p->line(p->arg, text);
    }
}

static void print_nested(const struct printer *p, const json_t *d, const char *what,
                         const char *separator)
{
    const char *container;
    json_t *items;
    json_object_foreach((json_t *)d, container, items) {
        char within[300];
        snprintf(within, sizeof within, "%s%s", container, separator);
        print_named(p, items, what, within);
        if (json_is_true(member(items, "reordered"))) {
            char text[400];
            snprintf(text, sizeof text, "%ss reordered: %s", what, container);
            p->line(p->arg, text);
        }
    }
}

void config_diff_lines(const json_t *diff, config_diff_line_fn *line, void *arg)
{
    struct printer p = { line, arg };
    if (config_diff_is_empty(diff)) {
        line(arg, "no changes");
        return;
    }
    print_named(&p, member(diff, "listeners"), "listener", "");
    print_nested(&p, member(diff, "routes"), "route", ": ");
    print_named(&p, member(diff, "pools"), "pool", "");
    print_nested(&p, member(diff, "backends"), "backend", "/");
    size_t i;
    json_t *s;
    json_array_foreach(member(diff, "settings"), i, s) {
        char text[600];
        snprintf(text, sizeof text, "setting changed: %s", json_string_value(s));
        line(arg, text);
    }
}

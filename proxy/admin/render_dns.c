#include "admin/render_dns.h"

#include <string.h>

#include "discovery/discovery.h"

struct pool_entries {
    const char *pool;
    json_t *list;
};

static json_t *addresses_json(const struct dns_set *set)
{
    json_t *list = json_array();
    char text[DNS_ADDR_TEXT_MAX];
    for (size_t i = 0; list && i < set->n; i++) {
        dns_found_text(&set->items[i], text, sizeof text);
        json_array_append_new(list, json_string(text));
    }
    return list;
}

static json_t *lookups_json(const uint64_t *lookups)
{
    json_t *j = json_object();
    for (int r = 0; j && r < DNS_RESULTS; r++)
        json_object_set_new(j, dns_result_name((enum dns_result)r),
                            json_integer((json_int_t)lookups[r]));
    return j;
}

/* "resolved" (the last lookup answered), "stale" (it failed: the last answer stays),
 * "unresolved" (no answer ever: no backends from it) or "pending" (the first lookup
 * runs). */
static const char *state_of(const struct discovery_view *v)
{
    if (v->set->n > 0)
        return v->last_error[0] ? "stale" : "resolved";
    return v->last_error[0] ? "unresolved" : "pending";
}

static void add_entry(const struct discovery_view *v, void *arg)
{
    struct pool_entries *p = arg;
    if (strcmp(v->pool, p->pool) != 0)
        return;
    json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:o}",
                          "backend", (json_int_t)v->index, v->is_srv ? "srv" : "name", v->text,
                          "family", config_family_name(v->family), "state", state_of(v),
                          "addresses", addresses_json(v->set), "ttl_s", (json_int_t)v->ttl_s,
                          "refresh_in_ms", (json_int_t)(v->refresh_in_ms > 0 ? v->refresh_in_ms : 0),
                          "failures", (json_int_t)v->failures, "lookups", lookups_json(v->lookups));
    if (j)
        json_object_set_new(j, "last_error",
                            v->last_error[0] ? json_string(v->last_error) : json_null());
    json_array_append_new(p->list, j);
}

json_t *render_dns_status(const struct discovery *d, const char *pool)
{
    struct pool_entries p = { pool, json_array() };
    discovery_foreach(d, add_entry, &p);
    if (p.list && json_array_size(p.list) == 0) {
        json_decref(p.list);
        return NULL;
    }
    return p.list;
}

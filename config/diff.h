/* config diff — what a new config document changes against a running one.
 *
 * Compares two documents as written (jansson values of struct config.document), so
 * that a reload dry run, `ferry -t --diff` and `ferry reload` can say what a reload
 * does before it does it. Pure: no I/O. The result is a JSON object:
 *
 *   {"listeners": {"added": [NAME...], "removed": [NAME...],
 *                  "changed": {NAME: [KEY...]}},
 *    "routes":    {LISTENER: {"added": [ROUTE...], "removed": [ROUTE...],
 *                             "changed": {ROUTE: [KEY...]}, "reordered": true}},
 *    "pools":     {"added": [...], "removed": [...], "changed": {NAME: [KEY...]}},
 *    "backends":  {POOL: {"added": [ADDRESS...], "removed": [...],
 *                         "changed": {ADDRESS: [KEY...]}}},
 *    "settings":  ["workers", "timeouts.drain_ms", ...]}
 *
 * KEYs are the keys whose values differ (present on one side only included). A route
 * is named by its match ("host=api.example.com path_prefix=/v1/", "*" for a route
 * without one, which a bare "pool" key is); a backend by its address. "routes" and
 * "backends" hold only listeners and pools present on both sides that have such
 * changes ("reordered" only when true); an added pool's backends are not listed
 * again. Names in arrays are sorted. "settings" are the other top-level keys, one
 * level down for objects. Values are compared as written: a key added with its
 * default value is a change.
 */
#ifndef FERRY_CONFIG_DIFF_H
#define FERRY_CONFIG_DIFF_H

#include <stdbool.h>

#include <jansson.h>

/* A new reference (NULL only when out of memory). */
json_t *config_diff(const json_t *old_doc, const json_t *new_doc);
bool config_diff_is_empty(const json_t *diff);

/* Calls line() once per change, in a fixed order, with one human-readable line
 * ("listener added: web2", "backend changed: web/127.0.0.1:9001: weight"); once with
 * "no changes" for an empty diff. */
typedef void config_diff_line_fn(void *arg, const char *line);
void config_diff_lines(const json_t *diff, config_diff_line_fn *line, void *arg);

#endif

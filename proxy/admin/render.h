/* admin render — the bodies of GET /status and GET /metrics, from the current
 * generation and the shared counters. Allocated strings, freed by the caller. */
#ifndef FERRY_ADMIN_RENDER_H
#define FERRY_ADMIN_RENDER_H

struct daemon;

char *admin_render_status(struct daemon *d);
char *admin_render_metrics(struct daemon *d);
/* GET /config: the running generation's config document. */
char *admin_render_config(struct daemon *d);

#endif

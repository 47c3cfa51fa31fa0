/* health response — judging an http check's answer from its bytes. Pure: no I/O.
 *
 * The probe sends "GET path HTTP/1.1" with "Connection: close" and hands every byte
 * received so far to health_judge_response(), which parses the head strictly (as any
 * backend response) and, when the check has expect_body, reads the body (by its
 * framing: a length, chunks or until close) up to HEALTH_BODY_MAX bytes.
 */
#ifndef FERRY_HEALTH_RESPONSE_H
#define FERRY_HEALTH_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* The body bytes expect_body is looked for in: the first 4 KiB. */
enum { HEALTH_BODY_MAX = 4096 };
/* Bytes a probe reads at most (a head of up to 16 KiB, then the body with its chunk
 * framing); beyond this, what is there is judged. */
enum { HEALTH_READ_MAX = 16384 + 2 * HEALTH_BODY_MAX };

enum health_judgement { HEALTH_NEED_MORE, HEALTH_PASS, HEALTH_FAIL };

/* buf[0..len): the answer so far; eof: no more will come (the backend closed, or
 * HEALTH_READ_MAX was reached). reason: what /status and the log say
 * ("GET /healthz answered 503"). */
enum health_judgement health_judge_response(const char *buf, size_t len, bool eof,
                                            const struct cfg_health_check *hc, char *reason,
                                            size_t reason_size);

#endif

/* http2 guard — per-connection budgets against HTTP/2 abuse that costs ferry work
 * without asking for anything useful: rapid reset (CVE-2023-44487: streams opened and
 * reset at once, each one a backend request) and floods of frames that do no request
 * work (SETTINGS, PING, PRIORITY, WINDOW_UPDATE, RST_STREAM, empty DATA: CVE-2019-9512,
 * -9515, -9518 and kin). Pure: the caller passes the time.
 *
 * Each budget is a token bucket that time refills slowly. Control frames spend one
 * control token each; useful work (a request received, a DATA frame with payload
 * received or sent) earns one back, so a long download whose client sends a
 * WINDOW_UPDATE per few DATA frames never runs dry. A client reset of a stream whose
 * response had not completed spends a reset token; only a completed response earns
 * one back (a request does not: opening and resetting streams must cost). When a
 * bucket is empty the connection is closed with GOAWAY ENHANCE_YOUR_CALM.
 */
#ifndef FERRY_HTTP2_GUARD_H
#define FERRY_HTTP2_GUARD_H

#include <stdbool.h>
#include <stdint.h>

/* Client resets of streams whose response had not completed. */
enum { H2_GUARD_RESET_BURST = 100, H2_GUARD_RESET_PER_S = 10 };
/* Frames that do no request work. */
enum { H2_GUARD_CONTROL_BURST = 1000, H2_GUARD_CONTROL_PER_S = 100 };

struct h2_guard_bucket {
    int64_t tokens_milli;       /* thousandths of a token, so slow refills add up */
    int64_t last_ms;
};

struct h2_guard {
    struct h2_guard_bucket resets, control;
};

void h2_guard_init(struct h2_guard *g, int64_t now_ms);
/* The client reset a stream before its response completed. False: the reset budget
 * is spent; close the connection. */
bool h2_guard_client_reset(struct h2_guard *g, int64_t now_ms);
/* A frame that does no request work arrived. False: the control budget is spent. */
bool h2_guard_control_frame(struct h2_guard *g, int64_t now_ms);
/* Useful work happened (see above): earns one control token, up to the burst. */
void h2_guard_useful(struct h2_guard *g);
/* A stream's response completed: earns one reset token, up to the burst. */
void h2_guard_stream_completed(struct h2_guard *g);

#endif

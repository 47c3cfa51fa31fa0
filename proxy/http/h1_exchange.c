/* The HTTP/1.x front end's side of the exchange (struct http_exchange_ops): how a
 * backend's response is framed for this client, ferry's own answers, the request body
 * as the client framed it, and what follows the end of a request. */
#include <stddef.h>

#include <event2/event.h>

#include "core/clock.h"
#include "http/forward.h"
#include "http/internal.h"

static struct http_session *session_of(struct http_exchange *ex)
{
    return (struct http_session *)((char *)ex->client - offsetof(struct http_session, base));
}

static void kick(struct http_exchange *ex)
{
    struct http_session *s = session_of(ex);
    s->activity_ms = clock_now_ms();
    http_kick(s);
}

void http_arm_response_timer(struct http_session *s)
{
    const struct config *cfg = http_cfg(s);
    unsigned ms = s->client_out_full ? cfg->timeouts.client_idle_ms
                                     : cfg->timeouts.upstream_response_ms;
    http_arm_timer(s, ms, HTTP_TIMER_OUTPUT);
}

static void set_timer(struct http_exchange *ex, unsigned ms, enum http_timer_rule rule)
{
    struct http_session *s = session_of(ex);
    if (ms == 0)
        evtimer_del(s->timer);
    else if (rule == HTTP_TIMER_OUTPUT)
        http_arm_response_timer(s);
    else
        http_arm_timer(s, ms, rule);
}

/* The body relays as the client framed it (a chunked body verbatim): fwd_head kept
 * the client's framing. */
static int pull_body(struct http_exchange *ex, struct evbuffer *out, uint64_t *moved)
{
    struct http_session *s = session_of(ex);
    int rc = http_body_move(&s->req_body, s->client_in, out, moved);
    ex->req_done = s->req_body.done;
    return rc;
}

/* How the response is delimited for this client, and whether the client stays. */
static void plan_framing(struct http_session *s, const struct http1_response *resp,
                         struct http_response_rewrite *rw, bool *dechunk)
{
    bool is_client_11 = s->minor_version == 1;
    *dechunk = false;
    s->close_delimited = false;
    switch (resp->body) {
    case HTTP1_BODY_NONE:
        /* HEAD and 304 keep the length of what a GET would have had. */
        rw->framing = resp->has_content_length && resp->status >= 200 && resp->status != 204
                          ? HTTP_FRAMING_LENGTH : HTTP_FRAMING_NONE;
        break;
    case HTTP1_BODY_LENGTH:
        rw->framing = HTTP_FRAMING_LENGTH;
        break;
    case HTTP1_BODY_CHUNKED:
        rw->framing = is_client_11 ? HTTP_FRAMING_CHUNKED : HTTP_FRAMING_CLOSE;
        *dechunk = !is_client_11;
        s->close_delimited = !is_client_11;
        break;
    case HTTP1_BODY_UNTIL_CLOSE:
        rw->framing = HTTP_FRAMING_CLOSE;
        s->close_delimited = true;
        break;
    }
    rw->length = resp->content_length;
    s->keep_client = s->req_keep_alive && !s->draining && !s->client_eof && !s->close_delimited;
    rw->conn = !s->keep_client ? HTTP_CONN_CLOSE
               : is_client_11 ? HTTP_CONN_NONE : HTTP_CONN_KEEP_ALIVE;
}

static long response_head(struct http_exchange *ex, const struct http1_response *resp,
                          const char *head, size_t head_len, struct http_response_plan *plan)
{
    struct http_session *s = session_of(ex);
    struct http_response_rewrite rw = { .set_cookie = plan->set_cookie };
    bool dechunk;
    plan_framing(s, resp, &rw, &dechunk);
    long n = http_forward_response_head(s->client_out, resp, head, head_len, &rw);
    if (n < 0) {
        http_close(s);      /* out of memory */
        return -1;
    }
    plan->sink = s->client_out;
    plan->dechunk = dechunk;
    plan->trailers = NULL;  /* de-chunked for HTTP/1.0, which has no trailers */
    return n;
}

/* 100 Continue and other 1xx: to HTTP/1.1 clients only. */
static long interim(struct http_exchange *ex, const struct http1_response *resp,
                    const char *head, size_t head_len)
{
    struct http_session *s = session_of(ex);
    if (s->minor_version != 1)
        return 0;
    struct http_response_rewrite rw = { .framing = HTTP_FRAMING_NONE, .conn = HTTP_CONN_NONE };
    long n = http_forward_response_head(s->client_out, resp, head, head_len, &rw);
    return n > 0 ? n : 0;
}

/* The whole connection becomes the tunnel, relayed by the session (tunnel.c). */
static long tunnel(struct http_exchange *ex, const struct http1_response *resp,
                   const char *head, size_t head_len, struct http_response_plan *plan)
{
    struct http_session *s = session_of(ex);
    struct http_response_rewrite rw = { .framing = HTTP_FRAMING_NONE, .conn = HTTP_CONN_UPGRADE,
                                        .set_cookie = plan->set_cookie };
    long n = http_forward_response_head(s->client_out, resp, head, head_len, &rw);
    if (n < 0) {
        http_close(s);
        return -1;
    }
    http_tunnel_begin(s);
    return n;
}

static bool response_room(struct http_exchange *ex) { return !session_of(ex)->client_out_full; }

/* The pump writes client_out at the end of the round anyway. */
static void response_progress(struct http_exchange *ex) { (void)ex; }

static long respond(struct http_exchange *ex, int status, bool may_keep)
{
    struct http_session *s = session_of(ex);
    s->keep_client = may_keep && ex->req_done && s->req_keep_alive && !s->draining &&
                     !s->client_eof;
    s->close_delimited = false;
    enum http_conn_header conn = !s->keep_client ? HTTP_CONN_CLOSE
                                 : s->minor_version == 0 ? HTTP_CONN_KEEP_ALIVE
                                                         : HTTP_CONN_NONE;
    long n = http_error_response(s->client_out, status, conn, ex->method == HTTP1_METHOD_HEAD);
    return n > 0 ? n : 0;
}

static void finish(struct http_exchange *ex, bool complete)
{
    struct http_session *s = session_of(ex);
    if (complete)
        http_finish_request(s, s->keep_client && ex->req_done);
    else if (s->close_delimited || s->client_out_full)
        /* Only a reset shows that the body was cut; and a client that takes none of
         * its response would not read the rest anyway (a reset frees what the kernel
         * holds for it). */
        http_abort_client(s);
    else
        http_finish_request(s, false);  /* the framing shows the cut after our close */
}

const struct http_exchange_ops http_h1_exchange_ops = {
    .kick = kick,
    .set_timer = set_timer,
    .pull_body = pull_body,
    .response_head = response_head,
    .interim = interim,
    .tunnel = tunnel,
    .response_room = response_room,
    .response_progress = response_progress,
    .respond = respond,
    .finish = finish,
};

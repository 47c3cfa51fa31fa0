#!/usr/bin/env python3
"""Malformed HTTP/2 requests (RFC 9113 §8.1.1, §8.2, §8.3): each is a stream error —
RST_STREAM PROTOCOL_ERROR on that stream, nothing sent to the backend — and the
connection goes on serving new streams. Sent as raw frames with h2client (no client-side
validation), each on a fresh stream of one connection per test."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import h2client as h2  # noqa: E402
import h2env  # noqa: E402

GOOD = [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", "/")]


def without(name):
    return [(n, v) for n, v in GOOD if n != name]


def run(cases, tls=False):
    """cases: [(what, header list, end_stream)] — every one must be refused with
    RST_STREAM PROTOCOL_ERROR, none may reach the backend, and after each the same
    connection answers a good request."""
    b = ft.Backend("alpha").start()
    p = h2env.proxy(h2env.h2_config(b)).start()
    with p, b, h2.H2Conn(p.port("tls" if tls else "plain"), tls=tls) as c:
        assert c.get("/").status == 200
        for what, headers, end_stream in cases:
            if tls:
                headers = [(n, "https" if n == ":scheme" else v) for n, v in headers]
            sid = c.new_stream_id()
            c.send_headers(sid, headers, end_stream=end_stream)
            s = c.response(sid)
            assert (s.reset, s.headers) == (h2.PROTOCOL_ERROR, None), (what, s, c.summary())
            assert c.goaway is None, (what, c.summary())
            assert c.get("/").data == b"alpha\n", "connection unusable after: " + what
        assert b.stats()["app_requests"] == 1 + len(cases), "a malformed request was forwarded"


def test_missing_pseudo_headers_are_stream_errors():
    run([("no :method", without(":method"), True),
         ("no :scheme", without(":scheme"), True),
         ("no :path", without(":path"), True),
         ("empty :path", without(":path") + [(":path", "")], True)])


def test_duplicate_and_unknown_pseudo_headers_are_stream_errors():
    run([("two :path", GOOD + [(":path", "/again")], True),
         ("two :method", [(":method", "GET")] + GOOD, True),
         ("unknown :foo", GOOD + [(":foo", "bar")], True),
         ("response pseudo-header :status in a request", GOOD + [(":status", "200")], True)])


def test_pseudo_header_after_a_regular_field_is_a_stream_error():
    run([(":path after accept", without(":path") + [("accept", "*/*"), (":path", "/")], True)],
        tls=True)


def test_connection_specific_fields_are_stream_errors():
    run([(name, GOOD + [(name, value)], True) for name, value in (
        ("connection", "keep-alive"), ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"), ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"))])


def test_te_other_than_trailers_is_a_stream_error_and_te_trailers_is_served():
    run([("te: gzip", GOOD + [("te", "gzip")], True),
         ("te: trailers, gzip", GOOD + [("te", "trailers, gzip")], True)])
    b = ft.Backend("alpha").start()
    with h2env.proxy(h2env.h2_config(b)) as p, b, h2.H2Conn(p.port("plain")) as c:
        assert c.get("/", headers=[("te", "trailers")]).status == 200


def test_uppercase_field_names_are_stream_errors():
    run([("X-Upper", GOOD + [("X-Upper", "1")], True),
         ("Cookie", GOOD + [("Cookie", "a=1")], True)], tls=True)


def test_content_length_disagreeing_with_data_is_a_stream_error_and_nothing_more_is_forwarded():
    """A body longer than its content-length must not reach the backend past the length
    (on an HTTP/1.1 upstream those bytes would be the next request: smuggling)."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    b = ft.Backend("alpha").start()
    p = h2env.proxy(h2env.h2_config(b)).start()
    with p, b, h2.H2Conn(p.port("plain")) as c:
        cases = [("more DATA than content-length", 10, [b"x" * 10 + smuggled]),
                 ("more DATA over two frames", 10, [b"x" * 6, b"y" * 4 + smuggled]),
                 ("less DATA than content-length", 100, [b"x" * 50]),
                 ("no DATA, content-length 5", 5, [])]
        for what, length, frames in cases:
            sid = c.request("POST", "/echo", headers=[("content-length", str(length))],
                            end_stream=not frames)
            for i, data in enumerate(frames):
                c.send_data_frame(sid, data, end_stream=i == len(frames) - 1)
            s = c.response(sid)
            assert s.reset == h2.PROTOCOL_ERROR and s.status in (None, 400), (what, s)
            assert c.goaway is None, (what, c.summary())
            assert c.get("/").data == b"alpha\n", "connection unusable after: " + what
        # 4 good GETs; the refused requests may have been started upstream (their head
        # goes before the body is checked) but nothing more: no /smuggled request.
        requests = b.stats()["app_requests"]
        assert 4 <= requests <= 4 + len(cases), requests
        ok = c.get("/smuggled")
        assert ok.status == 200 and b.stats()["app_requests"] == requests + 1


if __name__ == "__main__":
    ft.main()

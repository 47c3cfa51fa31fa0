#!/usr/bin/env python3
"""HTTP/2 flow control is back-pressure: large bodies both ways on one stream while the
other streams of the connection stay prompt; a request body acknowledged only as the
backend drains it; a stream the client does not read stalls alone; stalls and idle
connections are ended by the timeouts; streams past max_concurrent_streams are refused."""

import hashlib
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrytest as ft  # noqa: E402
import h2client as h2  # noqa: E402
import h2env  # noqa: E402

MIB = 1024 * 1024
PROMPT_S = 1.0                       # a small GET next to the big transfers (at least)
UNBLOCKED_S = 3.0                    # a GET beside a stalled stream (blocked: never)
RSS_GROWTH_KIB = 32 * 1024           # socket buffers and watermarks, not the body
SHORT = {"client_idle_ms": 1000, "client_header_ms": 1000, "upstream_response_ms": 1000}


def started(*backends, **config):
    for b in backends:
        b.start()
    return h2env.proxy(h2env.h2_config(*backends, **config)).start()


def small_gets_until(c, done, timeout=120.0):
    """GET / again and again on c until done(); returns the slowest answer, seconds."""
    slowest, deadline = 0.0, time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "big transfers unfinished: %s" % c.summary()
        start = time.monotonic()
        s = c.get("/", timeout=10)
        assert s.status == 200 and s.data == b"alpha\n", s
        slowest = max(slowest, time.monotonic() - start)
    return slowest


def wait_upload_stalls(c, s, timeout=30.0):
    """Runs the connection until stream s has sent nothing more for 1 s; returns s.sent."""
    last, since, deadline = -1, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() - since < 1.0:
        assert time.monotonic() < deadline, "upload never stalls: %s" % c.summary()
        c.step(0.05)
        if s.sent != last:
            last, since = s.sent, time.monotonic()
        assert not s.done, s
    return s.sent


def test_64mib_upload_and_download_on_one_connection_while_small_gets_stay_prompt():
    n = 64 * MIB
    data = os.urandom(n)
    b = ft.Backend("alpha")
    with started(b) as p, b, h2.H2Conn(p.port("tls"), tls=True, timeout=60) as c:
        up = c.stream(c.request("POST", "/sha256", body=data))
        down = c.stream(c.request("GET", "/bytes/%d" % n, keep_data=False))
        began = time.monotonic()
        slowest = small_gets_until(c, lambda: up.done and down.done)
        took = time.monotonic() - began
        assert up.status == 200 and up.data.split() == [
            hashlib.sha256(data).hexdigest().encode(), b"%d" % n], up
        assert down.status == 200 and down.received == n, down
        assert down.sha.hexdigest() == hashlib.sha256(ft.pattern_bytes(n)).hexdigest()
        # Queued behind the big bodies, a GET would take about as long as they do; a
        # slow machine stretches both, so the bound grows with the transfers.
        print("64 MiB each way in %.2fs; the slowest small GET took %.3fs" % (took, slowest))
        assert slowest < max(PROMPT_S, took / 3), "a small GET took %.2fs of %.2fs" % (
            slowest, took)


def test_request_body_is_acknowledged_only_as_the_backend_drains_it():
    """A backend that never reads (a listening socket nobody accepts on: the kernel
    takes the connection and 64 KiB): the upload stops at what the windows and the
    buffers on the way hold, the other streams go on, ferry's memory does not hold the
    body, and the stream ends when the backend goes away."""
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(4)
    b = ft.Backend("alpha").start()
    config = h2env.h2_config(b, routes=[{"match": {"path_prefix": "/stuck"}, "pool": "stuck"},
                                        {"pool": "web"}])
    config["pools"]["stuck"] = {"backends": [{"address": "127.0.0.1:%d" % stuck.getsockname()[1]}]}
    with stuck, h2env.proxy(config) as p, b, h2.H2Conn(p.port("plain"), timeout=30) as c:
        assert c.get("/").status == 200
        before = ft.rss_kib(p.pid)
        s = c.stream(c.request("POST", "/stuck", body=b"u" * (256 * MIB)))
        sent = wait_upload_stalls(c, s)
        # kernel buffers to the backend and ferry's own bounded buffer, never the body
        assert sent < 24 * MIB, "%d MiB acknowledged to a backend that reads nothing" % (sent // MIB)
        start = time.monotonic()
        assert c.get("/").status == 200
        assert time.monotonic() - start < UNBLOCKED_S, "a GET took %.1fs next to the stalled upload" % (
            time.monotonic() - start)
        assert h2.settled_rss_kib(p.pid) - before < RSS_GROWTH_KIB
        stuck.close()           # the queued connection is reset: the stream ends, not the rest
        c.wait(lambda: s.done, what="the stream to end with its backend")
        assert s.status in (None, 502) and c.get("/").status == 200, s


def test_a_stream_the_client_does_not_read_stalls_alone():
    b = ft.Backend("alpha")
    with started(b) as p, b, h2.H2Conn(p.port("tls"), tls=True, timeout=30) as c:
        assert c.get("/").status == 200
        before = ft.rss_kib(p.pid)
        s = c.stream(c.new_stream_id())
        s.paused, s.keep_data = True, False
        c.send_headers(s.id, c.request_headers("GET", "/bytes/%d" % (1024 * MIB)), end_stream=True)
        c.wait(lambda: s.received >= h2.CLIENT_STREAM_WINDOW, what="the stream window filled")
        for _ in range(20):
            start = time.monotonic()
            assert c.get("/").status == 200 and time.monotonic() - start < UNBLOCKED_S
        assert s.received == h2.CLIENT_STREAM_WINDOW, "flow control ignored: %r" % s
        assert h2.settled_rss_kib(p.pid) - before < RSS_GROWTH_KIB
        c.resume(s)                         # it goes on where it stopped
        c.wait(lambda: s.received > 4 * MIB, what="the stream resumed")
        c.reset_stream(s.id)
        assert c.get("/").status == 200


def test_a_zero_window_stall_is_ended_by_the_timeouts():
    b = ft.Backend("alpha")
    with started(b, timeouts=SHORT) as p, b, h2.H2Conn(
            p.port("plain"), settings={h2.INITIAL_WINDOW_SIZE: 0}, window=None) as c:
        s = c.stream(c.request("GET", "/bytes/100000"))
        start = time.monotonic()
        c.wait(lambda: s.done or c.closed or c.goaway, timeout=15,
               what="the stalled stream ended")
        assert s.received == 0, "DATA sent into a zero window: %r" % s
        assert time.monotonic() - start < 10, "stall not bounded by the 1 s timeouts"
        with h2.H2Conn(p.port("plain")) as other:
            assert other.get("/").status == 200


def test_a_client_that_stops_reading_is_closed_and_memory_stays_bounded():
    """Slow read: streams with open windows, then the client reads nothing at all."""
    b = ft.Backend("alpha")
    with started(b, timeouts=SHORT) as p, b:
        before = ft.rss_kib(p.pid)
        c = h2.H2Conn(p.port("plain"), timeout=30, rcvbuf=16384)
        for _ in range(4):
            c.request("GET", "/bytes/%d" % (256 * MIB), keep_data=False)
        c.wait(lambda: sum(s.received for s in c.streams.values()) > MIB, what="data flowing")
        c.reading = False
        client_port = c.sock.getsockname()[1]
        ft.poll_until(lambda: not h2.holds_connection(p.pid, p.port("plain"), client_port),
                      timeout=20, interval=0.2, message="the non-reading client closed")
        assert h2.settled_rss_kib(p.pid) - before < RSS_GROWTH_KIB
        c.close()
        with h2.H2Conn(p.port("plain")) as other:
            assert other.get("/").status == 200


def test_an_idle_connection_is_closed_after_client_idle_ms():
    b = ft.Backend("alpha")
    with started(b, timeouts=SHORT) as p, b, h2.H2Conn(p.port("tls"), tls=True) as c:
        assert c.get("/").status == 200
        idle_from = time.monotonic()
        assert c.wait_closed(timeout=6), "idle connection still open: %s" % c.summary()
        assert time.monotonic() - idle_from > 0.5, "closed before client_idle_ms"
        assert c.goaway is None or c.goaway[1] == h2.NO_ERROR, c.goaway


def test_an_unfinished_header_block_is_closed_after_client_header_ms():
    b = ft.Backend("alpha")
    with started(b, timeouts=dict(SHORT, client_idle_ms=30000)) as p, b, \
            h2.H2Conn(p.port("plain")) as c:
        assert c.get("/").status == 200
        block = c.encode(c.request_headers("GET", "/"))
        first = h2.hf.HeadersFrame(c.new_stream_id(), data=block[:3], flags=["END_STREAM"])
        c.send_frame(first)                   # no END_HEADERS, no CONTINUATION ever
        assert c.wait_closed(timeout=8), "half a header block held the connection open"
        assert b.stats()["app_requests"] == 1


def test_streams_past_max_concurrent_streams_are_refused():
    b = ft.Backend("alpha")
    with started(b, http2={"max_concurrent_streams": 4}) as p, b, \
            h2.H2Conn(p.port("plain")) as c:
        c.wait(lambda: c.settings_received, what="the server's SETTINGS")
        assert c.peer_settings.get(h2.MAX_CONCURRENT_STREAMS) == 4, c.peer_settings
        c.wait(lambda: c.settings_acked, what="our SETTINGS acknowledged")
        sleepers = [c.request("GET", "/sleep/1500") for _ in range(4)]
        excess = [c.request("GET", "/sleep/1500") for _ in range(3)]
        c.wait(lambda: all(c.streams[sid].done for sid in sleepers + excess), timeout=10,
               what="every stream ended")
        assert [c.streams[sid].status for sid in sleepers] == [200] * 4, c.summary()
        assert [c.streams[sid].reset for sid in excess] == [h2.REFUSED_STREAM] * 3, c.summary()
        assert c.get("/").status == 200
        assert b.stats()["app_requests"] == 5


if __name__ == "__main__":
    ft.main()
